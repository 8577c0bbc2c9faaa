//! From what an event names (a room, or a live session by its own id) to
//! the actor that serves it: one table from room type to actor kind, and
//! one rule for who may enter, the same one REST applies.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use actix::prelude::*;
use uuid::Uuid;

use super::{room_gone, submit, Join, RoomActor, RoomKind};
use crate::auth::AuthUser;
use crate::db;
use crate::domain::room::{RoomType, Standing};
use crate::domain::study_group::GroupRole;
use crate::engine::live_session::LiveSession;
use crate::engine::office_hours::room::OfficeHoursRoom;
use crate::engine::registry::Registry;
use crate::engine::study_group::StudyGroup;
use crate::error::{AppError, AppResult};

/// What a join names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A chat room by its id (`join-room`).
    Room(Uuid),
    /// A live session by its id (`join-live-session`): its room.
    LiveSession(Uuid),
}

/// A room someone may enter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub room_id: Uuid,
    pub room_type: RoomType,
    /// The live session whose room it is.
    pub session_id: Option<Uuid>,
    pub standing: Standing,
}

/// Finds the room a join names and checks that the person may enter it:
/// `not_found` for an unknown room, `forbidden` for a room that is not theirs.
pub async fn resolve(registry: &Registry, user: &AuthUser, target: Target) -> AppResult<Entry> {
    let (user_id, role) = (user.id, user.role);
    registry
        .deps
        .db
        .read(move |conn| {
            let session = match target {
                Target::LiveSession(session_id) => db::live_sessions::find(conn, &session_id.to_string())?
                    .ok_or_else(|| AppError::not_found("live session"))?,
                Target::Room(room_id) => {
                    let room =
                        db::chat::find_room(conn, &room_id.to_string())?.ok_or_else(|| AppError::not_found("room"))?;
                    match RoomType::parse(&room.room_type) {
                        Some(RoomType::LiveSession) => db::live_sessions::find_by_room(conn, &room.id)?
                            .ok_or_else(|| AppError::not_found("room"))?,
                        Some(RoomType::StudyGroup) => return study_group_entry(conn, room_id, user_id),
                        Some(RoomType::OfficeHours) => return office_hours_entry(conn, room_id, user_id),
                        None => return Err(AppError::not_found("room")),
                    }
                }
            };
            let standing = db::live_sessions::standing(conn, user_id, role, &session)?
                .ok_or_else(|| AppError::forbidden("You are not enrolled in this session's course."))?;
            Ok(Entry {
                room_id: db::parse_id(&session.chat_room_id).map_err(AppError::internal)?,
                room_type: RoomType::LiveSession,
                session_id: Some(db::parse_id(&session.id).map_err(AppError::internal)?),
                standing,
            })
        })
        .await
}

/// A study group's room is for its members (admins lead it), while the group is active.
fn study_group_entry(conn: &mut db::AnyConnection, room_id: Uuid, user_id: Uuid) -> AppResult<Entry> {
    let group = db::study_groups::find_by_room(conn, &room_id.to_string())?
        .filter(|group| group.is_active)
        .ok_or_else(|| AppError::not_found("room"))?;
    let role = db::study_groups::role_of(conn, &group.id, &user_id.to_string())?
        .ok_or_else(|| AppError::forbidden("Only this group's members may use its chat."))?;
    let standing = if role == GroupRole::Admin { Standing::Host } else { Standing::Member };
    Ok(Entry { room_id, room_type: RoomType::StudyGroup, session_id: None, standing })
}

/// An office-hours room, while open: the instructor leads it; a private
/// one's admitted students, or a drop-in one's students of the instructor, may enter.
fn office_hours_entry(conn: &mut db::AnyConnection, room_id: Uuid, user_id: Uuid) -> AppResult<Entry> {
    let id = room_id.to_string();
    let room = db::office_hours::find_room(conn, &id)?
        .filter(|room| room.closed_at.is_none())
        .ok_or_else(|| AppError::not_found("room"))?;
    let user = user_id.to_string();
    let admitted = match room.mode.as_str() {
        "drop-in" => db::office_hours::teaches(conn, &room.instructor_id, &user)?,
        _ => db::office_hours::room_students(conn, &id)?.contains(&user),
    };
    let standing = match (room.instructor_id == user, admitted) {
        (true, _) => Standing::Host,
        (false, true) => Standing::Member,
        (false, false) => {
            return Err(AppError::forbidden("Only the instructor and the students admitted may use this room."))
        }
    };
    Ok(Entry { room_id, room_type: RoomType::OfficeHours, session_id: None, standing })
}

