//! Office hours over real HTTP and sockets: the plan's scenario with one
//! instructor and students (positions pushed after an admission, a private
//! room with a link, completion), the refusals, and 100 concurrent joins
//! getting 100 distinct positions; and what follows the clock (the schedule
//! opening and closing the queue, absent students dropped, idle rooms
//! completed), moved on the test clock and swept at once with [`Sweep`].

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

use classroom::engine::office_hours::Sweep;

use crate::helpers::{eventually, spawn_app, spawn_app_with, TestApp, TestUser};
use crate::matrix::{assert_documented, Row};

/// Long enough for a push that is coming to arrive; used for "nothing comes".
const QUIET: Duration = Duration::from_millis(400);

async fn join(app: &TestApp, student: &TestUser, instructor: &TestUser) -> (u16, Value) {
    let body = json!({ "instructorId": instructor.id, "question": "How do I read a stack trace?" });
    app.post("/api/office-hours/join-queue", &student.token, body).await
}

#[actix_web::test]
async fn an_instructor_opens_students_queue_one_is_admitted_chats_privately_and_is_completed() {
    let app = spawn_app().await;
    let grace = app.register("Grace", "instructor").await;
    let students: Vec<TestUser> =
        futures_util::future::join_all(["Ada", "Bob", "Cleo"].map(|name| app.register(name, "student"))).await;
    let stranger = app.register("Sam", "student").await;
    app.course_with(&grace, &students.iter().collect::<Vec<_>>()).await;

    // Closed: no joining.
    let (status, refused) = join(&app, &students[0], &grace).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (409, Some("queue_closed")), "{refused}");
    let (status, opened) = app.post("/api/office-hours/open", &grace.token, json!({})).await;
    assert_eq!((status, opened["isOpen"].as_bool()), (200, Some(true)), "{opened}");

    let mut sockets = Vec::new();
    for student in &students {
        sockets.push(app.connect(student).await);
    }
    let mut entries = Vec::new();
    for (index, student) in students.iter().enumerate() {
        let (status, entry) = join(&app, student, &grace).await;
        assert_eq!(status, 201, "{entry}");
        assert_eq!(entry["position"], index + 1);
        assert_eq!(entry["status"], "waiting");
        entries.push(entry["id"].as_str().unwrap().to_string());
    }
    // The refusals: twice, a stranger, a student admitting.
    assert_eq!(join(&app, &students[0], &grace).await.1["error"]["code"], "already_in_queue");
    assert_eq!(join(&app, &stranger, &grace).await.0, 403);
    let admit = format!("/api/office-hours/admit/{}", entries[0]);
    assert_eq!(app.post(&admit, &students[1].token, json!({})).await.0, 403);
    let leave_other = format!("/api/office-hours/queue/{}/leave", entries[0]);
    assert_eq!(app.post(&leave_other, &students[1].token, json!({})).await.0, 404);

    // Admission: the student hears it, the others move up.
    let (status, admitted) = app.post(&admit, &grace.token, json!({})).await;
    assert_eq!(status, 200, "{admitted}");
    let room = admitted["roomId"].as_str().unwrap().to_string();
    let heard = sockets[0].next_event("admitted-to-office-hours").await;
    assert_eq!(heard["data"]["roomId"], room.as_str());
    let moved = sockets[1].next_event("queue-position").await;
    assert_eq!(moved["data"]["position"], 1, "{moved}");
    let moved = sockets[2].next_event("queue-position").await;
    assert_eq!(moved["data"]["position"], 2, "{moved}");

    // The private room: the instructor and the admitted student only.
    let mut instructor_socket = app.connect(&grace).await;
    let joined = instructor_socket.request("join-room", json!({ "roomId": room })).await;
    assert_eq!(joined["ok"], true, "{joined}");
    let joined = sockets[0].request("join-room", json!({ "roomId": room })).await;
    assert_eq!(joined["ok"], true, "{joined}");
    assert_eq!(joined["data"]["room"]["type"], "office_hours");
    let outsider = sockets[1].request("join-room", json!({ "roomId": room })).await;
    assert_eq!(outsider["error"]["code"], "forbidden", "{outsider}");
    let link = json!({ "roomId": room, "message": "https://docs.rs/chrono", "messageType": "link" });
    let sent = instructor_socket.request("room-message", link).await;
    assert_eq!(sent["ok"], true, "{sent}");
    let seen = sockets[0].next_event("new-message").await;
    assert_eq!(seen["data"]["message"]["messageType"], "link");

    // Completion: the student is told and leaves the room.
    let complete = format!("/api/office-hours/queue/{}/complete", entries[0]);
    let (status, done) = app.post(&complete, &grace.token, json!({})).await;
    assert_eq!((status, done["status"].as_str()), (200, Some("completed")), "{done}");
    let told = sockets[0].next_event("office-hours-completed").await;
    assert_eq!(told["data"]["reason"], "completed");
    // The room closes with its last student: the instructor, put out too,
    // hears her go first.
    let left = instructor_socket.next_event("user-left").await;
    assert_eq!(left["data"]["userId"].as_str(), Some(students[0].id.as_str()), "{left}");
    // The transcript stays readable for who was in the room, and only them.
    let history = format!("/api/office-hours/rooms/{room}/messages");
    let (status, page) = app.get(&history, &students[0].token).await;
    assert_eq!((status, page[0]["message"].as_str()), (200, Some("https://docs.rs/chrono")), "{page}");
    assert_eq!(app.get(&history, &grace.token).await.0, 200);
    assert_eq!(app.get(&history, &students[1].token).await.0, 403, "a classmate never admitted to it");
    let unknown = format!("/api/office-hours/rooms/{}/messages", uuid::Uuid::new_v4());
    assert_eq!(app.get(&unknown, &students[0].token).await.0, 404);

    // A defer moves Bob behind Cleo; closing cancels both and tells them.
    let defer = format!("/api/office-hours/queue/{}/defer", entries[1]);
    let (status, deferred) = app.post(&defer, &students[1].token, json!({})).await;
    assert_eq!((status, deferred["position"].as_u64()), (200, Some(2)), "{deferred}");
    assert_eq!(app.post(&defer, &students[1].token, json!({})).await.1["error"]["code"], "already_deferred");
    let (_, queue) = app.get("/api/office-hours/queue", &grace.token).await;
    let order: Vec<&str> =
        queue["entries"].as_array().unwrap().iter().map(|e| e["studentName"].as_str().unwrap()).collect();
    assert_eq!(order, vec!["Cleo", "Bob"]);
    let (status, closed) = app.post("/api/office-hours/close", &grace.token, json!({})).await;
    assert_eq!((status, closed["isOpen"].as_bool()), (200, Some(false)));
    let removed = sockets[2].next_event("removed-from-queue").await;
    assert_eq!(removed["data"]["reason"], "closed");
    let (_, mine) = app.get("/api/office-hours/my-queue", &students[2].token).await;
    assert_eq!(mine.as_array().map(Vec::len), Some(0), "{mine}");

    // The help counts in the analytics.
    let (status, days) = app.get("/api/office-hours/analytics", &grace.token).await;
    assert_eq!(status, 200, "{days}");
    assert_eq!(days[0]["helped"], 1, "{days}");
}

