//! Raw bytes as a WebSocket client sends them, through the codec the server
//! reads with (actix-http's, at the server's default 64 KiB limit): frames
//! or a protocol error, never a panic, and no frame over the limit.
#![no_main]

use actix_codec::Decoder;
use actix_http::ws::{Codec, Frame};
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

const MAX_FRAME_BYTES: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let mut codec = Codec::new().max_size(MAX_FRAME_BYTES);
    let mut buffer = BytesMut::from(data);
    while let Ok(Some(frame)) = codec.decode(&mut buffer) {
        let size = match &frame {
            Frame::Text(bytes) | Frame::Binary(bytes) | Frame::Ping(bytes) | Frame::Pong(bytes) => bytes.len(),
            Frame::Continuation(item) => match item {
                actix_http::ws::Item::FirstText(bytes)
                | actix_http::ws::Item::FirstBinary(bytes)
                | actix_http::ws::Item::Continue(bytes)
                | actix_http::ws::Item::Last(bytes) => bytes.len(),
            },
            Frame::Close(_) => 0,
        };
        assert!(size <= MAX_FRAME_BYTES, "a frame of {size} bytes passed the limit");
    }
});
