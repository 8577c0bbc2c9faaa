//! Office hours: weekly slots, the queue's entries, the manual open/close
//! state, the instructor's rooms and announcements.

use chrono::NaiveDateTime;
use diesel::dsl::max;
use diesel::prelude::*;

use crate::db::models::{
    AnnouncementRow, ChatRoomRow, OfficeHoursRoomRow, OfficeHoursSlotRow, OfficeHoursStateRow, QueueEntryRow,
};
use crate::db::schema::{
    chat_messages, courses, enrollments, office_hours, office_hours_announcements, office_hours_queue,
    office_hours_rooms, office_hours_state, users,
};
use crate::db::AnyConnection;
use crate::domain::office_hours::schedule::{self, Slot, SlotMode};

/// Open entries: waiting or admitted.
const OPEN: [&str; 2] = ["waiting", "admitted"];

// ---- slots ----

pub fn slots(conn: &mut AnyConnection, instructor_id: &str) -> QueryResult<Vec<OfficeHoursSlotRow>> {
    office_hours::table
        .filter(office_hours::instructor_id.eq(instructor_id))
        .order((office_hours::day_of_week, office_hours::start_time, office_hours::id))
        .select(OfficeHoursSlotRow::as_select())
        .load(conn)
}

/// A stored slot as the schedule's rules see it; None for a row no
/// longer valid (a zone the time-zone database dropped: it is skipped).
pub fn to_slot(row: &OfficeHoursSlotRow) -> Option<Slot> {
    Some(Slot {
        id: uuid::Uuid::parse_str(&row.id).ok()?,
        day_of_week: u32::try_from(row.day_of_week).ok()?,
        start: row.start_time,
        end: row.end_time,
        zone: schedule::parse_zone(&row.time_zone).ok()?,
        mode: SlotMode::parse(&row.mode).ok()?,
        active: row.is_active,
    })
}

pub fn find_slot(conn: &mut AnyConnection, slot_id: &str) -> QueryResult<Option<OfficeHoursSlotRow>> {
    office_hours::table.find(slot_id).select(OfficeHoursSlotRow::as_select()).first(conn).optional()
}

pub fn insert_slot(conn: &mut AnyConnection, slot: &OfficeHoursSlotRow) -> QueryResult<()> {
    diesel::insert_into(office_hours::table).values(slot).execute(conn).map(|_| ())
}

pub fn update_slot(conn: &mut AnyConnection, slot: &OfficeHoursSlotRow) -> QueryResult<()> {
    diesel::update(office_hours::table.find(&slot.id))
        .set((
            office_hours::day_of_week.eq(slot.day_of_week),
            office_hours::start_time.eq(slot.start_time),
            office_hours::end_time.eq(slot.end_time),
            office_hours::time_zone.eq(&slot.time_zone),
            office_hours::mode.eq(&slot.mode),
            office_hours::is_active.eq(slot.is_active),
        ))
        .execute(conn)
        .map(|_| ())
}

pub fn delete_slot(conn: &mut AnyConnection, slot_id: &str) -> QueryResult<()> {
    diesel::delete(office_hours::table.find(slot_id)).execute(conn).map(|_| ())
}

// ---- who teaches whom ----

/// Whether the student takes one of the instructor's courses.
pub fn teaches(conn: &mut AnyConnection, instructor_id: &str, student_id: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        enrollments::table
            .inner_join(courses::table)
            .filter(courses::instructor_id.eq(instructor_id))
            .filter(enrollments::user_id.eq(student_id)),
    ))
    .get_result(conn)
}

/// The instructors of the courses a student takes, with names, by name.
pub fn instructors_of(conn: &mut AnyConnection, student_id: &str) -> QueryResult<Vec<(String, String)>> {
    let mut instructors: Vec<(String, String)> = enrollments::table
        .inner_join(courses::table.inner_join(users::table))
        .filter(enrollments::user_id.eq(student_id))
        .select((users::id, users::name))
        .distinct()
        .load(conn)?;
    instructors.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
    Ok(instructors)
}

// ---- the open/close state ----

pub fn state(conn: &mut AnyConnection, instructor_id: &str) -> QueryResult<Option<OfficeHoursStateRow>> {
    office_hours_state::table.find(instructor_id).select(OfficeHoursStateRow::as_select()).first(conn).optional()
}

/// Writes the state (update, or insert the first time; as `presence::store`,
/// since ON CONFLICT is not in diesel's multi-backend dialect). Only the
/// instructor's queue actor writes it.
pub fn store_state(conn: &mut AnyConnection, row: &OfficeHoursStateRow) -> QueryResult<()> {
    let updated = diesel::update(office_hours_state::table.find(&row.instructor_id)).set(row).execute(conn)?;
    if updated == 0 {
        diesel::insert_into(office_hours_state::table).values(row).execute(conn)?;
    }
    Ok(())
}

// ---- entries ----

