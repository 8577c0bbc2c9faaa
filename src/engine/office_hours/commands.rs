//! What a person may do with office hours, one function per action, shared
//! by REST and the WebSocket: the checks of who may (from the database),
//! then the instructor's office-hours actor, which orders and stores.

use std::sync::Arc;

use uuid::Uuid;

use super::calls::ask;
use super::{Admit, Announce, DeferTurn, EndEntry, GetQueue, GetStatus, JoinQueue, LeaveQueue, SetOpen};
use crate::auth::AuthUser;
use crate::db;
use crate::domain::office_hours::{self as rules, EndReason};
use crate::domain::Role;
use crate::engine::hub::{SocketRef, Topic};
use crate::engine::registry::Registry;
use crate::error::{AppError, AppResult};
use crate::protocol::office_hours::{self as wire, AdmissionView, AnnouncementView, EntryView, QueueView, StatusView};

/// Only those who teach (instructors, admins) hold office hours (403 for anyone else).
pub fn require_instructor(user: &AuthUser) -> AppResult<()> {
    if user.role.teaches() {
        Ok(())
    } else {
        Err(AppError::forbidden("Only instructors hold office hours."))
    }
}

/// Whether `user` may see `instructor_id`'s office hours: the instructor,
/// or one of their students. 404 for someone who is not an instructor.
async fn may_view(registry: &Arc<Registry>, user: &AuthUser, instructor_id: Uuid) -> AppResult<()> {
    let (viewer, instructor) = (user.id.to_string(), instructor_id.to_string());
    let is_self = user.id == instructor_id;
    registry
        .deps
        .db
        .read(move |conn| {
            let found = db::users::find(conn, &instructor)?;
            if !found.and_then(|row| Role::parse(&row.role)).is_some_and(Role::teaches) {
                return Err(AppError::not_found("instructor"));
            }
            if is_self || db::office_hours::teaches(conn, &instructor, &viewer)? {
                return Ok(());
            }
            Err(AppError::forbidden("You take none of this instructor's courses."))
        })
        .await
}

pub async fn status(registry: &Arc<Registry>, user: &AuthUser, instructor_id: Uuid) -> AppResult<StatusView> {
    may_view(registry, user, instructor_id).await?;
    ask(registry, instructor_id, GetStatus { viewer: Some(user.id) }).await
}

/// A student's instructors (an instructor's own office hours).
pub async fn my_instructors(registry: &Arc<Registry>, user: &AuthUser) -> AppResult<Vec<StatusView>> {
    let ids: Vec<Uuid> = if user.role.teaches() {
        vec![user.id]
    } else {
        let student = user.id.to_string();
        let rows = registry.deps.db.read(move |conn| Ok(db::office_hours::instructors_of(conn, &student)?)).await?;
        db::parse_ids(&rows.into_iter().map(|(id, _)| id).collect::<Vec<_>>())?
    };
    let asks = ids.into_iter().map(|id| ask(registry, id, GetStatus { viewer: Some(user.id) }));
    let mut views = Vec::new();
    for answer in futures_util::future::join_all(asks).await {
        views.push(answer?);
    }
    Ok(views)
}

pub async fn join_queue(registry: &Arc<Registry>, user: &AuthUser, join: wire::JoinQueue) -> AppResult<EntryView> {
    if user.role != Role::Student {
        return Err(AppError::forbidden("Only students join office-hours queues."));
    }
    let question = rules::validate_question(join.question.as_deref())?;
    let topic = rules::validate_topic(join.topic.as_deref())?;
    may_view(registry, user, join.instructor_id).await?;
    let message = JoinQueue { student_id: user.id, student_name: user.name.clone(), question, topic };
    ask(registry, join.instructor_id, message).await
}

