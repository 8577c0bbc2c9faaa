//! Two nodes on one database and one Redis (`REDIS_URL`), as a load
//! balancer without sticky sessions makes them: the people of one room on
//! both. Without `REDIS_URL` these tests say so and return (a fresh
//! machine has no Redis); `.ci/run` sets it.

use std::collections::HashSet;

use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{fresh_database, start_on, TcpProxy, TestApp, TestUser, WsClient};

pub(crate) fn redis_url() -> Option<String> {
    let url = std::env::var("REDIS_URL").ok().filter(|url| !url.is_empty());
    if url.is_none() {
        eprintln!("REDIS_URL is not set: the several-node test has nothing to run on");
    }
    url
}

/// Two nodes of one cluster on one database.
pub(crate) async fn two_nodes(url: &str) -> (TestApp, TestApp) {
    two_nodes_with(url, |_| {}).await
}

/// Two nodes of one cluster on one database, both configured by `change` too.
async fn two_nodes_with(url: &str, change: impl Fn(&mut classroom::config::Config) + Copy) -> (TestApp, TestApp) {
    let database = fresh_database();
    let again = database.again();
    let configure = |config: &mut classroom::config::Config| {
        config.redis_url = Some(url.to_string());
        change(config);
    };
    let a = start_on(database, configure, None).await;
    let b = start_on(again, configure, None).await;
    (a, b)
}

/// A heartbeat a second, so that lease checks come quickly.
fn quick_heartbeat(config: &mut classroom::config::Config) {
    config.node_timeout_secs = 3;
}

async fn joined(app: &TestApp, user: &TestUser, session: &str) -> (WsClient, Value) {
    let mut socket = app.connect(user).await;
    let ack = socket.request("join-live-session", json!({ "sessionId": session })).await;
    assert_eq!(ack["ok"], true, "{} joins through {}: {ack}", user.email, app.address);
    (socket, ack)
}

async fn in_room(app: &TestApp, user: &TestUser, room: &str) -> WsClient {
    let mut socket = app.connect(user).await;
    let ack = socket.request("join-room", json!({ "roomId": room })).await;
    assert_eq!(ack["ok"], true, "{} joins through {}: {ack}", user.email, app.address);
    socket
}

fn names(ack: &Value) -> HashSet<String> {
    ack["data"]["participants"].as_array().expect("participants").iter().map(|p| p["userId"].to_string()).collect()
}

/// The ids of the next `count` new messages a socket receives.
async fn messages(socket: &mut WsClient, count: usize) -> Vec<String> {
    let mut ids = Vec::new();
    while ids.len() < count {
        let event = socket.next_event("new-message").await;
        ids.push(event["data"]["message"]["id"].as_str().expect("id").to_string());
    }
    ids
}

