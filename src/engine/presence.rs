//! The presence actor: one per user, a thin shell around the pure
//! [`Presence`] aggregation. The registry spawns it on the user's first
//! connection (or when a REST call changes their presence) and it stops
//! `PRESENCE_LINGER_SECS` after the last socket closed, once its writes are
//! committed.
//!
//! What it does:
//! * **Counts sockets.** Connection actors tell it `Connect`/`Disconnected`
//!   and `Touch` (any client frame, at most once a second per socket). The
//!   registry's list of open sockets is the truth: a fresh actor (first start,
//!   or a replacement after a panic) adopts the sockets listed there, and a
//!   `Connect` for a socket no longer listed is ignored, so a late message can
//!   never leave a closed tab "online".
//! * **Pushes** `presence-updated {userId, status, activity, lastSeenAt}` (the
//!   watcher view, privacy applied) to every open socket of every watcher,
//!   one serialized frame shared by all, only when the watcher view changed.
//!   Publishing is throttled to one fan-out per [`MIN_PUBLISH_GAP`]: the first
//!   change goes out at once, changes within the gap are coalesced into one
//!   push of the latest state, so a flood costs at most a few fan-outs a second.
//! * **Watchers** are everyone who shares a course or an active study group
//!   with the user. They come from the registry's shared contacts index
//!   (`engine::contacts`), which holds each circle's member list once for all
//!   its users and reads it again when older than [`WATCHERS_TTL`], or at once
//!   after an enrollment. Only watchers with open sockets get frames, each
//!   frame once even if they share several circles with the user.
//! * **Several nodes**: one node holds a user's presence (a lease, `calls`);
//!   the others forward it their sockets' opens and closes, so it counts
//!   sockets by node, and drops a node's sockets when that node dies.
//! * **Time**: idling to away and manual-status expiry are computed with the
//!   injected clock; one real-time timer waits for the next deadline the domain
//!   names and is re-armed after every change. Any message re-evaluates, and
//!   [`Reevaluate`] does nothing else, so tests that move a manual clock send it
//!   instead of sleeping.
//! * **Stores** `user_presence` through the persistence actor, coalesced: at
//!   most one write per user is in flight; changes meanwhile are remembered and
//!   the latest state is written when it commits. A changed status, activity
//!   or manual status is written at once; a last-seen that only moved forward
//!   (heartbeats) at most every [`LAST_SEEN_STORE_EVERY`]; going offline always,
//!   so a restart shows the right last-seen time.

pub mod calls;
pub mod fanout;

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use actix::prelude::*;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::clock::SharedClock;
use crate::db::presence::{PresencePrivacyRow, UserPresenceRow};
use crate::db::{self, from_db_time, to_db_time, AnyConnection};
use crate::domain::presence::{
    live_session_activity, ManualStatus, Presence, PresenceChange, PresenceStatus, PresenceView, PrivacyChange,
    PrivacySettings, UserPresenceView,
};
use crate::engine::contacts::{self, Circle, Plan, UserRead, Watchers};
use crate::engine::hub::Topic;
use crate::engine::registry::Registry;
use crate::error::{AppError, AppResult};

/// Shortest time between two fan-outs of one user's presence.
pub const MIN_PUBLISH_GAP: Duration = Duration::from_millis(200);
/// How long a circle's member list (or a user's list of circles) in the
/// contacts index is trusted before it is read again.
pub const WATCHERS_TTL: Duration = Duration::from_secs(30);
/// A last-seen that only moved forward is stored at most this often.
const LAST_SEEN_STORE_EVERY: chrono::Duration = chrono::Duration::seconds(30);
/// A socket's frames count as activity at most this often (per socket).
const TOUCH_EVERY: Duration = Duration::from_secs(1);
/// How soon a stop that had to wait (writes in flight) is tried again.
const STOP_RETRY: Duration = Duration::from_millis(50);
/// Messages the mailbox holds before `send` waits; senders are rate-limited
/// upstream, and parked sends would lose their order.
const MAILBOX_CAPACITY: usize = 1 << 16;
/// Attempts at reaching a user's actor when the one found stopped meanwhile.
const ATTEMPTS: usize = 3;

/// The activity line the engine set itself (joining a live session), so that
/// leaving clears it only if nobody replaced it since.
struct EngineActivity {
    connection_id: Uuid,
    session_id: Uuid,
    text: String,
}

pub struct PresenceActor {
    user_id: Uuid,
    /// Weak, and nothing here holds the database pool or the persistence
    /// actor: the registry owns the arbiter this actor runs on, and a strong
    /// reference (or a timer still pending) would keep the registry, the pool
    /// and its connections alive after the application is gone. The database
    /// and the persistence actor are reached through it when needed.
    registry: Weak<Registry>,
    clock: SharedClock,

