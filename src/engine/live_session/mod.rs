//! The actor of one live session: a thin shell around `LiveSessionRoom`
//! that loads it from the database, fans frames out to the room's sockets
//! and hands writes to the persistence actor.
//!
//! Chat is sequenced here: each message gets the next `seq` of the room and
//! goes out to the room at once, while its sender's ack waits for the
//! commit. The last few hundred messages stay in memory so a reconnecting
//! client catches up without touching the database.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use bytestring::ByteString;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::db::models::ChatMessageRow;
use crate::db::{self, parse_id, to_db_time, AnyConnection};
use crate::domain::chat::{validate_client_msg_id, validate_message, ChatMessage};
use crate::domain::live_session::{JoinOutcome, Joiner, LiveSessionRoom, ParticipantView, SessionFacts, SessionView};
use crate::domain::questions::{Audience, QuestionBoard, QuestionView};
use crate::engine::registry::Registry;
use crate::engine::{Disconnect, DisconnectReason, Push};
use crate::error::{AppError, AppResult};
use crate::protocol::{event_frame, events};

/// Messages kept in memory for catching up.
const RECENT_MESSAGES: usize = 256;
/// Most messages replayed from the database to one reconnecting client.
const MAX_REPLAY: i64 = 1_000;
/// One `user-typing` per person per this many seconds reaches the room.
const TYPING_THROTTLE_SECS: i64 = 2;
/// Messages a room actor's mailbox holds before senders wait.
const ROOM_MAILBOX_CAPACITY: usize = 1 << 20;
/// An empty room's actor stops after this long.
const IDLE_STOP_AFTER: Duration = Duration::from_secs(60);

mod lifecycle;
mod questions;

pub use lifecycle::{command_room, RoomCommand, SessionCommand};
pub use questions::{AskQuestion, ModerateQuestion, Moderation, UpvoteQuestion};

/// A socket in the room.
struct Member {
    user_id: Uuid,
    /// Whether this person leads the session (sees who asked anonymously).
    leads: bool,
    push: Recipient<Push>,
    disconnect: Recipient<Disconnect>,
}

pub struct LiveSessionActor {
    session_id: Uuid,
    registry: Arc<Registry>,
    /// None until loaded, or when the session no longer exists.
    room: Option<LiveSessionRoom>,
    members: HashMap<Uuid, Member>,
    next_seq: i64,
    recent: VecDeque<ChatMessage>,
    last_typing: HashMap<Uuid, DateTime<Utc>>,
    idle_stop: Option<SpawnHandle>,
    /// People who were in the room when the previous actor died: their
    /// sockets are let back in without the join checks.
    awaiting_return: HashSet<Uuid>,
    questions: QuestionBoard,
}

/// What the room is rebuilt from.
struct Stored {
    facts: SessionFacts,
    last_seq: i64,
    questions: QuestionBoard,
    /// People the database counts as present: after a crash or restart their
    /// sockets are asked to re-attach.
    present: Vec<Uuid>,
}

fn load(conn: &mut AnyConnection, session_id: Uuid) -> AppResult<Option<Stored>> {
    let Some(row) = db::live_sessions::find(conn, &session_id.to_string())? else { return Ok(None) };
    let facts = db::live_sessions::load_facts(conn, &row)?;
    let last_seq = db::chat::last_seq(conn, &row.chat_room_id)?;
    let present = db::live_sessions::present_user_ids(conn, &row.id)?
        .iter()
        .map(|id| parse_id(id))
        .collect::<Result<Vec<_>, _>>()
        .map_err(AppError::internal)?;
    let questions = db::questions::load_board(conn, &row.id)?;
    Ok(Some(Stored { facts, last_seq, questions, present }))
}

impl LiveSessionActor {
    pub fn new(session_id: Uuid, registry: Arc<Registry>) -> Self {
        Self {
            session_id,
            registry,
            room: None,
            members: HashMap::new(),
            next_seq: 1,
            recent: VecDeque::new(),
            last_typing: HashMap::new(),
            idle_stop: None,
            awaiting_return: HashSet::new(),
            questions: QuestionBoard::new(),
        }
    }

    fn now(&self) -> DateTime<Utc> {
        self.registry.deps.clock.now()
    }

    fn room(&self) -> AppResult<&LiveSessionRoom> {
        self.room.as_ref().ok_or_else(|| AppError::not_found("live session"))
    }

