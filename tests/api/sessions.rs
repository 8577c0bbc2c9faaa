//! Use case 1 over REST and sockets: the calendar, who may do what, status
//! changes pushed live, Q&A, attendance, chat history, reminders and the
//! automatic end. Time moves on the test clock; nothing sleeps.

use std::time::Duration;

use chrono::Duration as Minutes;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_with, TestApp, TestUser};
use crate::matrix::{assert_documented, outcome, Row};

/// An instructor, two enrolled students and an outsider around one course.
struct Class {
    grace: TestUser,
    ada: TestUser,
    bob: TestUser,
    eve: TestUser,
    course: String,
}

async fn class(app: &TestApp) -> Class {
    let grace = app.register("Grace", "instructor").await;
    let ada = app.register("Ada", "student").await;
    let bob = app.register("Bob", "student").await;
    let eve = app.register("Eve", "student").await;
    let course = app.course_with(&grace, &[&ada, &bob]).await;
    Class { grace, ada, bob, eve, course }
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap().to_string()).collect()
}

#[actix_web::test]
async fn the_calendar_shows_my_sessions_in_a_range() {
    let app = spawn_app().await;
    let c = class(&app).await;
    let today = app.session_in(&c.grace, &c.course, 60, None).await;
    let next_week = app.session_in(&c.grace, &c.course, 7 * 24 * 60, None).await;
    let now = classroom::clock::Clock::now(&app.clock);
    let range = format!("/api/live-sessions?from={}&to={}", urlencode(now), urlencode(now + Minutes::days(2)));
    let (status, list) = app.get(&range, &c.ada.token).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(ids(&list), vec![today.clone()]);
    let (_, all) = app.get(&format!("/api/live-sessions?courseId={}", c.course), &c.ada.token).await;
    assert_eq!(ids(&all), vec![today.clone(), next_week]);
    let (_, none) = app.get("/api/live-sessions", &c.eve.token).await;
    assert_eq!(none, json!([]), "an outsider sees no session");
    let (status, bad) = app.get("/api/live-sessions?status=paused", &c.ada.token).await;
    assert_eq!((status, bad["error"]["code"].as_str()), (400, Some("invalid_status")));
    let (status, _) = app.get("/api/live-sessions?from=yesterday", &c.ada.token).await;
    assert_eq!(status, 400);
}

fn urlencode(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true).replace(':', "%3A").replace('+', "%2B")
}

#[actix_web::test]
async fn a_new_session_is_pushed_to_the_course_and_nobody_else() {
    let app = spawn_app().await;
    let c = class(&app).await;
    let mut ada = app.connect(&c.ada).await;
    let mut grace = app.connect(&c.grace).await;
    let mut eve = app.connect(&c.eve).await;
    let id = app.session_in(&c.grace, &c.course, 60, None).await;
    for socket in [&mut ada, &mut grace] {
        let pushed = socket.next_event("session-updated").await;
        assert_eq!(pushed["data"]["sessionId"], id.as_str(), "{pushed}");
        assert_eq!(pushed["data"]["session"]["status"], "scheduled");
        assert_eq!(pushed["data"]["session"]["title"], "Ownership");
    }
    // Sent before the 201: had Eve been meant to get it, it would be there.
    assert!(!eve.receives_within("session-updated", Duration::from_millis(300)).await, "not Eve's course");
}