/// An instructor's open entries with the students' names (any order).
pub fn open_entries(conn: &mut AnyConnection, instructor_id: &str) -> QueryResult<Vec<(QueueEntryRow, String)>> {
    office_hours_queue::table
        .inner_join(users::table.on(users::id.eq(office_hours_queue::student_id)))
        .filter(office_hours_queue::instructor_id.eq(instructor_id))
        .filter(office_hours_queue::status.eq_any(OPEN))
        .select((QueueEntryRow::as_select(), users::name))
        .load(conn)
}

/// A student's open entries, with the instructor's name.
pub fn open_entries_of_student(
    conn: &mut AnyConnection,
    student_id: &str,
) -> QueryResult<Vec<(QueueEntryRow, String)>> {
    office_hours_queue::table
        .inner_join(users::table.on(users::id.eq(office_hours_queue::instructor_id)))
        .filter(office_hours_queue::student_id.eq(student_id))
        .filter(office_hours_queue::status.eq_any(OPEN))
        .order(office_hours_queue::joined_queue_at)
        .select((QueueEntryRow::as_select(), users::name))
        .load(conn)
}

pub fn find_entry(conn: &mut AnyConnection, entry_id: &str) -> QueryResult<Option<QueueEntryRow>> {
    office_hours_queue::table.find(entry_id).select(QueueEntryRow::as_select()).first(conn).optional()
}

pub fn insert_entry(conn: &mut AnyConnection, entry: &QueueEntryRow) -> QueryResult<()> {
    diesel::insert_into(office_hours_queue::table).values(entry).execute(conn).map(|_| ())
}

/// Stores new ranks (a defer) and marks the deferrer.
pub fn defer(conn: &mut AnyConnection, deferrer: &str, ranks: &[(String, i64)]) -> QueryResult<()> {
    for (entry_id, rank) in ranks {
        diesel::update(office_hours_queue::table.find(entry_id))
            .set(office_hours_queue::queue_rank.eq(rank))
            .execute(conn)?;
    }
    diesel::update(office_hours_queue::table.find(deferrer))
        .set(office_hours_queue::deferred.eq(true))
        .execute(conn)?;
    Ok(())
}

/// Opens a private room and admits the entries into it, if they all still
/// wait (else nothing is stored and false comes back).
pub fn admit(
    conn: &mut AnyConnection,
    chat_room: &ChatRoomRow,
    room: &OfficeHoursRoomRow,
    entry_ids: &[String],
    at: NaiveDateTime,
) -> QueryResult<bool> {
    conn.transaction(|conn| {
        crate::db::chat::insert_room(conn, chat_room)?;
        diesel::insert_into(office_hours_rooms::table).values(room).execute(conn)?;
        let admitted = diesel::update(
            office_hours_queue::table
                .filter(office_hours_queue::id.eq_any(entry_ids))
                .filter(office_hours_queue::status.eq("waiting")),
        )
        .set((
            office_hours_queue::status.eq("admitted"),
            office_hours_queue::admitted_at.eq(at),
            office_hours_queue::chat_room_id.eq(&room.room_id),
        ))
        .execute(conn)?;
        if admitted != entry_ids.len() {
            return Err(diesel::result::Error::RollbackTransaction);
        }
        Ok(true)
    })
    .or_else(|err| match err {
        diesel::result::Error::RollbackTransaction => Ok(false),
        err => Err(err),
    })
}

/// Ends entries that are still open (`status` and `reason`); a room left
/// without admitted students is closed.
pub fn finish(
    conn: &mut AnyConnection,
    entry_ids: &[String],
    status: &str,
    reason: &str,
    at: NaiveDateTime,
    close_room: Option<&str>,
) -> QueryResult<()> {
    diesel::update(
        office_hours_queue::table
            .filter(office_hours_queue::id.eq_any(entry_ids))
            .filter(office_hours_queue::status.eq_any(OPEN)),
    )
    .set((
        office_hours_queue::status.eq(status),
        office_hours_queue::end_reason.eq(reason),
        office_hours_queue::completed_at.eq(at),
    ))
    .execute(conn)?;
    if let Some(room_id) = close_room {
        close_room_now(conn, room_id, at)?;
    }
    Ok(())
}

/// The latest help times of an instructor (admission to completion),
/// oldest first.
pub fn recent_help_times(
    conn: &mut AnyConnection,
    instructor_id: &str,
    count: i64,
) -> QueryResult<Vec<(NaiveDateTime, NaiveDateTime)>> {
    let mut times: Vec<(Option<NaiveDateTime>, Option<NaiveDateTime>)> = office_hours_queue::table
        .filter(office_hours_queue::instructor_id.eq(instructor_id))
        .filter(office_hours_queue::end_reason.eq("completed"))
        .filter(office_hours_queue::admitted_at.is_not_null())
        .order(office_hours_queue::completed_at.desc())
        .limit(count)
        .select((office_hours_queue::admitted_at, office_hours_queue::completed_at))
        .load(conn)?;
    times.reverse();
    Ok(times.into_iter().filter_map(|(admitted, completed)| Some((admitted?, completed?))).collect())
}

