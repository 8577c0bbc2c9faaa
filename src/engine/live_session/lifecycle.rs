//! Status changes and edits of a session, which REST (and the scheduler)
//! send to the room: the room is the one place that knows the session's
//! state, so start, end, cancel and edit all go through it. The change is
//! committed before anyone hears of it; then the room and every open socket
//! of the course's people get `session-status-changed` (or `session-updated`).

use std::collections::HashSet;

use actix::prelude::*;
use serde_json::json;
use tokio::sync::oneshot;
use uuid::Uuid;

use super::LiveSession;
use crate::auth::AuthUser;
use crate::db::{self, parse_id, to_db_time};
use crate::domain::live_session::{SessionChanges, SessionStatus, SessionView};
use crate::domain::reminders::overdue;
use crate::domain::room::RoomType;
use crate::engine::hub::Topic;
use crate::engine::room::calls::{self, RoomCall, RoomRef};
use crate::engine::room::{room_gone, RoomActor};
use crate::error::{AppError, AppResult};
use crate::protocol::{event_frame, events};

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
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

impl Handler<RoomCommand> for RoomActor<LiveSession> {
    type Result = ResponseFuture<AppResult<SessionView>>;

    fn handle(&mut self, RoomCommand { by, command }: RoomCommand, ctx: &mut Context<Self>) -> Self::Result {
        let now = self.now();
        let planned = (|| {
            let room = &self.kind()?.room;
            if let Some(user) = &by {
                if !room.leads(user.id, user.role) {
                    return Err(AppError::forbidden("Only the session's instructor can do that."));
                }
            }
            let mut next = room.clone();
            let closes = match &command {
                SessionCommand::Start => {
                    next.start(now)?;
                    false
                }
                SessionCommand::End => {
                    next.end(now)?;
                    true
                }
                SessionCommand::EndIfOverdue => {
                    let grace = chrono::Duration::minutes(self.registry.deps.config.auto_end_grace_minutes);
                    if !overdue(next.facts.status, next.facts.scheduled_end, now, grace) {
                        return Err(AppError::conflict("not_overdue", "The session is not overdue."));
                    }
                    next.end(now)?;
                    true
                }
                SessionCommand::Cancel => {
                    next.cancel()?;
                    true
                }
                SessionCommand::Update(changes) => {
                    next.apply_changes(changes, now)?;
                    false
                }
            };
            Ok((next, closes))
        })();
        let (next, closes) = match planned {
            Ok(planned) => planned,
            Err(err) => return Box::pin(async move { Err(err) }),
        };

        let (reply, answer) = oneshot::channel();
        let facts = next.facts.clone();
        let persistence = self.registry.deps.persistence.clone();
        let db = self.registry.deps.db.clone();
        let course_id = facts.course_id.to_string();
        let commit = async move {
            let saved = facts.clone();
            persistence
                .write(move |conn| {
                    db::live_sessions::save_facts(conn, &saved, to_db_time(now))?;
                    // Whoever the database still counts as present leaves in
                    // the same transaction: the answer to "end" already has
                    // complete attendance behind it, whoever was connected.
                    if closes {
                        db::live_sessions::close_open_attendance(conn, Some(&saved.id.to_string()), to_db_time(now))?;
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
            let Some(kind) = act.kind.as_mut() else {
                let _ = reply.send(Err(AppError::not_found("live session")));
                return;
            };
            let status_changed = kind.room.facts.status != next.facts.status;
            let view = SessionView::new(&next.facts, next.attendee_count());
            kind.room = next;
            let frame = if status_changed {
                event_frame(
                    events::SESSION_STATUS_CHANGED,
                    &json!({ "sessionId": view.id, "status": view.status, "session": view }),
                )
            } else {
                event_frame(events::SESSION_UPDATED, &json!({ "sessionId": view.id, "session": view }))
            };
            act.notify_course(&frame, &enrolled);
            if closes {
                // Nobody is in a session that ended: their activity line goes too.
                act.unsubscribe_everyone(ctx);
            }
            if view.status == SessionStatus::Active && status_changed {
                act.registry.poke_scheduler();
            }
            let _ = reply.send(Ok(view));
        }));
        Box::pin(async move { answer.await.unwrap_or_else(|_| Err(room_gone())) })
    }
}

impl RoomActor<LiveSession> {
    /// Sends a frame to every open socket of the course's students and
    /// instructor (their dashboards) and of whoever is in the room, each
    /// socket once: every socket is subscribed to its user's topic.
    fn notify_course(&self, frame: &bytestring::ByteString, enrolled: &[String]) {
        let instructor = self.kind.as_ref().map(|kind| kind.room.facts.instructor_id);
        let in_room = self.registry.hub.subscribers(Topic::Room(self.room_id)).into_iter().map(|s| s.socket.user().id);
        let users: HashSet<Uuid> =
            enrolled.iter().filter_map(|id| parse_id(id).ok()).chain(instructor).chain(in_room).collect();
        self.registry.broker.publish_to_users(&mut users.into_iter(), frame);
    }
}

/// A session was just scheduled: every open socket of the course's students
/// and instructor gets `session-updated` for it, so dashboards and calendars
/// show it without a reload. Best effort: the session is stored already, and
/// a read that fails only costs the push (logged).
pub async fn announce_scheduled(registry: &std::sync::Arc<crate::engine::registry::Registry>, view: &SessionView) {
    let course_id = view.course_id.to_string();
    let enrolled = registry.deps.db.read(move |conn| Ok(db::courses::enrolled_user_ids(conn, &course_id)?)).await;
    let enrolled = match enrolled {
        Ok(enrolled) => enrolled,
        Err(err) => {
            log::warn!("session {} scheduled, not announced: {err}", view.id);
            return;
        }
    };
    let frame = event_frame(events::SESSION_UPDATED, &json!({ "sessionId": view.id, "session": view }));
    let users: HashSet<Uuid> =
        enrolled.iter().filter_map(|id| parse_id(id).ok()).chain(std::iter::once(view.instructor_id)).collect();
    registry.broker.publish_to_users(&mut users.into_iter(), &frame);
}

/// Sends a command to a session's room actor (starting it if needed), once
/// more to a replacement if the actor died meanwhile.
pub async fn command_room(
    registry: &std::sync::Arc<crate::engine::registry::Registry>,
    room_id: Uuid,
    by: Option<AuthUser>,
    command: SessionCommand,
) -> AppResult<SessionView> {
    let room = RoomRef { room_type: RoomType::LiveSession, room_id };
    let view = calls::call(registry, room, None, RoomCall::Command { by, command }).await?;
    serde_json::from_str(view.get()).map_err(AppError::internal)
}

/// [`command_room`] on this node.
pub async fn command_room_here(
    registry: &std::sync::Arc<crate::engine::registry::Registry>,
    room_id: Uuid,
    by: Option<AuthUser>,
    command: SessionCommand,
) -> AppResult<SessionView> {
    let message = || RoomCommand { by: by.clone(), command: command.clone() };
    match registry.room::<LiveSession>(room_id).send(message()).await {
        Ok(result) => result,
        Err(_) => registry.room::<LiveSession>(room_id).send(message()).await.map_err(|_| room_gone())?,
    }
}
