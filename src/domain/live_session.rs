//! Rules of one live session: its status machine, who may join when, the
//! capacity, and who is in the room (several tabs of one person count once).

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::room::{Admission, ParticipantView};
use crate::domain::{input, Role};
use crate::error::AppError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SessionStatus {
    Scheduled,
    Active,
    Ended,
    Cancelled,
}

impl SessionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Scheduled => "scheduled",
            SessionStatus::Active => "active",
            SessionStatus::Ended => "ended",
            SessionStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<SessionStatus> {
        match text {
            "scheduled" => Some(SessionStatus::Scheduled),
            "active" => Some(SessionStatus::Active),
            "ended" => Some(SessionStatus::Ended),
            "cancelled" => Some(SessionStatus::Cancelled),
            _ => None,
        }
    }

    fn is_over(self) -> bool {
        matches!(self, SessionStatus::Ended | SessionStatus::Cancelled)
    }
}

/// What the room needs to know of its session.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionFacts {
    pub id: Uuid,
    pub course_id: Uuid,
    pub instructor_id: Uuid,
    pub instructor_name: String,
    pub chat_room_id: Uuid,
    pub title: String,
    pub description: Option<String>,
    pub status: SessionStatus,
    pub scheduled_start: DateTime<Utc>,
    pub scheduled_end: DateTime<Utc>,
    pub actual_start: Option<DateTime<Utc>>,
    pub actual_end: Option<DateTime<Utc>>,
    pub max_attendees: Option<i32>,
    pub recording_url: Option<String>,
}

/// A session as the wire contract shows it (REST answers and WebSocket acks).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionView {
    pub id: Uuid,
    pub instructor_id: Uuid,
    /// (added to the contract) for session cards.
    pub instructor_name: String,
    pub course_id: Uuid,
    pub title: String,
    pub description: Option<String>,
    pub scheduled_start_time: DateTime<Utc>,
    pub scheduled_end_time: DateTime<Utc>,
    pub actual_start_time: Option<DateTime<Utc>>,
    pub actual_end_time: Option<DateTime<Utc>>,
    pub max_attendees: Option<i32>,
    pub status: SessionStatus,
    pub recording_url: Option<String>,
    /// Students in the room now.
    pub attendee_count: usize,
    /// The session's chat room, for the room events of contract v2.
    pub chat_room_id: Uuid,
}

impl SessionView {
    pub fn new(facts: &SessionFacts, attendee_count: usize) -> Self {
        Self {
            id: facts.id,
            instructor_id: facts.instructor_id,
            instructor_name: facts.instructor_name.clone(),
            course_id: facts.course_id,
            title: facts.title.clone(),
            description: facts.description.clone(),
            scheduled_start_time: facts.scheduled_start,
            scheduled_end_time: facts.scheduled_end,
            actual_start_time: facts.actual_start,
            actual_end_time: facts.actual_end,
            max_attendees: facts.max_attendees,
            status: facts.status,
            recording_url: facts.recording_url.clone(),
            attendee_count,
            chat_room_id: facts.chat_room_id,
        }
    }
}

/// Why someone may not join (now).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinRefusal {
    NotOpenYet { opens_at: DateTime<Utc> },
    Over(SessionStatus),
    Full { capacity: i32 },
}

impl From<JoinRefusal> for AppError {
    fn from(refusal: JoinRefusal) -> Self {
        match refusal {
            JoinRefusal::NotOpenYet { opens_at } => AppError::new(
                actix_web::http::StatusCode::FORBIDDEN,
                "join_window_closed",
                format!(
                    "This session opens for joining at {}.",
                    opens_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                ),
            ),
            JoinRefusal::Over(status) => AppError::conflict(
                "session_over",
                format!("This session is {}; it can no longer be joined.", status.as_str()),
            ),
            JoinRefusal::Full { capacity } => {
                AppError::conflict("session_full", format!("This session is full ({capacity} attendees)."))
            }
        }
    }
}

/// A status change that the current status does not allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidTransition {
    pub from: SessionStatus,
    pub to: SessionStatus,
}

impl From<InvalidTransition> for AppError {
    fn from(err: InvalidTransition) -> Self {
        AppError::conflict(
            "invalid_status_change",
            format!("A {} session cannot become {}.", err.from.as_str(), err.to.as_str()),
        )
    }
}

