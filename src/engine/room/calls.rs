//! A socket's events for a room, as data: the connection actor turns each
//! event into a [`RoomCall`], and [`call`] hands it to the room's actor on
//! this node, or forwards it to the node that owns the room
//! (`engine::cluster`). Either way the answer is the ack's data, made by
//! the node that ran the call.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::chat::{Author, Change, ChangeMessage, MarkRead, Post, Typing};
use super::routing::{self, Entry, RoomAddr};
use super::{room_gone, submit, Catchup, Join, Leave};
use crate::domain::chat::MessageType;
use crate::domain::live_session::SessionView;
use crate::domain::room::RoomType;
use crate::engine::cluster::calls::{answer_from_owner, as_owner, body_of, raw, Answer, Outcome, Request};
use crate::engine::cluster::remote_socket::{RemoteSocket, SocketStub};
use crate::engine::cluster::Cluster;
use crate::engine::hub::{SocketRef, Topic};
use crate::engine::live_session::command_room_here;
use crate::engine::live_session::{AskQuestion, ModerateQuestion, Moderation, SessionCommand, UpvoteQuestion};
use crate::engine::office_hours::room::{room_changed_here, RoomChanged};
use crate::engine::registry::Registry;
use crate::engine::study_group::{group_changed_here, GroupChanged};
use crate::error::{AppError, AppResult};
use crate::protocol::rooms::{MessageAck, UnreadAck};

/// A room, by its type and id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RoomRef {
    pub room_type: RoomType,
    pub room_id: Uuid,
}

impl RoomRef {
    pub fn of(entry: &Entry) -> Self {
        Self { room_type: entry.room_type, room_id: entry.room_id }
    }

    /// The room's lease in the cluster.
    fn lease_key(&self) -> String {
        format!("room:{}", self.room_id)
    }
}

/// What a socket asks of a room it joined (or joins).
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "camelCase")]
pub enum RoomCall {
    Join {
        since_message_id: Option<Uuid>,
        catchup: Catchup,
    },
    Leave,
    Post {
        text: String,
        message_type: MessageType,
        client_msg_id: Option<String>,
    },
    Typing,
    Edit {
        message_id: Uuid,
        text: String,
    },
    Delete {
        message_id: Uuid,
    },
    MarkRead {
        message_id: Uuid,
    },
    Ask {
        text: String,
        anonymous: bool,
    },
    Upvote {
        question_id: Uuid,
    },
    Moderate {
        question_id: Uuid,
        action: Moderation,
    },
    /// A session's start, end, cancel or edit (REST, the scheduler): no socket.
    Command {
        by: Option<crate::auth::AuthUser>,
        command: SessionCommand,
    },
    /// An office-hours room's people changed (its queue's admissions and ends).
    OfficeRoomChanged(RoomChanged),
    /// A study group's members or details changed (REST, stored already).
    GroupChanged(GroupChanged),
    /// A member posts over REST: no socket, the answer is the stored message.
    MemberPost {
        by: crate::auth::AuthUser,
        text: String,
        message_type: MessageType,
        client_msg_id: Option<String>,
    },
}

/// A call on its way to the node that owns the room.
#[derive(Serialize, Deserialize)]
pub struct Forwarded {
    room: RoomRef,
    /// The socket that asked; none for a command of REST or the server.
    socket: Option<SocketStub>,
    call: RoomCall,
}

/// Hands the call to the room's actor, here or on its owner, now (so a
/// socket's calls reach the room in the order they were made), and answers
/// with the ack's data.
pub fn call(registry: &Arc<Registry>, room: RoomRef, socket: Option<&SocketRef>, call: RoomCall) -> Answer {
    let Some(cluster) = registry.cluster.as_ref() else { return perform_here(registry, room, socket, call) };
    let key = room.lease_key();
    match cluster.known_owner(&key) {
        Some(owner) if owner == cluster.node_id => perform_here(registry, room, socket, call),
        Some(owner) => forward(registry, owner, room, socket, call),
        None => {
            let (registry, socket, cluster) = (Arc::clone(registry), socket.cloned(), Arc::clone(cluster));
            Box::pin(async move {
                let owner = cluster.owner(&key).await?;
                if owner == cluster.node_id {
                    perform_here(&registry, room, socket.as_ref(), call).await
                } else {
                    forward(&registry, owner, room, socket.as_ref(), call).await
                }
            })
        }
    }
}

