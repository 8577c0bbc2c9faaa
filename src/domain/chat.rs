//! Chat messages: what one looks like on the wire and what is accepted.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::error::AppError;

/// Longest message accepted, in characters.
pub const MAX_MESSAGE_CHARS: usize = 4_000;

/// Longest client message id accepted, in bytes.
pub const MAX_CLIENT_MSG_ID_BYTES: usize = 100;

/// A chat message as the wire contract shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatMessage {
    pub id: Uuid,
    pub room_id: Uuid,
    pub sender_id: Uuid,
    pub sender_name: String,
    pub message: String,
    pub message_type: String,
    pub created_at: DateTime<Utc>,
    pub client_msg_id: Option<String>,
    /// Order within the room; internal, not on the wire.
    #[serde(skip)]
    pub seq: i64,
}

/// Checks a message a person typed; returns it with surrounding blank space removed.
pub fn validate_message(text: &str) -> Result<String, AppError> {
    let trimmed = text.trim();
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

pub fn validate_client_msg_id(id: &Option<String>) -> Result<(), AppError> {
    match id {
        Some(id) if id.len() > MAX_CLIENT_MSG_ID_BYTES => Err(AppError::bad_request(
            "invalid_client_msg_id",
            format!("clientMsgId may have at most {MAX_CLIENT_MSG_ID_BYTES} bytes."),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_trimmed_and_bounded() {
        assert_eq!(validate_message("  hi  ").unwrap(), "hi");
        assert_eq!(validate_message("   ").unwrap_err().code(), "empty_message");
        let long = "é".repeat(MAX_MESSAGE_CHARS + 1);
        assert_eq!(validate_message(&long).unwrap_err().code(), "too_large");
        assert!(validate_message(&"é".repeat(MAX_MESSAGE_CHARS)).is_ok(), "the limit counts characters, not bytes");
    }
}
