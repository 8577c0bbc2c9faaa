//! Engine.IO v4 and Socket.IO v5 packets, so that a `socket.io-client`
//! speaks our protocol (issue 17). Only the text of the packets lives here;
//! the transports (WebSocket, HTTP long-polling) and the connection actor
//! use it.
//!
//! An event maps one to one: the client's `42<ack>["name", data]` is our
//! `{event, data, ack}`, our push `{event, data}` is `42["name", data]`, and
//! our ack `{ack, ok, data | error}` is `43<ack>[{ok, data | error}]`. Our
//! frames are serialized once for every recipient, and turned into Socket.IO
//! by slicing that text rather than parsing it again.

use serde_json::Value;

use super::{ClientEvent, ClientFrame, FrameError};
use crate::error::AppError;

/// An Engine.IO packet, as one WebSocket text frame or one record of a
/// polling payload carries it.
#[derive(Debug, PartialEq)]
pub enum EnginePacket<'a> {
    /// `0{...}`: the handshake, sent by the server only.
    Open,
    /// `1`: the other side is going away.
    Close,
    /// `2` (or `2probe` while a transport is being upgraded).
    Ping(&'a str),
    /// `3` (or `3probe`).
    Pong(&'a str),
    /// `4...`: a Socket.IO packet.
    Message(&'a str),
    /// `5`: the client switches to the probed WebSocket.
    Upgrade,
    /// `6`: nothing (ends a polling request during an upgrade).
    Noop,
}

impl<'a> EnginePacket<'a> {
    /// None for an empty text or an unknown packet type (and for binary
    /// packets, `b...` in a polling payload: we take no attachments).
    pub fn parse(text: &'a str) -> Option<EnginePacket<'a>> {
        let (kind, rest) = (text.as_bytes().first()?, text.get(1..)?);
        Some(match kind {
            b'0' => EnginePacket::Open,
            b'1' => EnginePacket::Close,
            b'2' => EnginePacket::Ping(rest),
            b'3' => EnginePacket::Pong(rest),
            b'4' => EnginePacket::Message(rest),
            b'5' => EnginePacket::Upgrade,
            b'6' => EnginePacket::Noop,
            _ => return None,
        })
    }
}

/// The record separator between packets in a polling payload.
pub const RECORD_SEPARATOR: char = '\u{1e}';

/// The packets of a polling request's body, in order.
pub fn split_payload(body: &str) -> impl Iterator<Item = &str> {
    body.split(RECORD_SEPARATOR)
}

/// The handshake: `0{"sid", "upgrades", "pingInterval", "pingTimeout", "maxPayload"}`.
pub fn open_packet(
    sid: &str,
    upgrades: &[&str],
    ping_interval_ms: u64,
    ping_timeout_ms: u64,
    max_payload: usize,
) -> String {
    let open = serde_json::json!({
        "sid": sid,
        "upgrades": upgrades,
        "pingInterval": ping_interval_ms,
        "pingTimeout": ping_timeout_ms,
        "maxPayload": max_payload,
    });
    format!("0{open}")
}

/// What a client's Socket.IO packet asks for.
#[derive(Debug)]
pub enum Inbound {
    /// `0{auth}` on the main namespace: the token is `auth.token`.
    Connect { token: Option<String> },
    /// `1`: the client leaves the namespace (and so the connection).
    Disconnect,
    /// `2<ack>["name", data]`, read as our frame would be.
    Event(Result<ClientFrame, FrameError>),
    /// `3<id>[...]`: an answer to an ack we asked for. We never ask.
    Ack,
}

/// A packet we do not serve, with the reason for the client.
#[derive(Debug, PartialEq)]
pub enum Refusal {
    /// Not a Socket.IO packet at all.
    Malformed(&'static str),
    /// A namespace other than `/`.
    Namespace(String),
    /// `5`/`6`: events and acks with binary attachments.
    Binary,
}

impl Refusal {
    /// The error a client is told (`connect_error` data, or an `error` event).
    pub fn error(&self) -> AppError {
        match self {
            Refusal::Malformed(why) => {
                AppError::bad_request("invalid_frame", format!("Not a Socket.IO packet: {why}."))
            }
            Refusal::Namespace(namespace) => AppError::bad_request(
                "unknown_namespace",
                format!("There is no namespace {namespace:?}; connect to the main namespace \"/\"."),
            ),
            Refusal::Binary => AppError::bad_request(
                "binary_not_supported",
                "Binary attachments are not accepted; send the data as JSON.",
            ),
        }
    }
}

/// Reads a Socket.IO packet (the text after an Engine.IO `4`).
pub fn parse_packet(text: &str) -> Result<Inbound, Refusal> {
    let kind = *text.as_bytes().first().ok_or(Refusal::Malformed("the packet is empty"))?;
    let mut rest = &text[1..];
    if matches!(kind, b'5' | b'6') {
        return Err(Refusal::Binary);
    }
    if rest.starts_with('/') {
        let end = rest.find(',').unwrap_or(rest.len());
        let namespace = &rest[..end];
        if namespace != "/" {
            return Err(Refusal::Namespace(namespace.to_string()));
        }
        rest = rest.get(end + 1..).unwrap_or("");
    }
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let (id, payload) = rest.split_at(digits);
    // The Socket.IO client numbers its acks from 0; past u64, it is garbage.
    let id: Option<u64> = match id {
        "" => None,
        id => Some(id.parse().map_err(|_| Refusal::Malformed("the ack id is too large"))?),
    };
    match kind {
        b'0' => {
            let auth: Option<Value> = match payload {
                "" => None,
                json => Some(serde_json::from_str(json).map_err(|_| Refusal::Malformed("the auth is not JSON"))?),
            };
            let token = auth.as_ref().and_then(|auth| auth.get("token")).and_then(Value::as_str).map(str::to_string);
            Ok(Inbound::Connect { token })
        }
        b'1' => Ok(Inbound::Disconnect),
        b'2' => Ok(Inbound::Event(event(id, payload))),
        b'3' => Ok(Inbound::Ack),
        _ => Err(Refusal::Malformed("unknown packet type")),
    }
}

/// `["name", data]` as our frame with this ack id.
fn event(ack: Option<u64>, payload: &str) -> Result<ClientFrame, FrameError> {
    let fail = |code: &str, message: &str| FrameError { ack, error: AppError::bad_request(code, message) };
    let Ok(Value::Array(mut args)) = serde_json::from_str::<Value>(payload) else {
        return Err(fail("invalid_json", "An event is a JSON array: [\"name\", data]."));
    };
    if args.len() > 2 {
        return Err(fail("invalid_frame", "An event carries one data object after its name."));
    }
    let data = match if args.len() == 2 { args.pop() } else { None } {
        None | Some(Value::Null) => Value::Object(Default::default()),
        Some(data @ Value::Object(_)) => data,
        Some(_) => return Err(fail("invalid_data", "\"data\" must be an object.")),
    };
    let Some(Value::String(name)) = args.pop() else {
        return Err(fail("invalid_frame", "An event starts with its name, a string."));
    };
    let event = ClientEvent::from_parts(&name, data).map_err(|error| FrameError { ack, error })?;
    Ok(ClientFrame { event, ack })
}

/// The server's ping; the client answers `3`.
pub const PING: &str = "2";

/// The answer to a client's ping (`2probe` gets `3probe`).
pub fn pong(payload: &str) -> String {
    format!("3{payload}")
}

/// `41`: the server ends the main namespace; the client stays away until
/// told to connect again.
pub const DISCONNECT: &str = "41";

/// `40{"sid"}`: connected to the main namespace.
pub fn connected(sid: &str) -> String {
    format!("40{}", serde_json::json!({ "sid": sid }))
}

/// `44{"message", "data"}`: the connection to the namespace is refused,
/// with our error body as its data. `namespace`: the one the client asked
/// for (`/` needs no prefix).
pub fn connect_error(namespace: &str, error: &AppError) -> String {
    let body = serde_json::json!({ "message": error.body.message, "data": error.body });
    match namespace {
        "/" => format!("44{body}"),
        other => format!("44{other},{body}"),
    }
}

/// Our frame as an Engine.IO message: a push becomes `42["name",data]`, an
/// ack `43<id>[{ok, data | error}]`. None for text of another shape (none
/// is made: every frame comes from `event_frame` and the acks).
pub fn from_native(frame: &str) -> Option<String> {
    if let Some(rest) = frame.strip_prefix(r#"{"event":""#) {
        // Event names are ours: plain ASCII, no quote inside.
        let (name, rest) = rest.split_once('"')?;
        let data = rest.strip_prefix(r#","data":"#)?.strip_suffix('}')?;
        return Some(format!(r#"42["{name}",{data}]"#));
    }
    let rest = frame.strip_prefix(r#"{"ack":"#)?;
    let (id, body) = rest.split_once(',')?;
    if id.is_empty() || !id.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    Some(format!("43{id}[{{{body}]"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{ack_error, ack_ok, event_frame, live_sessions::SessionRef};
    use uuid::Uuid;

    #[test]
    fn engine_packets_are_read_by_their_first_character() {
        assert_eq!(EnginePacket::parse("2probe"), Some(EnginePacket::Ping("probe")));
        assert_eq!(EnginePacket::parse("3"), Some(EnginePacket::Pong("")));
        assert_eq!(EnginePacket::parse(r#"42["x",{}]"#), Some(EnginePacket::Message(r#"2["x",{}]"#)));
        assert_eq!(EnginePacket::parse("5"), Some(EnginePacket::Upgrade));
        assert_eq!(EnginePacket::parse("6"), Some(EnginePacket::Noop));
        assert_eq!(EnginePacket::parse(""), None);
        assert_eq!(EnginePacket::parse("bAAEC"), None, "binary records are not taken");
        assert_eq!(EnginePacket::parse("9"), None);
        let payload: Vec<&str> = split_payload("42[\"a\"]\u{1e}2\u{1e}1").collect();
        assert_eq!(payload, vec!["42[\"a\"]", "2", "1"]);
    }

    #[test]
    fn the_handshake_names_the_session_and_the_timings() {
        let open = open_packet("abc", &["websocket"], 25_000, 20_000, 65_536);
        let json: Value = serde_json::from_str(open.strip_prefix('0').expect("an open packet")).unwrap();
        assert_eq!(json["sid"], "abc");
        assert_eq!(json["upgrades"], serde_json::json!(["websocket"]));
        assert_eq!((json["pingInterval"].as_u64(), json["pingTimeout"].as_u64()), (Some(25_000), Some(20_000)));
        assert_eq!(json["maxPayload"], 65_536);
    }

    #[test]
    fn a_connect_carries_the_token_of_its_auth() {
        let Ok(Inbound::Connect { token }) = parse_packet(r#"0{"token":"t0k"}"#) else { panic!("a connect") };
        assert_eq!(token.as_deref(), Some("t0k"));
        let Ok(Inbound::Connect { token }) = parse_packet("0") else { panic!("a connect") };
        assert_eq!(token, None);
        let Ok(Inbound::Connect { token }) = parse_packet(r#"0/,{"token":"t"}"#) else {
            panic!("the main namespace, spelled out")
        };
        assert_eq!(token.as_deref(), Some("t"));
        assert_eq!(parse_packet("0{nope").unwrap_err(), Refusal::Malformed("the auth is not JSON"));
    }

    #[test]
    fn other_namespaces_and_binary_attachments_are_refused_clearly() {
        assert_eq!(parse_packet(r#"0/admin,{"token":"t"}"#).unwrap_err(), Refusal::Namespace("/admin".into()));
        assert_eq!(parse_packet(r#"2/chat,["x",{}]"#).unwrap_err(), Refusal::Namespace("/chat".into()));
        assert_eq!(parse_packet(r#"51-["up",{"_placeholder":true,"num":0}]"#).unwrap_err(), Refusal::Binary);
        assert_eq!(Refusal::Namespace("/admin".into()).error().code(), "unknown_namespace");
        assert_eq!(Refusal::Binary.error().code(), "binary_not_supported");
        assert!(matches!(parse_packet(""), Err(Refusal::Malformed(_))));
        assert!(matches!(parse_packet("7"), Err(Refusal::Malformed(_))));
    }

    #[test]
    fn an_event_reads_as_our_frame_with_its_ack_id() {
        let id = Uuid::new_v4();
        let Ok(Inbound::Event(Ok(frame))) =
            parse_packet(&format!(r#"212["leave-live-session",{{"sessionId":"{id}"}}]"#))
        else {
            panic!("an event")
        };
        assert_eq!(frame.ack, Some(12));
        assert_eq!(frame.event, ClientEvent::LeaveLiveSession(SessionRef { session_id: id }));
        // No data at all is `{}`, as for our frames.
        let Ok(Inbound::Event(Err(err))) = parse_packet(r#"20["session-message"]"#) else { panic!("an event") };
        assert_eq!((err.ack, err.error.code()), (Some(0), "invalid_data"));
    }

    #[test]
    fn a_bad_event_keeps_its_ack_id_for_the_answer() {
        let cases = [
            (r#"27["fly",{}]"#, Some(7), "unknown_event"),
            (r#"28{"not":"an array"}"#, Some(8), "invalid_json"),
            (r#"29[42,{}]"#, Some(9), "invalid_frame"),
            (r#"2["update-presence","away"]"#, None, "invalid_data"),
            (r#"23["update-presence",{},{}]"#, Some(3), "invalid_frame"),
        ];
        for (packet, ack, code) in cases {
            let Ok(Inbound::Event(Err(err))) = parse_packet(packet) else { panic!("{packet}: an event that fails") };
            assert_eq!((err.ack, err.error.code()), (ack, code), "{packet}");
        }
        assert!(matches!(parse_packet("299999999999999999999999[\"x\"]"), Err(Refusal::Malformed(_))));
    }

    #[test]
    fn our_frames_become_socket_io_packets_without_a_second_parse() {
        let push = event_frame("new-message", &serde_json::json!({ "text": "a \"quoted\" }] word" }));
        let packet = from_native(&push).expect("a push");
        assert_eq!(packet, r#"42["new-message",{"text":"a \"quoted\" }] word"}]"#);
        let as_json: Value = serde_json::from_str(&packet[2..]).unwrap();
        assert_eq!(as_json[1]["text"], "a \"quoted\" }] word");

        let ok = from_native(&ack_ok(31, &serde_json::json!({ "n": 1 }))).expect("an ack");
        assert_eq!(ok, r#"4331[{"ok":true,"data":{"n":1}}]"#);
        let refused = from_native(&ack_error(0, &AppError::forbidden("Not yours."))).expect("an ack");
        let body: Value = serde_json::from_str(refused.strip_prefix("430").expect("ack 0")).unwrap();
        assert_eq!((body[0]["ok"].as_bool(), body[0]["error"]["code"].as_str()), (Some(false), Some("forbidden")));

        assert_eq!(from_native("[1,2]"), None);
        assert_eq!(from_native(r#"{"ack":"x","ok":true}"#), None);
    }

    #[test]
    fn server_messages_are_engine_messages_of_the_main_namespace() {
        assert_eq!(connected("s1"), r#"40{"sid":"s1"}"#);
        let refused = connect_error("/", &AppError::unauthorized("Bad token."));
        let body: Value = serde_json::from_str(refused.strip_prefix("44").expect("connect_error")).unwrap();
        assert_eq!(body["message"], "Bad token.");
        assert_eq!(body["data"]["code"], AppError::unauthorized("Bad token.").code());
        let elsewhere = connect_error("/admin", &Refusal::Namespace("/admin".into()).error());
        let body: Value = serde_json::from_str(elsewhere.strip_prefix("44/admin,").expect("its namespace")).unwrap();
        assert_eq!(body["data"]["code"], "unknown_namespace");
    }
}
