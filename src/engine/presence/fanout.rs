//! Presence changes go out per circle, batched (Phoenix's presence diffs).
//!
//! A presence actor used to push its change to every watcher itself: in a
//! lecture's join storm, N people of one course coming online made N x N
//! pushes, each a directory lookup and a queue operation. Now a change is
//! added to its circles' pending batches here, and the node sends each
//! circle's batch to the circle's members at most once per
//! [`PRESENCE_DIFF_WINDOW`]: a change after a quiet window goes at once,
//! the changes that follow it wait for the window's end and go together.
//! A socket that asked for diffs (`/ws?presence=diff`) gets one
//! `presence-diff` frame per circle holding every change, encoded once for
//! all of them; any other socket gets the `presence-updated` frames of the
//! batch, as before, each person at most once however many circles it
//! shares with them. So a storm costs one push per member per window, not
//! one per member per change.
//!
//! [`PendingPresence`] is the plain bookkeeping (tests drive it directly,
//! with their own instants); [`PresenceFlush::deliver`] hands a batch to
//! this node's sockets; the registry owns one `PendingPresence` behind a
//! mutex, and [`publish`] runs the timer.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use bytestring::ByteString;
use serde::Serialize;
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::engine::contacts::{Circle, Watchers};
use crate::engine::hub::Hub;
use crate::engine::registry::Registry;
use crate::error::{AppError, AppResult};
use crate::protocol::{event_frame, events};

/// Shortest time between two batches of this node. Far below what a person
/// notices of a presence change; in a storm, each window's batch is one
/// frame per member.
pub const PRESENCE_DIFF_WINDOW: Duration = Duration::from_millis(100);

/// How a socket hears of presence, chosen when it opens (`/ws?presence=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PresenceFormat {
    /// One `presence-updated` frame per person who changed (protocol v2).
    #[default]
    Updates,
    /// One `presence-diff` frame per circle and window (an addition).
    Diffs,
}

impl PresenceFormat {
    /// The `presence` query parameter: absent or `updates`, or `diff`.
    pub fn parse(value: Option<&str>) -> AppResult<Self> {
        match value {
            None | Some("updates") => Ok(Self::Updates),
            Some("diff") => Ok(Self::Diffs),
            Some(_) => Err(AppError::bad_request(
                "invalid_presence_format",
                "presence is `diff` (batched presence-diff frames) or `updates` (one presence-updated per change).",
            )),
        }
    }
}

/// Adds a change to this node's pending batches, and sends them now or
/// arms the timer that will (on the caller's thread).
pub fn publish(registry: &Arc<Registry>, watchers: &Watchers, change: PresenceChange) {
    let now = Instant::now();
    let next = registry.pending_presence.lock().unwrap_or_else(PoisonError::into_inner).add(watchers, change, now);
    match next {
        NextFlush::Now => flush(registry, now),
        NextFlush::In(wait) => {
            let registry = Arc::downgrade(registry);
            actix::spawn(async move {
                actix::clock::sleep(wait).await;
                if let Some(registry) = registry.upgrade() {
                    flush(&registry, Instant::now());
                }
            });
        }
        NextFlush::Armed | NextFlush::Nothing => {}
    }
}

/// Sends what is pending to the circles' members on every node.
fn flush(registry: &Registry, now: Instant) {
    let flush = registry.pending_presence.lock().unwrap_or_else(PoisonError::into_inner).take(now);
    if !flush.circles.is_empty() {
        registry.broker.publish_presence(&flush);
    }
}

/// When the pending changes go out, as [`PendingPresence::add`] decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextFlush {
    /// At once: the last batch left a window ago or more.
    Now,
    /// When the window since the last batch ends: the caller arms the timer.
    In(Duration),
    /// A timer (or a flush under way) will take it.
    Armed,
    /// The person has no circles: nobody to tell.
    Nothing,
}

/// One person's new presence, as their watchers see it.
#[derive(Debug, Clone)]
pub struct PresenceChange {
    pub user: Uuid,
    /// The `presence-updated` payload, serialized once (a diff's entry).
    pub data: Arc<RawValue>,
    /// The whole `presence-updated` frame, for sockets that take no diffs.
    pub frame: ByteString,
}

