//! Live sessions over REST. This part: create and read; the room itself is
//! the WebSocket's (`engine::live_session`).

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::db::models::{ChatRoomRow, LiveSessionRow};
use crate::db::{self, to_db_time, AnyConnection};
use crate::domain::live_session::{SessionStatus, SessionView};
use crate::domain::Role;
use crate::error::{AppError, AppResult};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/live-sessions", web::post().to(create_session)).route("/live-sessions/{id}", web::get().to(get_session));
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateSession {
    pub course_id: Uuid,
    pub title: String,
    pub description: Option<String>,
    pub scheduled_start_time: DateTime<Utc>,
    pub scheduled_end_time: DateTime<Utc>,
    pub max_attendees: Option<i32>,
}

const MAX_TITLE_CHARS: usize = 200;

fn validate(body: &CreateSession) -> AppResult<String> {
    let title = body.title.trim().to_string();
    if title.is_empty() || title.chars().count() > MAX_TITLE_CHARS {
        return Err(AppError::bad_request("invalid_title", format!("A title needs 1 to {MAX_TITLE_CHARS} characters.")));
    }
    if body.scheduled_end_time <= body.scheduled_start_time {
        return Err(AppError::bad_request("invalid_schedule", "The session must end after it starts."));
    }
    if body.max_attendees.is_some_and(|max| max < 1) {
        return Err(AppError::bad_request("invalid_capacity", "maxAttendees must be at least 1."));
    }
    Ok(title)
}

/// A session as stored, with the number of people present now.
fn view_of(conn: &mut AnyConnection, row: &LiveSessionRow) -> AppResult<SessionView> {
    let facts = db::live_sessions::to_facts(row).map_err(AppError::internal)?;
    let present = db::live_sessions::present_user_ids(conn, &row.id)?;
    let attendees = present.iter().filter(|id| **id != row.instructor_id).count();
    Ok(SessionView::new(&facts, attendees))
}

/// Whether the user may see the session: its instructor, an admin, or a
/// student enrolled in its course.
fn may_see(conn: &mut AnyConnection, user: &AuthUser, row: &LiveSessionRow) -> AppResult<bool> {
    Ok(user.role == Role::Admin
        || row.instructor_id == user.id.to_string()
        || db::courses::is_enrolled(conn, &row.course_id, &user.id.to_string())?)
}

#[utoipa::path(post, path = "/api/live-sessions", request_body = CreateSession,
    responses((status = 201, body = SessionView), (status = 400, body = crate::error::ErrorEnvelope), (status = 403, body = crate::error::ErrorEnvelope), (status = 404, body = crate::error::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn create_session(state: web::Data<AppState>, user: AuthUser, body: web::Json<CreateSession>) -> AppResult<HttpResponse> {
    let title = validate(&body)?;
    let course_id = body.course_id.to_string();
    let course = state.db.read(move |conn| Ok(db::courses::find(conn, &course_id)?)).await?;
    let course = course.ok_or_else(|| AppError::not_found("course"))?;
    if course.instructor_id != user.id.to_string() && user.role != Role::Admin {
        return Err(AppError::forbidden("Only the course's instructor schedules its sessions."));
    }
    let now = to_db_time(state.clock.now());
    let chat_room = ChatRoomRow {
        id: Uuid::new_v4().to_string(),
        name: title.clone(),
        room_type: "live_session".into(),
        participants_json: "[]".into(),
        is_active: true,
        created_at: now,
    };
    let session = LiveSessionRow {
        id: Uuid::new_v4().to_string(),
        instructor_id: course.instructor_id.clone(),
        course_id: course.id.clone(),
        chat_room_id: chat_room.id.clone(),
        title,
        description: body.description.clone(),
        scheduled_start_time: to_db_time(body.scheduled_start_time),
        scheduled_end_time: to_db_time(body.scheduled_end_time),
        actual_start_time: None,
        actual_end_time: None,
        max_attendees: body.max_attendees,
        status: SessionStatus::Scheduled.as_str().into(),
        recording_url: None,
        created_at: now,
        updated_at: now,
    };
    let stored = session.clone();
    state
        .persistence
        .write(move |conn| {
            db::chat::insert_room(conn, &chat_room)?;
            db::live_sessions::insert(conn, &stored)
        })
        .await?;
    let facts = db::live_sessions::to_facts(&session).map_err(AppError::internal)?;
    Ok(HttpResponse::Created().json(SessionView::new(&facts, 0)))
}

#[utoipa::path(get, path = "/api/live-sessions/{id}",
    responses((status = 200, body = SessionView), (status = 403, body = crate::error::ErrorEnvelope), (status = 404, body = crate::error::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn get_session(state: web::Data<AppState>, user: AuthUser, path: web::Path<Uuid>) -> AppResult<HttpResponse> {
    let id = path.into_inner().to_string();
    let view = state
        .db
        .read(move |conn| {
            let row = db::live_sessions::find(conn, &id)?.ok_or_else(|| AppError::not_found("live session"))?;
            if !may_see(conn, &user, &row)? {
                return Err(AppError::forbidden("You are not enrolled in this session's course."));
            }
            view_of(conn, &row)
        })
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn body(start_hour: u32, end_hour: u32, max: Option<i32>) -> CreateSession {
        CreateSession {
            course_id: Uuid::new_v4(),
            title: "Rust 101".into(),
            description: None,
            scheduled_start_time: Utc.with_ymd_and_hms(2026, 11, 24, start_hour, 0, 0).unwrap(),
            scheduled_end_time: Utc.with_ymd_and_hms(2026, 11, 24, end_hour, 0, 0).unwrap(),
            max_attendees: max,
        }
    }

    #[test]
    fn sessions_must_end_after_they_start_and_seat_someone() {
        assert!(validate(&body(14, 15, Some(10))).is_ok());
        assert_eq!(validate(&body(15, 14, None)).unwrap_err().body.code, "invalid_schedule");
        assert_eq!(validate(&body(14, 15, Some(0))).unwrap_err().body.code, "invalid_capacity");
    }
}
