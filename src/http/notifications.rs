//! A user's notifications (session reminders): list, mark read.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::db::notifications::NotificationView;
use crate::db::{self, to_db_time};
use crate::error::{AppError, AppResult};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/notifications", web::get().to(list_notifications))
        .route("/notifications/{id}/read", web::post().to(mark_read));
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct ListQuery {
    /// Only unread ones.
    #[serde(default)]
    pub unread: bool,
    /// At most this many (default 50, at most 200).
    pub limit: Option<i64>,
}

#[utoipa::path(get, path = "/api/notifications", params(ListQuery),
    responses((status = 200, body = [NotificationView])), security(("bearer" = [])))]
pub async fn list_notifications(
    state: web::Data<AppState>,
    user: AuthUser,
    query: web::Query<ListQuery>,
) -> AppResult<HttpResponse> {
    let limit = query.limit.unwrap_or(50).clamp(1, 200);
    let (user_id, unread) = (user.id.to_string(), query.unread);
    let views = state.db.read(move |conn| Ok(db::notifications::list_for_user(conn, &user_id, unread, limit)?)).await?;
    Ok(HttpResponse::Ok().json(views))
}

#[utoipa::path(post, path = "/api/notifications/{id}/read", params(("id" = Uuid, Path, description = "The resource id")),
    responses((status = 204), (status = 404, body = crate::error::ErrorEnvelope)), security(("bearer" = [])))]
pub async fn mark_read(state: web::Data<AppState>, user: AuthUser, path: web::Path<Uuid>) -> AppResult<HttpResponse> {
    let (id, user_id, now) = (path.into_inner().to_string(), user.id.to_string(), to_db_time(state.clock.now()));
    let found = state.persistence.write(move |conn| db::notifications::mark_read(conn, &id, &user_id, now)).await?;
    if !found {
        return Err(AppError::not_found("notification"));
    }
    Ok(HttpResponse::NoContent().finish())
}
