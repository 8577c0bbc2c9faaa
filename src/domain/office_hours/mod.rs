//! Virtual office hours: an instructor's weekly slots (`schedule`), the
//! live queue with its private rooms (`queue`) and the figures afterwards
//! (`analytics`); plus the limits on what students and instructors write.

pub mod analytics;
pub mod queue;
pub mod schedule;

use crate::domain::input;
use crate::error::{AppError, AppResult};

/// Longest question a student may ask when joining (the plan's column size).
pub const MAX_QUESTION_CHARS: usize = 500;
pub const MAX_TOPIC_CHARS: usize = 100;
pub const MAX_ANNOUNCEMENT_CHARS: usize = 500;

/// Why an entry ended (`endReason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum EndReason {
    Completed,
    Left,
    Closed,
    Absent,
    Skipped,
    Inactive,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Completed => "completed",
            EndReason::Left => "left",
            EndReason::Closed => "closed",
            EndReason::Absent => "absent",
            EndReason::Skipped => "skipped",
            EndReason::Inactive => "inactive",
        }
    }

    /// The entry's status once it ended this way.
    pub fn status(self) -> &'static str {
        match self {
            EndReason::Completed | EndReason::Inactive => "completed",
            _ => "cancelled",
        }
    }
}

/// A question or topic: trimmed, empty as none, within its limit.
pub fn validate_question(question: Option<&str>) -> AppResult<Option<String>> {
    optional_text("question", question, MAX_QUESTION_CHARS, "question_too_long", true)
}

pub fn validate_topic(topic: Option<&str>) -> AppResult<Option<String>> {
    optional_text("topic", topic, MAX_TOPIC_CHARS, "topic_too_long", false)
}

pub fn validate_announcement(message: &str) -> AppResult<String> {
    optional_text("message", Some(message), MAX_ANNOUNCEMENT_CHARS, "message_too_long", true)?
        .ok_or_else(|| AppError::bad_request("empty_message", "An announcement needs some text."))
}

fn optional_text(field: &str, text: Option<&str>, max: usize, code: &str, lines: bool) -> AppResult<Option<String>> {
    let Some(text) = text.map(str::trim).filter(|text| !text.is_empty()) else { return Ok(None) };
    if lines {
        input::multi_line(field, text)?;
    } else {
        input::single_line(field, text)?;
    }
    if text.chars().count() > max {
        return Err(AppError::bad_request(code, format!("{field} may be at most {max} characters.")));
    }
    Ok(Some(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn questions_topics_and_announcements_are_bounded_and_clean() {
        assert_eq!(validate_question(Some("  ")).unwrap(), None);
        assert_eq!(validate_question(Some(" Why? \n")).unwrap().as_deref(), Some("Why?"));
        assert_eq!(validate_question(Some(&"q".repeat(501))).unwrap_err().code(), "question_too_long");
        assert_eq!(validate_question(Some("a\u{0}b")).unwrap_err().code(), "invalid_text");
        assert_eq!(validate_topic(Some("two\nlines")).unwrap_err().code(), "invalid_text");
        assert_eq!(validate_topic(Some(&"t".repeat(101))).unwrap_err().code(), "topic_too_long");
        assert_eq!(validate_announcement("  ").unwrap_err().code(), "empty_message");
        assert_eq!(validate_announcement("Back in 5").unwrap(), "Back in 5");
    }
}
