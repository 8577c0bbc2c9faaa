//! `study-groups`: many small study-group rooms, with members reconnecting.
//!
//! Set-up through REST with the seeded tokens: each group's first member
//! creates it (`POST /api/study-groups`, public), the others join
//! (`POST /api/study-groups/:id/join`), at most `--setup-concurrency`
//! requests in flight. Then every member opens one socket, `join-room`s the
//! group's chat room (the shared `open`) and sends `room-message` frames
//! (ack id, `clientMsgId`) at `--rate`, the send time in the text as in the
//! other scenarios (the `~lg~` marker), so delivery and ack latency land in
//! the same tallies and the coordinator's `Room::warm_up`/`measure` drive it.
//!
//! During the measured window `--reconnect-share` of the members drop their
//! socket once, at a random moment (no close frame: as a network that went
//! away), stay away `--reconnect-pause-ms`, open a new socket, `join-room`
//! with `sinceMessageId` (the last message they saw, in room order), take
//! the ack's `missedMessages`, and resend what was sent but not acked with
//! the same `clientMsgId` (the server must answer with the original).
//!
//! Every member's logical client keeps the ids it saw, across its sockets.
//! At the end (after the drain) every message acked to its sender must have
//! been seen by every member of its group (else: lost), and no member may
//! have seen an id twice (duplicate) or one `clientMsgId` under two ids
//! (stored twice).

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::{watch, Semaphore};

use crate::http::{Target, Tokens};
use crate::stats::{self, now_micros, percentiles_ms, with_tally, Tally};
use crate::ws::{self, Frame, ReadOutcome, WsConn};
use crate::{
    check_fd_limit, dial, leading_number, load_tokens, marker, open, print_report, progress, round, schedule_first,
    schedule_next, server, source_for, sources, Args, Control, FmtVec, Plan, Room, Shared,
};

/// A group as the set-up made it.
struct Group {
    id: String,
    room_id: String,
    /// Its creator (the admin), who archives it at the end.
    creator_token: String,
}

/// One member's socket plan and its place in the run.
struct Member {
    plan: Plan,
    group: usize,
    room_id: String,
    /// `clientMsgId` prefix: `lg<run>-<index>`.
    client_id: String,
    /// When to drop the socket, as a share of the measured window (None: stays).
    reconnect_at: Option<f64>,
    /// Drop the socket right after writing a message (before its ack), not at any moment.
    drop_after_send: bool,
    /// How long to stay away.
    pause: Duration,
}

/// What every member task shares besides `Shared`.
struct GroupRun {
    /// The measured window, for the reconnect moments.
    window: Duration,
    outcomes: Mutex<Vec<Outcome>>,
    /// From dropping the socket to the ack of the new join, microseconds.
    reconnect_hist: Mutex<Histogram<u64>>,
}

/// What one member's logical client saw and did, over all its sockets.
#[derive(Default)]
struct Outcome {
    group: usize,
    /// The first join worked (members that never joined are not expected to see anything).
    joined: bool,
    /// Message ids seen (pushes and catch-up).
    seen: HashSet<u128>,
    /// `clientMsgId` (sender index, sequence) -> the id it was seen under.
    by_client_id: HashMap<u64, u128>,
    /// Own messages acked ok: (id, step).
    acked: Vec<(u128, u32)>,
    /// An id seen a second time.
    duplicates: u64,
    /// One `clientMsgId` seen under a second id (a resend stored twice).
    stored_twice: u64,
    /// Messages first seen in a join ack's `missedMessages`.
    caught_up: u64,
    reconnects: u64,
    /// Of those, dropped right after a send.
    reconnects_after_send: u64,
    reconnect_failures: u64,
    /// A planned reconnect not done: no message seen yet when the window ended.
    reconnects_skipped: u64,
    /// Sent, not acked on the socket that was dropped, sent again after the rejoin.
    resent: u64,
    resent_acked: u64,
    /// Resends answered with a message carrying the resend's own text: the
    /// server never got (or dropped) the first send.
    resent_stored_new: u64,
    /// Sent and never acked by the end.
    unacked: u64,
    /// Ack errors of any step (the tally counts the measured step's).
    ack_errors: u64,
    /// `message-deleted` frames (a message taken back).
    taken_back: u64,
    /// Text frames of the measured window by event (acks under "ack").
    frames: Vec<(String, u64)>,
}

impl Outcome {
    fn count_frame(&mut self, event: &str) {
        match self.frames.iter_mut().find(|(name, _)| name == event) {
            Some((_, n)) => *n += 1,
            None => self.frames.push((event.to_string(), 1)),
        }
    }
}

/// A message sent and not acked yet.
#[derive(Clone, Copy)]
struct Pending {
    ack: u64,
    sent_at: u64,
    step: u32,
    room_size: u64,
    seq: u64,
    resend: bool,
}

