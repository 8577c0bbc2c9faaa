//! Study groups over REST: the groups themselves here, membership and
//! invitations in `members.rs`, chat and group study sessions in `chat.rs`.
//! The rules are `domain::study_group`'s; every change is stored through
//! the persistence actor, then the group's room (if open) and the members'
//! sockets hear of it.

pub mod chat;
pub mod members;

use actix_web::{web, HttpResponse};
use chrono::{Duration, Utc};
use serde::Deserialize;
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::db::models::{ChatRoomRow, StudyGroupRow};
use crate::db::{self, from_db_time, parse_id, to_db_time, AnyConnection};
use crate::domain::room::RoomType;
use crate::domain::study_group::{
    self as rules, validate_description, validate_member_limit, validate_name, GroupFacts, GroupRole, Visibility,
    ACTIVITY_DAYS,
};
use crate::engine::presence;
use crate::engine::study_group::{members_changed, MembersChanged};
use crate::error::{AppError, AppResult};
use crate::protocol::study_groups::{self as frames, GroupView};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    // The fixed paths first: "search" and "invites" are not group ids.
    cfg.route("/study-groups", web::post().to(create_group))
        .route("/study-groups", web::get().to(my_groups))
        .route("/study-groups/search", web::get().to(search_groups))
        .route("/study-groups/invites", web::get().to(members::my_invites))
        .route("/study-groups/invites/{id}/accept", web::post().to(members::accept_invite))
        .route("/study-groups/invites/{id}/decline", web::post().to(members::decline_invite))
        .route("/study-groups/{id}", web::get().to(get_group))
        .route("/study-groups/{id}", web::put().to(update_group))
        .route("/study-groups/{id}", web::delete().to(archive_group))
        .route("/study-groups/{id}/join", web::post().to(members::join))
        .route("/study-groups/{id}/leave", web::post().to(members::leave))
        .route("/study-groups/{id}/members", web::get().to(members::list))
        .route("/study-groups/{id}/members/{user_id}", web::put().to(members::change_role))
        .route("/study-groups/{id}/members/{user_id}", web::delete().to(members::remove))
        .route("/study-groups/{id}/invites", web::post().to(members::invite))
        .route("/study-groups/{id}/message", web::post().to(chat::post_message))
        .route("/study-groups/{id}/messages", web::get().to(chat::messages))
        .route("/study-groups/{id}/sessions", web::post().to(chat::schedule_session))
        .route("/study-groups/{id}/sessions", web::get().to(chat::sessions));
}

/// A group as stored, and how the caller stands towards it.
pub(crate) struct Standing {
    pub group: StudyGroupRow,
    pub role: Option<GroupRole>,
    /// Takes or teaches the group's course (true for a group with none).
    pub in_course: bool,
}

impl Standing {
    fn facts(&self) -> AppResult<GroupFacts> {
        facts_of(&self.group)
    }

    pub fn chat_room_id(&self) -> AppResult<Uuid> {
        parse_id(&self.group.chat_room_id).map_err(AppError::internal)
    }

    pub fn group_id(&self) -> AppResult<Uuid> {
        parse_id(&self.group.id).map_err(AppError::internal)
    }
}

pub(crate) fn facts_of(row: &StudyGroupRow) -> AppResult<GroupFacts> {
    Ok(GroupFacts {
        id: parse_id(&row.id).map_err(AppError::internal)?,
        course_id: row.course_id.as_deref().map(parse_id).transpose().map_err(AppError::internal)?,
        visibility: Visibility::parse(&row.visibility)?,
        max_members: row.max_members,
        member_count: row.member_count,
        is_active: row.is_active,
    })
}

pub(crate) fn standing_in(conn: &mut AnyConnection, group_id: Uuid, user_id: Uuid) -> AppResult<Standing> {
    let group =
        db::study_groups::find(conn, &group_id.to_string())?.ok_or_else(|| AppError::not_found("study group"))?;
    let user = user_id.to_string();
    let role = db::study_groups::role_of(conn, &group.id, &user)?;
    let in_course = match &group.course_id {
        Some(course_id) => db::study_groups::in_course(conn, course_id, &user)?,
        None => true,
    };
    Ok(Standing { group, role, in_course })
}

