//! Study groups, their members, invitations and group study sessions.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::models::{ChatRoomRow, StudyGroupInviteRow, StudyGroupMemberRow, StudyGroupRow, StudyGroupSessionRow};
use crate::db::schema::{
    chat_messages, chat_rooms, study_group_invites, study_group_members, study_group_sessions, study_groups, users,
};
use crate::db::{presence, AnyConnection};
use crate::domain::study_group::{GroupRole, Roster};

diesel::define_sql_function!(fn lower(text: diesel::sql_types::Text) -> diesel::sql_types::Text);

/// Most groups one search answers.
pub const SEARCH_LIMIT: i64 = 50;

/// Stores a new group, its room, and its creator as its first admin.
pub fn create(conn: &mut AnyConnection, room: &ChatRoomRow, group: &StudyGroupRow) -> QueryResult<()> {
    crate::db::chat::insert_room(conn, room)?;
    diesel::insert_into(study_groups::table).values(group).execute(conn)?;
    let admin = StudyGroupMemberRow {
        group_id: group.id.clone(),
        user_id: group.created_by.clone(),
        role: GroupRole::Admin.as_str().into(),
        joined_at: group.created_at,
    };
    diesel::insert_into(study_group_members::table).values(&admin).execute(conn)?;
    Ok(())
}

