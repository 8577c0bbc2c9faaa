//! `spawn_app()` and the clients the tests talk through.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_codec::Framed;
use actix_web::web;
use awc::ws::{Codec, Frame, Message};
use awc::BoxedSocket;
use chrono::Utc;
use diesel::connection::SimpleConnection;
use diesel::Connection;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};

use classroom::clock::ManualClock;
use classroom::config::backend_of;
use classroom::config::{Backend, Config};
use classroom::db::{Db, Pool, PooledConnection};
use classroom::engine::persistence::ConnectionSource;
use classroom::startup::Application;
use classroom::state::AppState;

/// A database of its own for one test: a SQLite file in a temporary folder,
/// or a fresh schema in the PostgreSQL that DATABASE_URL names.
pub struct TestDatabase {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDatabase {
    /// The same database again, for a second server on it (several nodes);
    /// the first keeps it alive.
    pub fn again(&self) -> TestDatabase {
        TestDatabase { url: self.url.clone(), _dir: None }
    }
}

pub fn fresh_database() -> TestDatabase {
    let base = std::env::var("DATABASE_URL").unwrap_or_default();
    if classroom::config::backend_of(&base) == Backend::Postgres {
        let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
        let mut conn = diesel::PgConnection::establish(&base).expect("PostgreSQL from DATABASE_URL");
        conn.batch_execute(&format!("CREATE SCHEMA {schema}")).expect("create schema");
        let separator = if base.contains('?') { '&' } else { '?' };
        TestDatabase { url: format!("{base}{separator}options=-csearch_path%3D{schema}"), _dir: None }
    } else {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = dir.path().join("test.db").to_string_lossy().into_owned();
        TestDatabase { url, _dir: Some(dir) }
    }
}

/// A configuration for tests: loopback, random port, small thread counts.
pub fn test_config(database: &TestDatabase) -> Config {
    let mut config = Config::from_env();
    config.database_url = database.url.clone();
    config.bind_addr = "127.0.0.1:0".into();
    config.http_workers = 1;
    config.room_arbiters = 2;
    // Each test's server opens its whole pool at start, and a test's pool
    // lingers a moment after the test: eight each brought parallel tests to
    // PostgreSQL's 100-connection limit once ("timed out waiting for
    // connection" at start-up). Four is plenty for one test's load.
    config.db_pool_size = 4;
    config
}

pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub state: web::Data<AppState>,
    pub clock: ManualClock,
    pub client: awc::Client,
    pub server: actix_web::dev::ServerHandle,
    /// Kept so the test's database (a temporary folder) lives as long as the app.
    _database: TestDatabase,
}

impl Drop for TestApp {
    /// Stops the server and the engine's threads: they hold the database
    /// pool, and every test leaving its pool open exhausts PostgreSQL's
    /// connections long before the suite ends.
    fn drop(&mut self) {
        let _ = self.server.stop(false);
        // A node of the shared test Redis leaves it at once, so no other
        // test waits on a node that is gone (its heartbeat would last 15 s).
        if let Some(cluster) = &self.state.registry.cluster {
            cluster.leave_now();
        }
        self.state.registry.stop_arbiters();
        self.state.persistence.stop();
    }
}

impl TestApp {
    /// Stops this server (its writes drained first, as SIGTERM does) and
    /// starts a new one on the same database: what survives is what was stored.
    pub async fn restarted(mut self) -> TestApp {
        assert!(self.state.persistence.drain(Duration::from_secs(10)).await, "writes drained");
        self.server.stop(true).await;
        if let Some(cluster) = &self.state.registry.cluster {
            cluster.leave().await;
        }
        let database = std::mem::replace(&mut self._database, TestDatabase { url: String::new(), _dir: None });
        drop(self);
        start_on(database, |_| {}, None).await
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}, None).await
}

/// Starts a server with `adjust` applied to the test configuration and,
/// optionally, the persistence actor reading connections from `source`.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Config), source: Option<Arc<dyn ConnectionSource>>) -> TestApp {
    start_on(fresh_database(), adjust, source).await
}

