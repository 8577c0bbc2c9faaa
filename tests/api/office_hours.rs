//! Office hours over real HTTP and sockets: the plan's scenario with one
//! instructor and students (positions pushed after an admission, a private
//! room with a link, completion), the refusals, and 100 concurrent joins
//! getting 100 distinct positions.

use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_with, TestApp, TestUser};

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
