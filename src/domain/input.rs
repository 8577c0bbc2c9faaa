//! Checks for text and times that come from outside, one rule each, the
//! same on both databases: PostgreSQL refuses a NUL in text and years
//! outside its range (with a 500, if nothing stops them first), SQLite
//! stores anything. Every field a person fills in goes through one of these.

use chrono::{DateTime, Datelike, Utc};

use crate::error::AppError;

/// Earliest and latest year a time may have (RFC 3339 years have four digits).
pub const EARLIEST_YEAR: i32 = 1900;
pub const LATEST_YEAR: i32 = 9999;

/// A one-line text (a name, a title, an email, a status line): no control
/// characters at all.
pub fn single_line(field: &str, text: &str) -> Result<(), AppError> {
    if text.chars().any(char::is_control) {
        return Err(invalid_text(field, "control characters (line breaks, tabs or NUL)"));
    }
    Ok(())
}

/// A text that may span lines (a message, a description): line breaks and
/// tabs, but no other control character.
pub fn multi_line(field: &str, text: &str) -> Result<(), AppError> {
    if text.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
        return Err(invalid_text(field, "control characters other than line breaks and tabs (NUL, for one)"));
    }
    Ok(())
}

fn invalid_text(field: &str, what: &str) -> AppError {
    AppError::bad_request("invalid_text", format!("{field} may not contain {what}."))
}

/// A time between the years [`EARLIEST_YEAR`] and [`LATEST_YEAR`].
pub fn time(field: &str, at: DateTime<Utc>) -> Result<(), AppError> {
    if !(EARLIEST_YEAR..=LATEST_YEAR).contains(&at.year()) {
        return Err(AppError::bad_request(
            "invalid_time",
            format!("{field} must be between the years {EARLIEST_YEAR} and {LATEST_YEAR}."),
        ));
    }
    Ok(())
}

/// Reads a field that may be absent (outer `None`: leave it alone) or `null`
/// (`Some(None)`: clear it), which plain `Option` cannot tell apart. Use
/// with `#[serde(default, deserialize_with = "...")]`.
pub fn absent_or_null<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    T: serde::Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    serde::Deserialize::deserialize(deserializer).map(Some)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn one_line_texts_refuse_every_control_character() {
        assert!(single_line("name", "Ada Lovelace — é ✓").is_ok());
        for bad in ["A\u{0}da", "Ada\n", "A\tda", "\u{7}"] {
            assert_eq!(single_line("name", bad).unwrap_err().code(), "invalid_text", "{bad:?}");
        }
    }

    #[test]
    fn texts_of_several_lines_keep_breaks_and_tabs_only() {
        assert!(multi_line("message", "line one\r\nline two\tindented").is_ok());
        assert_eq!(multi_line("message", "nul\u{0}").unwrap_err().code(), "invalid_text");
        assert_eq!(multi_line("message", "bell\u{7}").unwrap_err().code(), "invalid_text");
    }

    #[test]
    fn times_stay_within_four_digit_years() {
        assert!(time("from", Utc.with_ymd_and_hms(2026, 12, 2, 0, 0, 0).unwrap()).is_ok());
        assert!(time("from", Utc.with_ymd_and_hms(EARLIEST_YEAR, 1, 1, 0, 0, 0).unwrap()).is_ok());
        assert!(time("to", Utc.with_ymd_and_hms(LATEST_YEAR, 12, 31, 23, 59, 59).unwrap()).is_ok());
        let ancient = Utc.with_ymd_and_hms(-9999, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(time("from", ancient).unwrap_err().code(), "invalid_time");
        let far = Utc.with_ymd_and_hms(10_000, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(time("to", far).unwrap_err().code(), "invalid_time");
    }
}
