//! Socket.IO at `/socket.io/` (issue 17), so a `socket.io-client` connects
//! with no change but the URL: Engine.IO v4 and Socket.IO v5, around the
//! same connection actor and events as `/ws`.
//!
//! Both transports a client uses by default:
//! - `polling`: HTTP long-polling, what a client opens first; a session
//!   (`engine::polling`) holds its packets between requests.
//! - `websocket`: opened directly (`transports: ["websocket"]`), or as the
//!   upgrade of a polling session (`websocket::serve_upgrade`).
//!
//! Either way the client first gets our open packet, then sends its
//! connect packet with its token in `auth`; only then does a connection
//! actor exist. Until then a client holds a bounded handshake, which ends
//! after `WS_CLIENT_TIMEOUT_MS`.

mod polling;
mod websocket;

use std::time::Duration;

use actix_web::web;

use crate::auth::AuthUser;
use crate::config::Config;
use crate::engine::connection::SocketToken;
use crate::error::{AppError, AppResult};
use crate::protocol::socket_io::{self, EnginePacket, Inbound, Refusal};
use crate::state::AppState;

pub use websocket::{serve_upgrade, serve_websocket};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource(["/socket.io/", "/socket.io"])
            .route(web::get().to(polling::get))
            .route(web::post().to(polling::post))
            .default_service(web::to(|| async {
                Err::<actix_web::HttpResponse, _>(AppError::new(
                    actix_web::http::StatusCode::METHOD_NOT_ALLOWED,
                    "method_not_allowed",
                    "Socket.IO's polling takes GET and POST.",
                ))
            })),
    );
}

/// Socket.IO's path, with or without its trailing slash.
pub fn is_path(path: &str) -> bool {
    matches!(path, "/socket.io/" | "/socket.io")
}

/// The transport an Engine.IO request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Polling,
    WebSocket,
}

/// What an Engine.IO request says in its query (others, such as the
/// client's cache-buster `t`, are ignored).
#[derive(Debug, Default, serde::Deserialize)]
struct RawQuery {
    #[serde(rename = "EIO")]
    eio: Option<String>,
    transport: Option<String>,
    sid: Option<String>,
}

/// An Engine.IO request's query, checked: version 4 and a transport we serve.
#[derive(Debug)]
pub struct EngineQuery {
    pub transport: Transport,
    /// The polling session the request belongs to (or upgrades).
    pub sid: Option<String>,
}

impl EngineQuery {
    pub fn parse(query: &str) -> AppResult<EngineQuery> {
        let query = web::Query::<RawQuery>::from_query(query).map(web::Query::into_inner).unwrap_or_default();
        if query.eio.as_deref() != Some("4") {
            return Err(AppError::bad_request(
                "unsupported_protocol_version",
                "Only Engine.IO 4 is served (socket.io-client 3 and later): pass EIO=4.",
            ));
        }
        let transport = match query.transport.as_deref() {
            Some("polling") => Transport::Polling,
            Some("websocket") => Transport::WebSocket,
            _ => {
                return Err(AppError::bad_request(
                    "unsupported_transport",
                    "Socket.IO is served over the transports \"polling\" and \"websocket\".",
                ))
            }
        };
        Ok(EngineQuery { transport, sid: query.sid })
    }
}

/// A request for a polling session this node does not hold.
pub fn unknown_session() -> AppError {
    AppError::bad_request(
        "unknown_session",
        "No such Socket.IO session here: it ended, or (with several nodes) the load balancer \
         sent the request to another node; polling needs sticky sessions, WebSocket does not.",
    )
}

/// What a client's packet before its Socket.IO connect asks of the handshake.
enum BeforeConnect {
    /// The connect to `/`, with the token of its `auth`.
    Connect(Option<String>),
    /// A packet to answer with: a pong, or the refusal of another namespace
    /// (the client may still connect to `/`).
    Answer(String),
    /// Nothing to do (a pong, a noop).
    Nothing,
    /// The client is leaving.
    Close,
    /// Nothing a client sends before its connect: the handshake is refused.
    Refuse(AppError),
}

