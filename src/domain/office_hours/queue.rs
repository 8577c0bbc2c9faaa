//! One instructor's office-hours queue: who waits in what order, who is
//! being helped in which room, and what each waiting student should be told.
//!
//! The actor asks `check_*` before it stores a change and applies the change
//! once stored, so a failed write leaves the queue as it was. Order is a
//! rank per entry (arrival order); a defer permutes the ranks of the few
//! entries it passes, so a restart rebuilds the same order from the rows.

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::error::{AppError, AppResult};

/// How many completed help times the estimate averages.
const HELP_TIMES_KEPT: usize = 10;
/// Most students admitted into one room at once.
pub const MAX_ADMITTED_TOGETHER: usize = 20;

/// The tunable rules of a queue (from the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueRules {
    /// Places a student moves back when they defer their turn.
    pub defer_places: usize,
    /// The help time assumed before any help was timed.
    pub default_help: Duration,
    /// How long a waiting student may have no open socket.
    pub absent_grace: Duration,
    /// How long a private room may go without a message.
    pub room_idle: Duration,
}

/// An entry while it is open (waiting or admitted).
#[derive(Debug, Clone, PartialEq)]
pub struct QueueEntry {
    pub id: Uuid,
    pub student_id: Uuid,
    pub student_name: String,
    pub question: Option<String>,
    pub topic: Option<String>,
    pub joined_at: DateTime<Utc>,
    /// Whether the student used their one defer.
    pub deferred: bool,
    /// Place in the queue: lower goes first.
    pub rank: i64,
    pub admitted_at: Option<DateTime<Utc>>,
    pub room_id: Option<Uuid>,
}

/// Where a waiting student stands, as they were last told it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub position: usize,
    pub estimated_wait_secs: i64,
}

#[derive(Debug, Clone)]
struct Waiting {
    entry: QueueEntry,
    /// Since when the student has had no open socket.
    absent_since: Option<DateTime<Utc>>,
    told: Option<Standing>,
    /// Whether "up soon" was said (or needed no saying: they joined near the front).
    told_up_soon: bool,
}

/// What a waiting student is to be told after a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PositionNews {
    pub entry_id: Uuid,
    pub student_id: Uuid,
    pub standing: Standing,
    /// They just came to position 2 or 1 from further back.
    pub up_soon: bool,
}

/// The state of the instructor's private rooms.
#[derive(Debug, Clone, Copy)]
struct RoomClock {
    last_activity: DateTime<Utc>,
}

/// An admitted entry that ended, and whether its room closed with it.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    pub entry: QueueEntry,
    pub room_id: Uuid,
    pub room_closed: bool,
}

#[derive(Debug, Clone)]
pub struct OfficeQueue {
    rules: QueueRules,
    /// In order: the first is next.
    waiting: Vec<Waiting>,
    /// In order of admission.
    admitted: Vec<QueueEntry>,
    rooms: HashMap<Uuid, RoomClock>,
    /// The latest help times in seconds, newest last.
    help_times: VecDeque<i64>,
    next_rank: i64,
}

impl OfficeQueue {
    pub fn new(rules: QueueRules) -> Self {
        Self {
            rules,
            waiting: Vec::new(),
            admitted: Vec::new(),
            rooms: HashMap::new(),
            help_times: VecDeque::new(),
            next_rank: 1,
        }
    }

    pub fn rules(&self) -> QueueRules {
        self.rules
    }

    // ---- rebuilding from the database ----

    /// Puts back an entry that was waiting (any order: ranks sort them).
    pub fn restore_waiting(&mut self, entry: QueueEntry) {
        self.next_rank = self.next_rank.max(entry.rank + 1);
        let at = self.waiting.partition_point(|w| w.entry.rank < entry.rank);
        self.waiting.insert(at, Waiting { entry, absent_since: None, told: None, told_up_soon: false });
    }

