//! The hub: this node's sockets, indexed by topic (centrifuge's Hub). It is
//! the one socket directory of the engine (a user's sockets are the
//! subscribers of that user's topic) and the one place frames are handed
//! to sockets, so every fan-out shares one slow-consumer policy: a socket
//! whose queue is full is closed with 4002 (it catches up when it
//! reconnects); a closed one is dropped from the topic.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytestring::ByteString;
use dashmap::DashMap;
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::engine::metrics::Metrics;
use crate::engine::DisconnectReason;

/// What a publication is addressed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    /// Everyone in a room (a chat room's id).
    Room(Uuid),
    /// Every open socket of a user: their dashboards, notifications, presence.
    User(Uuid),
    /// Sockets watching an instructor's office hours (`watch-office-hours`).
    OfficeHours(Uuid),
}

/// Who among a topic's subscribers gets a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    Everyone,
    /// Everyone but this user's sockets (a typist is not told of their own typing).
    AllBut(Uuid),
    /// Everyone but this socket (a reader's other tabs).
    AllButSocket(Uuid),
    /// Subscribers who host the room (an instructor sees who asked anonymously).
    Hosts,
    Guests,
}

/// Why a socket did not take a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Its queue is full: the client is not reading.
    Full,
    /// It has closed.
    Closed,
}

/// An open socket as the hub sees it; the connection actor is the real one,
/// tests may bring their own.
pub trait Socket: Send + Sync + 'static {
    fn id(&self) -> Uuid;
    fn user(&self) -> &Arc<AuthUser>;
    /// Queues a frame without waiting.
    fn try_push(&self, frame: ByteString) -> Result<(), Refused>;
    /// Whether it takes presence as `presence-diff` batches (`/ws?presence=diff`)
    /// rather than one `presence-updated` frame per person.
    fn takes_presence_diffs(&self) -> bool {
        false
    }
    /// Asks the socket to close with this reason.
    fn close(&self, reason: DisconnectReason);
    /// Whether it was opened with the token of this fingerprint (`auth::token_fingerprint`).
    fn opened_with(&self, token_fingerprint: u128) -> bool;
    /// The node the socket is open on, when it is not this one.
    fn home(&self) -> Option<Uuid> {
        None
    }
}

pub type SocketRef = Arc<dyn Socket>;

/// A socket's place in a topic.
#[derive(Clone)]
pub struct Subscription {
    pub socket: SocketRef,
    /// Whether it hosts the room (see [`Audience::Hosts`]).
    pub host: bool,
}

impl Subscription {
    fn wanted_by(&self, audience: Audience) -> bool {
        match audience {
            Audience::Everyone => true,
            Audience::AllBut(user) => self.socket.user().id != user,
            Audience::AllButSocket(socket) => self.socket.id() != socket,
            Audience::Hosts => self.host,
            Audience::Guests => !self.host,
        }
    }
}

pub struct Hub {
    /// A list per topic, not a map: a user's topic holds one to three sockets,
    /// and even a room of 10,000 is scanned faster than hashed on fan-out.
    topics: DashMap<Topic, Vec<Subscription>>,
    metrics: Arc<Metrics>,
}

