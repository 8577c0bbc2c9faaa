//! One actor per instructor's office hours: it owns the queue
//! (`domain::office_hours::queue`), the schedule and the open/close state,
//! stores every change through the persistence actor before it answers
//! (an ack means stored), and tells each person what changed for them:
//! waiting students their new standing, the instructor the queue
//! (coalesced), watchers the status (coalesced).
//!
//! Writes are `AtomicResponse`s: the actor handles nothing else until a
//! write is stored and applied, so the queue and the rows never disagree.
//! A join, the one write that comes in storms, is applied first and taken
//! back if its write fails, so a storm's inserts share batches.
//!
//! The private rooms are a room kind (`room`); this actor opens and closes
//! them. A sweep every `OFFICE_HOURS_SWEEP_SECS` opens and closes the
//! queue on the schedule, drops absent students and completes idle rooms.

pub mod calls;
pub mod commands;
pub mod room;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use actix::prelude::*;
use chrono::{DateTime, Duration, Utc};
use diesel::QueryResult;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::db::models::{
    AnnouncementRow, ChatRoomRow, NotificationRow, OfficeHoursRoomRow, OfficeHoursStateRow, QueueEntryRow,
};
use crate::db::{self, to_db_time, AnyConnection};
use crate::domain::office_hours::queue::{not_waiting, OfficeQueue, QueueEntry, QueueRules};
use crate::domain::office_hours::schedule::{self, ManualOverride, Schedule, Slot, SlotMode};
use crate::domain::office_hours::EndReason;
use crate::domain::rate_limit::{Coalescer, Offer};
use crate::domain::room::RoomType;
use crate::domain::Role;
use crate::engine::hub::{Audience, SocketRef, Topic};
use crate::engine::registry::Registry;
use crate::error::{AppError, AppResult};
use crate::protocol::office_hours::{self as frames, AnnouncementView, EntryView, QueueView, SlotView, StatusView};
use room::{room_changed, RoomChanged};

/// Least time between two `queue-updated` or `office-hours-status` pushes.
const NEWS_GAP: StdDuration = StdDuration::from_millis(250);
/// Most bytes of `queue-updated` an instructor's socket is sent a second: a
/// 1,000-student queue (~450 KB a list) is refreshed about every 1.8 s,
/// well inside `WS_OUTBOUND_BYTES` for a client on a modest link.
const QUEUE_NEWS_BYTES_PER_SEC: usize = 256 * 1024;
/// Sweeps an actor with nothing to look after stays for before it stops.
const IDLE_SWEEPS_BEFORE_STOP: u32 = 12;

/// The actor of an instructor's office hours, started if needed.
pub fn office_of(registry: &Arc<Registry>, instructor_id: Uuid) -> Addr<OfficeHoursActor> {
    registry.office_hours.get_or_spawn(instructor_id, &registry.deps.metrics, || {
        let registry = Arc::clone(registry);
        Supervisor::start_in_arbiter(&registry.next_arbiter(), move |_| OfficeHoursActor::new(instructor_id, registry))
    })
}

/// The queue's rules from the configuration.
fn rules(config: &crate::config::Config) -> QueueRules {
    QueueRules {
        defer_places: config.office_hours_defer_places.max(1),
        default_help: Duration::minutes(config.office_hours_default_help_minutes.max(1)),
        absent_grace: Duration::seconds(config.office_hours_absent_grace_secs.max(1)),
        room_idle: Duration::minutes(config.office_hours_room_idle_minutes.max(1)),
    }
}

/// An instructor's office hours, as loaded.
struct Office {
    name: String,
    schedule: Schedule,
    manual: Option<ManualOverride>,
    /// When the queue last opened (announcements are shown from then).
    opened_at: Option<DateTime<Utc>>,
    /// Whether the queue was open at the last look (to see it close).
    was_open: bool,
    queue: OfficeQueue,
    drop_in_room: Option<Uuid>,
    announcement: Option<AnnouncementView>,
}

pub struct OfficeHoursActor {
    instructor_id: Uuid,
    registry: Arc<Registry>,
    /// None until loaded, or when the user is not an instructor.
    office: Option<Office>,
    queue_news: Coalescer,
    status_news: Coalescer,
    idle_sweeps: u32,
    /// Waiting students with a socket on another node, as the last sweep
    /// found (several nodes only): they are not absent.
    online_elsewhere: HashSet<Uuid>,
}

/// What the database holds for an instructor's office hours.
struct Stored {
    name: String,
    slots: Vec<Slot>,
    state: Option<OfficeHoursStateRow>,
    entries: Vec<(QueueEntryRow, String)>,
    help_times: Vec<i64>,
    /// The last message (or admission) of each open private room.
    room_activity: Vec<(String, DateTime<Utc>)>,
    drop_in_room: Option<Uuid>,
    announcements: Vec<AnnouncementRow>,
}

fn read_stored(conn: &mut AnyConnection, instructor_id: Uuid) -> AppResult<Option<Stored>> {
    let id = instructor_id.to_string();
    let Some(user) = db::users::find(conn, &id)? else { return Ok(None) };
    if !Role::parse(&user.role).is_some_and(Role::teaches) {
        return Ok(None);
    }
    let slots = db::office_hours::slots(conn, &id)?.iter().filter_map(db::office_hours::to_slot).collect();
    let entries = db::office_hours::open_entries(conn, &id)?;
    let help_times = db::office_hours::recent_help_times(conn, &id, 10)?
        .into_iter()
        .map(|(admitted, completed)| (completed - admitted).num_seconds())
        .collect();
    let mut room_activity = Vec::new();
    for (entry, _) in entries.iter().filter(|(entry, _)| entry.status == "admitted") {
        let (Some(room), Some(admitted)) = (&entry.chat_room_id, entry.admitted_at) else { continue };
        let last = db::office_hours::last_message_at(conn, room)?.map_or(admitted, |at| at.max(admitted));
        room_activity.push((room.clone(), db::from_db_time(last)));
    }
    let drop_in_room = match db::office_hours::open_drop_in_room(conn, &id)? {
        Some(room) => Some(db::parse_id(&room.room_id).map_err(AppError::internal)?),
        None => None,
    };
    let state = db::office_hours::state(conn, &id)?;
    let since = state.as_ref().and_then(|state| state.opened_at).unwrap_or_default();
    let announcements = db::office_hours::latest_announcement(conn, &id, since)?.into_iter().collect();
    Ok(Some(Stored { name: user.name, slots, state, entries, help_times, room_activity, drop_in_room, announcements }))
}

