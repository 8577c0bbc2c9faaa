//! The connection actor: one per WebSocket. It speaks the envelope of the
//! protocol (events, acks, errors), enforces the frame size and rate limits,
//! pings the client, and routes events to room actors (`room::routing`).
//!
//! It owns its TCP stream directly (`engine::socket`): frames come in as a
//! stream of the actor, and frames going out are queued and written once per
//! round of messages by a [`Flush`] spawned for that round. A Socket.IO
//! client that polls over HTTP has a polling session instead of a stream
//! ([`Outlet::Polling`]) until it upgrades. To the rest of the engine it is
//! a [`Socket`] in the hub, subscribed to its user's topic and to the rooms
//! it joined.

use std::collections::{HashMap, HashSet};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_http::ws::{self, CloseCode, CloseReason, Frame, ProtocolError};
use bytes::{Bytes, BytesMut};
use bytestring::ByteString;
use serde::Serialize;
use serde_json::json;
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::domain::chat::MessageType;
use crate::domain::office_hours::EndReason;
use crate::domain::rate_limit::TokenBucket;
use crate::domain::room::RoomType;
use crate::engine::hub::{Refused, Socket, SocketRef, Topic};
use crate::engine::live_session::Moderation;
use crate::engine::office_hours::commands as office_hours;
use crate::engine::polling::{self, PollingSession};
use crate::engine::presence::fanout::PresenceFormat;
use crate::engine::registry::Registry;
use crate::engine::room::calls::{self, RoomCall, RoomRef};
use crate::engine::room::routing::{self, Target};
use crate::engine::room::Catchup;
use crate::engine::socket::{FrameReader, FrameWriter};
use crate::engine::{Disconnect, DisconnectReason};
use crate::error::{AppError, AppResult};
use crate::protocol::socket_io::{self, EnginePacket, Inbound};
use crate::protocol::{self, events, ClientEvent, ClientFrame, FrameError};

pub struct ConnectionActor {
    id: Uuid,
    /// Our frames as they are, or wrapped in Socket.IO packets.
    wire: Wire,
    user: Arc<AuthUser>,
    /// This socket as the hub and the rooms see it (a [`SocketRef`]).
    socket: Arc<ConnectionSocket>,
    registry: Arc<Registry>,
    /// Last time anything (a frame, a pong) came from the client.
    last_heard: Instant,
    rate: TokenBucket,
    /// Rooms this socket has joined, with their kind.
    rooms: HashMap<Uuid, RoomType>,
    /// Live sessions joined by their own id, and their rooms.
    sessions: HashMap<Uuid, Uuid>,
    /// Instructors whose office-hours status this socket watches.
    watching: HashSet<Uuid>,
    /// Frames count as presence activity at most once a second.
    presence_touch: crate::engine::presence::TouchThrottle,
    /// Where frames go on their way to the client.
    outlet: Outlet,
    /// A [`Flush`] is spawned and will write what is queued.
    flush_spawned: bool,
    /// A close frame is queued: nothing more is sent, and the actor stops
    /// once it is written (or after [`CLOSE_GRACE`]).
    closing: bool,
    /// Frames refused in a row (garbage, over the rate); see [`MAX_STRIKES`].
    strikes: u16,
    /// A message arriving in fragments (RFC 6455 continuation frames);
    /// boxed, so an idle socket pays one pointer for it.
    fragments: Option<Box<Fragments>>,
    /// When the token the socket was opened with expires: the heartbeat
    /// closes the socket then (no timer of its own per socket).
    token_expires_at: chrono::DateTime<chrono::Utc>,
}

/// What a client speaks on its socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// `/ws`: our JSON frames as they are.
    Native,
    /// `/socket.io/`: the same frames inside Engine.IO v4 / Socket.IO v5
    /// packets (`protocol::socket_io`), the handshake already done.
    SocketIo,
}

/// Where a connection's frames go out.
enum Outlet {
    /// Its WebSocket.
    WebSocket(FrameWriter),
    /// Its Engine.IO polling session: packets wait there for the client's
    /// next GET (Socket.IO clients only, until they upgrade).
    Polling(Arc<PollingSession>),
}

/// The Socket.IO packets of the frames this thread's sockets sent last. A
/// push goes to every member of a room as one shared frame; its packet is
/// made once per thread and shared the same way, not once per member.
struct RecentPackets {
    /// (our frame, its packet), newest last. Holding the frame keeps its
    /// bytes alive, so a pointer match cannot be a new frame at the same address.
    entries: std::collections::VecDeque<(ByteString, ByteString)>,
}

/// Frames remembered per thread: a burst of a few rooms' pushes.
const RECENT_PACKETS: usize = 32;
/// Larger frames are made each time (they are rare: join answers).
const RECENT_PACKET_MAX_BYTES: usize = 16 * 1024;

thread_local! {
    static SOCKET_IO_PACKETS: std::cell::RefCell<RecentPackets> =
        const { std::cell::RefCell::new(RecentPackets { entries: std::collections::VecDeque::new() }) };
}

impl RecentPackets {
    fn of(&mut self, frame: &ByteString) -> Option<ByteString> {
        let same = |known: &ByteString| known.as_ptr() == frame.as_ptr() && known.len() == frame.len();
        if let Some((_, packet)) = self.entries.iter().find(|(known, _)| same(known)) {
            return Some(packet.clone());
        }
        let packet = ByteString::from(socket_io::from_native(frame)?);
        // An ack goes to one socket only: not worth a place.
        if frame.len() <= RECENT_PACKET_MAX_BYTES && !frame.starts_with(r#"{"ack":"#) {
            if self.entries.len() == RECENT_PACKETS {
                self.entries.pop_front();
            }
            self.entries.push_back((frame.clone(), packet.clone()));
        }
        Some(packet)
    }
}

