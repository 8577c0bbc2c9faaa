//! Attendance of a live session in numbers: who of the course's students
//! came, for how long, and who never came. Pure: the caller reads the rows.

use std::collections::HashSet;

use serde::Serialize;
use uuid::Uuid;

/// A student of the course who never joined the session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Absentee {
    pub user_id: Uuid,
    pub name: String,
}

/// The summary of a session's attendance.
#[derive(Debug, Clone, PartialEq)]
pub struct Attendance {
    /// Students who came at least once (the instructor, and anyone else who
    /// leads it, not counted).
    pub attendee_count: usize,
    /// Their time present, in minutes, to a tenth.
    pub total_minutes: f64,
    /// `total_minutes` over `attendee_count`, to a tenth; 0 when nobody came.
    pub average_minutes: f64,
    /// Students enrolled in the course now.
    pub enrolled_count: usize,
    /// Enrolled students who never joined, by name.
    pub absentees: Vec<Absentee>,
}

/// Sums up attendance: `present` are the people who joined with their
/// seconds present, `leaders` those not counted as students (the
/// instructor), `enrolled` the course's students with their names.
pub fn summarize(present: &[(Uuid, i64)], leaders: &[Uuid], enrolled: &[(Uuid, String)]) -> Attendance {
    let students: Vec<&(Uuid, i64)> = present.iter().filter(|(id, _)| !leaders.contains(id)).collect();
    let came: HashSet<Uuid> = students.iter().map(|(id, _)| *id).collect();
    let total_minutes = students.iter().map(|(_, seconds)| (*seconds).max(0) as f64).sum::<f64>() / 60.0;
    let average_minutes = if students.is_empty() { 0.0 } else { total_minutes / students.len() as f64 };
    let mut absentees: Vec<Absentee> = enrolled
        .iter()
        .filter(|(id, _)| !came.contains(id) && !leaders.contains(id))
        .map(|(id, name)| Absentee { user_id: *id, name: name.clone() })
        .collect();
    absentees.sort_by(|a, b| a.name.to_lowercase().cmp(&b.name.to_lowercase()).then(a.user_id.cmp(&b.user_id)));
    Attendance {
        attendee_count: students.len(),
        total_minutes: tenth(total_minutes),
        average_minutes: tenth(average_minutes),
        enrolled_count: enrolled.len(),
        absentees,
    }
}

/// One CSV field (RFC 4180): quoted when it holds a comma, a quote or a line
/// break, quotes doubled; a text a spreadsheet would run as a formula
/// (starting with `=`, `+`, `-`, `@`, a tab or a carriage return) gets a
/// leading `'`, so a student's name cannot become a formula in the
/// instructor's spreadsheet.
pub fn csv_field(text: &str) -> String {
    let guarded =
        if text.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{text}") } else { text.to_string() };
    if guarded.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

/// A CSV line of fields, ended by CRLF.
pub fn csv_line<S: AsRef<str>>(fields: &[S]) -> String {
    let mut line = fields.iter().map(|field| csv_field(field.as_ref())).collect::<Vec<_>>().join(",");
    line.push_str("\r\n");
    line
}

fn tenth(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn students_are_counted_the_instructor_is_not_and_absentees_are_listed_by_name() {
        let (grace, ada, bob, cleo, dan) =
            (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let enrolled =
            [(ada, "Ada".to_string()), (bob, "bob".to_string()), (cleo, "Cleo".to_string()), (dan, "Alan".to_string())];
        let present = [(grace, 3600), (ada, 90), (cleo, 30)];
        let summary = summarize(&present, &[grace], &enrolled);
        assert_eq!(summary.attendee_count, 2, "Ada and Cleo; not Grace");
        assert_eq!((summary.total_minutes, summary.average_minutes), (2.0, 1.0));
        assert_eq!(summary.enrolled_count, 4);
        let names: Vec<&str> = summary.absentees.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["Alan", "bob"], "by name, case aside");
    }

    #[test]
    fn csv_fields_are_quoted_and_formulas_are_defused() {
        assert_eq!(csv_field("Ada"), "Ada");
        assert_eq!(csv_field("Lovelace, Ada"), "\"Lovelace, Ada\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_field("-1"), "'-1");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_line(&["a", "b,c", ""]), "a,\"b,c\",\r\n");
    }

    #[test]
    fn nobody_came() {
        let ada = Uuid::new_v4();
        let summary = summarize(&[], &[], &[(ada, "Ada".into())]);
        assert_eq!((summary.attendee_count, summary.total_minutes, summary.average_minutes), (0, 0.0, 0.0));
        assert_eq!(summary.absentees.len(), 1);
    }
}
