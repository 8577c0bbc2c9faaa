//! The chat-room events of contract v2 on a live session's room: join,
//! post (text and links), typing, edit and delete by the author, reading
//! positions and unread counts, catch-up in the join ack; and the ack
//! promise kept on every path (a resend while the first write is in flight,
//! a write that fails, a resend older than the room's memory).

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{spawn_app_with, spawn_switchable_app, TestApp, TestUser, WsClient};

/// An instructor and a student of one course, a session open now, and the
/// session's chat room id.
struct Class {
    grace: TestUser,
    ada: TestUser,
    session: String,
    room: String,
}

async fn class(app: &TestApp) -> Class {
    let grace = app.register("Grace", "instructor").await;
    let ada = app.register("Ada", "student").await;
    let course = app.course_with(&grace, &[&ada]).await;
    let session = app.session_in(&grace, &course, 0, None).await;
    let (status, view) = app.get(&format!("/api/live-sessions/{session}"), &ada.token).await;
    assert_eq!(status, 200, "{view}");
    let room = view["chatRoomId"].as_str().expect("a session names its chat room").to_string();
    Class { grace, ada, session, room }
}

/// A socket of `user` that has joined the room.
async fn in_room(app: &TestApp, user: &TestUser, room: &str) -> WsClient {
    let mut socket = app.connect(user).await;
    let joined = socket.request("join-room", json!({ "roomId": room })).await;
    assert_eq!(joined["ok"], true, "{joined}");
    socket
}

async fn post(socket: &mut WsClient, room: &str, text: &str, client_msg_id: Option<&str>) -> Value {
    socket.request("room-message", json!({ "roomId": room, "message": text, "clientMsgId": client_msg_id })).await
}

/// Lets a test send many frames quickly.
fn unthrottled(config: &mut classroom::config::Config) {
    config.ws_rate_per_sec = 10_000.0;
    config.ws_rate_burst = 10_000.0;
}

async fn stored_messages(app: &TestApp) -> i64 {
    app.state
        .db
        .read(|conn| {
            use classroom::db::schema::chat_messages::dsl::*;
            use diesel::prelude::*;
            Ok(chat_messages.count().get_result::<i64>(conn)?)
        })
        .await
        .unwrap()
}