/// As `spawn_app_with`, on a database the caller made (so it can reach the
/// same database from a pool of its own).
pub async fn start_on(
    database: TestDatabase,
    adjust: impl FnOnce(&mut Config),
    source: Option<Arc<dyn ConnectionSource>>,
) -> TestApp {
    let mut config = test_config(&database);
    adjust(&mut config);
    let clock = ManualClock::new(Utc::now());
    let app = Application::build_with_source(config, Arc::new(clock.clone()), source).await.expect("app builds");
    let port = app.port();
    let state = app.state();
    let server = app.handle();
    actix_web::rt::spawn(app.run_until_stopped());
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        state,
        clock,
        client: awc::Client::builder().timeout(Duration::from_secs(30)).finish(),
        server,
        _database: database,
    }
}

/// A signed-in user of a test.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: String,
    pub email: String,
    pub token: String,
}

impl TestApp {
    pub async fn request(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
        let url = format!("{}{}", self.address, path);
        let method = awc::http::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.client.request(method, url);
        if let Some(token) = token {
            req = req.insert_header(("Authorization", format!("Bearer {token}")));
        }
        let mut response = match body {
            Some(body) => req.send_json(&body).await,
            None => req.send().await,
        }
        .expect("request sent");
        let status = response.status().as_u16();
        let bytes = response.body().limit(16 * 1024 * 1024).await.expect("body");
        let value = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap_or(Value::Null) };
        (status, value)
    }

    /// A GET whose answer is not JSON: status, content type and body text.
    pub async fn get_text(&self, path: &str, token: &str) -> (u16, String, String) {
        let mut response = self
            .client
            .get(format!("{}{}", self.address, path))
            .insert_header(("Authorization", format!("Bearer {token}")))
            .send()
            .await
            .expect("request sent");
        let status = response.status().as_u16();
        let kind = response
            .headers()
            .get("content-type")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let bytes = response.body().limit(16 * 1024 * 1024).await.expect("body");
        (status, kind, String::from_utf8(bytes.to_vec()).expect("UTF-8"))
    }

    pub async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        self.request("GET", path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        self.request("POST", path, Some(token), Some(body)).await
    }

    /// Registers a user with the given role; the email is made unique.
    pub async fn register(&self, name: &str, role: &str) -> TestUser {
        let email = format!("{}-{}@example.com", name.to_lowercase(), uuid::Uuid::new_v4().simple());
        let (status, body) = self
            .request(
                "POST",
                "/api/auth/register",
                None,
                Some(json!({ "email": email, "password": "correct horse", "name": name, "role": role })),
            )
            .await;
        assert_eq!(status, 201, "register {name}: {body}");
        TestUser {
            id: body["user"]["id"].as_str().expect("id").to_string(),
            email,
            token: body["token"].as_str().expect("token").to_string(),
        }
    }

    /// Someone made an admin of the platform (admins are made by hand in
    /// the database, never by sign-up): teaches nothing of their own.
    pub async fn register_admin(&self, name: &str) -> TestUser {
        let admin = self.register(name, "instructor").await;
        let admin_id = admin.id.clone();
        self.state
            .db
            .read(move |conn| {
                use classroom::db::schema::users::dsl::*;
                use diesel::prelude::*;
                diesel::update(users.find(admin_id)).set(role.eq("admin")).execute(conn)?;
                Ok(())
            })
            .await
            .expect("made an admin");
        admin
    }

    /// A course taught by `instructor` with `students` enrolled.
    pub async fn course_with(&self, instructor: &TestUser, students: &[&TestUser]) -> String {
        let (status, course) = self.post("/api/courses", &instructor.token, json!({ "title": "Rust 101" })).await;
        assert_eq!(status, 201, "{course}");
        let course_id = course["id"].as_str().expect("course id").to_string();
        for student in students {
            let (status, body) =
                self.post(&format!("/api/courses/{course_id}/enroll"), &student.token, json!({})).await;
            assert_eq!(status, 201, "{body}");
        }
        course_id
    }

    /// A live session of the course starting `starts_in_minutes` from the test clock's now.
    pub async fn session_in(
        &self,
        instructor: &TestUser,
        course_id: &str,
        starts_in_minutes: i64,
        max: Option<i32>,
    ) -> String {
        let start = classroom::clock::Clock::now(&self.clock) + chrono::Duration::minutes(starts_in_minutes);
        let (status, session) = self
            .post(
                "/api/live-sessions",
                &instructor.token,
                json!({
                    "courseId": course_id,
                    "title": "Ownership",
                    "scheduledStartTime": start,
                    "scheduledEndTime": start + chrono::Duration::hours(1),
                    "maxAttendees": max,
                }),
            )
            .await;
        assert_eq!(status, 201, "{session}");
        session["id"].as_str().expect("session id").to_string()
    }

    /// A socket of `user` whose connection actor has started: the server
    /// subscribes the socket before it sends `connected`, so waiting for that
    /// frame means no push meant for this user can be missed afterwards. The
    /// frame is kept for callers that read it.
    pub async fn connect(&self, user: &TestUser) -> WsClient {
        self.connect_with(user, "").await
    }

    /// As [`Self::connect`], with more of the `/ws` query (`presence=diff`).
    pub async fn connect_with(&self, user: &TestUser, query: &str) -> WsClient {
        let url = format!("ws://127.0.0.1:{}/ws?token={}&{query}", self.port, user.token);
        let mut socket = WsClient::connect(&url).await;
        let hello = socket.next_event("connected").await;
        socket.pending.push_front(hello);
        socket
    }
}

