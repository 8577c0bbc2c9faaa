//! Lease renewal: what one heartbeat of a node costs Redis when the node
//! holds many leases (issue 16). Every presence online and every live room
//! is a lease, so a node with 20,000 people online renews 20,000 leases
//! every heartbeat (a third of `NODE_TIMEOUT_SECS`).
//!
//! A measurement, not a timed test. It connects a node's `Cluster` to the
//! Redis of `REDIS_URL` (database 9, emptied of its leases first and
//! after), takes N leases, checks that a renewal writes back the leases
//! Redis lost and reports those another node took, then times R renewals
//! and reads Redis's own counters around them: commands run and CPU used,
//! per renewal.
//!
//! `REDIS_URL=redis://127.0.0.1:6379 cargo bench --bench lease_renewal`
//! runs 20,000 leases; under `cargo test --all-targets` a small smoke run.
//! Without `REDIS_URL` it says so and returns.

use std::sync::Arc;
use std::time::{Duration, Instant};

use uuid::Uuid;

use classroom::engine::cluster::Cluster;
use classroom::engine::hub::Hub;
use classroom::engine::metrics::Metrics;

/// Redis's counters that matter here.
#[derive(Debug, Clone, Copy)]
struct RedisCounters {
    /// Commands run since Redis started (scripts' inner calls included).
    commands: u64,
    /// CPU seconds Redis used, user and system.
    cpu_secs: f64,
}

async fn counters(redis: &mut redis::aio::MultiplexedConnection) -> RedisCounters {
    let stats: String = redis::cmd("INFO").arg("commandstats").query_async(redis).await.expect("INFO");
    let cpu: String = redis::cmd("INFO").arg("cpu").query_async(redis).await.expect("INFO");
    let commands = stats
        .lines()
        .filter_map(|line| line.strip_prefix("cmdstat_"))
        .filter_map(|line| line.split("calls=").nth(1)?.split(',').next()?.parse::<u64>().ok())
        .sum();
    let cpu_secs = cpu
        .lines()
        .filter(|line| line.starts_with("used_cpu_sys:") || line.starts_with("used_cpu_user:"))
        .filter_map(|line| line.split(':').nth(1)?.trim().parse::<f64>().ok())
        .sum();
    RedisCounters { commands, cpu_secs }
}

/// Deletes every lease key of the bench's database.
async fn clear(redis: &mut redis::aio::MultiplexedConnection) {
    let _: () = redis::cmd("FLUSHDB").query_async(redis).await.expect("FLUSHDB");
}

fn main() {
    let Some(url) = std::env::var("REDIS_URL").ok().filter(|url| !url.is_empty()) else {
        return eprintln!("lease_renewal: REDIS_URL is not set; nothing measured");
    };
    let full = std::env::args().any(|arg| arg == "--bench");
    let (leases, runs) = if full { (20_000, 20) } else { (2_500, 2) };
    let authority_end = url.find("://").map_or(0, |at| at + 3);
    let base = url[authority_end..].find(['/', '?']).map_or(url.len(), |at| at + authority_end);
    let url = format!("{}/9", &url[..base]);

    actix::System::new().block_on(async move {
        let mut redis = redis::Client::open(url.as_str())
            .expect("REDIS_URL")
            .get_multiplexed_async_connection()
            .await
            .expect("Redis");
        clear(&mut redis).await;
        let metrics = Arc::new(Metrics::default());
        let node = Uuid::new_v4();
        let cluster =
            Cluster::connect(&url, node, Duration::from_secs(10), Arc::new(Hub::new(metrics.clone())), metrics)
                .await
                .expect("a node");
        let keys: Vec<String> = (0..leases).map(|_| format!("presence:{}", Uuid::new_v4())).collect();
        for key in &keys {
            assert_eq!(cluster.owner(key).await.expect("a lease"), node);
        }

        // Correct before fast: leases lost from Redis come back, leases
        // another node took are reported, across the script's chunks.
        let other = Uuid::new_v4().to_string();
        let mut taken = Vec::new();
        for (n, key) in keys.iter().enumerate() {
            let lease = format!("classroom:owner:{key}");
            if n % 7 == 0 {
                let _: () = redis::cmd("DEL").arg(&lease).query_async(&mut redis).await.expect("DEL");
            } else if n % 499 == 0 {
                let _: () = redis::cmd("SET").arg(&lease).arg(&other).query_async(&mut redis).await.expect("SET");
                taken.push(key.clone());
            }
        }
        let mut lost = cluster.reassert_leases().await.expect("renewed");
        lost.sort();
        taken.sort();
        assert_eq!(lost, taken, "the leases another node took, and only those");
        for key in keys.iter().step_by(7) {
            let holder: Option<String> =
                redis::cmd("GET").arg(format!("classroom:owner:{key}")).query_async(&mut redis).await.expect("GET");
            assert_eq!(holder, Some(node.to_string()), "{key} written back");
        }

        let before = counters(&mut redis).await;
        let mut times = Vec::new();
        for _ in 0..runs {
            let started = Instant::now();
            cluster.reassert_leases().await.expect("renewed");
            times.push(started.elapsed());
        }
        let after = counters(&mut redis).await;
        times.sort();
        // Two INFO calls are counted in `after`.
        let commands = (after.commands - before.commands).saturating_sub(2) as f64 / runs as f64;
        let cpu_ms = (after.cpu_secs - before.cpu_secs) * 1000.0 / runs as f64;
        println!(
            "lease renewal of {leases} leases, {runs} runs: median {:.1} ms, max {:.1} ms; \
             Redis: {commands:.0} commands and {cpu_ms:.1} ms of CPU per renewal",
            times[runs / 2].as_secs_f64() * 1000.0,
            times[runs - 1].as_secs_f64() * 1000.0,
        );
        clear(&mut redis).await;
    });
}
