//! Fan-out of one message to 1,000 connection-like actors.
//!
//! The cost of one actix envelope per recipient: `try_send(Push(frame.clone()))`
//! into each recipient's bounded mailbox, the frame shared, not copied. It
//! was every frame's cost per socket; the connection's inbox
//! (`engine::connection`) now pays it once per burst of frames instead.
//! This measures that loop plus the recipients handling the push, with 1,000
//! actors spread over two arbiters (threads), as connection actors are
//! spread over the HTTP workers: the time from the first send until the
//! last recipient has handled its copy.
//!
//! `cargo bench --bench fanout` measures; under `cargo test --all-targets`
//! criterion runs it once as a smoke test.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use bytestring::ByteString;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tokio::sync::Notify;

/// One frame for one recipient.
#[derive(Message, Clone)]
#[rtype(result = "()")]
struct Push(ByteString);

const RECIPIENTS: usize = 1_000;

/// Stands in for a connection actor: takes the frame and counts it (a real
/// one hands it to its socket's write buffer).
struct Recipient {
    handled: Arc<AtomicUsize>,
    target: Arc<AtomicUsize>,
    done: Arc<Notify>,
    bytes: usize,
}

impl Actor for Recipient {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // As the connection actor's mailbox did before its inbox.
        ctx.set_mailbox_capacity(1024);
    }
}

impl Handler<Push> for Recipient {
    type Result = ();

    fn handle(&mut self, Push(frame): Push, _: &mut Context<Self>) {
        self.bytes += frame.len();
        let handled = self.handled.fetch_add(1, Ordering::AcqRel) + 1;
        if handled == self.target.load(Ordering::Acquire) {
            self.done.notify_one();
        }
    }
}

fn fanout(c: &mut Criterion) {
    let system = System::new();
    let handled = Arc::new(AtomicUsize::new(0));
    let target = Arc::new(AtomicUsize::new(usize::MAX));
    let done = Arc::new(Notify::new());
    let arbiters: Vec<Arbiter> = (0..2).map(|_| Arbiter::new()).collect();
    let recipients: Vec<actix::Recipient<Push>> = (0..RECIPIENTS)
        .map(|i| {
            let (handled, target, done) = (Arc::clone(&handled), Arc::clone(&target), Arc::clone(&done));
            let addr = Recipient::start_in_arbiter(&arbiters[i % arbiters.len()].handle(), move |_| Recipient {
                handled,
                target,
                done,
                bytes: 0,
            });
            addr.recipient()
        })
        .collect();
    let frame = ByteString::from("x".repeat(350));

    let mut group = c.benchmark_group("fanout");
    group.throughput(Throughput::Elements(RECIPIENTS as u64));
    group.bench_function("1000-recipients", |b| {
        b.iter_custom(|iters| {
            system.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    handled.store(0, Ordering::Release);
                    target.store(RECIPIENTS, Ordering::Release);
                    let started = Instant::now();
                    let waiting = done.notified();
                    for recipient in &recipients {
                        // Full mailboxes would be slow consumers in the room; none here.
                        let _ = recipient.try_send(Push(frame.clone()));
                    }
                    waiting.await;
                    total += started.elapsed();
                }
                total
            })
        })
    });
    group.finish();
    for arbiter in arbiters {
        arbiter.stop();
    }
}

criterion_group!(benches, fanout);
criterion_main!(benches);
