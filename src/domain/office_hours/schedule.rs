//! Weekly office-hour slots. A slot is a wall-clock time on a weekday in an
//! IANA time zone, kept as such: its moments in UTC are worked out for each
//! date, so a daylight-saving change moves nothing on the instructor's
//! wall clock. The zone rules come from `chrono-tz` (the IANA database).

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use uuid::Uuid;

use crate::error::{AppError, AppResult};

/// How far ahead two slots are compared for overlap: a year of weeks, so
/// every daylight-saving change of either zone is seen once.
const OVERLAP_HORIZON_DAYS: i64 = 371;
/// How far ahead the next opening is looked for: every weekday once.
const NEXT_OPENING_HORIZON_DAYS: i64 = 8;

/// How students reach the instructor during a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotMode {
    /// Students wait in a queue and are admitted into private rooms.
    Queue,
    /// One open room any of the instructor's students may enter.
    DropIn,
}

impl SlotMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SlotMode::Queue => "queue",
            SlotMode::DropIn => "drop-in",
        }
    }

    pub fn parse(text: &str) -> AppResult<SlotMode> {
        match text {
            "queue" => Ok(SlotMode::Queue),
            "drop-in" => Ok(SlotMode::DropIn),
            _ => Err(AppError::bad_request("invalid_mode", "mode must be queue or drop-in.")),
        }
    }
}

/// One weekly slot.
#[derive(Debug, Clone, PartialEq)]
pub struct Slot {
    pub id: Uuid,
    /// 0 = Sunday, as the contract counts.
    pub day_of_week: u32,
    pub start: NaiveTime,
    pub end: NaiveTime,
    pub zone: Tz,
    pub mode: SlotMode,
    /// An inactive slot is kept but neither opens anything nor overlaps.
    pub active: bool,
}

/// One occurrence of a slot, in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Occurrence {
    pub slot_id: Uuid,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Occurrence {
    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        self.start <= at && at < self.end
    }
}

/// `0` to `6`, Sunday first.
pub fn parse_day(day: i32) -> AppResult<u32> {
    u32::try_from(day)
        .ok()
        .filter(|day| *day <= 6)
        .ok_or_else(|| invalid_schedule("dayOfWeek must be 0 (Sunday) to 6."))
}

/// A wall-clock time as `HH:MM`.
pub fn parse_time(field: &str, text: &str) -> AppResult<NaiveTime> {
    if text.len() != 5 {
        return Err(invalid_schedule(&format!("{field} must be a time as HH:MM.")));
    }
    NaiveTime::parse_from_str(text, "%H:%M").map_err(|_| invalid_schedule(&format!("{field} must be a time as HH:MM.")))
}

pub fn format_time(time: NaiveTime) -> String {
    time.format("%H:%M").to_string()
}

/// An IANA zone name such as `Europe/Paris` (or `UTC`).
pub fn parse_zone(text: &str) -> AppResult<Tz> {
    text.parse::<Tz>().map_err(|_| {
        AppError::bad_request("invalid_time_zone", "timeZone must be an IANA time zone name, such as Europe/Paris.")
    })
}

/// A slot lies within one day: its end is after its start.
pub fn validate_times(start: NaiveTime, end: NaiveTime) -> AppResult<()> {
    if end <= start {
        return Err(invalid_schedule("endTime must be after startTime (a slot lies within one day)."));
    }
    Ok(())
}

fn invalid_schedule(message: &str) -> AppError {
    AppError::bad_request("invalid_schedule", message)
}

/// A local wall-clock time as UTC. In the hour a spring change skips, the
/// time that does not exist is read as the same time an hour later (the
/// clock jumped past it); in the hour an autumn change repeats, the first.
fn to_utc(zone: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match zone.from_local_datetime(&local) {
        LocalResult::Single(at) | LocalResult::Ambiguous(at, _) => at.with_timezone(&Utc),
        LocalResult::None => {
            let later = local + Duration::hours(1);
            zone.from_local_datetime(&later).earliest().map_or_else(|| later.and_utc(), |at| at.with_timezone(&Utc))
        }
    }
}

impl Slot {
    /// The slot on a local date, if that date is the slot's weekday.
    fn on(&self, date: NaiveDate) -> Option<Occurrence> {
        if date.weekday().num_days_from_sunday() != self.day_of_week {
            return None;
        }
        let start = to_utc(self.zone, date.and_time(self.start));
        let end = to_utc(self.zone, date.and_time(self.end));
        (end > start).then_some(Occurrence { slot_id: self.id, start, end })
    }

