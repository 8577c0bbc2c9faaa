//! Live sessions over REST: the calendar (create, list, read, edit, cancel),
//! start and end, attendance, chat history and Q&A. Reads go to the pool;
//! every change goes through the session's room actor, the one owner of the
//! session's state, exactly as WebSocket events do.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::db::models::{ChatRoomRow, LiveSessionRow};
use crate::db::{self, from_db_time, parse_id, to_db_time, AnyConnection};
use crate::domain::attendance::{csv_line, summarize, Absentee, Attendance};
use crate::domain::chat::ChatMessage;
use crate::domain::input;
use crate::domain::live_session::{
    validate_description, validate_schedule, validate_start_not_past, validate_title, SessionChanges, SessionStatus,
    SessionView,
};
use crate::domain::questions::{Audience, QuestionView};
use crate::domain::room::{RoomType, Standing};
use crate::domain::Role;
use crate::engine::live_session::{announce_scheduled, command_room, SessionCommand};
use crate::error::{AppError, AppResult};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/live-sessions", web::post().to(create_session))
        .route("/live-sessions", web::get().to(list_sessions))
        .route("/live-sessions/{id}", web::get().to(get_session))
        .route("/live-sessions/{id}", web::put().to(update_session))
        .route("/live-sessions/{id}", web::delete().to(cancel_session))
        .route("/live-sessions/{id}/start", web::post().to(start_session))
        .route("/live-sessions/{id}/end", web::post().to(end_session))
        .route("/live-sessions/{id}/attendees", web::get().to(attendees))
        .route("/live-sessions/{id}/attendance", web::get().to(attendance_summary))
        .route("/live-sessions/{id}/attendance.csv", web::get().to(attendance_csv))
        .route("/live-sessions/{id}/messages", web::get().to(messages))
        .route("/live-sessions/{id}/questions", web::get().to(questions));
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

fn validate(body: &CreateSession) -> AppResult<String> {
    let title = validate_title(&body.title)?;
    if let Some(description) = &body.description {
        validate_description(description)?;
    }
    validate_schedule(body.scheduled_start_time, body.scheduled_end_time, body.max_attendees)?;
    Ok(title)
}

/// A session as stored, with the number of people present now.
fn view_of(conn: &mut AnyConnection, row: &LiveSessionRow) -> AppResult<SessionView> {
    let facts = db::live_sessions::load_facts(conn, row)?;
    let present = db::live_sessions::present_user_ids(conn, &row.id)?;
    let attendees = present.iter().filter(|id| **id != row.instructor_id).count();
    Ok(SessionView::new(&facts, attendees))
}

