//! Chat messages: what one looks like on the wire, what is accepted, and who
//! may change one afterwards.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::input;
use crate::error::AppError;

/// Longest message accepted, in characters.
pub const MAX_MESSAGE_CHARS: usize = 4_000;

/// Longest link accepted, in bytes.
pub const MAX_LINK_BYTES: usize = 2_000;

/// Longest client message id accepted, in bytes.
pub const MAX_CLIENT_MSG_ID_BYTES: usize = 100;

/// What a message carries: typed text, or a link someone shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MessageType {
    #[default]
    Text,
    Link,
}

impl MessageType {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageType::Text => "text",
            MessageType::Link => "link",
        }
    }

    /// Reads a stored type; anything unknown shows as text.
    pub fn from_stored(text: &str) -> MessageType {
        if text == "link" {
            MessageType::Link
        } else {
            MessageType::Text
        }
    }
}

/// A chat message as the wire contract shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatMessage {
    pub id: Uuid,
    pub room_id: Uuid,
    pub sender_id: Uuid,
    pub sender_name: String,
    /// Empty once the message is deleted.
    pub message: String,
    pub message_type: MessageType,
    pub created_at: DateTime<Utc>,
    pub client_msg_id: Option<String>,
    pub edited_at: Option<DateTime<Utc>>,
    pub deleted: bool,
    /// Order within the room; internal, not on the wire.
    #[serde(skip)]
    pub seq: i64,
}

impl ChatMessage {
    /// The message with new text, if `editor` wrote it and it still exists.
    pub fn edited(&self, editor: Uuid, text: String, now: DateTime<Utc>) -> Result<ChatMessage, AppError> {
        self.check_author(editor, "edit")?;
        Ok(ChatMessage { message: text, edited_at: Some(now), ..self.clone() })
    }

    /// The message as deleted (its text gone), if `by` wrote it.
    pub fn deleted_by(&self, by: Uuid, now: DateTime<Utc>) -> Result<ChatMessage, AppError> {
        self.check_author(by, "delete")?;
        Ok(ChatMessage { message: String::new(), deleted: true, edited_at: Some(now), ..self.clone() })
    }

    fn check_author(&self, user: Uuid, action: &str) -> Result<(), AppError> {
        if self.sender_id != user {
            return Err(AppError::forbidden(format!("Only its author may {action} a message.")));
        }
        if self.deleted {
            return Err(AppError::conflict("message_deleted", "This message was deleted."));
        }
        Ok(())
    }
}

/// Checks a message a person typed; returns it with surrounding blank space removed.
pub fn validate_message(text: &str) -> Result<String, AppError> {
    let trimmed = text.trim();
    input::multi_line("A message", trimmed)?;
    if trimmed.is_empty() {
        return Err(AppError::bad_request("empty_message", "A message needs some text."));
    }
    let chars = trimmed.chars().count();
    if chars > MAX_MESSAGE_CHARS {
        return Err(AppError::too_large(format!(
            "A message may have at most {MAX_MESSAGE_CHARS} characters; this one has {chars}."
        )));
    }
    Ok(trimmed.to_string())
}

/// Checks the body of a message of the given type: any text, or one
/// http(s) link with nothing around it (pages render it as a link).
pub fn validate_body(text: &str, message_type: MessageType) -> Result<String, AppError> {
    let text = validate_message(text)?;
    if message_type == MessageType::Link {
        let web = text.starts_with("https://") || text.starts_with("http://");
        if !web || text.len() > MAX_LINK_BYTES || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(AppError::bad_request(
                "invalid_link",
                format!("A link must be one http(s) URL of at most {MAX_LINK_BYTES} bytes."),
            ));
        }
    }
    Ok(text)
}

pub fn validate_client_msg_id(id: &Option<String>) -> Result<(), AppError> {
    if let Some(id) = id {
        input::single_line("clientMsgId", id)?;
    }
    match id {
        Some(id) if id.is_empty() || id.len() > MAX_CLIENT_MSG_ID_BYTES => Err(AppError::bad_request(
            "invalid_client_msg_id",
            format!("clientMsgId needs 1 to {MAX_CLIENT_MSG_ID_BYTES} bytes."),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn message(sender: Uuid) -> ChatMessage {
        ChatMessage {
            id: Uuid::new_v4(),
            room_id: Uuid::new_v4(),
            sender_id: sender,
            sender_name: "Ada".into(),
            message: "hello".into(),
            message_type: MessageType::Text,
            created_at: Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap(),
            client_msg_id: None,
            edited_at: None,
            deleted: false,
            seq: 1,
        }
    }

    #[test]
    fn messages_are_trimmed_and_bounded() {
        assert_eq!(validate_message("  hi  ").unwrap(), "hi");
        assert_eq!(validate_message("   ").unwrap_err().code(), "empty_message");
        let long = "é".repeat(MAX_MESSAGE_CHARS + 1);
        assert_eq!(validate_message(&long).unwrap_err().code(), "too_large");
        assert!(validate_message(&"é".repeat(MAX_MESSAGE_CHARS)).is_ok(), "the limit counts characters, not bytes");
    }

    #[test]
    fn a_link_is_one_web_url() {
        assert_eq!(validate_body(" https://example.com/a ", MessageType::Link).unwrap(), "https://example.com/a");
        for bad in ["javascript:alert(1)", "see https://example.com", "ftp://example.com", "https://a b"] {
            assert_eq!(validate_body(bad, MessageType::Link).unwrap_err().code(), "invalid_link", "{bad}");
        }
        assert!(validate_body("see https://example.com", MessageType::Text).is_ok(), "text may hold anything");
    }

    #[test]
    fn only_the_author_edits_or_deletes_and_a_deleted_message_stays_deleted() {
        let ada = Uuid::new_v4();
        let original = message(ada);
        let now = original.created_at + chrono::Duration::minutes(1);
        assert_eq!(original.edited(Uuid::new_v4(), "x".into(), now).unwrap_err().code(), "forbidden");
        let edited = original.edited(ada, "hello, world".into(), now).unwrap();
        assert_eq!((edited.message.as_str(), edited.edited_at), ("hello, world", Some(now)));
        let deleted = edited.deleted_by(ada, now).unwrap();
        assert!(deleted.deleted && deleted.message.is_empty());
        assert_eq!(deleted.edited(ada, "back".into(), now).unwrap_err().code(), "message_deleted");
    }

    #[test]
    fn client_message_ids_are_bounded() {
        assert!(validate_client_msg_id(&None).is_ok());
        assert!(validate_client_msg_id(&Some("c1".into())).is_ok());
        assert!(validate_client_msg_id(&Some(String::new())).is_err());
        assert!(validate_client_msg_id(&Some("x".repeat(MAX_CLIENT_MSG_ID_BYTES + 1))).is_err());
    }
}
