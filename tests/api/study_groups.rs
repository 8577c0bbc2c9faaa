//! Study groups over real HTTP and sockets: creating, joining, inviting,
//! roles and the last admin, the member limit under concurrent joins,
//! search, the group's chat (acks, order, history after a restart, edit and
//! delete, unread counts across tabs), outsiders and removed members shut
//! out (open sockets included), group study sessions and their reminders.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{spawn_app, TestApp, TestUser, WsClient};
use crate::matrix::{assert_documented, outcome, Row};

/// Three students of one course (classmates), and its instructor.
struct Classmates {
    ada: TestUser,
    bob: TestUser,
    cleo: TestUser,
    course: String,
}

async fn classmates(app: &TestApp) -> Classmates {
    let grace = app.register("Grace", "instructor").await;
    let ada = app.register("Ada", "student").await;
    let bob = app.register("Bob", "student").await;
    let cleo = app.register("Cleo", "student").await;
    let course = app.course_with(&grace, &[&ada, &bob, &cleo]).await;
    Classmates { ada, bob, cleo, course }
}

async fn create(app: &TestApp, by: &TestUser, body: Value) -> Value {
    let (status, group) = app.post("/api/study-groups", &by.token, body).await;
    assert_eq!(status, 201, "{group}");
    group
}

fn id(value: &Value) -> String {
    value["id"].as_str().expect("an id").to_string()
}

async fn in_room(app: &TestApp, user: &TestUser, room: &str) -> WsClient {
    let mut socket = app.connect(user).await;
    let joined = socket.request("join-room", json!({ "roomId": room })).await;
    assert_eq!(joined["ok"], true, "{joined}");
    socket
}

async fn say(socket: &mut WsClient, room: &str, text: &str) -> Value {
    let ack = socket.request("room-message", json!({ "roomId": room, "message": text })).await;
    assert_eq!(ack["ok"], true, "{ack}");
    ack["data"]["message"].clone()
}

/// Waits for the room to push this message to the socket (earlier ones skipped).
async fn sees_message(socket: &mut WsClient, message_id: &Value) {
    while socket.next_event("new-message").await["data"]["message"]["id"] != *message_id {}
}

