//! Chat in any room: post (acked once stored, resends answered with the
//! original), typing, edit and delete by the author, and reading positions
//! with unread counts. Written once for every kind of room.

use actix::fut;
use actix::prelude::*;
use chrono::{DateTime, Utc};
use tokio::sync::oneshot;
use uuid::Uuid;

use super::{room_gone, InFlight, RoomActor, RoomKind};
use crate::db::{self, to_db_time};
use crate::domain::chat::{validate_body, validate_client_msg_id, ChatMessage, MessageType};
use crate::domain::chat_log::{Draft, Posted};
use crate::engine::hub::{Audience, SocketRef, Topic};
use crate::engine::persistence::PersistError;
use crate::error::{AppError, AppResult};
use crate::protocol::rooms as frames;

/// Who posts: a socket in the room, or a member through REST.
pub enum Author {
    Socket(SocketRef),
    Member(std::sync::Arc<crate::auth::AuthUser>),
}

impl Author {
    fn user(&self) -> &crate::auth::AuthUser {
        match self {
            Author::Socket(socket) => socket.user(),
            Author::Member(user) => user,
        }
    }
}

/// A message for the room.
#[derive(Message)]
#[rtype(result = "AppResult<ChatMessage>")]
pub struct Post {
    pub author: Author,
    pub text: String,
    pub message_type: MessageType,
    pub client_msg_id: Option<String>,
}

impl<K: RoomKind> Handler<Post> for RoomActor<K> {
    type Result = ResponseFuture<AppResult<ChatMessage>>;

    fn handle(&mut self, post: Post, ctx: &mut Context<Self>) -> Self::Result {
        let now = self.now();
        let posted = (|| {
            let user = post.author.user();
            match &post.author {
                Author::Socket(socket) => self.member(socket)?.may_post(user)?,
                Author::Member(_) => {
                    let kind = self.kind()?;
                    kind.may_post_without_joining(user)?;
                    kind.may_post(user)?;
                }
            }
            validate_client_msg_id(&post.client_msg_id)?;
            let text = validate_body(&post.text, post.message_type)?;
            let draft = Draft {
                sender_id: user.id,
                sender_name: user.name.clone(),
                text,
                message_type: post.message_type,
                client_msg_id: post.client_msg_id,
            };
            Ok::<_, AppError>(self.chat.post(draft, now))
        })();
        match posted {
            Err(err) => Box::pin(async move { Err(err) }),
            Ok(Posted::Stored(earlier)) => Box::pin(async move { Ok(earlier) }),
            Ok(Posted::InFlight(message_id)) => self.outcome_of(message_id),
            Ok(Posted::New(message)) => {
                // Shown at once; the sender's ack waits for the commit.
                self.publish(&frames::new_message(self.scope(), &message), Audience::Everyone);
                self.store(message, ctx)
            }
        }
    }
}

impl<K: RoomKind> RoomActor<K> {
    /// Hands a new message to the persistence actor; the answer comes once
    /// its write is settled (see [`Self::settle`]).
    fn store(&mut self, message: ChatMessage, ctx: &mut Context<Self>) -> ResponseFuture<AppResult<ChatMessage>> {
        let row = db::chat::to_row(&message);
        let (reply, written) = oneshot::channel();
        self.registry.deps.persistence.submit(move |conn| db::chat::insert_message(conn, &row), reply);
        let message_id = message.id;
        let (waiter, answer) = oneshot::channel();
        self.in_flight.insert(message_id, InFlight { message, waiters: vec![waiter] });
        let written = async move { written.await.unwrap_or(Err(PersistError::Stopped)) };
        ctx.spawn(written.into_actor(self).map(move |outcome, act, ctx| act.settle(message_id, outcome, ctx)));
        Box::pin(async move { answer.await.unwrap_or_else(|_| Err(room_gone())) })
    }

    /// A resend of a message in flight: answered with the first write's outcome.
    fn outcome_of(&mut self, message_id: Uuid) -> ResponseFuture<AppResult<ChatMessage>> {
        let Some(in_flight) = self.in_flight.get_mut(&message_id) else {
            return Box::pin(async move { Err(room_gone()) });
        };
        let (waiter, answer) = oneshot::channel();
        in_flight.waiters.push(waiter);
        Box::pin(async move { answer.await.unwrap_or_else(|_| Err(room_gone())) })
    }

    /// A message's write is done. Stored: everyone waiting hears so. Refused,
    /// or the database already held the sender's `clientMsgId` under another
    /// message: the copy the room was shown is retracted (`message-deleted`)
    /// and the waiters get the error, or the stored original.
    fn settle(&mut self, message_id: Uuid, outcome: Result<db::chat::Inserted, PersistError>, ctx: &mut Context<Self>) {
        let Some(InFlight { message, waiters }) = self.in_flight.remove(&message_id) else { return };
        let stored = matches!(outcome, Ok(db::chat::Inserted::Stored));
        let answer = match outcome {
            Ok(db::chat::Inserted::Stored) => {
                self.chat.stored(message_id);
                Ok(message)
            }
            Ok(db::chat::Inserted::Duplicate(row)) => {
                self.retract(message_id);
                db::chat::to_message(row, message.sender_name).ok_or_else(|| AppError::internal("bad stored message"))
            }
            Err(err) => {
                log::warn!("room {}: message {message_id} not stored: {err:?}", self.room_id);
                self.retract(message_id);
                Err(err.into())
            }
        };
        // Before the acks: whoever hears "stored" may rely on what follows it.
        if stored {
            K::message_stored(self, ctx);
        }
        for waiter in waiters {
            let _ = waiter.send(answer.clone());
        }
    }

    fn retract(&mut self, message_id: Uuid) {
        self.chat.failed(message_id);
        self.publish(&frames::message_deleted(self.scope(), message_id), Audience::Everyone);
    }
}

