//! Socket.IO over HTTP long-polling, the transport a `socket.io-client`
//! opens first by default:
//! - `GET ?EIO=4&transport=polling` opens a session: our open packet, with
//!   `websocket` as the upgrade on offer;
//! - `POST ?sid=...` carries the client's packets (separated by `\x1e`):
//!   first its connect with its token, then events, pongs;
//! - `GET ?sid=...` takes what the server has for the client, waiting until
//!   there is something (at the latest the next ping, a ping interval away).
//!
//! The session (`engine::polling`) holds the packets between requests; once
//! the client connected, a connection actor owns it as its outlet, exactly
//! as it owns a WebSocket.

use actix_web::http::header::ContentType;
use actix_web::{web, HttpRequest, HttpResponse};
use bytestring::ByteString;
use futures_util::StreamExt;

use super::{admit, before_connect, open_packet, unknown_session, BeforeConnect, EngineQuery, Transport};
use crate::engine::connection::{ConnectionActor, Polled};
use crate::engine::polling::{Poll, PollingSession, CLOSE, NOOP};
use crate::engine::{Disconnect, DisconnectReason};
use crate::error::{AppError, AppResult};
use crate::protocol::socket_io::{self, RECORD_SEPARATOR};
use crate::state::AppState;

/// Polling sessions that may wait for their connect at once: they are
/// opened before any token is seen, so they are bounded.
const MAX_HANDSHAKING: usize = 10_000;

/// The query of a polling request (a WebSocket one is an upgrade, not this).
fn polling_query(req: &HttpRequest) -> AppResult<EngineQuery> {
    let query = EngineQuery::parse(req.query_string())?;
    if query.transport == Transport::WebSocket {
        return Err(super::super::ws::not_a_websocket("the request has no WebSocket upgrade headers"));
    }
    Ok(query)
}

fn session_of(state: &AppState, sid: &str) -> AppResult<std::sync::Arc<PollingSession>> {
    state.registry.polling.get(sid).ok_or_else(unknown_session)
}

/// Packets as one polling payload.
fn payload(packets: &[ByteString]) -> HttpResponse {
    let mut body = String::with_capacity(packets.iter().map(|packet| packet.len() + 1).sum());
    for (n, packet) in packets.iter().enumerate() {
        if n > 0 {
            body.push(RECORD_SEPARATOR);
        }
        body.push_str(packet);
    }
    HttpResponse::Ok().content_type(ContentType::plaintext()).body(body)
}

/// `GET`: opens a session, or takes what is waiting for the client.
pub async fn get(state: web::Data<AppState>, req: HttpRequest) -> AppResult<HttpResponse> {
    let query = polling_query(&req)?;
    let Some(sid) = query.sid else { return open(&state) };
    let session = session_of(&state, &sid)?;
    let waiting = match session.poll() {
        Poll::Ready(packets) => return Ok(payload(&packets)),
        Poll::Wait(waiting) => waiting,
        Poll::Overlapping => {
            return Err(AppError::bad_request("overlapping_poll", "Another GET is already waiting on this session."))
        }
    };
    // The server pings within a ping interval, so a live session answers
    // well before this; a GET outliving it just ends empty-handed.
    match tokio::time::timeout(state.config.ws_client_timeout(), waiting).await {
        Ok(Ok(packets)) => Ok(payload(&packets)),
        // The session ended without a word (its actor stopped).
        Ok(Err(_)) => Ok(payload(&[ByteString::from_static(CLOSE)])),
        Err(_) => Ok(payload(&[ByteString::from_static(NOOP)])),
    }
}

/// A new session: the open packet, and a deadline for the client's connect.
fn open(state: &web::Data<AppState>) -> AppResult<HttpResponse> {
    let registry = &state.registry;
    let session = registry.polling.open(MAX_HANDSHAKING).ok_or_else(|| {
        AppError::new(
            actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
            "too_many_handshakes",
            "Too many Socket.IO sessions are waiting for their connect; retry in a few seconds.",
        )
    })?;
    let (registry, sid, timeout) = (registry.clone(), session.sid.clone(), state.config.ws_client_timeout());
    actix_web::rt::spawn(async move {
        tokio::time::sleep(timeout).await;
        if registry.polling.get(&sid).is_some_and(|session| session.connection().is_none()) {
            log::debug!("socket.io polling session {sid}: no connect in time");
            registry.polling.remove(&sid);
        }
    });
    let open = open_packet(&state.config, &session.sid, &["websocket"]);
    let mut response = payload(&[ByteString::from(open)]);
    // For a balancer to learn the session's node (deploy/haproxy.cfg sticks
    // every later `?sid=` to it), without reading the body or a cookie.
    if let Ok(sid) = actix_web::http::header::HeaderValue::from_str(&session.sid) {
        response.headers_mut().insert(actix_web::http::header::HeaderName::from_static(SID_HEADER), sid);
    }
    Ok(response)
}

