//! Rows as diesel reads and writes them. Ids are strings and times naive UTC
//! here; the API types convert at the edge.

use chrono::{NaiveDateTime, NaiveTime};
use diesel::prelude::*;

use crate::db::schema::*;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = users)]
pub struct UserRow {
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: String,
    pub password_hash: String,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = auth_tokens)]
pub struct AuthTokenRow {
    pub token_hash: String,
    pub user_id: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub revoked_at: Option<NaiveDateTime>,
}

/// A user's private calendar feed: the digest of the token in its address.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = calendar_feeds)]
pub struct CalendarFeedRow {
    pub user_id: String,
    pub token_hash: String,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = courses)]
pub struct CourseRow {
    pub id: String,
    pub instructor_id: String,
    pub title: String,
    pub description: Option<String>,
    pub created_at: NaiveDateTime,
    /// The short code to join it ("KM7R-Q2XD"); none for courses made outside the API.
    pub join_code: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = enrollments)]
pub struct EnrollmentRow {
    pub course_id: String,
    pub user_id: String,
    pub enrolled_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = chat_rooms)]
pub struct ChatRoomRow {
    pub id: String,
    pub name: String,
    pub room_type: String,
    pub participants_json: String,
    pub is_active: bool,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = chat_messages)]
pub struct ChatMessageRow {
    pub id: String,
    pub room_id: String,
    pub seq: i64,
    pub sender_id: String,
    pub message: String,
    pub message_type: String,
    pub client_msg_id: Option<String>,
    pub created_at: NaiveDateTime,
    pub edited_at: Option<NaiveDateTime>,
    pub deleted_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = live_sessions)]
pub struct LiveSessionRow {
    pub id: String,
    pub instructor_id: String,
    pub course_id: String,
    pub chat_room_id: String,
    pub title: String,
    pub description: Option<String>,
    pub scheduled_start_time: NaiveDateTime,
    pub scheduled_end_time: NaiveDateTime,
    pub actual_start_time: Option<NaiveDateTime>,
    pub actual_end_time: Option<NaiveDateTime>,
    pub max_attendees: Option<i32>,
    pub status: String,
    pub recording_url: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = live_session_attendees)]
pub struct AttendeeRow {
    pub session_id: String,
    pub user_id: String,
    pub joined_at: NaiveDateTime,
    pub left_at: Option<NaiveDateTime>,
    pub last_joined_at: NaiveDateTime,
    pub seconds_present: i64,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = session_questions)]
pub struct QuestionRow {
    pub id: String,
    pub session_id: String,
    pub asker_id: String,
    pub text: String,
    pub anonymous: bool,
    pub status: String,
    pub pinned: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = notifications)]
// NULL, not DEFAULT, for a field left empty: SQLite's multi-row insert takes no DEFAULT.
#[diesel(treat_none_as_null = true)]
pub struct NotificationRow {
    pub id: String,
    pub user_id: String,
    pub kind: String,
    pub title: String,
    pub body: String,
    pub data_json: Option<String>,
    pub dedupe_key: Option<String>,
    pub created_at: NaiveDateTime,
    pub read_at: Option<NaiveDateTime>,
}

/// A notification to everyone of a course or a study group, stored once
/// (`db::notifications` derives each person's view of it).
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = audience_notifications)]
pub struct AudienceNotificationRow {
    pub id: String,
    /// The course whose students it is for (exactly one of this and `group_id`).
    pub course_id: Option<String>,
    /// The study group whose members it is for.
    pub group_id: Option<String>,
    pub kind: String,
    pub title: String,
    pub body: String,
    pub data_json: Option<String>,
    /// One per subject and kind: stored once however often the scheduler runs.
    pub dedupe_key: String,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = study_groups)]
pub struct StudyGroupRow {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub course_id: Option<String>,
    pub created_by: String,
    pub chat_room_id: String,
    pub is_active: bool,
    pub max_members: Option<i32>,
    pub created_at: NaiveDateTime,
    pub visibility: String,
    /// Kept by the joins and leaves themselves (see `db::study_groups::add_member`).
    pub member_count: i32,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = study_group_members)]
pub struct StudyGroupMemberRow {
    pub group_id: String,
    pub user_id: String,
    pub role: String,
    pub joined_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = study_group_invites)]
pub struct StudyGroupInviteRow {
    pub id: String,
    pub group_id: String,
    pub user_id: String,
    pub invited_by: String,
    pub status: String,
    pub created_at: NaiveDateTime,
    pub answered_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = study_group_sessions)]
pub struct StudyGroupSessionRow {
    pub id: String,
    pub group_id: String,
    pub title: String,
    pub scheduled_start_time: NaiveDateTime,
    pub scheduled_end_time: NaiveDateTime,
    pub created_by: String,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = office_hours)]
pub struct OfficeHoursSlotRow {
    pub id: String,
    pub instructor_id: String,
    pub day_of_week: i32,
    pub start_time: NaiveTime,
    pub end_time: NaiveTime,
    pub is_active: bool,
    pub created_at: NaiveDateTime,
    /// An IANA zone name: the slot's times are wall-clock times there.
    pub time_zone: String,
    pub mode: String,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = office_hours_queue)]
pub struct QueueEntryRow {
    pub id: String,
    pub instructor_id: String,
    pub student_id: String,
    pub status: String,
    pub question: Option<String>,
    pub chat_room_id: Option<String>,
    pub joined_queue_at: NaiveDateTime,
    pub admitted_at: Option<NaiveDateTime>,
    pub completed_at: Option<NaiveDateTime>,
    pub topic: Option<String>,
    /// Order in the queue (arrival order, permuted by a defer).
    pub queue_rank: i64,
    pub deferred: bool,
    pub end_reason: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = office_hours_state, treat_none_as_null = true)]
pub struct OfficeHoursStateRow {
    pub instructor_id: String,
    pub manual_open: Option<bool>,
    pub manual_until: Option<NaiveDateTime>,
    pub opened_at: Option<NaiveDateTime>,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = office_hours_rooms)]
pub struct OfficeHoursRoomRow {
    pub room_id: String,
    pub instructor_id: String,
    /// `private` (admissions) or `drop-in`.
    pub mode: String,
    pub slot_id: Option<String>,
    pub opened_at: NaiveDateTime,
    pub closed_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = office_hours_announcements)]
pub struct AnnouncementRow {
    pub id: String,
    pub instructor_id: String,
    pub message: String,
    pub created_at: NaiveDateTime,
}