/// How long a closing socket may take to accept its close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Refused frames in a row after which the socket is closed (4005): a
/// client that keeps sending garbage is not a client.
const MAX_STRIKES: u16 = 100;

/// The token a socket was opened with: revoking it or its expiry closes the socket.
#[derive(Debug, Clone, Copy)]
pub struct SocketToken {
    /// `auth::token_fingerprint` of the token.
    pub fingerprint: u128,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// A fragmented message being put back together.
struct Fragments {
    /// Text (kept) or binary (refused once whole, so nothing is kept).
    text: bool,
    bytes: BytesMut,
}

/// The connection actor as a [`Socket`] of the hub.
struct ConnectionSocket {
    id: Uuid,
    user: Arc<AuthUser>,
    token: u128,
    addr: Addr<ConnectionActor>,
    /// Frames other actors handed over, not taken by the actor yet.
    inbox: Mutex<Inbox>,
    /// Frames the inbox holds at most (`WS_OUTBOUND_QUEUE`) and their bytes
    /// (`WS_OUTBOUND_BYTES`): past either the actor is not keeping up and
    /// the socket is a slow consumer. Bytes, not only frames: a burst of a
    /// thousand small frames is ordinary in a big room.
    inbox_capacity: usize,
    inbox_bytes: usize,
    /// How it hears of presence (`/ws?presence=`).
    presence: PresenceFormat,
}

/// Frames waiting for the connection actor. A burst (a lecture's join
/// storm, a busy room, a presence batch) wakes the actor once with one
/// [`Drain`], not once per frame: an actix envelope per recipient per
/// frame was most of the cost of a large room's fan-out.
#[derive(Default)]
struct Inbox {
    frames: Vec<ByteString>,
    /// The frames' bytes.
    bytes: usize,
    /// Whether a [`Drain`] is on its way; frames pushed meanwhile ride with it.
    drain_due: bool,
}

/// Takes the inbox's frames into the socket's queue.
#[derive(Message)]
#[rtype(result = "()")]
struct Drain;

impl ConnectionSocket {
    /// Queues a frame; only the first frame of a burst wakes the actor.
    fn push(&self, frame: ByteString) -> Result<(), Refused> {
        let mut inbox = self.inbox.lock().unwrap_or_else(PoisonError::into_inner);
        if inbox.frames.len() >= self.inbox_capacity || inbox.bytes + frame.len() > self.inbox_bytes {
            return Err(Refused::Full);
        }
        inbox.bytes += frame.len();
        inbox.frames.push(frame);
        if std::mem::replace(&mut inbox.drain_due, true) {
            return Ok(());
        }
        drop(inbox);
        // Drains are few (one per burst, at most two queued when an answer
        // drained the inbox meanwhile): a full mailbox never refuses one.
        self.wake(Drain)
    }

    fn wake(&self, drain: Drain) -> Result<(), Refused> {
        match self.addr.try_send(drain) {
            Ok(()) => Ok(()),
            Err(SendError::Full(drain)) => {
                self.addr.do_send(drain);
                Ok(())
            }
            Err(SendError::Closed(_)) => Err(Refused::Closed),
        }
    }
}

impl Socket for ConnectionSocket {
    fn id(&self) -> Uuid {
        self.id
    }

    fn user(&self) -> &Arc<AuthUser> {
        &self.user
    }

    fn try_push(&self, frame: ByteString) -> Result<(), Refused> {
        self.push(frame)
    }

    fn close(&self, reason: DisconnectReason) {
        // do_send: a full mailbox must not swallow the close too.
        self.addr.do_send(Disconnect(reason));
    }

    fn opened_with(&self, token_fingerprint: u128) -> bool {
        self.token == token_fingerprint
    }

    fn takes_presence_diffs(&self) -> bool {
        self.presence == PresenceFormat::Diffs
    }
}

impl ConnectionActor {
    /// Starts the actor for a socket whose handshake has been answered, on
    /// the current thread's arbiter. `already_read`: bytes that came with
    /// the handshake request (or after the Socket.IO handshake).
    pub fn start_on(
        stream: Rc<tokio::net::TcpStream>,
        already_read: BytesMut,
        wire: Wire,
        presence: PresenceFormat,
        user: AuthUser,
        token: SocketToken,
        registry: Arc<Registry>,
    ) {
        // TCP_NODELAY is already set, at accept (startup.rs).
        let reader = FrameReader::new(Rc::clone(&stream), registry.deps.config.ws_max_frame_bytes, already_read);
        let outlet = Outlet::WebSocket(FrameWriter::new(stream));
        Self::start(Some(reader), outlet, wire, presence, user, token, registry);
    }

    /// Starts the actor for a Socket.IO client that connected over HTTP
    /// long-polling: its packets come as [`Polled`] messages, and its frames
    /// wait in `session` for its GETs until a [`SwitchToWebSocket`].
    pub fn start_polling(
        session: Arc<PollingSession>,
        user: AuthUser,
        token: SocketToken,
        registry: Arc<Registry>,
    ) -> Addr<ConnectionActor> {
        Self::start(None, Outlet::Polling(session), Wire::SocketIo, PresenceFormat::Updates, user, token, registry)
    }

