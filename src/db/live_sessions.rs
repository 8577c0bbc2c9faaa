//! Live sessions and their attendance.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::models::{AttendeeRow, LiveSessionRow};
use crate::db::schema::{live_session_attendees, live_sessions};
use crate::db::AnyConnection;

pub fn insert(conn: &mut AnyConnection, session: &LiveSessionRow) -> QueryResult<()> {
    diesel::insert_into(live_sessions::table).values(session).execute(conn).map(|_| ())
}

pub fn find(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<LiveSessionRow>> {
    live_sessions::table.find(id).select(LiveSessionRow::as_select()).first(conn).optional()
}

/// Records that someone entered the room: a first visit inserts, a rejoin
/// reopens the row (the time of the first join is kept).
pub fn record_join(conn: &mut AnyConnection, session_id: &str, user_id: &str, at: NaiveDateTime) -> QueryResult<()> {
    let reopened = diesel::update(live_session_attendees::table.find((session_id, user_id)))
        .set((live_session_attendees::left_at.eq(None::<NaiveDateTime>), live_session_attendees::last_joined_at.eq(at)))
        .execute(conn)?;
    if reopened == 0 {
        let row = AttendeeRow {
            session_id: session_id.to_string(),
            user_id: user_id.to_string(),
            joined_at: at,
            left_at: None,
            last_joined_at: at,
            seconds_present: 0,
        };
        diesel::insert_into(live_session_attendees::table).values(&row).execute(conn)?;
    }
    Ok(())
}

/// Records that someone left: sets the leave time and adds the visit to the
/// time present. Does nothing for someone not present.
pub fn record_leave(conn: &mut AnyConnection, session_id: &str, user_id: &str, at: NaiveDateTime) -> QueryResult<()> {
    let open: Option<NaiveDateTime> = live_session_attendees::table
        .find((session_id, user_id))
        .filter(live_session_attendees::left_at.is_null())
        .select(live_session_attendees::last_joined_at)
        .first(conn)
        .optional()?;
    if let Some(since) = open {
        let visit = (at - since).num_seconds().max(0);
        diesel::update(live_session_attendees::table.find((session_id, user_id)))
            .set((
                live_session_attendees::left_at.eq(Some(at)),
                live_session_attendees::seconds_present.eq(live_session_attendees::seconds_present + visit),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// People the database still counts as in the room (no leave time).
pub fn present_user_ids(conn: &mut AnyConnection, session_id: &str) -> QueryResult<Vec<String>> {
    live_session_attendees::table
        .filter(live_session_attendees::session_id.eq(session_id))
        .filter(live_session_attendees::left_at.is_null())
        .select(live_session_attendees::user_id)
        .load(conn)
}

/// The room's view of a stored session.
pub fn to_facts(row: &LiveSessionRow) -> Result<crate::domain::live_session::SessionFacts, String> {
    use crate::db::{from_db_time, parse_id};
    use crate::domain::live_session::{SessionFacts, SessionStatus};
    Ok(SessionFacts {
        id: parse_id(&row.id)?,
        course_id: parse_id(&row.course_id)?,
        instructor_id: parse_id(&row.instructor_id)?,
        chat_room_id: parse_id(&row.chat_room_id)?,
        title: row.title.clone(),
        description: row.description.clone(),
        status: SessionStatus::parse(&row.status).ok_or_else(|| format!("unknown session status {}", row.status))?,
        scheduled_start: from_db_time(row.scheduled_start_time),
        scheduled_end: from_db_time(row.scheduled_end_time),
        actual_start: row.actual_start_time.map(from_db_time),
        actual_end: row.actual_end_time.map(from_db_time),
        max_attendees: row.max_attendees,
        recording_url: row.recording_url.clone(),
    })
}
