//! The permission matrix of the calls that belong to no feature of their
//! own: courses, presence and notifications (live sessions, study groups
//! and office hours have theirs beside their tests). Every call, by who
//! asks: no token, a student of another course, a student of the course,
//! its instructor, another instructor, an admin of the platform; the exact
//! status each gets.

use serde_json::{json, Value};

use crate::helpers::{spawn_app, TestUser};
use crate::matrix::{assert_documented, Row};

#[actix_web::test]
async fn the_permission_matrix_of_courses_presence_and_notifications() {
    let app = spawn_app().await;
    let grace = app.register("Grace", "instructor").await;
    let ada = app.register("Ada", "student").await;
    let stranger = app.register("Sam", "student").await;
    let ivy = app.register("Ivy", "instructor").await;
    let dean = app.register_admin("Dean").await;
    let course = app.course_with(&grace, &[&ada]).await;
    app.course_with(&ivy, &[&stranger]).await;

    // A notification of Ada's: she is admitted to Grace's office hours.
    app.post("/api/office-hours/open", &grace.token, json!({})).await;
    let (_, entry) = app.post("/api/office-hours/join-queue", &ada.token, json!({ "instructorId": grace.id })).await;
    let admit = format!("/api/office-hours/admit/{}", entry["id"].as_str().expect("an entry"));
    assert_eq!(app.post(&admit, &grace.token, json!({})).await.0, 200);
    let (_, notifications) = app.get("/api/notifications", &ada.token).await;
    let notification = notifications[0]["id"].as_str().expect("Ada's notification").to_string();

    let fill = |path: &str| {
        path.replace("{course}", &course)
            .replace("{ada}", &ada.id)
            .replace("{notification}", &notification)
            .replace("{nobody}", &uuid::Uuid::new_v4().to_string())
    };
    // (method, path, body, [no token, stranger, Ada (the course's student), Grace (its instructor), Ivy, Dean (an admin)]);
    // rows that change something come last, the enrollment of the stranger last of all.
    let rows: Vec<(&str, &str, Value, [u16; 6])> = vec![
        ("GET", "/api/me", Value::Null, [401, 200, 200, 200, 200, 200]),
        ("GET", "/api/courses", Value::Null, [401, 200, 200, 200, 200, 200]),
        ("GET", "/api/presence/user/{ada}", Value::Null, [401, 403, 200, 200, 403, 403]),
        ("GET", "/api/presence/user/{nobody}", Value::Null, [401, 404, 404, 404, 404, 404]),
        ("GET", "/api/presence/course/{course}", Value::Null, [401, 403, 200, 200, 403, 403]),
        ("GET", "/api/presence/course/{nobody}", Value::Null, [401, 404, 404, 404, 404, 404]),
        ("GET", "/api/presence/online", Value::Null, [401, 200, 200, 200, 200, 200]),
        ("GET", "/api/presence/privacy", Value::Null, [401, 200, 200, 200, 200, 200]),
        ("GET", "/api/notifications", Value::Null, [401, 200, 200, 200, 200, 200]),
        ("PUT", "/api/presence/status", json!({}), [401, 200, 200, 200, 200, 200]),
        ("PUT", "/api/presence/privacy", json!({}), [401, 200, 200, 200, 200, 200]),
        ("POST", "/api/notifications/{notification}/read", json!({}), [401, 404, 204, 404, 404, 404]),
        ("POST", "/api/courses", json!({ "title": "Mine" }), [401, 403, 403, 201, 201, 201]),
        ("POST", "/api/courses/{nobody}/enroll", json!({}), [401, 404, 404, 403, 403, 403]),
        ("POST", "/api/courses/{course}/enroll", json!({}), [401, 201, 200, 403, 403, 403]),
    ];
    let people: [Option<&TestUser>; 6] = [None, Some(&stranger), Some(&ada), Some(&grace), Some(&ivy), Some(&dean)];
    let names = ["no token", "a stranger", "the course's student", "its instructor", "another instructor", "an admin"];
    let (mut documented, mut wrong) = (Vec::new(), Vec::new());
    for (method, path, body, expected) in rows {
        let shown = path.replace("{ada}", "{userId}").replace("{course}", "{courseId}");
        let shown = shown.replace("{nobody}", "{unknownId}").replace("{notification}", "{notificationId}");
        documented.push(Row::new(method, &shown, None, &expected));
        for ((who, name), want) in people.iter().zip(names).zip(expected) {
            let body = (!body.is_null()).then(|| body.clone());
            let (status, answer) = app.request(method, &fill(path), who.map(|user| user.token.as_str()), body).await;
            if status != want {
                wrong.push(format!("{method} {path} by {name}: {status}, not {want}: {answer}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert_documented("courses", &names, &documented);
}