#[actix_web::test]
async fn a_hundred_concurrent_joins_get_a_hundred_distinct_positions() {
    // Many sign-ups from one address: lift the per-client limit for this test.
    let app = spawn_app_with(|config| config.auth_attempts_per_client = 1_000, None).await;
    let grace = app.register("Grace", "instructor").await;
    let mut students = Vec::new();
    for i in 0..100 {
        students.push(app.register(&format!("Student{i}"), "student").await);
    }
    app.course_with(&grace, &students.iter().collect::<Vec<_>>()).await;
    app.post("/api/office-hours/open", &grace.token, json!({})).await;
    let joins = futures_util::future::join_all(students.iter().map(|student| join(&app, student, &grace))).await;
    let mut positions: Vec<u64> = joins
        .iter()
        .map(|(status, entry)| {
            assert_eq!(*status, 201, "{entry}");
            entry["position"].as_u64().unwrap()
        })
        .collect();
    positions.sort_unstable();
    assert_eq!(positions, (1..=100).collect::<Vec<u64>>());
}

#[actix_web::test]
async fn slots_are_validated_and_overlaps_refused() {
    let app = spawn_app().await;
    let grace = app.register("Grace", "instructor").await;
    let student = app.register("Ada", "student").await;
    let slot = json!({ "dayOfWeek": 1, "startTime": "14:00", "endTime": "16:00", "timeZone": "Europe/Paris" });
    let (status, created) = app.post("/api/office-hours/schedule", &grace.token, slot).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["mode"], "queue");
    let overlapping = json!({ "dayOfWeek": 1, "startTime": "13:30", "endTime": "14:00", "timeZone": "UTC" });
    let (status, refused) = app.post("/api/office-hours/schedule", &grace.token, overlapping).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (409, Some("slot_overlaps")), "{refused}");
    for (bad, code) in [
        (json!({ "dayOfWeek": 1, "startTime": "16:00", "endTime": "15:00" }), "invalid_schedule"),
        (json!({ "dayOfWeek": 9, "startTime": "10:00", "endTime": "11:00" }), "invalid_schedule"),
        (
            json!({ "dayOfWeek": 2, "startTime": "10:00", "endTime": "11:00", "timeZone": "Mars/Base" }),
            "invalid_time_zone",
        ),
        (json!({ "dayOfWeek": 2, "startTime": "10:00", "endTime": "11:00", "mode": "walk-in" }), "invalid_mode"),
    ] {
        let (status, refused) = app.post("/api/office-hours/schedule", &grace.token, bad).await;
        assert_eq!((status, refused["error"]["code"].as_str()), (400, Some(code)), "{refused}");
    }
    assert_eq!(app.post("/api/office-hours/schedule", &student.token, json!({})).await.0, 403);
    let (status, view) = app.get(&format!("/api/office-hours/instructor/{}", grace.id), &grace.token).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["slots"].as_array().map(Vec::len), Some(1));
    assert!(view["nextOpenAt"].is_string(), "{view}");
    assert_eq!(app.get(&format!("/api/office-hours/instructor/{}", grace.id), &student.token).await.0, 403);
}

