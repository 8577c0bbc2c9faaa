//! Two nodes of the real binary behind HAProxy running the configuration
//! the product ships (`deploy/haproxy.cfg`: round robin, no sticky
//! sessions but Socket.IO's polling ones), on one PostgreSQL database and the local Redis. Every client
//! goes through the balancer's one address, REST and sockets alike, as
//! users do; the nodes' own ports are read only to see where a socket
//! landed (`/metrics`) and which node is which (`/healthz`).
//!
//! Runs when `REDIS_URL` is set, the database is PostgreSQL and `haproxy`
//! is installed (`.ci/run`'s PostgreSQL stage installs it); otherwise each
//! test says why and returns.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::{json, Value};

use classroom::config::{backend_of, Backend};

use crate::faults::open_sockets;
use crate::helpers::{fresh_database, TestDatabase, WsClient};
use crate::nodes::{chat, user_id};
use crate::process::{redis_of_own, Remote, ServerProcess};

/// The nodes' `NODE_TIMEOUT_SECS`: a killed node is given up after this.
const NODE_TIMEOUT: Duration = Duration::from_secs(3);

/// How soon after a `kill -9` the other node must have taken the dead
/// node's people out of their rooms: the node timeout, a heartbeat (a
/// third of it), the room rebuilt from the database, and a margin for a CI
/// machine busy with the other tests.
const GONE_WITHIN: Duration = Duration::from_secs(12);

/// The server names of `deploy/haproxy.cfg`, node 0 and node 1.
const SERVERS: [&str; 2] = ["node-a", "node-b"];

/// HAProxy as a child process, on `deploy/haproxy.cfg`; its output kept
/// and shown if the test fails. Killed on drop.
struct Balancer {
    child: Child,
    logs: Arc<Mutex<Vec<String>>>,
    port: u16,
}

impl Balancer {
    fn installed() -> bool {
        Command::new("haproxy")
            .arg("-v")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    }

