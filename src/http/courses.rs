//! Courses (phase 1, assumed by the plan): create, list mine, enroll.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::db::models::{CourseRow, EnrollmentRow};
use crate::db::{self, from_db_time, parse_id, to_db_time};
use crate::domain::{input, join_code, Role};
use crate::error::{AppError, AppResult};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/courses", web::post().to(create_course))
        .route("/courses", web::get().to(list_courses))
        .route("/courses/join", web::post().to(join_by_code))
        .route("/courses/{id}/enroll", web::post().to(enroll));
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct CreateCourse {
    pub title: String,
    pub description: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CourseView {
    pub id: Uuid,
    pub title: String,
    pub description: Option<String>,
    pub instructor_id: Uuid,
    pub created_at: DateTime<Utc>,
    /// The short code students join with ("KM7R-Q2XD"), added; null for a
    /// course made outside the API.
    pub join_code: Option<String>,
}

impl TryFrom<CourseRow> for CourseView {
    type Error = AppError;

    fn try_from(row: CourseRow) -> AppResult<Self> {
        Ok(Self {
            id: parse_id(&row.id).map_err(AppError::internal)?,
            instructor_id: parse_id(&row.instructor_id).map_err(AppError::internal)?,
            title: row.title,
            description: row.description,
            created_at: from_db_time(row.created_at),
            join_code: row.join_code,
        })
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnrollmentView {
    pub course_id: Uuid,
    pub user_id: Uuid,
}

const MAX_TITLE_CHARS: usize = 200;
const MAX_DESCRIPTION_CHARS: usize = 10_000;

#[utoipa::path(post, path = "/api/courses", request_body = CreateCourse,
    responses((status = 201, body = CourseView), (status = 400, body = crate::error::ErrorEnvelope), (status = 403, body = crate::error::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn create_course(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<CreateCourse>,
) -> AppResult<HttpResponse> {
    if !user.role.teaches() {
        return Err(AppError::forbidden("Only instructors create courses."));
    }
    let title = body.title.trim().to_string();
    input::single_line("The title", &title)?;
    if let Some(description) = &body.description {
        input::multi_line("The description", description)?;
    }
    if title.is_empty() || title.chars().count() > MAX_TITLE_CHARS {
        return Err(AppError::bad_request(
            "invalid_title",
            format!("A title needs 1 to {MAX_TITLE_CHARS} characters."),
        ));
    }
    if body.description.as_ref().is_some_and(|d| d.chars().count() > MAX_DESCRIPTION_CHARS) {
        return Err(AppError::bad_request("invalid_description", "The description is too long."));
    }
    let row = CourseRow {
        id: Uuid::new_v4().to_string(),
        instructor_id: user.id.to_string(),
        title,
        description: body.description.clone(),
        created_at: to_db_time(state.clock.now()),
        join_code: Some(new_join_code()?),
    };
    let stored = row.clone();
    state.persistence.write(move |conn| db::courses::insert(conn, &stored)).await?;
    Ok(HttpResponse::Created().json(CourseView::try_from(row)?))
}

#[utoipa::path(get, path = "/api/courses", responses((status = 200, body = [CourseView])), security(("bearer" = [])))]
pub async fn list_courses(state: web::Data<AppState>, user: AuthUser) -> AppResult<HttpResponse> {
    let user_id = user.id.to_string();
    let rows = state.db.read(move |conn| Ok(db::courses::list_for_user(conn, &user_id)?)).await?;
    let views = rows.into_iter().map(CourseView::try_from).collect::<AppResult<Vec<_>>>()?;
    Ok(HttpResponse::Ok().json(views))
}

#[utoipa::path(post, path = "/api/courses/{id}/enroll", params(("id" = Uuid, Path, description = "The resource id")),
    responses((status = 201, body = EnrollmentView), (status = 200, body = EnrollmentView), (status = 403, body = crate::error::ErrorEnvelope), (status = 404, body = crate::error::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn enroll(state: web::Data<AppState>, user: AuthUser, path: web::Path<Uuid>) -> AppResult<HttpResponse> {
    let course_id = path.into_inner();
    if user.role != Role::Student {
        return Err(AppError::forbidden("Only students enroll in courses."));
    }
    let id = course_id.to_string();
    let Some(course) = state.db.read(move |conn| Ok(db::courses::find(conn, &id)?)).await? else {
        return Err(AppError::not_found("course"));
    };
    enroll_in(&state, &user, course).await
}

/// A new course's join code, from the operating system's randomness.
fn new_join_code() -> AppResult<String> {
    use rand_core::RngCore;
    let mut bytes = [0u8; join_code::LENGTH];
    rand_core::OsRng.try_fill_bytes(&mut bytes).map_err(|err| AppError::internal(format!("no randomness: {err}")))?;
    Ok(join_code::from_random(bytes))
}

/// What a student sends to join a course by its code.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JoinByCode {
    /// The course's join code as read out: case, spaces and the hyphen do not matter.
    pub code: String,
}

/// Enrolls me in the course with this join code (added): 201 new, 200
/// already enrolled; 400 `invalid_code` for text that cannot be a code, 404
/// `unknown_code` when no course has it.
#[utoipa::path(post, path = "/api/courses/join", request_body = JoinByCode,
    responses((status = 201, body = EnrollmentView), (status = 200, body = EnrollmentView), (status = 400, body = crate::error::ErrorEnvelope),
        (status = 403, body = crate::error::ErrorEnvelope), (status = 404, body = crate::error::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn join_by_code(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<JoinByCode>,
) -> AppResult<HttpResponse> {
    if user.role != Role::Student {
        return Err(AppError::forbidden("Only students enroll in courses."));
    }
    let Some(code) = join_code::normalize(&body.code) else {
        return Err(AppError::bad_request(
            "invalid_code",
            "A course code is 8 letters and digits, like KM7R-Q2XD: ask your instructor for it.",
        ));
    };
    let wanted = code.clone();
    let Some(course) = state.db.read(move |conn| Ok(db::courses::find_by_code(conn, &wanted)?)).await? else {
        return Err(AppError::new(
            actix_web::http::StatusCode::NOT_FOUND,
            "unknown_code",
            format!("No course has the code {code}. Check it with your instructor."),
        ));
    };
    enroll_in(&state, &user, course).await
}

async fn enroll_in(state: &AppState, user: &AuthUser, course: CourseRow) -> AppResult<HttpResponse> {
    let course_id = parse_id(&course.id).map_err(AppError::internal)?;
    let row = EnrollmentRow {
        course_id: course_id.to_string(),
        user_id: user.id.to_string(),
        enrolled_at: to_db_time(state.clock.now()),
    };
    let created = state.persistence.write(move |conn| db::courses::enroll(conn, &row)).await?;
    if created {
        // A new classmate: the course's member list and the circles of the
        // newcomer (and of the instructor, whose list may predate the course)
        // are read again at the next push, so everyone hears the newcomer and
        // the newcomer hears them at once rather than after the TTL.
        let instructor = parse_id(&course.instructor_id).ok();
        state.registry.contacts.enrolled(course_id, instructor, user.id);
    }
    let view = EnrollmentView { course_id, user_id: user.id };
    Ok(if created { HttpResponse::Created().json(view) } else { HttpResponse::Ok().json(view) })
}
