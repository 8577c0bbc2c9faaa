//! Presence fan-out: how long a status change takes to reach every watcher.
//!
//! A measurement, not a timed test. It starts the server in-process on a
//! fresh SQLite file (loopback only), makes 1,000 students of one course
//! (rows written straight through the persistence actor with one precomputed
//! Argon2 hash, so no per-user hashing), opens one WebSocket each, lets the
//! "came online" pushes of the set-up settle, then has one student change
//! status N times and reports, for each change, the time from sending
//! `update-presence` until the last of the 999 watchers received its
//! `presence-updated`: p50, p99 and max.
//!
//! `cargo bench --bench presence_fanout` runs the full size; under
//! `cargo test --all-targets` (no `--bench` argument) it runs a small smoke
//! version so the code keeps working. Changes are spaced by the actor's
//! publish throttle (`MIN_PUBLISH_GAP`), so each one measures the immediate
//! path, not the coalescing. All clients read on one thread of this process,
//! so the figure includes their decoding too.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use awc::ws::{Frame, Message};
use chrono::Utc;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use uuid::Uuid;

use classroom::auth::{hash_password, new_token};
use classroom::clock::SystemClock;
use classroom::config::Config;
use classroom::db::models::{AuthTokenRow, CourseRow, EnrollmentRow, UserRow};
use classroom::db::{self, to_db_time};
use classroom::engine::presence::MIN_PUBLISH_GAP;
use classroom::startup::Application;

/// The whole run must stay well under two minutes.
const BUDGET: Duration = Duration::from_secs(100);
/// Most time one change may take to reach everyone before it counts as lost.
const ROUND_TIMEOUT: Duration = Duration::from_secs(10);

struct Student {
    id: String,
    token: String,
}

/// One receipt of the changer's `presence-updated`: which status, and when.
struct Receipt {
    busy: bool,
    at: Instant,
}

