//! The live-session events a client sends (contract v1 and the Q&A
//! additions); their pushes are the room frames of `protocol::rooms`, and
//! the session's own (status, Q&A) are built where they happen.

use serde::Deserialize;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionRef {
    pub session_id: Uuid,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JoinLiveSession {
    pub session_id: Uuid,
    /// A reconnecting client's last message; what came after is replayed.
    #[serde(default)]
    pub since_message_id: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionMessage {
    pub session_id: Uuid,
    pub message: String,
    #[serde(default)]
    pub client_msg_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AskQuestionData {
    pub session_id: Uuid,
    pub question: String,
    /// Hide my name from classmates (the instructor still sees it).
    #[serde(default)]
    pub anonymous: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QuestionRef {
    pub session_id: Uuid,
    pub question_id: Uuid,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PinQuestionData {
    pub session_id: Uuid,
    pub question_id: Uuid,
    /// false unpins; default true.
    #[serde(default = "yes")]
    pub pinned: bool,
}

fn yes() -> bool {
    true
}