#[actix_web::test]
async fn three_classmates_make_a_private_group_by_invitation_and_chat_in_it() {
    let app = spawn_app().await;
    let Classmates { ada, bob, cleo, course } = classmates(&app).await;
    let group = create(
        &app,
        &ada,
        json!({ "name": "  Borrow checker club ", "description": "Weekly", "courseId": course, "visibility": "private" }),
    )
    .await;
    assert_eq!((group["name"].as_str(), group["myRole"].as_str()), (Some("Borrow checker club"), Some("admin")));
    assert_eq!((group["memberCount"].as_i64(), group["unreadCount"].as_i64()), (Some(1), Some(0)));
    let (group_id, room) = (id(&group), group["chatRoomId"].as_str().unwrap().to_string());

    // Private: joining alone is refused; an invitation lets Bob in.
    let (status, refused) = app.post(&format!("/api/study-groups/{group_id}/join"), &bob.token, json!({})).await;
    assert_eq!(status, 403, "{refused}");
    let mut bob_socket = app.connect(&bob).await;
    let (status, invite) =
        app.post(&format!("/api/study-groups/{group_id}/invites"), &ada.token, json!({ "userId": bob.id })).await;
    assert_eq!((status, invite["status"].as_str()), (201, Some("pending")), "{invite}");
    let pushed = bob_socket.next_event("study-group-invite").await;
    assert_eq!(pushed["data"]["invite"]["groupName"], "Borrow checker club");
    let (_, again) =
        app.post(&format!("/api/study-groups/{group_id}/invites"), &ada.token, json!({ "userId": bob.id })).await;
    assert_eq!(again["id"], invite["id"], "inviting twice finds the pending invitation");
    let (status, mine) = app.get("/api/study-groups/invites", &bob.token).await;
    assert_eq!((status, mine.as_array().map(Vec::len)), (200, Some(1)), "{mine}");
    let (status, member) =
        app.post(&format!("/api/study-groups/invites/{}/accept", id(&invite)), &bob.token, json!({})).await;
    assert_eq!((status, member["role"].as_str()), (200, Some("member")), "{member}");
    let (status, _) =
        app.post(&format!("/api/study-groups/invites/{}/accept", id(&invite)), &bob.token, json!({})).await;
    assert_eq!(status, 409, "an answered invitation is closed");

    // Cleo declines first, is invited again by Bob (any member invites), accepts.
    let (_, invite) =
        app.post(&format!("/api/study-groups/{group_id}/invites"), &ada.token, json!({ "userId": cleo.id })).await;
    let (status, declined) =
        app.post(&format!("/api/study-groups/invites/{}/decline", id(&invite)), &cleo.token, json!({})).await;
    assert_eq!((status, declined["status"].as_str()), (200, Some("declined")), "{declined}");
    let (status, invite) =
        app.post(&format!("/api/study-groups/{group_id}/invites"), &bob.token, json!({ "userId": cleo.id })).await;
    assert_eq!(status, 201, "{invite}");
    let (status, _) =
        app.post(&format!("/api/study-groups/invites/{}/accept", id(&invite)), &cleo.token, json!({})).await;
    assert_eq!(status, 200);

    let (status, members) = app.get(&format!("/api/study-groups/{group_id}/members"), &cleo.token).await;
    assert_eq!(status, 200, "{members}");
    let roles: Vec<(&str, &str)> = members
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["name"].as_str().unwrap(), m["role"].as_str().unwrap()))
        .collect();
    assert_eq!(roles, [("Ada", "admin"), ("Bob", "member"), ("Cleo", "member")]);

    // The chat: acked once stored, in one order for everyone.
    let mut ada_socket = in_room(&app, &ada, &room).await;
    let bob_joined = bob_socket.request("join-room", json!({ "roomId": room })).await;
    assert_eq!(bob_joined["data"]["room"]["type"], "study_group", "{bob_joined}");
    let mut cleo_socket = in_room(&app, &cleo, &room).await;
    let first = say(&mut ada_socket, &room, "Chapter 4 tonight?").await;
    let second = say(&mut bob_socket, &room, "Yes, 8pm").await;
    let link = ada_socket
        .request("room-message", json!({ "roomId": room, "message": "https://doc.rust-lang.org/book/ch04-00-understanding-ownership.html", "messageType": "link" }))
        .await;
    assert_eq!(link["data"]["message"]["messageType"], "link", "{link}");
    for expected in [&first, &second] {
        assert_eq!(cleo_socket.next_event("new-message").await["data"]["message"]["id"], expected["id"]);
    }

    // Edit and delete by the author; everyone sees the change.
    let edited = ada_socket
        .request("edit-message", json!({ "roomId": room, "messageId": first["id"], "message": "Chapter 4, 8pm" }))
        .await;
    assert_eq!(edited["ok"], true, "{edited}");
    assert_eq!(cleo_socket.next_event("message-edited").await["data"]["message"]["message"], "Chapter 4, 8pm");
    let not_hers = cleo_socket.request("delete-message", json!({ "roomId": room, "messageId": second["id"] })).await;
    assert_eq!(not_hers["error"]["code"], "forbidden", "{not_hers}");
    let deleted = bob_socket.request("delete-message", json!({ "roomId": room, "messageId": second["id"] })).await;
    assert_eq!(deleted["ok"], true, "{deleted}");
    assert_eq!(cleo_socket.next_event("message-deleted").await["data"]["messageId"], second["id"]);

    // REST posts go through the same room: 201 once stored, pushed to the room, resends answered once.
    let body = json!({ "message": "Bringing snacks", "clientMsgId": "snacks-1" });
    let (status, posted) = app.post(&format!("/api/study-groups/{group_id}/message"), &cleo.token, body.clone()).await;
    assert_eq!(status, 201, "{posted}");
    sees_message(&mut ada_socket, &posted["id"]).await;
    let (status, resent) = app.post(&format!("/api/study-groups/{group_id}/message"), &cleo.token, body).await;
    assert_eq!((status, &resent["id"]), (201, &posted["id"]), "a resend is the same message");

    let app = app.restarted().await;
    let (status, history) = app.get(&format!("/api/study-groups/{group_id}/messages"), &bob.token).await;
    assert_eq!(status, 200, "{history}");
    let texts: Vec<(&str, bool)> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["message"].as_str().unwrap(), m["deleted"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        texts,
        [
            ("Chapter 4, 8pm", false),
            ("", true),
            ("https://doc.rust-lang.org/book/ch04-00-understanding-ownership.html", false),
            ("Bringing snacks", false)
        ],
        "the history survives a restart, edits and deletes included"
    );
    let (_, page) = app
        .get(
            &format!("/api/study-groups/{group_id}/messages?before={}&limit=1", posted["id"].as_str().unwrap()),
            &bob.token,
        )
        .await;
    assert_eq!(page.as_array().map(Vec::len), Some(1), "{page}");
}

