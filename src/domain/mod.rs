//! Pure rules of the product, free of I/O: actors own these structs and do
//! the talking; unit tests drive them directly with made-up times.

pub mod attendance;
pub mod chat;
pub mod chat_log;
pub mod input;
pub mod join_code;
pub mod live_session;
pub mod office_hours;
pub mod presence;
pub mod questions;
pub mod rate_limit;
pub mod reminders;
pub mod room;
pub mod study_group;

use serde::{Deserialize, Serialize};

/// What a user is on the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Student,
    Instructor,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Student => "student",
            Role::Instructor => "instructor",
            Role::Admin => "admin",
        }
    }

    /// Whether this role may teach: create courses, hold office hours.
    pub fn teaches(self) -> bool {
        matches!(self, Role::Instructor | Role::Admin)
    }

    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "student" => Some(Role::Student),
            "instructor" => Some(Role::Instructor),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}
