//! Every client event's data: the first byte picks the event, the rest is
//! its `data`, so the fuzzer reaches each event's fields quickly. Text the
//! parse accepts then goes through the text rules every field uses.
#![no_main]

use libfuzzer_sys::fuzz_target;

use classroom::domain::input;
use classroom::protocol::{parse_client_frame, CLIENT_EVENTS};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else { return };
    let Ok(payload) = std::str::from_utf8(rest) else { return };
    let name = CLIENT_EVENTS[usize::from(pick) % CLIENT_EVENTS.len()];
    let frame = format!("{{\"event\":\"{name}\",\"ack\":1,\"data\":{payload}}}");
    if let Err(refused) = parse_client_frame(&frame) {
        // Data that is one JSON value leaves the frame whole, with its ack:
        // however wrong the data, the client is answered on that ack.
        if serde_json::from_str::<serde_json::Value>(payload).is_ok() {
            assert_eq!(refused.ack, Some(1), "{frame}");
        }
    }
    let _ = input::single_line("fuzz", payload);
    let _ = input::multi_line("fuzz", payload);
});
