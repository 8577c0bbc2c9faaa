//! Presence over real sockets and REST: classmates see each other come and
//! go, change status and activity; strangers see nothing; privacy hides what
//! it promises; tabs are aggregated; idling and expiries follow the test
//! clock; floods are coalesced; offline users are answered from the database.
//!
//! Time-driven changes (idle to away, a manual status expiring) are computed
//! on the test clock, but the actor's timer waits in real time: after moving
//! the clock the tests send the user's presence actor `Reevaluate`.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

use classroom::clock::Clock;
use classroom::engine::presence::{Reevaluate, MIN_PUBLISH_GAP};

use crate::helpers::{eventually, spawn_app, spawn_app_with, Incoming, TestApp, TestUser, WsClient};

/// Long enough for a push that is coming to arrive; used for "nothing comes".
const QUIET: Duration = Duration::from_millis(400);

/// The next `presence-updated` about `user`, skipping those about others.
async fn presence_of(socket: &mut WsClient, user: &TestUser) -> Value {
    loop {
        let event = socket.next_event("presence-updated").await;
        if event["data"]["userId"].as_str() == Some(user.id.as_str()) {
            return event["data"].clone();
        }
    }
}

/// The first status other than "online" heard of `user`: on a busy machine
/// a new classmate may first hear the other's "online" (published as they
/// became classmates) and then the change; both are right.
async fn status_after_online(socket: &mut WsClient, user: &TestUser) -> String {
    loop {
        let status = presence_of(socket, user).await["status"].as_str().unwrap_or_default().to_string();
        if status != "online" {
            return status;
        }
    }
}

/// Whether a `presence-updated` about `user` arrives within `wait`; other
/// frames are dropped. Reads the socket only (not frames an earlier call kept
/// aside): callers check for news that would come after their last request.
async fn hears_of(socket: &mut WsClient, user: &TestUser, wait: Duration) -> bool {
    let deadline = std::time::Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match socket.next_incoming(left).await {
            Some(Incoming::Json(frame)) => {
                let about_user = frame["data"]["userId"].as_str() == Some(user.id.as_str());
                if frame["event"] == "presence-updated" && about_user {
                    return true;
                }
            }
            Some(Incoming::Closed(_)) | None => return false,
        }
    }
}

fn time(value: &Value) -> DateTime<Utc> {
    serde_json::from_value(value.clone()).unwrap_or_else(|err| panic!("{value} is not a time: {err}"))
}

async fn put(app: &TestApp, path: &str, user: &TestUser, body: Value) -> (u16, Value) {
    app.request("PUT", path, Some(&user.token), Some(body)).await
}

/// Moves the test clock and has `user`'s presence actor look at it.
async fn advance_and_reevaluate(app: &TestApp, user: &TestUser, by: chrono::Duration) {
    app.clock.advance(by);
    let id = Uuid::parse_str(&user.id).unwrap();
    let presence = app.state.registry.presence.existing(id).expect("a live presence actor");
    // Awaited, so a later move of the clock cannot overtake this one.
    presence.send(Reevaluate).await.expect("the presence actor answers");
}

/// Ada and Bob, students of Grace's course, and the course id.
async fn classmates(app: &TestApp) -> (TestUser, TestUser, TestUser, String) {
    let grace = app.register("Grace", "instructor").await;
    let ada = app.register("Ada", "student").await;
    let bob = app.register("Bob", "student").await;
    let course = app.course_with(&grace, &[&ada, &bob]).await;
    (grace, ada, bob, course)
}