#[actix_web::test]
async fn the_room_events_serve_a_live_sessions_chat() {
    let app = spawn_app_with(|_| {}, None).await;
    let Class { grace, ada, session, room } = class(&app).await;
    let eve = app.register("Eve", "student").await;

    // Only the room's members may enter.
    let mut outsider = app.connect(&eve).await;
    let refused = outsider.request("join-room", json!({ "roomId": room })).await;
    assert_eq!(refused["error"]["code"], "forbidden", "{refused}");
    let unknown = outsider.request("join-room", json!({ "roomId": uuid::Uuid::new_v4() })).await;
    assert_eq!(unknown["error"]["code"], "not_found", "{unknown}");
    let not_joined = post(&mut outsider, &room, "hi", None).await;
    assert_eq!(not_joined["error"]["code"], "forbidden", "{not_joined}");

    let mut grace_socket = app.connect(&grace).await;
    let joined = grace_socket.request("join-room", json!({ "roomId": room })).await;
    assert_eq!(joined["data"]["room"], json!({ "id": room, "type": "live_session", "name": "Ownership" }));
    assert_eq!(joined["data"]["missedMessages"], json!([]));
    let mut ada_socket = in_room(&app, &ada, &room).await;
    let entered = grace_socket.next_event("user-joined").await;
    assert_eq!((&entered["data"]["roomId"], &entered["data"]["sessionId"]), (&json!(room), &json!(session)));

    let sent = post(&mut ada_socket, &room, "hello", Some("a1")).await;
    let message = sent["data"]["message"].clone();
    assert_eq!(
        (&message["messageType"], &message["deleted"], &message["editedAt"]),
        (&json!("text"), &json!(false), &Value::Null)
    );
    let relayed = grace_socket.next_event("new-message").await;
    assert_eq!((&relayed["data"]["roomId"], &relayed["data"]["message"]["id"]), (&json!(room), &message["id"]));

    // A link is one http(s) URL; anything else is refused.
    let link = ada_socket
        .request(
            "room-message",
            json!({ "roomId": room, "message": "https://doc.rust-lang.org/book/", "messageType": "link" }),
        )
        .await;
    assert_eq!(link["data"]["message"]["messageType"], "link", "{link}");
    let not_a_link = ada_socket
        .request("room-message", json!({ "roomId": room, "message": "javascript:alert(1)", "messageType": "link" }))
        .await;
    assert_eq!(not_a_link["error"]["code"], "invalid_link");

    ada_socket.request("typing-in-room", json!({ "roomId": room })).await;
    let typing = grace_socket.next_event("user-typing").await;
    assert_eq!((&typing["data"]["roomId"], &typing["data"]["name"]), (&json!(room), &json!("Ada")));

    // Edits and deletes are the author's, and everyone sees them.
    let id = message["id"].clone();
    let theirs = grace_socket.request("edit-message", json!({ "roomId": room, "messageId": id, "message": "x" })).await;
    assert_eq!(theirs["error"]["code"], "forbidden", "{theirs}");
    let edited =
        ada_socket.request("edit-message", json!({ "roomId": room, "messageId": id, "message": "hello, all" })).await;
    assert_eq!(edited["data"]["message"]["message"], "hello, all", "{edited}");
    assert!(edited["data"]["message"]["editedAt"].is_string());
    let seen = grace_socket.next_event("message-edited").await;
    assert_eq!((&seen["data"]["message"]["id"], &seen["data"]["message"]["message"]), (&id, &json!("hello, all")));
    let deleted = ada_socket.request("delete-message", json!({ "roomId": room, "messageId": id })).await;
    assert_eq!(deleted["data"]["message"]["deleted"], true, "{deleted}");
    let seen = grace_socket.next_event("message-deleted").await;
    assert_eq!((&seen["data"]["roomId"], &seen["data"]["messageId"]), (&json!(room), &id));
    let again = ada_socket.request("edit-message", json!({ "roomId": room, "messageId": id, "message": "back" })).await;
    assert_eq!(again["error"]["code"], "message_deleted", "{again}");
    let elsewhere =
        ada_socket.request("delete-message", json!({ "roomId": room, "messageId": uuid::Uuid::new_v4() })).await;
    assert_eq!(elsewhere["error"]["code"], "not_found");

    // History shows the change as stored.
    let (status, history) = app.get(&format!("/api/live-sessions/{session}/messages"), &ada.token).await;
    assert_eq!(status, 200);
    assert_eq!((&history[0]["id"], &history[0]["deleted"], &history[0]["message"]), (&id, &json!(true), &json!("")));

    // The live-session events and the room events are one room.
    let old = ada_socket.request("session-message", json!({ "sessionId": session, "message": "v1 client" })).await;
    assert_eq!(old["ok"], true);
    let relayed = grace_socket.next_event("new-message").await;
    assert_eq!((&relayed["data"]["sessionId"], &relayed["data"]["roomId"]), (&json!(session), &json!(room)));
    let left = ada_socket.request("leave-room", json!({ "roomId": room })).await;
    assert_eq!(left["ok"], true);
    let gone = grace_socket.next_event("user-left").await;
    assert_eq!(gone["data"]["roomId"], json!(room));
    let after = post(&mut ada_socket, &room, "still here?", None).await;
    assert_eq!(after["error"]["code"], "forbidden", "a socket that left no longer posts");
}

