//! The WebSocket wire format of `shared/protocol.md`: the envelope, the
//! events a client may send (the one table from event name to data, below),
//! and the frames the server sends back. Each feature's event data lives in
//! a module of its own.
//!
//! Outbound frames are serialized once into a `ByteString`, which clones by
//! reference count, so a fan-out to a thousand sockets shares one buffer.

use bytestring::ByteString;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{AppError, ErrorBody};

pub mod live_sessions;
pub mod office_hours;
pub mod rooms;
pub mod socket_io;
pub mod study_groups;

use live_sessions::{AskQuestionData, JoinLiveSession, PinQuestionData, QuestionRef, SessionMessage, SessionRef};
use rooms::{EditMessage, JoinRoom, MessageRef, RoomMessage, RoomRef};

/// Names of server-pushed events, in one place.
pub mod events {
    pub const CONNECTED: &str = "connected";
    pub const ERROR: &str = "error";
    pub const USER_JOINED: &str = "user-joined";
    pub const USER_LEFT: &str = "user-left";
    pub const NEW_MESSAGE: &str = "new-message";
    pub const USER_TYPING: &str = "user-typing";
    pub const SESSION_STATUS_CHANGED: &str = "session-status-changed";
    pub const SESSION_UPDATED: &str = "session-updated";
    pub const QUESTIONS_UPDATED: &str = "questions-updated";
    pub const NOTIFICATION: &str = "notification";
    /// A watched user's presence changed: `{userId, status, activity, lastSeenAt}`.
    pub const PRESENCE_UPDATED: &str = "presence-updated";
    pub const PRESENCE_DIFF: &str = "presence-diff";
    pub const MESSAGE_EDITED: &str = "message-edited";
    pub const MESSAGE_DELETED: &str = "message-deleted";
    pub const UNREAD_UPDATED: &str = "unread-updated";
    pub const STUDY_GROUP_UPDATED: &str = "study-group-updated";
    pub const STUDY_GROUP_ACTIVITY: &str = "study-group-activity";
    pub const STUDY_GROUP_INVITE: &str = "study-group-invite";
    pub const REMOVED_FROM_STUDY_GROUP: &str = "removed-from-study-group";
    pub const STUDENT_JOINED_QUEUE: &str = "student-joined-queue";
    pub const QUEUE_UPDATED: &str = "queue-updated";
    pub const QUEUE_POSITION: &str = "queue-position";
    pub const OFFICE_HOURS_UP_SOON: &str = "office-hours-up-soon";
    pub const OFFICE_HOURS_STATUS: &str = "office-hours-status";
    pub const ADMITTED_TO_OFFICE_HOURS: &str = "admitted-to-office-hours";
    pub const REMOVED_FROM_QUEUE: &str = "removed-from-queue";
    pub const OFFICE_HOURS_COMPLETED: &str = "office-hours-completed";
    pub const OFFICE_HOURS_ANNOUNCEMENT: &str = "office-hours-announcement";
    /// Socket.IO only: the server is closing this socket, `{code, reason}`
    /// (a Socket.IO client never sees the WebSocket close code).
    pub const CLOSING: &str = "closing";
}

/// The envelope as it arrives, before the event name is looked at.
#[derive(Debug, Deserialize)]
struct RawFrame {
    /// Loosely typed, so that a frame with a wrong event or data still has
    /// its ack id read and answered.
    #[serde(default)]
    event: Option<Value>,
    #[serde(default)]
    data: Option<Value>,
    #[serde(default)]
    ack: Option<Value>,
}

/// Every event a client may send.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientEvent {
    JoinLiveSession(JoinLiveSession),
    LeaveLiveSession(SessionRef),
    SessionMessage(SessionMessage),
    TypingInSession(SessionRef),
    AskQuestion(AskQuestionData),
    UpvoteQuestion(QuestionRef),
    AnswerQuestion(QuestionRef),
    PinQuestion(PinQuestionData),
    DismissQuestion(QuestionRef),
    /// `{status?, activity?, expiresAt?}`; also the client's heartbeat (`{}`).
    UpdatePresence(crate::domain::presence::PresenceUpdate),
    JoinRoom(JoinRoom),
    LeaveRoom(RoomRef),
    RoomMessage(RoomMessage),
    TypingInRoom(RoomRef),
    EditMessage(EditMessage),
    DeleteMessage(MessageRef),
    MarkRead(MessageRef),
    JoinOfficeHoursQueue(office_hours::JoinQueue),
    LeaveOfficeHoursQueue(office_hours::QueueRef),
    DeferOfficeHoursTurn(office_hours::QueueRef),
    AdmitStudent(office_hours::QueueRef),
    AdmitStudents(office_hours::QueueIds),
    CompleteOfficeHours(office_hours::QueueRef),
    SkipOfficeHours(office_hours::QueueRef),
    AnnounceOfficeHours(office_hours::Announce),
    WatchOfficeHours(office_hours::InstructorRef),
    UnwatchOfficeHours(office_hours::InstructorRef),
}

