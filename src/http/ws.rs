//! The WebSocket endpoint `/ws`. The token and the per-user connection
//! limit are checked before the upgrade, so a bad token gets a 401 JSON
//! error and never a socket.
//!
//! Upgrades do not go through actix-web's App: actix-http hands every
//! request carrying `Connection: upgrade` to [`serve_upgrade`] with the raw
//! TCP stream, which answers the handshake itself and gives the stream to a
//! connection actor (`engine::socket` says why). A plain GET of `/ws` still
//! reaches the App route below, which runs the same checks.

use actix_codec::Framed;
use actix_http::{h1, ws as wsproto, Request, RequestHead};
use actix_web::http::header::{HeaderMap, SEC_WEBSOCKET_KEY};
use actix_web::{web, HttpRequest, HttpResponse};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::auth::{token_fingerprint, token_of, AuthUser};
use std::rc::Rc;

use crate::engine::connection::{ConnectionActor, SocketToken, Wire};
use crate::engine::presence::fanout::PresenceFormat;
use crate::error::{AppError, AppResult, ErrorEnvelope};
use crate::state::AppState;

use super::socket_io;

pub const PATH: &str = "/ws";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(PATH, web::get().to(plain_get));
}

/// `GET /ws` without the upgrade headers: the same answers as the upgrade
/// for a bad token or too many sockets, else a 400.
async fn plain_get(state: web::Data<AppState>, req: HttpRequest) -> AppResult<HttpResponse> {
    admit(&state, req.headers(), req.query_string()).await?;
    presence_format(req.query_string())?;
    Err(not_a_websocket("the request has no WebSocket upgrade headers"))
}

/// Who may open a socket: the holder of a valid token, below the per-user limit.
async fn admit(state: &AppState, headers: &HeaderMap, query: &str) -> AppResult<(AuthUser, SocketToken)> {
    let token = token_of(headers, query)
        .ok_or_else(|| AppError::unauthorized("Pass your token as ?token=... or an Authorization: Bearer header."))?;
    admit_token(state, &token).await
}

/// `admit` for a token the client already handed over (Socket.IO's `auth`).
pub(super) async fn admit_token(state: &AppState, token: &str) -> AppResult<(AuthUser, SocketToken)> {
    let (user, expires_at) = state.auth.authenticate_until(token).await?;
    let limit = state.config.max_connections_per_user;
    if state.registry.hub.count(crate::engine::hub::Topic::User(user.id)) >= limit {
        return Err(AppError::new(
            actix_web::http::StatusCode::TOO_MANY_REQUESTS,
            "too_many_connections",
            format!("At most {limit} open connections per user; close a tab and retry."),
        ));
    }
    Ok((user, SocketToken { fingerprint: token_fingerprint(token), expires_at }))
}

/// The socket's options beyond its token (`?presence=diff`).
#[derive(serde::Deserialize)]
struct SocketQuery {
    presence: Option<String>,
}

fn presence_format(query: &str) -> AppResult<PresenceFormat> {
    let query = web::Query::<SocketQuery>::from_query(query)
        .map_err(|err| AppError::bad_request("invalid_query", format!("The /ws query does not parse: {err}.")))?;
    PresenceFormat::parse(query.presence.as_deref())
}

pub(super) fn not_a_websocket(why: impl std::fmt::Display) -> AppError {
    AppError::bad_request("not_a_websocket", format!("WebSocket handshake failed: {why}."))
}

/// What an accepted upgrade goes on to.
enum Upgrade {
    /// `/ws`: the token was checked, the connection actor starts at once.
    Native(AuthUser, SocketToken, PresenceFormat),
    /// `/socket.io/`: the token comes in the Socket.IO connect packet.
    SocketIo,
    /// `/socket.io/?sid=...`: the WebSocket a Socket.IO polling session upgrades to.
    SocketIoPolling(std::sync::Arc<crate::engine::polling::PollingSession>),
}

/// Checks an upgrade request; on success what it is for and the
/// `Sec-WebSocket-Accept` value.
async fn accept(state: &AppState, head: &RequestHead) -> AppResult<(Upgrade, String)> {
    let query = head.uri.query().unwrap_or("");
    let upgrade = if head.uri.path() == PATH {
        let (user, token) = admit(state, &head.headers, query).await?;
        Upgrade::Native(user, token, presence_format(query)?)
    } else if socket_io::is_path(head.uri.path()) {
        let query = socket_io::EngineQuery::parse(query)?;
        if query.transport != socket_io::Transport::WebSocket {
            return Err(AppError::bad_request(
                "unsupported_transport",
                "An upgrade is to transport=websocket; polling is plain HTTP.",
            ));
        }
        match query.sid {
            Some(sid) => {
                Upgrade::SocketIoPolling(state.registry.polling.get(&sid).ok_or_else(socket_io::unknown_session)?)
            }
            None => Upgrade::SocketIo,
        }
    } else {
        return Err(AppError::new(
            actix_web::http::StatusCode::NOT_FOUND,
            "not_found",
            "Only /ws and /socket.io/ take upgrades.",
        ));
    };
    wsproto::verify_handshake(head).map_err(not_a_websocket)?;
    let key = head.headers.get(SEC_WEBSOCKET_KEY).ok_or_else(|| not_a_websocket("no Sec-WebSocket-Key"))?;
    let accept = wsproto::hash_key(key.as_bytes());
    Ok((upgrade, String::from_utf8_lossy(&accept).into_owned()))
}

/// actix-http's upgrade service: answers the handshake on the raw stream and
/// starts the connection actor, or writes the JSON error and closes.
pub async fn serve_upgrade(
    state: web::Data<AppState>,
    req: Request,
    framed: Framed<TcpStream, h1::Codec>,
) -> Result<(), actix_web::Error> {
    let parts = framed.into_parts();
    let mut socket = parts.io;
    match accept(&state, req.head()).await {
        Ok((upgrade, accept_key)) => {
            let response = format!(
                "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: {accept_key}\r\n\r\n"
            );
            if let Err(err) = socket.write_all(response.as_bytes()).await {
                log::debug!("websocket handshake not delivered: {err}");
                return Ok(());
            }
            // Bytes the client sent right behind its request are its first frames.
            match upgrade {
                Upgrade::Native(user, token, presence) => {
                    log::info!("websocket opened by {}", user.id);
                    let registry = state.registry.clone();
                    let stream = Rc::new(socket);
                    ConnectionActor::start_on(stream, parts.read_buf, Wire::Native, presence, user, token, registry);
                }
                Upgrade::SocketIo => socket_io::serve_websocket(&state, Rc::new(socket), parts.read_buf).await,
                Upgrade::SocketIoPolling(session) => {
                    socket_io::serve_upgrade(&state, Rc::new(socket), parts.read_buf, session).await
                }
            }
        }
        Err(err) => {
            let body = serde_json::to_vec(&ErrorEnvelope { error: err.body.clone() }).unwrap_or_default();
            let head = format!(
                "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                err.status.as_u16(),
                err.status.canonical_reason().unwrap_or(""),
                body.len()
            );
            // Best effort: a client that already left needs no answer.
            if socket.write_all(head.as_bytes()).await.is_ok() && socket.write_all(&body).await.is_ok() {
                let _ = socket.shutdown().await;
            }
        }
    }
    Ok(())
}