/// The response header of a new session carrying its sid.
pub const SID_HEADER: &str = "x-socket-io-sid";

/// `POST`: the client's packets. Answered `ok` once they are taken (an
/// event's answer comes as an ack packet through a GET, as over WebSocket).
pub async fn post(state: web::Data<AppState>, req: HttpRequest, mut body: web::Payload) -> AppResult<HttpResponse> {
    let query = polling_query(&req)?;
    let sid = query.sid.ok_or_else(|| AppError::bad_request("no_session", "POST to a session: ?sid=..."))?;
    let session = session_of(&state, &sid)?;
    let limit = state.config.ws_max_frame_bytes;
    let mut bytes = web::BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk =
            chunk.map_err(|err| AppError::bad_request("invalid_body", format!("The body broke off: {err}.")))?;
        if bytes.len() + chunk.len() > limit {
            // As a WebSocket frame over the limit: the connection ends.
            match session.connection() {
                Some(connection) => connection.do_send(Disconnect(DisconnectReason::FrameTooLarge)),
                None => state.registry.polling.remove(&sid),
            }
            return Err(AppError::too_large(format!("A payload may be at most {limit} bytes.")));
        }
        bytes.extend_from_slice(&chunk);
    }
    let body = std::str::from_utf8(&bytes)
        .map_err(|_| AppError::bad_request("invalid_body", "A polling payload is UTF-8 text."))?;
    let mut packets = socket_io::split_payload(body).map(str::to_string).collect::<Vec<_>>();
    if session.connection().is_none() {
        packets = handshake(&state, &session, packets).await;
    }
    if !packets.is_empty() {
        let connection = session.connection().ok_or_else(unknown_session)?;
        connection.send(Polled(packets)).await.map_err(|_| unknown_session())?;
    }
    Ok(HttpResponse::Ok().content_type(ContentType::plaintext()).body("ok"))
}

/// The packets of a session not connected yet, up to its connect; what
/// comes after a successful connect is returned, for the connection.
async fn handshake(state: &AppState, session: &std::sync::Arc<PollingSession>, packets: Vec<String>) -> Vec<String> {
    let mut packets = packets.into_iter();
    for text in packets.by_ref() {
        // Answers nobody GETs (pongs, refusals) are bounded as a socket's are.
        if session.pending_bytes() >= state.config.ws_outbound_bytes {
            log::info!("socket.io polling session {}: answers not taken before the connect, ended", session.sid);
            state.registry.polling.remove(&session.sid);
            return Vec::new();
        }
        let token = match before_connect(&text) {
            BeforeConnect::Connect(token) => token,
            BeforeConnect::Answer(packet) => {
                session.send(ByteString::from(packet));
                continue;
            }
            BeforeConnect::Nothing => continue,
            BeforeConnect::Close => {
                state.registry.polling.remove(&session.sid);
                return Vec::new();
            }
            // The session stays: the client may connect again.
            BeforeConnect::Refuse(err) => {
                session.send(ByteString::from(socket_io::connect_error("/", &err)));
                continue;
            }
        };
        if !session.begin_connect() {
            let err = AppError::bad_request("already_connected", "This session is connecting already.");
            session.send(ByteString::from(socket_io::connect_error("/", &err)));
            continue;
        }
        match admit(state, token).await {
            // The session may have timed out while the token was checked.
            Ok(_) if state.registry.polling.get(&session.sid).is_none() => return Vec::new(),
            Ok((user, token)) => {
                log::info!("socket.io polling session opened by {}", user.id);
                let registry = state.registry.clone();
                let connection = ConnectionActor::start_polling(session.clone(), user, token, registry);
                state.registry.polling.connected(session, connection);
                return packets.collect();
            }
            Err(err) => {
                session.end_connect();
                session.send(ByteString::from(socket_io::connect_error("/", &err)));
            }
        }
    }
    Vec::new()
}
