//! WebSocket framing straight on the accepted TCP stream.
//!
//! Why not actix-http's HTTP/1 dispatcher (what actix-web-actors runs on):
//! it keeps two 8 KiB buffers for the life of every upgraded connection,
//! and a classroom holds tens of thousands of mostly idle sockets. Here an
//! idle socket holds no buffer at all: reads go through one scratch buffer
//! per thread and only the bytes of an unfinished frame are kept; outgoing
//! frames are queued in a buffer that is freed once written out, so frames
//! queued in one round of the connection actor's messages leave in one
//! system call.
//!
//! The framing itself (masking, lengths, control frames, the size limit) is
//! actix-http's `ws::Codec`.

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{ready, Context, Poll};

use actix::prelude::Stream;
use actix_codec::{Decoder, Encoder};
use actix_http::ws::{Codec, Frame, Message, ProtocolError};
use bytes::{Buf, BytesMut};
use tokio::net::TcpStream;

/// Bytes taken from the kernel per read; one buffer shared by a thread's sockets.
const SCRATCH_BYTES: usize = 16 * 1024;

thread_local! {
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; SCRATCH_BYTES].into_boxed_slice());
}

/// The frames a client sends, as a stream for the connection actor.
pub struct FrameReader {
    socket: Rc<TcpStream>,
    codec: Codec,
    /// Bytes of a frame not complete yet; empty (and unallocated) otherwise.
    partial: BytesMut,
    /// End of stream or an error was returned: nothing more will come.
    finished: bool,
}

impl FrameReader {
    /// `already_read`: bytes that arrived with the handshake request.
    pub fn new(socket: Rc<TcpStream>, max_frame_bytes: usize, already_read: BytesMut) -> Self {
        // Copied, not kept: `already_read` is the HTTP parser's whole read
        // buffer (kilobytes of capacity), nearly always empty by now.
        let partial = if already_read.is_empty() { BytesMut::new() } else { BytesMut::from(&already_read[..]) };
        Self { socket, codec: Codec::new().max_size(max_frame_bytes), partial, finished: false }
    }

    /// Reads once from the socket into `partial`; `Ok(0)` is end of stream.
    fn read_some(&mut self) -> io::Result<usize> {
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            let read = self.socket.try_read(&mut scratch)?;
            self.partial.extend_from_slice(&scratch[..read]);
            Ok(read)
        })
    }

    /// Bytes read past the last frame taken, for whoever reads this
    /// stream next (the connection actor, after the Socket.IO handshake).
    pub fn into_unread(self) -> BytesMut {
        self.partial
    }

    fn fail(&mut self, err: ProtocolError) -> Poll<Option<Result<Frame, ProtocolError>>> {
        self.finished = true;
        Poll::Ready(Some(Err(err)))
    }
}

impl Stream for FrameReader {
    type Item = Result<Frame, ProtocolError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if this.finished {
                return Poll::Ready(None);
            }
            if !this.partial.is_empty() {
                match this.codec.decode(&mut this.partial) {
                    Ok(Some(frame)) => {
                        if this.partial.is_empty() {
                            // The frame's bytes stay alive in `frame`; drop our handle on them.
                            this.partial = BytesMut::new();
                        }
                        return Poll::Ready(Some(Ok(frame)));
                    }
                    Ok(None) => {}
                    Err(err) => return this.fail(err),
                }
            }
            if let Err(err) = ready!(this.socket.poll_read_ready(cx)) {
                return this.fail(ProtocolError::Io(err));
            }
            match this.read_some() {
                Ok(0) => {
                    this.finished = true;
                    return Poll::Ready(None);
                }
                Ok(_) => {}
                // Readiness was stale; `poll_read_ready` registers for the next.
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                Err(err) => return this.fail(ProtocolError::Io(err)),
            }
        }
    }
}

/// The frames queued for a client, written without blocking.
pub struct FrameWriter {
    socket: Rc<TcpStream>,
    codec: Codec,
    /// Encoded bytes not written yet; unallocated once all are written.
    pending: BytesMut,
}

impl FrameWriter {
    pub fn new(socket: Rc<TcpStream>) -> Self {
        Self { socket, codec: Codec::new(), pending: BytesMut::new() }
    }

    /// Encodes a frame behind those already queued.
    pub fn queue(&mut self, message: Message) {
        // A server frame has no mask and no continuation state: encoding cannot fail.
        if let Err(err) = self.codec.encode(message, &mut self.pending) {
            log::error!("cannot encode a WebSocket frame: {err}");
        }
    }

    /// How far behind the client is, beyond what the kernel holds for it.
    pub fn pending_bytes(&self) -> usize {
        self.pending.len()
    }

    /// Writes what is queued. Ready once everything is written; Pending
    /// while the socket is full (the task is woken when it drains).
    pub fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.pending.is_empty() {
            ready!(self.socket.poll_write_ready(cx))?;
            match self.socket.try_write(&self.pending) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(written) => self.pending.advance(written),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                Err(err) => return Poll::Ready(Err(err)),
            }
        }
        self.pending = BytesMut::new();
        Poll::Ready(Ok(()))
    }
}
