//! The persistence actor: every write of the engine goes through here.
//!
//! Writes are buffered and committed in batches, one transaction each (group
//! commit): a batch leaves when `batch_max` writes are waiting or when the
//! first of them has lingered `linger`, and a batch that arrives while
//! another is committing leaves right after it. Each caller is answered only
//! after its write committed, so an acknowledged write is on disk.
//!
//! While the database is unreachable the batch goes back to the front of the
//! buffer and is retried with exponential back-off; nothing is dropped. The
//! buffer is bounded: past `capacity` new writes are refused at once with
//! `PersistError::Overloaded` rather than growing memory without end.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use tokio::sync::oneshot;

use crate::db::{AnyConnection, Pool, PooledConnection};
use crate::engine::metrics::Metrics;
use crate::error::AppError;

/// Why a write was not stored.
#[derive(Debug)]
pub enum PersistError {
    /// The buffer is full; the caller should try again later.
    Overloaded,
    /// The database refused this write itself (a constraint, a missing row).
    Rejected(DieselError),
    /// The persistence actor is gone (the server is stopping).
    Stopped,
}

impl PersistError {
    /// Whether the database refused the write for a duplicate key.
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, PersistError::Rejected(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)))
    }
}

impl From<PersistError> for AppError {
    fn from(err: PersistError) -> Self {
        match err {
            PersistError::Overloaded => AppError::unavailable(
                "persistence_overloaded",
                "The server is saving a backlog of writes; please retry in a moment.",
            ),
            PersistError::Rejected(DieselError::NotFound) => AppError::not_found("record"),
            PersistError::Rejected(DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _)) => {
                AppError::not_found("referenced record")
            }
            PersistError::Rejected(other) => AppError::internal(other),
            PersistError::Stopped => AppError::unavailable("shutting_down", "The server is shutting down."),
        }
    }
}

/// Where the actor gets a connection. The pool in production; tests wrap it
/// to make the database unreachable for a while.
pub trait ConnectionSource: Send + Sync + 'static {
    fn connection(&self) -> Result<PooledConnection, String>;
}

impl ConnectionSource for Pool {
    fn connection(&self) -> Result<PooledConnection, String> {
        self.get().map_err(|err| err.to_string())
    }
}

/// Tuning of the batcher; see `Config` for the meaning of each.
#[derive(Debug, Clone)]
pub struct PersistSettings {
    pub batch_max: usize,
    pub linger: Duration,
    pub capacity: usize,
    pub retry_max: Duration,
}

/// A write waiting in the buffer. `apply` may run more than once (a batch
/// that hit a bad write is replayed write by write), so it must be a pure
/// function of the connection.
trait PendingWrite: Send {
    fn apply(&mut self, conn: &mut AnyConnection) -> QueryResult<()>;
    fn finish(self: Box<Self>, failure: Option<PersistError>);
}

struct TypedWrite<T, F> {
    op: F,
    value: Option<T>,
    reply: oneshot::Sender<Result<T, PersistError>>,
}

impl<T, F> PendingWrite for TypedWrite<T, F>
where
    T: Send + 'static,
    F: Fn(&mut AnyConnection) -> QueryResult<T> + Send + 'static,
{
    fn apply(&mut self, conn: &mut AnyConnection) -> QueryResult<()> {
        self.value = Some((self.op)(conn)?);
        Ok(())
    }

    fn finish(self: Box<Self>, failure: Option<PersistError>) {
        let this = *self;
        let result = match (failure, this.value) {
            (Some(err), _) => Err(err),
            (None, Some(value)) => Ok(value),
            (None, None) => Err(PersistError::Rejected(DieselError::RollbackTransaction)),
        };
        // The caller may have gone away (socket closed); the write is stored regardless.
        let _ = this.reply.send(result);
    }
}

type Batch = Vec<Box<dyn PendingWrite>>;

/// What committing a batch came to.
enum BatchOutcome {
    /// Committed; for each write, the error that refused it, if any.
    Committed(Vec<Option<DieselError>>),
    /// The database could not be reached or dropped the connection: retry.
    Unreachable(String),
}

/// Errors that say "the database is away", not "this write is wrong".
fn is_transient(err: &DieselError) -> bool {
    match err {
        DieselError::DatabaseError(kind, info) => match kind {
            DatabaseErrorKind::ClosedConnection
            | DatabaseErrorKind::UnableToSendCommand
            | DatabaseErrorKind::SerializationFailure => true,
            DatabaseErrorKind::Unknown => {
                let message = info.message().to_ascii_lowercase();
                [
                    "database is locked",
                    "disk i/o",
                    "unable to open",
                    "server closed",
                    "terminating connection",
                    "connection",
                ]
                .iter()
                .any(|needle| message.contains(needle))
            }
            _ => false,
        },
        DieselError::BrokenTransactionManager => true,
        _ => false,
    }
}