#[actix_web::test]
async fn a_session_may_not_start_in_the_past() {
    let app = spawn_app().await;
    let c = class(&app).await;
    // The server's clock, not the machine's: a day ahead of the system time.
    app.clock.advance(Minutes::days(1));
    let now = classroom::clock::Clock::now(&app.clock);
    let create = |start: chrono::DateTime<chrono::Utc>| json!({ "courseId": c.course, "title": "When", "scheduledStartTime": start, "scheduledEndTime": start + Minutes::hours(1) });
    for start in [now - Minutes::minutes(2), chrono::Utc::now() + Minutes::hours(1)] {
        let (status, body) = app.post("/api/live-sessions", &c.grace.token, create(start)).await;
        assert_eq!((status, body["error"]["code"].as_str()), (400, Some("start_in_past")), "{start}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("past"), "{body}");
    }
    let (status, body) = app.post("/api/live-sessions", &c.grace.token, create(now)).await;
    assert_eq!(status, 201, "a start equal to now is accepted: {body}");
    let (status, body) = app.post("/api/live-sessions", &c.grace.token, create(now - Minutes::seconds(50))).await;
    assert_eq!(status, 201, "a minute's grace for clock skew: {body}");

    let session = app.session_in(&c.grace, &c.course, 30, None).await;
    let path = format!("/api/live-sessions/{session}");
    let put = |body: Value| app.request("PUT", &path, Some(&c.grace.token), Some(body));
    let (status, body) = put(json!({ "scheduledStartTime": now - Minutes::minutes(5) })).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("start_in_past")), "{body}");
    let (status, body) = put(json!({ "scheduledStartTime": now + Minutes::minutes(10) })).await;
    assert_eq!(status, 200, "{body}");
    // Once its start has passed, a scheduled session can still be renamed
    // with its start sent back unchanged (as an edit form does).
    app.clock.advance(Minutes::minutes(20));
    let (status, body) = put(json!({ "title": "Renamed", "scheduledStartTime": now + Minutes::minutes(10) })).await;
    assert_eq!((status, body["title"].as_str()), (200, Some("Renamed")), "{body}");
}

#[actix_web::test]
async fn only_the_instructor_changes_a_session() {
    let app = spawn_app().await;
    let c = class(&app).await;
    let (status, refused) = app
        .post(
            "/api/live-sessions",
            &c.ada.token,
            json!({ "courseId": c.course, "title": "Mine", "scheduledStartTime": "2026-12-01T10:00:00Z", "scheduledEndTime": "2026-12-01T11:00:00Z" }),
        )
        .await;
    assert_eq!((status, refused["error"]["code"].as_str()), (403, Some("forbidden")));
    let (status, bad) = app
        .post(
            "/api/live-sessions",
            &c.grace.token,
            json!({ "courseId": c.course, "title": "Backwards", "scheduledStartTime": "2026-12-01T11:00:00Z", "scheduledEndTime": "2026-12-01T10:00:00Z" }),
        )
        .await;
    assert_eq!((status, bad["error"]["code"].as_str()), (400, Some("invalid_schedule")));

    let session = app.session_in(&c.grace, &c.course, 30, Some(10)).await;
    let path = format!("/api/live-sessions/{session}");
    for (method, suffix) in [("PUT", ""), ("DELETE", ""), ("POST", "/start"), ("POST", "/end")] {
        let body = (method == "PUT").then(|| json!({ "title": "Hijacked" }));
        let (status, _) = app.request(method, &format!("{path}{suffix}"), Some(&c.ada.token), body.clone()).await;
        assert_eq!(status, 403, "a student may not {method} {suffix}");
        let (status, _) = app.request(method, &format!("{path}{suffix}"), Some(&c.eve.token), body).await;
        assert_eq!(status, 403, "an outsider may not {method} {suffix}");
    }
    for suffix in ["/attendees", "/attendance"] {
        assert_eq!(app.get(&format!("{path}{suffix}"), &c.ada.token).await.0, 403, "{suffix} is the instructor's");
    }
    assert_eq!(app.get(&format!("{path}/messages"), &c.eve.token).await.0, 403);
    assert_eq!(app.get(&format!("/api/live-sessions/{}", uuid::Uuid::new_v4()), &c.ada.token).await.0, 404);

    let (status, edited) =
        app.request("PUT", &path, Some(&c.grace.token), Some(json!({ "title": "Lifetimes", "maxAttendees": 0 }))).await;
    assert_eq!((status, edited["error"]["code"].as_str()), (400, Some("invalid_capacity")));
    let (status, edited) = app
        .request("PUT", &path, Some(&c.grace.token), Some(json!({ "title": "Lifetimes", "description": "'a" })))
        .await;
    assert_eq!(
        (status, edited["title"].as_str(), edited["description"].as_str()),
        (200, Some("Lifetimes"), Some("'a"))
    );
    let (status, _) = app.request("PUT", &path, Some(&c.grace.token), Some(json!({ "colour": "red" }))).await;
    assert_eq!(status, 400, "unknown fields are refused");
    assert_eq!(app.get(&path, &c.ada.token).await.1["title"], "Lifetimes", "the edit is stored");
}

