//! The contacts index: who hears of whose presence, kept once per circle.
//!
//! Two people see each other's presence when they share a *circle*: a course
//! (its instructor and its enrolled students) or an active study group. Each
//! presence actor used to keep its own list of all its contacts, so a course
//! of N online people held N lists of N ids (O(N²) memory, and N reads of N
//! ids when they all came online). The index instead keeps
//! * per circle, its members once, as an `Arc<[Uuid]>` shared by every user
//!   of the circle, and
//! * per online user, the list of their circles,
//!
//! so memory is O(memberships of the circles online users are in).
//!
//! **Loading** is lazy: a user's circles come with the presence actor's own
//! start-up read; a circle's members are read the first time one of its users
//! publishes. One caller reads a circle while the others that need it wait
//! for that read (single flight), so a join storm of 10,000 in one course
//! reads the course about once.
//!
//! **Freshness**: lists are trusted for a TTL (`WATCHERS_TTL`). Past it, the
//! next caller reads again while others keep using the old list meanwhile, as
//! an actor used its old watchers before. An enrollment invalidates the
//! course and the newcomer's (and the instructor's) circles at once: those
//! are not used again before they are read again, so the newcomer is heard
//! at the next push.
//!
//! **Eviction** is by reference count: a circle lives while at least one
//! user entry names it, and a user entry lives while the user's presence
//! actor does (it is released when the actor stops). Counting is exact and
//! frees memory at once without a periodic sweep over everything; an entry
//! left behind by an actor that died without stopping (a panic) is replaced
//! by the user's next actor and released when that one stops.
//!
//! [`ContactsIndex`] is the plain, synchronous bookkeeping (time is passed
//! in, so tests drive it directly); [`Contacts`] wraps it in a mutex and does
//! the database reads. The mutex is never held across an await or a send.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use uuid::Uuid;

use crate::db::{self, AnyConnection, Db};
use crate::error::AppResult;

/// A group of people who all see each other's presence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Circle {
    /// A course: its instructor and its enrolled students.
    Course(Uuid),
    /// An active study group: its members.
    Group(Uuid),
}

/// The people a user's presence goes to: the member lists of the user's
/// circles, shared with the index (cloning this clones a few `Arc`s).
#[derive(Debug, Clone, Default)]
pub struct Watchers {
    /// Each circle of the user with its member list.
    lists: Vec<(Circle, Arc<[Uuid]>)>,
}

impl Watchers {
    /// The user's circles with their member lists (each includes the user).
    pub fn circles(&self) -> &[(Circle, Arc<[Uuid]>)] {
        &self.lists
    }
}

/// What the index knows of an online user.
struct UserEntry {
    /// The user's circles, sorted, without duplicates.
    circles: Box<[Circle]>,
    /// When they were read; `None` until read, or once invalidated (read
    /// again before use).
    read_at: Option<Instant>,
    /// Counts invalidations, so a read that began before one is not trusted.
    changes: u64,
}

/// A read of a user's circles under way, from [`ContactsIndex::begin_user_read`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserRead {
    user_id: Uuid,
    /// [`UserEntry::changes`] when the read began.
    changes: u64,
}

/// A read of a circle's members under way.
struct Reading {
    /// Matches the [`ReadTicket`] handed out, so a late answer for an entry
    /// dropped and made again meanwhile is ignored.
    id: u64,
    /// The circle changed after the read began: the answer may predate the
    /// change, so it is kept but not trusted.
    invalidated: bool,
    /// Callers that need this circle and have no usable list meanwhile.
    waiters: Vec<oneshot::Sender<()>>,
}

/// What the index knows of a circle.
struct CircleEntry {
    /// The members, shared by every watcher list handed out; `None` until read.
    members: Option<Arc<[Uuid]>>,
    /// When the members were read; `None` if never, or invalidated since.
    read_at: Option<Instant>,
    /// The read under way, if any; at most one per circle.
    reading: Option<Reading>,
    /// How many user entries name this circle; at zero it is dropped.
    holders: usize,
}