    /// Puts back an admitted entry; its room was last active at `last_activity`.
    pub fn restore_admitted(&mut self, entry: QueueEntry, last_activity: DateTime<Utc>) {
        if let Some(room_id) = entry.room_id {
            let clock = self.rooms.entry(room_id).or_insert(RoomClock { last_activity });
            clock.last_activity = clock.last_activity.max(last_activity);
        }
        self.admitted.push(entry);
        self.admitted.sort_by_key(|entry| entry.admitted_at);
    }

    /// Remembers a help time (oldest first when rebuilding).
    pub fn record_help_time(&mut self, secs: i64) {
        self.help_times.push_back(secs.max(0));
        while self.help_times.len() > HELP_TIMES_KEPT {
            self.help_times.pop_front();
        }
    }

    /// Takes the current standings as already told (after a rebuild, or a
    /// join whose ack says it).
    pub fn settle(&mut self) {
        let standings: Vec<Standing> = (0..self.waiting.len()).map(|index| self.standing_at(index)).collect();
        for (waiting, standing) in self.waiting.iter_mut().zip(standings) {
            waiting.told = Some(standing);
            waiting.told_up_soon |= standing.position <= 2;
        }
    }

    // ---- reading ----

    pub fn waiting(&self) -> impl DoubleEndedIterator<Item = &QueueEntry> {
        self.waiting.iter().map(|w| &w.entry)
    }

    pub fn admitted(&self) -> impl Iterator<Item = &QueueEntry> {
        self.admitted.iter()
    }

    pub fn waiting_count(&self) -> usize {
        self.waiting.len()
    }

    pub fn open_rooms(&self) -> usize {
        self.rooms.len()
    }

    pub fn has_room(&self, room_id: Uuid) -> bool {
        self.rooms.contains_key(&room_id)
    }