#[actix_web::test]
async fn a_whole_session_start_to_end_with_q_and_a_and_attendance() {
    let app = spawn_app().await;
    let c = class(&app).await;
    let session = app.session_in(&c.grace, &c.course, 3, None).await;
    let path = format!("/api/live-sessions/{session}");

    // Bob watches his dashboard (not in the room) and still hears of the start.
    let mut bob_dashboard = app.connect(&c.bob).await;
    bob_dashboard.next_event("connected").await;
    let mut grace = app.connect(&c.grace).await;
    let mut ada = app.connect(&c.ada).await;
    assert_eq!(grace.request("join-live-session", json!({ "sessionId": session })).await["ok"], true);
    assert_eq!(ada.request("join-live-session", json!({ "sessionId": session })).await["ok"], true);

    let (status, started) = app.post(&format!("{path}/start"), &c.grace.token, json!({})).await;
    assert_eq!((status, started["status"].as_str()), (200, Some("active")));
    assert!(started["actualStartTime"].is_string());
    let pushed = ada.next_event("session-status-changed").await;
    assert_eq!(pushed["data"]["status"], "active");
    assert_eq!(bob_dashboard.next_event("session-status-changed").await["data"]["status"], "active");
    let (status, again) = app.post(&format!("{path}/start"), &c.grace.token, json!({})).await;
    assert_eq!((status, again["error"]["code"].as_str()), (409, Some("invalid_status_change")));

    // Q&A: an anonymous question, an upvote, answered by the instructor.
    let asked = ada
        .request("ask-question", json!({ "sessionId": session, "question": "What is 'static?", "anonymous": true }))
        .await;
    assert_eq!(asked["ok"], true, "{asked}");
    let question = asked["data"]["question"]["id"].clone();
    let seen_by_grace = grace.next_event("questions-updated").await;
    assert_eq!(seen_by_grace["data"]["questions"][0]["askedBy"]["name"], "Ada", "the instructor sees who asked");
    let mut bob = app.connect(&c.bob).await;
    let joined = bob.request("join-live-session", json!({ "sessionId": session })).await;
    assert!(joined["data"]["questions"][0]["askedBy"].is_null(), "classmates do not: {joined}");
    assert_eq!(
        ada.request("upvote-question", json!({ "sessionId": session, "questionId": question })).await["error"]["code"],
        "own_question"
    );
    let voted = bob.request("upvote-question", json!({ "sessionId": session, "questionId": question })).await;
    assert_eq!(voted["data"]["question"]["votes"], 1);
    assert_eq!(
        bob.request("upvote-question", json!({ "sessionId": session, "questionId": question })).await["error"]["code"],
        "already_voted"
    );
    let refused = bob.request("answer-question", json!({ "sessionId": session, "questionId": question })).await;
    assert_eq!(refused["error"]["code"], "forbidden", "students do not moderate");
    let answered = grace.request("answer-question", json!({ "sessionId": session, "questionId": question })).await;
    assert_eq!(answered["data"]["question"]["status"], "answered");
    let mut last = Value::Null;
    while last["data"]["questions"][0]["status"] != "answered" {
        last = ada.next_event("questions-updated").await;
    }
    assert_eq!(last["data"]["questions"][0]["votes"], 1);
    let (_, stored) = app.get(&format!("{path}/questions"), &c.bob.token).await;
    assert_eq!(
        (stored[0]["status"].as_str(), stored[0]["votes"].as_u64()),
        (Some("answered"), Some(1)),
        "Q&A is stored"
    );

    // Chat history with paging, newest last.
    for n in 0..5 {
        ada.request("session-message", json!({ "sessionId": session, "message": format!("m{n}") })).await;
    }
    let (_, page) = app.get(&format!("{path}/messages?limit=2"), &c.bob.token).await;
    let texts = |page: &Value| {
        page.as_array().unwrap().iter().map(|m| m["message"].as_str().unwrap().to_string()).collect::<Vec<_>>()
    };
    assert_eq!(texts(&page), vec!["m3", "m4"]);
    let (_, older) =
        app.get(&format!("{path}/messages?limit=2&before={}", page[0]["id"].as_str().unwrap()), &c.bob.token).await;
    assert_eq!(texts(&older), vec!["m1", "m2"]);

    // Twenty minutes in Ada leaves and comes back; the session ends ten minutes later.
    app.clock.advance(Minutes::minutes(20));
    ada.request("leave-live-session", json!({ "sessionId": session })).await;
    app.clock.advance(Minutes::minutes(5));
    ada.request("join-live-session", json!({ "sessionId": session })).await;
    app.clock.advance(Minutes::minutes(10));
    let (status, ended) = app.post(&format!("{path}/end"), &c.grace.token, json!({})).await;
    assert_eq!((status, ended["status"].as_str()), (200, Some("ended")));
    assert_eq!(ada.next_event("session-status-changed").await["data"]["status"], "ended");
    let late = ada.request("session-message", json!({ "sessionId": session, "message": "hello?" })).await;
    assert_eq!(late["error"]["code"], "forbidden", "the room is closed");
    let rejoin = ada.request("join-live-session", json!({ "sessionId": session })).await;
    assert_eq!(rejoin["error"]["code"], "session_over");

    let (_, attendees) = app.get(&format!("{path}/attendees"), &c.grace.token).await;
    let ada_row = attendees.as_array().unwrap().iter().find(|a| a["name"] == "Ada").expect("Ada attended").clone();
    assert!(ada_row["leftAt"].is_string(), "still present at the end means a leave time: {ada_row}");
    assert_eq!(ada_row["secondsPresent"], 30 * 60, "20 + 10 minutes, the break not counted");
    let (_, summary) = app.get(&format!("{path}/attendance"), &c.grace.token).await;
    assert_eq!(summary["attendeeCount"], 2, "Ada and Bob: {summary}");
    assert!(summary["averageMinutes"].as_f64().unwrap() > 0.0);
}

