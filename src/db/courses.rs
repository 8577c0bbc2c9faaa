//! Courses and enrollments.

use diesel::prelude::*;

use crate::db::models::{CourseRow, EnrollmentRow};
use crate::db::schema::{courses, enrollments};
use crate::db::AnyConnection;

pub fn insert(conn: &mut AnyConnection, course: &CourseRow) -> QueryResult<()> {
    diesel::insert_into(courses::table).values(course).execute(conn).map(|_| ())
}

/// The course with this join code (in its stored form), if any.
pub fn find_by_code(conn: &mut AnyConnection, code: &str) -> QueryResult<Option<CourseRow>> {
    courses::table.filter(courses::join_code.eq(code)).select(CourseRow::as_select()).first(conn).optional()
}

pub fn find(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<CourseRow>> {
    courses::table.find(id).select(CourseRow::as_select()).first(conn).optional()
}

/// Courses a user teaches or is enrolled in, oldest first.
pub fn list_for_user(conn: &mut AnyConnection, user_id: &str) -> QueryResult<Vec<CourseRow>> {
    let enrolled = enrollments::table.filter(enrollments::user_id.eq(user_id)).select(enrollments::course_id);
    courses::table
        .filter(courses::instructor_id.eq(user_id).or(courses::id.eq_any(enrolled)))
        .order((courses::created_at.asc(), courses::id.asc()))
        .select(CourseRow::as_select())
        .load(conn)
}

/// Enrolls; true if the enrollment is new, false if it already existed.
/// (Check then insert: ON CONFLICT is not in diesel's multi-backend dialect;
/// the persistence actor runs this inside a transaction.)
pub fn enroll(conn: &mut AnyConnection, enrollment: &EnrollmentRow) -> QueryResult<bool> {
    if is_enrolled(conn, &enrollment.course_id, &enrollment.user_id)? {
        return Ok(false);
    }
    diesel::insert_into(enrollments::table).values(enrollment).execute(conn)?;
    Ok(true)
}

pub fn is_enrolled(conn: &mut AnyConnection, course_id: &str, user_id: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        enrollments::table.filter(enrollments::course_id.eq(course_id)).filter(enrollments::user_id.eq(user_id)),
    ))
    .get_result(conn)
}

/// Students enrolled in a course.
pub fn enrolled_user_ids(conn: &mut AnyConnection, course_id: &str) -> QueryResult<Vec<String>> {
    enrollments::table.filter(enrollments::course_id.eq(course_id)).select(enrollments::user_id).load(conn)
}

/// The students enrolled in a course with their names: `(user id, name)`.
pub fn enrolled_students(conn: &mut AnyConnection, course_id: &str) -> QueryResult<Vec<(String, String)>> {
    use crate::db::schema::users;
    enrollments::table
        .inner_join(users::table)
        .filter(enrollments::course_id.eq(course_id))
        .select((users::id, users::name))
        .load(conn)
}
