//! Counters and gauges of the engine, rendered in the Prometheus text format
//! at `/metrics`. Plain atomics: the hot paths only add.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[derive(Debug, Default)]
pub struct Metrics {
    /// WebSocket connections open now.
    pub connections_open: AtomicU64,
    /// Of `connections_open`, those speaking Socket.IO (`/socket.io/`).
    pub socket_io_connections_open: AtomicU64,
    /// Of `socket_io_connections_open`, those polling over HTTP (not upgraded yet).
    pub socket_io_polling_open: AtomicU64,
    /// WebSocket connections accepted since start.
    pub connections_total: AtomicU64,
    /// Frames received from clients.
    pub frames_in: AtomicU64,
    /// Frames queued to clients.
    pub frames_out: AtomicU64,
    /// Frames refused by the per-connection rate limit.
    pub frames_rate_limited: AtomicU64,
    /// Sockets closed because they did not keep up with their outbound frames.
    pub slow_consumers_closed: AtomicU64,
    /// Writes buffered or being committed now.
    pub persist_queue_depth: AtomicU64,
    /// Batches committed since start.
    pub persist_batches: AtomicU64,
    /// Writes committed since start (refused ones not counted).
    pub persist_writes: AtomicU64,
    /// Size of the last batch committed.
    pub persist_last_batch_size: AtomicU64,
    /// Sum of commit times, in microseconds.
    pub persist_flush_micros: AtomicU64,
    /// Batches retried because the database was unreachable.
    pub persist_retries: AtomicU64,
    /// Writes refused because the buffer was full.
    pub persist_refused: AtomicU64,
    /// Room actors restarted after they died.
    pub room_restarts: AtomicU64,
    /// Publications sent to Redis (several nodes).
    pub broker_published: AtomicU64,
    /// Pipelines they went in, and the time Redis took for them.
    pub broker_publish_batches: AtomicU64,
    pub broker_publish_micros: AtomicU64,
    /// Messages received from Redis.
    pub broker_received: AtomicU64,
    /// Publications lost: Redis unreachable, or the queue to it full.
    pub broker_dropped: AtomicU64,
    /// Asks of other nodes skipped: the node let a call time out within the last heartbeat.
    pub silent_nodes_skipped: AtomicU64,
}

/// Point-in-time figures owned by others (registry sizes), passed in at render time.
pub struct Gauges {
    pub actors_by_kind: Vec<(&'static str, usize)>,
}

impl Metrics {
    /// A batch of `size` writes, of which `committed` were stored (the rest refused).
    pub fn record_batch(&self, size: usize, committed: usize, took: Duration) {
        self.persist_batches.fetch_add(1, Ordering::Relaxed);
        self.persist_writes.fetch_add(committed as u64, Ordering::Relaxed);
        self.persist_last_batch_size.store(size as u64, Ordering::Relaxed);
        self.persist_flush_micros.fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }

