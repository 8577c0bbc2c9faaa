//! Accounts, tokens and the phase-1 resources (courses, enrollment).

use chrono::Duration;
use serde_json::json;

use crate::helpers::spawn_app;

#[actix_web::test]
async fn register_login_me_and_logout() {
    let app = spawn_app().await;
    let body = json!({ "email": "Ada@Example.com", "password": "correct horse", "name": "Ada", "role": "student" });
    let (status, registered) = app.request("POST", "/api/auth/register", None, Some(body.clone())).await;
    assert_eq!(status, 201, "{registered}");
    assert_eq!(registered["user"]["email"], "ada@example.com");
    assert_eq!(registered["user"]["role"], "student");

    let (status, again) = app.request("POST", "/api/auth/register", None, Some(body)).await;
    assert_eq!((status, again["error"]["code"].as_str()), (409, Some("email_taken")));

    let (status, wrong) = app
        .request("POST", "/api/auth/login", None, Some(json!({ "email": "ada@example.com", "password": "wrong one" })))
        .await;
    assert_eq!((status, wrong["error"]["code"].as_str()), (401, Some("invalid_credentials")));
    let (status, _) = app
        .request(
            "POST",
            "/api/auth/login",
            None,
            Some(json!({ "email": "nobody@example.com", "password": "wrong one" })),
        )
        .await;
    assert_eq!(status, 401, "an unknown email is refused the same way");

    let (status, login) = app
        .request(
            "POST",
            "/api/auth/login",
            None,
            Some(json!({ "email": "ada@example.com", "password": "correct horse" })),
        )
        .await;
    assert_eq!(status, 200, "{login}");
    let token = login["token"].as_str().unwrap().to_string();
    let (status, me) = app.get("/api/me", &token).await;
    assert_eq!((status, &me["id"]), (200, &registered["user"]["id"]));

    let (status, _) = app.request("POST", "/api/auth/logout", Some(&token), None).await;
    assert_eq!(status, 204);
    let (status, after) = app.get("/api/me", &token).await;
    assert_eq!(
        (status, after["error"]["code"].as_str()),
        (401, Some("unauthorized")),
        "a revoked token no longer works"
    );
    let first_token = registered["token"].as_str().unwrap();
    assert_eq!(app.get("/api/me", first_token).await.0, 200, "logout revokes only that token");
}

#[actix_web::test]
async fn tokens_expire() {
    let app = spawn_app().await;
    let ada = app.register("Ada", "student").await;
    assert_eq!(app.get("/api/me", &ada.token).await.0, 200);
    app.clock.advance(Duration::seconds(app.state.config.token_ttl_secs + 1));
    let (status, body) = app.get("/api/me", &ada.token).await;
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("token_expired")), "{body}");
}

#[actix_web::test]
async fn bad_input_gets_a_clear_error() {
    let app = spawn_app().await;
    let (status, body) = app.request("GET", "/api/me", None, None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("unauthorized")));
    let (status, body) = app.request("GET", "/api/me", Some("made-up"), None).await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = app
        .request(
            "POST",
            "/api/auth/register",
            None,
            Some(json!({ "email": "a@b.co", "password": "x", "name": "A", "role": "student" })),
        )
        .await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("weak_password")));
    let (status, body) = app
        .request(
            "POST",
            "/api/auth/register",
            None,
            Some(json!({ "email": "a@b.co", "password": "long enough", "name": "A", "role": "admin" })),
        )
        .await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_role")), "nobody registers as admin");
    let (status, body) = app.request("POST", "/api/auth/register", None, Some(json!({ "email": "a@b.co" }))).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_json")), "{body}");
    let (status, body) = app
        .request("POST", "/api/auth/login", None, Some(json!({ "email": "x".repeat(70_000), "password": "p" })))
        .await;
    assert_eq!((status, body["error"]["code"].as_str()), (413, Some("too_large")), "{body}");
}

#[actix_web::test]
async fn instructors_create_courses_and_students_enroll() {
    let app = spawn_app().await;
    let grace = app.register("Grace", "instructor").await;
    let ada = app.register("Ada", "student").await;
    let bob = app.register("Bob", "student").await;

    let (status, body) = app.post("/api/courses", &ada.token, json!({ "title": "Not mine to make" })).await;
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("forbidden")));
    let (status, body) = app.post("/api/courses", &grace.token, json!({ "title": "  " })).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_title")));

    let (status, course) =
        app.post("/api/courses", &grace.token, json!({ "title": "Rust 101", "description": "Ownership" })).await;
    assert_eq!(status, 201, "{course}");
    assert_eq!(course["instructorId"].as_str(), Some(grace.id.as_str()));
    let course_id = course["id"].as_str().unwrap();

    let enroll = format!("/api/courses/{course_id}/enroll");
    assert_eq!(app.post(&enroll, &ada.token, json!({})).await.0, 201);
    let (status, again) = app.post(&enroll, &ada.token, json!({})).await;
    assert_eq!((status, again["userId"].as_str()), (200, Some(ada.id.as_str())), "enrolling twice is harmless");
    assert_eq!(app.post(&enroll, &grace.token, json!({})).await.0, 403, "instructors do not enroll");
    let unknown = format!("/api/courses/{}/enroll", uuid::Uuid::new_v4());
    assert_eq!(app.post(&unknown, &ada.token, json!({})).await.0, 404);
    assert_eq!(app.post("/api/courses/not-a-uuid/enroll", &ada.token, json!({})).await.0, 404);

    let titles =
        |list: &serde_json::Value| list.as_array().unwrap().iter().map(|c| c["title"].clone()).collect::<Vec<_>>();
    let (_, mine) = app.get("/api/courses", &ada.token).await;
    assert_eq!(titles(&mine), vec![json!("Rust 101")]);
    let (_, taught) = app.get("/api/courses", &grace.token).await;
    assert_eq!(titles(&taught), vec![json!("Rust 101")]);
    let (_, none) = app.get("/api/courses", &bob.token).await;
    assert_eq!(none, json!([]), "a student sees only their own courses");
}

#[actix_web::test]
async fn health_metrics_and_openapi_are_served() {
    let app = spawn_app().await;
    let (status, health) = app.request("GET", "/healthz", None, None).await;
    assert_eq!((status, health["database"]["ok"].as_bool()), (200, Some(true)), "{health}");
    let mut response = app.client.get(format!("{}/metrics", app.address)).send().await.unwrap();
    let text = String::from_utf8(response.body().await.unwrap().to_vec()).unwrap();
    for name in [
        "classroom_ws_connections ",
        "classroom_persist_queue_depth ",
        "classroom_persist_batches_total ",
        "classroom_actors{kind=\"live_session\"}",
    ] {
        assert!(text.contains(name), "metrics lack {name}:\n{text}");
    }
    let (status, spec) = app.request("GET", "/api/openapi.json", None, None).await;
    assert_eq!(status, 200);
    for path in ["/api/auth/register", "/api/me", "/api/courses", "/api/live-sessions"] {
        assert!(spec["paths"][path].is_object(), "openapi lacks {path}");
    }
}