    fn start(
        reader: Option<FrameReader>,
        outlet: Outlet,
        wire: Wire,
        presence: PresenceFormat,
        user: AuthUser,
        token: SocketToken,
        registry: Arc<Registry>,
    ) -> Addr<ConnectionActor> {
        ConnectionActor::create(move |ctx| {
            if let Some(reader) = reader {
                ctx.add_stream(reader);
            }
            let config = &registry.deps.config;
            let rate = TokenBucket::new(config.ws_rate_per_sec, config.ws_rate_burst, Instant::now());
            let (id, user) = (Uuid::new_v4(), Arc::new(user));
            let socket = Arc::new(ConnectionSocket {
                id,
                user: Arc::clone(&user),
                token: token.fingerprint,
                addr: ctx.address(),
                inbox: Mutex::default(),
                inbox_capacity: config.ws_outbound_queue,
                inbox_bytes: config.ws_outbound_bytes,
                presence,
            });
            Self {
                id,
                wire,
                user,
                socket,
                registry,
                last_heard: Instant::now(),
                rate,
                rooms: HashMap::new(),
                sessions: HashMap::new(),
                watching: HashSet::new(),
                presence_touch: Default::default(),
                outlet,
                flush_spawned: false,
                closing: false,
                strikes: 0,
                fragments: None,
                token_expires_at: token.expires_at,
            }
        })
    }

    /// This socket as the hub and the rooms hold it.
    fn socket_ref(&self) -> SocketRef {
        Arc::clone(&self.socket) as SocketRef
    }

    /// Queues a frame; it leaves with the others of this round. Every byte
    /// queued counts (pushes, acks, errors, pongs alike): past
    /// `WS_OUTBOUND_BYTES` not taken by the client, it is a slow consumer.
    fn queue(&mut self, ctx: &mut Context<Self>, message: ws::Message) {
        if self.closing {
            return;
        }
        let closing_frame = matches!(message, ws::Message::Close(_));
        let pending = match &self.outlet {
            Outlet::WebSocket(writer) => writer.pending_bytes(),
            Outlet::Polling(session) => session.pending_bytes(),
        };
        if !closing_frame && pending >= self.registry.deps.config.ws_outbound_bytes {
            self.registry.deps.metrics.slow_consumers_closed.fetch_add(1, Ordering::Relaxed);
            log::info!("connection {} of {}: slow consumer, closing", self.id, self.user.id);
            // The close frame waits behind the unread ones; CLOSE_GRACE ends it.
            return self.close_for(ctx, DisconnectReason::SlowConsumer);
        }
        match (&mut self.outlet, message) {
            (Outlet::WebSocket(writer), message) => writer.queue(message),
            (Outlet::Polling(session), ws::Message::Text(packet)) => session.push(packet),
            (Outlet::Polling(session), ws::Message::Close(_)) => session.push(ByteString::from_static(polling::CLOSE)),
            // Socket.IO pings are text packets: nothing else is sent on a session.
            (Outlet::Polling(_), _) => return,
        }
        if !self.flush_spawned {
            self.flush_spawned = true;
            ctx.spawn(Flush);
        }
    }

    /// Moves the inbox's frames into the socket's queue. At once, so the
    /// queue is where a client that does not read shows (`queue` bounds it).
    fn drain_inbox(&mut self, ctx: &mut Context<Self>) {
        let frames = {
            let mut inbox = self.socket.inbox.lock().unwrap_or_else(PoisonError::into_inner);
            inbox.drain_due = false;
            inbox.bytes = 0;
            std::mem::take(&mut inbox.frames)
        };
        for frame in frames {
            self.send(ctx, frame);
        }
    }

    fn send(&mut self, ctx: &mut Context<Self>, frame: ByteString) {
        let frame = match self.wire {
            Wire::Native => frame,
            Wire::SocketIo => match SOCKET_IO_PACKETS.with(|packets| packets.borrow_mut().of(&frame)) {
                Some(packet) => packet,
                None => return log::error!("connection {}: a frame of no known shape: {frame}", self.id),
            },
        };
        self.registry.deps.metrics.frames_out.fetch_add(1, Ordering::Relaxed);
        self.queue(ctx, ws::Message::Text(frame));
    }

    fn reply<T: Serialize>(&mut self, ctx: &mut Context<Self>, ack: Option<u64>, result: AppResult<T>) {
        // What was pushed to this socket before the answer was made goes
        // out before it (a join's catch-up, then its ack), however the
        // actor's mailbox and its futures happen to be polled.
        self.drain_inbox(ctx);
        if let Some(frame) = protocol::reply_frame(ack, &result) {
            self.send(ctx, frame);
        }
    }

    /// Sends a close frame and stops once it is written.
    fn close(&mut self, ctx: &mut Context<Self>, reason: Option<CloseReason>) {
        if self.closing {
            return;
        }
        self.queue(ctx, ws::Message::Close(reason));
        self.closing = true;
        ctx.run_later(CLOSE_GRACE, |_, ctx| ctx.stop());
    }

