//! Study groups' rules, free of I/O: what a group is, who may join, invite,
//! change roles or leave, and the activity figures shown on its card. The
//! REST handlers ask these functions; the tests below drive them directly.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::input;
use crate::error::{AppError, AppResult};

/// Longest group name, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// Longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 2_000;
/// Bounds of a member limit: a group of one is no group, and a limit past
/// this is no limit worth stating.
pub const MIN_MEMBER_LIMIT: i32 = 2;
pub const MAX_MEMBER_LIMIT: i32 = 10_000;
/// How many days the activity figures look back.
pub const ACTIVITY_DAYS: i64 = 7;
/// Longest group study session.
pub const MAX_SESSION_HOURS: i64 = 24;

/// A member's role in a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum GroupRole {
    /// Edits and archives the group, manages members.
    Admin,
    Member,
}

impl GroupRole {
    pub fn as_str(self) -> &'static str {
        match self {
            GroupRole::Admin => "admin",
            GroupRole::Member => "member",
        }
    }

    pub fn parse(text: &str) -> Option<GroupRole> {
        match text {
            "admin" => Some(GroupRole::Admin),
            "member" => Some(GroupRole::Member),
            _ => None,
        }
    }
}

/// Who may find and join a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// Listed in search; anyone allowed (the course's people, for a
    /// course-bound group) joins by themselves.
    Public,
    /// By invitation only.
    Private,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Private => "private",
        }
    }

    pub fn parse(text: &str) -> AppResult<Visibility> {
        match text {
            "public" => Ok(Visibility::Public),
            "private" => Ok(Visibility::Private),
            _ => Err(AppError::bad_request("invalid_visibility", "visibility is public or private.")),
        }
    }
}

/// A group's name: one line, trimmed, 1 to 100 characters.
pub fn validate_name(name: &str) -> AppResult<String> {
    input::single_line("name", name)?;
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(AppError::bad_request(
            "invalid_name",
            format!("A group's name has 1 to {MAX_NAME_CHARS} characters."),
        ));
    }
    Ok(name.to_string())
}

pub fn validate_description(description: &str) -> AppResult<()> {
    input::multi_line("description", description)?;
    if description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(AppError::bad_request(
            "description_too_long",
            format!("A description has at most {MAX_DESCRIPTION_CHARS} characters."),
        ));
    }
    Ok(())
}

pub fn validate_member_limit(limit: Option<i32>) -> AppResult<()> {
    match limit {
        Some(limit) if !(MIN_MEMBER_LIMIT..=MAX_MEMBER_LIMIT).contains(&limit) => Err(AppError::bad_request(
            "invalid_max_members",
            format!("maxMembers is between {MIN_MEMBER_LIMIT} and {MAX_MEMBER_LIMIT}, or null for no limit."),
        )),
        _ => Ok(()),
    }
}

/// A group study session's title and times: start not in the past, end
/// after it, at most a day long.
pub fn validate_session(
    title: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    now: DateTime<Utc>,
) -> AppResult<String> {
    input::single_line("title", title)?;
    input::time("scheduledStartTime", start)?;
    input::time("scheduledEndTime", end)?;
    let title = title.trim();
    if title.is_empty() || title.chars().count() > 200 {
        return Err(AppError::bad_request("invalid_title", "A title has 1 to 200 characters."));
    }
    // A minute's grace: a form filled in "now" arrives a little later.
    if start < now - Duration::minutes(1) {
        return Err(AppError::bad_request("invalid_schedule", "A study session cannot start in the past."));
    }
    if end <= start || end - start > Duration::hours(MAX_SESSION_HOURS) {
        return Err(AppError::bad_request(
            "invalid_schedule",
            format!("A study session ends after it starts, within {MAX_SESSION_HOURS} hours."),
        ));
    }
    Ok(title.to_string())
}

/// What a group is, as its rules need it.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupFacts {
    pub id: Uuid,
    pub course_id: Option<Uuid>,
    pub visibility: Visibility,
    pub max_members: Option<i32>,
    pub member_count: i32,
    pub is_active: bool,
}

