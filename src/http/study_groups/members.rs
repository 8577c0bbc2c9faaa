//! Membership: join, leave, roles, removal, and invitations.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use uuid::Uuid;

use super::{archive, as_member, facts_of, standing, standing_in, Standing};
use crate::auth::AuthUser;
use crate::db::models::{StudyGroupInviteRow, StudyGroupMemberRow};
use crate::db::study_groups::Added;
use crate::db::{self, from_db_time, parse_id, to_db_time};
use crate::domain::study_group::{self as rules, Applicant, Departure, GroupRole};
use crate::engine::study_group::{group_changed, GroupChanged};
use crate::error::{AppError, AppResult};
use crate::protocol::study_groups::{self as frames, InviteView, MemberView};
use crate::state::AppState;

fn member_view(row: &StudyGroupMemberRow, name: String) -> AppResult<MemberView> {
    Ok(MemberView {
        user_id: parse_id(&row.user_id).map_err(AppError::internal)?,
        name,
        role: GroupRole::parse(&row.role).unwrap_or(GroupRole::Member),
        joined_at: from_db_time(row.joined_at),
    })
}

fn invite_view(row: &StudyGroupInviteRow, group_name: String, invited_by_name: String) -> AppResult<InviteView> {
    let id = |text: &str| parse_id(text).map_err(AppError::internal);
    Ok(InviteView {
        id: id(&row.id)?,
        group_id: id(&row.group_id)?,
        user_id: id(&row.user_id)?,
        invited_by: id(&row.invited_by)?,
        status: row.status.clone(),
        group_name,
        invited_by_name,
        created_at: from_db_time(row.created_at),
    })
}

/// Stores a new member (the limit checked atomically with the write; an
/// invitation, if any, is answered in the same transaction), then the
/// room, presence and the members hear of it.
async fn admit(
    state: &AppState,
    standing: &Standing,
    user: &AuthUser,
    invite_id: Option<String>,
) -> AppResult<MemberView> {
    let (group, user_id, at) = (standing.group.id.clone(), user.id.to_string(), to_db_time(state.clock.now()));
    let added = state
        .persistence
        .write(move |conn| {
            let added = db::study_groups::add_member(conn, &group, &user_id, GroupRole::Member, at)?;
            if let (Added::Joined(_) | Added::AlreadyMember(_), Some(invite)) = (&added, &invite_id) {
                db::study_groups::answer_invite(conn, invite, "accepted", at)?;
            }
            Ok(added)
        })
        .await?;
    let member = match added {
        Added::Joined(member) => member,
        Added::AlreadyMember(member) => return member_view(&member, user.name.clone()),
        Added::Full => return Err(rules::group_full()),
        Added::Archived => return Err(AppError::conflict("group_archived", "This group has been archived.")),
    };
    let group_id = standing.group_id()?;
    group_changed(&state.registry, standing.chat_room_id()?, GroupChanged::Added(user.id, GroupRole::Member));
    state.registry.contacts.group_changed(group_id, [user.id]);
    member_view(&member, user.name.clone())
}

