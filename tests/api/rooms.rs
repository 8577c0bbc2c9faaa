//! A live session's room over real sockets: who may join when, capacity,
//! chat with acks and fan-out, typing, catching up after a reconnect, and a
//! room actor that dies and is replaced without dropping its sockets.

use std::time::Duration;

use serde_json::json;
use uuid::Uuid;

use crate::helpers::{spawn_app, TestApp, TestUser, WsClient};

/// Grace (instructor) and Ada (student) in a session that is open now, each
/// with a socket that has joined it.
struct TwoInARoom {
    ada: TestUser,
    session: String,
    grace_socket: WsClient,
    ada_socket: WsClient,
}

async fn two_in_a_room(app: &TestApp) -> TwoInARoom {
    let grace = app.register("Grace", "instructor").await;
    let ada = app.register("Ada", "student").await;
    let course = app.course_with(&grace, &[&ada]).await;
    let session = app.session_in(&grace, &course, 0, None).await;
    let mut grace_socket = app.connect(&grace).await;
    let mut ada_socket = app.connect(&ada).await;
    for socket in [&mut grace_socket, &mut ada_socket] {
        assert_eq!(socket.request("join-live-session", json!({ "sessionId": session })).await["ok"], true);
    }
    TwoInARoom { ada, session, grace_socket, ada_socket }
}

#[actix_web::test]
async fn joins_follow_the_window_membership_and_capacity() {
    let app = spawn_app().await;
    let grace = app.register("Grace", "instructor").await;
    let ada = app.register("Ada", "student").await;
    let bob = app.register("Bob", "student").await;
    let eve = app.register("Eve", "student").await;
    let course = app.course_with(&grace, &[&ada, &bob]).await;
    let session = app.session_in(&grace, &course, 30, Some(1)).await;

    let mut outsider = app.connect(&eve).await;
    let refused = outsider.request("join-live-session", json!({ "sessionId": session })).await;
    assert_eq!(refused["error"]["code"], "forbidden", "not enrolled: {refused}");
    let (status, _) = app.get(&format!("/api/live-sessions/{session}"), &eve.token).await;
    assert_eq!(status, 403);

    let mut ada_socket = app.connect(&ada).await;
    let early = ada_socket.request("join-live-session", json!({ "sessionId": session })).await;
    assert_eq!(early["error"]["code"], "join_window_closed", "30 minutes early: {early}");

    let mut grace_socket = app.connect(&grace).await;
    let joined = grace_socket.request("join-live-session", json!({ "sessionId": session })).await;
    assert_eq!(joined["ok"], true, "the instructor may come in any time: {joined}");
    assert_eq!(joined["data"]["participants"][0]["role"], "instructor");

    app.clock.advance(chrono::Duration::minutes(25));
    let joined = ada_socket.request("join-live-session", json!({ "sessionId": session })).await;
    assert_eq!(joined["ok"], true, "five minutes before the start: {joined}");
    assert_eq!(joined["data"]["session"]["attendeeCount"], 1);
    let entered = grace_socket.next_event("user-joined").await;
    assert_eq!(entered["data"]["user"]["userId"].as_str(), Some(ada.id.as_str()));
    assert_eq!(entered["data"]["user"]["role"], "student");

    // A second tab of Ada counts once; Bob finds the single seat taken.
    let mut ada_tab = app.connect(&ada).await;
    assert_eq!(ada_tab.request("join-live-session", json!({ "sessionId": session })).await["ok"], true);
    let mut bob_socket = app.connect(&bob).await;
    let full = bob_socket.request("join-live-session", json!({ "sessionId": session })).await;
    assert_eq!(full["error"]["code"], "session_full", "{full}");
    assert!(!grace_socket.receives_within("user-joined", Duration::from_millis(200)).await, "a second tab is no news");

    // Closing one tab is not a leave; closing the last one is.
    ada_tab.close().await;
    assert!(!grace_socket.receives_within("user-left", Duration::from_millis(300)).await);
    let left = ada_socket.request("leave-live-session", json!({ "sessionId": session })).await;
    assert_eq!(left["ok"], true);
    let gone = grace_socket.next_event("user-left").await;
    assert_eq!(gone["data"]["userId"].as_str(), Some(ada.id.as_str()));
    let joined = bob_socket.request("join-live-session", json!({ "sessionId": session })).await;
    assert_eq!(joined["ok"], true, "the seat is free again: {joined}");
}