/// Helped entries admitted within `[from, to]`: joined, admitted, completed.
pub fn help_records(
    conn: &mut AnyConnection,
    instructor_id: &str,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> QueryResult<Vec<(NaiveDateTime, NaiveDateTime, NaiveDateTime)>> {
    let rows: Vec<(NaiveDateTime, Option<NaiveDateTime>, Option<NaiveDateTime>)> = office_hours_queue::table
        .filter(office_hours_queue::instructor_id.eq(instructor_id))
        .filter(office_hours_queue::status.eq("completed"))
        .filter(office_hours_queue::admitted_at.ge(from))
        .filter(office_hours_queue::admitted_at.le(to))
        .select((
            office_hours_queue::joined_queue_at,
            office_hours_queue::admitted_at,
            office_hours_queue::completed_at,
        ))
        .load(conn)?;
    Ok(rows.into_iter().filter_map(|(joined, admitted, completed)| Some((joined, admitted?, completed?))).collect())
}

// ---- rooms ----

pub fn find_room(conn: &mut AnyConnection, room_id: &str) -> QueryResult<Option<OfficeHoursRoomRow>> {
    office_hours_rooms::table.find(room_id).select(OfficeHoursRoomRow::as_select()).first(conn).optional()
}

/// The students admitted into a room now.
pub fn room_students(conn: &mut AnyConnection, room_id: &str) -> QueryResult<Vec<String>> {
    office_hours_queue::table
        .filter(office_hours_queue::chat_room_id.eq(room_id))
        .filter(office_hours_queue::status.eq("admitted"))
        .select(office_hours_queue::student_id)
        .load(conn)
}

/// Whether `user_id` may read a room's history: its instructor, a student
/// ever admitted into it (after completion too: it is their transcript),
/// and for a drop-in room any of the instructor's students. None: no such room.
pub fn may_read_room(conn: &mut AnyConnection, room_id: &str, user_id: &str) -> QueryResult<Option<bool>> {
    let Some(room) = find_room(conn, room_id)? else { return Ok(None) };
    if room.instructor_id == user_id {
        return Ok(Some(true));
    }
    if room.mode == "drop-in" {
        return teaches(conn, &room.instructor_id, user_id).map(Some);
    }
    let admitted: i64 = office_hours_queue::table
        .filter(office_hours_queue::chat_room_id.eq(room_id))
        .filter(office_hours_queue::student_id.eq(user_id))
        .count()
        .get_result(conn)?;
    Ok(Some(admitted > 0))
}

/// The time of a room's last message, if any.
pub fn last_message_at(conn: &mut AnyConnection, room_id: &str) -> QueryResult<Option<NaiveDateTime>> {
    chat_messages::table.filter(chat_messages::room_id.eq(room_id)).select(max(chat_messages::created_at)).first(conn)
}

pub fn close_room_now(conn: &mut AnyConnection, room_id: &str, at: NaiveDateTime) -> QueryResult<()> {
    diesel::update(office_hours_rooms::table.find(room_id).filter(office_hours_rooms::closed_at.is_null()))
        .set(office_hours_rooms::closed_at.eq(at))
        .execute(conn)?;
    diesel::update(crate::db::schema::chat_rooms::table.find(room_id))
        .set(crate::db::schema::chat_rooms::is_active.eq(false))
        .execute(conn)
        .map(|_| ())
}

/// The instructor's open drop-in room for a slot, if any.
pub fn open_drop_in_room(conn: &mut AnyConnection, instructor_id: &str) -> QueryResult<Option<OfficeHoursRoomRow>> {
    office_hours_rooms::table
        .filter(office_hours_rooms::instructor_id.eq(instructor_id))
        .filter(office_hours_rooms::mode.eq("drop-in"))
        .filter(office_hours_rooms::closed_at.is_null())
        .select(OfficeHoursRoomRow::as_select())
        .first(conn)
        .optional()
}

pub fn open_room(conn: &mut AnyConnection, chat_room: &ChatRoomRow, room: &OfficeHoursRoomRow) -> QueryResult<()> {
    crate::db::chat::insert_room(conn, chat_room)?;
    diesel::insert_into(office_hours_rooms::table).values(room).execute(conn).map(|_| ())
}

// ---- announcements ----

pub fn insert_announcement(conn: &mut AnyConnection, row: &AnnouncementRow) -> QueryResult<()> {
    diesel::insert_into(office_hours_announcements::table).values(row).execute(conn).map(|_| ())
}

/// The latest announcement made at or after `since`.
pub fn latest_announcement(
    conn: &mut AnyConnection,
    instructor_id: &str,
    since: NaiveDateTime,
) -> QueryResult<Option<AnnouncementRow>> {
    office_hours_announcements::table
        .filter(office_hours_announcements::instructor_id.eq(instructor_id))
        .filter(office_hours_announcements::created_at.ge(since))
        .order(office_hours_announcements::created_at.desc())
        .select(AnnouncementRow::as_select())
        .first(conn)
        .optional()
}
