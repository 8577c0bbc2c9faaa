//! Several nodes on one Redis: this node's link to the others.
//!
//! The design is one owner per actor (a room, later a queue and a user's
//! presence), in the way of cluster sharding: the first node to need an
//! actor takes its lease in Redis, and every other node forwards the
//! actor's calls to it. Each actor's state, its order and its rules stay in
//! one place (capacity, sequence numbers, queue order need no distributed
//! locking), and the domain code is the same on one node or ten. A lease is
//! good while its node's heartbeat key lives, so a node that dies gives up
//! all its leases at once, `NODE_TIMEOUT_SECS` later; the next call for one
//! of its rooms makes a new owner, which rebuilds the room from the
//! database (as a room actor restarted after a panic does).
//!
//! Frames travel on Redis publish/subscribe: a topic's frames are
//! published once to the topic's channel, and every node with subscribers
//! delivers them to its own sockets (`broker::RedisBroker`). What is meant
//! for one node (a frame for one socket, a forwarded call and its answer)
//! goes on that node's channel. One publishing connection per node sends
//! everything in the order it was made, and one subscribing connection
//! receives it in that order, so a room's frames arrive in one order, and a
//! join's catch-up before its ack.

pub mod broker;
pub mod calls;
pub mod missed;
pub mod remote_socket;
pub mod wire;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytestring::ByteString;
use dashmap::DashMap;
use futures_util::StreamExt;
use redis::aio::ConnectionManager;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::domain::room::RoomType;
use crate::engine::hub::{Audience, Hub, SocketRef, Topic};
use crate::engine::metrics::Metrics;
use crate::engine::presence::fanout::PresenceFlush;
use crate::engine::registry::Registry;
use crate::engine::room::calls::{self as room_calls, RoomRef};
use crate::engine::DisconnectReason;
use crate::error::{AppError, AppResult};
use missed::MissedFrames;
use wire::{NodeMessage, Publication, PREFIX};

/// Publications queued for Redis at most; past it they are dropped and
/// counted (Redis is down or slower than the node: memory stays bounded).
const OUTBOX_CAPACITY: usize = 100_000;
/// Publications sent to Redis in one pipeline at most.
const PUBLISH_BATCH: usize = 512;
/// How long a call to another node may take before the caller gives up.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a node cut off from Redis retries telling the others what they missed.
const MISSED_RETRY: Duration = Duration::from_millis(500);

/// A call another node did not answer.
fn not_answered() -> AppError {
    AppError::unavailable("node_unavailable", "The server holding this room did not answer; please retry.")
}

/// Takes a lease for this node unless a live node holds it; answers the holder.
const ACQUIRE_LEASE: &str = r"
local owner = redis.call('GET', KEYS[1])
if owner and owner ~= ARGV[1] and redis.call('EXISTS', ARGV[2] .. owner) == 1 then
  return owner
end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
";