    fn close_for(&mut self, ctx: &mut Context<Self>, reason: DisconnectReason) {
        if self.wire == Wire::SocketIo && !self.closing {
            // Socket.IO clients never see the close code: say it in an event.
            let closing = json!({ "code": reason.code(), "reason": reason.as_str() });
            self.send(ctx, protocol::event_frame(events::CLOSING, &closing));
            // `41` ends the namespace: the client does not reconnect by itself
            // (it needs a new token, or must stop sending garbage); without
            // it, a closed transport is reconnected at once.
            if !reason.worth_reconnecting() {
                self.queue(ctx, ws::Message::Text(ByteString::from_static(socket_io::DISCONNECT)));
            }
        }
        let reason = CloseReason { code: CloseCode::from(reason.code()), description: Some(reason.as_str().into()) };
        self.close(ctx, Some(reason));
    }

    /// Every data frame takes a token of the rate limit before anything is
    /// done with it, bad ones included.
    fn take_token(&mut self) -> bool {
        self.registry.deps.metrics.frames_in.fetch_add(1, Ordering::Relaxed);
        let allowed = self.rate.try_take(Instant::now());
        if !allowed {
            self.registry.deps.metrics.frames_rate_limited.fetch_add(1, Ordering::Relaxed);
        }
        allowed
    }

    /// A frame was refused: too many in a row and the socket is closed.
    fn strike(&mut self, ctx: &mut Context<Self>) {
        self.strikes = self.strikes.saturating_add(1);
        if self.strikes >= MAX_STRIKES && !self.closing {
            log::info!("connection {} of {}: {MAX_STRIKES} refused frames in a row, closing", self.id, self.user.id);
            self.close_for(ctx, DisconnectReason::BadFrames);
        }
    }

    /// Answers a refused frame (the answer counts against the outbound bound).
    fn refuse(&mut self, ctx: &mut Context<Self>, ack: Option<u64>, error: AppError) {
        self.reply::<()>(ctx, ack, Err(error));
        self.strike(ctx);
    }

    fn on_text(&mut self, text: &str, ctx: &mut Context<Self>) {
        let allowed = self.take_token();
        // Every client frame is activity for presence (heartbeats included);
        // throttled to one Touch a second, so it costs nearly nothing.
        self.presence_touch.touch(&self.registry, self.user.id, self.id);
        // Parsed even when over the rate: a frame with an ack id gets its one answer.
        let parsed = match self.wire {
            Wire::Native => protocol::parse_client_frame(text),
            Wire::SocketIo => match self.read_socket_io(text, ctx) {
                Some(parsed) => parsed,
                None => return,
            },
        };
        let frame = match parsed {
            Ok(frame) => frame,
            Err(bad) => return self.refuse(ctx, bad.ack, bad.error),
        };
        if !allowed {
            let wait = self.rate.wait_hint();
            let err = AppError::rate_limited(format!("Too many frames; wait {} ms.", wait.as_millis().max(1)));
            return self.refuse(ctx, frame.ack, err);
        }
        self.strikes = 0;
        self.dispatch(frame.event, frame.ack, ctx);
    }

    /// An Engine.IO packet: an event is handed on as our frame; the
    /// transport's own packets (pings, pongs, disconnects) are handled here.
    fn read_socket_io(&mut self, text: &str, ctx: &mut Context<Self>) -> Option<Result<ClientFrame, FrameError>> {
        let refused = |error: AppError| Some(Err(FrameError { ack: None, error }));
        match EnginePacket::parse(text) {
            Some(EnginePacket::Message(packet)) => match socket_io::parse_packet(packet) {
                Ok(Inbound::Event(parsed)) => Some(parsed),
                Ok(Inbound::Connect { .. }) => {
                    refused(AppError::bad_request("already_connected", "This socket is already connected."))
                }
                // We never ask the client for an ack.
                Ok(Inbound::Ack) => None,
                Ok(Inbound::Disconnect) => {
                    self.close(ctx, Some(CloseCode::Normal.into()));
                    None
                }
                Err(refusal) => refused(refusal.error()),
            },
            Some(EnginePacket::Ping(payload)) => {
                self.queue(ctx, ws::Message::Text(ByteString::from(socket_io::pong(payload))));
                None
            }
            Some(EnginePacket::Pong(_) | EnginePacket::Noop | EnginePacket::Upgrade) => None,
            Some(EnginePacket::Close) => {
                self.close(ctx, Some(CloseCode::Normal.into()));
                None
            }
            Some(EnginePacket::Open) | None => refused(AppError::bad_request(
                "invalid_frame",
                "Not an Engine.IO packet a client sends (4 for a message, 3 for a pong).",
            )),
        }
    }

