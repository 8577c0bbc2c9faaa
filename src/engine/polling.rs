//! Engine.IO's HTTP long-polling transport (issue 17): the sessions a
//! `socket.io-client` opens with its default options, before it upgrades to
//! WebSocket. A session is its client's packets waiting for the next GET,
//! that GET when it waits, and the connection actor once the client
//! connected; `http::socket_io::polling` answers the requests with it.
//!
//! A session lives on the node that made it: polling needs a load balancer
//! that keeps a client on one node (`docs/cluster.md`), WebSocket does not.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use actix::Addr;
use bytestring::ByteString;
use dashmap::DashMap;
use tokio::sync::oneshot;

use crate::engine::connection::ConnectionActor;

/// `6`: what ends a waiting GET while the client upgrades.
pub const NOOP: &str = "6";
/// `1`: what the client's next GET gets once the session is over.
pub const CLOSE: &str = "1";

/// This node's polling sessions, by Engine.IO sid.
#[derive(Default)]
pub struct PollingSessions {
    sessions: DashMap<String, Arc<PollingSession>>,
    /// Sessions whose client has not connected yet: bounded, as they are
    /// made before any token is seen.
    handshaking: AtomicUsize,
}

impl PollingSessions {
    /// Opens a session with a fresh sid, or None when `limit` sessions are
    /// already waiting for their connect.
    pub fn open(&self, limit: usize) -> Option<Arc<PollingSession>> {
        let taken = self
            .handshaking
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |count| (count < limit).then_some(count + 1));
        taken.ok()?;
        // 122 random bits: the sid is the session's only credential.
        let sid = uuid::Uuid::new_v4().simple().to_string();
        let state = SessionState { handshaking: true, ..SessionState::default() };
        let session = Arc::new(PollingSession { sid: sid.clone(), state: Mutex::new(state) });
        self.sessions.insert(sid, Arc::clone(&session));
        Some(session)
    }

    pub fn get(&self, sid: &str) -> Option<Arc<PollingSession>> {
        self.sessions.get(sid).map(|session| Arc::clone(&session))
    }

    /// The client connected: its session no longer counts as handshaking.
    pub fn connected(&self, session: &PollingSession, connection: Addr<ConnectionActor>) {
        let mut state = session.lock();
        state.connection = Some(connection);
        if std::mem::take(&mut state.handshaking) {
            self.handshaking.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Ends a session: it is forgotten, and a GET waiting on it gets `1`.
    pub fn remove(&self, sid: &str) {
        let Some((_, session)) = self.sessions.remove(sid) else { return };
        let mut state = session.lock();
        // Counted once, whichever of its connect and its end comes first.
        if std::mem::take(&mut state.handshaking) {
            self.handshaking.fetch_sub(1, Ordering::AcqRel);
        }
        state.ended = true;
        state.outbox.push(ByteString::from_static(CLOSE));
        state.hand_over();
    }

    /// Sessions open now (for `/metrics` and tests).
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }
}

/// One client's polling session.
pub struct PollingSession {
    /// Its Engine.IO sid.
    pub sid: String,
    state: Mutex<SessionState>,
}

#[derive(Default)]
struct SessionState {
    /// Packets for the client that no GET took yet.
    outbox: Vec<ByteString>,
    /// Their bytes: past `WS_OUTBOUND_BYTES` the client is a slow consumer.
    outbox_bytes: usize,
    /// The GET waiting for packets, if one is.
    waiter: Option<oneshot::Sender<Vec<ByteString>>>,
    /// The connection actor, once the client connected with a valid token.
    connection: Option<Addr<ConnectionActor>>,
    /// Counted in [`PollingSessions::handshaking`]: neither connected nor ended yet.
    handshaking: bool,
    /// The client's connect is being checked: a second one is refused.
    connecting: bool,
    /// A WebSocket probe is under way: a GET with nothing to take is
    /// answered at once (`6`), so the client can pause polling and switch.
    upgrading: bool,
    /// The session is over; the packets left are the last.
    ended: bool,
}

impl SessionState {
    /// Gives what is queued to the waiting GET, if there is one.
    fn hand_over(&mut self) {
        if self.outbox.is_empty() {
            return;
        }
        if let Some(waiter) = self.waiter.take() {
            self.outbox_bytes = 0;
            // A GET that gave up meanwhile loses nothing: the packets go back.
            if let Err(packets) = waiter.send(std::mem::take(&mut self.outbox)) {
                self.outbox_bytes = packets.iter().map(|packet| packet.len()).sum();
                self.outbox = packets;
            }
        }
    }
}

/// What a GET gets from a session.
pub enum Poll {
    /// Packets to answer with at once.
    Ready(Vec<ByteString>),
    /// Nothing yet: wait for the actor's next packets.
    Wait(oneshot::Receiver<Vec<ByteString>>),
    /// Another GET is waiting on the session already.
    Overlapping,
}

impl PollingSession {
    fn lock(&self) -> MutexGuard<'_, SessionState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues a packet for the client; it waits for [`Self::hand_over`] or the next GET.
    pub fn push(&self, packet: ByteString) {
        let mut state = self.lock();
        state.outbox_bytes += packet.len();
        state.outbox.push(packet);
    }

    /// Bytes queued that no GET took yet: how far behind the client is.
    pub fn pending_bytes(&self) -> usize {
        self.lock().outbox_bytes
    }

