//! One actor shape for every chat room: `RoomActor<K>` owns the room's
//! chat log (pure, `domain::chat_log`) and a kind's state, and does the
//! I/O. A kind (a live session; study groups and office-hours rooms next)
//! supplies the callbacks Phoenix channels have, in Rust terms: load,
//! admit, may post, left. Chat is handled once, here and in `chat.rs`;
//! a kind's own events (a session's lifecycle, its Q&A) are handlers on
//! `RoomActor<ThatKind>` in the kind's module.
//!
//! The room keeps member ids; sockets live in the hub. A socket admitted to
//! the room is subscribed to the room's topic, and every frame of the room
//! is published once to the broker. When a room actor dies, its sockets
//! stay subscribed: the fresh actor rebuilds from the database and takes
//! back whoever the hub still holds for the room.

pub mod calls;
pub mod chat;
pub mod occupants;
pub mod routing;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use bytestring::ByteString;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::value::RawValue;
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::config::Config;
use crate::db::{self, AnyConnection};
use crate::domain::chat::ChatMessage;
use crate::domain::chat_log::ChatLog;
use crate::domain::room::{Admission, ParticipantView, RoomInfo, RoomType};
use crate::engine::hub::{Audience, SocketRef, Topic};
use crate::engine::persistence::PersistError;
use crate::engine::registry::{ActorTable, Registry};
use crate::error::{AppError, AppResult};
use crate::protocol::rooms::{self as frames, RoomScope};

/// Most messages replayed from the database to one reconnecting client.
const MAX_REPLAY: i64 = 1_000;
/// Messages a room actor's mailbox holds before senders wait.
const ROOM_MAILBOX_CAPACITY: usize = 1 << 20;
/// An empty room's actor stops after this long.
const IDLE_STOP_AFTER: Duration = Duration::from_secs(60);

/// What a kind of room is: its state, and the callbacks the room actor
/// calls. The state is plain data; the `*_entered`/`*_left` hooks do a
/// kind's side effects (attendance rows, presence activity).
pub trait RoomKind: Sized + Send + Unpin + 'static {
    const TYPE: RoomType;
    /// What a join ack carries besides the room, its people and missed messages.
    type JoinView: Serialize;

    /// Where the registry keeps this kind's actors.
    fn table(registry: &Registry) -> &ActorTable<RoomActor<Self>>;

    /// Reads the room's state; None when there is no such room of this kind.
    fn load(conn: &mut AnyConnection, room_id: Uuid, config: &Config) -> AppResult<Option<Loaded<Self>>>;

    fn info(&self) -> RoomInfo;
    fn scope(&self) -> RoomScope;

    /// Lets a socket in, or says why not. The caller has checked that the
    /// person may enter the room at all (`routing::resolve`).
    fn admit(&mut self, user: &AuthUser, socket_id: Uuid, now: DateTime<Utc>) -> AppResult<Admission>;
    /// Puts back a socket that was in the room before the actor was rebuilt.
    fn restore(&mut self, user: &AuthUser, socket_id: Uuid, now: DateTime<Utc>);
    /// Whether this socket of this person is in the room.
    fn holds(&self, user_id: Uuid, socket_id: Uuid) -> bool;
    /// Takes a socket out; true when it was the person's last (they left).
    fn leave(&mut self, user_id: Uuid, socket_id: Uuid) -> bool;
    fn is_empty(&self) -> bool;
    /// Whether the person leads the room (gets `Audience::Hosts` frames).
    fn is_host(&self, user: &AuthUser) -> bool;
    fn may_post(&self, _user: &AuthUser) -> AppResult<()> {
        Ok(())
    }
    /// Whether the person may post without a socket in the room (REST).
    fn may_post_without_joining(&self, _user: &AuthUser) -> AppResult<()> {
        Err(Self::not_joined())
    }
    fn participants(&self) -> Vec<ParticipantView>;
    fn participant(&self, user_id: Uuid) -> Option<ParticipantView>;
    fn join_view(&self, host: bool) -> Self::JoinView;
    /// The answer to an event from a socket that has not joined.
    fn not_joined() -> AppError {
        AppError::forbidden("Join the room first.")
    }

    fn socket_entered(&self, _registry: &Arc<Registry>, _user: &AuthUser, _socket_id: Uuid) {}
    fn socket_left(&self, _registry: &Registry, _user_id: Uuid, _socket_id: Uuid) {}
    /// The person's first socket came in. What this returns is stored
    /// before the join is acked (an ack means stored).
    fn person_entered(&self, _registry: &Registry, _user_id: Uuid, _at: DateTime<Utc>) -> Option<Storing> {
        None
    }
    fn person_left(&self, _registry: &Registry, _user_id: Uuid, _at: DateTime<Utc>) {}
    /// A message was stored (after its ack went out).
    fn message_stored(_actor: &mut RoomActor<Self>, _ctx: &mut Context<RoomActor<Self>>) {}
}

