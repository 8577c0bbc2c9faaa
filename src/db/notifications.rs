//! Notifications (reminders and the like), newest first: a person's own
//! (`notifications`), and those addressed to a whole course or study group
//! (`audience_notifications`), stored once and read per person.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;

use crate::db::models::{AudienceNotificationRow, NotificationRow};
use crate::db::schema::{
    audience_notification_reads, audience_notifications, enrollments, notifications, study_group_members,
};
use crate::db::{from_db_time, AnyConnection};

pub fn insert(conn: &mut AnyConnection, notification: &NotificationRow) -> QueryResult<()> {
    diesel::insert_into(notifications::table).values(notification).execute(conn).map(|_| ())
}

/// Stores those of `rows` whose dedupe key is not stored yet, in one
/// multi-row insert; returns the positions of the rows it stored. (Every
/// write goes through the one persistence actor, so nothing slips in
/// between the look and the insert.)
pub fn insert_new(conn: &mut AnyConnection, rows: &[NotificationRow]) -> QueryResult<Vec<usize>> {
    let keys: Vec<&str> = rows.iter().filter_map(|row| row.dedupe_key.as_deref()).collect();
    let stored: std::collections::HashSet<String> = notifications::table
        .filter(notifications::dedupe_key.eq_any(&keys))
        .select(notifications::dedupe_key)
        .load::<Option<String>>(conn)?
        .into_iter()
        .flatten()
        .collect();
    let fresh: Vec<usize> =
        (0..rows.len()).filter(|&i| rows[i].dedupe_key.as_ref().is_none_or(|key| !stored.contains(key))).collect();
    if !fresh.is_empty() {
        let values: Vec<&NotificationRow> = fresh.iter().map(|&i| &rows[i]).collect();
        let insert = diesel::insert_into(notifications::table).values(values);
        // The multi-connection has no multi-row insert of its own; the same
        // statement goes to whichever backend this is.
        match conn {
            AnyConnection::Sqlite(conn) => insert.execute(conn)?,
            AnyConnection::Postgresql(conn) => insert.execute(conn)?,
        };
    }
    Ok(fresh)
}

/// The user's notifications, newest first: their own rows and those of
/// their courses and study groups (from when they belonged).
pub fn list_for_user(
    conn: &mut AnyConnection,
    user_id: &str,
    unread_only: bool,
    limit: i64,
) -> QueryResult<Vec<NotificationView>> {
    let mut own = notifications::table
        .filter(notifications::user_id.eq(user_id))
        .order((notifications::created_at.desc(), notifications::id.desc()))
        .limit(limit)
        .select(NotificationRow::as_select())
        .into_boxed();
    if unread_only {
        own = own.filter(notifications::read_at.is_null());
    }
    let mut views: Vec<NotificationView> = own.load(conn)?.iter().map(NotificationView::from_row).collect();

    let reads = || {
        audience_notification_reads::table.on(audience_notification_reads::notification_id
            .eq(audience_notifications::id)
            .and(audience_notification_reads::user_id.eq(user_id)))
    };
    let order = (audience_notifications::created_at.desc(), audience_notifications::id.desc());
    let selection = (AudienceNotificationRow::as_select(), audience_notification_reads::read_at.nullable());
    let mut of_courses = audience_notifications::table
        .inner_join(
            enrollments::table.on(enrollments::course_id
                .nullable()
                .eq(audience_notifications::course_id)
                .and(enrollments::user_id.eq(user_id))
                .and(enrollments::enrolled_at.le(audience_notifications::created_at))),
        )
        .left_join(reads())
        .order(order)
        .limit(limit)
        .select(selection)
        .into_boxed();
    let mut of_groups = audience_notifications::table
        .inner_join(
            study_group_members::table.on(study_group_members::group_id
                .nullable()
                .eq(audience_notifications::group_id)
                .and(study_group_members::user_id.eq(user_id))
                .and(study_group_members::joined_at.le(audience_notifications::created_at))),
        )
        .left_join(reads())
        .order(order)
        .limit(limit)
        .select(selection)
        .into_boxed();
    if unread_only {
        of_courses = of_courses.filter(audience_notification_reads::read_at.nullable().is_null());
        of_groups = of_groups.filter(audience_notification_reads::read_at.nullable().is_null());
    }
    for (row, read_at) in of_courses
        .load::<(AudienceNotificationRow, Option<NaiveDateTime>)>(conn)?
        .into_iter()
        .chain(of_groups.load::<(AudienceNotificationRow, Option<NaiveDateTime>)>(conn)?)
    {
        views.push(NotificationView::from_audience_row(&row, read_at));
    }
    views.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
    views.truncate(usize::try_from(limit).unwrap_or(0));
    Ok(views)
}

