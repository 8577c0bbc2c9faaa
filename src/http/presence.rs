//! Presence over REST: my status, one person's presence, who is online, who
//! of a course is online now, and my privacy settings.
//!
//! Who may see whom is checked against the database on every call (people
//! who share a course or an active study group); the presence actors, which
//! own the live state, answer for users who have one, and the stored row
//! (offline, last seen) answers for everyone else. Changes go through the
//! user's presence actor, exactly as the `update-presence` event does.

use actix_web::{web, HttpResponse};
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::db;
use crate::domain::presence::{sort_contacts, PresenceUpdate, PrivacyChange, PrivacySettings, UserPresenceView};
use crate::engine::presence;
use crate::error::{AppError, AppResult};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/presence/status", web::put().to(put_status))
        .route("/presence/user/{user_id}", web::get().to(get_user))
        .route("/presence/online", web::get().to(online))
        .route("/presence/contacts", web::get().to(contacts))
        .route("/presence/course/{course_id}", web::get().to(course))
        .route("/presence/privacy", web::get().to(get_privacy))
        .route("/presence/privacy", web::put().to(put_privacy));
}

/// Sets or clears my manual status (until `expiresAt` if given) and my activity line.
#[utoipa::path(put, path = "/api/presence/status", request_body = PresenceUpdate,
    responses((status = 200, body = UserPresenceView), (status = 400, body = crate::error::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn put_status(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<PresenceUpdate>,
) -> AppResult<HttpResponse> {
    let change = body.into_inner().into_change()?;
    let view = presence::update(&state.registry, user.id, None, change).await?;
    Ok(HttpResponse::Ok().json(view))
}

/// One person's presence: my own truth, or what my contact lets me see.
#[utoipa::path(get, path = "/api/presence/user/{user_id}", params(("user_id" = Uuid, Path, description = "The user")),
    responses((status = 200, body = UserPresenceView), (status = 403, body = crate::error::ErrorEnvelope), (status = 404, body = crate::error::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn get_user(state: web::Data<AppState>, user: AuthUser, path: web::Path<Uuid>) -> AppResult<HttpResponse> {
    let target = path.into_inner();
    let viewer = user.id;
    let name = state
        .db
        .read(move |conn| {
            let name = db::presence::name_of(conn, &target.to_string())?.ok_or_else(|| AppError::not_found("user"))?;
            if !db::presence::may_see(conn, &viewer.to_string(), &target.to_string())? {
                return Err(AppError::forbidden("You share no course or study group with this person."));
            }
            Ok(name)
        })
        .await?;
    let for_self = target == viewer;
    if let Some(snapshot) = presence::snapshot(&state.registry, target).await {
        return Ok(HttpResponse::Ok().json(if for_self { snapshot.own } else { snapshot.for_watchers }));
    }
    let (row, privacy) = state
        .db
        .read(move |conn| {
            let id = target.to_string();
            let privacy = db::presence::find_privacy(conn, &id)?.map(presence::privacy_of).unwrap_or_default();
            Ok((db::presence::find(conn, &id)?, privacy))
        })
        .await?;
    let view = presence::stored_view(target, &name, row.as_ref(), privacy, for_self, state.clock.now());
    Ok(HttpResponse::Ok().json(view))
}

/// The people I may see (classmates, instructors, study-group mates) who are
/// not offline, myself excluded.
#[utoipa::path(get, path = "/api/presence/online",
    responses((status = 200, body = [UserPresenceView])), security(("bearer" = [])))]
pub async fn online(state: web::Data<AppState>, user: AuthUser) -> AppResult<HttpResponse> {
    let viewer = user.id.to_string();
    let people = state.db.read(move |conn| db::parse_ids(&db::presence::contacts(conn, &viewer)?)).await?;
    Ok(HttpResponse::Ok().json(presence::not_offline(&state.registry, people).await))
}

/// At most how many people `GET /api/presence/contacts` lists.
const CONTACTS_LIMIT_MAX: usize = 500;

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ContactsQuery {
    /// How many people at most (1 to 500, default 100).
    pub limit: Option<usize>,
}

/// Everyone I may see, offline people included with their last-seen time
/// (privacy applied): those not offline first, by name, then the most
/// recently seen. Myself excluded.
#[utoipa::path(get, path = "/api/presence/contacts", params(ContactsQuery),
    responses((status = 200, body = [UserPresenceView]), (status = 400, body = crate::error::ErrorEnvelope)), security(("bearer" = [])))]