    /// The students admitted into a room.
    pub fn room_students(&self, room_id: Uuid) -> impl Iterator<Item = Uuid> + '_ {
        self.admitted.iter().filter(move |entry| entry.room_id == Some(room_id)).map(|entry| entry.student_id)
    }

    /// An open entry by id, waiting or admitted.
    pub fn entry(&self, entry_id: Uuid) -> Option<&QueueEntry> {
        self.waiting().chain(self.admitted()).find(|entry| entry.id == entry_id)
    }

    /// The student's open entry, if any.
    pub fn open_entry_of(&self, student_id: Uuid) -> Option<&QueueEntry> {
        self.waiting().chain(self.admitted()).find(|entry| entry.student_id == student_id)
    }

    pub fn standing_of(&self, entry_id: Uuid) -> Option<Standing> {
        let index = self.waiting.iter().position(|w| w.entry.id == entry_id)?;
        Some(self.standing_at(index))
    }

    /// The mean of the recent help times, or the default without any.
    pub fn mean_help_secs(&self) -> i64 {
        if self.help_times.is_empty() {
            return self.rules.default_help.num_seconds();
        }
        self.help_times.iter().sum::<i64>() / self.help_times.len() as i64
    }

    /// The wait of someone at `position`: everyone ahead, plus everyone
    /// being helped now (one per open room), at the mean help time each.
    pub fn estimate_at(&self, position: usize) -> i64 {
        (position.saturating_sub(1) + self.rooms.len()) as i64 * self.mean_help_secs()
    }

    /// What a student joining now would wait.
    pub fn estimate_for_newcomer(&self) -> i64 {
        self.estimate_at(self.waiting.len() + 1)
    }

    fn standing_at(&self, index: usize) -> Standing {
        Standing { position: index + 1, estimated_wait_secs: self.estimate_at(index + 1) }
    }

    // ---- changes: check, store, then apply ----

    /// Whether the student may join (one open entry per student).
    pub fn check_join(&self, student_id: Uuid) -> AppResult<()> {
        if self.open_entry_of(student_id).is_some() {
            return Err(AppError::conflict("already_in_queue", "You already have a place with this instructor."));
        }
        Ok(())
    }

    /// The rank the next arrival gets.
    pub fn next_rank(&self) -> i64 {
        self.next_rank
    }

    /// Adds a stored arrival at the end; returns its standing, which its
    /// ack tells (so it is not pushed again).
    pub fn join(&mut self, entry: QueueEntry) -> Standing {
        self.next_rank = self.next_rank.max(entry.rank + 1);
        self.waiting.push(Waiting { entry, absent_since: None, told: None, told_up_soon: false });
        let index = self.waiting.len() - 1;
        let standing = self.standing_at(index);
        let joined = &mut self.waiting[index];
        joined.told = Some(standing);
        joined.told_up_soon = standing.position <= 2;
        standing
    }

    fn waiting_index(&self, entry_id: Uuid) -> AppResult<usize> {
        self.waiting.iter().position(|w| w.entry.id == entry_id).ok_or_else(not_waiting)
    }

    /// A waiting entry, to leave or be skipped.
    pub fn check_waiting(&self, entry_id: Uuid) -> AppResult<&QueueEntry> {
        Ok(&self.waiting[self.waiting_index(entry_id)?].entry)
    }

    /// Takes a waiting entry out (left, skipped, absent).
    pub fn remove_waiting(&mut self, entry_id: Uuid) -> AppResult<QueueEntry> {
        let index = self.waiting_index(entry_id)?;
        Ok(self.waiting.remove(index).entry)
    }

    /// The new ranks a defer gives: the entry moves back `defer_places`
    /// places (fewer if fewer wait behind it), the ones it passes move up
    /// one each, and they swap ranks among themselves.
    pub fn check_defer(&self, entry_id: Uuid) -> AppResult<Vec<(Uuid, i64)>> {
        let index = self.waiting_index(entry_id)?;
        if self.waiting[index].entry.deferred {
            return Err(AppError::conflict("already_deferred", "You have already deferred your turn once."));
        }
        let last = (index + self.rules.defer_places).min(self.waiting.len() - 1);
        let ranks: Vec<i64> = self.waiting[index..=last].iter().map(|w| w.entry.rank).collect();
        let mut order: Vec<Uuid> = self.waiting[index + 1..=last].iter().map(|w| w.entry.id).collect();
        order.push(entry_id);
        Ok(order.into_iter().zip(ranks).collect())
    }

    /// Applies stored new ranks (from `check_defer`) and marks the deferrer.
    pub fn defer(&mut self, entry_id: Uuid, ranks: &[(Uuid, i64)]) {
        let new_ranks: HashMap<Uuid, i64> = ranks.iter().copied().collect();
        for waiting in &mut self.waiting {
            if let Some(rank) = new_ranks.get(&waiting.entry.id) {
                waiting.entry.rank = *rank;
            }
            if waiting.entry.id == entry_id {
                waiting.entry.deferred = true;
            }
        }
        self.waiting.sort_by_key(|w| w.entry.rank);
    }

    /// Whether these entries may be admitted together: 1 to
    /// `MAX_ADMITTED_TOGETHER`, each waiting, none twice.
    pub fn check_admit(&self, entry_ids: &[Uuid]) -> AppResult<()> {
        if entry_ids.is_empty() || entry_ids.len() > MAX_ADMITTED_TOGETHER {
            return Err(AppError::bad_request(
                "invalid_data",
                format!("Admit 1 to {MAX_ADMITTED_TOGETHER} students at a time."),
            ));
        }
        for (index, id) in entry_ids.iter().enumerate() {
            if entry_ids[..index].contains(id) {
                return Err(AppError::bad_request("invalid_data", "An entry is named twice."));
            }
            self.waiting_index(*id)?;
        }
        Ok(())
    }

    /// Moves stored admissions into their room.
    pub fn admit(&mut self, entry_ids: &[Uuid], room_id: Uuid, now: DateTime<Utc>) -> Vec<QueueEntry> {
        let mut admitted = Vec::new();
        for id in entry_ids {
            let Ok(index) = self.waiting_index(*id) else { continue };
            let mut entry = self.waiting.remove(index).entry;
            entry.admitted_at = Some(now);
            entry.room_id = Some(room_id);
            admitted.push(entry.clone());
            self.admitted.push(entry);
        }
        self.rooms.insert(room_id, RoomClock { last_activity: now });
        admitted
    }

    /// Undoes an admission into `room_id` whose write failed: its students
    /// wait again at their ranks, taken as told (they never heard of the
    /// admission); the others' standings change back, for [`Self::news`].
    pub fn take_back_admission(&mut self, room_id: Uuid) -> Vec<Uuid> {
        let (back, staying): (Vec<QueueEntry>, Vec<QueueEntry>) =
            std::mem::take(&mut self.admitted).into_iter().partition(|entry| entry.room_id == Some(room_id));
        self.admitted = staying;
        self.rooms.remove(&room_id);
        let ids: Vec<Uuid> = back.iter().map(|entry| entry.id).collect();
        for mut entry in back {
            entry.admitted_at = None;
            entry.room_id = None;
            self.restore_waiting(entry);
        }
        for index in 0..self.waiting.len() {
            if ids.contains(&self.waiting[index].entry.id) {
                let standing = self.standing_at(index);
                let waiting = &mut self.waiting[index];
                waiting.told = Some(standing);
                waiting.told_up_soon |= standing.position <= 2;
            }
        }
        ids
    }

    /// An admitted entry, to complete or skip.
    pub fn check_admitted(&self, entry_id: Uuid) -> AppResult<&QueueEntry> {
        self.admitted.iter().find(|entry| entry.id == entry_id).ok_or_else(|| {
            AppError::conflict("not_admitted", "This student is not in a room with you (admit them first).")
        })
    }

    /// Ends an admitted entry; a completed help (`helped`) counts toward
    /// the estimate. The room closes with its last student.
    pub fn finish_admitted(&mut self, entry_id: Uuid, now: DateTime<Utc>, helped: bool) -> AppResult<Finished> {
        let index = self.admitted.iter().position(|entry| entry.id == entry_id).ok_or_else(not_waiting)?;
        let entry = self.admitted.remove(index);
        if helped {
            if let Some(admitted_at) = entry.admitted_at {
                self.record_help_time((now - admitted_at).num_seconds());
            }
        }
        let room_id = entry.room_id.unwrap_or_default();
        let room_closed = !self.admitted.iter().any(|other| other.room_id == Some(room_id));
        if room_closed {
            self.rooms.remove(&room_id);
        }
        Ok(Finished { entry, room_id, room_closed })
    }

    /// Everyone still waiting leaves (the queue closed).
    pub fn close(&mut self) -> Vec<QueueEntry> {
        self.waiting.drain(..).map(|w| w.entry).collect()
    }

    /// A message in a private room: it is not idle.
    pub fn touch_room(&mut self, room_id: Uuid, now: DateTime<Utc>) {
        if let Some(clock) = self.rooms.get_mut(&room_id) {
            clock.last_activity = clock.last_activity.max(now);
        }
    }

    /// Rooms without a message for the idle time (to complete by themselves).
    pub fn idle_rooms(&self, now: DateTime<Utc>) -> Vec<Uuid> {
        let mut idle: Vec<Uuid> = self
            .rooms
            .iter()
            .filter(|(_, clock)| now - clock.last_activity >= self.rules.room_idle)
            .map(|(room_id, _)| *room_id)
            .collect();
        idle.sort();
        idle
    }

    /// Notes who has an open socket; returns the waiting entries whose
    /// student has had none for the grace period (to drop).
    pub fn absent(&mut self, now: DateTime<Utc>, connected: impl Fn(Uuid) -> bool) -> Vec<Uuid> {
        let grace = self.rules.absent_grace;
        let mut gone = Vec::new();
        for waiting in &mut self.waiting {
            if connected(waiting.entry.student_id) {
                waiting.absent_since = None;
                continue;
            }
            let since = *waiting.absent_since.get_or_insert(now);
            if now - since >= grace {
                gone.push(waiting.entry.id);
            }
        }
        gone
    }

    /// The standings that changed since each student was last told, in
    /// queue order; each is then taken as told.
    pub fn news(&mut self) -> Vec<PositionNews> {
        let mut news = Vec::new();
        for index in 0..self.waiting.len() {
            let standing = self.standing_at(index);
            let waiting = &mut self.waiting[index];
            if waiting.told == Some(standing) {
                continue;
            }
            let up_soon = standing.position <= 2 && !waiting.told_up_soon;
            waiting.told = Some(standing);
            waiting.told_up_soon |= up_soon;
            news.push(PositionNews {
                entry_id: waiting.entry.id,
                student_id: waiting.entry.student_id,
                standing,
                up_soon,
            });
        }
        news
    }
}