    /// A fragment of a message: a whole text message goes on as one frame,
    /// within the frame limit (fragments are bounded by it, so they need no
    /// token of their own); binary ones are refused once whole.
    fn on_fragment(&mut self, item: ws::Item, ctx: &mut Context<Self>) {
        let limit = self.registry.deps.config.ws_max_frame_bytes;
        let (first, last, bytes) = match item {
            ws::Item::FirstText(bytes) => (Some(true), false, bytes),
            ws::Item::FirstBinary(bytes) => (Some(false), false, bytes),
            ws::Item::Continue(bytes) => (None, false, bytes),
            ws::Item::Last(bytes) => (None, true, bytes),
        };
        if let Some(text) = first {
            if self.fragments.replace(Box::new(Fragments { text, bytes: BytesMut::new() })).is_some() {
                self.refuse(ctx, None, AppError::bad_request("invalid_frame", "A new message began inside another."));
            }
        }
        let Some(fragments) = self.fragments.as_mut() else {
            return self.refuse(
                ctx,
                None,
                AppError::bad_request("invalid_frame", "A continuation frame with no message."),
            );
        };
        if fragments.text {
            if fragments.bytes.len() + bytes.len() > limit {
                self.fragments = None;
                let err = AppError::too_large(format!("Messages may be at most {limit} bytes."));
                self.reply::<()>(ctx, None, Err(err));
                return self.close_for(ctx, DisconnectReason::FrameTooLarge);
            }
            fragments.bytes.extend_from_slice(&bytes);
        }
        if !last {
            return;
        }
        let Some(Fragments { text, bytes }) = self.fragments.take().map(|boxed| *boxed) else { return };
        if !text {
            let err = AppError::bad_request("unsupported_frame", "Send each event as one UTF-8 JSON text frame.");
            return self.refuse(ctx, None, err);
        }
        // The whole message takes its token of the rate limit, as one frame does.
        match std::str::from_utf8(&bytes) {
            Ok(text) => self.on_text(text, ctx),
            Err(_) => self.close(ctx, Some(CloseCode::Invalid.into())),
        }
    }

    /// Runs `work` and answers the frame with its result, in the actor's context.
    fn answer<T, F>(&self, ctx: &mut Context<Self>, ack: Option<u64>, work: F)
    where
        T: Serialize + 'static,
        F: std::future::Future<Output = AppResult<T>> + 'static,
    {
        ctx.spawn(work.into_actor(self).map(move |result, act, ctx| act.reply(ctx, ack, result)));
    }

    /// A room this socket has joined.
    fn joined_room(&self, room_id: Uuid) -> AppResult<RoomRef> {
        let room_type = self.rooms.get(&room_id).ok_or_else(|| AppError::forbidden("Join the room first."))?;
        Ok(RoomRef { room_type: *room_type, room_id })
    }

    /// The room of a live session this socket has joined.
    fn joined_session(&self, session_id: Uuid) -> AppResult<RoomRef> {
        let room_id = self.sessions.get(&session_id).ok_or_else(|| AppError::forbidden("Join the session first."))?;
        self.joined_room(*room_id)
    }

    /// Sends a call to a joined room and answers the frame with its result.
    /// Sent now, not inside a future, so the room sees this socket's frames
    /// in the order they came.
    fn to_room(&mut self, room: AppResult<RoomRef>, ack: Option<u64>, ctx: &mut Context<Self>, call: RoomCall) {
        match room {
            Ok(room) => {
                let answered = calls::call(&self.registry, room, Some(&self.socket_ref()), call);
                self.answer(ctx, ack, answered);
            }
            Err(err) => self.reply::<()>(ctx, ack, Err(err)),
        }
    }

    /// Enters a room: who may is checked against the database, then the room
    /// admits (window, capacity) and subscribes this socket.
    fn join(
        &mut self,
        target: Target,
        since_message_id: Option<Uuid>,
        catchup: Catchup,
        ack: Option<u64>,
        ctx: &mut Context<Self>,
    ) {
        let registry = Arc::clone(&self.registry);
        let socket = self.socket_ref();
        let work = async move {
            let entry = routing::resolve(&registry, socket.user(), target).await?;
            let call = RoomCall::Join { since_message_id, catchup };
            let reply = calls::call(&registry, RoomRef::of(&entry), Some(&socket), call).await?;
            Ok((entry, reply))
        };
        ctx.spawn(work.into_actor(self).map(move |joined: AppResult<_>, act, ctx| {
            let reply = joined.map(|(entry, reply)| {
                act.rooms.insert(entry.room_id, entry.room_type);
                if let Some(session_id) = entry.session_id {
                    act.sessions.insert(session_id, entry.room_id);
                }
                reply
            });
            act.reply(ctx, ack, reply);
        }));
    }

    /// Leaves a joined room; the ack waits for the room, so the leave time
    /// is the time of the request.
    fn leave(&mut self, room_id: Option<Uuid>, ack: Option<u64>, ctx: &mut Context<Self>, not_in: AppError) {
        let Some((room_id, room_type)) = room_id.and_then(|id| self.rooms.remove(&id).map(|kind| (id, kind))) else {
            return self.reply::<()>(ctx, ack, Err(not_in));
        };
        self.sessions.retain(|_, room| *room != room_id);
        let left = self.leave_room(RoomRef { room_type, room_id });
        self.answer(ctx, ack, left);
    }

    /// Out of the room's topic at once (a room rebuilt meanwhile must not
    /// take this socket back); then the room, wherever it is, to tell.
    fn leave_room(&self, room: RoomRef) -> impl std::future::Future<Output = AppResult<Box<RawValue>>> + 'static {
        self.registry.broker.unsubscribe(Topic::Room(room.room_id), self.id);
        calls::call(&self.registry, room, Some(&self.socket_ref()), RoomCall::Leave)
    }

