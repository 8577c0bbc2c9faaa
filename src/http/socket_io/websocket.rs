//! Socket.IO over WebSocket: a socket opened directly goes through the
//! handshake here before a connection actor takes it; a socket opened to
//! upgrade a polling session is probed (`2probe`/`3probe`), then handed to
//! that session's connection actor on the client's `5`.

use std::future::poll_fn;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use actix_http::ws::{CloseCode, CloseReason, Frame, Message};
use bytes::BytesMut;
use bytestring::ByteString;
use futures_util::StreamExt;
use tokio::net::TcpStream;
use uuid::Uuid;

use super::{admit, before_connect, open_packet, BeforeConnect};
use crate::engine::connection::{ConnectionActor, SwitchToWebSocket, Wire};
use crate::engine::polling::PollingSession;
use crate::engine::presence::fanout::PresenceFormat;
use crate::engine::socket::{FrameReader, FrameWriter};
use crate::error::AppError;
use crate::protocol::socket_io::{self, EnginePacket, Refusal};
use crate::state::AppState;

/// Frames a client may send before its connect packet (pongs, connects to
/// namespaces we refuse) or its upgrade; past them it is not a Socket.IO client.
const MAX_FRAMES_BEFORE_CONNECT: usize = 8;

/// How long a refused socket may take to accept its close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// The text of the next frame, answering WebSocket pings meanwhile; None
/// once the socket is done with (closed, broken, silent past `deadline`).
async fn next_text(
    reader: &mut FrameReader,
    writer: &mut FrameWriter,
    deadline: tokio::time::Instant,
) -> Result<ByteString, Ending> {
    loop {
        if poll_fn(|cx| writer.poll_flush(cx)).await.is_err() {
            return Err(Ending::Gone);
        }
        let frame = match tokio::time::timeout_at(deadline, reader.next()).await {
            Ok(Some(Ok(frame))) => frame,
            Ok(Some(Err(err))) => {
                log::debug!("socket.io handshake: {err}");
                return Err(Ending::Gone);
            }
            Ok(None) => return Err(Ending::Gone),
            Err(_) => return Err(Ending::TimedOut),
        };
        let bytes = match frame {
            Frame::Text(bytes) => bytes,
            Frame::Ping(payload) => {
                writer.queue(Message::Pong(payload));
                continue;
            }
            Frame::Pong(_) => continue,
            Frame::Close(reason) => return Err(Ending::Closed(reason)),
            Frame::Binary(_) | Frame::Continuation(_) => return Err(Ending::Refused(Refusal::Binary.error())),
        };
        return ByteString::try_from(bytes).map_err(|_| Ending::Closed(Some(CloseCode::Invalid.into())));
    }
}

/// Why a handshake or a probe ended without a connection.
enum Ending {
    /// The socket broke or the client went: nothing to say.
    Gone,
    TimedOut,
    /// The client closed (or sent text that is not UTF-8): close with this.
    Closed(Option<CloseReason>),
    Refused(AppError),
}

/// Runs Socket.IO's handshake on a socket opened directly and hands it to a
/// connection actor once the client connected with a valid token.
pub async fn serve_websocket(state: &AppState, stream: Rc<TcpStream>, already_read: BytesMut) {
    let config = &state.config;
    let reader = FrameReader::new(Rc::clone(&stream), config.ws_max_frame_bytes, already_read);
    let mut writer = FrameWriter::new(Rc::clone(&stream));
    let sid = Uuid::new_v4().simple().to_string();
    writer.queue(Message::Text(open_packet(config, &sid, &[]).into()));
    handshake(state, stream, reader, writer).await
}

/// Waits for the client's connect packet (answering what may come first)
/// and starts the connection actor on the socket once its token is good.
async fn handshake(state: &AppState, stream: Rc<TcpStream>, mut reader: FrameReader, mut writer: FrameWriter) {
    let deadline = tokio::time::Instant::now() + state.config.ws_client_timeout();
    for _ in 0..MAX_FRAMES_BEFORE_CONNECT {
        let token = match next_text(&mut reader, &mut writer, deadline).await {
            Ok(text) => match before_connect(&text) {
                BeforeConnect::Connect(token) => token,
                BeforeConnect::Answer(packet) => {
                    writer.queue(Message::Text(packet.into()));
                    continue;
                }
                BeforeConnect::Nothing => continue,
                BeforeConnect::Close => return close(&mut writer, Some(CloseCode::Normal.into())).await,
                BeforeConnect::Refuse(err) => return refuse(&mut writer, &err).await,
            },
            Err(ending) => return end(&mut writer, ending, "No connect packet came in time.").await,
        };
        return match admit(state, token).await {
            Ok((user, token)) => {
                log::info!("socket.io websocket opened by {}", user.id);
                let unread = reader.into_unread();
                ConnectionActor::start_on(
                    stream,
                    unread,
                    Wire::SocketIo,
                    PresenceFormat::Updates,
                    user,
                    token,
                    state.registry.clone(),
                );
            }
            Err(err) => refuse(&mut writer, &err).await,
        };
    }
    let err = AppError::bad_request("bad_frames", "Too many packets before the connect.");
    refuse(&mut writer, &err).await
}