/// Writes back this node's leases (`ARGV[1]`) that Redis lost (`KEYS`);
/// answers the positions (from 1) of those another node holds now.
const REASSERT_LEASES: &str = r"
local lost = {}
for i, key in ipairs(KEYS) do
  local holder = redis.call('GET', key)
  if not holder then
    redis.call('SET', key, ARGV[1])
  elseif holder ~= ARGV[1] then
    lost[#lost + 1] = i
  end
end
return lost
";

/// Leases renewed by one script call: a call holds Redis (single-threaded)
/// for about a millisecond at most, and a heartbeat of 100,000 leases is
/// 100 calls, not 200,000 commands.
const LEASES_PER_CALL: usize = 1000;

/// Gives a lease up, if it is still this node's.
const RELEASE_LEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// A publication on its way to Redis: the channel and the message.
type Outgoing = (String, Vec<u8>);

/// What a forwarded call is answered with, on the caller's channel.
type Answer = oneshot::Sender<String>;

/// A change to what the subscribing connection listens to.
enum Listen {
    /// Listen to the topic's channel if this node has subscribers to it (or
    /// a join on its way), stop if not; then say so on the sender.
    Sync(Topic, Option<oneshot::Sender<()>>),
}

/// A socket of another node that is in rooms here: when its node dies,
/// it leaves them.
struct RemoteMember {
    node: Uuid,
    user_id: Uuid,
    rooms: HashSet<RoomRef>,
}

pub struct Cluster {
    pub node_id: Uuid,
    hub: Arc<Hub>,
    metrics: Arc<Metrics>,
    redis: ConnectionManager,
    client: redis::Client,
    /// Publications in the order made, for the publishing task.
    outbox: mpsc::Sender<Outgoing>,
    outbox_receiver: Mutex<Option<mpsc::Receiver<Outgoing>>>,
    listen: mpsc::UnboundedSender<Listen>,
    listen_receiver: Mutex<Option<mpsc::UnboundedReceiver<Listen>>>,
    /// Joins forwarded from here and not answered yet, by topic: their
    /// topic's channel is listened to before the join leaves, so no frame
    /// published right after the admission is missed.
    joining: DashMap<Topic, usize>,
    /// This node's sockets, by id (frames and commands from other nodes name them).
    local_sockets: DashMap<Uuid, SocketRef>,
    /// Calls forwarded to other nodes, waiting for their answer.
    calls: DashMap<u64, Answer>,
    next_call: AtomicU64,
    /// Who owns which actor, as last learnt (leases, by key).
    owners: DashMap<String, Uuid>,
    /// Sockets of other nodes in rooms owned here.
    remote_members: DashMap<Uuid, RemoteMember>,
    /// Other nodes that let a call time out, and since when: asks of every
    /// node skip them for a heartbeat (a killed node stays listed until its
    /// heartbeat lapses, and each ask of it would wait out its timeout).
    silent: DashMap<Uuid, Instant>,
    /// How long a node may go unheard before it counts as dead.
    pub node_timeout: Duration,
    /// When this node last renewed its heartbeat.
    last_heartbeat: Mutex<Instant>,
    /// The dead nodes still on the node list that this node has handled,
    /// and since when (see [`Cluster::dead_nodes`]).
    dead_handled: Mutex<HashMap<String, Instant>>,
    /// Set when this node leaves (a graceful stop): it renews nothing and
    /// takes no lease any more.
    left: AtomicBool,
    /// Publications that never reached Redis, owed to the other nodes as a
    /// `Missed` notice once it is back.
    missed: Mutex<MissedFrames>,
}

impl Cluster {
    /// Connects to Redis; nothing runs until [`Cluster::start`].
    pub async fn connect(
        url: &str,
        node_id: Uuid,
        node_timeout: Duration,
        hub: Arc<Hub>,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Self>, String> {
        let client = redis::Client::open(url).map_err(|err| format!("REDIS_URL {url}: {err}"))?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)));
        let redis = client
            .get_connection_manager_with_config(config)
            .await
            .map_err(|err| format!("cannot reach Redis at {url}: {err}"))?;
        let (outbox, outbox_receiver) = mpsc::channel(OUTBOX_CAPACITY);
        let (listen, listen_receiver) = mpsc::unbounded_channel();
        Ok(Arc::new(Self {
            node_id,
            hub,
            metrics,
            redis,
            client,
            outbox,
            outbox_receiver: Mutex::new(Some(outbox_receiver)),
            listen,
            listen_receiver: Mutex::new(Some(listen_receiver)),
            joining: DashMap::new(),
            local_sockets: DashMap::new(),
            calls: DashMap::new(),
            next_call: AtomicU64::new(1),
            owners: DashMap::new(),
            remote_members: DashMap::new(),
            silent: DashMap::new(),
            node_timeout,
            last_heartbeat: Mutex::new(Instant::now()),
            dead_handled: Mutex::new(HashMap::new()),
            left: AtomicBool::new(false),
            missed: Mutex::new(MissedFrames::default()),
        }))
    }

    /// Starts the publishing, subscribing and heartbeat tasks on the
    /// current arbiter: calls forwarded here are served by `registry`'s actors.
    pub async fn start(self: &Arc<Self>, registry: Arc<Registry>) -> Result<(), String> {
        self.heartbeat().await.map_err(|err| format!("cannot write to Redis: {err}"))?;
        let outbox = self.outbox_receiver.lock().unwrap_or_else(PoisonError::into_inner).take();
        let listen = self.listen_receiver.lock().unwrap_or_else(PoisonError::into_inner).take();
        let (Some(outbox), Some(listen)) = (outbox, listen) else {
            return Err("the cluster is started already".into());
        };
        actix::spawn(Arc::clone(self).publish_loop(outbox));
        actix::spawn(Arc::clone(self).subscribe_loop(listen, Arc::clone(&registry)));
        actix::spawn(Arc::clone(self).heartbeat_loop(registry));
        log::info!("node {} joined the cluster", self.node_id);
        Ok(())
    }

    fn node_key(node: Uuid) -> String {
        format!("{PREFIX}:alive:{node}")
    }

    fn lease_key(key: &str) -> String {
        format!("{PREFIX}:owner:{key}")
    }

    /// Queues a publication; false (and counted) when the queue is full.
    fn publish_raw(&self, channel: String, payload: Vec<u8>) -> bool {
        match self.outbox.try_send((channel, payload)) {
            Ok(()) => true,
            Err(
                mpsc::error::TrySendError::Full((channel, payload))
                | mpsc::error::TrySendError::Closed((channel, payload)),
            ) => {
                self.metrics.broker_dropped.fetch_add(1, Ordering::Relaxed);
                self.owed().note(&channel, &payload);
                false
            }
        }
    }

    /// A frame for a topic's subscribers on the other nodes.
    pub fn publish(&self, topic: Topic, frame: &str, audience: Audience) {
        let payload = Publication { origin: self.node_id, audience, frame }.encode();
        self.publish_raw(wire::topic_channel(topic), payload);
    }

    /// A frame for every socket of these users on the other nodes, in one
    /// message to all of them (see `NodeMessage::DeliverToUsers`).
    pub fn publish_to_users(&self, users: Vec<Uuid>, frame: &str) {
        self.tell_all(&NodeMessage::DeliverToUsers { origin: self.node_id, users, frame });
    }

    /// A window's presence batches for the other nodes' sockets, in one message.
    pub fn publish_presence(&self, flush: &PresenceFlush) {
        self.tell_all(&NodeMessage::Presence { origin: self.node_id, flush: std::borrow::Cow::Borrowed(flush) });
    }

    /// A message for every node (this one too: it acts on it at once as well).
    pub fn tell_all(&self, message: &NodeMessage<'_>) {
        self.publish_raw(wire::all_nodes_channel(), message.encode());
    }

    /// A message for one node.
    pub fn tell(&self, node: Uuid, message: &NodeMessage<'_>) {
        self.publish_raw(wire::node_channel(node), message.encode());
    }

    /// This node's socket, if it has one by that id.
    pub fn local_socket(&self, socket_id: Uuid) -> Option<SocketRef> {
        self.local_sockets.get(&socket_id).map(|socket| Arc::clone(&socket))
    }

    pub(crate) fn socket_opened(&self, socket: &SocketRef) {
        self.local_sockets.insert(socket.id(), Arc::clone(socket));
    }

    pub(crate) fn socket_closed(&self, socket_id: Uuid) {
        self.local_sockets.remove(&socket_id);
    }

    /// Listens to a topic's channel when this node has subscribers to it,
    /// and stops when it has none. The answer comes once Redis confirmed.
    pub fn sync_topic(&self, topic: Topic) -> oneshot::Receiver<()> {
        let (done, confirmed) = oneshot::channel();
        let _ = self.listen.send(Listen::Sync(topic, Some(done)));
        confirmed
    }

    /// How many nodes listen to the topic's channel now (`PUBSUB NUMSUB`).
    pub async fn listening_nodes(&self, topic: Topic) -> redis::RedisResult<usize> {
        let mut redis = self.redis.clone();
        let (_channel, nodes): (String, usize) =
            redis::cmd("PUBSUB").arg("NUMSUB").arg(wire::topic_channel(topic)).query_async(&mut redis).await?;
        Ok(nodes)
    }

    fn wanted_here(&self, topic: Topic) -> bool {
        self.hub.count(topic) > 0 || self.joining.get(&topic).is_some_and(|count| *count > 0)
    }

    /// Marks a join to a room of another node as on its way, and waits
    /// until this node listens to the room's channel.
    pub async fn expect_topic(&self, topic: Topic) {
        *self.joining.entry(topic).or_default() += 1;
        let _ = self.sync_topic(topic).await;
    }

    /// The join is answered: this node listens to the topic only if a
    /// socket of it got in.
    pub fn expected_topic_settled(&self, topic: Topic) {
        if let dashmap::mapref::entry::Entry::Occupied(mut entry) = self.joining.entry(topic) {
            *entry.get_mut() -= 1;
            if *entry.get() == 0 {
                entry.remove();
            }
        }
        let _ = self.listen.send(Listen::Sync(topic, None));
    }

    /// The owner of an actor as last learnt, without asking Redis.
    pub fn known_owner(&self, key: &str) -> Option<Uuid> {
        self.owners.get(key).map(|owner| *owner)
    }

    /// The owner of an actor, taking the lease for this node if nobody
    /// alive holds it.
    pub async fn owner(&self, key: &str) -> AppResult<Uuid> {
        if let Some(owner) = self.known_owner(key) {
            return Ok(owner);
        }
        if self.left.load(Ordering::Relaxed) {
            // Leaving: point to whoever took it since, never take it back.
            return self
                .current_owner(key)
                .await?
                .ok_or_else(|| AppError::unavailable("node_unavailable", "This server is stopping; please retry."));
        }
        let owner: String = redis::Script::new(ACQUIRE_LEASE)
            .key(Self::lease_key(key))
            .arg(self.node_id.to_string())
            .arg(format!("{PREFIX}:alive:"))
            .invoke_async(&mut self.redis.clone())
            .await
            .map_err(|err| cluster_unavailable(&err))?;
        let owner = Uuid::parse_str(&owner).map_err(AppError::internal)?;
        self.owners.insert(key.to_string(), owner);
        Ok(owner)
    }

    /// The owner of an actor if a live node holds its lease; takes nothing.
    pub async fn current_owner(&self, key: &str) -> AppResult<Option<Uuid>> {
        if let Some(owner) = self.known_owner(key) {
            return Ok(Some(owner));
        }
        let mut redis = self.redis.clone();
        let holder: Option<String> = redis::cmd("GET")
            .arg(Self::lease_key(key))
            .query_async(&mut redis)
            .await
            .map_err(|err| cluster_unavailable(&err))?;
        let Some(holder) = holder.and_then(|holder| Uuid::parse_str(&holder).ok()) else { return Ok(None) };
        let alive: bool = redis::cmd("EXISTS")
            .arg(Self::node_key(holder))
            .query_async(&mut redis)
            .await
            .map_err(|err| cluster_unavailable(&err))?;
        Ok(alive.then_some(holder))
    }

    /// Forgets what is known of an actor's owner (it did not answer as owner).
    pub fn forget_owner(&self, key: &str) {
        self.owners.remove(key);
    }

    /// Leaves the cluster (a graceful stop, its sockets closed and its
    /// writes stored): the heartbeat stops, and its heartbeat key and
    /// leases are deleted, so the other nodes take its rooms and queues at
    /// their next heartbeat rather than after the node timeout. The flag is
    /// set at once; the returned future does the Redis part.
    pub fn leave(self: &Arc<Self>) -> impl std::future::Future<Output = ()> + 'static {
        let (pipe, leases) = self.leaving();
        let cluster = Arc::clone(self);
        async move {
            let left = pipe.query_async::<()>(&mut cluster.redis.clone()).await;
            cluster.log_leaving(leases, left);
        }
    }

    /// [`Cluster::leave`], blocking (at most a second): for a caller that
    /// cannot wait, as a test server dropped at the end of its test.
    pub fn leave_now(&self) {
        let (pipe, leases) = self.leaving();
        let left = self
            .client
            .get_connection_with_timeout(Duration::from_secs(1))
            .and_then(|mut redis| pipe.query::<()>(&mut redis));
        self.log_leaving(leases, left);
    }

    /// Stops renewing and taking leases; the commands that delete this
    /// node's heartbeat key and leases, and how many leases.
    fn leaving(&self) -> (redis::Pipeline, usize) {
        self.left.store(true, Ordering::Relaxed);
        let mut mine = Vec::new();
        self.owners.retain(|key, owner| {
            if *owner == self.node_id {
                mine.push(key.clone());
            }
            false
        });
        let me = self.node_id.to_string();
        let mut pipe = redis::pipe();
        pipe.del(Self::node_key(self.node_id)).ignore();
        for key in &mine {
            pipe.cmd("EVAL").arg(RELEASE_LEASE).arg(1).arg(Self::lease_key(key)).arg(&me).ignore();
        }
        (pipe, mine.len())
    }

    fn log_leaving(&self, leases: usize, left: redis::RedisResult<()>) {
        match left {
            Ok(()) => log::info!("node {} left the cluster, giving up {leases} lease(s)", self.node_id),
            Err(err) => {
                log::warn!("node {} could not leave the cluster cleanly ({err}): its leases lapse", self.node_id)
            }
        }
    }

    /// Gives up the lease of an actor this node stopped, so that whichever
    /// node needs it next owns it.
    pub fn release(self: &Arc<Self>, key: String) {
        if self.owners.remove_if(&key, |_, owner| *owner == self.node_id).is_none() {
            return;
        }
        let cluster = Arc::clone(self);
        actix::spawn(async move {
            let released: Result<i64, _> = redis::Script::new(RELEASE_LEASE)
                .key(Self::lease_key(&key))
                .arg(cluster.node_id.to_string())
                .invoke_async(&mut cluster.redis.clone())
                .await;
            if let Err(err) = released {
                log::warn!("cannot release the lease of {key}: {err}");
            }
        });
    }

    /// Sends a call to the node that owns its actor, now, and waits for the answer.
    pub fn request(self: &Arc<Self>, node: Uuid, body: &str) -> impl std::future::Future<Output = AppResult<String>> {
        self.request_within(node, body, CALL_TIMEOUT)
    }

    /// [`Cluster::request`], giving up after `timeout`.
    pub fn request_within(
        self: &Arc<Self>,
        node: Uuid,
        body: &str,
        timeout: Duration,
    ) -> impl std::future::Future<Output = AppResult<String>> {
        let call = self.next_call.fetch_add(1, Ordering::Relaxed);
        let (answer, answered) = oneshot::channel();
        self.calls.insert(call, answer);
        self.tell(node, &NodeMessage::Request { from: self.node_id, call, body });
        let cluster = Arc::clone(self);
        async move {
            let outcome = tokio::time::timeout(timeout, answered).await;
            cluster.calls.remove(&call);
            match outcome {
                Ok(Ok(body)) => {
                    cluster.silent.remove(&node);
                    Ok(body)
                }
                Err(_) => {
                    cluster.silent.insert(node, Instant::now());
                    Err(not_answered())
                }
                // Dropped unanswered: this node is leaving.
                Ok(Err(_)) => Err(not_answered()),
            }
        }
    }

    /// Notes that a socket of another node is in a room of this node.
    pub(crate) fn remote_joined(&self, socket_id: Uuid, node: Uuid, user_id: Uuid, room: RoomRef) {
        self.remote_members
            .entry(socket_id)
            .or_insert_with(|| RemoteMember { node, user_id, rooms: HashSet::new() })
            .rooms
            .insert(room);
    }

    pub(crate) fn remote_left(&self, socket_id: Uuid, room: RoomRef) {
        if let dashmap::mapref::entry::Entry::Occupied(mut entry) = self.remote_members.entry(socket_id) {
            entry.get_mut().rooms.remove(&room);
            if entry.get().rooms.is_empty() {
                entry.remove();
            }
        }
    }

    /// The node a socket of another node lives on, if it is in a room here.
    pub fn home_of(&self, socket_id: Uuid) -> Option<Uuid> {
        self.remote_members.get(&socket_id).map(|member| member.node)
    }

    /// Whether this node has renewed its heartbeat within the timeout: past
    /// it, other nodes may have taken its leases.
    pub fn heartbeat_fresh(&self) -> bool {
        self.last_heartbeat.lock().unwrap_or_else(PoisonError::into_inner).elapsed() < self.node_timeout
    }

    async fn heartbeat(&self) -> redis::RedisResult<()> {
        let ttl = self.node_timeout.as_millis() as u64;
        redis::pipe()
            .cmd("SET")
            .arg(Self::node_key(self.node_id))
            .arg(1)
            .arg("PX")
            .arg(ttl)
            .ignore()
            .sadd(format!("{PREFIX}:nodes"), self.node_id.to_string())
            .ignore()
            .query_async::<()>(&mut self.redis.clone())
            .await?;
        *self.last_heartbeat.lock().unwrap_or_else(PoisonError::into_inner) = Instant::now();
        Ok(())
    }

    /// Whether Redis answers now.
    pub async fn ping(&self) -> Result<(), String> {
        redis::cmd("PING").query_async::<()>(&mut self.redis.clone()).await.map_err(|err| err.to_string())
    }

    /// Whether another node than this one is alive.
    pub async fn others_alive(&self) -> Result<bool, String> {
        Ok(!self.other_live_nodes().await?.is_empty())
    }

    /// The other nodes whose heartbeat lives.
    pub async fn other_live_nodes(&self) -> Result<Vec<Uuid>, String> {
        let mut redis = self.redis.clone();
        let unreadable = |err: redis::RedisError| format!("cannot read the node list in Redis: {err}");
        let nodes: Vec<String> =
            redis::cmd("SMEMBERS").arg(format!("{PREFIX}:nodes")).query_async(&mut redis).await.map_err(unreadable)?;
        let others: Vec<Uuid> =
            nodes.iter().filter_map(|node| Uuid::parse_str(node).ok()).filter(|node| *node != self.node_id).collect();
        if others.is_empty() {
            return Ok(others);
        }
        let mut alive = redis::pipe();
        for node in &others {
            alive.exists(Self::node_key(*node));
        }
        let alive: Vec<bool> = alive.query_async(&mut redis).await.map_err(unreadable)?;
        Ok(others.into_iter().zip(alive).filter(|(_, alive)| *alive).map(|(node, _)| node).collect())
    }

    /// The other live nodes worth asking now: those that let a call time
    /// out within the last heartbeat are skipped (and counted), so a node
    /// killed but still listed costs each ask its timeout once a heartbeat,
    /// not every time.
    pub async fn nodes_to_ask(&self) -> Result<Vec<Uuid>, String> {
        let nodes = self.other_live_nodes().await?;
        let heartbeat = self.node_timeout / 3;
        self.silent.retain(|node, since| since.elapsed() < heartbeat && nodes.contains(node));
        let (ask, skip): (Vec<Uuid>, Vec<Uuid>) = nodes.into_iter().partition(|node| !self.silent.contains_key(node));
        self.metrics.silent_nodes_skipped.fetch_add(skip.len() as u64, Ordering::Relaxed);
        Ok(ask)
    }

    /// The nodes whose heartbeat has lapsed that this node has not handled
    /// yet. Every live node must handle each death (its rooms hold the dead
    /// node's sockets, its presences count them), so a dead node stays on
    /// the list for twice the node timeout after this node first saw it
    /// dead, six heartbeats of every live node, before it is struck off.
    /// (Struck off at once by the first node that saw it dead, it was never
    /// known dead to the others: with three nodes, a survivor's rooms kept
    /// the dead node's people, and its presences their sockets.)
    async fn dead_nodes(&self) -> redis::RedisResult<Vec<Uuid>> {
        let mut redis = self.redis.clone();
        let nodes: Vec<String> = redis::cmd("SMEMBERS").arg(format!("{PREFIX}:nodes")).query_async(&mut redis).await?;
        let mut alive = redis::pipe();
        for node in &nodes {
            alive.exists(Self::node_key(Uuid::parse_str(node).unwrap_or_default()));
        }
        let alive: Vec<bool> = alive.query_async(&mut redis).await?;
        let dead: HashSet<String> =
            nodes.into_iter().zip(alive).filter(|(_, alive)| !alive).map(|(node, _)| node).collect();
        let now = Instant::now();
        let (new, done) = {
            let mut handled = self.dead_handled.lock().unwrap_or_else(PoisonError::into_inner);
            // Forgotten once off the list, or alive again (a node restarted with its NODE_ID).
            handled.retain(|node, _| dead.contains(node));
            let (mut new, mut done) = (Vec::new(), Vec::new());
            for node in dead {
                match handled.get(&node) {
                    None => {
                        handled.insert(node.clone(), now);
                        new.push(node);
                    }
                    Some(since) if now.duration_since(*since) >= 2 * self.node_timeout => done.push(node),
                    Some(_) => {}
                }
            }
            (new, done)
        };
        if !done.is_empty() {
            // The new ones are handled whatever happens here: the next heartbeat strikes these off.
            let mut strike = redis::cmd("SREM");
            strike.arg(format!("{PREFIX}:nodes")).arg(&done);
            if let Err(err) = strike.query_async::<()>(&mut redis).await {
                log::warn!("node {}: cannot strike dead nodes off the list: {err}", self.node_id);
            }
        }
        Ok(new.iter().filter_map(|node| Uuid::parse_str(node).ok()).collect())
    }

    /// Holds on to this node's leases. Redis keeps nothing across a restart,
    /// and a lease gone from it would go to the first node that asks while
    /// this node's actor still lives: each heartbeat writes back the missing
    /// ones, [`LEASES_PER_CALL`] per script call. Answers the ones another
    /// node took meanwhile. Public for `benches/lease_renewal.rs`.
    pub async fn reassert_leases(&self) -> redis::RedisResult<Vec<String>> {
        let mine: Vec<String> = self
            .owners
            .iter()
            .filter(|owner| *owner.value() == self.node_id)
            .map(|owner| owner.key().clone())
            .collect();
        if mine.is_empty() {
            return Ok(Vec::new());
        }
        let (me, script, mut redis) =
            (self.node_id.to_string(), redis::Script::new(REASSERT_LEASES), self.redis.clone());
        let mut lost = Vec::new();
        for chunk in mine.chunks(LEASES_PER_CALL) {
            let mut call = script.prepare_invoke();
            for key in chunk {
                call.key(Self::lease_key(key));
            }
            let positions: Vec<usize> = call.arg(&me).invoke_async(&mut redis).await?;
            lost.extend(positions.into_iter().filter_map(|at| chunk.get(at.checked_sub(1)?).cloned()));
        }
        Ok(lost)
    }

    /// Rooms (and office hours) whose lease another node holds now: their
    /// calls go there, this node's sockets in a room reconnect (1001) to
    /// join it where it is now, catching up on the way, and an office-hours
    /// actor retires.
    fn give_up_rooms(&self, registry: &Registry, keys: Vec<String>) {
        for key in keys {
            log::warn!("node {}: the lease of {key} went to another node; giving the actor up", self.node_id);
            self.owners.remove(&key);
            if let Some(instructor) = key.strip_prefix("office:").and_then(|id| Uuid::parse_str(id).ok()) {
                if let Some(office) = registry.office_hours.existing(instructor) {
                    office.do_send(crate::engine::office_hours::Retire);
                }
                continue;
            }
            let Some(room_id) = key.strip_prefix("room:").and_then(|id| Uuid::parse_str(id).ok()) else { continue };
            for subscription in self.hub.subscribers(Topic::Room(room_id)) {
                subscription.socket.close(DisconnectReason::ServerShutdown);
            }
        }
    }

    /// The presences a dead node held: each gets a new owner (this node, if
    /// it is the first to ask), whose actor counts the user's sockets on the
    /// live nodes and tells watchers of those who had none left that they
    /// are offline (nobody else would: their actor died with the node).
    /// Found by scanning the leases, which is rare work: once per dead node.
    fn adopt_presences(self: &Arc<Self>, registry: &Arc<Registry>, node: Uuid) {
        let (cluster, registry) = (Arc::clone(self), Arc::clone(registry));
        actix::spawn(async move {
            let keys = match cluster.leases_held_by(node, "presence:").await {
                Ok(keys) => keys,
                Err(err) => return log::error!("node {}: cannot read node {node}'s leases: {err}", cluster.node_id),
            };
            for key in keys {
                let Some(user_id) = key.strip_prefix("presence:").and_then(|id| Uuid::parse_str(id).ok()) else {
                    continue;
                };
                if cluster.owner(&key).await.ok() == Some(cluster.node_id) {
                    // Handled after the actor has read the stored row (it loads in `started`).
                    registry.presence(user_id).do_send(crate::engine::presence::TakenOver);
                }
            }
        });
    }

    /// The keys (without the lease prefix) of the leases `node` holds whose
    /// key starts with `kind`.
    async fn leases_held_by(&self, node: Uuid, kind: &str) -> redis::RedisResult<Vec<String>> {
        let mut redis = self.redis.clone();
        let (pattern, holder) = (format!("{}*", Self::lease_key(kind)), node.to_string());
        let mut held = Vec::new();
        let mut cursor = 0u64;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut redis)
                .await?;
            if !keys.is_empty() {
                let holders: Vec<Option<String>> = redis::cmd("MGET").arg(&keys).query_async(&mut redis).await?;
                let prefix = Self::lease_key("");
                for (key, owner) in keys.into_iter().zip(holders) {
                    if owner.as_deref() == Some(holder.as_str()) {
                        held.extend(key.strip_prefix(&prefix).map(str::to_string));
                    }
                }
            }
            if next == 0 {
                return Ok(held);
            }
            cursor = next;
        }
    }

    /// Rooms a dead node owned that sockets of this node are in: each gets
    /// a new owner now (this node, if it is the first to ask), which
    /// rebuilds it from the database, takes back the sockets still
    /// subscribed and tells them who left with the dead node. A dead
    /// node's office hours are all taken, sockets or not: their sweep
    /// (schedule, absence, idle rooms) must go on.
    fn adopt_rooms(self: &Arc<Self>, registry: &Arc<Registry>, keys: Vec<String>) {
        for key in keys {
            if let Some(instructor) = key.strip_prefix("office:").and_then(|id| Uuid::parse_str(id).ok()) {
                // Its queue's sweep runs on a timer, not on calls: it starts again on its new owner.
                let (cluster, registry) = (Arc::clone(self), Arc::clone(registry));
                actix::spawn(async move {
                    if cluster.owner(&key).await.ok() == Some(cluster.node_id) {
                        crate::engine::office_hours::office_of(&registry, instructor);
                    }
                });
                continue;
            }
            let Some(room_id) = key.strip_prefix("room:").and_then(|id| Uuid::parse_str(id).ok()) else { continue };
            if self.hub.count(Topic::Room(room_id)) == 0 {
                continue;
            }
            let (cluster, registry) = (Arc::clone(self), Arc::clone(registry));
            actix::spawn(async move {
                if cluster.owner(&key).await.ok() != Some(cluster.node_id) {
                    // Another node took it first; it rebuilds the room from its own sockets.
                    return;
                }
                let id = room_id.to_string();
                let found = registry.deps.db.read(move |conn| Ok(crate::db::chat::find_room(conn, &id)?)).await;
                let room_type = found.ok().flatten().and_then(|room| RoomType::parse(&room.room_type));
                if let Some(room_type) = room_type {
                    let _ = crate::engine::room::routing::RoomAddr::of(&registry, room_type, room_id);
                }
            });
        }
    }

    /// The rooms here that a dead node's sockets were in, with the sockets.
    fn take_members_of(&self, node: Uuid) -> Vec<(Uuid, Uuid, Vec<RoomRef>)> {
        let sockets: Vec<Uuid> =
            self.remote_members.iter().filter(|member| member.node == node).map(|member| *member.key()).collect();
        sockets
            .into_iter()
            .filter_map(|socket| self.remote_members.remove(&socket))
            .map(|(socket, member)| (socket, member.user_id, member.rooms.into_iter().collect()))
            .collect()
    }

    async fn heartbeat_loop(self: Arc<Self>, registry: Arc<Registry>) {
        let mut ticks = tokio::time::interval(self.node_timeout / 3);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut fenced = false;
        loop {
            ticks.tick().await;
            if self.left.load(Ordering::Relaxed) {
                return;
            }
            if let Err(err) = self.heartbeat().await {
                log::error!("node {}: heartbeat to Redis failed: {err}", self.node_id);
                if !self.heartbeat_fresh() && !fenced {
                    // Other nodes may own this node's rooms by now: it owns
                    // nothing any more, and its sockets reconnect (through the
                    // balancer, to a node that can reach the others).
                    fenced = true;
                    log::error!("node {}: cut off from Redis too long; giving up its rooms", self.node_id);
                    self.owners.retain(|_, owner| *owner != self.node_id);
                    registry.disconnect_all(DisconnectReason::ServerShutdown);
                }
                continue;
            }
            fenced = false;
            match self.reassert_leases().await {
                Ok(lost) => self.give_up_rooms(&registry, lost),
                Err(err) => log::error!("node {}: cannot renew its leases: {err}", self.node_id),
            }
            match self.dead_nodes().await {
                Ok(dead) => {
                    for node in dead {
                        log::warn!(
                            "node {node} stopped answering; its sockets leave the rooms of node {}",
                            self.node_id
                        );
                        let mut orphaned = Vec::new();
                        self.owners.retain(|key, owner| {
                            if *owner == node {
                                orphaned.push(key.clone());
                            }
                            *owner != node
                        });
                        self.adopt_rooms(&registry, orphaned);
                        for (socket, user_id, rooms) in self.take_members_of(node) {
                            for room in rooms {
                                room_calls::leave_here(&registry, room, user_id, socket);
                            }
                        }
                        // Its users' sockets there count no more for the presences held here,
                        // and the presences it held get a new owner.
                        for presence in registry.presence.all() {
                            presence.do_send(crate::engine::presence::NodeGone(node));
                        }
                        self.adopt_presences(&registry, node);
                    }
                }
                Err(err) => log::error!("node {}: cannot read the node list: {err}", self.node_id),
            }
        }
    }
}