/// The answer for an entry that is not (or no longer) waiting.
pub fn not_waiting() -> AppError {
    AppError::conflict("not_waiting", "This entry is not waiting in the queue.")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> QueueRules {
        QueueRules {
            defer_places: 3,
            default_help: Duration::minutes(5),
            absent_grace: Duration::minutes(2),
            room_idle: Duration::minutes(15),
        }
    }

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-01T14:00:00Z").unwrap().with_timezone(&Utc)
    }

    /// A queue with `n` students joined a second apart; returns the entry ids.
    fn queue_of(n: usize) -> (OfficeQueue, Vec<Uuid>) {
        let mut queue = OfficeQueue::new(rules());
        let ids = (0..n).map(|i| join(&mut queue, &format!("s{i}"), t0() + Duration::seconds(i as i64))).collect();
        (queue, ids)
    }

    fn join(queue: &mut OfficeQueue, name: &str, at: DateTime<Utc>) -> Uuid {
        let student_id = Uuid::new_v4();
        queue.check_join(student_id).unwrap();
        let entry = QueueEntry {
            id: Uuid::new_v4(),
            student_id,
            student_name: name.to_string(),
            question: None,
            topic: None,
            joined_at: at,
            deferred: false,
            rank: queue.next_rank(),
            admitted_at: None,
            room_id: None,
        };
        let id = entry.id;
        queue.join(entry);
        id
    }

    fn order(queue: &OfficeQueue) -> Vec<Uuid> {
        queue.waiting().map(|entry| entry.id).collect()
    }

    fn positions(news: &[PositionNews]) -> Vec<(Uuid, usize)> {
        news.iter().map(|n| (n.entry_id, n.standing.position)).collect()
    }

    #[test]
    fn arrivals_get_distinct_positions_in_order_and_joins_tell_nobody_else() {
        let (mut queue, ids) = queue_of(5);
        assert_eq!(order(&queue), ids);
        for (index, id) in ids.iter().enumerate() {
            assert_eq!(queue.standing_of(*id).unwrap().position, index + 1);
        }
        assert!(queue.news().is_empty(), "a join changes nobody's standing");
    }

    #[test]
    fn a_student_has_one_open_entry() {
        let (mut queue, ids) = queue_of(1);
        let student = queue.entry(ids[0]).unwrap().student_id;
        assert_eq!(queue.check_join(student).unwrap_err().code(), "already_in_queue");
        queue.admit(&ids, Uuid::new_v4(), t0());
        assert_eq!(queue.check_join(student).unwrap_err().code(), "already_in_queue", "admitted is open too");
        queue.finish_admitted(ids[0], t0() + Duration::minutes(3), true).unwrap();
        assert!(queue.check_join(student).is_ok());
    }

    #[test]
    fn leaving_moves_everyone_behind_up_once() {
        let (mut queue, ids) = queue_of(4);
        queue.remove_waiting(ids[1]).unwrap();
        let news = queue.news();
        assert_eq!(positions(&news), vec![(ids[2], 2), (ids[3], 3)]);
        assert!(queue.news().is_empty(), "each change is told once");
        assert_eq!(queue.remove_waiting(ids[1]).unwrap_err().code(), "not_waiting");
    }

    #[test]
    fn a_defer_moves_back_three_places_once_not_to_the_end() {
        let (mut queue, ids) = queue_of(6);
        let ranks = queue.check_defer(ids[0]).unwrap();
        queue.defer(ids[0], &ranks);
        assert_eq!(order(&queue), vec![ids[1], ids[2], ids[3], ids[0], ids[4], ids[5]]);
        assert_eq!(positions(&queue.news()), vec![(ids[1], 1), (ids[2], 2), (ids[3], 3), (ids[0], 4)]);
        assert_eq!(queue.check_defer(ids[0]).unwrap_err().code(), "already_deferred");
        // Near the end: to the end.
        let ranks = queue.check_defer(ids[4]).unwrap();
        queue.defer(ids[4], &ranks);
        assert_eq!(order(&queue), vec![ids[1], ids[2], ids[3], ids[0], ids[5], ids[4]]);
        // A rebuild from the ranks gives the same order.
        let mut rebuilt = OfficeQueue::new(rules());
        for entry in queue.waiting().rev() {
            rebuilt.restore_waiting(entry.clone());
        }
        assert_eq!(order(&rebuilt), order(&queue));
    }

    #[test]
    fn admitting_moves_the_rest_up_and_up_soon_is_said_once() {
        let (mut queue, ids) = queue_of(4);
        let room = Uuid::new_v4();
        queue.check_admit(&ids[..1]).unwrap();
        let admitted = queue.admit(&ids[..1], room, t0());
        assert_eq!(admitted[0].room_id, Some(room));
        let news = queue.news();
        assert_eq!(positions(&news), vec![(ids[1], 1), (ids[2], 2), (ids[3], 3)]);
        // ids[2] came from 3 to 2: up soon; ids[1] was at 2 already when it joined.
        let up_soon: Vec<Uuid> = news.iter().filter(|n| n.up_soon).map(|n| n.entry_id).collect();
        assert_eq!(up_soon, vec![ids[2]]);
        queue.admit(&ids[1..2], Uuid::new_v4(), t0());
        let news = queue.news();
        assert_eq!(news.iter().filter(|n| n.up_soon).map(|n| n.entry_id).collect::<Vec<_>>(), vec![ids[3]]);
        assert!(!news.iter().any(|n| n.entry_id == ids[2] && n.up_soon), "said once");
    }

    #[test]
    fn an_admission_taken_back_restores_the_order_and_tells_only_who_moved_back() {
        let (mut queue, ids) = queue_of(4);
        let room = Uuid::new_v4();
        queue.admit(&ids[..1], room, t0());
        queue.news();
        assert_eq!(queue.take_back_admission(room), vec![ids[0]]);
        assert_eq!(order(&queue), ids, "the same order as before");
        assert_eq!(queue.open_rooms(), 0);
        let news = queue.news();
        assert_eq!(positions(&news), vec![(ids[1], 2), (ids[2], 3), (ids[3], 4)], "back where they were; not ids[0]");
        assert!(news.iter().all(|n| !n.up_soon));
    }

    #[test]
    fn several_are_admitted_into_one_room_which_closes_with_its_last_student() {
        let (mut queue, ids) = queue_of(3);
        let room = Uuid::new_v4();
        assert_eq!(queue.check_admit(&[ids[0], ids[0]]).unwrap_err().code(), "invalid_data");
        assert_eq!(queue.check_admit(&[]).unwrap_err().code(), "invalid_data");
        queue.check_admit(&ids[..2]).unwrap();
        queue.admit(&ids[..2], room, t0());
        assert_eq!(queue.room_students(room).count(), 2);
        assert_eq!(queue.check_admit(&ids[..1]).unwrap_err().code(), "not_waiting");
        let first = queue.finish_admitted(ids[0], t0() + Duration::minutes(4), true).unwrap();
        assert!(!first.room_closed);
        let second = queue.finish_admitted(ids[1], t0() + Duration::minutes(6), true).unwrap();
        assert!(second.room_closed);
        assert!(!queue.has_room(room));
        assert_eq!(queue.check_admitted(ids[2]).unwrap_err().code(), "not_admitted");
    }

    #[test]
    fn estimates_use_the_default_then_the_recent_mean_and_count_rooms_in_progress() {
        let (mut queue, ids) = queue_of(3);
        // No history: 5 minutes each ahead.
        assert_eq!(queue.standing_of(ids[0]).unwrap().estimated_wait_secs, 0);
        assert_eq!(queue.standing_of(ids[2]).unwrap().estimated_wait_secs, 600);
        assert_eq!(queue.estimate_for_newcomer(), 900);
        // Admitting one: a room in progress counts as one ahead for all.
        queue.admit(&ids[..1], Uuid::new_v4(), t0());
        assert_eq!(queue.standing_of(ids[1]).unwrap().estimated_wait_secs, 300);
        // A 2-minute help: the mean is now 120 s.
        queue.finish_admitted(ids[0], t0() + Duration::minutes(2), true).unwrap();
        assert_eq!(queue.mean_help_secs(), 120);
        assert_eq!(queue.standing_of(ids[2]).unwrap().estimated_wait_secs, 120);
        // Skipped help does not count; only the last 10 help times do.
        for secs in [60; 12] {
            queue.record_help_time(secs);
        }
        assert_eq!(queue.mean_help_secs(), 60);
    }

    #[test]
    fn an_estimate_change_alone_is_told() {
        let (mut queue, ids) = queue_of(3);
        let room = Uuid::new_v4();
        queue.admit(&ids[..1], room, t0());
        queue.news();
        // The help ends: nobody moves, but the estimates drop (no room in progress).
        queue.finish_admitted(ids[0], t0() + Duration::minutes(5), true).unwrap();
        let news = queue.news();
        assert_eq!(positions(&news), vec![(ids[1], 1), (ids[2], 2)]);
        assert_eq!(news[1].standing.estimated_wait_secs, 300);
    }

    #[test]
    fn a_student_without_a_socket_is_dropped_after_the_grace_only() {
        let (mut queue, ids) = queue_of(2);
        let away = queue.entry(ids[0]).unwrap().student_id;
        let connected = |student: Uuid| student != away;
        assert!(queue.absent(t0(), connected).is_empty());
        assert!(queue.absent(t0() + Duration::seconds(119), connected).is_empty());
        assert_eq!(queue.absent(t0() + Duration::seconds(120), connected), vec![ids[0]]);
        // Coming back resets the clock.
        assert!(queue.absent(t0() + Duration::seconds(121), |_| true).is_empty());
        assert!(queue.absent(t0() + Duration::seconds(200), connected).is_empty());
    }

    #[test]
    fn a_room_without_messages_goes_idle_after_the_idle_time() {
        let (mut queue, ids) = queue_of(1);
        let room = Uuid::new_v4();
        queue.admit(&ids, room, t0());
        queue.touch_room(room, t0() + Duration::minutes(10));
        assert!(queue.idle_rooms(t0() + Duration::minutes(24)).is_empty());
        assert_eq!(queue.idle_rooms(t0() + Duration::minutes(25)), vec![room]);
    }

    #[test]
    fn closing_empties_the_queue_but_not_the_rooms() {
        let (mut queue, ids) = queue_of(3);
        queue.admit(&ids[..1], Uuid::new_v4(), t0());
        let closed = queue.close();
        assert_eq!(closed.iter().map(|e| e.id).collect::<Vec<_>>(), ids[1..].to_vec());
        assert_eq!(queue.waiting_count(), 0);
        assert_eq!(queue.open_rooms(), 1);
    }

    #[test]
    fn a_thousand_waiting_are_each_told_once_after_an_admission() {
        let (mut queue, ids) = queue_of(1_000);
        queue.admit(&ids[..1], Uuid::new_v4(), t0());
        let news = queue.news();
        assert_eq!(news.len(), 999);
        assert!(news.iter().enumerate().all(|(index, n)| n.standing.position == index + 1));
    }
}