type Reply<T> = Pin<Box<dyn Future<Output = Result<T, MailboxError>>>>;

/// The actor of a room, whatever its kind.
#[derive(Clone)]
pub enum RoomAddr {
    LiveSession(Addr<RoomActor<LiveSession>>),
    StudyGroup(Addr<RoomActor<StudyGroup>>),
    OfficeHours(Addr<RoomActor<OfficeHoursRoom>>),
}

impl RoomAddr {
    /// The room's actor, started if needed.
    pub fn of(registry: &Arc<Registry>, room_type: RoomType, room_id: Uuid) -> AppResult<RoomAddr> {
        match room_type {
            RoomType::LiveSession => Ok(RoomAddr::LiveSession(registry.room::<LiveSession>(room_id))),
            RoomType::StudyGroup => Ok(RoomAddr::StudyGroup(registry.room::<StudyGroup>(room_id))),
            RoomType::OfficeHours => Ok(RoomAddr::OfficeHours(registry.room::<OfficeHoursRoom>(room_id))),
        }
    }

    /// The room's actor if one is alive, without starting one.
    pub fn existing(registry: &Registry, room_type: RoomType, room_id: Uuid) -> Option<RoomAddr> {
        match room_type {
            RoomType::LiveSession => LiveSession::table(registry).existing(room_id).map(RoomAddr::LiveSession),
            RoomType::StudyGroup => StudyGroup::table(registry).existing(room_id).map(RoomAddr::StudyGroup),
            RoomType::OfficeHours => OfficeHoursRoom::table(registry).existing(room_id).map(RoomAddr::OfficeHours),
        }
    }

    /// Sends a message every kind of room handles. Queued now, answered later:
    /// a socket's frames reach the room in the order they came.
    pub fn send<M>(&self, message: M) -> Reply<M::Result>
    where
        M: Message + Send + 'static,
        M::Result: Send,
        RoomActor<LiveSession>: Handler<M>,
        RoomActor<StudyGroup>: Handler<M>,
        RoomActor<OfficeHoursRoom>: Handler<M>,
    {
        match self {
            RoomAddr::LiveSession(addr) => Box::pin(addr.send(message)),
            RoomAddr::StudyGroup(addr) => Box::pin(addr.send(message)),
            RoomAddr::OfficeHours(addr) => Box::pin(addr.send(message)),
        }
    }

    /// Sends a write a client made: handled even if the client goes away
    /// before the answer (see [`Asked`]); answered as [`Self::send`].
    pub fn submit<M>(&self, message: M) -> Reply<M::Result>
    where
        M: Message + Send + 'static,
        M::Result: Send,
        RoomActor<LiveSession>: Handler<M>,
        RoomActor<StudyGroup>: Handler<M>,
        RoomActor<OfficeHoursRoom>: Handler<M>,
    {
        match self {
            RoomAddr::LiveSession(addr) => Box::pin(submit(addr, message)),
            RoomAddr::StudyGroup(addr) => Box::pin(submit(addr, message)),
            RoomAddr::OfficeHours(addr) => Box::pin(submit(addr, message)),
        }
    }

    /// Sends a message nobody waits on the answer of.
    pub fn do_send<M>(&self, message: M)
    where
        M: Message + Send + 'static,
        M::Result: Send,
        RoomActor<LiveSession>: Handler<M>,
        RoomActor<StudyGroup>: Handler<M>,
        RoomActor<OfficeHoursRoom>: Handler<M>,
    {
        match self {
            RoomAddr::LiveSession(addr) => addr.do_send(message),
            RoomAddr::StudyGroup(addr) => addr.do_send(message),
            RoomAddr::OfficeHours(addr) => addr.do_send(message),
        }
    }

    /// The actor of a live session's room, for the session's own events.
    pub fn live_session(&self) -> AppResult<&Addr<RoomActor<LiveSession>>> {
        match self {
            RoomAddr::LiveSession(addr) => Ok(addr),
            RoomAddr::StudyGroup(_) | RoomAddr::OfficeHours(_) => Err(AppError::not_found("live session")),
        }
    }
}

/// Sends a join to a room's actor on this node; if the actor died
/// meanwhile, once more to its replacement.
pub async fn join_room(
    registry: &Arc<Registry>,
    room_type: RoomType,
    room_id: Uuid,
    join: impl Fn() -> Join,
) -> AppResult<super::JoinReply> {
    match RoomAddr::of(registry, room_type, room_id)?.send(join()).await {
        Ok(result) => result,
        Err(_) => RoomAddr::of(registry, room_type, room_id)?.send(join()).await.map_err(|_| room_gone())?,
    }
}
