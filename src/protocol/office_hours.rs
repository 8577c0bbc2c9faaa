//! Office hours on the wire: slots, queue entries, an instructor's status,
//! the events clients send and the pushes (docs/protocol.md, "Office hours").

use bytestring::ByteString;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::protocol::{event_frame, events};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SlotView {
    pub id: Uuid,
    pub instructor_id: Uuid,
    /// 0 = Sunday.
    pub day_of_week: u32,
    /// `HH:MM` in `time_zone`.
    pub start_time: String,
    pub end_time: String,
    /// An IANA zone name.
    pub time_zone: String,
    /// `queue` or `drop-in`.
    pub mode: String,
    pub is_active: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EntryView {
    pub id: Uuid,
    pub instructor_id: Uuid,
    pub instructor_name: String,
    pub student_id: Uuid,
    pub student_name: String,
    /// `waiting`, `admitted`, `completed` or `cancelled`.
    pub status: String,
    pub question: Option<String>,
    pub topic: Option<String>,
    /// 1 = next; only while waiting.
    pub position: Option<usize>,
    pub estimated_wait_sec: Option<i64>,
    pub joined_queue_at: DateTime<Utc>,
    pub admitted_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub room_id: Option<Uuid>,
    /// Whether the student used their one defer.
    pub deferred: bool,
    /// Why it ended; null while open.
    pub end_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnnouncementView {
    pub message: String,
    pub sent_at: DateTime<Utc>,
}

/// An instructor's office hours as one viewer sees them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusView {
    pub instructor_id: Uuid,
    pub name: String,
    pub slots: Vec<SlotView>,
    /// Whether the queue takes students now.
    pub is_open: bool,
    pub next_open_at: Option<DateTime<Utc>>,
    pub waiting_count: usize,
    /// What a student joining now would wait.
    pub estimated_wait_sec: i64,
    pub current_slot: Option<SlotView>,
    pub drop_in_room_id: Option<Uuid>,
    pub announcement: Option<AnnouncementView>,
    /// The viewer's open entry with this instructor.
    pub my_entry: Option<EntryView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueueView {
    pub is_open: bool,
    /// Waiting in order, then admitted by admission.
    pub entries: Vec<EntryView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionView {
    pub room_id: Uuid,
    pub entries: Vec<EntryView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OpenView {
    pub is_open: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DayFiguresView {
    /// A UTC day, `YYYY-MM-DD`.
    pub date: String,
    pub helped: usize,
    pub median_wait_sec: i64,
    pub p90_wait_sec: i64,
    pub median_help_sec: i64,
}

// ---- what clients send (REST bodies and WebSocket data alike) ----

#[derive(Debug, Clone, PartialEq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JoinQueue {
    pub instructor_id: Uuid,
    #[serde(default)]
    pub question: Option<String>,
    #[serde(default)]
    pub topic: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueRef {
    pub queue_id: Uuid,
}

#[derive(Debug, Clone, PartialEq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QueueIds {
    pub queue_ids: Vec<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Announce {
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstructorRef {
    pub instructor_id: Uuid,
}

// ---- pushes ----

pub fn student_joined(entry: &EntryView) -> ByteString {
    #[derive(Serialize)]
    struct Joined<'a> {
        entry: &'a EntryView,
    }
    event_frame(events::STUDENT_JOINED_QUEUE, &Joined { entry })
}

pub fn queue_updated(instructor_id: Uuid, queue: &QueueView) -> ByteString {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Updated<'a> {
        instructor_id: Uuid,
        #[serde(flatten)]
        queue: &'a QueueView,
    }
    event_frame(events::QUEUE_UPDATED, &Updated { instructor_id, queue })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Standing {
    queue_id: Uuid,
    instructor_id: Uuid,
    position: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    estimated_wait_sec: Option<i64>,
}

pub fn queue_position(queue_id: Uuid, instructor_id: Uuid, position: usize, estimated_wait_sec: i64) -> ByteString {
    let standing = Standing { queue_id, instructor_id, position, estimated_wait_sec: Some(estimated_wait_sec) };
    event_frame(events::QUEUE_POSITION, &standing)
}

pub fn up_soon(queue_id: Uuid, instructor_id: Uuid, position: usize) -> ByteString {
    event_frame(events::OFFICE_HOURS_UP_SOON, &Standing { queue_id, instructor_id, position, estimated_wait_sec: None })
}

/// The status as watchers see it (no viewer's own entry, no weekly slots:
/// one frame serves every watcher).
pub fn status(view: &StatusView) -> ByteString {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Status<'a> {
        instructor_id: Uuid,
        is_open: bool,
        waiting_count: usize,
        estimated_wait_sec: i64,
        next_open_at: Option<DateTime<Utc>>,
        drop_in_room_id: Option<Uuid>,
        current_slot: Option<&'a SlotView>,
        announcement: Option<&'a AnnouncementView>,
    }
    event_frame(
        events::OFFICE_HOURS_STATUS,
        &Status {
            instructor_id: view.instructor_id,
            is_open: view.is_open,
            waiting_count: view.waiting_count,
            estimated_wait_sec: view.estimated_wait_sec,
            next_open_at: view.next_open_at,
            drop_in_room_id: view.drop_in_room_id,
            current_slot: view.current_slot.as_ref(),
            announcement: view.announcement.as_ref(),
        },
    )
}

pub fn admitted(queue_id: Uuid, room_id: Uuid, instructor_id: Uuid) -> ByteString {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Admitted {
        queue_id: Uuid,
        room_id: Uuid,
        instructor_id: Uuid,
    }
    event_frame(events::ADMITTED_TO_OFFICE_HOURS, &Admitted { queue_id, room_id, instructor_id })
}

pub fn removed(queue_id: Uuid, instructor_id: Uuid, reason: &str) -> ByteString {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Removed<'a> {
        queue_id: Uuid,
        instructor_id: Uuid,
        reason: &'a str,
    }
    event_frame(events::REMOVED_FROM_QUEUE, &Removed { queue_id, instructor_id, reason })
}

pub fn completed(queue_id: Uuid, instructor_id: Uuid, room_id: Uuid, reason: &str) -> ByteString {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Completed<'a> {
        queue_id: Uuid,
        instructor_id: Uuid,
        room_id: Uuid,
        reason: &'a str,
    }
    event_frame(events::OFFICE_HOURS_COMPLETED, &Completed { queue_id, instructor_id, room_id, reason })
}

pub fn announcement(instructor_id: Uuid, announcement: &AnnouncementView) -> ByteString {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Announcement<'a> {
        instructor_id: Uuid,
        #[serde(flatten)]
        announcement: &'a AnnouncementView,
    }
    event_frame(events::OFFICE_HOURS_ANNOUNCEMENT, &Announcement { instructor_id, announcement })
}
