//! Socket.IO at `/socket.io/` (issue 17), so a `socket.io-client` connects
//! with no change but the URL: Engine.IO v4 and Socket.IO v5 over
//! WebSocket, around the same connection actor and events as `/ws`.
//!
//! The upgrade is answered by `ws::serve_upgrade`; here the socket goes
//! through Socket.IO's handshake (our open packet, then the client's
//! connect packet carrying its token in `auth`) before the connection actor
//! takes it with `Wire::SocketIo`. Until then the socket holds nothing but
//! this future, and it has `WS_CLIENT_TIMEOUT_MS` to connect.
//!
//! HTTP long-polling, the transport a client tries first by default, is not
//! served yet: it is refused with a clear error, and clients pass
//! `transports: ["websocket"]`.

use std::future::poll_fn;
use std::rc::Rc;
use std::time::Duration;

use actix_http::ws::{CloseCode, CloseReason, Frame, Message};
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::BytesMut;
use bytestring::ByteString;
use futures_util::StreamExt;
use tokio::net::TcpStream;
use uuid::Uuid;

use crate::engine::connection::{ConnectionActor, Wire};
use crate::engine::socket::{FrameReader, FrameWriter};
use crate::error::{AppError, AppResult};
use crate::protocol::socket_io::{self, EnginePacket, Inbound, Refusal};
use crate::state::AppState;

use super::ws::{admit_token, not_a_websocket};

/// Frames a client may send before its connect packet (pongs, connects to
/// namespaces we refuse); past them it is not a Socket.IO client.
const MAX_FRAMES_BEFORE_CONNECT: usize = 8;

/// How long a refused socket may take to accept its close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource(["/socket.io/", "/socket.io"]).to(plain_request));
}

/// Socket.IO's path, with or without its trailing slash.
pub fn is_path(path: &str) -> bool {
    matches!(path, "/socket.io/" | "/socket.io")
}

/// A request to `/socket.io/` without the upgrade headers: a polling
/// handshake or poll (not served yet), or a broken WebSocket handshake.
async fn plain_request(req: HttpRequest) -> AppResult<HttpResponse> {
    check_websocket_query(req.query_string())?;
    Err(not_a_websocket("the request has no WebSocket upgrade headers"))
}

/// The query of an upgrade: Engine.IO 4 and the `websocket` transport.
pub fn check_websocket_query(query: &str) -> AppResult<()> {
    let query = web::Query::<EngineQuery>::from_query(query).map(web::Query::into_inner).unwrap_or_default();
    if query.eio.as_deref() != Some("4") {
        return Err(AppError::bad_request(
            "unsupported_protocol_version",
            "Only Engine.IO 4 is served (socket.io-client 3 and later): pass EIO=4.",
        ));
    }
    if query.transport.as_deref() != Some("websocket") || query.sid.is_some() {
        return Err(AppError::bad_request(
            "unsupported_transport",
            "Socket.IO is served over WebSocket only: connect with io(url, { transports: [\"websocket\"] }).",
        ));
    }
    Ok(())
}

/// What an Engine.IO request says in its query (others, such as the
/// client's cache-buster `t`, are ignored).
#[derive(Debug, Default, serde::Deserialize)]
struct EngineQuery {
    #[serde(rename = "EIO")]
    eio: Option<String>,
    transport: Option<String>,
    /// A polling session being upgraded.
    sid: Option<String>,
}

