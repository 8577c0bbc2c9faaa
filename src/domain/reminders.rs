//! When students hear about a session: from 15 minutes before, from 5
//! minutes before ("join now available"), each saying the time really left,
//! and at the start; and when an active session that
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

    /// The notification's title, with the time really left before
    /// `scheduled_start` at `now` (the reminder may be sent anywhere in its
    /// window, and a scheduler that was down sends it late in the window).
    pub fn title(self, session_title: &str, scheduled_start: DateTime<Utc>, now: DateTime<Utc>) -> String {
        match self {
            Reminder::StartsIn15 => format!("{session_title} starts in {}", time_left(scheduled_start - now)),
            Reminder::StartsIn5 => {
                format!("{session_title} starts in {}: join now available", time_left(scheduled_start - now))
            }
            Reminder::Started => format!("{session_title} has started, join now"),
        }
    }
}

/// "6 minutes", "1 minute": whole minutes left, rounded up (5 min 30 s left
/// reads "6 minutes", never less time than there is); at least 1.
pub fn time_left(left: Duration) -> String {
    let minutes = ((left.num_seconds().max(0) + 59) / 60).max(1);
    if minutes == 1 {
        "1 minute".to_string()
    } else {
        format!("{minutes} minutes")
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
    fn a_reminder_says_the_time_really_left() {
        use crate::clock::{Clock, ManualClock};
        let start = at(14, 0);
        let clock = ManualClock::new(at(13, 54));
        let due = due_reminder(SessionStatus::Scheduled, start, None, clock.now()).unwrap();
        assert_eq!(due, Reminder::StartsIn15);
        assert_eq!(due.title("Rust 101", start, clock.now()), "Rust 101 starts in 6 minutes");
        clock.advance(Duration::seconds(30));
        assert_eq!(due.title("Rust 101", start, clock.now()), "Rust 101 starts in 6 minutes", "rounded up");
        assert_eq!(Reminder::StartsIn15.title("Rust 101", start, at(13, 45)), "Rust 101 starts in 15 minutes");
        clock.set(at(13, 59));
        let due = due_reminder(SessionStatus::Scheduled, start, None, clock.now()).unwrap();
        assert_eq!(due.title("Rust 101", start, clock.now()), "Rust 101 starts in 1 minute: join now available");
        assert_eq!(Reminder::Started.title("Rust 101", start, at(14, 3)), "Rust 101 has started, join now");
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