#[actix_web::test]
async fn attendance_counts_students_only_lists_who_never_came_and_exports_csv() {
    let app = spawn_app().await;
    let c = class(&app).await;
    // A name with a comma, quotes and a formula's sign, for the CSV.
    let email = format!("cleo-{}@example.com", uuid::Uuid::new_v4().simple());
    let body = json!({ "email": email, "password": "correct horse", "name": "=Cleo, \"C\"", "role": "student" });
    let (status, cleo) = app.request("POST", "/api/auth/register", None, Some(body)).await;
    assert_eq!(status, 201, "{cleo}");
    let cleo_token = cleo["token"].as_str().unwrap();
    let (status, _) = app.post(&format!("/api/courses/{}/enroll", c.course), cleo_token, json!({})).await;
    assert_eq!(status, 201);
    let session = app.session_in(&c.grace, &c.course, 0, None).await;
    let path = format!("/api/live-sessions/{session}");
    let mut grace = app.connect(&c.grace).await;
    let mut ada = app.connect(&c.ada).await;
    assert_eq!(grace.request("join-live-session", json!({ "sessionId": session })).await["ok"], true);
    assert_eq!(ada.request("join-live-session", json!({ "sessionId": session })).await["ok"], true);
    assert_eq!(app.post(&format!("{path}/start"), &c.grace.token, json!({})).await.0, 200);
    app.clock.advance(Minutes::minutes(1));
    assert_eq!(app.post(&format!("{path}/end"), &c.grace.token, json!({})).await.0, 200);

    let (status, summary) = app.get(&format!("{path}/attendance"), &c.grace.token).await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["attendeeCount"], 1, "Ada; the instructor is not a student: {summary}");
    assert_eq!((summary["totalMinutes"].as_f64(), summary["averageMinutes"].as_f64()), (Some(1.0), Some(1.0)));
    assert_eq!(summary["enrolledCount"], 3);
    let absent: Vec<&str> =
        summary["absentees"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(absent, ["=Cleo, \"C\"", "Bob"], "by name");
    assert_eq!(summary["absentees"][1]["userId"], c.bob.id.as_str());

    let (status, kind, csv) = app.get_text(&format!("{path}/attendance.csv"), &c.grace.token).await;
    assert_eq!(status, 200, "{csv}");
    assert!(kind.starts_with("text/csv"), "{kind}");
    let lines: Vec<&str> = csv.split("\r\n").collect();
    assert_eq!(lines[0], "name,status,joined_at,left_at,minutes_present");
    assert!(lines[1].starts_with("Ada,present,") && lines[1].ends_with(",1.0"), "{csv}");
    assert_eq!(lines[2], "\"'=Cleo, \"\"C\"\"\",absent,,,0.0", "quoted, and no formula");
    assert_eq!(lines[3], "Bob,absent,,,0.0");
    assert_eq!((lines.len(), lines[4]), (5, ""), "ends with a line break: {csv}");
    let (status, _, _) = app.get_text(&format!("{path}/attendance.csv"), &c.ada.token).await;
    assert_eq!(status, 403, "the instructor's");
    let (status, _, _) =
        app.get_text(&format!("/api/live-sessions/{}/attendance.csv", uuid::Uuid::new_v4()), &c.grace.token).await;
    assert_eq!(status, 404);
}

