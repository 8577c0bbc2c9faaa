//! What every request handler can reach, built once at start-up.

use std::sync::Arc;

use crate::auth::Authenticator;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::db::Db;
use crate::engine::metrics::Metrics;
use crate::engine::persistence::Persistence;
use crate::engine::registry::Registry;
use crate::engine::scheduler::SchedulerActor;

pub struct AppState {
    pub config: Config,
    pub db: Db,
    pub clock: SharedClock,
    pub auth: Authenticator,
    /// Every write goes through here, REST and WebSocket alike.
    pub persistence: Persistence,
    pub registry: Arc<Registry>,
    pub metrics: Arc<Metrics>,
    /// Reminders and automatic ends; tests send it `Tick` to run a pass now.
    pub scheduler: actix::Addr<SchedulerActor>,
}
