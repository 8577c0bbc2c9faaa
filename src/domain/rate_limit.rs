//! Token bucket for the frames one connection may send, and the coalescer
//! that keeps news pushes to at most one per interval.

use std::time::{Duration, Instant};

/// Allows `rate` events per second on average and bursts of up to `burst`.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate_per_sec: f64,
    burst: f64,
    tokens: f64,
    refilled_at: Instant,
}

impl TokenBucket {
    pub fn new(rate_per_sec: f64, burst: f64, now: Instant) -> Self {
        let burst = burst.max(1.0);
        Self { rate_per_sec: rate_per_sec.max(0.0), burst, tokens: burst, refilled_at: now }
    }

    /// Takes one token if there is one.
    pub fn try_take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.refilled_at);
        self.tokens = (self.tokens + elapsed.as_secs_f64() * self.rate_per_sec).min(self.burst);
        self.refilled_at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Whether the bucket would be full at `now` (nothing taken lately).
    pub fn is_full(&self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.refilled_at);
        self.tokens + elapsed.as_secs_f64() * self.rate_per_sec >= self.burst
    }

    /// How long until the next token, for the error message.
    pub fn wait_hint(&self) -> Duration {
        if self.rate_per_sec <= 0.0 {
            return Duration::MAX;
        }
        Duration::from_secs_f64(((1.0 - self.tokens).max(0.0)) / self.rate_per_sec)
    }
}

/// At most one push per `gap`, and the latest news never lost: the first
/// news goes at once; news within the gap waits for one trailing push at
/// the gap's end, which carries everything that came meanwhile.
#[derive(Debug, Clone)]
pub struct Coalescer {
    /// The least time between two pushes.
    gap: Duration,
    /// The time the last push asks to wait (the gap, or more for a big one).
    last_gap: Duration,
    last_sent: Option<Instant>,
    waiting: bool,
}

/// What to do with news.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// Push now (then call [`Coalescer::sent`]).
    SendNow,
    /// Push after this long (then call [`Coalescer::sent`]).
    SendAfter(Duration),
    /// A push is already due: it will carry this news too.
    AlreadyDue,
}

impl Coalescer {
    pub fn new(gap: Duration) -> Self {
        Self { gap, last_gap: gap, last_sent: None, waiting: false }
    }

    pub fn offer(&mut self, now: Instant) -> Offer {
        if self.waiting {
            return Offer::AlreadyDue;
        }
        match self.last_sent.map(|last| now.saturating_duration_since(last)) {
            Some(elapsed) if elapsed < self.last_gap => {
                self.waiting = true;
                Offer::SendAfter(self.last_gap - elapsed)
            }
            _ => Offer::SendNow,
        }
    }

    /// The push went out.
    pub fn sent(&mut self, now: Instant) {
        self.last_sent = Some(now);
        self.last_gap = self.gap;
        self.waiting = false;
    }

    /// The push of `bytes` went out: the next waits the gap, or as long as
    /// `bytes` take at `bytes_per_sec` if longer, so a reader of big news
    /// (a long queue's whole list) is never sent more than that rate.
    pub fn sent_sized(&mut self, now: Instant, bytes: usize, bytes_per_sec: usize) {
        let by_size = Duration::from_secs_f64(bytes as f64 / bytes_per_sec.max(1) as f64);
        self.sent(now);
        self.last_gap = self.gap.max(by_size);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_the_rate_holds() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(10.0, 5.0, start);
        assert!((0..5).all(|_| bucket.try_take(start)), "the burst is allowed");
        assert!(!bucket.try_take(start), "the sixth at once is refused");
        // 100 ms at 10/s refills exactly one token.
        let later = start + Duration::from_millis(100);
        assert!(bucket.try_take(later));
        assert!(!bucket.try_take(later));
    }

    #[test]
    fn tokens_never_exceed_the_burst() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(10.0, 3.0, start);
        let much_later = start + Duration::from_secs(60);
        assert_eq!((0..10).filter(|_| bucket.try_take(much_later)).count(), 3);
    }

    #[test]
    fn a_coalescer_sends_the_first_news_at_once_and_the_rest_once_per_gap() {
        let start = Instant::now();
        let mut news = Coalescer::new(Duration::from_secs(1));
        assert_eq!(news.offer(start), Offer::SendNow);
        news.sent(start);
        let soon = start + Duration::from_millis(300);
        assert_eq!(news.offer(soon), Offer::SendAfter(Duration::from_millis(700)));
        assert_eq!(news.offer(soon + Duration::from_millis(100)), Offer::AlreadyDue, "one trailing push for all");
        let trailing = start + Duration::from_secs(1);
        news.sent(trailing);
        assert_eq!(news.offer(trailing + Duration::from_secs(2)), Offer::SendNow, "quiet long enough");
    }

    #[test]
    fn big_news_waits_as_long_as_its_bytes_take_at_the_rate() {
        let start = Instant::now();
        let mut news = Coalescer::new(Duration::from_millis(250));
        news.sent_sized(start, 10_000, 250_000);
        let later = start + Duration::from_millis(100);
        assert_eq!(news.offer(later), Offer::SendAfter(Duration::from_millis(150)), "small news: the gap");
        news.sent_sized(start, 500_000, 250_000);
        assert_eq!(news.offer(later), Offer::SendAfter(Duration::from_millis(1900)), "500 KB at 250 KB/s: 2 s");
        news.sent(start);
        assert_eq!(news.offer(later), Offer::SendAfter(Duration::from_millis(150)), "a plain push: the gap again");
    }
}