#[derive(Deserialize)]
struct PushFrame {
    data: PushData,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PushData {
    room_id: String,
    message: WireMessage,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireMessage {
    id: String,
    #[serde(default)]
    client_msg_id: Option<String>,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
struct MessageAck {
    data: MessageOnly,
}

#[derive(Deserialize)]
struct MessageOnly {
    message: WireMessage,
}

#[derive(Deserialize)]
struct JoinAck {
    data: JoinAckData,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JoinAckData {
    #[serde(default)]
    missed_messages: Vec<WireMessage>,
}

fn uuid_key(id: &str) -> Option<u128> {
    uuid::Uuid::parse_str(id).ok().map(|u| u.as_u128())
}

/// `lg<run>-<member index>-<sequence>`, the harness's `clientMsgId`, as one
/// number (member and sequence: the run is the same for all). The run tag
/// keeps two runs on the same rooms apart: the server answers a
/// `clientMsgId` it stored before with the original message.
fn client_key(client_msg_id: &str) -> Option<u64> {
    let mut parts = client_msg_id.strip_prefix("lg")?.rsplitn(3, '-');
    let seq = parts.next()?.parse::<u64>().ok()?;
    let index = parts.next()?.parse::<u64>().ok()?;
    parts.next()?;
    Some((index << 32) | seq)
}

/// The event name of a server frame `{"event":"NAME",...}`.
fn event_name(payload: &[u8]) -> &str {
    const EVENT: &[u8] = br#"{"event":""#;
    let Some(rest) = payload.strip_prefix(EVENT) else { return "?" };
    let end = rest.iter().take(64).position(|&b| b == b'"').unwrap_or(0);
    std::str::from_utf8(&rest[..end]).unwrap_or("?")
}

/// A small deterministic generator (splitmix64) for who reconnects and when.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn run_tag() -> u64 {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
    nanos ^ u64::from(std::process::id()) << 32
}

pub async fn run(args: &Args, target: &Target) -> Result<(), String> {
    let (groups, size) = (args.groups, args.group_size);
    if groups == 0 || size < 2 {
        return Err("study-groups needs --groups >= 1 and --group-size >= 2".into());
    }
    if !(0.0..=1.0).contains(&args.reconnect_share) {
        return Err("--reconnect-share is a share: 0 to 1".into());
    }
    let rate = args.rate.unwrap_or(0.1);
    let count = groups * size;
    check_fd_limit(count + args.setup_concurrency)?;
    let tokens = load_tokens(args, target, count, 0).await?;
    let (made, rest_report) = create_groups(args, target, &tokens, groups, size).await?;

    // Who reconnects (exactly the share, rounded), when, and for how long.
    let tag = run_tag();
    let mut rng = SplitMix(tag);
    let mut order: Vec<usize> = (0..count).collect();
    for i in (1..count).rev() {
        order.swap(i, (rng.next() % (i as u64 + 1)) as usize);
    }
    let planned = (args.reconnect_share * count as f64).round() as usize;
    let mut reconnect_at = vec![None; count];
    let mut drop_after_send = vec![false; count];
    for (n, &index) in order.iter().take(planned).enumerate() {
        // Inside the window, leaving time to come back and catch up before it ends.
        reconnect_at[index] = Some(0.05 + 0.75 * rng.unit());
        // Half of them with a message of theirs in flight: it must be resent, and stored once.
        drop_after_send[index] = n % 2 == 1;
    }
    let sources = sources(args, count);
    let mut members = Vec::with_capacity(count);
    for (group, made) in made.iter().enumerate() {
        for slot in 0..size {
            let index = group * size + slot;
            let pause = Duration::from_secs_f64(args.reconnect_pause_ms as f64 / 1000.0 * (0.5 + rng.unit()));
            members.push(Member {
                plan: Plan {
                    index,
                    token: tokens.users[index].token.clone(),
                    session: Some((made.room_id.clone(), group)),
                    room_join: true,
                    source: source_for(&sources, index),
                },
                group,
                room_id: made.room_id.clone(),
                client_id: format!("lg{:08x}-{index}", tag as u32),
                reconnect_at: reconnect_at[index],
                drop_after_send: drop_after_send[index],
                pause,
            });
        }
    }
    let state = Arc::new(GroupRun {
        window: Duration::from_secs(args.duration),
        outcomes: Mutex::new(Vec::with_capacity(count)),
        reconnect_hist: Mutex::new(stats::histogram()),
    });
    let room = Room::start(args, target, count, groups, |shared, watcher| {
        members
            .into_iter()
            .map(|m| tokio::spawn(member(Arc::clone(shared), Arc::clone(&state), m, watcher.clone())))
            .collect()
    })
    .await?;
    let mut report = json!({
        "scenario": "StudyGroups",
        "url": args.url,
        "sessions": groups,
        "usersPerSession": size,
        "groups": groups,
        "groupSize": size,
        "harnessThreads": args.threads,
        "setup": room.setup_report(),
        "restSetup": rest_report,
    });
    if args.warmup > 0 {
        room.warm_up(rate, args.warmup, args.quiet).await;
    }
    let result = room.measure(1, rate, args.duration, args.drain, args.quiet).await;
    let end = server::snapshot(target, args.server_pid).await;
    room.close().await;
    let outcomes = std::mem::take(&mut *stats::lock(&state.outcomes));
    let reconnect_hist = stats::lock(&state.reconnect_hist).clone();
    let mut summary = summarize(&outcomes, groups, planned, &reconnect_hist);
    if let (Some(cpu), Some(acked)) = (result.server_cpu(), summary["messagesAckedMeasured"].as_u64()) {
        summary["serverCpuMicrosPerMessage"] = round(cpu * 1e6 / acked.max(1) as f64, 2);
    }
    summary["ratePerMember"] = json!(rate);
    if !args.keep_groups {
        summary["archived"] = archive(args, target, &made).await;
    }
    report["steps"] = json!([result.to_json()]);
    report["studyGroups"] = summary;
    report["serverAfter"] = json!({ "rssBytes": end.rss_bytes, "wsConnections": end.ws_connections });
    print_report(args, &report);
    Ok(())
}

/// Creates the groups and fills them through REST, `--setup-concurrency` requests at a time.
async fn create_groups(
    args: &Args,
    target: &Target,
    tokens: &Tokens,
    groups: usize,
    size: usize,
) -> Result<(Vec<Group>, Value), String> {
    let gate = Arc::new(Semaphore::new(args.setup_concurrency.max(1)));
    let create_hist = Arc::new(Mutex::new(stats::histogram()));
    let join_hist = Arc::new(Mutex::new(stats::histogram()));
    let (created, joined) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let tag = format!("{:08x}", run_tag() as u32);
    let started = Instant::now();
    if !args.quiet {
        eprintln!(
            "creating {groups} study groups of {size} through REST ({} requests in flight)...",
            args.setup_concurrency
        );
    }
    let mut handles = Vec::with_capacity(groups);
    for group in 0..groups {
        let people: Vec<String> =
            tokens.users[group * size..(group + 1) * size].iter().map(|u| u.token.clone()).collect();
        let (target, gate) = (target.clone(), Arc::clone(&gate));
        let (create_hist, join_hist) = (Arc::clone(&create_hist), Arc::clone(&join_hist));
        let (created, joined) = (Arc::clone(&created), Arc::clone(&joined));
        let body =
            json!({ "name": format!("loadgen {tag} #{group}"), "visibility": "public", "maxMembers": size.max(2) });
        handles.push(tokio::spawn(async move {
            let timed = |hist: &Mutex<Histogram<u64>>, from: u64| {
                let _ = stats::lock(hist).record(now_micros().saturating_sub(from).max(1));
            };
            let value = {
                let _permit = gate.acquire().await.map_err(|err| err.to_string())?;
                let from = now_micros();
                let value = target.expect(201, "POST", "/api/study-groups", Some(&people[0]), Some(&body)).await;
                timed(&create_hist, from);
                value?
            };
            created.fetch_add(1, Ordering::Relaxed);
            let id = value["id"].as_str().ok_or_else(|| format!("created group without id: {value}"))?.to_string();
            let room_id = value["chatRoomId"]
                .as_str()
                .ok_or_else(|| format!("created group without chatRoomId: {value}"))?
                .to_string();
            let path = format!("/api/study-groups/{id}/join");
            for token in &people[1..] {
                let _permit = gate.acquire().await.map_err(|err| err.to_string())?;
                let from = now_micros();
                let answer = target.expect(200, "POST", &path, Some(token), Some(&json!({}))).await;
                timed(&join_hist, from);
                answer?;
                joined.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<_, String>(Group { id, room_id, creator_token: people[0].clone() })
        }));
    }
    let done = Arc::new(AtomicBool::new(false));
    let ticker = (!args.quiet).then(|| {
        let (created, joined, done) = (Arc::clone(&created), Arc::clone(&joined), Arc::clone(&done));
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                progress(&format!(
                    "set-up (REST): {} of {groups} groups created, {} of {} joins",
                    created.load(Ordering::Relaxed),
                    joined.load(Ordering::Relaxed),
                    groups * (size - 1)
                ));
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    });
    let mut made = Vec::with_capacity(groups);
    let mut errors = Vec::new();
    let mut failed = 0usize;
    for handle in handles {
        match handle.await {
            Ok(Ok(group)) => made.push(group),
            Ok(Err(err)) => {
                failed += 1;
                if errors.len() < 5 {
                    errors.push(err);
                }
            }
            Err(err) => {
                failed += 1;
                errors.push(format!("set-up task: {err}"));
            }
        }
    }
    done.store(true, Ordering::Relaxed);
    if let Some(ticker) = ticker {
        let _ = ticker.await;
    }
    let seconds = started.elapsed().as_secs_f64();
    if failed > 0 {
        return Err(format!("the REST set-up failed for {failed} of {groups} groups; first errors: {errors:#?}"));
    }
    let ms = |hist: &Mutex<Histogram<u64>>| {
        let [p50, p90, p99, max] = percentiles_ms(&stats::lock(hist));
        json!({ "p50": round(p50, 2), "p90": round(p90, 2), "p99": round(p99, 2), "max": round(max, 2) })
    };
    let report = json!({
        "seconds": round(seconds, 2),
        "requests": groups * size,
        "requestsInFlight": args.setup_concurrency,
        "createMs": ms(&create_hist),
        "joinMs": ms(&join_hist),
    });
    if !args.quiet {
        eprintln!("\rset-up (REST): {groups} groups of {size} in {seconds:.1} s{:60}", "");
    }
    Ok((made, report))
}

/// Every creator archives their group (`DELETE /api/study-groups/:id`), so
/// runs on one database do not pile up active groups (presence watches
/// their members).
async fn archive(args: &Args, target: &Target, groups: &[Group]) -> Value {
    let gate = Arc::new(Semaphore::new(args.setup_concurrency.max(1)));
    let handles: Vec<_> = groups
        .iter()
        .map(|group| {
            let (target, gate) = (target.clone(), Arc::clone(&gate));
            let (path, token) = (format!("/api/study-groups/{}", group.id), group.creator_token.clone());
            tokio::spawn(async move {
                let _permit = gate.acquire().await.map_err(|err| err.to_string())?;
                target.expect(204, "DELETE", &path, Some(&token), None).await.map(|_| ())
            })
        })
        .collect();
    let (mut ok, mut errors) = (0usize, Vec::new());
    for handle in handles {
        match handle.await {
            Ok(Ok(())) => ok += 1,
            Ok(Err(err)) if errors.len() < 5 => errors.push(err),
            _ => {}
        }
    }
    json!({ "groups": ok, "failed": groups.len() - ok, "errors": errors })
}

/// Counts over every member's outcome: loss, duplicates, reconnects.
fn summarize(outcomes: &[Outcome], groups: usize, planned: usize, reconnect_hist: &Histogram<u64>) -> Value {
    let mut by_group: Vec<Vec<&Outcome>> = (0..groups).map(|_| Vec::new()).collect();
    for outcome in outcomes.iter().filter(|o| o.joined) {
        by_group[outcome.group].push(outcome);
    }
    let (mut acked_all, mut acked_measured) = (0u64, 0u64);
    let (mut lost_deliveries, mut lost_measured, mut lost_messages) = (0u64, 0u64, 0u64);
    let mut seen_not_acked = 0u64;
    let mut lost_samples = Vec::new();
    for (group, members) in by_group.iter().enumerate() {
        let mut acked: HashSet<u128> = HashSet::new();
        for member in members {
            for &(id, step) in &member.acked {
                if acked.insert(id) {
                    acked_all += 1;
                    if step != 0 {
                        acked_measured += 1;
                    }
                }
                let missing = members.iter().filter(|m| !m.seen.contains(&id)).count() as u64;
                if missing > 0 {
                    lost_deliveries += missing;
                    lost_messages += 1;
                    if step != 0 {
                        lost_measured += missing;
                    }
                    if lost_samples.len() < 5 {
                        lost_samples.push(format!(
                            "group {group}: message {} missed by {missing} member(s)",
                            uuid::Uuid::from_u128(id)
                        ));
                    }
                }
            }
        }
        let seen: HashSet<u128> = members.iter().flat_map(|m| m.seen.iter().copied()).collect();
        seen_not_acked += seen.difference(&acked).count() as u64;
    }
    let sum = |f: fn(&Outcome) -> u64| outcomes.iter().map(f).sum::<u64>();
    let mut frames: Vec<(String, u64)> = Vec::new();
    for outcome in outcomes {
        for (event, n) in &outcome.frames {
            match frames.iter_mut().find(|(name, _)| name == event) {
                Some((_, total)) => *total += n,
                None => frames.push((event.clone(), *n)),
            }
        }
    }
    frames.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    let frames: serde_json::Map<String, Value> = frames.into_iter().map(|(k, v)| (k, json!(v))).collect();
    let [r50, r90, r99, rmax] = percentiles_ms(reconnect_hist);
    json!({
        "membersJoined": outcomes.iter().filter(|o| o.joined).count(),
        "messagesAcked": acked_all,
        "messagesAckedMeasured": acked_measured,
        "lostDeliveries": lost_deliveries,
        "lostDeliveriesMeasured": lost_measured,
        "lostMessages": lost_messages,
        "lostSamples": lost_samples,
        "duplicates": sum(|o| o.duplicates),
        "storedTwice": sum(|o| o.stored_twice),
        "seenButNeverAcked": seen_not_acked,
        "reconnectsPlanned": planned,
        "reconnectsDone": sum(|o| o.reconnects),
        "reconnectsRightAfterSend": sum(|o| o.reconnects_after_send),
        "reconnectFailures": sum(|o| o.reconnect_failures),
        "reconnectsSkipped": sum(|o| o.reconnects_skipped),
        "reconnectMs": { "p50": round(r50, 2), "p90": round(r90, 2), "p99": round(r99, 2), "max": round(rmax, 2) },
        "caughtUp": sum(|o| o.caught_up),
        "resent": sum(|o| o.resent),
        "resentAcked": sum(|o| o.resent_acked),
        "resentAnsweredWithOriginal": sum(|o| o.resent_acked - o.resent_stored_new),
        "resentStoredAsNew": sum(|o| o.resent_stored_new),
        "unackedAtEnd": sum(|o| o.unacked),
        "ackErrorsAllSteps": sum(|o| o.ack_errors),
        "takenBack": sum(|o| o.taken_back),
        "framesInWindow": frames,
    })
}

/// One member: its state across sockets.
struct Client {
    room_id: String,
    out: Outcome,
    /// The last message seen, in the room's order (for `sinceMessageId`).
    last_seen: Option<String>,
    /// A `new-message` of the room came on this socket after the join was sent
    /// (then it, not the ack's last missed message, is the newest seen).
    pushed_since_join: bool,
    /// The ack id of a rejoin under way.
    join_ack: Option<u64>,
    /// Set by a rejoin's ack: note the time away, resend what was not acked.
    rejoined: bool,
    /// Joined (may send).
    joined: bool,
    /// When the socket was dropped, and how long until the rejoin's ack (microseconds).
    dropped_at: u64,
    away: u64,
    pending: VecDeque<Pending>,
    to_resend: Vec<Pending>,
    pongs: Vec<Vec<u8>>,
    closed: Option<Option<u16>>,
    reconnect_error: Option<String>,
}

impl Client {
    fn on_frame(&mut self, frame: Frame<'_>, now: u64, step: u32, tally: &mut Tally) {
        match frame {
            Frame::Text(payload) => self.on_text(payload, now, step, tally),
            Frame::Ping(payload) => self.pongs.push(payload.to_vec()),
            Frame::Close(code) => self.closed = Some(code),
            Frame::Other => {}
        }
    }

    fn on_text(&mut self, payload: &[u8], now: u64, step: u32, tally: &mut Tally) {
        const NEW_MESSAGE: &[u8] = br#"{"event":"new-message""#;
        const ACK: &[u8] = br#"{"ack":"#;
        let measuring = step != 0;
        if payload.starts_with(NEW_MESSAGE) {
            if measuring {
                self.out.count_frame("new-message");
            }
            match serde_json::from_slice::<PushFrame>(payload) {
                Ok(push) if push.data.room_id == self.room_id => {
                    self.pushed_since_join = true;
                    self.last_seen = Some(push.data.message.id.clone());
                    self.seen(&push.data.message, Some(now), step, tally);
                }
                _ => tally.other_frames += 1,
            }
        } else if payload.starts_with(ACK) {
            if measuring {
                self.out.count_frame("ack");
            }
            let id = leading_number(&payload[ACK.len()..]);
            let ok = ws::find(&payload[..payload.len().min(32)], br#""ok":true"#).is_some();
            if self.join_ack == Some(id) {
                self.on_join_ack(payload, ok, now, step, tally);
            } else if let Some(at) = self.pending.iter().position(|p| p.ack == id) {
                let sent = self.pending.remove(at).unwrap_or_else(|| unreachable!("position is in range"));
                self.on_message_ack(payload, ok, sent, now, step, tally);
            } else {
                tally.other_frames += 1;
            }
        } else {
            tally.other_frames += 1;
            let event = event_name(payload);
            if event == "message-deleted" {
                self.out.taken_back += 1;
            }
            if measuring {
                self.out.count_frame(event);
            }
        }
    }

    /// A message of the room, pushed (`live`: received now) or from a catch-up.
    fn seen(&mut self, message: &WireMessage, live: Option<u64>, step: u32, tally: &mut Tally) {
        let Some(id) = uuid_key(&message.id) else {
            tally.other_frames += 1;
            return;
        };
        if !self.out.seen.insert(id) {
            self.out.duplicates += 1;
            return;
        }
        if let Some(key) = message.client_msg_id.as_deref().and_then(client_key) {
            if let Some(earlier) = self.out.by_client_id.insert(key, id) {
                if earlier != id {
                    self.out.stored_twice += 1;
                }
            }
        }
        if live.is_none() {
            self.out.caught_up += 1;
        }
        let Some((sent_step, sent_at)) = marker(message.message.as_bytes()) else { return };
        if sent_step == step && step != 0 {
            tally.received += 1;
            if let Some(now) = live {
                let _ = tally.e2e.record(now.saturating_sub(sent_at).max(1));
            }
        } else if sent_step != 0 {
            tally.late += 1;
        }
    }

    fn on_message_ack(&mut self, payload: &[u8], ok: bool, sent: Pending, now: u64, step: u32, tally: &mut Tally) {
        let counted = sent.step != 0 && sent.step == step;
        if ok {
            let message = serde_json::from_slice::<MessageAck>(payload).ok().map(|ack| ack.data.message);
            if let Some(id) = message.as_ref().and_then(|m| uuid_key(&m.id)) {
                self.out.acked.push((id, sent.step));
            }
            if sent.resend {
                self.out.resent_acked += 1;
                if message.and_then(|m| marker(m.message.as_bytes())).is_some_and(|(_, at)| at == sent.sent_at) {
                    self.out.resent_stored_new += 1;
                }
            }
            if counted {
                tally.acks_ok += 1;
                // A resend's wait includes the time away: not an ack latency.
                if !sent.resend {
                    let _ = tally.ack.record(now.saturating_sub(sent.sent_at).max(1));
                }
            }
        } else {
            self.out.ack_errors += 1;
            if counted {
                tally.ack_error(payload);
                tally.expected = tally.expected.saturating_sub(sent.room_size);
            }
        }
    }

    fn on_join_ack(&mut self, payload: &[u8], ok: bool, now: u64, step: u32, tally: &mut Tally) {
        self.join_ack = None;
        if !ok {
            self.out.reconnect_failures += 1;
            self.reconnect_error =
                Some(format!("rejoin refused: {}", String::from_utf8_lossy(&payload[..payload.len().min(300)])));
            return;
        }
        let missed = match serde_json::from_slice::<JoinAck>(payload) {
            Ok(ack) => ack.data.missed_messages,
            Err(err) => {
                self.reconnect_error = Some(format!("rejoin ack unreadable ({err})"));
                Vec::new()
            }
        };
        for message in &missed {
            self.seen(message, None, step, tally);
        }
        if !self.pushed_since_join {
            if let Some(last) = missed.last() {
                self.last_seen = Some(last.id.clone());
            }
        }
        self.out.reconnects += 1;
        self.joined = true;
        self.rejoined = true;
        self.away = now.saturating_sub(self.dropped_at);
    }
}

/// Writes one `room-message` frame for `sent` (a resend carries the original text and `clientMsgId`).
fn message_frame(text: &mut Vec<u8>, room_id: &str, client_id: &str, sent: &Pending, padding: &str) {
    text.clear();
    let _ = write!(
        FmtVec(text),
        r#"{{"event":"room-message","data":{{"roomId":"{room_id}","message":"~lg~{}~{}~ {padding}","clientMsgId":"{client_id}-{}"}},"ack":{}}}"#,
        sent.step,
        sent.sent_at,
        sent.seq,
        sent.ack
    );
}

impl Client {
    /// A member's client before its first socket.
    fn new(room_id: String, out: Outcome) -> Self {
        Client {
            room_id,
            out,
            last_seen: None,
            pushed_since_join: false,
            join_ack: None,
            rejoined: false,
            joined: false,
            dropped_at: 0,
            away: 0,
            pending: VecDeque::new(),
            to_resend: Vec::new(),
            pongs: Vec::new(),
            closed: None,
            reconnect_error: None,
        }
    }
}

/// One member's life: join, send, maybe drop and come back, until told to stop.
async fn member(shared: Arc<Shared>, state: Arc<GroupRun>, m: Member, mut control: watch::Receiver<Control>) {
    let mut client = Client::new(m.room_id.clone(), Outcome { group: m.group, ..Outcome::default() });
    let Some(first) = open(&shared, &m.plan).await else {
        stats::lock(&state.outcomes).push(client.out);
        return;
    };
    let mut conn: Option<WsConn> = Some(first);
    shared.live_sockets.fetch_add(1, Ordering::Relaxed);
    client.out.joined = true;
    client.joined = true;
    let mut next_ack: u64 = 2;
    let mut next_seq: u64 = 1;
    let mut text = Vec::with_capacity(256);
    let mut current = *control.borrow();
    let mut next_send = schedule_first(&current, m.plan.index);
    let mut reconnect_deadline: Option<tokio::time::Instant> = None;
    let mut reconnect_planned = m.reconnect_at.is_some();
    // Whether the server ended the socket (then the member stays away: counted, not retried).
    let mut down = false;
    // The moment came for a member that drops right after its next send.
    let mut drop_armed = false;
    loop {
        let send_timer = async {
            match next_send {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let reconnect_timer = async {
            match reconnect_deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let readable = async {
            match &conn {
                Some(conn) => conn.stream.readable().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            changed = control.changed() => {
                if changed.is_err() {
                    break;
                }
                current = *control.borrow();
                if current.stop {
                    if let Some(conn) = conn.as_mut() {
                        conn.close().await;
                    }
                    break;
                }
                next_send = schedule_first(&current, m.plan.index);
                if current.step != 0 && current.rate > 0.0 && reconnect_planned {
                    // The measured window began: the moment to drop the socket.
                    reconnect_planned = false;
                    let share = m.reconnect_at.unwrap_or(0.5);
                    reconnect_deadline = Some(tokio::time::Instant::now() + state.window.mul_f64(share));
                } else if current.step != 0
                    && current.rate <= 0.0
                    && (reconnect_deadline.take().is_some() || std::mem::take(&mut drop_armed))
                {
                    client.out.reconnects_skipped += 1;
                }
            }
            ready = readable => {
                let Some(socket) = conn.as_mut() else { continue };
                if ready.is_err() {
                    client.closed = Some(None);
                } else {
                    let step = shared.step.load(Ordering::Relaxed);
                    let outcome = with_tally(|tally| {
                        let now = now_micros();
                        socket.read_ready(&mut |frame| client.on_frame(frame, now, step, tally))
                    });
                    for payload in std::mem::take(&mut client.pongs) {
                        if socket.pong(&payload).await.is_err() {
                            client.closed = Some(None);
                        }
                    }
                    match outcome {
                        Ok(ReadOutcome::Open) => {}
                        Ok(ReadOutcome::Eof) | Err(_) => client.closed = Some(client.closed.flatten()),
                    }
                }
                if client.rejoined && client.closed.is_none() {
                    // Back in the room: the time away, and what the old socket left unacked.
                    client.rejoined = false;
                    let _ = stats::lock(&state.reconnect_hist).record(client.away.max(1));
                    for old in std::mem::take(&mut client.to_resend) {
                        // Same clientMsgId, the resend's time in the marker: a message
                        // stored only now is measured from now (delivery latency stays the
                        // server's); one stored before is answered with the original.
                        let again = Pending { ack: next_ack, resend: true, sent_at: now_micros(), ..old };
                        next_ack += 1;
                        message_frame(&mut text, &m.room_id, &m.client_id, &again, &shared.padding);
                        if socket.send_text(&text).await.is_err() {
                            client.closed = Some(None);
                            break;
                        }
                        client.out.resent += 1;
                        client.pending.push_back(again);
                    }
                }
                if client.joined && next_send.is_some_and(|at| at < tokio::time::Instant::now()) {
                    // Sends that fell due while away: one now, then the rate again.
                    next_send = Some(tokio::time::Instant::now());
                }
                if let Some(code) = client.closed.take() {
                    // The server (or the network) ended it: counted, and the member stays away.
                    shared.dropped.fetch_add(1, Ordering::Relaxed);
                    shared.live_sockets.fetch_sub(1, Ordering::Relaxed);
                    if let Some(code) = code {
                        let mut codes = stats::lock(&shared.close_codes);
                        if codes.len() < 20 {
                            codes.push(code);
                        }
                    }
                    conn = None;
                    down = true;
                    client.joined = false;
                    reconnect_deadline = None;
                }
            }
            _ = send_timer, if client.joined => {
                let Some(socket) = conn.as_mut() else { next_send = None; continue };
                let sent = Pending {
                    ack: next_ack,
                    sent_at: now_micros(),
                    step: current.step,
                    room_size: shared.members[m.group].load(Ordering::Relaxed) as u64,
                    seq: next_seq,
                    resend: false,
                };
                next_ack += 1;
                next_seq += 1;
                message_frame(&mut text, &m.room_id, &m.client_id, &sent, &shared.padding);
                if socket.send_text(&text).await.is_err() {
                    // Seen as a close at the next read.
                    next_send = None;
                    continue;
                }
                client.pending.push_back(sent);
                if current.step != 0 && current.step == shared.step.load(Ordering::Relaxed) {
                    with_tally(|tally| {
                        tally.sent += 1;
                        tally.expected += sent.room_size;
                    });
                }
                next_send = schedule_next(&current, next_send);
                if drop_armed {
                    drop_armed = false;
                    client.out.reconnects_after_send += 1;
                    down = !reconnect(&shared, &m, &mut client, &mut conn, &mut next_ack).await;
                }
            }
            _ = reconnect_timer, if !down => {
                if client.last_seen.is_none() {
                    // Nothing seen yet to resume from: a little later (the window end cancels it).
                    reconnect_deadline = Some(tokio::time::Instant::now() + Duration::from_secs(1));
                    continue;
                }
                reconnect_deadline = None;
                if m.drop_after_send {
                    // The member's next message goes now (not an extra one), and the socket right after it.
                    drop_armed = true;
                    if current.rate > 0.0 {
                        next_send = Some(tokio::time::Instant::now());
                    }
                } else {
                    down = !reconnect(&shared, &m, &mut client, &mut conn, &mut next_ack).await;
                }
            }
        }
    }
    if let Some(err) = client.reconnect_error.take() {
        shared.error(format!("socket {}: {err}", m.plan.index));
    }
    if client.join_ack.is_some() {
        // A rejoin sent and never answered.
        client.out.reconnect_failures += 1;
        shared.error(format!("socket {}: no answer to the rejoin", m.plan.index));
    }
    client.out.unacked = (client.pending.len() + client.to_resend.len()) as u64;
    stats::lock(&state.outcomes).push(client.out);
}

/// Drops the member's socket without a close frame (as a network that went
/// away), stays away, and opens a new one with the rejoin sent; false when
/// no new socket could be had (the member then stays away).
async fn reconnect(
    shared: &Shared,
    m: &Member,
    client: &mut Client,
    conn: &mut Option<WsConn>,
    next_ack: &mut u64,
) -> bool {
    drop(conn.take());
    shared.live_sockets.fetch_sub(1, Ordering::Relaxed);
    client.joined = false;
    client.dropped_at = now_micros();
    client.to_resend.extend(client.pending.drain(..));
    tokio::time::sleep(m.pause).await;
    match rejoin(shared, m, client, *next_ack).await {
        Ok(socket) => {
            client.join_ack = Some(*next_ack);
            *next_ack += 1;
            client.pushed_since_join = false;
            shared.live_sockets.fetch_add(1, Ordering::Relaxed);
            *conn = Some(socket);
            true
        }
        Err(err) => {
            client.out.reconnect_failures += 1;
            shared.error(err);
            false
        }
    }
}

/// A new socket for a member coming back, with `join-room {roomId, sinceMessageId}` sent
/// (ack id `ack`); its answer is read by the member's loop. Three tries, a second apart.
async fn rejoin(shared: &Shared, m: &Member, client: &Client, ack: u64) -> Result<WsConn, String> {
    let since = client.last_seen.as_deref().map(|id| format!(r#","sinceMessageId":"{id}""#)).unwrap_or_default();
    let join = format!(r#"{{"event":"join-room","data":{{"roomId":"{}"{since}}},"ack":{ack}}}"#, m.room_id);
    let mut last_error = String::new();
    for attempt in 0..3 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let Ok(_permit) = shared.connect_gate.acquire().await else { return Err("shutting down".into()) };
        match dial(shared, &m.plan).await {
            Ok(mut socket) => match socket.send_text(join.as_bytes()).await {
                Ok(()) => return Ok(socket),
                Err(err) => last_error = format!("socket {}: rejoin not sent: {err}", m.plan.index),
            },
            Err(err) => last_error = format!("reconnect: {err}"),
        }
    }
    Err(last_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_and_events_parse() {
        assert_eq!(client_key("lg0a1b2c3d-12-7"), Some((12 << 32) | 7));
        assert_eq!(client_key("12-7"), None);
        assert_eq!(client_key("lg12-7"), None);
        assert_eq!(event_name(br#"{"event":"presence-updated","data":{}}"#), "presence-updated");
        assert_eq!(event_name(br#"{"ack":3}"#), "?");
    }

    fn client() -> Client {
        Client { joined: true, ..Client::new("r".into(), Outcome::default()) }
    }

    fn push(id: u128, client_msg_id: &str, step: u32) -> String {
        format!(
            r#"{{"event":"new-message","data":{{"roomId":"r","message":{{"id":"{}","clientMsgId":"{client_msg_id}","message":"~lg~{step}~100~ x"}}}}}}"#,
            uuid::Uuid::from_u128(id)
        )
    }

    #[test]
    fn pushes_and_catch_up_are_counted_once() {
        let mut tally = stats::collect(false);
        let mut c = client();
        c.on_text(push(1, "lgff-1-1", 1).as_bytes(), 300, 1, &mut tally);
        c.on_text(push(1, "lgff-1-1", 1).as_bytes(), 300, 1, &mut tally);
        assert_eq!((tally.received, c.out.duplicates), (1, 1));
        // A rejoin whose catch-up holds the message seen and a new one.
        c.join_ack = Some(9);
        c.pushed_since_join = false;
        let ack = format!(
            r#"{{"ack":9,"ok":true,"data":{{"room":{{}},"participants":[],"missedMessages":[{{"id":"{}","message":"~lg~1~50~"}},{{"id":"{}","clientMsgId":"lgff-1-1","message":"~lg~1~60~"}}]}}}}"#,
            uuid::Uuid::from_u128(1),
            uuid::Uuid::from_u128(2)
        );
        c.on_text(ack.as_bytes(), 400, 1, &mut tally);
        assert_eq!((tally.received, c.out.duplicates, c.out.caught_up, c.out.stored_twice), (2, 2, 1, 1));
        assert_eq!(c.last_seen.as_deref(), Some(uuid::Uuid::from_u128(2).to_string().as_str()));
        assert_eq!(c.out.reconnects, 1);
    }

    #[test]
    fn acks_match_by_id() {
        let mut tally = stats::collect(false);
        let mut c = client();
        let sent = |ack| Pending { ack, sent_at: 10, step: 1, room_size: 5, seq: ack, resend: false };
        c.pending.push_back(sent(2));
        c.pending.push_back(sent(3));
        tally.expected = 10;
        let ok = format!(r#"{{"ack":3,"ok":true,"data":{{"message":{{"id":"{}"}}}}}}"#, uuid::Uuid::from_u128(7));
        c.on_text(ok.as_bytes(), 50, 1, &mut tally);
        c.on_text(br#"{"ack":2,"ok":false,"error":{"code":"x"}}"#, 60, 1, &mut tally);
        assert_eq!((tally.acks_ok, tally.acks_err, tally.expected), (1, 1, 5));
        assert_eq!(c.out.acked, vec![(7, 1)]);
        assert!(c.pending.is_empty());
    }
}