    /// `PRESENCE_LINGER_SECS`.
    linger: Duration,
    name: String,
    presence: Presence,
    last_publish: Option<Instant>,
    publish_timer: Option<SpawnHandle>,
    deadline_timer: Option<SpawnHandle>,
    linger_timer: Option<SpawnHandle>,
    /// The row last handed to the persistence actor (or loaded).
    stored: Option<UserPresenceRow>,
    write_in_flight: bool,
    /// A change came while a write was in flight: write the latest state after it.
    write_wanted: bool,
    engine_activity: Option<EngineActivity>,
    /// The privacy settings as last asked for (applied once stored), which
    /// the next partial change builds on.
    privacy_wanted: PrivacySettings,
    /// Privacy writes not committed yet (their callers wait on this actor).
    privacy_writes: usize,
    /// Restarted by its supervisor while another actor already holds the
    /// user's slot: it keeps no state and passes every message on.
    orphaned: bool,
    /// The user's sockets on other nodes (several nodes only), with their
    /// node: they go when that node dies.
    remote: HashMap<Uuid, Uuid>,
}

/// What a presence actor starts from.
struct Loaded {
    name: String,
    row: Option<UserPresenceRow>,
    privacy: PrivacySettings,
    /// The user's circles, for the contacts index.
    circles: Vec<Circle>,
    /// The user's sockets on other nodes, with their node (several nodes only).
    elsewhere: Vec<(Uuid, Uuid)>,
}

fn load(conn: &mut AnyConnection, user_id: Uuid) -> AppResult<Option<Loaded>> {
    let id = user_id.to_string();
    let Some(name) = db::presence::name_of(conn, &id)? else { return Ok(None) };
    let row = db::presence::find(conn, &id)?;
    let privacy = db::presence::find_privacy(conn, &id)?.map(privacy_of).unwrap_or_default();
    let circles = contacts::circles_of(conn, user_id)?;
    Ok(Some(Loaded { name, row, privacy, circles, elsewhere: Vec::new() }))
}

/// Settings from their row.
pub fn privacy_of(row: PresencePrivacyRow) -> PrivacySettings {
    PrivacySettings {
        hide_activity: row.hide_activity,
        hide_last_seen: row.hide_last_seen,
        appear_offline: row.appear_offline,
    }
}

/// The presence of a user with no live actor, from the stored row: offline,
/// last seen when the row says. `for_self` shows the truth; anyone else gets
/// it through the user's privacy settings.
pub fn stored_view(
    user_id: Uuid,
    name: &str,
    row: Option<&UserPresenceRow>,
    privacy: PrivacySettings,
    for_self: bool,
    now: DateTime<Utc>,
) -> UserPresenceView {
    let mut presence = Presence::new(user_id, chrono::Duration::zero());
    presence.restore(
        row.map(|row| from_db_time(row.last_seen_at)),
        row.and_then(|row| row.manual_status.as_deref().and_then(ManualStatus::parse)),
        row.and_then(|row| row.manual_status_expires_at.map(from_db_time)),
        None,
        privacy,
    );
    if !for_self {
        return UserPresenceView::new(user_id, name, presence.view_for_watcher(now));
    }
    // Offline, but the manual status stored comes back with the next socket.
    UserPresenceView::new(user_id, name, presence.view_for_self(now)).with_own(presence.own_view(now))
}

/// The `presence-updated` payload.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PresenceUpdated<'a> {
    user_id: Uuid,
    #[serde(flatten)]
    view: &'a PresenceView,
}

impl PresenceActor {
    pub fn new(user_id: Uuid, registry: Arc<Registry>) -> Self {
        let idle_after =
            chrono::Duration::seconds(i64::try_from(registry.deps.config.presence_idle_secs).unwrap_or(i64::MAX));
        Self {
            user_id,
            name: String::new(),
            presence: Presence::new(user_id, idle_after),
            clock: registry.deps.clock.clone(),
            linger: Duration::from_secs(registry.deps.config.presence_linger_secs),
            registry: Arc::downgrade(&registry),
            last_publish: None,
            publish_timer: None,
            deadline_timer: None,
            linger_timer: None,
            stored: None,
            write_in_flight: false,
            write_wanted: false,
            engine_activity: None,
            privacy_wanted: PrivacySettings::default(),
            privacy_writes: 0,
            orphaned: false,
            remote: HashMap::new(),
        }
    }

