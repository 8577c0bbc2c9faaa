//! The database: one connection type over SQLite and PostgreSQL, a pool, the
//! embedded migrations, and the queries, one module per group of tables.
//!
//! Every query is written once against `AnyConnection`; diesel's
//! `MultiConnection` dispatches it to whichever backend `DATABASE_URL` chose.

pub mod calendar_feeds;
pub mod chat;
pub mod courses;
pub mod live_sessions;
pub mod models;
pub mod notifications;
pub mod office_hours;
pub mod presence;
pub mod questions;
pub mod schema;
pub mod study_groups;
pub mod tokens;
pub mod users;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{self, ManageConnection, R2D2Connection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use tokio::sync::Semaphore;

use crate::config::Backend;
use crate::error::{AppError, AppResult};

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// A connection to whichever database the configuration names.
#[derive(diesel::MultiConnection)]
pub enum AnyConnection {
    Postgresql(diesel::PgConnection),
    Sqlite(diesel::SqliteConnection),
}

/// Opens connections of the configured backend explicitly: the derive's own
/// `establish` would try each backend in turn, and SQLite accepts any string
/// as a file name, so a mistyped PostgreSQL URL would quietly become a file.
#[derive(Debug, Clone)]
pub struct ConnectionFactory {
    url: String,
    backend: Backend,
}

/// SQLite settings for every connection: WAL so readers never wait for the
/// writer, FULL sync so an acknowledged write survives a crash, a busy
/// timeout so a reader meeting a checkpoint waits instead of failing.
/// The busy timeout comes first so that the WAL switch of connections
/// opened together waits for the others instead of failing.
const SQLITE_PRAGMAS: &str = "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; \
     PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;";

impl ConnectionFactory {
    pub fn new(url: &str, backend: Backend) -> Self {
        let url = match backend {
            Backend::Sqlite => url.strip_prefix("sqlite://").unwrap_or(url).to_string(),
            Backend::Postgres => url.to_string(),
        };
        Self { url, backend }
    }

    pub fn establish(&self) -> ConnectionResult<AnyConnection> {
        match self.backend {
            Backend::Postgres => diesel::PgConnection::establish(&self.url).map(AnyConnection::Postgresql),
            Backend::Sqlite => {
                if let Some(dir) = Path::new(&self.url).parent() {
                    if !dir.as_os_str().is_empty() && !dir.exists() {
                        std::fs::create_dir_all(dir).map_err(|err| {
                            ConnectionError::BadConnection(format!("cannot create {}: {err}", dir.display()))
                        })?;
                    }
                }
                let mut conn = diesel::SqliteConnection::establish(&self.url)?;
                conn.batch_execute(SQLITE_PRAGMAS).map_err(ConnectionError::CouldntSetupConfiguration)?;
                Ok(AnyConnection::Sqlite(conn))
            }
        }
    }
}

impl ManageConnection for ConnectionFactory {
    type Connection = AnyConnection;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<AnyConnection, r2d2::Error> {
        self.establish().map_err(r2d2::Error::ConnectionError)
    }

    fn is_valid(&self, conn: &mut AnyConnection) -> Result<(), r2d2::Error> {
        conn.ping().map_err(r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut AnyConnection) -> bool {
        std::thread::panicking() || conn.is_broken()
    }
}

pub type Pool = r2d2::Pool<ConnectionFactory>;
pub type PooledConnection = r2d2::PooledConnection<ConnectionFactory>;

/// The pool and what it talks to. Cheap to clone.
#[derive(Clone)]
pub struct Db {
    pub pool: Pool,
    pub backend: Backend,
    /// One permit per pooled connection. A read waits for one here, as a
    /// future, before it takes a blocking thread: otherwise a burst of reads
    /// (a join storm) parks one thread per read on the pool, hundreds of
    /// threads each with its stack and malloc arena.
    read_permits: Arc<Semaphore>,
    /// How long a read may queue for a connection (`DB_READ_WAIT_SECS`).
    /// Longer than the pool's own 2 s, which tells quickly that the
    /// database is away.
    read_wait: Duration,
}

/// The read queue's wait unless the configuration says otherwise.
const DEFAULT_READ_WAIT: Duration = Duration::from_secs(10);

impl Db {
    /// Opens the pool and brings the schema up to date.
    pub fn connect(url: &str, backend: Backend, pool_size: u32) -> Result<Self, String> {
        let pool = r2d2::Pool::builder()
            .max_size(pool_size.max(2))
            // Short, so a caller learns quickly that the database is away
            // (the persistence actor then retries with back-off).
            .connection_timeout(Duration::from_secs(2))
            .build(ConnectionFactory::new(url, backend))
            .map_err(|err| format!("cannot open the database at {url}: {err}"))?;
        let read_permits = Arc::new(Semaphore::new(pool.max_size() as usize));
        let db = Self { pool, backend, read_permits, read_wait: DEFAULT_READ_WAIT };
        db.run_migrations()?;
        Ok(db)
    }

