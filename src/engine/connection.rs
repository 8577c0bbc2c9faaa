//! The connection actor: one per WebSocket. It speaks the envelope of the
//! protocol (events, acks, errors), enforces the frame size and rate limits,
//! pings the client, and routes events to room actors through the registry.
//!
//! It owns its TCP stream directly (`engine::socket`): frames come in as a
//! stream of the actor, and frames going out are queued and written once per
//! round of messages by a [`Flush`] spawned for that round.

use std::collections::HashSet;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_http::ws::{self, CloseCode, CloseReason, Frame, ProtocolError};
use bytes::{Bytes, BytesMut};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::db;
use crate::domain::rate_limit::TokenBucket;
use crate::domain::Role;
use crate::engine::live_session::{
    AskQuestion, Connection, Join, JoinReply, Leave, LiveSessionActor, ModerateQuestion, Moderation, PostMessage,
    Typing, UpvoteQuestion,
};
use crate::engine::registry::{ConnectionHandle, Registry};
use crate::engine::socket::{FrameReader, FrameWriter};
use crate::engine::{Disconnect, DisconnectReason, Push};
use crate::error::{AppError, AppResult};
use crate::protocol::{self, events, ClientEvent};

pub struct ConnectionActor {
    id: Uuid,
    user: AuthUser,
    registry: Arc<Registry>,
    /// Last time anything (a frame, a pong) came from the client.
    last_heard: Instant,
    rate: TokenBucket,
    /// Live sessions this socket has joined.
    sessions: HashSet<Uuid>,
    /// Frames count as presence activity at most once a second.
    presence_touch: crate::engine::presence::TouchThrottle,
    /// Frames on their way to the client.
    writer: FrameWriter,
    /// A [`Flush`] is spawned and will write what is queued.
    flush_spawned: bool,
    /// A close frame is queued: nothing more is sent, and the actor stops
    /// once it is written (or after [`CLOSE_GRACE`]).
    closing: bool,
}

/// How long a closing socket may take to accept its close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

impl ConnectionActor {
    /// Starts the actor for a socket whose handshake has been answered, on
    /// the current thread's arbiter. `already_read`: bytes that came with
    /// the handshake request.
    pub fn start_on(socket: tokio::net::TcpStream, already_read: BytesMut, user: AuthUser, registry: Arc<Registry>) {
        // TCP_NODELAY is already set, at accept (startup.rs).
        let socket = Rc::new(socket);
        let reader = FrameReader::new(Rc::clone(&socket), registry.deps.config.ws_max_frame_bytes, already_read);
        let writer = FrameWriter::new(socket);
        ConnectionActor::create(move |ctx| {
            ctx.add_stream(reader);
            let config = &registry.deps.config;
            let rate = TokenBucket::new(config.ws_rate_per_sec, config.ws_rate_burst, Instant::now());
            Self {
                id: Uuid::new_v4(),
                user,
                registry,
                last_heard: Instant::now(),
                rate,
                sessions: HashSet::new(),
                presence_touch: Default::default(),
                writer,
                flush_spawned: false,
                closing: false,
            }
        });
    }

    /// This socket as rooms see it.
    fn as_connection(&self, ctx: &mut Context<Self>) -> Connection {
        Connection { id: self.id, push: ctx.address().recipient(), disconnect: ctx.address().recipient() }
    }

    /// Queues a frame; it leaves with the others of this round.
    fn queue(&mut self, ctx: &mut Context<Self>, message: ws::Message) {
        if self.closing {
            return;
        }
        self.writer.queue(message);
        if !self.flush_spawned {
            self.flush_spawned = true;
            ctx.spawn(Flush);
        }
    }

    fn send(&mut self, ctx: &mut Context<Self>, frame: bytestring::ByteString) {
        self.registry.deps.metrics.frames_out.fetch_add(1, Ordering::Relaxed);
        self.queue(ctx, ws::Message::Text(frame));
    }