#[actix_web::test]
async fn chat_is_acked_after_storage_and_reaches_everyone_in_order() {
    let app = spawn_app().await;
    let TwoInARoom { session, mut grace_socket, mut ada_socket, .. } = two_in_a_room(&app).await;

    let refused = ada_socket.request("session-message", json!({ "sessionId": session, "message": "   " })).await;
    assert_eq!(refused["error"]["code"], "empty_message");
    let not_joined =
        ada_socket.request("session-message", json!({ "sessionId": Uuid::new_v4(), "message": "hi" })).await;
    assert_eq!(not_joined["error"]["code"], "forbidden");

    let mut sent = Vec::new();
    for n in 0..20 {
        let ack = ada_socket
            .request(
                "session-message",
                json!({ "sessionId": session, "message": format!("question {n}"), "clientMsgId": format!("c{n}") }),
            )
            .await;
        assert_eq!(ack["ok"], true, "{ack}");
        assert_eq!(ack["data"]["message"]["senderName"], "Ada");
        sent.push(ack["data"]["message"]["id"].clone());
    }
    for (n, id) in sent.iter().enumerate() {
        let to_grace = grace_socket.next_event("new-message").await;
        assert_eq!(
            (&to_grace["data"]["message"]["id"], &to_grace["data"]["message"]["message"]),
            (id, &json!(format!("question {n}")))
        );
        let to_ada = ada_socket.next_event("new-message").await;
        assert_eq!(&to_ada["data"]["message"]["id"], id, "the sender gets the fan-out too");
    }
    // Acked means stored: all twenty are in the database now.
    let stored = app
        .state
        .db
        .read(|conn| {
            use classroom::db::schema::chat_messages::dsl::*;
            use diesel::prelude::*;
            Ok(chat_messages.count().get_result::<i64>(conn)?)
        })
        .await
        .unwrap();
    assert_eq!(stored, 20);

    // A resend with the same clientMsgId is the same message, not a new one.
    let again = ada_socket
        .request("session-message", json!({ "sessionId": session, "message": "question 19", "clientMsgId": "c19" }))
        .await;
    assert_eq!(&again["data"]["message"]["id"], sent.last().unwrap());
    assert!(!grace_socket.receives_within("new-message", Duration::from_millis(200)).await, "no duplicate fan-out");

    ada_socket.request("typing-in-session", json!({ "sessionId": session })).await;
    ada_socket.request("typing-in-session", json!({ "sessionId": session })).await;
    let typing = grace_socket.next_event("user-typing").await;
    assert_eq!(typing["data"]["name"], "Ada");
    assert!(
        !grace_socket.receives_within("user-typing", Duration::from_millis(200)).await,
        "typing is throttled per person"
    );
    assert!(!ada_socket.receives_within("user-typing", Duration::from_millis(100)).await, "not echoed to the typist");
}

#[actix_web::test]
async fn a_reconnecting_client_catches_up_from_its_last_message() {
    let app = spawn_app().await;
    let TwoInARoom { ada, session, mut grace_socket, mut ada_socket } = two_in_a_room(&app).await;

    let first = grace_socket.request("session-message", json!({ "sessionId": session, "message": "welcome" })).await;
    let last_seen = first["data"]["message"]["id"].clone();
    assert_eq!(ada_socket.next_event("new-message").await["data"]["message"]["id"], last_seen);
    ada_socket.close().await;

    for n in 0..5 {
        grace_socket
            .request("session-message", json!({ "sessionId": session, "message": format!("missed {n}") }))
            .await;
    }
    let mut back = app.connect(&ada).await;
    let joined = back.request("join-live-session", json!({ "sessionId": session, "sinceMessageId": last_seen })).await;
    assert_eq!(joined["ok"], true);
    for n in 0..5 {
        let missed = back.next_event("new-message").await;
        assert_eq!(missed["data"]["message"]["message"], format!("missed {n}"), "in order, none twice");
    }
    assert!(!back.receives_within("new-message", Duration::from_millis(200)).await);
}