impl CircleEntry {
    fn new() -> Self {
        Self { members: None, read_at: None, reading: None, holders: 0 }
    }
}

/// A circle read handed to one caller, who reads it and reports back with
/// [`ContactsIndex::finish_read`] (also on failure, or others wait forever).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadTicket {
    pub circle: Circle,
    id: u64,
}

/// What a caller must do to get a user's [`Watchers`].
#[derive(Debug)]
pub enum Plan {
    /// Everything is in hand.
    Ready(Watchers),
    /// The user's own circles are unknown or stale: read them
    /// ([`ContactsIndex::begin_user_read`]), then ask again.
    ReadUser,
    /// Read these circles (this caller is the only one reading them), then ask again.
    Read(Vec<ReadTicket>),
    /// Others are reading circles this user needs: wait for them, then ask again.
    Wait(Vec<oneshot::Receiver<()>>),
}

/// The bookkeeping, without locks or I/O; see the module documentation.
pub struct ContactsIndex {
    /// How long a list read from the database is trusted.
    ttl: Duration,
    /// Online users (with a presence actor that loaded them).
    users: HashMap<Uuid, UserEntry>,
    /// Circles named by at least one entry of `users`.
    circles: HashMap<Circle, CircleEntry>,
    /// Source of [`Reading::id`].
    next_read: u64,
}

impl ContactsIndex {
    pub fn new(ttl: Duration) -> Self {
        Self { ttl, users: HashMap::new(), circles: HashMap::new(), next_read: 0 }
    }

    fn fresh(&self, read_at: Option<Instant>, now: Instant) -> bool {
        read_at.is_some_and(|at| now.saturating_duration_since(at) < self.ttl)
    }

    /// What it takes to get `user_id`'s watchers now. Claims the reads it
    /// asks for: the caller must report each with [`Self::finish_read`].
    pub fn plan(&mut self, user_id: Uuid, now: Instant) -> Plan {
        let Some(user) = self.users.get(&user_id) else { return Plan::ReadUser };
        if !self.fresh(user.read_at, now) {
            return Plan::ReadUser;
        }
        let ttl = self.ttl;
        let (mut lists, mut reads, mut waits) = (Vec::with_capacity(user.circles.len()), Vec::new(), Vec::new());
        for circle in user.circles.iter() {
            // Every circle of a user entry has an entry (holders > 0).
            let Some(entry) = self.circles.get_mut(circle) else { continue };
            let fresh = entry.read_at.is_some_and(|at| now.saturating_duration_since(at) < ttl);
            match (&entry.members, &mut entry.reading) {
                (Some(members), _) if fresh => lists.push((*circle, Arc::clone(members))),
                // Merely old and someone is reading it again: the old list will do meanwhile.
                (Some(members), Some(_)) if entry.read_at.is_some() => lists.push((*circle, Arc::clone(members))),
                // Never read, or invalidated: wait for the read under way.
                (_, Some(reading)) => {
                    let (tell, told) = oneshot::channel();
                    reading.waiters.push(tell);
                    waits.push(told);
                }
                (_, None) => {
                    self.next_read += 1;
                    entry.reading = Some(Reading { id: self.next_read, invalidated: false, waiters: Vec::new() });
                    reads.push(ReadTicket { circle: *circle, id: self.next_read });
                }
            }
        }
        if !reads.is_empty() {
            Plan::Read(reads)
        } else if !waits.is_empty() {
            Plan::Wait(waits)
        } else {
            Plan::Ready(Watchers { lists })
        }
    }

