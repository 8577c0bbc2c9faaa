//! Notifications (reminders and the like), newest first.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;

use crate::db::models::NotificationRow;
use crate::db::schema::notifications;
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

pub fn list_for_user(
    conn: &mut AnyConnection,
    user_id: &str,
    unread_only: bool,
    limit: i64,
) -> QueryResult<Vec<NotificationRow>> {
    let mut query = notifications::table
        .filter(notifications::user_id.eq(user_id))
        .order((notifications::created_at.desc(), notifications::id.desc()))
        .limit(limit)
        .select(NotificationRow::as_select())
        .into_boxed();
    if unread_only {
        query = query.filter(notifications::read_at.is_null());
    }
    query.load(conn)
}

/// Marks one of the user's notifications read; false if it is not theirs or unknown.
pub fn mark_read(conn: &mut AnyConnection, id: &str, user_id: &str, at: NaiveDateTime) -> QueryResult<bool> {
    let updated = diesel::update(notifications::table.find(id).filter(notifications::user_id.eq(user_id)))
        .set(notifications::read_at.eq(Some(at)))
        .execute(conn)?;
    Ok(updated == 1)
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
        Self {
            id: row.id.clone(),
            kind: row.kind.clone(),
            title: row.title.clone(),
            body: row.body.clone(),
            data: row.data_json.as_deref().and_then(|json| serde_json::from_str(json).ok()).unwrap_or_default(),
            created_at: from_db_time(row.created_at),
            read_at: row.read_at.map(from_db_time),
        }
    }
}
