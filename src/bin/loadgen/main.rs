//! `loadgen`: the load generator of docs/benchmarks.md.
//!
//! Speaks the public protocol to a running server on loopback: opens one
//! WebSocket per user (`/ws?token=`), joins each to its live session, sends
//! `session-message` frames with an ack id at a set rate with the send time
//! inside the text, and reads every `new-message` back. Reports connections,
//! connect time, deliveries expected and received, loss, deliveries per
//! second, end-to-end and durable-ack latency percentiles (HDR histograms),
//! and what the server cost (memory, and CPU per delivered frame with
//! `--server-pid`). Users come from `classroom seed-load` (`--tokens`) or,
//! for small runs, are registered through REST (`--rest-setup`).
//! `study-groups` (groups.rs) does the same in many small study-group
//! rooms (`join-room`, `room-message`), with members reconnecting mid-run.
//! `office-hours` (office_hours.rs) fills instructors' queues in one join
//! storm, then admits students at a steady rate and times the
//! `queue-position` pushes.
//!
//! Every scenario is bounded in time and count, and only loopback
//! addresses are accepted as targets.

mod groups;
mod http;
mod office_hours;
mod server;
mod stats;
mod ws;

use std::fmt::Write as _;
use std::io::{BufRead, Write as _};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use tokio::sync::{watch, Semaphore};

use http::{Target, Tokens};
use stats::{now_micros, percentiles_ms, with_tally};
use ws::{Frame, ReadOutcome, WsConn};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// 50 sessions x 100 users, 0.1 msg/s each.
    Seed,
    /// The plan's "100 users in one session": 1 x 100, 0.1 msg/s each.
    #[value(name = "room-100")]
    Room100,
    /// 1 session x --users (default 1,000), 0.02 msg/s each (see --rate).
    HotRoom,
    /// The plan's "message throughput (1000 msg/min)": 1 x 100 users, 1,000 messages a minute in all.
    #[value(name = "throughput-1000")]
    Throughput1000,
    /// 10 sessions x 100 users, the rate raised step by step until p99 > --p99-limit-ms or any loss.
    MaxThroughput,
    /// As many idle sockets as descriptors allow (--connections), over several processes if needed.
    Idle,
    /// Churn for --duration: users join, chat, leave and reconnect in cycles; memory sampled per cycle.
    Soak,
    /// --sessions x --users-per-session at --rate, for your own shapes.
    Custom,
    /// --groups (1,000) study groups of --group-size (5) members, 0.1 msg/s each, --reconnect-share (20 %) reconnecting.
    #[value(name = "study-groups")]
    StudyGroups,
    /// --instructors (20) office-hours queues of --queue-size (50) students: a join storm, then admissions at --admit-rate.
    #[value(name = "office-hours")]
    OfficeHours,
    /// (internal) one process of a spread-out idle run.
    #[value(hide = true)]
    IdleWorker,
}

#[derive(Debug, Clone, Parser)]
#[command(about = "Load generator for the classroom server (loopback only). See docs/benchmarks.md.")]
struct Args {
    /// What to run.
    #[arg(value_enum)]
    scenario: Scenario,
    /// The server (http://127.0.0.1:PORT; loopback addresses only).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Users and sessions from `classroom seed-load --out FILE`.
    #[arg(long)]
    tokens: Option<String>,
    /// Register users and create sessions through REST instead of --tokens (slow: for a few hundred users).
    #[arg(long)]
    rest_setup: bool,
    /// Sessions (overrides the scenario's).
    #[arg(long)]
    sessions: Option<usize>,
    /// Users per session (overrides the scenario's).
    #[arg(long)]
    users_per_session: Option<usize>,
    /// Users in the room of `hot-room` (default 1,000).
    #[arg(long)]
    users: Option<usize>,
    /// Messages per second per user (overrides the scenario's).
    #[arg(long)]
    rate: Option<f64>,
    /// Seconds of measured sending (per step for max-throughput; whole run for soak).
    #[arg(long, default_value_t = 30)]
    duration: u64,
    /// Seconds of unmeasured sending before the measurement.
    #[arg(long, default_value_t = 5)]
    warmup: u64,
    /// Most seconds to wait after the last send for deliveries and acks.
    #[arg(long, default_value_t = 5)]
    drain: u64,
    /// Worker threads of the harness.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Sockets connecting and joining at once.
    #[arg(long, default_value_t = 200)]
    connect_concurrency: usize,
    /// Padding added to each message text, in bytes.
    #[arg(long, default_value_t = 32)]
    message_bytes: usize,
    /// The server's pid: CPU per delivered frame and memory come from /proc/PID.
    #[arg(long)]
    server_pid: Option<u32>,
    /// More nodes of one cluster (repeatable): the sockets of the session
    /// scenarios are spread round robin over --url and these; setup and
    /// /metrics stay on --url.
    #[arg(long)]
    also_url: Vec<String>,
    /// The pids of the --also-url nodes (repeatable): CPU and memory are summed over every node.
    #[arg(long)]
    also_server_pid: Vec<u32>,
    /// Machine-readable report on stdout instead of the table.
    #[arg(long)]
    json: bool,
    /// Also write the JSON report to this file.
    #[arg(long)]
    json_out: Option<String>,
    /// No progress line.
    #[arg(long)]
    quiet: bool,
    /// idle: sockets to open (default: as many as the server's 20,000-descriptor limit leaves room for).
    #[arg(long)]
    connections: Option<usize>,
    /// idle: harness processes to spread the sockets over (default: enough for this process's descriptor limit).
    #[arg(long)]
    procs: Option<usize>,
    /// idle: seconds to hold the sockets before measuring memory.
    #[arg(long, default_value_t = 10)]
    hold: u64,
    /// Source addresses 127.0.0.2.. to spread sockets over (default: one per 25,000 sockets, none below that).
    #[arg(long)]
    source_ips: Option<usize>,
    /// max-throughput: messages per second per user of the first step.
    #[arg(long, default_value_t = 0.5)]
    start_rate: f64,
    /// max-throughput: each step's rate is the previous one's times this.
    #[arg(long, default_value_t = 1.4)]
    step_factor: f64,
    /// max-throughput: most steps.
    #[arg(long, default_value_t = 12)]
    max_steps: usize,
    /// max-throughput: a step passes while its delivery p99 stays at or under this.
    #[arg(long, default_value_t = 100.0)]
    p99_limit_ms: f64,
    /// soak: seconds each user stays in a session before leaving and reconnecting.
    #[arg(long, default_value_t = 20)]
    cycle: u64,
    /// study-groups: groups to create.
    #[arg(long, default_value_t = 1000)]
    groups: usize,
    /// study-groups: members per group (its creator included).
    #[arg(long, default_value_t = 5)]
    group_size: usize,
    /// study-groups: share of the members that close their socket once during the measured window and come back.
    #[arg(long, default_value_t = 0.2)]
    reconnect_share: f64,
    /// study-groups: milliseconds a reconnecting member stays away (jittered by +-50 %).
    #[arg(long, default_value_t = 500)]
    reconnect_pause_ms: u64,
    /// study-groups: REST requests in flight during the set-up.
    #[arg(long, default_value_t = 64)]
    setup_concurrency: usize,
    /// study-groups: leave the groups in place at the end (by default their creators archive them).
    #[arg(long)]
    keep_groups: bool,
    /// office-hours: instructors, each with a course and a queue of --queue-size students.
    #[arg(long, default_value_t = 20)]
    instructors: usize,
    /// office-hours: students per instructor (all join the queue in the storm).
    #[arg(long, default_value_t = 50)]
    queue_size: usize,
    /// office-hours: admissions (admit, then complete) per second per instructor.
    #[arg(long, default_value_t = 1.0)]
    admit_rate: f64,
    /// office-hours: admissions per instructor (default: --admit-rate x --duration, at most --queue-size - 1).
    #[arg(long)]
    admissions: Option<usize>,
    /// office-hours: milliseconds between an admission's ack and the completion.
    #[arg(long, default_value_t = 0)]
    help_ms: u64,
    /// Speak Socket.IO at /socket.io/ (its WebSocket transport) instead of
    /// our frames at /ws: the same events, wrapped in Socket.IO packets
    /// (the seed-shaped scenarios: seed, room-100, hot-room, custom, ...).
    #[arg(long)]
    socket_io: bool,
    /// Open each `/ws` socket with `presence=diff`: presence comes as one
    /// `presence-diff` frame per course and 100 ms, as the web UI takes it,
    /// rather than a `presence-updated` frame per person.
    #[arg(long)]
    presence_diff: bool,
    /// (internal) idle-worker: first user index.
    #[arg(long, default_value_t = 0, hide = true)]
    offset: usize,
    /// (internal) idle-worker: sockets to open.
    #[arg(long, default_value_t = 0, hide = true)]
    count: usize,
    /// (internal) idle-worker: first source address index.
    #[arg(long, default_value_t = 0, hide = true)]
    source_base: usize,
}

