//! Office hours on several nodes: an instructor's office-hours actor lives
//! on one node, the holder of the lease `office:<instructorId>`, so the
//! queue has one order and one set of rules. Every other node forwards it
//! what it is asked, as data (`engine::cluster::calls`). On one node, or on
//! the owner, a call goes straight to the actor.

use std::sync::Arc;

use actix::Handler;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::{
    office_of, Admit, Announce, DeferTurn, EndEntry, GetEntry, GetQueue, GetStatus, JoinQueue, LeaveQueue,
    OfficeHoursActor, RoomActivity, SetOpen, SlotsChanged, Watch,
};
use crate::engine::cluster::calls::{answer_from_owner, as_owner, body_of, raw, Answer, Outcome, Request};
use crate::engine::cluster::remote_socket::{RemoteSocket, SocketStub};
use crate::engine::cluster::Cluster;
use crate::engine::hub::{SocketRef, Topic};
use crate::engine::registry::Registry;
use crate::error::{AppError, AppResult};
use crate::protocol::office_hours::{AnnouncementView, EntryView, QueueView, StatusView};

/// What an office-hours actor is asked, as data.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum OfficeCall {
    Join(JoinQueue),
    Leave(LeaveQueue),
    Defer(DeferTurn),
    Admit(Admit),
    End(EndEntry),
    SetOpen(SetOpen),
    Announce(Announce),
    Status(GetStatus),
    Queue(GetQueue),
    Entry(GetEntry),
    /// The forwarded call's socket watches the instructor's status.
    Watch,
    RoomActivity(RoomActivity),
    SlotsChanged(SlotsChanged),
}

/// A call on its way to the node that holds an instructor's office hours.
#[derive(Serialize, Deserialize)]
pub struct Forwarded {
    instructor_id: Uuid,
    /// The socket that asked, for `Watch`.
    socket: Option<SocketStub>,
    call: OfficeCall,
}

/// A message to an office-hours actor that answers with data.
pub trait OfficeMessage: actix::Message<Result = AppResult<Self::Reply>> + Send + 'static {
    type Reply: Serialize + DeserializeOwned + Send + 'static;
    fn into_call(self) -> OfficeCall;
}

macro_rules! office_messages {
    ($($message:ident => $variant:ident: $reply:ty),* $(,)?) => {$(
        impl OfficeMessage for $message {
            type Reply = $reply;
            fn into_call(self) -> OfficeCall {
                OfficeCall::$variant(self)
            }
        }
    )*};
}

office_messages! {
    JoinQueue => Join: EntryView,
    LeaveQueue => Leave: EntryView,
    DeferTurn => Defer: EntryView,
    Admit => Admit: (Uuid, Vec<EntryView>),
    EndEntry => End: EntryView,
    SetOpen => SetOpen: bool,
    Announce => Announce: AnnouncementView,
    GetStatus => Status: StatusView,
    GetQueue => Queue: QueueView,
    GetEntry => Entry: Option<EntryView>,
}

fn lease_key(instructor_id: Uuid) -> String {
    format!("office:{instructor_id}")
}

pub fn office_gone() -> AppError {
    AppError::unavailable("office_hours_unavailable", "Office hours restarted; please retry.")
}

/// Where an instructor's office hours run.
enum Route {
    Here,
    /// On that node.
    Owner(Arc<Cluster>, Uuid),
}

async fn route(registry: &Arc<Registry>, instructor_id: Uuid) -> AppResult<Route> {
    let Some(cluster) = registry.cluster.clone() else { return Ok(Route::Here) };
    let owner = cluster.owner(&lease_key(instructor_id)).await?;
    Ok(if owner == cluster.node_id { Route::Here } else { Route::Owner(cluster, owner) })
}

/// Sends to the actor on this node; a mailbox error is a restart. The send
/// runs on its own task: actix skips a request whose asker went away, and
/// a change a client made (then closed its tab) must still be made.
async fn ask_here<M>(registry: &Arc<Registry>, instructor_id: Uuid, message: M) -> AppResult<M::Result>
where
    M: actix::Message + Send + 'static,
    M::Result: Send,
    OfficeHoursActor: Handler<M>,
{
    let office = office_of(registry, instructor_id);
    let (reply, answer) = tokio::sync::oneshot::channel();
    actix::spawn(async move {
        let _ = reply.send(office.send(message).await);
    });
    answer.await.map_err(|_| office_gone())?.map_err(|_| office_gone())
}

async fn forward(
    cluster: &Arc<Cluster>,
    owner: Uuid,
    instructor_id: Uuid,
    socket: Option<&SocketRef>,
    call: OfficeCall,
) -> AppResult<Box<serde_json::value::RawValue>> {
    let socket = socket.map(|socket| SocketStub::of(socket, cluster.node_id));
    let body = body_of(&Request::Office(Forwarded { instructor_id, socket, call }))?;
    let first = cluster.request(owner, &body);
    answer_from_owner(cluster, &lease_key(instructor_id), &body, first, office_gone).await
}