    /// An orphan passes a message on to the user's actor in the registry.
    fn forward<M>(&self, msg: M)
    where
        M: Message<Result = ()> + Send + 'static,
        PresenceActor: Handler<M>,
    {
        if let Some(registry) = self.registry.upgrade() {
            registry.presence(self.user_id).do_send(msg);
        }
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Takes in what `load` read; `circles_read` is the contacts index's
    /// note of when the read of the user's circles began.
    fn install(&mut self, loaded: Loaded, circles_read: UserRead, ctx: &mut Context<Self>) {
        let now = self.now();
        self.name = loaded.name;
        let open = self.registry.upgrade().map(|registry| registry.hub.sockets_of(self.user_id)).unwrap_or_default();
        let row = loaded.row.as_ref();
        // A stored activity only still holds when sockets outlived the previous
        // actor (a panic, or its node's death); after a restart it is stale.
        let outlived = !open.is_empty() || !loaded.elsewhere.is_empty();
        let activity = if outlived { row.and_then(|row| row.activity.clone()) } else { None };
        self.presence.restore(
            row.map(|row| from_db_time(row.last_seen_at)),
            row.and_then(|row| row.manual_status.as_deref().and_then(ManualStatus::parse)),
            row.and_then(|row| row.manual_status_expires_at.map(from_db_time)),
            activity,
            loaded.privacy,
        );
        // Watchers already consider this user as stored (offline): that is the
        // baseline, so spawning the actor alone pushes nothing. Unless the row
        // says they were on and no socket is left: their actor died (with its
        // node), and watchers still show them on; they hear they are offline.
        let stale = !outlived && row.is_some_and(|row| row.status != PresenceStatus::Offline.as_str());
        if !stale {
            let _ = self.presence.watcher_view_changed(now);
        }
        self.privacy_wanted = loaded.privacy;
        self.stored = loaded.row;
        if let Some(registry) = self.registry.upgrade() {
            registry.contacts.index().finish_user_read(circles_read, Some(loaded.circles), Instant::now());
        }
        for socket in open {
            self.presence.connect(socket.id(), now);
        }
        for (connection_id, node) in loaded.elsewhere {
            self.presence.connect(connection_id, now);
            self.remote.insert(connection_id, node);
        }
        self.after_change(ctx);
    }

    /// The user does not exist (or cannot be read): stop for good.
    fn retire(&mut self, ctx: &mut Context<Self>) {
        if let Some(registry) = self.registry.upgrade() {
            registry.presence.remove(self.user_id, &ctx.address());
        }
        ctx.stop();
    }

    /// Everything that follows a change (or a timer): publish if watchers
    /// would see something new, store if needed, re-arm the deadline, and
    /// start or cancel the linger.
    fn after_change(&mut self, ctx: &mut Context<Self>) {
        if self.registry.strong_count() == 0 {
            return ctx.stop(); // the application is gone
        }
        let now = self.now();
        if self.presence.watcher_view_pending(now) {
            self.request_publish(ctx);
        }
        self.store_if_needed(now, ctx);
        self.schedule_deadline(now, ctx);
        self.schedule_linger(ctx);
    }

    fn request_publish(&mut self, ctx: &mut Context<Self>) {
        if self.publish_timer.is_some() {
            return; // a coalesced publish is due; it will take the latest state
        }
        let wait = self.last_publish.map(|at| MIN_PUBLISH_GAP.saturating_sub(at.elapsed())).unwrap_or_default();
        if wait.is_zero() {
            self.publish(ctx);
        } else {
            self.publish_timer = Some(ctx.run_later(wait, |act, ctx| {
                act.publish_timer = None;
                act.publish(ctx);
            }));
        }
    }

    fn publish(&mut self, ctx: &mut Context<Self>) {
        let Some(registry) = self.registry.upgrade() else { return };
        let plan = registry.contacts.index().plan(self.user_id, Instant::now());
        if let Plan::Ready(watchers) = plan {
            self.publish_now(&registry, &watchers);
            return;
        }
        // Some list must be read (by us or another actor) first; `wait` holds
        // other messages back, so what goes out afterwards is still the latest state.
        let resolve = Arc::clone(&registry.contacts).resolve(registry.deps.db.clone(), self.user_id, plan);
        ctx.wait(resolve.into_actor(self).map(|watchers, act, _| {
            if let Some(registry) = act.registry.upgrade() {
                act.publish_now(&registry, &watchers);
            }
        }));
    }

    fn publish_now(&mut self, registry: &Arc<Registry>, watchers: &Watchers) {
        let now = self.now();
        let Some(view) = self.presence.watcher_view_changed(now) else { return };
        self.last_publish = Some(Instant::now());
        // Out with this node's other changes of the same circles, shortly (see `fanout`).
        if let Some(change) =
            fanout::PresenceChange::new(self.user_id, &PresenceUpdated { user_id: self.user_id, view: &view })
        {
            fanout::publish(registry, watchers, change);
        }
    }

    /// The row that describes the state now, or `None` when there is nothing
    /// worth storing (never seen, nothing set).
    fn desired_row(&self, now: DateTime<Utc>) -> Option<UserPresenceRow> {
        let manual = self.presence.manual_status(now);
        let activity = self.presence.activity().map(String::from);
        let last_seen_at = match self.presence.last_seen_at() {
            Some(at) => at,
            // Set over REST without ever connecting: the call is the sighting.
            None if manual.is_some() || activity.is_some() => now,
            None => return None,
        };
        Some(UserPresenceRow {
            user_id: self.user_id.to_string(),
            status: self.presence.effective_status(now).as_str().to_string(),
            manual_status: manual.map(|(status, _)| status.as_str().to_string()),
            manual_status_expires_at: manual.and_then(|(_, expires)| expires).map(to_db_time),
            activity,
            last_seen_at: to_db_time(last_seen_at),
            updated_at: to_db_time(now),
        })
    }

    fn store_if_needed(&mut self, now: DateTime<Utc>, ctx: &mut Context<Self>) {
        let Some(desired) = self.desired_row(now) else { return };
        let worth_it = match &self.stored {
            None => true,
            Some(stored) => {
                stored.status != desired.status
                    || stored.manual_status != desired.manual_status
                    || stored.manual_status_expires_at != desired.manual_status_expires_at
                    || stored.activity != desired.activity
                    || desired.last_seen_at - stored.last_seen_at >= LAST_SEEN_STORE_EVERY
            }
        };
        if !worth_it {
            return;
        }
        if self.write_in_flight {
            self.write_wanted = true;
            return;
        }
        let Some(registry) = self.registry.upgrade() else { return };
        self.write_in_flight = true;
        self.stored = Some(desired.clone());
        let (reply, answer) = oneshot::channel();
        registry.deps.persistence.submit(move |conn| db::presence::store(conn, &desired), reply);
        ctx.spawn(answer.into_actor(self).map(|result, act, ctx| {
            act.write_in_flight = false;
            let failure = match result {
                Ok(Ok(())) => None,
                Ok(Err(err)) => Some(format!("{err:?}")),
                Err(_) => Some("persistence gone".to_string()),
            };
            if let Some(failure) = failure {
                log::error!("presence of {}: storing failed: {failure}", act.user_id);
                // Unknown now: the next change writes the whole state again.
                act.stored = None;
            }
            if std::mem::take(&mut act.write_wanted) {
                let now = act.now();
                act.store_if_needed(now, ctx);
            }
        }));
    }

    fn schedule_deadline(&mut self, now: DateTime<Utc>, ctx: &mut Context<Self>) {
        if let Some(handle) = self.deadline_timer.take() {
            ctx.cancel_future(handle);
        }
        let Some(at) = self.presence.next_deadline(now) else { return };
        // A hair late rather than early, so the status has changed when it fires.
        let wait = (at - now).to_std().unwrap_or_default() + Duration::from_millis(5);
        self.deadline_timer = Some(ctx.run_later(wait, |act, ctx| {
            act.deadline_timer = None;
            act.after_change(ctx);
        }));
    }

    fn schedule_linger(&mut self, ctx: &mut Context<Self>) {
        if self.presence.is_connected() {
            if let Some(handle) = self.linger_timer.take() {
                ctx.cancel_future(handle);
            }
            return;
        }
        if self.linger_timer.is_none() {
            self.linger_timer = Some(ctx.run_later(self.linger, |act, ctx| {
                act.linger_timer = None;
                act.try_stop(ctx);
            }));
        }
    }

    /// Stops once nothing is left to do: no socket (none known, none about to
    /// announce itself), no write in flight and no publish due. Leaving the
    /// registry first means the next lookup starts a fresh actor, which reads
    /// what this one stored.
    fn try_stop(&mut self, ctx: &mut Context<Self>) {
        if self.presence.is_connected() {
            return;
        }
        let Some(registry) = self.registry.upgrade() else {
            ctx.stop(); // the application is gone
            return;
        };
        let busy = self.write_in_flight || self.write_wanted || self.privacy_writes > 0 || self.publish_timer.is_some();
        if busy || registry.hub.count(Topic::User(self.user_id)) > 0 {
            self.linger_timer = Some(ctx.run_later(STOP_RETRY, |act, ctx| {
                act.linger_timer = None;
                act.try_stop(ctx);
            }));
            return;
        }
        registry.presence.remove(self.user_id, &ctx.address());
        ctx.stop();
    }

    fn own_view(&self) -> UserPresenceView {
        let now = self.now();
        UserPresenceView::new(self.user_id, &self.name, self.presence.view_for_self(now))
            .with_own(self.presence.own_view(now))
    }
}

impl Actor for PresenceActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(MAILBOX_CAPACITY);
        if self.orphaned {
            return; // no state, no timers: it stops by itself once nobody holds its address
        }
        let Some(registry) = self.registry.upgrade() else { return ctx.stop() };
        let (db, user_id, cluster) = (registry.deps.db.clone(), self.user_id, registry.cluster.clone());
        // Before the read, so an enrollment meanwhile is not lost.
        let circles_read = registry.contacts.index().begin_user_read(user_id);
        let loading = async move {
            let elsewhere = async {
                match cluster {
                    Some(cluster) => calls::sockets_elsewhere(&cluster, user_id).await,
                    None => Vec::new(),
                }
            };
            let (loaded, elsewhere) = tokio::join!(db.read(move |conn| load(conn, user_id)), elsewhere);
            loaded.map(|loaded| loaded.map(|loaded| Loaded { elsewhere, ..loaded }))
        };
        // `wait`: no message is handled before the stored state is in.
        ctx.wait(loading.into_actor(self).map(move |loaded, act, ctx| match loaded {
            Ok(Some(loaded)) => act.install(loaded, circles_read, ctx),
            Ok(None) => act.retire(ctx),
            Err(err) => {
                log::error!("cannot load the presence of {user_id}: {err}");
                act.retire(ctx);
            }
        }));
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        // The index holds the user's circles while their actor lives. Not for
        // an orphan (it never loaded), nor when a newer actor already holds the
        // slot (it may have loaded them already; were it to lose them, its next
        // publish would read them again).
        if self.orphaned {
            return;
        }
        if let Some(registry) = self.registry.upgrade() {
            if registry.presence.existing(self.user_id).is_none() {
                registry.contacts.index().release(self.user_id);
            }
        }
    }
}