/// A write a reply waits for.
pub type Storing = futures_util::future::LocalBoxFuture<'static, Result<(), PersistError>>;

/// A kind's state as read from the database.
pub struct Loaded<K> {
    pub kind: K,
    /// People the database counts as in the room: those the hub no longer
    /// holds are recorded as gone when the room is rebuilt.
    pub present: Vec<Uuid>,
}

/// A message whose write is in flight, with everyone waiting for its outcome.
struct InFlight {
    message: ChatMessage,
    waiters: Vec<oneshot::Sender<AppResult<ChatMessage>>>,
}

pub struct RoomActor<K: RoomKind> {
    pub(crate) room_id: Uuid,
    pub(crate) registry: Arc<Registry>,
    /// None until loaded, or when the room no longer exists.
    pub(crate) kind: Option<K>,
    chat: ChatLog,
    in_flight: HashMap<Uuid, InFlight>,
    idle_stop: Option<SpawnHandle>,
}

impl<K: RoomKind> RoomActor<K> {
    pub fn new(room_id: Uuid, registry: Arc<Registry>) -> Self {
        let window = registry.deps.config.chat_window_messages;
        Self {
            room_id,
            registry,
            kind: None,
            chat: ChatLog::new(room_id, 0, window),
            in_flight: HashMap::new(),
            idle_stop: None,
        }
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.registry.deps.clock.now()
    }

    fn topic(&self) -> Topic {
        Topic::Room(self.room_id)
    }

    pub(crate) fn kind(&self) -> AppResult<&K> {
        self.kind.as_ref().ok_or_else(|| AppError::not_found("room"))
    }

    pub(crate) fn scope(&self) -> RoomScope {
        self.kind.as_ref().map(K::scope).unwrap_or(RoomScope { room_id: self.room_id, session_id: None })
    }

    /// The kind, if this socket is in the room.
    pub(crate) fn member(&self, socket: &SocketRef) -> AppResult<&K> {
        let kind = self.kind()?;
        if !kind.holds(socket.user().id, socket.id()) {
            return Err(K::not_joined());
        }
        Ok(kind)
    }

    /// One frame, serialized once, to the room's sockets (on every node).
    pub(crate) fn publish(&self, frame: &ByteString, audience: Audience) {
        self.registry.broker.publish(self.topic(), frame, audience);
    }

    fn load_state(&mut self, ctx: &mut Context<Self>) {
        let room_id = self.room_id;
        let db = self.registry.deps.db.clone();
        let config = self.registry.deps.config.clone();
        let read = async move {
            db.read(move |conn| {
                let Some(loaded) = K::load(conn, room_id, &config)? else { return Ok(None) };
                let last_seq = db::chat::last_seq(conn, &room_id.to_string())?;
                Ok(Some((loaded, last_seq)))
            })
            .await
        };
        // `wait`: no message is handled before the room exists.
        ctx.wait(read.into_actor(self).map(move |loaded, act, ctx| match loaded {
            Ok(Some((loaded, last_seq))) => act.install(loaded, last_seq, ctx),
            Ok(None) => act.retire(ctx),
            Err(err) => {
                log::error!("cannot load {} room {room_id}: {err}", K::TYPE.as_str());
                act.retire(ctx);
            }
        }));
    }

    fn install(&mut self, loaded: Loaded<K>, last_seq: i64, ctx: &mut Context<Self>) {
        let now = self.now();
        self.chat = ChatLog::new(self.room_id, last_seq, self.registry.deps.config.chat_window_messages);
        let mut kind = loaded.kind;
        // Sockets still subscribed had joined the previous actor of this
        // room (which died): take them back quietly.
        let mut returned = HashSet::new();
        for subscription in self.registry.hub.subscribers(self.topic()) {
            let user = subscription.socket.user();
            kind.restore(user, subscription.socket.id(), now);
            returned.insert(user.id);
        }
        // The rest are gone (the server or their node died): recorded as
        // left, and those still here are told.
        for user_id in loaded.present.into_iter().filter(|user_id| !returned.contains(user_id)) {
            kind.person_left(&self.registry, user_id, now);
            if !returned.is_empty() {
                self.publish(&frames::user_left(kind.scope(), user_id, now), Audience::AllBut(user_id));
            }
        }
        let empty = kind.is_empty();
        self.kind = Some(kind);
        if empty {
            self.schedule_idle_stop(ctx);
        }
    }