    fn load_state(&mut self, ctx: &mut Context<Self>) {
        let session_id = self.session_id;
        let db = self.registry.deps.db.clone();
        // `wait`: no message is handled before the room exists.
        ctx.wait(async move { db.read(move |conn| load(conn, session_id)).await }.into_actor(self).map(
            move |loaded, act, ctx| match loaded {
                Ok(Some(stored)) => act.install(stored, ctx),
                Ok(None) => act.retire(ctx),
                Err(err) => {
                    log::error!("cannot load live session {session_id}: {err}");
                    act.retire(ctx);
                }
            },
        ));
    }

    fn install(&mut self, stored: Stored, ctx: &mut Context<Self>) {
        let early_join = chrono::Duration::minutes(self.registry.deps.config.join_early_minutes);
        self.room = Some(LiveSessionRoom::new(stored.facts, early_join));
        self.next_seq = stored.last_seq + 1;
        self.questions = stored.questions;
        if stored.present.is_empty() {
            self.schedule_idle_stop(ctx);
            return;
        }
        // The previous actor of this room died with people in it. Their
        // sockets are still open: ask each whether it had joined, and take
        // those back before handling anything else (`wait`), so no frame of
        // the new room misses them. Whoever does not come back within a
        // heartbeat timeout is recorded as gone.
        self.awaiting_return = stored.present.iter().copied().collect();
        let session_id = self.session_id;
        let questions: Vec<_> = stored
            .present
            .iter()
            .flat_map(|user_id| self.registry.connections_of(*user_id))
            .map(|handle| handle.addr.send(crate::engine::connection::MembershipQuery { session_id }))
            .collect();
        let answers = tokio::time::timeout(Duration::from_secs(2), futures_util::future::join_all(questions));
        ctx.wait(answers.into_actor(self).map(|answers, act, _| {
            for (user, connection) in answers.unwrap_or_default().into_iter().flatten().flatten() {
                act.welcome_back(&user, &connection);
            }
        }));
        ctx.run_later(self.registry.deps.config.ws_client_timeout(), move |act, ctx| {
            let now = act.now();
            for user_id in std::mem::take(&mut act.awaiting_return) {
                act.record_leave(user_id, now, ctx);
            }
            if act.members.is_empty() {
                act.schedule_idle_stop(ctx);
            }
        });
    }

    /// Lets a socket of someone who was in the room before a restart back
    /// in, quietly. True if the socket is (now) a member.
    fn welcome_back(&mut self, user: &AuthUser, connection: &Connection) -> bool {
        if self.members.contains_key(&connection.id) {
            return true;
        }
        let now = self.now();
        let Some(room) = self.room.as_mut() else { return false };
        if !self.awaiting_return.contains(&user.id) && !room.is_present(user.id) {
            return false;
        }
        let joiner = Joiner { user_id: user.id, name: user.name.clone(), role: user.role };
        room.restore(&joiner, connection.id, now);
        let leads = room.leads(user.id, user.role);
        self.awaiting_return.remove(&user.id);
        self.members.insert(
            connection.id,
            Member {
                user_id: user.id,
                leads,
                push: connection.push.clone(),
                disconnect: connection.disconnect.clone(),
            },
        );
        true
    }

    /// The session is gone (or unreadable): answer callers, then stop for good.
    fn retire(&mut self, ctx: &mut Context<Self>) {
        self.room = None;
        self.registry.remove_live_session(self.session_id, &ctx.address());
        ctx.run_later(Duration::from_secs(1), |_, ctx| ctx.stop());
    }

    fn schedule_idle_stop(&mut self, ctx: &mut Context<Self>) {
        if let Some(handle) = self.idle_stop.take() {
            ctx.cancel_future(handle);
        }
        self.idle_stop = Some(ctx.run_later(IDLE_STOP_AFTER, |act, ctx| {
            if act.members.is_empty() {
                act.registry.remove_live_session(act.session_id, &ctx.address());
                ctx.stop();
            }
        }));
    }

    /// Sends one frame to every socket in the room except those of `except`.
    fn broadcast(&mut self, frame: ByteString, except: Option<Uuid>, ctx: &mut Context<Self>) {
        self.fan_out(|member| (Some(member.user_id) != except).then(|| frame.clone()), ctx);
    }

