//! What hostile or broken clients do to a socket, and the bounds that hold:
//! a client that sends and never reads cannot grow the server's memory
//! (every byte queued for it counts), garbage gets a socket closed, every
//! frame with an ack id gets its one answer, fragmented messages are put
//! back together, and a socket lives no longer than its token.

use std::time::Duration;

use actix_http::ws::Item;
use awc::ws::Message;
use bytes::Bytes;
use serde_json::json;

use crate::helpers::{spawn_app, spawn_app_with, WsClient};

#[actix_web::test]
async fn a_client_that_floods_garbage_and_never_reads_is_closed() {
    let app = spawn_app_with(|config| config.ws_outbound_bytes = 16 * 1024, None).await;
    let ada = app.register("Ada", "student").await;
    let mut flooder = app.connect(&ada).await;
    // Empty binary frames: each is refused with an error frame it never reads.
    let mut sent = 0;
    while sent < 20_000 && flooder.send_message(Message::Binary(Bytes::new())).await {
        sent += 1;
    }
    let code = flooder.ended().await;
    assert!(matches!(code, Some(4005) | None), "closed for its refused frames, not {code:?}");
    // The user's other socket is unaffected.
    let mut other = app.connect(&ada).await;
    assert_eq!(other.request("update-presence", json!({})).await["ok"], true);
}

#[actix_web::test]
async fn answers_and_pongs_a_client_does_not_read_count_against_its_bound() {
    let app = spawn_app_with(
        |config| {
            config.ws_outbound_bytes = 16 * 1024;
            config.ws_rate_per_sec = 100_000.0;
            config.ws_rate_burst = 100_000.0;
        },
        None,
    )
    .await;
    let ada = app.register("Ada", "student").await;
    let mut client = app.connect(&ada).await;
    // Valid pings, never read: the pongs (125 bytes each) pile up.
    let payload = Bytes::from(vec![b'p'; 125]);
    let mut sent = 0;
    while sent < 200_000 && client.send_message(Message::Ping(payload.clone())).await {
        sent += 1;
    }
    let code = client.ended().await;
    assert!(matches!(code, Some(4002) | None), "closed as a slow consumer, not {code:?}");
    assert!(app.state.metrics.slow_consumers_closed.load(std::sync::atomic::Ordering::Relaxed) >= 1);
}