/// Sockets one source address serves before the next is used (of ~28,000 ephemeral ports).
const SOCKETS_PER_SOURCE: usize = 25_000;

/// What every connection task shares with the coordinator.
struct Shared {
    target: Target,
    /// Where sockets connect: --url, then each --also-url, round robin.
    nodes: Vec<Target>,
    /// The step being measured; `new-message` frames of other steps are not counted.
    step: AtomicU32,
    connected: AtomicUsize,
    joined: AtomicUsize,
    failed: AtomicUsize,
    /// Sockets the server closed (or that broke) after joining.
    dropped: AtomicUsize,
    /// Members per session, as the harness joined them.
    members: Vec<AtomicUsize>,
    connect_hist: Mutex<Histogram<u64>>,
    join_hist: Mutex<Histogram<u64>>,
    errors: Mutex<Vec<String>>,
    close_codes: Mutex<Vec<u16>>,
    connect_gate: Semaphore,
    padding: String,
    /// Sockets open now (joined and not closed by the server).
    live_sockets: AtomicU64,
    wire: Wire,
    /// `--presence-diff`.
    presence_diff: bool,
}

/// What the harness speaks: our frames at `/ws`, or the same events in
/// Socket.IO packets at `/socket.io/` (`--socket-io`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wire {
    Native,
    SocketIo,
}

impl Wire {
    /// How a `new-message` push starts.
    fn new_message(self) -> &'static [u8] {
        match self {
            Wire::Native => br#"{"event":"new-message""#,
            Wire::SocketIo => br#"42["new-message""#,
        }
    }

    /// How an ack starts, before its id.
    fn ack(self) -> &'static [u8] {
        match self {
            Wire::Native => br#"{"ack":"#,
            Wire::SocketIo => b"43",
        }
    }

    /// Appends an event with an ack id; `data` is a JSON object's text.
    fn event(self, out: &mut Vec<u8>, event: &str, data: std::fmt::Arguments<'_>, ack: u64) {
        let _ = match self {
            Wire::Native => write!(FmtVec(out), r#"{{"event":"{event}","data":{data},"ack":{ack}}}"#),
            Wire::SocketIo => write!(FmtVec(out), r#"42{ack}["{event}",{data}]"#),
        };
    }
}

impl Shared {
    fn error(&self, message: String) {
        let mut errors = stats::lock(&self.errors);
        if errors.len() < 10 {
            errors.push(message);
        }
    }
}

/// What the coordinator tells the sockets.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Control {
    /// Marker of the messages sent now (0 = warm-up, never counted).
    step: u32,
    /// Messages per second per socket (0 = quiet).
    rate: f64,
    /// Close and end.
    stop: bool,
}

/// One socket to open.
#[derive(Clone)]
struct Plan {
    index: usize,
    token: String,
    /// (session id, slot in `Shared::members`); with `room_join`, a chat room id.
    session: Option<(String, usize)>,
    /// Join with `join-room {roomId}` instead of `join-live-session {sessionId}`.
    room_join: bool,
    source: Option<IpAddr>,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(args.threads.max(1)).enable_all().build();
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("loadgen: cannot start the runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("\nloadgen: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    now_micros();
    let target = Target::parse(&args.url)?;
    if args.socket_io
        && matches!(
            args.scenario,
            Scenario::Idle | Scenario::IdleWorker | Scenario::Soak | Scenario::StudyGroups | Scenario::OfficeHours
        )
    {
        return Err("--socket-io is for the fixed-rate scenarios (seed, room-100, hot-room, throughput-1000, custom)".into());
    }
    match args.scenario {
        Scenario::Idle => return idle(&args, &target).await,
        Scenario::IdleWorker => return idle_worker(&args, &target).await,
        Scenario::Soak => return soak(&args, &target).await,
        Scenario::StudyGroups => return groups::run(&args, &target).await,
        Scenario::OfficeHours => return office_hours::run(&args, &target).await,
        _ => {}
    }
    if args.socket_io && matches!(args.scenario, Scenario::MaxThroughput) {
        return Err("--socket-io is for the fixed-rate scenarios (seed, room-100, hot-room, throughput-1000, custom)".into());
    }
    let shape = Shape::of(&args);
    let tokens = load_tokens(&args, &target, shape.sessions * shape.per_session, shape.sessions).await?;
    let room = Room::open(&args, &target, &tokens, &shape).await?;
    let mut report = json!({
        "scenario": format!("{:?}", args.scenario),
        "url": args.url,
        "alsoUrls": args.also_url,
        "sessions": shape.sessions,
        "usersPerSession": shape.per_session,
        "harnessThreads": args.threads,
        "setup": room.setup_report(),
    });
    let mut steps = Vec::new();
    if args.warmup > 0 {
        room.warm_up(shape.rate, args.warmup, args.quiet).await;
    }
    if args.scenario == Scenario::MaxThroughput {
        let mut rate = args.rate.unwrap_or(args.start_rate);
        let mut best: Option<Value> = None;
        for step in 1..=args.max_steps as u32 {
            let result = room.measure(step, rate, args.duration, args.drain, args.quiet).await;
            let passed = result.passes(args.p99_limit_ms);
            let summary = result.to_json();
            if !args.json {
                eprintln!(
                    "\rstep {step}: {:.2} msg/s per user -> {}{}",
                    rate,
                    result.one_line(),
                    if passed { "" } else { "  (limit passed)" }
                );
            }
            steps.push(summary.clone());
            if !passed {
                break;
            }
            best = Some(summary);
            rate *= args.step_factor;
        }
        report["maxPassing"] = best.unwrap_or(Value::Null);
    } else {
        let result = room.measure(1, shape.rate, args.duration, args.drain, args.quiet).await;
        steps.push(result.to_json());
    }
    report["steps"] = Value::Array(steps);
    let end = server::snapshot(&target, args.server_pid).await;
    report["serverAfter"] = json!({ "rssBytes": end.rss_bytes, "wsConnections": end.ws_connections });
    room.close().await;
    print_report(&args, &report);
    Ok(())
}

/// Sessions, users per session and rate of a run.
struct Shape {
    sessions: usize,
    per_session: usize,
    rate: f64,
}

impl Shape {
    fn of(args: &Args) -> Shape {
        let (sessions, per_session, rate) = match args.scenario {
            Scenario::Seed => (50, 100, 0.1),
            Scenario::Room100 => (1, 100, 0.1),
            Scenario::HotRoom => {
                let users = args.users.unwrap_or(1_000);
                // 0.02 msg/s per user up to 1,000 users; above that the room's
                // total stays at the 1,000-user room's 20 msg/s (0.02 each at
                // 10,000 would be 2M deliveries/s, five times the throughput
                // target). --rate overrides.
                (1, users, 20.0 / users.max(1000) as f64)
            }
            Scenario::Throughput1000 => (1, 100, 1000.0 / 60.0 / 100.0),
            Scenario::MaxThroughput => (10, 100, args.start_rate),
            _ => (1, 100, 0.1),
        };
        Shape {
            sessions: args.sessions.unwrap_or(sessions),
            per_session: args.users_per_session.unwrap_or(per_session),
            rate: args.rate.unwrap_or(rate),
        }
    }
}

async fn load_tokens(args: &Args, target: &Target, users: usize, sessions: usize) -> Result<Tokens, String> {
    let tokens = if let Some(path) = &args.tokens {
        let text = std::fs::read(path).map_err(|err| format!("cannot read {path}: {err}"))?;
        serde_json::from_slice::<Tokens>(&text)
            .map_err(|err| format!("{path} is not a seed-load tokens file: {err}"))?
    } else if args.rest_setup {
        if !args.quiet {
            eprintln!("registering {users} users and {sessions} session(s) through REST...");
        }
        http::setup_via_rest(target, users, sessions).await?
    } else {
        return Err(format!(
            "no users: run `classroom seed-load --users {users} --sessions {sessions} --out tokens.json` against the \
             server's database and pass --tokens tokens.json (or --rest-setup for a few hundred users)"
        ));
    };
    if tokens.users.len() < users || tokens.sessions.len() < sessions {
        return Err(format!(
            "the tokens file has {} users and {} sessions; this run needs {users} and {sessions} (seed-load --users {users} --sessions {sessions})",
            tokens.users.len(),
            tokens.sessions.len()
        ));
    }
    Ok(tokens)
}

/// Source addresses for `count` sockets: none (the kernel's choice) when one
/// address's ports suffice, else 127.0.0.2, 127.0.0.3, ...
fn sources(args: &Args, count: usize) -> Vec<IpAddr> {
    let wanted =
        args.source_ips
            .unwrap_or_else(|| if count > SOCKETS_PER_SOURCE { count.div_ceil(SOCKETS_PER_SOURCE) } else { 0 });
    (0..wanted).map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, (2 + args.source_base + i).min(254) as u8))).collect()
}