    fn dispatch(&mut self, event: ClientEvent, ack: Option<u64>, ctx: &mut Context<Self>) {
        match event {
            ClientEvent::JoinLiveSession(join) => {
                self.join(Target::LiveSession(join.session_id), join.since_message_id, Catchup::Push, ack, ctx)
            }
            ClientEvent::JoinRoom(join) => {
                self.join(Target::Room(join.room_id), join.since_message_id, Catchup::InAck, ack, ctx)
            }
            ClientEvent::LeaveLiveSession(leave) => {
                let room_id = self.sessions.get(&leave.session_id).copied();
                let not_in = AppError::bad_request("not_in_session", "You are not in that session.");
                self.leave(room_id, ack, ctx, not_in);
            }
            ClientEvent::LeaveRoom(leave) => {
                let not_in = AppError::bad_request("not_in_room", "You are not in that room.");
                self.leave(Some(leave.room_id), ack, ctx, not_in);
            }
            ClientEvent::SessionMessage(post) => {
                let call = RoomCall::Post {
                    text: post.message,
                    message_type: MessageType::Text,
                    client_msg_id: post.client_msg_id,
                };
                self.to_room(self.joined_session(post.session_id), ack, ctx, call)
            }
            ClientEvent::RoomMessage(post) => {
                let call = RoomCall::Post {
                    text: post.message,
                    message_type: post.message_type,
                    client_msg_id: post.client_msg_id,
                };
                self.to_room(self.joined_room(post.room_id), ack, ctx, call)
            }
            ClientEvent::TypingInSession(typing) => {
                self.to_room(self.joined_session(typing.session_id), ack, ctx, RoomCall::Typing)
            }
            ClientEvent::TypingInRoom(typing) => {
                self.to_room(self.joined_room(typing.room_id), ack, ctx, RoomCall::Typing)
            }
            ClientEvent::EditMessage(edit) => {
                let call = RoomCall::Edit { message_id: edit.message_id, text: edit.message };
                self.to_room(self.joined_room(edit.room_id), ack, ctx, call)
            }
            ClientEvent::DeleteMessage(target) => {
                let call = RoomCall::Delete { message_id: target.message_id };
                self.to_room(self.joined_room(target.room_id), ack, ctx, call)
            }
            ClientEvent::MarkRead(target) => {
                let call = RoomCall::MarkRead { message_id: target.message_id };
                self.to_room(self.joined_room(target.room_id), ack, ctx, call)
            }
            ClientEvent::AskQuestion(ask) => {
                let call = RoomCall::Ask { text: ask.question, anonymous: ask.anonymous };
                self.to_room(self.joined_session(ask.session_id), ack, ctx, call)
            }
            ClientEvent::UpvoteQuestion(vote) => {
                let call = RoomCall::Upvote { question_id: vote.question_id };
                self.to_room(self.joined_session(vote.session_id), ack, ctx, call)
            }
            ClientEvent::AnswerQuestion(target) => {
                let call = RoomCall::Moderate { question_id: target.question_id, action: Moderation::Answer };
                self.to_room(self.joined_session(target.session_id), ack, ctx, call)
            }
            ClientEvent::DismissQuestion(target) => {
                let call = RoomCall::Moderate { question_id: target.question_id, action: Moderation::Dismiss };
                self.to_room(self.joined_session(target.session_id), ack, ctx, call)
            }
            ClientEvent::PinQuestion(pin) => {
                let call = RoomCall::Moderate { question_id: pin.question_id, action: Moderation::Pin(pin.pinned) };
                self.to_room(self.joined_session(pin.session_id), ack, ctx, call)
            }
            ClientEvent::UpdatePresence(update) => {
                let change = match update.into_change() {
                    Ok(change) => change,
                    Err(err) => return self.reply::<()>(ctx, ack, Err(err.into())),
                };
                // Sent now, not inside the future, so changes keep their frame order.
                let updated = crate::engine::presence::update(&self.registry, self.user.id, Some(self.id), change);
                self.answer(ctx, ack, async move { Ok(json!({ "presence": updated.await? })) });
            }
            event => self.office_hours(event, ack, ctx),
        }
    }

    /// The office-hours events: each is the command REST runs too.
    fn office_hours(&mut self, event: ClientEvent, ack: Option<u64>, ctx: &mut Context<Self>) {
        let (registry, user) = (Arc::clone(&self.registry), Arc::clone(&self.user));
        match event {
            ClientEvent::JoinOfficeHoursQueue(join) => self.answer(ctx, ack, async move {
                Ok(json!({ "entry": office_hours::join_queue(&registry, &user, join).await? }))
            }),
            ClientEvent::LeaveOfficeHoursQueue(entry) => self.answer(ctx, ack, async move {
                Ok(json!({ "entry": office_hours::leave_queue(&registry, &user, entry.queue_id).await? }))
            }),
            ClientEvent::DeferOfficeHoursTurn(entry) => self.answer(ctx, ack, async move {
                Ok(json!({ "entry": office_hours::defer_turn(&registry, &user, entry.queue_id).await? }))
            }),
            ClientEvent::AdmitStudent(entry) => self.answer(ctx, ack, async move {
                let admission = office_hours::admit(&registry, &user, vec![entry.queue_id]).await?;
                Ok(json!({ "roomId": admission.room_id, "entry": admission.entries.into_iter().next() }))
            }),
            ClientEvent::AdmitStudents(entries) => {
                self.answer(ctx, ack, async move { office_hours::admit(&registry, &user, entries.queue_ids).await })
            }
            ClientEvent::CompleteOfficeHours(entry) => self.answer(ctx, ack, async move {
                let ended = office_hours::end_entry(&registry, &user, entry.queue_id, EndReason::Completed).await?;
                Ok(json!({ "entry": ended }))
            }),
            ClientEvent::SkipOfficeHours(entry) => self.answer(ctx, ack, async move {
                let ended = office_hours::end_entry(&registry, &user, entry.queue_id, EndReason::Skipped).await?;
                Ok(json!({ "entry": ended }))
            }),
            ClientEvent::AnnounceOfficeHours(announce) => {
                self.answer(ctx, ack, async move { office_hours::announce(&registry, &user, &announce.message).await })
            }
            ClientEvent::WatchOfficeHours(target) => {
                self.watching.insert(target.instructor_id);
                let socket = self.socket_ref();
                self.answer(ctx, ack, async move {
                    Ok(json!({ "status": office_hours::watch(&registry, socket, target.instructor_id).await? }))
                })
            }
            ClientEvent::UnwatchOfficeHours(target) => {
                self.watching.remove(&target.instructor_id);
                office_hours::unwatch(&self.registry, self.id, target.instructor_id);
                self.reply(ctx, ack, Ok(json!({})));
            }
            other => log::error!("connection {}: {other:?} reached the office-hours dispatch", self.id),
        }
    }
}

