//! Chat rooms and messages.

use diesel::prelude::*;

use crate::db::models::{ChatMessageRow, ChatRoomRow};
use crate::db::schema::{chat_messages, chat_rooms, users};
use crate::db::AnyConnection;

pub fn insert_room(conn: &mut AnyConnection, room: &ChatRoomRow) -> QueryResult<()> {
    diesel::insert_into(chat_rooms::table).values(room).execute(conn).map(|_| ())
}

pub fn insert_message(conn: &mut AnyConnection, message: &ChatMessageRow) -> QueryResult<()> {
    diesel::insert_into(chat_messages::table).values(message).execute(conn).map(|_| ())
}

/// The highest sequence number used in a room (0 when empty).
pub fn last_seq(conn: &mut AnyConnection, room_id: &str) -> QueryResult<i64> {
    let max: Option<i64> = chat_messages::table
        .filter(chat_messages::room_id.eq(room_id))
        .select(diesel::dsl::max(chat_messages::seq))
        .first(conn)?;
    Ok(max.unwrap_or(0))
}

/// The sequence number of one message of a room.
pub fn seq_of(conn: &mut AnyConnection, room_id: &str, message_id: &str) -> QueryResult<Option<i64>> {
    chat_messages::table
        .filter(chat_messages::room_id.eq(room_id))
        .filter(chat_messages::id.eq(message_id))
        .select(chat_messages::seq)
        .first(conn)
        .optional()
}

/// Messages of a room after `after_seq`, oldest first, with sender names.
pub fn messages_after(
    conn: &mut AnyConnection,
    room_id: &str,
    after_seq: i64,
    limit: i64,
) -> QueryResult<Vec<(ChatMessageRow, String)>> {
    chat_messages::table
        .inner_join(users::table)
        .filter(chat_messages::room_id.eq(room_id))
        .filter(chat_messages::seq.gt(after_seq))
        .order(chat_messages::seq.asc())
        .limit(limit)
        .select((ChatMessageRow::as_select(), users::name))
        .load(conn)
}

/// Up to `limit` messages of a room before `before_seq` (all when None),
/// oldest first.
pub fn messages_before(
    conn: &mut AnyConnection,
    room_id: &str,
    before_seq: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<(ChatMessageRow, String)>> {
    let mut query = chat_messages::table
        .inner_join(users::table)
        .filter(chat_messages::room_id.eq(room_id))
        .order(chat_messages::seq.desc())
        .limit(limit)
        .select((ChatMessageRow::as_select(), users::name))
        .into_boxed();
    if let Some(seq) = before_seq {
        query = query.filter(chat_messages::seq.lt(seq));
    }
    let mut newest_first = query.load(conn)?;
    newest_first.reverse();
    Ok(newest_first)
}
