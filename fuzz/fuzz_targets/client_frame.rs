//! Any text frame a client may send: parsed into an event or refused with
//! an error, never a panic; a frame that carries a whole-number ack id is
//! answered on it whatever else is wrong.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = classroom::protocol::parse_client_frame(text);
});