    /// Sends each socket the frame `frame_for` picks (frames are shared, not
    /// copied). A socket whose queue is full is a slow consumer and is let go.
    fn fan_out(&mut self, frame_for: impl Fn(&Member) -> Option<ByteString>, ctx: &mut Context<Self>) {
        let mut dropped = Vec::new();
        for (connection_id, member) in &self.members {
            let Some(frame) = frame_for(member) else { continue };
            match member.push.try_send(Push(frame)) {
                Ok(()) => {}
                Err(SendError::Full(_)) => {
                    self.registry.deps.metrics.slow_consumers_closed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let _ = member.disconnect.try_send(Disconnect(DisconnectReason::SlowConsumer));
                    dropped.push((*connection_id, member.user_id));
                }
                Err(SendError::Closed(_)) => dropped.push((*connection_id, member.user_id)),
            }
        }
        for (connection_id, user_id) in dropped {
            self.remove_member(user_id, connection_id, ctx);
        }
    }

    fn send_to(&self, connection_id: Uuid, frame: ByteString) {
        if let Some(member) = self.members.get(&connection_id) {
            let _ = member.push.try_send(Push(frame));
        }
    }

    /// Hands a write to the persistence actor; failures are logged, since
    /// nobody waits on them.
    fn persist_in_background<F>(&self, what: &'static str, op: F, ctx: &mut Context<Self>)
    where
        F: Fn(&mut AnyConnection) -> diesel::QueryResult<()> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.registry.deps.persistence.submit(op, reply);
        let session_id = self.session_id;
        ctx.spawn(
            async move {
                match answer.await {
                    Ok(Ok(())) => {}
                    Ok(Err(err)) => log::error!("session {session_id}: storing {what} failed: {err:?}"),
                    Err(_) => log::error!("session {session_id}: storing {what}: persistence gone"),
                }
            }
            .into_actor(self),
        );
    }

    fn record_leave(&mut self, user_id: Uuid, at: DateTime<Utc>, ctx: &mut Context<Self>) {
        let session = self.session_id.to_string();
        let user = user_id.to_string();
        self.persist_in_background(
            "a leave",
            move |conn| db::live_sessions::record_leave(conn, &session, &user, to_db_time(at)),
            ctx,
        );
    }

    fn remove_member(&mut self, user_id: Uuid, connection_id: Uuid, ctx: &mut Context<Self>) {
        self.members.remove(&connection_id);
        let Some(room) = self.room.as_mut() else { return };
        if room.leave(user_id, connection_id) {
            let now = self.now();
            self.record_leave(user_id, now, ctx);
            let frame = event_frame(
                events::USER_LEFT,
                &json!({ "sessionId": self.session_id, "userId": user_id, "leftAt": now }),
            );
            self.broadcast(frame, Some(user_id), ctx);
        }
        if self.members.is_empty() {
            self.schedule_idle_stop(ctx);
        }
    }

    fn admit(&mut self, join: &Join, ctx: &mut Context<Self>) -> AppResult<JoinReply> {
        let now = self.now();
        let room = self.room.as_mut().ok_or_else(|| AppError::not_found("live session"))?;
        let joiner = Joiner { user_id: join.user.id, name: join.user.name.clone(), role: join.user.role };
        let outcome = room.join(&joiner, join.connection.id, now)?;
        let leads = room.leads(join.user.id, join.user.role);
        self.awaiting_return.remove(&join.user.id);
        self.members.insert(
            join.connection.id,
            Member {
                user_id: join.user.id,
                leads,
                push: join.connection.push.clone(),
                disconnect: join.connection.disconnect.clone(),
            },
        );
        if let Some(handle) = self.idle_stop.take() {
            ctx.cancel_future(handle);
        }
        if outcome == JoinOutcome::Entered {
            let (session, user) = (self.session_id.to_string(), join.user.id.to_string());
            self.persist_in_background(
                "a join",
                move |conn| db::live_sessions::record_join(conn, &session, &user, to_db_time(now)),
                ctx,
            );
            let frame = event_frame(
                events::USER_JOINED,
                &json!({
                    "sessionId": self.session_id,
                    "user": { "userId": join.user.id, "name": join.user.name, "role": joiner_role(self.room()?, &join.user) },
                    "joinedAt": now,
                }),
            );
            self.broadcast(frame, Some(join.user.id), ctx);
        }
        let audience = if leads { Audience::Leaders } else { Audience::Classmates };
        let room = self.room()?;
        Ok(JoinReply {
            session: SessionView::new(&room.facts, room.attendee_count()),
            participants: room.participants().map(ParticipantView::from).collect(),
            questions: self.questions.views(audience),
        })
    }

