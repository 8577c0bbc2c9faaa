//! Office hours over REST: the weekly schedule, status and analytics here;
//! the queue in `queue.rs`. Rules are `domain::office_hours`'s; the queue's
//! changes go through the instructor's actor (`engine::office_hours`),
//! the same commands the WebSocket events run.

pub mod queue;

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::db::models::OfficeHoursSlotRow;
use crate::db::{self, to_db_time};
use crate::domain::chat::ChatMessage;
use crate::domain::input;
use crate::domain::office_hours::analytics::{self, HelpRecord};
use crate::domain::office_hours::schedule::{self, Schedule, Slot, SlotMode};
use crate::engine::office_hours::commands::{self, require_instructor};
use crate::engine::office_hours::slot_view;
use crate::error::{AppError, AppResult};
use crate::http::live_sessions::HistoryQuery;
use crate::protocol::office_hours::{DayFiguresView, SlotView, StatusView};
use crate::state::AppState;

/// Longest span one analytics request covers.
const MAX_ANALYTICS_DAYS: i64 = 366;
const DEFAULT_ANALYTICS_DAYS: i64 = 30;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/office-hours/schedule", web::post().to(add_slot))
        .route("/office-hours/schedule/{id}", web::put().to(update_slot))
        .route("/office-hours/schedule/{id}", web::delete().to(delete_slot))
        .route("/office-hours/instructors", web::get().to(my_instructors))
        .route("/office-hours/instructor/{id}", web::get().to(instructor_status))
        .route("/office-hours/analytics", web::get().to(analytics))
        .route("/office-hours/rooms/{id}/messages", web::get().to(room_messages))
        .configure(queue::configure);
}

/// A slot as sent: every field optional, so one type serves create and edit.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SlotBody {
    pub day_of_week: Option<i32>,
    /// `HH:MM`.
    pub start_time: Option<String>,
    pub end_time: Option<String>,
    /// An IANA zone name (default `UTC`).
    pub time_zone: Option<String>,
    /// `queue` (default) or `drop-in`.
    pub mode: Option<String>,
    pub is_active: Option<bool>,
}

impl SlotBody {
    /// The slot this body makes of `base` (a new slot's defaults, or the stored one).
    fn apply(self, mut slot: Slot) -> AppResult<Slot> {
        if let Some(day) = self.day_of_week {
            slot.day_of_week = schedule::parse_day(day)?;
        }
        if let Some(start) = &self.start_time {
            slot.start = schedule::parse_time("startTime", start)?;
        }
        if let Some(end) = &self.end_time {
            slot.end = schedule::parse_time("endTime", end)?;
        }
        if let Some(zone) = &self.time_zone {
            slot.zone = schedule::parse_zone(zone)?;
        }
        if let Some(mode) = &self.mode {
            slot.mode = SlotMode::parse(mode)?;
        }
        if let Some(active) = self.is_active {
            slot.active = active;
        }
        schedule::validate_times(slot.start, slot.end)?;
        Ok(slot)
    }
}

fn slot_row(instructor_id: Uuid, slot: &Slot, created_at: DateTime<Utc>) -> OfficeHoursSlotRow {
    OfficeHoursSlotRow {
        id: slot.id.to_string(),
        instructor_id: instructor_id.to_string(),
        day_of_week: slot.day_of_week as i32,
        start_time: slot.start,
        end_time: slot.end,
        is_active: slot.active,
        created_at: to_db_time(created_at),
        time_zone: slot.zone.name().to_string(),
        mode: slot.mode.as_str().to_string(),
    }
}

fn slot_overlaps() -> AppError {
    AppError::conflict("slot_overlaps", "This slot overlaps another of your active slots.")
}

