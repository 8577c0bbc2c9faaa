//! The registry: who is connected, and which room actors are alive.
//!
//! Room actors are spawned on first use, under an actix `Supervisor`, spread
//! round-robin over one arbiter (thread) per core. A supervisor restarts an
//! actor that stops, but an actor whose handler panicked simply dies with its
//! task; so every lookup checks the address and starts a fresh actor, which
//! rebuilds its state from the database, when the old one is gone.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use actix::prelude::*;
use dashmap::DashMap;
use uuid::Uuid;

use crate::engine::connection::ConnectionActor;
use crate::engine::contacts::Contacts;
use crate::engine::live_session::LiveSessionActor;
use crate::engine::metrics::Gauges;
use crate::engine::presence::{PresenceActor, WATCHERS_TTL};
use crate::engine::scheduler::Tick;
use crate::engine::{Disconnect, DisconnectReason, EngineDeps};

/// An open socket of a user.
#[derive(Clone)]
pub struct ConnectionHandle {
    pub id: Uuid,
    pub addr: Addr<ConnectionActor>,
}

pub struct Registry {
    pub deps: Arc<EngineDeps>,
    arbiters: Vec<Arbiter>,
    next_arbiter: AtomicUsize,
    live_sessions: DashMap<Uuid, Addr<LiveSessionActor>>,
    /// One presence actor per user with sockets open (or lingering after the last).
    presence: DashMap<Uuid, Addr<PresenceActor>>,
    connections: DashMap<Uuid, Vec<ConnectionHandle>>,
    /// Who hears of whose presence, shared by every presence actor.
    pub contacts: Arc<Contacts>,
    /// The reminder scheduler, set once at start-up.
    scheduler: OnceLock<Recipient<Tick>>,
}

impl Registry {
    pub fn new(deps: Arc<EngineDeps>) -> Arc<Self> {
        let arbiters = (0..deps.config.room_arbiters()).map(|_| Arbiter::new()).collect();
        Arc::new(Self {
            deps,
            arbiters,
            next_arbiter: AtomicUsize::new(0),
            live_sessions: DashMap::new(),
            presence: DashMap::new(),
            connections: DashMap::new(),
            contacts: Arc::new(Contacts::new(WATCHERS_TTL)),
            scheduler: OnceLock::new(),
        })
    }

    fn pick_arbiter(&self) -> ArbiterHandle {
        let index = self.next_arbiter.fetch_add(1, Ordering::Relaxed) % self.arbiters.len();
        self.arbiters[index].handle()
    }

    /// The actor of a live session, started (or restarted) if needed. The
    /// caller has checked that the session exists.
    pub fn live_session(self: &Arc<Self>, session_id: Uuid) -> Addr<LiveSessionActor> {
        self.alive_or_spawn(&self.live_sessions, session_id, "live session", || self.spawn_live_session(session_id))
    }

    /// The live actor in `actors` for `id`, or a fresh one from `spawn` when
    /// there is none or it died (a panic ends an actor's task without its
    /// supervisor noticing, so the address is checked here).
    fn alive_or_spawn<A: Actor>(
        &self,
        actors: &DashMap<Uuid, Addr<A>>,
        id: Uuid,
        kind: &str,
        spawn: impl Fn() -> Addr<A>,
    ) -> Addr<A> {
        if let Some(addr) = actors.get(&id) {
            if addr.connected() {
                return addr.clone();
            }
        }
        let mut entry = actors.entry(id).or_insert_with(&spawn);
        if !entry.connected() {
            log::warn!("{kind} actor {id} died; starting a fresh one");
            self.deps.metrics.room_restarts.fetch_add(1, Ordering::Relaxed);
            *entry = spawn();
        }
        entry.clone()
    }

    fn spawn_live_session(self: &Arc<Self>, session_id: Uuid) -> Addr<LiveSessionActor> {
        let registry = Arc::clone(self);
        Supervisor::start_in_arbiter(&self.pick_arbiter(), move |_| LiveSessionActor::new(session_id, registry))
    }

    /// Forgets a room actor that is stopping for good, unless a newer one
    /// already took its place.
    pub fn remove_live_session(&self, session_id: Uuid, addr: &Addr<LiveSessionActor>) {
        self.live_sessions.remove_if(&session_id, |_, current| current == addr);
    }

