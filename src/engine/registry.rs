//! The registry: which actors are alive, one table per kind, plus the hub
//! (this node's sockets) and the broker every fan-out goes through.
//!
//! Actors are spawned on first use, under an actix `Supervisor`, spread
//! round-robin over one arbiter (thread) per core. A supervisor restarts an
//! actor that stops, but an actor whose handler panicked simply dies with its
//! task; so every lookup checks the address and starts a fresh actor, which
//! rebuilds its state from the database, when the old one is gone.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use actix::prelude::*;
use dashmap::DashMap;
use uuid::Uuid;

use crate::engine::broker::{Broker, LocalBroker};
use crate::engine::cluster::broker::RedisBroker;
use crate::engine::cluster::wire::NodeMessage;
use crate::engine::cluster::Cluster;
use crate::engine::contacts::Contacts;
use crate::engine::hub::Hub;
use crate::engine::live_session::LiveSession;
use crate::engine::metrics::{Gauges, Metrics};
use crate::engine::office_hours::room::OfficeHoursRoom;
use crate::engine::office_hours::OfficeHoursActor;
use crate::engine::polling::PollingSessions;
use crate::engine::presence::fanout::PendingPresence;
use crate::engine::presence::{PresenceActor, WATCHERS_TTL};
use crate::engine::room::{RoomActor, RoomKind};
use crate::engine::scheduler::Tick;
use crate::engine::study_group::StudyGroup;
use crate::engine::{DisconnectReason, EngineDeps};

/// The live actors of one kind, by id.
pub struct ActorTable<A: Actor> {
    /// The kind's name in logs and `/metrics`.
    kind: &'static str,
    actors: DashMap<Uuid, Addr<A>>,
    /// With several nodes, an actor of this table is this node's by lease
    /// (`{prefix}:{id}`): given up when the actor stops for good.
    leases: Option<(&'static str, Arc<Cluster>)>,
}

impl<A: Actor> ActorTable<A> {
    pub fn new(kind: &'static str) -> Self {
        Self { kind, actors: DashMap::new(), leases: None }
    }

    fn with_leases(mut self, prefix: &'static str, cluster: Option<Arc<Cluster>>) -> Self {
        self.leases = cluster.map(|cluster| (prefix, cluster));
        self
    }

    /// The live actor for `id`, or a fresh one from `spawn` when there is
    /// none or it died (a panic ends an actor's task without its supervisor
    /// noticing, so the address is checked here).
    pub fn get_or_spawn(&self, id: Uuid, metrics: &Metrics, spawn: impl Fn() -> Addr<A>) -> Addr<A> {
        if let Some(addr) = self.actors.get(&id) {
            if addr.connected() {
                return addr.clone();
            }
        }
        let mut entry = self.actors.entry(id).or_insert_with(&spawn);
        if !entry.connected() {
            log::warn!("{} actor {id} died; starting a fresh one", self.kind);
            metrics.room_restarts.fetch_add(1, Ordering::Relaxed);
            *entry = spawn();
        }
        entry.clone()
    }

    /// Every live actor of the table.
    pub fn all(&self) -> Vec<Addr<A>> {
        self.actors.iter().filter(|entry| entry.connected()).map(|entry| entry.value().clone()).collect()
    }

    /// The actor for `id` if one is alive, without starting one.
    pub fn existing(&self, id: Uuid) -> Option<Addr<A>> {
        self.actors.get(&id).filter(|addr| addr.connected()).map(|addr| addr.clone())
    }

    /// Forgets an actor that is stopping for good, unless a newer one
    /// already took its place.
    pub fn remove(&self, id: Uuid, addr: &Addr<A>) {
        if self.actors.remove_if(&id, |_, current| current == addr).is_some() {
            if let Some((prefix, cluster)) = &self.leases {
                cluster.release(format!("{prefix}:{id}"));
            }
        }
    }

    /// Puts an actor that its supervisor restarted back in its slot, if the
    /// slot is free or its actor dead. False if another one is alive there.
    pub fn readopt(&self, id: Uuid, addr: Addr<A>) -> bool {
        let mut entry = self.actors.entry(id).or_insert_with(|| addr.clone());
        if *entry == addr {
            return true;
        }
        if !entry.connected() {
            *entry = addr;
            return true;
        }
        false
    }