/// Probes a socket opened to upgrade a polling session, then gives it to
/// the session's connection actor, which may live on another thread.
pub async fn serve_upgrade(
    state: &AppState,
    stream: Rc<TcpStream>,
    already_read: BytesMut,
    session: Arc<PollingSession>,
) {
    let config = &state.config;
    let mut reader = FrameReader::new(Rc::clone(&stream), config.ws_max_frame_bytes, already_read);
    let mut writer = FrameWriter::new(Rc::clone(&stream));
    let deadline = tokio::time::Instant::now() + config.ws_client_timeout();
    for _ in 0..MAX_FRAMES_BEFORE_CONNECT {
        let text = match next_text(&mut reader, &mut writer, deadline).await {
            Ok(text) => text,
            Err(ending) => {
                session.set_upgrading(false);
                return end(&mut writer, ending, "No upgrade packet came in time.").await;
            }
        };
        match EnginePacket::parse(&text) {
            Some(EnginePacket::Ping("probe")) => {
                writer.queue(Message::Text(ByteString::from(socket_io::pong("probe"))));
                // The GET waiting is ended, so the client can pause polling.
                session.set_upgrading(true);
            }
            Some(EnginePacket::Upgrade) => {
                let Some(connection) = session.connection() else {
                    // Not connected yet (or refused): the handshake goes on
                    // over the WebSocket, from what polling had for the client.
                    for packet in session.take_all() {
                        writer.queue(Message::Text(packet));
                    }
                    state.registry.polling.remove(&session.sid);
                    return handshake(state, stream, reader, writer).await;
                };
                let unread = reader.into_unread();
                if poll_fn(|cx| writer.poll_flush(cx)).await.is_err() {
                    return session.set_upgrading(false);
                }
                drop(writer);
                let stream = match Rc::try_unwrap(stream).map(TcpStream::into_std) {
                    Ok(Ok(stream)) => stream,
                    _ => return session.set_upgrading(false),
                };
                // Sent, not queued: the actor may be gone, and the client then reconnects.
                if connection.send(SwitchToWebSocket { stream, unread }).await.is_err() {
                    log::debug!("socket.io upgrade of {}: the connection ended meanwhile", session.sid);
                }
                return;
            }
            Some(EnginePacket::Pong(_) | EnginePacket::Noop) => {}
            _ => {
                session.set_upgrading(false);
                let err = Refusal::Malformed("a probe (2probe) then the upgrade (5) were expected").error();
                return refuse(&mut writer, &err).await;
            }
        }
    }
    session.set_upgrading(false);
    refuse(&mut writer, &AppError::bad_request("bad_frames", "Too many packets before the upgrade.")).await
}

/// Closes a handshake that ended without a connection.
async fn end(writer: &mut FrameWriter, ending: Ending, timed_out: &str) {
    match ending {
        Ending::Gone => {}
        Ending::TimedOut => refuse(writer, &AppError::unauthorized(timed_out.to_string())).await,
        Ending::Closed(reason) => close(writer, reason).await,
        Ending::Refused(err) => refuse(writer, &err).await,
    }
}

/// Refuses the connect with `connect_error` and closes the socket (1008).
async fn refuse(writer: &mut FrameWriter, err: &AppError) {
    writer.queue(Message::Text(ByteString::from(socket_io::connect_error("/", err))));
    close(writer, Some(CloseCode::Policy.into())).await
}

/// Sends a close frame and gives the client a moment to take it.
async fn close(writer: &mut FrameWriter, reason: Option<CloseReason>) {
    writer.queue(Message::Close(reason));
    // Best effort: a client that does not read is left behind.
    let _ = tokio::time::timeout(CLOSE_GRACE, poll_fn(|cx| writer.poll_flush(cx))).await;
}
