//! Calls between nodes. A node asks the owner of an actor (a room, an
//! instructor's office hours) to run a call there; the owner answers with
//! the call's data or its error, or with the node that owns the actor now.
//! What each kind of actor is asked lives beside it (`room::calls`,
//! `office_hours::calls`); this module carries requests and answers.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::LocalBoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use uuid::Uuid;

use super::wire::NodeMessage;
use super::Cluster;
use crate::engine::office_hours::calls as office_calls;
use crate::engine::registry::Registry;
use crate::engine::room::calls as room_calls;
use crate::error::{AppError, AppResult};

/// What a node asks another.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Request {
    Room(room_calls::Forwarded),
    Office(office_calls::Forwarded),
    /// Which of these users have a socket on the node asked.
    Online(Vec<Uuid>),
    Presence(crate::engine::presence::calls::Forwarded),
    /// The ids of a user's sockets on the node asked.
    SocketsOf(Uuid),
    /// What watchers see of those of these people whose presence the node asked holds.
    PresenceViews(Vec<Uuid>),
}

/// How the node asked answers.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    Ok(Box<RawValue>),
    Error {
        status: u16,
        code: String,
        message: String,
    },
    /// Another node owns the actor now: ask it.
    Moved(Uuid),
}

/// A call's answer: the ack's (or the REST answer's) data, serialized once.
pub type Answer = LocalBoxFuture<'static, AppResult<Box<RawValue>>>;

pub fn raw(value: impl Serialize) -> AppResult<Box<RawValue>> {
    serde_json::value::to_raw_value(&value).map_err(AppError::internal)
}

pub fn outcome_of(result: AppResult<Box<RawValue>>) -> Outcome {
    match result {
        Ok(data) => Outcome::Ok(data),
        Err(err) => Outcome::Error { status: err.status.as_u16(), code: err.body.code, message: err.body.message },
    }
}

/// The body of a request, ready to send (and to send again to a new owner).
pub fn body_of(request: &Request) -> AppResult<String> {
    serde_json::to_string(request).map_err(AppError::internal)
}

/// The owner's answer to a request already sent (`first`, sent when the
/// caller made the call, so one caller's calls keep their order). If the
/// actor moved, the new owner is asked once; moved again, `gone()`.
pub async fn answer_from_owner(
    cluster: &Arc<Cluster>,
    key: &str,
    body: &str,
    first: impl Future<Output = AppResult<String>>,
    gone: fn() -> AppError,
) -> AppResult<Box<RawValue>> {
    let mut answer = first.await;
    let mut moved = false;
    loop {
        match answer.and_then(|text| serde_json::from_str::<Outcome>(&text).map_err(AppError::internal)) {
            Ok(Outcome::Ok(data)) => return Ok(data),
            Ok(Outcome::Error { status, code, message }) => {
                let status = actix_web::http::StatusCode::from_u16(status)
                    .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR);
                return Err(AppError::new(status, &code, message));
            }
            Ok(Outcome::Moved(owner)) if !moved => {
                cluster.forget_owner(key);
                moved = true;
                answer = cluster.request(owner, body).await;
            }
            Ok(Outcome::Moved(_)) => {
                cluster.forget_owner(key);
                return Err(gone());
            }
            Err(err) => {
                // Unanswered: whoever owns it next is asked afresh.
                cluster.forget_owner(key);
                return Err(err);
            }
        }
    }
}

/// Runs `perform` if this node owns `key` (taking the lease if nobody
/// alive holds it), or answers which node does.
pub fn as_owner(
    cluster: &Arc<Cluster>,
    key: String,
    perform: impl FnOnce() -> Answer + 'static,
) -> LocalBoxFuture<'static, Outcome> {
    match cluster.known_owner(&key) {
        // The common case, handed over now, in the order the calls came.
        Some(owner) if owner == cluster.node_id => {
            let performed = perform();
            Box::pin(async move { outcome_of(performed.await) })
        }
        _ => {
            let cluster = Arc::clone(cluster);
            Box::pin(async move {
                match cluster.owner(&key).await {
                    Ok(owner) if owner == cluster.node_id => outcome_of(perform().await),
                    Ok(owner) => Outcome::Moved(owner),
                    Err(err) => outcome_of(Err(err)),
                }
            })
        }
    }
}