#[actix_web::test]
async fn classmates_see_each_other_come_online_change_and_go_offline() {
    let app = spawn_app().await;
    let (_, ada, bob, course) = classmates(&app).await;
    let mut ada_socket = app.connect(&ada).await;
    let mut bob_socket = app.connect(&bob).await;
    let came = presence_of(&mut ada_socket, &bob).await;
    assert_eq!((came["status"].as_str(), &came["activity"]), (Some("online"), &Value::Null), "{came}");
    assert_eq!(time(&came["lastSeenAt"]), app.clock.now(), "online since the connection");

    let ack = bob_socket.request("update-presence", json!({ "status": "busy", "activity": "Taking quiz" })).await;
    assert_eq!(ack["ok"], true, "{ack}");
    let mine = &ack["data"]["presence"];
    assert_eq!((mine["userId"].as_str(), mine["name"].as_str()), (Some(bob.id.as_str()), Some("Bob")));
    assert_eq!((mine["status"].as_str(), mine["activity"].as_str()), (Some("busy"), Some("Taking quiz")));
    let busy = presence_of(&mut ada_socket, &bob).await;
    assert_eq!((busy["status"].as_str(), busy["activity"].as_str()), (Some("busy"), Some("Taking quiz")));

    bob_socket.request("update-presence", json!({ "status": null })).await;
    let available = presence_of(&mut ada_socket, &bob).await;
    assert_eq!((available["status"].as_str(), available["activity"].as_str()), (Some("online"), Some("Taking quiz")));

    let (status, online) = app.get("/api/presence/online", &ada.token).await;
    assert_eq!(status, 200);
    assert_eq!(online.as_array().map(Vec::len), Some(1), "only Bob: {online}");
    assert_eq!((online[0]["userId"].as_str(), online[0]["name"].as_str()), (Some(bob.id.as_str()), Some("Bob")));
    let (status, in_course) = app.get(&format!("/api/presence/course/{course}"), &ada.token).await;
    assert_eq!((status, in_course[0]["userId"].as_str()), (200, Some(bob.id.as_str())), "{in_course}");
    let (status, me) = app.get(&format!("/api/presence/user/{}", ada.id), &ada.token).await;
    assert_eq!((status, me["status"].as_str()), (200, Some("online")), "I see myself: {me}");

    app.clock.advance(chrono::Duration::minutes(1));
    let left_at = app.clock.now();
    bob_socket.close().await;
    let gone = presence_of(&mut ada_socket, &bob).await;
    assert_eq!((gone["status"].as_str(), &gone["activity"]), (Some("offline"), &Value::Null), "{gone}");
    assert_eq!(time(&gone["lastSeenAt"]), left_at);
    let (status, seen) = app.get(&format!("/api/presence/user/{}", bob.id), &ada.token).await;
    assert_eq!((status, seen["status"].as_str()), (200, Some("offline")));
    assert_eq!(time(&seen["lastSeenAt"]), left_at);
    let (_, online) = app.get("/api/presence/online", &ada.token).await;
    assert_eq!(online, json!([]));

    // The last-seen time is stored (coalesced, through the persistence actor).
    let bob_id = bob.id.clone();
    let mut stored = None;
    for _ in 0..200 {
        let id = bob_id.clone();
        let row = app.state.db.read(move |conn| Ok(classroom::db::presence::find(conn, &id)?)).await.unwrap();
        if row.as_ref().is_some_and(|row| row.status == "offline") {
            stored = row;
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }
    let stored = stored.expect("the offline state is stored");
    assert_eq!(stored.last_seen_at, left_at.naive_utc());
    assert_eq!(stored.activity, None, "the activity ended with the last socket");
}

#[actix_web::test]
async fn a_stranger_sees_nothing() {
    let app = spawn_app().await;
    let (_, ada, bob, course) = classmates(&app).await;
    let eve = app.register("Eve", "student").await;
    let mut eve_socket = app.connect(&eve).await;
    let mut ada_socket = app.connect(&ada).await;
    let mut bob_socket = app.connect(&bob).await;
    presence_of(&mut ada_socket, &bob).await;
    bob_socket.request("update-presence", json!({ "status": "dnd", "activity": "Secret" })).await;
    presence_of(&mut ada_socket, &bob).await;
    assert!(!hears_of(&mut eve_socket, &bob, QUIET).await, "no push to a stranger");

    let (status, body) = app.get(&format!("/api/presence/user/{}", bob.id), &eve.token).await;
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("forbidden")), "{body}");
    let (status, _) = app.get(&format!("/api/presence/user/{}", Uuid::new_v4()), &eve.token).await;
    assert_eq!(status, 404, "an unknown id");
    let (status, _) = app.get("/api/presence/user/not-a-uuid", &eve.token).await;
    assert_eq!(status, 404);
    let (status, _) = app.get(&format!("/api/presence/course/{course}"), &eve.token).await;
    assert_eq!(status, 403, "not her course");
    let (status, _) = app.get(&format!("/api/presence/course/{}", Uuid::new_v4()), &eve.token).await;
    assert_eq!(status, 404);
    let (status, online) = app.get("/api/presence/online", &eve.token).await;
    assert_eq!((status, online), (200, json!([])));
    let (status, _) = app.request("GET", "/api/presence/online", None, None).await;
    assert_eq!(status, 401);

    // Nor does Bob see her.
    let (status, _) = app.get(&format!("/api/presence/user/{}", eve.id), &bob.token).await;
    assert_eq!(status, 403);
    eve_socket.request("update-presence", json!({ "status": "busy" })).await;
    assert!(!hears_of(&mut bob_socket, &eve, QUIET).await);
}

