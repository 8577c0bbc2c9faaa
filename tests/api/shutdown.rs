//! Graceful shutdown of the real binary: SIGTERM while ~500 course creations
//! are in flight. Open sockets are closed with 1001, the process exits with
//! success, and every course the server acknowledged (201) is in the
//! database afterwards. Requests that failed or were refused are fine; an
//! acknowledged write that went missing is the failure guarded against.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use classroom::config::backend_of;
use classroom::db::{self, Db};

use crate::helpers::{fresh_database, WsClient};

const COURSES: usize = 500;

/// The server binary running as a child process, its stderr collected line
/// by line. Killed on drop if the test ends early.
struct ServerProcess {
    child: Child,
    logs: Arc<Mutex<Vec<String>>>,
}

impl ServerProcess {
    fn start(database_url: &str) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_classroom"))
            .env("DATABASE_URL", database_url)
            .env("BIND_ADDR", "127.0.0.1:0")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("server binary starts");
        let stderr = child.stderr.take().expect("piped stderr");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = logs.clone();
        // Keeps draining until the process exits, so the pipe never fills.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Self { child, logs }
    }

    fn log_text(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }

    /// The port from the "listening on http://127.0.0.1:<port>" log line.
    async fn port(&mut self) -> u16 {
        const NEEDLE: &str = "listening on http://127.0.0.1:";
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let found = self.logs.lock().unwrap().iter().find_map(|line| {
                let rest = &line[line.find(NEEDLE)? + NEEDLE.len()..];
                rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
            });
            if let Some(port) = found {
                return port;
            }
            if let Some(status) = self.child.try_wait().expect("poll child") {
                panic!("server exited ({status}) before listening:\n{}", self.log_text());
            }
            assert!(Instant::now() < deadline, "server not listening after 30 s:\n{}", self.log_text());
            actix_web::rt::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// `kill -9`: no goodbye, nothing flushed, sockets cut.
    fn kill(&mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("reap");
    }

    fn terminate(&self) {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().expect("run kill");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Waits for the process to exit, at most `limit`.
    async fn exited_within(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll child") {
                return status;
            }
            assert!(Instant::now() < deadline, "server still running {limit:?} after SIGTERM:\n{}", self.log_text());
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// POSTs JSON; `None` if no answer came (refused, reset, timed out).
async fn post(client: &awc::Client, url: &str, token: Option<&str>, body: Value) -> Option<(u16, Value)> {
    let mut request = client.post(url);
    if let Some(token) = token {
        request = request.insert_header(("Authorization", format!("Bearer {token}")));
    }
    let mut response = request.send_json(&body).await.ok()?;
    let bytes = response.body().await.ok()?;
    Some((response.status().as_u16(), serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
}

#[actix_web::test]
async fn sigterm_with_writes_in_flight_loses_no_acknowledged_write() {
    let database = fresh_database();
    let mut server = ServerProcess::start(&database.url);
    let port = server.port().await;
    let base = format!("http://127.0.0.1:{port}");
    let client = awc::Client::builder().timeout(Duration::from_secs(30)).finish();

    let email = format!("ada-{}@example.com", uuid::Uuid::new_v4().simple());
    let registration = json!({ "email": email, "password": "correct horse", "name": "Ada", "role": "instructor" });
    let (status, body) =
        post(&client, &format!("{base}/api/auth/register"), None, registration).await.expect("register answered");
    assert_eq!(status, 201, "{body}");
    let token = body["token"].as_str().expect("token").to_string();

    let mut socket = WsClient::connect(&format!("ws://127.0.0.1:{port}/ws?token={token}")).await;
    let hello = socket.next_json().await;
    assert_eq!(hello["event"], "connected", "{hello}");

    let answered = Arc::new(AtomicUsize::new(0));
    let requests: Vec<_> = (0..COURSES)
        .map(|i| {
            let (client, answered, token) = (client.clone(), answered.clone(), token.clone());
            let url = format!("{base}/api/courses");
            let title = format!("Course {i}");
            actix_web::rt::spawn(async move {
                let response = post(&client, &url, Some(&token), json!({ "title": title })).await;
                answered.fetch_add(1, Ordering::SeqCst);
                (title, response)
            })
        })
        .collect();

    // SIGTERM once some answers are back and most requests are still in flight.
    let deadline = Instant::now() + Duration::from_secs(30);
    while answered.load(Ordering::SeqCst) < 50 {
        assert!(Instant::now() < deadline, "fewer than 50 answers in 30 s:\n{}", server.log_text());
        actix_web::rt::time::sleep(Duration::from_millis(1)).await;
    }
    server.terminate();

    assert_eq!(socket.closed().await, Some(1001), "the socket is closed as 'going away'");
    let mut acknowledged = Vec::new();
    for request in requests {
        let (title, response) = request.await.expect("request task");
        match response {
            Some((201, course)) => {
                assert_eq!(course["title"], title.as_str(), "{course}");
                acknowledged.push((course["id"].as_str().expect("course id").to_string(), title));
            }
            Some((503, _)) | None => {}
            Some((status, body)) => panic!("{title}: unexpected {status} {body}"),
        }
    }
    let status = server.exited_within(Duration::from_secs(30)).await;
    assert!(status.success(), "server exited with {status}:\n{}", server.log_text());
    assert!(!acknowledged.is_empty(), "no course was acknowledged before the shutdown");

    let store = Db::connect(&database.url, backend_of(&database.url), 2).expect("open the database");
    let ids: Vec<String> = acknowledged.iter().map(|(id, _)| id.clone()).collect();
    let rows = store
        .read(move |conn| Ok(ids.iter().map(|id| db::courses::find(conn, id)).collect::<Result<Vec<_>, _>>()?))
        .await
        .expect("read courses");
    let missing: Vec<_> = acknowledged
        .iter()
        .zip(&rows)
        .filter(|((_, title), row)| row.as_ref().map(|r| &r.title) != Some(title))
        .map(|((id, title), _)| format!("{title} ({id})"))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged courses are not stored: {missing:?}",
        missing.len(),
        acknowledged.len()
    );
}

async fn get(client: &awc::Client, url: &str, token: &str) -> (u16, Value) {
    let mut response =
        client.get(url).insert_header(("Authorization", format!("Bearer {token}"))).send().await.expect("answered");
    let bytes = response.body().await.expect("body");
    (response.status().as_u16(), serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[actix_web::test]
async fn after_kill_9_nobody_stays_in_a_session_forever() {
    let database = fresh_database();
    let mut server = ServerProcess::start(&database.url);
    let port = server.port().await;
    let base = format!("http://127.0.0.1:{port}");
    let client = awc::Client::builder().timeout(Duration::from_secs(30)).finish();
    let register = |name: &'static str, role: &'static str| {
        let (client, url) = (client.clone(), format!("{base}/api/auth/register"));
        let email = format!("{name}-{}@example.com", uuid::Uuid::new_v4().simple());
        async move {
            let body = json!({ "email": email, "password": "correct horse", "name": name, "role": role });
            let (status, body) = post(&client, &url, None, body).await.expect("register answered");
            assert_eq!(status, 201, "{body}");
            body["token"].as_str().expect("token").to_string()
        }
    };
    let grace = register("grace", "instructor").await;
    let ada = register("ada", "student").await;
    let (_, course) =
        post(&client, &format!("{base}/api/courses"), Some(&grace), json!({ "title": "Rust" })).await.unwrap();
    let course = course["id"].as_str().expect("course").to_string();
    post(&client, &format!("{base}/api/courses/{course}/enroll"), Some(&ada), json!({})).await.unwrap();
    let start = chrono::Utc::now();
    let session = json!({ "courseId": course, "title": "Crash course", "scheduledStartTime": start,
        "scheduledEndTime": start + chrono::Duration::hours(1) });
    let (status, session) = post(&client, &format!("{base}/api/live-sessions"), Some(&grace), session).await.unwrap();
    assert_eq!(status, 201, "{session}");
    let session = session["id"].as_str().expect("session").to_string();
    let (status, _) =
        post(&client, &format!("{base}/api/live-sessions/{session}/start"), Some(&grace), json!({})).await.unwrap();
    assert_eq!(status, 200);
    let mut socket = WsClient::connect(&format!("ws://127.0.0.1:{port}/ws?token={ada}")).await;
    let joined = socket.request("join-live-session", json!({ "sessionId": session })).await;
    assert_eq!(joined["ok"], true, "{joined}");

    server.kill();
    let mut server = ServerProcess::start(&database.url);
    let port = server.port().await;
    let base = format!("http://127.0.0.1:{port}");
    let (status, attendees) = get(&client, &format!("{base}/api/live-sessions/{session}/attendees"), &grace).await;
    assert_eq!(status, 200, "{attendees}");
    assert_eq!(attendees.as_array().map(Vec::len), Some(1), "the join was stored before its ack: {attendees}");
    assert!(attendees[0]["leftAt"].is_string(), "Ada is not counted as present after the restart: {attendees}");
    let (status, ended) =
        post(&client, &format!("{base}/api/live-sessions/{session}/end"), Some(&grace), json!({})).await.unwrap();
    assert_eq!((status, &ended["attendeeCount"]), (200, &json!(0)), "{ended}");
    server.terminate();
    assert!(server.exited_within(Duration::from_secs(30)).await.success());
}
