//! A study group's chat as a kind of room: persistent (no join window, no
//! attendance), open to the group's members only. The member list is the
//! room's own copy, loaded with the room and kept current by the REST
//! handlers that change it (`GroupChanged`), so that a removed member is
//! out at once, open sockets included, and a join racing a removal is
//! refused.
//!
//! The room is also where the group's news leaves from, coalesced: new
//! messages (`study-group-activity`) and changes to the group
//! (`study-group-updated`) reach every member's open sockets at most once a
//! second per group, so a join storm into a course's group of thousands
//! costs a push per second, not a push per member per join.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::config::Config;
use crate::db::{self, AnyConnection};
use crate::domain::rate_limit::{Coalescer, Offer};
use crate::domain::room::{Admission, ParticipantView, RoomInfo, RoomType};
use crate::domain::study_group::GroupRole;
use crate::engine::registry::{ActorTable, Registry};
use crate::engine::room::calls::{self, RoomCall, RoomRef};
use crate::engine::room::occupants::Occupants;
use crate::engine::room::{Loaded, RoomActor, RoomKind};
use crate::error::{AppError, AppResult};
use crate::protocol::rooms::RoomScope;
use crate::protocol::study_groups as group_frames;

/// Least time between two news pushes of one kind for one group.
const NEWS_GAP: Duration = Duration::from_secs(1);

/// A study group's state in its room actor.
pub struct StudyGroup {
    group_id: Uuid,
    room_id: Uuid,
    name: String,
    /// Every member and their role: who may enter, who leads.
    members: HashMap<Uuid, GroupRole>,
    present: Occupants,
    /// `study-group-activity` pushes (new messages).
    activity_news: Coalescer,
    /// `study-group-updated` pushes (details, members, sessions).
    update_news: Coalescer,
}

impl StudyGroup {
    fn refuse_non_member() -> AppError {
        AppError::forbidden("Only this group's members may use its chat.")
    }
}

impl RoomKind for StudyGroup {
    const TYPE: RoomType = RoomType::StudyGroup;
    type JoinView = GroupJoinView;

    fn table(registry: &Registry) -> &ActorTable<RoomActor<Self>> {
        &registry.study_groups
    }

    fn load(conn: &mut AnyConnection, room_id: Uuid, _: &Config) -> AppResult<Option<Loaded<Self>>> {
        let Some(row) = db::study_groups::find_by_room(conn, &room_id.to_string())? else { return Ok(None) };
        if !row.is_active {
            return Ok(None);
        }
        let mut members = HashMap::new();
        for (member, _) in db::study_groups::members(conn, &row.id)? {
            let user_id = db::parse_id(&member.user_id).map_err(AppError::internal)?;
            members.insert(user_id, GroupRole::parse(&member.role).unwrap_or(GroupRole::Member));
        }
        let kind = StudyGroup {
            group_id: db::parse_id(&row.id).map_err(AppError::internal)?,
            room_id,
            name: row.name,
            members,
            present: Occupants::default(),
            activity_news: Coalescer::new(NEWS_GAP),
            update_news: Coalescer::new(NEWS_GAP),
        };
        Ok(Some(Loaded { kind, present: Vec::new() }))
    }

    fn info(&self) -> RoomInfo {
        RoomInfo { id: self.room_id, room_type: Self::TYPE, name: self.name.clone() }
    }

    fn scope(&self) -> RoomScope {
        RoomScope { room_id: self.room_id, session_id: None }
    }

    fn admit(&mut self, user: &AuthUser, socket_id: Uuid, now: DateTime<Utc>) -> AppResult<Admission> {
        if !self.members.contains_key(&user.id) {
            return Err(Self::refuse_non_member());
        }
        Ok(self.present.admit(user, socket_id, now))
    }

    fn restore(&mut self, user: &AuthUser, socket_id: Uuid, now: DateTime<Utc>) {
        let _ = self.admit(user, socket_id, now);
    }

    fn holds(&self, user_id: Uuid, socket_id: Uuid) -> bool {
        self.present.holds(user_id, socket_id)
    }

    fn leave(&mut self, user_id: Uuid, socket_id: Uuid) -> bool {
        self.present.leave(user_id, socket_id)
    }

    fn is_empty(&self) -> bool {
        self.present.is_empty()
    }

    fn is_host(&self, user: &AuthUser) -> bool {
        self.members.get(&user.id) == Some(&GroupRole::Admin)
    }

    fn may_post_without_joining(&self, user: &AuthUser) -> AppResult<()> {
        match self.members.contains_key(&user.id) {
            true => Ok(()),
            false => Err(Self::refuse_non_member()),
        }
    }

    fn participants(&self) -> Vec<ParticipantView> {
        self.present.participants()
    }