#[actix_web::test]
async fn a_live_session_spans_two_nodes_with_one_chat_in_one_order() {
    let Some(url) = redis_url() else { return };
    let (a, b) = two_nodes(&url).await;
    let grace = a.register("Grace", "instructor").await;
    let (ada, bob) = (a.register("Ada", "student").await, b.register("Bob", "student").await);
    let course = a.course_with(&grace, &[&ada, &bob]).await;
    let session = a.session_in(&grace, &course, 0, None).await;
    // Started through node B: its room is B's from now on.
    let (status, started) = b.post(&format!("/api/live-sessions/{session}/start"), &grace.token, json!({})).await;
    assert_eq!((status, started["status"].as_str()), (200, Some("active")), "{started}");

    let (mut grace_socket, _) = joined(&a, &grace, &session).await;
    let (mut ada_socket, _) = joined(&b, &ada, &session).await;
    let (mut bob_socket, ack) = joined(&a, &bob, &session).await;
    assert_eq!(names(&ack), [&grace, &ada, &bob].iter().map(|u| format!("\"{}\"", u.id)).collect());
    let joined_event = grace_socket.next_event("user-joined").await;
    assert_eq!(
        joined_event["data"]["user"]["userId"].as_str().or(joined_event["data"]["userId"].as_str()),
        Some(ada.id.as_str()),
        "{joined_event}"
    );

    // One actor for the room, on one node.
    let room_id = Uuid::parse_str(
        ack["data"]["room"]["roomId"].as_str().or(ack["data"]["room"]["id"].as_str()).expect("room id"),
    )
    .expect("uuid");
    let held = [&a, &b].map(|app| app.state.registry.live_sessions.existing(room_id).is_some());
    assert_eq!(held, [false, true], "the room lives on node B only");

    // Ada (on B) and Bob (on A) write at once; everyone sees one order.
    let mut acks = Vec::new();
    for n in 0..20 {
        let from_ada =
            ada_socket.request("session-message", json!({ "sessionId": session, "message": format!("ada {n}") }));
        acks.push(from_ada.await);
        let from_bob =
            bob_socket.request("session-message", json!({ "sessionId": session, "message": format!("bob {n}") }));
        acks.push(from_bob.await);
    }
    assert!(acks.iter().all(|ack| ack["ok"] == true), "every message acked: {acks:?}");
    let acked: Vec<String> =
        acks.iter().map(|ack| ack["data"]["message"]["id"].as_str().unwrap().to_string()).collect();
    let seen_by_grace = messages(&mut grace_socket, 40).await;
    assert_eq!(seen_by_grace, acked, "the instructor on A saw every message once, in the room's order");
    assert_eq!(messages(&mut ada_socket, 20).await.len(), 20, "Ada saw Bob's 20 (her own come as acks)");

    // Stored, in that order, whichever node is asked.
    for app in [&a, &b] {
        let (status, history) = app.get(&format!("/api/live-sessions/{session}/messages"), &ada.token).await;
        assert_eq!(status, 200, "{history}");
        let mut stored: Vec<String> =
            history.as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().to_string()).collect();
        if stored.first() != acked.first() {
            stored.reverse();
        }
        assert_eq!(stored, acked);
    }

    // Typing and leaving cross the nodes too.
    let typing = bob_socket.request("typing-in-session", json!({ "sessionId": session })).await;
    assert_eq!(typing["ok"], true, "{typing}");
    let typist = ada_socket.next_event("user-typing").await;
    assert_eq!(typist["data"]["userId"].as_str(), Some(bob.id.as_str()), "{typist}");
    let left = bob_socket.request("leave-live-session", json!({ "sessionId": session })).await;
    assert_eq!(left["ok"], true, "{left}");
    let gone = grace_socket.next_event("user-left").await;
    assert_eq!(gone["data"]["userId"].as_str(), Some(bob.id.as_str()), "{gone}");
    let after = bob_socket.request("session-message", json!({ "sessionId": session, "message": "still here?" })).await;
    assert_eq!(after["error"]["code"], "forbidden", "{after}");

    // A socket that closes on A leaves the room on B.
    ada_socket.close().await;
    let gone = grace_socket.next_event("user-left").await;
    assert_eq!(gone["data"]["userId"].as_str(), Some(ada.id.as_str()), "{gone}");
}

#[actix_web::test]
async fn capacity_holds_when_joins_race_on_two_nodes() {
    let Some(url) = redis_url() else { return };
    let (a, b) = two_nodes(&url).await;
    let grace = a.register("Grace", "instructor").await;
    let mut students = Vec::new();
    for n in 0..6 {
        students.push(a.register(&format!("Student{n}"), "student").await);
    }
    let course = a.course_with(&grace, &students.iter().collect::<Vec<_>>()).await;
    let session = a.session_in(&grace, &course, 0, Some(3)).await;
    let (status, _) = a.post(&format!("/api/live-sessions/{session}/start"), &grace.token, json!({})).await;
    assert_eq!(status, 200);

    let mut sockets = Vec::new();
    for (n, student) in students.iter().enumerate() {
        let node = if n % 2 == 0 { &a } else { &b };
        sockets.push(node.connect(student).await);
    }
    let joins = sockets.iter_mut().map(|socket| socket.request("join-live-session", json!({ "sessionId": session })));
    let answers = futures_util::future::join_all(joins).await;
    let admitted = answers.iter().filter(|ack| ack["ok"] == true).count();
    let full = answers.iter().filter(|ack| ack["error"]["code"] == "session_full").count();
    assert_eq!((admitted, full), (3, 3), "{answers:?}");
}

