//! Notifications (reminders and the like), newest first.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::models::NotificationRow;
use crate::db::schema::notifications;
use crate::db::AnyConnection;

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