/// Wednesday 2 December 2026, 10:00 UTC, where the clock tests start.
fn wednesday_ten() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 2, 10, 0, 0).unwrap()
}

/// An app on Wednesday 10:00 with Grace teaching Ada and Bob.
async fn office_on_wednesday() -> (TestApp, TestUser, TestUser, TestUser) {
    let app = spawn_app().await;
    app.clock.set(wednesday_ten());
    let grace = app.register("Grace", "instructor").await;
    let ada = app.register("Ada", "student").await;
    let bob = app.register("Bob", "student").await;
    app.course_with(&grace, &[&ada, &bob]).await;
    (app, grace, ada, bob)
}

/// Moves the clock and runs the instructor's sweep now, waiting until the
/// actor took it (so the next move of the clock comes after this sweep).
async fn advance_and_sweep(app: &TestApp, instructor: &TestUser, by: chrono::Duration) {
    app.clock.advance(by);
    let id = Uuid::parse_str(&instructor.id).unwrap();
    let office = app.state.registry.office_hours.existing(id).expect("a live office hours actor");
    office.send(Sweep).await.expect("the office hours actor answers");
}

fn time(value: &Value) -> DateTime<Utc> {
    serde_json::from_value(value.clone()).unwrap_or_else(|err| panic!("{value} is not a time: {err}"))
}

