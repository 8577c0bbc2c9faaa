//! A private iCalendar feed per user (added, issue 15): an `.ics` address
//! that Google Calendar, Outlook or Apple Calendar subscribe to without a
//! login, listing the live sessions of the courses the user teaches or is
//! enrolled in, the sessions of the study groups they are a member of, and
//! office hours: an instructor's own weekly slots, a student's instructors'.
//! The address holds a random token; only its digest is
//! stored, so the address is shown once, when made. Making a new one
//! replaces the old (which stops working), and the feed can be turned off.

use actix_web::http::header::{CacheControl, CacheDirective};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use serde::Serialize;

use crate::auth::{new_token, token_digest, AuthUser};
use crate::db::models::{CalendarFeedRow, LiveSessionRow, StudyGroupSessionRow};
use crate::db::{self, from_db_time, to_db_time};
use crate::domain::office_hours::schedule::{Occurrence, Schedule, Slot, SlotMode};
use crate::error::{AppError, AppResult};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/calendar/feed", web::get().to(feed_state))
        .route("/calendar/feed", web::post().to(new_feed))
        .route("/calendar/feed", web::delete().to(revoke_feed))
        .route("/calendar/feeds/{token}.ics", web::get().to(feed));
}

/// Sessions that started this long ago or later are in the feed (and all to come).
const FEED_PAST_DAYS: i64 = 90;
/// Office hours are weekly slots in the instructor's time zone; the feed
/// lists each week's occurrence in UTC, like everything else in it (no
/// recurrence rule, so no time-zone definitions a calendar app might read
/// differently), from a week back to this far ahead. Calendar apps read the
/// feed again every hour, so the window moves on by itself.
const OFFICE_HOURS_AHEAD_DAYS: i64 = 56;
const OFFICE_HOURS_PAST_DAYS: i64 = 7;

/// Whether I have a feed, and since when (its address is not kept: see `POST`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FeedState {
    pub active: bool,
    pub created_at: Option<DateTime<Utc>>,
}

/// A new feed: its address, shown this once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NewFeed {
    /// The `.ics` address to subscribe to (`https://host/api/calendar/feeds/<token>.ics`).
    pub url: String,
    /// The same as a `webcal://` address, which calendar apps open directly.
    pub webcal_url: String,
    pub created_at: DateTime<Utc>,
}

#[utoipa::path(get, path = "/api/calendar/feed", responses((status = 200, body = FeedState)), security(("bearer" = [])))]
pub async fn feed_state(state: web::Data<AppState>, user: AuthUser) -> AppResult<HttpResponse> {
    let user_id = user.id.to_string();
    let row = state.db.read(move |conn| Ok(db::calendar_feeds::find_for_user(conn, &user_id)?)).await?;
    Ok(HttpResponse::Ok()
        .json(FeedState { active: row.is_some(), created_at: row.map(|feed| from_db_time(feed.created_at)) }))
}

/// Makes my feed's address, replacing the one I had (which stops working).
#[utoipa::path(post, path = "/api/calendar/feed", responses((status = 201, body = NewFeed)), security(("bearer" = [])))]
pub async fn new_feed(req: HttpRequest, state: web::Data<AppState>, user: AuthUser) -> AppResult<HttpResponse> {
    let (token, digest) = new_token();
    let now = state.clock.now();
    let row = CalendarFeedRow { user_id: user.id.to_string(), token_hash: digest, created_at: to_db_time(now) };
    state.persistence.write(move |conn| db::calendar_feeds::replace(conn, &row)).await?;
    let info = req.connection_info();
    let path = format!("{}/api/calendar/feeds/{token}.ics", info.host());
    Ok(HttpResponse::Created().insert_header(CacheControl(vec![CacheDirective::NoStore])).json(NewFeed {
        url: format!("{}://{path}", info.scheme()),
        webcal_url: format!("webcal://{path}"),
        created_at: from_db_time(to_db_time(now)),
    }))
}

/// Turns my feed off: its address answers 404 from now on.
#[utoipa::path(delete, path = "/api/calendar/feed", responses((status = 204)), security(("bearer" = [])))]
pub async fn revoke_feed(state: web::Data<AppState>, user: AuthUser) -> AppResult<HttpResponse> {
    let user_id = user.id.to_string();
    state.persistence.write(move |conn| db::calendar_feeds::delete_for_user(conn, &user_id)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The feed itself, for a calendar app: no login, the token is the key. An
/// unknown, replaced or revoked token is a 404.
#[utoipa::path(get, path = "/api/calendar/feeds/{token}.ics", params(("token" = String, Path, description = "The feed's private token")),
    responses((status = 200, description = "text/calendar (RFC 5545): one VEVENT per live session, study group session and week's office hours", content_type = "text/calendar", body = String),
        (status = 404, body = crate::error::ErrorEnvelope)))]