/// The instructor of an entry the caller acts on: a student only on their
/// own (404 otherwise), an instructor only on their queue's (403); an
/// instructor's action by a student is 403 whatever the entry.
async fn entry_instructor(
    registry: &Arc<Registry>,
    user: &AuthUser,
    entry_id: Uuid,
    as_student: bool,
) -> AppResult<Uuid> {
    if !as_student {
        require_instructor(user)?;
    }
    let id = entry_id.to_string();
    let row = registry.deps.db.read(move |conn| Ok(db::office_hours::find_entry(conn, &id)?)).await?;
    let row = row.ok_or_else(|| AppError::not_found("queue entry"))?;
    let mine = if as_student { &row.student_id } else { &row.instructor_id };
    if *mine != user.id.to_string() {
        return Err(if user.role.teaches() {
            AppError::forbidden("This entry is in another instructor's queue.")
        } else {
            AppError::not_found("queue entry")
        });
    }
    db::parse_id(&row.instructor_id).map_err(AppError::internal)
}

pub async fn leave_queue(registry: &Arc<Registry>, user: &AuthUser, entry_id: Uuid) -> AppResult<EntryView> {
    let instructor = entry_instructor(registry, user, entry_id, true).await?;
    ask(registry, instructor, LeaveQueue { entry_id }).await
}

pub async fn defer_turn(registry: &Arc<Registry>, user: &AuthUser, entry_id: Uuid) -> AppResult<EntryView> {
    let instructor = entry_instructor(registry, user, entry_id, true).await?;
    ask(registry, instructor, DeferTurn { entry_id }).await
}

pub async fn admit(registry: &Arc<Registry>, user: &AuthUser, entry_ids: Vec<Uuid>) -> AppResult<AdmissionView> {
    require_instructor(user)?;
    for entry_id in &entry_ids {
        entry_instructor(registry, user, *entry_id, false).await?;
    }
    let (room_id, entries) = ask(registry, user.id, Admit { entry_ids }).await?;
    Ok(AdmissionView { room_id, entries })
}

pub async fn end_entry(
    registry: &Arc<Registry>,
    user: &AuthUser,
    entry_id: Uuid,
    reason: EndReason,
) -> AppResult<EntryView> {
    let instructor = entry_instructor(registry, user, entry_id, false).await?;
    ask(registry, instructor, EndEntry { entry_id, reason }).await
}

pub async fn set_open(registry: &Arc<Registry>, user: &AuthUser, open: bool) -> AppResult<bool> {
    require_instructor(user)?;
    ask(registry, user.id, SetOpen { open }).await
}

pub async fn announce(registry: &Arc<Registry>, user: &AuthUser, message: &str) -> AppResult<AnnouncementView> {
    require_instructor(user)?;
    let message = rules::validate_announcement(message)?;
    ask(registry, user.id, Announce { message }).await
}

pub async fn queue(registry: &Arc<Registry>, user: &AuthUser) -> AppResult<QueueView> {
    require_instructor(user)?;
    ask(registry, user.id, GetQueue).await
}

/// A student's open entries, with their standings.
pub async fn my_entries(registry: &Arc<Registry>, user: &AuthUser) -> AppResult<Vec<EntryView>> {
    if user.role != Role::Student {
        return Err(AppError::forbidden("Only students wait in office hours queues."));
    }
    let student = user.id.to_string();
    let rows =
        registry.deps.db.read(move |conn| Ok(db::office_hours::open_entries_of_student(conn, &student)?)).await?;
    let mut views = Vec::new();
    for (row, _) in rows {
        let (entry_id, instructor) = (
            db::parse_id(&row.id).map_err(AppError::internal)?,
            db::parse_id(&row.instructor_id).map_err(AppError::internal)?,
        );
        if let Some(view) = ask(registry, instructor, super::GetEntry { entry_id }).await? {
            views.push(view);
        }
    }
    Ok(views)
}

/// A socket watches an instructor's status (`office-hours-status` pushes).
pub async fn watch(registry: &Arc<Registry>, socket: SocketRef, instructor_id: Uuid) -> AppResult<StatusView> {
    may_view(registry, socket.user(), instructor_id).await?;
    super::calls::watch(registry, socket, instructor_id).await
}

pub fn unwatch(registry: &Registry, socket_id: Uuid, instructor_id: Uuid) {
    registry.broker.unsubscribe(Topic::OfficeHours(instructor_id), socket_id);
}

/// The instructor's slots were edited: their office hours read them again.
pub fn slots_changed(registry: &Arc<Registry>, instructor_id: Uuid) {
    super::calls::tell(registry, instructor_id, super::calls::OfficeCall::SlotsChanged(super::SlotsChanged));
}
