//! One `Config` for the whole server. Every setting is an environment
//! variable and a flag of the same name; every default just works on a fresh
//! machine (embedded SQLite under `./data`, loopback only).

use std::time::Duration;

use clap::Args;

/// Which database engine a `DATABASE_URL` points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone, Args)]
pub struct Config {
    /// `postgres://...` for PostgreSQL; anything else is a SQLite file path
    /// (an optional `sqlite://` prefix is accepted).
    #[arg(long, env = "DATABASE_URL", default_value = "./data/classroom.db")]
    pub database_url: String,

    /// Address the HTTP and WebSocket server listens on.
    #[arg(long, env = "BIND_ADDR", default_value = "127.0.0.1:8080")]
    pub bind_addr: String,

    /// Connections in the database pool (reads, and the persistence actor's writes).
    #[arg(long, env = "DB_POOL_SIZE", default_value_t = 8)]
    pub db_pool_size: u32,

    /// How long a read may queue for a pooled connection before it is
    /// answered `database_unavailable`: in a join storm reads queue behind
    /// each other, and a join that waits a few seconds beats one refused.
    #[arg(long, env = "DB_READ_WAIT_SECS", default_value_t = 10)]
    pub db_read_wait_secs: u64,

    /// HTTP worker threads; 0 means one per core.
    #[arg(long, env = "HTTP_WORKERS", default_value_t = 0)]
    pub http_workers: usize,

    /// Threads that host room actors; 0 means one per core.
    #[arg(long, env = "ROOM_ARBITERS", default_value_t = 0)]
    pub room_arbiters: usize,

    /// Password hashes (login, register) computed at once; each takes about
    /// 19 MiB while it runs. 0 means two per core. Others wait up to 2 s,
    /// then get 503 with `Retry-After`.
    #[arg(long, env = "PASSWORD_HASH_CONCURRENCY", default_value_t = 0)]
    pub password_hash_concurrency: usize,

    /// Login and register attempts one client address may make per minute
    /// (as a burst, then refilling); past it, 429. 0 turns the limit off.
    #[arg(long, env = "AUTH_ATTEMPTS_PER_CLIENT", default_value_t = 60)]
    pub auth_attempts_per_client: u32,

    /// Login attempts per minute for one account (email), from anywhere. 0 turns it off.
    #[arg(long, env = "AUTH_ATTEMPTS_PER_ACCOUNT", default_value_t = 10)]
    pub auth_attempts_per_account: u32,

    /// A REST request must be read and answered within this many seconds
    /// (a body sent a byte at a time gets 408 instead of a worker forever);
    /// its headers within this or 5 s, whichever is less.
    #[arg(long, env = "HTTP_REQUEST_TIMEOUT_SECS", default_value_t = 30)]
    pub http_request_timeout_secs: u64,

    /// How long a login token stays valid, in seconds.
    #[arg(long, env = "TOKEN_TTL_SECS", default_value_t = 7 * 24 * 3600)]
    pub token_ttl_secs: i64,

    /// Largest WebSocket frame accepted, in bytes; a larger one closes the socket with 1009.
    #[arg(long, env = "WS_MAX_FRAME_BYTES", default_value_t = 64 * 1024)]
    pub ws_max_frame_bytes: usize,

    /// How often the server pings each socket, in milliseconds.
    #[arg(long, env = "WS_PING_INTERVAL_MS", default_value_t = 5_000)]
    pub ws_ping_interval_ms: u64,

    /// A socket that sends nothing (not even a pong) for this long is closed.
    #[arg(long, env = "WS_CLIENT_TIMEOUT_MS", default_value_t = 15_000)]
    pub ws_client_timeout_ms: u64,

    /// Frames per second one connection may send, sustained.
    #[arg(long, env = "WS_RATE_PER_SEC", default_value_t = 20.0)]
    pub ws_rate_per_sec: f64,

    /// Frames one connection may send in a burst above the sustained rate.
    #[arg(long, env = "WS_RATE_BURST", default_value_t = 40.0)]
    pub ws_rate_burst: f64,

    /// Frames handed to one socket and not yet taken by its connection actor
    /// (its inbox) before it counts as a slow consumer and is closed; the
    /// inbox's bytes count against `WS_OUTBOUND_BYTES` too. Large enough for
    /// a storm of a big room (everyone leaving at once is one frame each).
    #[arg(long, env = "WS_OUTBOUND_QUEUE", default_value_t = 16_384)]
    pub ws_outbound_queue: usize,

    /// Bytes written for one socket but not yet taken by its client (beyond
    /// what the kernel buffers) before it counts as a slow consumer and is closed.
    #[arg(long, env = "WS_OUTBOUND_BYTES", default_value_t = 1024 * 1024)]
    pub ws_outbound_bytes: usize,

    /// Open sockets one user may hold at once.
    #[arg(long, env = "MAX_CONNECTIONS_PER_USER", default_value_t = 10)]
    pub max_connections_per_user: usize,

    /// Most writes the persistence actor commits in one transaction.
    #[arg(long, env = "PERSIST_BATCH_MAX", default_value_t = 1_000)]
    pub persist_batch_max: usize,

    /// How long the first write of a batch waits for company, in milliseconds.
    #[arg(long, env = "PERSIST_FLUSH_MS", default_value_t = 2)]
    pub persist_flush_ms: u64,

    /// Writes held in memory (waiting or being retried) before new ones are refused.
    #[arg(long, env = "PERSIST_QUEUE_CAPACITY", default_value_t = 100_000)]
    pub persist_queue_capacity: usize,