/// Every event a client may send, by name (the fuzz targets and any client
/// that lists them; a unit test keeps it in step with [`ClientEvent`]).
pub const CLIENT_EVENTS: &[&str] = &[
    "join-live-session",
    "leave-live-session",
    "session-message",
    "typing-in-session",
    "ask-question",
    "upvote-question",
    "answer-question",
    "pin-question",
    "dismiss-question",
    "update-presence",
    "join-room",
    "leave-room",
    "room-message",
    "typing-in-room",
    "edit-message",
    "delete-message",
    "mark-read",
    "join-office-hours-queue",
    "leave-office-hours-queue",
    "defer-office-hours-turn",
    "admit-student",
    "admit-students",
    "complete-office-hours",
    "skip-office-hours",
    "announce-office-hours",
    "watch-office-hours",
    "unwatch-office-hours",
];

impl ClientEvent {
    fn from_parts(name: &str, data: Value) -> Result<ClientEvent, AppError> {
        fn data_of<T: serde::de::DeserializeOwned>(name: &str, data: Value) -> Result<T, AppError> {
            serde_json::from_value(data)
                .map_err(|err| AppError::bad_request("invalid_data", format!("Bad data for {name}: {err}.")))
        }
        Ok(match name {
            "join-live-session" => ClientEvent::JoinLiveSession(data_of(name, data)?),
            "leave-live-session" => ClientEvent::LeaveLiveSession(data_of(name, data)?),
            "session-message" => ClientEvent::SessionMessage(data_of(name, data)?),
            "typing-in-session" => ClientEvent::TypingInSession(data_of(name, data)?),
            "ask-question" => ClientEvent::AskQuestion(data_of(name, data)?),
            "upvote-question" => ClientEvent::UpvoteQuestion(data_of(name, data)?),
            "answer-question" => ClientEvent::AnswerQuestion(data_of(name, data)?),
            "pin-question" => ClientEvent::PinQuestion(data_of(name, data)?),
            "dismiss-question" => ClientEvent::DismissQuestion(data_of(name, data)?),
            "update-presence" => ClientEvent::UpdatePresence(data_of(name, data)?),
            "join-room" => ClientEvent::JoinRoom(data_of(name, data)?),
            "leave-room" => ClientEvent::LeaveRoom(data_of(name, data)?),
            "room-message" => ClientEvent::RoomMessage(data_of(name, data)?),
            "typing-in-room" => ClientEvent::TypingInRoom(data_of(name, data)?),
            "edit-message" => ClientEvent::EditMessage(data_of(name, data)?),
            "delete-message" => ClientEvent::DeleteMessage(data_of(name, data)?),
            "mark-read" => ClientEvent::MarkRead(data_of(name, data)?),
            "join-office-hours-queue" => ClientEvent::JoinOfficeHoursQueue(data_of(name, data)?),
            "leave-office-hours-queue" => ClientEvent::LeaveOfficeHoursQueue(data_of(name, data)?),
            "defer-office-hours-turn" => ClientEvent::DeferOfficeHoursTurn(data_of(name, data)?),
            "admit-student" => ClientEvent::AdmitStudent(data_of(name, data)?),
            "admit-students" => ClientEvent::AdmitStudents(data_of(name, data)?),
            "complete-office-hours" => ClientEvent::CompleteOfficeHours(data_of(name, data)?),
            "skip-office-hours" => ClientEvent::SkipOfficeHours(data_of(name, data)?),
            "announce-office-hours" => ClientEvent::AnnounceOfficeHours(data_of(name, data)?),
            "watch-office-hours" => ClientEvent::WatchOfficeHours(data_of(name, data)?),
            "unwatch-office-hours" => ClientEvent::UnwatchOfficeHours(data_of(name, data)?),
            other => return Err(AppError::bad_request("unknown_event", format!("There is no event named {other:?}."))),
        })
    }
}

