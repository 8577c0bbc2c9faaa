//! Presence: the stored presence of each user (`user_presence`), their privacy
//! settings (`presence_privacy`), and who may see whom.
//!
//! "Who may see whom" is symmetric: two people see each other when they share
//! a course (one teaches it or both are enrolled) or an active study group.

use std::collections::BTreeSet;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::schema::{
    courses, enrollments, presence_privacy, study_group_members, study_groups, user_presence, users,
};
use crate::db::AnyConnection;

/// Ids per `IN (...)` list: far below the bind limits of both databases.
const IN_CHUNK: usize = 5_000;

/// A row of `user_presence`: what a restart needs to answer correctly.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = user_presence, primary_key(user_id))]
#[diesel(treat_none_as_null = true)]
pub struct UserPresenceRow {
    pub user_id: String,
    /// The true status when written (privacy is applied on reading).
    pub status: String,
    pub manual_status: Option<String>,
    pub manual_status_expires_at: Option<NaiveDateTime>,
    pub activity: Option<String>,
    pub last_seen_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// A row of `presence_privacy`; no row means every setting is off.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = presence_privacy, primary_key(user_id))]
pub struct PresencePrivacyRow {
    pub user_id: String,
    pub hide_activity: bool,
    pub hide_last_seen: bool,
    pub appear_offline: bool,
}

/// The stored presence of a user, if any was ever written.
pub fn find(conn: &mut AnyConnection, user_id: &str) -> QueryResult<Option<UserPresenceRow>> {
    user_presence::table.find(user_id).select(UserPresenceRow::as_select()).first(conn).optional()
}

/// The privacy settings of a user, if they ever saved any.
pub fn find_privacy(conn: &mut AnyConnection, user_id: &str) -> QueryResult<Option<PresencePrivacyRow>> {
    presence_privacy::table.find(user_id).select(PresencePrivacyRow::as_select()).first(conn).optional()
}

/// Writes a user's presence (update, or insert the first time). Check then
/// write, as ON CONFLICT is not in diesel's multi-backend dialect; the
/// persistence actor runs it inside a transaction.
pub fn store(conn: &mut AnyConnection, row: &UserPresenceRow) -> QueryResult<()> {
    let updated = diesel::update(user_presence::table.find(&row.user_id)).set(row).execute(conn)?;
    if updated == 0 {
        diesel::insert_into(user_presence::table).values(row).execute(conn)?;
    }
    Ok(())
}

/// Writes a user's privacy settings (update, or insert the first time).
pub fn store_privacy(conn: &mut AnyConnection, row: &PresencePrivacyRow) -> QueryResult<()> {
    let updated = diesel::update(presence_privacy::table.find(&row.user_id)).set(row).execute(conn)?;
    if updated == 0 {
        diesel::insert_into(presence_privacy::table).values(row).execute(conn)?;
    }
    Ok(())
}

/// The courses `user_id` teaches or is enrolled in, sorted.
pub fn courses_of(conn: &mut AnyConnection, user_id: &str) -> QueryResult<BTreeSet<String>> {
    let mut ids: BTreeSet<String> = courses::table
        .filter(courses::instructor_id.eq(user_id))
        .select(courses::id)
        .load::<String>(conn)?
        .into_iter()
        .collect();
    ids.extend(
        enrollments::table
            .filter(enrollments::user_id.eq(user_id))
            .select(enrollments::course_id)
            .load::<String>(conn)?,
    );
    Ok(ids)
}

/// The active study groups `user_id` belongs to, sorted.
pub fn active_groups_of(conn: &mut AnyConnection, user_id: &str) -> QueryResult<BTreeSet<String>> {
    Ok(study_group_members::table
        .inner_join(study_groups::table)
        .filter(study_group_members::user_id.eq(user_id))
        .filter(study_groups::is_active.eq(true))
        .select(study_group_members::group_id)
        .load::<String>(conn)?
        .into_iter()
        .collect())
}

/// Everyone who shares a course or an active study group with `user_id`,
/// without `user_id` itself, sorted. These are the user's watchers, and
/// (the relation being symmetric) the people the user may see.
pub fn contacts(conn: &mut AnyConnection, user_id: &str) -> QueryResult<Vec<String>> {
    let course_ids: Vec<String> = courses_of(conn, user_id)?.into_iter().collect();
    let group_ids: Vec<String> = active_groups_of(conn, user_id)?.into_iter().collect();

    let mut people = BTreeSet::new();
    for chunk in course_ids.chunks(IN_CHUNK) {
        people.extend(
            courses::table.filter(courses::id.eq_any(chunk)).select(courses::instructor_id).load::<String>(conn)?,
        );
        people.extend(
            enrollments::table
                .filter(enrollments::course_id.eq_any(chunk))
                .select(enrollments::user_id)
                .load::<String>(conn)?,
        );
    }
    for chunk in group_ids.chunks(IN_CHUNK) {
        people.extend(
            study_group_members::table
                .filter(study_group_members::group_id.eq_any(chunk))
                .select(study_group_members::user_id)
                .load::<String>(conn)?,
        );
    }
    people.remove(user_id);
    Ok(people.into_iter().collect())
}

/// Whether `viewer` may see `target`'s presence: themselves, or a contact.
pub fn may_see(conn: &mut AnyConnection, viewer: &str, target: &str) -> QueryResult<bool> {
    if viewer == target {
        return Ok(true);
    }
    // Small sets both ways: compare the courses and groups of the two people.
    if !courses_of(conn, viewer)?.is_disjoint(&courses_of(conn, target)?) {
        return Ok(true);
    }
    Ok(!active_groups_of(conn, viewer)?.is_disjoint(&active_groups_of(conn, target)?))
}

/// The people of a course: its instructor and its enrolled students, sorted.
pub fn course_members(conn: &mut AnyConnection, course_id: &str) -> QueryResult<Vec<String>> {
    let mut people: BTreeSet<String> = courses::table
        .filter(courses::id.eq(course_id))
        .select(courses::instructor_id)
        .load::<String>(conn)?
        .into_iter()
        .collect();
    people.extend(
        enrollments::table
            .filter(enrollments::course_id.eq(course_id))
            .select(enrollments::user_id)
            .load::<String>(conn)?,
    );
    Ok(people.into_iter().collect())
}

/// The members of a study group, sorted. Whether the group is active is the
/// business of [`active_groups_of`], which decides who is in it at all.
pub fn group_members(conn: &mut AnyConnection, group_id: &str) -> QueryResult<Vec<String>> {
    study_group_members::table
        .filter(study_group_members::group_id.eq(group_id))
        .select(study_group_members::user_id)
        .order(study_group_members::user_id)
        .load(conn)
}

/// The display name of a user, `None` for an unknown id.
pub fn name_of(conn: &mut AnyConnection, user_id: &str) -> QueryResult<Option<String>> {
    users::table.find(user_id).select(users::name).first(conn).optional()
}

/// One person as stored: id, name, presence row and privacy settings.
pub type StoredPresence = (String, String, Option<UserPresenceRow>, Option<PresencePrivacyRow>);

/// What is stored of each of these people for the presence others see:
/// their name, presence row and privacy settings (no row: never seen, or
/// every setting off). Unknown ids are left out. Chunked like [`contacts`].
pub fn stored_for(conn: &mut AnyConnection, ids: &[String]) -> QueryResult<Vec<StoredPresence>> {
    use std::collections::HashMap;
    let mut names: Vec<(String, String)> = Vec::new();
    let mut rows: HashMap<String, UserPresenceRow> = HashMap::new();
    let mut privacy: HashMap<String, PresencePrivacyRow> = HashMap::new();
    for chunk in ids.chunks(IN_CHUNK) {
        names.extend(
            users::table
                .filter(users::id.eq_any(chunk))
                .select((users::id, users::name))
                .load::<(String, String)>(conn)?,
        );
        for row in user_presence::table
            .filter(user_presence::user_id.eq_any(chunk))
            .select(UserPresenceRow::as_select())
            .load(conn)?
        {
            rows.insert(row.user_id.clone(), row);
        }
        for row in presence_privacy::table
            .filter(presence_privacy::user_id.eq_any(chunk))
            .select(PresencePrivacyRow::as_select())
            .load(conn)?
        {
            privacy.insert(row.user_id.clone(), row);
        }
    }
    Ok(names
        .into_iter()
        .map(|(id, name)| {
            let row = rows.remove(&id);
            let settings = privacy.remove(&id);
            (id, name, row, settings)
        })
        .collect())
}