#[actix_web::test]
async fn reminders_arrive_once_online_and_are_stored_for_the_others() {
    let app = spawn_app().await;
    let c = class(&app).await;
    let session = app.session_in(&c.grace, &c.course, 20, None).await;
    let mut ada = app.connect(&c.ada).await;
    ada.next_event("connected").await;

    let tick = || app.state.scheduler.send(classroom::engine::scheduler::Tick);
    tick().await.unwrap();
    assert!(!ada.receives_within("notification", Duration::from_millis(100)).await, "20 minutes out: nothing yet");

    app.clock.advance(Minutes::minutes(6));
    tick().await.unwrap();
    tick().await.unwrap();
    let first = ada.next_event("notification").await;
    assert_eq!(first["data"]["kind"], "session_reminder_15min");
    assert_eq!(first["data"]["data"]["sessionId"].as_str(), Some(session.as_str()));
    assert!(
        !ada.receives_within("notification", Duration::from_millis(200)).await,
        "a second pass sends nothing again"
    );

    app.clock.advance(Minutes::minutes(10));
    tick().await.unwrap();
    assert_eq!(ada.next_event("notification").await["data"]["kind"], "session_reminder_5min");
    app.post(&format!("/api/live-sessions/{session}/start"), &c.grace.token, json!({})).await;
    assert_eq!(
        ada.next_event("notification").await["data"]["kind"],
        "session_reminder_started",
        "the start is announced at once"
    );

    // Bob was offline: his reminders wait for him, each once.
    let (_, bobs) = app.get("/api/notifications", &c.bob.token).await;
    let kinds: Vec<&str> = bobs.as_array().unwrap().iter().map(|n| n["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds.len(), 3, "{bobs}");
    for kind in ["session_reminder_15min", "session_reminder_5min", "session_reminder_started"] {
        assert!(kinds.contains(&kind), "{kind} missing: {kinds:?}");
    }
    assert_eq!(app.get("/api/notifications", &c.eve.token).await.1, json!([]), "not enrolled, not reminded");
    let id = bobs[0]["id"].as_str().unwrap();
    assert_eq!(app.post(&format!("/api/notifications/{id}/read"), &c.eve.token, json!({})).await.0, 404, "not hers");
    assert_eq!(app.post(&format!("/api/notifications/{id}/read"), &c.bob.token, json!({})).await.0, 204);
    let (_, unread) = app.get("/api/notifications?unread=true", &c.bob.token).await;
    assert_eq!(unread.as_array().unwrap().len(), 2);
    let (_, read_once) = app.get("/api/notifications", &c.bob.token).await;
    assert_eq!(app.post(&format!("/api/notifications/{id}/read"), &c.bob.token, json!({})).await.0, 204, "again");
    assert_eq!(app.get("/api/notifications", &c.bob.token).await.1, read_once, "first read kept");
    let (_, adas) = app.get("/api/notifications?unread=true", &c.ada.token).await;
    assert_eq!(adas.as_array().unwrap().len(), 3, "Bob's reading is his own: {adas}");

    // Reminders reach who was enrolled when they were sent, not who enrols later.
    app.clock.advance(Minutes::minutes(1));
    let (status, _) = app.post(&format!("/api/courses/{}/enroll", c.course), &c.eve.token, json!({})).await;
    assert_eq!(status, 201);
    assert_eq!(app.get("/api/notifications", &c.eve.token).await.1, json!([]), "enrolled after them");
    assert_eq!(app.post(&format!("/api/notifications/{id}/read"), &c.eve.token, json!({})).await.0, 404);
}

#[actix_web::test]
async fn a_session_left_running_ends_by_itself_and_cancelled_ones_stay_closed() {
    let app = spawn_app().await;
    let c = class(&app).await;
    let session = app.session_in(&c.grace, &c.course, 0, None).await;
    app.post(&format!("/api/live-sessions/{session}/start"), &c.grace.token, json!({})).await;
    let mut ada = app.connect(&c.ada).await;
    ada.request("join-live-session", json!({ "sessionId": session })).await;

    app.clock.advance(Minutes::minutes(60 + app.state.config.auto_end_grace_minutes - 1));
    app.state.scheduler.send(classroom::engine::scheduler::Tick).await.unwrap();
    assert_eq!(
        app.get(&format!("/api/live-sessions/{session}"), &c.ada.token).await.1["status"],
        "active",
        "within the grace"
    );
    app.clock.advance(Minutes::minutes(2));
    app.state.scheduler.send(classroom::engine::scheduler::Tick).await.unwrap();
    assert_eq!(ada.next_event("session-status-changed").await["data"]["status"], "ended");
    assert_eq!(app.get(&format!("/api/live-sessions/{session}"), &c.ada.token).await.1["status"], "ended");

    let other = app.session_in(&c.grace, &c.course, 60, None).await;
    assert_eq!(app.request("DELETE", &format!("/api/live-sessions/{other}"), Some(&c.grace.token), None).await.0, 204);
    assert_eq!(app.get(&format!("/api/live-sessions/{other}"), &c.ada.token).await.1["status"], "cancelled");
    let (status, body) = app.post(&format!("/api/live-sessions/{other}/start"), &c.grace.token, json!({})).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("invalid_status_change")));
}