impl Cluster {
    /// Sends what is queued for Redis, a pipeline at a time, in order; and,
    /// after publications were lost, first the notice of what the other
    /// nodes missed (retried twice a second until Redis takes it).
    async fn publish_loop(self: Arc<Self>, mut outbox: mpsc::Receiver<Outgoing>) {
        let mut redis = self.redis.clone();
        let mut batch = Vec::with_capacity(PUBLISH_BATCH);
        loop {
            if self.owed().is_empty() {
                if outbox.recv_many(&mut batch, PUBLISH_BATCH).await == 0 {
                    return;
                }
            } else if let Ok(0) = tokio::time::timeout(MISSED_RETRY, outbox.recv_many(&mut batch, PUBLISH_BATCH)).await
            {
                return;
            }
            let missed = std::mem::take(&mut *self.owed());
            let mut pipe = redis::pipe();
            if !missed.is_empty() {
                let notice = NodeMessage::Missed { origin: self.node_id, missed: missed.clone() };
                pipe.publish(wire::all_nodes_channel(), notice.encode()).ignore();
            }
            for (channel, payload) in &batch {
                pipe.publish(channel, payload).ignore();
            }
            let started = Instant::now();
            match pipe.query_async::<()>(&mut redis).await {
                Ok(()) => {
                    self.metrics.broker_published.fetch_add(batch.len() as u64, Ordering::Relaxed);
                    self.metrics
                        .broker_publish_micros
                        .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
                    self.metrics.broker_publish_batches.fetch_add(1, Ordering::Relaxed);
                    if !missed.is_empty() {
                        log::warn!(
                            "node {}: told the other nodes what they missed ({}); their sockets concerned reconnect",
                            self.node_id,
                            missed.summary()
                        );
                    }
                }
                Err(err) => {
                    self.metrics.broker_dropped.fetch_add(batch.len() as u64, Ordering::Relaxed);
                    log::error!("node {}: {} publications lost, Redis: {err}", self.node_id, batch.len());
                    let mut owed = self.owed();
                    owed.merge(missed);
                    for (channel, payload) in &batch {
                        owed.note(channel, payload);
                    }
                }
            }
            batch.clear();
        }
    }