pub fn find(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<StudyGroupRow>> {
    study_groups::table.find(id).select(StudyGroupRow::as_select()).first(conn).optional()
}

pub fn find_by_room(conn: &mut AnyConnection, chat_room_id: &str) -> QueryResult<Option<StudyGroupRow>> {
    study_groups::table
        .filter(study_groups::chat_room_id.eq(chat_room_id))
        .select(StudyGroupRow::as_select())
        .first(conn)
        .optional()
}

/// Saves the editable fields (name, description, visibility, limit).
pub fn update(conn: &mut AnyConnection, group: &StudyGroupRow) -> QueryResult<()> {
    diesel::update(study_groups::table.find(&group.id))
        .set((
            study_groups::name.eq(&group.name),
            study_groups::description.eq(&group.description),
            study_groups::visibility.eq(&group.visibility),
            study_groups::max_members.eq(group.max_members),
        ))
        .execute(conn)?;
    diesel::update(chat_rooms::table.find(&group.chat_room_id)).set(chat_rooms::name.eq(&group.name)).execute(conn)?;
    Ok(())
}

/// Archives a group: it leaves lists and search, and its room closes.
/// Pending invitations die with it.
pub fn archive(conn: &mut AnyConnection, group_id: &str, chat_room_id: &str) -> QueryResult<()> {
    diesel::update(study_groups::table.find(group_id)).set(study_groups::is_active.eq(false)).execute(conn)?;
    diesel::update(chat_rooms::table.find(chat_room_id)).set(chat_rooms::is_active.eq(false)).execute(conn)?;
    diesel::delete(
        study_group_invites::table
            .filter(study_group_invites::group_id.eq(group_id))
            .filter(study_group_invites::status.eq("pending")),
    )
    .execute(conn)?;
    Ok(())
}

/// Someone's role in a group, if they are a member.
pub fn role_of(conn: &mut AnyConnection, group_id: &str, user_id: &str) -> QueryResult<Option<GroupRole>> {
    let role: Option<String> = study_group_members::table
        .find((group_id, user_id))
        .select(study_group_members::role)
        .first(conn)
        .optional()?;
    Ok(role.as_deref().and_then(GroupRole::parse))
}

/// The members with their names: admins first, then by name.
pub fn members(conn: &mut AnyConnection, group_id: &str) -> QueryResult<Vec<(StudyGroupMemberRow, String)>> {
    let mut members: Vec<(StudyGroupMemberRow, String)> = study_group_members::table
        .inner_join(users::table)
        .filter(study_group_members::group_id.eq(group_id))
        .select((StudyGroupMemberRow::as_select(), users::name))
        .load(conn)?;
    members.sort_by(|(a, a_name), (b, b_name)| {
        (a.role != GroupRole::Admin.as_str(), a_name).cmp(&(b.role != GroupRole::Admin.as_str(), b_name))
    });
    Ok(members)
}

pub fn roster(conn: &mut AnyConnection, group_id: &str) -> QueryResult<Roster> {
    let roles: Vec<String> = study_group_members::table
        .filter(study_group_members::group_id.eq(group_id))
        .select(study_group_members::role)
        .load(conn)?;
    let admins = roles.iter().filter(|role| role.as_str() == GroupRole::Admin.as_str()).count();
    Ok(Roster { admins, members: roles.len() })
}

/// What adding a member came to.
#[derive(Debug, Clone)]
pub enum Added {
    Joined(StudyGroupMemberRow),
    AlreadyMember(StudyGroupMemberRow),
    Full,
    Archived,
}

/// Adds a member if the group is active and has room. The member count on
/// the group row moves with a guarded UPDATE (`member_count < max_members`),
/// which the database applies atomically: concurrent joins, on one node or
/// several, cannot overshoot the limit.
pub fn add_member(
    conn: &mut AnyConnection,
    group_id: &str,
    user_id: &str,
    role: GroupRole,
    at: NaiveDateTime,
) -> QueryResult<Added> {
    let existing = study_group_members::table
        .find((group_id, user_id))
        .select(StudyGroupMemberRow::as_select())
        .first(conn)
        .optional()?;
    if let Some(existing) = existing {
        return Ok(Added::AlreadyMember(existing));
    }
    let counted = diesel::update(
        study_groups::table.filter(study_groups::id.eq(group_id)).filter(study_groups::is_active.eq(true)).filter(
            study_groups::max_members
                .is_null()
                .or(study_groups::member_count.lt(study_groups::max_members.assume_not_null())),
        ),
    )
    .set(study_groups::member_count.eq(study_groups::member_count + 1))
    .execute(conn)?;
    if counted == 0 {
        let active: Option<bool> =
            study_groups::table.find(group_id).select(study_groups::is_active).first(conn).optional()?;
        return Ok(if active == Some(true) { Added::Full } else { Added::Archived });
    }
    let member = StudyGroupMemberRow {
        group_id: group_id.into(),
        user_id: user_id.into(),
        role: role.as_str().into(),
        joined_at: at,
    };
    diesel::insert_into(study_group_members::table).values(&member).execute(conn)?;
    Ok(Added::Joined(member))
}

/// Takes a member out; false if they were not one.
pub fn remove_member(conn: &mut AnyConnection, group_id: &str, user_id: &str) -> QueryResult<bool> {
    let removed = diesel::delete(study_group_members::table.find((group_id, user_id))).execute(conn)?;
    if removed > 0 {
        diesel::update(study_groups::table.find(group_id))
            .set(study_groups::member_count.eq(study_groups::member_count - 1))
            .execute(conn)?;
    }
    Ok(removed > 0)
}

pub fn set_role(conn: &mut AnyConnection, group_id: &str, user_id: &str, role: GroupRole) -> QueryResult<bool> {
    let changed = diesel::update(study_group_members::table.find((group_id, user_id)))
        .set(study_group_members::role.eq(role.as_str()))
        .execute(conn)?;
    Ok(changed > 0)
}

/// My active groups with my role.
pub fn list_mine(conn: &mut AnyConnection, user_id: &str) -> QueryResult<Vec<(StudyGroupRow, String)>> {
    study_group_members::table
        .inner_join(study_groups::table)
        .filter(study_group_members::user_id.eq(user_id))
        .filter(study_groups::is_active.eq(true))
        .select((StudyGroupRow::as_select(), study_group_members::role))
        .load(conn)
}

/// Active public groups with room left whose name holds `text` (any case),
/// of no course or of one of `course_ids`, that `user_id` is not in.
pub fn search(
    conn: &mut AnyConnection,
    user_id: &str,
    text: &str,
    course_ids: &[String],
    only_course: Option<&str>,
) -> QueryResult<Vec<StudyGroupRow>> {
    let mine = study_group_members::table
        .filter(study_group_members::user_id.eq(user_id))
        .select(study_group_members::group_id);
    let pattern = format!("%{}%", escape_like(&text.to_lowercase()));
    let mut query = study_groups::table
        .filter(study_groups::is_active.eq(true))
        .filter(study_groups::visibility.eq("public"))
        .filter(
            study_groups::max_members
                .is_null()
                .or(study_groups::member_count.lt(study_groups::max_members.assume_not_null())),
        )
        .filter(lower(study_groups::name).like(pattern).escape('\\'))
        .filter(study_groups::id.ne_all(mine))
        .filter(study_groups::course_id.is_null().or(study_groups::course_id.eq_any(course_ids)))
        .select(StudyGroupRow::as_select())
        .order((study_groups::member_count.desc(), study_groups::name))
        .limit(SEARCH_LIMIT)
        .into_boxed();
    if let Some(course_id) = only_course {
        query = query.filter(study_groups::course_id.eq(course_id));
    }
    query.load(conn)
}

fn escape_like(text: &str) -> String {
    text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

/// Whether two people share a course (teaching or taking it).
pub fn are_classmates(conn: &mut AnyConnection, a: &str, b: &str) -> QueryResult<bool> {
    Ok(!presence::courses_of(conn, a)?.is_disjoint(&presence::courses_of(conn, b)?))
}

/// Whether someone takes or teaches a course.
pub fn in_course(conn: &mut AnyConnection, course_id: &str, user_id: &str) -> QueryResult<bool> {
    Ok(presence::courses_of(conn, user_id)?.contains(course_id))
}

/// When the room last had a message (not deleted).
pub fn last_message_at(conn: &mut AnyConnection, chat_room_id: &str) -> QueryResult<Option<NaiveDateTime>> {
    chat_messages::table
        .filter(chat_messages::room_id.eq(chat_room_id))
        .filter(chat_messages::deleted_at.is_null())
        .select(diesel::dsl::max(chat_messages::created_at))
        .first(conn)
}

/// `(sent at, sender)` of the room's messages since `since`, for the
/// activity figures (a week of a group's chat).
pub fn messages_since(
    conn: &mut AnyConnection,
    chat_room_id: &str,
    since: NaiveDateTime,
) -> QueryResult<Vec<(NaiveDateTime, String)>> {
    chat_messages::table
        .filter(chat_messages::room_id.eq(chat_room_id))
        .filter(chat_messages::created_at.ge(since))
        .filter(chat_messages::deleted_at.is_null())
        .select((chat_messages::created_at, chat_messages::sender_id))
        .load(conn)
}

/// Stores an invitation, or finds the pending one there already is.
pub fn invite(conn: &mut AnyConnection, invite: &StudyGroupInviteRow) -> QueryResult<StudyGroupInviteRow> {
    let pending = study_group_invites::table
        .filter(study_group_invites::group_id.eq(&invite.group_id))
        .filter(study_group_invites::user_id.eq(&invite.user_id))
        .filter(study_group_invites::status.eq("pending"))
        .select(StudyGroupInviteRow::as_select())
        .first(conn)
        .optional()?;
    if let Some(pending) = pending {
        return Ok(pending);
    }
    diesel::insert_into(study_group_invites::table).values(invite).execute(conn)?;
    Ok(invite.clone())
}

pub fn find_invite(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<StudyGroupInviteRow>> {
    study_group_invites::table.find(id).select(StudyGroupInviteRow::as_select()).first(conn).optional()
}

/// Whether someone holds a pending invitation to a group.
pub fn is_invited(conn: &mut AnyConnection, group_id: &str, user_id: &str) -> QueryResult<bool> {
    let count: i64 = study_group_invites::table
        .filter(study_group_invites::group_id.eq(group_id))
        .filter(study_group_invites::user_id.eq(user_id))
        .filter(study_group_invites::status.eq("pending"))
        .count()
        .get_result(conn)?;
    Ok(count > 0)
}

/// My pending invitations with the group's and the inviter's names, newest first.
pub fn pending_invites(
    conn: &mut AnyConnection,
    user_id: &str,
) -> QueryResult<Vec<(StudyGroupInviteRow, String, String)>> {
    study_group_invites::table
        .inner_join(study_groups::table)
        .inner_join(users::table.on(users::id.eq(study_group_invites::invited_by)))
        .filter(study_group_invites::user_id.eq(user_id))
        .filter(study_group_invites::status.eq("pending"))
        .filter(study_groups::is_active.eq(true))
        .order(study_group_invites::created_at.desc())
        .select((StudyGroupInviteRow::as_select(), study_groups::name, users::name))
        .load(conn)
}

/// Answers a pending invitation; false if it was not pending any more.
pub fn answer_invite(conn: &mut AnyConnection, id: &str, status: &str, at: NaiveDateTime) -> QueryResult<bool> {
    let answered = diesel::update(
        study_group_invites::table
            .filter(study_group_invites::id.eq(id))
            .filter(study_group_invites::status.eq("pending")),
    )
    .set((study_group_invites::status.eq(status), study_group_invites::answered_at.eq(Some(at))))
    .execute(conn)?;
    Ok(answered > 0)
}

pub fn insert_session(conn: &mut AnyConnection, session: &StudyGroupSessionRow) -> QueryResult<()> {
    diesel::insert_into(study_group_sessions::table).values(session).execute(conn).map(|_| ())
}

/// A group's sessions ending at or after `ends_after`, soonest first, with
/// their creators' names.
pub fn sessions_of(
    conn: &mut AnyConnection,
    group_id: &str,
    ends_after: NaiveDateTime,
) -> QueryResult<Vec<(StudyGroupSessionRow, String)>> {
    study_group_sessions::table
        .inner_join(users::table.on(users::id.eq(study_group_sessions::created_by)))
        .filter(study_group_sessions::group_id.eq(group_id))
        .filter(study_group_sessions::scheduled_end_time.ge(ends_after))
        .order(study_group_sessions::scheduled_start_time)
        .select((StudyGroupSessionRow::as_select(), users::name))
        .load(conn)
}

/// The sessions of the active groups `user_id` is a member of, ending at
/// or after `ends_after`, soonest first, with their group's name (for the
/// calendar feed).
pub fn sessions_of_member(
    conn: &mut AnyConnection,
    user_id: &str,
    ends_after: NaiveDateTime,
) -> QueryResult<Vec<(StudyGroupSessionRow, String)>> {
    study_group_sessions::table
        .inner_join(study_groups::table.inner_join(study_group_members::table))
        .filter(study_group_members::user_id.eq(user_id))
        .filter(study_groups::is_active.eq(true))
        .filter(study_group_sessions::scheduled_end_time.ge(ends_after))
        .order((study_group_sessions::scheduled_start_time, study_group_sessions::id))
        .select((StudyGroupSessionRow::as_select(), study_groups::name))
        .load(conn)
}

/// Sessions of active groups starting within `[from, to)`, for reminders,
/// with their group's room.
pub fn sessions_starting(
    conn: &mut AnyConnection,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> QueryResult<Vec<(StudyGroupSessionRow, String)>> {
    study_group_sessions::table
        .inner_join(study_groups::table)
        .filter(study_groups::is_active.eq(true))
        .filter(study_group_sessions::scheduled_start_time.ge(from))
        .filter(study_group_sessions::scheduled_start_time.lt(to))
        .select((StudyGroupSessionRow::as_select(), study_groups::chat_room_id))
        .load(conn)
}
