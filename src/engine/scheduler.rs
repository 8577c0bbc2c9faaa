//! The scheduler: every few seconds (and when a session starts) it looks for
//! reminders that are due and sessions that ran long past their end.
//!
//! Reminders are notifications with a dedupe key (session, kind, person), so
//! each is stored once however often the scheduler runs or restarts; the ones
//! stored now are pushed to whoever is online.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use chrono::DateTime;
use serde_json::json;
use uuid::Uuid;

use crate::db::models::NotificationRow;
use crate::db::notifications::NotificationView;
use crate::db::{self, from_db_time, parse_id, to_db_time};
use crate::domain::live_session::SessionStatus;
use crate::domain::reminders::{due_reminder, overdue, Reminder};
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
                ctx.spawn(run_pass(Arc::clone(&act.registry)).into_actor(act).map(|_, act, _| act.busy = false));
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

/// One reminder for one person, ready to store and push.
struct Due {
    user_id: Uuid,
    row: NotificationRow,
}

/// What is due now: reminders to send and sessions to end.
async fn find_work(registry: &Registry) -> AppResult<(Vec<Due>, Vec<Uuid>)> {
    let now = registry.deps.clock.now();
    let grace = chrono::Duration::minutes(registry.deps.config.auto_end_grace_minutes);
    let horizon = to_db_time(now + chrono::Duration::minutes(15));
    registry
        .deps
        .db
        .read(move |conn| {
            let mut due = Vec::new();
            let mut overdue_sessions = Vec::new();
            for session in db::live_sessions::needing_attention(conn, horizon)? {
                let Some(status) = SessionStatus::parse(&session.status) else { continue };
                let start = from_db_time(session.scheduled_start_time);
                if overdue(status, from_db_time(session.scheduled_end_time), now, grace) {
                    if let Ok(room_id) = parse_id(&session.chat_room_id) {
                        overdue_sessions.push(room_id);
                    }
                    continue;
                }
                let Some(reminder) = due_reminder(status, start, session.actual_start_time.map(from_db_time), now)
                else {
                    continue;
                };
                for student in db::courses::enrolled_user_ids(conn, &session.course_id)? {
                    let Ok(user_id) = parse_id(&student) else { continue };
                    due.push(Due {
                        user_id,
                        row: reminder_row(&session.id, &session.title, start, reminder, &student, now),
                    });
                }
            }
            Ok((due, overdue_sessions))
        })
        .await
}

fn reminder_row(
    session_id: &str,
    title: &str,
    start: DateTime<chrono::Utc>,
    reminder: Reminder,
    user_id: &str,
    now: DateTime<chrono::Utc>,
) -> NotificationRow {
    NotificationRow {
        id: Uuid::new_v4().to_string(),
        user_id: user_id.to_string(),
        kind: format!("session_reminder_{}", reminder.key()),
        title: reminder.title(title),
        body: format!("Scheduled for {}.", start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        data_json: Some(json!({ "sessionId": session_id }).to_string()),
        dedupe_key: Some(format!("session:{session_id}:{}:{user_id}", reminder.key())),
        created_at: to_db_time(now),
        read_at: None,
    }
}

/// One pass: store and push due reminders, end overdue sessions.
async fn run_pass(registry: Arc<Registry>) {
    let (due, overdue_sessions) = match find_work(&registry).await {
        Ok(work) => work,
        Err(err) => {
            log::warn!("scheduler pass skipped: {err}");
            return;
        }
    };
    let stores = due.into_iter().map(|Due { user_id, row }| {
        let persistence = registry.deps.persistence.clone();
        let registry = Arc::clone(&registry);
        async move {
            let stored = row.clone();
            match persistence.write(move |conn| db::notifications::insert(conn, &stored)).await {
                Ok(()) => push_notification(&registry, user_id, &row),
                // Sent before (this pass or an earlier one): nothing to do.
                Err(err) if err.is_unique_violation() => {}
                Err(err) => log::warn!("reminder for {user_id} not stored: {err:?}"),
            }
        }
    });
    futures_util::future::join_all(stores).await;
    for room_id in overdue_sessions {
        match command_room(&registry, room_id, None, SessionCommand::EndIfOverdue).await {
            Ok(session) => log::info!("session {} ended automatically", session.id),
            Err(err) => log::warn!("could not end the overdue session of room {room_id}: {err}"),
        }
    }
}

pub fn push_notification(registry: &Registry, user_id: Uuid, row: &NotificationRow) {
    let frame = event_frame(events::NOTIFICATION, &NotificationView::from_row(row));
    registry.broker.publish(Topic::User(user_id), &frame, Audience::Everyone);
}

impl Handler<Tick> for SchedulerActor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: Tick, _: &mut Context<Self>) -> Self::Result {
        Box::pin(run_pass(Arc::clone(&self.registry)))
    }
}