    /// Queues a packet and hands it over at once (the handshake's answers;
    /// the actor hands its packets over once per round instead).
    pub fn send(&self, packet: ByteString) {
        let mut state = self.lock();
        state.outbox_bytes += packet.len();
        state.outbox.push(packet);
        state.hand_over();
    }

    /// Gives what is queued to the waiting GET (end of the actor's round).
    pub fn hand_over(&self) {
        self.lock().hand_over();
    }

    /// Everything queued, taken out (the switch to WebSocket).
    pub fn take_all(&self) -> Vec<ByteString> {
        let mut state = self.lock();
        state.outbox_bytes = 0;
        std::mem::take(&mut state.outbox)
    }

    /// A GET: what is queued, else a wait for the next packets.
    pub fn poll(&self) -> Poll {
        let mut state = self.lock();
        if !state.outbox.is_empty() {
            state.outbox_bytes = 0;
            return Poll::Ready(std::mem::take(&mut state.outbox));
        }
        if state.upgrading {
            return Poll::Ready(vec![ByteString::from_static(NOOP)]);
        }
        if state.ended {
            return Poll::Ready(vec![ByteString::from_static(CLOSE)]);
        }
        if state.waiter.as_ref().is_some_and(|waiter| !waiter.is_closed()) {
            return Poll::Overlapping;
        }
        let (waiter, packets) = oneshot::channel();
        state.waiter = Some(waiter);
        Poll::Wait(packets)
    }

    /// A WebSocket probe began (`true`) or failed (`false`). While one is
    /// under way, a waiting GET is ended with a noop.
    pub fn set_upgrading(&self, upgrading: bool) {
        let mut state = self.lock();
        state.upgrading = upgrading;
        if upgrading {
            if let Some(waiter) = state.waiter.take() {
                let _ = waiter.send(vec![ByteString::from_static(NOOP)]);
            }
        }
    }

    /// Claims the session's connect; false while another is being checked
    /// or once connected.
    pub fn begin_connect(&self) -> bool {
        let mut state = self.lock();
        let free = !state.connecting && state.connection.is_none();
        state.connecting = true;
        free
    }

    /// The connect was refused: the client may try again.
    pub fn end_connect(&self) {
        let mut state = self.lock();
        if state.connection.is_none() {
            state.connecting = false;
        }
    }

    /// The connection actor, once the client connected.
    pub fn connection(&self) -> Option<Addr<ConnectionActor>> {
        self.lock().connection.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(packets: Vec<ByteString>) -> Vec<String> {
        packets.into_iter().map(String::from).collect()
    }

    #[test]
    fn a_waiting_get_takes_what_is_handed_over_and_a_later_one_what_is_left() {
        let sessions = PollingSessions::default();
        let session = sessions.open(10).expect("room for a session");
        let Poll::Wait(mut first) = session.poll() else { panic!("nothing queued yet: the GET waits") };
        assert!(matches!(session.poll(), Poll::Overlapping), "one GET at a time");

        session.push(ByteString::from_static("2"));
        assert_eq!(session.pending_bytes(), 1);
        assert!(first.try_recv().is_err(), "packets wait for the end of the round");
        session.hand_over();
        assert_eq!(texts(first.try_recv().expect("handed over")), ["2"]);

        session.push(ByteString::from_static("42[\"a\",{}]"));
        session.push(ByteString::from_static("42[\"b\",{}]"));
        let Poll::Ready(packets) = session.poll() else { panic!("packets were queued") };
        assert_eq!(texts(packets), ["42[\"a\",{}]", "42[\"b\",{}]"]);
    }

    #[test]
    fn packets_handed_to_a_get_that_left_are_kept_for_the_next() {
        let session = PollingSessions::default().open(10).expect("room for a session");
        let Poll::Wait(gone) = session.poll() else { panic!("the GET waits") };
        drop(gone);
        session.push(ByteString::from_static("2"));
        session.hand_over();
        let Poll::Ready(packets) = session.poll() else { panic!("the ping was kept") };
        assert_eq!(texts(packets), ["2"]);
    }

    #[test]
    fn an_upgrade_ends_the_waiting_get_with_a_noop_and_an_end_with_a_close() {
        let sessions = PollingSessions::default();
        let session = sessions.open(10).expect("room for a session");
        let Poll::Wait(mut waiting) = session.poll() else { panic!("the GET waits") };
        session.set_upgrading(true);
        assert_eq!(texts(waiting.try_recv().expect("ended")), [NOOP]);
        let Poll::Ready(packets) = session.poll() else { panic!("answered at once while upgrading") };
        assert_eq!(texts(packets), [NOOP]);

        session.set_upgrading(false);
        let Poll::Wait(mut waiting) = session.poll() else { panic!("polling again") };
        sessions.remove(&session.sid);
        assert_eq!(texts(waiting.try_recv().expect("ended")), [CLOSE]);
        assert!(sessions.get(&session.sid).is_none());
    }

    #[test]
    fn sessions_waiting_for_their_connect_are_bounded() {
        let sessions = PollingSessions::default();
        let first = sessions.open(2).expect("room");
        let _second = sessions.open(2).expect("room");
        assert!(sessions.open(2).is_none(), "two handshakes at most");
        sessions.remove(&first.sid);
        assert!(sessions.open(2).is_some(), "an ended handshake frees its place");
        assert_eq!(sessions.len(), 2);
    }
}