fn to_entry(row: &QueueEntryRow, name: String) -> AppResult<QueueEntry> {
    Ok(QueueEntry {
        id: db::parse_id(&row.id).map_err(AppError::internal)?,
        student_id: db::parse_id(&row.student_id).map_err(AppError::internal)?,
        student_name: name,
        question: row.question.clone(),
        topic: row.topic.clone(),
        joined_at: db::from_db_time(row.joined_queue_at),
        deferred: row.deferred,
        rank: row.queue_rank,
        admitted_at: row.admitted_at.map(db::from_db_time),
        room_id: row.chat_room_id.as_deref().map(db::parse_id).transpose().map_err(AppError::internal)?,
    })
}

impl OfficeHoursActor {
    pub fn new(instructor_id: Uuid, registry: Arc<Registry>) -> Self {
        Self {
            instructor_id,
            registry,
            office: None,
            queue_news: Coalescer::new(NEWS_GAP),
            status_news: Coalescer::new(NEWS_GAP),
            idle_sweeps: 0,
            online_elsewhere: HashSet::new(),
        }
    }

    fn now(&self) -> DateTime<Utc> {
        self.registry.deps.clock.now()
    }

    fn office(&self) -> AppResult<&Office> {
        self.office.as_ref().ok_or_else(|| AppError::not_found("instructor"))
    }

    fn office_mut(&mut self) -> AppResult<&mut Office> {
        self.office.as_mut().ok_or_else(|| AppError::not_found("instructor"))
    }

    fn load(&mut self, ctx: &mut Context<Self>) {
        let (db, instructor_id) = (self.registry.deps.db.clone(), self.instructor_id);
        let rules = rules(&self.registry.deps.config);
        let read = async move { db.read(move |conn| read_stored(conn, instructor_id)).await };
        ctx.wait(read.into_actor(self).map(move |stored, act, ctx| match stored {
            Ok(Some(stored)) => {
                if let Err(err) = act.install(stored, rules) {
                    log::error!("office hours of {instructor_id}: {err}");
                    ctx.stop();
                }
            }
            Ok(None) => {
                act.registry.office_hours.remove(instructor_id, &ctx.address());
                ctx.stop();
            }
            Err(err) => {
                log::error!("cannot load the office hours of {instructor_id}: {err}");
                act.registry.office_hours.remove(instructor_id, &ctx.address());
                ctx.stop();
            }
        }));
    }

    fn install(&mut self, stored: Stored, rules: QueueRules) -> AppResult<()> {
        let now = self.now();
        let mut queue = OfficeQueue::new(rules);
        for secs in stored.help_times {
            queue.record_help_time(secs);
        }
        let activity: std::collections::HashMap<String, DateTime<Utc>> = stored.room_activity.into_iter().collect();
        for (row, name) in stored.entries {
            let last = row.chat_room_id.as_ref().and_then(|room| activity.get(room)).copied().unwrap_or(now);
            let entry = to_entry(&row, name)?;
            match row.status.as_str() {
                "waiting" => queue.restore_waiting(entry),
                _ => queue.restore_admitted(entry, last),
            }
        }
        queue.settle();
        let schedule = Schedule::new(stored.slots);
        let manual = stored.state.as_ref().and_then(|state| {
            state.manual_open.map(|open| ManualOverride { open, until: state.manual_until.map(db::from_db_time) })
        });
        let was_open = schedule::queue_open(&schedule, manual, now);
        let announcement = stored
            .announcements
            .into_iter()
            .next()
            .map(|row| AnnouncementView { message: row.message, sent_at: db::from_db_time(row.created_at) });
        self.office = Some(Office {
            name: stored.name,
            schedule,
            manual,
            opened_at: stored.state.and_then(|state| state.opened_at).map(db::from_db_time),
            was_open,
            queue,
            drop_in_room: stored.drop_in_room,
            announcement,
        });
        Ok(())
    }

    // ---- views ----

    fn entry_view(&self, entry: &QueueEntry, status: &str, ended: Option<(EndReason, DateTime<Utc>)>) -> EntryView {
        let office = self.office.as_ref();
        let standing =
            if status == "waiting" { office.and_then(|office| office.queue.standing_of(entry.id)) } else { None };
        EntryView {
            id: entry.id,
            instructor_id: self.instructor_id,
            instructor_name: office.map(|office| office.name.clone()).unwrap_or_default(),
            student_id: entry.student_id,
            student_name: entry.student_name.clone(),
            status: status.to_string(),
            question: entry.question.clone(),
            topic: entry.topic.clone(),
            position: standing.map(|s| s.position),
            estimated_wait_sec: standing.map(|s| s.estimated_wait_secs),
            joined_queue_at: entry.joined_at,
            admitted_at: entry.admitted_at,
            completed_at: ended.map(|(_, at)| at),
            room_id: entry.room_id,
            deferred: entry.deferred,
            end_reason: ended.map(|(reason, _)| reason.as_str().to_string()),
        }
    }

