//! The office-hours queue over REST: joining, leaving, deferring, admitting,
//! completing, skipping, opening, closing, announcing. Each runs the command
//! the WebSocket event of the same name runs (`engine::office_hours::commands`).

use actix_web::{web, HttpResponse};
use serde::Serialize;
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::domain::office_hours::EndReason;
use crate::engine::office_hours::commands;
use crate::error::AppResult;
use crate::protocol::office_hours::{
    AdmissionView, Announce, AnnouncementView, EntryView, JoinQueue, OpenView, QueueIds, QueueView,
};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/office-hours/open", web::post().to(open))
        .route("/office-hours/close", web::post().to(close))
        .route("/office-hours/announce", web::post().to(announce))
        .route("/office-hours/join-queue", web::post().to(join_queue))
        .route("/office-hours/queue", web::get().to(queue))
        .route("/office-hours/my-queue", web::get().to(my_queue))
        .route("/office-hours/queue/{id}/leave", web::post().to(leave))
        .route("/office-hours/queue/{id}/defer", web::post().to(defer))
        .route("/office-hours/queue/{id}/complete", web::post().to(complete))
        .route("/office-hours/queue/{id}/skip", web::post().to(skip))
        .route("/office-hours/admit", web::post().to(admit_many))
        .route("/office-hours/admit/{id}", web::post().to(admit_one));
}

#[utoipa::path(post, path = "/api/office-hours/open",
    responses((status = 200, body = OpenView), (status = 403, body = crate::error::ErrorEnvelope)), security(("bearer" = [])))]
pub async fn open(state: web::Data<AppState>, user: AuthUser) -> AppResult<HttpResponse> {
    let is_open = commands::set_open(&state.registry, &user, true).await?;
    Ok(HttpResponse::Ok().json(OpenView { is_open }))
}

#[utoipa::path(post, path = "/api/office-hours/close",
    responses((status = 200, body = OpenView), (status = 403, body = crate::error::ErrorEnvelope)), security(("bearer" = [])))]
pub async fn close(state: web::Data<AppState>, user: AuthUser) -> AppResult<HttpResponse> {
    let is_open = commands::set_open(&state.registry, &user, false).await?;
    Ok(HttpResponse::Ok().json(OpenView { is_open }))
}

#[utoipa::path(post, path = "/api/office-hours/announce", request_body = Announce,
    responses((status = 201, body = AnnouncementView), (status = 400, body = crate::error::ErrorEnvelope), (status = 403, body = crate::error::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn announce(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<Announce>,
) -> AppResult<HttpResponse> {
    let view = commands::announce(&state.registry, &user, &body.message).await?;
    Ok(HttpResponse::Created().json(view))
}

#[utoipa::path(post, path = "/api/office-hours/join-queue", request_body = JoinQueue,
    responses((status = 201, body = EntryView), (status = 400, body = crate::error::ErrorEnvelope), (status = 403, body = crate::error::ErrorEnvelope), (status = 404, body = crate::error::ErrorEnvelope), (status = 409, body = crate::error::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn join_queue(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<JoinQueue>,
) -> AppResult<HttpResponse> {
    let entry = commands::join_queue(&state.registry, &user, body.into_inner()).await?;
    Ok(HttpResponse::Created().json(entry))
}

#[utoipa::path(get, path = "/api/office-hours/queue",
    responses((status = 200, body = QueueView), (status = 403, body = crate::error::ErrorEnvelope)), security(("bearer" = [])))]
pub async fn queue(state: web::Data<AppState>, user: AuthUser) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(commands::queue(&state.registry, &user).await?))
}

#[utoipa::path(get, path = "/api/office-hours/my-queue",
    responses((status = 200, body = [EntryView]), (status = 403, body = crate::error::ErrorEnvelope)), security(("bearer" = [])))]
pub async fn my_queue(state: web::Data<AppState>, user: AuthUser) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(commands::my_entries(&state.registry, &user).await?))
}

#[utoipa::path(post, path = "/api/office-hours/queue/{id}/leave", operation_id = "leave_office_hours_queue", params(("id" = Uuid, Path, description = "The queue entry")),
    responses((status = 200, body = EntryView), (status = 404, body = crate::error::ErrorEnvelope), (status = 409, body = crate::error::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn leave(state: web::Data<AppState>, user: AuthUser, path: web::Path<Uuid>) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(commands::leave_queue(&state.registry, &user, path.into_inner()).await?))
}

#[utoipa::path(post, path = "/api/office-hours/queue/{id}/defer", params(("id" = Uuid, Path, description = "The queue entry")),
    responses((status = 200, body = EntryView), (status = 404, body = crate::error::ErrorEnvelope), (status = 409, body = crate::error::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn defer(state: web::Data<AppState>, user: AuthUser, path: web::Path<Uuid>) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(commands::defer_turn(&state.registry, &user, path.into_inner()).await?))
}

#[utoipa::path(post, path = "/api/office-hours/queue/{id}/complete", params(("id" = Uuid, Path, description = "The queue entry")),
    responses((status = 200, body = EntryView), (status = 403, body = crate::error::ErrorEnvelope), (status = 404, body = crate::error::ErrorEnvelope), (status = 409, body = crate::error::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn complete(state: web::Data<AppState>, user: AuthUser, path: web::Path<Uuid>) -> AppResult<HttpResponse> {
    let entry = commands::end_entry(&state.registry, &user, path.into_inner(), EndReason::Completed).await?;
    Ok(HttpResponse::Ok().json(entry))
}

#[utoipa::path(post, path = "/api/office-hours/queue/{id}/skip", params(("id" = Uuid, Path, description = "The queue entry")),
    responses((status = 200, body = EntryView), (status = 403, body = crate::error::ErrorEnvelope), (status = 404, body = crate::error::ErrorEnvelope), (status = 409, body = crate::error::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn skip(state: web::Data<AppState>, user: AuthUser, path: web::Path<Uuid>) -> AppResult<HttpResponse> {
    let entry = commands::end_entry(&state.registry, &user, path.into_inner(), EndReason::Skipped).await?;
    Ok(HttpResponse::Ok().json(entry))
}

/// One admission: the room and the entry.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OneAdmission {
    pub room_id: Uuid,
    pub entry: EntryView,
}

#[utoipa::path(post, path = "/api/office-hours/admit/{id}", params(("id" = Uuid, Path, description = "The queue entry")),
    responses((status = 200, body = OneAdmission), (status = 403, body = crate::error::ErrorEnvelope), (status = 404, body = crate::error::ErrorEnvelope), (status = 409, body = crate::error::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn admit_one(state: web::Data<AppState>, user: AuthUser, path: web::Path<Uuid>) -> AppResult<HttpResponse> {
    let admission = commands::admit(&state.registry, &user, vec![path.into_inner()]).await?;
    let entry =
        admission.entries.into_iter().next().ok_or_else(|| crate::error::AppError::internal("empty admission"))?;
    Ok(HttpResponse::Ok().json(OneAdmission { room_id: admission.room_id, entry }))
}

#[utoipa::path(post, path = "/api/office-hours/admit", request_body = QueueIds,
    responses((status = 200, body = AdmissionView), (status = 400, body = crate::error::ErrorEnvelope), (status = 403, body = crate::error::ErrorEnvelope), (status = 404, body = crate::error::ErrorEnvelope), (status = 409, body = crate::error::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn admit_many(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<QueueIds>,
) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(commands::admit(&state.registry, &user, body.into_inner().queue_ids).await?))
}