#[actix_web::test]
async fn every_frame_with_an_ack_id_gets_its_answer() {
    let app = spawn_app().await;
    let ada = app.register("Ada", "student").await;
    let mut socket = app.connect(&ada).await;
    socket.send_text(r#"{"event": 5, "ack": 25}"#.into()).await;
    let answer = socket.ack(25).await;
    assert_eq!((answer["ok"].clone(), answer["error"]["code"].clone()), (json!(false), json!("invalid_frame")));
    socket.send_text(r#"{"event": "update-presence", "data": [1, 2], "ack": 26}"#.into()).await;
    assert_eq!(socket.ack(26).await["error"]["code"], "invalid_data", "data must be an object");
}

#[actix_web::test]
async fn a_message_sent_in_fragments_is_put_back_together() {
    let app = spawn_app().await;
    let ada = app.register("Ada", "student").await;
    let mut socket = app.connect(&ada).await;
    let text = json!({ "event": "update-presence", "data": { "activity": "Reading chapter 4" }, "ack": 7 }).to_string();
    let (a, rest) = text.split_at(10);
    let (b, c) = rest.split_at(20);
    for item in [
        Item::FirstText(Bytes::copy_from_slice(a.as_bytes())),
        Item::Continue(Bytes::copy_from_slice(b.as_bytes())),
        Item::Last(Bytes::copy_from_slice(c.as_bytes())),
    ] {
        assert!(socket.send_message(Message::Continuation(item)).await);
    }
    let answer = socket.ack(7).await;
    assert_eq!(answer["data"]["presence"]["activity"], "Reading chapter 4", "{answer}");
    // Past the frame limit in fragments: refused like one large frame.
    let chunk = Bytes::from(vec![b' '; 32 * 1024]);
    socket.send_message(Message::Continuation(Item::FirstText(chunk.clone()))).await;
    for _ in 0..3 {
        socket.send_message(Message::Continuation(Item::Continue(chunk.clone()))).await;
    }
    assert_eq!(socket.ended().await, Some(1009));
}

#[actix_web::test]
async fn logging_out_closes_the_sockets_opened_with_that_token() {
    let app = spawn_app().await;
    let ada = app.register("Ada", "student").await;
    let (status, login) = app
        .request("POST", "/api/auth/login", None, Some(json!({ "email": ada.email, "password": "correct horse" })))
        .await;
    assert_eq!(status, 200, "{login}");
    let phone_token = login["token"].as_str().unwrap().to_string();
    let mut laptop = app.connect(&ada).await;
    let mut phone = WsClient::connect(&format!("ws://127.0.0.1:{}/ws?token={phone_token}", app.port)).await;
    assert_eq!(phone.request("update-presence", json!({})).await["ok"], true);

    let (status, _) = app.request("POST", "/api/auth/logout", Some(&ada.token), None).await;
    assert_eq!(status, 204);
    assert_eq!(laptop.closed().await, Some(4003), "the laptop's token was revoked");
    assert_eq!(phone.request("update-presence", json!({})).await["ok"], true, "the phone signed in apart");
}

#[actix_web::test]
async fn a_socket_closes_when_its_token_expires() {
    let app = spawn_app_with(|config| config.ws_ping_interval_ms = 100, None).await;
    let ada = app.register("Ada", "student").await;
    let mut socket = app.connect(&ada).await;
    assert_eq!(socket.request("update-presence", json!({})).await["ok"], true);
    assert!(!socket.receives_within("never", Duration::from_millis(300)).await, "open while the token is good");
    let ttl = chrono::Duration::seconds(app.state.config.token_ttl_secs);
    app.clock.advance(ttl + chrono::Duration::seconds(1));
    assert_eq!(socket.closed().await, Some(4004));
}

#[actix_web::test]
async fn nul_bytes_and_absurd_dates_get_the_same_clear_400_on_both_databases() {
    let app = spawn_app().await;
    let register =
        json!({ "email": "nul@example.com", "password": "correct horse", "name": "A\u{0}da", "role": "student" });
    let (status, body) = app.request("POST", "/api/auth/register", None, Some(register)).await;
    assert_eq!((status, &body["error"]["code"]), (400, &json!("invalid_text")), "{body}");
    let login = json!({ "email": "a\u{0}@example.com", "password": "correct horse" });
    let (status, body) = app.request("POST", "/api/auth/login", None, Some(login)).await;
    assert_eq!((status, &body["error"]["code"]), (400, &json!("invalid_text")), "{body}");

    let grace = app.register("Grace", "instructor").await;
    let (status, body) = app.post("/api/courses", &grace.token, json!({ "title": "Rust\u{0}" })).await;
    assert_eq!((status, &body["error"]["code"]), (400, &json!("invalid_text")), "{body}");
    let course = app.course_with(&grace, &[]).await;
    // Next year, whenever the test runs: a start in the past is refused.
    let year = chrono::Datelike::year(&classroom::clock::Clock::now(&app.clock)) + 1;
    let (start, end) = (format!("{year}-12-24T10:00:00Z"), format!("{year}-12-24T11:00:00Z"));
    let session = |title: &str, start: &str, end: &str| json!({ "courseId": course, "title": title, "description": "fine\nlines", "scheduledStartTime": start, "scheduledEndTime": end });
    let (status, body) = app.post("/api/live-sessions", &grace.token, session("Own\u{0}ership", &start, &end)).await;
    assert_eq!((status, &body["error"]["code"]), (400, &json!("invalid_text")), "{body}");
    let (status, body) = app
        .post("/api/live-sessions", &grace.token, session("Ownership", "1000-01-01T10:00:00Z", "1000-01-01T11:00:00Z"))
        .await;
    assert_eq!((status, &body["error"]["code"]), (400, &json!("invalid_time")), "{body}");
    let (status, body) = app.get("/api/live-sessions?from=-9999-01-01T00%3A00%3A00Z", &grace.token).await;
    assert_eq!((status, &body["error"]["code"]), (400, &json!("invalid_time")), "{body}");
    let (status, _) = app.post("/api/live-sessions", &grace.token, session("Ownership", &start, &end)).await;
    assert_eq!(status, 201, "line breaks in a description are fine");

    let mut socket = app.connect(&grace).await;
    let nul = socket.request("update-presence", json!({ "activity": "Reading\u{0}" })).await;
    assert_eq!(nul["error"]["code"], "invalid_text", "{nul}");
    let ancient =
        socket.request("update-presence", json!({ "status": "busy", "expiresAt": "-9999-01-01T00:00:00Z" })).await;
    assert_eq!(ancient["error"]["code"], "invalid_time", "{ancient}");
    let (status, me) = app.get(&format!("/api/presence/user/{}", grace.id), &grace.token).await;
    assert_eq!((status, &me["activity"]), (200, &serde_json::Value::Null), "nothing was half-stored: {me}");
}

/// POSTs a login; the status and the Retry-After header.
async fn login_attempt(app: &crate::helpers::TestApp, email: &str) -> (u16, Option<String>) {
    let response = app
        .client
        .post(format!("{}/api/auth/login", app.address))
        .send_json(&json!({ "email": email, "password": "not the password" }))
        .await
        .expect("answered");
    let retry_after = response.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(String::from);
    (response.status().as_u16(), retry_after)
}

#[actix_web::test]
async fn sign_in_attempts_are_limited_per_client_and_per_account() {
    let app = spawn_app_with(|config| config.auth_attempts_per_client = 5, None).await;
    for n in 0..5 {
        assert_eq!(login_attempt(&app, &format!("someone{n}@example.com")).await.0, 401);
    }
    assert_eq!(login_attempt(&app, "someone@example.com").await, (429, Some("1".into())), "the client's sixth try");

    let app = spawn_app_with(
        |config| {
            config.auth_attempts_per_client = 1_000;
            config.auth_attempts_per_account = 3;
        },
        None,
    )
    .await;
    let ada = app.register("Ada", "student").await;
    for _ in 0..3 {
        assert_eq!(login_attempt(&app, &ada.email).await.0, 401);
    }
    assert_eq!(login_attempt(&app, &ada.email).await.0, 429, "Ada's account is not guessed at further");
    assert_eq!(login_attempt(&app, "bob@example.com").await.0, 401, "other accounts are not held up");
}

/// With the one hashing slot taken, sign-ins wait their turn for a while
/// and are then refused with a 503 that says when to retry; once the slot
/// is free they are answered again. (The slot is held by a hash of ours
/// that runs until we let it go, so the test does not depend on how fast
/// this machine hashes.)
#[actix_web::test]
async fn password_hashes_run_a_bounded_number_at_once() {
    let app = spawn_app_with(
        |config| {
            config.password_hash_concurrency = 1;
            config.auth_attempts_per_client = 10_000;
        },
        None,
    )
    .await;
    let hashing = &app.state.auth.hashing;
    let (release, held) = std::sync::mpsc::channel::<()>();
    let holder = hashing.run(move || held.recv());
    let refused_meanwhile = async {
        assert!(crate::helpers::eventually(|| hashing.idle_slots() == 0).await, "the slot is taken");
        let emails: Vec<String> = (0..3).map(|n| format!("guess{n}@example.com")).collect();
        let attempts = emails.iter().map(|email| login_attempt(&app, email));
        let answers = futures_util::future::join_all(attempts).await;
        release.send(()).expect("the holder waits for us");
        answers
    };
    let (held, answers) = futures_util::future::join(holder, refused_meanwhile).await;
    assert!(held.is_ok(), "the holder ran");
    assert!(
        answers.iter().all(|answer| *answer == (503, Some("1".to_string()))),
        "503 busy, retry in 1 s: {answers:?}"
    );
    assert_eq!(hashing.idle_slots(), 1, "the slot is free again");
    assert_eq!(login_attempt(&app, "late@example.com").await.0, 401, "answered once the slot is free");
}

#[actix_web::test]
async fn a_body_sent_a_byte_at_a_time_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app_with(|config| config.http_request_timeout_secs = 1, None).await;
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", app.port)).await.expect("connects");
    let head =
        "POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{";
    stream.write_all(head.as_bytes()).await.expect("head sent");
    // ... and nothing more: the server answers on its own, in time.
    let mut answer = vec![0u8; 1024];
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut answer)).await;
    let read = read.expect("answered within 10 s").expect("readable");
    let text = String::from_utf8_lossy(&answer[..read]);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("request_timeout"), "{text}");
}