    fn owed(&self) -> std::sync::MutexGuard<'_, MissedFrames> {
        self.missed.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Closes this node's sockets that missed frames of another node (1012):
    /// they reconnect and catch up.
    fn close_what_missed(&self, registry: &Registry, missed: &MissedFrames) {
        if missed.everything {
            registry.disconnect_all(DisconnectReason::MissedFrames);
            return;
        }
        for topic in &missed.topics {
            for subscription in self.hub.subscribers(*topic) {
                subscription.socket.close(DisconnectReason::MissedFrames);
            }
        }
        for socket in &missed.sockets {
            if let Some(socket) = self.local_socket(*socket) {
                socket.close(DisconnectReason::MissedFrames);
            }
        }
    }

    /// Receives what other nodes publish to this node and to the topics it
    /// has subscribers to, and changes what it listens to; reconnects (and
    /// listens again to the same channels) when the connection drops.
    async fn subscribe_loop(self: Arc<Self>, mut listen: mpsc::UnboundedReceiver<Listen>, registry: Arc<Registry>) {
        let mut listening: HashSet<Topic> = HashSet::new();
        let mut lost_once = false;
        loop {
            match self.client.get_async_pubsub().await {
                Ok(pubsub) => {
                    let (mut sink, mut stream) = pubsub.split();
                    let mut channels = vec![wire::node_channel(self.node_id), wire::all_nodes_channel()];
                    channels.extend(listening.iter().map(|topic| wire::topic_channel(*topic)));
                    if let Err(err) = sink.subscribe(&channels).await {
                        log::error!("node {}: cannot subscribe in Redis: {err}", self.node_id);
                    } else {
                        if lost_once {
                            // What other nodes published meanwhile never came:
                            // every socket here reconnects and catches up.
                            let closed = registry.disconnect_all(DisconnectReason::MissedFrames);
                            log::warn!(
                                "node {}: listening again; {closed} sockets reconnect to catch up",
                                self.node_id
                            );
                        }
                        loop {
                            tokio::select! {
                                message = stream.next() => match message {
                                    Some(message) => {
                                        self.on_message(&registry, message.get_channel_name(), message.get_payload_bytes());
                                    }
                                    None => break,
                                },
                                change = listen.recv() => match change {
                                    Some(Listen::Sync(topic, done)) => {
                                        let channel = wire::topic_channel(topic);
                                        let wanted = self.wanted_here(topic);
                                        let changed = if wanted && !listening.contains(&topic) {
                                            sink.subscribe(&channel).await.map(|()| listening.insert(topic))
                                        } else if !wanted && listening.contains(&topic) {
                                            sink.unsubscribe(&channel).await.map(|()| listening.remove(&topic))
                                        } else {
                                            Ok(false)
                                        };
                                        if let Some(done) = done {
                                            let _ = done.send(());
                                        }
                                        if changed.is_err() {
                                            break;
                                        }
                                    }
                                    None => return,
                                },
                            }
                        }
                    }
                }
                Err(err) => log::error!("node {}: cannot reach Redis to subscribe: {err}", self.node_id),
            }
            lost_once = true;
            log::warn!("node {}: Redis subscription lost; reconnecting", self.node_id);
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    fn on_message(&self, registry: &Arc<Registry>, channel: &str, payload: &[u8]) {
        self.metrics.broker_received.fetch_add(1, Ordering::Relaxed);
        if let Some(topic) = wire::topic_of_channel(channel) {
            match Publication::decode(payload) {
                // Its own publications a node delivered when it made them.
                Some(publication) if publication.origin == self.node_id => {}
                Some(publication) => {
                    self.hub.deliver(topic, &ByteString::from(publication.frame), publication.audience)
                }
                None => log::warn!("node {}: unreadable publication on {channel}", self.node_id),
            }
            return;
        }
        let Some(message) = NodeMessage::decode(payload) else {
            return log::warn!("node {}: unreadable message on {channel}", self.node_id);
        };
        match message {
            NodeMessage::Deliver { socket, frame } => {
                if let Some(socket) = self.local_socket(socket) {
                    self.hub.push(&socket, ByteString::from(frame));
                }
            }
            NodeMessage::Close { socket, reason } => {
                if let Some(socket) = self.local_socket(socket) {
                    socket.close(reason);
                }
            }
            NodeMessage::Subscribe { socket, topic, host } => {
                if let Some(socket) = self.local_socket(socket) {
                    self.hub.subscribe(topic, socket, host);
                }
                let _ = self.listen.send(Listen::Sync(topic, None));
            }
            NodeMessage::Unsubscribe { socket, topic } => {
                self.hub.unsubscribe(topic, socket);
                let _ = self.listen.send(Listen::Sync(topic, None));
            }
            NodeMessage::Request { from, call, body } => calls::serve(registry, from, call, body),
            NodeMessage::CloseTokenSockets { user, token_fingerprint, reason } => {
                registry.close_sockets_opened_with(user, token_fingerprint, reason);
            }
            NodeMessage::Answer { call, body } => {
                if let Some((_, answer)) = self.calls.remove(&call) {
                    let _ = answer.send(body.to_string());
                }
            }
            // Its own sockets had every frame: delivered here when made.
            NodeMessage::DeliverToUsers { origin, .. } if origin == self.node_id => {}
            NodeMessage::DeliverToUsers { users, frame, .. } => {
                let frame = ByteString::from(frame);
                for user in users {
                    self.hub.deliver(Topic::User(user), &frame, Audience::Everyone);
                }
            }
            NodeMessage::Presence { origin, .. } if origin == self.node_id => {}
            NodeMessage::Presence { flush, .. } => flush.deliver(&self.hub),
            NodeMessage::Missed { origin, .. } if origin == self.node_id => {}
            NodeMessage::Missed { missed, .. } => self.close_what_missed(registry, &missed),
        }
    }
}

fn cluster_unavailable(err: &redis::RedisError) -> AppError {
    log::error!("Redis: {err}");
    AppError::unavailable("cluster_unavailable", "The servers cannot reach each other right now; please retry.")
}
