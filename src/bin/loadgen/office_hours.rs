//! `office-hours`: instructors' queues under a join storm and admission churn.
//!
//! Set-up through REST, with the students of `seed-load` (`--tokens`) or
//! `--rest-setup`: `--instructors` (20) instructors register
//! (`POST /api/auth/register`, role `instructor`), each creates a course
//! (`POST /api/courses`), a block of `--queue-size` (50) students enrolls in
//! it (`POST /api/courses/:id/enroll`), and the instructor opens the queue by
//! hand (`POST /api/office-hours/open`). Every student and instructor then
//! opens one socket and waits for the server's `connected` frame (from then
//! on its user topic is subscribed); the presence storm of the connections
//! is let pass before anything is measured.
//!
//! **Join storm**: every student of every queue sends
//! `join-office-hours-queue {instructorId}` at once (one release). Each
//! queue must hand out the positions 1..M once each, in the server's order
//! of arrival (`joinedQueueAt`), and `GET /api/office-hours/queue` must list
//! the entries in that order; otherwise the run fails (after its report).
//! Reported: the time from the release to the last ack (all queues, and per
//! queue), join-ack latency, and how far the order the harness read the
//! acks in strays from the positions (informative: the acks of one batch
//! reach different sockets through different server threads).
//!
//! **Admission churn**: each instructor admits the student at position 1
//! (`admit-student {queueId}`), completes them (`complete-office-hours`)
//! once the admission is acked (after `--help-ms`), and goes on at
//! `--admit-rate` admissions a second, `--admissions` times (default: the
//! rate times `--duration`, at most M - 1). The k-th admission of a queue
//! moves every student behind it up one place, so a student who joined at
//! position p and hears position p' < p was moved by admission p - p': the
//! `queue-position` latency is the push's arrival minus that admission's
//! send time (one monotonic clock, as the chat scenarios measure delivery;
//! it includes the admission's commit, which precedes the push). The
//! instructor's ack is recorded too: a push may well arrive before it (the
//! server publishes the pushes, then answers). Pushes whose standing did
//! not change (duplicates), positions skipped, and positions moving back
//! are counted; the contract says each change is told once, in order.
//! `queue-updated` frames at the instructor: count, byte size, the closest
//! two came (the contract: at most one per 250 ms).
//!
//! At the end each waiting student's last pushed position is compared with
//! `GET /api/office-hours/queue`, every admission acked must have reached
//! its student (`admitted-to-office-hours`) and every completion too
//! (`office-hours-completed`); then the queues are closed (which cancels the
//! entries still waiting).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use hdrhistogram::Histogram;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::{watch, Semaphore};

use crate::http::{Target, Tokens};
use crate::stats::{self, now_micros, percentiles_ms};
use crate::ws::{self, Frame, ReadOutcome, WsConn};
use crate::{check_fd_limit, load_tokens, print_report, progress, round, server, ws_path, Args};

/// How long the last `queue-updated` after a change may take: the 250 ms gap,
/// or a long list's pacing (docs/protocol.md: 256 KiB a second).
const QUEUE_UPDATED_SETTLE: Duration = Duration::from_millis(2500);

/// What the coordinator tells every socket.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Setup,
    Storm,
    /// The admissions start at this instant (each instructor offset from it).
    Churn(tokio::time::Instant),
    /// The coordinator closes the queues (the sockets only read).
    Closing,
    Stop,
}

/// One instructor's queue as set up.
struct Queue {
    instructor_id: String,
    instructor_token: String,
    /// Send time (µs, `now_micros`) of admission k at index k - 1 (0: not sent).
    admit_sent: Vec<AtomicU64>,
    /// When the instructor read admission k's ack.
    admit_acked: Vec<AtomicU64>,
    complete_sent: Vec<AtomicU64>,
    /// Join acks, as they were read.
    joins: Mutex<Vec<JoinRecord>>,
    /// Entry ids in queue order, set before the churn (from the verified storm).
    order: Mutex<Vec<String>>,
}

#[derive(Debug, Clone)]
struct JoinRecord {
    student: usize,
    entry_id: String,
    position: usize,
    joined_at: Option<DateTime<Utc>>,
    acked_at: u64,
}

/// Latencies, microseconds.
struct Hists {
    connect: Histogram<u64>,
    join_ack: Histogram<u64>,
    /// Admission sent -> `queue-position` at a student moved up.
    position: Histogram<u64>,
    /// Admission acked at the instructor -> the same push, when the push came after the ack.
    position_after_ack: Histogram<u64>,
    /// Completion sent -> `queue-position` carrying only a new estimate.
    estimate: Histogram<u64>,
    /// Admission sent -> `admitted-to-office-hours` at the admitted student.
    admitted: Histogram<u64>,
    admit_ack: Histogram<u64>,
    complete_ack: Histogram<u64>,
}

/// What every task shares.
struct OhRun {
    target: Target,
    queues: Vec<Queue>,
    size: usize,
    admissions: usize,
    admit_rate: f64,
    help: Duration,
    gate: Semaphore,
    connected: AtomicUsize,
    failed: AtomicUsize,
    /// Text frames read by any socket (for the settle waits).
    frames: AtomicU64,
    join_acks: AtomicUsize,
    join_errors: AtomicUsize,
    /// `queue-position` pushes with a new position, in the churn.
    position_pushes: AtomicU64,
    /// Sum over acked admissions of the students still waiting behind them.
    expected_pushes: AtomicU64,
    instructors_done: AtomicUsize,
    /// Each student's last pushed (or acked) position, 0 before any.
    last_position: Vec<AtomicUsize>,
    hists: Mutex<Hists>,
    errors: Mutex<Vec<String>>,
    /// `--presence-diff`.
    presence_diff: bool,
}

impl OhRun {
    fn error(&self, message: String) {
        let mut errors = stats::lock(&self.errors);
        if errors.len() < 10 {
            errors.push(message);
        }
    }

    fn record(&self, pick: impl FnOnce(&mut Hists) -> &mut Histogram<u64>, micros: u64) {
        let _ = pick(&mut stats::lock(&self.hists)).record(micros.max(1));
    }
}

