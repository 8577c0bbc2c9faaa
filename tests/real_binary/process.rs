//! The real server binary as a child process, for the tests that must kill
//! it, stop it or measure it from outside (shutdown, faults).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::WsClient;

/// The server binary running as a child process, its stderr collected line
/// by line. Killed on drop if the test ends early.
pub struct ServerProcess {
    child: Child,
    logs: Arc<Mutex<Vec<String>>>,
}

impl ServerProcess {
    pub fn start(database_url: &str) -> Self {
        Self::start_with(database_url, &[])
    }

    /// With more environment (the server's configuration is read from it).
    pub fn start_with(database_url: &str, env: &[(&str, &str)]) -> Self {
        // CLASSROOM_BIN runs these tests against another build (a release
        // one, for figures that mean something).
        let binary = std::env::var("CLASSROOM_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_classroom").to_string());
        // One node unless a test says otherwise: these are one node's faults
        // (a node killed and started again under a new id waits out the old
        // one's leases in a cluster, which is not what they measure).
        let mut child = Command::new(binary)
            .env_remove("REDIS_URL")
            .envs(env.iter().copied())
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

    /// Resident memory of the process now, in KiB (`VmRSS`).
    pub fn rss_kib(&self) -> u64 {
        self.status_kib("VmRSS:")
    }

    /// The most resident memory the process ever had, in KiB (`VmHWM`).
    pub fn peak_rss_kib(&self) -> u64 {
        self.status_kib("VmHWM:")
    }

    /// A figure of `/proc/PID/status` given in kB.
    fn status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("read /proc status");
        status
            .lines()
            .find_map(|line| line.strip_prefix(field))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("{field} in /proc status"))
    }

    pub fn log_text(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }

    /// The port from the "listening on http://127.0.0.1:<port>" log line.
    pub async fn port(&mut self) -> u16 {
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
    pub fn kill(&mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("reap");
    }

    pub fn terminate(&self) {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().expect("run kill");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Waits for the process to exit, at most `limit`.
    pub async fn exited_within(&mut self, limit: Duration) -> ExitStatus {
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
        if std::thread::panicking() {
            // The whole log in a file, the warnings and errors on the test's output.
            let logs = self.logs.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let path = std::env::temp_dir().join(format!("classroom-server-{}.log", self.child.id()));
            let _ = std::fs::write(&path, logs.join("\n"));
            let serious: Vec<&str> = logs
                .iter()
                .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
                .take(20)
                .map(String::as_str)
                .collect();
            eprintln!("the server's log: {}; its first warnings and errors:\n{}", path.display(), serious.join("\n"));
        }
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `REDIS_URL` (a `redis://host:port` one) with the Redis database `db`
/// (1 to 15): one test's nodes a cluster of their own. The tests of this
/// binary run side by side, each cluster on a database of its own; on one
/// node list, a test's node would take the other test's leases, and handle
/// its deaths, with none of its people in its database. (Publish and
/// subscribe ignore the database: their channels are named by random ids.)
pub fn redis_of_own(url: &str, db: u8) -> String {
    let authority_start = url.find("://").map_or(0, |at| at + 3);
    let authority_end = url[authority_start..].find(['/', '?']).map_or(url.len(), |at| at + authority_start);
    format!("{}/{db}", &url[..authority_end])
}

/// POSTs JSON; `None` if no answer came (refused, reset, timed out).
pub async fn post(client: &awc::Client, url: &str, token: Option<&str>, body: Value) -> Option<(u16, Value)> {
    let mut request = client.post(url);
    if let Some(token) = token {
        request = request.insert_header(("Authorization", format!("Bearer {token}")));
    }
    let mut response = request.send_json(&body).await.ok()?;
    let bytes = response.body().await.ok()?;
    Some((response.status().as_u16(), serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
}

pub async fn get(client: &awc::Client, url: &str, token: &str) -> (u16, Value) {
    let mut response =
        client.get(url).insert_header(("Authorization", format!("Bearer {token}"))).send().await.expect("answered");
    let bytes = response.body().await.expect("body");
    (response.status().as_u16(), serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// A server process seen from a client: REST calls on its port, sockets.
pub struct Remote {
    pub port: u16,
    pub client: awc::Client,
}

impl Remote {
    pub fn new(port: u16) -> Self {
        Remote { port, client: awc::Client::builder().timeout(Duration::from_secs(30)).finish() }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// POSTs and expects an answer.
    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        post(&self.client, &self.url(path), token, body).await.unwrap_or_else(|| panic!("no answer to POST {path}"))
    }

    pub async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        get(&self.client, &self.url(path), token).await
    }

    /// Registers someone new; their token.
    pub async fn register(&self, name: &str, role: &str) -> String {
        let email = format!("{name}-{}@example.com", uuid::Uuid::new_v4().simple());
        let body = json!({ "email": email, "password": "correct horse", "name": name, "role": role });
        let (status, body) = self.post("/api/auth/register", None, body).await;
        assert_eq!(status, 201, "{body}");
        body["token"].as_str().expect("token").to_string()
    }

    /// A course of `instructor` with `students` enrolled; the course's id.
    pub async fn course_with(&self, instructor: &str, students: &[String]) -> String {
        let (status, course) = self.post("/api/courses", Some(instructor), json!({ "title": "Rust" })).await;
        assert_eq!(status, 201, "{course}");
        let course = course["id"].as_str().expect("course").to_string();
        for student in students {
            let (status, body) = self.post(&format!("/api/courses/{course}/enroll"), Some(student), json!({})).await;
            assert!(status < 300, "enroll: {status} {body}");
        }
        course
    }

    /// A course of `instructor` with `students` enrolled and a live session
    /// in it, started; the session's id.
    pub async fn started_session(&self, instructor: &str, students: &[String]) -> String {
        self.started_session_for(instructor, students, None).await
    }

    /// As [`Self::started_session`], the session with room for at most
    /// `max_attendees` people (`maxAttendees`) when given.
    pub async fn started_session_for(
        &self,
        instructor: &str,
        students: &[String],
        max_attendees: Option<u32>,
    ) -> String {
        let course = self.course_with(instructor, students).await;
        let start = chrono::Utc::now();
        let session = json!({ "courseId": course, "title": "Crash course", "scheduledStartTime": start,
            "scheduledEndTime": start + chrono::Duration::hours(1), "maxAttendees": max_attendees });
        let (status, session) = self.post("/api/live-sessions", Some(instructor), session).await;
        assert_eq!(status, 201, "{session}");
        let session = session["id"].as_str().expect("session").to_string();
        let (status, body) =
            self.post(&format!("/api/live-sessions/{session}/start"), Some(instructor), json!({})).await;
        assert_eq!(status, 200, "{body}");
        session
    }

    /// A socket, once the server has said `connected`.
    pub async fn socket(&self, token: &str) -> WsClient {
        let url = format!("ws://127.0.0.1:{}/ws?token={token}", self.port);
        let mut socket = WsClient::connect_within(&url, Duration::from_secs(30)).await;
        let hello = socket.next_json().await;
        assert_eq!(hello["event"], "connected", "{hello}");
        socket
    }
}