/// Runs Socket.IO's handshake on an upgraded socket and hands it to a
/// connection actor once the client connected with a valid token.
pub async fn serve_websocket(state: &AppState, stream: Rc<TcpStream>, already_read: BytesMut) {
    let config = &state.config;
    let mut reader = FrameReader::new(Rc::clone(&stream), config.ws_max_frame_bytes, already_read);
    let mut writer = FrameWriter::new(Rc::clone(&stream));
    // The client waits a ping interval plus the ping timeout before it gives
    // up on the server: the same total the server waits for the client.
    let interval = config.ws_ping_interval();
    let timeout = config.ws_client_timeout().saturating_sub(interval);
    let sid = Uuid::new_v4().simple().to_string();
    let open = socket_io::open_packet(&sid, &[], millis(interval), millis(timeout), config.ws_max_frame_bytes);
    writer.queue(Message::Text(open.into()));
    let deadline = tokio::time::Instant::now() + config.ws_client_timeout();
    for _ in 0..MAX_FRAMES_BEFORE_CONNECT {
        if poll_fn(|cx| writer.poll_flush(cx)).await.is_err() {
            return;
        }
        let frame = match tokio::time::timeout_at(deadline, reader.next()).await {
            Ok(Some(Ok(frame))) => frame,
            Ok(Some(Err(err))) => return log::debug!("socket.io handshake: {err}"),
            Ok(None) => return,
            Err(_) => {
                let err = AppError::unauthorized("No connect packet came in time.");
                return refuse(&mut writer, "/", &err).await;
            }
        };
        let text = match frame {
            Frame::Text(bytes) => bytes,
            Frame::Ping(payload) => {
                writer.queue(Message::Pong(payload));
                continue;
            }
            Frame::Pong(_) => continue,
            Frame::Close(reason) => return close(&mut writer, reason).await,
            Frame::Binary(_) | Frame::Continuation(_) => return refuse(&mut writer, "/", &Refusal::Binary.error()).await,
        };
        let Ok(text) = std::str::from_utf8(&text) else {
            return close(&mut writer, Some(CloseCode::Invalid.into())).await;
        };
        let packet = match EnginePacket::parse(text) {
            Some(EnginePacket::Message(packet)) => packet,
            Some(EnginePacket::Ping(payload)) => {
                writer.queue(Message::Text(ByteString::from(socket_io::pong(payload))));
                continue;
            }
            Some(EnginePacket::Pong(_) | EnginePacket::Noop) => continue,
            Some(EnginePacket::Close) => return close(&mut writer, Some(CloseCode::Normal.into())).await,
            Some(EnginePacket::Open | EnginePacket::Upgrade) | None => {
                let err = Refusal::Malformed("not an Engine.IO packet a client sends").error();
                return refuse(&mut writer, "/", &err).await;
            }
        };
        let token = match socket_io::parse_packet(packet) {
            Ok(Inbound::Connect { token }) => token,
            // The client may go on with the main namespace.
            Err(Refusal::Namespace(namespace)) => {
                let err = Refusal::Namespace(namespace.clone()).error();
                writer.queue(Message::Text(ByteString::from(socket_io::connect_error(&namespace, &err))));
                continue;
            }
            Err(refusal) => return refuse(&mut writer, "/", &refusal.error()).await,
            Ok(_) => {
                let err = AppError::bad_request("not_connected", "Connect first: 40{\"token\": \"...\"}.");
                return refuse(&mut writer, "/", &err).await;
            }
        };
        let admitted = match token {
            Some(token) => admit_token(state, &token).await,
            None => Err(AppError::unauthorized("Pass your token as the connect's auth: io(url, { auth: { token } }).")),
        };
        return match admitted {
            Ok((user, token)) => {
                log::info!("socket.io websocket opened by {}", user.id);
                let unread = reader.into_unread();
                ConnectionActor::start_on(stream, unread, Wire::SocketIo, user, token, state.registry.clone());
            }
            Err(err) => refuse(&mut writer, "/", &err).await,
        };
    }
    let err = AppError::bad_request("bad_frames", "Too many packets before the connect.");
    refuse(&mut writer, "/", &err).await
}

/// Refuses the connect with `connect_error` and closes the socket (1008).
async fn refuse(writer: &mut FrameWriter, namespace: &str, err: &AppError) {
    writer.queue(Message::Text(ByteString::from(socket_io::connect_error(namespace, err))));
    close(writer, Some(CloseCode::Policy.into())).await
}

/// Sends a close frame and gives the client a moment to take it.
async fn close(writer: &mut FrameWriter, reason: Option<CloseReason>) {
    writer.queue(Message::Close(reason));
    // Best effort: a client that does not read is left behind.
    let _ = tokio::time::timeout(CLOSE_GRACE, poll_fn(|cx| writer.poll_flush(cx))).await;
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_engine_io_4_over_websocket_is_taken() {
        assert!(check_websocket_query("EIO=4&transport=websocket").is_ok());
        assert!(check_websocket_query("transport=websocket&t=abc&EIO=4").is_ok());
        let code = |query: &str| check_websocket_query(query).unwrap_err().code().to_string();
        assert_eq!(code("EIO=3&transport=websocket"), "unsupported_protocol_version");
        assert_eq!(code("transport=websocket"), "unsupported_protocol_version");
        assert_eq!(code("EIO=4&transport=polling"), "unsupported_transport");
        assert_eq!(code("EIO=4&transport=websocket&sid=abc"), "unsupported_transport");
    }
}
