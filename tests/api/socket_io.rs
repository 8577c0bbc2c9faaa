//! Socket.IO at `/socket.io/` (issue 17), read frame by frame: the
//! handshake and its refusals, Engine.IO's heartbeat, the `closing` event
//! and `41` that say why a socket ends, and the limits `/ws` has. Polling
//! and its upgrade are `socket_io_polling.rs`. The main flow through the
//! official client is `e2e/tests/socket-io.test.mjs`.

use std::time::Duration;

use actix_codec::Framed;
use awc::ws::{Codec, Frame, Message};
use awc::BoxedSocket;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_with, TestApp, TestUser, WAIT};

/// A Socket.IO client spoken by hand: Engine.IO packets as text frames.
pub(crate) struct SioClient {
    framed: Framed<BoxedSocket, Codec>,
}

pub(crate) enum Packet {
    Text(String),
    Closed(Option<u16>),
}

impl SioClient {
    /// A WebSocket to `/socket.io/` with this query, not handshaken yet.
    pub(crate) async fn upgrade(app: &TestApp, query: &str) -> SioClient {
        let url = format!("ws://127.0.0.1:{}/socket.io/?{query}", app.port);
        let (_, framed) = awc::Client::new().ws(url).connect().await.expect("the upgrade is taken");
        SioClient { framed }
    }

    async fn open(app: &TestApp) -> (SioClient, Value) {
        let mut client = Self::upgrade(app, "EIO=4&transport=websocket").await;
        let Packet::Text(open) = client.next().await else { panic!("no open packet") };
        let open: Value = serde_json::from_str(open.strip_prefix('0').expect("an open packet")).unwrap();
        (client, open)
    }