    /// An open entry as it stands now.
    fn open_view(&self, entry: &QueueEntry) -> EntryView {
        let status = if entry.admitted_at.is_some() { "admitted" } else { "waiting" };
        self.entry_view(entry, status, None)
    }

    fn is_open(&self, office: &Office, now: DateTime<Utc>) -> bool {
        schedule::queue_open(&office.schedule, office.manual, now)
    }

    fn queue_view(&self) -> AppResult<QueueView> {
        let office = self.office()?;
        let entries = office.queue.waiting().chain(office.queue.admitted()).map(|e| self.open_view(e)).collect();
        Ok(QueueView { is_open: self.is_open(office, self.now()), entries })
    }

    fn status_view(&self, viewer: Option<Uuid>) -> AppResult<StatusView> {
        let office = self.office()?;
        let now = self.now();
        let slot_view = |slot: &Slot| slot_view(self.instructor_id, slot);
        let running = office.schedule.running(now).map(|(slot, _)| slot_view(slot));
        Ok(StatusView {
            instructor_id: self.instructor_id,
            name: office.name.clone(),
            slots: office.schedule.slots.iter().map(slot_view).collect(),
            is_open: self.is_open(office, now),
            next_open_at: office.schedule.next_start_after(now),
            waiting_count: office.queue.waiting_count(),
            estimated_wait_sec: office.queue.estimate_for_newcomer(),
            current_slot: running,
            drop_in_room_id: office.drop_in_room,
            announcement: office.announcement.clone(),
            my_entry: viewer.and_then(|viewer| office.queue.open_entry_of(viewer)).map(|e| self.open_view(e)),
        })
    }

    // ---- telling people ----

    /// After any change: each waiting student whose standing changed hears
    /// it; the instructor and watchers get the news (coalesced).
    fn changed(&mut self, ctx: &mut Context<Self>) {
        let instructor_id = self.instructor_id;
        let Some(office) = self.office.as_mut() else { return };
        let broker = &self.registry.broker;
        for news in office.queue.news() {
            let (position, estimate) = (news.standing.position, news.standing.estimated_wait_secs);
            let frame = frames::queue_position(news.entry_id, instructor_id, position, estimate);
            broker.publish(Topic::User(news.student_id), &frame, Audience::Everyone);
            if news.up_soon {
                let frame = frames::up_soon(news.entry_id, instructor_id, position);
                broker.publish(Topic::User(news.student_id), &frame, Audience::Everyone);
            }
        }
        self.offer_news(News::Queue, ctx);
        self.offer_news(News::Status, ctx);
    }

    fn offer_news(&mut self, news: News, ctx: &mut Context<Self>) {
        let coalescer = match news {
            News::Queue => &mut self.queue_news,
            News::Status => {
                if !self.registry.broker.has_subscribers(Topic::OfficeHours(self.instructor_id)) {
                    return;
                }
                &mut self.status_news
            }
        };
        match coalescer.offer(Instant::now()) {
            Offer::SendNow => self.push_news(news),
            Offer::SendAfter(wait) => {
                ctx.run_later(wait, move |act, _| act.push_news(news));
            }
            Offer::AlreadyDue => {}
        }
    }

    fn push_news(&mut self, news: News) {
        match news {
            News::Queue => {
                let Ok(queue) = self.queue_view() else { return };
                let frame = frames::queue_updated(self.instructor_id, &queue);
                // A long queue's list is big (~450 bytes an entry): sent less often.
                self.queue_news.sent_sized(Instant::now(), frame.len(), QUEUE_NEWS_BYTES_PER_SEC);
                self.registry.broker.publish(Topic::User(self.instructor_id), &frame, Audience::Everyone);
            }
            News::Status => {
                self.status_news.sent(Instant::now());
                let Ok(status) = self.status_view(None) else { return };
                let frame = frames::status(&status);
                self.registry.broker.publish(Topic::OfficeHours(self.instructor_id), &frame, Audience::Everyone);
            }
        }
    }

    fn tell(&self, user_id: Uuid, frame: &bytestring::ByteString) {
        self.registry.broker.publish(Topic::User(user_id), frame, Audience::Everyone);
    }

    // ---- storing ----

    /// Stores `write`, then (the mailbox waiting meanwhile) applies the
    /// change with `apply`.
    fn store<T, R, W, A>(&mut self, write: W, apply: A) -> ResponseActFuture<Self, AppResult<R>>
    where
        T: Send + 'static,
        R: 'static,
        W: Fn(&mut AnyConnection) -> QueryResult<T> + Send + 'static,
        A: FnOnce(&mut Self, &mut Context<Self>, T) -> AppResult<R> + 'static,
    {
        let persistence = self.registry.deps.persistence.clone();
        let stored = async move { persistence.write(write).await };
        Box::pin(stored.into_actor(self).map(move |stored, act, ctx| match stored {
            Ok(value) => apply(act, ctx, value),
            Err(err) => Err(err.into()),
        }))
    }

    /// Ends waiting entries (stored first): they leave the queue, and
    /// unless they left themselves, their students hear why.
    fn end_waiting(&mut self, ids: Vec<Uuid>, reason: EndReason) -> ResponseActFuture<Self, AppResult<Vec<EntryView>>> {
        let at = self.now();
        let rows: Vec<String> = ids.iter().map(Uuid::to_string).collect();
        let write = move |conn: &mut AnyConnection| {
            db::office_hours::finish(conn, &rows, reason.status(), reason.as_str(), to_db_time(at), None)
        };
        self.store(write, move |act, ctx, ()| {
            let office = act.office_mut()?;
            let ended: Vec<QueueEntry> = ids.iter().filter_map(|id| office.queue.remove_waiting(*id).ok()).collect();
            let views: Vec<EntryView> =
                ended.iter().map(|entry| act.entry_view(entry, reason.status(), Some((reason, at)))).collect();
            if reason != EndReason::Left {
                for entry in &ended {
                    act.tell(entry.student_id, &frames::removed(entry.id, act.instructor_id, reason.as_str()));
                }
            }
            act.changed(ctx);
            Ok(views)
        })
    }