/// A WebSocket client that answers pings and sorts acks from events.
pub struct WsClient {
    framed: Framed<BoxedSocket, Codec>,
    next_ack: u64,
    /// Events read while waiting for something else.
    pending: VecDeque<Value>,
    /// Whether to answer server pings (off to play a dead client).
    pub answer_pings: bool,
    /// Events dropped unread, without parsing (a storm of a thousand
    /// members brings each socket a thousand `user-joined`).
    pub skip_events: &'static [&'static str],
    /// How long to wait for a frame that should come ([`WAIT`] unless set).
    pub wait: Duration,
}

/// How long a test waits for a frame that should come.
pub const WAIT: Duration = Duration::from_secs(10);

pub enum Incoming {
    Json(Value),
    Closed(Option<u16>),
}

impl WsClient {
    pub async fn connect(url: &str) -> WsClient {
        Self::connect_within(url, Duration::from_secs(5)).await
    }

    /// Connects, waiting at most `timeout` for the handshake.
    pub async fn connect_within(url: &str, timeout: Duration) -> WsClient {
        let client = awc::Client::builder().timeout(timeout).finish();
        let (_, framed) = client.ws(url).max_frame_size(1024 * 1024).connect().await.expect("websocket connects");
        WsClient { framed, next_ack: 1, pending: VecDeque::new(), answer_pings: true, skip_events: &[], wait: WAIT }
    }

    pub async fn send_text(&mut self, text: String) {
        self.framed.send(Message::Text(text.into())).await.expect("send");
    }

    /// Sends any frame (binary, ping, a fragment); false once the server cut the socket.
    pub async fn send_message(&mut self, message: Message) -> bool {
        self.framed.send(message).await.is_ok()
    }

