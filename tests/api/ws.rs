//! The WebSocket envelope: the upgrade's auth, the first frame, errors for
//! bad frames on a socket that stays usable, size and rate limits, heartbeat.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{spawn_app, spawn_app_with, Incoming, WsClient, WAIT};

#[actix_web::test]
async fn the_upgrade_needs_a_valid_token() {
    let app = spawn_app().await;
    let (status, body) = app.request("GET", "/ws", None, None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("unauthorized")), "{body}");
    let (status, _) = app.request("GET", "/ws?token=forged", None, None).await;
    assert_eq!(status, 401);
    let refused = awc::Client::new().ws(format!("ws://127.0.0.1:{}/ws?token=forged", app.port)).connect().await;
    match refused {
        Err(awc::error::WsClientError::InvalidResponseStatus(status)) => assert_eq!(status.as_u16(), 401),
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("a forged token got a socket"),
    }
}

#[actix_web::test]
async fn the_first_frame_says_who_is_connected() {
    let app = spawn_app().await;
    let ada = app.register("Ada", "student").await;
    let mut socket = app.connect(&ada).await;
    let hello = socket.next_json().await;
    assert_eq!(hello["event"], "connected");
    assert_eq!(hello["data"]["userId"].as_str(), Some(ada.id.as_str()));
    assert!(uuid::Uuid::parse_str(hello["data"]["connectionId"].as_str().unwrap()).is_ok());
}

#[actix_web::test]
async fn bad_frames_get_errors_and_the_socket_stays_usable() {
    let app = spawn_app().await;
    let ada = app.register("Ada", "student").await;
    let mut socket = app.connect(&ada).await;
    socket.next_event("connected").await;

    socket.send_text("{not json".into()).await;
    let error = socket.next_json().await;
    assert_eq!((error["event"].as_str(), error["data"]["code"].as_str()), (Some("error"), Some("invalid_json")));

    socket.send_text(json!({ "event": "fly-to-the-moon", "data": {}, "ack": 41 }).to_string()).await;
    let ack = socket.ack(41).await;
    assert_eq!((ack["ok"].as_bool(), ack["error"]["code"].as_str()), (Some(false), Some("unknown_event")));

    let ack = socket.request("join-live-session", json!({})).await;
    assert_eq!(ack["error"]["code"], "invalid_data");
    assert!(ack["error"]["message"].as_str().unwrap().contains("sessionId"), "{ack}");

    let ack = socket.request("join-live-session", json!({ "sessionId": uuid::Uuid::new_v4() })).await;
    assert_eq!(ack["error"]["code"], "not_found", "an unknown session is a clear 404");

    let ack = socket.request("leave-live-session", json!({ "sessionId": uuid::Uuid::new_v4() })).await;
    assert_eq!(ack["error"]["code"], "not_in_session");
}

#[actix_web::test]
async fn an_oversize_frame_is_refused_with_1009() {
    let app = spawn_app().await;
    let ada = app.register("Ada", "student").await;
    let mut socket = app.connect(&ada).await;
    socket.next_event("connected").await;
    let huge =
        json!({ "event": "session-message", "data": { "message": "x".repeat(100 * 1024) }, "ack": 1 }).to_string();
    socket.send_text(huge).await;
    let error = socket.next_json().await;
    assert_eq!(error["data"]["code"], "too_large", "{error}");
    assert_eq!(socket.closed().await, Some(1009));
    // The server is fine: a new socket works.
    let mut again = app.connect(&ada).await;
    assert_eq!(again.next_json().await["event"], "connected");
}

#[actix_web::test]
async fn a_flood_of_frames_is_rate_limited() {
    let app = spawn_app_with(
        |config| {
            config.ws_rate_per_sec = 1.0;
            config.ws_rate_burst = 5.0;
        },
        None,
    )
    .await;
    let ada = app.register("Ada", "student").await;
    let mut socket = app.connect(&ada).await;
    socket.next_event("connected").await;
    for ack in 1..=20u64 {
        socket
            .send_text(
                json!({ "event": "leave-live-session", "data": { "sessionId": uuid::Uuid::new_v4() }, "ack": ack })
                    .to_string(),
            )
            .await;
    }
    let mut codes = Vec::new();
    for ack in 1..=20u64 {
        codes.push(socket.ack(ack).await["error"]["code"].as_str().unwrap().to_string());
    }
    assert_eq!(codes.iter().filter(|c| *c == "not_in_session").count(), 5, "the burst passes: {codes:?}");
    assert_eq!(codes.iter().filter(|c| *c == "rate_limited").count(), 15, "{codes:?}");
}