fn source_for(sources: &[IpAddr], index: usize) -> Option<IpAddr> {
    (!sources.is_empty()).then(|| sources[index % sources.len()])
}

fn check_fd_limit(count: usize) -> Result<(), String> {
    if let Some(limit) = server::own_fd_limit() {
        if count as u64 + 64 > limit {
            return Err(format!(
                "{count} sockets need more than this process's {limit} descriptors: raise `ulimit -n`, or use fewer users"
            ));
        }
    }
    Ok(())
}

/// Sockets joined to their sessions, ready to send.
struct Room {
    shared: Arc<Shared>,
    control: watch::Sender<Control>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    target_count: usize,
    server_pid: Option<u32>,
    /// The other nodes' pids: their CPU and memory are added to the server's.
    also_server_pids: Vec<u32>,
    setup_secs: f64,
}

impl Room {
    async fn open(args: &Args, target: &Target, tokens: &Tokens, shape: &Shape) -> Result<Room, String> {
        let count = shape.sessions * shape.per_session;
        check_fd_limit(count)?;
        let sources = sources(args, count);
        let mut plans: Vec<Plan> = Vec::with_capacity(count);
        for slot in 0..shape.sessions {
            // The users enrolled for this session (seed-load puts each block in a course of its own).
            let members: Vec<&http::SeededUser> = tokens
                .users
                .iter()
                .enumerate()
                .filter(|(i, user)| user.session.map_or(i / shape.per_session == slot, |s| s == slot))
                .map(|(_, user)| user)
                .take(shape.per_session)
                .collect();
            if members.len() < shape.per_session {
                return Err(format!(
                    "session {slot} has {} seeded users, the run needs {} per session: seed with \
                     `classroom seed-load --sessions {} --users {}`",
                    members.len(),
                    shape.per_session,
                    shape.sessions,
                    count
                ));
            }
            for user in members {
                let index = plans.len();
                plans.push(Plan {
                    index,
                    token: user.token.clone(),
                    session: Some((tokens.sessions[slot].clone(), slot)),
                    room_join: false,
                    source: source_for(&sources, index),
                });
            }
        }
        Self::open_plans(args, target, plans, shape.sessions).await
    }

    async fn open_plans(args: &Args, target: &Target, plans: Vec<Plan>, sessions: usize) -> Result<Room, String> {
        let count = plans.len();
        Self::start(args, target, count, sessions, move |shared, watcher| {
            plans.into_iter().map(|plan| tokio::spawn(connection(Arc::clone(shared), plan, watcher.clone()))).collect()
        })
        .await
    }