#[actix_web::test]
async fn a_big_course_gets_each_reminder_once_per_student_across_passes_and_restarts() {
    use classroom::db::models::{EnrollmentRow, UserRow};
    const STUDENTS: usize = 2_000;
    let app = spawn_app().await;
    let grace = app.register("Grace", "instructor").await;
    let ada = app.register("Ada", "student").await;
    let course = app.course_with(&grace, &[&ada]).await;
    let mut adas_socket = app.connect(&ada).await;
    adas_socket.next_event("connected").await;
    // Students straight into the database: 2,000 password hashes would be the test.
    let (course_id, now) = (course.clone(), classroom::clock::Clock::now(&app.clock).naive_utc());
    let students: Vec<String> = (0..STUDENTS).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let stored_students = students.clone();
    app.state
        .persistence
        .write(move |conn| {
            for (n, id) in stored_students.iter().cloned().enumerate() {
                let user = UserRow {
                    id: id.clone(),
                    email: format!("student{n}-{id}@example.com"),
                    name: format!("Student {n}"),
                    role: "student".into(),
                    password_hash: "not a hash".into(),
                    created_at: now,
                };
                classroom::db::users::insert(conn, &user)?;
                classroom::db::courses::enroll(
                    conn,
                    &EnrollmentRow { course_id: course_id.clone(), user_id: id, enrolled_at: now },
                )?;
            }
            Ok(())
        })
        .await
        .expect("students stored");
    app.session_in(&grace, &course, 10, None).await;
    // What each student sees: their list, derived from the course's one row.
    let reminders_of = |student: String| {
        app.state.db.read(move |conn| {
            let views = classroom::db::notifications::list_for_user(conn, &student, false, 50)?;
            Ok(views.into_iter().filter(|view| view.kind == "session_reminder_15min").count())
        })
    };
    let stored_rows = || {
        app.state.db.read(|conn| {
            use classroom::db::schema::audience_notifications::dsl::*;
            use diesel::prelude::*;
            Ok(audience_notifications.filter(kind.eq("session_reminder_15min")).count().get_result::<i64>(conn)?)
        })
    };
    app.state.scheduler.send(classroom::engine::scheduler::Tick).await.unwrap();
    assert_eq!(stored_rows().await.unwrap(), 1, "one row for the course, not one per student");
    for student in [&students[0], &students[STUDENTS / 2], &students[STUDENTS - 1]] {
        assert_eq!(reminders_of(student.clone()).await.unwrap(), 1, "one each");
    }
    assert_eq!(adas_socket.next_event("notification").await["data"]["kind"], "session_reminder_15min");
    app.state.scheduler.send(classroom::engine::scheduler::Tick).await.unwrap();
    // A restarted scheduler remembers nothing: the stored keys decide.
    let restarted = classroom::engine::scheduler::SchedulerActor::start(std::sync::Arc::clone(&app.state.registry));
    restarted.send(classroom::engine::scheduler::Tick).await.unwrap();
    assert_eq!(stored_rows().await.unwrap(), 1, "still one after two more passes");
    for student in [&students[0], &students[STUDENTS - 1]] {
        assert_eq!(reminders_of(student.clone()).await.unwrap(), 1, "still one each");
    }
    assert!(
        !adas_socket.receives_within("notification", Duration::from_millis(200)).await,
        "pushed once, not again by the later passes"
    );
    assert!(app.state.metrics.persist_refused.load(std::sync::atomic::Ordering::Relaxed) == 0, "nothing refused");
}