/// Stores a new or edited slot unless it overlaps another: the check runs in
/// the write's transaction, so two requests at once cannot both pass it.
async fn store_slot(
    state: &AppState,
    user: &AuthUser,
    slot: Slot,
    created_at: DateTime<Utc>,
    new: bool,
) -> AppResult<SlotView> {
    let (instructor, now) = (user.id, state.clock.now());
    let row = slot_row(instructor, &slot, created_at);
    let candidate = slot.clone();
    let stored = state
        .persistence
        .write(move |conn| {
            let others: Vec<Slot> = db::office_hours::slots(conn, &instructor.to_string())?
                .iter()
                .filter_map(db::office_hours::to_slot)
                .collect();
            if Schedule::new(others).overlapping(&candidate, now).is_some() {
                return Ok(false);
            }
            if new {
                db::office_hours::insert_slot(conn, &row)?;
            } else {
                db::office_hours::update_slot(conn, &row)?;
            }
            Ok(true)
        })
        .await?;
    if !stored {
        return Err(slot_overlaps());
    }
    commands::slots_changed(&state.registry, instructor);
    Ok(slot_view(instructor, &slot))
}

#[utoipa::path(post, path = "/api/office-hours/schedule", request_body = SlotBody,
    responses((status = 201, body = SlotView), (status = 400, body = crate::error::ErrorEnvelope), (status = 403, body = crate::error::ErrorEnvelope), (status = 409, body = crate::error::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn add_slot(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<SlotBody>,
) -> AppResult<HttpResponse> {
    require_instructor(&user)?;
    let body = body.into_inner();
    let (Some(_), Some(_), Some(_)) = (body.day_of_week, &body.start_time, &body.end_time) else {
        return Err(AppError::bad_request("invalid_schedule", "A slot needs dayOfWeek, startTime and endTime."));
    };
    let blank = Slot {
        id: Uuid::new_v4(),
        day_of_week: 0,
        start: chrono::NaiveTime::MIN,
        end: chrono::NaiveTime::MIN,
        zone: chrono_tz::UTC,
        mode: SlotMode::Queue,
        active: true,
    };
    let slot = body.apply(blank)?;
    let view = store_slot(&state, &user, slot, state.clock.now(), true).await?;
    Ok(HttpResponse::Created().json(view))
}

/// The caller's own slot (404 for anyone else's, or an unknown one).
async fn own_slot(state: &AppState, user: &AuthUser, slot_id: Uuid) -> AppResult<(Slot, DateTime<Utc>)> {
    require_instructor(user)?;
    let id = slot_id.to_string();
    let row = state.db.read(move |conn| Ok(db::office_hours::find_slot(conn, &id)?)).await?;
    let row = row.filter(|row| row.instructor_id == user.id.to_string()).ok_or_else(|| AppError::not_found("slot"))?;
    let slot = db::office_hours::to_slot(&row).ok_or_else(|| AppError::internal("unreadable slot row"))?;
    Ok((slot, db::from_db_time(row.created_at)))
}

#[utoipa::path(put, path = "/api/office-hours/schedule/{id}", request_body = SlotBody, params(("id" = Uuid, Path, description = "The slot")),
    responses((status = 200, body = SlotView), (status = 400, body = crate::error::ErrorEnvelope), (status = 403, body = crate::error::ErrorEnvelope), (status = 404, body = crate::error::ErrorEnvelope), (status = 409, body = crate::error::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn update_slot(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    body: web::Json<SlotBody>,
) -> AppResult<HttpResponse> {
    let (stored, created_at) = own_slot(&state, &user, path.into_inner()).await?;
    let slot = body.into_inner().apply(stored)?;
    Ok(HttpResponse::Ok().json(store_slot(&state, &user, slot, created_at, false).await?))
}

#[utoipa::path(delete, path = "/api/office-hours/schedule/{id}", params(("id" = Uuid, Path, description = "The slot")),
    responses((status = 204), (status = 403, body = crate::error::ErrorEnvelope), (status = 404, body = crate::error::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn delete_slot(state: web::Data<AppState>, user: AuthUser, path: web::Path<Uuid>) -> AppResult<HttpResponse> {
    let (slot, _) = own_slot(&state, &user, path.into_inner()).await?;
    let id = slot.id.to_string();
    state.persistence.write(move |conn| db::office_hours::delete_slot(conn, &id)).await?;
    commands::slots_changed(&state.registry, user.id);
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(get, path = "/api/office-hours/instructor/{id}", params(("id" = Uuid, Path, description = "The instructor")),
    responses((status = 200, body = StatusView), (status = 403, body = crate::error::ErrorEnvelope), (status = 404, body = crate::error::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn instructor_status(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(commands::status(&state.registry, &user, path.into_inner()).await?))
}

#[utoipa::path(get, path = "/api/office-hours/instructors",
    responses((status = 200, body = [StatusView])), security(("bearer" = [])))]
pub async fn my_instructors(state: web::Data<AppState>, user: AuthUser) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(commands::my_instructors(&state.registry, &user).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AnalyticsQuery {
    /// Admissions at or after this time (default: 30 days before `to`).
    pub from: Option<DateTime<Utc>>,
    /// Admissions before this time (default: now).
    pub to: Option<DateTime<Utc>>,
}

#[utoipa::path(get, path = "/api/office-hours/analytics", params(AnalyticsQuery),
    responses((status = 200, body = [DayFiguresView]), (status = 400, body = crate::error::ErrorEnvelope), (status = 403, body = crate::error::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn analytics(
    state: web::Data<AppState>,
    user: AuthUser,
    query: web::Query<AnalyticsQuery>,
) -> AppResult<HttpResponse> {
    require_instructor(&user)?;
    let query = query.into_inner();
    for (field, at) in [("from", query.from), ("to", query.to)] {
        if let Some(at) = at {
            input::time(field, at)?;
        }
    }
    let to = query.to.unwrap_or_else(|| state.clock.now());
    let from = query.from.unwrap_or(to - Duration::days(DEFAULT_ANALYTICS_DAYS));
    if from > to || to - from > Duration::days(MAX_ANALYTICS_DAYS) {
        return Err(AppError::bad_request(
            "invalid_range",
            format!("from must be before to, at most {MAX_ANALYTICS_DAYS} days apart."),
        ));
    }
    let instructor = user.id.to_string();
    let rows = state
        .db
        .read(move |conn| Ok(db::office_hours::help_records(conn, &instructor, to_db_time(from), to_db_time(to))?))
        .await?;
    let records: Vec<HelpRecord> = rows
        .into_iter()
        .map(|(joined, admitted, completed)| HelpRecord {
            joined_at: db::from_db_time(joined),
            admitted_at: db::from_db_time(admitted),
            completed_at: db::from_db_time(completed),
        })
        .collect();
    let days: Vec<DayFiguresView> = analytics::daily(&records)
        .into_iter()
        .map(|day| DayFiguresView {
            date: day.date.to_string(),
            helped: day.helped,
            median_wait_sec: day.median_wait_secs,
            p90_wait_sec: day.p90_wait_secs,
            median_help_sec: day.median_help_secs,
        })
        .collect();
    Ok(HttpResponse::Ok().json(days))
}

/// A private or drop-in room's history (**added**: a page reloaded in a room
/// starts from it; the socket's catch-up covers reconnects).
#[utoipa::path(get, path = "/api/office-hours/rooms/{id}/messages", operation_id = "office_hours_room_messages",
    params(("id" = Uuid, Path, description = "The room"), HistoryQuery),
    responses((status = 200, body = [ChatMessage]), (status = 403, body = crate::error::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn room_messages(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    query: web::Query<HistoryQuery>,
) -> AppResult<HttpResponse> {
    let (room, reader) = (path.into_inner().to_string(), user.id.to_string());
    let HistoryQuery { before, limit } = query.into_inner();
    let page = state
        .db
        .read(move |conn| {
            match db::office_hours::may_read_room(conn, &room, &reader)? {
                None => return Err(AppError::not_found("office hours room")),
                Some(false) => return Err(AppError::forbidden("You were not in this office hours room.")),
                Some(true) => {}
            }
            db::chat::history(conn, &room, before, limit)
        })
        .await?;
    Ok(HttpResponse::Ok().json(page))
}
