//! What the harness counts. Each worker thread records into a tally of its
//! own (a mutex nobody else touches until the coordinator sums them), so a
//! frame costs a few additions and one histogram increment, with no atomic
//! shared across threads on the hot path.

use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Instant;

use hdrhistogram::Histogram;

/// Highest latency a histogram holds, in microseconds (a minute).
const MAX_MICROS: u64 = 60_000_000;

/// A latency histogram in microseconds, 1 µs to a minute, 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    // Bounds are constants that hdrhistogram accepts (low >= 1, high >= 2 * low, 3 digits).
    Histogram::new_with_bounds(1, MAX_MICROS, 3).unwrap_or_else(|_| unreachable!("valid histogram bounds"))
}

/// Microseconds since the harness started, on the monotonic clock every
/// connection task shares (sender and receivers run in one process).
pub fn now_micros() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_micros() as u64
}

/// Counts of one measured step (or the part of it one thread saw).
pub struct Tally {
    /// Send to delivery, microseconds.
    pub e2e: Histogram<u64>,
    /// Send to durable ack, microseconds.
    pub ack: Histogram<u64>,
    /// Messages sent in the step.
    pub sent: u64,
    /// Deliveries the sends of this step should cause (room size per accepted message).
    pub expected: u64,
    /// `new-message` frames of this step received.
    pub received: u64,
    /// Acks of this step's messages, ok and errors.
    pub acks_ok: u64,
    pub acks_err: u64,
    /// `new-message` frames of an earlier step that arrived during this one.
    pub late: u64,
    /// Every other text frame (joins, leaves, presence...).
    pub other_frames: u64,
    /// A few ack errors, for the report.
    pub error_samples: Vec<String>,
}

impl Tally {
    fn new() -> Self {
        Self {
            e2e: histogram(),
            ack: histogram(),
            sent: 0,
            expected: 0,
            received: 0,
            acks_ok: 0,
            acks_err: 0,
            late: 0,
            other_frames: 0,
            error_samples: Vec::new(),
        }
    }

    fn absorb(&mut self, other: &Tally) {
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.e2e.add(&other.e2e);
        let _ = self.ack.add(&other.ack);
        self.sent += other.sent;
        self.expected += other.expected;
        self.received += other.received;
        self.acks_ok += other.acks_ok;
        self.acks_err += other.acks_err;
        self.late += other.late;
        self.other_frames += other.other_frames;
        for sample in &other.error_samples {
            if self.error_samples.len() < 5 {
                self.error_samples.push(sample.clone());
            }
        }
    }

    /// Notes an ack error (keeps the first few texts).
    pub fn ack_error(&mut self, frame: &[u8]) {
        self.acks_err += 1;
        if self.error_samples.len() < 5 {
            self.error_samples.push(String::from_utf8_lossy(&frame[..frame.len().min(200)]).into_owned());
        }
    }
}

static ALL: Mutex<Vec<Arc<Mutex<Tally>>>> = Mutex::new(Vec::new());

thread_local! {
    static LOCAL: Arc<Mutex<Tally>> = {
        let tally = Arc::new(Mutex::new(Tally::new()));
        lock(&ALL).push(Arc::clone(&tally));
        tally
    };
}

/// A poisoned lock only means another thread panicked mid-count; the counts are still usable.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs `f` with this thread's tally.
pub fn with_tally<R>(f: impl FnOnce(&mut Tally) -> R) -> R {
    LOCAL.with(|tally| f(&mut lock(tally)))
}

/// The sum over every thread; with `reset`, every thread starts over.
pub fn collect(reset: bool) -> Tally {
    let mut total = Tally::new();
    for tally in lock(&ALL).iter() {
        let mut tally = lock(tally);
        total.absorb(&tally);
        if reset {
            *tally = Tally::new();
        }
    }
    total
}

/// Counters only, for the progress line (cheap: no histogram copy).
pub fn peek() -> (u64, u64, u64, u64) {
    let (mut sent, mut received, mut acks, mut other) = (0, 0, 0, 0);
    for tally in lock(&ALL).iter() {
        let tally = lock(tally);
        sent += tally.sent;
        received += tally.received + tally.late;
        acks += tally.acks_ok + tally.acks_err;
        other += tally.other_frames;
    }
    (sent, received, acks, other)
}

/// p50, p90, p99, max of a histogram of microseconds, in milliseconds.
pub fn percentiles_ms(h: &Histogram<u64>) -> [f64; 4] {
    if h.is_empty() {
        return [f64::NAN; 4];
    }
    let ms = |us: u64| us as f64 / 1000.0;
    [ms(h.value_at_quantile(0.50)), ms(h.value_at_quantile(0.90)), ms(h.value_at_quantile(0.99)), ms(h.max())]
}
