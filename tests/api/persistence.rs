//! The persistence actor under load and under failure, through
//! `state.persistence.write` on a running server:
//!
//! - a burst of 10,000 writes is stored whole, in far fewer batches;
//! - a write is answered only once its row can be read back;
//! - while the database is unreachable writes wait (and are retried), none is
//!   answered or lost, and all land once it is back;
//! - the buffer is bounded: past its capacity a write is refused at once;
//! - a write the database refuses fails alone, its batch still commits;
//! - (PostgreSQL) connections killed by the server do not fail later writes.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use diesel::prelude::*;
use futures_util::future::join_all;
use uuid::Uuid;

use classroom::config::{backend_of, Backend};
use classroom::db::models::CourseRow;
use classroom::db::schema::courses;
use classroom::db::{self, Db, Pool, PooledConnection};
use classroom::engine::persistence::{ConnectionSource, PersistError};
use classroom::state::AppState;

use crate::helpers::{eventually, fresh_database, spawn_app, spawn_app_with, spawn_switchable_app, start_on};

/// A course row taught by `instructor_id`, with a fresh id.
fn course(instructor_id: &str, title: String) -> CourseRow {
    CourseRow {
        id: Uuid::new_v4().to_string(),
        instructor_id: instructor_id.to_string(),
        title,
        description: None,
        created_at: Utc::now().naive_utc(),
        join_code: None,
    }
}

/// Stores `row` through the persistence actor; answers once committed (or refused).
async fn store(state: &AppState, row: CourseRow) -> Result<(), PersistError> {
    state.persistence.write(move |conn| db::courses::insert(conn, &row)).await
}

/// Courses taught by `instructor_id`, counted through the read pool.
async fn course_count(state: &AppState, instructor_id: &str) -> i64 {
    let instructor_id = instructor_id.to_string();
    state
        .db
        .read(move |conn| {
            Ok(courses::table.filter(courses::instructor_id.eq(&instructor_id)).count().get_result::<i64>(conn)?)
        })
        .await
        .expect("count courses")
}

/// The stored course with this id, read through the read pool.
async fn stored(state: &AppState, id: &str) -> Option<CourseRow> {
    let id = id.to_string();
    state.db.read(move |conn| Ok(db::courses::find(conn, &id)?)).await.expect("read course")
}

fn counter(value: &std::sync::atomic::AtomicU64) -> u64 {
    value.load(Ordering::Relaxed)
}

#[actix_web::test]
async fn a_burst_of_ten_thousand_writes_is_stored_whole_in_few_batches() {
    let app = spawn_app().await;
    let state = app.state.clone();
    let instructor = app.register("Ada", "instructor").await;
    let batches_before = counter(&state.metrics.persist_batches);
    let writes_before = counter(&state.metrics.persist_writes);

    let results = join_all((0..10_000).map(|i| store(&state, course(&instructor.id, format!("Course {i}"))))).await;

    let failures: Vec<_> = results.iter().filter(|r| r.is_err()).collect();
    assert!(failures.is_empty(), "{} writes failed, first: {:?}", failures.len(), failures.first());
    assert_eq!(course_count(&state, &instructor.id).await, 10_000);
    let batches = counter(&state.metrics.persist_batches) - batches_before;
    let writes = counter(&state.metrics.persist_writes) - writes_before;
    assert_eq!(writes, 10_000, "every write committed exactly once");
    assert!(batches < 1_000, "10,000 writes took {batches} batches: they were not grouped");
    assert_eq!(counter(&state.metrics.persist_queue_depth), 0, "nothing left buffered");
}

#[actix_web::test]
async fn a_write_is_answered_only_once_its_row_is_readable() {
    let app = spawn_app().await;
    let state = app.state.clone();
    let instructor = app.register("Ada", "instructor").await;

    let checks = (0..200).map(|i| {
        let state = state.clone();
        let row = course(&instructor.id, format!("Course {i}"));
        async move {
            let id = row.id.clone();
            store(&state, row).await.expect("write stored");
            // Straight away, from another connection than the one that wrote.
            assert!(stored(&state, &id).await.is_some(), "write {i} answered before its row was readable");
        }
    });
    join_all(checks).await;
    assert_eq!(course_count(&state, &instructor.id).await, 200);
}