/// Serves a request another node sent here, and answers on that node's channel.
pub fn serve(registry: &Arc<Registry>, from: Uuid, call_id: u64, body: &str) {
    let Some(cluster) = registry.cluster.clone() else { return };
    let request: Request = match serde_json::from_str(body) {
        Ok(request) => request,
        Err(err) => return log::warn!("node {}: unreadable call from node {from}: {err}", cluster.node_id),
    };
    let answer = match request {
        Request::Room(forwarded) => room_calls::serve(registry, &cluster, forwarded),
        Request::Office(forwarded) => office_calls::serve(registry, &cluster, forwarded),
        Request::Online(users) => {
            let here: Vec<Uuid> = users.into_iter().filter(|user| !registry.hub.sockets_of(*user).is_empty()).collect();
            let outcome = outcome_of(raw(here));
            Box::pin(async move { outcome })
        }
        Request::Presence(forwarded) => crate::engine::presence::calls::serve(registry, &cluster, forwarded),
        Request::SocketsOf(user) => {
            let sockets: Vec<Uuid> = registry.hub.sockets_of(user).iter().map(|socket| socket.id()).collect();
            let outcome = outcome_of(raw(sockets));
            Box::pin(async move { outcome })
        }
        Request::PresenceViews(people) => {
            let registry = Arc::clone(registry);
            Box::pin(async move { outcome_of(raw(crate::engine::presence::views_here(&registry, people).await)) })
        }
    };
    actix::spawn(async move {
        let outcome = answer.await;
        let body = serde_json::to_string(&outcome)
            .unwrap_or_else(|_| r#"{"error":{"status":500,"code":"internal","message":"unanswerable"}}"#.into());
        cluster.tell(from, &NodeMessage::Answer { call: call_id, body: &body });
    });
}

/// How long a node may take to say who is online on it: the office-hours
/// sweep waits for it (a node dying stalls the queue this long a sweep
/// until its heartbeat lapses).
const ONLINE_ASK_TIMEOUT: Duration = Duration::from_secs(1);

/// Which of `users` have a socket on another live node. A node that does
/// not answer in time counts as having none of them: whoever asks (the
/// office-hours sweep) drops someone only after a grace far longer than a
/// sweep, so one silent answer costs nobody their place, while a node
/// that died (and is still listed until its heartbeat lapses) must not
/// keep its users waiting forever. Without the node list (Redis
/// unreachable) everyone counts as online.
pub async fn online_elsewhere(cluster: &Arc<Cluster>, users: Vec<Uuid>) -> HashSet<Uuid> {
    if users.is_empty() {
        return HashSet::new();
    }
    let everyone = || users.iter().copied().collect::<HashSet<Uuid>>();
    let nodes = match cluster.nodes_to_ask().await {
        Ok(nodes) => nodes,
        Err(err) => {
            log::warn!("node {}: cannot list the nodes ({err}); counting everyone online", cluster.node_id);
            return everyone();
        }
    };
    let Ok(body) = body_of(&Request::Online(users.clone())) else { return everyone() };
    let asks =
        nodes.into_iter().map(|node| cluster.request_within(node, &body, ONLINE_ASK_TIMEOUT)).collect::<Vec<_>>();
    let mut online = HashSet::new();
    for answer in futures_util::future::join_all(asks).await {
        let found = answer
            .and_then(|text| serde_json::from_str::<Outcome>(&text).map_err(AppError::internal))
            .and_then(|outcome| match outcome {
                Outcome::Ok(data) => serde_json::from_str::<Vec<Uuid>>(data.get()).map_err(AppError::internal),
                _ => Err(AppError::internal("an unexpected answer to who is online")),
            });
        match found {
            Ok(found) => online.extend(found),
            Err(err) => log::debug!("node {}: a node did not say who is online ({err})", cluster.node_id),
        }
    }
    online
}
