//! A deliberately small WebSocket client: just what the load generator
//! needs, and cheap per frame.
//!
//! Why not a library: the harness must read several hundred thousand frames
//! a second on one thread. Here a read drains the socket into one large
//! buffer shared by every connection of the thread, frames are sliced out
//! of it in place (no allocation per frame, no copy unless a frame straddles
//! two reads), and only a connection with a partial frame keeps bytes of
//! its own. That keeps memory per idle connection to a few hundred bytes.

use std::cell::RefCell;
use std::io;
use std::net::{IpAddr, SocketAddr};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Bytes one read may take off a socket (shared per thread).
const SCRATCH_BYTES: usize = 256 * 1024;
/// Largest server frame accepted (a join reply lists every participant).
const MAX_FRAME_BYTES: usize = 64 * 1024 * 1024;

thread_local! {
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(vec![0; SCRATCH_BYTES]);
}

/// A frame from the server, borrowed from the read buffer.
pub enum Frame<'a> {
    Text(&'a [u8]),
    Ping(&'a [u8]),
    Close(Option<u16>),
    /// Pong, binary: ignored.
    Other,
}

/// One client socket after the upgrade.
pub struct WsConn {
    /// The socket, for `readable()`.
    pub stream: TcpStream,
    /// Bytes of a frame that has not fully arrived.
    partial: Vec<u8>,
    /// Text of a fragmented message being put together.
    fragments: Vec<u8>,
    mask: [u8; 4],
    out: Vec<u8>,
}

/// Opens a TCP connection from `source` (port chosen by the kernel) to
/// `target`, then upgrades it to a WebSocket at `path`.
pub async fn connect(
    target: SocketAddr,
    source: Option<IpAddr>,
    host: &str,
    path: &str,
    mask_seed: u32,
) -> io::Result<WsConn> {
    let socket = if target.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    if let Some(ip) = source {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    let mut stream = socket.connect(target).await?;
    stream.set_nodelay(true)?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: bG9hZGdlbi1rZXktMDAwMQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    // Read until the end of the response head; whatever follows is frames.
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    let end = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed during the WebSocket handshake"));
        }
        head.extend_from_slice(&chunk[..n]);
        if let Some(at) = find(&head, b"\r\n\r\n") {
            break at + 4;
        }
        if head.len() > 64 * 1024 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "handshake answer too long"));
        }
    };
    let status_line = String::from_utf8_lossy(&head[..find(&head, b"\r\n").unwrap_or(end)]).into_owned();
    if !status_line.starts_with("HTTP/1.1 101") {
        let body = String::from_utf8_lossy(&head[end..]).into_owned();
        return Err(io::Error::other(format!("upgrade refused: {status_line} {}", body.trim())));
    }
    let mask = mask_seed.wrapping_mul(2_654_435_761).to_le_bytes();
    Ok(WsConn { stream, partial: head[end..].to_vec(), fragments: Vec::new(), mask, out: Vec::with_capacity(256) })
}

