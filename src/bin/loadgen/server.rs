//! What the server process costs: CPU time and resident memory from
//! /proc/PID when the server's pid is given, else memory from `/metrics`.

use crate::http::Target;

/// Linux reports utime and stime in clock ticks of USER_HZ, which is 100 on
/// every architecture Linux supports today (sysconf(_SC_CLK_TCK)).
const TICKS_PER_SECOND: f64 = 100.0;

/// One look at the server.
#[derive(Debug, Clone, Copy, Default)]
pub struct Snapshot {
    /// utime + stime, seconds (None without a pid).
    pub cpu_secs: Option<f64>,
    /// Resident memory, bytes.
    pub rss_bytes: Option<u64>,
    /// `classroom_ws_connections` from /metrics.
    pub ws_connections: Option<u64>,
}

/// Reads CPU from /proc/PID/stat and memory from /proc/PID/status (or /metrics).
pub async fn snapshot(target: &Target, pid: Option<u32>) -> Snapshot {
    let metrics = target.get_text("/metrics").await.ok();
    let metric = |name: &str| -> Option<f64> {
        metrics.as_deref()?.lines().find_map(|line| {
            let value = line.strip_prefix(name)?.strip_prefix(' ')?;
            value.trim().parse::<f64>().ok()
        })
    };
    let mut snap = Snapshot {
        cpu_secs: None,
        rss_bytes: metric("process_resident_memory_bytes").map(|v| v as u64),
        ws_connections: metric("classroom_ws_connections").map(|v| v as u64),
    };
    if let Some(pid) = pid {
        snap.cpu_secs = cpu_seconds(pid);
        if let Some(rss) = rss_bytes(pid) {
            snap.rss_bytes = Some(rss);
        }
    }
    snap
}

/// utime + stime of a process, in seconds.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; fields after it start past the last ')'.
    let after = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of the whole line are 12 and 13 after the name and state.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / TICKS_PER_SECOND)
}

/// VmRSS of a process, in bytes.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The soft limit on open files of this process (from /proc/self/limits).
pub fn own_fd_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|line| line.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// The machine's CPU time so far from /proc/stat, in ticks: (busy, all),
/// busy being everything but idle and iowait (over every core).
pub fn machine_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|line| line.starts_with("cpu "))?;
    let fields: Vec<u64> = line.split_whitespace().skip(1).filter_map(|f| f.parse().ok()).collect();
    let all: u64 = fields.iter().sum();
    let idle = fields.get(3)? + fields.get(4).copied().unwrap_or(0);
    Some((all - idle, all))
}