#[actix_web::test]
async fn a_silent_socket_is_closed_after_the_timeout() {
    let app = spawn_app_with(
        |config| {
            config.ws_ping_interval_ms = 50;
            config.ws_client_timeout_ms = 300;
        },
        None,
    )
    .await;
    let ada = app.register("Ada", "student").await;

    let mut alive = app.connect(&ada).await;
    alive.next_event("connected").await;
    let mut silent = app.connect(&ada).await;
    silent.answer_pings = false;
    silent.next_event("connected").await;

    // Both read at once, so the live one keeps answering pings meanwhile.
    let (silent_close, alive_frame) = tokio::join!(silent.closed(), alive.next_incoming(Duration::from_millis(900)));
    assert_eq!(silent_close, Some(4001), "no pong, no frame: heartbeat timeout");
    // The one that answers pings is still open well past the timeout.
    match alive_frame {
        None => {}
        Some(Incoming::Closed(code)) => panic!("a live socket was closed ({code:?})"),
        Some(Incoming::Json(frame)) => panic!("unexpected frame {frame}"),
    }
    assert_eq!(
        app.state.registry.hub.count(classroom::engine::hub::Topic::User(uuid::Uuid::parse_str(&ada.id).unwrap())),
        1
    );
}

#[actix_web::test]
async fn connections_per_user_are_limited() {
    let app = spawn_app_with(|config| config.max_connections_per_user = 2, None).await;
    let ada = app.register("Ada", "student").await;
    let mut first: WsClient = app.connect(&ada).await;
    first.next_event("connected").await;
    let mut second = app.connect(&ada).await;
    second.next_event("connected").await;
    let (status, body) = app.request("GET", &format!("/ws?token={}", ada.token), None, None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (429, Some("too_many_connections")), "{body}");
}

#[actix_web::test]
async fn only_ws_takes_upgrades() {
    let app = spawn_app().await;
    let ada = app.register("Ada", "student").await;
    let refused =
        awc::Client::new().ws(format!("ws://127.0.0.1:{}/api/courses?token={}", app.port, ada.token)).connect().await;
    match refused {
        Err(awc::error::WsClientError::InvalidResponseStatus(status)) => assert_eq!(status.as_u16(), 404),
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("an upgrade outside /ws got a socket"),
    }
}

/// A client may send its first frame in the same packet as the handshake
/// (the server must not lose bytes read along with the request).
#[actix_web::test]
async fn a_frame_sent_with_the_handshake_is_answered() {
    use actix_codec::Decoder;
    use actix_http::ws::{Codec, Frame, OpCode, Parser};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let app = spawn_app().await;
    let ada = app.register("Ada", "student").await;
    let mut bytes = format!(
        "GET /ws?token={} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: Upgrade\r\nupgrade: websocket\r\n\
         sec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        ada.token
    )
    .into_bytes();
    let mut frame = bytes::BytesMut::new();
    Parser::write_message(&mut frame, r#"{"event":"no-such-event","data":{},"ack":7}"#, OpCode::Text, true, true);
    bytes.extend_from_slice(&frame);
    let mut socket = tokio::net::TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    socket.write_all(&bytes).await.unwrap();

    // Read until the 101 head, then decode frames until the ack for 7.
    let mut received = bytes::BytesMut::new();
    let mut codec = Codec::new().client_mode();
    let mut head_done = false;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let mut chunk = [0u8; 4096];
        let read = tokio::time::timeout_at(deadline, socket.read(&mut chunk)).await.expect("answer in time").unwrap();
        assert!(read > 0, "server closed the socket");
        received.extend_from_slice(&chunk[..read]);
        if !head_done {
            let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
            let head = String::from_utf8_lossy(&received[..end]).into_owned();
            assert!(head.starts_with("HTTP/1.1 101"), "{head}");
            assert!(head.to_lowercase().contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="), "{head}");
            let _ = received.split_to(end + 4);
            head_done = true;
        }
        while let Some(frame) = codec.decode(&mut received).unwrap() {
            let Frame::Text(text) = frame else { continue };
            let value: serde_json::Value = serde_json::from_slice(&text).unwrap();
            if value["ack"] == 7 {
                assert_eq!(value["ok"], false, "{value}");
                assert_eq!(value["error"]["code"], "unknown_event", "{value}");
                return;
            }
        }
    }
}