/// A client frame that could not be understood, with the ack id to answer
/// on when the frame got far enough to carry one.
#[derive(Debug)]
pub struct FrameError {
    pub ack: Option<u64>,
    pub error: AppError,
}

/// A parsed client frame.
#[derive(Debug)]
pub struct ClientFrame {
    pub event: ClientEvent,
    pub ack: Option<u64>,
}

/// Parses one text frame into an event.
pub fn parse_client_frame(text: &str) -> Result<ClientFrame, FrameError> {
    let not_an_object = |why: String| FrameError {
        ack: None,
        error: AppError::bad_request("invalid_json", format!("The frame is not a JSON object: {why}.")),
    };
    // serde would read a struct from an array too; a frame is an object.
    if !text.trim_start().starts_with('{') {
        return Err(not_an_object("it does not start with {".into()));
    }
    let raw: RawFrame = serde_json::from_str(text).map_err(|err| not_an_object(err.to_string()))?;
    let ack = match raw.ack {
        None | Some(Value::Null) => None,
        Some(Value::Number(number)) if number.as_u64().is_some() => number.as_u64(),
        Some(_) => {
            let error = AppError::bad_request("invalid_frame", "\"ack\" must be a whole number from 0 up.");
            return Err(FrameError { ack: None, error });
        }
    };
    let fail = |code: &str, message: &str| FrameError { ack, error: AppError::bad_request(code, message) };
    let name = match raw.event {
        Some(Value::String(name)) => name,
        Some(_) => return Err(fail("invalid_frame", "\"event\" must be a string.")),
        None => return Err(fail("invalid_frame", "The frame has no \"event\" field.")),
    };
    let data = match raw.data {
        None | Some(Value::Null) => Value::Object(Default::default()),
        Some(data @ Value::Object(_)) => data,
        Some(_) => return Err(fail("invalid_data", "\"data\" must be an object.")),
    };
    let event = ClientEvent::from_parts(&name, data).map_err(|error| FrameError { ack, error })?;
    Ok(ClientFrame { event, ack })
}

#[derive(Serialize)]
struct EventFrame<'a, T: Serialize + ?Sized> {
    event: &'a str,
    data: &'a T,
}

#[derive(Serialize)]
struct AckOk<'a, T: Serialize> {
    ack: u64,
    ok: bool,
    data: &'a T,
}

#[derive(Serialize)]
struct AckError<'a> {
    ack: u64,
    ok: bool,
    error: &'a ErrorBody,
}

fn to_frame<T: Serialize>(value: &T) -> ByteString {
    // Serializing our own types cannot fail (string keys, no non-finite floats).
    ByteString::from(serde_json::to_string(value).unwrap_or_else(|err| {
        log::error!("frame serialization failed: {err}");
        String::from("{\"event\":\"error\",\"data\":{\"code\":\"internal\",\"message\":\"serialization failed\"}}")
    }))
}

/// `{"event": name, "data": data}`, serialized once.
pub fn event_frame<T: Serialize + ?Sized>(event: &str, data: &T) -> ByteString {
    to_frame(&EventFrame { event, data })
}

pub fn ack_ok<T: Serialize>(ack: u64, data: &T) -> ByteString {
    to_frame(&AckOk { ack, ok: true, data })
}

pub fn ack_error(ack: u64, error: &AppError) -> ByteString {
    to_frame(&AckError { ack, ok: false, error: &error.body })
}