/// Edits to a session (the body of `PUT /api/live-sessions/:id`); absent
/// fields stay as they are, `null` clears an optional one.
/// (Serialized as it came, absent fields absent: a node forwards it to another.)
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SessionChanges {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, deserialize_with = "input::absent_or_null", skip_serializing_if = "Option::is_none")]
    pub description: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduled_start_time: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduled_end_time: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "input::absent_or_null", skip_serializing_if = "Option::is_none")]
    pub max_attendees: Option<Option<i32>>,
    #[serde(default, deserialize_with = "input::absent_or_null", skip_serializing_if = "Option::is_none")]
    pub recording_url: Option<Option<String>>,
}

pub const MAX_TITLE_CHARS: usize = 200;
pub const MAX_URL_BYTES: usize = 500;

/// Longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 5_000;

/// Checks a description (several lines allowed).
pub fn validate_description(text: &str) -> Result<(), AppError> {
    input::multi_line("The description", text)?;
    if text.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(AppError::bad_request(
            "invalid_description",
            format!("A description may have at most {MAX_DESCRIPTION_CHARS} characters."),
        ));
    }
    Ok(())
}

/// Checks a title; returns it trimmed.
pub fn validate_title(title: &str) -> Result<String, AppError> {
    let title = title.trim();
    input::single_line("The title", title)?;
    if title.is_empty() || title.chars().count() > MAX_TITLE_CHARS {
        return Err(AppError::bad_request(
            "invalid_title",
            format!("A title needs 1 to {MAX_TITLE_CHARS} characters."),
        ));
    }
    Ok(title.to_string())
}

/// Checks a schedule and a capacity, for new sessions and edits alike.
pub fn validate_schedule(start: DateTime<Utc>, end: DateTime<Utc>, max_attendees: Option<i32>) -> Result<(), AppError> {
    input::time("scheduledStartTime", start)?;
    input::time("scheduledEndTime", end)?;
    if end <= start {
        return Err(AppError::bad_request("invalid_schedule", "The session must end after it starts."));
    }
    if max_attendees.is_some_and(|max| max < 1) {
        return Err(AppError::bad_request("invalid_capacity", "maxAttendees must be at least 1."));
    }
    Ok(())
}

/// How far in the past a new start may be and still count as "now": a form
/// filled in at the start time reaches the server a little later, and the
/// browser's clock may be a little behind the server's.
pub const START_GRACE: Duration = Duration::minutes(1);

/// Refuses a start in the past (more than [`START_GRACE`] before `now`);
/// a start equal to now is fine.
pub fn validate_start_not_past(start: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), AppError> {
    if start < now - START_GRACE {
        return Err(AppError::bad_request(
            "start_in_past",
            "A session cannot start in the past; choose a start time from now on.",
        ));
    }
    Ok(())
}

/// A person in the room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Participant {
    pub user_id: Uuid,
    pub name: String,
    /// `instructor` for the session's instructor, otherwise the user's role.
    pub role: Role,
    pub joined_at: DateTime<Utc>,
    connections: HashSet<Uuid>,
}

impl From<&Participant> for ParticipantView {
    fn from(p: &Participant) -> Self {
        Self { user_id: p.user_id, name: p.name.clone(), role: p.role, joined_at: p.joined_at }
    }
}

/// Who is joining, as the room sees them.
#[derive(Debug, Clone)]
pub struct Joiner {
    pub user_id: Uuid,
    pub name: String,
    pub role: Role,
}

#[derive(Debug, Clone)]
pub struct LiveSessionRoom {
    pub facts: SessionFacts,
    /// How long before the scheduled start students may come in.
    early_join: Duration,
    participants: BTreeMap<Uuid, Participant>,
}

impl LiveSessionRoom {
    pub fn new(facts: SessionFacts, early_join: Duration) -> Self {
        Self { facts, early_join, participants: BTreeMap::new() }
    }

    /// Whether this user leads the session (its instructor, or an admin).
    pub fn leads(&self, user_id: Uuid, role: Role) -> bool {
        user_id == self.facts.instructor_id || role == Role::Admin
    }

    pub fn opens_at(&self) -> DateTime<Utc> {
        self.facts.scheduled_start - self.early_join
    }

    /// Students present, the number that capacity limits.
    pub fn attendee_count(&self) -> usize {
        self.participants.values().filter(|p| p.user_id != self.facts.instructor_id).count()
    }

    pub fn is_present(&self, user_id: Uuid) -> bool {
        self.participants.contains_key(&user_id)
    }

