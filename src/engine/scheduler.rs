//! The scheduler: every few seconds (and when a session starts) it looks for
//! reminders that are due and sessions that ran long past their end.
//!
//! Reminders are notifications with a dedupe key (session, kind, person), so
//! each is stored once however often the scheduler runs or restarts; the ones
//! stored now are pushed to whoever is online.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use chrono::DateTime;
use futures_util::StreamExt;
use serde_json::json;
use uuid::Uuid;

use crate::db::models::NotificationRow;
use crate::db::notifications::NotificationView;
use crate::db::{self, from_db_time, parse_id, to_db_time};
use crate::domain::live_session::SessionStatus;
use crate::domain::reminders::{due_group_reminder, due_reminder, overdue, Reminder};
use crate::engine::hub::{Audience, Topic};
use crate::engine::live_session::{command_room, SessionCommand};
use crate::engine::registry::Registry;
use crate::error::AppResult;
use crate::protocol::{event_frame, events};

/// Look now; answered when the pass is done. Passes are idempotent (the
/// dedupe keys), so one that overlaps another does no harm.
#[derive(Message, Clone, Copy)]
#[rtype(result = "()")]
pub struct Tick;

pub struct SchedulerActor {
    registry: Arc<Registry>,
    /// A timed pass is running: the timer skips rather than pile up.
    busy: bool,
    /// Reminder fan-outs stored whole by this process (session and kind):
    /// later passes skip them without reading a course's enrollment again.
    done: Arc<Mutex<HashSet<String>>>,
}

impl SchedulerActor {
    pub fn start(registry: Arc<Registry>) -> Addr<Self> {
        let interval = Duration::from_secs(registry.deps.config.scheduler_interval_secs.max(1));
        let addr = SchedulerActor::create(|ctx| {
            ctx.run_interval(interval, |act: &mut SchedulerActor, ctx| {
                if act.busy {
                    return;
                }
                act.busy = true;
                let pass = run_pass(Arc::clone(&act.registry), Arc::clone(&act.done));
                ctx.spawn(pass.into_actor(act).map(|_, act, _| act.busy = false));
            });
            SchedulerActor { registry: Arc::clone(&registry), busy: false, done: Default::default() }
        });
        registry.set_scheduler(addr.clone().recipient());
        addr
    }
}

impl Actor for SchedulerActor {
    type Context = Context<Self>;
}

/// Reminder rows stored by one write: a session of a 5,000-student course
/// is five writes in the persistence queue, not 5,000.
const REMINDER_CHUNK: usize = 1_000;
/// Reminder writes in the persistence queue at once: enough for its group
/// commit to take several in one transaction, never enough to crowd out chat.
const REMINDER_WRITES_IN_FLIGHT: usize = 4;

/// One reminder of one session for everyone enrolled.
struct FanOut {
    /// `session:kind`, the key of `SchedulerActor::done`.
    key: String,
    rows: Vec<(Uuid, NotificationRow)>,
}

/// What is due now: reminder fan-outs not done yet, and rooms of sessions to end.
async fn find_work(registry: &Registry, done: &Arc<Mutex<HashSet<String>>>) -> AppResult<(Vec<FanOut>, Vec<Uuid>)> {
    let now = registry.deps.clock.now();
    let grace = chrono::Duration::minutes(registry.deps.config.auto_end_grace_minutes);
    let horizon = to_db_time(now + chrono::Duration::minutes(15));
    let done = Arc::clone(done);
    registry
        .deps
        .db
        .read(move |conn| {
            let mut due = Vec::new();
            let mut overdue_rooms = Vec::new();
            let mut still_due = HashSet::new();
            for session in db::live_sessions::needing_attention(conn, horizon)? {
                let Some(status) = SessionStatus::parse(&session.status) else { continue };
                let start = from_db_time(session.scheduled_start_time);
                if overdue(status, from_db_time(session.scheduled_end_time), now, grace) {
                    if let Ok(room_id) = parse_id(&session.chat_room_id) {
                        overdue_rooms.push(room_id);
                    }
                    continue;
                }
                let Some(reminder) = due_reminder(status, start, session.actual_start_time.map(from_db_time), now)
                else {
                    continue;
                };
                let key = format!("{}:{}", session.id, reminder.key());
                still_due.insert(key.clone());
                if done.lock().map(|done| done.contains(&key)).unwrap_or(false) {
                    continue;
                }
                let subject = Subject {
                    kind: "session",
                    id: &session.id,
                    title: &session.title,
                    start,
                    data: json!({ "sessionId": session.id }),
                };
                let students = db::courses::enrolled_user_ids(conn, &session.course_id)?;
                due.push(FanOut { key, rows: subject.rows(students, reminder, now) });
            }
            let starting_since = to_db_time(now - chrono::Duration::minutes(15));
            for (session, room_id) in db::study_groups::sessions_starting(conn, starting_since, horizon)? {
                let start = from_db_time(session.scheduled_start_time);
                let Some(reminder) = due_group_reminder(start, now) else { continue };
                let key = format!("group:{}:{}", session.id, reminder.key());
                still_due.insert(key.clone());
                if done.lock().map(|done| done.contains(&key)).unwrap_or(false) {
                    continue;
                }
                let subject = Subject {
                    kind: "group_session",
                    id: &session.id,
                    title: &session.title,
                    start,
                    data: json!({ "groupId": session.group_id, "sessionId": session.id, "roomId": room_id }),
                };
                let members = db::presence::group_members(conn, &session.group_id)?;
                due.push(FanOut { key, rows: subject.rows(members, reminder, now) });
            }
            // What is no longer due needs no remembering.
            if let Ok(mut done) = done.lock() {
                done.retain(|key| still_due.contains(key));
            }
            Ok((due, overdue_rooms))
        })
        .await
}