    /// Ends admitted entries (stored first): their students leave the room,
    /// which closes with its last student.
    fn end_admitted(
        &mut self,
        ids: Vec<Uuid>,
        reason: EndReason,
    ) -> ResponseActFuture<Self, AppResult<Vec<EntryView>>> {
        let at = self.now();
        let Ok(office) = self.office() else { return Box::pin(fut::ready(Err(not_loaded()))) };
        // Rooms that lose all their students with these.
        let mut closing: Vec<Uuid> = Vec::new();
        for id in &ids {
            let Some(room) = office.queue.entry(*id).and_then(|entry| entry.room_id) else { continue };
            if !closing.contains(&room)
                && office.queue.admitted().filter(|e| e.room_id == Some(room)).all(|e| ids.contains(&e.id))
            {
                closing.push(room);
            }
        }
        let rows: Vec<String> = ids.iter().map(Uuid::to_string).collect();
        let closing_rows: Vec<String> = closing.iter().map(Uuid::to_string).collect();
        let write = move |conn: &mut AnyConnection| {
            db::office_hours::finish(conn, &rows, reason.status(), reason.as_str(), to_db_time(at), None)?;
            for room in &closing_rows {
                db::office_hours::close_room_now(conn, room, to_db_time(at))?;
            }
            Ok(())
        };
        self.store(write, move |act, ctx, ()| {
            let helped = reason == EndReason::Completed;
            let office = act.office_mut()?;
            let finished: Vec<_> =
                ids.iter().filter_map(|id| office.queue.finish_admitted(*id, at, helped).ok()).collect();
            let mut views = Vec::new();
            for done in finished {
                act.tell(
                    done.entry.student_id,
                    &frames::completed(done.entry.id, act.instructor_id, done.room_id, reason.as_str()),
                );
                let change =
                    if done.room_closed { RoomChanged::Closed } else { RoomChanged::StudentOut(done.entry.student_id) };
                room_changed(&act.registry, done.room_id, change);
                views.push(act.entry_view(&done.entry, reason.status(), Some((reason, at))));
            }
            act.changed(ctx);
            Ok(views)
        })
    }

    /// The state row as it is to be stored (None before the office is loaded).
    fn state_row(&self) -> Option<OfficeHoursStateRow> {
        let office = self.office.as_ref()?;
        Some(OfficeHoursStateRow {
            instructor_id: self.instructor_id.to_string(),
            manual_open: office.manual.map(|manual| manual.open),
            manual_until: office.manual.and_then(|manual| manual.until).map(to_db_time),
            opened_at: office.opened_at.map(to_db_time),
            updated_at: to_db_time(self.now()),
        })
    }

    // ---- the sweep ----

    fn sweep(&mut self, ctx: &mut Context<Self>) {
        let now = self.now();
        let Some(office) = self.office.as_ref() else { return };
        let open = self.is_open(office, now);
        let was_open = office.was_open;
        if was_open != open {
            self.turned(open, now, ctx);
        }
        // Students with no socket for the grace period. Those on other nodes
        // are as the previous sweep found them: the grace is longer than a sweep.
        let hub = Arc::clone(&self.registry.hub);
        let Some(office) = self.office.as_mut() else { return };
        let elsewhere = &self.online_elsewhere;
        let absent =
            office.queue.absent(now, |student| !hub.sockets_of(student).is_empty() || elsewhere.contains(&student));
        self.look_elsewhere(ctx);
        if !absent.is_empty() {
            ctx.wait(self.end_waiting(absent, EndReason::Absent).map(|_, _, _| ()));
        }
        // Private rooms without a message for the idle time.
        let Some(office) = self.office.as_ref() else { return };
        let idle: Vec<Uuid> = office
            .queue
            .idle_rooms(now)
            .into_iter()
            .flat_map(|room| office.queue.admitted().filter(move |e| e.room_id == Some(room)).map(|e| e.id))
            .collect();
        if !idle.is_empty() {
            ctx.wait(self.end_admitted(idle, EndReason::Inactive).map(|_, _, _| ()));
        }
        self.keep_drop_in_room(now, ctx);
        self.stop_when_idle(ctx);
    }

    /// Asks the other nodes which waiting students without a socket here
    /// have one there (several nodes only); the actor waits for the answer
    /// (a second at most), so the next sweep has it.
    fn look_elsewhere(&mut self, ctx: &mut Context<Self>) {
        let (Some(cluster), Some(office)) = (self.registry.cluster.clone(), self.office.as_ref()) else { return };
        let hub = &self.registry.hub;
        let students: Vec<Uuid> = office
            .queue
            .waiting()
            .map(|entry| entry.student_id)
            .filter(|student| hub.sockets_of(*student).is_empty())
            .collect();
        ctx.wait(
            async move { crate::engine::cluster::calls::online_elsewhere(&cluster, students).await }
                .into_actor(self)
                .map(|found, act, _| act.online_elsewhere = found),
        );
    }

    /// The queue opened or closed by the schedule (or a manual change ran out).
    fn turned(&mut self, open: bool, now: DateTime<Utc>, ctx: &mut Context<Self>) {
        let Some(office) = self.office.as_mut() else { return };
        office.was_open = open;
        if open {
            office.opened_at = Some(now);
            office.announcement = None;
            let Some(row) = self.state_row() else { return };
            self.registry
                .deps
                .persistence
                .write_in_background("office hours state", move |conn| db::office_hours::store_state(conn, &row));
            self.changed(ctx);
        } else {
            let waiting: Vec<Uuid> = office.queue.waiting().map(|entry| entry.id).collect();
            if waiting.is_empty() {
                self.changed(ctx);
            } else {
                ctx.wait(self.end_waiting(waiting, EndReason::Closed).map(|_, _, _| ()));
            }
        }
    }

