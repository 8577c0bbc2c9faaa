//! What every chat room has, whatever it belongs to: its kind, how it is
//! shown, and how a person stands towards it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::Role;

/// What a room belongs to (`chat_rooms.room_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoomType {
    LiveSession,
    StudyGroup,
    OfficeHours,
}

impl RoomType {
    pub fn as_str(self) -> &'static str {
        match self {
            RoomType::LiveSession => "live_session",
            RoomType::StudyGroup => "study_group",
            RoomType::OfficeHours => "office_hours",
        }
    }

    pub fn parse(text: &str) -> Option<RoomType> {
        match text {
            "live_session" => Some(RoomType::LiveSession),
            "study_group" => Some(RoomType::StudyGroup),
            "office_hours" => Some(RoomType::OfficeHours),
            _ => None,
        }
    }
}

/// A room as the `join-room` ack shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoomInfo {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub room_type: RoomType,
    pub name: String,
}

/// Someone in a room, as `user-joined` and the join acks show them.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantView {
    pub user_id: Uuid,
    pub name: String,
    pub role: Role,
    pub joined_at: DateTime<Utc>,
}

/// What letting a socket into a room came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// The person was not in the room: tell the others.
    Entered,
    /// Another tab of someone already present: nothing changes for the others.
    AnotherTab,
}

/// How someone stands towards a room: outsiders have no standing at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Leads it: sees everything (who asked anonymously), moderates.
    Host,
    Member,
}

/// Who may enter a live session's room, and read or post in it: its
/// instructor and admins (as hosts), and the students of its course. REST
/// and WebSocket both ask this.
pub fn session_standing(user_id: Uuid, role: Role, instructor_id: Uuid, enrolled: bool) -> Option<Standing> {
    if user_id == instructor_id || role == Role::Admin {
        Some(Standing::Host)
    } else if enrolled {
        Some(Standing::Member)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_for_its_instructor_admins_and_its_course() {
        let instructor = Uuid::new_v4();
        let someone = Uuid::new_v4();
        assert_eq!(session_standing(instructor, Role::Instructor, instructor, false), Some(Standing::Host));
        assert_eq!(session_standing(someone, Role::Admin, instructor, false), Some(Standing::Host));
        assert_eq!(session_standing(someone, Role::Student, instructor, true), Some(Standing::Member));
        assert_eq!(session_standing(someone, Role::Instructor, instructor, false), None, "another instructor");
        assert_eq!(session_standing(someone, Role::Student, instructor, false), None);
    }

    #[test]
    fn room_types_round_trip() {
        for kind in [RoomType::LiveSession, RoomType::StudyGroup, RoomType::OfficeHours] {
            assert_eq!(RoomType::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(RoomType::parse("ai_tutor"), None);
    }
}
