//! Tests of the real server binary as a child process: SIGTERM and
//! `kill -9`, the database cut off under load, a reconnect storm of a
//! thousand sockets, memory under a thousand sign-ins at once, two nodes behind
//! HAProxy. A test binary of their own, because cargo runs test
//! binaries one after another: their bursts of CPU and sockets do not
//! starve the timing of the `api` suite's tests.

// The `api` suite's clients; not every helper is used here.
#[allow(dead_code)]
#[path = "../api/helpers.rs"]
mod helpers;

mod abuse;
mod balanced;
mod faults;
mod nodes;
mod process;
mod shutdown;