/// Commits one batch. Tries all writes in one transaction; if one of them is
/// refused, replays the batch with a savepoint per write so that only the
/// refused ones fail and the rest still commit together.
fn commit_batch(source: &dyn ConnectionSource, batch: &mut Batch) -> BatchOutcome {
    let mut conn = match source.connection() {
        Ok(conn) => conn,
        Err(reason) => return BatchOutcome::Unreachable(reason),
    };
    let all_at_once = conn.transaction(|c| batch.iter_mut().try_for_each(|write| write.apply(c)));
    match all_at_once {
        Ok(()) => return BatchOutcome::Committed((0..batch.len()).map(|_| None).collect()),
        Err(err) if is_transient(&err) => return BatchOutcome::Unreachable(err.to_string()),
        Err(_) => {}
    }
    let one_by_one = conn.transaction(|c| {
        let mut refusals = Vec::with_capacity(batch.len());
        for write in batch.iter_mut() {
            match c.transaction(|savepoint| write.apply(savepoint)) {
                Ok(()) => refusals.push(None),
                Err(err) if is_transient(&err) => return Err(err),
                Err(err) => refusals.push(Some(err)),
            }
        }
        Ok::<_, DieselError>(refusals)
    });
    match one_by_one {
        Ok(refusals) => BatchOutcome::Committed(refusals),
        Err(err) => BatchOutcome::Unreachable(err.to_string()),
    }
}

pub struct PersistenceActor {
    source: Arc<dyn ConnectionSource>,
    settings: PersistSettings,
    metrics: Arc<Metrics>,
    buffer: VecDeque<Box<dyn PendingWrite>>,
    /// Writes handed to the blocking pool and not yet answered.
    in_flight: usize,
    /// A linger timer or a back-off timer is pending.
    timer: Option<SpawnHandle>,
    /// Set while the database is unreachable: the next pause before a retry.
    backoff: Option<Duration>,
    /// Answered once buffer and flight are both empty (graceful shutdown).
    drain_waiters: Vec<oneshot::Sender<()>>,
}

impl PersistenceActor {
    pub fn new(source: Arc<dyn ConnectionSource>, settings: PersistSettings, metrics: Arc<Metrics>) -> Self {
        Self {
            source,
            settings,
            metrics,
            buffer: VecDeque::new(),
            in_flight: 0,
            timer: None,
            backoff: None,
            drain_waiters: Vec::new(),
        }
    }

    fn pending(&self) -> usize {
        self.buffer.len() + self.in_flight
    }

    fn publish_depth(&self) {
        self.metrics.persist_queue_depth.store(self.pending() as u64, Ordering::Relaxed);
    }

    /// Decides when the next batch leaves.
    fn schedule(&mut self, ctx: &mut Context<Self>) {
        if self.in_flight > 0 || self.buffer.is_empty() || self.timer.is_some() {
            return;
        }
        if let Some(pause) = self.backoff {
            self.timer = Some(ctx.run_later(pause, |act, ctx| {
                act.timer = None;
                act.flush(ctx);
            }));
        } else if self.buffer.len() >= self.settings.batch_max || self.settings.linger.is_zero() {
            self.flush(ctx);
        } else {
            self.timer = Some(ctx.run_later(self.settings.linger, |act, ctx| {
                act.timer = None;
                act.flush(ctx);
            }));
        }
    }

    fn flush(&mut self, ctx: &mut Context<Self>) {
        if self.in_flight > 0 || self.buffer.is_empty() {
            return;
        }
        if let Some(handle) = self.timer.take() {
            ctx.cancel_future(handle);
        }
        let size = self.buffer.len().min(self.settings.batch_max);
        let mut batch: Batch = self.buffer.drain(..size).collect();
        self.in_flight = batch.len();
        let source = Arc::clone(&self.source);
        let started = Instant::now();
        let commit = actix_web::rt::task::spawn_blocking(move || {
            let outcome = commit_batch(source.as_ref(), &mut batch);
            (batch, outcome)
        });
        ctx.spawn(commit.into_actor(self).map(move |joined, act, ctx| {
            act.in_flight = 0;
            match joined {
                Ok((batch, BatchOutcome::Committed(refusals))) => {
                    let committed = refusals.iter().filter(|refusal| refusal.is_none()).count();
                    act.metrics.record_batch(batch.len(), committed, started.elapsed());
                    act.backoff = None;
                    // The gauge first: whoever hears "stored" must not then read a stale depth.
                    act.publish_depth();
                    for (write, refusal) in batch.into_iter().zip(refusals) {
                        write.finish(refusal.map(PersistError::Rejected));
                    }
                }
                Ok((batch, BatchOutcome::Unreachable(reason))) => {
                    let pause = act
                        .backoff
                        .map(|previous| (previous * 2).min(act.settings.retry_max))
                        .unwrap_or(Duration::from_millis(50));
                    log::warn!("database unreachable ({reason}); {} write(s) kept, retry in {pause:?}", batch.len());
                    act.metrics.persist_retries.fetch_add(1, Ordering::Relaxed);
                    act.backoff = Some(pause);
                    for write in batch.into_iter().rev() {
                        act.buffer.push_front(write);
                    }
                }
                Err(join_error) => {
                    // The blocking task panicked: its writes are lost to us, so
                    // their callers must hear it rather than wait forever. The
                    // boxed writes went down with the task and dropped their
                    // reply senders, which answers them with `Stopped`.
                    log::error!("persistence batch task failed: {join_error}");
                }
            }
            act.publish_depth();
            act.schedule(ctx);
            act.notify_if_drained();
        }));
    }