#[actix_web::test]
async fn a_slot_opens_the_queue_when_it_starts_and_closing_at_its_end_cancels_who_waits() {
    let (app, grace, ada, _) = office_on_wednesday().await;
    let slot = json!({ "dayOfWeek": 3, "startTime": "10:30", "endTime": "11:30", "timeZone": "UTC" });
    let (status, slot) = app.post("/api/office-hours/schedule", &grace.token, slot).await;
    assert_eq!(status, 201, "{slot}");

    let mut ada_socket = app.connect(&ada).await;
    let watched = ada_socket.request("watch-office-hours", json!({ "instructorId": grace.id })).await;
    let before = &watched["data"]["status"];
    assert_eq!(before["isOpen"], false, "{watched}");
    assert_eq!(time(&before["nextOpenAt"]), wednesday_ten() + chrono::Duration::minutes(30));
    assert_eq!(join(&app, &ada, &grace).await.1["error"]["code"], "queue_closed");

    advance_and_sweep(&app, &grace, chrono::Duration::minutes(29)).await;
    assert!(!ada_socket.receives_within("office-hours-status", QUIET).await, "a minute early");
    advance_and_sweep(&app, &grace, chrono::Duration::minutes(1)).await;
    let opened = ada_socket.next_event("office-hours-status").await;
    assert_eq!(opened["data"]["isOpen"], true, "{opened}");
    assert_eq!(opened["data"]["currentSlot"]["id"], slot["id"], "{opened}");
    let (status, _) = app.post("/api/office-hours/announce", &grace.token, json!({ "message": "On time" })).await;
    assert_eq!(status, 201);
    let told = ada_socket.next_event("office-hours-status").await;
    assert_eq!(told["data"]["announcement"]["message"], "On time", "watchers see it without a place in the queue");
    let (status, entry) = join(&app, &ada, &grace).await;
    assert_eq!((status, entry["position"].as_u64()), (201, Some(1)), "{entry}");
    let (_, now_status) = app.get(&format!("/api/office-hours/instructor/{}", grace.id), &ada.token).await;
    assert_eq!(now_status["currentSlot"]["id"], slot["id"], "{now_status}");

    advance_and_sweep(&app, &grace, chrono::Duration::minutes(60)).await;
    let removed = ada_socket.next_event("removed-from-queue").await;
    assert_eq!(removed["data"]["reason"], "closed", "{removed}");
    let closed = loop {
        let status = ada_socket.next_event("office-hours-status").await;
        if status["data"]["isOpen"] == false {
            break status;
        }
    };
    let next_week = wednesday_ten() + chrono::Duration::days(7) + chrono::Duration::minutes(30);
    assert_eq!(time(&closed["data"]["nextOpenAt"]), next_week, "{closed}");
    let (_, mine) = app.get("/api/office-hours/my-queue", &ada.token).await;
    assert_eq!(mine.as_array().map(Vec::len), Some(0), "{mine}");
}

#[actix_web::test]
async fn a_student_without_a_socket_for_the_grace_period_is_dropped_and_one_with_a_socket_stays() {
    let (app, grace, ada, bob) = office_on_wednesday().await;
    app.post("/api/office-hours/open", &grace.token, json!({})).await;
    let ada_socket = app.connect(&ada).await;
    let mut bob_socket = app.connect(&bob).await;
    join(&app, &ada, &grace).await;
    let (_, bobs) = join(&app, &bob, &grace).await;
    assert_eq!(bobs["position"], 2, "{bobs}");

    ada_socket.close().await;
    let (hub, ada_id) = (&app.state.registry.hub, Uuid::parse_str(&ada.id).unwrap());
    assert!(eventually(|| hub.sockets_of(ada_id).is_empty()).await, "Ada's socket is gone");
    advance_and_sweep(&app, &grace, chrono::Duration::seconds(1)).await;
    advance_and_sweep(&app, &grace, chrono::Duration::seconds(119)).await;
    assert!(!bob_socket.receives_within("queue-position", QUIET).await, "a second of grace is left");
    advance_and_sweep(&app, &grace, chrono::Duration::seconds(1)).await;
    let moved = bob_socket.next_event("queue-position").await;
    assert_eq!(moved["data"]["position"], 1, "{moved}");
    let (_, queue) = app.get("/api/office-hours/queue", &grace.token).await;
    let names: Vec<&str> =
        queue["entries"].as_array().unwrap().iter().filter_map(|e| e["studentName"].as_str()).collect();
    assert_eq!(names, vec!["Bob"], "{queue}");
}