impl actix::Supervised for PresenceActor {
    fn restarting(&mut self, ctx: &mut Context<Self>) {
        // It stopped for good (linger over) but a message was already on its
        // way: take the user's slot back, rebuilt from the database and the
        // registry by `started`, which runs next; or, if a newer actor holds the
        // slot, become a pass-through orphan so the user never has two.
        let Some(registry) = self.registry.upgrade() else {
            self.orphaned = true; // the application is gone: nothing to rebuild
            return;
        };
        *self = PresenceActor::new(self.user_id, Arc::clone(&registry));
        self.orphaned = !registry.presence.readopt(self.user_id, ctx.address());
    }
}

/// A socket of the user opened.
#[derive(Message, Serialize, Deserialize)]
#[rtype(result = "()")]
#[serde(rename_all = "camelCase")]
pub struct Connect {
    pub connection_id: Uuid,
    /// The node it is open on, when not this one (several nodes only): that
    /// node checked it is open, and says when it closes or the node dies.
    #[serde(default)]
    pub node: Option<Uuid>,
}

impl Handler<Connect> for PresenceActor {
    type Result = ();

    fn handle(&mut self, msg: Connect, ctx: &mut Context<Self>) {
        if self.orphaned {
            return self.forward(msg);
        }
        // Only sockets the registry still lists: a Connect that arrives after
        // its socket closed must not leave the user online.
        let mut listed = false;
        if let Some(node) = msg.node {
            self.remote.insert(msg.connection_id, node);
            listed = true;
        } else if let Some(registry) = self.registry.upgrade() {
            listed = registry.hub.is_subscribed(Topic::User(self.user_id), msg.connection_id);
        }
        if listed {
            self.presence.connect(msg.connection_id, self.now());
        }
        self.after_change(ctx);
    }
}