    pub fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::with_capacity(2048);
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let rows: [(&str, &str, &str, f64); 20] = [
            (
                "classroom_ws_connections",
                "gauge",
                "WebSocket connections open now.",
                get(&self.connections_open) as f64,
            ),
            (
                "classroom_ws_connections_total",
                "counter",
                "WebSocket connections accepted.",
                get(&self.connections_total) as f64,
            ),
            ("classroom_ws_frames_in_total", "counter", "Frames received from clients.", get(&self.frames_in) as f64),
            ("classroom_ws_frames_out_total", "counter", "Frames sent to clients.", get(&self.frames_out) as f64),
            (
                "classroom_ws_frames_rate_limited_total",
                "counter",
                "Frames refused by the rate limit.",
                get(&self.frames_rate_limited) as f64,
            ),
            (
                "classroom_ws_slow_consumers_closed_total",
                "counter",
                "Sockets closed for not keeping up.",
                get(&self.slow_consumers_closed) as f64,
            ),
            (
                "classroom_persist_queue_depth",
                "gauge",
                "Writes buffered or committing.",
                get(&self.persist_queue_depth) as f64,
            ),
            ("classroom_persist_batches_total", "counter", "Batches committed.", get(&self.persist_batches) as f64),
            ("classroom_persist_writes_total", "counter", "Writes committed.", get(&self.persist_writes) as f64),
            (
                "classroom_persist_last_batch_size",
                "gauge",
                "Writes in the last batch.",
                get(&self.persist_last_batch_size) as f64,
            ),
            (
                "classroom_persist_flush_seconds_total",
                "counter",
                "Time spent committing batches.",
                get(&self.persist_flush_micros) as f64 / 1e6,
            ),
            (
                "classroom_persist_retries_total",
                "counter",
                "Batches retried while the database was away.",
                get(&self.persist_retries) as f64,
            ),
            (
                "classroom_persist_refused_total",
                "counter",
                "Writes refused with a full buffer.",
                get(&self.persist_refused) as f64,
            ),
            (
                "classroom_room_restarts_total",
                "counter",
                "Room actors restarted after dying.",
                get(&self.room_restarts) as f64,
            ),
            (
                "classroom_broker_published_total",
                "counter",
                "Publications sent to Redis (several nodes).",
                get(&self.broker_published) as f64,
            ),
            (
                "classroom_broker_publish_batches_total",
                "counter",
                "Pipelines the publications went to Redis in.",
                get(&self.broker_publish_batches) as f64,
            ),
            (
                "classroom_broker_publish_seconds_total",
                "counter",
                "Time Redis took to take the pipelines.",
                get(&self.broker_publish_micros) as f64 / 1e6,
            ),
            (
                "classroom_broker_received_total",
                "counter",
                "Messages received from Redis.",
                get(&self.broker_received) as f64,
            ),
            (
                "classroom_cluster_silent_node_skips_total",
                "counter",
                "Asks of another node skipped because it let a call time out within the last heartbeat.",
                get(&self.silent_nodes_skipped) as f64,
            ),
            (
                "classroom_broker_dropped_total",
                "counter",
                "Publications lost: Redis unreachable or the queue to it full.",
                get(&self.broker_dropped) as f64,
            ),
        ];
        for (name, kind, help, value) in rows {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
        }
        let (open, socket_io) = (get(&self.connections_open), get(&self.socket_io_connections_open));
        let _ = writeln!(
            out,
            "# HELP classroom_ws_connections_by_protocol WebSocket connections open now, by what they speak.\n\
             # TYPE classroom_ws_connections_by_protocol gauge\n\
             classroom_ws_connections_by_protocol{{protocol=\"native\"}} {}\n\
             classroom_ws_connections_by_protocol{{protocol=\"socket.io\"}} {socket_io}",
            open.saturating_sub(socket_io)
        );
        let polling = get(&self.socket_io_polling_open);
        let _ = writeln!(
            out,
            "# HELP classroom_socket_io_connections_by_transport Socket.IO connections open now, by transport.\n\
             # TYPE classroom_socket_io_connections_by_transport gauge\n\
             classroom_socket_io_connections_by_transport{{transport=\"websocket\"}} {}\n\
             classroom_socket_io_connections_by_transport{{transport=\"polling\"}} {polling}",
            socket_io.saturating_sub(polling)
        );
        let _ = writeln!(out, "# HELP classroom_actors Live actors by kind.\n# TYPE classroom_actors gauge");
        for (kind, count) in &gauges.actors_by_kind {
            let _ = writeln!(out, "classroom_actors{{kind=\"{kind}\"}} {count}");
        }
        if let Some(rss) = resident_memory_bytes() {
            let _ = writeln!(
                out,
                "# HELP process_resident_memory_bytes Resident memory.\n# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes {rss}"
            );
        }
        out
    }
}

/// Resident set size from /proc (Linux); None elsewhere.
fn resident_memory_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}
