//! Private calendar feeds: one a user, found by its token's digest.

use diesel::prelude::*;

use crate::db::models::{CalendarFeedRow, UserRow};
use crate::db::schema::{calendar_feeds, users};
use crate::db::AnyConnection;

/// The user whose feed this digest opens, if any.
pub fn find_owner(conn: &mut AnyConnection, token_hash: &str) -> QueryResult<Option<UserRow>> {
    calendar_feeds::table
        .inner_join(users::table)
        .filter(calendar_feeds::token_hash.eq(token_hash))
        .select(UserRow::as_select())
        .first(conn)
        .optional()
}

pub fn find_for_user(conn: &mut AnyConnection, user_id: &str) -> QueryResult<Option<CalendarFeedRow>> {
    calendar_feeds::table.find(user_id).select(CalendarFeedRow::as_select()).first(conn).optional()
}

/// Puts `feed` in place of the user's feed, if there was one (its old address stops working).
pub fn replace(conn: &mut AnyConnection, feed: &CalendarFeedRow) -> QueryResult<()> {
    conn.transaction(|conn| {
        diesel::delete(calendar_feeds::table.find(&feed.user_id)).execute(conn)?;
        diesel::insert_into(calendar_feeds::table).values(feed).execute(conn).map(|_| ())
    })
}

/// Removes the user's feed; whether there was one.
pub fn delete_for_user(conn: &mut AnyConnection, user_id: &str) -> QueryResult<bool> {
    diesel::delete(calendar_feeds::table.find(user_id)).execute(conn).map(|n| n > 0)
}