#[actix_web::test]
async fn headers_sent_a_byte_at_a_time_are_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app_with(|config| config.http_request_timeout_secs = 1, None).await;
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", app.port)).await.expect("connects");
    // A request line and one header, then a byte every half second: the
    // headers never end, and the server must not wait for them forever.
    stream.write_all(b"GET /api/me HTTP/1.1\r\nHost: x\r\n").await.expect("head sent");
    let dribble = async {
        for byte in b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" {
            if stream.write_all(&[*byte]).await.is_err() {
                return true; // closed by the server: what this test waits for
            }
            actix_web::rt::time::sleep(Duration::from_millis(500)).await;
        }
        false
    };
    // The dribble would take 40 s; the server cuts it off after the 1 s
    // configured (4 s leaves room for a loaded machine, and is less than
    // the 5 s actix-http would wait by itself).
    let cut = tokio::time::timeout(Duration::from_secs(4), dribble).await;
    assert_eq!(cut.ok(), Some(true), "the server still read slow headers after 4 s");
    let mut answer = vec![0u8; 1024];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut answer)).await;
    let read = read.expect("the server answered or closed").unwrap_or(0);
    let text = String::from_utf8_lossy(&answer[..read]);
    assert!(read == 0 || text.starts_with("HTTP/1.1 408"), "{text}");
}