impl GroupFacts {
    pub fn is_full(&self) -> bool {
        self.max_members.is_some_and(|max| self.member_count >= max)
    }
}

/// How someone stands towards a group when they ask to be let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applicant {
    /// Takes or teaches the group's course (true for a group with none).
    pub in_course: bool,
    /// Holds a pending invitation to the group.
    pub invited: bool,
}

/// Whether someone may become a member now. The member limit is checked
/// again where the member is stored, atomically, so that concurrent joins
/// cannot overshoot it.
pub fn may_join(group: &GroupFacts, applicant: Applicant) -> AppResult<()> {
    if !group.is_active {
        return Err(AppError::conflict("group_archived", "This group has been archived."));
    }
    if !applicant.in_course {
        return Err(AppError::forbidden("This group is for the people of its course."));
    }
    if group.visibility == Visibility::Private && !applicant.invited {
        return Err(AppError::forbidden("This group is private: members invite the people who join it."));
    }
    if group.is_full() {
        return Err(group_full());
    }
    Ok(())
}

pub fn group_full() -> AppError {
    AppError::conflict("group_full", "This group has reached its member limit.")
}

/// Whether someone may see a group's details (not its chat): its members,
/// and for a public group anyone who could join it.
pub fn may_view(group: &GroupFacts, role: Option<GroupRole>, in_course: bool) -> AppResult<()> {
    if role.is_some() || (group.visibility == Visibility::Public && group.is_active && in_course) {
        Ok(())
    } else {
        Err(AppError::forbidden("Only this group's members may see it."))
    }
}

/// The caller's role, or why they may not act as a member.
pub fn require_member(role: Option<GroupRole>) -> AppResult<GroupRole> {
    role.ok_or_else(|| AppError::forbidden("Only this group's members may do that."))
}

pub fn require_admin(role: Option<GroupRole>) -> AppResult<()> {
    match role {
        Some(GroupRole::Admin) => Ok(()),
        _ => Err(AppError::forbidden("Only this group's admins may do that.")),
    }
}

/// The group's people by role, as the leave and role rules need them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roster {
    pub admins: usize,
    pub members: usize,
}

/// What a member's leaving comes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Departure {
    Leaves,
    /// The last member left: the group is archived.
    LastOneOut,
}

/// Whether a member may leave (or be removed): a group never loses its
/// last admin while others remain.
pub fn may_leave(role: GroupRole, roster: Roster) -> AppResult<Departure> {
    if roster.members <= 1 {
        return Ok(Departure::LastOneOut);
    }
    if role == GroupRole::Admin && roster.admins <= 1 {
        return Err(last_admin());
    }
    Ok(Departure::Leaves)
}

/// Whether a member's role may change to `new_role`.
pub fn may_change_role(current: GroupRole, new_role: GroupRole, roster: Roster) -> AppResult<()> {
    if current == GroupRole::Admin && new_role == GroupRole::Member && roster.admins <= 1 {
        return Err(last_admin());
    }
    Ok(())
}

fn last_admin() -> AppError {
    AppError::conflict("last_admin", "A group needs an admin: make another member admin first.")
}

/// Whether `inviter` may invite someone: members invite classmates (people
/// who share a course with them), and to a course-bound group only the
/// course's people.
pub fn may_invite(
    group: &GroupFacts,
    inviter: Option<GroupRole>,
    invitee_is_member: bool,
    classmates: bool,
    invitee_in_course: bool,
) -> AppResult<()> {
    require_member(inviter)?;
    if !group.is_active {
        return Err(AppError::conflict("group_archived", "This group has been archived."));
    }
    if invitee_is_member {
        return Err(AppError::conflict("already_member", "That person is already a member."));
    }
    if !classmates || !invitee_in_course {
        return Err(AppError::new(
            actix_web::http::StatusCode::FORBIDDEN,
            "not_a_classmate",
            "You can invite people who share a course with you (and, for a course's group, that course).",
        ));
    }
    Ok(())
}

/// Messages in a day (UTC).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DayCount {
    pub date: NaiveDate,
    pub count: u32,
}