#[actix_web::test]
async fn a_private_room_without_messages_for_the_idle_time_completes_by_itself() {
    let (app, grace, ada, _) = office_on_wednesday().await;
    app.post("/api/office-hours/open", &grace.token, json!({})).await;
    let mut ada_socket = app.connect(&ada).await;
    let (_, entry) = join(&app, &ada, &grace).await;
    let (status, admitted) =
        app.post(&format!("/api/office-hours/admit/{}", entry["id"].as_str().unwrap()), &grace.token, json!({})).await;
    assert_eq!(status, 200, "{admitted}");
    let room = admitted["roomId"].as_str().unwrap().to_string();

    // A message ten minutes in restarts the fifteen idle minutes.
    let mut grace_socket = app.connect(&grace).await;
    assert_eq!(grace_socket.request("join-room", json!({ "roomId": room })).await["ok"], true);
    advance_and_sweep(&app, &grace, chrono::Duration::minutes(10)).await;
    let said = grace_socket.request("room-message", json!({ "roomId": room, "message": "Still there?" })).await;
    assert_eq!(said["ok"], true, "{said}");
    advance_and_sweep(&app, &grace, chrono::Duration::minutes(14)).await;
    assert!(!ada_socket.receives_within("office-hours-completed", QUIET).await, "14 minutes since the last message");
    advance_and_sweep(&app, &grace, chrono::Duration::minutes(1)).await;
    let completed = ada_socket.next_event("office-hours-completed").await;
    assert_eq!(
        (completed["data"]["reason"].as_str(), completed["data"]["roomId"].as_str()),
        (Some("inactive"), Some(room.as_str()))
    );
    let (_, history) = app.get("/api/office-hours/analytics", &grace.token).await;
    assert_eq!(history[0]["helped"], 1, "an idle end still counts as help given: {history}");
}

/// Where Bob's entry stands before a matrix cell runs.
#[derive(Clone, Copy, PartialEq)]
enum Stage {
    Waiting,
    Admitted,
}