impl Hub {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self { topics: DashMap::new(), metrics }
    }

    /// Adds a socket to a topic (again: updates its host flag).
    pub fn subscribe(&self, topic: Topic, socket: SocketRef, host: bool) {
        let mut subscribers = self.topics.entry(topic).or_default();
        match subscribers.iter_mut().find(|s| s.socket.id() == socket.id()) {
            Some(existing) => existing.host = host,
            None => subscribers.push(Subscription { socket, host }),
        }
    }

    pub fn unsubscribe(&self, topic: Topic, socket_id: Uuid) {
        if let dashmap::mapref::entry::Entry::Occupied(mut entry) = self.topics.entry(topic) {
            let subscribers = entry.get_mut();
            if let Some(position) = subscribers.iter().position(|s| s.socket.id() == socket_id) {
                subscribers.swap_remove(position);
            }
            if subscribers.is_empty() {
                entry.remove();
            }
        }
    }

    /// Hands one shared frame to every wanted subscriber of the topic here.
    pub fn deliver(&self, topic: Topic, frame: &ByteString, audience: Audience) {
        self.deliver_to_each(topic, |subscription| {
            !subscription.wanted_by(audience) || self.push(&subscription.socket, frame.clone())
        });
    }

    /// Presence for a user's sockets here (`presence::fanout`): `diff` to
    /// those that take diffs, the frames `singles` makes (asked once) to the others.
    pub fn deliver_presence(&self, user: Uuid, diff: &ByteString, singles: impl FnOnce() -> Vec<ByteString>) {
        let (mut make_singles, mut singles_made) = (Some(singles), None);
        self.deliver_to_each(Topic::User(user), |subscription| {
            let socket = &subscription.socket;
            if socket.takes_presence_diffs() {
                return self.push(socket, diff.clone());
            }
            let frames: &Vec<ByteString> =
                singles_made.get_or_insert_with(|| make_singles.take().map(|make| make()).unwrap_or_default());
            frames.iter().all(|frame| self.push(socket, frame.clone()))
        });
    }

    /// Runs `deliver` for each subscriber of the topic here (false: the
    /// socket is gone), then drops the gone ones from the topic.
    fn deliver_to_each(&self, topic: Topic, mut deliver: impl FnMut(&Subscription) -> bool) {
        let mut closed = Vec::new();
        if let Some(subscribers) = self.topics.get(&topic) {
            for subscription in subscribers.iter() {
                if !deliver(subscription) {
                    closed.push(subscription.socket.id());
                }
            }
        }
        // After the read lock is gone: dropping takes the write lock.
        for socket_id in closed {
            self.unsubscribe(topic, socket_id);
        }
    }

    /// Hands a frame to one socket under the slow-consumer policy; false if
    /// the socket is gone for good (closed, or closed now for being slow).
    pub fn push(&self, socket: &SocketRef, frame: ByteString) -> bool {
        match socket.try_push(frame) {
            Ok(()) => true,
            Err(Refused::Full) => {
                self.metrics.slow_consumers_closed.fetch_add(1, Ordering::Relaxed);
                socket.close(DisconnectReason::SlowConsumer);
                false
            }
            Err(Refused::Closed) => false,
        }
    }

    /// The subscribers of a topic on this node.
    pub fn subscribers(&self, topic: Topic) -> Vec<Subscription> {
        self.topics.get(&topic).map(|list| list.clone()).unwrap_or_default()
    }

    pub fn count(&self, topic: Topic) -> usize {
        self.topics.get(&topic).map(|list| list.len()).unwrap_or(0)
    }

    pub fn is_subscribed(&self, topic: Topic, socket_id: Uuid) -> bool {
        self.topics.get(&topic).is_some_and(|list| list.iter().any(|s| s.socket.id() == socket_id))
    }

    /// The open sockets of a user on this node.
    pub fn sockets_of(&self, user_id: Uuid) -> Vec<SocketRef> {
        self.topics
            .get(&Topic::User(user_id))
            .map(|list| list.iter().map(|s| s.socket.clone()).collect())
            .unwrap_or_default()
    }

    /// Every open socket on this node (each subscribes to its user's topic).
    pub fn all_sockets(&self) -> Vec<SocketRef> {
        self.topics
            .iter()
            .filter(|entry| matches!(entry.key(), Topic::User(_)))
            .flat_map(|entry| entry.value().iter().map(|s| s.socket.clone()).collect::<Vec<_>>())
            .collect()
    }

    pub fn open_sockets(&self) -> usize {
        self.topics.iter().filter(|entry| matches!(entry.key(), Topic::User(_))).map(|entry| entry.len()).sum()
    }
}