    /// The presence actor of a user, started (or restarted after a panic) if
    /// needed; it counts the user's sockets from `connections_of` when it starts.
    pub fn presence(self: &Arc<Self>, user_id: Uuid) -> Addr<PresenceActor> {
        self.alive_or_spawn(&self.presence, user_id, "presence", || self.spawn_presence(user_id))
    }

    fn spawn_presence(self: &Arc<Self>, user_id: Uuid) -> Addr<PresenceActor> {
        let registry = Arc::clone(self);
        Supervisor::start_in_arbiter(&self.pick_arbiter(), move |_| PresenceActor::new(user_id, registry))
    }

    /// The presence actor of a user if one is alive, without starting one.
    pub fn existing_presence(&self, user_id: Uuid) -> Option<Addr<PresenceActor>> {
        self.presence.get(&user_id).filter(|addr| addr.connected()).map(|addr| addr.clone())
    }

    /// Forgets a presence actor that is stopping for good, unless a newer one
    /// already took its place.
    pub fn remove_presence(&self, user_id: Uuid, addr: &Addr<PresenceActor>) {
        self.presence.remove_if(&user_id, |_, current| current == addr);
    }

    /// Puts a presence actor that its supervisor restarted (a message reached
    /// it while it stopped) back in its slot, if the slot is free or its actor
    /// dead. False if another one is alive there.
    pub fn readopt_presence(&self, user_id: Uuid, addr: Addr<PresenceActor>) -> bool {
        let mut entry = self.presence.entry(user_id).or_insert_with(|| addr.clone());
        if *entry == addr {
            return true;
        }
        if !entry.connected() {
            *entry = addr;
            return true;
        }
        false
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

    /// Room actors alive now, if any, without starting one.
    pub fn existing_live_session(&self, session_id: Uuid) -> Option<Addr<LiveSessionActor>> {
        self.live_sessions.get(&session_id).filter(|addr| addr.connected()).map(|addr| addr.clone())
    }

    pub fn connection_count(&self, user_id: Uuid) -> usize {
        self.connections.get(&user_id).map(|list| list.len()).unwrap_or(0)
    }

    pub fn register_connection(&self, user_id: Uuid, handle: ConnectionHandle) {
        self.connections.entry(user_id).or_default().push(handle);
    }

    pub fn unregister_connection(&self, user_id: Uuid, connection_id: Uuid) {
        if let dashmap::mapref::entry::Entry::Occupied(mut entry) = self.connections.entry(user_id) {
            entry.get_mut().retain(|handle| handle.id != connection_id);
            if entry.get().is_empty() {
                entry.remove();
            }
        }
    }

    /// The open sockets of a user.
    pub fn connections_of(&self, user_id: Uuid) -> Vec<ConnectionHandle> {
        self.connections.get(&user_id).map(|list| list.clone()).unwrap_or_default()
    }

    /// Visits the open sockets of a user without copying the list (presence
    /// fan-out calls this for every watcher). The map's shard holding the user
    /// stays read-locked while `visit` runs, so `visit` must not register or
    /// unregister a connection, or call anything else here that writes to
    /// `connections`: that would wait for the lock this thread holds. Sending
    /// to the handles (`try_send`, `do_send`) only queues and is fine.
    pub fn for_each_connection(&self, user_id: Uuid, mut visit: impl FnMut(&ConnectionHandle)) {
        if let Some(list) = self.connections.get(&user_id) {
            list.iter().for_each(&mut visit);
        }
    }

    /// Asks every socket to close (graceful shutdown).
    pub fn disconnect_all(&self, reason: DisconnectReason) -> usize {
        let mut count = 0;
        for list in self.connections.iter() {
            for handle in list.iter() {
                handle.addr.do_send(Disconnect(reason));
                count += 1;
            }
        }
        count
    }

    pub fn open_connections(&self) -> usize {
        self.connections.iter().map(|list| list.len()).sum()
    }

    pub fn gauges(&self) -> Gauges {
        let live_sessions = self.live_sessions.iter().filter(|addr| addr.connected()).count();
        let presence = self.presence.iter().filter(|addr| addr.connected()).count();
        Gauges {
            actors_by_kind: vec![
                ("live_session", live_sessions),
                ("presence", presence),
                ("connection", self.open_connections()),
            ],
        }
    }
}