    /// Sends a rejoining socket what it missed after `since`, in order: from
    /// memory when the message is still there, else from the database and
    /// then memory. The mailbox waits meanwhile, so nothing overtakes.
    fn replay_since(&mut self, since: Uuid, connection_id: Uuid, ctx: &mut Context<Self>) {
        if let Some(position) = self.recent.iter().position(|m| m.id == since) {
            let missed: Vec<ChatMessage> = self.recent.iter().skip(position + 1).cloned().collect();
            self.push_messages(connection_id, &missed);
            return;
        }
        let Ok(room) = self.room() else { return };
        let chat_room_id = room.facts.chat_room_id;
        let db = self.registry.deps.db.clone();
        let read = async move {
            db.read(move |conn| {
                let room_id = chat_room_id.to_string();
                let Some(seq) = db::chat::seq_of(conn, &room_id, &since.to_string())? else { return Ok(Vec::new()) };
                Ok(db::chat::messages_after(conn, &room_id, seq, MAX_REPLAY)?)
            })
            .await
        };
        ctx.wait(read.into_actor(self).map(move |rows, act, _| {
            let rows = match rows {
                Ok(rows) => rows,
                Err(err) => {
                    log::error!("replay for {connection_id} failed: {err}");
                    return;
                }
            };
            let mut missed: Vec<ChatMessage> =
                rows.into_iter().filter_map(|(row, name)| message_from_row(row, name)).collect();
            let last_stored = missed.last().map(|m| m.seq).unwrap_or(i64::MAX);
            missed.extend(act.recent.iter().filter(|m| m.seq > last_stored).cloned());
            act.push_messages(connection_id, &missed);
        }));
    }

    fn push_messages(&self, connection_id: Uuid, messages: &[ChatMessage]) {
        for message in messages {
            self.send_to(connection_id, new_message_frame(self.session_id, message));
        }
    }
}

fn joiner_role(room: &LiveSessionRoom, user: &AuthUser) -> crate::domain::Role {
    room.participants().find(|p| p.user_id == user.id).map(|p| p.role).unwrap_or(user.role)
}

fn new_message_frame(session_id: Uuid, message: &ChatMessage) -> ByteString {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct NewMessage<'a> {
        session_id: Uuid,
        message: &'a ChatMessage,
    }
    event_frame(events::NEW_MESSAGE, &NewMessage { session_id, message })
}

/// A stored message as the wire shows it (None for a row with a bad id).
pub fn message_from_row(row: ChatMessageRow, sender_name: String) -> Option<ChatMessage> {
    Some(ChatMessage {
        id: parse_id(&row.id).ok()?,
        room_id: parse_id(&row.room_id).ok()?,
        sender_id: parse_id(&row.sender_id).ok()?,
        sender_name,
        message: row.message,
        message_type: row.message_type,
        created_at: db::from_db_time(row.created_at),
        client_msg_id: row.client_msg_id,
        seq: row.seq,
    })
}

impl Actor for LiveSessionActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Senders must not park on a full mailbox (parked sends lose their
        // order); memory is bounded upstream by the per-socket rate limit.
        ctx.set_mailbox_capacity(ROOM_MAILBOX_CAPACITY);
        self.load_state(ctx);
    }
}

impl actix::Supervised for LiveSessionActor {
    fn restarting(&mut self, _: &mut Context<Self>) {
        // Rebuilt from the database by `started`, which runs next.
        let registry = Arc::clone(&self.registry);
        *self = LiveSessionActor::new(self.session_id, registry);
    }
}

/// A socket as a room sees it: where its frames go and how to close it.
#[derive(Clone)]
pub struct Connection {
    pub id: Uuid,
    pub push: Recipient<Push>,
    pub disconnect: Recipient<Disconnect>,
}

/// A socket enters the room.
#[derive(Message)]
#[rtype(result = "AppResult<JoinReply>")]
pub struct Join {
    pub user: AuthUser,
    pub connection: Connection,
    pub since_message_id: Option<Uuid>,
}

#[derive(Debug, Serialize)]
pub struct JoinReply {
    pub session: SessionView,
    pub participants: Vec<ParticipantView>,
    /// The Q&A list as this person may see it (added to the contract).
    pub questions: Vec<QuestionView>,
}

impl Handler<Join> for LiveSessionActor {
    type Result = ResponseFuture<AppResult<JoinReply>>;

    fn handle(&mut self, join: Join, ctx: &mut Context<Self>) -> Self::Result {
        let admitted = self.admit(&join, ctx);
        if let (Ok(_), Some(since)) = (&admitted, join.since_message_id) {
            self.replay_since(since, join.connection.id, ctx);
        }
        Box::pin(async move { admitted })
    }
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct Leave {
    pub user_id: Uuid,
    pub connection_id: Uuid,
}

impl Handler<Leave> for LiveSessionActor {
    type Result = ();