    /// The next JSON frame or the close, answering pings on the way.
    pub async fn next_incoming(&mut self, wait: Duration) -> Option<Incoming> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.framed.next()).await.ok()?;
            match frame {
                // Cut without a close frame (a reset, a killed server).
                None | Some(Err(_)) => return Some(Incoming::Closed(None)),
                Some(Ok(Frame::Text(bytes))) => {
                    if self.skips(&bytes) {
                        continue;
                    }
                    return Some(Incoming::Json(serde_json::from_slice(&bytes).expect("server frames are JSON")));
                }
                Some(Ok(Frame::Ping(payload))) => {
                    if self.answer_pings {
                        let _ = self.framed.send(Message::Pong(payload)).await;
                    }
                }
                Some(Ok(Frame::Close(reason))) => return Some(Incoming::Closed(reason.map(|r| u16::from(r.code)))),
                Some(Ok(_)) => {}
            }
        }
    }

    /// Whether a frame is one of `skip_events` (the server writes `event` first).
    fn skips(&self, frame: &[u8]) -> bool {
        let Some(rest) = frame.strip_prefix(br#"{"event":""#) else { return false };
        self.skip_events.iter().any(|event| rest.starts_with(event.as_bytes()) && rest.get(event.len()) == Some(&b'"'))
    }

    /// The frames read while waiting for something else, oldest first.
    #[allow(dead_code)] // for the real_binary tests, which share this file
    pub fn take_pending(&mut self) -> Vec<Value> {
        self.pending.drain(..).collect()
    }

    /// The next JSON frame (acks and events alike).
    pub async fn next_json(&mut self) -> Value {
        if let Some(event) = self.pending.pop_front() {
            return event;
        }
        match self.next_incoming(self.wait).await {
            Some(Incoming::Json(value)) => value,
            Some(Incoming::Closed(code)) => panic!("socket closed ({code:?}) while a frame was expected"),
            None => panic!("no frame within {:?}", self.wait),
        }
    }

    /// Sends an event with a fresh ack id and returns the ack, keeping any
    /// events that arrive first for `next_event`.
    pub async fn request(&mut self, event: &str, data: Value) -> Value {
        let ack = self.next_ack;
        self.next_ack += 1;
        self.send_text(json!({ "event": event, "data": data, "ack": ack }).to_string()).await;
        self.ack(ack).await
    }

    /// Waits for the ack with this id.
    pub async fn ack(&mut self, ack: u64) -> Value {
        if let Some(position) = self.pending.iter().position(|v| v["ack"] == json!(ack)) {
            return self.pending.remove(position).expect("present");
        }
        loop {
            match self.next_incoming(self.wait).await {
                Some(Incoming::Json(value)) if value["ack"] == json!(ack) => return value,
                Some(Incoming::Json(value)) => self.pending.push_back(value),
                Some(Incoming::Closed(code)) => panic!("socket closed ({code:?}) while waiting for ack {ack}"),
                None => panic!("no ack {ack} within {:?}", self.wait),
            }
        }
    }

    /// The next event with this name, skipping (and keeping) others.
    pub async fn next_event(&mut self, name: &str) -> Value {
        if let Some(position) = self.pending.iter().position(|v| v["event"] == name) {
            return self.pending.remove(position).expect("present");
        }
        loop {
            match self.next_incoming(self.wait).await {
                Some(Incoming::Json(value)) if value["event"] == name => return value,
                Some(Incoming::Json(value)) => self.pending.push_back(value),
                Some(Incoming::Closed(code)) => panic!("socket closed ({code:?}) while waiting for {name}"),
                None => panic!("no {name} event within {:?}", self.wait),
            }
        }
    }

    /// The updates of the next `presence-diff` frame (a socket opened with `presence=diff`).
    pub async fn next_presence_diff(&mut self) -> Vec<Value> {
        let diff = self.next_event("presence-diff").await;
        diff["data"]["updates"].as_array().unwrap_or_else(|| panic!("a diff has updates: {diff}")).clone()
    }

    /// Whether an event with this name arrives within `wait` (for "must not arrive" checks).
    pub async fn receives_within(&mut self, name: &str, wait: Duration) -> bool {
        if self.pending.iter().any(|v| v["event"] == name) {
            return true;
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_incoming(left).await {
                Some(Incoming::Json(value)) if value["event"] == name => return true,
                Some(Incoming::Json(value)) => self.pending.push_back(value),
                _ => return false,
            }
        }
    }

    /// Whether the ack with this id arrives within `wait` (kept for [`Self::ack`]).
    pub async fn acked_within(&mut self, ack: u64, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        while !self.pending.iter().any(|v| v["ack"] == json!(ack)) {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_incoming(left).await {
                Some(Incoming::Json(value)) => self.pending.push_back(value),
                _ => return false,
            }
        }
        true
    }

    /// Waits for the server to close the socket; returns the close code.
    pub async fn closed(&mut self) -> Option<u16> {
        loop {
            match self.next_incoming(self.wait).await {
                Some(Incoming::Closed(code)) => return code,
                Some(Incoming::Json(value)) => self.pending.push_back(value),
                None => panic!("socket not closed within {:?}", self.wait),
            }
        }
    }

    /// Reads until the server ends the socket: the close code of a clean
    /// close, None when it was cut mid-stream (as a client that does not read
    /// sees it, its close frame stuck behind unread ones).
    pub async fn ended(&mut self) -> Option<u16> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.framed.next()).await.expect("the socket ends in time") {
                None | Some(Err(_)) => return None,
                Some(Ok(Frame::Close(reason))) => return reason.map(|r| u16::from(r.code)),
                Some(Ok(_)) => {}
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.framed.send(Message::Close(None)).await;
    }
}

