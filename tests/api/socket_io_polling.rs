//! Socket.IO over HTTP long-polling, and its upgrade to WebSocket (issue
//! 17), request by request: what a `socket.io-client` with default options
//! does before the WebSocket, and what it gets when it does it wrong.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_with, TestApp, TestUser, WAIT};
use crate::socket_io::{connect_error, Packet, SioClient};

/// A polling client spoken by hand.
struct Poller<'a> {
    app: &'a TestApp,
    sid: String,
}

impl<'a> Poller<'a> {
    /// Opens a session; its open packet is returned.
    async fn open(app: &'a TestApp) -> (Poller<'a>, Value) {
        let (status, body) = raw(app, "GET", "EIO=4&transport=polling&t=a1", None).await;
        assert_eq!(status, 200, "{body}");
        let open: Value = serde_json::from_str(body.strip_prefix('0').expect("an open packet")).unwrap();
        let sid = open["sid"].as_str().expect("a sid").to_string();
        (Poller { app, sid }, open)
    }

    /// Opens a session and connects as `user`; the `40` and `connected` are read.
    async fn connected(app: &'a TestApp, user: &TestUser) -> Poller<'a> {
        let (poller, _) = Self::open(app).await;
        assert_eq!(poller.post(&format!(r#"40{{"token":"{}"}}"#, user.token)).await, (200, "ok".to_string()));
        let packets = poller.until(r#"42["connected""#).await;
        assert!(packets[0].starts_with(r#"40{"sid":""#), "{packets:?}");
        poller
    }

    fn query(&self) -> String {
        format!("EIO=4&transport=polling&sid={}", self.sid)
    }

    async fn post(&self, payload: &str) -> (u16, String) {
        raw(self.app, "POST", &self.query(), Some(payload.to_string())).await
    }

    /// One GET: the packets it brought.
    async fn get(&self) -> Vec<String> {
        let (status, body) = raw(self.app, "GET", &self.query(), None).await;
        assert_eq!(status, 200, "{body}");
        body.split('\u{1e}').map(str::to_string).collect()
    }

    /// GETs until a packet starts with `prefix`: every packet up to it.
    /// Pings are not answered (a test that runs past the timeout answers them).
    async fn until(&self, prefix: &str) -> Vec<String> {
        let deadline = Instant::now() + WAIT;
        let mut seen = Vec::new();
        while Instant::now() < deadline {
            for packet in self.get().await {
                let found = packet.starts_with(prefix);
                seen.push(packet);
                if found {
                    return seen;
                }
            }
        }
        panic!("no {prefix} within {WAIT:?}: {seen:?}");
    }
}

/// A request to `/socket.io/` with this query: status and body text.
async fn raw(app: &TestApp, method: &str, query: &str, body: Option<String>) -> (u16, String) {
    let url = format!("{}/socket.io/?{query}", app.address);
    let method = awc::http::Method::from_bytes(method.as_bytes()).expect("method");
    let request = app.client.request(method, url).timeout(WAIT);
    let mut response = match body {
        Some(body) => request.insert_header(("content-type", "text/plain;charset=UTF-8")).send_body(body).await,
        None => request.send().await,
    }
    .expect("request sent");
    let bytes = response.body().limit(1024 * 1024).await.expect("body");
    (response.status().as_u16(), String::from_utf8(bytes.to_vec()).expect("text"))
}

fn error_code(body: &str) -> String {
    let body: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("a JSON error: {body}"));
    body["error"]["code"].as_str().expect("a code").to_string()
}

/// The body of the ack `43<id>[...]` among `packets`.
fn ack(packets: &[String], id: u64) -> Value {
    let prefix = format!("43{id}[");
    let packet = packets.iter().find(|p| p.starts_with(&prefix)).unwrap_or_else(|| panic!("ack {id}: {packets:?}"));
    serde_json::from_str::<Value>(&packet[prefix.len() - 1..]).unwrap()[0].clone()
}

#[actix_web::test]
async fn a_polling_client_connects_sends_events_and_gets_acks_and_pushes() {
    let app = spawn_app().await;
    let ada = app.register("Ada", "student").await;
    let (poller, open) = Poller::open(&app).await;
    let config = &app.state.config;
    assert_eq!(open["upgrades"], json!(["websocket"]));
    assert_eq!(open["pingInterval"], json!(config.ws_ping_interval_ms));
    assert_eq!(open["maxPayload"], json!(config.ws_max_frame_bytes));

    // The connect and an event in one payload, as the client batches them.
    let payload =
        format!("40{{\"token\":\"{}\"}}\u{1e}425[\"update-presence\",{{\"activity\":\"Reading\"}}]", ada.token);
    assert_eq!(poller.post(&payload).await, (200, "ok".to_string()));
    let packets = poller.until("435[").await;
    let connected: Value = serde_json::from_str(packets[0].strip_prefix("40").expect("connected first")).unwrap();
    let hello = packets.iter().find(|p| p.starts_with(r#"42["connected""#)).expect("hello");
    let hello: Value = serde_json::from_str(&hello[2..]).unwrap();
    assert_eq!(connected["sid"], hello[1]["connectionId"]);
    let answer = ack(&packets, 5);
    assert_eq!(
        (answer["ok"].as_bool(), answer["data"]["presence"]["activity"].as_str()),
        (Some(true), Some("Reading"))
    );

    // A GET waits for what comes next: here a refusal through the ack.
    assert_eq!(poller.post(r#"426["join-live-session",{"sessionId":"nope"}]"#).await.0, 200);
    let packets = poller.until("436[").await;
    assert_eq!(ack(&packets, 6)["error"]["code"], "invalid_data", "{packets:?}");

    let (_, _, metrics) = app.get_text("/metrics", &ada.token).await;
    assert!(metrics.contains("classroom_socket_io_connections_by_transport{transport=\"polling\"} 1"), "{metrics}");
    assert!(metrics.contains("classroom_ws_connections_by_protocol{protocol=\"socket.io\"} 1"), "{metrics}");

    // The client's close packet ends the session: its sid is gone.
    assert_eq!(poller.post("1").await.0, 200);
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, body) = raw(&app, "GET", &poller.query(), None).await;
        if status == 400 {
            assert_eq!(error_code(&body), "unknown_session");
            break;
        }
        assert!(Instant::now() < deadline, "the session lives on: {body}");
    }
}

#[actix_web::test]
async fn polling_refuses_bad_requests_clearly_and_keeps_a_refused_session_for_a_new_connect() {
    let app = spawn_app().await;
    let ada = app.register("Ada", "student").await;
    let (poller, _) = Poller::open(&app).await;

    // A bad token gets connect_error through the next GET; the session stays.
    assert_eq!(poller.post(r#"40{"token":"forged"}"#).await.0, 200);
    let packets = poller.get().await;
    assert_eq!(connect_error(&packets[0])["code"], "unauthorized", "{packets:?}");
    assert_eq!(poller.post(r#"42["join-room",{}]"#).await.0, 200);
    assert_eq!(connect_error(&poller.get().await[0])["code"], "not_connected");
    assert_eq!(poller.post(&format!(r#"40{{"token":"{}"}}"#, ada.token)).await.0, 200);
    poller.until(r#"42["connected""#).await;

    // One GET at a time: of two at once, one waits (for the next ping) and the other is refused.
    let query = poller.query();
    let (first, second) = tokio::join!(raw(&app, "GET", &query, None), raw(&app, "GET", &query, None));
    let mut answers = [first, second];
    answers.sort();
    assert_eq!(answers[0].0, 200, "{answers:?}");
    assert_eq!((answers[1].0, error_code(&answers[1].1).as_str()), (400, "overlapping_poll"));

    let cases = [
        ("GET", "EIO=4&transport=polling&sid=nope".to_string(), 400, "unknown_session"),
        ("POST", "EIO=4&transport=polling".to_string(), 400, "no_session"),
        ("GET", "EIO=3&transport=polling".to_string(), 400, "unsupported_protocol_version"),
        ("GET", "EIO=4&transport=carrier-pigeon".to_string(), 400, "unsupported_transport"),
        ("PUT", poller.query(), 405, "method_not_allowed"),
    ];
    for (method, query, status, code) in cases {
        let (got, body) = raw(&app, method, &query, Some(String::new())).await;
        assert_eq!((got, error_code(&body).as_str()), (status, code), "{method} {query}");
    }
    let (status, body) = raw(&app, "POST", &poller.query(), Some("\u{0}\u{1e}\u{1e}ÿ".to_string())).await;
    assert_eq!(status, 200, "bad packets are answered through the session: {body}");
    let packets = poller.until(r#"42["error""#).await;
    assert!(packets.iter().any(|p| p.contains("invalid_frame")), "{packets:?}");

    // A payload over the limit ends the connection, as a frame over it does.
    let limit = app.state.config.ws_max_frame_bytes;
    let (status, body) = poller.post(&format!(r#"42["session-message",{{"message":"{}"}}]"#, "x".repeat(limit))).await;
    assert_eq!((status, error_code(&body).as_str()), (413, "too_large"));
    let packets = poller.until("1").await;
    assert!(packets.iter().any(|p| p.starts_with(r#"42["closing",{"code":1009"#)), "{packets:?}");
}

#[actix_web::test]
async fn an_upgrade_moves_the_connection_to_websocket_and_loses_nothing() {
    let app = spawn_app().await;
    let ada = app.register("Ada", "student").await;
    let poller = Poller::connected(&app, &ada).await;

    // An answer waiting for a GET when the upgrade starts.
    assert_eq!(poller.post(r#"421["update-presence",{"activity":"Probing"}]"#).await.0, 200);

    let mut socket = SioClient::upgrade(&app, &format!("EIO=4&transport=websocket&sid={}", poller.sid)).await;
    socket.send("2probe").await;
    assert_eq!(socket.text().await, "3probe");
    // While the probe stands, polls end at once (`6` once the queue is empty).
    let mut polled = Vec::new();
    while polled.last().map(String::as_str) != Some("6") {
        polled.extend(poller.get().await);
    }
    socket.send("5").await;
    socket.send(r#"422["update-presence",{"activity":"Upgraded"}]"#).await;
    let mut texts = polled;
    loop {
        let text = socket.text().await;
        let done = text.starts_with("432[");
        texts.push(text);
        if done {
            break;
        }
    }
    assert_eq!(ack(&texts, 1)["data"]["presence"]["activity"], "Probing", "{texts:?}");
    assert_eq!(ack(&texts, 2)["data"]["presence"]["activity"], "Upgraded");

    // The session is the WebSocket's now: polling it is over.
    let (status, body) = raw(&app, "GET", &poller.query(), None).await;
    assert_eq!((status, error_code(&body).as_str()), (400, "unknown_session"));
    let (_, _, metrics) = app.get_text("/metrics", &ada.token).await;
    assert!(metrics.contains("classroom_socket_io_connections_by_transport{transport=\"polling\"} 0"), "{metrics}");
    assert!(metrics.contains("classroom_socket_io_connections_by_transport{transport=\"websocket\"} 1"), "{metrics}");

    // An upgrade of a session that does not exist is refused before the 101.
    let url = format!("ws://127.0.0.1:{}/socket.io/?EIO=4&transport=websocket&sid=nope", app.port);
    assert!(awc::Client::new().ws(url).connect().await.is_err());
}

#[actix_web::test]
async fn a_probe_that_fails_lets_the_client_poll_on() {
    let app = spawn_app().await;
    let ada = app.register("Ada", "student").await;
    let poller = Poller::connected(&app, &ada).await;
    let mut socket = SioClient::upgrade(&app, &format!("EIO=4&transport=websocket&sid={}", poller.sid)).await;
    socket.send("2probe").await;
    assert_eq!(socket.text().await, "3probe");
    socket.send(r#"42["send-message",{}]"#).await;
    let Packet::Text(refusal) = socket.next().await else { panic!("a connect_error first") };
    assert_eq!(connect_error(&refusal)["code"], "invalid_frame");

    // Polling goes on as before, GETs wait again.
    assert_eq!(poller.post(r#"423["update-presence",{"activity":"Still polling"}]"#).await.0, 200);
    let packets = poller.until("433[").await;
    assert_eq!(ack(&packets, 3)["data"]["presence"]["activity"], "Still polling");
}

#[actix_web::test]
async fn a_session_that_never_connects_or_stops_answering_pings_ends() {
    let app = spawn_app_with(
        |config| {
            config.ws_ping_interval_ms = 50;
            config.ws_client_timeout_ms = 300;
        },
        None,
    )
    .await;
    let ada = app.register("Ada", "student").await;

    // No connect: the session is dropped after the client timeout.
    let (idle, _) = Poller::open(&app).await;
    let started = Instant::now();
    loop {
        // A GET waits: it is ended by the session's end (`1`), or is the first to find it gone.
        let (status, body) = raw(&app, "GET", &idle.query(), None).await;
        if body == "1" || (status == 400 && error_code(&body) == "unknown_session") {
            break;
        }
        assert!(started.elapsed() < WAIT, "the handshake never ended: {status} {body}");
    }
    assert!(app.state.registry.polling.get(&idle.sid).is_none());

    // Pongs keep a connected session; silence ends it with `closing` 4001 then `1`.
    let poller = Poller::connected(&app, &ada).await;
    let kept_until = Instant::now() + Duration::from_millis(700);
    while Instant::now() < kept_until {
        for packet in poller.get().await {
            assert_eq!(packet, "2", "only pings on an idle session");
            poller.post("3").await;
        }
    }
    let packets = poller.until("1").await;
    let closing = packets.iter().find(|p| p.starts_with(r#"42["closing""#)).expect("a closing event");
    assert_eq!(
        serde_json::from_str::<Value>(&closing[2..]).unwrap()[1],
        json!({ "code": 4001, "reason": "heartbeat_timeout" })
    );
    assert!(!packets.iter().any(|p| p == "41"), "the client may reconnect: {packets:?}");
}

#[actix_web::test]
async fn a_session_upgraded_before_its_connect_goes_on_with_the_handshake_over_websocket() {
    let app = spawn_app().await;
    let ada = app.register("Ada", "student").await;
    let (poller, _) = Poller::open(&app).await;
    // A refused connect whose answer polling never delivered (the client paused it to upgrade).
    assert_eq!(poller.post(r#"40{"token":"forged"}"#).await.0, 200);
    let mut socket = SioClient::upgrade(&app, &format!("EIO=4&transport=websocket&sid={}", poller.sid)).await;
    socket.send("2probe").await;
    assert_eq!(socket.text().await, "3probe");
    socket.send("5").await;
    assert_eq!(connect_error(&socket.text().await)["code"], "unauthorized", "the refusal comes over the WebSocket");
    socket.send(&format!(r#"40{{"token":"{}"}}"#, ada.token)).await;
    assert!(socket.text().await.starts_with(r#"40{"sid":""#));
    assert!(socket.text().await.starts_with(r#"42["connected""#));
    assert!(app.state.registry.polling.is_empty(), "polling is over for that session");
}

#[actix_web::test]
async fn answers_a_session_never_takes_before_its_connect_are_bounded() {
    let app = spawn_app_with(|config| config.ws_outbound_bytes = 4096, None).await;
    let (poller, _) = Poller::open(&app).await;
    // 1,000 probes make 6,000 bytes of answers, more than a socket may owe.
    let pings = vec!["2probe"; 1000].join("\u{1e}");
    assert_eq!(poller.post(&pings).await.0, 200);
    let (status, body) = raw(&app, "GET", &poller.query(), None).await;
    assert_eq!((status, error_code(&body).as_str()), (400, "unknown_session"), "the session was ended");
}
