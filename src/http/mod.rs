//! REST routes, one module per resource, and the WebSocket upgrade.

pub mod auth;
pub mod calendar;
pub mod courses;
pub mod extract;
pub mod live_sessions;
pub mod notifications;
pub mod office_hours;
pub mod ops;
pub mod presence;
pub mod socket_io;
pub mod study_groups;
pub mod ui;
pub mod ws;

use actix_web::web;

use crate::error::AppError;

/// Largest JSON body accepted by the REST API.
const MAX_JSON_BYTES: usize = 64 * 1024;

/// Registers every route, with JSON errors for bodies, paths and queries
/// that do not parse.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::JsonConfig::default().limit(MAX_JSON_BYTES).error_handler(|err, _| {
        use actix_web::error::JsonPayloadError;
        let app_error = match &err {
            JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => {
                AppError::too_large(format!("Request bodies may be at most {MAX_JSON_BYTES} bytes."))
            }
            JsonPayloadError::ContentType => {
                AppError::bad_request("invalid_content_type", "Send the body as application/json.")
            }
            other => AppError::bad_request("invalid_json", format!("The body is not valid: {other}.")),
        };
        app_error.into()
    }))
    .app_data(web::PathConfig::default().error_handler(|_, _| AppError::not_found("resource").into()))
    .app_data(
        web::QueryConfig::default()
            .error_handler(|err, _| AppError::bad_request("invalid_query", format!("Bad query string: {err}.")).into()),
    )
    .configure(ops::configure)
    .configure(ws::configure)
    .configure(socket_io::configure)
    .service(
        web::scope("/api")
            .configure(auth::configure)
            .configure(calendar::configure)
            .configure(courses::configure)
            .configure(live_sessions::configure)
            .configure(notifications::configure)
            .configure(office_hours::configure)
            .configure(presence::configure)
            .configure(study_groups::configure)
            .route("/openapi.json", web::get().to(ops::openapi)),
    )
    .configure(ui::configure);
}