/// The group and the caller's standing, read from the database.
pub(crate) async fn standing(state: &AppState, group_id: Uuid, user: &AuthUser) -> AppResult<Standing> {
    let user_id = user.id;
    state.db.read(move |conn| standing_in(conn, group_id, user_id)).await
}

/// The caller's standing, for a member (403 for anyone else, 404 for an
/// unknown or archived group).
pub(crate) async fn as_member(state: &AppState, group_id: Uuid, user: &AuthUser) -> AppResult<(Standing, GroupRole)> {
    let standing = standing(state, group_id, user).await?;
    if !standing.group.is_active {
        return Err(AppError::not_found("study group"));
    }
    let role = rules::require_member(standing.role)?;
    Ok((standing, role))
}

/// What a view needs from the database besides the row.
struct ViewFacts {
    unread: Option<i64>,
    last_message_at: Option<chrono::NaiveDateTime>,
    member_ids: Vec<Uuid>,
}

fn view_facts(conn: &mut AnyConnection, group: &StudyGroupRow, member: Option<&str>) -> AppResult<ViewFacts> {
    let unread = match member {
        Some(user) => {
            let position = db::chat::read_position(conn, &group.chat_room_id, user)?;
            Some(db::chat::count_unread(conn, &group.chat_room_id, user, position)?)
        }
        None => None,
    };
    let last_message_at = db::study_groups::last_message_at(conn, &group.chat_room_id)?;
    let member_ids = db::parse_ids(&db::presence::group_members(conn, &group.id)?)?;
    Ok(ViewFacts { unread, last_message_at, member_ids })
}

/// A group as `viewer` sees it; the online count asks the presence actors
/// of the members who have one (the online ones) only.
async fn view(state: &AppState, group: StudyGroupRow, role: Option<GroupRole>, viewer: Uuid) -> AppResult<GroupView> {
    let (row, member) = (group.clone(), role.map(|_| viewer.to_string()));
    let facts = state.db.read(move |conn| view_facts(conn, &row, member.as_deref())).await?;
    let others = facts.member_ids.into_iter().filter(|id| *id != viewer).collect();
    let online_others = presence::not_offline(&state.registry, others).await.len();
    // I count myself: I am looking at the page.
    let online_count = online_others + usize::from(role.is_some());
    let created_at = from_db_time(group.created_at);
    let last_activity_at = facts.last_message_at.map(from_db_time).unwrap_or(created_at).max(created_at);
    Ok(GroupView {
        id: parse_id(&group.id).map_err(AppError::internal)?,
        name: group.name,
        description: group.description,
        course_id: group.course_id.as_deref().map(parse_id).transpose().map_err(AppError::internal)?,
        created_by: parse_id(&group.created_by).map_err(AppError::internal)?,
        visibility: Visibility::parse(&group.visibility)?,
        max_members: group.max_members,
        member_count: group.member_count,
        online_count,
        chat_room_id: parse_id(&group.chat_room_id).map_err(AppError::internal)?,
        my_role: role,
        unread_count: facts.unread,
        last_activity_at,
        is_active: group.is_active,
        activity: None,
    })
}