impl Actor for ConnectionActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let config = &self.registry.deps.config;
        // Frames come through the inbox; the mailbox holds its Drain and a
        // few commands (Disconnect), so actix's default bound is plenty.
        self.registry.broker.subscribe(Topic::User(self.user.id), self.socket_ref(), false);
        crate::engine::presence::connected(&self.registry, self.user.id, self.id);
        let metrics = &self.registry.deps.metrics;
        metrics.connections_open.fetch_add(1, Ordering::Relaxed);
        metrics.connections_total.fetch_add(1, Ordering::Relaxed);
        if self.wire == Wire::SocketIo {
            metrics.socket_io_connections_open.fetch_add(1, Ordering::Relaxed);
        }
        if matches!(self.outlet, Outlet::Polling(_)) {
            metrics.socket_io_polling_open.fetch_add(1, Ordering::Relaxed);
        }
        let timeout = config.ws_client_timeout();
        ctx.run_interval(config.ws_ping_interval(), move |act, ctx| {
            // A socket lives no longer than the token it was opened with.
            if act.registry.deps.clock.now() >= act.token_expires_at {
                act.close_for(ctx, DisconnectReason::TokenExpired);
            } else if act.last_heard.elapsed() > timeout {
                log::info!("connection {} of {} timed out", act.id, act.user.id);
                act.close_for(ctx, DisconnectReason::HeartbeatTimeout);
            } else if act.wire == Wire::SocketIo {
                // Engine.IO pings in its own packets; the client answers `3`.
                act.queue(ctx, ws::Message::Text(ByteString::from_static(socket_io::PING)));
            } else {
                act.queue(ctx, ws::Message::Ping(Bytes::new()));
            }
        });
        if self.wire == Wire::SocketIo {
            self.queue(ctx, ws::Message::Text(ByteString::from(socket_io::connected(&self.id.to_string()))));
        }
        let hello =
            protocol::event_frame(events::CONNECTED, &json!({ "userId": self.user.id, "connectionId": self.id }));
        self.send(ctx, hello);
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        self.registry.broker.unsubscribe(Topic::User(self.user.id), self.id);
        for instructor_id in std::mem::take(&mut self.watching) {
            office_hours::unwatch(&self.registry, self.id, instructor_id);
        }
        crate::engine::presence::disconnected(&self.registry, self.user.id, self.id);
        self.registry.deps.metrics.connections_open.fetch_sub(1, Ordering::Relaxed);
        if self.wire == Wire::SocketIo {
            self.registry.deps.metrics.socket_io_connections_open.fetch_sub(1, Ordering::Relaxed);
        }
        if let Outlet::Polling(session) = &self.outlet {
            self.registry.deps.metrics.socket_io_polling_open.fetch_sub(1, Ordering::Relaxed);
            self.registry.polling.remove(&session.sid);
        }
        for (room_id, room_type) in std::mem::take(&mut self.rooms) {
            // Handed to the room now; nobody waits for the answer.
            actix::spawn(self.leave_room(RoomRef { room_type, room_id }));
        }
    }
}

impl StreamHandler<Result<Frame, ProtocolError>> for ConnectionActor {
    fn handle(&mut self, item: Result<Frame, ProtocolError>, ctx: &mut Self::Context) {
        self.last_heard = Instant::now();
        match item {
            Ok(Frame::Text(bytes)) => match std::str::from_utf8(&bytes) {
                Ok(text) => self.on_text(text, ctx),
                Err(_) => {
                    log::info!("connection {}: text frame that is not UTF-8", self.id);
                    self.close(ctx, Some(CloseCode::Invalid.into()));
                }
            },
            // Pings are frames too: over the rate they go unanswered.
            Ok(Frame::Ping(payload)) => {
                if self.take_token() {
                    self.queue(ctx, ws::Message::Pong(payload));
                } else {
                    self.strike(ctx);
                }
            }
            Ok(Frame::Pong(_)) => {}
            Ok(Frame::Binary(_)) => {
                self.take_token();
                let err = AppError::bad_request("unsupported_frame", "Send each event as one UTF-8 JSON text frame.");
                self.refuse(ctx, None, err);
            }
            Ok(Frame::Continuation(item)) => self.on_fragment(item, ctx),
            // The close handshake: answer with the client's own reason.
            Ok(Frame::Close(reason)) => self.close(ctx, reason),
            Err(ProtocolError::Overflow) => {
                let limit = self.registry.deps.config.ws_max_frame_bytes;
                let err = AppError::too_large(format!("Frames may be at most {limit} bytes."));
                self.reply::<()>(ctx, None, Err(err));
                self.close_for(ctx, DisconnectReason::FrameTooLarge);
            }
            Err(err) => {
                log::info!("connection {}: protocol error {err}", self.id);
                ctx.stop();
            }
        }
    }