#[actix_web::test]
async fn privacy_settings_hide_what_they_promise() {
    let app = spawn_app().await;
    let (_, ada, bob, _) = classmates(&app).await;
    let mut ada_socket = app.connect(&ada).await;
    let mut bob_socket = app.connect(&bob).await;
    presence_of(&mut ada_socket, &bob).await;
    bob_socket.request("update-presence", json!({ "activity": "Viewing course: Rust 101" })).await;
    assert_eq!(presence_of(&mut ada_socket, &bob).await["activity"], "Viewing course: Rust 101");
    let bob_path = format!("/api/presence/user/{}", bob.id);

    let (status, settings) = put(&app, "/api/presence/privacy", &bob, json!({ "hideActivity": true })).await;
    assert_eq!(status, 200, "{settings}");
    assert_eq!(settings, json!({ "hideActivity": true, "hideLastSeen": false, "appearOffline": false }));
    let hidden = presence_of(&mut ada_socket, &bob).await;
    assert_eq!((hidden["status"].as_str(), &hidden["activity"]), (Some("online"), &Value::Null), "{hidden}");
    assert!(hidden["lastSeenAt"].is_string());
    let (_, seen) = app.get(&bob_path, &ada.token).await;
    assert_eq!(seen["activity"], Value::Null);
    let (_, own) = app.get(&bob_path, &bob.token).await;
    assert_eq!(own["activity"], "Viewing course: Rust 101", "Bob sees his own truth");

    put(&app, "/api/presence/privacy", &bob, json!({ "hideLastSeen": true })).await;
    let hidden = presence_of(&mut ada_socket, &bob).await;
    assert_eq!((&hidden["activity"], &hidden["lastSeenAt"]), (&Value::Null, &Value::Null), "both hidden: {hidden}");
    let (_, settings) = app.get("/api/presence/privacy", &bob.token).await;
    assert_eq!(settings, json!({ "hideActivity": true, "hideLastSeen": true, "appearOffline": false }));

    put(
        &app,
        "/api/presence/privacy",
        &bob,
        json!({ "hideActivity": false, "hideLastSeen": false, "appearOffline": true }),
    )
    .await;
    let invisible = presence_of(&mut ada_socket, &bob).await;
    assert_eq!(invisible, json!({ "userId": bob.id, "status": "offline", "activity": null, "lastSeenAt": null }));
    let (_, seen) = app.get(&bob_path, &ada.token).await;
    assert_eq!((seen["status"].as_str(), &seen["lastSeenAt"]), (Some("offline"), &Value::Null));
    let (_, online) = app.get("/api/presence/online", &ada.token).await;
    assert_eq!(online, json!([]), "appearing offline keeps Bob off the list");
    let (_, own) = app.get(&bob_path, &bob.token).await;
    assert_eq!(own["status"], "online", "Bob still works normally");

    let ack = bob_socket.request("update-presence", json!({ "status": "busy" })).await;
    assert_eq!(ack["data"]["presence"]["status"], "busy");
    assert!(!hears_of(&mut ada_socket, &bob, QUIET).await, "an invisible user's changes are not news");
    bob_socket.close().await;
    assert!(!hears_of(&mut ada_socket, &bob, QUIET).await, "nor is leaving");

    let (status, body) = put(&app, "/api/presence/privacy", &bob, json!({ "invisible": true })).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_json")), "{body}");
}