impl PresenceChange {
    /// `data` is the `presence-updated` payload; `None` only if it cannot
    /// be serialized, which our own types always can.
    pub fn new(user: Uuid, data: &impl Serialize) -> Option<Self> {
        let data: Arc<RawValue> = match serde_json::value::to_raw_value(data) {
            Ok(raw) => Arc::from(raw),
            Err(err) => {
                log::error!("presence serialization failed: {err}");
                return None;
            }
        };
        let frame = event_frame(events::PRESENCE_UPDATED, &*data);
        Some(Self { user, data, frame })
    }
}

/// The changes of one circle not sent yet: the latest per person.
struct CirclePending {
    members: Arc<[Uuid]>,
    changes: Vec<PresenceChange>,
    /// Where each person's change is in `changes`.
    position: HashMap<Uuid, usize>,
}

/// Changes waiting for the next flush, per circle.
#[derive(Default)]
pub struct PendingPresence {
    circles: HashMap<Circle, CirclePending>,
    /// When the last batch was taken.
    last_flush: Option<Instant>,
    /// Whether a flush (at once, or on its timer) will take the batch.
    armed: bool,
}

impl PendingPresence {
    /// Adds a change to each of the person's circles; a later change of the
    /// same person replaces theirs. Says when the batch is to go out.
    pub fn add(&mut self, watchers: &Watchers, change: PresenceChange, now: Instant) -> NextFlush {
        for (circle, members) in watchers.circles() {
            let pending = self.circles.entry(*circle).or_insert_with(|| CirclePending {
                members: Arc::clone(members),
                changes: Vec::new(),
                position: HashMap::new(),
            });
            pending.members = Arc::clone(members); // the freshest list read
            match pending.position.get(&change.user) {
                Some(&at) => pending.changes[at] = change.clone(),
                None => {
                    pending.position.insert(change.user, pending.changes.len());
                    pending.changes.push(change.clone());
                }
            }
        }
        if self.circles.is_empty() {
            return NextFlush::Nothing;
        }
        if self.armed {
            return NextFlush::Armed;
        }
        // Until `take`, whoever adds next leaves the batch to this flush.
        self.armed = true;
        match self.last_flush.map(|at| now.saturating_duration_since(at)) {
            Some(since) if since < PRESENCE_DIFF_WINDOW => NextFlush::In(PRESENCE_DIFF_WINDOW - since),
            _ => NextFlush::Now,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.circles.is_empty()
    }

    /// Everything pending, as frames ready to deliver; leaves nothing behind.
    pub fn take(&mut self, now: Instant) -> PresenceFlush {
        self.last_flush = Some(now);
        self.armed = false;
        let mut circles: Vec<(Circle, CirclePending)> = self.circles.drain().collect();
        circles.sort_by_key(|(circle, _)| *circle); // one order on every node and in tests
        PresenceFlush {
            circles: circles
                .into_iter()
                .map(|(_, pending)| {
                    let updates: Vec<&RawValue> = pending.changes.iter().map(|change| &*change.data).collect();
                    CircleBatch {
                        diff: event_frame(events::PRESENCE_DIFF, &PresenceDiff { updates }),
                        singles: pending.changes.into_iter().map(|change| (change.user, change.frame)).collect(),
                        members: pending.members,
                    }
                })
                .collect(),
        }
    }
}

/// The `presence-diff` payload.
#[derive(Serialize)]
struct PresenceDiff<'a> {
    updates: Vec<&'a RawValue>,
}

/// One window's changes, ready for the sockets of any node.
#[derive(Debug, Clone, PartialEq)]
pub struct PresenceFlush {
    pub circles: Vec<CircleBatch>,
}

/// One circle's changes.
#[derive(Debug, Clone, PartialEq)]
pub struct CircleBatch {
    /// Who hears of them (the people who changed included).
    pub members: Arc<[Uuid]>,
    /// Every change in one `presence-diff` frame.
    pub diff: ByteString,
    /// Each change as its own `presence-updated` frame, by whose it is.
    pub singles: Vec<(Uuid, ByteString)>,
}