    /// The room is gone (or unreadable): answer callers, then stop for good.
    fn retire(&mut self, ctx: &mut Context<Self>) {
        self.kind = None;
        K::table(&self.registry).remove(self.room_id, &ctx.address());
        ctx.run_later(Duration::from_secs(1), |_, ctx| ctx.stop());
    }

    pub(crate) fn schedule_idle_stop(&mut self, ctx: &mut Context<Self>) {
        if let Some(handle) = self.idle_stop.take() {
            ctx.cancel_future(handle);
        }
        self.idle_stop = Some(ctx.run_later(IDLE_STOP_AFTER, |act, ctx| {
            if act.kind.as_ref().is_none_or(K::is_empty) && act.in_flight.is_empty() {
                K::table(&act.registry).remove(act.room_id, &ctx.address());
                ctx.stop();
            }
        }));
    }

    /// Lets a socket in; what comes back is to be stored before the ack.
    fn admit(&mut self, socket: &SocketRef, ctx: &mut Context<Self>) -> AppResult<Option<Storing>> {
        let now = self.now();
        let registry = Arc::clone(&self.registry);
        let topic = self.topic();
        let kind = self.kind.as_mut().ok_or_else(|| AppError::not_found("room"))?;
        let user = socket.user();
        let admission = kind.admit(user, socket.id(), now)?;
        registry.broker.subscribe(topic, Arc::clone(socket), kind.is_host(user));
        kind.socket_entered(&registry, user, socket.id());
        if let Some(handle) = self.idle_stop.take() {
            ctx.cancel_future(handle);
        }
        if admission != Admission::Entered {
            return Ok(None);
        }
        let storing = kind.person_entered(&registry, user.id, now);
        if let Some(participant) = kind.participant(user.id) {
            let frame = frames::user_joined(kind.scope(), &participant);
            self.publish(&frame, Audience::AllBut(user.id));
        }
        Ok(storing)
    }

    /// Takes a socket out of the room; when it was its person's last, the
    /// room hears that they left.
    fn remove_socket(&mut self, user_id: Uuid, socket_id: Uuid, ctx: &mut Context<Self>) {
        self.registry.broker.unsubscribe(self.topic(), socket_id);
        let now = self.now();
        let Some(kind) = self.kind.as_mut() else { return };
        if !kind.holds(user_id, socket_id) {
            return;
        }
        kind.socket_left(&self.registry, user_id, socket_id);
        if kind.leave(user_id, socket_id) {
            kind.person_left(&self.registry, user_id, now);
            let frame = frames::user_left(kind.scope(), user_id, now);
            self.chat.forget_typist(user_id);
            self.publish(&frame, Audience::AllBut(user_id));
        }
        if self.kind.as_ref().is_some_and(K::is_empty) {
            self.schedule_idle_stop(ctx);
        }
    }

    /// Puts people out of the room at once, all their sockets (they are no
    /// longer members); the others hear `user-left`. `take_out` removes a
    /// person from the kind's state and returns their sockets.
    pub(crate) fn expel(
        &mut self,
        people: &[Uuid],
        mut take_out: impl FnMut(&mut K, Uuid) -> Vec<Uuid>,
        ctx: &mut Context<Self>,
    ) {
        let (now, topic) = (self.now(), self.topic());
        let Some(kind) = self.kind.as_mut() else { return };
        let going: Vec<(Uuid, Vec<Uuid>)> = people
            .iter()
            .map(|user_id| (*user_id, take_out(kind, *user_id)))
            .filter(|(_, sockets)| !sockets.is_empty())
            .collect();
        // Everyone hears of everyone who goes before any socket is out: a
        // room that closes puts all its people out at once.
        for (user_id, _) in &going {
            let frame = frames::user_left(self.scope(), *user_id, now);
            self.publish(&frame, Audience::AllBut(*user_id));
        }
        for (user_id, sockets) in going {
            for socket_id in sockets {
                if let Some(kind) = self.kind.as_ref() {
                    kind.socket_left(&self.registry, user_id, socket_id);
                }
                self.registry.broker.unsubscribe(topic, socket_id);
            }
        }
        if self.kind.as_ref().is_some_and(K::is_empty) {
            self.schedule_idle_stop(ctx);
        }
    }