pub async fn feed(req: HttpRequest, state: web::Data<AppState>, path: web::Path<String>) -> AppResult<HttpResponse> {
    let token = path.into_inner();
    // A token is 64 hexadecimal digits; anything else is no feed (and no database read).
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(AppError::not_found("calendar feed"));
    }
    let digest = token_digest(&token.to_ascii_lowercase());
    let now = state.clock.now();
    let since = to_db_time(now - Duration::days(FEED_PAST_DAYS));
    let found = state
        .db
        .read(move |conn| {
            let Some(owner) = db::calendar_feeds::find_owner(conn, &digest)? else {
                return Ok(None);
            };
            let filter = db::live_sessions::SessionFilter { from: Some(since), ..Default::default() };
            let sessions = db::live_sessions::list_visible(conn, &owner.id, false, &filter)?;
            let mut events = Vec::with_capacity(sessions.len());
            for session in sessions {
                let course = db::courses::find(conn, &session.course_id)?.map(|c| c.title).unwrap_or_default();
                events.push(Event::live_session(&session, &course));
            }
            for (session, group) in db::study_groups::sessions_of_member(conn, &owner.id, since)? {
                events.push(Event::group_session(&session, &group));
            }
            // My own slots (if I teach), then those of the instructors whose
            // courses I take (never mine twice).
            let mut instructors = vec![(owner.id.clone(), None)];
            for (id, name) in db::office_hours::instructors_of(conn, &owner.id)? {
                if id != owner.id {
                    instructors.push((id, Some(name)));
                }
            }
            let from = now - Duration::days(OFFICE_HOURS_PAST_DAYS);
            for (instructor_id, name) in instructors {
                let slots: Vec<Slot> = db::office_hours::slots(conn, &instructor_id)?
                    .iter()
                    .filter_map(db::office_hours::to_slot)
                    .collect();
                let schedule = Schedule::new(slots);
                for (slot, occurrence) in schedule.occurrences(from, OFFICE_HOURS_PAST_DAYS + OFFICE_HOURS_AHEAD_DAYS) {
                    events.push(Event::office_hours(slot.mode, &occurrence, name.as_deref()));
                }
            }
            events.sort_by(|a, b| a.start.cmp(&b.start).then_with(|| a.uid.cmp(&b.uid)));
            Ok(Some((owner.name, events)))
        })
        .await?;
    let Some((name, events)) = found else {
        return Err(AppError::not_found("calendar feed"));
    };
    let info = req.connection_info();
    let base = format!("{}://{}", info.scheme(), info.host());
    let body = render(&name, &events, &base, to_db_time(state.clock.now()));
    Ok(HttpResponse::Ok()
        .content_type("text/calendar; charset=utf-8")
        .insert_header(CacheControl(vec![CacheDirective::Private, CacheDirective::NoCache]))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .body(body))
}

/// One VEVENT: what a live session, a group's session or an occurrence of
/// office hours comes to in the feed.
#[derive(Debug)]
struct Event {
    uid: String,
    start: NaiveDateTime,
    end: NaiveDateTime,
    /// When the entry last changed, if that is known.
    modified: Option<NaiveDateTime>,
    summary: String,
    description: String,
    /// The page it opens, after the site's address (`/#/sessions/<id>`).
    page: String,
    cancelled: bool,
}

impl Event {
    fn live_session(session: &LiveSessionRow, course: &str) -> Event {
        let description = match &session.description {
            Some(text) if !text.trim().is_empty() => format!("{course}\n\n{text}"),
            _ => course.to_string(),
        };
        Event {
            uid: format!("{}@classroom", session.id),
            start: session.scheduled_start_time,
            end: session.scheduled_end_time,
            modified: Some(session.updated_at),
            summary: session.title.clone(),
            description,
            page: format!("/#/sessions/{}", session.id),
            cancelled: session.status == "cancelled",
        }
    }

    fn group_session(session: &StudyGroupSessionRow, group: &str) -> Event {
        Event {
            uid: format!("{}@classroom", session.id),
            start: session.scheduled_start_time,
            end: session.scheduled_end_time,
            // A group's session is not edited after it is made.
            modified: Some(session.created_at),
            summary: session.title.clone(),
            description: format!("Study group: {group}"),
            page: format!("/#/groups/{}", session.group_id),
            cancelled: false,
        }
    }

