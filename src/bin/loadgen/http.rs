//! Just enough HTTP/1.1 for set-up and probes: one request per connection
//! (`Connection: close`), JSON in and out.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A server to talk to: where it listens and the Host header it expects.
#[derive(Clone, Debug)]
pub struct Target {
    /// Where to connect (always a loopback address).
    pub addr: SocketAddr,
    /// `host:port` as written in `--url`, for the Host header.
    pub host: String,
}

impl Target {
    /// Parses `http://host:port` (loopback only: this tool never loads another machine).
    pub fn parse(url: &str) -> Result<Target, String> {
        let rest = url.strip_prefix("http://").ok_or_else(|| format!("--url must start with http:// (got {url})"))?;
        let host = rest.trim_end_matches('/').to_string();
        let with_port = if host.contains(':') { host.clone() } else { format!("{host}:80") };
        let with_port = with_port.replace("localhost", "127.0.0.1");
        let addr: SocketAddr = with_port.parse().map_err(|err| format!("--url {url}: not an ip:port ({err})"))?;
        if !addr.ip().is_loopback() {
            return Err(format!("--url {url}: the load generator only targets loopback addresses (127.0.0.0/8, ::1)"));
        }
        Ok(Target { addr, host })
    }

    /// One request; returns the status and the body parsed as JSON (Null if empty or not JSON).
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Result<(u16, Value), String> {
        let call = async {
            let mut stream =
                TcpStream::connect(self.addr).await.map_err(|err| format!("connect {}: {err}", self.addr))?;
            let body = body.map(|b| b.to_string()).unwrap_or_default();
            let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
            let head = format!(
                "{method} {path} HTTP/1.1\r\nHost: {}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                self.host,
                body.len()
            );
            stream.write_all(head.as_bytes()).await.map_err(|err| err.to_string())?;
            stream.write_all(body.as_bytes()).await.map_err(|err| err.to_string())?;
            let mut answer = Vec::new();
            stream.read_to_end(&mut answer).await.map_err(|err| err.to_string())?;
            parse_response(&answer)
        };
        tokio::time::timeout(Duration::from_secs(60), call)
            .await
            .map_err(|_| format!("{method} {path}: no answer within 60 s"))?
    }

    /// As `request`, failing unless the status is `want`.
    pub async fn expect(
        &self,
        want: u16,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Result<Value, String> {
        let (status, value) = self.request(method, path, token, body).await?;
        if status != want {
            return Err(format!("{method} {path}: expected {want}, got {status}: {value}"));
        }
        Ok(value)
    }

    /// The body of `GET path` as text (for `/metrics`).
    pub async fn get_text(&self, path: &str) -> Result<String, String> {
        let mut stream = TcpStream::connect(self.addr).await.map_err(|err| format!("connect {}: {err}", self.addr))?;
        let head = format!("GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", self.host);
        stream.write_all(head.as_bytes()).await.map_err(|err| err.to_string())?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.map_err(|err| err.to_string())?;
        let (_, body) = split_response(&answer)?;
        Ok(String::from_utf8_lossy(&body).into_owned())
    }
}

fn split_response(answer: &[u8]) -> Result<(u16, Vec<u8>), String> {
    let end = crate::ws::find(answer, b"\r\n\r\n").ok_or("truncated HTTP answer")?;
    let head = String::from_utf8_lossy(&answer[..end]);
    let status: u16 = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or("bad HTTP status line")?;
    let raw = &answer[end + 4..];
    let chunked = head.to_ascii_lowercase().contains("transfer-encoding: chunked");
    let body = if chunked { dechunk(raw) } else { raw.to_vec() };
    Ok((status, body))
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    while let Some(line_end) = crate::ws::find(raw, b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&raw[..line_end]).trim(), 16).unwrap_or(0);
        if size == 0 || raw.len() < line_end + 2 + size {
            break;
        }
        body.extend_from_slice(&raw[line_end + 2..line_end + 2 + size]);
        raw = &raw[(line_end + 4 + size).min(raw.len())..];
    }
    body
}

fn parse_response(answer: &[u8]) -> Result<(u16, Value), String> {
    let (status, body) = split_response(answer)?;
    Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
}

/// What the harness needs to know about its people and sessions: the
/// tokens file of `classroom seed-load`, or the same built through REST.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tokens {
    /// Live session ids.
    pub sessions: Vec<String>,
    /// Students with their tokens.
    pub users: Vec<SeededUser>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SeededUser {
    /// Login token.
    pub token: String,
    /// The session (index into `Tokens::sessions`) whose course this user is
    /// enrolled in; None when every user is in every session's course.
    #[serde(default)]
    pub session: Option<usize>,
}

/// Builds users, a course and sessions through the public API (slow: one
/// Argon2 hash per user on the server; meant for a few hundred users).
pub async fn setup_via_rest(target: &Target, users: usize, sessions: usize) -> Result<Tokens, String> {
    let run = format!(
        "{:08x}",
        std::process::id()
            ^ (std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u32)
                .unwrap_or(0))
    );
    let register = |name: String, role: &'static str| {
        let target = target.clone();
        let run = run.clone();
        async move {
            let body = json!({ "email": format!("{name}-{run}@example.test"), "password": "load-test-password", "name": name, "role": role });
            let value = target.expect(201, "POST", "/api/auth/register", None, Some(&body)).await?;
            let token = value["token"].as_str().ok_or("register: no token")?.to_string();
            Ok::<_, String>(SeededUser { token, session: None })
        }
    };
    let instructor = register("instructor".into(), "instructor").await?;
    let course = target
        .expect(201, "POST", "/api/courses", Some(&instructor.token), Some(&json!({ "title": format!("Load {run}") })))
        .await?;
    let course_id = course["id"].as_str().ok_or("course: no id")?.to_string();
    // Now (a start in the past is refused; each is "now" when sent): the
    // join window is open and no reminder is due.
    let end = rfc3339_from_now(12 * 3600);
    let mut session_ids = Vec::new();
    for index in 0..sessions {
        let start = rfc3339_from_now(0);
        let body = json!({ "courseId": course_id, "title": format!("Load session {index}"), "scheduledStartTime": start, "scheduledEndTime": end });
        let session = target.expect(201, "POST", "/api/live-sessions", Some(&instructor.token), Some(&body)).await?;
        session_ids.push(session["id"].as_str().ok_or("session: no id")?.to_string());
    }
    // A few at a time: the server hashes each password (slow by design).
    let mut created = Vec::with_capacity(users);
    let mut index = 0;
    while index < users {
        let batch: Vec<_> =
            (index..(index + 8).min(users)).map(|i| register(format!("student{i}"), "student")).collect();
        for user in futures_join(batch).await {
            let user = user?;
            let path = format!("/api/courses/{course_id}/enroll");
            let (status, value) = target.request("POST", &path, Some(&user.token), Some(&json!({}))).await?;
            if status != 200 && status != 201 {
                return Err(format!("enroll: {status} {value}"));
            }
            created.push(user);
        }
        index += 8;
    }
    Ok(Tokens { sessions: session_ids, users: created })
}

/// Runs the futures as tasks, concurrently; a task that panicked is left out.
async fn futures_join<F>(futures: Vec<F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for handle in handles {
        if let Ok(value) = handle.await {
            out.push(value);
        }
    }
    out
}

/// RFC 3339 UTC time `offset_secs` from now.
fn rfc3339_from_now(offset_secs: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::seconds(offset_secs)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