impl PresenceFlush {
    /// Hands each member's sockets on this node their frames: the circle's
    /// diff to sockets that take diffs, else the singles of people other
    /// than the member, each person once in this flush.
    pub fn deliver(&self, hub: &Hub) {
        // Only someone in several circles can meet a person twice.
        let mut heard: Option<HashMap<Uuid, HashSet<Uuid>>> = (self.circles.len() > 1).then(HashMap::new);
        for batch in &self.circles {
            let only_changed = match batch.singles.as_slice() {
                [(user, _)] => Some(*user),
                _ => None,
            };
            for &member in batch.members.iter() {
                if only_changed == Some(member) {
                    continue; // nothing in it about anyone else
                }
                hub.deliver_presence(member, &batch.diff, || {
                    let mut heard_here = heard.as_mut().map(|heard| heard.entry(member).or_default());
                    batch
                        .singles
                        .iter()
                        .filter(|(user, _)| *user != member)
                        .filter(|(user, _)| heard_here.as_mut().is_none_or(|heard| heard.insert(*user)))
                        .map(|(_, frame)| frame.clone())
                        .collect()
                });
            }
        }
    }

    /// Every member of every circle (whose sockets lose the flush if it is lost).
    pub fn members(&self) -> impl Iterator<Item = Uuid> + '_ {
        self.circles.iter().flat_map(|batch| batch.members.iter().copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::contacts::{ContactsIndex, Plan};
    use crate::engine::hub::tests::FakeSocket;
    use crate::engine::hub::{Socket, Topic};
    use crate::engine::metrics::Metrics;

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct View<'a> {
        user_id: Uuid,
        status: &'a str,
    }

    fn change(user: Uuid, status: &str) -> PresenceChange {
        PresenceChange::new(user, &View { user_id: user, status }).expect("serializable")
    }

    /// The watchers of `user` in an index where each list of `circles` is a circle.
    fn watchers_in(user: Uuid, circles: &[(Circle, Vec<Uuid>)]) -> Watchers {
        let mut index = ContactsIndex::new(Duration::from_secs(60));
        let now = Instant::now();
        let read = index.begin_user_read(user);
        index.finish_user_read(read, Some(circles.iter().map(|(circle, _)| *circle).collect()), now);
        // Someone with no circle is ready at once; others wait for their circles' reads.
        if let Plan::Read(tickets) = index.plan(user, now) {
            for ticket in tickets {
                let members = circles.iter().find(|(circle, _)| *circle == ticket.circle).map(|(_, m)| m.clone());
                index.finish_read(ticket, members, now);
            }
        }
        match index.plan(user, now) {
            Plan::Ready(watchers) => watchers,
            other => panic!("not ready: {other:?}"),
        }
    }

    fn hub_with(sockets: &[&Arc<FakeSocket>]) -> Hub {
        let hub = Hub::new(Arc::new(Metrics::default()));
        for socket in sockets {
            hub.subscribe(Topic::User(socket.user().id), Arc::clone(socket) as _, false);
        }
        hub
    }

    fn events(socket: &FakeSocket) -> Vec<serde_json::Value> {
        socket.received().iter().map(|frame| serde_json::from_str(frame).expect("json")).collect()
    }

    #[test]
    fn a_storm_is_one_diff_per_member_and_singles_for_the_others() {
        let people: Vec<Uuid> = (0..4).map(|_| Uuid::new_v4()).collect();
        let course = Circle::Course(Uuid::new_v4());
        let mut pending = PendingPresence::default();
        let now = Instant::now();
        let mut next = Vec::new();
        for person in &people[..3] {
            next.push(pending.add(&watchers_in(*person, &[(course, people.clone())]), change(*person, "online"), now));
        }
        // A second change of the same person replaces the first.
        pending.add(&watchers_in(people[0], &[(course, people.clone())]), change(people[0], "away"), now);
        assert_eq!(next, [NextFlush::Now, NextFlush::Armed, NextFlush::Armed], "one flush takes them all");

        let flush = pending.take(now);
        assert!(pending.is_empty());
        let diff_reader = FakeSocket::taking_diffs(people[3], 100);
        let single_reader = FakeSocket::new(people[3], 100);
        let changed_diff_reader = FakeSocket::taking_diffs(people[0], 100);
        let hub = hub_with(&[&diff_reader, &single_reader, &changed_diff_reader]);
        flush.deliver(&hub);

        let diff = events(&diff_reader);
        assert_eq!(diff.len(), 1, "one frame for the whole window");
        assert_eq!(diff[0]["event"], "presence-diff");
        let updates = diff[0]["data"]["updates"].as_array().expect("updates");
        let statuses: Vec<(String, String)> = updates
            .iter()
            .map(|u| (u["userId"].as_str().unwrap_or_default().to_string(), u["status"].to_string()))
            .collect();
        assert_eq!(
            statuses,
            vec![
                (people[0].to_string(), "\"away\"".to_string()),
                (people[1].to_string(), "\"online\"".to_string()),
                (people[2].to_string(), "\"online\"".to_string()),
            ]
        );
        let singles = events(&single_reader);
        assert_eq!(singles.len(), 3, "one presence-updated per person who changed");
        assert!(singles.iter().all(|frame| frame["event"] == "presence-updated"));
        assert_eq!(singles[0]["data"]["status"], "away");
        assert_eq!(events(&changed_diff_reader).len(), 1, "a changed member still hears the others");
    }