#[actix_web::test]
async fn a_user_with_three_tabs_closing_two_stays_online() {
    let app = spawn_app().await;
    let (_, ada, bob, _) = classmates(&app).await;
    let mut ada_socket = app.connect(&ada).await;
    let tab_1 = app.connect(&bob).await;
    assert_eq!(presence_of(&mut ada_socket, &bob).await["status"], "online");
    let tab_2 = app.connect(&bob).await;
    let mut tab_3 = app.connect(&bob).await;
    assert!(!hears_of(&mut ada_socket, &bob, QUIET).await, "more tabs are no news");

    tab_1.close().await;
    tab_2.close().await;
    assert!(!hears_of(&mut ada_socket, &bob, QUIET).await, "one tab is still open");
    let (_, seen) = app.get(&format!("/api/presence/user/{}", bob.id), &ada.token).await;
    assert_eq!(seen["status"], "online");
    let ack = tab_3.request("update-presence", json!({})).await;
    assert_eq!(ack["data"]["presence"]["status"], "online", "a heartbeat answers my presence");

    tab_3.close().await;
    assert_eq!(presence_of(&mut ada_socket, &bob).await["status"], "offline");
}

#[actix_web::test]
async fn idling_and_manual_expiry_follow_the_clock() {
    let app = spawn_app().await;
    let (_, ada, bob, _) = classmates(&app).await;
    let mut ada_socket = app.connect(&ada).await;
    let mut bob_socket = app.connect(&bob).await;
    presence_of(&mut ada_socket, &bob).await;

    advance_and_reevaluate(&app, &bob, chrono::Duration::seconds(301)).await;
    assert_eq!(presence_of(&mut ada_socket, &bob).await["status"], "away", "idle past PRESENCE_IDLE_SECS");
    bob_socket.request("update-presence", json!({})).await;
    assert_eq!(presence_of(&mut ada_socket, &bob).await["status"], "online", "the heartbeat is activity");

    let until = app.clock.now() + chrono::Duration::minutes(4);
    let (status, mine) = put(&app, "/api/presence/status", &bob, json!({ "status": "dnd", "expiresAt": until })).await;
    assert_eq!((status, mine["status"].as_str()), (200, Some("dnd")), "{mine}");
    assert_eq!(presence_of(&mut ada_socket, &bob).await["status"], "dnd");
    advance_and_reevaluate(&app, &bob, chrono::Duration::seconds(239)).await;
    assert!(!hears_of(&mut ada_socket, &bob, QUIET).await, "not expired yet");
    advance_and_reevaluate(&app, &bob, chrono::Duration::seconds(2)).await;
    assert_eq!(presence_of(&mut ada_socket, &bob).await["status"], "online", "expired; active four minutes ago");
    advance_and_reevaluate(&app, &bob, chrono::Duration::seconds(60)).await;
    assert_eq!(presence_of(&mut ada_socket, &bob).await["status"], "away");

    // Bad input is refused, on both paths, with a code that says why.
    let refusals = [
        (json!({ "status": "offline" }), "invalid_status"),
        (
            json!({ "status": "busy", "expiresAt": app.clock.now() - chrono::Duration::minutes(1) }),
            "expiry_not_in_future",
        ),
        (json!({ "expiresAt": app.clock.now() + chrono::Duration::minutes(1) }), "expiry_without_status"),
        (json!({ "activity": "x".repeat(101) }), "activity_too_long"),
    ];
    for (body, code) in refusals {
        let (status, answer) = put(&app, "/api/presence/status", &bob, body.clone()).await;
        assert_eq!((status, answer["error"]["code"].as_str()), (400, Some(code)), "{body}: {answer}");
        let ack = bob_socket.request("update-presence", body.clone()).await;
        assert_eq!(ack["error"]["code"].as_str(), Some(code), "{body}: {ack}");
    }
    let ack = bob_socket.request("update-presence", json!({ "statsu": "busy" })).await;
    assert_eq!(ack["error"]["code"], "invalid_data", "{ack}");
    let (_, mine) = app.get(&format!("/api/presence/user/{}", bob.id), &bob.token).await;
    assert_eq!(mine["activity"], Value::Null, "refused changes changed nothing");
}