/// A socket of the user closed.
#[derive(Message, Serialize, Deserialize)]
#[rtype(result = "()")]
#[serde(rename_all = "camelCase")]
pub struct Disconnected {
    pub connection_id: Uuid,
}

impl Handler<Disconnected> for PresenceActor {
    type Result = ();

    fn handle(&mut self, msg: Disconnected, ctx: &mut Context<Self>) {
        if self.orphaned {
            return self.forward(msg);
        }
        self.remote.remove(&msg.connection_id);
        let now = self.now();
        if self.engine_activity.as_ref().is_some_and(|set| set.connection_id == msg.connection_id) {
            self.clear_engine_activity(now);
        }
        self.presence.disconnect(msg.connection_id, now);
        self.after_change(ctx);
    }
}

/// This node took the presence over from a dead node, whose actor may have
/// told watchers the user was on without ever storing it: they hear the
/// view again, whatever it is.
#[derive(Message, Clone, Copy)]
#[rtype(result = "()")]
pub struct TakenOver;

impl Handler<TakenOver> for PresenceActor {
    type Result = ();

    fn handle(&mut self, _: TakenOver, ctx: &mut Context<Self>) {
        self.presence.forget_published();
        self.after_change(ctx);
    }
}

/// A node died: the user's sockets there are gone.
#[derive(Message, Clone, Copy)]
#[rtype(result = "()")]
pub struct NodeGone(pub Uuid);

impl Handler<NodeGone> for PresenceActor {
    type Result = ();

    fn handle(&mut self, NodeGone(node): NodeGone, ctx: &mut Context<Self>) {
        let gone: Vec<Uuid> = self.remote.iter().filter(|(_, on)| **on == node).map(|(id, _)| *id).collect();
        if gone.is_empty() {
            return;
        }
        let now = self.now();
        for connection_id in gone {
            self.remote.remove(&connection_id);
            if self.engine_activity.as_ref().is_some_and(|set| set.connection_id == connection_id) {
                self.clear_engine_activity(now);
            }
            self.presence.disconnect(connection_id, now);
        }
        self.after_change(ctx);
    }
}

impl PresenceActor {
    /// Clears the engine's activity line unless someone replaced it since.
    fn clear_engine_activity(&mut self, now: DateTime<Utc>) {
        if let Some(set) = self.engine_activity.take() {
            if self.presence.activity() == Some(set.text.as_str()) {
                // Clearing cannot be refused.
                let _ = self.presence.set_activity(None, now);
            }
        }
    }
}

/// A frame came from one of the user's sockets.
#[derive(Message, Serialize, Deserialize)]
#[rtype(result = "()")]
#[serde(rename_all = "camelCase")]
pub struct Touch {
    pub connection_id: Uuid,
}