    pub fn check_join(&self, user_id: Uuid, role: Role, now: DateTime<Utc>) -> Result<(), JoinRefusal> {
        if self.facts.status.is_over() {
            return Err(JoinRefusal::Over(self.facts.status));
        }
        if self.leads(user_id, role) || self.is_present(user_id) {
            return Ok(());
        }
        if self.facts.status == SessionStatus::Scheduled && now < self.opens_at() {
            return Err(JoinRefusal::NotOpenYet { opens_at: self.opens_at() });
        }
        if let Some(capacity) = self.facts.max_attendees {
            if self.attendee_count() >= capacity.max(0) as usize {
                return Err(JoinRefusal::Full { capacity });
            }
        }
        Ok(())
    }

    pub fn join(&mut self, joiner: &Joiner, connection: Uuid, now: DateTime<Utc>) -> Result<Admission, JoinRefusal> {
        self.check_join(joiner.user_id, joiner.role, now)?;
        if let Some(present) = self.participants.get_mut(&joiner.user_id) {
            present.connections.insert(connection);
            return Ok(Admission::AnotherTab);
        }
        let role = if joiner.user_id == self.facts.instructor_id { Role::Instructor } else { joiner.role };
        self.participants.insert(
            joiner.user_id,
            Participant {
                user_id: joiner.user_id,
                name: joiner.name.clone(),
                role,
                joined_at: now,
                connections: HashSet::from([connection]),
            },
        );
        Ok(Admission::Entered)
    }

    /// Puts back a person who was already admitted before the room was
    /// rebuilt (a restarted actor): no window or capacity check, no news.
    pub fn restore(&mut self, joiner: &Joiner, connection: Uuid, now: DateTime<Utc>) {
        if let Some(present) = self.participants.get_mut(&joiner.user_id) {
            present.connections.insert(connection);
            return;
        }
        let role = if joiner.user_id == self.facts.instructor_id { Role::Instructor } else { joiner.role };
        let participant = Participant {
            user_id: joiner.user_id,
            name: joiner.name.clone(),
            role,
            joined_at: now,
            connections: HashSet::from([connection]),
        };
        self.participants.insert(joiner.user_id, participant);
    }

    /// Removes one connection; true when it was the person's last, so they left.
    pub fn leave(&mut self, user_id: Uuid, connection: Uuid) -> bool {
        let Some(present) = self.participants.get_mut(&user_id) else { return false };
        present.connections.remove(&connection);
        if present.connections.is_empty() {
            self.participants.remove(&user_id);
            true
        } else {
            false
        }
    }

    /// Whether this socket of this person is in the room.
    pub fn holds(&self, user_id: Uuid, connection: Uuid) -> bool {
        self.participants.get(&user_id).is_some_and(|p| p.connections.contains(&connection))
    }

    pub fn participants(&self) -> impl Iterator<Item = &Participant> {
        self.participants.values()
    }

    pub fn is_empty(&self) -> bool {
        self.participants.is_empty()
    }

    /// Applies edits, all or none. The schedule and capacity can change only
    /// before the start; title, description and recording link until the
    /// session is cancelled. A start that moves may not move into the past
    /// (as of `now`); leaving an overdue start as it is stays possible.
    pub fn apply_changes(&mut self, changes: &SessionChanges, now: DateTime<Utc>) -> Result<(), AppError> {
        if self.facts.status == SessionStatus::Cancelled {
            return Err(AppError::conflict("session_over", "A cancelled session cannot be edited."));
        }
        let reschedules = changes.scheduled_start_time.is_some()
            || changes.scheduled_end_time.is_some()
            || changes.max_attendees.is_some();
        if reschedules && self.facts.status != SessionStatus::Scheduled {
            return Err(AppError::conflict(
                "already_started",
                "The schedule and capacity can only change before the session starts.",
            ));
        }
        let mut next = self.facts.clone();
        if let Some(title) = &changes.title {
            next.title = validate_title(title)?;
        }
        if let Some(description) = &changes.description {
            if let Some(text) = description {
                validate_description(text)?;
            }
            next.description = description.clone();
        }
        if let Some(start) = changes.scheduled_start_time.filter(|start| *start != next.scheduled_start) {
            validate_start_not_past(start, now)?;
        }
        next.scheduled_start = changes.scheduled_start_time.unwrap_or(next.scheduled_start);
        next.scheduled_end = changes.scheduled_end_time.unwrap_or(next.scheduled_end);
        if let Some(max) = changes.max_attendees {
            next.max_attendees = max;
        }
        validate_schedule(next.scheduled_start, next.scheduled_end, next.max_attendees)?;
        if let Some(url) = &changes.recording_url {
            if let Some(url) = url {
                input::single_line("recordingUrl", url)?;
                let web = url.starts_with("https://") || url.starts_with("http://");
                if !web || url.len() > MAX_URL_BYTES {
                    return Err(AppError::bad_request(
                        "invalid_recording_url",
                        "The recording link must be an http(s) URL.",
                    ));
                }
            }
            next.recording_url = url.clone();
        }
        self.facts = next;
        Ok(())
    }