    /// The occurrences that end after `from`, in order, over `days` days.
    pub fn occurrences(&self, from: DateTime<Utc>, days: i64) -> impl Iterator<Item = Occurrence> + '_ {
        // A day earlier: an occurrence that began yesterday (local) may run now.
        let first = from.with_timezone(&self.zone).date_naive() - Duration::days(1);
        (0..=days + 1).filter_map(move |offset| self.on(first + Duration::days(offset))).filter(move |o| o.end > from)
    }
}

/// An instructor's slots.
#[derive(Debug, Clone, Default)]
pub struct Schedule {
    pub slots: Vec<Slot>,
}

impl Schedule {
    pub fn new(slots: Vec<Slot>) -> Self {
        Self { slots }
    }

    fn active(&self) -> impl Iterator<Item = &Slot> {
        self.slots.iter().filter(|slot| slot.active)
    }

    /// The active slot running at `now`, with its occurrence.
    pub fn running(&self, now: DateTime<Utc>) -> Option<(&Slot, Occurrence)> {
        self.active().find_map(|slot| slot.occurrences(now, 1).find(|o| o.contains(now)).map(|o| (slot, o)))
    }

    /// The next start of an active slot after `now`.
    pub fn next_start_after(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.active()
            .flat_map(|slot| slot.occurrences(now, NEXT_OPENING_HORIZON_DAYS))
            .map(|o| o.start)
            .filter(|start| *start > now)
            .min()
    }

    /// The next moment a slot starts or ends: where a manual open or close
    /// stops holding, and when the queue may open or close by itself.
    pub fn next_boundary_after(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.active()
            .flat_map(|slot| slot.occurrences(now, NEXT_OPENING_HORIZON_DAYS))
            .flat_map(|o| [o.start, o.end])
            .filter(|at| *at > now)
            .min()
    }

    /// The occurrences of the active slots that end after `from` and start
    /// less than `days` days after it, by start (a calendar's view).
    pub fn occurrences(&self, from: DateTime<Utc>, days: i64) -> Vec<(&Slot, Occurrence)> {
        let until = from + Duration::days(days);
        let mut all: Vec<(&Slot, Occurrence)> = self
            .active()
            .flat_map(|slot| slot.occurrences(from, days).map(move |o| (slot, o)))
            .filter(|(_, o)| o.start < until)
            .collect();
        all.sort_by_key(|(slot, o)| (o.start, slot.id));
        all
    }

    /// The first other active slot that `candidate` would overlap at any
    /// moment of the coming year, if any.
    pub fn overlapping(&self, candidate: &Slot, now: DateTime<Utc>) -> Option<Uuid> {
        if !candidate.active {
            return None;
        }
        let mine: Vec<Occurrence> = candidate.occurrences(now, OVERLAP_HORIZON_DAYS).collect();
        self.active().filter(|slot| slot.id != candidate.id).find_map(|slot| {
            let theirs = slot.occurrences(now, OVERLAP_HORIZON_DAYS);
            intersects(&mine, theirs).then_some(slot.id)
        })
    }
}

/// Whether any interval of two sorted lists intersects one of the other.
fn intersects(mine: &[Occurrence], theirs: impl Iterator<Item = Occurrence>) -> bool {
    let mut index = 0;
    for other in theirs {
        while index < mine.len() && mine[index].end <= other.start {
            index += 1;
        }
        if index < mine.len() && mine[index].start < other.end {
            return true;
        }
    }
    false
}

/// A manual open or close, which holds until `until` (the next start or end
/// of a slot when it was made; none: until the next manual change).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ManualOverride {
    pub open: bool,
    pub until: Option<DateTime<Utc>>,
}

impl ManualOverride {
    pub fn holds_at(&self, now: DateTime<Utc>) -> bool {
        self.until.is_none_or(|until| now < until)
    }
}

/// Whether the queue is open at `now`: a manual change while it holds,
/// else whether a queue slot runs.
pub fn queue_open(schedule: &Schedule, manual: Option<ManualOverride>, now: DateTime<Utc>) -> bool {
    match manual.filter(|manual| manual.holds_at(now)) {
        Some(manual) => manual.open,
        None => schedule.running(now).is_some_and(|(slot, _)| slot.mode == SlotMode::Queue),
    }
}

