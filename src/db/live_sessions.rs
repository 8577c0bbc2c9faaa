//! Live sessions and their attendance.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::models::{AttendeeRow, LiveSessionRow};
use crate::db::parse_id;
use crate::db::schema::{courses, enrollments, live_session_attendees, live_sessions, users};
use crate::db::{to_db_time, AnyConnection};
use crate::domain::live_session::SessionFacts;
use crate::domain::room::{session_standing, Standing};
use crate::domain::Role;
use uuid::Uuid;

/// Which sessions a listing wants.
#[derive(Debug, Default, Clone)]
pub struct SessionFilter {
    /// Scheduled to start at or after this time.
    pub from: Option<NaiveDateTime>,
    /// Scheduled to start before this time.
    pub to: Option<NaiveDateTime>,
    pub course_id: Option<String>,
    pub status: Option<String>,
}

/// Sessions of the courses a user teaches or is enrolled in (every session
/// for an admin), soonest first.
pub fn list_visible(
    conn: &mut AnyConnection,
    user_id: &str,
    admin: bool,
    filter: &SessionFilter,
) -> QueryResult<Vec<LiveSessionRow>> {
    let mut query = live_sessions::table.select(LiveSessionRow::as_select()).into_boxed();
    if !admin {
        let taught = courses::table.filter(courses::instructor_id.eq(user_id.to_string())).select(courses::id);
        let enrolled =
            enrollments::table.filter(enrollments::user_id.eq(user_id.to_string())).select(enrollments::course_id);
        query = query.filter(live_sessions::course_id.eq_any(taught).or(live_sessions::course_id.eq_any(enrolled)));
    }
    if let Some(from) = filter.from {
        query = query.filter(live_sessions::scheduled_start_time.ge(from));
    }
    if let Some(to) = filter.to {
        query = query.filter(live_sessions::scheduled_start_time.lt(to));
    }
    if let Some(course_id) = &filter.course_id {
        query = query.filter(live_sessions::course_id.eq(course_id.clone()));
    }
    if let Some(status) = &filter.status {
        query = query.filter(live_sessions::status.eq(status.clone()));
    }
    query.order((live_sessions::scheduled_start_time.asc(), live_sessions::id.asc())).load(conn)
}

/// Sessions whose reminders or automatic end may be due: scheduled to start
/// before `starts_before`, and not over.
pub fn needing_attention(conn: &mut AnyConnection, starts_before: NaiveDateTime) -> QueryResult<Vec<LiveSessionRow>> {
    live_sessions::table
        .filter(live_sessions::status.eq_any(["scheduled", "active"]))
        .filter(live_sessions::scheduled_start_time.lt(starts_before).or(live_sessions::status.eq("active")))
        .select(LiveSessionRow::as_select())
        .load(conn)
}

/// Writes the room's view of a session (every editable field and the status).
pub fn save_facts(conn: &mut AnyConnection, facts: &SessionFacts, updated_at: NaiveDateTime) -> QueryResult<()> {
    let updated = diesel::update(live_sessions::table.find(facts.id.to_string()))
        .set((
            live_sessions::title.eq(&facts.title),
            live_sessions::description.eq(&facts.description),
            live_sessions::scheduled_start_time.eq(to_db_time(facts.scheduled_start)),
            live_sessions::scheduled_end_time.eq(to_db_time(facts.scheduled_end)),
            live_sessions::actual_start_time.eq(facts.actual_start.map(to_db_time)),
            live_sessions::actual_end_time.eq(facts.actual_end.map(to_db_time)),
            live_sessions::max_attendees.eq(facts.max_attendees),
            live_sessions::status.eq(facts.status.as_str()),
            live_sessions::recording_url.eq(&facts.recording_url),
            live_sessions::updated_at.eq(updated_at),
        ))
        .execute(conn)?;
    if updated == 0 {
        return Err(diesel::result::Error::NotFound);
    }
    Ok(())
}