#[derive(Message)]
#[rtype(result = "AppResult<()>")]
pub struct Typing {
    pub socket: SocketRef,
}

impl<K: RoomKind> Handler<Typing> for RoomActor<K> {
    type Result = AppResult<()>;

    fn handle(&mut self, typing: Typing, _: &mut Context<Self>) -> AppResult<()> {
        let scope = self.member(&typing.socket)?.scope();
        let user = typing.socket.user();
        if self.chat.typing(user.id, self.now()) {
            self.publish(&frames::user_typing(scope, user.id, &user.name), Audience::AllBut(user.id));
        }
        Ok(())
    }
}

/// What the author does to a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Edit(String),
    Delete,
}

impl Change {
    fn apply(&self, current: &ChatMessage, by: Uuid, now: DateTime<Utc>) -> AppResult<ChatMessage> {
        match self {
            Change::Edit(text) => current.edited(by, validate_body(text, current.message_type)?, now),
            Change::Delete => current.deleted_by(by, now),
        }
    }
}

/// An edit or a delete; acked, and shown to the room, once stored.
#[derive(Message)]
#[rtype(result = "AppResult<ChatMessage>")]
pub struct ChangeMessage {
    pub socket: SocketRef,
    pub message_id: Uuid,
    pub change: Change,
}

impl<K: RoomKind> Handler<ChangeMessage> for RoomActor<K> {
    type Result = ResponseActFuture<Self, AppResult<ChatMessage>>;

    fn handle(&mut self, msg: ChangeMessage, _: &mut Context<Self>) -> Self::Result {
        if let Err(err) = self.member(&msg.socket) {
            return Box::pin(fut::ready(Err(err)));
        }
        let current = self.chat.find(msg.message_id).cloned();
        let db = self.registry.deps.db.clone();
        let persistence = self.registry.deps.persistence.clone();
        let (room_id, now, by) = (self.room_id.to_string(), self.now(), msg.socket.user().id);
        let work = async move {
            let current = match current {
                Some(current) => current,
                None => {
                    let id = msg.message_id.to_string();
                    let found = db.read(move |conn| Ok(db::chat::find_message(conn, &room_id, &id)?)).await?;
                    found
                        .and_then(|(row, name)| db::chat::to_message(row, name))
                        .ok_or_else(|| AppError::not_found("message"))?
                }
            };
            let changed = msg.change.apply(&current, by, now)?;
            let (id, text, edited_at) = (changed.id.to_string(), changed.message.clone(), changed.edited_at);
            let deleted_at = changed.deleted.then_some(to_db_time(now));
            persistence
                .write(move |conn| db::chat::update_message(conn, &id, &text, edited_at.map(to_db_time), deleted_at))
                .await?;
            Ok(changed)
        };
        Box::pin(work.into_actor(self).map(|changed: AppResult<ChatMessage>, act, _| {
            if let Ok(changed) = &changed {
                act.chat.replace(changed);
                let frame = if changed.deleted {
                    frames::message_deleted(act.scope(), changed.id)
                } else {
                    frames::message_edited(act.scope(), changed)
                };
                act.publish(&frame, Audience::Everyone);
            }
            changed
        }))
    }
}

/// "I have read up to this message": stores the position, answers the
/// unread count, and tells the reader's other sockets.
#[derive(Message)]
#[rtype(result = "AppResult<u64>")]
pub struct MarkRead {
    pub socket: SocketRef,
    pub message_id: Uuid,
}

impl<K: RoomKind> Handler<MarkRead> for RoomActor<K> {
    type Result = ResponseActFuture<Self, AppResult<u64>>;

    fn handle(&mut self, msg: MarkRead, _: &mut Context<Self>) -> Self::Result {
        if let Err(err) = self.member(&msg.socket) {
            return Box::pin(fut::ready(Err(err)));
        }
        let known_seq = self.chat.find(msg.message_id).map(|m| m.seq);
        let db = self.registry.deps.db.clone();
        let persistence = self.registry.deps.persistence.clone();
        let (room_id, reader, now) = (self.room_id.to_string(), msg.socket.user().id, to_db_time(self.now()));
        let message_id = msg.message_id.to_string();
        let (room, user) = (room_id.clone(), reader.to_string());
        let marked = async move {
            let seq = match known_seq {
                Some(seq) => seq,
                None => db
                    .read(move |conn| Ok(db::chat::seq_of(conn, &room, &message_id)?))
                    .await?
                    .ok_or_else(|| AppError::not_found("message"))?,
            };
            let kept = persistence.write(move |conn| db::chat::mark_read(conn, &room_id, &user, seq, now)).await?;
            Ok::<_, AppError>(kept)
        };
        let db = self.registry.deps.db.clone();
        let room_id = self.room_id.to_string();
        Box::pin(
            marked
                .into_actor(self)
                .then(move |kept, act, _| {
                    let known = kept.as_ref().ok().and_then(|kept| act.chat.unread_after(*kept, reader));
                    let counted = async move {
                        let kept = kept?;
                        if let Some(count) = known {
                            return Ok(count);
                        }
                        let reader = reader.to_string();
                        let count =
                            db.read(move |conn| Ok(db::chat::count_unread(conn, &room_id, &reader, kept)?)).await?;
                        Ok(count.max(0) as u64)
                    };
                    counted.into_actor(act)
                })
                .map(move |count: AppResult<u64>, act, _| {
                    if let Ok(count) = &count {
                        let frame = frames::unread_updated(act.room_id, *count);
                        act.registry.broker.publish(
                            Topic::User(reader),
                            &frame,
                            Audience::AllButSocket(msg.socket.id()),
                        );
                    }
                    count
                }),
        )
    }
}
