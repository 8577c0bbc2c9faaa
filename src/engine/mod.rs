//! The actor engine: a connection actor per socket, a room actor per chat
//! room (spawned lazily by the registry, on one of several arbiters), a
//! presence actor per user, the broker every fan-out goes through, and the
//! persistence actor that batches every write.

pub mod broker;
pub mod cluster;
pub mod connection;
pub mod contacts;
pub mod hub;
pub mod live_session;
pub mod metrics;
pub mod office_hours;
pub mod persistence;
pub mod polling;
pub mod presence;
pub mod registry;
pub mod room;
pub mod scheduler;
pub mod socket;
pub mod study_group;

use std::sync::Arc;

use actix::Message;

use crate::clock::SharedClock;
use crate::config::Config;
use crate::db::Db;
use metrics::Metrics;
use persistence::Persistence;

/// Why the server closes a socket; each reason has one close code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisconnectReason {
    /// The server is stopping (SIGTERM): reconnect elsewhere or later.
    ServerShutdown,
    /// A frame above the size limit.
    FrameTooLarge,
    /// Nothing heard from the client for longer than the timeout.
    HeartbeatTimeout,
    /// The client did not read its frames fast enough.
    SlowConsumer,
    /// The token the socket was opened with was revoked (logout).
    TokenRevoked,
    /// The token the socket was opened with expired.
    TokenExpired,
    /// The client kept sending frames that were refused (garbage, floods).
    BadFrames,
    /// Frames for this socket may have been lost between nodes (Redis
    /// restarted, or a node lost it for a while): reconnect and rejoin with
    /// `sinceMessageId` to catch up from the database.
    MissedFrames,
}

impl DisconnectReason {
    /// RFC 6455 codes where one fits, 4000-4999 (application) otherwise.
    pub fn code(self) -> u16 {
        match self {
            DisconnectReason::ServerShutdown => 1001,
            DisconnectReason::FrameTooLarge => 1009,
            DisconnectReason::HeartbeatTimeout => 4001,
            DisconnectReason::SlowConsumer => 4002,
            DisconnectReason::TokenRevoked => 4003,
            DisconnectReason::TokenExpired => 4004,
            DisconnectReason::BadFrames => 4005,
            // RFC 6455's "service restart": come back, the service is up.
            DisconnectReason::MissedFrames => 1012,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DisconnectReason::ServerShutdown => "server_shutdown",
            DisconnectReason::FrameTooLarge => "frame_too_large",
            DisconnectReason::HeartbeatTimeout => "heartbeat_timeout",
            DisconnectReason::SlowConsumer => "slow_consumer",
            DisconnectReason::TokenRevoked => "token_revoked",
            DisconnectReason::TokenExpired => "token_expired",
            DisconnectReason::BadFrames => "bad_frames",
            DisconnectReason::MissedFrames => "missed_frames",
        }
    }

    /// Whether a client should come back at once by itself. Not after a
    /// revoked or expired token (it needs a new one) or a stream of refused
    /// frames (it would send them again).
    pub fn worth_reconnecting(self) -> bool {
        !matches!(
            self,
            DisconnectReason::TokenRevoked | DisconnectReason::TokenExpired | DisconnectReason::BadFrames
        )
    }
}

#[derive(Message, Clone, Copy)]
#[rtype(result = "()")]
pub struct Disconnect(pub DisconnectReason);

/// What every actor of the engine may need.
pub struct EngineDeps {
    pub config: Config,
    pub db: Db,
    pub clock: SharedClock,
    pub persistence: Persistence,
    pub metrics: Arc<Metrics>,
}