#[actix_web::test]
async fn unread_counts_follow_a_member_across_tabs_and_into_the_group_list() {
    let app = spawn_app().await;
    let Classmates { ada, bob, .. } = classmates(&app).await;
    let group = create(&app, &ada, json!({ "name": "Night owls" })).await;
    let (group_id, room) = (id(&group), group["chatRoomId"].as_str().unwrap().to_string());
    let (status, _) = app.post(&format!("/api/study-groups/{group_id}/join"), &bob.token, json!({})).await;
    assert_eq!(status, 200);
    let mut bob_dashboard = app.connect(&bob).await;
    let mut ada_socket = in_room(&app, &ada, &room).await;
    let mut last = Value::Null;
    for n in 0..3 {
        last = say(&mut ada_socket, &room, &format!("note {n}")).await;
    }
    let activity = bob_dashboard.next_event("study-group-activity").await;
    assert_eq!(activity["data"]["groupId"].as_str(), Some(group_id.as_str()), "{activity}");
    let in_room_only = ada_socket.receives_within("study-group-activity", Duration::from_millis(1200)).await;
    assert!(!in_room_only, "a member whose sockets are all in the room saw the messages themselves");
    let (_, groups) = app.get("/api/study-groups", &bob.token).await;
    assert_eq!(groups[0]["unreadCount"], 3, "{groups}");
    assert_eq!(groups[0]["onlineCount"], 2, "Ada and Bob are online: {groups}");

    let mut tab_one = in_room(&app, &bob, &room).await;
    let read = tab_one.request("mark-read", json!({ "roomId": room, "messageId": last["id"] })).await;
    assert_eq!(read["data"]["unreadCount"], 0, "{read}");
    let other_tab = bob_dashboard.next_event("unread-updated").await;
    assert_eq!(other_tab["data"]["unreadCount"], 0, "{other_tab}");
    let (_, groups) = app.get("/api/study-groups", &bob.token).await;
    assert_eq!(groups[0]["unreadCount"], 0, "{groups}");
    let (_, detail) = app.get(&format!("/api/study-groups/{group_id}"), &bob.token).await;
    assert_eq!(detail["activity"]["activeMembersThisWeek"], 1, "{detail}");
    assert_eq!(detail["activity"]["messagesPerDay"].as_array().map(Vec::len), Some(7), "{detail}");
    assert_eq!(detail["activity"]["messagesPerDay"][6]["count"], 3, "{detail}");
}

#[actix_web::test]
async fn outsiders_and_removed_members_can_neither_read_nor_post_even_on_an_open_socket() {
    let app = spawn_app().await;
    let Classmates { ada, bob, cleo, .. } = classmates(&app).await;
    let group = create(&app, &ada, json!({ "name": "Closed circle", "visibility": "private" })).await;
    let (group_id, room) = (id(&group), group["chatRoomId"].as_str().unwrap().to_string());

    // Cleo, an outsider: no details, members, history or posting; no room.
    for path in ["", "/members", "/messages", "/sessions"] {
        let (status, body) = app.get(&format!("/api/study-groups/{group_id}{path}"), &cleo.token).await;
        assert_eq!(status, 403, "GET {path}: {body}");
    }
    let (status, _) =
        app.post(&format!("/api/study-groups/{group_id}/message"), &cleo.token, json!({ "message": "hi" })).await;
    assert_eq!(status, 403);
    let mut cleo_socket = app.connect(&cleo).await;
    let refused = cleo_socket.request("join-room", json!({ "roomId": room })).await;
    assert_eq!(refused["error"]["code"], "forbidden", "{refused}");
    let unknown = cleo_socket.request("join-room", json!({ "roomId": uuid::Uuid::new_v4() })).await;
    assert_eq!(unknown["error"]["code"], "not_found", "{unknown}");
    let (status, _) = app.get(&format!("/api/study-groups/{}", uuid::Uuid::new_v4()), &cleo.token).await;
    assert_eq!(status, 404);

    // Bob is a member with an open socket in the room, then removed.
    let (_, invite) =
        app.post(&format!("/api/study-groups/{group_id}/invites"), &ada.token, json!({ "userId": bob.id })).await;
    app.post(&format!("/api/study-groups/invites/{}/accept", id(&invite)), &bob.token, json!({})).await;
    let mut bob_socket = in_room(&app, &bob, &room).await;
    let mut ada_socket = in_room(&app, &ada, &room).await;
    let hello = say(&mut bob_socket, &room, "hello").await;
    sees_message(&mut ada_socket, &hello["id"]).await;
    let (status, refused) = app
        .request("DELETE", &format!("/api/study-groups/{group_id}/members/{}", ada.id), Some(&bob.token), None)
        .await;
    assert_eq!(status, 403, "a member does not remove others: {refused}");
    let (status, _) = app
        .request("DELETE", &format!("/api/study-groups/{group_id}/members/{}", bob.id), Some(&ada.token), None)
        .await;
    assert_eq!(status, 204);
    let told = bob_socket.next_event("removed-from-study-group").await;
    assert_eq!(told["data"]["roomId"].as_str(), Some(room.as_str()), "{told}");
    assert_eq!(ada_socket.next_event("user-left").await["data"]["userId"].as_str(), Some(bob.id.as_str()));
    let post = bob_socket.request("room-message", json!({ "roomId": room, "message": "still here?" })).await;
    assert_eq!(post["error"]["code"], "forbidden", "the open socket is out at once: {post}");
    assert!(!ada_socket.receives_within("new-message", Duration::from_millis(300)).await);
    let rejoin = bob_socket.request("join-room", json!({ "roomId": room })).await;
    assert_eq!(rejoin["error"]["code"], "forbidden", "{rejoin}");
    let (status, _) = app.get(&format!("/api/study-groups/{group_id}/messages"), &bob.token).await;
    assert_eq!(status, 403);
    let (status, _) =
        app.post(&format!("/api/study-groups/{group_id}/message"), &bob.token, json!({ "message": "x" })).await;
    assert_eq!(status, 403);
}