    /// Takes every socket out of the room without news (the room closed, as
    /// a session that ended): their owners already heard why.
    pub(crate) fn unsubscribe_everyone(&mut self, ctx: &mut Context<Self>) {
        for subscription in self.registry.hub.subscribers(self.topic()) {
            let user_id = subscription.socket.user().id;
            if let Some(kind) = self.kind.as_ref() {
                kind.socket_left(&self.registry, user_id, subscription.socket.id());
            }
            self.registry.broker.unsubscribe(self.topic(), subscription.socket.id());
        }
        self.schedule_idle_stop(ctx);
    }

    /// The join ack; in `Catchup::Push` mode the missed messages go to the
    /// socket first, as `new-message` events.
    fn join_reply(&self, socket: &SocketRef, missed: Vec<ChatMessage>, catchup: Catchup) -> AppResult<JoinReply> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct JoinAck<V: Serialize> {
            room: RoomInfo,
            participants: Vec<ParticipantView>,
            #[serde(skip_serializing_if = "Option::is_none")]
            missed_messages: Option<Vec<ChatMessage>>,
            #[serde(flatten)]
            view: V,
        }
        let kind = self.kind()?;
        let missed_messages = match catchup {
            Catchup::InAck => Some(missed),
            Catchup::Push => {
                let scope = kind.scope();
                for message in &missed {
                    self.registry.hub.push(socket, frames::new_message(scope, message));
                }
                None
            }
        };
        let ack = JoinAck {
            room: kind.info(),
            participants: kind.participants(),
            missed_messages,
            view: kind.join_view(kind.is_host(socket.user())),
        };
        serde_json::value::to_raw_value(&ack).map_err(AppError::internal)
    }
}

impl<K: RoomKind> Actor for RoomActor<K> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Senders must not park on a full mailbox (parked sends lose their
        // order); memory is bounded upstream by the per-socket rate limit.
        ctx.set_mailbox_capacity(ROOM_MAILBOX_CAPACITY);
        self.load_state(ctx);
    }
}

impl<K: RoomKind> actix::Supervised for RoomActor<K> {
    fn restarting(&mut self, _: &mut Context<Self>) {
        // Rebuilt from the database by `started`, which runs next.
        let registry = Arc::clone(&self.registry);
        *self = RoomActor::new(self.room_id, registry);
    }
}

/// How a joining socket gets what it missed since `sinceMessageId`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Catchup {
    /// As `new-message` events before the ack (`join-live-session`).
    Push,
    /// In the ack's `missedMessages` (`join-room`).
    InAck,
}

/// The join ack's data, serialized by the room (it may list thousands of people).
pub type JoinReply = Box<RawValue>;

/// A socket enters the room.
#[derive(Message)]
#[rtype(result = "AppResult<JoinReply>")]
pub struct Join {
    pub socket: SocketRef,
    pub since_message_id: Option<Uuid>,
    pub catchup: Catchup,
}

impl<K: RoomKind> Handler<Join> for RoomActor<K> {
    type Result = ResponseFuture<AppResult<JoinReply>>;

