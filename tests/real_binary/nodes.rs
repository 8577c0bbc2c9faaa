//! Two nodes of the real binary on one PostgreSQL database and one Redis,
//! and `kill -9` of the node that holds a live session's room: the other
//! node takes the room over within the node timeout, its people hear who
//! left with the dead node, whose users go offline, chat goes on, and
//! whoever reconnects catches up with no loss and no duplicate. Runs when `REDIS_URL` is set and the
//! database is PostgreSQL (as on `.ci/run`'s PostgreSQL stage).

use std::time::Duration;

use serde_json::{json, Value};

use classroom::config::{backend_of, Backend};

use crate::faults::in_session;
use crate::helpers::fresh_database;
use crate::process::{redis_of_own, Remote, ServerProcess};

/// A `session-message` whose `clientMsgId` is its text.
pub fn chat(session: &str, text: &str) -> Value {
    json!({ "sessionId": session, "message": text, "clientMsgId": text })
}

#[actix_web::test]
async fn a_node_killed_under_a_live_session_leaves_no_ghost_and_loses_nothing() {
    let Some(redis) = std::env::var("REDIS_URL").ok().filter(|url| !url.is_empty()) else {
        return eprintln!("two nodes: REDIS_URL is not set");
    };
    let redis = redis_of_own(&redis, 1);
    let database = fresh_database();
    if backend_of(&database.url) != Backend::Postgres {
        return eprintln!("two nodes: several nodes share a PostgreSQL database, not a SQLite file");
    }
    let env = [("REDIS_URL", redis.as_str()), ("NODE_TIMEOUT_SECS", "3")];
    let mut doomed = ServerProcess::start_with(&database.url, &env);
    let mut survivor = ServerProcess::start_with(&database.url, &env);
    let (a, b) = (Remote::new(doomed.port().await), Remote::new(survivor.port().await));

    let grace = a.register("Grace", "instructor").await;
    let (ada, bob) = (a.register("Ada", "student").await, b.register("Bob", "student").await);
    // Started through A: the room is A's.
    let session = a.started_session(&grace, &[ada.clone(), bob.clone()]).await;
    let mut grace_socket = in_session(&b, &grace, &session).await;
    let mut ada_socket = in_session(&a, &ada, &session).await;
    let mut bob_socket = in_session(&b, &bob, &session).await;

    let mut acked = Vec::new();
    for n in 0..5 {
        let ack = ada_socket.request("session-message", chat(&session, &format!("ada {n}"))).await;
        assert_eq!(ack["ok"], true, "{ack}");
        acked.push(ack["data"]["message"]["id"].as_str().expect("id").to_string());
    }
    for _ in 0..5 {
        grace_socket.next_event("new-message").await;
    }

    // Presence is one truth: Ada, whose only socket is on A, is online as
    // seen through B.
    let ada_id = user_id(&b, &ada).await;
    let presence_of_ada = format!("/api/presence/user/{ada_id}");
    let (status, seen) = b.get(&presence_of_ada, &grace).await;
    assert_eq!((status, seen["status"].as_str()), (200, Some("online")), "{seen}");

    // As if A died before it stored her presence (it writes the row a
    // moment after the change): B, taking her presence over, must still
    // tell her classmates, who heard from A that she was on.
    forget_stored_presence(&database.url, &ada_id);

    doomed.kill();
    // B sees A's heartbeat lapse (3 s), takes the room over, and its people
    // hear that Ada, who was on A, is gone.
    grace_socket.wait = Duration::from_secs(15);
    let left = grace_socket.next_event("user-left").await;
    assert_eq!(left["data"]["userId"], json!(ada_id), "{left}");
    // And she is offline: her presence died with A, B took it over, found
    // no socket of hers and told her classmates.
    let (status, seen) = b.get(&presence_of_ada, &grace).await;
    assert_eq!((status, seen["status"].as_str()), (200, Some("offline")), "{seen}");
    loop {
        let heard = grace_socket.next_event("presence-updated").await;
        if heard["data"]["userId"] == json!(ada_id) && heard["data"]["status"] == "offline" {
            break;
        }
    }

    // Chat goes on in the room, now on B.
    let ack = bob_socket.request("session-message", chat(&session, "bob after")).await;
    assert_eq!(ack["ok"], true, "{ack}");
    acked.push(ack["data"]["message"]["id"].as_str().expect("id").to_string());
    let seen = grace_socket.next_event("new-message").await;
    assert_eq!(seen["data"]["message"]["id"].as_str(), acked.last().map(String::as_str));

    // Ada comes back through B, having seen up to her third message: she
    // gets the rest, each once, before her join's ack.
    let mut ada_again = b.socket(&ada).await;
    let joined =
        ada_again.request("join-live-session", json!({ "sessionId": session, "sinceMessageId": acked[2] })).await;
    assert_eq!(joined["ok"], true, "{joined}");
    let caught_up: Vec<String> = ada_again
        .take_pending()
        .iter()
        .filter(|frame| frame["event"] == "new-message")
        .map(|frame| frame["data"]["message"]["id"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(caught_up, acked[3..].to_vec(), "exactly what she missed, in order");

    // Everything acknowledged is stored once.
    let (status, history) = b.get(&format!("/api/live-sessions/{session}/messages?limit=100"), &grace).await;
    assert_eq!(status, 200, "{history}");
    let stored: Vec<String> =
        history.as_array().expect("list").iter().map(|m| m["id"].as_str().unwrap_or_default().to_string()).collect();
    assert_eq!(stored, acked);
}

/// The id of the user whose token this is.
pub async fn user_id(remote: &Remote, token: &str) -> String {
    let (status, me) = remote.get("/api/me", token).await;
    assert_eq!(status, 200, "{me}");
    me["id"].as_str().or(me["user"]["id"].as_str()).expect("my id").to_string()
}

/// A death is every live node's business (its rooms may hold the dead
/// node's sockets, its presences count them), not only the first's to see
/// it. Struck off the node list by the first, a dead node once went
/// unnoticed by the others: with three nodes, the survivor that did not see
/// it first kept the dead node's people in its rooms, and online.
#[actix_web::test]
async fn every_live_node_handles_a_death_not_only_the_first_to_see_it() {
    let Some(redis_url) = std::env::var("REDIS_URL").ok().filter(|url| !url.is_empty()) else {
        return eprintln!("two nodes: REDIS_URL is not set");
    };
    let redis_url = redis_of_own(&redis_url, 2);
    let database = fresh_database();
    if backend_of(&database.url) != Backend::Postgres {
        return eprintln!("two nodes: several nodes share a PostgreSQL database, not a SQLite file");
    }
    let env = [("REDIS_URL", redis_url.as_str()), ("NODE_TIMEOUT_SECS", "3")];
    let mut nodes = [ServerProcess::start_with(&database.url, &env), ServerProcess::start_with(&database.url, &env)];
    for node in nodes.iter_mut() {
        node.port().await;
    }
    // A node listed in the cluster with no heartbeat: dead, as a node
    // killed a timeout ago.
    let dead = uuid::Uuid::new_v4();
    let mut redis = redis::Client::open(redis_url.as_str())
        .expect("REDIS_URL")
        .get_multiplexed_async_connection()
        .await
        .expect("Redis answers");
    let _: () =
        redis::cmd("SADD").arg("classroom:nodes").arg(dead.to_string()).query_async(&mut redis).await.expect("SADD");
    // Each node says so in its log when it handles the death; nothing else
    // tells, so the logs are read until both said it (a heartbeat is a second).
    let said = format!("node {dead} stopped answering");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !nodes.iter().all(|node| node.log_text().contains(&said)) {
        let handled: Vec<bool> = nodes.iter().map(|node| node.log_text().contains(&said)).collect();
        assert!(std::time::Instant::now() < deadline, "the death handled by {handled:?} of the two nodes in 10 s");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Deletes a user's stored presence row.
fn forget_stored_presence(database_url: &str, user_id: &str) {
    use diesel::{Connection, RunQueryDsl};
    let mut conn = diesel::PgConnection::establish(database_url).expect("the test database");
    let deleted = diesel::sql_query(format!("DELETE FROM user_presence WHERE user_id = '{user_id}'"))
        .execute(&mut conn)
        .expect("delete the row");
    assert_eq!(deleted, 1, "her presence was stored");
}
