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

/// 200 while the database (and Redis, with several nodes) answers, 503 when not.
pub async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    let backend = match state.db.backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    let (database_ok, mut body) = match state.db.ping().await {
        Ok(()) => (true, json!({ "status": "ok", "database": { "backend": backend, "ok": true } })),
        Err(err) => (false, json!({ "database": { "backend": backend, "ok": false, "error": err.body.message } })),
    };
    let mut redis_ok = true;
    if let Some(cluster) = &state.registry.cluster {
        let redis = match cluster.ping().await {
            Ok(()) => json!({ "ok": true }),
            Err(error) => {
                redis_ok = false;
                json!({ "ok": false, "error": error })
            }
        };
        body["node"] = json!({ "id": cluster.node_id, "redis": redis });
    }
    if database_ok && redis_ok {
        HttpResponse::Ok().json(body)
    } else {
        body["status"] = json!("degraded");
        HttpResponse::ServiceUnavailable().json(body)
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

/// Answers every operation may give besides its own: 401 where a token is
/// needed, 400 and 413 where a body is read (malformed JSON, too large),
/// 400 where query parameters are read, 404 where the path names something
/// (an id that is not one is nothing found), 503 where something is written
/// (the persistence queue full, the server stopping), 408 everywhere (the
/// request timeout). Added here once instead of on each handler.
struct CommonResponses;

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::ParameterIn;
        use utoipa::openapi::{Content, Ref, RefOr, ResponseBuilder};
        let error = |description: &str| -> RefOr<utoipa::openapi::Response> {
            let schema = RefOr::Ref(Ref::from_schema_name("ErrorEnvelope"));
            ResponseBuilder::new()
                .description(description)
                .content("application/json", Content::new(Some(schema)))
                .into()
        };
        for item in openapi.paths.paths.values_mut() {
            let writes = [&mut item.post, &mut item.put, &mut item.delete, &mut item.patch];
            let reads = [&mut item.get];
            for (operation, writing) in
                writes.into_iter().map(|op| (op, true)).chain(reads.into_iter().map(|op| (op, false)))
            {
                let Some(operation) = operation.as_mut() else { continue };
                let responses = &mut operation.responses.responses;
                let mut add = |code: &str, description: &str| {
                    responses.entry(code.to_string()).or_insert_with(|| error(description));
                };
                add("408", "The request was not read and answered in time.");
                if operation.security.as_ref().is_some_and(|security| !security.is_empty()) {
                    add("401", "No token, or a token that is unknown, revoked or expired.");
                }
                let reads_parameter = |place: ParameterIn| {
                    operation.parameters.iter().flatten().any(|parameter| parameter.parameter_in == place)
                };
                let (has_query, has_path) = (reads_parameter(ParameterIn::Query), reads_parameter(ParameterIn::Path));
                if operation.request_body.is_some() {
                    add("400", "The body is not valid JSON of the expected shape.");
                    add("413", "The body is larger than the server reads.");
                }
                if has_query {
                    add("400", "A query parameter is not valid.");
                }
                if has_path {
                    add("404", "Nothing with that id (or the id is not one).");
                }
                if writing {
                    add("503", "The server is saving a backlog of writes, or stopping; retry.");
                }
            }
        }
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
        crate::http::calendar::feed_state,
        crate::http::calendar::new_feed,
        crate::http::calendar::revoke_feed,
        crate::http::calendar::feed,
        crate::http::courses::create_course,
        crate::http::courses::list_courses,
        crate::http::courses::enroll,
        crate::http::courses::join_by_code,
        crate::http::live_sessions::create_session,
        crate::http::live_sessions::get_session,
        crate::http::live_sessions::list_sessions,
        crate::http::live_sessions::update_session,
        crate::http::live_sessions::cancel_session,
        crate::http::live_sessions::start_session,
        crate::http::live_sessions::end_session,
        crate::http::live_sessions::attendees,
        crate::http::live_sessions::attendance_summary,
        crate::http::live_sessions::attendance_csv,
        crate::http::live_sessions::messages,
        crate::http::live_sessions::questions,
        crate::http::notifications::list_notifications,
        crate::http::notifications::mark_read,
        crate::http::office_hours::add_slot,
        crate::http::office_hours::update_slot,
        crate::http::office_hours::delete_slot,
        crate::http::office_hours::instructor_status,
        crate::http::office_hours::my_instructors,
        crate::http::office_hours::analytics,
        crate::http::office_hours::room_messages,
        crate::http::office_hours::queue::open,
        crate::http::office_hours::queue::close,
        crate::http::office_hours::queue::announce,
        crate::http::office_hours::queue::join_queue,
        crate::http::office_hours::queue::queue,
        crate::http::office_hours::queue::my_queue,
        crate::http::office_hours::queue::leave,
        crate::http::office_hours::queue::defer,
        crate::http::office_hours::queue::complete,
        crate::http::office_hours::queue::skip,
        crate::http::office_hours::queue::admit_one,
        crate::http::office_hours::queue::admit_many,
        crate::http::presence::put_status,
        crate::http::presence::get_user,
        crate::http::presence::online,
        crate::http::presence::contacts,
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
    modifiers(&BearerAuth, &CommonResponses)
)]
pub struct ApiDoc;

pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}