#[utoipa::path(post, path = "/api/live-sessions", request_body = CreateSession,
    responses((status = 201, body = SessionView), (status = 400, body = crate::error::ErrorEnvelope), (status = 403, body = crate::error::ErrorEnvelope), (status = 404, body = crate::error::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn create_session(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<CreateSession>,
) -> AppResult<HttpResponse> {
    let title = validate(&body)?;
    let course_id = body.course_id.to_string();
    let course = state.db.read(move |conn| Ok(db::courses::find(conn, &course_id)?)).await?;
    let course = course.ok_or_else(|| AppError::not_found("course"))?;
    if course.instructor_id != user.id.to_string() && user.role != Role::Admin {
        return Err(AppError::forbidden("Only the course's instructor schedules its sessions."));
    }
    // Checked by the injected clock, with a minute's grace (START_GRACE).
    validate_start_not_past(body.scheduled_start_time, state.clock.now())?;
    let now = to_db_time(state.clock.now());
    let chat_room = ChatRoomRow {
        id: Uuid::new_v4().to_string(),
        name: title.clone(),
        room_type: RoomType::LiveSession.as_str().into(),
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
    // An admin may schedule for a course; the card names its instructor.
    let instructor_id = session.instructor_id.clone();
    let instructor = state.db.read(move |conn| Ok(db::users::find(conn, &instructor_id)?)).await?;
    let instructor_name = instructor.map(|row| row.name).unwrap_or_default();
    let facts = db::live_sessions::to_facts(&session, instructor_name).map_err(AppError::internal)?;
    let view = SessionView::new(&facts, 0);
    announce_scheduled(&state.registry, &view).await;
    Ok(HttpResponse::Created().json(view))
}

#[utoipa::path(get, path = "/api/live-sessions/{id}", params(("id" = Uuid, Path, description = "The resource id")),
    responses((status = 200, body = SessionView), (status = 403, body = crate::error::ErrorEnvelope), (status = 404, body = crate::error::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn get_session(state: web::Data<AppState>, user: AuthUser, path: web::Path<Uuid>) -> AppResult<HttpResponse> {
    let (row, _) = visible_session(&state, &user, path.into_inner()).await?;
    let view = state.db.read(move |conn| view_of(conn, &row)).await?;
    Ok(HttpResponse::Ok().json(view))
}

/// The session and how the user stands towards it, if they may see it:
/// 404 for an unknown id, 403 for someone outside its course (the rule
/// joining its room applies too).
async fn visible_session(state: &AppState, user: &AuthUser, id: Uuid) -> AppResult<(LiveSessionRow, Standing)> {
    let user = user.clone();
    state
        .db
        .read(move |conn| {
            let row =
                db::live_sessions::find(conn, &id.to_string())?.ok_or_else(|| AppError::not_found("live session"))?;
            let standing = db::live_sessions::standing(conn, user.id, user.role, &row)?
                .ok_or_else(|| AppError::forbidden("You are not enrolled in this session's course."))?;
            Ok((row, standing))
        })
        .await
}

async fn command(state: &AppState, user: AuthUser, id: Uuid, command: SessionCommand) -> AppResult<SessionView> {
    let (row, _) = visible_session(state, &user, id).await?;
    let room_id = parse_id(&row.chat_room_id).map_err(AppError::internal)?;
    command_room(&state.registry, room_id, Some(user), command).await
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct ListQuery {
    /// Sessions starting at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Sessions starting before this time.
    pub to: Option<DateTime<Utc>>,
    pub course_id: Option<Uuid>,
    pub status: Option<String>,
}

#[utoipa::path(get, path = "/api/live-sessions", params(ListQuery),
    responses((status = 200, body = [SessionView]), (status = 400, body = crate::error::ErrorEnvelope)), security(("bearer" = [])))]
pub async fn list_sessions(
    state: web::Data<AppState>,
    user: AuthUser,
    query: web::Query<ListQuery>,
) -> AppResult<HttpResponse> {
    let query = query.into_inner();
    for (field, at) in [("from", query.from), ("to", query.to)] {
        if let Some(at) = at {
            input::time(field, at)?;
        }
    }
    if let Some(status) = &query.status {
        if SessionStatus::parse(status).is_none() {
            return Err(AppError::bad_request("invalid_status", "status is scheduled, active, ended or cancelled."));
        }
    }
    let filter = db::live_sessions::SessionFilter {
        from: query.from.map(to_db_time),
        to: query.to.map(to_db_time),
        course_id: query.course_id.map(|id| id.to_string()),
        status: query.status,
    };
    let views = state
        .db
        .read(move |conn| {
            let rows = db::live_sessions::list_visible(conn, &user.id.to_string(), user.role == Role::Admin, &filter)?;
            rows.iter().map(|row| view_of(conn, row)).collect::<AppResult<Vec<_>>>()
        })
        .await?;
    Ok(HttpResponse::Ok().json(views))
}

#[utoipa::path(put, path = "/api/live-sessions/{id}", params(("id" = Uuid, Path, description = "The resource id")), request_body = SessionChanges,
    responses((status = 200, body = SessionView), (status = 400, body = crate::error::ErrorEnvelope), (status = 403, body = crate::error::ErrorEnvelope), (status = 409, body = crate::error::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn update_session(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    body: web::Json<SessionChanges>,
) -> AppResult<HttpResponse> {
    let view = command(&state, user, path.into_inner(), SessionCommand::Update(body.into_inner())).await?;
    Ok(HttpResponse::Ok().json(view))
}

#[utoipa::path(delete, path = "/api/live-sessions/{id}", params(("id" = Uuid, Path, description = "The resource id")),
    responses((status = 204), (status = 403, body = crate::error::ErrorEnvelope), (status = 409, body = crate::error::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn cancel_session(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
) -> AppResult<HttpResponse> {
    command(&state, user, path.into_inner(), SessionCommand::Cancel).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(post, path = "/api/live-sessions/{id}/start", params(("id" = Uuid, Path, description = "The resource id")),
    responses((status = 200, body = SessionView), (status = 403, body = crate::error::ErrorEnvelope), (status = 409, body = crate::error::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn start_session(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(command(&state, user, path.into_inner(), SessionCommand::Start).await?))
}

#[utoipa::path(post, path = "/api/live-sessions/{id}/end", params(("id" = Uuid, Path, description = "The resource id")),
    responses((status = 200, body = SessionView), (status = 403, body = crate::error::ErrorEnvelope), (status = 409, body = crate::error::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn end_session(state: web::Data<AppState>, user: AuthUser, path: web::Path<Uuid>) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(command(&state, user, path.into_inner(), SessionCommand::End).await?))
}

/// One person's attendance of a session.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttendeeView {
    pub user_id: Uuid,
    pub name: String,
    /// First time they came in.
    pub joined_at: DateTime<Utc>,
    /// Last time they left; null while present.
    pub left_at: Option<DateTime<Utc>>,
    /// Time present over every visit, the current one included.
    pub seconds_present: i64,
}

async fn attendance(state: &AppState, user: &AuthUser, id: Uuid) -> AppResult<(LiveSessionRow, Vec<AttendeeView>)> {
    let (row, standing) = visible_session(state, user, id).await?;
    if standing != Standing::Host {
        return Err(AppError::forbidden("Attendance is for the session's instructor."));
    }
    let now = state.clock.now();
    let session_id = row.id.clone();
    let rows = state.db.read(move |conn| Ok(db::live_sessions::attendees(conn, &session_id)?)).await?;
    let views = rows
        .into_iter()
        .map(|(attendee, name)| {
            let open_visit = match attendee.left_at {
                None => (now - from_db_time(attendee.last_joined_at)).num_seconds().max(0),
                Some(_) => 0,
            };
            Ok(AttendeeView {
                user_id: parse_id(&attendee.user_id).map_err(AppError::internal)?,
                name,
                joined_at: from_db_time(attendee.joined_at),
                left_at: attendee.left_at.map(from_db_time),
                seconds_present: attendee.seconds_present + open_visit,
            })
        })
        .collect::<AppResult<Vec<_>>>()?;
    Ok((row, views))
}

#[utoipa::path(get, path = "/api/live-sessions/{id}/attendees", params(("id" = Uuid, Path, description = "The resource id")),
    responses((status = 200, body = [AttendeeView]), (status = 403, body = crate::error::ErrorEnvelope)), security(("bearer" = [])))]
pub async fn attendees(state: web::Data<AppState>, user: AuthUser, path: web::Path<Uuid>) -> AppResult<HttpResponse> {
    let (_, views) = attendance(&state, &user, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(views))
}

/// Attendance in numbers, for the instructor after (or during) a session.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttendanceSummary {
    pub session_id: Uuid,
    /// Students who came at least once (the instructor not counted).
    pub attendee_count: usize,
    pub total_minutes: f64,
    pub average_minutes: f64,
    /// Students enrolled in the course (added).
    pub enrolled_count: usize,
    /// Enrolled students who never joined, by name (added).
    pub absentees: Vec<Absentee>,
}

/// The attendees and the summary of a session, for its instructor.
async fn attendance_report(
    state: &AppState,
    user: &AuthUser,
    session_id: Uuid,
) -> AppResult<(LiveSessionRow, Vec<AttendeeView>, Attendance)> {
    let (row, views) = attendance(state, user, session_id).await?;
    let course_id = row.course_id.clone();
    let enrolled = state.db.read(move |conn| Ok(db::courses::enrolled_students(conn, &course_id)?)).await?;
    let enrolled = enrolled
        .into_iter()
        .map(|(id, name)| Ok((parse_id(&id).map_err(AppError::internal)?, name)))
        .collect::<AppResult<Vec<_>>>()?;
    let instructor = parse_id(&row.instructor_id).map_err(AppError::internal)?;
    let present: Vec<(Uuid, i64)> = views.iter().map(|a| (a.user_id, a.seconds_present)).collect();
    let summary = summarize(&present, &[instructor], &enrolled);
    Ok((row, views, summary))
}

#[utoipa::path(get, path = "/api/live-sessions/{id}/attendance", params(("id" = Uuid, Path, description = "The resource id")),
    responses((status = 200, body = AttendanceSummary), (status = 403, body = crate::error::ErrorEnvelope)), security(("bearer" = [])))]
pub async fn attendance_summary(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
) -> AppResult<HttpResponse> {
    let session_id = path.into_inner();
    let (_, _, summary) = attendance_report(&state, &user, session_id).await?;
    Ok(HttpResponse::Ok().json(AttendanceSummary {
        session_id,
        attendee_count: summary.attendee_count,
        total_minutes: summary.total_minutes,
        average_minutes: summary.average_minutes,
        enrolled_count: summary.enrolled_count,
        absentees: summary.absentees,
    }))
}

/// Attendance as a CSV file (added): one line per enrolled student, those
/// who came first (by name) with their times, then those who did not.
#[utoipa::path(get, path = "/api/live-sessions/{id}/attendance.csv", params(("id" = Uuid, Path, description = "The resource id")),
    responses((status = 200, description = "text/csv: name,status,joined_at,left_at,minutes_present", content_type = "text/csv", body = String),
        (status = 403, body = crate::error::ErrorEnvelope), (status = 404, body = crate::error::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn attendance_csv(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
) -> AppResult<HttpResponse> {
    let (row, views, summary) = attendance_report(&state, &user, path.into_inner()).await?;
    let mut csv = csv_line(&["name", "status", "joined_at", "left_at", "minutes_present"]);
    let mut came: Vec<&AttendeeView> = views.iter().filter(|a| a.user_id.to_string() != row.instructor_id).collect();
    came.sort_by_key(|a| a.name.to_lowercase());
    for a in came {
        let left = a.left_at.map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)).unwrap_or_default();
        let minutes = format!("{:.1}", a.seconds_present as f64 / 60.0);
        let joined = a.joined_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        csv.push_str(&csv_line(&[a.name.as_str(), "present", &joined, &left, &minutes]));
    }
    for absent in &summary.absentees {
        csv.push_str(&csv_line(&[absent.name.as_str(), "absent", "", "", "0.0"]));
    }
    let file = format!("attendance-{}.csv", row.id);
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header(("Content-Disposition", format!("attachment; filename=\"{file}\"")))
        .body(csv))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// A message id: only messages before it.
    pub before: Option<Uuid>,
    /// At most this many (default 50, at most 200).
    pub limit: Option<i64>,
}

#[utoipa::path(get, path = "/api/live-sessions/{id}/messages", params(("id" = Uuid, Path, description = "The resource id"), HistoryQuery),
    responses((status = 200, body = [ChatMessage]), (status = 403, body = crate::error::ErrorEnvelope), (status = 404, body = crate::error::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn messages(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    query: web::Query<HistoryQuery>,
) -> AppResult<HttpResponse> {
    let (row, _) = visible_session(&state, &user, path.into_inner()).await?;
    let HistoryQuery { before, limit } = query.into_inner();
    let page = state.db.read(move |conn| db::chat::history(conn, &row.chat_room_id, before, limit)).await?;
    Ok(HttpResponse::Ok().json(page))
}

#[utoipa::path(get, path = "/api/live-sessions/{id}/questions", params(("id" = Uuid, Path, description = "The resource id")),
    responses((status = 200, body = [QuestionView]), (status = 403, body = crate::error::ErrorEnvelope)), security(("bearer" = [])))]
pub async fn questions(state: web::Data<AppState>, user: AuthUser, path: web::Path<Uuid>) -> AppResult<HttpResponse> {
    let (row, standing) = visible_session(&state, &user, path.into_inner()).await?;
    let audience = if standing == Standing::Host { Audience::Leaders } else { Audience::Classmates };
    let board = state.db.read(move |conn| db::questions::load_board(conn, &row.id)).await?;
    Ok(HttpResponse::Ok().json(board.views(audience)))
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