#[actix_web::test]
async fn mark_read_counts_what_is_unread_and_tells_the_readers_other_sockets() {
    let app = spawn_app_with(|_| {}, None).await;
    let Class { grace, ada, room, .. } = class(&app).await;
    let mut grace_socket = in_room(&app, &grace, &room).await;
    let mut ada_socket = in_room(&app, &ada, &room).await;
    // Ada's phone: open, not in the room, still told of her unread count.
    let mut ada_phone = app.connect(&ada).await;

    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(post(&mut grace_socket, &room, &format!("slide {n}"), None).await["data"]["message"]["id"].clone());
    }
    post(&mut ada_socket, &room, "my own", None).await;
    let read = ada_socket.request("mark-read", json!({ "roomId": room, "messageId": ids[0] })).await;
    assert_eq!(read["data"]["unreadCount"], 2, "two of Grace's after it; Ada's own never count: {read}");
    let told = ada_phone.next_event("unread-updated").await;
    assert_eq!(told["data"], json!({ "roomId": room, "unreadCount": 2 }));
    assert!(
        !ada_socket.receives_within("unread-updated", Duration::from_millis(200)).await,
        "not the socket that read"
    );

    // The position never moves back.
    let back = ada_socket.request("mark-read", json!({ "roomId": room, "messageId": ids[0] })).await;
    assert_eq!(back["data"]["unreadCount"], 2);
    let forward = ada_socket.request("mark-read", json!({ "roomId": room, "messageId": ids[2] })).await;
    assert_eq!(forward["data"]["unreadCount"], 0);
    let backwards = ada_socket.request("mark-read", json!({ "roomId": room, "messageId": ids[1] })).await;
    assert_eq!(backwards["data"]["unreadCount"], 0, "{backwards}");
    let bogus = ada_socket.request("mark-read", json!({ "roomId": room, "messageId": uuid::Uuid::new_v4() })).await;
    assert_eq!(bogus["error"]["code"], "not_found");
}

#[actix_web::test]
async fn unread_counts_and_catch_up_reach_past_the_rooms_memory() {
    // A room that remembers two messages: older ones come from the database.
    let app = spawn_app_with(|config| config.chat_window_messages = 2, None).await;
    let Class { grace, ada, room, .. } = class(&app).await;
    let mut grace_socket = in_room(&app, &grace, &room).await;
    let ada_socket = in_room(&app, &ada, &room).await;
    let first = post(&mut grace_socket, &room, "m0", None).await["data"]["message"]["id"].clone();
    ada_socket.close().await;
    for n in 1..6 {
        post(&mut grace_socket, &room, &format!("m{n}"), None).await;
    }
    let mut ada_back = app.connect(&ada).await;
    let joined = ada_back.request("join-room", json!({ "roomId": room, "sinceMessageId": first })).await;
    let missed: Vec<&str> =
        joined["data"]["missedMessages"].as_array().unwrap().iter().map(|m| m["message"].as_str().unwrap()).collect();
    assert_eq!(missed, vec!["m1", "m2", "m3", "m4", "m5"], "in order, from the database and then memory");
    let read = ada_back.request("mark-read", json!({ "roomId": room, "messageId": first })).await;
    assert_eq!(read["data"]["unreadCount"], 5, "counted by the database: {read}");
}

#[actix_web::test]
async fn a_resend_while_the_first_write_is_in_flight_is_answered_by_its_outcome() {
    let (app, database) = spawn_switchable_app(unthrottled).await;
    let Class { grace, ada, room, .. } = class(&app).await;
    let mut grace_socket = in_room(&app, &grace, &room).await;
    let mut ada_socket = in_room(&app, &ada, &room).await;

    database.set_down(true);
    let message = json!({ "roomId": room, "message": "is the exam open book?", "clientMsgId": "q1" });
    ada_socket.send_text(json!({ "event": "room-message", "data": message, "ack": 101 }).to_string()).await;
    let shown = grace_socket.next_event("new-message").await;
    // The reconnecting client's resend: nothing may be acked while nothing is stored.
    ada_socket.send_text(json!({ "event": "room-message", "data": message, "ack": 102 }).to_string()).await;
    for ack in [101, 102] {
        assert!(
            !ada_socket.acked_within(ack, Duration::from_millis(300)).await,
            "ack {ack} before anything was stored"
        );
    }
    assert_eq!(stored_messages(&app).await, 0);

    database.set_down(false);
    let first = ada_socket.ack(101).await;
    let resend = ada_socket.ack(102).await;
    assert_eq!(first["ok"], true, "{first}");
    assert_eq!(resend["data"]["message"]["id"], first["data"]["message"]["id"], "the same message");
    assert_eq!(shown["data"]["message"]["id"], first["data"]["message"]["id"]);
    assert_eq!(stored_messages(&app).await, 1, "stored once");
    assert!(!grace_socket.receives_within("new-message", Duration::from_millis(200)).await, "shown once");
}