/// Every office-hours call, by who asks: no token, a student of another
/// course, another instructor, a classmate, the entry's student (Bob), the
/// instructor (Grace) and an admin of the platform (Dean). Each cell runs on a fresh entry of Bob's (the
/// queue emptied, then opened again); each call that is also a WebSocket
/// event is tried over a socket too, and must be refused with the same code.
#[actix_web::test]
async fn the_permission_matrix_of_office_hours() {
    let (app, grace, cleo, bob) = office_on_wednesday().await;
    let stranger = app.register("Sam", "student").await;
    let ivy = app.register("Ivy", "instructor").await;
    let dean = app.register_admin("Dean").await;
    app.course_with(&ivy, &[&stranger]).await;
    let monday = json!({ "dayOfWeek": 1, "startTime": "09:00", "endTime": "10:00" });
    let (_, slot) = app.post("/api/office-hours/schedule", &grace.token, monday).await;
    let slot_id = slot["id"].as_str().expect("a slot").to_string();

    let people = [None, Some(&stranger), Some(&ivy), Some(&cleo), Some(&bob), Some(&grace), Some(&dean)];
    let names = [
        "no token",
        "a stranger",
        "another instructor",
        "a classmate",
        "the entry's student",
        "the instructor",
        "an admin",
    ];
    let mut sockets = Vec::new();
    for who in people.iter().flatten() {
        sockets.push(app.connect(who).await);
    }
    let entry_of_bob = json!({ "queueId": "{entry}" });
    // (method, path, body, stage, event over a socket, [no token, stranger, Ivy, Cleo, Bob, Grace, Dean])
    let rows: Vec<(&str, &str, Value, Stage, Option<(&str, Value)>, [u16; 7])> = vec![
        (
            "GET",
            "/instructor/{grace}",
            Value::Null,
            Stage::Waiting,
            Some(("watch-office-hours", json!({ "instructorId": "{grace}" }))),
            [401, 403, 403, 200, 200, 200, 403],
        ),
        ("GET", "/instructors", Value::Null, Stage::Waiting, None, [401, 200, 200, 200, 200, 200, 200]),
        (
            "POST",
            "/schedule",
            json!({ "dayOfWeek": 0, "startTime": "08:00", "endTime": "09:00" }),
            Stage::Waiting,
            None,
            [401, 403, 201, 403, 403, 201, 201],
        ),
        (
            "PUT",
            "/schedule/{slot}",
            json!({ "isActive": true }),
            Stage::Waiting,
            None,
            [401, 403, 404, 403, 403, 200, 404],
        ),
        ("POST", "/open", json!({}), Stage::Waiting, None, [401, 403, 200, 403, 403, 200, 200]),
        ("POST", "/close", json!({}), Stage::Waiting, None, [401, 403, 200, 403, 403, 200, 200]),
        (
            "POST",
            "/announce",
            json!({ "message": "Five more minutes" }),
            Stage::Waiting,
            Some(("announce-office-hours", json!({ "message": "Five more minutes" }))),
            [401, 403, 201, 403, 403, 201, 201],
        ),
        (
            "POST",
            "/join-queue",
            json!({ "instructorId": "{grace}" }),
            Stage::Waiting,
            Some(("join-office-hours-queue", json!({ "instructorId": "{grace}" }))),
            [401, 403, 403, 201, 409, 403, 403],
        ),
        (
            "POST",
            "/queue/{entry}/leave",
            json!({}),
            Stage::Waiting,
            Some(("leave-office-hours-queue", entry_of_bob.clone())),
            [401, 404, 403, 404, 200, 403, 403],
        ),
        (
            "POST",
            "/queue/{entry}/defer",
            json!({}),
            Stage::Waiting,
            Some(("defer-office-hours-turn", entry_of_bob.clone())),
            [401, 404, 403, 404, 200, 403, 403],
        ),
        ("GET", "/queue", Value::Null, Stage::Waiting, None, [401, 403, 200, 403, 403, 200, 200]),
        ("GET", "/my-queue", Value::Null, Stage::Waiting, None, [401, 200, 403, 200, 200, 403, 403]),
        (
            "POST",
            "/admit/{entry}",
            json!({}),
            Stage::Waiting,
            Some(("admit-student", entry_of_bob.clone())),
            [401, 403, 403, 403, 403, 200, 403],
        ),
        (
            "POST",
            "/admit",
            json!({ "queueIds": ["{entry}"] }),
            Stage::Waiting,
            Some(("admit-students", json!({ "queueIds": ["{entry}"] }))),
            [401, 403, 403, 403, 403, 200, 403],
        ),
        (
            "POST",
            "/queue/{entry}/complete",
            json!({}),
            Stage::Admitted,
            Some(("complete-office-hours", entry_of_bob.clone())),
            [401, 403, 403, 403, 403, 200, 403],
        ),
        (
            "POST",
            "/queue/{entry}/skip",
            json!({}),
            Stage::Waiting,
            Some(("skip-office-hours", entry_of_bob.clone())),
            [401, 403, 403, 403, 403, 200, 403],
        ),
        ("GET", "/analytics", Value::Null, Stage::Waiting, None, [401, 403, 200, 403, 403, 200, 200]),
        ("GET", "/rooms/{room}/messages", Value::Null, Stage::Admitted, None, [401, 403, 403, 403, 200, 200, 403]),
        ("DELETE", "/schedule/{slot}", Value::Null, Stage::Waiting, None, [401, 403, 404, 403, 403, 204, 404]),
    ];
    let (mut documented, mut wrong) = (Vec::new(), Vec::new());
    for (method, path, body, stage, event, expected) in rows {
        let shown = path.replace("{grace}", "{instructorId}").replace("{entry}", "{queueId}");
        let shown = format!("/api/office-hours{}", shown.replace("{slot}", "{slotId}").replace("{room}", "{roomId}"));
        documented.push(Row::new(method, &shown, event.as_ref().map(|(name, _)| *name), &expected));
        for (index, ((who, name), want)) in people.iter().zip(names).zip(expected).enumerate() {
            let (entry, room) = fresh_entry(&app, &grace, &bob, stage).await;
            let fill = |template: &str| {
                let filled = template.replace("{grace}", &grace.id).replace("{entry}", &entry);
                filled.replace("{slot}", &slot_id).replace("{room}", &room)
            };
            let fill_json = |value: &Value| -> Value { serde_json::from_str(&fill(&value.to_string())).unwrap() };
            let body = (!body.is_null()).then(|| fill_json(&body));
            let full_path = format!("/api/office-hours{}", fill(path));
            let (status, answer) = app.request(method, &full_path, who.map(|user| user.token.as_str()), body).await;
            if status != want {
                wrong.push(format!("{method} {path} by {name}: {status}, not {want}: {answer}"));
            }
            let (Some((event, data)), Some(_)) = (&event, who) else { continue };
            let (entry, _) = fresh_entry(&app, &grace, &bob, stage).await;
            let fill = |template: &str| template.replace("{grace}", &grace.id).replace("{entry}", &entry);
            let data: Value = serde_json::from_str(&fill(&data.to_string())).unwrap();
            let ack = sockets[index - 1].request(event, data).await;
            let same = if status < 300 { ack["ok"] == true } else { ack["error"]["code"] == answer["error"]["code"] };
            if !same {
                wrong.push(format!("{event} by {name}: {ack} (REST: {status} {answer})"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert_documented("office-hours", &names, &documented);
}

/// Empties Grace's queue (skipping whoever is in it), opens it, and gives
/// Bob a new entry in `stage`; answers its id and its room's (empty while waiting).
async fn fresh_entry(app: &TestApp, grace: &TestUser, bob: &TestUser, stage: Stage) -> (String, String) {
    let (_, queue) = app.get("/api/office-hours/queue", &grace.token).await;
    for entry in queue["entries"].as_array().into_iter().flatten() {
        let skip = format!("/api/office-hours/queue/{}/skip", entry["id"].as_str().unwrap());
        let (status, answer) = app.post(&skip, &grace.token, json!({})).await;
        assert_eq!(status, 200, "{answer}");
    }
    let (status, _) = app.post("/api/office-hours/open", &grace.token, json!({})).await;
    assert_eq!(status, 200);
    let (status, entry) = join(app, bob, grace).await;
    assert_eq!(status, 201, "{entry}");
    let id = entry["id"].as_str().unwrap().to_string();
    if stage == Stage::Waiting {
        return (id, String::new());
    }
    let (status, admitted) = app.post(&format!("/api/office-hours/admit/{id}"), &grace.token, json!({})).await;
    assert_eq!(status, 200, "{admitted}");
    (id, admitted["roomId"].as_str().unwrap().to_string())
}

#[actix_web::test]
async fn an_admin_who_teaches_a_course_holds_office_hours_like_an_instructor() {
    let app = spawn_app().await;
    let dean = app.register_admin("Dean").await;
    let bob = app.register("Bob", "student").await;
    let (_, me) = app.get("/api/me", &dean.token).await;
    assert_eq!(me["role"], "admin", "{me}");
    app.course_with(&dean, &[&bob]).await;

    assert_eq!(app.post("/api/office-hours/open", &dean.token, json!({})).await.0, 200);
    let (status, entry) = join(&app, &bob, &dean).await;
    assert_eq!(status, 201, "{entry}");
    let (status, mine) = app.get("/api/office-hours/instructors", &bob.token).await;
    assert_eq!((status, mine[0]["instructorId"].as_str()), (200, Some(dean.id.as_str())), "{mine}");
    let admit = format!("/api/office-hours/admit/{}", entry["id"].as_str().unwrap());
    let (status, admitted) = app.post(&admit, &dean.token, json!({})).await;
    assert_eq!(status, 200, "{admitted}");
}

#[actix_web::test]
async fn a_restart_keeps_the_queue_in_order_with_its_defer_and_admission() {
    let app = spawn_app().await;
    let grace = app.register("Grace", "instructor").await;
    let mut students = Vec::new();
    for name in ["S1", "S2", "S3", "S4", "S5"] {
        students.push(app.register(name, "student").await);
    }
    app.course_with(&grace, &students.iter().collect::<Vec<_>>()).await;
    app.post("/api/office-hours/open", &grace.token, json!({})).await;
    let mut entries = Vec::new();
    for student in &students {
        let (status, entry) = join(&app, student, &grace).await;
        assert_eq!(status, 201, "{entry}");
        entries.push(entry["id"].as_str().unwrap().to_string());
    }
    let (_, deferred) =
        app.post(&format!("/api/office-hours/queue/{}/defer", entries[1]), &students[1].token, json!({})).await;
    assert_eq!(deferred["position"], 5, "S2 moves back three places, to the end: {deferred}");
    let (status, _) = app.post(&format!("/api/office-hours/admit/{}", entries[0]), &grace.token, json!({})).await;
    assert_eq!(status, 200);
    let order = |queue: &Value| -> Vec<(String, String)> {
        queue["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["studentName"].as_str().unwrap().to_string(), e["status"].as_str().unwrap().to_string()))
            .collect()
    };
    let (_, before) = app.get("/api/office-hours/queue", &grace.token).await;

    let app = app.restarted().await;
    let (status, after) = app.get("/api/office-hours/queue", &grace.token).await;
    assert_eq!(status, 200, "{after}");
    assert_eq!(after["isOpen"], true, "opened by hand, and still");
    assert_eq!(order(&after), order(&before));
    let names: Vec<&str> = ["S3", "S4", "S5", "S2", "S1"].to_vec();
    assert_eq!(order(&after).iter().map(|(name, _)| name.as_str()).collect::<Vec<_>>(), names);
    assert_eq!(after["entries"][3]["deferred"], true, "{after}");
    assert_eq!(after["entries"][4]["status"], "admitted");
    let (_, s2) = app.get("/api/office-hours/my-queue", &students[1].token).await;
    assert_eq!(s2[0]["position"], 4, "{s2}");
    let again = app.post(&format!("/api/office-hours/queue/{}/defer", entries[1]), &students[1].token, json!({})).await;
    assert_eq!(again.1["error"]["code"], "already_deferred", "the one defer is remembered");
}

/// The persistence buffer of the refused-admission test.
const BUFFER: usize = 8;

#[actix_web::test]
async fn an_admission_whose_write_is_refused_is_taken_back_and_the_others_told_their_places_again() {
    let (app, source) = crate::helpers::spawn_switchable_app(|config| config.persist_queue_capacity = BUFFER).await;
    let grace = app.register("Grace", "instructor").await;
    let ada = app.register("Ada", "student").await;
    let bob = app.register("Bob", "student").await;
    app.course_with(&grace, &[&ada, &bob]).await;
    app.post("/api/office-hours/open", &grace.token, json!({})).await;
    let mut bob_socket = app.connect(&bob).await;
    let (_, entry) = join(&app, &ada, &grace).await;
    join(&app, &bob, &grace).await;

    // Everything stored so far is committed, then the database goes away:
    // nothing buffered from now on can leave, so BUFFER writes fill the
    // buffer for good (any other write meanwhile only takes a filler's place).
    assert!(app.state.persistence.drain(Duration::from_secs(10)).await, "writes drained");
    source.set_down(true);
    let fillers: Vec<_> = (0..BUFFER)
        .map(|_| {
            let state = app.state.clone();
            actix_web::rt::spawn(async move { state.persistence.write(|_| Ok(())).await })
        })
        .collect();
    let depth = &app.state.metrics.persist_queue_depth;
    let full = || depth.load(std::sync::atomic::Ordering::Relaxed) >= BUFFER as u64;
    assert!(eventually(full).await, "the buffer is full");
    let admit = format!("/api/office-hours/admit/{}", entry["id"].as_str().unwrap());
    let (status, refused) = app.post(&admit, &grace.token, json!({})).await;
    assert_eq!(status, 503, "{refused}");

    // Bob heard his new place while it was being written, then his old one back.
    assert_eq!(bob_socket.next_event("queue-position").await["data"]["position"], 1);
    assert_eq!(bob_socket.next_event("queue-position").await["data"]["position"], 2, "taken back");
    source.set_down(false);
    futures_util::future::join_all(fillers).await;
    let (_, queue) = app.get("/api/office-hours/queue", &grace.token).await;
    let standing: Vec<(&str, &str)> = queue["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["studentName"].as_str().unwrap(), e["status"].as_str().unwrap()))
        .collect();
    assert_eq!(standing, vec![("Ada", "waiting"), ("Bob", "waiting")], "nothing admitted");
    let (status, admitted) = app.post(&admit, &grace.token, json!({})).await;
    assert_eq!(status, 200, "admitted once the database is back: {admitted}");
}