fn before_connect(text: &str) -> BeforeConnect {
    let packet = match EnginePacket::parse(text) {
        Some(EnginePacket::Message(packet)) => packet,
        Some(EnginePacket::Ping(payload)) => return BeforeConnect::Answer(socket_io::pong(payload)),
        Some(EnginePacket::Pong(_) | EnginePacket::Noop) => return BeforeConnect::Nothing,
        Some(EnginePacket::Close) => return BeforeConnect::Close,
        Some(EnginePacket::Open | EnginePacket::Upgrade) | None => {
            return BeforeConnect::Refuse(Refusal::Malformed("not an Engine.IO packet a client sends").error())
        }
    };
    match socket_io::parse_packet(packet) {
        Ok(Inbound::Connect { token }) => BeforeConnect::Connect(token),
        Err(Refusal::Namespace(namespace)) => {
            let err = Refusal::Namespace(namespace.clone()).error();
            BeforeConnect::Answer(socket_io::connect_error(&namespace, &err))
        }
        Err(refusal) => BeforeConnect::Refuse(refusal.error()),
        Ok(_) => {
            BeforeConnect::Refuse(AppError::bad_request("not_connected", "Connect first: 40{\"token\": \"...\"}."))
        }
    }
}

/// Checks the token of a connect packet as `/ws` checks its own.
async fn admit(state: &AppState, token: Option<String>) -> AppResult<(AuthUser, SocketToken)> {
    match token {
        Some(token) => super::ws::admit_token(state, &token).await,
        None => Err(AppError::unauthorized("Pass your token as the connect's auth: io(url, { auth: { token } }).")),
    }
}

/// Our open packet; `upgrades`: what a polling client may switch to.
fn open_packet(config: &Config, sid: &str, upgrades: &[&str]) -> String {
    // The client waits a ping interval plus the ping timeout before it gives
    // up on the server: the same total the server waits for the client.
    let interval = config.ws_ping_interval();
    let timeout = config.ws_client_timeout().saturating_sub(interval);
    socket_io::open_packet(sid, upgrades, millis(interval), millis(timeout), config.ws_max_frame_bytes)
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_engine_io_4_over_our_two_transports_is_taken() {
        let query = EngineQuery::parse("transport=websocket&t=abc&EIO=4").expect("a websocket");
        assert_eq!((query.transport, query.sid), (Transport::WebSocket, None));
        let query = EngineQuery::parse("EIO=4&transport=polling&sid=abc").expect("a poll");
        assert_eq!((query.transport, query.sid.as_deref()), (Transport::Polling, Some("abc")));
        let code = |query: &str| EngineQuery::parse(query).unwrap_err().code().to_string();
        assert_eq!(code("EIO=3&transport=websocket"), "unsupported_protocol_version");
        assert_eq!(code("transport=websocket"), "unsupported_protocol_version");
        assert_eq!(code("EIO=4&transport=webtransport"), "unsupported_transport");
        assert_eq!(code("EIO=4"), "unsupported_transport");
    }

    #[test]
    fn before_its_connect_a_client_may_ping_and_try_other_namespaces() {
        assert!(matches!(before_connect(r#"40{"token":"t"}"#), BeforeConnect::Connect(Some(token)) if token == "t"));
        assert!(matches!(before_connect("40"), BeforeConnect::Connect(None)));
        assert!(matches!(before_connect("2probe"), BeforeConnect::Answer(pong) if pong == "3probe"));
        assert!(
            matches!(before_connect("40/admin,"), BeforeConnect::Answer(refusal) if refusal.starts_with("44/admin,"))
        );
        assert!(matches!(before_connect("3"), BeforeConnect::Nothing));
        assert!(matches!(before_connect("1"), BeforeConnect::Close));
        let refused = |text: &str| match before_connect(text) {
            BeforeConnect::Refuse(err) => err.code().to_string(),
            _ => panic!("{text} is refused"),
        };
        assert_eq!(refused(r#"42["send-message",{}]"#), "not_connected");
        assert_eq!(refused("5"), "invalid_frame");
        assert_eq!(refused("x"), "invalid_frame");
        assert_eq!(refused(r#"40{"token""#), "invalid_frame");
    }
}
