//! Office-hours figures for the instructor, per day, from the stored
//! entries: how many were helped, how long they waited, how long help took.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};

/// One helped entry's times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HelpRecord {
    pub joined_at: DateTime<Utc>,
    pub admitted_at: DateTime<Utc>,
    pub completed_at: DateTime<Utc>,
}

/// One day's figures (by the UTC day of admission).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayFigures {
    pub date: NaiveDate,
    pub helped: usize,
    pub median_wait_secs: i64,
    pub p90_wait_secs: i64,
    pub median_help_secs: i64,
}

/// The figures of each day with someone helped, oldest first.
pub fn daily(records: &[HelpRecord]) -> Vec<DayFigures> {
    let mut days: BTreeMap<NaiveDate, (Vec<i64>, Vec<i64>)> = BTreeMap::new();
    for record in records {
        let (waits, helps) = days.entry(record.admitted_at.date_naive()).or_default();
        waits.push((record.admitted_at - record.joined_at).num_seconds().max(0));
        helps.push((record.completed_at - record.admitted_at).num_seconds().max(0));
    }
    days.into_iter()
        .map(|(date, (mut waits, mut helps))| {
            waits.sort_unstable();
            helps.sort_unstable();
            DayFigures {
                date,
                helped: waits.len(),
                median_wait_secs: percentile(&waits, 50),
                p90_wait_secs: percentile(&waits, 90),
                median_help_secs: percentile(&helps, 50),
            }
        })
        .collect()
}

/// The nearest-rank percentile of sorted values (0 for none).
fn percentile(sorted: &[i64], percent: usize) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (percent * sorted.len()).div_ceil(100).max(1);
    sorted[rank - 1]
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    fn record(day: u32, wait_min: i64, help_min: i64) -> HelpRecord {
        let joined_at =
            DateTime::parse_from_rfc3339(&format!("2026-11-{day:02}T10:00:00Z")).unwrap().with_timezone(&Utc);
        let admitted_at = joined_at + Duration::minutes(wait_min);
        HelpRecord { joined_at, admitted_at, completed_at: admitted_at + Duration::minutes(help_min) }
    }

    #[test]
    fn each_day_gets_its_count_median_and_p90() {
        let mut records: Vec<HelpRecord> = (1..=10).map(|wait| record(2, wait, 4)).collect();
        records.push(record(1, 3, 10));
        let days = daily(&records);
        assert_eq!(days.len(), 2);
        assert_eq!(days[0].date.to_string(), "2026-11-01");
        assert_eq!((days[0].helped, days[0].median_wait_secs, days[0].p90_wait_secs), (1, 180, 180));
        assert_eq!(days[0].median_help_secs, 600);
        assert_eq!(days[1].helped, 10);
        assert_eq!(days[1].median_wait_secs, 5 * 60, "nearest rank: the 5th of 10");
        assert_eq!(days[1].p90_wait_secs, 9 * 60);
        assert_eq!(days[1].median_help_secs, 4 * 60);
    }

    #[test]
    fn no_records_give_no_days() {
        assert!(daily(&[]).is_empty());
    }
}
