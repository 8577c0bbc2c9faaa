//! The live session as a kind of room: the session's rules (join window,
//! capacity, who leads) come from `domain::live_session`, attendance rows
//! and the "In live session" activity line are its hooks, and its own
//! events (lifecycle, Q&A) are handlers on `RoomActor<LiveSession>` in the
//! modules below. Chat is the room core's.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::config::Config;
use crate::db::{self, parse_ids, to_db_time, AnyConnection};
use crate::domain::live_session::{Joiner, LiveSessionRoom, SessionView};
use crate::domain::questions::{Audience, QuestionBoard, QuestionView};
use crate::domain::room::{Admission, ParticipantView, RoomInfo, RoomType};
use crate::engine::registry::{ActorTable, Registry};
use crate::engine::room::{Loaded, RoomActor, RoomKind, Storing};
use crate::error::{AppError, AppResult};
use crate::protocol::rooms::RoomScope;

mod lifecycle;
mod questions;

pub use lifecycle::{announce_scheduled, command_room, command_room_here, RoomCommand, SessionCommand};
pub use questions::{AskQuestion, ModerateQuestion, Moderation, UpvoteQuestion};

/// A live session's state in its room actor.
pub struct LiveSession {
    pub room: LiveSessionRoom,
    pub questions: QuestionBoard,
}

/// What joining a session's room shows besides the room and its people.
#[derive(Debug, Serialize)]
pub struct LiveSessionJoinView {
    pub session: SessionView,
    /// The Q&A list as this person may see it (added to the contract).
    pub questions: Vec<QuestionView>,
}

impl RoomKind for LiveSession {
    const TYPE: RoomType = RoomType::LiveSession;
    type JoinView = LiveSessionJoinView;

    fn table(registry: &Registry) -> &ActorTable<RoomActor<Self>> {
        &registry.live_sessions
    }

    fn load(conn: &mut AnyConnection, room_id: Uuid, config: &Config) -> AppResult<Option<Loaded<Self>>> {
        let Some(row) = db::live_sessions::find_by_room(conn, &room_id.to_string())? else { return Ok(None) };
        let facts = db::live_sessions::load_facts(conn, &row)?;
        let present = parse_ids(&db::live_sessions::present_user_ids(conn, &row.id)?)?;
        let questions = db::questions::load_board(conn, &row.id)?;
        let early_join = chrono::Duration::minutes(config.join_early_minutes);
        Ok(Some(Loaded { kind: LiveSession { room: LiveSessionRoom::new(facts, early_join), questions }, present }))
    }

    fn info(&self) -> RoomInfo {
        RoomInfo { id: self.room.facts.chat_room_id, room_type: Self::TYPE, name: self.room.facts.title.clone() }
    }

    fn scope(&self) -> RoomScope {
        RoomScope { room_id: self.room.facts.chat_room_id, session_id: Some(self.room.facts.id) }
    }

    fn admit(&mut self, user: &AuthUser, socket_id: Uuid, now: DateTime<Utc>) -> AppResult<Admission> {
        Ok(self.room.join(&joiner(user), socket_id, now)?)
    }

    fn restore(&mut self, user: &AuthUser, socket_id: Uuid, now: DateTime<Utc>) {
        self.room.restore(&joiner(user), socket_id, now);
    }

    fn holds(&self, user_id: Uuid, socket_id: Uuid) -> bool {
        self.room.holds(user_id, socket_id)
    }

    fn leave(&mut self, user_id: Uuid, socket_id: Uuid) -> bool {
        self.room.leave(user_id, socket_id)
    }

    fn is_empty(&self) -> bool {
        self.room.is_empty()
    }

    fn is_host(&self, user: &AuthUser) -> bool {
        self.room.leads(user.id, user.role)
    }

    fn participants(&self) -> Vec<ParticipantView> {
        self.room.participants().map(ParticipantView::from).collect()
    }

    fn participant(&self, user_id: Uuid) -> Option<ParticipantView> {
        self.room.participants().find(|p| p.user_id == user_id).map(ParticipantView::from)
    }

    fn join_view(&self, host: bool) -> LiveSessionJoinView {
        let audience = if host { Audience::Leaders } else { Audience::Classmates };
        LiveSessionJoinView {
            session: SessionView::new(&self.room.facts, self.room.attendee_count()),
            questions: self.questions.views(audience),
        }
    }

    fn not_joined() -> AppError {
        AppError::forbidden("Join the session first.")
    }

    fn socket_entered(&self, registry: &Arc<Registry>, user: &AuthUser, socket_id: Uuid) {
        let facts = &self.room.facts;
        crate::engine::presence::joined_session(registry, user.id, socket_id, facts.id, &facts.title);
    }

    fn socket_left(&self, registry: &Registry, user_id: Uuid, socket_id: Uuid) {
        crate::engine::presence::left_session(registry, user_id, socket_id, self.room.facts.id);
    }

    fn person_entered(&self, registry: &Registry, user_id: Uuid, at: DateTime<Utc>) -> Option<Storing> {
        let (session, user) = (self.room.facts.id.to_string(), user_id.to_string());
        let persistence = registry.deps.persistence.clone();
        Some(Box::pin(async move {
            persistence.write(move |conn| db::live_sessions::record_join(conn, &session, &user, to_db_time(at))).await
        }))
    }

    fn person_left(&self, registry: &Registry, user_id: Uuid, at: DateTime<Utc>) {
        let (session, user) = (self.room.facts.id.to_string(), user_id.to_string());
        registry.deps.persistence.write_in_background("a leave", move |conn| {
            db::live_sessions::record_leave(conn, &session, &user, to_db_time(at))
        });
    }
}

fn joiner(user: &AuthUser) -> Joiner {
    Joiner { user_id: user.id, name: user.name.clone(), role: user.role }
}