/// The answer to a frame: an ack when the client asked for one; without an
/// ack id only errors are worth a frame (`event: error`).
pub fn reply_frame<T: Serialize>(ack: Option<u64>, result: &Result<T, AppError>) -> Option<ByteString> {
    match (ack, result) {
        (Some(ack), Ok(data)) => Some(ack_ok(ack, data)),
        (Some(ack), Err(err)) => Some(ack_error(ack, err)),
        (None, Ok(_)) => None,
        (None, Err(err)) => Some(event_frame(events::ERROR, &err.body)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use uuid::Uuid;

    #[test]
    fn every_listed_event_is_known_and_every_match_arm_is_listed() {
        for name in CLIENT_EVENTS {
            let refused = ClientEvent::from_parts(name, Value::Object(Default::default())).err();
            assert_ne!(refused.map(|err| err.code().to_string()), Some("unknown_event".into()), "{name}");
        }
        // The match in `from_parts` has one arm per event and one for the rest.
        let source = include_str!("mod.rs");
        let arm = [" => ", "ClientEvent::"].concat(); // not spelled whole, so this line is no match
        let arms = source.matches(arm.as_str()).count();
        assert_eq!(arms, CLIENT_EVENTS.len(), "an event added to from_parts is listed in CLIENT_EVENTS");
    }

    #[test]
    fn room_events_parse_with_their_defaults() {
        let room = Uuid::new_v4();
        let frame =
            parse_client_frame(&format!(r#"{{"event":"room-message","data":{{"roomId":"{room}","message":"hi"}}}}"#))
                .unwrap();
        let ClientEvent::RoomMessage(message) = frame.event else { panic!("a room message") };
        assert_eq!((message.room_id, message.message_type), (room, crate::domain::chat::MessageType::Text));
        let bad = format!(
            r#"{{"event":"room-message","data":{{"roomId":"{room}","message":"x","messageType":"gif"}},"ack":1}}"#
        );
        assert_eq!(parse_client_frame(&bad).unwrap_err().error.code(), "invalid_data");
    }

    #[test]
    fn a_known_event_parses_with_its_ack() {
        let id = Uuid::new_v4();
        let frame =
            parse_client_frame(&format!(r#"{{"event":"leave-live-session","data":{{"sessionId":"{id}"}},"ack":7}}"#))
                .unwrap();
        assert_eq!(frame.ack, Some(7));
        assert_eq!(frame.event, ClientEvent::LeaveLiveSession(SessionRef { session_id: id }));
    }

    #[test]
    fn bad_frames_get_distinct_codes_and_keep_the_ack_when_they_can() {
        let err = parse_client_frame("{not json").unwrap_err();
        assert_eq!((err.ack, err.error.code()), (None, "invalid_json"));
        let err = parse_client_frame(r#"{"event":"fly","data":{},"ack":3}"#).unwrap_err();
        assert_eq!((err.ack, err.error.code()), (Some(3), "unknown_event"));
        let err = parse_client_frame(r#"{"event":"session-message","data":{"message":"hi"},"ack":4}"#).unwrap_err();
        assert_eq!((err.ack, err.error.code()), (Some(4), "invalid_data"));
        assert!(err.error.body.message.contains("sessionId"), "{}", err.error.body.message);
        let err = parse_client_frame(r#"{"data":{},"ack":5}"#).unwrap_err();
        assert_eq!((err.ack, err.error.code()), (Some(5), "invalid_frame"));
    }

    #[test]
    fn a_frame_with_an_ack_id_is_answered_on_it_whatever_else_is_wrong() {
        let err = parse_client_frame(r#"{"event":5,"ack":25}"#).unwrap_err();
        assert_eq!((err.ack, err.error.code()), (Some(25), "invalid_frame"));
        let room = Uuid::new_v4();
        let array = format!(r#"{{"event":"typing-in-room","data":["{room}"],"ack":26}}"#);
        let err = parse_client_frame(&array).unwrap_err();
        assert_eq!((err.ack, err.error.code()), (Some(26), "invalid_data"), "data must be an object");
        let err = parse_client_frame(r#"{"event":"update-presence","ack":"x"}"#).unwrap_err();
        assert_eq!((err.ack, err.error.code()), (None, "invalid_frame"), "no ack id to answer on");
        assert!(parse_client_frame(r#"{"event":"update-presence","data":null,"ack":3}"#).is_ok());
        assert_eq!(parse_client_frame("[1]").unwrap_err().error.code(), "invalid_json");
    }

    #[test]
    fn replies_follow_the_envelope() {
        assert_eq!(&*ack_ok(7, &serde_json::json!({})), r#"{"ack":7,"ok":true,"data":{}}"#);
        let err = AppError::bad_request("x", "y");
        assert_eq!(&*ack_error(8, &err), r#"{"ack":8,"ok":false,"error":{"code":"x","message":"y"}}"#);
        let frame = reply_frame::<()>(None, &Err(err)).unwrap();
        assert_eq!(&*frame, r#"{"event":"error","data":{"code":"x","message":"y"}}"#);
        assert!(reply_frame(None, &Ok(())).is_none());
    }
}