/// A group's activity, from its recent messages.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupActivity {
    /// The last `ACTIVITY_DAYS` days, oldest first, quiet days included.
    pub messages_per_day: Vec<DayCount>,
    /// People who posted within the last `ACTIVITY_DAYS` days.
    pub active_members_this_week: u32,
    pub last_activity_at: DateTime<Utc>,
}

/// Sums up messages `(sent at, sender)` of the last `ACTIVITY_DAYS` days;
/// `last_activity_at` is the newest message or, before any, the group's birth.
pub fn activity(
    messages: &[(DateTime<Utc>, Uuid)],
    created_at: DateTime<Utc>,
    last_message_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> GroupActivity {
    let today = now.date_naive();
    let first_day = today - Duration::days(ACTIVITY_DAYS - 1);
    let mut per_day: BTreeMap<NaiveDate, u32> =
        (0..ACTIVITY_DAYS).map(|offset| (first_day + Duration::days(offset), 0)).collect();
    let since = now - Duration::days(ACTIVITY_DAYS);
    let mut active = HashSet::new();
    for (at, sender) in messages {
        if let Some(count) = per_day.get_mut(&at.date_naive()) {
            *count += 1;
        }
        if *at >= since {
            active.insert(*sender);
        }
    }
    GroupActivity {
        messages_per_day: per_day.into_iter().map(|(date, count)| DayCount { date, count }).collect(),
        active_members_this_week: active.len() as u32,
        last_activity_at: last_message_at.unwrap_or(created_at).max(created_at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn group(visibility: Visibility, max_members: Option<i32>, member_count: i32) -> GroupFacts {
        GroupFacts { id: Uuid::new_v4(), course_id: None, visibility, max_members, member_count, is_active: true }
    }

    const OUTSIDER: Applicant = Applicant { in_course: true, invited: false };

    #[test]
    fn a_public_group_takes_anyone_allowed_until_it_is_full() {
        assert!(may_join(&group(Visibility::Public, Some(3), 2), OUTSIDER).is_ok());
        assert_eq!(may_join(&group(Visibility::Public, Some(3), 3), OUTSIDER).unwrap_err().code(), "group_full");
        assert!(may_join(&group(Visibility::Public, None, 9_999), OUTSIDER).is_ok());
    }

    #[test]
    fn a_private_group_takes_only_the_invited() {
        let private = group(Visibility::Private, None, 2);
        assert_eq!(may_join(&private, OUTSIDER).unwrap_err().code(), "forbidden");
        assert!(may_join(&private, Applicant { in_course: true, invited: true }).is_ok());
    }

    #[test]
    fn a_course_group_takes_only_the_course_and_an_archived_one_nobody() {
        let public = group(Visibility::Public, None, 2);
        let stranger = Applicant { in_course: false, invited: true };
        assert_eq!(may_join(&public, stranger).unwrap_err().code(), "forbidden");
        let archived = GroupFacts { is_active: false, ..public };
        assert_eq!(may_join(&archived, OUTSIDER).unwrap_err().code(), "group_archived");
    }

    #[test]
    fn the_last_admin_cannot_leave_others_behind() {
        let roster = Roster { admins: 1, members: 3 };
        assert_eq!(may_leave(GroupRole::Admin, roster).unwrap_err().code(), "last_admin");
        assert_eq!(may_leave(GroupRole::Member, roster).unwrap(), Departure::Leaves);
        assert_eq!(may_leave(GroupRole::Admin, Roster { admins: 2, members: 3 }).unwrap(), Departure::Leaves);
        assert_eq!(may_leave(GroupRole::Admin, Roster { admins: 1, members: 1 }).unwrap(), Departure::LastOneOut);
    }

    #[test]
    fn the_last_admin_cannot_be_demoted() {
        let roster = Roster { admins: 1, members: 3 };
        assert_eq!(may_change_role(GroupRole::Admin, GroupRole::Member, roster).unwrap_err().code(), "last_admin");
        assert!(may_change_role(GroupRole::Member, GroupRole::Admin, roster).is_ok());
        assert!(may_change_role(GroupRole::Admin, GroupRole::Member, Roster { admins: 2, members: 3 }).is_ok());
        assert!(may_change_role(GroupRole::Admin, GroupRole::Admin, roster).is_ok());
    }

    #[test]
    fn members_invite_classmates_only() {
        let public = group(Visibility::Private, None, 2);
        assert!(may_invite(&public, Some(GroupRole::Member), false, true, true).is_ok());
        assert_eq!(may_invite(&public, None, false, true, true).unwrap_err().code(), "forbidden");
        assert_eq!(may_invite(&public, Some(GroupRole::Admin), true, true, true).unwrap_err().code(), "already_member");
        assert_eq!(
            may_invite(&public, Some(GroupRole::Admin), false, false, true).unwrap_err().code(),
            "not_a_classmate"
        );
        assert_eq!(
            may_invite(&public, Some(GroupRole::Admin), false, true, false).unwrap_err().code(),
            "not_a_classmate"
        );
    }

    #[test]
    fn a_public_group_is_visible_to_those_who_could_join_and_a_private_one_to_members() {
        let public = group(Visibility::Public, None, 2);
        let private = group(Visibility::Private, None, 2);
        assert!(may_view(&public, None, true).is_ok());
        assert!(may_view(&public, None, false).is_err());
        assert!(may_view(&private, None, true).is_err());
        assert!(may_view(&private, Some(GroupRole::Member), true).is_ok());
    }

    #[test]
    fn names_limits_and_sessions_are_checked() {
        assert_eq!(validate_name("  Algebra crew ").unwrap(), "Algebra crew");
        assert_eq!(validate_name("   ").unwrap_err().code(), "invalid_name");
        assert_eq!(validate_name(&"x".repeat(101)).unwrap_err().code(), "invalid_name");
        assert_eq!(validate_name("a\u{0}b").unwrap_err().code(), "invalid_text");
        assert!(validate_member_limit(None).is_ok());
        assert_eq!(validate_member_limit(Some(1)).unwrap_err().code(), "invalid_max_members");
        let now = Utc.with_ymd_and_hms(2026, 12, 3, 10, 0, 0).unwrap();
        assert!(validate_session("Exam prep", now + Duration::hours(1), now + Duration::hours(2), now).is_ok());
        let past = validate_session("x", now - Duration::hours(1), now, now).unwrap_err();
        assert_eq!(past.code(), "invalid_schedule");
        let backwards = validate_session("x", now + Duration::hours(2), now + Duration::hours(1), now);
        assert_eq!(backwards.unwrap_err().code(), "invalid_schedule");
        let marathon = validate_session("x", now, now + Duration::hours(25), now);
        assert_eq!(marathon.unwrap_err().code(), "invalid_schedule");
    }

    #[test]
    fn activity_counts_days_and_people_of_the_last_week() {
        let now = Utc.with_ymd_and_hms(2026, 12, 3, 10, 0, 0).unwrap();
        let created = now - Duration::days(30);
        let (ada, bob) = (Uuid::new_v4(), Uuid::new_v4());
        let messages = [
            (now - Duration::hours(1), ada),
            (now - Duration::hours(2), ada),
            (now - Duration::days(2), bob),
            (now - Duration::days(8), bob), // outside the window: neither counted nor active
        ];
        let summary = activity(&messages, created, Some(now - Duration::hours(1)), now);
        assert_eq!(summary.messages_per_day.len(), 7);
        assert_eq!(summary.messages_per_day.last().unwrap(), &DayCount { date: now.date_naive(), count: 2 });
        assert_eq!(summary.messages_per_day[4].count, 1, "two days ago");
        assert_eq!(summary.messages_per_day.iter().map(|d| d.count).sum::<u32>(), 3);
        assert_eq!(summary.active_members_this_week, 2);
        assert_eq!(summary.last_activity_at, now - Duration::hours(1));
        let quiet = activity(&[], created, None, now);
        assert_eq!(quiet.last_activity_at, created);
        assert_eq!(quiet.active_members_this_week, 0);
    }
}