/// Hands a call that needs no answer to the room's actor if one is alive
/// on some node; a room no node holds has nothing to be told.
pub fn tell_if_alive(registry: &Arc<Registry>, room: RoomRef, call: RoomCall) {
    let Some(cluster) = registry.cluster.clone() else {
        return drop(perform_here(registry, room, None, call));
    };
    let registry = Arc::clone(registry);
    actix::spawn(async move {
        let told = match cluster.current_owner(&room.lease_key()).await {
            Ok(None) => Ok(()),
            Ok(Some(owner)) if owner == cluster.node_id => perform_here(&registry, room, None, call).await.map(drop),
            Ok(Some(owner)) => forward(&registry, owner, room, None, call).await.map(drop),
            Err(err) => Err(err),
        };
        if let Err(err) = told {
            log::warn!("room {} not told: {}", room.room_id, err.body.message);
        }
    });
}

/// Sends the call to the room's owner; if the room moved, once more to the new owner.
fn forward(registry: &Arc<Registry>, owner: Uuid, room: RoomRef, socket: Option<&SocketRef>, call: RoomCall) -> Answer {
    let Some(cluster) = registry.cluster.clone() else { return Box::pin(async { Err(room_gone()) }) };
    let joining = matches!(call, RoomCall::Join { .. }).then_some(Topic::Room(room.room_id));
    let socket = socket.map(|socket| SocketStub::of(socket, cluster.node_id));
    let body = match body_of(&Request::Room(Forwarded { room, socket, call })) {
        Ok(body) => body,
        Err(err) => return Box::pin(async move { Err(err) }),
    };
    let key = room.lease_key();
    // Sent now, but for a join, which first listens to the room's channel:
    // the room's first frames follow its admission at once.
    let first = joining.is_none().then(|| cluster.request(owner, &body));
    Box::pin(async move {
        let outcome = match first {
            Some(first) => answer_from_owner(&cluster, &key, &body, first, room_gone).await,
            None => {
                if let Some(topic) = joining {
                    cluster.expect_topic(topic).await;
                }
                let first = cluster.request(owner, &body);
                answer_from_owner(&cluster, &key, &body, first, room_gone).await
            }
        };
        if let Some(topic) = joining {
            cluster.expected_topic_settled(topic);
        }
        outcome
    })
}

/// Serves a call another node forwarded here; notes which of its sockets
/// are in rooms here (they leave them if their node dies).
pub fn serve(
    registry: &Arc<Registry>,
    cluster: &Arc<Cluster>,
    forwarded: Forwarded,
) -> futures_util::future::LocalBoxFuture<'static, Outcome> {
    let Forwarded { room, socket: stub, call } = forwarded;
    let member = stub.as_ref().map(|stub| (stub.id, stub.user.id, stub.node));
    let change = match &call {
        RoomCall::Join { .. } => Some(true),
        RoomCall::Leave => Some(false),
        _ => None,
    };
    let socket: Option<SocketRef> = stub.map(|stub| RemoteSocket::new(stub, Arc::clone(cluster)) as SocketRef);
    let registry = Arc::clone(registry);
    let answer = as_owner(cluster, room.lease_key(), move || perform_here(&registry, room, socket.as_ref(), call));
    let cluster = Arc::clone(cluster);
    Box::pin(async move {
        let outcome = answer.await;
        match (change, member, &outcome) {
            (Some(true), Some((socket_id, user_id, home)), Outcome::Ok(_)) => {
                cluster.remote_joined(socket_id, home, user_id, room)
            }
            (Some(false), Some((socket_id, _, _)), _) => cluster.remote_left(socket_id, room),
            _ => {}
        }
        outcome
    })
}

/// A socket of a node that died leaves a room of this node.
pub fn leave_here(registry: &Registry, room: RoomRef, user_id: Uuid, socket_id: Uuid) {
    registry.broker.unsubscribe(Topic::Room(room.room_id), socket_id);
    if let Some(actor) = RoomAddr::existing(registry, room.room_type, room.room_id) {
        actor.do_send(Leave { user_id, socket_id });
    }
}