    fn handle(&mut self, leave: Leave, ctx: &mut Context<Self>) {
        if self.members.contains_key(&leave.connection_id) {
            self.remove_member(leave.user_id, leave.connection_id, ctx);
        }
    }
}

#[derive(Message)]
#[rtype(result = "AppResult<ChatMessage>")]
pub struct PostMessage {
    pub user: AuthUser,
    pub connection: Connection,
    pub text: String,
    pub client_msg_id: Option<String>,
}

impl Handler<PostMessage> for LiveSessionActor {
    type Result = ResponseFuture<AppResult<ChatMessage>>;

    fn handle(&mut self, post: PostMessage, ctx: &mut Context<Self>) -> Self::Result {
        let prepared = (|| {
            if !self.welcome_back(&post.user, &post.connection) {
                return Err(AppError::forbidden("Join the session before sending messages."));
            }
            let room = self.room()?;
            validate_client_msg_id(&post.client_msg_id)?;
            let text = validate_message(&post.text)?;
            Ok((room.facts.chat_room_id, text))
        })();
        let (room_id, text) = match prepared {
            Ok(ready) => ready,
            Err(err) => return Box::pin(async move { Err(err) }),
        };
        // A resend of a message we already have (same sender, same clientMsgId).
        if let Some(client_msg_id) = &post.client_msg_id {
            if let Some(earlier) = self
                .recent
                .iter()
                .find(|m| m.sender_id == post.user.id && m.client_msg_id.as_ref() == Some(client_msg_id))
            {
                let earlier = earlier.clone();
                return Box::pin(async move { Ok(earlier) });
            }
        }
        let message = ChatMessage {
            id: Uuid::new_v4(),
            room_id,
            sender_id: post.user.id,
            sender_name: post.user.name.clone(),
            message: text,
            message_type: "text".into(),
            created_at: self.now(),
            client_msg_id: post.client_msg_id,
            seq: self.next_seq,
        };
        self.next_seq += 1;
        self.recent.push_back(message.clone());
        if self.recent.len() > RECENT_MESSAGES {
            self.recent.pop_front();
        }
        self.broadcast(new_message_frame(self.session_id, &message), None, ctx);

        let row = ChatMessageRow {
            id: message.id.to_string(),
            room_id: message.room_id.to_string(),
            seq: message.seq,
            sender_id: message.sender_id.to_string(),
            message: message.message.clone(),
            message_type: message.message_type.clone(),
            client_msg_id: message.client_msg_id.clone(),
            created_at: to_db_time(message.created_at),
        };
        let persistence = self.registry.deps.persistence.clone();
        Box::pin(async move {
            match persistence.write(move |conn| db::chat::insert_message(conn, &row)).await {
                Ok(()) => Ok(message),
                Err(err) if err.is_unique_violation() => {
                    Err(AppError::conflict("duplicate_message", "A message with this clientMsgId was already stored."))
                }
                Err(err) => Err(err.into()),
            }
        })
    }
}

#[derive(Message)]
#[rtype(result = "AppResult<()>")]
pub struct Typing {
    pub user: AuthUser,
    pub connection: Connection,
}

impl Handler<Typing> for LiveSessionActor {
    type Result = AppResult<()>;

    fn handle(&mut self, typing: Typing, ctx: &mut Context<Self>) -> AppResult<()> {
        self.room()?;
        if !self.welcome_back(&typing.user, &typing.connection) {
            return Err(AppError::forbidden("Join the session first."));
        }
        let now = self.now();
        let throttled = self
            .last_typing
            .get(&typing.user.id)
            .is_some_and(|last| now - *last < chrono::Duration::seconds(TYPING_THROTTLE_SECS));
        if !throttled {
            self.last_typing.insert(typing.user.id, now);
            let frame = event_frame(
                events::USER_TYPING,
                &json!({ "sessionId": self.session_id, "userId": typing.user.id, "name": typing.user.name }),
            );
            self.broadcast(frame, Some(typing.user.id), ctx);
        }
        Ok(())
    }
}

/// Makes the actor's handler panic, as a bug would. Reachable from Rust
/// only (never from the wire): the tests use it to prove that a dead room
/// is replaced and its sockets carry on.
#[doc(hidden)]
#[derive(Message)]
#[rtype(result = "()")]
pub struct InjectPanic;

impl Handler<InjectPanic> for LiveSessionActor {
    type Result = ();

    fn handle(&mut self, _: InjectPanic, _: &mut Context<Self>) {
        panic!("injected panic in live session {}", self.session_id);
    }
}