#[actix_web::test]
async fn the_member_limit_holds_under_twenty_concurrent_joins() {
    let app = spawn_app().await;
    let founder = app.register("Founder", "student").await;
    let group = create(&app, &founder, json!({ "name": "Small table", "maxMembers": 5 })).await;
    let group_id = id(&group);
    let mut joiners = Vec::new();
    for n in 0..20 {
        joiners.push(app.register(&format!("Joiner{n}"), "student").await);
    }
    let path = format!("/api/study-groups/{group_id}/join");
    let joins = joiners.iter().map(|joiner| app.post(&path, &joiner.token, json!({})));
    let answers = futures_util::future::join_all(joins).await;
    let admitted = answers.iter().filter(|(status, _)| *status == 200).count();
    let full: Vec<_> =
        answers.iter().filter(|(status, body)| *status == 409 && body["error"]["code"] == "group_full").collect();
    assert_eq!((admitted, full.len()), (4, 16), "{answers:?}");
    let (_, members) = app.get(&format!("/api/study-groups/{group_id}/members"), &founder.token).await;
    assert_eq!(members.as_array().map(Vec::len), Some(5));
    let (_, group) = app.get(&format!("/api/study-groups/{group_id}"), &founder.token).await;
    assert_eq!(group["memberCount"], 5, "{group}");
    let outsider = app.register("Late", "student").await;
    let (_, found) = app.get("/api/study-groups/search?q=Small", &outsider.token).await;
    assert_eq!(found.as_array().map(Vec::len), Some(0), "a full group is not one I may join: {found}");
    let (status, refused) = app
        .request(
            "PUT",
            &format!("/api/study-groups/{group_id}"),
            Some(&founder.token),
            Some(json!({ "maxMembers": 3 })),
        )
        .await;
    assert_eq!((status, refused["error"]["code"].as_str()), (409, Some("group_full")), "{refused}");
}

#[actix_web::test]
async fn search_finds_public_groups_one_may_join_only() {
    let app = spawn_app().await;
    let Classmates { ada, bob, course, .. } = classmates(&app).await;
    let outsider = app.register("Olga", "student").await;
    create(&app, &ada, json!({ "name": "Rust Readers" })).await;
    create(&app, &ada, json!({ "name": "rust secret society", "visibility": "private" })).await;
    create(&app, &ada, json!({ "name": "Rustaceans of the course", "courseId": course })).await;
    create(&app, &ada, json!({ "name": "100%_literal" })).await;
    let names = |found: &Value| -> Vec<String> {
        let mut names: Vec<String> =
            found.as_array().unwrap().iter().map(|g| g["name"].as_str().unwrap().to_string()).collect();
        names.sort();
        names
    };
    let (status, found) = app.get("/api/study-groups/search?q=RUST", &bob.token).await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(names(&found), ["Rust Readers", "Rustaceans of the course"], "public ones only, any case");
    assert!(found[0]["unreadCount"].is_null() && found[0]["myRole"].is_null(), "{found}");
    let (_, found) = app.get("/api/study-groups/search?q=rust", &outsider.token).await;
    assert_eq!(names(&found), ["Rust Readers"], "a course's group is for the course");
    let (_, found) = app.get(&format!("/api/study-groups/search?q=&courseId={course}"), &bob.token).await;
    assert_eq!(names(&found), ["Rustaceans of the course"]);
    let (_, found) = app.get("/api/study-groups/search?q=%25_", &bob.token).await;
    assert_eq!(names(&found), ["100%_literal"], "% and _ are matched literally");
    let (_, found) = app.get("/api/study-groups/search?q=rust", &ada.token).await;
    assert_eq!(names(&found), Vec::<String>::new(), "not the groups I am in");
    let (status, _) = app.get("/api/study-groups/search?q=%00", &bob.token).await;
    assert_eq!(status, 400);
}