impl Handler<Touch> for PresenceActor {
    type Result = ();

    fn handle(&mut self, msg: Touch, ctx: &mut Context<Self>) {
        if self.orphaned {
            return self.forward(msg);
        }
        self.presence.touch(msg.connection_id, self.now());
        self.after_change(ctx);
    }
}

/// The user changes their status or activity (`update-presence`, or
/// `PUT /api/presence/status` with no socket). Answers the user's own view.
#[derive(Message, Serialize, Deserialize)]
#[rtype(result = "AppResult<UserPresenceView>")]
#[serde(rename_all = "camelCase")]
pub struct Update {
    /// The socket it came from, which also counts as activity.
    pub connection_id: Option<Uuid>,
    pub change: PresenceChange,
}

impl Handler<Update> for PresenceActor {
    type Result = AppResult<UserPresenceView>;

    fn handle(&mut self, msg: Update, ctx: &mut Context<Self>) -> Self::Result {
        if self.orphaned {
            return Err(presence_unavailable()); // the caller retries with the registry's actor
        }
        let now = self.now();
        if let Some(connection_id) = msg.connection_id {
            self.presence.touch(connection_id, now);
        }
        let sets_activity = msg.change.activity.is_some();
        let applied = self.presence.apply(msg.change, now);
        if applied.is_ok() && sets_activity && !self.presence.activity_is_automatic() {
            // The user's own line wins; leaving the session must not clear it.
            // (The automatic line sent back unchanged stays the engine's.)
            self.engine_activity = None;
        }
        self.after_change(ctx);
        applied?;
        Ok(self.own_view())
    }
}

/// A socket joined (`title: Some`) or left (`None`) a live session.
#[derive(Message, Serialize, Deserialize)]
#[rtype(result = "()")]
#[serde(rename_all = "camelCase")]
pub struct SessionActivity {
    pub connection_id: Uuid,
    pub session_id: Uuid,
    pub title: Option<String>,
}

impl Handler<SessionActivity> for PresenceActor {
    type Result = ();

    fn handle(&mut self, msg: SessionActivity, ctx: &mut Context<Self>) {
        if self.orphaned {
            return self.forward(msg);
        }
        let now = self.now();
        match msg.title {
            Some(title) => {
                let text = live_session_activity(&title);
                // Fits by construction; a refusal would only keep the old line.
                if self.presence.set_automatic_activity(text.clone(), now).is_ok() {
                    self.engine_activity =
                        Some(EngineActivity { connection_id: msg.connection_id, session_id: msg.session_id, text });
                }
            }
            None => {
                if self.engine_activity.as_ref().is_some_and(|set| set.session_id == msg.session_id) {
                    self.clear_engine_activity(now);
                }
            }
        }
        self.after_change(ctx);
    }
}

/// New privacy settings (fields left out keep their value): answered once
/// stored, then in force (and pushed).
#[derive(Message, Serialize, Deserialize)]
#[rtype(result = "AppResult<PrivacySettings>")]
pub struct SetPrivacy(pub PrivacyChange);

impl Handler<SetPrivacy> for PresenceActor {
    type Result = ResponseActFuture<Self, AppResult<PrivacySettings>>;

    fn handle(&mut self, SetPrivacy(change): SetPrivacy, _: &mut Context<Self>) -> Self::Result {
        if self.orphaned {
            return Box::pin(actix::fut::ready(Err(presence_unavailable())));
        }
        // Built on the last request, not the last commit, so two quick partial
        // changes both count. Writes commit in order, so they apply in order.
        let settings = change.applied_to(self.privacy_wanted);
        self.privacy_wanted = settings;
        let row = PresencePrivacyRow {
            user_id: self.user_id.to_string(),
            hide_activity: settings.hide_activity,
            hide_last_seen: settings.hide_last_seen,
            appear_offline: settings.appear_offline,
        };
        let Some(registry) = self.registry.upgrade() else {
            return Box::pin(actix::fut::ready(Err(presence_unavailable())));
        };
        let persistence = registry.deps.persistence.clone();
        let stored = async move { persistence.write(move |conn| db::presence::store_privacy(conn, &row)).await };
        self.privacy_writes += 1;
        Box::pin(stored.into_actor(self).map(move |result, act, ctx| {
            act.privacy_writes -= 1;
            if let Err(err) = result {
                act.privacy_wanted = act.presence.privacy();
                return Err(err.into());
            }
            act.presence.set_privacy(settings);
            act.after_change(ctx);
            Ok(settings)
        }))
    }
}

/// Both views of the user now, for REST.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PresenceSnapshot {
    /// What the user sees of themselves.
    pub own: UserPresenceView,
    /// What others see.
    pub for_watchers: UserPresenceView,
}

/// Asks for a [`PresenceSnapshot`]; `None` from an orphan.
#[derive(Message)]
#[rtype(result = "Option<PresenceSnapshot>")]
pub struct Snapshot;