    /// Opens and connects to the main namespace; the `40` and `connected` are read.
    async fn connected(app: &TestApp, user: &TestUser) -> SioClient {
        let (mut client, _) = Self::open(app).await;
        client.send(&format!(r#"40{{"token":"{}"}}"#, user.token)).await;
        let answer = client.text().await;
        assert!(answer.starts_with(r#"40{"sid":""#), "{answer}");
        let hello = client.text().await;
        assert!(hello.starts_with(r#"42["connected",{"#), "{hello}");
        client
    }

    pub(crate) async fn send(&mut self, text: &str) {
        self.framed.send(Message::Text(text.to_string().into())).await.expect("send");
    }

    /// The next text frame or the close; WebSocket pings are answered.
    pub(crate) async fn next(&mut self) -> Packet {
        loop {
            let frame = tokio::time::timeout(WAIT, self.framed.next()).await.expect("a frame in time");
            match frame {
                None | Some(Err(_)) => return Packet::Closed(None),
                Some(Ok(Frame::Text(bytes))) => return Packet::Text(String::from_utf8(bytes.to_vec()).unwrap()),
                Some(Ok(Frame::Close(reason))) => return Packet::Closed(reason.map(|r| u16::from(r.code))),
                Some(Ok(Frame::Ping(payload))) => {
                    let _ = self.framed.send(Message::Pong(payload)).await;
                }
                Some(Ok(_)) => {}
            }
        }
    }

    pub(crate) async fn text(&mut self) -> String {
        match self.next().await {
            Packet::Text(text) => text,
            Packet::Closed(code) => panic!("closed ({code:?}) while a packet was expected"),
        }
    }

    /// The next text packet that starts with `prefix`; Engine.IO pings are answered.
    pub(crate) async fn until(&mut self, prefix: &str) -> String {
        loop {
            let text = self.text().await;
            if text.starts_with(prefix) {
                return text;
            }
            if text == "2" {
                self.send("3").await;
            }
        }
    }

    /// Every text packet until the close, and the close code.
    pub(crate) async fn until_closed(&mut self) -> (Vec<String>, Option<u16>) {
        let mut texts = Vec::new();
        loop {
            match self.next().await {
                Packet::Text(text) => texts.push(text),
                Packet::Closed(code) => return (texts, code),
            }
        }
    }
}

/// The data of a `44` connect_error.
pub(crate) fn connect_error(packet: &str) -> Value {
    let body: Value = serde_json::from_str(packet.strip_prefix("44").expect("a connect_error")).unwrap();
    body["data"].clone()
}

#[actix_web::test]
async fn the_handshake_gives_the_heartbeat_and_the_connect_takes_the_token() {
    let app = spawn_app().await;
    let ada = app.register("Ada", "student").await;
    let (mut client, open) = SioClient::open(&app).await;
    let config = &app.state.config;
    assert_eq!(open["pingInterval"], json!(config.ws_ping_interval_ms));
    assert_eq!(open["pingTimeout"], json!(config.ws_client_timeout_ms - config.ws_ping_interval_ms));
    assert_eq!(open["maxPayload"], json!(config.ws_max_frame_bytes));
    assert_eq!(open["upgrades"], json!([]));

    client.send(&format!(r#"40{{"token":"{}"}}"#, ada.token)).await;
    let connected: Value = serde_json::from_str(client.text().await.strip_prefix("40").unwrap()).unwrap();
    let hello = client.text().await;
    let hello: Value = serde_json::from_str(hello.strip_prefix("42").unwrap()).unwrap();
    assert_eq!(hello[0], "connected");
    assert_eq!(hello[1]["userId"], json!(ada.id));
    assert_eq!(connected["sid"], hello[1]["connectionId"], "the Socket.IO id is our connection id");

    // An event with an ack id is answered as `43<id>[ack body]`.
    client.send(r#"427["update-presence",{"activity":"Reading"}]"#).await;
    let mut ack = client.text().await;
    while ack.starts_with("42") {
        ack = client.text().await; // pushes (her own presence) may come first
    }
    let body: Value = serde_json::from_str(ack.strip_prefix("437").unwrap_or_else(|| panic!("ack 7: {ack}"))).unwrap();
    assert_eq!((body[0]["ok"].as_bool(), body[0]["data"]["presence"]["activity"].as_str()), (Some(true), Some("Reading")));
}

#[actix_web::test]
async fn a_connect_is_refused_with_our_error_and_a_close() {
    let app = spawn_app_with(|config| config.max_connections_per_user = 1, None).await;
    let ada = app.register("Ada", "student").await;
    let cases = [
        (r#"40{"token":"forged"}"#.to_string(), "unauthorized"),
        ("40".to_string(), "unauthorized"),
        (r#"42["join-room",{}]"#.to_string(), "not_connected"),
        ("hello".to_string(), "invalid_frame"),
    ];
    for (packet, code) in cases {
        let (mut client, _) = SioClient::open(&app).await;
        client.send(&packet).await;
        let (texts, close) = client.until_closed().await;
        assert_eq!(texts.len(), 1, "{packet}: {texts:?}");
        assert_eq!(connect_error(&texts[0])["code"], code, "{packet}");
        assert_eq!(close, Some(1008), "{packet}");
    }

    // Another namespace is refused on its own; the main one still connects.
    let (mut client, _) = SioClient::open(&app).await;
    client.send(r#"40/admin,{"token":"x"}"#).await;
    let refused = client.text().await;
    let body: Value = serde_json::from_str(refused.strip_prefix("44/admin,").expect("its namespace")).unwrap();
    assert_eq!(body["data"]["code"], "unknown_namespace");
    client.send(&format!(r#"40{{"token":"{}"}}"#, ada.token)).await;
    assert!(client.text().await.starts_with("40{"));

    // The per-user limit of /ws counts these sockets too.
    let (mut second, _) = SioClient::open(&app).await;
    second.send(&format!(r#"40{{"token":"{}"}}"#, ada.token)).await;
    assert_eq!(connect_error(&second.text().await)["code"], "too_many_connections");

    // A plain GET of the WebSocket transport gets a clear 400, as /ws does.
    let (status, body) = app.request("GET", "/socket.io/?EIO=4&transport=websocket", None, None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("not_a_websocket")));
    let (status, body) = app.request("GET", "/socket.io/?EIO=3&transport=websocket", None, None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("unsupported_protocol_version")));
}

#[actix_web::test]
async fn a_socket_that_never_connects_is_closed_after_the_client_timeout() {
    let app = spawn_app_with(|config| config.ws_client_timeout_ms = 300, None).await;
    let (mut client, _) = SioClient::open(&app).await;
    let started = std::time::Instant::now();
    let (texts, close) = client.until_closed().await;
    assert_eq!(connect_error(&texts[0])["code"], "unauthorized", "{texts:?}");
    assert_eq!(close, Some(1008));
    assert!(started.elapsed() < Duration::from_secs(5), "closed after {:?}", started.elapsed());
}

#[actix_web::test]
async fn engine_io_pings_keep_a_socket_and_silence_ends_it_with_a_reconnect() {
    let app = spawn_app_with(
        |config| {
            config.ws_ping_interval_ms = 50;
            config.ws_client_timeout_ms = 300;
        },
        None,
    )
    .await;
    let ada = app.register("Ada", "student").await;
    let mut client = SioClient::connected(&app, &ada).await;
    // Answering `2` with `3` keeps it open past the timeout.
    let deadline = std::time::Instant::now() + Duration::from_millis(700);
    while std::time::Instant::now() < deadline {
        assert_eq!(client.text().await, "2", "only pings on an idle socket");
        client.send("3").await;
    }
    // Silence: the `closing` event says why, and without `41` the client reconnects by itself.
    let (texts, close) = client.until_closed().await;
    assert_eq!(close, Some(4001));
    let closing = texts.iter().find(|t| t.starts_with(r#"42["closing""#)).expect("a closing event");
    let closing: Value = serde_json::from_str(&closing[2..]).unwrap();
    assert_eq!(closing[1], json!({ "code": 4001, "reason": "heartbeat_timeout" }));
    assert!(!texts.iter().any(|t| t == "41"), "{texts:?}");
}

#[actix_web::test]
async fn a_logout_ends_the_namespace_so_the_client_does_not_come_back_with_that_token() {
    let app = spawn_app().await;
    let ada = app.register("Ada", "student").await;
    let mut client = SioClient::connected(&app, &ada).await;
    let (status, _) = app.request("POST", "/api/auth/logout", Some(&ada.token), None).await;
    assert_eq!(status, 204);
    let (texts, close) = client.until_closed().await;
    assert_eq!(close, Some(4003));
    let closing = texts.iter().position(|t| t.starts_with(r#"42["closing",{"code":4003"#)).expect("closing");
    assert_eq!(texts.get(closing + 1).map(String::as_str), Some("41"), "{texts:?}");
}

#[actix_web::test]
async fn socket_io_sockets_have_the_frame_limit_and_are_counted_apart() {
    let app = spawn_app().await;
    let ada = app.register("Ada", "student").await;
    let mut client = SioClient::connected(&app, &ada).await;
    let (_, _, metrics) = app.get_text("/metrics", &ada.token).await;
    assert!(metrics.contains("classroom_ws_connections_by_protocol{protocol=\"socket.io\"} 1"), "{metrics}");

    let limit = app.state.config.ws_max_frame_bytes;
    client.send(&format!(r#"42["session-message",{{"message":"{}"}}]"#, "x".repeat(limit))).await;
    let (texts, close) = client.until_closed().await;
    assert_eq!(close, Some(1009));
    assert!(texts.iter().any(|t| t.starts_with(r#"42["error",{"code":"too_large""#)), "{texts:?}");
}

#[actix_web::test]
async fn socket_io_and_native_clients_share_a_room_across_two_nodes_without_sticky_sessions() {
    let Some(url) = crate::cluster::redis_url() else { return };
    let (a, b) = crate::cluster::two_nodes(&url).await;
    let grace = a.register("Grace", "instructor").await;
    let ada = b.register("Ada", "student").await;
    let course = a.course_with(&grace, &[&ada]).await;
    let session = a.session_in(&grace, &course, 0, None).await;
    let (status, _) = a.post(&format!("/api/live-sessions/{session}/start"), &grace.token, json!({})).await;
    assert_eq!(status, 200);

    // Ada speaks Socket.IO to node B; Grace our frames to node A, where the room lives.
    let mut ada_socket = SioClient::connected(&b, &ada).await;
    ada_socket.send(&format!(r#"421["join-live-session",{{"sessionId":"{session}"}}]"#)).await;
    let joined = ada_socket.until("431[").await;
    assert!(joined.starts_with(r#"431[{"ok":true"#), "{joined}");
    let mut grace_socket = a.connect(&grace).await;
    let ack = grace_socket.request("join-live-session", json!({ "sessionId": session })).await;
    assert_eq!(ack["ok"], true, "{ack}");
    ada_socket.until(r#"42["user-joined""#).await;

    ada_socket.send(&format!(r#"422["session-message",{{"sessionId":"{session}","message":"from B"}}]"#)).await;
    let stored = ada_socket.until("432[").await;
    let stored: Value = serde_json::from_str(&stored[3..]).unwrap();
    let id = stored[0]["data"]["message"]["id"].as_str().expect("the stored message").to_string();
    let seen = grace_socket.next_event("new-message").await;
    assert_eq!(seen["data"]["message"]["id"], json!(id));

    let reply = grace_socket.request("session-message", json!({ "sessionId": session, "message": "from A" })).await;
    let reply_id = reply["data"]["message"]["id"].as_str().expect("stored").to_string();
    loop {
        let push = ada_socket.until(r#"42["new-message""#).await;
        if push.contains(&reply_id) {
            break;
        }
    }
}