#[actix_web::test]
async fn the_last_admin_hands_over_before_leaving_and_the_last_member_out_archives() {
    let app = spawn_app().await;
    let Classmates { ada, bob, .. } = classmates(&app).await;
    let group = create(&app, &ada, json!({ "name": "Relay" })).await;
    let group_id = id(&group);
    app.post(&format!("/api/study-groups/{group_id}/join"), &bob.token, json!({})).await;
    let (status, refused) = app.post(&format!("/api/study-groups/{group_id}/leave"), &ada.token, json!({})).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (409, Some("last_admin")), "{refused}");
    let member = |user: &TestUser| format!("/api/study-groups/{group_id}/members/{}", user.id);
    let (status, refused) =
        app.request("PUT", &member(&ada), Some(&ada.token), Some(json!({ "role": "member" }))).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (409, Some("last_admin")), "{refused}");
    let (status, _) = app.request("PUT", &member(&ada), Some(&bob.token), Some(json!({ "role": "member" }))).await;
    assert_eq!(status, 403, "a member changes no roles");
    let (status, bad) = app.request("PUT", &member(&bob), Some(&ada.token), Some(json!({ "role": "owner" }))).await;
    assert_eq!(status, 400, "{bad}");
    let (status, promoted) =
        app.request("PUT", &member(&bob), Some(&ada.token), Some(json!({ "role": "admin" }))).await;
    assert_eq!((status, promoted["role"].as_str()), (200, Some("admin")), "{promoted}");
    let (status, _) = app.post(&format!("/api/study-groups/{group_id}/leave"), &ada.token, json!({})).await;
    assert_eq!(status, 204);
    let (_, groups) = app.get("/api/study-groups", &ada.token).await;
    assert_eq!(groups.as_array().map(Vec::len), Some(0));
    let (status, _) = app.post(&format!("/api/study-groups/{group_id}/leave"), &bob.token, json!({})).await;
    assert_eq!(status, 204, "the last member may go");
    for path in ["", "/members", "/messages", "/sessions"] {
        let (status, _) = app.get(&format!("/api/study-groups/{group_id}{path}"), &bob.token).await;
        assert_eq!(status, 404, "an archived group is gone: GET {path}");
    }
    let (status, _) = app.post(&format!("/api/study-groups/{group_id}/join"), &ada.token, json!({})).await;
    assert_eq!(status, 409, "an archived group takes nobody");
    let (_, found) = app.get("/api/study-groups/search?q=Relay", &ada.token).await;
    assert_eq!(found.as_array().map(Vec::len), Some(0), "{found}");
}

#[actix_web::test]
async fn bad_input_gets_clear_errors() {
    let app = spawn_app().await;
    let Classmates { ada, course, .. } = classmates(&app).await;
    let stranger = app.register("Sam", "student").await;
    let instructor = app.register("Ivy", "instructor").await;
    for (body, code) in [
        (json!({ "name": "" }), "invalid_name"),
        (json!({ "name": "a\u{0}b" }), "invalid_text"),
        (json!({ "name": "ok", "description": "nul\u{0}" }), "invalid_text"),
        (json!({ "name": "ok", "visibility": "secret" }), "invalid_visibility"),
        (json!({ "name": "ok", "maxMembers": 1 }), "invalid_max_members"),
        (json!({ "name": "ok", "maxMembers": -5 }), "invalid_max_members"),
    ] {
        let (status, error) = app.post("/api/study-groups", &ada.token, body.clone()).await;
        assert_eq!((status, error["error"]["code"].as_str()), (400, Some(code)), "{body}: {error}");
    }
    let (status, _) =
        app.post("/api/study-groups", &ada.token, json!({ "name": "ok", "courseId": uuid::Uuid::new_v4() })).await;
    assert_eq!(status, 404, "unknown course");
    let (status, _) = app.post("/api/study-groups", &stranger.token, json!({ "name": "ok", "courseId": course })).await;
    assert_eq!(status, 403, "not in the course");
    let (status, _) = app.get("/api/study-groups/not-a-uuid", &ada.token).await;
    assert_eq!(status, 404);
    let group = create(&app, &ada, json!({ "name": "Checks", "courseId": course })).await;
    let group_id = id(&group);
    let (status, error) =
        app.post(&format!("/api/study-groups/{group_id}/invites"), &ada.token, json!({ "userId": stranger.id })).await;
    assert_eq!((status, error["error"]["code"].as_str()), (403, Some("not_a_classmate")), "{error}");
    let (status, _) = app
        .post(&format!("/api/study-groups/{group_id}/invites"), &ada.token, json!({ "userId": uuid::Uuid::new_v4() }))
        .await;
    assert_eq!(status, 404);
    let (status, error) = app.post(&format!("/api/study-groups/{group_id}/join"), &instructor.token, json!({})).await;
    assert_eq!(status, 403, "not in the course: {error}");
    let (status, _) =
        app.post(&format!("/api/study-groups/invites/{}/accept", uuid::Uuid::new_v4()), &ada.token, json!({})).await;
    assert_eq!(status, 404);
    let now = chrono::Utc::now();
    for (start, end) in
        [(now - chrono::Duration::hours(2), now), (now + chrono::Duration::hours(2), now + chrono::Duration::hours(1))]
    {
        let body = json!({ "title": "Prep", "scheduledStartTime": start, "scheduledEndTime": end });
        let (status, error) = app.post(&format!("/api/study-groups/{group_id}/sessions"), &ada.token, body).await;
        assert_eq!((status, error["error"]["code"].as_str()), (400, Some("invalid_schedule")), "{error}");
    }
    let body = json!({ "title": "Prep", "scheduledStartTime": "-9999-01-01T00:00:00Z", "scheduledEndTime": now });
    let (status, _) = app.post(&format!("/api/study-groups/{group_id}/sessions"), &ada.token, body).await;
    assert_eq!(status, 400);
    let (status, error) =
        app.post(&format!("/api/study-groups/{group_id}/message"), &ada.token, json!({ "message": "" })).await;
    assert_eq!(status, 400, "{error}");
}