#[actix_web::test]
async fn a_room_that_panics_is_replaced_and_its_sockets_carry_on() {
    let app = spawn_app().await;
    let TwoInARoom { ada, session, mut grace_socket, mut ada_socket } = two_in_a_room(&app).await;
    let (_, view) = app.get(&format!("/api/live-sessions/{session}"), &ada.token).await;
    let room_id = Uuid::parse_str(view["chatRoomId"].as_str().expect("the session names its chat room")).unwrap();
    let before = ada_socket.request("session-message", json!({ "sessionId": session, "message": "before" })).await;
    assert_eq!(before["ok"], true);
    grace_socket.next_event("new-message").await;

    let room = app.state.registry.live_sessions.existing(room_id).expect("room alive");
    room.do_send(classroom::engine::room::InjectPanic);
    for _ in 0..200 {
        if !room.connected() {
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(!room.connected(), "the room actor died");

    // The next message reaches a fresh actor, which re-attached both sockets.
    let after = ada_socket.request("session-message", json!({ "sessionId": session, "message": "after" })).await;
    assert_eq!(after["ok"], true, "{after}");
    let relayed = grace_socket.next_event("new-message").await;
    assert_eq!(relayed["data"]["message"]["message"], "after");
    let replacement = app.state.registry.live_sessions.existing(room_id).expect("a new room");
    assert!(replacement.connected() && replacement != room);
    assert_eq!(app.state.metrics.room_restarts.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert!(!grace_socket.receives_within("user-left", Duration::from_millis(200)).await, "nobody saw anyone leave");
}

#[actix_web::test]
async fn a_rebuilt_room_records_who_left_while_it_was_down() {
    let app = spawn_app().await;
    let TwoInARoom { ada, session, mut grace_socket, ada_socket } = two_in_a_room(&app).await;
    let (_, view) = app.get(&format!("/api/live-sessions/{session}"), &ada.token).await;
    let room_id = Uuid::parse_str(view["chatRoomId"].as_str().expect("chat room")).unwrap();
    let room = app.state.registry.live_sessions.existing(room_id).expect("room alive");
    room.do_send(classroom::engine::room::InjectPanic);
    assert!(crate::helpers::eventually(|| !room.connected()).await, "the room actor died");

    // Ada goes while no room actor is there to hear it.
    ada_socket.close().await;
    let ada_id = Uuid::parse_str(&ada.id).unwrap();
    let topic = classroom::engine::hub::Topic::User(ada_id);
    assert!(crate::helpers::eventually(|| app.state.registry.hub.count(topic) == 0).await);

    // The next event rebuilds the room, which records Ada's leave before the
    // message (writes are stored in order): once the message is acked, so is she.
    let after =
        grace_socket.request("session-message", json!({ "sessionId": session, "message": "still there?" })).await;
    assert_eq!(after["ok"], true, "{after}");
    let grace = grace_socket.request("join-live-session", json!({ "sessionId": session })).await;
    let participants = grace["data"]["participants"].as_array().expect("participants").clone();
    assert_eq!(participants.len(), 1, "only Grace is in the room: {participants:?}");
    let open: i64 = app
        .state
        .db
        .read(move |conn| {
            use classroom::db::schema::live_session_attendees::dsl::*;
            use diesel::prelude::*;
            Ok(live_session_attendees
                .filter(user_id.eq(ada_id.to_string()))
                .filter(left_at.is_null())
                .count()
                .get_result(conn)?)
        })
        .await
        .unwrap();
    assert_eq!(open, 0, "Ada's attendance is closed");
}
