//! The private iCalendar feed (issue 15): made, replaced and turned off by
//! its owner; read without a login by whoever has the address; only the
//! owner's sessions; text escaped and lines folded as RFC 5545 says.

use serde_json::{json, Value};

use crate::helpers::{spawn_app, TestApp, TestUser};

/// A GET without any login, as a calendar app makes it: status, content type, body.
async fn fetch(app: &TestApp, url: &str) -> (u16, String, String) {
    let mut response = app.client.get(url).send().await.expect("request sent");
    let kind = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let body = response.body().await.expect("body");
    (response.status().as_u16(), kind, String::from_utf8(body.to_vec()).expect("UTF-8"))
}

async fn new_feed(app: &TestApp, user: &TestUser) -> String {
    let (status, feed) = app.post("/api/calendar/feed", &user.token, json!({})).await;
    assert_eq!(status, 201, "{feed}");
    let url = feed["url"].as_str().expect("url").to_string();
    assert!(url.starts_with(&format!("{}/api/calendar/feeds/", app.address)) && url.ends_with(".ics"), "{url}");
    assert_eq!(feed["webcalUrl"].as_str().unwrap(), url.replacen("http://", "webcal://", 1));
    url
}

async fn schedule(app: &TestApp, instructor: &TestUser, course_id: &str, title: &str, description: Value) -> String {
    let start = classroom::clock::Clock::now(&app.clock) + chrono::Duration::days(2);
    let (status, session) = app
        .post(
            "/api/live-sessions",
            &instructor.token,
            json!({ "courseId": course_id, "title": title, "description": description,
                    "scheduledStartTime": start, "scheduledEndTime": start + chrono::Duration::hours(1) }),
        )
        .await;
    assert_eq!(status, 201, "{session}");
    session["id"].as_str().unwrap().to_string()
}

#[actix_web::test]
async fn a_feed_holds_my_sessions_only_and_needs_no_login() {
    let app = spawn_app().await;
    let grace = app.register("Grace", "instructor").await;
    let hopper = app.register("Hopper", "instructor").await;
    let ada = app.register("Ada", "student").await;
    let bob = app.register("Bob", "student").await;
    let rust = app.course_with(&grace, &[&ada]).await;
    let cobol = app.course_with(&hopper, &[&bob]).await;
    let ownership = schedule(&app, &grace, &rust, "Ownership", Value::Null).await;
    let dropped = schedule(&app, &grace, &rust, "Dropped", Value::Null).await;
    schedule(&app, &hopper, &cobol, "Secret plans", Value::Null).await;
    let (status, _) = app.request("DELETE", &format!("/api/live-sessions/{dropped}"), Some(&grace.token), None).await;
    assert_eq!(status, 204, "cancelled");

    let (status, state) = app.get("/api/calendar/feed", &ada.token).await;
    assert_eq!((status, &state["active"]), (200, &json!(false)), "{state}");
    let url = new_feed(&app, &ada).await;
    let (status, state) = app.get("/api/calendar/feed", &ada.token).await;
    assert_eq!((status, &state["active"]), (200, &json!(true)), "{state}");
    assert!(state["createdAt"].is_string(), "{state}");

    let (status, kind, body) = fetch(&app, &url).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(kind, "text/calendar; charset=utf-8");
    assert!(body.starts_with("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"), "{body}");
    assert!(body.ends_with("END:VCALENDAR\r\n"), "{body}");
    assert!(!body.replace("\r\n", "").contains('\n'), "every line ends with CRLF");
    assert!(body.contains(&format!("UID:{ownership}@classroom\r\n")), "{body}");
    assert!(body.contains("SUMMARY:Ownership\r\n"), "{body}");
    assert!(body.contains("DESCRIPTION:Rust 101\r\n"), "the course: {body}");
    assert!(body.contains(&format!("URL:{}/#/sessions/{ownership}\r\n", app.address)), "{body}");
    let cancelled =
        body.split("BEGIN:VEVENT").find(|event| event.contains("SUMMARY:Dropped")).expect("the cancelled one");
    assert!(cancelled.contains("STATUS:CANCELLED\r\n"), "{cancelled}");
    assert!(!body.contains("Secret plans"), "someone else's course is not in my feed: {body}");
    assert_eq!(body.matches("BEGIN:VEVENT").count(), 2, "{body}");

    // The instructor's own feed has her sessions; Bob's has Hopper's only.
    let (_, _, hers) = fetch(&app, &new_feed(&app, &grace).await).await;
    assert!(hers.contains("SUMMARY:Ownership") && !hers.contains("Secret plans"), "{hers}");
    let (_, _, his) = fetch(&app, &new_feed(&app, &bob).await).await;
    assert!(his.contains("SUMMARY:Secret plans") && !his.contains("Ownership"), "{his}");
}