/// Attendance rows of a session with each person's name.
pub fn attendees(conn: &mut AnyConnection, session_id: &str) -> QueryResult<Vec<(AttendeeRow, String)>> {
    live_session_attendees::table
        .inner_join(users::table)
        .filter(live_session_attendees::session_id.eq(session_id))
        .order((live_session_attendees::joined_at.asc(), live_session_attendees::user_id.asc()))
        .select((AttendeeRow::as_select(), users::name))
        .load(conn)
}

pub fn insert(conn: &mut AnyConnection, session: &LiveSessionRow) -> QueryResult<()> {
    diesel::insert_into(live_sessions::table).values(session).execute(conn).map(|_| ())
}

pub fn find(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<LiveSessionRow>> {
    live_sessions::table.find(id).select(LiveSessionRow::as_select()).first(conn).optional()
}

/// The session whose chat room this is.
pub fn find_by_room(conn: &mut AnyConnection, chat_room_id: &str) -> QueryResult<Option<LiveSessionRow>> {
    live_sessions::table
        .filter(live_sessions::chat_room_id.eq(chat_room_id))
        .select(LiveSessionRow::as_select())
        .first(conn)
        .optional()
}

/// How a user stands towards a session (None: they may not see it). The
/// one rule for REST and WebSocket alike: `domain::room::session_standing`.
pub fn standing(
    conn: &mut AnyConnection,
    user_id: Uuid,
    role: Role,
    session: &LiveSessionRow,
) -> crate::error::AppResult<Option<Standing>> {
    let instructor_id = parse_id(&session.instructor_id).map_err(crate::error::AppError::internal)?;
    let enrolled = user_id != instructor_id
        && role != Role::Admin
        && crate::db::courses::is_enrolled(conn, &session.course_id, &user_id.to_string())?;
    Ok(session_standing(user_id, role, instructor_id, enrolled))
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

/// Records everyone still counted as present in a session (or, without a
/// session, in any session) as leaving at `at`: a session that ends has no
/// one in it, and after a restart of the server nobody is in any room.
pub fn close_open_attendance(
    conn: &mut AnyConnection,
    session_id: Option<&str>,
    at: NaiveDateTime,
) -> QueryResult<usize> {
    let mut open = live_session_attendees::table
        .filter(live_session_attendees::left_at.is_null())
        .select((live_session_attendees::session_id, live_session_attendees::user_id))
        .into_boxed();
    if let Some(session_id) = session_id {
        open = open.filter(live_session_attendees::session_id.eq(session_id.to_string()));
    }
    let open: Vec<(String, String)> = open.load(conn)?;
    for (session, user) in &open {
        record_leave(conn, session, user, at)?;
    }
    Ok(open.len())
}

/// People the database still counts as in the room (no leave time).
pub fn present_user_ids(conn: &mut AnyConnection, session_id: &str) -> QueryResult<Vec<String>> {
    live_session_attendees::table
        .filter(live_session_attendees::session_id.eq(session_id))
        .filter(live_session_attendees::left_at.is_null())
        .select(live_session_attendees::user_id)
        .load(conn)
}

/// The room's view of a stored session (with its instructor's name).
pub fn load_facts(conn: &mut AnyConnection, row: &LiveSessionRow) -> crate::error::AppResult<SessionFacts> {
    let instructor_name = users::table.find(&row.instructor_id).select(users::name).first::<String>(conn)?;
    to_facts(row, instructor_name).map_err(crate::error::AppError::internal)
}

/// The room's view of a stored session.
pub fn to_facts(
    row: &LiveSessionRow,
    instructor_name: String,
) -> Result<crate::domain::live_session::SessionFacts, String> {
    use crate::db::from_db_time;
    use crate::domain::live_session::{SessionFacts, SessionStatus};
    Ok(SessionFacts {
        id: parse_id(&row.id)?,
        course_id: parse_id(&row.course_id)?,
        instructor_id: parse_id(&row.instructor_id)?,
        instructor_name,
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