fn main() {
    let full = std::env::args().any(|arg| arg == "--bench");
    let (users, rounds) = if full { (1_000, 100) } else { (20, 3) };
    if let Err(err) = actix_web::rt::System::new().block_on(run(users, rounds)) {
        eprintln!("presence_fanout failed: {err}");
        std::process::exit(1);
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

async fn run(users: usize, rounds: usize) -> Result<(), String> {
    let started = Instant::now();
    let dir = tempfile::tempdir().map_err(|err| err.to_string())?;
    let mut config = Config::from_env();
    // SQLite in a temporary folder, whatever DATABASE_URL says.
    config.database_url = dir.path().join("bench.db").to_string_lossy().into_owned();
    config.bind_addr = "127.0.0.1:0".into();
    let app = Application::build(config, Arc::new(SystemClock)).await?;
    let (port, state) = (app.port(), app.state());
    actix_web::rt::spawn(app.run_until_stopped());

    // ---- people: one instructor, `users` students of one course ----------
    let hash = hash_password("bench password").map_err(|err| err.to_string())?;
    let now = to_db_time(Utc::now());
    let expires = to_db_time(Utc::now() + chrono::Duration::days(1));
    let instructor = UserRow {
        id: Uuid::new_v4().to_string(),
        email: format!("teacher-{}@bench.example", Uuid::new_v4().simple()),
        name: "Teacher".into(),
        role: "instructor".into(),
        password_hash: hash.clone(),
        created_at: now,
    };
    let course = CourseRow {
        id: Uuid::new_v4().to_string(),
        instructor_id: instructor.id.clone(),
        title: "Fan-out 101".into(),
        description: None,
        created_at: now,
        join_code: None,
    };
    let setup = (instructor, course.clone());
    state
        .persistence
        .write(move |conn| {
            db::users::insert(conn, &setup.0)?;
            db::courses::insert(conn, &setup.1)
        })
        .await
        .map_err(|err| format!("{err:?}"))?;
    let mut students = Vec::with_capacity(users);
    let mut rows = Vec::with_capacity(users);
    for n in 0..users {
        let id = Uuid::new_v4().to_string();
        let (token, digest) = new_token();
        rows.push((
            UserRow {
                id: id.clone(),
                email: format!("student-{n}-{}@bench.example", Uuid::new_v4().simple()),
                name: format!("Student {n:04}"),
                role: "student".into(),
                password_hash: hash.clone(),
                created_at: now,
            },
            EnrollmentRow { course_id: course.id.clone(), user_id: id.clone(), enrolled_at: now },
            AuthTokenRow {
                token_hash: digest,
                user_id: id.clone(),
                created_at: now,
                expires_at: expires,
                revoked_at: None,
            },
        ));
        students.push(Student { id, token });
    }
    for chunk in rows.chunks(250) {
        let chunk = chunk.to_vec();
        state
            .persistence
            .write(move |conn| {
                for (user, enrollment, token) in &chunk {
                    db::users::insert(conn, user)?;
                    db::courses::enroll(conn, enrollment)?;
                    db::tokens::insert(conn, token)?;
                }
                Ok(())
            })
            .await
            .map_err(|err| format!("{err:?}"))?;
    }
    let made = started.elapsed();

    // ---- sockets: the changer (first student) and the watchers ----------
    let connect = |token: &str| {
        let url = format!("ws://127.0.0.1:{port}/ws?token={token}");
        async move {
            awc::Client::builder()
                .timeout(Duration::from_secs(30))
                .finish()
                .ws(url)
                .connect()
                .await
                .map(|(_, framed)| framed)
                .map_err(|err| format!("websocket: {err}"))
        }
    };
    let changer_id = students[0].id.clone();
    let mut changer = connect(&students[0].token).await?;
    let (receipts_tx, mut receipts) = tokio::sync::mpsc::unbounded_channel::<Receipt>();
    let frames_seen = Rc::new(Cell::new(0u64));
    let closed = Rc::new(Cell::new(0usize));
    for batch in students[1..].chunks(50) {
        let sockets = futures_util::future::join_all(batch.iter().map(|s| connect(&s.token))).await;
        for socket in sockets {
            let mut socket = socket?;
            let (tx, seen, closed, marker) =
                (receipts_tx.clone(), Rc::clone(&frames_seen), Rc::clone(&closed), changer_id.clone());
            actix_web::rt::spawn(async move {
                while let Some(frame) = socket.next().await {
                    match frame {
                        Ok(Frame::Text(bytes)) => {
                            seen.set(seen.get() + 1);
                            let text = String::from_utf8_lossy(&bytes);
                            if text.contains("presence-updated") && text.contains(marker.as_str()) {
                                let busy = text.contains("\"status\":\"busy\"");
                                let _ = tx.send(Receipt { busy, at: Instant::now() });
                            }
                        }
                        Ok(Frame::Ping(payload)) => {
                            let _ = socket.send(Message::Pong(payload)).await;
                        }
                        Ok(Frame::Close(_)) | Err(_) => break,
                        Ok(_) => {}
                    }
                }
                closed.set(closed.get() + 1);
            });
        }
    }
    let connected = started.elapsed();

    // ---- let the set-up's own pushes (each arrival told to those before) settle
    let mut last = frames_seen.get();
    loop {
        actix_web::rt::time::sleep(Duration::from_millis(500)).await;
        let now_seen = frames_seen.get();
        if now_seen == last || started.elapsed() > BUDGET / 2 {
            break;
        }
        last = now_seen;
    }
    while receipts.try_recv().is_ok() {}
    let settled = started.elapsed();

    // ---- the measurement ------------------------------------------------
    let watchers = users - 1;
    let mut latencies = Vec::with_capacity(rounds);
    let mut incomplete = 0;
    for round in 0..rounds {
        if started.elapsed() > BUDGET {
            break;
        }
        let busy = round % 2 == 0;
        let status = if busy { "busy" } else { "dnd" };
        let frame = json!({ "event": "update-presence", "data": { "status": status }, "ack": round + 1 }).to_string();
        let sent_at = Instant::now();
        changer.send(Message::Text(frame.into())).await.map_err(|err| format!("send: {err}"))?;
        let mut got = 0;
        let mut latest = sent_at;
        let deadline = tokio::time::Instant::now() + ROUND_TIMEOUT;
        while got < watchers {
            match tokio::time::timeout_at(deadline, receipts.recv()).await {
                Ok(Some(receipt)) if receipt.busy == busy => {
                    got += 1;
                    latest = latest.max(receipt.at);
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
        if got < watchers {
            incomplete += 1;
            eprintln!("round {round}: only {got} of {watchers} watchers heard of it");
        } else {
            latencies.push(latest - sent_at);
        }
        // Drain the changer's ack (and anything else) without blocking long.
        while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(1), changer.next()).await {}
        // Past the publish throttle, so the next change goes out at once.
        actix_web::rt::time::sleep(MIN_PUBLISH_GAP + Duration::from_millis(20)).await;
    }

    latencies.sort();
    println!("presence fan-out, {users} users online in one course, {} watchers per change", watchers);
    println!(
        "set-up: rows {:.1}s, sockets {:.1}s, settle {:.1}s ({} frames during set-up); {} CPU(s)",
        made.as_secs_f64(),
        (connected - made).as_secs_f64(),
        (settled - connected).as_secs_f64(),
        frames_seen.get(),
        num_cpus::get(),
    );
    if latencies.is_empty() {
        return Err(format!("no change reached every watcher ({incomplete} incomplete)"));
    }
    println!(
        "change -> last watcher, over {} changes: p50 {}  p99 {}  max {}  (min {}; {} incomplete; sockets closed {})",
        latencies.len(),
        ms(percentile(&latencies, 50.0)),
        ms(percentile(&latencies, 99.0)),
        ms(percentile(&latencies, 100.0)),
        ms(latencies[0]),
        incomplete,
        closed.get(),
    );
    println!("total {:.1}s", started.elapsed().as_secs_f64());
    Ok(())
}
