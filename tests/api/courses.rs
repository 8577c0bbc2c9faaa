//! Courses: the short join code a student types (issue 15, item 13).

use serde_json::{json, Value};

use crate::helpers::spawn_app;

#[actix_web::test]
async fn a_course_has_a_short_join_code_that_students_enroll_with() {
    let app = spawn_app().await;
    let grace = app.register("Grace", "instructor").await;
    let ada = app.register("Ada", "student").await;
    let (status, course) = app.post("/api/courses", &grace.token, json!({ "title": "Rust 101" })).await;
    assert_eq!(status, 201, "{course}");
    let code = course["joinCode"].as_str().expect("a join code").to_string();
    assert_eq!(code.len(), 9, "{code}");
    assert!(
        code.chars().enumerate().all(|(i, c)| if i == 4 {
            c == '-'
        } else {
            "ABCDEFGHJKLMNPQRSTUVWXYZ23456789".contains(c)
        }),
        "two groups of four, no look-alikes: {code}"
    );
    let (_, mine) = app.get("/api/courses", &grace.token).await;
    assert_eq!(mine[0]["joinCode"], code.as_str(), "listed with the course");

    // Typed as heard: lower case, a space for the hyphen.
    let typed = code.to_lowercase().replace('-', " ");
    let (status, joined) = app.post("/api/courses/join", &ada.token, json!({ "code": typed })).await;
    assert_eq!((status, &joined["courseId"]), (201, &course["id"]), "{joined}");
    let (status, _) = app.post("/api/courses/join", &ada.token, json!({ "code": code })).await;
    assert_eq!(status, 200, "already enrolled");
    let (_, hers) = app.get("/api/courses", &ada.token).await;
    assert_eq!(hers[0]["title"], "Rust 101");

    // Clear refusals.
    let cases: [(Value, u16, &str); 5] = [
        (json!({ "code": "ZZZZ-ZZZZ" }), 404, "unknown_code"),
        (json!({ "code": "abc" }), 400, "invalid_code"),
        (json!({ "code": "KM7R-Q2X!" }), 400, "invalid_code"),
        (json!({ "code": course["id"] }), 400, "invalid_code"),
        (json!({ "code": 12345678 }), 400, "invalid_data"),
    ];
    for (body, want, code_word) in cases {
        let (status, answer) = app.post("/api/courses/join", &ada.token, body.clone()).await;
        assert_eq!(status, want, "{body}: {answer}");
        if want == 404 {
            assert_eq!(answer["error"]["code"], code_word);
            let message = answer["error"]["message"].as_str().unwrap();
            assert!(message.contains("ZZZZ-ZZZZ") && message.contains("instructor"), "{message}");
        } else if code_word == "invalid_code" {
            assert_eq!(answer["error"]["code"], code_word, "{answer}");
        }
    }
    let (status, _) = app.post("/api/courses/join", &grace.token, json!({ "code": code })).await;
    assert_eq!(status, 403, "instructors do not enroll");
    let (status, _) = app.request("POST", "/api/courses/join", None, Some(json!({ "code": code }))).await;
    assert_eq!(status, 401);
    let (_, doc) = app.request("GET", "/api/openapi.json", None, None).await;
    assert!(doc["paths"].get("/api/courses/join").is_some(), "in the OpenAPI document");
}

/// `classroom seed-load` makes its courses with a join code, as the API does.
#[actix_web::test]
async fn courses_made_by_seed_load_have_a_join_code() {
    use classroom::config::backend_of;
    use classroom::db::Db;
    use classroom::seed::{seed, SeedArgs};

    let database = crate::helpers::fresh_database();
    let config = crate::helpers::test_config(&database);
    let db = Db::connect(&database.url, backend_of(&database.url), 1).expect("open the database");
    let args = SeedArgs {
        users: 2,
        sessions: 2,
        instructor: format!("grace-{}@example.com", uuid::Uuid::new_v4().simple()),
        password: "correct horse".into(),
        session_hours: 2,
        one_course: false,
        starts_in_minutes: 10,
        out: "unused".into(),
    };
    let seeded = seed(&db, &config, &args).expect("seeded");
    drop(db);
    let app = crate::helpers::start_on(database, |_| {}, None).await;

    let (status, courses) = app.get("/api/courses", &seeded.instructor.token).await;
    assert_eq!(status, 200, "{courses}");
    let codes: Vec<String> =
        courses.as_array().unwrap().iter().map(|c| c["joinCode"].as_str().expect("a join code").to_string()).collect();
    assert_eq!(codes.len(), 2, "{courses}");
    assert_ne!(codes[0], codes[1], "a code of its own each");
    for code in &codes {
        assert_eq!(classroom::domain::join_code::normalize(code).as_deref(), Some(code.as_str()), "{code}");
    }
    let ada = app.register("Ada", "student").await;
    let (status, joined) = app.post("/api/courses/join", &ada.token, json!({ "code": codes[1] })).await;
    assert_eq!(status, 201, "a student joins a seeded course by its code: {joined}");
}
