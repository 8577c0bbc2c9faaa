//! Integration tests: a real server on a random port, real HTTP and
//! WebSocket clients, a fresh database per test (a SQLite file, or with
//! DATABASE_URL=postgres://... a fresh PostgreSQL schema).

mod abuse;
mod auth;
mod calendar;
mod chat_rooms;
mod cluster;
mod courses;
mod helpers;
mod matrix;
mod office_hours;
mod permissions;
mod persistence;
mod presence;
mod rooms;
mod sessions;
mod socket_io;
mod socket_io_polling;
mod study_groups;
mod ui;
mod ws;
