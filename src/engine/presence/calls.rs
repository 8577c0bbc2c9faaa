//! Presence on several nodes: a user's presence actor lives on one node, the
//! holder of the lease `presence:<userId>`, so a user is online once however
//! many tabs they have on however many nodes. The other nodes forward it
//! their sockets' opens, closes and activity, and the user's changes, as data
//! (`engine::cluster::calls`); it counts those sockets by node, so a node
//! that dies takes its sockets with it. On one node, or on the owner, a call
//! goes straight to the actor (`super`).

use std::sync::Arc;

use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::{
    connected_here, presence_unavailable, set_privacy_here, snapshot_here, update_here, Connect, Disconnected,
    PresenceSnapshot, SessionActivity, SetPrivacy, Touch, Update,
};
use crate::domain::presence::UserPresenceView;
use crate::engine::cluster::calls::{answer_from_owner, as_owner, body_of, raw, Answer, Outcome, Request};
use crate::engine::cluster::Cluster;
use crate::engine::registry::Registry;
use crate::error::{AppError, AppResult};

/// How long another node may take to say which sockets or presences it
/// has: a presence actor starting, or a list of people, waits for it.
const ASK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// What a presence actor is told or asked, as data.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PresenceCall {
    Connect(Connect),
    Disconnected(Disconnected),
    Touch(Touch),
    Activity(SessionActivity),
    Update(Update),
    Privacy(SetPrivacy),
    Snapshot,
}

/// A call on its way to the node that holds a user's presence.
#[derive(Serialize, Deserialize)]
pub struct Forwarded {
    user_id: Uuid,
    call: PresenceCall,
}

fn lease_key(user_id: Uuid) -> String {
    format!("presence:{user_id}")
}

/// Whether a call must go through the cluster: several nodes, and this one
/// is not known to hold the user's presence (its actor here, or its lease).
pub(super) fn held_elsewhere(registry: &Registry, user_id: Uuid) -> bool {
    let Some(cluster) = &registry.cluster else { return false };
    registry.presence.existing(user_id).is_none() && cluster.known_owner(&lease_key(user_id)) != Some(cluster.node_id)
}

/// Sends a call to the owner now (so one socket's calls keep their order);
/// the answer's data follows.
fn forward(cluster: &Arc<Cluster>, owner: Uuid, user_id: Uuid, mut call: PresenceCall) -> Answer {
    if let PresenceCall::Connect(connect) = &mut call {
        connect.node = Some(cluster.node_id);
    }
    let body = match body_of(&Request::Presence(Forwarded { user_id, call })) {
        Ok(body) => body,
        Err(err) => return Box::pin(async move { Err(err) }),
    };
    let first = cluster.request(owner, &body);
    let cluster = Arc::clone(cluster);
    Box::pin(async move { answer_from_owner(&cluster, &lease_key(user_id), &body, first, presence_unavailable).await })
}

/// The owner of a user's presence, this node taking it if nobody holds it.
async fn owner(cluster: &Arc<Cluster>, user_id: Uuid) -> AppResult<Uuid> {
    cluster.owner(&lease_key(user_id)).await
}

/// Tells the user's presence something, on whichever node holds it (this
/// one, if nobody does: it starts the actor).
pub fn tell(registry: &Arc<Registry>, user_id: Uuid, call: PresenceCall) {
    let Some(cluster) = registry.cluster.clone() else { return drop(perform_here(registry, user_id, call)) };
    let told: Answer = match cluster.known_owner(&lease_key(user_id)) {
        Some(known) if known == cluster.node_id => perform_here(registry, user_id, call),
        Some(known) => forward(&cluster, known, user_id, call),
        None => {
            let registry = Arc::clone(registry);
            Box::pin(async move {
                match owner(&cluster, user_id).await? {
                    me if me == cluster.node_id => perform_here(&registry, user_id, call).await,
                    other => forward(&cluster, other, user_id, call).await,
                }
            })
        }
    };
    actix::spawn(async move {
        if let Err(err) = told.await {
            log::warn!("presence of {user_id} not told: {}", err.body.message);
        }
    });
}

/// Tells the user's presence something only an actor alive somewhere
/// needs to hear (a socket closed, a session left); starts none. The
/// caller found no actor on this node.
pub fn tell_if_alive(registry: &Registry, user_id: Uuid, call: PresenceCall) {
    let Some(cluster) = registry.cluster.clone() else { return };
    let told: Answer = match cluster.known_owner(&lease_key(user_id)) {
        Some(known) if known != cluster.node_id => forward(&cluster, known, user_id, call),
        Some(_) => return, // this node's, and its actor is gone: nothing to tell
        None => Box::pin(async move {
            match cluster.current_owner(&lease_key(user_id)).await? {
                Some(other) if other != cluster.node_id => forward(&cluster, other, user_id, call).await,
                _ => raw(json!({})),
            }
        }),
    };
    actix::spawn(async move {
        if let Err(err) = told.await {
            log::warn!("presence of {user_id} not told: {}", err.body.message);
        }
    });
}

