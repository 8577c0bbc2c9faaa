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