/// Whether `condition` comes true within [`WAIT`], polled every few
/// milliseconds: for state no event announces (counters, actor registries).
pub async fn eventually(condition: impl Fn() -> bool) -> bool {
    let deadline = std::time::Instant::now() + WAIT;
    while !condition() {
        if std::time::Instant::now() >= deadline {
            return false;
        }
        actix_web::rt::time::sleep(Duration::from_millis(5)).await;
    }
    true
}

/// A connection source over a real pool that can be switched off, as if the
/// database had gone away.
pub struct Switchable {
    pool: Pool,
    down: AtomicBool,
}

impl Switchable {
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }
}

impl ConnectionSource for Switchable {
    fn connection(&self) -> Result<PooledConnection, String> {
        if self.down.load(Ordering::SeqCst) {
            return Err("database switched off by the test".into());
        }
        self.pool.get().map_err(|err| err.to_string())
    }
}

/// A server whose persistence actor writes through a `Switchable` source.
/// Retries are capped at 100 ms so that recovery is quick to observe.
pub async fn spawn_switchable_app(adjust: impl FnOnce(&mut Config)) -> (TestApp, Arc<Switchable>) {
    let database = fresh_database();
    let own = Db::connect(&database.url, backend_of(&database.url), 4).expect("test pool");
    let source = Arc::new(Switchable { pool: own.pool, down: AtomicBool::new(false) });
    let app = start_on(
        database,
        |config| {
            config.persist_retry_max_ms = 100;
            adjust(config);
        },
        Some(source.clone() as Arc<dyn ConnectionSource>),
    )
    .await;
    (app, source)
}

/// A TCP proxy in front of a server (PostgreSQL, Redis) that the test can
/// cut: while down it closes the connections it carries and refuses new
/// ones, as a stopped server or a cut network would.
pub struct TcpProxy {
    down: tokio::sync::watch::Sender<bool>,
}

impl TcpProxy {
    /// Starts a proxy to the `host:port` of `url` (`scheme://[user@]host:port[/...]`)
    /// and returns it with `url` pointed at the proxy.
    pub async fn in_front_of(url: &str) -> (TcpProxy, String) {
        let authority_start = url.find('@').map(|at| at + 1).or_else(|| url.find("://").map(|i| i + 3)).expect("a URL");
        let authority_end = url[authority_start..].find('/').map_or(url.len(), |i| i + authority_start);
        let upstream = url[authority_start..authority_end].to_string();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("proxy listens");
        let port = listener.local_addr().expect("proxy address").port();
        let (down, watch) = tokio::sync::watch::channel(false);
        actix_web::rt::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if *watch.borrow() {
                    continue; // dropped: refused
                }
                let (upstream, mut watch) = (upstream.clone(), watch.clone());
                actix_web::rt::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = watch.wait_for(|down| *down) => {}
                    }
                });
            }
        });
        let proxied = format!("{}127.0.0.1:{port}{}", &url[..authority_start], &url[authority_end..]);
        (TcpProxy { down }, proxied)
    }

    pub fn set_down(&self, down: bool) {
        self.down.send_replace(down);
    }
}
