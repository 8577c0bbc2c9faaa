//! A group's chat over REST (posting goes through the group's room actor,
//! as a socket's message does, so order, fan-out and "201 means stored"
//! are the room's) and its group study sessions.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use uuid::Uuid;

use super::as_member;
use crate::auth::AuthUser;
use crate::db::models::StudyGroupSessionRow;
use crate::db::{self, from_db_time, parse_id, to_db_time};
use crate::domain::chat::{ChatMessage, MessageType};
use crate::domain::room::RoomType;
use crate::domain::study_group::validate_session;
use crate::engine::room::calls::{self, RoomCall, RoomRef};
use crate::engine::room::room_gone;
use crate::engine::study_group::{group_changed, GroupChanged};
use crate::error::{AppError, AppResult};
use crate::http::live_sessions::HistoryQuery;
use crate::protocol::study_groups::GroupSessionView;
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GroupMessage {
    pub message: String,
    /// `text` (default) or `link`.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub message_type: MessageType,
    pub client_msg_id: Option<String>,
}

#[utoipa::path(post, path = "/api/study-groups/{id}/message", params(("id" = Uuid, Path, description = "The group")),
    request_body = GroupMessage,
    responses((status = 201, body = ChatMessage), (status = 400, body = crate::error::ErrorEnvelope), (status = 403, body = crate::error::ErrorEnvelope), (status = 404, body = crate::error::ErrorEnvelope), (status = 503, body = crate::error::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn post_message(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    body: web::Json<GroupMessage>,
) -> AppResult<HttpResponse> {
    let (standing, _) = as_member(&state, path.into_inner(), &user).await?;
    let room_id = standing.chat_room_id()?;
    let body = body.into_inner();
    let room = RoomRef { room_type: RoomType::StudyGroup, room_id };
    let post = || RoomCall::MemberPost {
        by: user.clone(),
        text: body.message.clone(),
        message_type: body.message_type,
        client_msg_id: body.client_msg_id.clone(),
    };
    // A room that stopped meanwhile is asked once more (its replacement);
    // a resend by `clientMsgId` is answered with the message stored first.
    let sent = match calls::call(&state.registry, room, None, post()).await {
        Err(err) if err.body.code == room_gone().body.code => calls::call(&state.registry, room, None, post()).await?,
        sent => sent?,
    };
    Ok(HttpResponse::Created().content_type("application/json").body(sent.get().to_owned()))
}

#[utoipa::path(get, path = "/api/study-groups/{id}/messages", operation_id = "group_messages", params(("id" = Uuid, Path, description = "The group"), HistoryQuery),
    responses((status = 200, body = [ChatMessage]), (status = 400, body = crate::error::ErrorEnvelope), (status = 403, body = crate::error::ErrorEnvelope), (status = 404, body = crate::error::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn messages(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    query: web::Query<HistoryQuery>,
) -> AppResult<HttpResponse> {
    let (standing, _) = as_member(&state, path.into_inner(), &user).await?;
    let HistoryQuery { before, limit } = query.into_inner();
    let room = standing.group.chat_room_id;
    let page = state.db.read(move |conn| db::chat::history(conn, &room, before, limit)).await?;
    Ok(HttpResponse::Ok().json(page))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScheduleGroupSession {
    pub title: String,
    pub scheduled_start_time: DateTime<Utc>,
    pub scheduled_end_time: DateTime<Utc>,
}

fn session_view(row: StudyGroupSessionRow, created_by_name: String, room_id: Uuid) -> AppResult<GroupSessionView> {
    let id = |text: &str| parse_id(text).map_err(AppError::internal);
    Ok(GroupSessionView {
        id: id(&row.id)?,
        group_id: id(&row.group_id)?,
        title: row.title,
        scheduled_start_time: from_db_time(row.scheduled_start_time),
        scheduled_end_time: from_db_time(row.scheduled_end_time),
        created_by: id(&row.created_by)?,
        created_by_name,
        room_id,
    })
}

#[utoipa::path(post, path = "/api/study-groups/{id}/sessions", params(("id" = Uuid, Path, description = "The group")),
    request_body = ScheduleGroupSession,
    responses((status = 201, body = GroupSessionView), (status = 400, body = crate::error::ErrorEnvelope), (status = 403, body = crate::error::ErrorEnvelope), (status = 404, body = crate::error::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn schedule_session(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    body: web::Json<ScheduleGroupSession>,
) -> AppResult<HttpResponse> {
    let group_id = path.into_inner();
    let (standing, _) = as_member(&state, group_id, &user).await?;
    let body = body.into_inner();
    let title = validate_session(&body.title, body.scheduled_start_time, body.scheduled_end_time, state.clock.now())?;
    let row = StudyGroupSessionRow {
        id: Uuid::new_v4().to_string(),
        group_id: standing.group.id.clone(),
        title,
        scheduled_start_time: to_db_time(body.scheduled_start_time),
        scheduled_end_time: to_db_time(body.scheduled_end_time),
        created_by: user.id.to_string(),
        created_at: to_db_time(state.clock.now()),
    };
    let stored = row.clone();
    state.persistence.write(move |conn| db::study_groups::insert_session(conn, &stored)).await?;
    group_changed(&state.registry, standing.chat_room_id()?, GroupChanged::Details);
    Ok(HttpResponse::Created().json(session_view(row, user.name.clone(), standing.chat_room_id()?)?))
}

#[utoipa::path(get, path = "/api/study-groups/{id}/sessions", params(("id" = Uuid, Path, description = "The group")),
    responses((status = 200, body = [GroupSessionView]), (status = 403, body = crate::error::ErrorEnvelope), (status = 404, body = crate::error::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn sessions(state: web::Data<AppState>, user: AuthUser, path: web::Path<Uuid>) -> AppResult<HttpResponse> {
    let (standing, _) = as_member(&state, path.into_inner(), &user).await?;
    let room_id = standing.chat_room_id()?;
    let (group, since) = (standing.group.id.clone(), to_db_time(state.clock.now() - Duration::days(1)));
    let rows = state.db.read(move |conn| Ok(db::study_groups::sessions_of(conn, &group, since)?)).await?;
    let views = rows.into_iter().map(|(row, name)| session_view(row, name, room_id)).collect::<AppResult<Vec<_>>>()?;
    Ok(HttpResponse::Ok().json(views))
}