    /// The client closed its end (or the stream failed): nothing more to read.
    fn finished(&mut self, ctx: &mut Self::Context) {
        if !self.closing {
            ctx.stop();
        }
    }
}

/// Writes what the current round of messages queued, in one system call
/// where the socket takes it all; while the socket is full it waits for it
/// to drain, and frames queued meanwhile join the same write.
struct Flush;

impl ActorFuture<ConnectionActor> for Flush {
    type Output = ();

    fn poll(
        self: Pin<&mut Self>,
        act: &mut ConnectionActor,
        ctx: &mut Context<ConnectionActor>,
        task: &mut std::task::Context<'_>,
    ) -> Poll<()> {
        match &mut act.outlet {
            Outlet::WebSocket(writer) => match writer.poll_flush(task) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(())) if act.closing => ctx.stop(),
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(err)) => {
                    log::debug!("connection {}: write failed: {err}", act.id);
                    ctx.stop();
                }
            },
            // The packets go to the GET waiting, or wait for the next one
            // (a closing session gives it CLOSE_GRACE to come).
            Outlet::Polling(session) => {
                session.hand_over();
                if act.closing && session.pending_bytes() == 0 {
                    ctx.stop();
                }
            }
        }
        act.flush_spawned = false;
        Poll::Ready(())
    }
}

/// Packets a polling client POSTed, in order (each as a WebSocket text
/// frame would be). Answered once the actor took them.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Polled(pub Vec<String>);

impl Handler<Polled> for ConnectionActor {
    type Result = ();

    fn handle(&mut self, Polled(packets): Polled, ctx: &mut Self::Context) {
        self.last_heard = Instant::now();
        for packet in packets {
            if self.closing {
                break;
            }
            self.on_text(&packet, ctx);
        }
    }
}

/// A polling client finished its upgrade (`5` on the probed WebSocket):
/// the actor takes the socket, possibly from another worker thread, and
/// sends what was waiting for a GET on it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SwitchToWebSocket {
    pub stream: std::net::TcpStream,
    /// Bytes read past the client's `5`.
    pub unread: BytesMut,
}

impl Handler<SwitchToWebSocket> for ConnectionActor {
    type Result = ();

    fn handle(&mut self, switch: SwitchToWebSocket, ctx: &mut Self::Context) {
        let Outlet::Polling(session) = &self.outlet else {
            return log::error!("connection {}: upgraded twice", self.id);
        };
        let session = Arc::clone(session);
        // Registered with this thread's reactor: the socket was the HTTP
        // worker's that answered the upgrade.
        let stream = match tokio::net::TcpStream::from_std(switch.stream) {
            Ok(stream) => Rc::new(stream),
            Err(err) => {
                log::info!("connection {}: the upgraded socket cannot be taken: {err}", self.id);
                return ctx.stop();
            }
        };
        let limit = self.registry.deps.config.ws_max_frame_bytes;
        ctx.add_stream(FrameReader::new(Rc::clone(&stream), limit, switch.unread));
        let mut writer = FrameWriter::new(stream);
        for packet in session.take_all() {
            writer.queue(ws::Message::Text(packet));
        }
        self.outlet = Outlet::WebSocket(writer);
        self.registry.polling.remove(&session.sid);
        self.registry.deps.metrics.socket_io_polling_open.fetch_sub(1, Ordering::Relaxed);
        self.last_heard = Instant::now();
        if !self.flush_spawned {
            self.flush_spawned = true;
            ctx.spawn(Flush);
        }
    }
}

impl Handler<Drain> for ConnectionActor {
    type Result = ();

    fn handle(&mut self, _: Drain, ctx: &mut Self::Context) {
        self.drain_inbox(ctx);
    }
}

impl Handler<Disconnect> for ConnectionActor {
    type Result = ();

    fn handle(&mut self, Disconnect(reason): Disconnect, ctx: &mut Self::Context) {
        self.close_for(ctx, reason);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_frame_is_made_a_packet_once_and_acks_are_not_kept() {
        let mut recent = RecentPackets { entries: Default::default() };
        let push = protocol::event_frame(events::NEW_MESSAGE, &json!({ "text": "hi" }));
        let first = recent.of(&push).expect("a packet");
        let again = recent.of(&push.clone()).expect("a packet");
        assert_eq!(first, r#"42["new-message",{"text":"hi"}]"#);
        assert_eq!(first.as_ptr(), again.as_ptr(), "the same frame shares its packet");

        // The same text in other bytes is another frame: translated, not mistaken.
        let twin = ByteString::from(push.to_string());
        assert_eq!(recent.of(&twin).expect("a packet"), first);

        let ack = protocol::ack_ok(3, &json!({}));
        assert_eq!(recent.of(&ack).expect("a packet"), r#"433[{"ok":true,"data":{}}]"#);
        assert_eq!(recent.entries.len(), 2, "the push and its twin, not the ack");

        for n in 0..2 * RECENT_PACKETS {
            recent.of(&protocol::event_frame(events::NEW_MESSAGE, &json!({ "n": n })));
        }
        assert_eq!(recent.entries.len(), RECENT_PACKETS, "bounded");
    }
}