    /// While a drop-in slot runs, its room is open; after, it closes.
    fn keep_drop_in_room(&mut self, now: DateTime<Utc>, ctx: &mut Context<Self>) {
        let Some(office) = self.office.as_ref() else { return };
        let running = office.schedule.running(now).filter(|(slot, _)| slot.mode == SlotMode::DropIn);
        match (running, office.drop_in_room) {
            (Some((slot, _)), None) => {
                let room_id = Uuid::new_v4();
                let chat_room = ChatRoomRow {
                    id: room_id.to_string(),
                    name: format!("Drop-in office hours: {}", office.name),
                    room_type: RoomType::OfficeHours.as_str().into(),
                    participants_json: "[]".into(),
                    is_active: true,
                    created_at: to_db_time(now),
                };
                let room = OfficeHoursRoomRow {
                    room_id: room_id.to_string(),
                    instructor_id: self.instructor_id.to_string(),
                    mode: "drop-in".into(),
                    slot_id: Some(slot.id.to_string()),
                    opened_at: to_db_time(now),
                    closed_at: None,
                };
                let write = move |conn: &mut AnyConnection| db::office_hours::open_room(conn, &chat_room, &room);
                ctx.wait(
                    self.store(write, move |act, ctx, ()| {
                        act.office_mut()?.drop_in_room = Some(room_id);
                        act.changed(ctx);
                        Ok(())
                    })
                    .map(|_: AppResult<()>, _, _| ()),
                );
            }
            (None, Some(room_id)) => {
                let write = move |conn: &mut AnyConnection| {
                    db::office_hours::close_room_now(conn, &room_id.to_string(), to_db_time(now))
                };
                ctx.wait(
                    self.store(write, move |act, ctx, ()| {
                        act.office_mut()?.drop_in_room = None;
                        room_changed(&act.registry, room_id, RoomChanged::Closed);
                        act.changed(ctx);
                        Ok(())
                    })
                    .map(|_: AppResult<()>, _, _| ()),
                );
            }
            _ => {}
        }
    }

    /// Stops after a while with nothing to look after: closed, nobody
    /// waiting or in a room, nobody watching on any node.
    fn stop_when_idle(&mut self, ctx: &mut Context<Self>) {
        if self.office.is_none() {
            return; // not loaded yet
        }
        if self.busy_here() {
            self.idle_sweeps = 0;
            return;
        }
        let watched = self.registry.broker.is_watched(Topic::OfficeHours(self.instructor_id));
        ctx.spawn(watched.into_actor(self).map(|watched, act, ctx| {
            // Asked again: the queue may have opened while the answer came.
            act.idle_sweeps = if watched || act.busy_here() { 0 } else { act.idle_sweeps + 1 };
            if act.idle_sweeps >= IDLE_SWEEPS_BEFORE_STOP {
                act.retire(ctx);
            }
        }));
    }

    /// Open, or someone waiting or in a room.
    fn busy_here(&self) -> bool {
        self.office.as_ref().is_some_and(|office| {
            office.was_open
                || office.queue.waiting_count() > 0
                || office.queue.open_rooms() > 0
                || office.drop_in_room.is_some()
        })
    }

    fn retire(&mut self, ctx: &mut Context<Self>) {
        self.registry.office_hours.remove(self.instructor_id, &ctx.address());
        ctx.stop();
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum News {
    /// `queue-updated` to the instructor.
    Queue,
    /// `office-hours-status` to watchers.
    Status,
}

fn not_loaded() -> AppError {
    AppError::not_found("instructor")
}

fn queue_closed() -> AppError {
    AppError::conflict("queue_closed", "This instructor's office hours queue is closed now.")
}

pub fn slot_view(instructor_id: Uuid, slot: &Slot) -> SlotView {
    SlotView {
        id: slot.id,
        instructor_id,
        day_of_week: slot.day_of_week,
        start_time: schedule::format_time(slot.start),
        end_time: schedule::format_time(slot.end),
        time_zone: slot.zone.name().to_string(),
        mode: slot.mode.as_str().to_string(),
        is_active: slot.active,
    }
}

impl Actor for OfficeHoursActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.load(ctx);
        let every = StdDuration::from_secs(self.registry.deps.config.office_hours_sweep_secs.max(1));
        ctx.run_interval(every, |act, ctx| act.sweep(ctx));
    }
}

impl actix::Supervised for OfficeHoursActor {
    fn restarting(&mut self, _: &mut Context<Self>) {
        let registry = Arc::clone(&self.registry);
        *self = OfficeHoursActor::new(self.instructor_id, registry);
    }
}

// ---- messages ----

/// A student asks for a place (the caller checked they are the instructor's student).
#[derive(Message, Serialize, Deserialize)]
#[rtype(result = "AppResult<EntryView>")]
pub struct JoinQueue {
    pub student_id: Uuid,
    pub student_name: String,
    pub question: Option<String>,
    pub topic: Option<String>,
}

impl Handler<JoinQueue> for OfficeHoursActor {
    type Result = ResponseActFuture<Self, AppResult<EntryView>>;