    pub fn start(&mut self, now: DateTime<Utc>) -> Result<(), InvalidTransition> {
        self.transition(SessionStatus::Active, &[SessionStatus::Scheduled])?;
        self.facts.actual_start = Some(now);
        Ok(())
    }

    /// Ends the session; everyone still present is sent out.
    pub fn end(&mut self, now: DateTime<Utc>) -> Result<Vec<Uuid>, InvalidTransition> {
        self.transition(SessionStatus::Ended, &[SessionStatus::Active])?;
        self.facts.actual_end = Some(now);
        Ok(std::mem::take(&mut self.participants).into_keys().collect())
    }

    pub fn cancel(&mut self) -> Result<Vec<Uuid>, InvalidTransition> {
        self.transition(SessionStatus::Cancelled, &[SessionStatus::Scheduled])?;
        Ok(std::mem::take(&mut self.participants).into_keys().collect())
    }

    fn transition(&mut self, to: SessionStatus, allowed_from: &[SessionStatus]) -> Result<(), InvalidTransition> {
        if !allowed_from.contains(&self.facts.status) {
            return Err(InvalidTransition { from: self.facts.status, to });
        }
        self.facts.status = to;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(hour: u32, minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 24, hour, minute, 0).unwrap()
    }

    fn room(max_attendees: Option<i32>) -> (LiveSessionRoom, Uuid) {
        let instructor = Uuid::new_v4();
        let facts = SessionFacts {
            id: Uuid::new_v4(),
            course_id: Uuid::new_v4(),
            instructor_id: instructor,
            instructor_name: "Grace".into(),
            chat_room_id: Uuid::new_v4(),
            title: "Rust 101".into(),
            description: None,
            status: SessionStatus::Scheduled,
            scheduled_start: at(14, 0),
            scheduled_end: at(15, 0),
            actual_start: None,
            actual_end: None,
            max_attendees,
            recording_url: None,
        };
        (LiveSessionRoom::new(facts, Duration::minutes(5)), instructor)
    }

    fn student(name: &str) -> Joiner {
        Joiner { user_id: Uuid::new_v4(), name: name.into(), role: Role::Student }
    }

    #[test]
    fn students_join_from_five_minutes_before_the_start() {
        let (mut room, _) = room(None);
        let ada = student("Ada");
        assert_eq!(room.join(&ada, Uuid::new_v4(), at(13, 54)), Err(JoinRefusal::NotOpenYet { opens_at: at(13, 55) }));
        assert_eq!(room.join(&ada, Uuid::new_v4(), at(13, 55)), Ok(Admission::Entered));
    }

    #[test]
    fn the_instructor_joins_any_time_and_is_marked_as_such() {
        let (mut room, instructor) = room(None);
        let joiner = Joiner { user_id: instructor, name: "Grace".into(), role: Role::Instructor };
        assert_eq!(room.join(&joiner, Uuid::new_v4(), at(9, 0)), Ok(Admission::Entered));
        assert_eq!(room.participants().next().map(|p| p.role), Some(Role::Instructor));
        assert_eq!(room.attendee_count(), 0, "the instructor takes no seat");
    }

    #[test]
    fn capacity_counts_people_not_tabs_and_rejoins_are_free() {
        let (mut room, _) = room(Some(1));
        let ada = student("Ada");
        let first_tab = Uuid::new_v4();
        assert_eq!(room.join(&ada, first_tab, at(14, 0)), Ok(Admission::Entered));
        assert_eq!(room.join(&ada, Uuid::new_v4(), at(14, 1)), Ok(Admission::AnotherTab));
        assert_eq!(room.attendee_count(), 1);
        assert_eq!(room.join(&student("Bob"), Uuid::new_v4(), at(14, 2)), Err(JoinRefusal::Full { capacity: 1 }));
    }

