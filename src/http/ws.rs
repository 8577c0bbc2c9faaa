//! The WebSocket upgrade: the token is checked before the upgrade, so a bad
//! one gets a 401 JSON error and never a socket.

use actix_web::{web, HttpRequest, HttpResponse};
use actix_web_actors::ws;

use crate::auth::bearer_token;
use crate::engine::connection::ConnectionActor;
use crate::error::{AppError, AppResult};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/ws", web::get().to(upgrade));
}

pub async fn upgrade(state: web::Data<AppState>, req: HttpRequest, stream: web::Payload) -> AppResult<HttpResponse> {
    let token = bearer_token(&req)
        .ok_or_else(|| AppError::unauthorized("Pass your token as ?token=... or an Authorization: Bearer header."))?;
    let user = state.auth.authenticate(&token).await?;
    let limit = state.config.max_connections_per_user;
    if state.registry.connection_count(user.id) >= limit {
        return Err(AppError::new(
            actix_web::http::StatusCode::TOO_MANY_REQUESTS,
            "too_many_connections",
            format!("At most {limit} open connections per user; close a tab and retry."),
        ));
    }
    let actor = ConnectionActor::new(user, state.registry.clone());
    ws::WsResponseBuilder::new(actor, &req, stream)
        .frame_size(state.config.ws_max_frame_bytes)
        .start()
        .map_err(|err| AppError::bad_request("not_a_websocket", format!("WebSocket handshake failed: {err}.")))
}