    fn reply<T: Serialize>(&mut self, ctx: &mut Context<Self>, ack: Option<u64>, result: AppResult<T>) {
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
        let reason = CloseReason { code: CloseCode::from(reason.code()), description: Some(reason.as_str().into()) };
        self.close(ctx, Some(reason));
    }

    fn on_text(&mut self, text: &str, ctx: &mut Context<Self>) {
        self.registry.deps.metrics.frames_in.fetch_add(1, Ordering::Relaxed);
        // Every client frame is activity for presence (heartbeats included);
        // throttled to one Touch a second, so it costs nearly nothing.
        self.presence_touch.touch(&self.registry, self.user.id, self.id);
        let frame = match protocol::parse_client_frame(text) {
            Ok(frame) => frame,
            Err(bad) => return self.reply::<()>(ctx, bad.ack, Err(bad.error)),
        };
        if !self.rate.try_take(Instant::now()) {
            self.registry.deps.metrics.frames_rate_limited.fetch_add(1, Ordering::Relaxed);
            let wait = self.rate.wait_hint();
            let err = AppError::rate_limited(format!("Too many frames; wait {} ms.", wait.as_millis().max(1)));
            return self.reply::<()>(ctx, frame.ack, Err(err));
        }
        self.dispatch(frame.event, frame.ack, ctx);
    }

    /// Runs `work` and answers the frame with its result, in the actor's context.
    fn answer<T, F>(&self, ctx: &mut Context<Self>, ack: Option<u64>, work: F)
    where
        T: Serialize + 'static,
        F: std::future::Future<Output = AppResult<T>> + 'static,
    {
        ctx.spawn(work.into_actor(self).map(move |result, act, ctx| act.reply(ctx, ack, result)));
    }

    fn joined(&self, session_id: Uuid) -> AppResult<actix::Addr<LiveSessionActor>> {
        if !self.sessions.contains(&session_id) {
            return Err(AppError::forbidden("Join the session first."));
        }
        Ok(self.registry.live_session(session_id))
    }

    fn moderate(
        &mut self,
        session_id: Uuid,
        question_id: Uuid,
        action: Moderation,
        ack: Option<u64>,
        ctx: &mut Context<Self>,
    ) {
        self.to_room(
            session_id,
            ack,
            ctx,
            |user, connection| ModerateQuestion { user, connection, question_id, action },
            |question| json!({ "question": question }),
        );
    }

    /// Sends a message to a room this socket has joined and answers the
    /// frame with its result. Sent now, not inside a future, so the room
    /// sees this socket's frames in the order they came.
    fn to_room<M, T>(
        &mut self,
        session_id: Uuid,
        ack: Option<u64>,
        ctx: &mut Context<Self>,
        message: impl FnOnce(AuthUser, Connection) -> M,
        reply: impl FnOnce(T) -> serde_json::Value + 'static,
    ) where
        M: actix::Message<Result = AppResult<T>> + Send + 'static,
        T: Send + 'static,
        LiveSessionActor: Handler<M>,
    {
        let room = match self.joined(session_id) {
            Ok(room) => room,
            Err(err) => return self.reply::<()>(ctx, ack, Err(err)),
        };
        let sent = room.send(message(self.user.clone(), self.as_connection(ctx)));
        self.answer(ctx, ack, async move { Ok(reply(sent.await.map_err(room_gone)??)) });
    }