#[utoipa::path(post, path = "/api/study-groups/{id}/join", params(("id" = Uuid, Path, description = "The group")),
    responses((status = 200, body = MemberView), (status = 403, body = crate::error::ErrorEnvelope), (status = 404, body = crate::error::ErrorEnvelope), (status = 409, body = crate::error::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn join(state: web::Data<AppState>, user: AuthUser, path: web::Path<Uuid>) -> AppResult<HttpResponse> {
    let group_id = path.into_inner();
    let user_id = user.id;
    let (standing, invited) = state
        .db
        .read(move |conn| {
            let standing = standing_in(conn, group_id, user_id)?;
            let invited = db::study_groups::is_invited(conn, &standing.group.id, &user_id.to_string())?;
            Ok((standing, invited))
        })
        .await?;
    if standing.role.is_some() {
        return Ok(HttpResponse::Ok().json(admit(&state, &standing, &user, None).await?));
    }
    rules::may_join(&facts_of(&standing.group)?, Applicant { in_course: standing.in_course, invited })?;
    let invite = match invited {
        true => Some(pending_invite_id(&state, &standing.group.id, user.id).await?),
        false => None,
    };
    Ok(HttpResponse::Ok().json(admit(&state, &standing, &user, invite.flatten()).await?))
}

async fn pending_invite_id(state: &AppState, group_id: &str, user_id: Uuid) -> AppResult<Option<String>> {
    let (group, user) = (group_id.to_string(), user_id.to_string());
    state
        .db
        .read(move |conn| {
            Ok(db::study_groups::pending_invites(conn, &user)?
                .into_iter()
                .find(|(invite, _, _)| invite.group_id == group)
                .map(|(invite, _, _)| invite.id))
        })
        .await
}

#[utoipa::path(post, path = "/api/study-groups/{id}/leave", params(("id" = Uuid, Path, description = "The group")),
    responses((status = 204), (status = 403, body = crate::error::ErrorEnvelope), (status = 404, body = crate::error::ErrorEnvelope), (status = 409, body = crate::error::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn leave(state: web::Data<AppState>, user: AuthUser, path: web::Path<Uuid>) -> AppResult<HttpResponse> {
    let (standing, role) = as_member(&state, path.into_inner(), &user).await?;
    depart(&state, &standing, user.id, role).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Takes a member out (they leave, or an admin removes them): never the
/// last admin while others remain; the last member out archives the group.
async fn depart(state: &AppState, standing: &Standing, user_id: Uuid, role: GroupRole) -> AppResult<()> {
    // The rule is checked in the write's own transaction: two admins
    // leaving at once cannot both pass it (writes are applied one by one).
    let (group, user) = (standing.group.id.clone(), user_id.to_string());
    let departure = state
        .persistence
        .write(move |conn| {
            let departure = rules::may_leave(role, db::study_groups::roster(conn, &group)?);
            if departure.is_ok() {
                db::study_groups::remove_member(conn, &group, &user)?;
            }
            Ok(departure)
        })
        .await??;
    let (group_id, room_id) = (standing.group_id()?, standing.chat_room_id()?);
    group_changed(&state.registry, room_id, GroupChanged::Removed(user_id));
    state.registry.contacts.group_changed(group_id, [user_id]);
    state.registry.broker.publish_to_users(&mut std::iter::once(user_id), &frames::removed(group_id, room_id));
    if departure == Departure::LastOneOut {
        return archive(state, standing).await;
    }
    Ok(())
}

#[utoipa::path(get, path = "/api/study-groups/{id}/members", params(("id" = Uuid, Path, description = "The group")),
    responses((status = 200, body = [MemberView]), (status = 403, body = crate::error::ErrorEnvelope), (status = 404, body = crate::error::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn list(state: web::Data<AppState>, user: AuthUser, path: web::Path<Uuid>) -> AppResult<HttpResponse> {
    let (standing, _) = as_member(&state, path.into_inner(), &user).await?;
    let group = standing.group.id.clone();
    let members = state.db.read(move |conn| Ok(db::study_groups::members(conn, &group)?)).await?;
    let views = members.iter().map(|(row, name)| member_view(row, name.clone())).collect::<AppResult<Vec<_>>>()?;
    Ok(HttpResponse::Ok().json(views))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleChange {
    /// `admin` or `member`.
    pub role: String,
}

/// A member of the group other than (or the same as) the caller.
async fn target_member(
    state: &AppState,
    standing: &Standing,
    user_id: Uuid,
) -> AppResult<(StudyGroupMemberRow, String)> {
    let (group, user) = (standing.group.id.clone(), user_id.to_string());
    let members = state.db.read(move |conn| Ok(db::study_groups::members(conn, &group)?)).await?;
    members.into_iter().find(|(row, _)| row.user_id == user).ok_or_else(|| AppError::not_found("member"))
}

#[utoipa::path(put, path = "/api/study-groups/{id}/members/{user_id}",
    params(("id" = Uuid, Path, description = "The group"), ("user_id" = Uuid, Path, description = "The member")),
    request_body = RoleChange,
    responses((status = 200, body = MemberView), (status = 400, body = crate::error::ErrorEnvelope), (status = 403, body = crate::error::ErrorEnvelope), (status = 404, body = crate::error::ErrorEnvelope), (status = 409, body = crate::error::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn change_role(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<(Uuid, Uuid)>,
    body: web::Json<RoleChange>,
) -> AppResult<HttpResponse> {
    let (group_id, member_id) = path.into_inner();
    let new_role = GroupRole::parse(&body.role)
        .ok_or_else(|| AppError::bad_request("invalid_role", "A member's role is admin or member."))?;
    let (standing, role) = as_member(&state, group_id, &user).await?;
    rules::require_admin(Some(role))?;
    let (mut member, name) = target_member(&state, &standing, member_id).await?;
    let current = GroupRole::parse(&member.role).unwrap_or(GroupRole::Member);
    // Checked in the write's transaction, as a departure is.
    let (group, target) = (standing.group.id.clone(), member.user_id.clone());
    state
        .persistence
        .write(move |conn| {
            let allowed = rules::may_change_role(current, new_role, db::study_groups::roster(conn, &group)?);
            if allowed.is_ok() {
                db::study_groups::set_role(conn, &group, &target, new_role)?;
            }
            Ok(allowed)
        })
        .await??;
    member.role = new_role.as_str().into();
    group_changed(&state.registry, standing.chat_room_id()?, GroupChanged::RoleChanged(member_id, new_role));
    Ok(HttpResponse::Ok().json(member_view(&member, name)?))
}

#[utoipa::path(delete, path = "/api/study-groups/{id}/members/{user_id}",
    params(("id" = Uuid, Path, description = "The group"), ("user_id" = Uuid, Path, description = "The member")),
    responses((status = 204), (status = 403, body = crate::error::ErrorEnvelope), (status = 404, body = crate::error::ErrorEnvelope), (status = 409, body = crate::error::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn remove(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<(Uuid, Uuid)>,
) -> AppResult<HttpResponse> {
    let (group_id, member_id) = path.into_inner();
    let (standing, role) = as_member(&state, group_id, &user).await?;
    if member_id != user.id {
        rules::require_admin(Some(role))?;
    }
    let (member, _) = target_member(&state, &standing, member_id).await?;
    depart(&state, &standing, member_id, GroupRole::parse(&member.role).unwrap_or(GroupRole::Member)).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InviteRequest {
    pub user_id: Uuid,
}

#[utoipa::path(post, path = "/api/study-groups/{id}/invites", params(("id" = Uuid, Path, description = "The group")),
    request_body = InviteRequest,
    responses((status = 201, body = InviteView), (status = 403, body = crate::error::ErrorEnvelope), (status = 404, body = crate::error::ErrorEnvelope), (status = 409, body = crate::error::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn invite(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
    body: web::Json<InviteRequest>,
) -> AppResult<HttpResponse> {
    let group_id = path.into_inner();
    let (inviter, invitee) = (user.id, body.user_id);
    let (standing, invitee_is_member, classmates, invitee_in_course) = state
        .db
        .read(move |conn| {
            let standing = standing_in(conn, group_id, inviter)?;
            db::users::find(conn, &invitee.to_string())?.ok_or_else(|| AppError::not_found("user"))?;
            let invitee_text = invitee.to_string();
            let is_member = db::study_groups::role_of(conn, &standing.group.id, &invitee_text)?.is_some();
            let classmates = db::study_groups::are_classmates(conn, &inviter.to_string(), &invitee_text)?;
            let in_course = match &standing.group.course_id {
                Some(course) => db::study_groups::in_course(conn, course, &invitee_text)?,
                None => true,
            };
            Ok((standing, is_member, classmates, in_course))
        })
        .await?;
    if !standing.group.is_active {
        return Err(AppError::not_found("study group"));
    }
    rules::may_invite(&facts_of(&standing.group)?, standing.role, invitee_is_member, classmates, invitee_in_course)?;
    let row = StudyGroupInviteRow {
        id: Uuid::new_v4().to_string(),
        group_id: standing.group.id.clone(),
        user_id: invitee.to_string(),
        invited_by: inviter.to_string(),
        status: "pending".into(),
        created_at: to_db_time(state.clock.now()),
        answered_at: None,
    };
    let stored = state.persistence.write(move |conn| db::study_groups::invite(conn, &row)).await?;
    let view = invite_view(&stored, standing.group.name.clone(), user.name.clone())?;
    state.registry.broker.publish_to_users(&mut std::iter::once(invitee), &frames::invite(&view));
    Ok(HttpResponse::Created().json(view))
}

#[utoipa::path(get, path = "/api/study-groups/invites",
    responses((status = 200, body = [InviteView])), security(("bearer" = [])))]
pub async fn my_invites(state: web::Data<AppState>, user: AuthUser) -> AppResult<HttpResponse> {
    let user_id = user.id.to_string();
    let invites = state.db.read(move |conn| Ok(db::study_groups::pending_invites(conn, &user_id)?)).await?;
    let views = invites
        .into_iter()
        .map(|(row, group, inviter)| invite_view(&row, group, inviter))
        .collect::<AppResult<Vec<_>>>()?;
    Ok(HttpResponse::Ok().json(views))
}

/// The caller's own pending invitation and the group's standing.
async fn my_pending_invite(
    state: &AppState,
    invite_id: Uuid,
    user: &AuthUser,
) -> AppResult<(StudyGroupInviteRow, Standing)> {
    let (id, user_id) = (invite_id.to_string(), user.id);
    let invite = state.db.read(move |conn| Ok(db::study_groups::find_invite(conn, &id)?)).await?;
    // Someone else's invitation is as unknown as a made-up one.
    let invite =
        invite.filter(|row| row.user_id == user_id.to_string()).ok_or_else(|| AppError::not_found("invite"))?;
    let group_id = parse_id(&invite.group_id).map_err(AppError::internal)?;
    let standing = standing(state, group_id, user).await?;
    if invite.status != "pending" || !standing.group.is_active {
        return Err(AppError::conflict("invite_closed", "This invitation has been answered, or its group archived."));
    }
    Ok((invite, standing))
}

#[utoipa::path(post, path = "/api/study-groups/invites/{id}/accept", params(("id" = Uuid, Path, description = "The invitation")),
    responses((status = 200, body = MemberView), (status = 404, body = crate::error::ErrorEnvelope), (status = 409, body = crate::error::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn accept_invite(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
) -> AppResult<HttpResponse> {
    let (invite, standing) = my_pending_invite(&state, path.into_inner(), &user).await?;
    if standing.group.course_id.is_some() && !standing.in_course {
        return Err(AppError::forbidden("This group is for the people of its course."));
    }
    Ok(HttpResponse::Ok().json(admit(&state, &standing, &user, Some(invite.id)).await?))
}

#[utoipa::path(post, path = "/api/study-groups/invites/{id}/decline", params(("id" = Uuid, Path, description = "The invitation")),
    responses((status = 200, body = InviteView), (status = 404, body = crate::error::ErrorEnvelope), (status = 409, body = crate::error::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn decline_invite(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
) -> AppResult<HttpResponse> {
    let (mut invite, standing) = my_pending_invite(&state, path.into_inner(), &user).await?;
    let (id, at) = (invite.id.clone(), to_db_time(state.clock.now()));
    let answered =
        state.persistence.write(move |conn| db::study_groups::answer_invite(conn, &id, "declined", at)).await?;
    if !answered {
        return Err(AppError::conflict("invite_closed", "This invitation has been answered already."));
    }
    invite.status = "declined".into();
    invite.answered_at = Some(at);
    let inviter = invite.invited_by.clone();
    let inviter_name = state.db.read(move |conn| Ok(db::presence::name_of(conn, &inviter)?)).await?.unwrap_or_default();
    Ok(HttpResponse::Ok().json(invite_view(&invite, standing.group.name, inviter_name)?))
}