    /// One occurrence of a weekly slot; `instructor` is None in the
    /// instructor's own feed. Its UID names the slot and the start, so an
    /// occurrence keeps its UID from one reading of the feed to the next.
    fn office_hours(mode: SlotMode, occurrence: &Occurrence, instructor: Option<&str>) -> Event {
        let start = to_db_time(occurrence.start);
        let how = match mode {
            SlotMode::Queue => "Queue: students join the line with a question and are admitted one by one.",
            SlotMode::DropIn => "Drop-in: one open room for every student.",
        };
        let (summary, page) = match instructor {
            Some(name) => (format!("Office hours: {name}"), "/#/office-hours"),
            None => ("My office hours".to_string(), "/#/office-hours/manage"),
        };
        Event {
            uid: format!("office-hours-{}-{}@classroom", occurrence.slot_id, stamp(start)),
            start,
            end: to_db_time(occurrence.end),
            modified: None,
            summary,
            description: how.to_string(),
            page: page.to_string(),
            cancelled: false,
        }
    }
}

/// The calendar: CRLF line ends, long lines folded, text escaped (RFC 5545).
fn render(owner: &str, events: &[Event], base: &str, now: NaiveDateTime) -> String {
    let mut out = String::new();
    let mut line = |text: String| {
        out.push_str(&fold(&text));
        out.push_str("\r\n");
    };
    line("BEGIN:VCALENDAR".into());
    line("VERSION:2.0".into());
    line("PRODID:-//classroom//live sessions//EN".into());
    line("CALSCALE:GREGORIAN".into());
    line("METHOD:PUBLISH".into());
    line(format!("X-WR-CALNAME:{}", escape(&format!("Classroom: {owner}"))));
    line("REFRESH-INTERVAL;VALUE=DURATION:PT1H".into());
    line("X-PUBLISHED-TTL:PT1H".into());
    for event in events {
        line("BEGIN:VEVENT".into());
        line(format!("UID:{}", event.uid));
        line(format!("DTSTAMP:{}", stamp(now)));
        if let Some(modified) = event.modified {
            line(format!("LAST-MODIFIED:{}", stamp(modified)));
        }
        line(format!("DTSTART:{}", stamp(event.start)));
        line(format!("DTEND:{}", stamp(event.end)));
        line(format!("SUMMARY:{}", escape(&event.summary)));
        line(format!("DESCRIPTION:{}", escape(&event.description)));
        line(format!("URL:{base}{}", event.page));
        line(format!("STATUS:{}", if event.cancelled { "CANCELLED" } else { "CONFIRMED" }));
        line("END:VEVENT".into());
    }
    line("END:VCALENDAR".into());
    out
}

/// A UTC time as iCalendar writes it: `20261203T140000Z`.
fn stamp(at: NaiveDateTime) -> String {
    at.format("%Y%m%dT%H%M%SZ").to_string()
}

/// TEXT escaping (RFC 5545 3.3.11): backslash, semicolon and comma escaped,
/// line breaks as `\n`; other control characters, which TEXT may not hold, dropped.
fn escape(text: &str) -> String {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Folds a content line at 75 octets (RFC 5545 3.1), never inside a UTF-8
/// character: the rest goes on lines that begin with one space.
fn fold(line: &str) -> String {
    const LIMIT: usize = 75;
    let mut out = String::with_capacity(line.len() + line.len() / LIMIT * 3);
    let mut used = 0;
    for c in line.chars() {
        if used + c.len_utf8() > LIMIT {
            out.push_str("\r\n ");
            used = 1;
        }
        out.push(c);
        used += c.len_utf8();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_as_rfc_5545_says() {
        assert_eq!(escape("a\\b;c,d\ne\r\nf\rg"), "a\\\\b\\;c\\,d\\ne\\nf\\ng");
        assert_eq!(escape("BEGIN:VEVENT\u{7}x"), "BEGIN:VEVENTx", "a colon is fine in TEXT; control characters go");
    }

    #[test]
    fn long_lines_fold_at_75_octets_between_characters() {
        let line = format!("SUMMARY:{}", "é".repeat(60));
        let folded = fold(&line);
        for part in folded.split("\r\n") {
            assert!(part.len() <= 75, "{} octets: {part:?}", part.len());
        }
        assert!(folded.split("\r\n").skip(1).all(|part| part.starts_with(' ')));
        assert_eq!(folded.replace("\r\n ", ""), line, "unfolding gives the line back");
        assert_eq!(fold("SHORT:x"), "SHORT:x");
    }
}