    fn handle(&mut self, join: JoinQueue, ctx: &mut Context<Self>) -> Self::Result {
        let now = self.now();
        let entry = match self.accept_arrival(join, now) {
            Ok(entry) => entry,
            Err(err) => return Box::pin(fut::ready(Err(err))),
        };
        let view = self.open_view(&entry);
        self.tell(self.instructor_id, &frames::student_joined(&view));
        self.changed(ctx);
        let row = QueueEntryRow {
            id: entry.id.to_string(),
            instructor_id: self.instructor_id.to_string(),
            student_id: entry.student_id.to_string(),
            status: "waiting".into(),
            question: entry.question.clone(),
            chat_room_id: None,
            joined_queue_at: to_db_time(now),
            admitted_at: None,
            completed_at: None,
            topic: entry.topic.clone(),
            queue_rank: entry.rank,
            deferred: false,
            end_reason: None,
        };
        // Applied already, so that a storm's inserts share batches; taken
        // back if the write fails.
        let persistence = self.registry.deps.persistence.clone();
        let stored = async move { persistence.write(move |conn| db::office_hours::insert_entry(conn, &row)).await };
        Box::pin(stored.into_actor(self).map(move |stored, act, ctx| match stored {
            Ok(()) => Ok(view),
            Err(err) => {
                if let Some(office) = act.office.as_mut() {
                    let _ = office.queue.remove_waiting(entry.id);
                }
                act.changed(ctx);
                Err(err.into())
            }
        }))
    }
}

impl OfficeHoursActor {
    fn accept_arrival(&mut self, join: JoinQueue, now: DateTime<Utc>) -> AppResult<QueueEntry> {
        let office = self.office()?;
        if !self.is_open(office, now) {
            return Err(queue_closed());
        }
        office.queue.check_join(join.student_id)?;
        let entry = QueueEntry {
            id: Uuid::new_v4(),
            student_id: join.student_id,
            student_name: join.student_name,
            question: join.question,
            topic: join.topic,
            joined_at: now,
            deferred: false,
            rank: office.queue.next_rank(),
            admitted_at: None,
            room_id: None,
        };
        self.office_mut()?.queue.join(entry.clone());
        Ok(entry)
    }
}

/// A student leaves the queue (the caller checked the entry is theirs).
#[derive(Message, Serialize, Deserialize)]
#[rtype(result = "AppResult<EntryView>")]
pub struct LeaveQueue {
    pub entry_id: Uuid,
}

impl Handler<LeaveQueue> for OfficeHoursActor {
    type Result = AtomicResponse<Self, AppResult<EntryView>>;

    fn handle(&mut self, leave: LeaveQueue, _: &mut Context<Self>) -> Self::Result {
        if let Err(err) = self.office().and_then(|office| office.queue.check_waiting(leave.entry_id).map(|_| ())) {
            return AtomicResponse::new(Box::pin(fut::ready(Err(err))));
        }
        first(self.end_waiting(vec![leave.entry_id], EndReason::Left))
    }
}

/// A student defers their turn once.
#[derive(Message, Serialize, Deserialize)]
#[rtype(result = "AppResult<EntryView>")]
pub struct DeferTurn {
    pub entry_id: Uuid,
}

impl Handler<DeferTurn> for OfficeHoursActor {
    type Result = AtomicResponse<Self, AppResult<EntryView>>;

    fn handle(&mut self, defer: DeferTurn, _: &mut Context<Self>) -> Self::Result {
        let entry_id = defer.entry_id;
        let ranks = match self.office().and_then(|office| office.queue.check_defer(entry_id)) {
            Ok(ranks) => ranks,
            Err(err) => return AtomicResponse::new(Box::pin(fut::ready(Err(err)))),
        };
        let rows: Vec<(String, i64)> = ranks.iter().map(|(id, rank)| (id.to_string(), *rank)).collect();
        let write = move |conn: &mut AnyConnection| db::office_hours::defer(conn, &entry_id.to_string(), &rows);
        AtomicResponse::new(self.store(write, move |act, ctx, ()| {
            act.office_mut()?.queue.defer(entry_id, &ranks);
            act.changed(ctx);
            let office = act.office()?;
            let entry = office.queue.entry(entry_id).ok_or_else(not_waiting)?;
            Ok(act.open_view(entry))
        }))
    }
}

/// The instructor admits one or several waiting students into one new room.
#[derive(Message, Serialize, Deserialize)]
#[rtype(result = "AppResult<(Uuid, Vec<EntryView>)>")]
pub struct Admit {
    pub entry_ids: Vec<Uuid>,
}

impl Handler<Admit> for OfficeHoursActor {
    type Result = AtomicResponse<Self, AppResult<(Uuid, Vec<EntryView>)>>;