/// What a reminder is about: a live session, or a group study session.
struct Subject<'a> {
    /// `session` or `group_session`: the notification's kind starts with it.
    kind: &'static str,
    id: &'a str,
    title: &'a str,
    start: DateTime<chrono::Utc>,
    data: serde_json::Value,
}

impl Subject<'_> {
    /// The reminder's row for each person, with its dedupe key.
    fn rows(
        &self,
        people: Vec<String>,
        reminder: Reminder,
        now: DateTime<chrono::Utc>,
    ) -> Vec<(Uuid, NotificationRow)> {
        let data_json = self.data.to_string();
        people
            .into_iter()
            .filter_map(|user_id| {
                let row = NotificationRow {
                    id: Uuid::new_v4().to_string(),
                    user_id: user_id.clone(),
                    kind: format!("{}_reminder_{}", self.kind, reminder.key()),
                    title: reminder.title(self.title, self.start, now),
                    body: format!("Scheduled for {}.", self.start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                    data_json: Some(data_json.clone()),
                    dedupe_key: Some(format!("{}:{}:{}:{user_id}", self.kind, self.id, reminder.key())),
                    created_at: to_db_time(now),
                    read_at: None,
                };
                Some((parse_id(&user_id).ok()?, row))
            })
            .collect()
    }
}

/// One pass: store due reminders, a few hundred rows per write and one
/// write at a time (the persistence queue never holds more than one of
/// them, so chat writes are never refused for reminders), each pushed to
/// whoever is online once stored; then end overdue sessions.
async fn run_pass(registry: Arc<Registry>, done: Arc<Mutex<HashSet<String>>>) {
    let (due, overdue_rooms) = match find_work(&registry, &done).await {
        Ok(work) => work,
        Err(err) => {
            log::warn!("scheduler pass skipped: {err}");
            return;
        }
    };
    let started = std::time::Instant::now();
    let (fan_outs, mut stored) = (due.len(), 0);
    for FanOut { key, rows } in due {
        let writes =
            rows.chunks(REMINDER_CHUNK).map(|chunk| {
                let stored_rows: Vec<NotificationRow> = chunk.iter().map(|(_, row)| row.clone()).collect();
                let persistence = registry.deps.persistence.clone();
                async move {
                    (chunk, persistence.write(move |conn| db::notifications::insert_new(conn, &stored_rows)).await)
                }
            });
        let mut whole = true;
        let mut written = futures_util::stream::iter(writes).buffer_unordered(REMINDER_WRITES_IN_FLIGHT);
        while let Some((chunk, outcome)) = written.next().await {
            match outcome {
                Ok(fresh) => {
                    stored += fresh.len();
                    for (user_id, row) in fresh.into_iter().filter_map(|i| chunk.get(i)) {
                        push_notification(&registry, *user_id, row);
                    }
                }
                Err(err) => {
                    whole = false;
                    log::warn!("reminders {key}: a chunk not stored ({err:?}); the next pass tries again");
                }
            }
        }
        if whole {
            if let Ok(mut done) = done.lock() {
                done.insert(key);
            }
        }
    }
    if fan_outs > 0 {
        log::info!("scheduler: {stored} reminder(s) stored for {fan_outs} session(s) in {:?}", started.elapsed());
    }
    for room_id in overdue_rooms {
        match command_room(&registry, room_id, None, SessionCommand::EndIfOverdue).await {
            Ok(session) => log::info!("session {} ended automatically", session.id),
            Err(err) => log::warn!("could not end the overdue session of room {room_id}: {err}"),
        }
    }
}

pub fn push_notification(registry: &Registry, user_id: Uuid, row: &NotificationRow) {
    if !registry.broker.has_subscribers(Topic::User(user_id)) {
        return; // offline: the stored row waits for them
    }
    let frame = event_frame(events::NOTIFICATION, &NotificationView::from_row(row));
    registry.broker.publish(Topic::User(user_id), &frame, Audience::Everyone);
}

impl Handler<Tick> for SchedulerActor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: Tick, _: &mut Context<Self>) -> Self::Result {
        Box::pin(run_pass(Arc::clone(&self.registry), Arc::clone(&self.done)))
    }
}
