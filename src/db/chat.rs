//! Chat rooms, their messages and each member's reading position.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::models::{ChatMessageRow, ChatRoomRow};
use crate::db::schema::{chat_messages, chat_read_markers, chat_rooms, users};
use crate::db::{from_db_time, parse_id, AnyConnection};
use crate::domain::chat::{ChatMessage, MessageType};

pub fn insert_room(conn: &mut AnyConnection, room: &ChatRoomRow) -> QueryResult<()> {
    diesel::insert_into(chat_rooms::table).values(room).execute(conn).map(|_| ())
}

pub fn find_room(conn: &mut AnyConnection, room_id: &str) -> QueryResult<Option<ChatRoomRow>> {
    chat_rooms::table.find(room_id).select(ChatRoomRow::as_select()).first(conn).optional()
}

/// What storing a message came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Inserted {
    /// The message is stored (now, or by an earlier attempt of this same write).
    Stored,
    /// The sender's `clientMsgId` was already stored, as this message.
    Duplicate(ChatMessageRow),
}

/// Stores a message once, whatever happens around it: a write retried after
/// the connection dropped finds its own row and succeeds; a resend whose
/// `clientMsgId` the room already holds (the unique key on room, sender and
/// client id) finds the original instead of failing.
pub fn insert_message(conn: &mut AnyConnection, message: &ChatMessageRow) -> QueryResult<Inserted> {
    let mut earlier = chat_messages::table.filter(chat_messages::id.eq(&message.id)).into_boxed();
    if let Some(client_msg_id) = &message.client_msg_id {
        earlier = earlier.or_filter(
            chat_messages::room_id
                .eq(&message.room_id)
                .and(chat_messages::sender_id.eq(&message.sender_id))
                .and(chat_messages::client_msg_id.eq(client_msg_id)),
        );
    }
    let found: Option<ChatMessageRow> = earlier.select(ChatMessageRow::as_select()).first(conn).optional()?;
    match found {
        Some(row) if row.id == message.id => Ok(Inserted::Stored),
        Some(row) => Ok(Inserted::Duplicate(row)),
        None => {
            diesel::insert_into(chat_messages::table).values(message).execute(conn)?;
            Ok(Inserted::Stored)
        }
    }
}

/// Writes an edit or a delete of a message (the text, and when it changed).
/// A deleted message stays deleted: an edit computed before the delete was
/// stored finds nothing to change (NotFound).
pub fn update_message(
    conn: &mut AnyConnection,
    message_id: &str,
    text: &str,
    edited_at: Option<NaiveDateTime>,
    deleted_at: Option<NaiveDateTime>,
) -> QueryResult<()> {
    let updated = diesel::update(chat_messages::table.find(message_id).filter(chat_messages::deleted_at.is_null()))
        .set((
            chat_messages::message.eq(text),
            chat_messages::edited_at.eq(edited_at),
            chat_messages::deleted_at.eq(deleted_at),
        ))
        .execute(conn)?;
    if updated == 0 {
        return Err(diesel::result::Error::NotFound);
    }
    Ok(())
}

/// One message of a room, with its sender's name.
pub fn find_message(
    conn: &mut AnyConnection,
    room_id: &str,
    message_id: &str,
) -> QueryResult<Option<(ChatMessageRow, String)>> {
    chat_messages::table
        .inner_join(users::table)
        .filter(chat_messages::room_id.eq(room_id))
        .filter(chat_messages::id.eq(message_id))
        .select((ChatMessageRow::as_select(), users::name))
        .first(conn)
        .optional()
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

/// A page of a room's history for REST: at most `limit` (default 50, at
/// most 200) messages before the message `before` (or the newest), oldest first.
pub fn history(
    conn: &mut AnyConnection,
    room_id: &str,
    before: Option<uuid::Uuid>,
    limit: Option<i64>,
) -> crate::error::AppResult<Vec<ChatMessage>> {
    let limit = limit.unwrap_or(50).clamp(1, 200);
    let before_seq = match before {
        Some(id) => Some(seq_of(conn, room_id, &id.to_string())?.ok_or_else(|| {
            crate::error::AppError::bad_request("unknown_message", "`before` names no message of this room.")
        })?),
        None => None,
    };
    let page = messages_before(conn, room_id, before_seq, limit)?;
    Ok(page.into_iter().filter_map(|(row, name)| to_message(row, name)).collect())
}

/// Where a reader stands in a room: the last sequence number read (0 before any).
pub fn read_position(conn: &mut AnyConnection, room_id: &str, user_id: &str) -> QueryResult<i64> {
    Ok(chat_read_markers::table
        .find((room_id, user_id))
        .select(chat_read_markers::last_read_seq)
        .first(conn)
        .optional()?
        .unwrap_or(0))
}

/// Moves a reader's position forward to `seq` (never back); returns the
/// position kept.
pub fn mark_read(
    conn: &mut AnyConnection,
    room_id: &str,
    user_id: &str,
    seq: i64,
    at: NaiveDateTime,
) -> QueryResult<i64> {
    let kept: Option<i64> = chat_read_markers::table
        .find((room_id, user_id))
        .select(chat_read_markers::last_read_seq)
        .first(conn)
        .optional()?;
    match kept {
        Some(kept) if kept >= seq => Ok(kept),
        Some(_) => {
            diesel::update(chat_read_markers::table.find((room_id, user_id)))
                .set((chat_read_markers::last_read_seq.eq(seq), chat_read_markers::updated_at.eq(at)))
                .execute(conn)?;
            Ok(seq)
        }
        None => {
            diesel::insert_into(chat_read_markers::table)
                .values((
                    chat_read_markers::room_id.eq(room_id),
                    chat_read_markers::user_id.eq(user_id),
                    chat_read_markers::last_read_seq.eq(seq),
                    chat_read_markers::updated_at.eq(at),
                ))
                .execute(conn)?;
            Ok(seq)
        }
    }
}

/// Messages of others, not deleted, after `after_seq`.
pub fn count_unread(conn: &mut AnyConnection, room_id: &str, reader: &str, after_seq: i64) -> QueryResult<i64> {
    chat_messages::table
        .filter(chat_messages::room_id.eq(room_id))
        .filter(chat_messages::seq.gt(after_seq))
        .filter(chat_messages::sender_id.ne(reader))
        .filter(chat_messages::deleted_at.is_null())
        .count()
        .get_result(conn)
}

/// A stored message as the wire shows it (None for a row with a bad id).
pub fn to_message(row: ChatMessageRow, sender_name: String) -> Option<ChatMessage> {
    Some(ChatMessage {
        id: parse_id(&row.id).ok()?,
        room_id: parse_id(&row.room_id).ok()?,
        sender_id: parse_id(&row.sender_id).ok()?,
        sender_name,
        message: row.message,
        message_type: MessageType::from_stored(&row.message_type),
        created_at: from_db_time(row.created_at),
        client_msg_id: row.client_msg_id,
        edited_at: row.edited_at.map(from_db_time),
        deleted: row.deleted_at.is_some(),
        seq: row.seq,
    })
}

/// The row that stores a message.
pub fn to_row(message: &ChatMessage) -> ChatMessageRow {
    ChatMessageRow {
        id: message.id.to_string(),
        room_id: message.room_id.to_string(),
        seq: message.seq,
        sender_id: message.sender_id.to_string(),
        message: message.message.clone(),
        message_type: message.message_type.as_str().into(),
        client_msg_id: message.client_msg_id.clone(),
        created_at: crate::db::to_db_time(message.created_at),
        edited_at: message.edited_at.map(crate::db::to_db_time),
        deleted_at: None,
    }
}