#[cfg(test)]
pub mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::domain::Role;

    /// A socket that records what it was sent, with room for `capacity` frames.
    pub struct FakeSocket {
        id: Uuid,
        user: Arc<AuthUser>,
        capacity: usize,
        diffs: bool,
        pub frames: Mutex<Vec<String>>,
        pub closed_for: Mutex<Option<DisconnectReason>>,
    }

    impl FakeSocket {
        pub fn new(user_id: Uuid, capacity: usize) -> Arc<Self> {
            Self::made(user_id, capacity, false)
        }

        /// As `new`, for a socket that takes presence diffs.
        pub fn taking_diffs(user_id: Uuid, capacity: usize) -> Arc<Self> {
            Self::made(user_id, capacity, true)
        }

        fn made(user_id: Uuid, capacity: usize, diffs: bool) -> Arc<Self> {
            let user = AuthUser { id: user_id, email: "x@example.com".into(), name: "X".into(), role: Role::Student };
            Arc::new(Self {
                id: Uuid::new_v4(),
                user: Arc::new(user),
                capacity,
                diffs,
                frames: Mutex::new(Vec::new()),
                closed_for: Mutex::new(None),
            })
        }

        pub fn received(&self) -> Vec<String> {
            self.frames.lock().unwrap().clone()
        }
    }

    impl Socket for FakeSocket {
        fn id(&self) -> Uuid {
            self.id
        }
        fn user(&self) -> &Arc<AuthUser> {
            &self.user
        }
        fn try_push(&self, frame: ByteString) -> Result<(), Refused> {
            if self.closed_for.lock().unwrap().is_some() {
                return Err(Refused::Closed);
            }
            let mut frames = self.frames.lock().unwrap();
            if frames.len() >= self.capacity {
                return Err(Refused::Full);
            }
            frames.push(frame.to_string());
            Ok(())
        }
        fn takes_presence_diffs(&self) -> bool {
            self.diffs
        }
        fn close(&self, reason: DisconnectReason) {
            *self.closed_for.lock().unwrap() = Some(reason);
        }
        fn opened_with(&self, _: u128) -> bool {
            false
        }
    }

    fn hub() -> Hub {
        Hub::new(Arc::new(Metrics::default()))
    }

    #[test]
    fn a_publication_reaches_every_subscriber_once() {
        let hub = hub();
        let room = Topic::Room(Uuid::new_v4());
        let sockets: Vec<_> = (0..3).map(|_| FakeSocket::new(Uuid::new_v4(), 10)).collect();
        for socket in &sockets {
            hub.subscribe(room, socket.clone(), false);
            hub.subscribe(room, socket.clone(), false); // twice is still once
        }
        hub.subscribe(Topic::Room(Uuid::new_v4()), FakeSocket::new(Uuid::new_v4(), 10), false);
        hub.deliver(room, &ByteString::from("hello"), Audience::Everyone);
        for socket in &sockets {
            assert_eq!(socket.received(), vec!["hello"]);
        }
        assert_eq!(hub.count(room), 3);
    }

    #[test]
    fn audiences_pick_their_subscribers() {
        let hub = hub();
        let room = Topic::Room(Uuid::new_v4());
        let host = FakeSocket::new(Uuid::new_v4(), 10);
        let guest = FakeSocket::new(Uuid::new_v4(), 10);
        let guest_tab = FakeSocket::new(guest.user().id, 10);
        hub.subscribe(room, host.clone(), true);
        hub.subscribe(room, guest.clone(), false);
        hub.subscribe(room, guest_tab.clone(), false);
        hub.deliver(room, &ByteString::from("hosts"), Audience::Hosts);
        hub.deliver(room, &ByteString::from("guests"), Audience::Guests);
        hub.deliver(room, &ByteString::from("not-guest"), Audience::AllBut(guest.user().id));
        hub.deliver(room, &ByteString::from("other-tabs"), Audience::AllButSocket(guest.id()));
        assert_eq!(host.received(), vec!["hosts", "not-guest", "other-tabs"]);
        assert_eq!(guest.received(), vec!["guests"]);
        assert_eq!(guest_tab.received(), vec!["guests", "other-tabs"]);
    }

    #[test]
    fn a_slow_subscriber_is_closed_and_dropped_without_holding_up_the_others() {
        let metrics = Arc::new(Metrics::default());
        let hub = Hub::new(Arc::clone(&metrics));
        let room = Topic::Room(Uuid::new_v4());
        let slow = FakeSocket::new(Uuid::new_v4(), 1);
        let fast = FakeSocket::new(Uuid::new_v4(), 100);
        hub.subscribe(room, slow.clone(), false);
        hub.subscribe(room, fast.clone(), false);
        for n in 0..5 {
            hub.deliver(room, &ByteString::from(n.to_string()), Audience::Everyone);
        }
        assert_eq!(fast.received().len(), 5, "the fast one got everything");
        assert_eq!(slow.received(), vec!["0"]);
        assert_eq!(*slow.closed_for.lock().unwrap(), Some(DisconnectReason::SlowConsumer));
        assert!(!hub.is_subscribed(room, slow.id()), "dropped from the topic");
        assert_eq!(metrics.slow_consumers_closed.load(Ordering::Relaxed), 1, "closed once, not per frame");
    }

    #[test]
    fn the_users_topic_is_the_socket_directory() {
        let hub = hub();
        let user = Uuid::new_v4();
        let (a, b) = (FakeSocket::new(user, 1), FakeSocket::new(user, 1));
        hub.subscribe(Topic::User(user), a.clone(), false);
        hub.subscribe(Topic::User(user), b.clone(), false);
        hub.subscribe(Topic::Room(Uuid::new_v4()), a.clone(), false);
        assert_eq!(hub.sockets_of(user).len(), 2);
        assert_eq!((hub.open_sockets(), hub.all_sockets().len()), (2, 2));
        hub.unsubscribe(Topic::User(user), a.id());
        hub.unsubscribe(Topic::User(user), b.id());
        assert_eq!(hub.open_sockets(), 0);
        assert!(hub.sockets_of(user).is_empty());
    }
}