/// Asks the user's presence, on whichever node holds it.
pub fn ask<T: DeserializeOwned + 'static>(
    registry: &Arc<Registry>,
    user_id: Uuid,
    call: PresenceCall,
) -> LocalBoxFuture<'static, AppResult<T>> {
    let registry = Arc::clone(registry);
    Box::pin(async move {
        let Some(cluster) = registry.cluster.clone() else { return Err(AppError::internal("no cluster to ask")) };
        let data = match owner(&cluster, user_id).await? {
            me if me == cluster.node_id => perform_here(&registry, user_id, call).await?,
            other => forward(&cluster, other, user_id, call).await?,
        };
        serde_json::from_str(data.get()).map_err(AppError::internal)
    })
}

/// Both views of a user whose presence another node holds; `None` when no
/// node does (offline).
pub async fn snapshot_elsewhere(cluster: &Arc<Cluster>, user_id: Uuid) -> Option<PresenceSnapshot> {
    let holder = cluster.current_owner(&lease_key(user_id)).await.ok()??;
    if holder == cluster.node_id {
        return None; // this node's, and its actor is gone
    }
    let data = forward(cluster, holder, user_id, PresenceCall::Snapshot).await.ok()?;
    serde_json::from_str(data.get()).ok()?
}

/// Serves a call another node forwarded here.
pub fn serve(
    registry: &Arc<Registry>,
    cluster: &Arc<Cluster>,
    forwarded: Forwarded,
) -> LocalBoxFuture<'static, Outcome> {
    let Forwarded { user_id, call } = forwarded;
    let registry = Arc::clone(registry);
    as_owner(cluster, lease_key(user_id), move || perform_here(&registry, user_id, call))
}

/// Runs a call on this node's actor (told at once; the answer follows).
fn perform_here(registry: &Arc<Registry>, user_id: Uuid, call: PresenceCall) -> Answer {
    let done = || -> Answer { Box::pin(async { raw(json!({})) }) };
    match call {
        PresenceCall::Connect(Connect { connection_id, node }) => {
            connected_here(registry, user_id, connection_id, node);
            done()
        }
        PresenceCall::Disconnected(message) => {
            if let Some(actor) = registry.presence.existing(user_id) {
                actor.do_send(message);
            }
            done()
        }
        PresenceCall::Touch(message) => {
            registry.presence(user_id).do_send(message);
            done()
        }
        PresenceCall::Activity(message) => {
            let actor = if message.title.is_some() {
                Some(registry.presence(user_id))
            } else {
                registry.presence.existing(user_id)
            };
            if let Some(actor) = actor {
                actor.do_send(message);
            }
            done()
        }
        PresenceCall::Update(Update { connection_id, change }) => {
            let updated = update_here(registry, user_id, connection_id, change);
            Box::pin(async move { raw(updated.await?) })
        }
        PresenceCall::Privacy(SetPrivacy(change)) => {
            let registry = Arc::clone(registry);
            Box::pin(async move { raw(set_privacy_here(&registry, user_id, change).await?) })
        }
        PresenceCall::Snapshot => {
            let registry = Arc::clone(registry);
            Box::pin(async move { raw(snapshot_here(&registry, user_id).await) })
        }
    }
}

/// Asks every other live node for its answer to `request`, a second at
/// most each; a node that does not answer in time is left out.
async fn ask_every_other_node<T: DeserializeOwned>(cluster: &Arc<Cluster>, request: Request) -> Vec<(Uuid, T)> {
    let (Ok(nodes), Ok(body)) = (cluster.nodes_to_ask().await, body_of(&request)) else { return Vec::new() };
    let asks = nodes.iter().map(|node| cluster.request_within(*node, &body, ASK_TIMEOUT)).collect::<Vec<_>>();
    let answers = futures_util::future::join_all(asks).await;
    let mut found = Vec::new();
    for (node, answer) in nodes.into_iter().zip(answers) {
        let data = answer.ok().and_then(|text| match serde_json::from_str::<Outcome>(&text) {
            Ok(Outcome::Ok(data)) => serde_json::from_str::<T>(data.get()).ok(),
            _ => None,
        });
        match data {
            Some(data) => found.push((node, data)),
            None => log::debug!("node {}: node {node} did not answer about presence", cluster.node_id),
        }
    }
    found
}

/// The user's sockets on other nodes, with their node: a presence actor
/// starting counts them (its user may have tabs anywhere).
pub async fn sockets_elsewhere(cluster: &Arc<Cluster>, user_id: Uuid) -> Vec<(Uuid, Uuid)> {
    let found: Vec<(Uuid, Vec<Uuid>)> = ask_every_other_node(cluster, Request::SocketsOf(user_id)).await;
    found.into_iter().flat_map(|(node, sockets)| sockets.into_iter().map(move |socket| (socket, node))).collect()
}

/// What watchers see of those of `people` whose presence other nodes hold.
pub async fn views_elsewhere(cluster: &Arc<Cluster>, people: Vec<Uuid>) -> Vec<UserPresenceView> {
    let found: Vec<(Uuid, Vec<UserPresenceView>)> = ask_every_other_node(cluster, Request::PresenceViews(people)).await;
    found.into_iter().flat_map(|(_, views)| views).collect()
}