    fn handle(&mut self, admit: Admit, ctx: &mut Context<Self>) -> Self::Result {
        let now = self.now();
        let office = match self.office() {
            Ok(office) => office,
            Err(err) => return AtomicResponse::new(Box::pin(fut::ready(Err(err)))),
        };
        if let Err(err) = office.queue.check_admit(&admit.entry_ids) {
            return AtomicResponse::new(Box::pin(fut::ready(Err(err))));
        }
        let room_id = Uuid::new_v4();
        let students: Vec<QueueEntry> =
            admit.entry_ids.iter().filter_map(|id| office.queue.entry(*id)).cloned().collect();
        let names: Vec<&str> = students.iter().map(|entry| entry.student_name.as_str()).collect();
        let chat_room = ChatRoomRow {
            id: room_id.to_string(),
            name: format!("Office hours: {} with {}", office.name, names.join(", ")),
            room_type: RoomType::OfficeHours.as_str().into(),
            participants_json: "[]".into(),
            is_active: true,
            created_at: to_db_time(now),
        };
        let room = OfficeHoursRoomRow {
            room_id: room_id.to_string(),
            instructor_id: self.instructor_id.to_string(),
            mode: "private".into(),
            slot_id: None,
            opened_at: to_db_time(now),
            closed_at: None,
        };
        let notifications: Vec<NotificationRow> = students
            .iter()
            .map(|entry| NotificationRow {
                id: Uuid::new_v4().to_string(),
                user_id: entry.student_id.to_string(),
                kind: "office_hours_admitted".into(),
                title: format!("{} is ready for you", office.name),
                body: "You were admitted to office hours: open the private room.".into(),
                data_json: Some(
                    serde_json::json!({ "queueId": entry.id, "roomId": room_id, "instructorId": self.instructor_id })
                        .to_string(),
                ),
                dedupe_key: Some(format!("office_hours_admitted:{}", entry.id)),
                created_at: to_db_time(now),
                read_at: None,
            })
            .collect();
        let ids: Vec<String> = admit.entry_ids.iter().map(Uuid::to_string).collect();
        let write = move |conn: &mut AnyConnection| {
            let admitted = db::office_hours::admit(conn, &chat_room, &room, &ids, to_db_time(now))?;
            if admitted {
                db::notifications::insert_new(conn, &notifications)?;
            }
            Ok(admitted)
        };
        // Applied before the write, so those still waiting hear their new
        // places while it commits (most of an admission's time); taken back,
        // and their places told again, if it fails. The admitted students
        // hear of it, and the instructor gets the ack, once it is stored.
        let entries = match self.office_mut() {
            Ok(office) => office.queue.admit(&admit.entry_ids, room_id, now),
            Err(err) => return AtomicResponse::new(Box::pin(fut::ready(Err(err)))),
        };
        self.changed(ctx);
        let persistence = self.registry.deps.persistence.clone();
        let stored = async move { persistence.write(write).await };
        AtomicResponse::new(Box::pin(stored.into_actor(self).map(move |stored, act, ctx| {
            let failure = match stored {
                Ok(true) => None,
                Ok(false) => Some(not_waiting()),
                Err(err) => Some(err.into()),
            };
            if let Some(err) = failure {
                if let Some(office) = act.office.as_mut() {
                    office.queue.take_back_admission(room_id);
                }
                act.changed(ctx);
                return Err(err);
            }
            for entry in &entries {
                act.tell(entry.student_id, &frames::admitted(entry.id, room_id, act.instructor_id));
            }
            Ok((room_id, entries.iter().map(|entry| act.open_view(entry)).collect()))
        })))
    }
}

/// The instructor ends an entry: `Completed` or `Skipped` (a waiting
/// student passed over, or an admitted one who did not show up).
#[derive(Message, Serialize, Deserialize)]
#[rtype(result = "AppResult<EntryView>")]
pub struct EndEntry {
    pub entry_id: Uuid,
    pub reason: EndReason,
}

impl Handler<EndEntry> for OfficeHoursActor {
    type Result = AtomicResponse<Self, AppResult<EntryView>>;

    fn handle(&mut self, end: EndEntry, _: &mut Context<Self>) -> Self::Result {
        let office = match self.office() {
            Ok(office) => office,
            Err(err) => return AtomicResponse::new(Box::pin(fut::ready(Err(err)))),
        };
        let admitted = office.queue.check_admitted(end.entry_id).is_ok();
        match (end.reason, admitted) {
            (_, true) => first(self.end_admitted(vec![end.entry_id], end.reason)),
            (EndReason::Skipped, false) => {
                if let Err(err) = office.queue.check_waiting(end.entry_id) {
                    return AtomicResponse::new(Box::pin(fut::ready(Err(err))));
                }
                first(self.end_waiting(vec![end.entry_id], EndReason::Skipped))
            }
            (_, false) => AtomicResponse::new(Box::pin(fut::ready(Err(AppError::conflict(
                "not_admitted",
                "This student is not in a room with you (admit them first).",
            ))))),
        }
    }
}

/// The instructor opens or closes the queue by hand.
#[derive(Message, Serialize, Deserialize)]
#[rtype(result = "AppResult<bool>")]
pub struct SetOpen {
    pub open: bool,
}

impl Handler<SetOpen> for OfficeHoursActor {
    type Result = AtomicResponse<Self, AppResult<bool>>;

    fn handle(&mut self, set: SetOpen, ctx: &mut Context<Self>) -> Self::Result {
        let now = self.now();
        let Some(office) = self.office.as_mut() else {
            return AtomicResponse::new(Box::pin(fut::ready(Err(not_loaded()))));
        };
        let was_open = office.was_open;
        office.manual = Some(schedule::manual_change(&office.schedule, set.open, now));
        if set.open && !was_open {
            office.opened_at = Some(now);
            office.announcement = None;
        }
        let Some(row) = self.state_row() else {
            return AtomicResponse::new(Box::pin(fut::ready(Err(not_loaded()))));
        };
        let write = move |conn: &mut AnyConnection| db::office_hours::store_state(conn, &row);
        let open = set.open;
        let stored = self.store(write, move |act, ctx, ()| {
            if let Some(office) = act.office.as_mut() {
                office.was_open = open;
            }
            act.changed(ctx);
            Ok(open)
        });
        if !open && was_open {
            // Tell those still waiting, after the state is stored.
            let waiting: Vec<Uuid> =
                self.office.as_ref().map(|office| office.queue.waiting().map(|e| e.id).collect()).unwrap_or_default();
            if !waiting.is_empty() {
                ctx.wait(self.end_waiting(waiting, EndReason::Closed).map(|_, _, _| ()));
            }
        }
        AtomicResponse::new(stored)
    }
}

/// The instructor tells everyone waiting or in a room something.
#[derive(Message, Serialize, Deserialize)]
#[rtype(result = "AppResult<AnnouncementView>")]
pub struct Announce {
    pub message: String,
}

impl Handler<Announce> for OfficeHoursActor {
    type Result = AtomicResponse<Self, AppResult<AnnouncementView>>;