#[actix_web::test]
async fn a_lease_lost_from_redis_is_written_back_by_its_owner_and_health_says_which_node() {
    let Some(url) = redis_url() else { return };
    let (a, b) = two_nodes_with(&url, quick_heartbeat).await;
    let node_a = a.state.registry.cluster.as_ref().expect("a node").node_id;
    let (status, health) = a.request("GET", "/healthz", None, None).await;
    assert_eq!((status, &health["node"]["id"], &health["node"]["redis"]["ok"]), (200, &json!(node_a), &json!(true)));

    let grace = a.register("Grace", "instructor").await;
    let course = a.course_with(&grace, &[]).await;
    let session = a.session_in(&grace, &course, 0, None).await;
    let (status, started) = a.post(&format!("/api/live-sessions/{session}/start"), &grace.token, json!({})).await;
    assert_eq!(status, 200, "{started}");
    let lease = format!("classroom:owner:room:{}", started["chatRoomId"].as_str().expect("room"));
    let mut redis =
        redis::Client::open(url.as_str()).expect("REDIS_URL").get_multiplexed_async_connection().await.expect("Redis");
    let holder: Option<String> = redis::cmd("GET").arg(&lease).query_async(&mut redis).await.expect("GET");
    assert_eq!(holder, Some(node_a.to_string()), "the node that started the session holds its room");

    // As a Redis restart would: the lease is gone; its owner writes it back.
    let _: () = redis::cmd("DEL").arg(&lease).query_async(&mut redis).await.expect("DEL");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let holder: Option<String> = redis::cmd("GET").arg(&lease).query_async(&mut redis).await.expect("GET");
        if holder.is_some() {
            assert_eq!(holder, Some(node_a.to_string()), "written back by its owner, not taken by another");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the lease was not written back within two heartbeats");
        actix_web::rt::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // And the room is still one room: a socket on B gets in and talks.
    let (mut socket, _) = joined(&b, &grace, &session).await;
    let ack = socket.request("session-message", json!({ "sessionId": session, "message": "still one room" })).await;
    assert_eq!(ack["ok"], true, "{ack}");
    assert_eq!(
        [&a, &b].map(|app| app.state.registry.live_sessions.existing(room_of(&started)).is_some()),
        [true, false]
    );
}

/// A lease another node holds now (as after a Redis restored from another
/// node's writes) is given up by the node whose actor it was: its sockets
/// in the room are told to reconnect (1001), to rejoin where the room is now.
#[actix_web::test]
async fn a_lease_another_node_took_is_given_up_and_the_rooms_sockets_reconnect() {
    let Some(url) = redis_url() else { return };
    let (a, b) = two_nodes_with(&url, quick_heartbeat).await;
    let node_b = b.state.registry.cluster.as_ref().expect("a node").node_id;
    let grace = a.register("Grace", "instructor").await;
    let course = a.course_with(&grace, &[]).await;
    let session = a.session_in(&grace, &course, 0, None).await;
    let (status, started) = a.post(&format!("/api/live-sessions/{session}/start"), &grace.token, json!({})).await;
    assert_eq!(status, 200, "{started}");
    let (mut socket, _) = joined(&a, &grace, &session).await;

    let lease = format!("classroom:owner:room:{}", room_of(&started));
    let mut redis =
        redis::Client::open(url.as_str()).expect("REDIS_URL").get_multiplexed_async_connection().await.expect("Redis");
    let _: () = redis::cmd("SET").arg(&lease).arg(node_b.to_string()).query_async(&mut redis).await.expect("SET");
    assert_eq!(socket.closed().await, Some(1001), "told to reconnect within a heartbeat or two");
    let cluster = a.state.registry.cluster.as_ref().expect("a node");
    assert_eq!(
        cluster.known_owner(&format!("room:{}", room_of(&started))),
        None,
        "A no longer takes itself for the owner"
    );
    let holder: Option<String> = redis::cmd("GET").arg(&lease).query_async(&mut redis).await.expect("GET");
    assert_eq!(holder, Some(node_b.to_string()), "and left the lease to B");
}

/// A node killed but still listed (its heartbeat not lapsed yet) answers
/// nothing: once an ask of it timed out, the asks that follow skip it for
/// a heartbeat instead of each waiting out the timeout (every presence that
/// starts asks every node for its user's sockets).
#[actix_web::test]
async fn a_listed_node_that_does_not_answer_is_skipped_after_its_first_timeout() {
    let Some(url) = redis_url() else { return };
    // A Redis database of its own: the ghost must not slow the other tests' nodes.
    let scheme_end = url.find("://").map_or(0, |at| at + 3);
    let authority_end = url[scheme_end..].find(['/', '?']).map_or(url.len(), |at| at + scheme_end);
    let url = format!("{}/11", &url[..authority_end]);
    let config = |config: &mut classroom::config::Config| {
        config.redis_url = Some(url.clone());
        config.node_timeout_secs = 30; // a heartbeat every 10 s: the skip lasts the whole test
        config.auth_attempts_per_client = 0; // as many people as it takes
    };
    let app = start_on(fresh_database(), config, None).await;
    let mut redis =
        redis::Client::open(url.as_str()).expect("REDIS_URL").get_multiplexed_async_connection().await.expect("Redis");
    let ghost = Uuid::new_v4().to_string();
    let _: () = redis::cmd("SADD").arg("classroom:nodes").arg(&ghost).query_async(&mut redis).await.expect("SADD");
    let alive = format!("classroom:alive:{ghost}");
    let _: () = redis::cmd("SET").arg(&alive).arg("1").arg("EX").arg(60).query_async(&mut redis).await.expect("SET");

    let skips = |metrics: &str| -> u64 {
        let line = metrics.lines().find(|line| line.starts_with("classroom_cluster_silent_node_skips_total "));
        line.and_then(|line| line.rsplit(' ').next()?.parse().ok()).expect("the metric")
    };
    let watcher = app.register("Watcher", "student").await;
    let (_, _, metrics) = app.get_text("/metrics", &watcher.token).await;
    assert_eq!(skips(&metrics), 0);
    // People come online one after another; the first presences wait for
    // the ghost (a second each), the ones after its first timeout do not ask it.
    let mut sockets = Vec::new();
    let started = std::time::Instant::now();
    loop {
        let user = app.register("Ada", "student").await;
        sockets.push(app.connect(&user).await);
        let (_, _, metrics) = app.get_text("/metrics", &watcher.token).await;
        if skips(&metrics) > 0 {
            break;
        }
        assert!(started.elapsed() < crate::helpers::WAIT, "the ghost was asked every time");
    }
    let _: () = redis::cmd("SREM").arg("classroom:nodes").arg(&ghost).query_async(&mut redis).await.expect("SREM");
    let _: () = redis::cmd("DEL").arg(&alive).query_async(&mut redis).await.expect("DEL");
}

fn room_of(session: &Value) -> Uuid {
    Uuid::parse_str(session["chatRoomId"].as_str().expect("chatRoomId")).expect("uuid")
}

#[actix_web::test]
async fn a_logout_on_one_node_closes_the_tokens_sockets_on_the_other() {
    let Some(url) = redis_url() else { return };
    let (a, b) = two_nodes(&url).await;
    let ada = a.register("Ada", "student").await;
    let mut on_b = b.connect(&ada).await;
    let (status, _) = a.request("POST", "/api/auth/logout", Some(&ada.token), None).await;
    assert_eq!(status, 204);
    assert_eq!(on_b.closed().await, Some(4003), "closed as revoked, on the other node too");
}

/// An office-hours queue whose students sit on two nodes: the instructor's
/// office hours run on one node, joins racing on both get distinct places,
/// each student hears their place wherever their socket is, an admission
/// opens a private room the student enters through the other node, and a
/// student online only on the other node is not taken for absent.
#[actix_web::test]
async fn an_office_hours_queue_spans_two_nodes_with_one_order() {
    let Some(url) = redis_url() else { return };
    let (a, b) = two_nodes(&url).await;
    let grace = a.register("Grace", "instructor").await;
    let names = ["Ada", "Bob", "Cleo", "Dan"];
    let mut students = Vec::new();
    for name in names {
        students.push(a.register(name, "student").await);
    }
    a.course_with(&grace, &students.iter().collect::<Vec<_>>()).await;
    // Opened through B: B holds Grace's office hours from now on.
    let (status, opened) = b.post("/api/office-hours/open", &grace.token, json!({})).await;
    assert_eq!((status, opened["isOpen"].as_bool()), (200, Some(true)), "{opened}");
    let grace_id = Uuid::parse_str(&grace.id).expect("uuid");
    let held = [&a, &b].map(|app| app.state.registry.office_hours.existing(grace_id).is_some());
    assert_eq!(held, [false, true], "the office hours live on node B only");

    // Students on both nodes join at once; the instructor watches from A.
    let mut instructor = a.connect(&grace).await;
    let mut sockets = Vec::new();
    for (n, student) in students.iter().enumerate() {
        sockets.push(if n % 2 == 0 { a.connect(student).await } else { b.connect(student).await });
    }
    let joins = sockets.iter_mut().map(|socket| {
        socket.request("join-office-hours-queue", json!({ "instructorId": grace.id, "question": "Lifetimes?" }))
    });
    let answers = futures_util::future::join_all(joins).await;
    let mut positions: Vec<u64> =
        answers.iter().map(|ack| ack["data"]["entry"]["position"].as_u64().expect("a position")).collect();
    positions.sort();
    assert_eq!(positions, vec![1, 2, 3, 4], "{answers:?}");
    let entry_of = |n: usize| answers[n]["data"]["entry"]["id"].as_str().expect("entry id").to_string();
    let first = answers.iter().position(|ack| ack["data"]["entry"]["position"] == 1).expect("a first");
    let (status, queue) = a.get("/api/office-hours/queue", &grace.token).await;
    assert_eq!((status, queue["entries"].as_array().map(Vec::len)), (200, Some(4)), "{queue}");

    // Admitted through A: the student hears it on their node, the others move up on theirs.
    let (status, admitted) =
        a.post(&format!("/api/office-hours/admit/{}", entry_of(first)), &grace.token, json!({})).await;
    assert_eq!(status, 200, "{admitted}");
    let room = admitted["roomId"].as_str().expect("room").to_string();
    let heard = sockets[first].next_event("admitted-to-office-hours").await;
    assert_eq!(heard["data"]["roomId"], room.as_str(), "{heard}");
    for (n, socket) in sockets.iter_mut().enumerate().filter(|(n, _)| *n != first) {
        let was = answers[n]["data"]["entry"]["position"].as_u64().expect("position");
        let moved = socket.next_event("queue-position").await;
        assert_eq!(moved["data"]["position"].as_u64(), Some(was - 1), "student {n}: {moved}");
    }

    // The private room, with its two people on different nodes.
    let joined = instructor.request("join-room", json!({ "roomId": room })).await;
    assert_eq!(joined["ok"], true, "{joined}");
    let joined = sockets[first].request("join-room", json!({ "roomId": room })).await;
    assert_eq!(joined["ok"], true, "{joined}");
    let said = instructor.request("room-message", json!({ "roomId": room, "message": "Show me the error" })).await;
    assert_eq!(said["ok"], true, "{said}");
    let seen = sockets[first].next_event("new-message").await;
    assert_eq!(seen["data"]["message"]["message"], "Show me the error", "{seen}");

    // Completed through B: the student is told and put out of the room, wherever it lives.
    let complete = format!("/api/office-hours/queue/{}/complete", entry_of(first));
    let (status, done) = b.post(&complete, &grace.token, json!({})).await;
    assert_eq!((status, done["status"].as_str()), (200, Some("completed")), "{done}");
    let told = sockets[first].next_event("office-hours-completed").await;
    assert_eq!(told["data"]["reason"], "completed", "{told}");
    // The room's node hears it from B a moment after the student does; the
    // instructor hears her leave once it has, and she can say no more.
    let left = instructor.next_event("user-left").await;
    assert_eq!(left["data"]["userId"].as_str(), Some(students[first].id.as_str()), "{left}");
    let after = sockets[first].request("room-message", json!({ "roomId": room, "message": "one more?" })).await;
    assert_eq!(after["error"]["code"], "forbidden", "{after}");

    // Absence is judged across nodes: of the three still waiting, the one
    // whose socket closes is dropped after the grace; a student online
    // only on A (the office hours are on B) stays.
    let waiting: Vec<usize> = (0..4).filter(|n| *n != first).collect();
    let staying_on_a = *waiting.iter().find(|n| **n % 2 == 0).expect("two of the four are on A");
    let leaver = *waiting.iter().find(|n| **n != staying_on_a).expect("three wait");
    sockets.remove(leaver).close().await;
    let leaver_id = Uuid::parse_str(&students[leaver].id).expect("uuid");
    let hub = if leaver % 2 == 0 { &a.state.registry.hub } else { &b.state.registry.hub };
    assert!(crate::helpers::eventually(|| hub.sockets_of(leaver_id).is_empty()).await, "the socket is gone");
    let office = b.state.registry.office_hours.existing(grace_id).expect("the office hours on B");
    for step in [1, 119, 1] {
        b.clock.advance(chrono::Duration::seconds(step));
        office.send(classroom::engine::office_hours::Sweep).await.expect("the office hours answer");
    }
    let (_, queue) = b.get("/api/office-hours/queue", &grace.token).await;
    let still: HashSet<String> = queue["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["status"] == "waiting")
        .filter_map(|e| e["studentName"].as_str().map(str::to_string))
        .collect();
    assert!(!still.contains(names[leaver]), "the one who left is dropped: {queue}");
    assert!(still.contains(names[staying_on_a]), "online on A, so not absent: {queue}");
    assert_eq!(still.len(), 2, "{queue}");
}

/// A push to many users (a course) is one message to every node; to a few,
/// a publication per user. Either way each of their sockets gets it once,
/// on whichever node it is.
#[actix_web::test]
async fn a_push_to_a_course_reaches_each_socket_once_on_either_node() {
    use classroom::engine::cluster::broker::USERS_PUBLISHED_ONE_BY_ONE;
    let Some(url) = redis_url() else { return };
    let (a, b) = two_nodes(&url).await;
    let ada = a.register("Ada", "student").await;
    let bob = a.register("Bob", "student").await;
    let mut on_b = b.connect(&ada).await;
    on_b.next_event("connected").await;
    let mut on_a = a.connect(&bob).await;
    on_a.next_event("connected").await;
    let ids = [&ada, &bob].map(|user| Uuid::parse_str(&user.id).expect("uuid"));
    // B listens to Ada's topic once her socket is in: wait for it before a per-user publication.
    let cluster_b = b.state.registry.cluster.as_ref().expect("a node");
    let _ = cluster_b.sync_topic(classroom::engine::hub::Topic::User(ids[0])).await;

    for (n, others) in [(1, USERS_PUBLISHED_ONE_BY_ONE * 2), (2, 0)] {
        let mut users: Vec<Uuid> = (0..others).map(|_| Uuid::new_v4()).collect();
        users.extend(ids);
        let frame = classroom::protocol::event_frame("probe", &json!({ "n": n }));
        a.state.registry.broker.publish_to_users(&mut users.into_iter(), &frame);
        for socket in [&mut on_b, &mut on_a] {
            assert_eq!(socket.next_event("probe").await["data"]["n"], n);
            assert!(!socket.receives_within("probe", std::time::Duration::from_millis(200)).await, "once, not twice");
        }
    }
}

/// Idle office hours stop (they come back at the next call), but not while
/// a socket on another node watches their status: its node says so in Redis.
#[actix_web::test]
async fn idle_office_hours_stop_once_no_node_watches_them() {
    let Some(url) = redis_url() else { return };
    let (a, b) = two_nodes(&url).await;
    let grace = a.register("Grace", "instructor").await;
    let ada = a.register("Ada", "student").await;
    a.course_with(&grace, &[&ada]).await;
    assert_eq!(b.post("/api/office-hours/open", &grace.token, json!({})).await.0, 200);
    assert_eq!(b.post("/api/office-hours/close", &grace.token, json!({})).await.0, 200);
    let grace_id = Uuid::parse_str(&grace.id).expect("uuid");
    let mut watcher = a.connect(&ada).await;
    let watched = watcher.request("watch-office-hours", json!({ "instructorId": grace.id })).await;
    assert_eq!(watched["ok"], true, "{watched}");

    let sweep_a_minute = || async {
        for _ in 0..12 {
            let Some(office) = b.state.registry.office_hours.existing(grace_id) else { return };
            b.clock.advance(chrono::Duration::seconds(5));
            let _ = office.send(classroom::engine::office_hours::Sweep).await;
        }
    };
    sweep_a_minute().await;
    sweep_a_minute().await;
    assert!(b.state.registry.office_hours.existing(grace_id).is_some(), "watched from node A: it stays");

    watcher.close().await;
    let hub = &a.state.registry.hub;
    let ada_id = Uuid::parse_str(&ada.id).expect("uuid");
    assert!(crate::helpers::eventually(|| hub.sockets_of(ada_id).is_empty()).await, "the socket is gone");
    let stopped = async {
        for _ in 0..20 {
            sweep_a_minute().await;
            if b.state.registry.office_hours.existing(grace_id).is_none() {
                return true;
            }
        }
        false
    };
    assert!(stopped.await, "closed, nobody waiting, nobody watching: it stops");
    let (status, office) = a.get(&format!("/api/office-hours/instructor/{}", grace.id), &ada.token).await;
    assert_eq!((status, office["isOpen"].as_bool()), (200, Some(false)), "and answers again when asked: {office}");
}

#[actix_web::test]
async fn a_study_group_spans_two_nodes_with_rest_and_sockets_in_one_room() {
    let Some(url) = redis_url() else { return };
    let (a, b) = two_nodes(&url).await;
    let grace = a.register("Grace", "instructor").await;
    let (ada, bob, cleo) =
        (a.register("Ada", "student").await, a.register("Bob", "student").await, a.register("Cleo", "student").await);
    let course = a.course_with(&grace, &[&ada, &bob, &cleo]).await;
    let (status, group) = a
        .post(
            "/api/study-groups",
            &ada.token,
            json!({ "name": "Ownership", "courseId": course, "visibility": "public" }),
        )
        .await;
    assert_eq!(status, 201, "{group}");
    let group_id = group["id"].as_str().expect("id").to_string();
    let room = group["chatRoomId"].as_str().expect("room").to_string();
    for (app, student) in [(&b, &bob), (&a, &cleo)] {
        let (status, joined) = app.post(&format!("/api/study-groups/{group_id}/join"), &student.token, json!({})).await;
        assert_eq!(status, 200, "{joined}");
    }
    let mut bob_socket = in_room(&b, &bob, &room).await;
    let mut cleo_socket = in_room(&a, &cleo, &room).await;
    let mut ada_socket = in_room(&a, &ada, &room).await;

    // One actor for the room; REST goes through the node that does not hold it.
    let room_id = Uuid::parse_str(&room).expect("uuid");
    let held = [&a, &b].map(|app| app.state.registry.study_groups.existing(room_id).is_some());
    assert_eq!(held.iter().filter(|held| **held).count(), 1, "one node holds the room: {held:?}");
    let elsewhere = if held[0] { &b } else { &a };
    let post = format!("/api/study-groups/{group_id}/message");
    let (status, first) = elsewhere.post(&post, &ada.token, json!({ "message": "Notes?", "clientMsgId": "r1" })).await;
    assert_eq!(status, 201, "{first}");
    let (status, again) = elsewhere.post(&post, &ada.token, json!({ "message": "Notes?", "clientMsgId": "r1" })).await;
    assert_eq!((status, &again["id"]), (201, &first["id"]), "a resend is the message stored first");
    let still = [&a, &b].map(|app| app.state.registry.study_groups.existing(room_id).is_some());
    assert_eq!(still, held, "posting over REST started no second actor");
    let reply = bob_socket.request("room-message", json!({ "roomId": room, "message": "Here" })).await;
    assert_eq!(reply["ok"], true, "{reply}");
    let order = vec![
        first["id"].as_str().expect("id").to_string(),
        reply["data"]["message"]["id"].as_str().expect("id").to_string(),
    ];
    for socket in [&mut bob_socket, &mut cleo_socket, &mut ada_socket] {
        assert_eq!(messages(socket, 2).await, order, "every member sees both, once, in one order");
    }
    let (status, history) = a.get(&format!("/api/study-groups/{group_id}/messages"), &cleo.token).await;
    let stored: Vec<&str> = history
        .as_array()
        .or(history["messages"].as_array())
        .expect("messages")
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert_eq!((status, stored.len()), (200, 2), "{history}");

    // Bob removed through the other node: his socket is put out of the room where it lives.
    let (status, _) = elsewhere
        .request("DELETE", &format!("/api/study-groups/{group_id}/members/{}", bob.id), Some(&ada.token), None)
        .await;
    assert_eq!(status, 204);
    let told = bob_socket.next_event("removed-from-study-group").await;
    assert_eq!(told["data"]["roomId"].as_str(), Some(room.as_str()), "{told}");
    let left = cleo_socket.next_event("user-left").await;
    assert_eq!(left["data"]["userId"].as_str(), Some(bob.id.as_str()), "{left}");
    let after = bob_socket.request("room-message", json!({ "roomId": room, "message": "still here?" })).await;
    assert_eq!(after["error"]["code"], "forbidden", "{after}");
}

/// Ada's status as `reader` gets it through `app`.
async fn status_of(app: &TestApp, reader: &TestUser, user: &TestUser) -> String {
    let (status, view) = app.get(&format!("/api/presence/user/{}", user.id), &reader.token).await;
    assert_eq!(status, 200, "{view}");
    view["status"].as_str().expect("a status").to_string()
}

#[actix_web::test]
async fn a_user_with_tabs_on_two_nodes_is_online_once_until_the_last_closes() {
    let Some(url) = redis_url() else { return };
    let (a, b) = two_nodes(&url).await;
    let grace = a.register("Grace", "instructor").await;
    let (ada, bob) = (a.register("Ada", "student").await, b.register("Bob", "student").await);
    let course = a.course_with(&grace, &[&ada, &bob]).await;
    let mut bob_socket = b.connect(&bob).await;
    // Diffs too, on both nodes: whichever holds Ada's presence, one hears it from the other.
    let mut bob_diffs = [a.connect_with(&bob, "presence=diff").await, b.connect_with(&bob, "presence=diff").await];

    let ada_on_a = a.connect(&ada).await;
    let ada_on_b = b.connect(&ada).await;
    let ada_id = Uuid::parse_str(&ada.id).expect("uuid");
    let holders = || [&a, &b].iter().filter(|app| app.state.registry.presence.existing(ada_id).is_some()).count();
    // Each node hears of its tab a moment after the socket opens.
    assert!(crate::helpers::eventually(|| holders() >= 1).await, "a node holds Ada's presence");
    assert_eq!(holders(), 1, "one node holds Ada's presence, not one per tab");
    for app in [&a, &b] {
        assert_eq!(status_of(app, &bob, &ada).await, "online", "through {}", app.address);
        let (status, online) = app.get(&format!("/api/presence/course/{course}"), &bob.token).await;
        let ids: Vec<&str> = online.as_array().expect("a list").iter().filter_map(|p| p["userId"].as_str()).collect();
        assert_eq!((status, ids.iter().filter(|id| **id == ada.id).count()), (200, 1), "Ada once: {online}");
    }
    let seen = bob_socket.next_event("presence-updated").await;
    assert_eq!(
        (seen["data"]["userId"].as_str(), seen["data"]["status"].as_str()),
        (Some(ada.id.as_str()), Some("online"))
    );

    // One tab closes: still online. The other: offline, and Bob hears it.
    ada_on_a.close().await;
    assert!(crate::helpers::eventually(|| a.state.registry.hub.sockets_of(ada_id).is_empty()).await);
    for app in [&a, &b] {
        assert_eq!(status_of(app, &bob, &ada).await, "online", "one tab left, through {}", app.address);
    }
    ada_on_b.close().await;
    loop {
        let heard = bob_socket.next_event("presence-updated").await;
        if heard["data"]["userId"] == ada.id.as_str() && heard["data"]["status"] == "offline" {
            break;
        }
    }
    for app in [&a, &b] {
        assert_eq!(status_of(app, &bob, &ada).await, "offline", "through {}", app.address);
    }
    for diffs in &mut bob_diffs {
        let statuses = heard_in_diffs(diffs, &ada, "offline").await;
        assert_eq!(statuses.first().map(String::as_str), Some("online"), "came online first: {statuses:?}");
    }
}

/// The statuses of `user` heard in a diff socket's frames, up to and with `last`.
async fn heard_in_diffs(socket: &mut WsClient, user: &TestUser, last: &str) -> Vec<String> {
    let mut statuses = Vec::new();
    while statuses.last().map(String::as_str) != Some(last) {
        let updates = socket.next_presence_diff().await;
        let about_user = updates.iter().filter(|update| update["userId"] == user.id.as_str());
        statuses.extend(about_user.map(|update| update["status"].as_str().unwrap_or_default().to_string()));
    }
    statuses
}

/// Waits for a chat message with this text (a sender hears its own too).
async fn heard(socket: &mut WsClient, text: &str) {
    while socket.next_event("new-message").await["data"]["message"]["message"] != text {}
}

/// Redis goes away under node A for a moment (a restart, a cut network)
/// while each room's owner goes on storing and acking: what A published
/// meanwhile never reached B, and what B published never reached A. Once
/// Redis is back, the sockets concerned are closed with 1012, and rejoining
/// with `sinceMessageId` gives each what it missed: no acked message is
/// lost to anyone.
#[actix_web::test]
async fn sockets_that_missed_frames_while_redis_was_away_are_sent_to_catch_up() {
    let Some(url) = redis_url() else { return };
    let (database, again) = {
        let database = fresh_database();
        let again = database.again();
        (database, again)
    };
    let (redis_of_a, through_proxy) = TcpProxy::in_front_of(&url).await;
    let a = start_on(database, |config| config.redis_url = Some(through_proxy), None).await;
    let b = start_on(again, |config| config.redis_url = Some(url.clone()), None).await;
    let grace = a.register("Grace", "instructor").await;
    let (ada, bob) = (a.register("Ada", "student").await, b.register("Bob", "student").await);
    let course = a.course_with(&grace, &[&ada, &bob]).await;
    // One session whose room is A's, one whose room is B's.
    let mut sessions = Vec::new();
    for owner in [&a, &b] {
        let session = a.session_in(&grace, &course, 0, None).await;
        let (status, _) = owner.post(&format!("/api/live-sessions/{session}/start"), &grace.token, json!({})).await;
        assert_eq!(status, 200);
        sessions.push(session);
    }
    let (on_a, on_b) = (sessions[0].clone(), sessions[1].clone());
    let mut ada_socket = a.connect(&ada).await;
    let mut bob_socket = b.connect(&bob).await;
    for session in [&on_a, &on_b] {
        for socket in [&mut ada_socket, &mut bob_socket] {
            let ack = socket.request("join-live-session", json!({ "sessionId": session })).await;
            assert_eq!(ack["ok"], true, "{ack}");
        }
    }
    let say = |session: &str, text: &str| json!({ "sessionId": session, "message": text, "clientMsgId": text });
    let ada_before = ada_socket.request("session-message", say(&on_a, "ada before")).await;
    let bob_before = bob_socket.request("session-message", say(&on_b, "bob before")).await;
    heard(&mut bob_socket, "ada before").await;
    heard(&mut ada_socket, "bob before").await;

    redis_of_a.set_down(true);
    let ada_cut = ada_socket.request("session-message", say(&on_a, "ada while cut")).await;
    let bob_cut = bob_socket.request("session-message", say(&on_b, "bob while cut")).await;
    assert_eq!(
        (&ada_cut["ok"], &bob_cut["ok"]),
        (&json!(true), &json!(true)),
        "each owner stores and acks: {ada_cut} {bob_cut}"
    );
    redis_of_a.set_down(false);

    // Bob, on B, missed Ada's message: A's notice of what it could not
    // publish closes his socket. Ada, on A, missed Bob's: A closes its
    // sockets once it listens again.
    assert_eq!(bob_socket.closed().await, Some(1012), "Bob's socket is sent to catch up");
    assert_eq!(ada_socket.closed().await, Some(1012), "Ada's socket is sent to catch up");

    for (app, user, session, last_seen, missed) in
        [(&b, &bob, &on_a, &ada_before, &ada_cut), (&a, &ada, &on_b, &bob_before, &bob_cut)]
    {
        let mut back = app.connect(user).await;
        let since = &last_seen["data"]["message"]["id"];
        let joined = back.request("join-live-session", json!({ "sessionId": session, "sinceMessageId": since })).await;
        assert_eq!(joined["ok"], true, "{joined}");
        let caught_up = back.take_pending();
        let texts: Vec<&Value> = caught_up
            .iter()
            .filter(|frame| frame["event"] == "new-message")
            .map(|frame| &frame["data"]["message"]["id"])
            .collect();
        assert_eq!(
            texts,
            [&missed["data"]["message"]["id"]],
            "{} gets exactly what it missed: {caught_up:?}",
            user.email
        );
    }
}