    fn notify_if_drained(&mut self) {
        if self.pending() == 0 {
            for waiter in self.drain_waiters.drain(..) {
                let _ = waiter.send(());
            }
        }
    }
}

impl Actor for PersistenceActor {
    type Context = Context<Self>;
}

/// A write for the actor to buffer.
#[derive(Message)]
#[rtype(result = "()")]
struct Enqueue(Box<dyn PendingWrite>);

impl Handler<Enqueue> for PersistenceActor {
    type Result = ();

    fn handle(&mut self, Enqueue(write): Enqueue, ctx: &mut Context<Self>) {
        if self.pending() >= self.settings.capacity {
            self.metrics.persist_refused.fetch_add(1, Ordering::Relaxed);
            write.finish(Some(PersistError::Overloaded));
            return;
        }
        self.buffer.push_back(write);
        self.publish_depth();
        if self.buffer.len() >= self.settings.batch_max && self.backoff.is_none() {
            self.flush(ctx);
        } else {
            self.schedule(ctx);
        }
    }
}

/// Resolves once every write received so far is committed (or refused).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Drain(pub oneshot::Sender<()>);

impl Handler<Drain> for PersistenceActor {
    type Result = ();

    fn handle(&mut self, Drain(waiter): Drain, ctx: &mut Context<Self>) {
        self.drain_waiters.push(waiter);
        self.notify_if_drained();
        // Skip the linger: nobody else is coming.
        if self.backoff.is_none() {
            self.flush(ctx);
        }
    }
}

/// Handle to the persistence actor. Cheap to clone.
#[derive(Clone)]
pub struct Persistence {
    addr: Addr<PersistenceActor>,
    /// The actor's own thread.
    arbiter: ArbiterHandle,
}

impl Persistence {
    /// Starts the actor on its own arbiter thread, so its bookkeeping never
    /// waits behind room traffic.
    pub fn start(source: Arc<dyn ConnectionSource>, settings: PersistSettings, metrics: Arc<Metrics>) -> Self {
        let arbiter = Arbiter::new();
        let addr = PersistenceActor::start_in_arbiter(&arbiter.handle(), move |_| {
            PersistenceActor::new(source, settings, metrics)
        });
        Self { addr, arbiter: arbiter.handle() }
    }

    /// Stores `op` with the next batch and answers after it committed.
    pub async fn write<T, F>(&self, op: F) -> Result<T, PersistError>
    where
        T: Send + 'static,
        F: Fn(&mut AnyConnection) -> QueryResult<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.submit(op, reply);
        answer.await.unwrap_or(Err(PersistError::Stopped))
    }

    /// Buffers `op`; its result arrives on `reply`. For actors, which must
    /// not await inside a handler.
    pub fn submit<T, F>(&self, op: F, reply: oneshot::Sender<Result<T, PersistError>>)
    where
        T: Send + 'static,
        F: Fn(&mut AnyConnection) -> QueryResult<T> + Send + 'static,
    {
        let write = TypedWrite { op, value: None, reply };
        // do_send: the capacity check is the actor's own, so it can answer Overloaded.
        self.addr.do_send(Enqueue(Box::new(write)));
    }

    /// Stores `op` with nobody waiting for it (attendance rows behind a
    /// join or a leave); a failure is logged. Queued now, so writes keep
    /// the order they were made in.
    pub fn write_in_background<F>(&self, what: &'static str, op: F)
    where
        F: Fn(&mut AnyConnection) -> QueryResult<()> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.submit(op, reply);
        actix::spawn(async move {
            match answer.await {
                Ok(Ok(())) => {}
                Ok(Err(err)) => log::error!("storing {what} failed: {err:?}"),
                Err(_) => log::error!("storing {what}: persistence gone"),
            }
        });
    }

    /// Stops the actor's thread, dropping whatever it still buffers: for an
    /// application that is done (tests); a server drains first (`startup::shutdown`).
    pub fn stop(&self) {
        self.arbiter.stop();
    }

    /// Waits until everything submitted so far has been committed, or the timeout passes.
    pub async fn drain(&self, timeout: Duration) -> bool {
        let (waiter, done) = oneshot::channel();
        self.addr.do_send(Drain(waiter));
        matches!(tokio::time::timeout(timeout, done).await, Ok(Ok(())))
    }
}