#[actix_web::test]
async fn methods_no_route_takes_are_not_allowed() {
    let app = spawn_app().await;
    for path in ["/api/me", "/", "/api/live-sessions"] {
        let (status, body) = app.request("TRACE", path, None, None).await;
        assert_eq!((status, &body["error"]["code"]), (405, &json!("method_not_allowed")), "{path}: {body}");
    }
    let (status, _) = app.request("POST", "/api/nowhere", None, None).await;
    assert_eq!(status, 404);
    let (status, _) = app.request("GET", "/sessions", None, None).await;
    assert_eq!(status, 200, "pages still fall back to the app's shell");
}

#[actix_web::test]
async fn the_openapi_document_declares_path_parameters_and_the_answers_every_call_may_give() {
    let app = spawn_app().await;
    let (status, spec) = app.request("GET", "/api/openapi.json", None, None).await;
    assert_eq!(status, 200);
    let mut wrong = Vec::new();
    for (path, operations) in spec["paths"].as_object().expect("paths") {
        let in_path: Vec<&str> = path.split('{').skip(1).filter_map(|rest| rest.split('}').next()).collect();
        for (method, operation) in operations.as_object().expect("operations") {
            let declared = operation["parameters"].as_array().cloned().unwrap_or_default();
            for name in &in_path {
                if !declared.iter().any(|p| p["name"] == *name && p["in"] == "path" && p["required"] == true) {
                    wrong.push(format!("{method} {path}: {{{name}}} is not a required path parameter"));
                }
            }
            for parameter in declared.iter().filter(|p| p["in"] == "path") {
                if !in_path.iter().any(|name| parameter["name"] == *name) {
                    wrong.push(format!(
                        "{method} {path}: {} is declared in the path but is not in it",
                        parameter["name"]
                    ));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    // The answers every call may give are declared: 401 with a token, 413
    // with a body, 503 for a write, 408 anywhere.
    for (path, operations) in spec["paths"].as_object().expect("paths") {
        for (method, operation) in operations.as_object().expect("operations") {
            let responses = operation["responses"].as_object().expect("responses");
            let mut expected = vec!["408"];
            if operation["security"].as_array().is_some_and(|s| !s.is_empty()) {
                expected.push("401");
            }
            if operation.get("requestBody").is_some() {
                expected.push("413");
            }
            if method != "get" {
                expected.push("503");
            }
            for code in expected {
                if !responses.contains_key(code) {
                    wrong.push(format!("{method} {path} does not declare {code}"));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    // For the validator `.ci/run` runs on it (openapi-spec-validator, from PyPI).
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("openapi.json");
    std::fs::write(&out, serde_json::to_vec_pretty(&spec).unwrap()).expect("written");
}
