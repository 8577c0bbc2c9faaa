//! The scheduler: every few seconds (and when a session starts) it looks for
//! reminders that are due and sessions that ran long past their end.
//!
//! A reminder is one row for the session's whole course (or group), with a
//! dedupe key (subject, kind): stored once however often the scheduler runs
//! or restarts, on however many nodes, and each person's view of it derived
//! from their enrollment (`db::notifications`). So a pass costs a row per
//! session, not per student: a 5,000-student course is one insert, not
//! 5,000. Once stored, it is pushed to whoever of the audience is online.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use chrono::DateTime;
use serde_json::json;
use uuid::Uuid;

use crate::db::models::AudienceNotificationRow;
use crate::db::notifications::NotificationView;
use crate::db::{self, from_db_time, parse_id, to_db_time, AnyConnection};
use crate::domain::live_session::SessionStatus;
use crate::domain::reminders::{due_group_reminder, due_reminder, overdue, Reminder};
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
                let pass = run_pass(Arc::clone(&act.registry));
                ctx.spawn(pass.into_actor(act).map(|_, act, _| act.busy = false));
            });
            SchedulerActor { registry: Arc::clone(&registry), busy: false }
        });
        registry.set_scheduler(addr.clone().recipient());
        addr
    }
}

impl Actor for SchedulerActor {
    type Context = Context<Self>;
}

/// A reminder not stored yet, and who hears it once it is.
struct DueReminder {
    row: AudienceNotificationRow,
    /// The course's students or the group's members.
    audience: Vec<Uuid>,
}

/// What is due now: reminders not stored yet, and rooms of sessions to end.
async fn find_work(registry: &Registry) -> AppResult<(Vec<DueReminder>, Vec<Uuid>)> {
    let now = registry.deps.clock.now();
    let grace = chrono::Duration::minutes(registry.deps.config.auto_end_grace_minutes);
    let horizon = to_db_time(now + chrono::Duration::minutes(15));
    registry
        .deps
        .db
        .read(move |conn| {
            let mut due = Vec::new();
            let mut overdue_rooms = Vec::new();
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
                let subject = Subject {
                    kind: "session",
                    id: &session.id,
                    title: &session.title,
                    start,
                    data: json!({ "sessionId": session.id }),
                };
                due.push(subject.reminder(Audience::Course(session.course_id.clone()), reminder, now));
            }
            let starting_since = to_db_time(now - chrono::Duration::minutes(15));
            for (session, room_id) in db::study_groups::sessions_starting(conn, starting_since, horizon)? {
                let start = from_db_time(session.scheduled_start_time);
                let Some(reminder) = due_group_reminder(start, now) else { continue };
                let subject = Subject {
                    kind: "group_session",
                    id: &session.id,
                    title: &session.title,
                    start,
                    data: json!({ "groupId": session.group_id, "sessionId": session.id, "roomId": room_id }),
                };
                due.push(subject.reminder(Audience::Group(session.group_id.clone()), reminder, now));
            }
            let keys: Vec<String> = due.iter().map(|row| row.dedupe_key.clone()).collect();
            let stored = db::notifications::stored_audience_keys(conn, &keys)?;
            let not_stored = due.into_iter().filter(|row| !stored.contains(&row.dedupe_key));
            let due = not_stored.map(|row| with_audience(conn, row)).collect::<Result<_, _>>()?;
            Ok((due, overdue_rooms))
        })
        .await
}

/// Whom a reminder is for.
enum Audience {
    Course(String),
    Group(String),
}

/// The reminder with the ids of its audience, read now: only for the ones
/// not stored yet, so a course's enrollment is read once per reminder.
fn with_audience(conn: &mut AnyConnection, row: AudienceNotificationRow) -> diesel::QueryResult<DueReminder> {
    let people = match (&row.course_id, &row.group_id) {
        (Some(course_id), _) => db::courses::enrolled_user_ids(conn, course_id)?,
        (None, Some(group_id)) => db::presence::group_members(conn, group_id)?,
        (None, None) => Vec::new(),
    };
    let audience = people.iter().filter_map(|id| parse_id(id).ok()).collect();
    Ok(DueReminder { row, audience })
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
    /// The reminder's one row, for everyone of `audience`.
    fn reminder(&self, audience: Audience, reminder: Reminder, now: DateTime<chrono::Utc>) -> AudienceNotificationRow {
        let (course_id, group_id) = match audience {
            Audience::Course(id) => (Some(id), None),
            Audience::Group(id) => (None, Some(id)),
        };
        AudienceNotificationRow {
            id: Uuid::new_v4().to_string(),
            course_id,
            group_id,
            kind: format!("{}_reminder_{}", self.kind, reminder.key()),
            title: reminder.title(self.title, self.start, now),
            body: format!("Scheduled for {}.", self.start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            data_json: Some(self.data.to_string()),
            dedupe_key: format!("{}:{}:{}", self.kind, self.id, reminder.key()),
            created_at: to_db_time(now),
        }
    }
}

/// One pass: store the due reminders in one write (a row per session, so
/// it never crowds chat writes out of the persistence queue), push each
/// one stored now to whoever of its audience is online, then end overdue
/// sessions.
async fn run_pass(registry: Arc<Registry>) {
    let (due, overdue_rooms) = match find_work(&registry).await {
        Ok(work) => work,
        Err(err) => {
            log::warn!("scheduler pass skipped: {err}");
            return;
        }
    };
    if !due.is_empty() {
        let started = std::time::Instant::now();
        let rows: Vec<AudienceNotificationRow> = due.iter().map(|reminder| reminder.row.clone()).collect();
        match registry.deps.persistence.write(move |conn| db::notifications::insert_audience_new(conn, &rows)).await {
            Ok(fresh) => {
                for reminder in fresh.iter().filter_map(|&i| due.get(i)) {
                    let frame =
                        event_frame(events::NOTIFICATION, &NotificationView::from_audience_row(&reminder.row, None));
                    registry.broker.publish_to_users(&mut reminder.audience.iter().copied(), &frame);
                }
                log::info!("scheduler: {} reminder(s) stored in {:?}", fresh.len(), started.elapsed());
            }
            Err(err) => log::warn!("{} reminder(s) not stored ({err:?}); the next pass tries again", due.len()),
        }
    }
    for room_id in overdue_rooms {
        match command_room(&registry, room_id, None, SessionCommand::EndIfOverdue).await {
            Ok(session) => log::info!("session {} ended automatically", session.id),
            Err(err) => log::warn!("could not end the overdue session of room {room_id}: {err}"),
        }
    }
}

impl Handler<Tick> for SchedulerActor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: Tick, _: &mut Context<Self>) -> Self::Result {
        Box::pin(run_pass(Arc::clone(&self.registry)))
    }
}