#[actix_web::test]
async fn writes_wait_out_a_database_outage_and_all_land_afterwards() {
    let (app, source) = spawn_switchable_app(|_| {}).await;
    let state = app.state.clone();
    let instructor = app.register("Ada", "instructor").await;

    source.set_down(true);
    let answered = Arc::new(AtomicUsize::new(0));
    let writes: Vec<_> = (0..100)
        .map(|i| {
            let (state, answered) = (state.clone(), answered.clone());
            let row = course(&instructor.id, format!("Course {i}"));
            actix_web::rt::spawn(async move {
                let result = store(&state, row).await;
                answered.fetch_add(1, Ordering::SeqCst);
                result
            })
        })
        .collect();

    // Two failed attempts: the batch went back to the buffer and was retried.
    assert!(
        eventually(|| counter(&state.metrics.persist_retries) >= 2).await,
        "timed out waiting until the batch was retried twice"
    );
    assert_eq!(answered.load(Ordering::SeqCst), 0, "a write was answered while the database was away");
    assert_eq!(course_count(&state, &instructor.id).await, 0, "nothing can be stored while the database is away");
    assert_eq!(counter(&state.metrics.persist_queue_depth), 100, "all 100 writes are kept");

    source.set_down(false);
    for (i, result) in join_all(writes).await.into_iter().enumerate() {
        assert!(matches!(result.expect("write task"), Ok(())), "write {i} failed after the outage");
    }
    assert_eq!(course_count(&state, &instructor.id).await, 100);
    assert_eq!(counter(&state.metrics.persist_refused), 0);
}

#[actix_web::test]
async fn past_its_capacity_the_buffer_refuses_at_once_and_keeps_the_rest() {
    let (app, source) = spawn_switchable_app(|config| config.persist_queue_capacity = 10).await;
    let state = app.state.clone();
    let instructor = app.register("Ada", "instructor").await;

    source.set_down(true);
    let answered = Arc::new(AtomicUsize::new(0));
    let kept: Vec<_> = (0..10)
        .map(|i| {
            let (state, answered) = (state.clone(), answered.clone());
            let row = course(&instructor.id, format!("Kept {i}"));
            actix_web::rt::spawn(async move {
                let result = store(&state, row).await;
                answered.fetch_add(1, Ordering::SeqCst);
                result
            })
        })
        .collect();
    assert!(
        eventually(|| counter(&state.metrics.persist_queue_depth) == 10).await,
        "timed out waiting until the first 10 writes are buffered"
    );

    let eleventh = course(&instructor.id, "One too many".into());
    let eleventh_id = eleventh.id.clone();
    let refused = tokio::time::timeout(Duration::from_secs(1), store(&state, eleventh))
        .await
        .expect("the 11th write is answered at once, not after the outage");
    assert!(matches!(refused, Err(PersistError::Overloaded)), "got {refused:?}");
    assert_eq!(counter(&state.metrics.persist_refused), 1);

    assert!(
        eventually(|| counter(&state.metrics.persist_retries) >= 1).await,
        "timed out waiting until the kept batch was retried"
    );
    assert_eq!(answered.load(Ordering::SeqCst), 0, "a kept write was answered while the database was away");

    source.set_down(false);
    for (i, result) in join_all(kept).await.into_iter().enumerate() {
        assert!(matches!(result.expect("write task"), Ok(())), "kept write {i} failed");
    }
    assert_eq!(course_count(&state, &instructor.id).await, 10);
    assert!(stored(&state, &eleventh_id).await.is_none(), "the refused write must not be stored");
}

#[actix_web::test]
async fn a_refused_write_fails_alone_and_the_rest_of_its_batch_commits() {
    // A long linger, so that all 51 writes wait for each other and share one batch.
    let app = spawn_app_with(|config| config.persist_flush_ms = 50, None).await;
    let state = app.state.clone();
    let instructor = app.register("Ada", "instructor").await;
    let existing = course(&instructor.id, "Original".into());
    store(&state, existing.clone()).await.expect("first course stored");

    let mut rows: Vec<CourseRow> = (0..50).map(|i| course(&instructor.id, format!("Good {i}"))).collect();
    let duplicate = CourseRow { title: "Duplicate".into(), ..existing.clone() };
    rows.insert(25, duplicate);
    let batches_before = counter(&state.metrics.persist_batches);
    let writes_before = counter(&state.metrics.persist_writes);

    let results = join_all(rows.iter().cloned().map(|row| store(&state, row))).await;
    assert_eq!(
        counter(&state.metrics.persist_writes) - writes_before,
        50,
        "the refused write is not counted as committed"
    );

    assert_eq!(counter(&state.metrics.persist_batches) - batches_before, 1, "the 51 writes shared one batch");
    assert_eq!(counter(&state.metrics.persist_last_batch_size), 51);
    for (i, (row, result)) in rows.iter().zip(&results).enumerate() {
        if i == 25 {
            let err = result.as_ref().expect_err("the duplicate id is refused");
            assert!(matches!(err, PersistError::Rejected(_)) && err.is_unique_violation(), "got {err:?}");
        } else {
            assert!(result.is_ok(), "good write {i} failed: {result:?}");
            assert!(stored(&state, &row.id).await.is_some(), "good write {i} not stored");
        }
    }
    assert_eq!(course_count(&state, &instructor.id).await, 51, "the original and the 50 good ones");
    assert_eq!(stored(&state, &existing.id).await.expect("original kept").title, "Original");
}

