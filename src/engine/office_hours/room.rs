//! An office-hours room as a kind of room: a private one holds the
//! instructor and the students admitted into it; a drop-in one, while its
//! slot runs, the instructor and any of their students (checked when they
//! enter, `routing::resolve`). Its messages keep the queue's idle clock.

use std::collections::HashSet;
use std::sync::Arc;

use actix::prelude::*;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::config::Config;
use crate::db::{self, AnyConnection};
use crate::domain::room::{Admission, ParticipantView, RoomInfo, RoomType};
use crate::engine::registry::{ActorTable, Registry};
use crate::engine::room::calls::{self, RoomCall, RoomRef};
use crate::engine::room::occupants::Occupants;
use crate::engine::room::{Loaded, RoomActor, RoomKind};
use crate::error::{AppError, AppResult};
use crate::protocol::rooms::RoomScope;

/// A private or drop-in office-hours room in its room actor.
pub struct OfficeHoursRoom {
    room_id: Uuid,
    instructor_id: Uuid,
    name: String,
    drop_in: bool,
    /// The admitted students of a private room.
    students: HashSet<Uuid>,
    present: Occupants,
}

impl OfficeHoursRoom {
    fn refuse() -> AppError {
        AppError::forbidden("Only the instructor and the students admitted may use this room.")
    }

    fn may_enter(&self, user_id: Uuid) -> bool {
        user_id == self.instructor_id || self.drop_in || self.students.contains(&user_id)
    }
}

/// What joining an office-hours room shows besides the room and its people.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OfficeHoursJoinView {
    pub instructor_id: Uuid,
    /// `private` or `drop-in`.
    pub mode: &'static str,
}

impl RoomKind for OfficeHoursRoom {
    const TYPE: RoomType = RoomType::OfficeHours;
    type JoinView = OfficeHoursJoinView;

    fn table(registry: &Registry) -> &ActorTable<RoomActor<Self>> {
        &registry.office_hours_rooms
    }

    fn load(conn: &mut AnyConnection, room_id: Uuid, _: &Config) -> AppResult<Option<Loaded<Self>>> {
        let id = room_id.to_string();
        let Some(row) = db::office_hours::find_room(conn, &id)? else { return Ok(None) };
        if row.closed_at.is_some() {
            return Ok(None);
        }
        let name = db::chat::find_room(conn, &id)?.map(|room| room.name).unwrap_or_default();
        let students = db::parse_ids(&db::office_hours::room_students(conn, &id)?)?.into_iter().collect();
        let kind = OfficeHoursRoom {
            room_id,
            instructor_id: db::parse_id(&row.instructor_id).map_err(AppError::internal)?,
            name,
            drop_in: row.mode == "drop-in",
            students,
            present: Occupants::default(),
        };
        Ok(Some(Loaded { kind, present: Vec::new() }))
    }

    fn info(&self) -> RoomInfo {
        RoomInfo { id: self.room_id, room_type: Self::TYPE, name: self.name.clone() }
    }

    fn scope(&self) -> RoomScope {
        RoomScope { room_id: self.room_id, session_id: None }
    }

    fn admit(&mut self, user: &AuthUser, socket_id: Uuid, now: DateTime<Utc>) -> AppResult<Admission> {
        if !self.may_enter(user.id) {
            return Err(Self::refuse());
        }
        Ok(self.present.admit(user, socket_id, now))
    }

    fn restore(&mut self, user: &AuthUser, socket_id: Uuid, now: DateTime<Utc>) {
        let _ = self.admit(user, socket_id, now);
    }

    fn holds(&self, user_id: Uuid, socket_id: Uuid) -> bool {
        self.present.holds(user_id, socket_id)
    }

    fn leave(&mut self, user_id: Uuid, socket_id: Uuid) -> bool {
        self.present.leave(user_id, socket_id)
    }

    fn is_empty(&self) -> bool {
        self.present.is_empty()
    }

    fn is_host(&self, user: &AuthUser) -> bool {
        user.id == self.instructor_id
    }

    fn participants(&self) -> Vec<ParticipantView> {
        self.present.participants()
    }

    fn participant(&self, user_id: Uuid) -> Option<ParticipantView> {
        self.present.participant(user_id)
    }

    fn join_view(&self, _host: bool) -> OfficeHoursJoinView {
        OfficeHoursJoinView {
            instructor_id: self.instructor_id,
            mode: if self.drop_in { "drop-in" } else { "private" },
        }
    }

    fn message_stored(actor: &mut RoomActor<Self>, _: &mut Context<RoomActor<Self>>) {
        let Some(kind) = actor.kind.as_ref() else { return };
        if !kind.drop_in {
            let at = actor.registry.deps.clock.now();
            let activity = super::RoomActivity { room_id: actor.room_id, at };
            super::calls::tell(&actor.registry, kind.instructor_id, super::calls::OfficeCall::RoomActivity(activity));
        }
    }
}

/// The room's people changed (stored already).
#[derive(Debug, Message, serde::Serialize, serde::Deserialize)]
#[rtype(result = "()")]
#[serde(rename_all = "camelCase")]
pub enum RoomChanged {
    /// A student's help ended: out at once.
    StudentOut(Uuid),
    /// The room closed (its last student's help ended, or the drop-in slot).
    Closed,
}

impl Handler<RoomChanged> for RoomActor<OfficeHoursRoom> {
    type Result = ();

    fn handle(&mut self, change: RoomChanged, ctx: &mut Context<Self>) {
        let Some(kind) = self.kind.as_mut() else { return };
        let expelled = match change {
            RoomChanged::StudentOut(student) => {
                kind.students.remove(&student);
                vec![student]
            }
            RoomChanged::Closed => {
                kind.students.clear();
                kind.drop_in = false;
                kind.instructor_id = Uuid::nil();
                kind.present.people()
            }
        };
        self.expel(&expelled, |kind, user_id| kind.present.remove(user_id), ctx);
    }
}

/// Tells a room that its people changed, if its actor is alive, on
/// whichever node (a room nobody is in rebuilds from the database when
/// someone enters).
pub fn room_changed(registry: &Arc<Registry>, room_id: Uuid, change: RoomChanged) {
    if registry.cluster.is_none() {
        return room_changed_here(registry, room_id, change);
    }
    let room = RoomRef { room_type: RoomType::OfficeHours, room_id };
    calls::tell_if_alive(registry, room, RoomCall::OfficeRoomChanged(change));
}

/// [`room_changed`] for a room of this node.
pub fn room_changed_here(registry: &Arc<Registry>, room_id: Uuid, change: RoomChanged) {
    if let Some(room) = OfficeHoursRoom::table(registry).existing(room_id) {
        room.do_send(change);
    }
}
