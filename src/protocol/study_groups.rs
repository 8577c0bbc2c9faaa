//! Study groups on the wire: the REST views (contract v2 with the
//! additions of docs/protocol.md) and the pushes to members' sockets.

use bytestring::ByteString;
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::domain::study_group::{GroupActivity, GroupRole, Visibility};
use crate::protocol::{event_frame, events};

/// A group as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupView {
    pub id: Uuid,
    pub name: String,
    pub description: Option<String>,
    pub course_id: Option<Uuid>,
    pub created_by: Uuid,
    pub visibility: Visibility,
    pub max_members: Option<i32>,
    pub member_count: i32,
    /// Members not offline, as the viewer may see them.
    pub online_count: usize,
    pub chat_room_id: Uuid,
    /// The viewer's role; null for someone who is not a member.
    pub my_role: Option<GroupRole>,
    /// Messages of others after the viewer's reading position; null for a non-member.
    pub unread_count: Option<i64>,
    pub last_activity_at: DateTime<Utc>,
    pub is_active: bool,
    /// For members reading one group (added).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activity: Option<GroupActivity>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberView {
    pub user_id: Uuid,
    pub name: String,
    pub role: GroupRole,
    pub joined_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InviteView {
    pub id: Uuid,
    pub group_id: Uuid,
    pub user_id: Uuid,
    pub invited_by: Uuid,
    /// `pending`, `accepted` or `declined`.
    pub status: String,
    pub group_name: String,
    pub invited_by_name: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupSessionView {
    pub id: Uuid,
    pub group_id: Uuid,
    pub title: String,
    pub scheduled_start_time: DateTime<Utc>,
    pub scheduled_end_time: DateTime<Utc>,
    pub created_by: Uuid,
    pub created_by_name: String,
    /// The group's room: where the session takes place.
    pub room_id: Uuid,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GroupRef {
    group_id: Uuid,
}

/// The group's details, members, roles or sessions changed.
pub fn updated(group_id: Uuid) -> ByteString {
    event_frame(events::STUDY_GROUP_UPDATED, &GroupRef { group_id })
}

/// New messages in the group (coalesced by the room).
pub fn activity(group_id: Uuid, last_activity_at: DateTime<Utc>) -> ByteString {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Activity {
        group_id: Uuid,
        last_activity_at: DateTime<Utc>,
    }
    event_frame(events::STUDY_GROUP_ACTIVITY, &Activity { group_id, last_activity_at })
}

pub fn invite(invite: &InviteView) -> ByteString {
    #[derive(Serialize)]
    struct Invite<'a> {
        invite: &'a InviteView,
    }
    event_frame(events::STUDY_GROUP_INVITE, &Invite { invite })
}

pub fn removed(group_id: Uuid, room_id: Uuid) -> ByteString {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Removed {
        group_id: Uuid,
        room_id: Uuid,
    }
    event_frame(events::REMOVED_FROM_STUDY_GROUP, &Removed { group_id, room_id })
}