    /// The same pool, with reads queueing at most `wait` for a connection.
    pub fn with_read_wait(self, wait: Duration) -> Self {
        Self { read_wait: wait, ..self }
    }

    pub fn run_migrations(&self) -> Result<(), String> {
        let mut conn = self.pool.get().map_err(|err| format!("cannot reach the database: {err}"))?;
        let applied = match &mut *conn {
            AnyConnection::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS).map(|v| v.len()),
            AnyConnection::Postgresql(c) => {
                // Several nodes starting at once: one migrates, the others wait
                // and then find nothing to do (a session-level lock, held on
                // this connection only while migrating).
                diesel::sql_query("SELECT pg_advisory_lock(7242917)")
                    .execute(c)
                    .map_err(|err| format!("cannot lock the migrations: {err}"))?;
                let applied = c.run_pending_migrations(POSTGRES_MIGRATIONS).map(|v| v.len());
                let unlocked = diesel::sql_query("SELECT pg_advisory_unlock(7242917)").execute(c);
                if let Err(err) = unlocked {
                    log::warn!("migrations' lock not released: {err}");
                }
                applied
            }
        }
        .map_err(|err| format!("migrations failed: {err}"))?;
        if applied > 0 {
            log::info!("applied {applied} migration(s)");
        }
        Ok(())
    }

    /// Runs a read on the blocking pool, off the async threads.
    pub async fn read<T, F>(&self, query: F) -> AppResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut AnyConnection) -> AppResult<T> + Send + 'static,
    {
        let waited = tokio::time::timeout(self.read_wait, Arc::clone(&self.read_permits).acquire_owned()).await;
        let Ok(Ok(permit)) = waited else {
            log::error!("database: no connection free within {:?}", self.read_wait);
            return Err(AppError::database_unavailable());
        };
        let pool = self.pool.clone();
        actix_web::web::block(move || {
            // Released on this thread when the query is done, not when the
            // caller's thread (maybe busy) next polls the future.
            let _permit = permit;
            let mut conn = pool.get()?;
            query(&mut conn)
        })
        .await?
    }

    /// Whether the database answers right now (for `/healthz`).
    pub async fn ping(&self) -> AppResult<()> {
        self.read(|conn| conn.ping().map(|_| ()).map_err(AppError::from)).await
    }
}

/// Database times are naive UTC; the API speaks `DateTime<Utc>`.
pub fn to_db_time(t: DateTime<Utc>) -> NaiveDateTime {
    t.naive_utc()
}

pub fn from_db_time(t: NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}

/// Parses an id read from the database (where ids are text).
pub fn parse_id(text: &str) -> Result<uuid::Uuid, String> {
    uuid::Uuid::parse_str(text).map_err(|err| format!("bad id {text:?} in the database: {err}"))
}

/// Parses ids read from the database; a bad one is an internal error.
pub fn parse_ids(ids: &[String]) -> AppResult<Vec<uuid::Uuid>> {
    ids.iter().map(|id| parse_id(id)).collect::<Result<_, _>>().map_err(AppError::internal)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::Mutex;

    use super::*;

    /// The read gate: a burst far larger than the pool waits as futures, so
    /// it occupies no more blocking threads than there are connections.
    #[actix_web::test]
    async fn a_burst_of_reads_takes_no_more_threads_than_the_pool_has_connections() {
        let dir = tempfile::tempdir().unwrap();
        let url = dir.path().join("gate.db").to_string_lossy().into_owned();
        let db = Db::connect(&url, Backend::Sqlite, 2).unwrap();
        let threads = Arc::new(Mutex::new(HashSet::new()));
        let reads = (0..40).map(|_| {
            let threads = Arc::clone(&threads);
            db.read(move |conn| {
                threads.lock().unwrap().insert(std::thread::current().id());
                // Long enough that, ungated, the burst would need a thread per read.
                std::thread::sleep(Duration::from_millis(5));
                conn.batch_execute("SELECT 1").map_err(AppError::from)
            })
        });
        let results = futures_util::future::join_all(reads).await;
        assert!(results.iter().all(Result::is_ok), "every read of the burst is served");
        // Not exactly 2: a thread that just finished a read may not be back
        // in tokio's idle list when the next read is handed over, so the pool
        // starts another. Ungated, this burst takes 40.
        let used = threads.lock().unwrap().len();
        assert!(used < 10, "{used} blocking threads for 40 reads on a pool of 2");
    }
}