    /// HAProxy in front of the nodes on these ports, on a free port of its own.
    fn start(nodes: [u16; 2]) -> Balancer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let config = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/haproxy.cfg");
        let mut child = Command::new("haproxy")
            .arg("-f")
            .arg(config)
            .env("NODE_A", format!("127.0.0.1:{}", nodes[0]))
            .env("NODE_B", format!("127.0.0.1:{}", nodes[1]))
            .env("LISTEN", format!("127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("haproxy starts");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        Self::drain(stdout, logs.clone());
        Self::drain(stderr, logs.clone());
        Balancer { child, logs, port }
    }

    /// Keeps reading until HAProxy exits, so its pipe never fills.
    fn drain(output: impl Read + Send + 'static, sink: Arc<Mutex<Vec<String>>>) {
        std::thread::spawn(move || {
            for line in BufReader::new(output).lines().map_while(Result::ok) {
                sink.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(line);
            }
        });
    }

    fn log_text(&self) -> String {
        self.logs.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).join("\n")
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let path = std::env::temp_dir().join(format!("haproxy-{}.log", self.child.id()));
            let _ = std::fs::write(&path, self.log_text());
            eprintln!("HAProxy's log: {}", path.display());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Two nodes, the balancer in front of them, and the database they share.
struct Cluster {
    /// Dropped first: HAProxy goes before the nodes it watches.
    _balancer: Balancer,
    nodes: Vec<ServerProcess>,
    /// Each node on its own port: for `/metrics` and `/healthz` only.
    direct: Vec<Remote>,
    /// The balancer: every client's way in.
    front: Remote,
    /// The nodes' `REDIS_URL`.
    redis: String,
    _database: TestDatabase,
}

/// Two nodes of the real binary behind `deploy/haproxy.cfg`, on the Redis
/// database `redis_db` (one per test: see `redis_of_own`); `None`, said on
/// stderr, where that cannot run here.
async fn behind_haproxy(test: &str, redis_db: u8) -> Option<Cluster> {
    let Some(redis) = std::env::var("REDIS_URL").ok().filter(|url| !url.is_empty()) else {
        eprintln!("{test}: REDIS_URL is not set");
        return None;
    };
    let redis = redis_of_own(&redis, redis_db);
    let database = fresh_database();
    if backend_of(&database.url) != Backend::Postgres {
        eprintln!("{test}: several nodes share a PostgreSQL database, not a SQLite file");
        return None;
    }
    if !Balancer::installed() {
        eprintln!("{test}: haproxy is not installed (.ci/run installs it)");
        return None;
    }
    let timeout = NODE_TIMEOUT.as_secs().to_string();
    // A test reads a socket only when it expects something, so it answers
    // pings late (a browser answers them at once): the heartbeat timeout is
    // not what is tried here.
    let env =
        [("REDIS_URL", redis.as_str()), ("NODE_TIMEOUT_SECS", timeout.as_str()), ("WS_CLIENT_TIMEOUT_MS", "120000")];
    let mut nodes =
        vec![ServerProcess::start_with(&database.url, &env), ServerProcess::start_with(&database.url, &env)];
    let ports = [nodes[0].port().await, nodes[1].port().await];
    let mut balancer = Balancer::start(ports);
    let front = Remote::new(balancer.port);
    // Up once both nodes answer through it: it has bound its port, and
    // sees them both. Nothing announces that, so it is asked until then.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = HashSet::new();
    while seen.len() < SERVERS.len() {
        if let Some(status) = balancer.child.try_wait().expect("poll haproxy") {
            panic!("haproxy exited ({status}):\n{}", balancer.log_text());
        }
        assert!(Instant::now() < deadline, "both nodes not answering through HAProxy after 30 s: {seen:?}");
        match served(&front, "/healthz", None).await {
            Some((200, _, server)) => {
                seen.insert(server);
            }
            _ => actix_web::rt::time::sleep(Duration::from_millis(50)).await,
        }
    }
    let direct = ports.iter().map(|port| Remote::new(*port)).collect();
    Some(Cluster { _balancer: balancer, nodes, direct, front, redis, _database: database })
}

/// A GET through the balancer: status, body, and the node that answered
/// (`X-Served-By`, set by `deploy/haproxy.cfg`); `None` without an answer.
async fn served(front: &Remote, path: &str, token: Option<&str>) -> Option<(u16, Value, String)> {
    let mut request = front.client.get(front.url(path));
    if let Some(token) = token {
        request = request.insert_header(("Authorization", format!("Bearer {token}")));
    }
    let mut response = request.send().await.ok()?;
    let server = response.headers().get("x-served-by").and_then(|value| value.to_str().ok()).map(str::to_string);
    // HAProxy's own answers (503: no node up) name no node.
    let server = server.unwrap_or_else(|| "HAProxy itself".to_string());
    let body = response.body().await.ok()?;
    Some((response.status().as_u16(), serde_json::from_slice(&body).unwrap_or(Value::Null), server))
}

/// Someone in a test, with the socket they opened through the balancer and
/// the node it landed on.
struct Member {
    name: String,
    token: String,
    id: String,
    socket: WsClient,
    node: usize,
}

impl Cluster {
    /// An instructor and five students in a started live session, their
    /// sockets split over both nodes; the session's id.
    async fn six_in_a_session(&self) -> (Vec<Member>, String) {
        let people = [
            ("Grace", "instructor"),
            ("Ada", "student"),
            ("Bob", "student"),
            ("Cleo", "student"),
            ("Dan", "student"),
            ("Eve", "student"),
        ];
        let mut members = self.members(&people).await;
        let students: Vec<String> = members[1..].iter().map(|m| m.token.clone()).collect();
        let session = self.front.started_session(&members[0].token, &students).await;
        for member in members.iter_mut() {
            let joined = join_session(member, &session).await;
            assert_eq!(joined["ok"], true, "{} (on {}): {joined}", member.name, SERVERS[member.node]);
        }
        self.assert_split(&members).await;
        (members, session)
    }

    /// Each node's `classroom_ws_connections`, read on the node itself.
    async fn sockets_open(&self) -> [u64; 2] {
        [open_sockets(&self.direct[0]).await, open_sockets(&self.direct[1]).await]
    }

    /// A socket through the balancer, and the node it landed on: the one
    /// whose gauge went up by one (a node counts a socket before it says
    /// `connected`). Sockets are opened one at a time for this.
    async fn connect(&self, token: &str) -> (WsClient, usize) {
        let before = self.sockets_open().await;
        let socket = self.front.socket(token).await;
        let after = self.sockets_open().await;
        match [after[0] as i64 - before[0] as i64, after[1] as i64 - before[1] as i64] {
            [1, 0] => (socket, 0),
            [0, 1] => (socket, 1),
            other => panic!("one socket opened through HAProxy, the nodes' gauges moved by {other:?}"),
        }
    }

    /// Registers people through the balancer and opens a socket for each.
    async fn members(&self, people: &[(&str, &str)]) -> Vec<Member> {
        let mut members = Vec::new();
        for (name, role) in people {
            let token = self.front.register(name, role).await;
            let id = user_id(&self.front, &token).await;
            let (socket, node) = self.connect(&token).await;
            members.push(Member { name: name.to_string(), token, id, socket, node });
        }
        members
    }

    /// The members' sockets are on both nodes, and each node's own gauge
    /// says so: round robin split them, with no stickiness.
    async fn assert_split(&self, members: &[Member]) {
        let mut located = [0u64; 2];
        for member in members {
            located[member.node] += 1;
        }
        let placed: Vec<(&str, &str)> = members.iter().map(|m| (m.name.as_str(), SERVERS[m.node])).collect();
        assert!(located.iter().all(|count| *count > 0), "everyone on one node: {placed:?}");
        assert_eq!(
            self.sockets_open().await,
            located,
            "the nodes' gauges against where the sockets landed: {placed:?}"
        );
    }

    /// Each node's id, from its `/healthz`.
    async fn node_ids(&self) -> Vec<String> {
        let mut ids = Vec::new();
        for remote in &self.direct {
            let mut response = remote.client.get(remote.url("/healthz")).send().await.expect("healthz answered");
            let body: Value = response.json().await.expect("healthz JSON");
            ids.push(body["node"]["id"].as_str().unwrap_or_else(|| panic!("a node id in {body}")).to_string());
        }
        ids
    }
}

/// The ids of the next `count` `new-message`s a socket receives.
async fn message_ids(socket: &mut WsClient, count: usize) -> Vec<String> {
    let mut ids = Vec::new();
    while ids.len() < count {
        let event = socket.next_event("new-message").await;
        ids.push(event["data"]["message"]["id"].as_str().unwrap_or_else(|| panic!("an id in {event}")).to_string());
    }
    ids
}

/// What every member saw: each message once, all in one order, which is
/// the order of `acked` per sender; and none more after a moment. Returns
/// that order.
async fn one_order_for_all(members: &mut [Member], acked: &[Vec<String>]) -> Vec<String> {
    let total: usize = acked.iter().map(Vec::len).sum();
    let seen: Vec<Vec<String>> = join_all(members.iter_mut().map(|member| async move {
        let ids = message_ids(&mut member.socket, total).await;
        let more = member.socket.receives_within("new-message", Duration::from_millis(300)).await;
        assert!(!more, "{} got a new-message beyond the {total} sent: {:?}", member.name, member.socket.take_pending());
        ids
    }))
    .await;
    let every: HashSet<&String> = acked.iter().flatten().collect();
    assert_eq!(every.len(), total, "two acks with one message id: {acked:?}");
    for (member, ids) in members.iter().zip(&seen) {
        let distinct: HashSet<&String> = ids.iter().collect();
        assert_eq!(
            distinct, every,
            "{} (on {}) saw {ids:?}, not each acked message once",
            member.name, SERVERS[member.node]
        );
        assert_eq!(
            ids, &seen[0],
            "{} (on {}) and {} saw different orders",
            member.name, SERVERS[member.node], members[0].name
        );
    }
    for (sender, sent) in acked.iter().enumerate() {
        let in_room_order: Vec<&String> = seen[0].iter().filter(|id| sent.contains(id)).collect();
        assert_eq!(in_room_order, sent.iter().collect::<Vec<_>>(), "sender {sender}'s messages out of their order");
    }
    seen[0].clone()
}

/// The ids of a live session's history, oldest first, read through the balancer.
async fn session_history(front: &Remote, session: &str, token: &str) -> Vec<String> {
    let (status, history) = front.get(&format!("/api/live-sessions/{session}/messages?limit=200"), token).await;
    assert_eq!(status, 200, "{history}");
    let list = history.as_array().unwrap_or_else(|| panic!("a list of messages: {history}"));
    list.iter().map(|m| m["id"].as_str().unwrap_or_default().to_string()).collect()
}

/// Sends `count` messages from each member at once (each its own in turn,
/// waiting for each ack), with `send(member, n)` making the event and its
/// data; every ack must be ok. The acked ids, by member.
async fn everyone_says(
    members: &mut [Member],
    count: usize,
    send: impl Fn(usize, usize) -> (&'static str, Value) + Copy,
) -> Vec<Vec<String>> {
    join_all(members.iter_mut().enumerate().map(|(m, member)| async move {
        let mut ids = Vec::new();
        for n in 0..count {
            let (event, data) = send(m, n);
            let ack = member.socket.request(event, data).await;
            assert_eq!(ack["ok"], true, "{} (on {}) sent {event}: {ack}", member.name, SERVERS[member.node]);
            ids.push(ack["data"]["message"]["id"].as_str().unwrap_or_else(|| panic!("an id in {ack}")).to_string());
        }
        ids
    }))
    .await
}

async fn join_session(member: &mut Member, session: &str) -> Value {
    member.socket.request("join-live-session", json!({ "sessionId": session })).await
}

/// Reads `user`'s presence through the balancer until it says online, at
/// most 10 s: a node answers once the user's presence has counted their
/// sockets, which nothing announces. Every answer must come from one of
/// `servers`.
async fn reads_online(front: &Remote, reader: &str, user: &Member, servers: &[&str]) {
    let path = format!("/api/presence/user/{}", user.id);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, view, server) = served(front, &path, Some(reader)).await.expect("an answer");
        assert!(
            status == 200 && servers.contains(&server.as_str()),
            "{} read through {server}: {status} {view}",
            user.name
        );
        if view["status"] == "online" {
            return;
        }
        assert!(Instant::now() < deadline, "{} has a socket open but reads {view}", user.name);
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A live session whose people are on both nodes: chat reaches everyone
/// once, in one order, the history's; and a person whose socket is on one
/// node is online whichever node answers the REST read.
#[actix_web::test]
async fn a_live_session_split_by_the_balancer_has_one_chat_in_one_order() {
    let Some(cluster) = behind_haproxy("balanced live session", 3).await else { return };
    let (mut members, session) = cluster.six_in_a_session().await;

    // Everyone talks at once, five messages each.
    let acked = everyone_says(&mut members, 5, |m, n| ("session-message", chat(&session, &format!("m{m}-{n}")))).await;
    let order = one_order_for_all(&mut members, &acked).await;
    assert_eq!(
        session_history(&cluster.front, &session, &members[0].token).await,
        order,
        "history in the room's order"
    );

    // Presence is one truth: Ada's socket is on one node; asked through
    // the balancer, both nodes answer (round robin), and both say online.
    let (reader, ada) = (&members[0], &members[1]);
    let mut answers = Vec::new();
    for _ in 0..4 {
        let path = format!("/api/presence/user/{}", ada.id);
        let (status, view, server) = served(&cluster.front, &path, Some(&reader.token)).await.expect("an answer");
        assert_eq!(status, 200, "{view}");
        answers.push((server, view["status"].as_str().unwrap_or_default().to_string()));
    }
    let servers: HashSet<&str> = answers.iter().map(|(server, _)| server.as_str()).collect();
    assert_eq!(servers.len(), 2, "the balancer sent every read to one node: {answers:?}");
    assert!(answers.iter().all(|(_, status)| status == "online"), "Ada is on {}: {answers:?}", SERVERS[ada.node]);
}

/// A session with three seats and six students, on both nodes, joining at
/// once through the balancer: three get in, three hear it is full; a seat
/// given up on one node is taken from the other.
#[actix_web::test]
async fn capacity_holds_when_joins_race_through_the_balancer() {
    let Some(cluster) = behind_haproxy("balanced capacity", 4).await else { return };
    const SEATS: usize = 3;
    let grace = cluster.front.register("Grace", "instructor").await;
    let names = ["Ada", "Bob", "Cleo", "Dan", "Eve", "Finn"];
    let mut members = cluster.members(&names.map(|name| (name, "student"))).await;
    cluster.assert_split(&members).await;
    let students: Vec<String> = members.iter().map(|m| m.token.clone()).collect();
    let session = cluster.front.started_session_for(&grace, &students, Some(SEATS as u32)).await;

    let answers = join_all(members.iter_mut().map(|member| join_session(member, &session))).await;
    let outcome: Vec<(&str, &str, String)> = members
        .iter()
        .zip(&answers)
        .map(|(m, ack)| (m.name.as_str(), SERVERS[m.node], ack["error"]["code"].as_str().unwrap_or("ok").to_string()))
        .collect();
    let admitted: Vec<usize> = (0..answers.len()).filter(|n| answers[*n]["ok"] == true).collect();
    let full: Vec<usize> = (0..answers.len()).filter(|n| answers[*n]["error"]["code"] == "session_full").collect();
    assert_eq!((admitted.len(), full.len()), (SEATS, names.len() - SEATS), "{outcome:?}");

    // A seat freed is one seat, wherever it is taken from: one of the
    // admitted leaves; of the refused, the first on the other node gets in,
    // and the next is refused again.
    let leaver = admitted[0];
    let left = members[leaver].socket.request("leave-live-session", json!({ "sessionId": session })).await;
    assert_eq!(left["ok"], true, "{left}");
    let (elsewhere, refused_again): (Vec<usize>, Vec<usize>) =
        full.iter().partition(|n| members[**n].node != members[leaver].node);
    let taker = *elsewhere.first().or(refused_again.first()).expect("three were refused");
    let joined = join_session(&mut members[taker], &session).await;
    assert_eq!(
        joined["ok"], true,
        "{} (on {}) into the freed seat: {joined}",
        names[taker], SERVERS[members[taker].node]
    );
    let next = *full.iter().find(|n| **n != taker).expect("three were refused");
    let again = join_session(&mut members[next], &session).await;
    assert_eq!(again["error"]["code"], "session_full", "{} (on {}): {again}", names[next], SERVERS[members[next].node]);
}

/// An office-hours queue whose students are on both nodes: joins at once
/// get the places 1 to 4, each student hears their place move wherever
/// their socket is, and the instructor sees the queue as it is.
#[actix_web::test]
async fn an_office_hours_queue_split_by_the_balancer_has_one_order() {
    let Some(cluster) = behind_haproxy("balanced office hours", 5).await else { return };
    let people =
        [("Grace", "instructor"), ("Ada", "student"), ("Bob", "student"), ("Cleo", "student"), ("Dan", "student")];
    let mut members = cluster.members(&people).await;
    cluster.assert_split(&members).await;
    let front = &cluster.front;
    let students: Vec<String> = members[1..].iter().map(|m| m.token.clone()).collect();
    let grace = members[0].token.clone();
    let grace_id = members[0].id.clone();
    front.course_with(&grace, &students).await;
    let (status, opened) = front.post("/api/office-hours/open", Some(&grace), json!({})).await;
    assert_eq!((status, opened["isOpen"].as_bool()), (200, Some(true)), "{opened}");

    let (instructor, students) = members.split_at_mut(1);
    let instructor = &mut instructor[0];
    let joins = students.iter_mut().map(|student| {
        let data = json!({ "instructorId": grace_id, "question": format!("{}'s question", student.name) });
        student.socket.request("join-office-hours-queue", data)
    });
    let answers = join_all(joins).await;
    let mut places: Vec<(u64, &str, &str)> = students
        .iter()
        .zip(&answers)
        .map(|(s, ack)| {
            let place = ack["data"]["entry"]["position"].as_u64().unwrap_or_else(|| panic!("{}: {ack}", s.name));
            (place, s.name.as_str(), SERVERS[s.node])
        })
        .collect();
    places.sort();
    assert_eq!(places.iter().map(|p| p.0).collect::<Vec<_>>(), [1, 2, 3, 4], "{places:?}");
    let entry = |n: usize| answers[n]["data"]["entry"]["id"].as_str().expect("an entry id").to_string();
    let place = |n: usize| answers[n]["data"]["entry"]["position"].as_u64().expect("a position");
    let by_place: Vec<usize> = {
        let mut order: Vec<usize> = (0..students.len()).collect();
        order.sort_by_key(|n| place(*n));
        order
    };
    let queue_of = |ids: &[usize]| ids.iter().map(|n| entry(*n)).collect::<Vec<_>>();
    awaits_queue(instructor, &queue_of(&by_place), 0).await;

    // The first admitted through the balancer: told so on their node; the
    // others move up a place on theirs.
    let first = by_place[0];
    let (status, admitted) =
        front.post(&format!("/api/office-hours/admit/{}", entry(first)), Some(&grace), json!({})).await;
    assert_eq!(status, 200, "{admitted}");
    let room = admitted["roomId"].as_str().expect("a room").to_string();
    let told = students[first].socket.next_event("admitted-to-office-hours").await;
    assert_eq!(
        told["data"]["roomId"],
        room.as_str(),
        "{} (on {}): {told}",
        students[first].name,
        SERVERS[students[first].node]
    );
    for &n in &by_place[1..] {
        let moved = students[n].socket.next_event("queue-position").await;
        let (name, node) = (&students[n].name, SERVERS[students[n].node]);
        assert_eq!(moved["data"]["position"].as_u64(), Some(place(n) - 1), "{name} (on {node}): {moved}");
    }
    awaits_queue(instructor, &queue_of(&by_place[1..]), 1).await;

    // The next in line leaves over their socket: the two behind move up again.
    let leaver = by_place[1];
    let left = students[leaver].socket.request("leave-office-hours-queue", json!({ "queueId": entry(leaver) })).await;
    assert_eq!(left["ok"], true, "{left}");
    for &n in &by_place[2..] {
        let moved = students[n].socket.next_event("queue-position").await;
        let (name, node) = (&students[n].name, SERVERS[students[n].node]);
        assert_eq!(moved["data"]["position"].as_u64(), Some(place(n) - 2), "{name} (on {node}): {moved}");
    }
    awaits_queue(instructor, &queue_of(&by_place[2..]), 1).await;
    let (status, queue) = front.get("/api/office-hours/queue", &grace).await;
    assert_eq!(status, 200, "{queue}");
    let waiting: Vec<&str> = queue["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["status"] == "waiting")
        .filter_map(|e| e["id"].as_str())
        .collect();
    assert_eq!(waiting, queue_of(&by_place[2..]), "the queue read through the balancer: {queue}");

    // The private room, its two people wherever their sockets are.
    let joined = instructor.socket.request("join-room", json!({ "roomId": room })).await;
    assert_eq!(joined["ok"], true, "{joined}");
    let joined = students[first].socket.request("join-room", json!({ "roomId": room })).await;
    assert_eq!(joined["ok"], true, "{joined}");
    let said =
        instructor.socket.request("room-message", json!({ "roomId": room, "message": "Show me the error" })).await;
    assert_eq!(said["ok"], true, "{said}");
    let heard = students[first].socket.next_event("new-message").await;
    assert_eq!(heard["data"]["message"]["id"], said["data"]["message"]["id"], "{heard}");
}

/// Waits for the instructor's `queue-updated` that lists `waiting` (entry
/// ids, in order) and `admitted` people being helped. Pushes are merged
/// (at most one per 250 ms, the last after every change), so earlier ones
/// may show a queue on its way there; the last one must be it.
async fn awaits_queue(instructor: &mut Member, waiting: &[String], admitted: usize) {
    let mut last = Value::Null;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let update = instructor.socket.next_event("queue-updated").await;
        let entries = update["data"]["entries"].as_array().cloned().unwrap_or_default();
        let now_waiting: Vec<&str> =
            entries.iter().filter(|e| e["status"] == "waiting").filter_map(|e| e["id"].as_str()).collect();
        let places: Vec<u64> =
            entries.iter().filter(|e| e["status"] == "waiting").filter_map(|e| e["position"].as_u64()).collect();
        let helped = entries.iter().filter(|e| e["status"] == "admitted").count();
        if now_waiting == waiting && helped == admitted {
            assert_eq!(places, (1..=waiting.len() as u64).collect::<Vec<_>>(), "{update}");
            return;
        }
        last = update;
    }
    panic!(
        "the instructor (on {}) never saw the queue {waiting:?} with {admitted} admitted; last: {last}",
        SERVERS[instructor.node]
    );
}

/// A study group whose members are on both nodes: everyone's messages reach
/// every member once, in one order, the history's.
#[actix_web::test]
async fn a_study_group_split_by_the_balancer_has_one_chat_in_one_order() {
    let Some(cluster) = behind_haproxy("balanced study group", 6).await else { return };
    let front = &cluster.front;
    let grace = front.register("Grace", "instructor").await;
    let people = [("Ada", "student"), ("Bob", "student"), ("Cleo", "student"), ("Dan", "student")];
    let mut members = cluster.members(&people).await;
    cluster.assert_split(&members).await;
    let students: Vec<String> = members.iter().map(|m| m.token.clone()).collect();
    let course = front.course_with(&grace, &students).await;
    let group = json!({ "name": "Ownership", "courseId": course, "visibility": "public" });
    let (status, group) = front.post("/api/study-groups", Some(&members[0].token), group).await;
    assert_eq!(status, 201, "{group}");
    let group_id = group["id"].as_str().expect("a group id").to_string();
    let room = group["chatRoomId"].as_str().expect("a room").to_string();
    for member in &members[1..] {
        let (status, joined) =
            front.post(&format!("/api/study-groups/{group_id}/join"), Some(&member.token), json!({})).await;
        assert_eq!(status, 200, "{}: {joined}", member.name);
    }
    for member in members.iter_mut() {
        let joined = member.socket.request("join-room", json!({ "roomId": room })).await;
        assert_eq!(joined["ok"], true, "{} (on {}): {joined}", member.name, SERVERS[member.node]);
    }

    let say = |m: usize, n: usize| {
        ("room-message", json!({ "roomId": room, "message": format!("g{m}-{n}"), "clientMsgId": format!("g{m}-{n}") }))
    };
    let acked = everyone_says(&mut members, 3, say).await;
    let order = one_order_for_all(&mut members, &acked).await;
    let (status, history) =
        front.get(&format!("/api/study-groups/{group_id}/messages?limit=100"), &members[2].token).await;
    assert_eq!(status, 200, "{history}");
    let stored: Vec<&str> = history
        .as_array()
        .unwrap_or_else(|| panic!("a list: {history}"))
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert_eq!(stored, order, "the group's history in the room's order");
}

/// `kill -9` of the node holding a live session's room, with people on
/// both nodes. The other node takes the room: its people hear the dead
/// node's people leave, within the node timeout and a little, and those
/// with no other socket go offline. The balancer sends everyone to the live
/// node; those who reconnect catch up with `sinceMessageId`, each missed
/// message once, and the history holds every acknowledged message.
#[actix_web::test]
async fn a_node_killed_behind_the_balancer_loses_nothing_and_its_people_come_back_through_it() {
    let Some(mut cluster) = behind_haproxy("balanced kill -9", 7).await else { return };
    let (mut members, session) = cluster.six_in_a_session().await;
    // Everyone is online as the others see them before the chat, and so
    // before the kill. (A node killed before it stored someone's presence
    // is tried in nodes.rs.)
    for member in &members {
        reads_online(&cluster.front, &members[0].token, member, &SERVERS).await;
    }
    let acked =
        everyone_says(&mut members, 2, |m, n| ("session-message", chat(&session, &format!("before {m}-{n}")))).await;
    let before = one_order_for_all(&mut members, &acked).await;
    let last_seen = before.last().expect("messages before the kill").clone();

    // The node to kill: the one holding the room (its lease in Redis).
    let (status, details) = cluster.front.get(&format!("/api/live-sessions/{session}"), &members[0].token).await;
    assert_eq!(status, 200, "{details}");
    let room = details["chatRoomId"].as_str().unwrap_or_else(|| panic!("a chatRoomId in {details}")).to_string();
    let mut redis = redis::Client::open(cluster.redis.as_str())
        .expect("REDIS_URL")
        .get_multiplexed_async_connection()
        .await
        .expect("Redis answers");
    let holder: Option<String> =
        redis::cmd("GET").arg(format!("classroom:owner:room:{room}")).query_async(&mut redis).await.expect("GET");
    let ids = cluster.node_ids().await;
    let doomed = ids
        .iter()
        .position(|id| Some(id) == holder.as_ref())
        .unwrap_or_else(|| panic!("the room's lease names {holder:?}, neither node ({ids:?})"));
    let alive = 1 - doomed;
    let (mut gone, mut staying): (Vec<Member>, Vec<Member>) = members.into_iter().partition(|m| m.node == doomed);
    assert!(gone.len() >= 2 && !staying.is_empty(), "3 and 3 expected: {} on the doomed node", gone.len());

    cluster.nodes[doomed].kill();
    let killed_at = Instant::now();
    // HAProxy ends the sockets the dead node carried, as a client sees a
    // dead server: they end, and their clients reconnect.
    for member in gone.iter_mut() {
        member.socket.ended().await;
    }
    // Right after the kill, before the balancer's health checks have seen
    // the node die, round robin still names it every other time: the
    // connection is refused, and HAProxy tries the live node. Nobody sees
    // a failure, REST or socket.
    for _ in 0..2 {
        let (status, me, server) = served(&cluster.front, "/api/me", Some(&gone[0].token)).await.expect("an answer");
        assert_eq!((status, server.as_str()), (200, SERVERS[alive]), "{me}");
    }
    let first_back = cluster.front.socket(&gone[0].token).await;
    assert_eq!(
        open_sockets(&cluster.direct[alive]).await as usize,
        staying.len() + 1,
        "the reconnect is on the live node"
    );

    // The room moves to the live node, which finds the dead node's people
    // gone and tells the room so.
    for member in staying.iter_mut() {
        member.socket.wait = GONE_WITHIN;
    }
    let gone_ids: HashSet<String> = gone.iter().map(|m| m.id.clone()).collect();
    for member in staying.iter_mut() {
        let mut left = HashSet::new();
        while left.len() < gone_ids.len() {
            let event = member.socket.next_event("user-left").await;
            left.insert(event["data"]["userId"].as_str().unwrap_or_default().to_string());
        }
        assert_eq!(left, gone_ids, "{} heard these leave", member.name);
    }
    let all_left_after = killed_at.elapsed();
    assert!(all_left_after < GONE_WITHIN, "the dead node's people left the room only after {all_left_after:?}");

    // Those not back are offline, as their classmates hear and as the
    // balancer's answers (from the live node only now) say.
    let offline: HashSet<String> = gone[1..].iter().map(|m| m.id.clone()).collect();
    let watcher = &mut staying[0];
    let mut told = HashSet::new();
    while told != offline {
        let heard = watcher.socket.next_event("presence-updated").await;
        let who = heard["data"]["userId"].as_str().unwrap_or_default().to_string();
        if heard["data"]["status"] == "offline" {
            assert!(offline.contains(&who), "{who} told offline, but only {offline:?} are: {heard}");
            told.insert(who);
        }
    }
    let reader = watcher.token.clone();
    for member in &gone[1..] {
        for _ in 0..2 {
            let path = format!("/api/presence/user/{}", member.id);
            let (status, view, server) = served(&cluster.front, &path, Some(&reader)).await.expect("an answer");
            assert_eq!(
                (status, view["status"].as_str(), server.as_str()),
                (200, Some("offline"), SERVERS[alive]),
                "{}: {view}",
                member.name
            );
        }
    }
    // The one who came back at once is online: the live node counts her
    // socket, whichever node held her presence.
    reads_online(&cluster.front, &reader, &gone[0], &[SERVERS[alive]]).await;

    // Chat goes on, now on the live node.
    let after = everyone_says(&mut staying, 1, |m, _| ("session-message", chat(&session, &format!("after {m}")))).await;
    let after = one_order_for_all(&mut staying, &after).await;

    // The dead node's people come back through the balancer and catch up
    // from the last message they saw: each missed message once, in order,
    // before the join's ack.
    gone[0].socket = first_back;
    for member in gone[1..].iter_mut() {
        member.socket = cluster.front.socket(&member.token).await;
    }
    assert_eq!(
        open_sockets(&cluster.direct[alive]).await as usize,
        staying.len() + gone.len(),
        "every socket is on the live node"
    );
    for member in gone.iter_mut() {
        let joined = member
            .socket
            .request("join-live-session", json!({ "sessionId": session, "sinceMessageId": last_seen }))
            .await;
        assert_eq!(joined["ok"], true, "{}: {joined}", member.name);
        let caught_up: Vec<String> = member
            .socket
            .take_pending()
            .iter()
            .filter(|frame| frame["event"] == "new-message")
            .map(|frame| frame["data"]["message"]["id"].as_str().unwrap_or_default().to_string())
            .collect();
        assert_eq!(caught_up, after, "{} caught up with exactly what they missed", member.name);
    }

    // And the next message reaches everyone once, after what came before.
    let last = staying[0].socket.request("session-message", chat(&session, "the last")).await;
    assert_eq!(last["ok"], true, "{last}");
    let last_id = last["data"]["message"]["id"].as_str().expect("an id").to_string();
    for member in staying.iter_mut().chain(gone.iter_mut()) {
        assert_eq!(message_ids(&mut member.socket, 1).await, std::slice::from_ref(&last_id), "{}", member.name);
        let more = member.socket.receives_within("new-message", Duration::from_millis(300)).await;
        assert!(!more, "{} got a message twice: {:?}", member.name, member.socket.take_pending());
    }

    // Every acknowledged message is stored, once, in the room's order.
    let everything: Vec<String> = before.iter().chain(&after).chain([&last_id]).cloned().collect();
    assert_eq!(session_history(&cluster.front, &session, &staying[0].token).await, everything);
    eprintln!("balanced kill -9: the dead node's people left the room {all_left_after:?} after the kill");
}

/// A request to `/socket.io/` through the balancer: status, body text, and
/// the node that answered, and the sid a new session is named by.
async fn socket_io_request(front: &Remote, query: &str, body: Option<&str>) -> (u16, String, String, Option<String>) {
    let url = front.url(&format!("/socket.io/?{query}"));
    let mut response = match body {
        // A poll may wait a ping interval (5 s) when nothing else comes.
        Some(body) => front.client.post(url).timeout(Duration::from_secs(15)).send_body(body.to_string()).await,
        None => front.client.get(url).timeout(Duration::from_secs(15)).send().await,
    }
    .expect("an answer");
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let (server, sid) = (header("x-served-by").unwrap_or_default(), header("x-socket-io-sid"));
    let text = String::from_utf8(response.body().await.expect("a body").to_vec()).expect("text");
    (response.status().as_u16(), text, server, sid)
}

/// Socket.IO's long-polling through `deploy/haproxy.cfg`: the session's
/// every request (polls, posts, the upgrade) reaches the node that opened
/// it, while requests without a sid still go round robin.
#[actix_web::test]
async fn a_socket_io_polling_session_sticks_to_its_node_through_the_balancer() {
    use futures_util::{SinkExt, StreamExt};

    let Some(cluster) = behind_haproxy("balanced socket.io polling", 8).await else { return };
    let token = cluster.front.register("Ada", "student").await;
    let (status, open, node, sid) = socket_io_request(&cluster.front, "EIO=4&transport=polling", None).await;
    assert_eq!(status, 200, "{open}");
    let sid = sid.expect("the sid in its header");
    assert!(open.contains(&sid), "{open}");
    let query = format!("EIO=4&transport=polling&sid={sid}");

    let connect = format!(r#"40{{"token":"{token}"}}"#);
    let mut answers = vec![socket_io_request(&cluster.front, &query, Some(&connect)).await];
    for n in 0..6 {
        let event = format!(r#"42{n}["update-presence",{{"activity":"poll {n}"}}]"#);
        answers.push(socket_io_request(&cluster.front, &query, Some(&event)).await);
        loop {
            let answer = socket_io_request(&cluster.front, &query, None).await;
            let acked = answer.1.contains(&format!("43{n}["));
            answers.push(answer);
            if acked {
                break;
            }
        }
    }
    for (status, body, server, _) in &answers {
        assert_eq!((*status, server.as_str()), (200, node.as_str()), "every request on {node}: {body}");
    }

    // The upgrade goes to the same node, which holds the session.
    let url = format!("ws://127.0.0.1:{}/socket.io/?EIO=4&transport=websocket&sid={sid}", cluster.front.port);
    let (_, mut socket) = awc::Client::new().ws(url).connect().await.expect("the upgrade reaches the session's node");
    let text = async |socket: &mut actix_codec::Framed<awc::BoxedSocket, awc::ws::Codec>| loop {
        match tokio::time::timeout(Duration::from_secs(10), socket.next()).await.expect("a frame in time") {
            Some(Ok(awc::ws::Frame::Text(bytes))) => return String::from_utf8(bytes.to_vec()).expect("text"),
            Some(Ok(_)) => continue,
            other => panic!("the socket ended: {other:?}"),
        }
    };
    socket.send(awc::ws::Message::Text("2probe".into())).await.expect("sent");
    assert_eq!(text(&mut socket).await, "3probe");
    socket.send(awc::ws::Message::Text("5".into())).await.expect("sent");
    socket
        .send(awc::ws::Message::Text(r#"429["update-presence",{"activity":"upgraded"}]"#.into()))
        .await
        .expect("sent");
    while !text(&mut socket).await.starts_with("439[") {}

    // Without a sid, requests are not stuck.
    let mut servers = HashSet::new();
    for _ in 0..4 {
        servers.insert(served(&cluster.front, "/healthz", None).await.expect("an answer").2);
    }
    assert_eq!(servers.len(), 2, "{servers:?}");
}