/// Every live-session call, by who asks: no token, a student of another
/// course, a student of the session's course, its instructor, another
/// instructor, an admin of the platform. Each cell runs on a fresh session
/// (started where the call needs it), so one call's effect cannot leak into
/// another's. Then every event of a live session, over each person's
/// socket, after they tried to join.
#[actix_web::test]
async fn the_permission_matrix_of_live_sessions() {
    // Ben asks a question for every cell, faster than a person would.
    let app = spawn_app_with(|config| (config.ws_rate_per_sec, config.ws_rate_burst) = (1000.0, 1000.0), None).await;
    let grace = app.register("Grace", "instructor").await;
    let ada = app.register("Ada", "student").await;
    let ben = app.register("Ben", "student").await;
    let stranger = app.register("Sam", "student").await;
    let other_instructor = app.register("Ivy", "instructor").await;
    let dean = app.register_admin("Dean").await;
    let course = app.course_with(&grace, &[&ada, &ben]).await;
    app.course_with(&other_instructor, &[&stranger]).await;
    // (method, path after the session, body, started first, [no token, stranger, student, instructor, other instructor, admin])
    let rows: Vec<(&str, &str, Value, bool, [u16; 6])> = vec![
        ("GET", "", Value::Null, false, [401, 403, 200, 200, 403, 200]),
        ("PUT", "", json!({ "title": "Renamed" }), false, [401, 403, 403, 200, 403, 200]),
        ("DELETE", "", Value::Null, false, [401, 403, 403, 204, 403, 204]),
        ("POST", "/start", json!({}), false, [401, 403, 403, 200, 403, 200]),
        ("POST", "/end", json!({}), true, [401, 403, 403, 200, 403, 200]),
        ("GET", "/attendees", Value::Null, false, [401, 403, 403, 200, 403, 200]),
        ("GET", "/attendance", Value::Null, false, [401, 403, 403, 200, 403, 200]),
        ("GET", "/attendance.csv", Value::Null, false, [401, 403, 403, 200, 403, 200]),
        ("GET", "/messages", Value::Null, false, [401, 403, 200, 200, 403, 200]),
        ("GET", "/questions", Value::Null, false, [401, 403, 200, 200, 403, 200]),
    ];
    let people = [None, Some(&stranger), Some(&ada), Some(&grace), Some(&other_instructor), Some(&dean)];
    let names = ["no token", "a stranger", "the student", "the instructor", "another instructor", "an admin"];
    let (mut documented, mut wrong) = (Vec::new(), Vec::new());
    for (method, suffix, body, started, expected) in rows {
        documented.push(Row::new(method, &format!("/api/live-sessions/{{id}}{suffix}"), None, &expected));
        for ((who, name), want) in people.iter().zip(names).zip(expected) {
            let session = app.session_in(&grace, &course, 0, None).await;
            if started {
                let (status, _) =
                    app.post(&format!("/api/live-sessions/{session}/start"), &grace.token, json!({})).await;
                assert_eq!(status, 200);
            }
            let body = (!body.is_null()).then(|| body.clone());
            let path = format!("/api/live-sessions/{session}{suffix}");
            let (status, answer) = app.request(method, &path, who.map(|user| user.token.as_str()), body).await;
            if status != want {
                wrong.push(format!("{method} {suffix} by {name}: {status}, not {want}: {answer}"));
            }
        }
    }
    let create = json!({ "courseId": course, "title": "Mine now", "scheduledStartTime": chrono::Utc::now() + Minutes::hours(1),
        "scheduledEndTime": chrono::Utc::now() + Minutes::hours(2) });
    let creators = [
        (None, 401),
        (Some(&stranger), 403),
        (Some(&ada), 403),
        (Some(&grace), 201),
        (Some(&other_instructor), 403),
        (Some(&dean), 201),
    ];
    for (who, want) in creators {
        let (status, answer) = app
            .request("POST", "/api/live-sessions", who.map(|u: &TestUser| u.token.as_str()), Some(create.clone()))
            .await;
        if status != want {
            wrong.push(format!("POST /api/live-sessions: {status}, not {want}: {answer}"));
        }
    }
    documented.insert(0, Row::new("POST", "/api/live-sessions", None, &creators.map(|(_, want)| want)));

    // The events, on a started session; a question of Ben's to vote on and moderate.
    let mut sockets = Vec::new();
    for who in people.iter().flatten() {
        sockets.push(app.connect(who).await);
    }
    let mut ben_socket = app.connect(&ben).await;
    // (event, data with {session} and {question}, [stranger, student, instructor, other instructor, admin])
    let events: Vec<(&str, Value, [&str; 5])> = vec![
        ("join-live-session", json!({ "sessionId": "{session}" }), ["forbidden", "ok", "ok", "forbidden", "ok"]),
        (
            "session-message",
            json!({ "sessionId": "{session}", "message": "hi" }),
            ["forbidden", "ok", "ok", "forbidden", "ok"],
        ),
        ("typing-in-session", json!({ "sessionId": "{session}" }), ["forbidden", "ok", "ok", "forbidden", "ok"]),
        (
            "ask-question",
            json!({ "sessionId": "{session}", "question": "Why?" }),
            ["forbidden", "ok", "ok", "forbidden", "ok"],
        ),
        (
            "upvote-question",
            json!({ "sessionId": "{session}", "questionId": "{question}" }),
            ["forbidden", "ok", "ok", "forbidden", "ok"],
        ),
        (
            "dismiss-question",
            json!({ "sessionId": "{session}", "questionId": "{question}" }),
            ["forbidden", "forbidden", "ok", "forbidden", "ok"],
        ),
        (
            "leave-live-session",
            json!({ "sessionId": "{session}" }),
            ["not_in_session", "ok", "ok", "not_in_session", "ok"],
        ),
    ];
    for (event, data, expected) in events {
        let mut cells = vec!["-"];
        cells.extend(expected);
        documented.push(Row::event(event, &cells));
        for ((socket, name), want) in sockets.iter_mut().zip(&names[1..]).zip(expected) {
            let session = app.session_in(&grace, &course, 0, None).await;
            let (status, _) = app.post(&format!("/api/live-sessions/{session}/start"), &grace.token, json!({})).await;
            assert_eq!(status, 200);
            let joined = ben_socket.request("join-live-session", json!({ "sessionId": session })).await;
            assert_eq!(joined["ok"], true, "{joined}");
            let asked = ben_socket.request("ask-question", json!({ "sessionId": session, "question": "How?" })).await;
            let question = asked["data"]["question"]["id"].as_str().unwrap_or_else(|| panic!("{asked}")).to_string();
            let fill = |value: &Value| -> Value {
                serde_json::from_str(&value.to_string().replace("{session}", &session).replace("{question}", &question))
                    .expect("json")
            };
            let join = socket.request("join-live-session", json!({ "sessionId": session })).await;
            let ack = if event == "join-live-session" { join } else { socket.request(event, fill(&data)).await };
            if outcome(&ack) != want {
                wrong.push(format!("{event} by {name}: {ack}, not {want}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert_documented("live-sessions", &names, &documented);
}