#[actix_web::test]
async fn a_group_study_session_is_listed_and_its_members_are_reminded_once() {
    let app = spawn_app().await;
    let Classmates { ada, bob, .. } = classmates(&app).await;
    let group = create(&app, &ada, json!({ "name": "Exam prep" })).await;
    let group_id = id(&group);
    app.post(&format!("/api/study-groups/{group_id}/join"), &bob.token, json!({})).await;
    let mut bob_socket = app.connect(&bob).await;
    let start = classroom::clock::Clock::now(&app.clock) + chrono::Duration::minutes(10);
    let body = json!({ "title": "Mock exam", "scheduledStartTime": start, "scheduledEndTime": start + chrono::Duration::hours(2) });
    let (status, session) = app.post(&format!("/api/study-groups/{group_id}/sessions"), &bob.token, body).await;
    assert_eq!(status, 201, "{session}");
    assert_eq!(session["roomId"], group["chatRoomId"], "{session}");
    bob_socket.next_event("study-group-updated").await;
    let (_, listed) = app.get(&format!("/api/study-groups/{group_id}/sessions"), &ada.token).await;
    assert_eq!(listed[0]["title"], "Mock exam", "{listed}");

    for _ in 0..2 {
        app.state.scheduler.send(classroom::engine::scheduler::Tick).await.unwrap();
    }
    let reminder = bob_socket.next_event("notification").await;
    assert_eq!(reminder["data"]["kind"], "group_session_reminder_15min", "{reminder}");
    assert_eq!(reminder["data"]["data"]["groupId"].as_str(), Some(group_id.as_str()), "{reminder}");
    assert!(!bob_socket.receives_within("notification", Duration::from_millis(300)).await, "once");
    let (_, stored) = app.get("/api/notifications", &ada.token).await;
    let kinds: Vec<&str> = stored.as_array().unwrap().iter().filter_map(|n| n["kind"].as_str()).collect();
    assert_eq!(kinds, ["group_session_reminder_15min"], "stored for the offline member too");
}

#[actix_web::test]
async fn group_mates_who_share_no_course_see_each_others_presence_from_joining_to_leaving() {
    let app = spawn_app().await;
    let olga = app.register("Olga", "student").await;
    let sam = app.register("Sam", "student").await;
    let group = create(&app, &olga, json!({ "name": "Open study hall" })).await;
    let group_id = id(&group);
    let mut olga_socket = app.connect(&olga).await;
    let mut sam_socket = app.connect(&sam).await;
    let (status, _) = app.get(&format!("/api/presence/user/{}", sam.id), &olga.token).await;
    assert_eq!(status, 403, "strangers before the group");

    let (status, _) = app.post(&format!("/api/study-groups/{group_id}/join"), &sam.token, json!({})).await;
    assert_eq!(status, 200);
    olga_socket.next_event("study-group-updated").await;
    let ack = sam_socket.request("update-presence", json!({ "status": "busy" })).await;
    assert_eq!(ack["ok"], true, "{ack}");
    // Sam may first be heard coming online (the group made them contacts).
    let mut heard = olga_socket.next_event("presence-updated").await;
    for _ in 0..3 {
        if heard["data"]["status"] == "busy" {
            break;
        }
        heard = olga_socket.next_event("presence-updated").await;
    }
    assert_eq!(
        (heard["data"]["userId"].as_str(), heard["data"]["status"].as_str()),
        (Some(sam.id.as_str()), Some("busy"))
    );
    let (status, seen) = app.get(&format!("/api/presence/user/{}", sam.id), &olga.token).await;
    assert_eq!((status, seen["status"].as_str()), (200, Some("busy")), "{seen}");
    let (_, groups) = app.get("/api/study-groups", &olga.token).await;
    assert_eq!(groups[0]["onlineCount"], 2, "{groups}");

    let (status, _) = app.post(&format!("/api/study-groups/{group_id}/leave"), &sam.token, json!({})).await;
    assert_eq!(status, 204);
    sam_socket.request("update-presence", json!({ "status": "away" })).await;
    let mut heard_again = false;
    while let Some(frame) = tokio::time::timeout(Duration::from_millis(400), olga_socket.next_json()).await.ok() {
        heard_again |=
            frame["event"] == "presence-updated" && frame["data"]["userId"].as_str() == Some(sam.id.as_str());
    }
    assert!(!heard_again, "after leaving, Sam's presence is Sam's own again");
    let (status, _) = app.get(&format!("/api/presence/user/{}", sam.id), &olga.token).await;
    assert_eq!(status, 403);
}