impl Handler<Snapshot> for PresenceActor {
    type Result = MessageResult<Snapshot>;

    fn handle(&mut self, _: Snapshot, _: &mut Context<Self>) -> Self::Result {
        if self.orphaned {
            return MessageResult(None);
        }
        let now = self.now();
        let view = |view| UserPresenceView::new(self.user_id, &self.name, view);
        MessageResult(Some(PresenceSnapshot {
            own: view(self.presence.view_for_self(now)).with_own(self.presence.own_view(now)),
            for_watchers: view(self.presence.view_for_watcher(now)),
        }))
    }
}

/// Look at the clock now: idling and expiries normally wait for the actor's
/// real-time timer; tests that move a manual clock send this instead.
#[derive(Message, Clone, Copy)]
#[rtype(result = "()")]
pub struct Reevaluate;

impl Handler<Reevaluate> for PresenceActor {
    type Result = ();

    fn handle(&mut self, msg: Reevaluate, ctx: &mut Context<Self>) {
        if self.orphaned {
            return self.forward(msg);
        }
        self.after_change(ctx);
    }
}

// ---- The calls the rest of the engine uses -------------------------------
// With several nodes each goes to the node that holds the user's presence
// (`calls`); on one node, or on that node, straight to the actor.

/// A socket opened.
pub fn connected(registry: &Arc<Registry>, user_id: Uuid, connection_id: Uuid) {
    if calls::held_elsewhere(registry, user_id) {
        return calls::tell(registry, user_id, calls::PresenceCall::Connect(Connect { connection_id, node: None }));
    }
    connected_here(registry, user_id, connection_id, None);
}

/// [`connected`] on this node. Sent with retries: if the actor found stops
/// in between (its linger ended), the next lookup starts a fresh one.
fn connected_here(registry: &Arc<Registry>, user_id: Uuid, connection_id: Uuid, node: Option<Uuid>) {
    let registry = Arc::clone(registry);
    actix::spawn(async move {
        for _ in 0..ATTEMPTS {
            // The address is dropped before the await: a stopping actor must
            // not be kept alive (and restarted) by our waiting.
            let sent = registry.presence(user_id).send(Connect { connection_id, node });
            if sent.await.is_ok() {
                return;
            }
        }
        log::error!("presence of {user_id}: connection {connection_id} could not be announced");
    });
}

/// A socket closed. Nothing to tell if the actor is gone: a fresh one counts
/// only the sockets the registry still lists.
pub fn disconnected(registry: &Registry, user_id: Uuid, connection_id: Uuid) {
    if let Some(addr) = registry.presence.existing(user_id) {
        addr.do_send(Disconnected { connection_id });
    } else if registry.cluster.is_some() {
        calls::tell_if_alive(registry, user_id, calls::PresenceCall::Disconnected(Disconnected { connection_id }));
    }
}

/// Counts a socket's frames as activity, at most once per second, so the
/// presence actor hears of a busy socket only occasionally.
#[derive(Debug, Default)]
pub struct TouchThrottle {
    last: Option<Instant>,
}

impl TouchThrottle {
    /// Tells the user's presence actor (starting one if it died) when due.
    pub fn touch(&mut self, registry: &Arc<Registry>, user_id: Uuid, connection_id: Uuid) {
        let now = Instant::now();
        if self.last.is_some_and(|last| now.duration_since(last) < TOUCH_EVERY) {
            return;
        }
        self.last = Some(now);
        if calls::held_elsewhere(registry, user_id) {
            return calls::tell(registry, user_id, calls::PresenceCall::Touch(Touch { connection_id }));
        }
        registry.presence(user_id).do_send(Touch { connection_id });
    }
}

/// Applies a change to the user's presence and answers their own view. The
/// first attempt is sent now, not when the future is polled, so changes from
/// one socket reach the actor in frame order.
pub fn update(
    registry: &Arc<Registry>,
    user_id: Uuid,
    connection_id: Option<Uuid>,
    change: PresenceChange,
) -> futures_util::future::LocalBoxFuture<'static, AppResult<UserPresenceView>> {
    if calls::held_elsewhere(registry, user_id) {
        return calls::ask(registry, user_id, calls::PresenceCall::Update(Update { connection_id, change }));
    }
    Box::pin(update_here(registry, user_id, connection_id, change))
}

/// [`update`] on this node.
fn update_here(
    registry: &Arc<Registry>,
    user_id: Uuid,
    connection_id: Option<Uuid>,
    change: PresenceChange,
) -> impl std::future::Future<Output = AppResult<UserPresenceView>> + 'static {
    let first = registry.presence(user_id).send(Update { connection_id, change: change.clone() });
    let registry = Arc::clone(registry);
    async move {
        let mut sent = first;
        for attempt in 1..=ATTEMPTS {
            match sent.await {
                Ok(Err(err)) if err.code() == UNAVAILABLE => {}
                Ok(result) => return result,
                Err(_) => {} // stopped meanwhile: the next lookup starts a fresh one
            }
            if attempt == ATTEMPTS {
                break;
            }
            sent = registry.presence(user_id).send(Update { connection_id, change: change.clone() });
        }
        Err(presence_unavailable())
    }
}