    fn dispatch(&mut self, event: ClientEvent, ack: Option<u64>, ctx: &mut Context<Self>) {
        match event {
            ClientEvent::JoinLiveSession(join) => {
                let registry = Arc::clone(&self.registry);
                let user = self.user.clone();
                let connection = self.as_connection(ctx);
                let session_id = join.session_id;
                let work = async move {
                    authorize_session_member(&registry, &user, session_id).await?;
                    let message = || Join {
                        user: user.clone(),
                        connection: connection.clone(),
                        since_message_id: join.since_message_id,
                    };
                    join_room(&registry, session_id, message).await
                };
                ctx.spawn(work.into_actor(self).map(move |result, act, ctx| {
                    if result.is_ok() {
                        act.sessions.insert(session_id);
                    }
                    if let Ok(reply) = &result {
                        let title = &reply.session.title;
                        crate::engine::presence::joined_session(&act.registry, act.user.id, act.id, session_id, title);
                    }
                    act.reply(ctx, ack, result);
                }));
            }
            ClientEvent::LeaveLiveSession(leave) => {
                if self.sessions.remove(&leave.session_id) {
                    crate::engine::presence::left_session(&self.registry, self.user.id, self.id, leave.session_id);
                    // The ack waits for the room, so the leave time is the time of the request.
                    let left = self
                        .registry
                        .existing_live_session(leave.session_id)
                        .map(|room| room.send(Leave { user_id: self.user.id, connection_id: self.id }));
                    self.answer(ctx, ack, async move {
                        if let Some(left) = left {
                            left.await.map_err(room_gone)?;
                        }
                        Ok(json!({}))
                    });
                } else {
                    self.reply::<()>(
                        ctx,
                        ack,
                        Err(AppError::bad_request("not_in_session", "You are not in that session.")),
                    );
                }
            }
            ClientEvent::SessionMessage(post) => self.to_room(
                post.session_id,
                ack,
                ctx,
                |user, connection| PostMessage {
                    user,
                    connection,
                    text: post.message,
                    client_msg_id: post.client_msg_id,
                },
                |message| json!({ "message": message }),
            ),
            ClientEvent::AskQuestion(ask) => self.to_room(
                ask.session_id,
                ack,
                ctx,
                |user, connection| AskQuestion { user, connection, text: ask.question, anonymous: ask.anonymous },
                |question| json!({ "question": question }),
            ),
            ClientEvent::UpvoteQuestion(vote) => self.to_room(
                vote.session_id,
                ack,
                ctx,
                |user, connection| UpvoteQuestion { user, connection, question_id: vote.question_id },
                |question| json!({ "question": question }),
            ),
            ClientEvent::AnswerQuestion(target) => {
                self.moderate(target.session_id, target.question_id, Moderation::Answer, ack, ctx)
            }
            ClientEvent::DismissQuestion(target) => {
                self.moderate(target.session_id, target.question_id, Moderation::Dismiss, ack, ctx)
            }
            ClientEvent::PinQuestion(pin) => {
                self.moderate(pin.session_id, pin.question_id, Moderation::Pin(pin.pinned), ack, ctx)
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
            ClientEvent::TypingInSession(typing) => self.to_room(
                typing.session_id,
                ack,
                ctx,
                |user, connection| Typing { user, connection },
                |()| json!({}),
            ),
        }
    }
}

/// Sends a join to a live session's actor; if the actor died meanwhile,
/// once more to its replacement.
async fn join_room(registry: &Arc<Registry>, session_id: Uuid, join: impl Fn() -> Join) -> AppResult<JoinReply> {
    match registry.live_session(session_id).send(join()).await {
        Ok(result) => result,
        Err(_) => registry.live_session(session_id).send(join()).await.map_err(room_gone)?,
    }
}

fn room_gone(_: MailboxError) -> AppError {
    AppError::unavailable("room_unavailable", "The session's room restarted; please retry.")
}

/// Only the session's instructor, an admin, or a student enrolled in its
/// course may enter; everyone else learns nothing about the session.
async fn authorize_session_member(registry: &Registry, user: &AuthUser, session_id: Uuid) -> AppResult<()> {
    let user = user.clone();
    registry
        .deps
        .db
        .read(move |conn| {
            let session = db::live_sessions::find(conn, &session_id.to_string())?
                .ok_or_else(|| AppError::not_found("live session"))?;
            let allowed = user.role == Role::Admin
                || session.instructor_id == user.id.to_string()
                || db::courses::is_enrolled(conn, &session.course_id, &user.id.to_string())?;
            if allowed {
                Ok(())
            } else {
                Err(AppError::forbidden("You are not enrolled in this session's course."))
            }
        })
        .await
}

impl Actor for ConnectionActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let config = &self.registry.deps.config;
        // Bounded: a room that finds this full treats the socket as a slow consumer.
        ctx.set_mailbox_capacity(config.ws_outbound_queue);
        self.registry.register_connection(self.user.id, ConnectionHandle { id: self.id, addr: ctx.address() });
        crate::engine::presence::connected(&self.registry, self.user.id, self.id);
        let metrics = &self.registry.deps.metrics;
        metrics.connections_open.fetch_add(1, Ordering::Relaxed);
        metrics.connections_total.fetch_add(1, Ordering::Relaxed);
        let timeout = config.ws_client_timeout();
        ctx.run_interval(config.ws_ping_interval(), move |act, ctx| {
            if act.last_heard.elapsed() > timeout {
                log::info!("connection {} of {} timed out", act.id, act.user.id);
                act.close_for(ctx, DisconnectReason::HeartbeatTimeout);
            } else {
                act.queue(ctx, ws::Message::Ping(Bytes::new()));
            }
        });
        let hello =
            protocol::event_frame(events::CONNECTED, &json!({ "userId": self.user.id, "connectionId": self.id }));
        self.send(ctx, hello);
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        self.registry.unregister_connection(self.user.id, self.id);
        crate::engine::presence::disconnected(&self.registry, self.user.id, self.id);
        self.registry.deps.metrics.connections_open.fetch_sub(1, Ordering::Relaxed);
        for session_id in self.sessions.drain() {
            if let Some(room) = self.registry.existing_live_session(session_id) {
                room.do_send(Leave { user_id: self.user.id, connection_id: self.id });
            }
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
            Ok(Frame::Ping(payload)) => self.queue(ctx, ws::Message::Pong(payload)),
            Ok(Frame::Pong(_)) => {}
            Ok(Frame::Binary(_)) | Ok(Frame::Continuation(_)) => {
                let err = AppError::bad_request("unsupported_frame", "Send each event as one UTF-8 JSON text frame.");
                self.reply::<()>(ctx, None, Err(err));
            }
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
        match act.writer.poll_flush(task) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Ok(())) if act.closing => ctx.stop(),
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(err)) => {
                log::debug!("connection {}: write failed: {err}", act.id);
                ctx.stop();
            }
        }
        act.flush_spawned = false;
        Poll::Ready(())
    }
}