pub async fn contacts(
    state: web::Data<AppState>,
    user: AuthUser,
    query: web::Query<ContactsQuery>,
) -> AppResult<HttpResponse> {
    let limit = query.limit.unwrap_or(100);
    if !(1..=CONTACTS_LIMIT_MAX).contains(&limit) {
        return Err(AppError::bad_request("invalid_limit", format!("limit is 1 to {CONTACTS_LIMIT_MAX}.")));
    }
    let viewer = user.id.to_string();
    let ids = state.db.read(move |conn| Ok(db::presence::contacts(conn, &viewer)?)).await?;
    let people = db::parse_ids(&ids)?;
    // Live actors know best (a row may still be on its way); the rest is stored.
    let live = presence::live_views(&state.registry, people).await;
    let seen: std::collections::HashSet<Uuid> = live.iter().map(|view| view.user_id).collect();
    let rest: Vec<String> =
        ids.into_iter().filter(|id| Uuid::parse_str(id).map_or(true, |id| !seen.contains(&id))).collect();
    let stored = state.db.read(move |conn| Ok(db::presence::stored_for(conn, &rest)?)).await?;
    let now = state.clock.now();
    let mut views = live;
    for (id, name, row, privacy) in stored {
        let Ok(id) = Uuid::parse_str(&id) else { continue };
        let privacy = privacy.map(presence::privacy_of).unwrap_or_default();
        views.push(presence::stored_view(id, &name, row.as_ref(), privacy, false, now));
    }
    sort_contacts(&mut views);
    views.truncate(limit);
    Ok(HttpResponse::Ok().json(views))
}

/// The course's people (instructor and students) who are online now, myself
/// excluded. For the course's instructor and enrolled students only.
#[utoipa::path(get, path = "/api/presence/course/{course_id}", params(("course_id" = Uuid, Path, description = "The course")),
    responses((status = 200, body = [UserPresenceView]), (status = 403, body = crate::error::ErrorEnvelope), (status = 404, body = crate::error::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn course(state: web::Data<AppState>, user: AuthUser, path: web::Path<Uuid>) -> AppResult<HttpResponse> {
    let course_id = path.into_inner().to_string();
    let viewer = user.id;
    let people = state
        .db
        .read(move |conn| {
            let course = db::courses::find(conn, &course_id)?.ok_or_else(|| AppError::not_found("course"))?;
            let member = course.instructor_id == viewer.to_string()
                || db::courses::is_enrolled(conn, &course_id, &viewer.to_string())?;
            if !member {
                return Err(AppError::forbidden("You neither teach nor are enrolled in this course."));
            }
            db::parse_ids(&db::presence::course_members(conn, &course_id)?)
        })
        .await?;
    let others = people.into_iter().filter(|id| *id != viewer).collect();
    Ok(HttpResponse::Ok().json(presence::not_offline(&state.registry, others).await))
}

/// My privacy settings (all off until I change them).
#[utoipa::path(get, path = "/api/presence/privacy",
    responses((status = 200, body = PrivacySettings)), security(("bearer" = [])))]
pub async fn get_privacy(state: web::Data<AppState>, user: AuthUser) -> AppResult<HttpResponse> {
    let id = user.id.to_string();
    let settings = state
        .db
        .read(move |conn| Ok(db::presence::find_privacy(conn, &id)?.map(presence::privacy_of).unwrap_or_default()))
        .await?;
    Ok(HttpResponse::Ok().json(settings))
}

/// Changes my privacy settings: answered once stored; in force (and pushed
/// to my watchers) from then on.
#[utoipa::path(put, path = "/api/presence/privacy", request_body = PrivacyChange,
    responses((status = 200, body = PrivacySettings), (status = 400, body = crate::error::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn put_privacy(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<PrivacyChange>,
) -> AppResult<HttpResponse> {
    let stored = presence::set_privacy(&state.registry, user.id, body.into_inner()).await?;
    Ok(HttpResponse::Ok().json(stored))
}