/// Grace's session (starting now) in the course of Ada and Bob, both
/// connected, Ada already hearing of Bob.
async fn session_with_ada_watching_bob() -> (TestApp, TestUser, TestUser, String, WsClient, WsClient) {
    let app = spawn_app().await;
    let (grace, ada, bob, course) = classmates(&app).await;
    let session = app.session_in(&grace, &course, 0, None).await;
    let mut ada_socket = app.connect(&ada).await;
    let bob_socket = app.connect(&bob).await;
    presence_of(&mut ada_socket, &bob).await;
    (app, grace, bob, session, ada_socket, bob_socket)
}

#[actix_web::test]
async fn joining_a_live_session_shows_in_the_activity() {
    let (_app, _, bob, session, mut ada_socket, mut bob_socket) = session_with_ada_watching_bob().await;

    let joined = bob_socket.request("join-live-session", json!({ "sessionId": session })).await;
    assert_eq!(joined["ok"], true, "{joined}");
    assert_eq!(presence_of(&mut ada_socket, &bob).await["activity"], "In live session: Ownership");
    bob_socket.request("leave-live-session", json!({ "sessionId": session })).await;
    assert_eq!(presence_of(&mut ada_socket, &bob).await["activity"], Value::Null);

    // A line Bob set himself outlives the session he leaves.
    bob_socket.request("join-live-session", json!({ "sessionId": session })).await;
    presence_of(&mut ada_socket, &bob).await;
    bob_socket.request("update-presence", json!({ "activity": "Taking notes" })).await;
    assert_eq!(presence_of(&mut ada_socket, &bob).await["activity"], "Taking notes");
    bob_socket.request("leave-live-session", json!({ "sessionId": session })).await;
    assert!(!hears_of(&mut ada_socket, &bob, QUIET).await);
}

#[actix_web::test]
async fn my_own_view_tells_my_manual_status_and_an_automatic_activity() {
    let (app, _, bob, session, mut ada_socket, mut bob_socket) = session_with_ada_watching_bob().await;
    let me = format!("/api/presence/user/{}", bob.id);
    let (_, own) = app.get(&me, &bob.token).await;
    let automatic = json!({ "manualStatus": null, "manualStatusExpiresAt": null, "activityAutomatic": false });
    assert_eq!(own["own"], automatic, "{own}");

    bob_socket.request("join-live-session", json!({ "sessionId": session })).await;
    assert_eq!(presence_of(&mut ada_socket, &bob).await["activity"], "In live session: Ownership");
    let (_, own) = app.get(&me, &bob.token).await;
    assert_eq!(own["own"]["activityAutomatic"], true, "{own}");

    // A status saved with the automatic line sent back: the line stays the session's.
    let body = json!({ "status": "dnd", "activity": "In live session: Ownership" });
    let (status, saved) = put(&app, "/api/presence/status", &bob, body).await;
    assert_eq!(status, 200, "{saved}");
    let dnd = json!({ "manualStatus": "dnd", "manualStatusExpiresAt": null, "activityAutomatic": true });
    assert_eq!(saved["own"], dnd);
    let pushed = presence_of(&mut ada_socket, &bob).await;
    assert_eq!(pushed["status"], "dnd");
    assert!(pushed.get("own").is_none(), "only Bob sees his own settings: {pushed}");

    bob_socket.request("leave-live-session", json!({ "sessionId": session })).await;
    let after = presence_of(&mut ada_socket, &bob).await;
    assert_eq!((&after["status"], &after["activity"]), (&json!("dnd"), &Value::Null), "the line went with the session");
    let (_, own) = app.get(&me, &bob.token).await;
    assert_eq!(own["own"]["manualStatus"], "dnd", "{own}");
    assert_eq!(own["own"]["activityAutomatic"], false);
}

