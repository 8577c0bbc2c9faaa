//! Status changes and edits of a session, which REST (and the scheduler)
//! send to the room: the room is the one place that knows the session's
//! state, so start, end, cancel and edit all go through it. The change is
//! committed before anyone hears of it; then the room and every enrolled
//! student online get `session-status-changed` (or `session-updated`).

use actix::prelude::*;
use serde_json::json;
use tokio::sync::oneshot;
use uuid::Uuid;

use super::LiveSessionActor;
use crate::auth::AuthUser;
use crate::db::{self, parse_id, to_db_time};
use crate::domain::live_session::{SessionChanges, SessionStatus, SessionView};
use crate::domain::reminders::overdue;
use crate::engine::Push;
use crate::error::{AppError, AppResult};
use crate::protocol::{event_frame, events};

#[derive(Debug, Clone)]
pub enum SessionCommand {
    Start,
    End,
    Cancel,
    Update(SessionChanges),
    /// The scheduler ends a session that ran long past its schedule.
    EndIfOverdue,
}

/// A command for the room; `by` is None when the server itself acts.
#[derive(Message)]
#[rtype(result = "AppResult<SessionView>")]
pub struct RoomCommand {
    pub by: Option<AuthUser>,
    pub command: SessionCommand,
}

impl Handler<RoomCommand> for LiveSessionActor {
    type Result = ResponseFuture<AppResult<SessionView>>;

    fn handle(&mut self, RoomCommand { by, command }: RoomCommand, ctx: &mut Context<Self>) -> Self::Result {
        let now = self.now();
        let planned = (|| {
            let room = self.room()?;
            if let Some(user) = &by {
                if !room.leads(user.id, user.role) {
                    return Err(AppError::forbidden("Only the session's instructor can do that."));
                }
            }
            let mut next = room.clone();
            let sent_out = match &command {
                SessionCommand::Start => {
                    next.start(now)?;
                    Vec::new()
                }
                SessionCommand::End => next.end(now)?,
                SessionCommand::EndIfOverdue => {
                    let grace = chrono::Duration::minutes(self.registry.deps.config.auto_end_grace_minutes);
                    if !overdue(next.facts.status, next.facts.scheduled_end, now, grace) {
                        return Err(AppError::conflict("not_overdue", "The session is not overdue."));
                    }
                    next.end(now)?
                }
                SessionCommand::Cancel => next.cancel()?,
                SessionCommand::Update(changes) => {
                    next.apply_changes(changes)?;
                    Vec::new()
                }
            };
            Ok((next, sent_out))
        })();
        let (next, sent_out) = match planned {
            Ok(planned) => planned,
            Err(err) => return Box::pin(async move { Err(err) }),
        };

        let (reply, answer) = oneshot::channel();
        let facts = next.facts.clone();
        let persistence = self.registry.deps.persistence.clone();
        let db = self.registry.deps.db.clone();
        let course_id = facts.course_id.to_string();
        // Whoever the change sends out leaves in the same transaction, so the
        // answer to "end" already has complete attendance behind it.
        let leaving: Vec<String> = sent_out.iter().map(Uuid::to_string).collect();
        let commit = async move {
            let saved = facts.clone();
            persistence
                .write(move |conn| {
                    db::live_sessions::save_facts(conn, &saved, to_db_time(now))?;
                    let session = saved.id.to_string();
                    for user in &leaving {
                        db::live_sessions::record_leave(conn, &session, user, to_db_time(now))?;
                    }
                    Ok(())
                })
                .await?;
            let enrolled = db.read(move |conn| Ok(db::courses::enrolled_user_ids(conn, &course_id)?)).await?;
            Ok::<_, AppError>(enrolled)
        };
        // `wait`: nothing else happens in the room until the change is stored.
        ctx.wait(commit.into_actor(self).map(move |committed, act, ctx| {
            let enrolled = match committed {
                Ok(enrolled) => enrolled,
                Err(err) => {
                    let _ = reply.send(Err(err));
                    return;
                }
            };
            let status_changed = act.room.as_ref().map(|room| room.facts.status) != Some(next.facts.status);
            let view = SessionView::new(&next.facts, next.attendee_count());
            act.room = Some(next);
            let frame = if status_changed {
                event_frame(
                    events::SESSION_STATUS_CHANGED,
                    &json!({ "sessionId": act.session_id, "status": view.status, "session": view }),
                )
            } else {
                event_frame(events::SESSION_UPDATED, &json!({ "sessionId": act.session_id, "session": view }))
            };
            act.notify_course(frame, &enrolled, ctx);
            if !sent_out.is_empty() {
                // Nobody is in an ended session: their activity line goes too.
                for (connection_id, member) in act.members.drain() {
                    crate::engine::presence::left_session(&act.registry, member.user_id, connection_id, act.session_id);
                }
                act.schedule_idle_stop(ctx);
            }
            if view.status == SessionStatus::Active && status_changed {
                act.registry.poke_scheduler();
            }
            let _ = reply.send(Ok(view));
        }));
        Box::pin(async move {
            answer.await.unwrap_or_else(|_| Err(AppError::unavailable("room_unavailable", "Please retry.")))
        })
    }
}

impl LiveSessionActor {
    /// Sends a frame to the room and to every open socket of the course's
    /// students and instructor (their dashboards), each socket once.
    fn notify_course(&mut self, frame: bytestring::ByteString, enrolled: &[String], ctx: &mut Context<Self>) {
        self.fan_out(|_| Some(frame.clone()), ctx);
        let instructor = self.room.as_ref().map(|room| room.facts.instructor_id);
        let users = enrolled.iter().filter_map(|id| parse_id(id).ok()).chain(instructor);
        for user_id in users {
            for handle in self.registry.connections_of(user_id) {
                if !self.members.contains_key(&handle.id) {
                    let _ = handle.addr.try_send(Push(frame.clone()));
                }
            }
        }
    }
}

/// Sends a command to a session's actor (starting it if needed), once more
/// to a replacement if the actor died meanwhile.
pub async fn command_room(
    registry: &std::sync::Arc<crate::engine::registry::Registry>,
    session_id: Uuid,
    by: Option<AuthUser>,
    command: SessionCommand,
) -> AppResult<SessionView> {
    let message = || RoomCommand { by: by.clone(), command: command.clone() };
    match registry.live_session(session_id).send(message()).await {
        Ok(result) => result,
        Err(_) => registry
            .live_session(session_id)
            .send(message())
            .await
            .map_err(|_| AppError::unavailable("room_unavailable", "The session's room restarted; please retry."))?,
    }
}