/// A `count(*)` or a pid read with `sql_query`.
#[derive(QueryableByName)]
struct Number {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// Connections of the PostgreSQL server at DATABASE_URL, for killing others.
struct PgAdmin(diesel::PgConnection);

impl PgAdmin {
    fn connect() -> Self {
        let base = std::env::var("DATABASE_URL").expect("DATABASE_URL names the PostgreSQL server");
        Self(diesel::PgConnection::establish(&base).expect("admin connection"))
    }

    fn number(&mut self, query: &str, tag: &str) -> i64 {
        diesel::sql_query(query)
            .bind::<diesel::sql_types::Text, _>(tag)
            .get_result::<Number>(&mut self.0)
            .expect(query)
            .n
    }

    /// Terminates the backends whose `application_name` is `tag` (or, with
    /// `pid`, that one backend) and waits until they are gone. Returns how many.
    fn terminate(&mut self, tag: &str, pid: Option<i64>) -> i64 {
        let only = pid.map(|pid| format!(" AND pid = {pid}")).unwrap_or_default();
        let filter = format!(
            "FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND datname = current_database() \
             AND application_name = $1{only}"
        );
        let killed = self.number(&format!("SELECT count(pg_terminate_backend(pid)) AS n {filter}"), tag);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while self.number(&format!("SELECT count(*) AS n {filter}"), tag) > 0 {
            assert!(std::time::Instant::now() < deadline, "terminated backends still listed");
            std::thread::sleep(Duration::from_millis(5));
        }
        killed
    }
}

/// A source over a real pool that, once armed, kills the backend of the
/// connection it hands out: the connection dies between check-out and use,
/// so the actor meets the dropped connection itself.
struct KillAfterCheckout {
    pool: Pool,
    tag: String,
    armed: AtomicBool,
}

impl ConnectionSource for KillAfterCheckout {
    fn connection(&self) -> Result<PooledConnection, String> {
        let mut conn = self.pool.get().map_err(|err| err.to_string())?;
        if self.armed.swap(false, Ordering::SeqCst) {
            let db::AnyConnection::Postgresql(pg) = &mut *conn else { panic!("PostgreSQL connection expected") };
            let pid =
                diesel::sql_query("SELECT pg_backend_pid()::bigint AS n").get_result::<Number>(pg).expect("pid").n;
            assert_eq!(PgAdmin::connect().terminate(&self.tag, Some(pid)), 1, "the checked-out backend is killed");
        }
        Ok(conn)
    }
}

#[actix_web::test]
async fn writes_survive_connections_dropped_by_postgresql() {
    let database = fresh_database();
    // PostgreSQL only: SQLite is an embedded file, there is no server that could drop a connection.
    if backend_of(&database.url) == Backend::Sqlite {
        return;
    }
    // Tag this test's connections, so that only they are killed and the
    // tests running next to it in the same database are left alone.
    let tag = format!("persist_test_{}", Uuid::new_v4().simple());
    let url = format!("{}&application_name={tag}", database.url);
    let own = Db::connect(&url, Backend::Postgres, 4).expect("test pool");
    let source = Arc::new(KillAfterCheckout { pool: own.pool, tag: tag.clone(), armed: AtomicBool::new(false) });
    let app =
        start_on(database, |config| config.database_url = url, Some(source.clone() as Arc<dyn ConnectionSource>)).await;
    let state = app.state.clone();
    let instructor = app.register("Ada", "instructor").await;
    for i in 0..20 {
        store(&state, course(&instructor.id, format!("Before {i}"))).await.expect("write before the kill");
    }

    // Every connection of the server killed while idle: the pool replaces them.
    let killed = actix_web::web::block({
        let tag = tag.clone();
        move || PgAdmin::connect().terminate(&tag, None)
    })
    .await
    .expect("terminate");
    assert!(killed > 0, "the server held no connection to kill");
    let after_idle = course(&instructor.id, "After the idle kill".into());
    let after_idle_id = after_idle.id.clone();
    store(&state, after_idle).await.expect("the write after the kill succeeds");
    assert!(stored(&state, &after_idle_id).await.is_some());

    // The connection killed after check-out: the batch fails on it and is
    // retried on a fresh one.
    let retries_before = counter(&state.metrics.persist_retries);
    source.armed.store(true, Ordering::SeqCst);
    let after_use = course(&instructor.id, "After the kill in use".into());
    let after_use_id = after_use.id.clone();
    store(&state, after_use).await.expect("the write on a dropped connection is retried and succeeds");
    assert!(!source.armed.load(Ordering::SeqCst), "the source handed out the doomed connection");
    assert!(counter(&state.metrics.persist_retries) > retries_before, "the batch was retried");
    assert!(stored(&state, &after_use_id).await.is_some());
    assert_eq!(course_count(&state, &instructor.id).await, 22);
}
