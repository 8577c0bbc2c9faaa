//! Operations: health, metrics, and the OpenAPI document.

use actix_web::{web, HttpResponse};
use serde_json::json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::config::Backend;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz)).route("/metrics", web::get().to(metrics));
}

/// 200 while the database answers, 503 when it does not.
pub async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    let backend = match state.db.backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    match state.db.ping().await {
        Ok(()) => HttpResponse::Ok().json(json!({ "status": "ok", "database": { "backend": backend, "ok": true } })),
        Err(err) => HttpResponse::ServiceUnavailable().json(json!({
            "status": "degraded",
            "database": { "backend": backend, "ok": false, "error": err.body.message },
        })),
    }
}

/// Prometheus text exposition.
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let body = state.metrics.render(&state.registry.gauges());
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(body)
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "classroom realtime engine", description = "REST API; the WebSocket protocol is in docs/protocol.md."),
    paths(
        crate::http::auth::register,
        crate::http::auth::login,
        crate::http::auth::logout,
        crate::http::auth::me,
        crate::http::courses::create_course,
        crate::http::courses::list_courses,
        crate::http::courses::enroll,
        crate::http::live_sessions::create_session,
        crate::http::live_sessions::get_session,
        crate::http::live_sessions::list_sessions,
        crate::http::live_sessions::update_session,
        crate::http::live_sessions::cancel_session,
        crate::http::live_sessions::start_session,
        crate::http::live_sessions::end_session,
        crate::http::live_sessions::attendees,
        crate::http::live_sessions::attendance_summary,
        crate::http::live_sessions::messages,
        crate::http::live_sessions::questions,
        crate::http::notifications::list_notifications,
        crate::http::notifications::mark_read,
        crate::http::presence::put_status,
        crate::http::presence::get_user,
        crate::http::presence::online,
        crate::http::presence::course,
        crate::http::presence::get_privacy,
        crate::http::presence::put_privacy,
        crate::http::study_groups::create_group,
        crate::http::study_groups::my_groups,
        crate::http::study_groups::search_groups,
        crate::http::study_groups::get_group,
        crate::http::study_groups::update_group,
        crate::http::study_groups::archive_group,
        crate::http::study_groups::members::join,
        crate::http::study_groups::members::leave,
        crate::http::study_groups::members::list,
        crate::http::study_groups::members::change_role,
        crate::http::study_groups::members::remove,
        crate::http::study_groups::members::invite,
        crate::http::study_groups::members::my_invites,
        crate::http::study_groups::members::accept_invite,
        crate::http::study_groups::members::decline_invite,
        crate::http::study_groups::chat::post_message,
        crate::http::study_groups::chat::messages,
        crate::http::study_groups::chat::schedule_session,
        crate::http::study_groups::chat::sessions,
    ),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}