#[actix_web::test]
async fn feed_text_is_escaped_and_folded_as_rfc_5545_says() {
    let app = spawn_app().await;
    let grace = app.register("Grace", "instructor").await;
    let rust = app.course_with(&grace, &[]).await;
    let title = r#"Q&A; part 1, "intro" \ more"#;
    schedule(&app, &grace, &rust, title, json!("Line one\nLine two; more, more\r\nEND:VEVENT")).await;
    let long = format!("Lifetimes {}", "é".repeat(80));
    schedule(&app, &grace, &rust, &long, Value::Null).await;
    let (status, _, body) = fetch(&app, &new_feed(&app, &grace).await).await;
    assert_eq!(status, 200);
    assert!(body.contains(r#"SUMMARY:Q&A\; part 1\, "intro" \\ more"#), "{body}");
    assert!(body.contains(r"DESCRIPTION:Rust 101\n\nLine one\nLine two\; more\, more\nEND:VEVENT"), "{body}");
    assert_eq!(body.matches("\r\nEND:VEVENT\r\n").count(), 2, "a description cannot end an event");
    for line in body.split("\r\n") {
        assert!(line.len() <= 75, "{} octets: {line:?}", line.len());
    }
    let unfolded = body.replace("\r\n ", "");
    assert!(unfolded.contains(&format!("SUMMARY:{long}\r\n")), "folded lines unfold to the title: {body}");
}

#[actix_web::test]
async fn a_wrong_replaced_or_revoked_address_is_a_404_and_only_the_owner_manages_the_feed() {
    let app = spawn_app().await;
    let ada = app.register("Ada", "student").await;
    let first = new_feed(&app, &ada).await;
    assert_eq!(fetch(&app, &first).await.0, 200);

    let base = format!("{}/api/calendar/feeds", app.address);
    for bad in ["0".repeat(64), "nothing".into(), "../../api/auth/me".into(), "Z".repeat(64), String::new()] {
        let (status, _, body) = fetch(&app, &format!("{base}/{bad}.ics")).await;
        assert_eq!(status, 404, "{bad:?}: {body}");
    }
    let (status, _, body) = fetch(&app, &format!("{base}/{}.ics", "a".repeat(64))).await;
    assert_eq!(status, 404);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["error"]["code"], "not_found", "{body}");

    // A new address replaces the old one.
    let second = new_feed(&app, &ada).await;
    assert_ne!(first, second);
    assert_eq!(fetch(&app, &first).await.0, 404, "the replaced address stops working");
    assert_eq!(fetch(&app, &second).await.0, 200);

    // Managing it takes a login; turning it off ends the address.
    for method in ["GET", "POST", "DELETE"] {
        let (status, _) = app.request(method, "/api/calendar/feed", None, None).await;
        assert_eq!(status, 401, "{method} without a login");
    }
    let (status, _) = app.request("DELETE", "/api/calendar/feed", Some(&ada.token), None).await;
    assert_eq!(status, 204);
    assert_eq!(fetch(&app, &second).await.0, 404, "revoked");
    let (_, state) = app.get("/api/calendar/feed", &ada.token).await;
    assert_eq!(state["active"], json!(false));
    let (status, _) = app.request("DELETE", "/api/calendar/feed", Some(&ada.token), None).await;
    assert_eq!(status, 204, "turning off a feed that is off is fine");

    let (_, doc) = app.request("GET", "/api/openapi.json", None, None).await;
    for method in ["get", "post", "delete"] {
        assert!(doc["paths"]["/api/calendar/feed"][method].is_object(), "{method} /api/calendar/feed documented");
    }
    let ics = &doc["paths"]["/api/calendar/feeds/{token}.ics"]["get"];
    assert!(ics["responses"]["200"]["content"]["text/calendar"].is_object(), "{ics}");
    assert!(ics["security"].as_array().is_none_or(|s| s.is_empty()), "the feed needs no login: {ics}");
}

/// The events of a feed whose SUMMARY is `summary`, their lines unfolded.
fn events_named(body: &str, summary: &str) -> Vec<String> {
    let unfolded = body.replace("\r\n ", "");
    unfolded
        .split("BEGIN:VEVENT")
        .skip(1)
        .filter(|event| event.contains(&format!("\r\nSUMMARY:{summary}\r\n")))
        .map(str::to_string)
        .collect()
}

#[actix_web::test]
async fn the_feed_lists_my_groups_sessions_and_office_hours_but_not_a_group_i_am_not_in() {
    let app = spawn_app().await;
    let grace = app.register("Grace", "instructor").await;
    let hopper = app.register("Hopper", "instructor").await;
    let ada = app.register("Ada", "student").await;
    let bob = app.register("Bob", "student").await;
    let cleo = app.register("Cleo", "student").await;
    app.course_with(&grace, &[&ada, &bob]).await;
    app.course_with(&hopper, &[&cleo]).await;

    // Ada's group, and Bob's own without Ada (both private: no one else in them).
    let group = |name: &'static str| json!({ "name": name });
    let (status, mine) = app.post("/api/study-groups", &ada.token, group("Exam prep")).await;
    assert_eq!(status, 201, "{mine}");
    let mine = mine["id"].as_str().unwrap().to_string();
    let (status, theirs) = app.post("/api/study-groups", &bob.token, group("Bob's corner")).await;
    assert_eq!(status, 201, "{theirs}");
    let theirs = theirs["id"].as_str().unwrap().to_string();
    let start = classroom::clock::Clock::now(&app.clock) + chrono::Duration::days(1);
    let end = start + chrono::Duration::hours(2);
    for (group_id, by, title) in [(&mine, &ada, "Mock exam"), (&theirs, &bob, "Bob alone")] {
        let body = json!({ "title": title, "scheduledStartTime": start, "scheduledEndTime": end });
        let (status, session) = app.post(&format!("/api/study-groups/{group_id}/sessions"), &by.token, body).await;
        assert_eq!(status, 201, "{session}");
    }
    // Grace's weekly office hours, 14:00-15:00 UTC on Wednesdays, and a paused slot.
    let slot = json!({ "dayOfWeek": 3, "startTime": "14:00", "endTime": "15:00", "timeZone": "UTC" });
    let (status, made) = app.post("/api/office-hours/schedule", &grace.token, slot).await;
    assert_eq!(status, 201, "{made}");
    let paused =
        json!({ "dayOfWeek": 4, "startTime": "09:00", "endTime": "10:00", "timeZone": "UTC", "isActive": false });
    let (status, made) = app.post("/api/office-hours/schedule", &grace.token, paused).await;
    assert_eq!(status, 201, "{made}");

    let (_, _, body) = fetch(&app, &new_feed(&app, &ada).await).await;
    let exam = events_named(&body, "Mock exam");
    assert_eq!(exam.len(), 1, "a session of my group is in my feed: {body}");
    assert!(exam[0].contains("DESCRIPTION:Study group: Exam prep\r\n"), "{}", exam[0]);
    assert!(exam[0].contains(&format!("URL:{}/#/groups/{mine}\r\n", app.address)), "{}", exam[0]);
    assert!(exam[0].contains(&format!("DTSTART:{}\r\n", start.format("%Y%m%dT%H%M%SZ"))), "{}", exam[0]);
    assert!(!body.contains("Bob alone"), "not a session of a group I am not in: {body}");
    // My instructor's office hours, every week, at their time; not the paused slot.
    let office = events_named(&body, "Office hours: Grace");
    assert!(office.len() >= 8, "eight weeks and more: {body}");
    for event in &office {
        assert!(event.contains("T140000Z\r\nDTEND:") && event.contains("T150000Z\r\n"), "{event}");
        assert!(event.contains(&format!("URL:{}/#/office-hours\r\n", app.address)), "{event}");
    }
    assert!(!body.contains("T090000Z\r\nDTEND:"), "a paused slot is not listed: {body}");
    let uids: std::collections::HashSet<_> =
        office.iter().filter_map(|e| e.split("UID:").nth(1)?.split("\r\n").next()).collect();
    assert_eq!(uids.len(), office.len(), "each week its own UID");

    // Bob sees his group's session only; Grace her own office hours and no group's session.
    let (_, _, his) = fetch(&app, &new_feed(&app, &bob).await).await;
    assert_eq!((events_named(&his, "Mock exam").len(), events_named(&his, "Bob alone").len()), (0, 1), "{his}");
    let (_, _, hers) = fetch(&app, &new_feed(&app, &grace).await).await;
    assert_eq!(events_named(&hers, "My office hours").len(), office.len(), "{hers}");
    assert!(events_named(&hers, "My office hours")[0].contains("/#/office-hours/manage\r\n"), "{hers}");
    assert!(!hers.contains("Mock exam") && !hers.contains("Office hours: Grace"), "{hers}");
    // Cleo takes Hopper's course only: no group session, none of Grace's office hours.
    let (_, _, hers) = fetch(&app, &new_feed(&app, &cleo).await).await;
    assert!(!hers.contains("BEGIN:VEVENT"), "{hers}");
}