#[actix_web::test]
async fn the_session_line_goes_when_the_instructor_ends_the_session() {
    let (app, grace, bob, session, mut ada_socket, mut bob_socket) = session_with_ada_watching_bob().await;
    let path = format!("/api/live-sessions/{session}");
    let (status, _) = app.post(&format!("{path}/start"), &grace.token, json!({})).await;
    assert_eq!(status, 200);
    let joined = bob_socket.request("join-live-session", json!({ "sessionId": session })).await;
    assert_eq!(joined["ok"], true, "{joined}");
    assert_eq!(presence_of(&mut ada_socket, &bob).await["activity"], "In live session: Ownership");

    let (status, _) = app.post(&format!("{path}/end"), &grace.token, json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(presence_of(&mut ada_socket, &bob).await["activity"], Value::Null, "Bob is no longer in a session");
}

#[actix_web::test]
async fn a_flood_of_changes_is_coalesced() {
    let app = spawn_app().await;
    let (_, ada, bob, _) = classmates(&app).await;
    let mut ada_socket = app.connect(&ada).await;
    let mut bob_socket = app.connect(&bob).await;
    presence_of(&mut ada_socket, &bob).await;

    let burst = std::time::Instant::now();
    for step in 0..30 {
        let ack = bob_socket.request("update-presence", json!({ "activity": format!("step {step}") })).await;
        assert_eq!(ack["ok"], true, "{ack}");
    }
    let took = burst.elapsed();
    let mut pushes = 0;
    loop {
        let update = presence_of(&mut ada_socket, &bob).await;
        pushes += 1;
        if update["activity"] == "step 29" {
            break;
        }
    }
    // At most one fan-out per MIN_PUBLISH_GAP, plus the one at the start and the trailing one.
    let allowed = (took.as_millis() / MIN_PUBLISH_GAP.as_millis()) as usize + 2;
    assert!(pushes <= allowed.min(29), "30 changes in {took:?} reached the watcher as {pushes} pushes");
    assert!(!hears_of(&mut ada_socket, &bob, QUIET).await, "the latest state went out last");
}

#[actix_web::test]
async fn offline_users_are_answered_from_the_stored_row() {
    let app = spawn_app_with(|config| config.presence_linger_secs = 0, None).await;
    let (_, ada, bob, _) = classmates(&app).await;
    let bob_id = Uuid::parse_str(&bob.id).unwrap();
    let bob_path = format!("/api/presence/user/{}", bob.id);
    let (_, never) = app.get(&bob_path, &ada.token).await;
    assert_eq!(
        never,
        json!({ "userId": bob.id, "name": "Bob", "status": "offline", "activity": null, "lastSeenAt": null })
    );

    let mut bob_socket = app.connect(&bob).await;
    bob_socket.request("update-presence", json!({ "status": "busy", "activity": "Reading" })).await;
    app.clock.advance(chrono::Duration::minutes(3));
    let left_at = app.clock.now();
    bob_socket.close().await;
    let stopped = eventually(|| app.state.registry.presence.existing(bob_id).is_none()).await;
    assert!(stopped, "the actor stops once the linger is over and its writes are in");

    let (status, seen) = app.get(&bob_path, &ada.token).await;
    assert_eq!((status, seen["status"].as_str(), &seen["activity"]), (200, Some("offline"), &Value::Null), "{seen}");
    assert_eq!(time(&seen["lastSeenAt"]), left_at, "from the stored row");
    let (status, _) = put(&app, "/api/presence/privacy", &bob, json!({ "hideLastSeen": true })).await;
    assert_eq!(status, 200);
    let (_, seen) = app.get(&bob_path, &ada.token).await;
    assert_eq!(seen["lastSeenAt"], Value::Null, "privacy applies to stored rows too");
    let (_, own) = app.get(&bob_path, &bob.token).await;
    assert_eq!(time(&own["lastSeenAt"]), left_at);

    // A fresh actor starts from what was stored: the manual status is back.
    let mut again = app.connect(&bob).await;
    let ack = again.request("update-presence", json!({})).await;
    assert_eq!(ack["data"]["presence"]["status"], "busy", "{ack}");
    assert_eq!(ack["data"]["presence"]["activity"], Value::Null, "a stale activity is not restored");
}

#[actix_web::test]
async fn the_contacts_index_lets_go_of_people_whose_presence_stopped() {
    let app = spawn_app_with(|config| config.presence_linger_secs = 0, None).await;
    let (_, ada, bob, _) = classmates(&app).await;
    let contacts = || {
        let index = app.state.registry.contacts.index();
        (index.user_count(), index.circle_count())
    };
    let mut ada_socket = app.connect(&ada).await;
    ada_socket.next_event("connected").await;
    let mut bob_socket = app.connect(&bob).await;
    bob_socket.next_event("connected").await;
    assert_eq!(presence_of(&mut ada_socket, &bob).await["status"], "online");
    // Ada's own entry comes with her presence actor's start-up read, which
    // hearing of Bob does not wait for.
    assert!(eventually(|| contacts() == (2, 1)).await, "two people online, one course held once: {:?}", contacts());

    bob_socket.close().await;
    assert!(eventually(|| contacts() == (1, 1)).await, "Bob is forgotten, the course kept for Ada: {:?}", contacts());
    ada_socket.close().await;
    assert!(eventually(|| contacts() == (0, 0)).await, "nothing is left: {:?}", contacts());
}

#[actix_web::test]
async fn contacts_list_offline_classmates_with_their_last_seen_time() {
    let app = spawn_app().await;
    let (_, ada, bob, _) = classmates(&app).await;
    let eve = app.register("Eve", "student").await;
    let mut ada_socket = app.connect(&ada).await;
    let bob_socket = app.connect(&bob).await;
    let _eve_socket = app.connect(&eve).await;
    assert_eq!(presence_of(&mut ada_socket, &bob).await["status"], "online");
    let (status, list) = app.get("/api/presence/contacts", &ada.token).await;
    assert_eq!(status, 200, "{list}");
    let names = |list: &Value| {
        list.as_array().unwrap().iter().map(|v| v["name"].as_str().unwrap().to_string()).collect::<Vec<_>>()
    };
    assert_eq!(names(&list), ["Bob", "Grace"], "online first; never seen after; no stranger, not me");

    app.clock.advance(chrono::Duration::minutes(2));
    let left_at = app.clock.now();
    bob_socket.close().await;
    assert_eq!(presence_of(&mut ada_socket, &bob).await["status"], "offline");
    let (_, list) = app.get("/api/presence/contacts", &ada.token).await;
    assert_eq!(names(&list), ["Bob", "Grace"], "seen before never");
    assert_eq!((list[0]["status"].as_str(), time(&list[0]["lastSeenAt"])), (Some("offline"), left_at), "{list}");
    assert_eq!((&list[1]["status"], &list[1]["lastSeenAt"]), (&json!("offline"), &Value::Null));
    assert!(list[0].get("own").is_none());

    let (status, _) = put(&app, "/api/presence/privacy", &bob, json!({ "hideLastSeen": true })).await;
    assert_eq!(status, 200);
    let (_, list) = app.get("/api/presence/contacts", &ada.token).await;
    let bob_seen = list.as_array().unwrap().iter().find(|v| v["name"] == "Bob").unwrap().clone();
    assert_eq!(bob_seen["lastSeenAt"], Value::Null, "privacy applies: {bob_seen}");

    let (_, one) = app.get("/api/presence/contacts?limit=1", &ada.token).await;
    assert_eq!(one.as_array().unwrap().len(), 1);
    for bad in ["limit=0", "limit=501", "limit=many"] {
        let (status, body) = app.get(&format!("/api/presence/contacts?{bad}"), &ada.token).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let (status, _) = app.request("GET", "/api/presence/contacts", None, None).await;
    assert_eq!(status, 401);
}

#[actix_web::test]
async fn presence_routes_are_in_the_openapi_document() {
    let app = spawn_app().await;
    let (status, doc) = app.request("GET", "/api/openapi.json", None, None).await;
    assert_eq!(status, 200);
    for path in [
        "/api/presence/status",
        "/api/presence/user/{user_id}",
        "/api/presence/online",
        "/api/presence/contacts",
        "/api/presence/course/{course_id}",
        "/api/presence/privacy",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} missing");
    }
}

#[actix_web::test]
async fn a_new_classmate_is_heard_at_once_not_after_the_watcher_cache_expires() {
    let app = spawn_app().await;
    let grace = app.register("Grace", "instructor").await;
    let ada = app.register("Ada", "student").await;
    let course = app.course_with(&grace, &[]).await;
    // Both online before they share anything: each actor has read its (empty) watchers.
    let mut grace_socket = app.connect(&grace).await;
    grace_socket.next_event("connected").await;
    let mut ada_socket = app.connect(&ada).await;
    ada_socket.next_event("connected").await;
    assert!(!hears_of(&mut ada_socket, &grace, QUIET).await, "strangers so far");

    let (status, _) = app.post(&format!("/api/courses/{course}/enroll"), &ada.token, json!({})).await;
    assert_eq!(status, 201);
    tokio::time::sleep(MIN_PUBLISH_GAP).await;
    let (status, _) = put(&app, "/api/presence/status", &grace, json!({ "status": "busy" })).await;
    assert_eq!(status, 200);
    assert_eq!(status_after_online(&mut ada_socket, &grace).await, "busy", "the new student hears the instructor");
    let (status, _) = put(&app, "/api/presence/status", &ada, json!({ "status": "away" })).await;
    assert_eq!(status, 200);
    assert_eq!(status_after_online(&mut grace_socket, &ada).await, "away", "and the instructor hears her");
}

/// A socket opened with `presence=diff` hears classmates arriving as
/// `presence-diff` frames of `presence-updated` payloads; a socket opened
/// without it still hears one `presence-updated` per person, and neither
/// hears the other format.
#[actix_web::test]
async fn a_diff_socket_hears_arrivals_in_batches_and_a_plain_socket_one_frame_per_person() {
    let app = spawn_app().await;
    let grace = app.register("Grace", "instructor").await;
    let mut crowd = Vec::new();
    for n in 0..12 {
        crowd.push(app.register(&format!("Student{n}"), "student").await);
    }
    let (ada, bob) = (app.register("Ada", "student").await, app.register("Bob", "student").await);
    let everyone: Vec<&TestUser> = crowd.iter().chain([&ada, &bob]).collect();
    app.course_with(&grace, &everyone).await;
    let mut ada_diffs = app.connect_with(&ada, "presence=diff").await;
    let mut bob_updates = app.connect(&bob).await;
    let _crowd_sockets = futures_util::future::join_all(crowd.iter().map(|student| app.connect(student))).await;
    let arrivals: HashSet<&str> = crowd.iter().map(|student| student.id.as_str()).collect();

    let mut heard_in_diffs = HashMap::new();
    while !arrivals.iter().all(|id| heard_in_diffs.contains_key(*id)) {
        for update in ada_diffs.next_presence_diff().await {
            let id = update["userId"].as_str().expect("an update names its user").to_string();
            heard_in_diffs.insert(id, update);
        }
    }
    for id in &arrivals {
        let update = &heard_in_diffs[*id];
        assert_eq!(update["status"], "online", "{update}");
        time(&update["lastSeenAt"]);
    }
    assert!(!ada_diffs.receives_within("presence-updated", QUIET).await, "a diff socket takes no single updates");

    let mut heard_one_by_one: HashMap<String, usize> = HashMap::new();
    while !arrivals.iter().all(|id| heard_one_by_one.contains_key(*id)) {
        let update = bob_updates.next_event("presence-updated").await;
        assert_eq!(update["data"]["status"], "online", "{update}");
        *heard_one_by_one.entry(update["data"]["userId"].as_str().unwrap_or_default().to_string()).or_default() += 1;
    }
    assert!(heard_one_by_one.values().all(|heard| *heard == 1), "each arrival once: {heard_one_by_one:?}");
    assert!(!heard_one_by_one.contains_key(&bob.id), "nobody hears of their own arrival");
    assert!(!bob_updates.receives_within("presence-diff", QUIET).await, "a plain socket takes no diffs");
}

#[actix_web::test]
async fn an_unknown_presence_format_is_refused_before_the_upgrade() {
    let app = spawn_app().await;
    let ada = app.register("Ada", "student").await;
    let (status, body) = app.get("/ws?presence=everything", &ada.token).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_presence_format")), "{body}");
    let url = format!("ws://127.0.0.1:{}/ws?token={}&presence=everything", app.port, ada.token);
    match awc::Client::new().ws(url).connect().await {
        Err(awc::error::WsClientError::InvalidResponseStatus(status)) => assert_eq!(status.as_u16(), 400),
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("an unknown presence format got a socket"),
    }
    let mut updates = app.connect_with(&ada, "presence=updates").await;
    assert_eq!(updates.next_event("connected").await["data"]["userId"].as_str(), Some(ada.id.as_str()));
}