/// A manual open or close made at `now`.
pub fn manual_change(schedule: &Schedule, open: bool, now: DateTime<Utc>) -> ManualOverride {
    ManualOverride { open, until: schedule.next_boundary_after(now) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    fn slot(day: u32, start: &str, end: &str, zone: &str) -> Slot {
        Slot {
            id: Uuid::new_v4(),
            day_of_week: day,
            start: parse_time("startTime", start).unwrap(),
            end: parse_time("endTime", end).unwrap(),
            zone: parse_zone(zone).unwrap(),
            mode: SlotMode::Queue,
            active: true,
        }
    }

    #[test]
    fn times_days_zones_and_modes_are_checked() {
        assert!(parse_time("t", "14:00").is_ok());
        for bad in ["24:00", "9:00", "14:00:00", "noon", ""] {
            assert_eq!(parse_time("t", bad).unwrap_err().code(), "invalid_schedule", "{bad}");
        }
        assert_eq!(parse_day(7).unwrap_err().code(), "invalid_schedule");
        assert_eq!(parse_day(-1).unwrap_err().code(), "invalid_schedule");
        assert_eq!(parse_day(0).unwrap(), 0);
        assert_eq!(parse_zone("Mars/Olympus").unwrap_err().code(), "invalid_time_zone");
        assert!(parse_zone("America/New_York").is_ok());
        assert_eq!(SlotMode::parse("walk-in").unwrap_err().code(), "invalid_mode");
        let nine = parse_time("t", "09:00").unwrap();
        assert_eq!(validate_times(nine, nine).unwrap_err().code(), "invalid_schedule");
    }

    #[test]
    fn a_slot_keeps_its_wall_clock_time_across_a_daylight_saving_change() {
        // Mondays 14:00-16:00 in New York: 18:00 UTC in summer, 19:00 UTC after
        // the change of 2026-11-01.
        let monday = slot(1, "14:00", "16:00", "America/New_York");
        let starts: Vec<_> = monday.occurrences(at("2026-10-20T00:00:00Z"), 14).map(|o| o.start).collect();
        assert_eq!(starts, vec![at("2026-10-26T18:00:00Z"), at("2026-11-02T19:00:00Z")]);
        let schedule = Schedule::new(vec![monday]);
        assert!(schedule.running(at("2026-11-02T18:30:00Z")).is_none(), "13:30 local after the change");
        assert!(schedule.running(at("2026-11-02T19:30:00Z")).is_some(), "14:30 local after the change");
        assert!(schedule.running(at("2026-10-26T18:30:00Z")).is_some(), "14:30 local before the change");
    }

    #[test]
    fn the_queue_opens_and_closes_by_the_schedule_across_the_change() {
        let schedule = Schedule::new(vec![slot(1, "14:00", "16:00", "America/New_York")]);
        // Before the change: open 18:00-20:00 UTC; after: 19:00-21:00 UTC.
        assert!(!queue_open(&schedule, None, at("2026-10-26T17:59:00Z")));
        assert!(queue_open(&schedule, None, at("2026-10-26T18:00:00Z")));
        assert!(!queue_open(&schedule, None, at("2026-10-26T20:00:00Z")));
        assert!(!queue_open(&schedule, None, at("2026-11-02T18:30:00Z")));
        assert!(queue_open(&schedule, None, at("2026-11-02T20:59:00Z")));
        assert!(!queue_open(&schedule, None, at("2026-11-02T21:00:00Z")));
        assert_eq!(schedule.next_start_after(at("2026-10-27T00:00:00Z")), Some(at("2026-11-02T19:00:00Z")));
    }

    #[test]
    fn a_time_the_spring_change_skips_is_read_an_hour_later() {
        // Sunday 2027-03-14 02:30 does not exist in New York.
        let early = slot(0, "02:30", "04:00", "America/New_York");
        let first = early.occurrences(at("2027-03-13T00:00:00Z"), 3).next().unwrap();
        assert_eq!(first.start, at("2027-03-14T07:30:00Z"), "03:30 EDT");
        assert_eq!(first.end, at("2027-03-14T08:00:00Z"), "04:00 EDT");
    }

    #[test]
    fn a_manual_change_holds_until_the_next_start_or_end_of_a_slot() {
        let schedule = Schedule::new(vec![slot(1, "14:00", "16:00", "UTC")]);
        let monday_noon = at("2026-11-30T12:00:00Z");
        let opened = manual_change(&schedule, true, monday_noon);
        assert_eq!(opened.until, Some(at("2026-11-30T14:00:00Z")));
        assert!(queue_open(&schedule, Some(opened), monday_noon));
        // The slot takes over at its start, and closes at its end.
        assert!(queue_open(&schedule, Some(opened), at("2026-11-30T15:00:00Z")));
        assert!(!queue_open(&schedule, Some(opened), at("2026-11-30T16:00:00Z")));
        // Closing during the slot holds until its end, then the schedule rules.
        let closed = manual_change(&schedule, false, at("2026-11-30T14:30:00Z"));
        assert!(!queue_open(&schedule, Some(closed), at("2026-11-30T15:59:00Z")));
        assert!(queue_open(&schedule, Some(closed), at("2026-12-07T14:00:00Z")));
        // Without any slot a manual open holds until closed by hand.
        let none = Schedule::default();
        let opened = manual_change(&none, true, monday_noon);
        assert_eq!(opened.until, None);
        assert!(queue_open(&none, Some(opened), at("2027-06-01T00:00:00Z")));
    }

    #[test]
    fn a_calendar_sees_each_active_slot_once_a_week_in_order_and_across_the_change() {
        let monday = slot(1, "14:00", "16:00", "America/New_York");
        let mut tuesday = slot(2, "09:00", "10:00", "UTC");
        let mut paused = slot(3, "09:00", "10:00", "UTC");
        paused.active = false;
        tuesday.mode = SlotMode::DropIn;
        let schedule = Schedule::new(vec![paused, tuesday.clone(), monday.clone()]);
        // Two weeks from Tuesday 2026-10-27 10:00 UTC: that Tuesday's slot is
        // over (not listed), the one two weeks on starts within the window;
        // New York's Mondays move to 19:00 UTC after the change.
        let seen: Vec<_> = schedule
            .occurrences(at("2026-10-27T10:00:00Z"), 14)
            .into_iter()
            .map(|(slot, o)| (slot.id, o.start))
            .collect();
        assert_eq!(
            seen,
            vec![
                (monday.id, at("2026-11-02T19:00:00Z")),
                (tuesday.id, at("2026-11-03T09:00:00Z")),
                (monday.id, at("2026-11-09T19:00:00Z")),
                (tuesday.id, at("2026-11-10T09:00:00Z")),
            ]
        );
        // One running now is listed (it ends after `from`).
        let running = schedule.occurrences(at("2026-11-03T09:30:00Z"), 1);
        assert_eq!(running.first().map(|(slot, o)| (slot.id, o.start)), Some((tuesday.id, at("2026-11-03T09:00:00Z"))));
    }

    #[test]
    fn a_drop_in_slot_does_not_open_the_queue() {
        let mut drop_in = slot(1, "14:00", "16:00", "UTC");
        drop_in.mode = SlotMode::DropIn;
        let schedule = Schedule::new(vec![drop_in]);
        assert!(!queue_open(&schedule, None, at("2026-11-30T15:00:00Z")));
        assert!(schedule.running(at("2026-11-30T15:00:00Z")).is_some());
    }

    #[test]
    fn overlaps_are_found_across_zones_and_only_among_active_slots() {
        let paris = slot(1, "14:00", "16:00", "Europe/Paris");
        let now = at("2026-12-01T00:00:00Z");
        let schedule = Schedule::new(vec![paris.clone()]);
        // 13:30 UTC is 14:30 in Paris in winter.
        assert_eq!(schedule.overlapping(&slot(1, "13:30", "14:00", "UTC"), now), Some(paris.id));
        // Back to back is no overlap.
        assert_eq!(schedule.overlapping(&slot(1, "16:00", "17:00", "Europe/Paris"), now), None);
        // 12:00-13:00 UTC: clear in winter (13:00-14:00 Paris), but in summer
        // Paris is UTC+2, so 12:00 UTC is 14:00 there: overlap.
        assert_eq!(schedule.overlapping(&slot(1, "12:00", "13:00", "UTC"), now), Some(paris.id));
        // Another day, or an inactive slot, never overlaps.
        assert_eq!(schedule.overlapping(&slot(2, "14:00", "16:00", "Europe/Paris"), now), None);
        let mut inactive = slot(1, "14:00", "16:00", "Europe/Paris");
        inactive.active = false;
        assert_eq!(schedule.overlapping(&inactive, now), None);
        // A slot never overlaps itself (an edit).
        assert_eq!(schedule.overlapping(&paris, now), None);
    }
}
