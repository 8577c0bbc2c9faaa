//! Graceful shutdown of the real binary: SIGTERM while ~500 course creations
//! are in flight. Open sockets are closed with 1001, the process exits with
//! success, and every course the server acknowledged (201) is in the
//! database afterwards. Requests that failed or were refused are fine; an
//! acknowledged write that went missing is the failure guarded against.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use classroom::config::backend_of;
use classroom::db::{self, Db};

use crate::helpers::{fresh_database, WsClient};
use crate::process::{post, Remote, ServerProcess};

const COURSES: usize = 500;

#[actix_web::test]
async fn sigterm_with_writes_in_flight_loses_no_acknowledged_write() {
    let database = fresh_database();
    let mut server = ServerProcess::start(&database.url);
    let port = server.port().await;
    let base = format!("http://127.0.0.1:{port}");
    let client = awc::Client::builder().timeout(Duration::from_secs(30)).finish();

    let email = format!("ada-{}@example.com", uuid::Uuid::new_v4().simple());
    let registration = json!({ "email": email, "password": "correct horse", "name": "Ada", "role": "instructor" });
    let (status, body) =
        post(&client, &format!("{base}/api/auth/register"), None, registration).await.expect("register answered");
    assert_eq!(status, 201, "{body}");
    let token = body["token"].as_str().expect("token").to_string();

    let mut socket = WsClient::connect(&format!("ws://127.0.0.1:{port}/ws?token={token}")).await;
    let hello = socket.next_json().await;
    assert_eq!(hello["event"], "connected", "{hello}");

    let answered = Arc::new(AtomicUsize::new(0));
    let requests: Vec<_> = (0..COURSES)
        .map(|i| {
            let (client, answered, token) = (client.clone(), answered.clone(), token.clone());
            let url = format!("{base}/api/courses");
            let title = format!("Course {i}");
            actix_web::rt::spawn(async move {
                let response = post(&client, &url, Some(&token), json!({ "title": title })).await;
                answered.fetch_add(1, Ordering::SeqCst);
                (title, response)
            })
        })
        .collect();

    // SIGTERM once some answers are back and most requests are still in flight.
    let deadline = Instant::now() + Duration::from_secs(30);
    while answered.load(Ordering::SeqCst) < 50 {
        assert!(Instant::now() < deadline, "fewer than 50 answers in 30 s:\n{}", server.log_text());
        actix_web::rt::time::sleep(Duration::from_millis(1)).await;
    }
    server.terminate();

    assert_eq!(socket.closed().await, Some(1001), "the socket is closed as 'going away'");
    let mut acknowledged = Vec::new();
    for request in requests {
        let (title, response) = request.await.expect("request task");
        match response {
            Some((201, course)) => {
                assert_eq!(course["title"], title.as_str(), "{course}");
                acknowledged.push((course["id"].as_str().expect("course id").to_string(), title));
            }
            Some((503, _)) | None => {}
            Some((status, body)) => panic!("{title}: unexpected {status} {body}"),
        }
    }
    let status = server.exited_within(Duration::from_secs(30)).await;
    assert!(status.success(), "server exited with {status}:\n{}", server.log_text());
    assert!(!acknowledged.is_empty(), "no course was acknowledged before the shutdown");

    let store = Db::connect(&database.url, backend_of(&database.url), 2).expect("open the database");
    let ids: Vec<String> = acknowledged.iter().map(|(id, _)| id.clone()).collect();
    let rows = store
        .read(move |conn| Ok(ids.iter().map(|id| db::courses::find(conn, id)).collect::<Result<Vec<_>, _>>()?))
        .await
        .expect("read courses");
    let missing: Vec<_> = acknowledged
        .iter()
        .zip(&rows)
        .filter(|((_, title), row)| row.as_ref().map(|r| &r.title) != Some(title))
        .map(|((id, title), _)| format!("{title} ({id})"))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged courses are not stored: {missing:?}",
        missing.len(),
        acknowledged.len()
    );
}

#[actix_web::test]
async fn after_kill_9_nobody_stays_in_a_session_forever() {
    let database = fresh_database();
    let mut server = ServerProcess::start(&database.url);
    let remote = Remote::new(server.port().await);
    let grace = remote.register("grace", "instructor").await;
    let ada = remote.register("ada", "student").await;
    let session = remote.started_session(&grace, std::slice::from_ref(&ada)).await;
    let mut socket = remote.socket(&ada).await;
    let joined = socket.request("join-live-session", json!({ "sessionId": session })).await;
    assert_eq!(joined["ok"], true, "{joined}");

    server.kill();
    let mut server = ServerProcess::start(&database.url);
    let remote = Remote::new(server.port().await);
    let (status, attendees) = remote.get(&format!("/api/live-sessions/{session}/attendees"), &grace).await;
    assert_eq!(status, 200, "{attendees}");
    assert_eq!(attendees.as_array().map(Vec::len), Some(1), "the join was stored before its ack: {attendees}");
    assert!(attendees[0]["leftAt"].is_string(), "Ada is not counted as present after the restart: {attendees}");
    let (status, ended) = remote.post(&format!("/api/live-sessions/{session}/end"), Some(&grace), json!({})).await;
    assert_eq!((status, &ended["attendeeCount"]), (200, &json!(0)), "{ended}");
    server.terminate();
    assert!(server.exited_within(Duration::from_secs(30)).await.success());
}
