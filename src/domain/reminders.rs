//! When students hear about a session: 15 minutes before, 5 minutes before
//! ("join now available") and at the start; and when an active session that
//! outlived its schedule is ended for the instructor.

use chrono::{DateTime, Duration, Utc};

use crate::domain::live_session::SessionStatus;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reminder {
    StartsIn15,
    StartsIn5,
    Started,
}

impl Reminder {
    /// Part of the notification's dedupe key: one of each per person and session.
    pub fn key(self) -> &'static str {
        match self {
            Reminder::StartsIn15 => "15min",
            Reminder::StartsIn5 => "5min",
            Reminder::Started => "started",
        }
    }

    pub fn title(self, session_title: &str) -> String {
        match self {
            Reminder::StartsIn15 => format!("{session_title} starts in 15 minutes"),
            Reminder::StartsIn5 => format!("{session_title}: join now available"),
            Reminder::Started => format!("{session_title} has started, join now"),
        }
    }
}

/// How long after the start the "has started" reminder is still worth sending.
pub const STARTED_REMINDER_WINDOW: Duration = Duration::minutes(15);

/// The reminder due now, if any. Each window closes when the next opens, so
/// a scheduler that was down never sends a stale reminder late.
pub fn due_reminder(
    status: SessionStatus,
    scheduled_start: DateTime<Utc>,
    actual_start: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<Reminder> {
    match status {
        SessionStatus::Scheduled => {
            let until_start = scheduled_start - now;
            if until_start > Duration::minutes(15) || until_start <= Duration::zero() {
                None
            } else if until_start > Duration::minutes(5) {
                Some(Reminder::StartsIn15)
            } else {
                Some(Reminder::StartsIn5)
            }
        }
        SessionStatus::Active => {
            let started = actual_start.unwrap_or(scheduled_start);
            (now >= started && now - started < STARTED_REMINDER_WINDOW).then_some(Reminder::Started)
        }
        SessionStatus::Ended | SessionStatus::Cancelled => None,
    }
}

/// The reminder due now for a group study session: it has no start button,
/// so it starts on schedule.
pub fn due_group_reminder(scheduled_start: DateTime<Utc>, now: DateTime<Utc>) -> Option<Reminder> {
    let status = if now < scheduled_start { SessionStatus::Scheduled } else { SessionStatus::Active };
    due_reminder(status, scheduled_start, None, now)
}

/// Whether an active session has run past its scheduled end by more than `grace`.
pub fn overdue(status: SessionStatus, scheduled_end: DateTime<Utc>, now: DateTime<Utc>, grace: Duration) -> bool {
    status == SessionStatus::Active && now > scheduled_end + grace
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(hour: u32, minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 24, hour, minute, 0).unwrap()
    }

    #[test]
    fn each_reminder_has_its_window() {
        let start = at(14, 0);
        let due = |now| due_reminder(SessionStatus::Scheduled, start, None, now);
        assert_eq!(due(at(13, 44)), None);
        assert_eq!(due(at(13, 45)), Some(Reminder::StartsIn15));
        assert_eq!(due(at(13, 54)), Some(Reminder::StartsIn15));
        assert_eq!(due(at(13, 55)), Some(Reminder::StartsIn5));
        assert_eq!(due(at(14, 0)), None, "not started yet by the instructor: no 'has started'");
        let started = |now| due_reminder(SessionStatus::Active, start, Some(at(14, 2)), now);
        assert_eq!(started(at(14, 2)), Some(Reminder::Started));
        assert_eq!(started(at(14, 17)), None, "too late to be useful");
        assert_eq!(due_reminder(SessionStatus::Cancelled, start, None, at(13, 50)), None);
    }

    #[test]
    fn a_group_session_is_reminded_on_its_schedule() {
        let start = at(14, 0);
        assert_eq!(due_group_reminder(start, at(13, 40)), None);
        assert_eq!(due_group_reminder(start, at(13, 50)), Some(Reminder::StartsIn15));
        assert_eq!(due_group_reminder(start, at(13, 57)), Some(Reminder::StartsIn5));
        assert_eq!(due_group_reminder(start, at(14, 0)), Some(Reminder::Started));
        assert_eq!(due_group_reminder(start, at(14, 14)), Some(Reminder::Started));
        assert_eq!(due_group_reminder(start, at(14, 20)), None);
    }

    #[test]
    fn only_active_sessions_past_end_and_grace_are_overdue() {
        let end = at(15, 0);
        let grace = Duration::minutes(30);
        assert!(!overdue(SessionStatus::Active, end, at(15, 30), grace));
        assert!(overdue(SessionStatus::Active, end, at(15, 31), grace));
        assert!(!overdue(SessionStatus::Scheduled, end, at(18, 0), grace));
    }
}