/// Asks an instructor's office hours, wherever they run.
pub async fn ask<M>(registry: &Arc<Registry>, instructor_id: Uuid, message: M) -> AppResult<M::Reply>
where
    M: OfficeMessage,
    OfficeHoursActor: Handler<M>,
{
    match route(registry, instructor_id).await? {
        Route::Here => ask_here(registry, instructor_id, message).await?,
        Route::Owner(cluster, owner) => {
            let data = forward(&cluster, owner, instructor_id, None, message.into_call()).await?;
            serde_json::from_str(data.get()).map_err(AppError::internal)
        }
    }
}

/// A socket watches an instructor's status (`office-hours-status` pushes
/// reach it from whichever node holds the office hours).
pub async fn watch(registry: &Arc<Registry>, socket: SocketRef, instructor_id: Uuid) -> AppResult<StatusView> {
    match route(registry, instructor_id).await? {
        Route::Here => ask_here(registry, instructor_id, Watch { socket }).await?,
        Route::Owner(cluster, owner) => {
            // Listening before the watch goes: a status change right after
            // the answer is pushed on the channel at once.
            let topic = Topic::OfficeHours(instructor_id);
            cluster.expect_topic(topic).await;
            let answer = forward(&cluster, owner, instructor_id, Some(&socket), OfficeCall::Watch).await;
            cluster.expected_topic_settled(topic);
            serde_json::from_str(answer?.get()).map_err(AppError::internal)
        }
    }
}

/// Tells an instructor's office hours something that needs no answer
/// (activity in a private room, a schedule edited).
pub fn tell(registry: &Arc<Registry>, instructor_id: Uuid, call: OfficeCall) {
    let registry = Arc::clone(registry);
    actix::spawn(async move {
        let told = match route(&registry, instructor_id).await {
            Ok(Route::Here) => perform_here(&registry, instructor_id, None, call).await,
            Ok(Route::Owner(cluster, owner)) => forward(&cluster, owner, instructor_id, None, call).await,
            Err(err) => Err(err),
        };
        if let Err(err) = told {
            log::warn!("office hours of {instructor_id} not told: {}", err.body.message);
        }
    });
}

/// Serves a call another node forwarded here.
pub fn serve(
    registry: &Arc<Registry>,
    cluster: &Arc<Cluster>,
    forwarded: Forwarded,
) -> futures_util::future::LocalBoxFuture<'static, Outcome> {
    let Forwarded { instructor_id, socket, call } = forwarded;
    let socket = socket.map(|stub| RemoteSocket::new(stub, Arc::clone(cluster)) as SocketRef);
    let registry = Arc::clone(registry);
    as_owner(cluster, lease_key(instructor_id), move || perform_here(&registry, instructor_id, socket, call))
}

fn reply<M>(registry: &Arc<Registry>, instructor_id: Uuid, message: M) -> Answer
where
    M: OfficeMessage,
    OfficeHoursActor: Handler<M>,
{
    let registry = Arc::clone(registry);
    Box::pin(async move { raw(ask_here(&registry, instructor_id, message).await??) })
}

/// Runs a call on this node's actor.
fn perform_here(registry: &Arc<Registry>, instructor_id: Uuid, socket: Option<SocketRef>, call: OfficeCall) -> Answer {
    match call {
        OfficeCall::Join(message) => reply(registry, instructor_id, message),
        OfficeCall::Leave(message) => reply(registry, instructor_id, message),
        OfficeCall::Defer(message) => reply(registry, instructor_id, message),
        OfficeCall::Admit(message) => reply(registry, instructor_id, message),
        OfficeCall::End(message) => reply(registry, instructor_id, message),
        OfficeCall::SetOpen(message) => reply(registry, instructor_id, message),
        OfficeCall::Announce(message) => reply(registry, instructor_id, message),
        OfficeCall::Status(message) => reply(registry, instructor_id, message),
        OfficeCall::Queue(message) => reply(registry, instructor_id, message),
        OfficeCall::Entry(message) => reply(registry, instructor_id, message),
        OfficeCall::Watch => {
            let Some(socket) = socket else {
                return Box::pin(async { Err(AppError::internal("a watch came without its socket")) });
            };
            let registry = Arc::clone(registry);
            Box::pin(async move { raw(ask_here(&registry, instructor_id, Watch { socket }).await??) })
        }
        OfficeCall::RoomActivity(message) => {
            office_of(registry, instructor_id).do_send(message);
            Box::pin(async { raw(json!({})) })
        }
        OfficeCall::SlotsChanged(message) => {
            office_of(registry, instructor_id).do_send(message);
            Box::pin(async { raw(json!({})) })
        }
    }
}
