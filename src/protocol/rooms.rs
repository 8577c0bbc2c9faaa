//! The chat-room events of contract v2, shared by every kind of room (a live
//! session's chat, a study group's, a private office-hours room): what
//! clients send, and the frames rooms push. Frames of a live session's room
//! also name the session (`sessionId`), as contract v1 clients expect.

use bytestring::ByteString;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::chat::{ChatMessage, MessageType};
use crate::domain::room::ParticipantView;
use crate::domain::Role;
use crate::protocol::{event_frame, events};

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JoinRoom {
    pub room_id: Uuid,
    /// A reconnecting client's last message; what came after is in the ack.
    #[serde(default)]
    pub since_message_id: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomRef {
    pub room_id: Uuid,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomMessage {
    pub room_id: Uuid,
    pub message: String,
    #[serde(default)]
    pub message_type: MessageType,
    #[serde(default)]
    pub client_msg_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EditMessage {
    pub room_id: Uuid,
    pub message_id: Uuid,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageRef {
    pub room_id: Uuid,
    pub message_id: Uuid,
}

/// The ack of a message sent, edited or deleted.
#[derive(Debug, Serialize)]
pub struct MessageAck {
    pub message: ChatMessage,
}

/// The ack of `mark-read`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UnreadAck {
    pub unread_count: u64,
}

/// Which room a frame speaks of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomScope {
    pub room_id: Uuid,
    /// The live session whose room this is (contract v1 names it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<Uuid>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Scoped<'a, T: Serialize> {
    #[serde(flatten)]
    scope: RoomScope,
    #[serde(flatten)]
    data: &'a T,
}

fn scoped<T: Serialize>(event: &str, scope: RoomScope, data: &T) -> ByteString {
    event_frame(event, &Scoped { scope, data })
}

#[derive(Serialize)]
struct MessageOnly<'a> {
    message: &'a ChatMessage,
}

pub fn new_message(scope: RoomScope, message: &ChatMessage) -> ByteString {
    scoped(events::NEW_MESSAGE, scope, &MessageOnly { message })
}

pub fn message_edited(scope: RoomScope, message: &ChatMessage) -> ByteString {
    scoped(events::MESSAGE_EDITED, scope, &MessageOnly { message })
}

pub fn message_deleted(scope: RoomScope, message_id: Uuid) -> ByteString {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Deleted {
        message_id: Uuid,
    }
    scoped(events::MESSAGE_DELETED, scope, &Deleted { message_id })
}

pub fn user_joined(scope: RoomScope, participant: &ParticipantView) -> ByteString {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct User<'a> {
        user_id: Uuid,
        name: &'a str,
        role: Role,
    }
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Joined<'a> {
        user: User<'a>,
        joined_at: DateTime<Utc>,
    }
    let user = User { user_id: participant.user_id, name: &participant.name, role: participant.role };
    scoped(events::USER_JOINED, scope, &Joined { user, joined_at: participant.joined_at })
}

pub fn user_left(scope: RoomScope, user_id: Uuid, left_at: DateTime<Utc>) -> ByteString {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Left {
        user_id: Uuid,
        left_at: DateTime<Utc>,
    }
    scoped(events::USER_LEFT, scope, &Left { user_id, left_at })
}

pub fn user_typing(scope: RoomScope, user_id: Uuid, name: &str) -> ByteString {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Typing<'a> {
        user_id: Uuid,
        name: &'a str,
    }
    scoped(events::USER_TYPING, scope, &Typing { user_id, name })
}

pub fn unread_updated(room_id: Uuid, unread_count: u64) -> ByteString {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Unread {
        room_id: Uuid,
        unread_count: u64,
    }
    event_frame(events::UNREAD_UPDATED, &Unread { room_id, unread_count })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_sessions_frames_name_both_the_room_and_the_session() {
        let (room_id, session_id) = (Uuid::new_v4(), Uuid::new_v4());
        let frame = user_typing(RoomScope { room_id, session_id: Some(session_id) }, room_id, "Ada");
        let value: serde_json::Value = serde_json::from_str(&frame).unwrap();
        assert_eq!(value["event"], "user-typing");
        assert_eq!(value["data"]["roomId"], room_id.to_string());
        assert_eq!(value["data"]["sessionId"], session_id.to_string());
        let frame = message_deleted(RoomScope { room_id, session_id: None }, session_id);
        let value: serde_json::Value = serde_json::from_str(&frame).unwrap();
        assert!(value["data"].get("sessionId").is_none(), "other rooms name no session: {value}");
        assert_eq!(value["data"]["messageId"], session_id.to_string());
    }
}