/// Marks one of the user's notifications read (their own, or one of their
/// course's or group's); false if it is not theirs or unknown.
pub fn mark_read(conn: &mut AnyConnection, id: &str, user_id: &str, at: NaiveDateTime) -> QueryResult<bool> {
    let updated = diesel::update(notifications::table.find(id).filter(notifications::user_id.eq(user_id)))
        .set(notifications::read_at.eq(Some(at)))
        .execute(conn)?;
    if updated == 1 {
        return Ok(true);
    }
    if !audience_includes(conn, id, user_id)? {
        return Ok(false);
    }
    let read = diesel::insert_into(audience_notification_reads::table)
        .values((
            audience_notification_reads::notification_id.eq(id),
            audience_notification_reads::user_id.eq(user_id),
            audience_notification_reads::read_at.eq(at),
        ))
        .on_conflict((audience_notification_reads::notification_id, audience_notification_reads::user_id))
        .do_nothing();
    // The first time it was read stays; the multi-connection has no ON CONFLICT of its own.
    match conn {
        AnyConnection::Sqlite(conn) => read.execute(conn)?,
        AnyConnection::Postgresql(conn) => read.execute(conn)?,
    };
    Ok(true)
}

/// Whether the user belonged to the notification's course or group when it was made.
fn audience_includes(conn: &mut AnyConnection, id: &str, user_id: &str) -> QueryResult<bool> {
    let Some(row) =
        audience_notifications::table.find(id).select(AudienceNotificationRow::as_select()).first(conn).optional()?
    else {
        return Ok(false);
    };
    let enrolled = match &row.course_id {
        Some(course_id) => enrollments::table
            .find((course_id, user_id))
            .filter(enrollments::enrolled_at.le(row.created_at))
            .count()
            .get_result::<i64>(conn)?,
        None => 0,
    };
    let member = match &row.group_id {
        Some(group_id) => study_group_members::table
            .find((group_id, user_id))
            .filter(study_group_members::joined_at.le(row.created_at))
            .count()
            .get_result::<i64>(conn)?,
        None => 0,
    };
    Ok(enrolled + member > 0)
}

/// Stores those of `rows` whose dedupe key is not stored yet; returns the
/// positions of the rows it stored. Safe against another node storing the
/// same key meanwhile (ON CONFLICT DO NOTHING).
pub fn insert_audience_new(conn: &mut AnyConnection, rows: &[AudienceNotificationRow]) -> QueryResult<Vec<usize>> {
    let mut fresh = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let insert = diesel::insert_into(audience_notifications::table)
            .values(row)
            .on_conflict(audience_notifications::dedupe_key)
            .do_nothing();
        let stored = match conn {
            AnyConnection::Sqlite(conn) => insert.execute(conn)?,
            AnyConnection::Postgresql(conn) => insert.execute(conn)?,
        };
        if stored == 1 {
            fresh.push(i);
        }
    }
    Ok(fresh)
}

/// Which of these dedupe keys are stored already.
pub fn stored_audience_keys(
    conn: &mut AnyConnection,
    keys: &[String],
) -> QueryResult<std::collections::HashSet<String>> {
    Ok(audience_notifications::table
        .filter(audience_notifications::dedupe_key.eq_any(keys))
        .select(audience_notifications::dedupe_key)
        .load::<String>(conn)?
        .into_iter()
        .collect())
}

/// A notification as the wire shows it (REST lists and `notification` pushes).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NotificationView {
    pub id: String,
    pub kind: String,
    pub title: String,
    pub body: String,
    /// Details for the client, e.g. `{"sessionId": ...}`.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub read_at: Option<DateTime<Utc>>,
}

impl NotificationView {
    pub fn from_row(row: &NotificationRow) -> Self {
        Self::new(&row.id, &row.kind, &row.title, &row.body, row.data_json.as_deref(), row.created_at, row.read_at)
    }

    /// A course's or group's notification as one of its people sees it.
    pub fn from_audience_row(row: &AudienceNotificationRow, read_at: Option<NaiveDateTime>) -> Self {
        Self::new(&row.id, &row.kind, &row.title, &row.body, row.data_json.as_deref(), row.created_at, read_at)
    }

    fn new(
        id: &str,
        kind: &str,
        title: &str,
        body: &str,
        data_json: Option<&str>,
        created_at: NaiveDateTime,
        read_at: Option<NaiveDateTime>,
    ) -> Self {
        Self {
            id: id.to_owned(),
            kind: kind.to_owned(),
            title: title.to_owned(),
            body: body.to_owned(),
            data: data_json.and_then(|json| serde_json::from_str(json).ok()).unwrap_or_default(),
            created_at: from_db_time(created_at),
            read_at: read_at.map(from_db_time),
        }
    }
}