    /// The watchers from whatever lists are in hand, fresh or not, claiming
    /// nothing: the fallback when reads keep failing.
    pub fn current(&self, user_id: Uuid) -> Watchers {
        let lists = self
            .users
            .get(&user_id)
            .map(|user| {
                user.circles
                    .iter()
                    .filter_map(|circle| {
                        let members = self.circles.get(circle).and_then(|entry| entry.members.clone());
                        members.map(|members| (*circle, members))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Watchers { lists }
    }

    /// Records a read of a claimed circle: `Some(members)` on success, `None`
    /// on failure (an old list then stays trusted for another TTL, as an
    /// actor kept its old watchers before). Wakes whoever waited for it.
    pub fn finish_read(&mut self, ticket: ReadTicket, members: Option<Vec<Uuid>>, now: Instant) {
        let Some(entry) = self.circles.get_mut(&ticket.circle) else { return };
        if entry.reading.as_ref().is_none_or(|reading| reading.id != ticket.id) {
            return; // the entry was dropped and made again meanwhile
        }
        let Some(reading) = entry.reading.take() else { return };
        match members {
            Some(members) => {
                entry.members = Some(members.into());
                entry.read_at = (!reading.invalidated).then_some(now);
            }
            None if entry.members.is_some() => entry.read_at = Some(now),
            None => {}
        }
        for waiter in reading.waiters {
            let _ = waiter.send(());
        }
    }

    /// Called before reading a user's circles from the database (the
    /// presence actor's start, or [`Plan::ReadUser`]). Makes the user's entry
    /// if there is none yet (no circles, not read), so that an enrollment
    /// while the read runs is noticed by [`Self::finish_user_read`].
    pub fn begin_user_read(&mut self, user_id: Uuid) -> UserRead {
        let user =
            self.users.entry(user_id).or_insert_with(|| UserEntry { circles: Box::new([]), read_at: None, changes: 0 });
        UserRead { user_id, changes: user.changes }
    }

    /// Installs a user's circles as read (`Some`), or records a failed read
    /// (`None`: the circles in hand stay trusted for another TTL, as retrying
    /// on every push would stall the actor each time). Ignored if the user's
    /// entry was released meanwhile (their actor stopped).
    pub fn finish_user_read(&mut self, read: UserRead, circles: Option<Vec<Circle>>, now: Instant) {
        let Some(user) = self.users.get_mut(&read.user_id) else { return };
        // Changed since the read began: what was read may be from before.
        let read_at = (user.changes == read.changes).then_some(now);
        let Some(mut circles) = circles else {
            user.read_at = read_at;
            return;
        };
        circles.sort_unstable();
        circles.dedup();
        let old = std::mem::replace(&mut user.circles, circles.into_boxed_slice());
        user.read_at = read_at;
        // Hold the new circles before letting go of the old, so a circle in
        // both is never dropped in between.
        for circle in user.circles.iter() {
            self.circles.entry(*circle).or_insert_with(CircleEntry::new).holders += 1;
        }
        self.let_go(&old);
    }

    /// A user's circles read in one go (tests).
    #[cfg(test)]
    fn set_circles(&mut self, user_id: Uuid, circles: Vec<Circle>, now: Instant) {
        let read = self.begin_user_read(user_id);
        self.finish_user_read(read, Some(circles), now);
    }

    /// The user's presence actor stopped: forget them, and every circle
    /// nobody online is in any more.
    pub fn release(&mut self, user_id: Uuid) {
        if let Some(old) = self.users.remove(&user_id) {
            self.let_go(&old.circles);
        }
    }

    fn let_go(&mut self, circles: &[Circle]) {
        for circle in circles {
            if let Some(entry) = self.circles.get_mut(circle) {
                entry.holders -= 1;
                if entry.holders == 0 {
                    // Waiters see their sender dropped and ask again.
                    self.circles.remove(circle);
                }
            }
        }
    }

    /// Someone joined or left the circle: read it again before next use.
    pub fn circle_changed(&mut self, circle: Circle) {
        if let Some(entry) = self.circles.get_mut(&circle) {
            entry.read_at = None;
            if let Some(reading) = &mut entry.reading {
                reading.invalidated = true;
            }
        }
    }

    /// The user's circles changed: read them again before next use.
    pub fn user_changed(&mut self, user_id: Uuid) {
        if let Some(user) = self.users.get_mut(&user_id) {
            user.read_at = None;
            user.changes += 1;
        }
    }

    /// Online users known to the index.
    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    /// Circles held for them.
    pub fn circle_count(&self) -> usize {
        self.circles.len()
    }

    /// The members of a circle as held now, if read.
    pub fn members(&self, circle: Circle) -> Option<Arc<[Uuid]>> {
        self.circles.get(&circle).and_then(|entry| entry.members.clone())
    }
}

/// Rounds of reading and waiting before [`Contacts::resolve`] settles for
/// what it has (only reached when reads fail or lists keep being invalidated).
const RESOLVE_ROUNDS: usize = 4;

/// The index shared by every presence actor, and its database reads.
pub struct Contacts {
    index: Mutex<ContactsIndex>,
}

impl Contacts {
    pub fn new(ttl: Duration) -> Self {
        Self { index: Mutex::new(ContactsIndex::new(ttl)) }
    }

    /// The index, locked. Held briefly and never across an await.
    pub fn index(&self) -> MutexGuard<'_, ContactsIndex> {
        self.index.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Someone enrolled in a course: its members change, and so do the
    /// newcomer's circles and (if the course is new to the index entry they
    /// loaded) the instructor's. Nothing is read here; the next push does.
    pub fn enrolled(&self, course_id: Uuid, instructor_id: Option<Uuid>, newcomer: Uuid) {
        let mut index = self.index();
        index.circle_changed(Circle::Course(course_id));
        index.user_changed(newcomer);
        if let Some(instructor_id) = instructor_id {
            index.user_changed(instructor_id);
        }
    }

    /// People joined or left a study group, or it was archived: its member
    /// list and the circles of `people` are read again before next use.
    pub fn group_changed(&self, group_id: Uuid, people: impl IntoIterator<Item = Uuid>) {
        let mut index = self.index();
        index.circle_changed(Circle::Group(group_id));
        for person in people {
            index.user_changed(person);
        }
    }

    /// Carries out a plan that was not [`Plan::Ready`]: reads what it claims,
    /// waits for reads of others, and asks again, until the watchers are in
    /// hand (or, after a few rounds, takes whatever lists there are).
    pub async fn resolve(self: Arc<Self>, db: Db, user_id: Uuid, mut plan: Plan) -> Watchers {
        for _ in 0..RESOLVE_ROUNDS {
            match plan {
                Plan::Ready(watchers) => return watchers,
                Plan::ReadUser => {
                    let began = self.index().begin_user_read(user_id);
                    let circles = match db.read(move |conn| circles_of(conn, user_id)).await {
                        Ok(circles) => Some(circles),
                        Err(err) => {
                            log::error!("presence of {user_id}: cannot read the circles, keeping the old ones: {err}");
                            None
                        }
                    };
                    self.index().finish_user_read(began, circles, Instant::now());
                }
                Plan::Read(tickets) => {
                    // The reads report from inside the closure, so they count
                    // even if this future is dropped (its actor stopping).
                    let reads = ClaimedReads { contacts: Arc::clone(&self), tickets };
                    let _ = db
                        .read(move |conn| {
                            reads.run(conn);
                            Ok(())
                        })
                        .await;
                }
                Plan::Wait(waits) => {
                    for waited in waits {
                        let _ = waited.await; // a dropped sender (entry gone) also means "ask again"
                    }
                }
            }
            plan = self.index().plan(user_id, Instant::now());
        }
        match plan {
            Plan::Ready(watchers) => watchers,
            Plan::Read(tickets) => {
                // Claimed but not to be carried out: release them for others.
                let mut index = self.index();
                for ticket in tickets {
                    index.finish_read(ticket, None, Instant::now());
                }
                index.current(user_id)
            }
            Plan::ReadUser | Plan::Wait(_) => self.index().current(user_id),
        }
    }
}

/// Circle reads claimed by one caller. Each is reported as it completes;
/// any not reported (the pool could not give a connection, so the closure
/// never ran, or a panic) is reported failed on drop, so nobody waits forever.
struct ClaimedReads {
    contacts: Arc<Contacts>,
    tickets: Vec<ReadTicket>,
}

impl ClaimedReads {
    fn run(mut self, conn: &mut AnyConnection) {
        while let Some(ticket) = self.tickets.pop() {
            let members = match members_of(conn, ticket.circle) {
                Ok(members) => Some(members),
                Err(err) => {
                    log::error!("cannot read the members of {:?}: {err}", ticket.circle);
                    None
                }
            };
            self.contacts.index().finish_read(ticket, members, Instant::now());
        }
    }
}

impl Drop for ClaimedReads {
    fn drop(&mut self) {
        if self.tickets.is_empty() {
            return;
        }
        let mut index = self.contacts.index();
        for ticket in self.tickets.drain(..) {
            index.finish_read(ticket, None, Instant::now());
        }
    }
}

/// The circles of a user: the courses they teach or take, their active groups.
pub fn circles_of(conn: &mut AnyConnection, user_id: Uuid) -> AppResult<Vec<Circle>> {
    let id = user_id.to_string();
    let courses: Vec<String> = db::presence::courses_of(conn, &id)?.into_iter().collect();
    let groups: Vec<String> = db::presence::active_groups_of(conn, &id)?.into_iter().collect();
    let courses = db::parse_ids(&courses)?.into_iter().map(Circle::Course);
    Ok(courses.chain(db::parse_ids(&groups)?.into_iter().map(Circle::Group)).collect())
}

/// The members of a circle.
fn members_of(conn: &mut AnyConnection, circle: Circle) -> AppResult<Vec<Uuid>> {
    let ids = match circle {
        Circle::Course(id) => db::presence::course_members(conn, &id.to_string())?,
        Circle::Group(id) => db::presence::group_members(conn, &id.to_string())?,
    };
    db::parse_ids(&ids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    const TTL: Duration = Duration::from_secs(30);

    fn ids(n: usize) -> Vec<Uuid> {
        (0..n).map(|_| Uuid::new_v4()).collect()
    }

    /// Everyone who hears of the user: each member of any circle once, the user excluded.
    fn visited(watchers: &Watchers, user: Uuid) -> Vec<Uuid> {
        let mut seen = HashSet::new();
        let members = watchers.circles().iter().flat_map(|(_, members)| members.iter().copied());
        members.filter(|id| *id != user && seen.insert(*id)).collect()
    }

    fn ready(plan: Plan) -> Watchers {
        match plan {
            Plan::Ready(watchers) => watchers,
            other => panic!("expected ready, got {other:?}"),
        }
    }

    fn reads(plan: Plan) -> Vec<ReadTicket> {
        match plan {
            Plan::Read(tickets) => tickets,
            other => panic!("expected reads, got {other:?}"),
        }
    }

    /// `members` all online, in one course whose list has been read.
    fn course_of(index: &mut ContactsIndex, members: &[Uuid], now: Instant) -> Circle {
        let course = Circle::Course(Uuid::new_v4());
        for member in members {
            index.set_circles(*member, vec![course], now);
        }
        let tickets = reads(index.plan(members[0], now));
        assert_eq!(tickets.len(), 1);
        index.finish_read(tickets[0], Some(members.to_vec()), now);
        course
    }

    #[test]
    fn everyone_in_a_course_shares_one_list_and_never_hears_themselves() {
        let mut index = ContactsIndex::new(TTL);
        let now = Instant::now();
        let people = ids(50);
        course_of(&mut index, &people, now);
        let first = ready(index.plan(people[0], now));
        for person in &people[1..] {
            let watchers = ready(index.plan(*person, now));
            assert!(
                Arc::ptr_eq(&watchers.circles()[0].1, &first.circles()[0].1),
                "one shared list, not a copy per user"
            );
            let heard_by = visited(&watchers, *person);
            assert_eq!(heard_by.len(), people.len() - 1);
            assert!(!heard_by.contains(person));
        }
        assert_eq!(index.circle_count(), 1);
    }

    #[test]
    fn a_join_storm_reads_the_course_once() {
        let mut index = ContactsIndex::new(TTL);
        let now = Instant::now();
        let people = ids(1_000);
        let course = Circle::Course(Uuid::new_v4());
        let (mut claimed, mut waiting) = (Vec::new(), Vec::new());
        for person in &people {
            index.set_circles(*person, vec![course], now);
            match index.plan(*person, now) {
                Plan::Read(tickets) => claimed.extend(tickets),
                Plan::Wait(waits) => waiting.extend(waits),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(claimed.len(), 1, "one read for the whole course");
        assert_eq!(waiting.len(), people.len() - 1);
        index.finish_read(claimed[0], Some(people.clone()), now);
        for mut waiter in waiting {
            assert!(waiter.try_recv().is_ok(), "every waiter is woken");
        }
        for person in &people {
            assert_eq!(visited(&ready(index.plan(*person, now)), *person).len(), people.len() - 1);
        }
    }

    #[test]
    fn someone_in_two_circles_hears_each_person_once() {
        let mut index = ContactsIndex::new(TTL);
        let now = Instant::now();
        let [ada, bob, cy, dee] = [Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4()];
        let (course, group) = (Circle::Course(Uuid::new_v4()), Circle::Group(Uuid::new_v4()));
        index.set_circles(ada, vec![course, group], now);
        let tickets = reads(index.plan(ada, now));
        assert_eq!(tickets.len(), 2);
        for ticket in tickets {
            // Bob is in both; Cy only in the course, Dee only in the group.
            let members = if ticket.circle == course { vec![ada, bob, cy] } else { vec![bob, ada, dee] };
            index.finish_read(ticket, Some(members), now);
        }
        let mut heard_by = visited(&ready(index.plan(ada, now)), ada);
        heard_by.sort();
        let mut expected = vec![bob, cy, dee];
        expected.sort();
        assert_eq!(heard_by, expected, "each once, never Ada herself");
    }

    #[test]
    fn an_enrollment_is_seen_at_once_and_a_read_from_before_it_is_not_trusted() {
        let mut index = ContactsIndex::new(TTL);
        let now = Instant::now();
        let [grace, ada] = [Uuid::new_v4(), Uuid::new_v4()];
        let course = course_of(&mut index, &[grace], now);
        index.set_circles(ada, vec![], now);
        assert!(visited(&ready(index.plan(ada, now)), ada).is_empty(), "strangers so far");

        let Circle::Course(course_id) = course else { unreachable!() };
        let contacts = Contacts { index: Mutex::new(index) };
        contacts.enrolled(course_id, Some(grace), ada);
        let mut index = contacts.index();
        assert!(matches!(index.plan(ada, now), Plan::ReadUser), "Ada's circles are read again");
        assert!(matches!(index.plan(grace, now), Plan::ReadUser), "and the instructor's");
        index.set_circles(ada, vec![course], now);
        index.set_circles(grace, vec![course], now);
        // Grace's publish reads the course again, well within the TTL.
        let ticket = reads(index.plan(grace, now))[0];
        // Someone enrolls again while that read runs: its answer may be too old.
        index.circle_changed(course);
        index.finish_read(ticket, Some(vec![grace, ada]), now);
        let again = reads(index.plan(grace, now))[0];
        index.finish_read(again, Some(vec![grace, ada]), now);
        assert_eq!(visited(&ready(index.plan(grace, now)), grace), vec![ada]);
        assert_eq!(visited(&ready(index.plan(ada, now)), ada), vec![grace]);
    }

    #[test]
    fn an_enrollment_while_the_users_circles_are_read_is_not_lost() {
        let mut index = ContactsIndex::new(TTL);
        let now = Instant::now();
        let ada = Uuid::new_v4();
        let course = Circle::Course(Uuid::new_v4());
        // Ada's actor starts: its read began before she enrolled, and answers after.
        let began = index.begin_user_read(ada);
        index.user_changed(ada);
        index.finish_user_read(began, Some(vec![]), now);
        assert!(matches!(index.plan(ada, now), Plan::ReadUser), "read again, not trusted for the TTL");
        let again = index.begin_user_read(ada);
        index.finish_user_read(again, Some(vec![course]), now);
        assert!(matches!(index.plan(ada, now), Plan::Read(_)), "now she is in the course");
    }

    #[test]
    fn lists_are_read_again_after_the_ttl_while_the_old_one_serves_others() {
        let mut index = ContactsIndex::new(TTL);
        let start = Instant::now();
        let people = ids(3);
        let course = course_of(&mut index, &people, start);
        let within = start + TTL - Duration::from_millis(1);
        assert!(matches!(index.plan(people[0], within), Plan::Ready(_)));
        let later = start + TTL;
        // The users' own circles are old too: read again first.
        for person in &people {
            assert!(matches!(index.plan(*person, later), Plan::ReadUser));
            index.set_circles(*person, vec![course], later);
        }
        let ticket = reads(index.plan(people[0], later))[0];
        let meanwhile = ready(index.plan(people[1], later));
        assert_eq!(visited(&meanwhile, people[1]).len(), 2, "the old list serves while one caller reads");
        index.finish_read(ticket, Some(people[..2].to_vec()), later);
        assert_eq!(visited(&ready(index.plan(people[1], later)), people[1]), vec![people[0]]);
    }

    #[test]
    fn a_failed_read_keeps_the_old_list_and_frees_the_circle_for_the_next_caller() {
        let mut index = ContactsIndex::new(TTL);
        let now = Instant::now();
        let people = ids(2);
        let course = course_of(&mut index, &people, now);
        index.circle_changed(course);
        let ticket = reads(index.plan(people[0], now))[0];
        let Plan::Wait(mut waits) = index.plan(people[1], now) else { panic!("invalidated: wait for the read") };
        index.finish_read(ticket, None, now);
        assert!(waits[0].try_recv().is_ok());
        assert_eq!(visited(&ready(index.plan(people[1], now)), people[1]), vec![people[0]], "the old list");

        // Never read and the read fails: the next caller claims it again.
        let newcomer = Uuid::new_v4();
        let group = Circle::Group(Uuid::new_v4());
        index.set_circles(newcomer, vec![group], now);
        let ticket = reads(index.plan(newcomer, now))[0];
        index.finish_read(ticket, None, now);
        assert_eq!(reads(index.plan(newcomer, now)).len(), 1);
    }

    #[test]
    fn circles_nobody_online_needs_are_dropped() {
        let mut index = ContactsIndex::new(TTL);
        let now = Instant::now();
        let people = ids(3);
        let course = course_of(&mut index, &people, now);
        let group = Circle::Group(Uuid::new_v4());
        index.set_circles(people[0], vec![course, group], now);
        assert_eq!(index.circle_count(), 2);
        index.release(people[1]);
        index.release(people[2]);
        assert!(index.members(course).is_some(), "still needed by the first");
        // The first leaves the group: it goes, the course stays.
        index.set_circles(people[0], vec![course], now);
        assert_eq!(index.circle_count(), 1);
        index.release(people[0]);
        assert_eq!((index.user_count(), index.circle_count()), (0, 0));
        assert!(index.members(course).is_none());
    }

    #[test]
    fn a_late_answer_for_a_dropped_circle_is_ignored() {
        let mut index = ContactsIndex::new(TTL);
        let now = Instant::now();
        let ada = Uuid::new_v4();
        let course = Circle::Course(Uuid::new_v4());
        index.set_circles(ada, vec![course], now);
        let stale = reads(index.plan(ada, now))[0];
        index.release(ada);
        index.set_circles(ada, vec![course], now);
        let fresh = reads(index.plan(ada, now))[0];
        index.finish_read(stale, Some(vec![ada, Uuid::new_v4()]), now);
        assert!(index.members(course).is_none(), "not the answer of the dropped entry's read");
        index.finish_read(fresh, Some(vec![ada]), now);
        assert_eq!(index.members(course).map(|m| m.len()), Some(1));
    }
}