    fn handle(&mut self, join: Join, ctx: &mut Context<Self>) -> Self::Result {
        let storing = match self.admit(&join.socket, ctx) {
            Ok(storing) => storing,
            Err(err) => return Box::pin(async move { Err(err) }),
        };
        // The ack waits for the attendance the join wrote; if that fails, the
        // socket is let out again and told so.
        let (room, leave) = (ctx.address(), Leave { user_id: join.socket.user().id, socket_id: join.socket.id() });
        let after_storing = move |reply: AppResult<JoinReply>| async move {
            if let Some(storing) = storing {
                if let Err(err) = storing.await {
                    room.do_send(leave);
                    return Err(err.into());
                }
            }
            reply
        };
        let Some(since) = join.since_message_id else {
            return Box::pin(after_storing(self.join_reply(&join.socket, Vec::new(), join.catchup)));
        };
        if let Some(missed) = self.chat.since(since) {
            return Box::pin(after_storing(self.join_reply(&join.socket, missed, join.catchup)));
        }
        // Older than the window: from the database, then the window. The
        // mailbox waits meanwhile, so nothing newer overtakes.
        let db = self.registry.deps.db.clone();
        let room_id = self.room_id.to_string();
        let read = async move {
            db.read(move |conn| {
                let Some(since_seq) = db::chat::seq_of(conn, &room_id, &since.to_string())? else {
                    return Ok(None);
                };
                Ok(Some((since_seq, db::chat::messages_after(conn, &room_id, since_seq, MAX_REPLAY)?)))
            })
            .await
        };
        let (reply, answer) = oneshot::channel();
        ctx.wait(read.into_actor(self).map(move |read, act, _| {
            let missed = match read {
                Ok(Some((since_seq, rows))) => {
                    let truncated = rows.len() as i64 >= MAX_REPLAY;
                    let mut missed: Vec<ChatMessage> =
                        rows.into_iter().filter_map(|(row, name)| db::chat::to_message(row, name)).collect();
                    // Past the limit the client pages through REST; no gap either way.
                    if !truncated {
                        let last = missed.last().map_or(since_seq, |m| m.seq);
                        missed.extend(act.chat.after_seq(last).cloned());
                    }
                    missed
                }
                Ok(None) => Vec::new(),
                Err(err) => {
                    log::error!("catch-up for {} failed: {err}", join.socket.id());
                    Vec::new()
                }
            };
            let _ = reply.send(act.join_reply(&join.socket, missed, join.catchup));
        }));
        Box::pin(async move { after_storing(answer.await.unwrap_or_else(|_| Err(room_gone()))).await })
    }
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct Leave {
    pub user_id: Uuid,
    pub socket_id: Uuid,
}

impl<K: RoomKind> Handler<Leave> for RoomActor<K> {
    type Result = ();

    fn handle(&mut self, leave: Leave, ctx: &mut Context<Self>) {
        self.remove_socket(leave.user_id, leave.socket_id, ctx);
    }
}

/// A message that is handled even if whoever asked stops waiting. Actix
/// skips a `send` whose asker has gone (a socket that closed right after
/// writing), and a client's write must not be dropped once the server has
/// read it: writes reach rooms wrapped in this, through `do_send`.
pub struct Asked<M: Message> {
    pub message: M,
    pub reply: oneshot::Sender<M::Result>,
}

impl<M: Message> Message for Asked<M> {
    type Result = ();
}

impl<K: RoomKind, M> Handler<Asked<M>> for RoomActor<K>
where
    Self: Handler<M>,
    M: Message + Send + 'static,
    M::Result: Send,
{
    type Result = ();

    fn handle(&mut self, asked: Asked<M>, ctx: &mut <Self as Actor>::Context) {
        let response = <Self as Handler<M>>::handle(self, asked.message, ctx);
        actix::dev::MessageResponse::handle(response, ctx, Some(asked.reply));
    }
}

/// Sends a write to a room so that it is handled even if the asker stops
/// waiting (see [`Asked`]).
pub fn submit<K, M>(
    room: &Addr<RoomActor<K>>,
    message: M,
) -> impl std::future::Future<Output = Result<M::Result, MailboxError>> + 'static
where
    K: RoomKind,
    RoomActor<K>: Handler<M>,
    <RoomActor<K> as Actor>::Context: actix::dev::ToEnvelope<RoomActor<K>, Asked<M>>,
    M: Message + Send + 'static,
    M::Result: Send,
{
    let (reply, answer) = oneshot::channel();
    room.do_send::<Asked<M>>(Asked { message, reply });
    async move { answer.await.map_err(|_| MailboxError::Closed) }
}

/// Makes the actor's handler panic, as a bug would. Reachable from Rust
/// only (never from the wire): the tests use it to prove that a dead room
/// is replaced and its sockets carry on.
#[doc(hidden)]
#[derive(Message)]
#[rtype(result = "()")]
pub struct InjectPanic;

impl<K: RoomKind> Handler<InjectPanic> for RoomActor<K> {
    type Result = ();

    fn handle(&mut self, _: InjectPanic, _: &mut Context<Self>) {
        panic!("injected panic in room {}", self.room_id);
    }
}

/// The error for a room whose actor died while a request waited on it.
pub fn room_gone() -> AppError {
    AppError::unavailable("room_unavailable", "The room restarted; please retry.")
}