/// Hands the call to the room's actor on this node.
fn perform_here(registry: &Arc<Registry>, room: RoomRef, socket: Option<&SocketRef>, call: RoomCall) -> Answer {
    if let RoomCall::Command { by, command } = call {
        let registry = Arc::clone(registry);
        return Box::pin(async move {
            let view: SessionView = command_room_here(&registry, room.room_id, by, command).await?;
            raw(view)
        });
    }
    if let RoomCall::OfficeRoomChanged(change) = call {
        room_changed_here(registry, room.room_id, change);
        return Box::pin(async { raw(json!({})) });
    }
    if let RoomCall::GroupChanged(change) = call {
        group_changed_here(registry, room.room_id, change);
        return Box::pin(async { raw(json!({})) });
    }
    if let RoomCall::MemberPost { by, text, message_type, client_msg_id } = call {
        let actor = match RoomAddr::of(registry, room.room_type, room.room_id) {
            Ok(actor) => actor,
            Err(err) => return Box::pin(async move { Err(err) }),
        };
        let posted = actor.submit(Post { author: Author::Member(Arc::new(by)), text, message_type, client_msg_id });
        return Box::pin(async move { raw(posted.await.map_err(|_| room_gone())??) });
    }
    let Some(socket) = socket.cloned() else {
        return Box::pin(async { Err(AppError::internal("a socket's call came without its socket")) });
    };
    let actor = match RoomAddr::of(registry, room.room_type, room.room_id) {
        Ok(actor) => actor,
        Err(err) => return Box::pin(async move { Err(err) }),
    };
    match call {
        RoomCall::Join { since_message_id, catchup } => {
            let (registry, entry_room) = (Arc::clone(registry), room);
            Box::pin(async move {
                let join = || Join { socket: Arc::clone(&socket), since_message_id, catchup };
                routing::join_room(&registry, entry_room.room_type, entry_room.room_id, join).await
            })
        }
        RoomCall::Leave => {
            let left = actor.submit(Leave { user_id: socket.user().id, socket_id: socket.id() });
            Box::pin(async move {
                left.await.map_err(|_| room_gone())?;
                raw(json!({}))
            })
        }
        RoomCall::Post { text, message_type, client_msg_id } => {
            let posted = actor.submit(Post { author: Author::Socket(socket), text, message_type, client_msg_id });
            Box::pin(async move { raw(MessageAck { message: posted.await.map_err(|_| room_gone())?? }) })
        }
        RoomCall::Typing => {
            let typed = actor.submit(Typing { socket });
            Box::pin(async move {
                typed.await.map_err(|_| room_gone())??;
                raw(json!({}))
            })
        }
        RoomCall::Edit { message_id, text } => {
            let changed = actor.submit(ChangeMessage { socket, message_id, change: Change::Edit(text) });
            Box::pin(async move { raw(MessageAck { message: changed.await.map_err(|_| room_gone())?? }) })
        }
        RoomCall::Delete { message_id } => {
            let changed = actor.submit(ChangeMessage { socket, message_id, change: Change::Delete });
            Box::pin(async move { raw(MessageAck { message: changed.await.map_err(|_| room_gone())?? }) })
        }
        RoomCall::MarkRead { message_id } => {
            let marked = actor.submit(MarkRead { socket, message_id });
            Box::pin(async move { raw(UnreadAck { unread_count: marked.await.map_err(|_| room_gone())?? }) })
        }
        RoomCall::Ask { text, anonymous } => question(&actor, AskQuestion { socket, text, anonymous }),
        RoomCall::Upvote { question_id } => question(&actor, UpvoteQuestion { socket, question_id }),
        RoomCall::Moderate { question_id, action } => {
            question(&actor, ModerateQuestion { socket, question_id, action })
        }
        RoomCall::Command { .. }
        | RoomCall::OfficeRoomChanged(_)
        | RoomCall::GroupChanged(_)
        | RoomCall::MemberPost { .. } => {
            Box::pin(async { Err(AppError::internal("a server's call came with a socket")) })
        }
    }
}

/// A Q&A call: only a live session's room has them.
fn question<M>(actor: &RoomAddr, message: M) -> Answer
where
    M: actix::Message<Result = AppResult<crate::domain::questions::QuestionView>> + Send + 'static,
    super::RoomActor<crate::engine::live_session::LiveSession>: actix::Handler<M>,
{
    let session = match actor.live_session() {
        Ok(session) => session.clone(),
        Err(err) => return Box::pin(async move { Err(err) }),
    };
    let asked = submit(&session, message);
    Box::pin(async move { raw(json!({ "question": asked.await.map_err(|_| room_gone())?? })) })
}