/// Where `needle` first occurs in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    let first = needle[0];
    let mut from = 0;
    while let Some(offset) = hay[from..=hay.len() - needle.len()].iter().position(|&b| b == first) {
        let at = from + offset;
        if &hay[at..at + needle.len()] == needle {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// What reading came to.
pub enum ReadOutcome {
    /// Frames were handed over (maybe none); the socket is open.
    Open,
    /// The server closed the TCP connection.
    Eof,
}

impl WsConn {
    /// Writes one masked client frame.
    pub async fn send(&mut self, opcode: u8, payload: &[u8]) -> io::Result<()> {
        self.out.clear();
        self.out.push(0x80 | opcode);
        let len = payload.len();
        if len < 126 {
            self.out.push(0x80 | len as u8);
        } else if len <= u16::MAX as usize {
            self.out.push(0x80 | 126);
            self.out.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            self.out.push(0x80 | 127);
            self.out.extend_from_slice(&(len as u64).to_be_bytes());
        }
        self.out.extend_from_slice(&self.mask);
        let start = self.out.len();
        self.out.extend_from_slice(payload);
        for (i, byte) in self.out[start..].iter_mut().enumerate() {
            *byte ^= self.mask[i & 3];
        }
        self.stream.write_all(&self.out).await
    }

    pub async fn send_text(&mut self, text: &[u8]) -> io::Result<()> {
        self.send(0x1, text).await
    }

    pub async fn pong(&mut self, payload: &[u8]) -> io::Result<()> {
        self.send(0xA, payload).await
    }

    /// Sends a close frame (1000) and shuts the write side.
    pub async fn close(&mut self) {
        let _ = self.send(0x8, &1000u16.to_be_bytes()).await;
        let _ = self.stream.shutdown().await;
    }

    /// Hands every complete frame already buffered to `on_frame` (frames that
    /// arrived with the handshake answer).
    pub fn drain_buffered(&mut self, on_frame: &mut dyn FnMut(Frame<'_>)) -> io::Result<()> {
        if self.partial.is_empty() {
            return Ok(());
        }
        let mut partial = std::mem::take(&mut self.partial);
        let used = self.parse(&partial, on_frame)?;
        partial.drain(..used);
        self.partial = partial;
        Ok(())
    }

    /// Reads whatever the socket holds now (without waiting) and hands each
    /// complete frame to `on_frame`. Call after `stream.readable()`.
    pub fn read_ready(&mut self, on_frame: &mut dyn FnMut(Frame<'_>)) -> io::Result<ReadOutcome> {
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            loop {
                let n = match self.stream.try_read(&mut scratch) {
                    Ok(0) => return Ok(ReadOutcome::Eof),
                    Ok(n) => n,
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(ReadOutcome::Open),
                    Err(err) => return Err(err),
                };
                if self.partial.is_empty() {
                    let used = self.parse(&scratch[..n], on_frame)?;
                    self.partial.extend_from_slice(&scratch[used..n]);
                } else {
                    self.partial.extend_from_slice(&scratch[..n]);
                    let mut partial = std::mem::take(&mut self.partial);
                    let used = self.parse(&partial, on_frame)?;
                    partial.drain(..used);
                    if partial.is_empty() && partial.capacity() > 64 * 1024 {
                        // A big join reply passed: give its memory back.
                        partial = Vec::new();
                    }
                    self.partial = partial;
                }
                if n < scratch.len() {
                    return Ok(ReadOutcome::Open);
                }
            }
        })
    }

    /// Hands over the complete frames at the start of `buf`; returns how
    /// many bytes they took.
    fn parse(&mut self, buf: &[u8], on_frame: &mut dyn FnMut(Frame<'_>)) -> io::Result<usize> {
        let mut at = 0;
        loop {
            let rest = &buf[at..];
            if rest.len() < 2 {
                return Ok(at);
            }
            let (fin, opcode) = (rest[0] & 0x80 != 0, rest[0] & 0x0F);
            if rest[1] & 0x80 != 0 {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "server frames must not be masked"));
            }
            let (len, header) = match rest[1] & 0x7F {
                126 if rest.len() >= 4 => (u16::from_be_bytes([rest[2], rest[3]]) as usize, 4),
                127 if rest.len() >= 10 => {
                    let mut eight = [0u8; 8];
                    eight.copy_from_slice(&rest[2..10]);
                    (u64::from_be_bytes(eight) as usize, 10)
                }
                126 | 127 => return Ok(at),
                short => (short as usize, 2),
            };
            if len > MAX_FRAME_BYTES {
                return Err(io::Error::new(io::ErrorKind::InvalidData, format!("frame of {len} bytes")));
            }
            if rest.len() < header + len {
                return Ok(at);
            }
            let payload = &rest[header..header + len];
            at += header + len;
            match opcode {
                0x1 if fin => on_frame(Frame::Text(payload)),
                0x1 => {
                    self.fragments.clear();
                    self.fragments.extend_from_slice(payload);
                }
                0x0 => {
                    self.fragments.extend_from_slice(payload);
                    if fin {
                        let whole = std::mem::take(&mut self.fragments);
                        on_frame(Frame::Text(&whole));
                    }
                }
                0x9 => on_frame(Frame::Ping(payload)),
                0x8 => {
                    let code = (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
                    on_frame(Frame::Close(code));
                }
                _ => on_frame(Frame::Other),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::find;

    #[test]
    fn find_locates_needles() {
        assert_eq!(find(b"abc~lg~1", b"~lg~"), Some(3));
        assert_eq!(find(b"~~lg~", b"~lg~"), Some(1));
        assert_eq!(find(b"abc", b"~lg~"), None);
        assert_eq!(find(b"", b"x"), None);
    }
}
