//! A persistence batch of 1,000 chat rows, on SQLite and on PostgreSQL.
//!
//! Two figures per database: the rows inserted in one transaction on one
//! connection (the database's share), and the same 1,000 writes submitted
//! to the persistence actor and awaited, as room actors do (batching,
//! commit and the answers included).
//!
//! SQLite always runs, on a temporary file with the server's settings (WAL,
//! synchronous=FULL). PostgreSQL runs only when DATABASE_URL names one, in a
//! schema made for the run and dropped after it; otherwise it says why it
//! is skipped. `cargo bench --bench persistence_batch` measures; under
//! `cargo test --all-targets` criterion runs each routine once.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::System;
use chrono::Utc;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use diesel::connection::SimpleConnection;
use diesel::Connection;
use uuid::Uuid;

use classroom::auth::hash_password;
use classroom::config::{backend_of, Backend};
use classroom::db::models::{ChatMessageRow, ChatRoomRow, UserRow};
use classroom::db::{self, to_db_time, Db};
use classroom::engine::metrics::Metrics;
use classroom::engine::persistence::{PersistSettings, Persistence};

const ROWS: usize = 1_000;

/// A database with one user and one chat room to write messages into.
struct Target {
    db: Db,
    room_id: String,
    sender_id: String,
    next_seq: AtomicI64,
    _dir: Option<tempfile::TempDir>,
}

impl Target {
    fn new(url: &str, dir: Option<tempfile::TempDir>) -> Result<Target, String> {
        let db = Db::connect(url, backend_of(url), 4)?;
        let mut conn = db.pool.get().map_err(|err| err.to_string())?;
        let now = to_db_time(Utc::now());
        let sender = UserRow {
            id: Uuid::new_v4().to_string(),
            email: format!("bench-{}@example.test", Uuid::new_v4().simple()),
            name: "Bench".into(),
            role: "student".into(),
            password_hash: hash_password("bench").map_err(|err| err.body.message)?,
            created_at: now,
        };
        db::users::insert(&mut conn, &sender).map_err(|err| err.to_string())?;
        let room = ChatRoomRow {
            id: Uuid::new_v4().to_string(),
            name: "bench".into(),
            room_type: "live_session".into(),
            participants_json: "[]".into(),
            is_active: true,
            created_at: now,
        };
        db::chat::insert_room(&mut conn, &room).map_err(|err| err.to_string())?;
        Ok(Target { db, room_id: room.id, sender_id: sender.id, next_seq: AtomicI64::new(1), _dir: dir })
    }

    fn row(&self) -> ChatMessageRow {
        ChatMessageRow {
            id: Uuid::new_v4().to_string(),
            room_id: self.room_id.clone(),
            seq: self.next_seq.fetch_add(1, Ordering::Relaxed),
            sender_id: self.sender_id.clone(),
            message: "a chat message of ordinary length, about sixty bytes".into(),
            message_type: "text".into(),
            client_msg_id: None,
            created_at: to_db_time(Utc::now()),
            edited_at: None,
            deleted_at: None,
        }
    }
}

fn bench_database(c: &mut Criterion, name: &str, target: &Target) {
    let system = System::new();
    let persistence = system.block_on(async {
        Persistence::start(
            Arc::new(target.db.pool.clone()),
            // The server's defaults.
            PersistSettings {
                batch_max: 1_000,
                linger: Duration::from_millis(2),
                capacity: 100_000,
                retry_max: Duration::from_secs(5),
            },
            Arc::new(Metrics::default()),
        )
    });
    let mut group = c.benchmark_group(format!("persist-{name}"));
    group.throughput(Throughput::Elements(ROWS as u64));
    group.sample_size(10);
    group.bench_function("one-transaction-1000-rows", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let rows: Vec<ChatMessageRow> = (0..ROWS).map(|_| target.row()).collect();
                let Ok(mut conn) = target.db.pool.get() else { panic!("no database connection") };
                let started = Instant::now();
                let stored = conn.transaction(|conn| {
                    rows.iter().try_for_each(|row| db::chat::insert_message(conn, row).map(|_| ()))
                });
                total += started.elapsed();
                if let Err(err) = stored {
                    panic!("insert failed: {err}");
                }
            }
            total
        })
    });
    group.bench_function("persistence-actor-1000-writes", |b| {
        b.iter_custom(|iters| {
            system.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let rows: Vec<ChatMessageRow> = (0..ROWS).map(|_| target.row()).collect();
                    let started = Instant::now();
                    let writes =
                        rows.into_iter().map(|row| persistence.write(move |conn| db::chat::insert_message(conn, &row)));
                    let results = futures_util::future::join_all(writes).await;
                    total += started.elapsed();
                    if let Some(Err(err)) = results.into_iter().find(|r| r.is_err()) {
                        panic!("write failed: {err:?}");
                    }
                }
                total
            })
        })
    });
    group.finish();
}

fn sqlite(c: &mut Criterion) {
    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(err) => panic!("no temporary folder: {err}"),
    };
    let url = dir.path().join("bench.db").to_string_lossy().into_owned();
    match Target::new(&url, Some(dir)) {
        Ok(target) => bench_database(c, "sqlite", &target),
        Err(err) => panic!("SQLite set-up failed: {err}"),
    }
}

fn postgres(c: &mut Criterion) {
    let base = std::env::var("DATABASE_URL").unwrap_or_default();
    if backend_of(&base) != Backend::Postgres {
        eprintln!("persist-postgres: skipped (DATABASE_URL does not point at PostgreSQL; set DATABASE_URL=postgres://... to run it)");
        return;
    }
    let schema = format!("bench_{}", Uuid::new_v4().simple());
    let mut admin = match diesel::PgConnection::establish(&base) {
        Ok(conn) => conn,
        Err(err) => {
            eprintln!("persist-postgres: skipped (cannot connect to DATABASE_URL: {err})");
            return;
        }
    };
    if let Err(err) = admin.batch_execute(&format!("CREATE SCHEMA {schema}")) {
        eprintln!("persist-postgres: skipped (cannot create a schema: {err})");
        return;
    }
    let separator = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{separator}options=-csearch_path%3D{schema}");
    match Target::new(&url, None) {
        Ok(target) => bench_database(c, "postgres", &target),
        Err(err) => eprintln!("persist-postgres: failed to set up: {err}"),
    }
    let _ = admin.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"));
}

criterion_group!(benches, sqlite, postgres);
criterion_main!(benches);