    #[test]
    fn a_person_leaves_when_their_last_tab_closes() {
        let (mut room, _) = room(None);
        let ada = student("Ada");
        let (tab_a, tab_b) = (Uuid::new_v4(), Uuid::new_v4());
        room.join(&ada, tab_a, at(14, 0)).unwrap();
        room.join(&ada, tab_b, at(14, 0)).unwrap();
        assert!(room.holds(ada.user_id, tab_b));
        assert!(!room.leave(ada.user_id, tab_a));
        assert!(room.is_present(ada.user_id));
        assert!(!room.holds(ada.user_id, tab_a), "that tab is gone");
        assert!(room.leave(ada.user_id, tab_b));
        assert!(room.is_empty());
    }

    #[test]
    fn a_restored_person_skips_the_checks_but_counts() {
        let (mut room, _) = room(Some(1));
        let ada = student("Ada");
        room.restore(&ada, Uuid::new_v4(), at(9, 0));
        assert!(room.is_present(ada.user_id));
        assert_eq!(room.join(&student("Bob"), Uuid::new_v4(), at(14, 0)), Err(JoinRefusal::Full { capacity: 1 }));
    }

    #[test]
    fn edits_are_checked_and_the_schedule_freezes_at_the_start() {
        let (mut room, _) = room(None);
        let bad = SessionChanges { scheduled_end_time: Some(at(13, 0)), ..Default::default() };
        assert_eq!(room.apply_changes(&bad, at(12, 0)).unwrap_err().code(), "invalid_schedule");
        assert_eq!(room.facts.scheduled_end, at(15, 0), "a refused edit changes nothing");
        let good =
            SessionChanges { title: Some(" Lifetimes ".into()), max_attendees: Some(Some(3)), ..Default::default() };
        room.apply_changes(&good, at(12, 0)).unwrap();
        assert_eq!((room.facts.title.as_str(), room.facts.max_attendees), ("Lifetimes", Some(3)));
        room.start(at(14, 0)).unwrap();
        let late = SessionChanges { max_attendees: Some(None), ..Default::default() };
        assert_eq!(room.apply_changes(&late, at(14, 0)).unwrap_err().code(), "already_started");
        let link = SessionChanges { recording_url: Some(Some("https://example.com/rec".into())), ..Default::default() };
        room.apply_changes(&link, at(14, 0)).unwrap();
        let not_a_link =
            SessionChanges { recording_url: Some(Some("javascript:alert(1)".into())), ..Default::default() };
        assert_eq!(room.apply_changes(&not_a_link, at(14, 0)).unwrap_err().code(), "invalid_recording_url");
    }

    #[test]
    fn a_start_may_not_move_into_the_past() {
        let (mut room, _) = room(None);
        let now = at(13, 0);
        let back = SessionChanges { scheduled_start_time: Some(at(12, 58)), ..Default::default() };
        assert_eq!(room.apply_changes(&back, now).unwrap_err().code(), "start_in_past");
        assert_eq!(room.facts.scheduled_start, at(14, 0), "a refused edit changes nothing");
        let within_grace = SessionChanges { scheduled_start_time: Some(at(12, 59)), ..Default::default() };
        room.apply_changes(&within_grace, now).unwrap();
        let exactly_now = SessionChanges { scheduled_start_time: Some(now), ..Default::default() };
        room.apply_changes(&exactly_now, now).unwrap();
        // Later, a start that has passed may be sent back unchanged with other edits.
        let same =
            SessionChanges { scheduled_start_time: Some(now), title: Some("Renamed".into()), ..Default::default() };
        room.apply_changes(&same, at(13, 30)).unwrap();
        assert!(validate_start_not_past(at(12, 59), now).is_ok());
        assert_eq!(validate_start_not_past(at(12, 58), now).unwrap_err().code(), "start_in_past");
    }

    #[test]
    fn status_moves_forward_only() {
        let (mut room, _) = room(None);
        assert!(room.end(at(14, 0)).is_err(), "a scheduled session cannot end");
        room.start(at(14, 0)).unwrap();
        assert_eq!(room.facts.actual_start, Some(at(14, 0)));
        assert!(room.cancel().is_err(), "an active session cannot be cancelled");
        room.join(&student("Ada"), Uuid::new_v4(), at(14, 5)).unwrap();
        let sent_out = room.end(at(15, 0)).unwrap();
        assert_eq!(sent_out.len(), 1);
        assert!(room.is_empty());
        assert_eq!(
            room.check_join(Uuid::new_v4(), Role::Student, at(15, 1)),
            Err(JoinRefusal::Over(SessionStatus::Ended))
        );
        assert_eq!(
            room.start(at(15, 2)),
            Err(InvalidTransition { from: SessionStatus::Ended, to: SessionStatus::Active })
        );
    }
}