/// Stores and applies new privacy settings.
pub async fn set_privacy(registry: &Arc<Registry>, user_id: Uuid, change: PrivacyChange) -> AppResult<PrivacySettings> {
    if calls::held_elsewhere(registry, user_id) {
        return calls::ask(registry, user_id, calls::PresenceCall::Privacy(SetPrivacy(change))).await;
    }
    set_privacy_here(registry, user_id, change).await
}

/// [`set_privacy`] on this node.
async fn set_privacy_here(
    registry: &Arc<Registry>,
    user_id: Uuid,
    change: PrivacyChange,
) -> AppResult<PrivacySettings> {
    for _ in 0..ATTEMPTS {
        let sent = registry.presence(user_id).send(SetPrivacy(change));
        match sent.await {
            Ok(Err(err)) if err.code() == UNAVAILABLE => continue,
            Ok(result) => return result,
            Err(_) => continue,
        }
    }
    Err(presence_unavailable())
}

/// Both views of a user who has a live actor (on any node); `None` for
/// everyone else (offline: answer from the stored row).
pub async fn snapshot(registry: &Registry, user_id: Uuid) -> Option<PresenceSnapshot> {
    if registry.presence.existing(user_id).is_none() {
        if let Some(cluster) = &registry.cluster {
            return calls::snapshot_elsewhere(cluster, user_id).await;
        }
    }
    snapshot_here(registry, user_id).await
}

/// [`snapshot`] of an actor on this node.
async fn snapshot_here(registry: &Registry, user_id: Uuid) -> Option<PresenceSnapshot> {
    for _ in 0..ATTEMPTS {
        let sent = registry.presence.existing(user_id)?.send(Snapshot);
        if let Ok(Some(snapshot)) = sent.await {
            return Some(snapshot);
        }
    }
    None
}

/// What watchers see of each of `people` who is not offline now, by name.
/// Only users with a live presence actor can be online; the rest are skipped
/// without a message (so a group of thousands costs its online people only).
pub async fn not_offline(registry: &Registry, people: Vec<Uuid>) -> Vec<UserPresenceView> {
    let mut views: Vec<UserPresenceView> =
        live_views(registry, people).await.into_iter().filter(|view| view.status != PresenceStatus::Offline).collect();
    views.sort_by(|a, b| a.name.cmp(&b.name).then(a.user_id.cmp(&b.user_id)));
    views
}

/// What watchers see of each of `people` who has a live presence actor
/// (offline ones lingering included, whose row may not be stored yet), in no
/// particular order; the others are left out. With several nodes, each
/// other node is asked once for those it holds.
pub async fn live_views(registry: &Registry, people: Vec<Uuid>) -> Vec<UserPresenceView> {
    let (live, others): (Vec<Uuid>, Vec<Uuid>) =
        people.into_iter().partition(|id| registry.presence.existing(*id).is_some());
    let elsewhere = async {
        match &registry.cluster {
            Some(cluster) if !others.is_empty() => calls::views_elsewhere(cluster, others).await,
            _ => Vec::new(),
        }
    };
    let (mut views, elsewhere) = tokio::join!(views_here(registry, live), elsewhere);
    views.extend(elsewhere);
    views
}

/// [`live_views`] of the actors on this node.
pub(crate) async fn views_here(registry: &Registry, people: Vec<Uuid>) -> Vec<UserPresenceView> {
    let live = people.into_iter().filter(|id| registry.presence.existing(*id).is_some());
    let snapshots = futures_util::future::join_all(live.map(|id| snapshot_here(registry, id))).await;
    snapshots.into_iter().flatten().map(|snapshot| snapshot.for_watchers).collect()
}

/// A socket entered a live session: its activity line says so.
pub fn joined_session(registry: &Arc<Registry>, user_id: Uuid, connection_id: Uuid, session_id: Uuid, title: &str) {
    let activity = SessionActivity { connection_id, session_id, title: Some(title.to_string()) };
    if calls::held_elsewhere(registry, user_id) {
        return calls::tell(registry, user_id, calls::PresenceCall::Activity(activity));
    }
    registry.presence(user_id).do_send(activity);
}

/// A socket left a live session: the line the engine set goes, if still there.
pub fn left_session(registry: &Registry, user_id: Uuid, connection_id: Uuid, session_id: Uuid) {
    let activity = SessionActivity { connection_id, session_id, title: None };
    if let Some(addr) = registry.presence.existing(user_id) {
        addr.do_send(activity);
    } else if registry.cluster.is_some() {
        calls::tell_if_alive(registry, user_id, calls::PresenceCall::Activity(activity));
    }
}

const UNAVAILABLE: &str = "presence_unavailable";

fn presence_unavailable() -> AppError {
    AppError::unavailable(UNAVAILABLE, "Presence is restarting; please retry.")
}