/// Tells every member's open sockets (and `others`) that the group changed.
pub(crate) async fn announce_change(state: &AppState, group_id: Uuid, others: &[Uuid]) {
    let group = group_id.to_string();
    let members = state.db.read(move |conn| db::parse_ids(&db::presence::group_members(conn, &group)?)).await;
    let mut people = members.unwrap_or_default();
    people.extend_from_slice(others);
    state.registry.broker.publish_to_users(&mut people.into_iter(), &frames::updated(group_id));
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateGroup {
    pub name: String,
    pub description: Option<String>,
    pub course_id: Option<Uuid>,
    /// `public` (default) or `private`.
    pub visibility: Option<String>,
    pub max_members: Option<i32>,
}

#[utoipa::path(post, path = "/api/study-groups", request_body = CreateGroup,
    responses((status = 201, body = GroupView), (status = 400, body = crate::error::ErrorEnvelope), (status = 403, body = crate::error::ErrorEnvelope), (status = 404, body = crate::error::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn create_group(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<CreateGroup>,
) -> AppResult<HttpResponse> {
    let body = body.into_inner();
    let name = validate_name(&body.name)?;
    if let Some(description) = &body.description {
        validate_description(description)?;
    }
    validate_member_limit(body.max_members)?;
    let visibility = body.visibility.as_deref().map(Visibility::parse).transpose()?.unwrap_or(Visibility::Public);
    if let Some(course_id) = body.course_id {
        let (course, user_id) = (course_id.to_string(), user.id.to_string());
        state
            .db
            .read(move |conn| {
                db::courses::find(conn, &course)?.ok_or_else(|| AppError::not_found("course"))?;
                match db::study_groups::in_course(conn, &course, &user_id)? {
                    true => Ok(()),
                    false => Err(AppError::forbidden("A course's group is made by someone who takes or teaches it.")),
                }
            })
            .await?;
    }
    let now = to_db_time(state.clock.now());
    let room = ChatRoomRow {
        id: Uuid::new_v4().to_string(),
        name: name.clone(),
        room_type: RoomType::StudyGroup.as_str().into(),
        participants_json: "[]".into(),
        is_active: true,
        created_at: now,
    };
    let group = StudyGroupRow {
        id: Uuid::new_v4().to_string(),
        name,
        description: body.description,
        course_id: body.course_id.map(|id| id.to_string()),
        created_by: user.id.to_string(),
        chat_room_id: room.id.clone(),
        is_active: true,
        max_members: body.max_members,
        created_at: now,
        visibility: visibility.as_str().into(),
        member_count: 1,
    };
    let stored = group.clone();
    state.persistence.write(move |conn| db::study_groups::create(conn, &room, &stored)).await?;
    state.registry.contacts.group_changed(parse_id(&group.id).map_err(AppError::internal)?, [user.id]);
    let view = view(&state, group, Some(GroupRole::Admin), user.id).await?;
    Ok(HttpResponse::Created().json(view))
}

#[utoipa::path(get, path = "/api/study-groups",
    responses((status = 200, body = [GroupView])), security(("bearer" = [])))]
pub async fn my_groups(state: web::Data<AppState>, user: AuthUser) -> AppResult<HttpResponse> {
    let user_id = user.id.to_string();
    let rows = state.db.read(move |conn| Ok(db::study_groups::list_mine(conn, &user_id)?)).await?;
    let mut views = Vec::with_capacity(rows.len());
    for (row, role) in rows {
        views.push(view(&state, row, GroupRole::parse(&role), user.id).await?);
    }
    views.sort_by(|a, b| b.last_activity_at.cmp(&a.last_activity_at).then(a.name.cmp(&b.name)));
    Ok(HttpResponse::Ok().json(views))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct SearchQuery {
    /// Text the name holds, in any case (all groups when empty).
    pub q: Option<String>,
    /// Only the groups of this course.
    pub course_id: Option<Uuid>,
}

#[utoipa::path(get, path = "/api/study-groups/search", params(SearchQuery),
    responses((status = 200, body = [GroupView]), (status = 400, body = crate::error::ErrorEnvelope)), security(("bearer" = [])))]
pub async fn search_groups(
    state: web::Data<AppState>,
    user: AuthUser,
    query: web::Query<SearchQuery>,
) -> AppResult<HttpResponse> {
    let SearchQuery { q, course_id } = query.into_inner();
    let text = q.unwrap_or_default();
    crate::domain::input::single_line("q", &text)?;
    if text.chars().count() > rules::MAX_NAME_CHARS {
        return Err(AppError::bad_request("invalid_query", "Search for at most 100 characters."));
    }
    let user_id = user.id.to_string();
    let rows = state
        .db
        .read(move |conn| {
            let courses: Vec<String> = db::presence::courses_of(conn, &user_id)?.into_iter().collect();
            let only = course_id.map(|id| id.to_string());
            Ok(db::study_groups::search(conn, &user_id, text.trim(), &courses, only.as_deref())?)
        })
        .await?;
    let mut views = Vec::with_capacity(rows.len());
    for row in rows {
        views.push(view(&state, row, None, user.id).await?);
    }
    Ok(HttpResponse::Ok().json(views))
}