    fn handle(&mut self, announce: Announce, _: &mut Context<Self>) -> Self::Result {
        let now = self.now();
        let row = AnnouncementRow {
            id: Uuid::new_v4().to_string(),
            instructor_id: self.instructor_id.to_string(),
            message: announce.message.clone(),
            created_at: to_db_time(now),
        };
        let write = move |conn: &mut AnyConnection| db::office_hours::insert_announcement(conn, &row);
        AtomicResponse::new(self.store(write, move |act, ctx, ()| {
            let view = AnnouncementView { message: announce.message, sent_at: now };
            let frame = frames::announcement(act.instructor_id, &view);
            let office = act.office_mut()?;
            office.announcement = Some(view.clone());
            let mut people: Vec<Uuid> =
                office.queue.waiting().chain(office.queue.admitted()).map(|entry| entry.student_id).collect();
            people.push(act.instructor_id);
            act.registry.broker.publish_to_users(&mut people.into_iter(), &frame);
            // Watchers not in the queue see it in the status.
            act.offer_news(News::Status, ctx);
            Ok(view)
        }))
    }
}

/// The status as `viewer` sees it.
#[derive(Message, Serialize, Deserialize)]
#[rtype(result = "AppResult<StatusView>")]
pub struct GetStatus {
    pub viewer: Option<Uuid>,
}

impl Handler<GetStatus> for OfficeHoursActor {
    type Result = AppResult<StatusView>;

    fn handle(&mut self, get: GetStatus, _: &mut Context<Self>) -> Self::Result {
        self.status_view(get.viewer)
    }
}

/// The instructor's queue.
#[derive(Message, Serialize, Deserialize)]
#[rtype(result = "AppResult<QueueView>")]
pub struct GetQueue;

impl Handler<GetQueue> for OfficeHoursActor {
    type Result = AppResult<QueueView>;

    fn handle(&mut self, _: GetQueue, _: &mut Context<Self>) -> Self::Result {
        self.queue_view()
    }
}

/// An open entry by id, as it stands (None: not open here).
#[derive(Message, Serialize, Deserialize)]
#[rtype(result = "AppResult<Option<EntryView>>")]
pub struct GetEntry {
    pub entry_id: Uuid,
}

impl Handler<GetEntry> for OfficeHoursActor {
    type Result = AppResult<Option<EntryView>>;

    fn handle(&mut self, get: GetEntry, _: &mut Context<Self>) -> Self::Result {
        Ok(self.office()?.queue.entry(get.entry_id).map(|entry| self.open_view(entry)))
    }
}

/// A socket watches (or stops watching) the status.
#[derive(Message)]
#[rtype(result = "AppResult<StatusView>")]
pub struct Watch {
    pub socket: SocketRef,
}

impl Handler<Watch> for OfficeHoursActor {
    type Result = AppResult<StatusView>;

    fn handle(&mut self, watch: Watch, _: &mut Context<Self>) -> Self::Result {
        let viewer = watch.socket.user().id;
        let status = self.status_view(Some(viewer))?;
        self.registry.broker.subscribe(Topic::OfficeHours(self.instructor_id), watch.socket, false);
        Ok(status)
    }
}

/// A message was stored in one of the instructor's private rooms.
#[derive(Message, Serialize, Deserialize)]
#[rtype(result = "()")]
pub struct RoomActivity {
    pub room_id: Uuid,
    /// When the message was stored (not when this arrives: the idle time
    /// counts from the message, however busy this actor is).
    pub at: DateTime<Utc>,
}

impl Handler<RoomActivity> for OfficeHoursActor {
    type Result = ();

    fn handle(&mut self, activity: RoomActivity, _: &mut Context<Self>) {
        if let Some(office) = self.office.as_mut() {
            office.queue.touch_room(activity.room_id, activity.at);
        }
    }
}

/// The slots changed (stored already): read them again.
#[derive(Message, Serialize, Deserialize)]
#[rtype(result = "()")]
pub struct SlotsChanged;

impl Handler<SlotsChanged> for OfficeHoursActor {
    type Result = ();

    fn handle(&mut self, _: SlotsChanged, ctx: &mut Context<Self>) {
        let (db, id) = (self.registry.deps.db.clone(), self.instructor_id.to_string());
        let read = async move {
            db.read(move |conn| {
                Ok(db::office_hours::slots(conn, &id)?.iter().filter_map(db::office_hours::to_slot).collect::<Vec<_>>())
            })
            .await
        };
        ctx.wait(read.into_actor(self).map(|slots, act, ctx| {
            let Ok(slots) = slots else { return };
            if let Some(office) = act.office.as_mut() {
                office.schedule = Schedule::new(slots);
            }
            act.sweep(ctx);
            act.changed(ctx);
        }));
    }
}

/// Another node holds these office hours now (this node lost its lease
/// while cut off from Redis): this actor stops, and calls go there.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Retire;

impl Handler<Retire> for OfficeHoursActor {
    type Result = ();

    fn handle(&mut self, _: Retire, ctx: &mut Context<Self>) {
        self.retire(ctx);
    }
}

/// Runs the sweep now. The sweep's timer waits in real time while the
/// schedule, absence and idleness are judged on the injected clock, so tests
/// that move a manual clock send this instead of sleeping.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Sweep;

impl Handler<Sweep> for OfficeHoursActor {
    type Result = ();

    fn handle(&mut self, _: Sweep, ctx: &mut Context<Self>) {
        self.sweep(ctx);
    }
}

/// The one entry of a list the answer is about.
fn first(
    all: ResponseActFuture<OfficeHoursActor, AppResult<Vec<EntryView>>>,
) -> AtomicResponse<OfficeHoursActor, AppResult<EntryView>> {
    AtomicResponse::new(Box::pin(
        all.map(|views, _, _| views.and_then(|views| views.into_iter().next().ok_or_else(not_waiting))),
    ))
}