    fn participant(&self, user_id: Uuid) -> Option<ParticipantView> {
        self.present.participant(user_id)
    }

    fn join_view(&self, _host: bool) -> GroupJoinView {
        GroupJoinView { group_id: self.group_id }
    }

    fn not_joined() -> AppError {
        AppError::forbidden("Join the group's room first.")
    }

    fn message_stored(actor: &mut RoomActor<Self>, ctx: &mut Context<RoomActor<Self>>) {
        announce(actor, ctx, News::Activity);
    }
}

/// What a group's members hear about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum News {
    Activity,
    Updated,
}

/// Pushes news to every member's open sockets, at most once per `NEWS_GAP`
/// per kind: now, or once at the end of the gap for all that came meanwhile.
fn announce(actor: &mut RoomActor<StudyGroup>, ctx: &mut Context<RoomActor<StudyGroup>>, news: News) {
    let Some(kind) = actor.kind.as_mut() else { return };
    let coalescer = match news {
        News::Activity => &mut kind.activity_news,
        News::Updated => &mut kind.update_news,
    };
    match coalescer.offer(Instant::now()) {
        Offer::SendNow => push_news(actor, news),
        Offer::SendAfter(wait) => {
            ctx.run_later(wait, move |act, _| push_news(act, news));
        }
        Offer::AlreadyDue => {}
    }
}

fn push_news(actor: &mut RoomActor<StudyGroup>, news: News) {
    let now = actor.now();
    let Some(kind) = actor.kind.as_mut() else { return };
    let hub = &actor.registry.hub;
    match news {
        News::Activity => {
            kind.activity_news.sent(Instant::now());
            let frame = group_frames::activity(kind.group_id, now);
            // Sockets in the room saw the messages themselves: a member all
            // of whose sockets here are in the room needs no news. (Members
            // with no socket here may have some on another node: they get it.)
            let elsewhere = kind.members.keys().copied().filter(|user| {
                let sockets = hub.sockets_of(*user);
                sockets.is_empty() || !kind.present.holds_all(*user, sockets.iter().map(|socket| socket.id()))
            });
            actor.registry.broker.publish_to_users(&mut elsewhere.collect::<Vec<_>>().into_iter(), &frame);
        }
        News::Updated => {
            kind.update_news.sent(Instant::now());
            let frame = group_frames::updated(kind.group_id);
            actor.registry.broker.publish_to_users(&mut kind.members.keys().copied(), &frame);
        }
    }
}

/// What joining a group's room shows besides the room and its people.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupJoinView {
    pub group_id: Uuid,
}

/// The group changed (stored already): the room's member list follows,
/// removed people's sockets leave the room at once, and the members hear
/// of it (coalesced).
#[derive(Debug, Message, serde::Serialize, serde::Deserialize)]
#[rtype(result = "()")]
#[serde(rename_all = "camelCase")]
pub enum GroupChanged {
    Added(Uuid, GroupRole),
    RoleChanged(Uuid, GroupRole),
    Removed(Uuid),
    /// Its name, description, limit or sessions.
    Details,
    /// The group was archived: everyone is out (the caller tells them).
    Closed,
}

impl Handler<GroupChanged> for RoomActor<StudyGroup> {
    type Result = ();

    fn handle(&mut self, change: GroupChanged, ctx: &mut Context<Self>) {
        let Some(kind) = self.kind.as_mut() else { return };
        let expelled: Vec<Uuid> = match change {
            GroupChanged::Added(user_id, role) | GroupChanged::RoleChanged(user_id, role) => {
                kind.members.insert(user_id, role);
                Vec::new()
            }
            GroupChanged::Removed(user_id) => {
                kind.members.remove(&user_id);
                vec![user_id]
            }
            GroupChanged::Details => Vec::new(),
            GroupChanged::Closed => {
                kind.members.clear();
                kind.present.people()
            }
        };
        announce(self, ctx, News::Updated);
        self.expel(&expelled, |kind, user_id| kind.present.remove(user_id), ctx);
    }
}

/// Tells a group's room that the group changed, on whichever node owns
/// it; the room is started if needed, as it is what tells the members.
pub fn group_changed(registry: &Arc<Registry>, chat_room_id: Uuid, change: GroupChanged) {
    let room = RoomRef { room_type: RoomType::StudyGroup, room_id: chat_room_id };
    let told = calls::call(registry, room, None, RoomCall::GroupChanged(change));
    actix::spawn(async move {
        if let Err(err) = told.await {
            log::warn!("study group room {chat_room_id} not told of a change: {}", err.body.message);
        }
    });
}

/// [`group_changed`] on this node (its owner).
pub(crate) fn group_changed_here(registry: &Arc<Registry>, chat_room_id: Uuid, change: GroupChanged) {
    registry.room::<StudyGroup>(chat_room_id).do_send(change);
}
