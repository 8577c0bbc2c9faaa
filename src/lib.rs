//! The realtime engine of a learning platform: live sessions with chat,
//! presence, office hours and study groups, over REST and WebSocket.
//!
//! `startup::Application` builds everything from one `config::Config`;
//! `main.rs` is a thin command line around it.

pub mod auth;
pub mod clock;
pub mod config;
pub mod db;
pub mod domain;
pub mod engine;
pub mod error;
pub mod http;
pub mod protocol;
pub mod seed;
pub mod startup;
pub mod state;