/// Every study-group call, by who asks: no token, a stranger, a member, an
/// admin. Each row runs on a fresh private group with one admin (Ada) and
/// one member (Bob), so one call's effect cannot leak into another's.
#[actix_web::test]
async fn the_permission_matrix_of_study_groups() {
    let app = spawn_app().await;
    let Classmates { ada, bob, cleo, .. } = classmates(&app).await;
    let stranger = app.register("Sam", "student").await;
    let dean = app.register_admin("Dean").await;
    let start = classroom::clock::Clock::now(&app.clock) + chrono::Duration::hours(1);
    let session =
        json!({ "title": "Prep", "scheduledStartTime": start, "scheduledEndTime": start + chrono::Duration::hours(1) });
    // A private group of Ada's (its admin) with Bob (a member), fresh for each cell.
    let fresh_group = || async {
        let group = create(&app, &ada, json!({ "name": "Matrix", "visibility": "private" })).await;
        let group_id = id(&group);
        let (_, invite) =
            app.post(&format!("/api/study-groups/{group_id}/invites"), &ada.token, json!({ "userId": bob.id })).await;
        app.post(&format!("/api/study-groups/invites/{}/accept", id(&invite)), &bob.token, json!({})).await;
        (group_id, group["chatRoomId"].as_str().expect("a room").to_string())
    };
    // (method, path after the group, body, [no token, stranger, member, group admin, platform admin])
    let rows: Vec<(&str, &str, Value, [u16; 5])> = vec![
        ("GET", "", Value::Null, [401, 403, 200, 200, 403]),
        ("PUT", "", json!({ "name": "Renamed" }), [401, 403, 403, 200, 403]),
        ("GET", "/members", Value::Null, [401, 403, 200, 200, 403]),
        ("GET", "/messages", Value::Null, [401, 403, 200, 200, 403]),
        ("POST", "/message", json!({ "message": "hi" }), [401, 403, 201, 201, 403]),
        ("GET", "/sessions", Value::Null, [401, 403, 200, 200, 403]),
        ("POST", "/sessions", session, [401, 403, 201, 201, 403]),
        ("POST", "/invites", json!({ "userId": cleo.id }), [401, 403, 201, 201, 403]),
        ("POST", "/join", json!({}), [401, 403, 200, 200, 403]),
        ("PUT", "/members/{bob}", json!({ "role": "admin" }), [401, 403, 403, 200, 403]),
        ("DELETE", "/members/{bob}", Value::Null, [401, 403, 204, 204, 403]),
        ("DELETE", "", Value::Null, [401, 403, 403, 204, 403]),
    ];
    let people = [None, Some(&stranger), Some(&bob), Some(&ada), Some(&dean)];
    let names = ["no token", "a stranger", "a member", "its admin", "an admin of the platform"];
    let (mut documented, mut wrong) = (Vec::new(), Vec::new());
    for (method, suffix, body, expected) in rows {
        let shown = suffix.replace("{bob}", "{userId}");
        documented.push(Row::new(method, &format!("/api/study-groups/{{id}}{shown}"), None, &expected));
        for ((who, name), want) in people.iter().zip(names).zip(expected) {
            let (group_id, _) = fresh_group().await;
            let path = format!("/api/study-groups/{group_id}{}", suffix.replace("{bob}", &bob.id));
            let body = (!body.is_null()).then(|| body.clone());
            let (status, answer) = app.request(method, &path, who.map(|user| user.token.as_str()), body).await;
            if status != want {
                wrong.push(format!("{method} {suffix} by {name}: {status}, not {want}: {answer}"));
            }
        }
    }

    // The room's events, over each person's socket, after they tried to join.
    let mut sockets = Vec::new();
    for who in people.iter().flatten() {
        sockets.push(app.connect(who).await);
    }
    // (event, data with {room}, [stranger, member, group admin, platform admin])
    let events: Vec<(&str, Value, [&str; 4])> = vec![
        ("join-room", json!({ "roomId": "{room}" }), ["forbidden", "ok", "ok", "forbidden"]),
        ("room-message", json!({ "roomId": "{room}", "message": "hi" }), ["forbidden", "ok", "ok", "forbidden"]),
        ("typing-in-room", json!({ "roomId": "{room}" }), ["forbidden", "ok", "ok", "forbidden"]),
        ("leave-room", json!({ "roomId": "{room}" }), ["not_in_room", "ok", "ok", "not_in_room"]),
    ];
    for (event, data, expected) in events {
        let mut cells = vec!["-"];
        cells.extend(expected);
        documented.push(Row::event(event, &cells));
        for ((socket, name), want) in sockets.iter_mut().zip(&names[1..]).zip(expected) {
            let (_, room) = fresh_group().await;
            let data: Value = serde_json::from_str(&data.to_string().replace("{room}", &room)).expect("json");
            let join = socket.request("join-room", json!({ "roomId": room })).await;
            let ack = if event == "join-room" { join } else { socket.request(event, data).await };
            if outcome(&ack) != want {
                wrong.push(format!("{event} by {name}: {ack}, not {want}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert_documented("study-groups", &names, &documented);
}

#[actix_web::test]
async fn a_join_storm_reaches_members_as_a_few_coalesced_updates() {
    let app = spawn_app().await;
    let founder = app.register("Founder", "student").await;
    let group = create(&app, &founder, json!({ "name": "Lecture hall" })).await;
    let group_id = id(&group);
    let mut joiners = Vec::new();
    for n in 0..20 {
        joiners.push(app.register(&format!("Joiner{n}"), "student").await);
    }
    let mut founder_socket = app.connect(&founder).await;
    let path = format!("/api/study-groups/{group_id}/join");
    let joins = joiners.iter().map(|joiner| app.post(&path, &joiner.token, json!({})));
    let answers = futures_util::future::join_all(joins).await;
    assert!(answers.iter().all(|(status, _)| *status == 200), "{answers:?}");
    let mut updates = 0;
    while let Ok(frame) = tokio::time::timeout(Duration::from_millis(1500), founder_socket.next_json()).await {
        updates += usize::from(frame["event"] == "study-group-updated");
    }
    assert!((1..=3).contains(&updates), "20 joins, {updates} pushes: at most one a second after the first");
}

#[actix_web::test]
async fn a_message_the_server_read_is_stored_even_if_its_socket_closes_at_once() {
    let app = spawn_app().await;
    let ada = app.register("Ada", "student").await;
    let group = create(&app, &ada, json!({ "name": "Last words" })).await;
    let (group_id, room) = (id(&group), group["chatRoomId"].as_str().unwrap().to_string());
    for n in 0..20 {
        let mut socket = in_room(&app, &ada, &room).await;
        let frame =
            json!({ "event": "room-message", "data": { "roomId": room, "message": format!("bye {n}") }, "ack": 99 });
        socket.send_text(frame.to_string()).await;
        drop(socket); // the tab closes before the ack
    }
    let mut stored = 0;
    for _ in 0..100 {
        let (_, history) = app.get(&format!("/api/study-groups/{group_id}/messages?limit=50"), &ada.token).await;
        stored = history.as_array().map_or(0, Vec::len);
        if stored == 20 {
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(stored, 20, "every message the server read is stored, its sender gone or not");
}

#[actix_web::test]
async fn two_admins_leaving_at_once_leave_one_behind() {
    let app = spawn_app().await;
    let Classmates { ada, bob, cleo, .. } = classmates(&app).await;
    let group = create(&app, &ada, json!({ "name": "Both at the door" })).await;
    let group_id = id(&group);
    for member in [&bob, &cleo] {
        app.post(&format!("/api/study-groups/{group_id}/join"), &member.token, json!({})).await;
    }
    let promote = app
        .request(
            "PUT",
            &format!("/api/study-groups/{group_id}/members/{}", bob.id),
            Some(&ada.token),
            Some(json!({ "role": "admin" })),
        )
        .await;
    assert_eq!(promote.0, 200, "{promote:?}");
    let path = format!("/api/study-groups/{group_id}/leave");
    let (ada_left, bob_left) =
        futures_util::future::join(app.post(&path, &ada.token, json!({})), app.post(&path, &bob.token, json!({})))
            .await;
    let mut statuses = [ada_left.0, bob_left.0];
    statuses.sort();
    assert_eq!(statuses, [204, 409], "one admin stays: {ada_left:?} {bob_left:?}");
    let (_, members) = app.get(&format!("/api/study-groups/{group_id}/members"), &cleo.token).await;
    let admins = members.as_array().unwrap().iter().filter(|m| m["role"] == "admin").count();
    assert_eq!(admins, 1, "{members}");
}