#[utoipa::path(get, path = "/api/study-groups/{id}", params(("id" = Uuid, Path, description = "The group")),
    responses((status = 200, body = GroupView), (status = 403, body = crate::error::ErrorEnvelope), (status = 404, body = crate::error::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn get_group(state: web::Data<AppState>, user: AuthUser, path: web::Path<Uuid>) -> AppResult<HttpResponse> {
    let standing = standing(&state, path.into_inner(), &user).await?;
    rules::may_view(&standing.facts()?, standing.role, standing.in_course)?;
    let activity = match standing.role {
        Some(_) => {
            let room = standing.group.chat_room_id.clone();
            let now = state.clock.now();
            let since = to_db_time(now - Duration::days(ACTIVITY_DAYS));
            let messages = state.db.read(move |conn| Ok(db::study_groups::messages_since(conn, &room, since)?)).await?;
            let messages: Vec<(chrono::DateTime<Utc>, Uuid)> = messages
                .into_iter()
                .filter_map(|(at, sender)| Some((from_db_time(at), parse_id(&sender).ok()?)))
                .collect();
            Some(messages)
        }
        None => None,
    };
    let mut group = view(&state, standing.group, standing.role, user.id).await?;
    if let Some(messages) = activity {
        let last = messages.iter().map(|(at, _)| *at).max();
        let mut summary = rules::activity(&messages, group.last_activity_at, last, state.clock.now());
        summary.last_activity_at = group.last_activity_at;
        group.activity = Some(summary);
    }
    Ok(HttpResponse::Ok().json(group))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateGroup {
    pub name: Option<String>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "crate::domain::input::absent_or_null")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    pub visibility: Option<String>,
    /// `null` lifts the limit.
    #[serde(default, deserialize_with = "crate::domain::input::absent_or_null")]
    #[schema(value_type = Option<i32>)]
    pub max_members: Option<Option<i32>>,
}

#[utoipa::path(put, path = "/api/study-groups/{id}", params(("id" = Uuid, Path, description = "The group")), request_body = UpdateGroup,
    responses((status = 200, body = GroupView), (status = 400, body = crate::error::ErrorEnvelope), (status = 403, body = crate::error::ErrorEnvelope), (status = 404, body = crate::error::ErrorEnvelope), (status = 409, body = crate::error::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn update_group(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    body: web::Json<UpdateGroup>,
) -> AppResult<HttpResponse> {
    let group_id = path.into_inner();
    let (standing, role) = as_member(&state, group_id, &user).await?;
    rules::require_admin(Some(role))?;
    let body = body.into_inner();
    let mut group = standing.group;
    if let Some(name) = &body.name {
        group.name = validate_name(name)?;
    }
    if let Some(description) = body.description {
        if let Some(text) = &description {
            validate_description(text)?;
        }
        group.description = description;
    }
    if let Some(visibility) = &body.visibility {
        group.visibility = Visibility::parse(visibility)?.as_str().into();
    }
    if let Some(limit) = body.max_members {
        validate_member_limit(limit)?;
        if limit.is_some_and(|limit| limit < group.member_count) {
            return Err(AppError::conflict("group_full", "The group has more members than that limit."));
        }
        group.max_members = limit;
    }
    let stored = group.clone();
    state.persistence.write(move |conn| db::study_groups::update(conn, &stored)).await?;
    announce_change(&state, group_id, &[]).await;
    Ok(HttpResponse::Ok().json(view(&state, group, Some(role), user.id).await?))
}

#[utoipa::path(delete, path = "/api/study-groups/{id}", params(("id" = Uuid, Path, description = "The group")),
    responses((status = 204), (status = 403, body = crate::error::ErrorEnvelope), (status = 404, body = crate::error::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn archive_group(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
) -> AppResult<HttpResponse> {
    let (standing, role) = as_member(&state, path.into_inner(), &user).await?;
    rules::require_admin(Some(role))?;
    archive(&state, &standing).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Archives a group: stored, then its room closes, and its members (who no
/// longer see each other through it) are told.
pub(crate) async fn archive(state: &AppState, standing: &Standing) -> AppResult<()> {
    let (group_id, room_id) = (standing.group_id()?, standing.chat_room_id()?);
    let group = standing.group.id.clone();
    let members = state.db.read(move |conn| db::parse_ids(&db::presence::group_members(conn, &group)?)).await?;
    let (group, room) = (standing.group.id.clone(), standing.group.chat_room_id.clone());
    state.persistence.write(move |conn| db::study_groups::archive(conn, &group, &room)).await?;
    members_changed(&state.registry, room_id, MembersChanged::Closed);
    state.registry.contacts.group_changed(group_id, members.iter().copied());
    let frame = frames::removed(group_id, room_id);
    state.registry.broker.publish_to_users(&mut members.into_iter(), &frame);
    Ok(())
}