    fn gauge(&self) -> (&'static str, usize) {
        (self.kind, self.actors.iter().filter(|addr| addr.connected()).count())
    }
}

pub struct Registry {
    pub deps: Arc<EngineDeps>,
    arbiters: Vec<Arbiter>,
    next_arbiter: AtomicUsize,
    /// This node's sockets by topic: the socket directory.
    pub hub: Arc<Hub>,
    /// Where every fan-out is published.
    pub broker: Arc<dyn Broker>,
    /// The other nodes, when there are (`REDIS_URL`).
    pub cluster: Option<Arc<Cluster>>,
    /// Rooms of live sessions, by chat room id.
    pub live_sessions: ActorTable<RoomActor<LiveSession>>,
    /// Rooms of study groups, by chat room id.
    pub study_groups: ActorTable<RoomActor<StudyGroup>>,
    /// Office-hours rooms (private and drop-in), by chat room id.
    pub office_hours_rooms: ActorTable<RoomActor<OfficeHoursRoom>>,
    /// One office-hours actor per instructor whose queue is in use.
    pub office_hours: ActorTable<OfficeHoursActor>,
    /// One presence actor per user with sockets open (or lingering after the last).
    pub presence: ActorTable<PresenceActor>,
    /// Who hears of whose presence, shared by every presence actor.
    pub contacts: Arc<Contacts>,
    /// Presence changes waiting for the next batch (`presence::fanout`).
    pub pending_presence: Mutex<PendingPresence>,
    /// Socket.IO clients polling over HTTP, by Engine.IO sid.
    pub polling: PollingSessions,
    /// The reminder scheduler, set once at start-up.
    scheduler: OnceLock<Recipient<Tick>>,
}

impl Registry {
    /// The registry of a node alone, or of a node of `cluster` (its hub
    /// made with the cluster: they share it).
    pub fn new(deps: Arc<EngineDeps>, hub: Arc<Hub>, cluster: Option<Arc<Cluster>>) -> Arc<Self> {
        let arbiters = (0..deps.config.room_arbiters()).map(|_| Arbiter::new()).collect();
        let broker: Arc<dyn Broker> = match &cluster {
            Some(cluster) => Arc::new(RedisBroker::new(Arc::clone(&hub), Arc::clone(cluster))),
            None => Arc::new(LocalBroker::new(Arc::clone(&hub))),
        };
        Arc::new(Self {
            deps,
            arbiters,
            next_arbiter: AtomicUsize::new(0),
            hub,
            broker,
            cluster: cluster.clone(),
            live_sessions: ActorTable::new("live_session").with_leases("room", cluster.clone()),
            study_groups: ActorTable::new("study_group").with_leases("room", cluster.clone()),
            office_hours_rooms: ActorTable::new("office_hours_room").with_leases("room", cluster.clone()),
            office_hours: ActorTable::new("office_hours").with_leases("office", cluster.clone()),
            presence: ActorTable::new("presence").with_leases("presence", cluster.clone()),
            contacts: Arc::new(Contacts::new(WATCHERS_TTL)),
            pending_presence: Mutex::default(),
            polling: PollingSessions::default(),
            scheduler: OnceLock::new(),
        })
    }

    /// The arbiter (thread) the next actor starts on, round-robin.
    pub(crate) fn next_arbiter(&self) -> ArbiterHandle {
        let index = self.next_arbiter.fetch_add(1, Ordering::Relaxed) % self.arbiters.len();
        self.arbiters[index].handle()
    }

    /// The actor of a room of kind `K`, started (or restarted) if needed.
    /// The caller has checked that the room exists.
    pub fn room<K: RoomKind>(self: &Arc<Self>, room_id: Uuid) -> Addr<RoomActor<K>> {
        K::table(self).get_or_spawn(room_id, &self.deps.metrics, || {
            let registry = Arc::clone(self);
            Supervisor::start_in_arbiter(&self.next_arbiter(), move |_| RoomActor::<K>::new(room_id, registry))
        })
    }

    /// The presence actor of a user, started (or restarted after a panic) if
    /// needed; it counts the user's sockets from the hub when it starts.
    pub fn presence(self: &Arc<Self>, user_id: Uuid) -> Addr<PresenceActor> {
        self.presence.get_or_spawn(user_id, &self.deps.metrics, || {
            let registry = Arc::clone(self);
            Supervisor::start_in_arbiter(&self.next_arbiter(), move |_| PresenceActor::new(user_id, registry))
        })
    }

    pub fn set_scheduler(&self, scheduler: Recipient<Tick>) {
        let _ = self.scheduler.set(scheduler);
    }

    /// Asks the scheduler to look at sessions now rather than at its next tick.
    pub fn poke_scheduler(&self) {
        if let Some(scheduler) = self.scheduler.get() {
            scheduler.do_send(Tick);
        }
    }

    /// Asks every socket of this node to close (graceful shutdown).
    pub fn disconnect_all(&self, reason: DisconnectReason) -> usize {
        let sockets = self.hub.all_sockets();
        for socket in &sockets {
            socket.close(reason);
        }
        sockets.len()
    }

    /// Closes the sockets a user opened with a token (it was revoked), on
    /// every node.
    pub fn revoke_sockets_opened_with(&self, user_id: Uuid, token_fingerprint: u128, reason: DisconnectReason) {
        if let Some(cluster) = &self.cluster {
            cluster.tell_all(&NodeMessage::CloseTokenSockets { user: user_id, token_fingerprint, reason });
        }
        self.close_sockets_opened_with(user_id, token_fingerprint, reason);
    }

    /// Closes this node's sockets a user opened with a token.
    pub fn close_sockets_opened_with(&self, user_id: Uuid, token_fingerprint: u128, reason: DisconnectReason) -> usize {
        let sockets: Vec<_> =
            self.hub.sockets_of(user_id).into_iter().filter(|socket| socket.opened_with(token_fingerprint)).collect();
        for socket in &sockets {
            socket.close(reason);
        }
        sockets.len()
    }

    /// Stops the threads of room and presence actors (an application that
    /// is done; the actors hold the registry, so nothing else frees them).
    pub fn stop_arbiters(&self) {
        for arbiter in &self.arbiters {
            arbiter.stop();
        }
    }

    pub fn gauges(&self) -> Gauges {
        Gauges {
            actors_by_kind: vec![
                self.live_sessions.gauge(),
                self.study_groups.gauge(),
                self.office_hours_rooms.gauge(),
                self.office_hours.gauge(),
                self.presence.gauge(),
                ("connection", self.hub.open_sockets()),
            ],
        }
    }
}