    /// Starts `count` connection tasks (made by `spawn`, which gets what
    /// they share and the control channel) and waits until each joined or
    /// failed and the join storm passed. `slots`: rooms in `Shared::members`.
    async fn start(
        args: &Args,
        target: &Target,
        count: usize,
        slots: usize,
        spawn: impl FnOnce(&Arc<Shared>, &watch::Receiver<Control>) -> Vec<tokio::task::JoinHandle<()>>,
    ) -> Result<Room, String> {
        let mut nodes = vec![target.clone()];
        for url in &args.also_url {
            nodes.push(Target::parse(url)?);
        }
        let shared = Arc::new(Shared {
            target: target.clone(),
            nodes,
            step: AtomicU32::new(0),
            connected: AtomicUsize::new(0),
            joined: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            dropped: AtomicUsize::new(0),
            members: (0..slots).map(|_| AtomicUsize::new(0)).collect(),
            connect_hist: Mutex::new(stats::histogram()),
            join_hist: Mutex::new(stats::histogram()),
            errors: Mutex::new(Vec::new()),
            close_codes: Mutex::new(Vec::new()),
            connect_gate: Semaphore::new(args.connect_concurrency.max(1)),
            padding: "x".repeat(args.message_bytes),
            live_sockets: AtomicU64::new(0),
            wire: if args.socket_io { Wire::SocketIo } else { Wire::Native },
            presence_diff: args.presence_diff,
        });
        let (control, watcher) = watch::channel(Control { step: 0, rate: 0.0, stop: false });
        let started = Instant::now();
        let tasks = spawn(&shared, &watcher);
        let room = Room {
            shared,
            control,
            tasks,
            target_count: count,
            server_pid: args.server_pid,
            also_server_pids: args.also_server_pid.clone(),
            setup_secs: 0.0,
        };
        // Every socket joined or failed, within a bound.
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let (joined, failed) =
                (room.shared.joined.load(Ordering::Relaxed), room.shared.failed.load(Ordering::Relaxed));
            if !args.quiet {
                progress(&format!(
                    "setup: {} connected, {joined} joined, {failed} failed of {count}",
                    room.shared.connected.load(Ordering::Relaxed)
                ));
            }
            if joined + failed >= count || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let setup_secs = started.elapsed().as_secs_f64();
        // Let the storm of `user-joined` frames the joins caused pass.
        let settle_deadline = Instant::now() + Duration::from_secs(300);
        let mut last = stats::peek().3;
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let now = stats::peek().3;
            if now == last || Instant::now() > settle_deadline {
                break;
            }
            last = now;
        }
        let failed = room.shared.failed.load(Ordering::Relaxed);
        if failed > 0 {
            let errors = stats::lock(&room.shared.errors).clone();
            if !args.quiet {
                eprintln!("\r{failed} socket(s) failed to connect or join; first errors: {errors:#?}");
            }
            if failed == count {
                return Err(
                    "no socket could join; is the server running, and were the tokens seeded into its database?".into(),
                );
            }
        }
        Ok(Room { setup_secs, ..room })
    }

    fn setup_report(&self) -> Value {
        let connect = stats::lock(&self.shared.connect_hist).clone();
        let join = stats::lock(&self.shared.join_hist).clone();
        let [c50, c90, c99, cmax] = percentiles_ms(&connect);
        let [j50, j90, j99, jmax] = percentiles_ms(&join);
        json!({
            "sockets": self.target_count,
            "connected": self.shared.connected.load(Ordering::Relaxed),
            "joined": self.shared.joined.load(Ordering::Relaxed),
            "failed": self.shared.failed.load(Ordering::Relaxed),
            "seconds": round(self.setup_secs, 2),
            "connectMs": { "p50": round(c50, 2), "p90": round(c90, 2), "p99": round(c99, 2), "max": round(cmax, 2) },
            "joinMs": { "p50": round(j50, 2), "p90": round(j90, 2), "p99": round(j99, 2), "max": round(jmax, 2) },
            "errors": stats::lock(&self.shared.errors).clone(),
        })
    }

    async fn warm_up(&self, rate: f64, secs: u64, quiet: bool) {
        self.shared.step.store(0, Ordering::Relaxed);
        let _ = self.control.send(Control { step: 0, rate, stop: false });
        let until = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < until {
            if !quiet {
                progress(&format!("warm-up: {:.0} s left", (until - Instant::now()).as_secs_f64()));
            }
            tokio::time::sleep(Duration::from_millis(500).min(until.saturating_duration_since(Instant::now()))).await;
        }
        let _ = self.control.send(Control { step: 0, rate: 0.0, stop: false });
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    /// The server now, summed over every node given a pid.
    async fn snapshot(&self) -> server::Snapshot {
        let mut snap = server::snapshot(&self.shared.target, self.server_pid).await;
        for pid in &self.also_server_pids {
            snap.cpu_secs = snap.cpu_secs.zip(server::cpu_seconds(*pid)).map(|(sum, cpu)| sum + cpu);
            snap.rss_bytes = snap.rss_bytes.zip(server::rss_bytes(*pid)).map(|(sum, rss)| sum + rss);
        }
        snap
    }

    /// Sends at `rate` per socket for `secs`, waits for the deliveries, and counts.
    async fn measure(&self, step: u32, rate: f64, secs: u64, drain: u64, quiet: bool) -> StepResult {
        stats::collect(true);
        self.shared.step.store(step, Ordering::Relaxed);
        let before = self.snapshot().await;
        let harness_before = server::cpu_seconds(std::process::id());
        let dropped_before = self.shared.dropped.load(Ordering::Relaxed);
        let started = Instant::now();
        let _ = self.control.send(Control { step, rate, stop: false });
        let until = started + Duration::from_secs(secs);
        while Instant::now() < until {
            if !quiet {
                let (sent, received, acks, _) = stats::peek();
                let elapsed = started.elapsed().as_secs_f64().max(0.001);
                progress(&format!(
                    "step {step}: {:.0}/{secs} s, sent {sent}, acks {acks}, delivered {received} ({:.0}/s)",
                    elapsed,
                    received as f64 / elapsed
                ));
            }
            tokio::time::sleep(Duration::from_millis(500).min(until.saturating_duration_since(Instant::now()))).await;
        }
        let _ = self.control.send(Control { step, rate: 0.0, stop: false });
        let send_secs = started.elapsed().as_secs_f64();
        // Let every socket see the stop (a send already under way still
        // counts, and is waited for below), then drain: until every expected
        // delivery and ack is in, or the bound.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let drain_until = Instant::now() + Duration::from_secs(drain);
        loop {
            let tally = stats::collect(false);
            let done = tally.received >= tally.expected && tally.acks_ok + tally.acks_err >= tally.sent;
            if done || Instant::now() > drain_until {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let window_secs = started.elapsed().as_secs_f64();
        let after = self.snapshot().await;
        let harness_cpu =
            server::cpu_seconds(std::process::id()).zip(harness_before).map(|(after, before)| after - before);
        let tally = stats::collect(false);
        StepResult {
            step,
            rate,
            sockets: self.shared.joined.load(Ordering::Relaxed),
            send_secs,
            window_secs,
            tally,
            before,
            after,
            dropped: self.shared.dropped.load(Ordering::Relaxed) - dropped_before,
            close_codes: stats::lock(&self.shared.close_codes).clone(),
            harness_cpu,
        }
    }

    async fn close(self) {
        let _ = self.control.send(Control { step: 0, rate: 0.0, stop: true });
        for task in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }
}

/// Figures of one measured step.
struct StepResult {
    step: u32,
    rate: f64,
    sockets: usize,
    send_secs: f64,
    window_secs: f64,
    tally: stats::Tally,
    before: server::Snapshot,
    after: server::Snapshot,
    dropped: usize,
    close_codes: Vec<u16>,
    /// CPU seconds this harness process used over the window.
    harness_cpu: Option<f64>,
}

impl StepResult {
    fn loss(&self) -> u64 {
        self.tally.expected.saturating_sub(self.tally.received)
    }

    fn server_cpu(&self) -> Option<f64> {
        Some(self.after.cpu_secs? - self.before.cpu_secs?)
    }

    fn passes(&self, p99_limit_ms: f64) -> bool {
        let [_, _, p99, _] = percentiles_ms(&self.tally.e2e);
        self.loss() == 0
            && self.tally.acks_err == 0
            && self.dropped == 0
            && p99 <= p99_limit_ms
            && self.tally.received > 0
    }

    fn one_line(&self) -> String {
        let [_, _, p99, _] = percentiles_ms(&self.tally.e2e);
        let [_, _, ack99, _] = percentiles_ms(&self.tally.ack);
        format!(
            "{:.0} deliveries/s, p99 {:.2} ms, ack p99 {:.2} ms, loss {}, ack errors {}{}",
            self.tally.received as f64 / self.send_secs,
            p99,
            ack99,
            self.loss(),
            self.tally.acks_err,
            self.server_cpu()
                .map(|cpu| format!(", {:.2} us CPU/delivery", cpu * 1e6 / self.tally.received.max(1) as f64))
                .unwrap_or_default()
        )
    }

    fn to_json(&self) -> Value {
        let [p50, p90, p99, max] = percentiles_ms(&self.tally.e2e);
        let [a50, a90, a99, amax] = percentiles_ms(&self.tally.ack);
        let cpu = self.server_cpu();
        json!({
            "step": self.step,
            "ratePerUser": round(self.rate, 4),
            "sockets": self.sockets,
            "sendSeconds": round(self.send_secs, 2),
            "windowSeconds": round(self.window_secs, 2),
            "messagesSent": self.tally.sent,
            "messagesPerSecond": round(self.tally.sent as f64 / self.send_secs, 1),
            "deliveriesExpected": self.tally.expected,
            "deliveriesReceived": self.tally.received,
            "loss": self.loss(),
            "lateFromEarlierStep": self.tally.late,
            "otherFramesReceived": self.tally.other_frames,
            "deliveriesPerSecond": round(self.tally.received as f64 / self.send_secs, 0),
            "latencyMs": { "p50": round(p50, 3), "p90": round(p90, 3), "p99": round(p99, 3), "max": round(max, 3) },
            "ackMs": { "p50": round(a50, 3), "p90": round(a90, 3), "p99": round(a99, 3), "max": round(amax, 3) },
            "acksOk": self.tally.acks_ok,
            "ackErrors": self.tally.acks_err,
            "ackErrorSamples": self.tally.error_samples,
            "socketsDropped": self.dropped,
            "closeCodes": self.close_codes,
            "serverCpuSeconds": cpu.map(|c| round(c, 3)),
            "serverCpuPercent": cpu.map(|c| round(100.0 * c / self.window_secs, 1)),
            "serverCpuMicrosPerDelivery": cpu.map(|c| round(c * 1e6 / self.tally.received.max(1) as f64, 3)),
            "serverRssBytes": self.after.rss_bytes,
            "harnessCpuPercent": self.harness_cpu.map(|c| round(100.0 * c / self.window_secs, 1)),
            "harnessCpuMicrosPerDelivery": self.harness_cpu.map(|c| round(c * 1e6 / self.tally.received.max(1) as f64, 3)),
        })
    }
}

fn round(value: f64, digits: i32) -> Value {
    if value.is_finite() {
        let scale = 10f64.powi(digits);
        json!((value * scale).round() / scale)
    } else {
        Value::Null
    }
}

/// A progress line: rewritten in place on a terminal, else one line every 5 s.
fn progress(line: &str) {
    use std::io::IsTerminal;
    static LAST: Mutex<Option<Instant>> = Mutex::new(None);
    if std::io::stderr().is_terminal() {
        eprint!("\r{line:<100}");
        let _ = std::io::stderr().flush();
        return;
    }
    let mut last = stats::lock(&LAST);
    if last.is_none_or(|at| at.elapsed() >= Duration::from_secs(5)) {
        *last = Some(Instant::now());
        eprintln!("{line}");
    }
}

/// One socket's life: connect, join, then read and send until told to stop.
async fn connection(shared: Arc<Shared>, plan: Plan, mut control: watch::Receiver<Control>) {
    let Some(mut conn) = open(&shared, &plan).await else { return };
    shared.live_sockets.fetch_add(1, Ordering::Relaxed);
    let session = plan.session.clone();
    let mut next_ack: u64 = 2;
    // (ack id, send time, step, room size at the send)
    let mut pending: std::collections::VecDeque<(u64, u64, u32, u64)> = std::collections::VecDeque::new();
    let mut pongs: Vec<Vec<u8>> = Vec::new();
    let mut text = Vec::with_capacity(256);
    let mut current = *control.borrow();
    let mut next_send = schedule_first(&current, plan.index);
    let mut closed: Option<Option<u16>> = None;
    loop {
        let sleep = async {
            match next_send {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            // A new control first: a send must never follow an observed stop.
            biased;
            changed = control.changed() => {
                if changed.is_err() {
                    break;
                }
                current = *control.borrow();
                if current.stop {
                    conn.close().await;
                    return;
                }
                next_send = schedule_first(&current, plan.index);
            }
            ready = conn.stream.readable() => {
                if ready.is_err() {
                    closed = Some(None);
                    break;
                }
                let step = shared.step.load(Ordering::Relaxed);
                let mut engine_pings = 0;
                let outcome = with_tally(|tally| {
                    let now = now_micros();
                    conn.read_ready(&mut |frame| match frame {
                        Frame::Text(b"2") if shared.wire == Wire::SocketIo => engine_pings += 1,
                        Frame::Text(payload) => on_text(shared.wire, payload, now, step, tally, &mut pending),
                        Frame::Ping(payload) => pongs.push(payload.to_vec()),
                        Frame::Close(code) => closed = Some(code),
                        Frame::Other => {}
                    })
                });
                for payload in pongs.drain(..) {
                    if conn.pong(&payload).await.is_err() {
                        closed = Some(None);
                    }
                }
                for _ in 0..engine_pings {
                    if conn.send_text(b"3").await.is_err() {
                        closed = Some(None);
                    }
                }
                match outcome {
                    Ok(ReadOutcome::Open) => {}
                    Ok(ReadOutcome::Eof) | Err(_) => closed = Some(closed.flatten()),
                }
                if closed.is_some() {
                    break;
                }
            }
            _ = sleep => {
                let Some((session_id, slot)) = &session else { next_send = None; continue };
                let room_size = shared.members[*slot].load(Ordering::Relaxed) as u64;
                let sent_at = now_micros();
                text.clear();
                let ack = next_ack;
                next_ack += 1;
                shared.wire.event(
                    &mut text,
                    "session-message",
                    format_args!(
                        r#"{{"sessionId":"{session_id}","message":"~lg~{}~{sent_at}~ {}"}}"#,
                        current.step, shared.padding
                    ),
                    ack,
                );
                if conn.send_text(&text).await.is_err() {
                    closed = Some(None);
                    break;
                }
                pending.push_back((ack, sent_at, current.step, room_size));
                if current.step != 0 && current.step == shared.step.load(Ordering::Relaxed) {
                    with_tally(|tally| {
                        tally.sent += 1;
                        tally.expected += room_size;
                    });
                }
                next_send = schedule_next(&current, next_send);
            }
        }
    }
    // The server (or the network) ended it.
    shared.dropped.fetch_add(1, Ordering::Relaxed);
    shared.live_sockets.fetch_sub(1, Ordering::Relaxed);
    if let Some(Some(code)) = closed {
        let mut codes = stats::lock(&shared.close_codes);
        if codes.len() < 20 {
            codes.push(code);
        }
    }
    // Wait for the stop so the coordinator can count.
    while control.changed().await.is_ok() {
        if control.borrow().stop {
            break;
        }
    }
}

/// `std::fmt::Write` over a byte vector (frames are built without a String per message).
struct FmtVec<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for FmtVec<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// The first send of a socket: spread evenly over one period so sockets do not send in lockstep.
fn schedule_first(control: &Control, index: usize) -> Option<tokio::time::Instant> {
    if control.stop || control.rate <= 0.0 {
        return None;
    }
    let period = 1.0 / control.rate;
    let phase = ((index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11) as f64 / (1u64 << 53) as f64;
    Some(tokio::time::Instant::now() + Duration::from_secs_f64(period * phase))
}

/// The next send, one period on; a socket that fell more than a period behind skips ahead
/// (the offered rate drops rather than bursting; the report shows the rate achieved).
fn schedule_next(control: &Control, previous: Option<tokio::time::Instant>) -> Option<tokio::time::Instant> {
    let previous = previous?;
    if control.rate <= 0.0 {
        return None;
    }
    let period = Duration::from_secs_f64(1.0 / control.rate);
    let next = previous + period;
    let now = tokio::time::Instant::now();
    Some(if next + period < now { now } else { next })
}

/// Counts one text frame. Cheap on purpose: a prefix check and a byte scan, no JSON parsing.
fn on_text(
    wire: Wire,
    payload: &[u8],
    now: u64,
    step: u32,
    tally: &mut stats::Tally,
    pending: &mut std::collections::VecDeque<(u64, u64, u32, u64)>,
) {
    let ack_prefix = wire.ack();
    if payload.starts_with(wire.new_message()) {
        let Some((sent_step, sent_at)) = marker(payload) else {
            tally.other_frames += 1;
            return;
        };
        if sent_step == step && step != 0 {
            tally.received += 1;
            let _ = tally.e2e.record(now.saturating_sub(sent_at).max(1));
        } else if sent_step != 0 {
            tally.late += 1;
        }
    } else if payload.starts_with(ack_prefix) {
        let digits = &payload[ack_prefix.len()..];
        let id = leading_number(digits);
        while let Some(&(ack, sent_at, sent_step, room_size)) = pending.front() {
            if ack > id {
                break;
            }
            pending.pop_front();
            if ack < id {
                continue;
            }
            let ok = ws::find(&digits[..digits.len().min(24)], br#""ok":true"#).is_some();
            if sent_step != 0 && sent_step == step {
                if ok {
                    tally.acks_ok += 1;
                    let _ = tally.ack.record(now.saturating_sub(sent_at).max(1));
                } else {
                    tally.ack_error(payload);
                    tally.expected = tally.expected.saturating_sub(room_size);
                }
            }
        }
    } else {
        tally.other_frames += 1;
    }
}

/// `~lg~STEP~MICROS~` in a frame: the step and send time of a harness message.
fn marker(payload: &[u8]) -> Option<(u32, u64)> {
    let at = ws::find(payload, b"~lg~")? + 4;
    let step = leading_number(&payload[at..]);
    let rest = &payload[at..];
    let second = rest.iter().position(|&b| b == b'~')? + 1;
    Some((step as u32, leading_number(&rest[second..])))
}

fn leading_number(bytes: &[u8]) -> u64 {
    bytes.iter().take_while(|b| b.is_ascii_digit()).fold(0u64, |n, b| n * 10 + u64::from(b - b'0'))
}

/// The `/ws` path for a token, with `presence=diff` when asked for.
fn ws_path(token: &str, presence_diff: bool) -> String {
    format!("/ws?token={token}{}", if presence_diff { "&presence=diff" } else { "" })
}

/// Opens the WebSocket of `plan` (30 s at most; the caller holds a `connect_gate` permit).
async fn dial(shared: &Shared, plan: &Plan) -> Result<WsConn, String> {
    let path = match shared.wire {
        Wire::Native => ws_path(&plan.token, shared.presence_diff),
        Wire::SocketIo => "/socket.io/?EIO=4&transport=websocket".to_string(),
    };
    let node = &shared.nodes[plan.index % shared.nodes.len()];
    let connected = tokio::time::timeout(Duration::from_secs(30), async {
        let mut conn = ws::connect(node.addr, plan.source, &node.host, &path, plan.index as u32)
            .await
            .map_err(|err| err.to_string())?;
        if shared.wire == Wire::SocketIo {
            // Socket.IO's handshake: the open packet, then our connect with the token.
            await_text(&mut conn, shared.wire, |text| text.starts_with(b"0").then_some(Ok(()))).await?;
            let connect = format!(r#"40{{"token":"{}"}}"#, plan.token);
            conn.send_text(connect.as_bytes()).await.map_err(|err| err.to_string())?;
            await_text(&mut conn, shared.wire, |text| {
                if text.starts_with(b"40") {
                    Some(Ok(()))
                } else if text.starts_with(b"44") {
                    Some(Err(String::from_utf8_lossy(&text[..text.len().min(300)]).into_owned()))
                } else {
                    None
                }
            })
            .await?;
        }
        Ok::<_, String>(conn)
    })
    .await;
    match connected {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(err)) => Err(format!("socket {}: {err}", plan.index)),
        Err(_) => Err(format!("socket {}: connect timed out", plan.index)),
    }
}

/// Connects and joins; None (counted as failed) when either does not work.
async fn open(shared: &Shared, plan: &Plan) -> Option<WsConn> {
    let Ok(_permit) = shared.connect_gate.acquire().await else { return None };
    let started = now_micros();
    let mut conn = match dial(shared, plan).await {
        Ok(conn) => conn,
        Err(err) => return fail(shared, err),
    };
    let _ = stats::lock(&shared.connect_hist).record(now_micros().saturating_sub(started).max(1));
    shared.connected.fetch_add(1, Ordering::Relaxed);
    let Some((session_id, slot)) = &plan.session else {
        // Nothing to join: the socket is ready as it is (counted as joined so the set-up ends).
        shared.joined.fetch_add(1, Ordering::Relaxed);
        return Some(conn);
    };
    let join_started = now_micros();
    let mut join = Vec::new();
    if plan.room_join {
        shared.wire.event(&mut join, "join-room", format_args!(r#"{{"roomId":"{session_id}"}}"#), 1);
    } else {
        shared.wire.event(&mut join, "join-live-session", format_args!(r#"{{"sessionId":"{session_id}"}}"#), 1);
    }
    if let Err(err) = conn.send_text(&join).await {
        return fail(shared, format!("socket {}: join not sent: {err}", plan.index));
    }
    let answer = tokio::time::timeout(Duration::from_secs(60), join_ack(&mut conn, shared.wire)).await;
    match answer {
        Ok(Ok(())) => {
            let _ = stats::lock(&shared.join_hist).record(now_micros().saturating_sub(join_started).max(1));
            shared.members[*slot].fetch_add(1, Ordering::Relaxed);
            shared.joined.fetch_add(1, Ordering::Relaxed);
            Some(conn)
        }
        Ok(Err(err)) => fail(shared, format!("socket {}: join: {err}", plan.index)),
        Err(_) => fail(shared, format!("socket {}: no join ack within 60 s", plan.index)),
    }
}

fn fail(shared: &Shared, message: String) -> Option<WsConn> {
    shared.failed.fetch_add(1, Ordering::Relaxed);
    shared.error(message);
    None
}

/// Reads until the ack of the join (id 1).
async fn join_ack(conn: &mut WsConn, wire: Wire) -> Result<(), String> {
    let (answer, ok): (&[u8], &[u8]) = match wire {
        Wire::Native => (br#"{"ack":1,"#, br#"{"ack":1,"ok":true"#),
        Wire::SocketIo => (b"431[", br#"431[{"ok":true"#),
    };
    await_text(conn, wire, |text| {
        text.starts_with(answer).then(|| {
            if text.starts_with(ok) {
                Ok(())
            } else {
                Err(String::from_utf8_lossy(&text[..text.len().min(300)]).into_owned())
            }
        })
    })
    .await
}

/// Reads until `accept` decides on a text frame, answering pings (Engine.IO's
/// too); the other frames are counted.
async fn await_text(
    conn: &mut WsConn,
    wire: Wire,
    mut accept: impl FnMut(&[u8]) -> Option<Result<(), String>>,
) -> Result<(), String> {
    let mut outcome: Option<Result<(), String>> = None;
    // (WebSocket pings to answer, Engine.IO pings to answer)
    let mut owed: (Vec<Vec<u8>>, usize) = (Vec::new(), 0);
    let mut handle = |frame: Frame<'_>, outcome: &mut Option<Result<(), String>>, owed: &mut (Vec<Vec<u8>>, usize)| {
        match frame {
            _ if outcome.is_some() => {}
            Frame::Text(b"2") if wire == Wire::SocketIo => owed.1 += 1,
            Frame::Text(payload) => match accept(payload) {
                Some(decided) => *outcome = Some(decided),
                None => with_tally(|tally| tally.other_frames += 1),
            },
            Frame::Ping(payload) => owed.0.push(payload.to_vec()),
            Frame::Close(code) => *outcome = Some(Err(format!("closed by the server ({code:?})"))),
            Frame::Other => {}
        }
    };
    conn.drain_buffered(&mut |frame| handle(frame, &mut outcome, &mut owed)).map_err(|err| err.to_string())?;
    loop {
        if let Some(result) = outcome.take() {
            return result;
        }
        conn.stream.readable().await.map_err(|err| err.to_string())?;
        let read =
            conn.read_ready(&mut |frame| handle(frame, &mut outcome, &mut owed)).map_err(|err| err.to_string())?;
        for payload in owed.0.drain(..) {
            conn.pong(&payload).await.map_err(|err| err.to_string())?;
        }
        for _ in 0..std::mem::take(&mut owed.1) {
            conn.send_text(b"3").await.map_err(|err| err.to_string())?;
        }
        if let ReadOutcome::Eof = read {
            return outcome.take().unwrap_or_else(|| Err("closed by the server".into()));
        }
    }
}

// ---------------------------------------------------------------- idle

/// Opens `connections` idle sockets (over several processes when this one's
/// descriptor limit is too small), holds them, and reports the server's
/// memory per socket.
async fn idle(args: &Args, target: &Target) -> Result<(), String> {
    let tokens = match &args.tokens {
        Some(_) => load_tokens(args, target, 1, 1).await?,
        None => return Err("idle needs --tokens (classroom seed-load --users N --out tokens.json)".into()),
    };
    let count = args.connections.unwrap_or(19_000);
    let own_limit = server::own_fd_limit().unwrap_or(1024) as usize;
    let per_proc_max = own_limit.saturating_sub(200).max(100);
    let procs = args.procs.unwrap_or_else(|| count.div_ceil(per_proc_max)).max(1);
    let per_user = count.div_ceil(tokens.users.len());
    if !args.quiet {
        eprintln!(
            "idle: {count} sockets over {procs} process(es), {} user(s), up to {per_user} socket(s) per user \
             (the server needs MAX_CONNECTIONS_PER_USER >= {per_user})",
            tokens.users.len()
        );
    }
    let before = server::snapshot(target, args.server_pid).await;
    let started = Instant::now();
    let exe = std::env::current_exe().map_err(|err| format!("cannot find my own binary: {err}"))?;
    let mut children = Vec::new();
    let share = count.div_ceil(procs);
    let sources_total = sources(args, count).len();
    for p in 0..procs {
        let offset = p * share;
        let this = share.min(count.saturating_sub(offset));
        if this == 0 {
            break;
        }
        let mut command = std::process::Command::new(&exe);
        command
            .arg("idle-worker")
            .args(["--url", &args.url])
            .args(["--tokens", args.tokens.as_deref().unwrap_or_default()])
            .args(["--offset", &offset.to_string(), "--count", &this.to_string()])
            .args(["--connect-concurrency", &args.connect_concurrency.to_string()])
            .args(["--source-ips", &sources_total.to_string()])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit());
        let mut child = command.spawn().map_err(|err| format!("cannot start a harness process: {err}"))?;
        let stdout = child.stdout.take().ok_or("no stdout of the child")?;
        children.push((child, std::io::BufReader::new(stdout)));
    }
    // Each child prints one line `ready CONNECTED FAILED CONNECT_P50_MS CONNECT_P99_MS` when done.
    let mut connected = 0usize;
    let mut failed = 0usize;
    let mut connect_p99: f64 = 0.0;
    let mut readers = Vec::new();
    for (child, mut reader) in children {
        let handle = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            (child, line)
        });
        readers.push(handle);
    }
    let mut kept = Vec::new();
    for handle in readers {
        let (child, line) = handle.await.map_err(|err| err.to_string())?;
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.first() == Some(&"ready") {
            connected += fields.get(1).and_then(|v| v.parse::<usize>().ok()).unwrap_or(0);
            failed += fields.get(2).and_then(|v| v.parse::<usize>().ok()).unwrap_or(0);
            connect_p99 = connect_p99.max(fields.get(4).and_then(|v| v.parse().ok()).unwrap_or(0.0));
        } else {
            eprintln!("a harness process ended early: {line:?}");
        }
        kept.push(child);
    }
    let setup_secs = started.elapsed().as_secs_f64();
    if !args.quiet {
        eprintln!("idle: {connected} connected, {failed} failed in {setup_secs:.1} s; holding {} s", args.hold);
    }
    tokio::time::sleep(Duration::from_secs(args.hold)).await;
    let during = server::snapshot(target, args.server_pid).await;
    // Close: ending the children's stdin tells them to close their sockets.
    for child in &mut kept {
        drop(child.stdin.take());
    }
    for mut child in kept {
        let _ = tokio::task::spawn_blocking(move || child.wait()).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = server::snapshot(target, args.server_pid).await;
    let per_conn = match (before.rss_bytes, during.rss_bytes) {
        (Some(b), Some(d)) if connected > 0 => Some(d.saturating_sub(b) as f64 / connected as f64),
        _ => None,
    };
    let report = json!({
        "scenario": "Idle",
        "url": args.url,
        "processes": procs,
        "socketsWanted": count,
        "connected": connected,
        "failed": failed,
        "setupSeconds": round(setup_secs, 2),
        "connectP99Ms": round(connect_p99, 2),
        "serverWsConnections": during.ws_connections,
        "serverRssBeforeBytes": before.rss_bytes,
        "serverRssHeldBytes": during.rss_bytes,
        "serverRssAfterCloseBytes": after.rss_bytes,
        "bytesPerIdleConnection": per_conn.map(|b| round(b, 0)),
        "kibPerIdleConnection": per_conn.map(|b| round(b / 1024.0, 2)),
    });
    print_report(args, &report);
    Ok(())
}

/// One process of an idle run: opens its share, says `ready`, holds until stdin closes.
async fn idle_worker(args: &Args, target: &Target) -> Result<(), String> {
    let tokens = load_tokens(args, target, 1, 1).await?;
    let sources: Vec<IpAddr> = sources(args, args.count);
    let plans: Vec<Plan> = (args.offset..args.offset + args.count)
        .map(|index| Plan {
            index,
            token: tokens.users[index % tokens.users.len()].token.clone(),
            session: None,
            room_join: false,
            source: source_for(&sources, index),
        })
        .collect();
    let quiet = Args { quiet: true, ..args.clone() };
    let room = Room::open_plans(&quiet, target, plans, 0).await?;
    let connect = stats::lock(&room.shared.connect_hist).clone();
    let [p50, _, p99, _] = percentiles_ms(&connect);
    println!(
        "ready {} {} {:.2} {:.2}",
        room.shared.connected.load(Ordering::Relaxed),
        room.shared.failed.load(Ordering::Relaxed),
        p50,
        p99
    );
    let _ = std::io::stdout().flush();
    // Hold until the parent closes our stdin (or an hour passes: every run is bounded).
    let _ = tokio::time::timeout(
        Duration::from_secs(3600),
        tokio::task::spawn_blocking(|| {
            let mut sink = String::new();
            while std::io::stdin().read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {}
        }),
    )
    .await;
    room.close().await;
    Ok(())
}

// ---------------------------------------------------------------- soak

/// Churn for --duration seconds: every user joins, chats at --rate for
/// --cycle seconds, closes, and comes back; the server's memory is sampled
/// after every cycle, and at the end the server must be back to no sockets.
async fn soak(args: &Args, target: &Target) -> Result<(), String> {
    let sessions = args.sessions.unwrap_or(10);
    let per_session = args.users_per_session.unwrap_or(100);
    let rate = args.rate.unwrap_or(0.1);
    let tokens = load_tokens(args, target, sessions * per_session, sessions).await?;
    let shape = Shape { sessions, per_session, rate };
    let started = Instant::now();
    let mut cycles = Vec::new();
    let mut cycle = 0u32;
    while started.elapsed() < Duration::from_secs(args.duration) {
        cycle += 1;
        let quiet = Args { quiet: true, ..args.clone() };
        let room = Room::open(&quiet, target, &tokens, &shape).await?;
        let result = room.measure(cycle, rate, args.cycle, args.drain, true).await;
        let joined = room.shared.joined.load(Ordering::Relaxed);
        room.close().await;
        // Let the server notice the closes before sampling.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let snap = server::snapshot(target, args.server_pid).await;
        let [_, _, p99, _] = percentiles_ms(&result.tally.e2e);
        if !args.quiet {
            progress(&format!(
                "soak cycle {cycle} ({:.0} s): {joined} joined, {} delivered, loss {}, p99 {p99:.2} ms, server RSS {:.1} MiB, sockets {:?}",
                started.elapsed().as_secs_f64(),
                result.tally.received,
                result.loss(),
                snap.rss_bytes.unwrap_or(0) as f64 / 1048576.0,
                snap.ws_connections
            ));
            eprintln!();
        }
        cycles.push(json!({
            "cycle": cycle,
            "atSeconds": round(started.elapsed().as_secs_f64(), 1),
            "joined": joined,
            "delivered": result.tally.received,
            "loss": result.loss(),
            "latencyP99Ms": round(p99, 3),
            "ackErrors": result.tally.acks_err,
            "serverRssBytes": snap.rss_bytes,
            "serverWsConnectionsAfterClose": snap.ws_connections,
        }));
    }
    // Room actors stop 60 s after their last member left; presence lingers 60 s.
    if !args.quiet {
        eprintln!("soak: waiting 75 s for idle room and presence actors to stop...");
    }
    tokio::time::sleep(Duration::from_secs(75)).await;
    let metrics = target.get_text("/metrics").await.unwrap_or_default();
    let actors: Vec<String> = metrics
        .lines()
        .filter(|line| line.starts_with("classroom_actors{") || line.starts_with("classroom_ws_connections "))
        .map(String::from)
        .collect();
    let end = server::snapshot(target, args.server_pid).await;
    let report = json!({
        "scenario": "Soak",
        "url": args.url,
        "sessions": sessions,
        "usersPerSession": per_session,
        "ratePerUser": rate,
        "cycleSeconds": args.cycle,
        "durationSeconds": round(started.elapsed().as_secs_f64(), 0),
        "cycles": cycles,
        "serverRssEndBytes": end.rss_bytes,
        "serverGaugesAtEnd": actors,
    });
    print_report(args, &report);
    Ok(())
}

// ---------------------------------------------------------------- report

fn print_report(args: &Args, report: &Value) {
    if !args.quiet {
        eprintln!();
    }
    let pretty = serde_json::to_string_pretty(report).unwrap_or_default();
    if let Some(path) = &args.json_out {
        if let Err(err) = std::fs::write(path, &pretty) {
            eprintln!("cannot write {path}: {err}");
        }
    }
    if args.json {
        println!("{pretty}");
        return;
    }
    let mut out = String::new();
    let _ = writeln!(out, "scenario {}  ({})", report["scenario"].as_str().unwrap_or("?"), args.url);
    if let Some(steps) = report["steps"].as_array() {
        step_table(&mut out, report, steps);
        for section in ["studyGroups", "restSetup"] {
            if report[section].is_object() {
                table(&mut out, section, &report[section]);
            }
        }
    } else {
        table(&mut out, "", report);
    }
    println!("{out}");
}

/// The people's view of a run with measured steps: one line of set-up, one row per step.
fn step_table(out: &mut String, report: &Value, steps: &[Value]) {
    let setup = &report["setup"];
    let num = |v: &Value| v.as_f64().map(|f| format!("{f}")).unwrap_or_else(|| "-".into());
    let _ = writeln!(
        out,
        "{} {} x {} {}; set-up: {} sockets, {} joined, {} failed in {} s; connect p50/p99 {}/{} ms; join p50/p99 {}/{} ms",
        num(&report["sessions"]),
        if report["groups"].is_null() { "session(s)" } else { "group(s)" },
        num(&report["usersPerSession"]),
        if report["groups"].is_null() { "users" } else { "members" },
        num(&setup["sockets"]),
        num(&setup["joined"]),
        num(&setup["failed"]),
        num(&setup["seconds"]),
        num(&setup["connectMs"]["p50"]),
        num(&setup["connectMs"]["p99"]),
        num(&setup["joinMs"]["p50"]),
        num(&setup["joinMs"]["p99"]),
    );
    let _ = writeln!(
        out,
        "{:>4} {:>9} {:>8} {:>9} {:>10} {:>10} {:>6} | {:>7} {:>7} {:>7} {:>8} | {:>7} {:>7} {:>8} {:>7} | {:>8} {:>6} {:>8}",
        "step", "msg/s/usr", "msg/s", "deliv/s", "expected", "received", "loss", "p50 ms", "p90 ms", "p99 ms", "max ms",
        "ack p50", "ack p99", "ack max", "ack err", "CPU us/d", "CPU %", "RSS MiB"
    );
    for step in steps {
        let rss =
            step["serverRssBytes"].as_f64().map(|b| format!("{:.1}", b / 1048576.0)).unwrap_or_else(|| "-".into());
        let _ = writeln!(
            out,
            "{:>4} {:>9} {:>8} {:>9} {:>10} {:>10} {:>6} | {:>7} {:>7} {:>7} {:>8} | {:>7} {:>7} {:>8} {:>7} | {:>8} {:>6} {:>8}",
            num(&step["step"]),
            num(&step["ratePerUser"]),
            num(&step["messagesPerSecond"]),
            num(&step["deliveriesPerSecond"]),
            num(&step["deliveriesExpected"]),
            num(&step["deliveriesReceived"]),
            num(&step["loss"]),
            num(&step["latencyMs"]["p50"]),
            num(&step["latencyMs"]["p90"]),
            num(&step["latencyMs"]["p99"]),
            num(&step["latencyMs"]["max"]),
            num(&step["ackMs"]["p50"]),
            num(&step["ackMs"]["p99"]),
            num(&step["ackMs"]["max"]),
            num(&step["ackErrors"]),
            num(&step["serverCpuMicrosPerDelivery"]),
            num(&step["serverCpuPercent"]),
            rss,
        );
        if let Some(samples) = step["ackErrorSamples"].as_array().filter(|s| !s.is_empty()) {
            let _ = writeln!(out, "     ack errors, e.g. {}", samples[0]);
        }
        if step["socketsDropped"].as_u64().unwrap_or(0) > 0 {
            let _ = writeln!(
                out,
                "     {} socket(s) closed by the server, codes {}",
                step["socketsDropped"], step["closeCodes"]
            );
        }
    }
    if let Some(errors) = setup["errors"].as_array().filter(|e| !e.is_empty()) {
        let _ = writeln!(out, "set-up errors, e.g. {}", errors[0]);
    }
    if !report["maxPassing"].is_null() {
        let best = &report["maxPassing"];
        let _ = writeln!(
            out,
            "highest passing step: {} deliveries/s at p99 {} ms, {} us server CPU per delivery",
            num(&best["deliveriesPerSecond"]),
            num(&best["latencyMs"]["p99"]),
            num(&best["serverCpuMicrosPerDelivery"])
        );
    }
}

/// Flattens a JSON report into `key  value` lines, nested keys joined with dots.
fn table(out: &mut String, prefix: &str, value: &Value) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                let name = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
                table(out, &name, inner);
            }
        }
        Value::Array(items) if items.iter().any(|v| v.is_object()) => {
            for (i, inner) in items.iter().enumerate() {
                table(out, &format!("{prefix}[{i}]"), inner);
            }
        }
        other => {
            let text = match other {
                Value::Number(n) => {
                    let f = n.as_f64().unwrap_or(0.0);
                    if prefix.ends_with("Bytes") && f > 1e6 {
                        format!("{n}  ({:.1} MiB)", f / 1048576.0)
                    } else {
                        n.to_string()
                    }
                }
                Value::String(s) => s.clone(),
                Value::Null => "-".into(),
                v => v.to_string(),
            };
            let _ = writeln!(out, "  {prefix:<44} {text}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_parse_out_of_frames() {
        let frame = br#"{"event":"new-message","data":{"message":{"message":"~lg~3~123456~ xx"}}}"#;
        assert_eq!(marker(frame), Some((3, 123456)));
        assert_eq!(marker(b"{}"), None);
        assert_eq!(leading_number(b"42,"), 42);
    }

    #[test]
    fn frames_are_counted_by_step() {
        let mut tally = stats::collect(false);
        let mut pending = std::collections::VecDeque::new();
        on_text(Wire::Native, br#"{"event":"new-message","data":"~lg~2~10~"}"#, 30, 2, &mut tally, &mut pending);
        on_text(Wire::Native, br#"{"event":"new-message","data":"~lg~1~10~"}"#, 30, 2, &mut tally, &mut pending);
        assert_eq!((tally.received, tally.late), (1, 1));
        pending.push_back((5, 10, 2, 100));
        pending.push_back((6, 11, 2, 100));
        tally.expected = 200;
        on_text(Wire::Native, br#"{"ack":5,"ok":true,"data":{}}"#, 50, 2, &mut tally, &mut pending);
        on_text(Wire::Native, br#"{"ack":6,"ok":false,"error":{}}"#, 50, 2, &mut tally, &mut pending);
        assert_eq!((tally.acks_ok, tally.acks_err, tally.expected), (1, 1, 100));
        assert!(pending.is_empty());
    }

    #[test]
    fn socket_io_packets_are_counted_as_our_frames_are() {
        let mut tally = stats::collect(false);
        let mut pending = std::collections::VecDeque::new();
        let wire = Wire::SocketIo;
        on_text(wire, br#"42["new-message",{"message":{"message":"~lg~2~10~"}}]"#, 30, 2, &mut tally, &mut pending);
        pending.push_back((5, 10, 2, 100));
        pending.push_back((16, 11, 2, 100));
        tally.expected = 200;
        on_text(wire, br#"435[{"ok":true,"data":{}}]"#, 50, 2, &mut tally, &mut pending);
        on_text(wire, br#"4316[{"ok":false,"error":{}}]"#, 50, 2, &mut tally, &mut pending);
        assert_eq!((tally.received, tally.acks_ok, tally.acks_err, tally.expected), (1, 1, 1, 100));

        let mut frame = Vec::new();
        wire.event(&mut frame, "session-message", format_args!(r#"{{"sessionId":"s"}}"#), 7);
        assert_eq!(frame, br#"427["session-message",{"sessionId":"s"}]"#);
        frame.clear();
        Wire::Native.event(&mut frame, "join-room", format_args!(r#"{{"roomId":"r"}}"#), 1);
        assert_eq!(frame, br#"{"event":"join-room","data":{"roomId":"r"},"ack":1}"#);
    }
}