#[actix_web::test]
async fn a_message_whose_write_fails_is_retracted_and_its_resend_tries_again() {
    use classroom::engine::persistence::PersistError;
    // A small buffer: with the database away, it fills.
    let (app, database) = spawn_switchable_app(|config| {
        unthrottled(config);
        config.persist_queue_capacity = 8;
    })
    .await;
    let Class { grace, ada, room, .. } = class(&app).await;
    let mut grace_socket = in_room(&app, &grace, &room).await;
    let mut ada_socket = in_room(&app, &ada, &room).await;

    database.set_down(true);
    // Fill the buffer (joins and presence may have left writes in it already).
    let mut full = false;
    for _ in 0..20 {
        let probe = app.state.persistence.write(|_| Ok(()));
        if let Ok(Err(PersistError::Overloaded)) = tokio::time::timeout(Duration::from_millis(100), probe).await {
            full = true;
            break;
        }
    }
    assert!(full, "the buffer filled up");
    let refused = post(&mut ada_socket, &room, "second", Some("s2")).await;
    assert_eq!(refused["error"]["code"], "persistence_overloaded", "{refused}");
    let shown = grace_socket.next_event("new-message").await;
    assert_eq!(shown["data"]["message"]["message"], "second");
    let retracted = grace_socket.next_event("message-deleted").await;
    assert_eq!(retracted["data"]["messageId"], shown["data"]["message"]["id"], "what was shown is taken back");

    database.set_down(false);
    assert!(app.state.persistence.drain(Duration::from_secs(10)).await);
    let again = post(&mut ada_socket, &room, "second", Some("s2")).await;
    assert_eq!(again["ok"], true, "nothing was stored, so the resend is a new attempt: {again}");
    assert_ne!(again["data"]["message"]["id"], shown["data"]["message"]["id"]);
    assert_eq!(stored_messages(&app).await, 1);
    // A reconnecting client does not get the retracted message back.
    let mut grace_back = app.connect(&grace).await;
    let since = grace_back
        .request("join-room", json!({ "roomId": room, "sinceMessageId": shown["data"]["message"]["id"] }))
        .await;
    assert_eq!(since["data"]["missedMessages"], json!([]), "{since}");
}

#[actix_web::test]
async fn a_resend_older_than_the_rooms_memory_gets_the_stored_original() {
    let app = spawn_app_with(
        |config| {
            unthrottled(config);
            config.chat_window_messages = 2;
        },
        None,
    )
    .await;
    let Class { grace, ada, room, .. } = class(&app).await;
    let mut grace_socket = in_room(&app, &grace, &room).await;
    let mut ada_socket = in_room(&app, &ada, &room).await;
    let original = post(&mut ada_socket, &room, "late homework?", Some("old")).await["data"]["message"].clone();
    for n in 0..3 {
        post(&mut grace_socket, &room, &format!("news {n}"), None).await;
    }
    let before = stored_messages(&app).await;
    let resend = post(&mut ada_socket, &room, "late homework?", Some("old")).await;
    assert_eq!(resend["ok"], true, "{resend}");
    assert_eq!(resend["data"]["message"]["id"], original["id"], "answered with the stored original");
    assert_eq!(stored_messages(&app).await, before, "nothing stored twice");
    // The room was shown a copy before the database spoke; it is taken back.
    let mut copy = None;
    for _ in 0..5 {
        let event = grace_socket.next_event("new-message").await;
        if event["data"]["message"]["clientMsgId"] == "old" && event["data"]["message"]["id"] != original["id"] {
            copy = Some(event["data"]["message"]["id"].clone());
            break;
        }
    }
    let copy = copy.expect("the room saw the copy");
    let retracted = grace_socket.next_event("message-deleted").await;
    assert_eq!(retracted["data"]["messageId"], copy);
}