#[derive(Deserialize)]
struct AckFrame {
    ack: u64,
    ok: bool,
    #[serde(default)]
    data: Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireEntry {
    id: String,
    #[serde(default)]
    position: Option<usize>,
    #[serde(default)]
    joined_queue_at: Option<DateTime<Utc>>,
    #[serde(default)]
    status: String,
}

#[derive(Deserialize)]
struct PushFrame<T> {
    data: T,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PositionPush {
    queue_id: String,
    position: usize,
    #[serde(default)]
    estimated_wait_sec: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct QueuePush {
    queue_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct QueueUpdated {
    #[serde(default)]
    is_open: bool,
    entries: Vec<EntryStatus>,
}

#[derive(Deserialize)]
struct EntryStatus {
    status: String,
}

/// The event name of a server frame `{"event":"NAME",...}` ("" for acks and others).
fn event_name(payload: &[u8]) -> &str {
    const EVENT: &[u8] = br#"{"event":""#;
    let Some(rest) = payload.strip_prefix(EVENT) else { return "" };
    let end = rest.iter().take(64).position(|&b| b == b'"').unwrap_or(0);
    std::str::from_utf8(&rest[..end]).unwrap_or("")
}

fn ms_json(h: &Histogram<u64>) -> Value {
    let [p50, p90, p99, max] = percentiles_ms(h);
    json!({ "count": h.len(), "p50": round(p50, 3), "p90": round(p90, 3), "p99": round(p99, 3), "max": round(max, 3) })
}

fn run_tag() -> String {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
    format!("{:08x}", (nanos ^ u64::from(std::process::id()) << 20) as u32)
}

pub async fn run(args: &Args, target: &Target) -> Result<(), String> {
    let (instructors, size) = (args.instructors, args.queue_size);
    if instructors == 0 || size < 2 {
        return Err("office-hours needs --instructors >= 1 and --queue-size >= 2".into());
    }
    if !(args.admit_rate > 0.0) {
        return Err("--admit-rate must be above 0".into());
    }
    let admissions =
        args.admissions.unwrap_or_else(|| (args.admit_rate * args.duration as f64).ceil() as usize).clamp(1, size - 1);
    let students = instructors * size;
    check_fd_limit(students + instructors + args.setup_concurrency)?;
    let tokens = load_tokens(args, target, students, 0).await?;
    let before_setup = server::snapshot(target, args.server_pid).await;
    let (queues, rest_report) = set_up(args, target, &tokens, instructors, size, admissions).await?;
    let run = Arc::new(OhRun {
        target: target.clone(),
        queues,
        size,
        admissions,
        admit_rate: args.admit_rate,
        help: Duration::from_millis(args.help_ms),
        gate: Semaphore::new(args.connect_concurrency.max(1)),
        connected: AtomicUsize::new(0),
        failed: AtomicUsize::new(0),
        frames: AtomicU64::new(0),
        join_acks: AtomicUsize::new(0),
        join_errors: AtomicUsize::new(0),
        position_pushes: AtomicU64::new(0),
        expected_pushes: AtomicU64::new(0),
        instructors_done: AtomicUsize::new(0),
        last_position: (0..students).map(|_| AtomicUsize::new(0)).collect(),
        presence_diff: args.presence_diff,
        hists: Mutex::new(Hists {
            connect: stats::histogram(),
            join_ack: stats::histogram(),
            position: stats::histogram(),
            position_after_ack: stats::histogram(),
            estimate: stats::histogram(),
            admitted: stats::histogram(),
            admit_ack: stats::histogram(),
            complete_ack: stats::histogram(),
        }),
        errors: Mutex::new(Vec::new()),
    });

    // ---- sockets ----
    let (control, watcher) = watch::channel(Phase::Setup);
    let connect_started = Instant::now();
    let mut student_tasks = Vec::with_capacity(students);
    for index in 0..students {
        let token = tokens.users[index].token.clone();
        let task = student(Arc::clone(&run), index, index / size, token, watcher.clone());
        student_tasks.push(tokio::spawn(task));
    }
    let mut instructor_tasks = Vec::with_capacity(instructors);
    for queue in 0..instructors {
        instructor_tasks.push(tokio::spawn(instructor(Arc::clone(&run), queue, watcher.clone())));
    }
    let total = students + instructors;
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let (connected, failed) = (run.connected.load(Ordering::Relaxed), run.failed.load(Ordering::Relaxed));
        if !args.quiet {
            progress(&format!("sockets: {connected} connected, {failed} failed of {total}"));
        }
        if connected + failed >= total || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let connect_secs = connect_started.elapsed().as_secs_f64();
    let failed = run.failed.load(Ordering::Relaxed);
    if failed > 0 {
        let _ = control.send(Phase::Stop);
        return Err(format!(
            "{failed} of {total} sockets failed to connect; first errors: {:#?}",
            stats::lock(&run.errors).clone()
        ));
    }
    // The presence storm of the connections (course mates hear each other come online).
    let settle_frames = settle(&run, Duration::from_secs(180), args.quiet, "presence storm").await;
    let settle_secs = connect_started.elapsed().as_secs_f64() - connect_secs;
    let connected_snap = server::snapshot(target, args.server_pid).await;

    // ---- join storm ----
    let storm_before = server::snapshot(target, args.server_pid).await;
    let storm_machine = server::machine_ticks();
    let storm_harness = server::cpu_seconds(std::process::id());
    let frames_before_storm = run.frames.load(Ordering::Relaxed);
    let storm_start = now_micros();
    let _ = control.send(Phase::Storm);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (acked, refused) = (run.join_acks.load(Ordering::Relaxed), run.join_errors.load(Ordering::Relaxed));
        if acked + refused >= students || Instant::now() > deadline {
            break;
        }
        if !args.quiet {
            progress(&format!("join storm: {acked} acked, {refused} refused of {students}"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The last `queue-updated` comes up to 250 ms after the last change, or
    // later for a long list (at most 256 KiB a second: ~1.8 s for 1,000).
    tokio::time::sleep(QUEUE_UPDATED_SETTLE).await;
    let storm_after = server::snapshot(target, args.server_pid).await;
    let storm_harness = server::cpu_seconds(std::process::id()).zip(storm_harness).map(|(a, b)| a - b);
    let storm_machine = machine_busy(storm_machine, storm_before.cpu_secs.zip(storm_after.cpu_secs), storm_harness);
    let storm_frames = run.frames.load(Ordering::Relaxed) - frames_before_storm;
    let (mut storm_report, mut problems) = check_storm(&run, target, storm_start).await;
    if let Some(cpu) = storm_before.cpu_secs.zip(storm_after.cpu_secs).map(|(b, a)| a - b) {
        storm_report["serverCpuSeconds"] = round(cpu, 3);
        storm_report["serverCpuMicrosPerJoin"] = round(cpu * 1e6 / students as f64, 1);
    }
    storm_report["framesReadInStorm"] = json!(storm_frames);
    storm_report["machine"] = storm_machine;
    storm_report["serverRssBytesAfter"] = json!(storm_after.rss_bytes);
    if !problems.is_empty() {
        eprintln!("\nJOIN STORM CHECK FAILED:");
        for problem in &problems {
            eprintln!("  {problem}");
        }
    }

    // ---- admission churn ----
    let churn_before = server::snapshot(target, args.server_pid).await;
    let frames_before_churn = run.frames.load(Ordering::Relaxed);
    let harness_before = server::cpu_seconds(std::process::id());
    let churn_machine = server::machine_ticks();
    let churn_started = Instant::now();
    let churn_start = tokio::time::Instant::now() + Duration::from_millis(100);
    let _ = control.send(Phase::Churn(churn_start));
    let bound = Duration::from_secs_f64(admissions as f64 / args.admit_rate + 120.0);
    loop {
        let done = run.instructors_done.load(Ordering::Relaxed);
        if done >= instructors || churn_started.elapsed() > bound {
            break;
        }
        if !args.quiet {
            progress(&format!(
                "churn: {:.0} s, {done} of {instructors} instructors done, {} position pushes",
                churn_started.elapsed().as_secs_f64(),
                run.position_pushes.load(Ordering::Relaxed)
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let admitting_secs = churn_started.elapsed().as_secs_f64();
    let drain_until = Instant::now() + Duration::from_secs(args.drain);
    while run.position_pushes.load(Ordering::Relaxed) < run.expected_pushes.load(Ordering::Relaxed)
        && Instant::now() < drain_until
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The last `queue-updated`.
    tokio::time::sleep(QUEUE_UPDATED_SETTLE).await;
    let window_secs = churn_started.elapsed().as_secs_f64();
    let churn_after = server::snapshot(target, args.server_pid).await;
    let harness_cpu = server::cpu_seconds(std::process::id()).zip(harness_before).map(|(a, b)| a - b);
    let churn_machine = machine_busy(churn_machine, churn_before.cpu_secs.zip(churn_after.cpu_secs), harness_cpu);
    let churn_frames = run.frames.load(Ordering::Relaxed) - frames_before_churn;
    let (final_report, final_problems) = check_final(&run, target).await;
    problems.extend(final_problems);

    // ---- clean-up: close the queues (the students still waiting are told `closed`) ----
    let _ = control.send(Phase::Closing);
    let mut closed = 0;
    for queue in &run.queues {
        let answer = target
            .expect(200, "POST", "/api/office-hours/close", Some(&queue.instructor_token), Some(&json!({})))
            .await;
        match answer {
            Ok(_) => closed += 1,
            Err(err) => run.error(format!("close: {err}")),
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = control.send(Phase::Stop);
    let mut student_outs = Vec::with_capacity(students);
    for task in student_tasks {
        if let Ok(Ok(out)) = tokio::time::timeout(Duration::from_secs(10), task).await {
            student_outs.push(out);
        }
    }
    let mut instructor_outs = Vec::with_capacity(instructors);
    for task in instructor_tasks {
        if let Ok(Ok(out)) = tokio::time::timeout(Duration::from_secs(10), task).await {
            instructor_outs.push(out);
        }
    }
    let (churn_report, churn_problems) = churn_summary(&run, &student_outs, &instructor_outs);
    problems.extend(churn_problems);
    let mut churn_report = churn_report;
    let pushes = run.position_pushes.load(Ordering::Relaxed);
    let cpu = churn_before.cpu_secs.zip(churn_after.cpu_secs).map(|(b, a)| a - b);
    churn_report["admittingSeconds"] = round(admitting_secs, 2);
    churn_report["windowSeconds"] = round(window_secs, 2);
    churn_report["framesReadInWindow"] = json!(churn_frames);
    churn_report["serverCpuSeconds"] = json!(cpu.map(|c| round(c, 3)));
    churn_report["serverCpuPercent"] = json!(cpu.map(|c| round(100.0 * c / window_secs, 1)));
    churn_report["serverCpuMicrosPerPositionPush"] = json!(cpu.map(|c| round(c * 1e6 / pushes.max(1) as f64, 2)));
    churn_report["serverCpuMicrosPerFrame"] = json!(cpu.map(|c| round(c * 1e6 / churn_frames.max(1) as f64, 2)));
    churn_report["serverCpuMicrosPerAdmission"] = json!(cpu.map(|c| {
        let admitted = churn_report["admissionsOk"].as_u64().unwrap_or(0).max(1);
        round(c * 1e6 / admitted as f64, 1)
    }));
    churn_report["harnessCpuPercent"] = json!(harness_cpu.map(|c| round(100.0 * c / window_secs, 1)));
    churn_report["serverRssBytesAfter"] = json!(churn_after.rss_bytes);
    churn_report["machine"] = churn_machine;

    let hists = stats::lock(&run.hists);
    let report = json!({
        "scenario": "OfficeHours",
        "url": args.url,
        "instructors": instructors,
        "queueSize": size,
        "students": students,
        "harnessThreads": args.threads,
        "restSetup": rest_report,
        "sockets": {
            "count": total,
            "connected": run.connected.load(Ordering::Relaxed),
            "seconds": round(connect_secs, 2),
            "connectMs": ms_json(&hists.connect),
            "presenceSettleSeconds": round(settle_secs, 2),
            "presenceSettleFrames": settle_frames,
        },
        "joinStorm": storm_report,
        "churn": churn_report,
        "finalCheck": final_report,
        "queuesClosed": closed,
        "server": {
            "rssBytesBeforeSetup": before_setup.rss_bytes,
            "rssBytesConnected": connected_snap.rss_bytes,
            "rssBytesAfterStorm": storm_after.rss_bytes,
            "rssBytesAfterChurn": churn_after.rss_bytes,
            "wsConnections": churn_after.ws_connections,
        },
        "errors": stats::lock(&run.errors).clone(),
        "problems": problems,
    });
    drop(hists);
    print_report(args, &report);
    if !problems.is_empty() {
        return Err(format!("office-hours: {} problem(s) found; first: {}", problems.len(), problems[0]));
    }
    Ok(())
}

/// How busy the machine was since `before` (from /proc/stat), in cores, and
/// how much of that was neither the server nor this harness: the machine is
/// often shared.
fn machine_busy(before: Option<(u64, u64)>, server: Option<(f64, f64)>, harness: Option<f64>) -> Value {
    let (Some((busy0, all0)), Some((busy1, all1))) = (before, server::machine_ticks()) else { return Value::Null };
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) as f64;
    let all = (all1 - all0).max(1) as f64;
    let busy_cores = (busy1 - busy0) as f64 / all * cores;
    let secs = all / 100.0 / cores;
    let server = server.map(|(before, after)| (after - before) / secs);
    let harness = harness.map(|cpu| cpu / secs);
    let others = server.map(|s| (busy_cores - s - harness.unwrap_or(0.0)).max(0.0));
    json!({
        "cores": cores,
        "busyCores": round(busy_cores, 2),
        "serverCores": server.map(|c| round(c, 2)),
        "harnessCores": harness.map(|c| round(c, 2)),
        "otherProcessesCores": others.map(|c| round(c, 2)),
    })
}

/// Waits until no socket read a frame for a second (at most `bound`); returns the frames read meanwhile.
async fn settle(run: &OhRun, bound: Duration, quiet: bool, what: &str) -> u64 {
    let start = run.frames.load(Ordering::Relaxed);
    let until = Instant::now() + bound;
    let mut last = start;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = run.frames.load(Ordering::Relaxed);
        if !quiet {
            progress(&format!("{what}: {} frames read", now - start));
        }
        if now == last || Instant::now() > until {
            return now - start;
        }
        last = now;
    }
}

/// Registers the instructors, makes their courses, enrolls the students and opens the queues.
async fn set_up(
    args: &Args,
    target: &Target,
    tokens: &Tokens,
    instructors: usize,
    size: usize,
    admissions: usize,
) -> Result<(Vec<Queue>, Value), String> {
    let tag = run_tag();
    let started = Instant::now();
    let gate = Arc::new(Semaphore::new(args.setup_concurrency.max(1)));
    if !args.quiet {
        eprintln!("setting up {instructors} instructors with a course of {size} students each through REST...");
    }
    // The instructors: a password hash each (slow by design), a course, the queue opened.
    let mut handles = Vec::with_capacity(instructors);
    for q in 0..instructors {
        let (target, gate, tag) = (target.clone(), Arc::clone(&gate), tag.clone());
        handles.push(tokio::spawn(async move {
            let _permit = gate.acquire().await.map_err(|err| err.to_string())?;
            let body = json!({
                "email": format!("oh-instructor{q}-{tag}@example.test"),
                "password": "load-test-password",
                "name": format!("Instructor {q} {tag}"),
                "role": "instructor",
            });
            let value = target.expect(201, "POST", "/api/auth/register", None, Some(&body)).await?;
            let token = value["token"].as_str().ok_or("register: no token")?.to_string();
            let id = value["user"]["id"].as_str().ok_or("register: no user id")?.to_string();
            let course = target
                .expect(201, "POST", "/api/courses", Some(&token), Some(&json!({ "title": format!("OH {q} {tag}") })))
                .await?;
            let course_id = course["id"].as_str().ok_or("course: no id")?.to_string();
            Ok::<_, String>((id, token, course_id))
        }));
    }
    let mut made = Vec::with_capacity(instructors);
    for handle in handles {
        made.push(handle.await.map_err(|err| format!("set-up task: {err}"))??);
    }
    let instructors_secs = started.elapsed().as_secs_f64();
    // The enrollments, `--setup-concurrency` at a time.
    let enrolled = Arc::new(AtomicUsize::new(0));
    let enroll_hist = Arc::new(Mutex::new(stats::histogram()));
    let mut handles = Vec::with_capacity(instructors * size);
    for (q, (_, _, course_id)) in made.iter().enumerate() {
        for s in 0..size {
            let token = tokens.users[q * size + s].token.clone();
            let path = format!("/api/courses/{course_id}/enroll");
            let (target, gate) = (target.clone(), Arc::clone(&gate));
            let (enrolled, enroll_hist) = (Arc::clone(&enrolled), Arc::clone(&enroll_hist));
            handles.push(tokio::spawn(async move {
                let _permit = gate.acquire().await.map_err(|err| err.to_string())?;
                let from = now_micros();
                let (status, value) = target.request("POST", &path, Some(&token), Some(&json!({}))).await?;
                let _ = stats::lock(&enroll_hist).record(now_micros().saturating_sub(from).max(1));
                if status != 200 && status != 201 {
                    return Err(format!("enroll: {status} {value}"));
                }
                enrolled.fetch_add(1, Ordering::Relaxed);
                Ok::<_, String>(())
            }));
        }
    }
    let total = handles.len();
    let mut errors = Vec::new();
    for (n, handle) in handles.into_iter().enumerate() {
        match handle.await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => errors.push(err),
            Err(err) => errors.push(err.to_string()),
        }
        if !args.quiet && n % 200 == 0 {
            progress(&format!("set-up (REST): {} of {total} enrolled", enrolled.load(Ordering::Relaxed)));
        }
    }
    if !errors.is_empty() {
        return Err(format!("{} of {total} enrollments failed; first: {}", errors.len(), errors[0]));
    }
    for (_, token, _) in &made {
        let opened = target.expect(200, "POST", "/api/office-hours/open", Some(token), Some(&json!({}))).await?;
        if opened["isOpen"] != json!(true) {
            return Err(format!("open: the queue did not open: {opened}"));
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    if !args.quiet {
        eprintln!("\rset-up (REST): {instructors} instructors, {total} enrollments in {seconds:.1} s{:40}", "");
    }
    let slots = || (0..admissions).map(|_| AtomicU64::new(0)).collect::<Vec<_>>();
    let queues = made
        .into_iter()
        .map(|(instructor_id, instructor_token, _)| Queue {
            instructor_id,
            instructor_token,
            admit_sent: slots(),
            admit_acked: slots(),
            complete_sent: slots(),
            joins: Mutex::new(Vec::with_capacity(size)),
            order: Mutex::new(Vec::new()),
        })
        .collect();
    let [p50, _, p99, max] = percentiles_ms(&stats::lock(&enroll_hist));
    let report = json!({
        "seconds": round(seconds, 2),
        "instructorsSeconds": round(instructors_secs, 2),
        "enrollments": total,
        "enrollMs": { "p50": round(p50, 2), "p99": round(p99, 2), "max": round(max, 2) },
        "requestsInFlight": args.setup_concurrency,
    });
    Ok((queues, report))
}

/// Opens a socket and reads until the server's `connected` frame.
async fn connect(run: &OhRun, token: &str, index: usize) -> Result<WsConn, String> {
    let _permit = run.gate.acquire().await.map_err(|_| "shutting down".to_string())?;
    let started = now_micros();
    let path = ws_path(token, run.presence_diff);
    let dial = ws::connect(run.target.addr, None, &run.target.host, &path, index as u32);
    let mut conn = match tokio::time::timeout(Duration::from_secs(30), dial).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(err)) => return Err(format!("socket {index}: {err}")),
        Err(_) => return Err(format!("socket {index}: connect timed out")),
    };
    let hello = async {
        let mut seen = false;
        let mut pongs: Vec<Vec<u8>> = Vec::new();
        let on_frame = |frame: Frame<'_>, seen: &mut bool, pongs: &mut Vec<Vec<u8>>| match frame {
            Frame::Text(payload) => {
                run.frames.fetch_add(1, Ordering::Relaxed);
                *seen |= event_name(payload) == "connected";
            }
            Frame::Ping(payload) => pongs.push(payload.to_vec()),
            _ => {}
        };
        conn.drain_buffered(&mut |frame| on_frame(frame, &mut seen, &mut pongs)).map_err(|err| err.to_string())?;
        while !seen {
            conn.stream.readable().await.map_err(|err| err.to_string())?;
            let read =
                conn.read_ready(&mut |frame| on_frame(frame, &mut seen, &mut pongs)).map_err(|err| err.to_string())?;
            for payload in pongs.drain(..) {
                conn.pong(&payload).await.map_err(|err| err.to_string())?;
            }
            if let ReadOutcome::Eof = read {
                return Err("closed by the server before `connected`".to_string());
            }
        }
        Ok(())
    };
    match tokio::time::timeout(Duration::from_secs(30), hello).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => return Err(format!("socket {index}: {err}")),
        Err(_) => return Err(format!("socket {index}: no `connected` frame within 30 s")),
    }
    run.record(|h| &mut h.connect, now_micros().saturating_sub(started));
    Ok(conn)
}

// ---------------------------------------------------------------- students

/// What one student saw.
#[derive(Default)]
struct StudentOut {
    index: usize,
    queue: usize,
    entry_id: Option<String>,
    /// Position in the join ack.
    initial: usize,
    /// Last position told (ack or push) and estimate.
    position: usize,
    estimate: Option<i64>,
    /// Churn: pushes with a new position; with the same position and a new estimate.
    moved: u64,
    estimate_only: u64,
    /// A push telling the standing already told.
    duplicates: u64,
    /// Positions passed over (a move of more than one place in one push).
    skipped: u64,
    /// A push with a position behind the last one.
    moved_back: u64,
    /// A push whose move matches no admission sent.
    unexplained: u64,
    /// `queue-position` before the churn (none expected: joins behind do not change a standing).
    storm_pushes: u64,
    /// Pushes arriving before the instructor read the admission's ack.
    before_ack: u64,
    up_soon: u64,
    admitted: u64,
    completed: u64,
    removed: u64,
    other_frames: u64,
    /// Other frames read during the churn, by event.
    churn_others: Vec<(String, u64)>,
    foreign_pushes: u64,
    closed_by_server: bool,
}

async fn student(
    run: Arc<OhRun>,
    index: usize,
    queue: usize,
    token: String,
    mut control: watch::Receiver<Phase>,
) -> StudentOut {
    let mut out = StudentOut { index, queue, ..StudentOut::default() };
    let mut conn = match connect(&run, &token, index).await {
        Ok(conn) => conn,
        Err(err) => {
            run.failed.fetch_add(1, Ordering::Relaxed);
            run.error(err);
            return out;
        }
    };
    run.connected.fetch_add(1, Ordering::Relaxed);
    let join = format!(
        r#"{{"event":"join-office-hours-queue","data":{{"instructorId":"{}","question":"loadgen {index}"}},"ack":1}}"#,
        run.queues[queue].instructor_id
    );
    let mut join_sent = 0u64;
    let mut pongs: Vec<Vec<u8>> = Vec::new();
    let mut phase = *control.borrow();
    loop {
        tokio::select! {
            biased;
            changed = control.changed() => {
                if changed.is_err() {
                    break;
                }
                phase = *control.borrow();
                match phase {
                    Phase::Storm if join_sent == 0 => {
                        join_sent = now_micros();
                        if conn.send_text(join.as_bytes()).await.is_err() {
                            out.closed_by_server = true;
                            run.join_errors.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                    }
                    Phase::Stop => {
                        conn.close().await;
                        return out;
                    }
                    _ => {}
                }
            }
            ready = conn.stream.readable() => {
                if ready.is_err() {
                    out.closed_by_server = true;
                    break;
                }
                let now = now_micros();
                let churn = matches!(phase, Phase::Churn(_));
                let mut closed = false;
                let read = conn.read_ready(&mut |frame| match frame {
                    Frame::Text(payload) => {
                        run.frames.fetch_add(1, Ordering::Relaxed);
                        out.on_text(&run, payload, now, join_sent, churn);
                    }
                    Frame::Ping(payload) => pongs.push(payload.to_vec()),
                    Frame::Close(_) => closed = true,
                    Frame::Other => {}
                });
                for payload in pongs.drain(..) {
                    if conn.pong(&payload).await.is_err() {
                        closed = true;
                    }
                }
                if closed || !matches!(read, Ok(ReadOutcome::Open)) {
                    out.closed_by_server = true;
                    break;
                }
            }
        }
    }
    if out.closed_by_server {
        run.error(format!("student socket {index} closed by the server"));
    }
    // Wait for the stop so the coordinator can count.
    while control.changed().await.is_ok() {
        if *control.borrow() == Phase::Stop {
            break;
        }
    }
    out
}

impl StudentOut {
    fn on_text(&mut self, run: &OhRun, payload: &[u8], now: u64, join_sent: u64, churn: bool) {
        if payload.starts_with(br#"{"ack":1,"#) {
            self.on_join_ack(run, payload, now, join_sent);
            return;
        }
        match event_name(payload) {
            "queue-position" => self.on_position(run, payload, now, churn),
            "admitted-to-office-hours" => {
                if !self.mine(payload) {
                    return;
                }
                self.admitted += 1;
                let queue = &run.queues[self.queue];
                if let Some(sent) = queue.admit_sent.get(self.initial.wrapping_sub(1)) {
                    let sent = sent.load(Ordering::Acquire);
                    if sent > 0 {
                        run.record(|h| &mut h.admitted, now.saturating_sub(sent));
                    }
                }
            }
            "office-hours-completed" => {
                if self.mine(payload) {
                    self.completed += 1;
                }
            }
            "removed-from-queue" => {
                if self.mine(payload) {
                    self.removed += 1;
                }
            }
            "office-hours-up-soon" => self.up_soon += 1,
            other => {
                self.other_frames += 1;
                if churn {
                    let name = if other.is_empty() { "ack or unnamed" } else { other };
                    match self.churn_others.iter_mut().find(|(n, _)| n == name) {
                        Some((_, count)) => *count += 1,
                        None => self.churn_others.push((name.to_string(), 1)),
                    }
                }
            }
        }
    }

    /// Whether a push carries this student's entry (else counted as foreign).
    fn mine(&mut self, payload: &[u8]) -> bool {
        let ok = serde_json::from_slice::<PushFrame<QueuePush>>(payload)
            .is_ok_and(|push| Some(push.data.queue_id.as_str()) == self.entry_id.as_deref());
        if !ok {
            self.foreign_pushes += 1;
        }
        ok
    }

    fn on_join_ack(&mut self, run: &OhRun, payload: &[u8], now: u64, join_sent: u64) {
        let ack = serde_json::from_slice::<AckFrame>(payload);
        let entry = ack.as_ref().ok().filter(|ack| ack.ok && ack.ack == 1).and_then(|ack| {
            serde_json::from_value::<WireEntry>(ack.data.get("entry").cloned().unwrap_or(Value::Null)).ok()
        });
        let entry = entry.filter(|entry| entry.status == "waiting");
        let Some(entry) = entry else {
            run.join_errors.fetch_add(1, Ordering::Relaxed);
            let text = String::from_utf8_lossy(&payload[..payload.len().min(300)]).into_owned();
            run.error(format!("student {} join refused: {text}", self.index));
            return;
        };
        run.record(|h| &mut h.join_ack, now.saturating_sub(join_sent));
        let position = entry.position.unwrap_or(0);
        self.entry_id = Some(entry.id.clone());
        self.initial = position;
        self.position = position;
        run.last_position[self.index].store(position, Ordering::Relaxed);
        stats::lock(&run.queues[self.queue].joins).push(JoinRecord {
            student: self.index,
            entry_id: entry.id,
            position,
            joined_at: entry.joined_queue_at,
            acked_at: now,
        });
        run.join_acks.fetch_add(1, Ordering::Relaxed);
    }

    fn on_position(&mut self, run: &OhRun, payload: &[u8], now: u64, churn: bool) {
        let Ok(push) = serde_json::from_slice::<PushFrame<PositionPush>>(payload) else {
            self.other_frames += 1;
            return;
        };
        let push = push.data;
        if Some(push.queue_id.as_str()) != self.entry_id.as_deref() {
            self.foreign_pushes += 1;
            return;
        }
        let (position, estimate) = (push.position, push.estimated_wait_sec);
        run.last_position[self.index].store(position, Ordering::Relaxed);
        if !churn {
            self.storm_pushes += 1;
            self.position = position;
            self.estimate = estimate;
            return;
        }
        let queue = &run.queues[self.queue];
        // Admissions so far, by this student's move from where it joined.
        let k = self.initial.saturating_sub(position);
        if position < self.position {
            self.moved += 1;
            self.skipped += (self.position - position - 1) as u64;
            run.position_pushes.fetch_add(1, Ordering::Relaxed);
            let sent = k.checked_sub(1).and_then(|i| queue.admit_sent.get(i)).map(|t| t.load(Ordering::Acquire));
            match sent {
                Some(sent) if sent > 0 => {
                    run.record(|h| &mut h.position, now.saturating_sub(sent));
                    let acked = queue.admit_acked[k - 1].load(Ordering::Acquire);
                    if acked == 0 {
                        self.before_ack += 1;
                    } else {
                        run.record(|h| &mut h.position_after_ack, now.saturating_sub(acked));
                    }
                }
                _ => self.unexplained += 1,
            }
        } else if position == self.position && estimate != self.estimate {
            self.estimate_only += 1;
            let sent = k.checked_sub(1).and_then(|i| queue.complete_sent.get(i)).map(|t| t.load(Ordering::Acquire));
            match sent {
                Some(sent) if sent > 0 => run.record(|h| &mut h.estimate, now.saturating_sub(sent)),
                _ => self.unexplained += 1,
            }
        } else if position == self.position {
            self.duplicates += 1;
        } else {
            self.moved_back += 1;
        }
        self.position = position;
        self.estimate = estimate;
    }
}

// ---------------------------------------------------------------- instructors

/// One `queue-updated` frame as the instructor read it.
#[derive(Clone, Copy)]
struct Update {
    at: u64,
    bytes: usize,
    waiting: usize,
    admitted: usize,
    is_open: bool,
    /// Read during the churn (else: the storm, or the closing).
    churn: bool,
    closing: bool,
}

#[derive(Default)]
struct InstructorOut {
    student_joined: u64,
    updates: Vec<Update>,
    admitted_ok: Vec<String>,
    admit_errors: u64,
    completed_ok: Vec<String>,
    complete_errors: u64,
    /// Admissions sent later than their tick by more than a period.
    late: u64,
    /// When the last completion was acked (µs).
    finished_at: u64,
    other_frames: u64,
    closed_by_server: bool,
}

/// Where an instructor is in its admission cycle.
#[derive(Clone, Copy)]
enum Cycle {
    Idle,
    /// Admission `k` (1-based) is due at this instant.
    Due(usize, tokio::time::Instant),
    Admitting(usize, u64),
    /// The admitted student is being helped until then.
    Helping(usize, tokio::time::Instant),
    Completing(usize, u64),
    Done,
}

async fn instructor(run: Arc<OhRun>, queue_index: usize, mut control: watch::Receiver<Phase>) -> InstructorOut {
    let mut out = InstructorOut::default();
    let queue = &run.queues[queue_index];
    let mut conn = match connect(&run, &queue.instructor_token, run.last_position.len() + queue_index).await {
        Ok(conn) => conn,
        Err(err) => {
            run.failed.fetch_add(1, Ordering::Relaxed);
            run.error(err);
            return out;
        }
    };
    run.connected.fetch_add(1, Ordering::Relaxed);
    let period = Duration::from_secs_f64(1.0 / run.admit_rate);
    // Instructors spread over one period so that they do not admit in lockstep.
    let offset = period.mul_f64(queue_index as f64 / run.queues.len() as f64);
    let mut phase = *control.borrow();
    let mut cycle = Cycle::Idle;
    let mut start = tokio::time::Instant::now();
    let mut next_ack: u64 = 1;
    let mut order: Vec<String> = Vec::new();
    let mut pongs: Vec<Vec<u8>> = Vec::new();
    let mut acks: Vec<(u64, bool, Vec<u8>, u64)> = Vec::new();
    loop {
        let timer_at = match cycle {
            Cycle::Due(_, at) | Cycle::Helping(_, at) => Some(at),
            _ => None,
        };
        let timer = async {
            match timer_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            changed = control.changed() => {
                if changed.is_err() {
                    break;
                }
                phase = *control.borrow();
                match phase {
                    Phase::Churn(at) => {
                        start = at + offset;
                        order = stats::lock(&queue.order).clone();
                        cycle = if order.is_empty() {
                            run.instructors_done.fetch_add(1, Ordering::Relaxed);
                            Cycle::Done
                        } else {
                            Cycle::Due(1, start)
                        };
                    }
                    Phase::Stop => {
                        conn.close().await;
                        return out;
                    }
                    _ => {}
                }
            }
            ready = conn.stream.readable() => {
                if ready.is_err() {
                    out.closed_by_server = true;
                    break;
                }
                let now = now_micros();
                let churn = matches!(phase, Phase::Churn(_));
                let closing = phase == Phase::Closing;
                let mut closed = false;
                let read = conn.read_ready(&mut |frame| match frame {
                    Frame::Text(payload) => {
                        run.frames.fetch_add(1, Ordering::Relaxed);
                        if payload.starts_with(br#"{"ack":"#) {
                            let id = crate::leading_number(&payload[7..]);
                            let ok = ws::find(&payload[..payload.len().min(32)], br#""ok":true"#).is_some();
                            acks.push((id, ok, payload[..payload.len().min(400)].to_vec(), now));
                        } else {
                            match event_name(payload) {
                                "queue-updated" => out.on_update(payload, now, churn, closing),
                                "student-joined-queue" => out.student_joined += 1,
                                _ => out.other_frames += 1,
                            }
                        }
                    }
                    Frame::Ping(payload) => pongs.push(payload.to_vec()),
                    Frame::Close(_) => closed = true,
                    Frame::Other => {}
                });
                for payload in pongs.drain(..) {
                    if conn.pong(&payload).await.is_err() {
                        closed = true;
                    }
                }
                for (id, ok, text, at) in acks.drain(..) {
                    cycle = on_ack(&run, queue, &mut out, cycle, (id, ok, &text, at), start, period);
                }
                if closed || !matches!(read, Ok(ReadOutcome::Open)) {
                    out.closed_by_server = true;
                    break;
                }
            }
            _ = timer => {
                let sent = match cycle {
                    Cycle::Due(k, at) => {
                        if tokio::time::Instant::now() > at + period {
                            out.late += 1;
                        }
                        let frame = format!(
                            r#"{{"event":"admit-student","data":{{"queueId":"{}"}},"ack":{next_ack}}}"#,
                            order[k - 1]
                        );
                        let sent = now_micros();
                        queue.admit_sent[k - 1].store(sent, Ordering::Release);
                        cycle = Cycle::Admitting(k, next_ack);
                        frame
                    }
                    Cycle::Helping(k, _) => {
                        let frame = format!(
                            r#"{{"event":"complete-office-hours","data":{{"queueId":"{}"}},"ack":{next_ack}}}"#,
                            order[k - 1]
                        );
                        queue.complete_sent[k - 1].store(now_micros(), Ordering::Release);
                        cycle = Cycle::Completing(k, next_ack);
                        frame
                    }
                    _ => continue,
                };
                next_ack += 1;
                if conn.send_text(sent.as_bytes()).await.is_err() {
                    out.closed_by_server = true;
                    break;
                }
            }
        }
    }
    if out.closed_by_server {
        run.error(format!("instructor socket {queue_index} closed by the server"));
        if !matches!(cycle, Cycle::Done) {
            run.instructors_done.fetch_add(1, Ordering::Relaxed);
        }
    }
    while control.changed().await.is_ok() {
        if *control.borrow() == Phase::Stop {
            break;
        }
    }
    out
}

/// An ack at the instructor: moves its admission cycle on.
fn on_ack(
    run: &OhRun,
    queue: &Queue,
    out: &mut InstructorOut,
    cycle: Cycle,
    (id, ok, text, now): (u64, bool, &[u8], u64),
    start: tokio::time::Instant,
    period: Duration,
) -> Cycle {
    let next = |k: usize, out: &mut InstructorOut| {
        if k >= run.admissions {
            out.finished_at = now_micros();
            run.instructors_done.fetch_add(1, Ordering::Relaxed);
            Cycle::Done
        } else {
            Cycle::Due(k + 1, start + period.mul_f64(k as f64))
        }
    };
    match cycle {
        Cycle::Admitting(k, ack) if ack == id => {
            let sent = queue.admit_sent[k - 1].load(Ordering::Relaxed);
            run.record(|h| &mut h.admit_ack, now.saturating_sub(sent));
            if ok {
                queue.admit_acked[k - 1].store(now, Ordering::Release);
                out.admitted_ok.push(stats::lock(&queue.order)[k - 1].clone());
                // Everyone behind the admitted student moves up.
                run.expected_pushes.fetch_add((run.size - k) as u64, Ordering::Relaxed);
                Cycle::Helping(k, tokio::time::Instant::now() + run.help)
            } else {
                out.admit_errors += 1;
                run.error(format!("admission {k}: {}", String::from_utf8_lossy(text)));
                next(k, out)
            }
        }
        Cycle::Completing(k, ack) if ack == id => {
            let sent = queue.complete_sent[k - 1].load(Ordering::Relaxed);
            run.record(|h| &mut h.complete_ack, now.saturating_sub(sent));
            if ok {
                out.completed_ok.push(stats::lock(&queue.order)[k - 1].clone());
            } else {
                out.complete_errors += 1;
                run.error(format!("completion {k}: {}", String::from_utf8_lossy(text)));
            }
            next(k, out)
        }
        other => {
            out.other_frames += 1;
            other
        }
    }
}

impl InstructorOut {
    fn on_update(&mut self, payload: &[u8], now: u64, churn: bool, closing: bool) {
        let Ok(update) = serde_json::from_slice::<PushFrame<QueueUpdated>>(payload) else {
            self.other_frames += 1;
            return;
        };
        let entries = &update.data.entries;
        let waiting = entries.iter().filter(|e| e.status == "waiting").count();
        self.updates.push(Update {
            at: now,
            bytes: payload.len(),
            waiting,
            admitted: entries.len() - waiting,
            is_open: update.data.is_open,
            churn,
            closing,
        });
    }
}

// ---------------------------------------------------------------- checks

/// Per queue: positions 1..M once each, in `joinedQueueAt` order, as `GET
/// /api/office-hours/queue` lists them; sets each queue's order for the churn.
async fn check_storm(run: &OhRun, target: &Target, storm_start: u64) -> (Value, Vec<String>) {
    let mut problems = Vec::new();
    let mut storm_ms = Vec::with_capacity(run.queues.len());
    let (mut inversions, mut max_displacement, mut listed_ok) = (0u64, 0usize, 0usize);
    for (q, queue) in run.queues.iter().enumerate() {
        let mut joins = stats::lock(&queue.joins).clone();
        if let Some(last) = joins.iter().map(|j| j.acked_at).max() {
            storm_ms.push(last.saturating_sub(storm_start) as f64 / 1000.0);
        }
        let check = order_check(&mut joins, run.size);
        inversions += check.inversions;
        max_displacement = max_displacement.max(check.max_displacement);
        for problem in check.problems {
            problems.push(format!("queue {q}: {problem}"));
        }
        // The server's list must be the same order.
        let by_position: Vec<String> = joins.iter().map(|j| j.entry_id.clone()).collect();
        match target.expect(200, "GET", "/api/office-hours/queue", Some(&queue.instructor_token), None).await {
            Ok(listed) => {
                let listed = waiting_ids(&listed);
                if listed == by_position {
                    listed_ok += 1;
                } else {
                    let at = listed.iter().zip(&by_position).position(|(a, b)| a != b).unwrap_or(listed.len());
                    problems.push(format!(
                        "queue {q}: GET /api/office-hours/queue lists {} waiting entries; it differs from the acked positions from position {}",
                        listed.len(),
                        at + 1
                    ));
                }
                *stats::lock(&queue.order) = listed;
            }
            Err(err) => problems.push(format!("queue {q}: {err}")),
        }
    }
    let acked = run.join_acks.load(Ordering::Relaxed);
    let refused = run.join_errors.load(Ordering::Relaxed);
    if refused > 0 {
        problems.push(format!("{refused} joins refused or unanswered"));
    }
    storm_ms.sort_by(f64::total_cmp);
    let whole = storm_ms.last().copied().unwrap_or(f64::NAN);
    let median = storm_ms.get(storm_ms.len() / 2).copied().unwrap_or(f64::NAN);
    let hists = stats::lock(&run.hists);
    let report = json!({
        "joins": run.queues.len() * run.size,
        "acked": acked,
        "refused": refused,
        "stormMs": round(whole, 1),
        "perQueueStormMs": { "median": round(median, 1), "max": round(whole, 1), "min": round(storm_ms.first().copied().unwrap_or(f64::NAN), 1) },
        "joinAckMs": ms_json(&hists.join_ack),
        "ok": problems.is_empty(),
        "queuesListedInAckedOrder": listed_ok,
        "harnessReadOrder": { "pairsOutOfOrder": inversions, "maxDisplacement": max_displacement },
    });
    (report, problems)
}

/// Entry ids of the waiting entries of a `GET /api/office-hours/queue` answer, in order.
fn waiting_ids(listed: &Value) -> Vec<String> {
    listed["entries"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter(|e| e["status"] == "waiting")
                .filter_map(|e| e["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

struct OrderCheck {
    problems: Vec<String>,
    /// Pairs the harness read in the opposite order of their positions.
    inversions: u64,
    /// Most places an ack was read away from its position.
    max_displacement: usize,
}

/// Sorts `joins` by position and checks them: 1..=size once each, `joinedQueueAt` never going back.
fn order_check(joins: &mut [JoinRecord], size: usize) -> OrderCheck {
    let mut problems = Vec::new();
    if joins.len() != size {
        problems.push(format!("{} join acks for {size} students", joins.len()));
    }
    // Read order first.
    joins.sort_by_key(|j| j.acked_at);
    let read_order: Vec<usize> = joins.iter().map(|j| j.position).collect();
    let mut inversions = 0u64;
    for (i, a) in read_order.iter().enumerate() {
        inversions += read_order[i + 1..].iter().filter(|b| *b < a).count() as u64;
    }
    let max_displacement = read_order.iter().enumerate().map(|(rank, &p)| (rank + 1).abs_diff(p)).max().unwrap_or(0);
    joins.sort_by_key(|j| j.position);
    let positions: Vec<usize> = joins.iter().map(|j| j.position).collect();
    let wanted: Vec<usize> = (1..=joins.len()).collect();
    if positions != wanted {
        let dupes = positions.windows(2).filter(|w| w[0] == w[1]).count();
        let first_wrong = positions.iter().zip(&wanted).position(|(a, b)| a != b).unwrap_or(0);
        problems.push(format!(
            "positions are not 1..{}: {dupes} given twice, first wrong at sorted index {first_wrong} (got {})",
            joins.len(),
            positions.get(first_wrong).copied().unwrap_or(0)
        ));
    }
    let mut back = 0;
    for pair in joins.windows(2) {
        if let (Some(a), Some(b)) = (pair[0].joined_at, pair[1].joined_at) {
            if b < a {
                back += 1;
            }
        }
    }
    if back > 0 {
        problems.push(format!("{back} positions with a joinedQueueAt before the one ahead of them"));
    }
    if joins.iter().any(|j| j.joined_at.is_none()) {
        problems.push("join acks without joinedQueueAt".into());
    }
    OrderCheck { problems, inversions, max_displacement }
}

/// After the churn: each waiting student's last position is where the server lists them.
async fn check_final(run: &OhRun, target: &Target) -> (Value, Vec<String>) {
    let mut problems = Vec::new();
    let (mut checked, mut wrong, mut waiting_total) = (0usize, 0usize, 0usize);
    let mut samples = Vec::new();
    for (q, queue) in run.queues.iter().enumerate() {
        let students: HashMap<String, usize> =
            stats::lock(&queue.joins).iter().map(|j| (j.entry_id.clone(), j.student)).collect();
        let listed =
            match target.expect(200, "GET", "/api/office-hours/queue", Some(&queue.instructor_token), None).await {
                Ok(listed) => waiting_ids(&listed),
                Err(err) => {
                    problems.push(format!("queue {q}: {err}"));
                    continue;
                }
            };
        waiting_total += listed.len();
        for (i, id) in listed.iter().enumerate() {
            let Some(&student) = students.get(id) else { continue };
            checked += 1;
            let told = run.last_position[student].load(Ordering::Relaxed);
            if told != i + 1 {
                wrong += 1;
                if samples.len() < 5 {
                    samples.push(format!("queue {q}: student {student} at {} was last told {told}", i + 1));
                }
            }
        }
    }
    if wrong > 0 {
        problems
            .push(format!("{wrong} waiting students were last told a position other than their place in the queue"));
    }
    let report = json!({
        "waitingAfterChurn": waiting_total,
        "positionsChecked": checked,
        "lastToldWrong": wrong,
        "samples": samples,
    });
    (report, problems)
}

/// The churn's figures from every socket's outcome.
fn churn_summary(run: &OhRun, students: &[StudentOut], instructors: &[InstructorOut]) -> (Value, Vec<String>) {
    let mut problems = Vec::new();
    let sum = |f: fn(&StudentOut) -> u64| students.iter().map(f).sum::<u64>();
    let admitted_ok: usize = instructors.iter().map(|i| i.admitted_ok.len()).sum();
    let completed_ok: usize = instructors.iter().map(|i| i.completed_ok.len()).sum();
    // Every acked admission and completion must have reached its student.
    let by_entry: HashMap<&str, &StudentOut> =
        students.iter().filter_map(|s| s.entry_id.as_deref().map(|id| (id, s))).collect();
    let (mut admissions_unheard, mut completions_unheard) = (0usize, 0usize);
    for instructor in instructors {
        for id in &instructor.admitted_ok {
            if by_entry.get(id.as_str()).is_none_or(|s| s.admitted == 0) {
                admissions_unheard += 1;
            }
        }
        for id in &instructor.completed_ok {
            if by_entry.get(id.as_str()).is_none_or(|s| s.completed == 0) {
                completions_unheard += 1;
            }
        }
    }
    let expected = run.expected_pushes.load(Ordering::Relaxed);
    let received = run.position_pushes.load(Ordering::Relaxed);
    let admit_errors: u64 = instructors.iter().map(|i| i.admit_errors).sum();
    let complete_errors: u64 = instructors.iter().map(|i| i.complete_errors).sum();
    for (what, n) in [
        ("admissions refused", admit_errors),
        ("completions refused", complete_errors),
        ("acked admissions never told to their student", admissions_unheard as u64),
        ("acked completions never told to their student", completions_unheard as u64),
        ("position pushes missing", expected.saturating_sub(received)),
        ("positions skipped", sum(|s| s.skipped)),
        ("positions moving back", sum(|s| s.moved_back)),
        ("position pushes repeating the standing told", sum(|s| s.duplicates)),
        ("position pushes matching no admission", sum(|s| s.unexplained)),
        ("pushes about another student's entry", sum(|s| s.foreign_pushes)),
    ] {
        if n > 0 {
            problems.push(format!("{what}: {n}"));
        }
    }
    let closed = students.iter().filter(|s| s.closed_by_server).count()
        + instructors.iter().filter(|i| i.closed_by_server).count();
    if closed > 0 {
        problems.push(format!("{closed} sockets closed by the server"));
    }
    // queue-updated frames: per phase, sizes and the closest two.
    let updates = |churn: bool| {
        let (mut count, mut bytes, mut max_bytes, mut max_entries) = (0u64, 0u64, 0usize, 0usize);
        let (mut min_gap, mut under_250, mut under_200) = (u64::MAX, 0u64, 0u64);
        for instructor in instructors {
            let mine: Vec<&Update> = instructor.updates.iter().filter(|u| u.churn == churn && !u.closing).collect();
            for u in &mine {
                count += 1;
                bytes += u.bytes as u64;
                if u.bytes > max_bytes {
                    max_bytes = u.bytes;
                    max_entries = u.waiting + u.admitted;
                }
            }
            for pair in instructor.updates.windows(2) {
                if pair[1].churn != churn || pair[1].closing {
                    continue;
                }
                let gap = pair[1].at.saturating_sub(pair[0].at);
                min_gap = min_gap.min(gap);
                under_250 += u64::from(gap < 250_000);
                under_200 += u64::from(gap < 200_000);
            }
        }
        json!({
            "frames": count,
            "bytes": bytes,
            "meanBytes": round(bytes as f64 / count.max(1) as f64, 0),
            "maxBytes": max_bytes,
            "entriesInLargest": max_entries,
            "bytesPerEntry": round(max_bytes as f64 / max_entries.max(1) as f64, 1),
            "minGapMs": if min_gap == u64::MAX { Value::Null } else { round(min_gap as f64 / 1000.0, 1) },
            "gapsUnder250Ms": under_250,
            "gapsUnder200Ms": under_200,
        })
    };
    // The last frame of each phase must show the queue as it ended up.
    let size = run.size;
    let mut last_storm_wrong = 0;
    let mut last_churn_wrong = 0;
    for instructor in instructors {
        let last_storm = instructor.updates.iter().rfind(|u| !u.churn && !u.closing);
        if last_storm.is_none_or(|u| u.waiting != size || !u.is_open) {
            last_storm_wrong += 1;
        }
        let remaining = size - instructor.admitted_ok.len();
        let last_churn = instructor.updates.iter().rfind(|u| u.churn);
        if last_churn.is_none_or(|u| u.waiting != remaining || u.admitted != 0) {
            last_churn_wrong += 1;
        }
    }
    if last_storm_wrong > 0 {
        problems.push(format!(
            "{last_storm_wrong} instructors' last queue-updated of the storm did not list the full queue"
        ));
    }
    if last_churn_wrong > 0 {
        problems.push(format!(
            "{last_churn_wrong} instructors' last queue-updated of the churn did not list the queue as it ended"
        ));
    }
    let mut churn_others: serde_json::Map<String, Value> = serde_json::Map::new();
    for (name, n) in students.iter().flat_map(|s| s.churn_others.iter()) {
        let total = churn_others.get(name).and_then(Value::as_u64).unwrap_or(0) + n;
        churn_others.insert(name.clone(), json!(total));
    }
    let first = instructors.iter().filter_map(|i| i.updates.iter().find(|u| !u.churn && !u.closing)).count();
    // Closing the queues cancels the entries still waiting: each student hears it once.
    let still_waiting: Vec<&StudentOut> = students.iter().filter(|s| s.entry_id.is_some() && s.admitted == 0).collect();
    let not_told_closed = still_waiting.iter().filter(|s| s.removed != 1).count();
    if not_told_closed > 0 {
        problems.push(format!(
            "{not_told_closed} of {} students waiting at the close were not told removed-from-queue once",
            still_waiting.len()
        ));
    }
    let hists = stats::lock(&run.hists);
    let finished = instructors.iter().map(|i| i.finished_at).max().unwrap_or(0);
    let report = json!({
        "admissionsPlannedPerInstructor": run.admissions,
        "admitRatePerInstructor": run.admit_rate,
        "helpMs": run.help.as_millis() as u64,
        "admissionsOk": admitted_ok,
        "admissionErrors": admit_errors,
        "completionsOk": completed_ok,
        "completionErrors": complete_errors,
        "admissionsLate": instructors.iter().map(|i| i.late).sum::<u64>(),
        "positionPushesExpected": expected,
        "positionPushesReceived": received,
        "positionMs": ms_json(&hists.position),
        "positionAfterAdmitAckMs": ms_json(&hists.position_after_ack),
        "positionPushesBeforeAdmitAck": sum(|s| s.before_ack),
        "estimateOnlyPushes": sum(|s| s.estimate_only),
        "estimateMs": ms_json(&hists.estimate),
        "admittedPushMs": ms_json(&hists.admitted),
        "admitAckMs": ms_json(&hists.admit_ack),
        "completeAckMs": ms_json(&hists.complete_ack),
        "admissionsUnheard": admissions_unheard,
        "completionsUnheard": completions_unheard,
        "skippedPositions": sum(|s| s.skipped),
        "movedBack": sum(|s| s.moved_back),
        "duplicatePushes": sum(|s| s.duplicates),
        "unexplainedPushes": sum(|s| s.unexplained),
        "pushesDuringStorm": sum(|s| s.storm_pushes),
        "upSoonPushes": sum(|s| s.up_soon),
        "removedPushes": sum(|s| s.removed),
        "waitingAtClose": still_waiting.len(),
        "studentOtherFrames": sum(|s| s.other_frames),
        "studentOtherFramesInChurn": churn_others,
        "instructorStudentJoinedFrames": instructors.iter().map(|i| i.student_joined).sum::<u64>(),
        "instructorsWithAStormUpdate": first,
        "queueUpdatedStorm": updates(false),
        "queueUpdatedChurn": updates(true),
        "lastAdmissionFinishedAtMs": round(finished as f64 / 1000.0, 1),
        "socketsClosedByServer": closed,
    });
    (report, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(position: usize, acked_at: u64, joined_secs: i64) -> JoinRecord {
        JoinRecord {
            student: position,
            entry_id: format!("e{position}"),
            position,
            joined_at: DateTime::from_timestamp(1_700_000_000 + joined_secs, 0),
            acked_at,
        }
    }

    #[test]
    fn positions_in_order_pass_and_read_order_is_measured() {
        let mut joins = vec![record(2, 10, 2), record(1, 11, 1), record(3, 12, 3)];
        let check = order_check(&mut joins, 3);
        assert!(check.problems.is_empty(), "{:?}", check.problems);
        assert_eq!((check.inversions, check.max_displacement), (1, 1));
        assert_eq!(joins.iter().map(|j| j.position).collect::<Vec<_>>(), vec![1, 2, 3]);
    }

    #[test]
    fn a_position_given_twice_or_out_of_arrival_order_fails() {
        let mut joins = vec![record(1, 10, 1), record(1, 11, 2), record(3, 12, 3)];
        assert_eq!(order_check(&mut joins, 3).problems.len(), 1);
        let mut joins = vec![record(1, 10, 2), record(2, 11, 1)];
        let check = order_check(&mut joins, 2);
        assert!(check.problems[0].contains("joinedQueueAt"), "{:?}", check.problems);
    }

    #[test]
    fn events_are_named() {
        assert_eq!(event_name(br#"{"event":"queue-position","data":{}}"#), "queue-position");
        assert_eq!(event_name(br#"{"ack":3,"ok":true}"#), "");
    }
}