    #[test]
    fn someone_sharing_two_circles_hears_each_person_once_as_singles() {
        let (mover, watcher) = (Uuid::new_v4(), Uuid::new_v4());
        let both = vec![mover, watcher];
        let circles = [(Circle::Course(Uuid::new_v4()), both.clone()), (Circle::Group(Uuid::new_v4()), both)];
        let mut pending = PendingPresence::default();
        pending.add(&watchers_in(mover, &circles), change(mover, "busy"), Instant::now());
        let flush = pending.take(Instant::now());
        assert_eq!(flush.circles.len(), 2);
        let singles = FakeSocket::new(watcher, 100);
        let diffs = FakeSocket::taking_diffs(watcher, 100);
        let own = FakeSocket::new(mover, 100);
        flush.deliver(&hub_with(&[&singles, &diffs, &own]));
        assert_eq!(events(&singles).len(), 1, "deduplicated across circles");
        assert_eq!(events(&diffs).len(), 2, "a diff per circle: apply in order, the latest wins");
        assert!(own.received().is_empty(), "nobody hears of their own change alone");
    }

    #[test]
    fn a_full_socket_is_closed_and_the_others_still_hear() {
        let people: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
        let course = Circle::Course(Uuid::new_v4());
        let mut pending = PendingPresence::default();
        let now = Instant::now();
        pending.add(&watchers_in(people[0], &[(course, people.clone())]), change(people[0], "online"), now);
        pending.add(&watchers_in(people[1], &[(course, people.clone())]), change(people[1], "online"), now);
        let full = FakeSocket::new(people[2], 1);
        let fine = FakeSocket::taking_diffs(people[2], 10);
        let hub = hub_with(&[&full, &fine]);
        pending.take(now).deliver(&hub);
        assert!(full.closed_for.lock().unwrap().is_some(), "two singles do not fit in one");
        assert_eq!(fine.received().len(), 1);
        assert!(!hub.is_subscribed(Topic::User(people[2]), full.id()), "dropped from the directory");
    }

    #[test]
    fn a_change_after_a_quiet_window_goes_at_once_and_the_next_ones_wait_for_its_end() {
        let (ada, bob) = (Uuid::new_v4(), Uuid::new_v4());
        let course = [(Circle::Course(Uuid::new_v4()), vec![ada, bob])];
        let mut pending = PendingPresence::default();
        let start = Instant::now();
        assert_eq!(pending.add(&watchers_in(ada, &course), change(ada, "online"), start), NextFlush::Now);
        pending.take(start);
        let soon = start + Duration::from_millis(30);
        let wait = PRESENCE_DIFF_WINDOW - Duration::from_millis(30);
        assert_eq!(pending.add(&watchers_in(bob, &course), change(bob, "online"), soon), NextFlush::In(wait));
        assert_eq!(pending.add(&watchers_in(ada, &course), change(ada, "busy"), soon), NextFlush::Armed);
        let at_window_end = start + PRESENCE_DIFF_WINDOW;
        assert_eq!(pending.take(at_window_end).circles[0].singles.len(), 2, "both changes in one batch");
        let quiet_again = at_window_end + PRESENCE_DIFF_WINDOW;
        assert_eq!(pending.add(&watchers_in(bob, &course), change(bob, "away"), quiet_again), NextFlush::Now);
        let loner = Uuid::new_v4();
        let mut alone = PendingPresence::default();
        assert_eq!(alone.add(&watchers_in(loner, &[]), change(loner, "online"), start), NextFlush::Nothing);
    }
}