#[actix_web::test]
async fn storing_a_message_twice_finds_the_first_and_a_taken_client_id_finds_the_original() {
    use classroom::db::chat::{insert_message, Inserted};
    let app = spawn_app_with(|_| {}, None).await;
    let Class { ada, room, .. } = class(&app).await;
    let row = |id: uuid::Uuid, client_msg_id: &str| classroom::db::models::ChatMessageRow {
        id: id.to_string(),
        room_id: room.clone(),
        seq: 1,
        sender_id: ada.id.clone(),
        message: "hi".into(),
        message_type: "text".into(),
        client_msg_id: Some(client_msg_id.into()),
        created_at: chrono::Utc::now().naive_utc(),
        edited_at: None,
        deleted_at: None,
    };
    let first = row(uuid::Uuid::new_v4(), "c1");
    let store = |row: classroom::db::models::ChatMessageRow| {
        let persistence = app.state.persistence.clone();
        async move { persistence.write(move |conn| insert_message(conn, &row)).await.expect("stored") }
    };
    assert_eq!(store(first.clone()).await, Inserted::Stored);
    // The same write again, as after a commit whose answer was lost.
    assert_eq!(store(first.clone()).await, Inserted::Stored);
    let mut other = row(uuid::Uuid::new_v4(), "c1");
    other.seq = 2;
    match store(other).await {
        Inserted::Duplicate(original) => assert_eq!(original.id, first.id),
        stored => panic!("a second message with the same clientMsgId was stored: {stored:?}"),
    }
    assert_eq!(stored_messages(&app).await, 1);
}

#[actix_web::test]
async fn a_member_who_stops_reading_is_closed_and_the_room_goes_on() {
    let app = spawn_app_with(
        |config| {
            unthrottled(config);
            config.ws_outbound_bytes = 64 * 1024;
        },
        None,
    )
    .await;
    let Class { grace, ada, room, .. } = class(&app).await;
    let mut grace_socket = in_room(&app, &grace, &room).await;
    let mut ada_socket = in_room(&app, &ada, &room).await; // and then never reads
    let text = "x".repeat(4_000);
    const MESSAGES: u64 = 1_500; // 6 MB for Ada, past any loopback buffer and the limit
                                 // Grace reads as she goes (a few frames ahead), as a live client does.
    for first in (1..=MESSAGES).step_by(5) {
        for ack in first..first + 5 {
            let frame = json!({ "event": "room-message", "data": { "roomId": room, "message": text }, "ack": ack });
            grace_socket.send_text(frame.to_string()).await;
        }
        for ack in first..first + 5 {
            assert_eq!(grace_socket.ack(ack).await["ok"], true);
            grace_socket.next_event("new-message").await;
        }
    }
    let code = ada_socket.ended().await;
    assert!(matches!(code, Some(4002) | None), "closed as a slow consumer, not {code:?}");
    let closed = app.state.metrics.slow_consumers_closed.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(closed, 1, "only Ada");
    let ada_id = uuid::Uuid::parse_str(&ada.id).unwrap();
    let topic = classroom::engine::hub::Topic::User(ada_id);
    assert!(crate::helpers::eventually(|| app.state.registry.hub.count(topic) == 0).await, "her socket is gone");
}
