//! Frame decode and encode: what every inbound frame and every fan-out pays.
//!
//! `cargo bench --bench protocol_frames` measures; under `cargo test
//! --all-targets` criterion runs each routine once as a smoke test.

use chrono::Utc;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use uuid::Uuid;

use classroom::domain::chat::{ChatMessage, MessageType};
use classroom::protocol::parse_client_frame;
use classroom::protocol::rooms::{self, RoomScope};

fn decode(c: &mut Criterion) {
    let session = Uuid::new_v4();
    let chat = format!(
        r#"{{"event":"session-message","data":{{"sessionId":"{session}","message":"~lg~1~123456789~ xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx","clientMsgId":"c-42"}},"ack":42}}"#
    );
    let join = format!(r#"{{"event":"join-live-session","data":{{"sessionId":"{session}"}},"ack":1}}"#);
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Elements(1));
    group.bench_function("session-message", |b| b.iter(|| parse_client_frame(black_box(&chat))));
    group.bench_function("join-live-session", |b| b.iter(|| parse_client_frame(black_box(&join))));
    group.bench_function("invalid-json", |b| b.iter(|| parse_client_frame(black_box("{not json"))));
    group.finish();
}

fn encode(c: &mut Criterion) {
    let message = ChatMessage {
        id: Uuid::new_v4(),
        room_id: Uuid::new_v4(),
        sender_id: Uuid::new_v4(),
        sender_name: "Student 42".into(),
        message: "~lg~1~123456789~ xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx".into(),
        message_type: MessageType::Text,
        created_at: Utc::now(),
        client_msg_id: Some("c-42".into()),
        edited_at: None,
        deleted: false,
        seq: 42,
    };
    // A live session's room names both the room and the session.
    let scope = RoomScope { room_id: message.room_id, session_id: Some(Uuid::new_v4()) };
    let mut group = c.benchmark_group("encode");
    group.throughput(Throughput::Elements(1));
    // Once per message, whatever the room size: the frame is shared by every recipient.
    group.bench_function("new-message", |b| b.iter(|| rooms::new_message(black_box(scope), black_box(&message))));
    let frame = rooms::new_message(scope, &message);
    // What each recipient costs instead: a reference-count increment.
    group.bench_function("share-frame", |b| b.iter(|| black_box(frame.clone())));
    group.finish();
}

criterion_group!(benches, decode, encode);
criterion_main!(benches);