    /// Longest pause between retries while the database is unreachable, in milliseconds.
    #[arg(long, env = "PERSIST_RETRY_MAX_MS", default_value_t = 5_000)]
    pub persist_retry_max_ms: u64,

    /// Recent messages each room keeps in memory: reconnecting clients catch
    /// up from them, and resends of their `clientMsgId` are answered without
    /// the database.
    #[arg(long, env = "CHAT_WINDOW_MESSAGES", default_value_t = 256)]
    pub chat_window_messages: usize,

    /// How many minutes before the scheduled start students may join a session.
    #[arg(long, env = "JOIN_EARLY_MINUTES", default_value_t = 5)]
    pub join_early_minutes: i64,

    /// An active session is ended automatically this many minutes after its scheduled end.
    #[arg(long, env = "AUTO_END_GRACE_MINUTES", default_value_t = 30)]
    pub auto_end_grace_minutes: i64,

    /// How often the scheduler looks for due reminders and overdue sessions, in seconds.
    #[arg(long, env = "SCHEDULER_INTERVAL_SECS", default_value_t = 15)]
    pub scheduler_interval_secs: u64,

    /// On SIGTERM, how long to wait for buffered writes to reach the database.
    #[arg(long, env = "SHUTDOWN_TIMEOUT_SECS", default_value_t = 30)]
    pub shutdown_timeout_secs: u64,

    /// A connected user with no activity from any of their sockets for this
    /// many seconds shows as `away`.
    #[arg(long, env = "PRESENCE_IDLE_SECS", default_value_t = 300)]
    pub presence_idle_secs: u64,

    /// How long a user's presence actor stays after their last socket closed, in seconds.
    #[arg(long, env = "PRESENCE_LINGER_SECS", default_value_t = 60)]
    pub presence_linger_secs: u64,

    /// Office hours: the places a student moves back when deferring their turn.
    #[arg(long, env = "OFFICE_HOURS_DEFER_PLACES", default_value_t = 3)]
    pub office_hours_defer_places: usize,

    /// Office hours: the help time assumed (minutes) before any help was timed.
    #[arg(long, env = "OFFICE_HOURS_DEFAULT_HELP_MINUTES", default_value_t = 5)]
    pub office_hours_default_help_minutes: i64,

    /// Office hours: how long a waiting student may have no open socket (seconds).
    #[arg(long, env = "OFFICE_HOURS_ABSENT_GRACE_SECS", default_value_t = 120)]
    pub office_hours_absent_grace_secs: i64,

    /// Office hours: a private room with no message for this long completes by itself (minutes).
    #[arg(long, env = "OFFICE_HOURS_ROOM_IDLE_MINUTES", default_value_t = 15)]
    pub office_hours_room_idle_minutes: i64,

    /// Office hours: how often a queue looks at the schedule, absences and idle rooms (seconds).
    #[arg(long, env = "OFFICE_HOURS_SWEEP_SECS", default_value_t = 5)]
    pub office_hours_sweep_secs: u64,

    /// `redis://host:port` joins this node to the others on that Redis
    /// (publish/subscribe, room ownership, node heartbeats); unset, the
    /// node is alone and needs nothing else.
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: Option<String>,

    /// This node's name in logs, metrics and Redis; a random id when unset.
    #[arg(long, env = "NODE_ID")]
    pub node_id: Option<uuid::Uuid>,

    /// With several nodes: a node not heard of in Redis for this long is
    /// dead, and its users leave their rooms (seconds).
    #[arg(long, env = "NODE_TIMEOUT_SECS", default_value_t = 15)]
    pub node_timeout_secs: u64,
}

impl Config {
    /// The configuration from the environment alone, defaults elsewhere.
    pub fn from_env() -> Self {
        #[derive(clap::Parser)]
        struct Wrapper {
            #[command(flatten)]
            config: Config,
        }
        <Wrapper as clap::Parser>::parse_from(["classroom"]).config
    }

    pub fn backend(&self) -> Backend {
        backend_of(&self.database_url)
    }

    pub fn http_workers(&self) -> usize {
        if self.http_workers == 0 {
            num_cpus::get()
        } else {
            self.http_workers
        }
    }

    pub fn password_hash_concurrency(&self) -> usize {
        if self.password_hash_concurrency == 0 {
            2 * num_cpus::get()
        } else {
            self.password_hash_concurrency
        }
    }

    pub fn room_arbiters(&self) -> usize {
        if self.room_arbiters == 0 {
            num_cpus::get()
        } else {
            self.room_arbiters
        }
    }

    pub fn ws_ping_interval(&self) -> Duration {
        Duration::from_millis(self.ws_ping_interval_ms)
    }

    pub fn ws_client_timeout(&self) -> Duration {
        Duration::from_millis(self.ws_client_timeout_ms)
    }
}

pub fn backend_of(database_url: &str) -> Backend {
    if database_url.starts_with("postgres://") || database_url.starts_with("postgresql://") {
        Backend::Postgres
    } else {
        Backend::Sqlite
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_pick_the_backend() {
        assert_eq!(backend_of("postgres://127.0.0.1/test"), Backend::Postgres);
        assert_eq!(backend_of("postgresql://u@h/db"), Backend::Postgres);
        assert_eq!(backend_of("./data/classroom.db"), Backend::Sqlite);
        assert_eq!(backend_of("sqlite://x.db"), Backend::Sqlite);
    }
}