impl Handler<Push> for ConnectionActor {
    type Result = ();

    fn handle(&mut self, Push(frame): Push, ctx: &mut Self::Context) {
        // The mailbox drains into the socket's queue at once, so the queue is
        // where a client that does not read shows.
        if self.writer.pending_bytes() >= self.registry.deps.config.ws_outbound_bytes {
            if !self.closing {
                self.registry.deps.metrics.slow_consumers_closed.fetch_add(1, Ordering::Relaxed);
                log::info!("connection {} of {}: slow consumer, closing", self.id, self.user.id);
                // The close frame waits behind the unread ones; CLOSE_GRACE ends it.
                self.close_for(ctx, DisconnectReason::SlowConsumer);
            }
            return;
        }
        self.send(ctx, frame);
    }
}

impl Handler<Disconnect> for ConnectionActor {
    type Result = ();

    fn handle(&mut self, Disconnect(reason): Disconnect, ctx: &mut Self::Context) {
        self.close_for(ctx, reason);
    }
}

/// A restarted room asks: had this socket joined it? If so the answer is
/// who it is and how to reach it, and the room takes it back quietly.
#[derive(Message)]
#[rtype(result = "Option<(AuthUser, Connection)>")]
pub struct MembershipQuery {
    pub session_id: Uuid,
}

impl Handler<MembershipQuery> for ConnectionActor {
    type Result = Option<(AuthUser, Connection)>;

    fn handle(&mut self, query: MembershipQuery, ctx: &mut Self::Context) -> Self::Result {
        self.sessions.contains(&query.session_id).then(|| (self.user.clone(), self.as_connection(ctx)))
    }
}
