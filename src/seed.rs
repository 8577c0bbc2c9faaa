//! `classroom seed-load`: the fast set-up path of the load harness.
//!
//! Registering 10,000 users through `POST /api/auth/register` costs 10,000
//! Argon2 hashes (tens of milliseconds each, by design). A load test needs
//! users, not secure passwords, so this writes the rows straight to the
//! database: one instructor, N students sharing one password hash computed
//! once, S live sessions whose join window is open now, each in a course of
//! its own whose students are one block of the N (as real classes are:
//! course-mates see each other's presence, so one course of everybody would
//! make every user watch every other), and a login token per person. The
//! tokens go to a JSON file that `loadgen --tokens` reads.
//!
//! Everything is written through the same diesel queries the server uses,
//! so it works on SQLite and PostgreSQL alike, in transactions of a few
//! thousand rows.

use std::path::PathBuf;

use chrono::{Duration, Utc};
use clap::Args;
use diesel::prelude::*;
use serde::Serialize;
use uuid::Uuid;

use crate::auth::{hash_password, new_token};
use crate::config::Config;
use crate::db::models::{AuthTokenRow, ChatRoomRow, CourseRow, EnrollmentRow, LiveSessionRow, UserRow};
use crate::db::{self, to_db_time, AnyConnection, Db};
use crate::domain::join_code;
use crate::domain::live_session::SessionStatus;

/// Rows per transaction: large enough to be quick, small enough that a
/// concurrent reader of the same SQLite file is never kept waiting long.
const ROWS_PER_TRANSACTION: usize = 2_000;

/// Options of `classroom seed-load`.
#[derive(Debug, Clone, Args)]
pub struct SeedArgs {
    /// How many students to create.
    #[arg(long, default_value_t = 100)]
    pub users: usize,
    /// How many live sessions (and courses) to make, all open for joining now;
    /// the students are split over them in equal blocks.
    #[arg(long, default_value_t = 1)]
    pub sessions: usize,
    /// Email of the instructor: reused if that user exists (and is an
    /// instructor), created otherwise.
    #[arg(long, default_value = "load-instructor@example.test")]
    pub instructor: String,
    /// Password given to every created user (hashed once with Argon2id).
    #[arg(long, default_value = "load-test-password")]
    pub password: String,
    /// How long the sessions stay open, in hours from now.
    #[arg(long, default_value_t = 12)]
    pub session_hours: i64,
    /// Every session in one course, with every student enrolled in it (a
    /// big first-year course) instead of a course per session.
    #[arg(long)]
    pub one_course: bool,
    /// When the sessions start, in minutes from now: -1 (the default) opens
    /// them for joining at once with no reminder due; 10 makes every
    /// student's 15-minute reminder due at the scheduler's next pass.
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub starts_in_minutes: i64,
    /// Where to write the tokens (JSON; see `SeedOutput`).
    #[arg(long, default_value = "tokens.json")]
    pub out: PathBuf,
}

/// A created (or reused) person and their login token.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SeededUser {
    /// User id (UUID).
    pub id: String,
    pub email: String,
    /// Login token for `Authorization: Bearer` and `/ws?token=`.
    pub token: String,
    /// Index of the session (and course) this student belongs to.
    pub session: usize,
}

/// What `seed-load` writes to `--out`: `loadgen --tokens` reads it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SeedOutput {
    /// Teaches every course (its `session` is 0 and means nothing).
    pub instructor: SeededUser,
    /// One course per session, in the same order.
    pub courses: Vec<String>,
    /// Live session ids, open for joining from now for `--session-hours`.
    pub sessions: Vec<String>,
    /// Students; each is enrolled in the course of `sessions[user.session]`.
    pub users: Vec<SeededUser>,
}

/// `classroom seed-load`: seeds the database `config` names and writes the
/// tokens file. Returns a one-line summary for the terminal.
pub fn run(config: &Config, args: &SeedArgs) -> Result<String, String> {
    let started = std::time::Instant::now();
    let db = Db::connect(&config.database_url, config.backend(), 2)?;
    let output = seed(&db, config, args)?;
    let json = serde_json::to_vec(&output).map_err(|err| format!("cannot encode the tokens: {err}"))?;
    std::fs::write(&args.out, json).map_err(|err| format!("cannot write {}: {err}", args.out.display()))?;
    Ok(format!(
        "seeded {} students over {} session(s) and course(s) in {:.1} s; tokens in {}",
        output.users.len(),
        output.sessions.len(),
        started.elapsed().as_secs_f64(),
        args.out.display()
    ))
}

/// Writes the users, course, enrollments, sessions and tokens; returns what
/// the tokens file holds.
pub fn seed(db: &Db, config: &Config, args: &SeedArgs) -> Result<SeedOutput, String> {
    if args.session_hours <= 0 {
        return Err("--session-hours must be at least 1".into());
    }
    let mut conn = db.pool.get().map_err(|err| format!("cannot reach the database: {err}"))?;
    let conn: &mut AnyConnection = &mut conn;
    let now = Utc::now();
    let db_now = to_db_time(now);
    let expires_at = to_db_time(now + Duration::seconds(config.token_ttl_secs));
    // The one slow hash of the run.
    let password_hash =
        hash_password(&args.password).map_err(|err| format!("cannot hash the password: {}", err.body.message))?;
    // Emails must be unique across runs on the same database.
    let run_id = Uuid::new_v4().simple().to_string();
    let run_id = &run_id[..8];

    let instructor = match db::users::find_by_email(conn, &args.instructor).map_err(db_error)? {
        Some(row) if row.role == "instructor" || row.role == "admin" => row,
        Some(row) => return Err(format!("{} exists but is a {}, not an instructor", args.instructor, row.role)),
        None => {
            let row = UserRow {
                id: Uuid::new_v4().to_string(),
                email: args.instructor.clone(),
                name: "Load Instructor".into(),
                role: "instructor".into(),
                password_hash: password_hash.clone(),
                created_at: db_now,
            };
            db::users::insert(conn, &row).map_err(db_error)?;
            row
        }
    };
    let (instructor_token, digest) = new_token();
    db::tokens::insert(conn, &token_row(digest, &instructor.id, db_now, expires_at)).map_err(db_error)?;

    if args.sessions == 0 {
        return Err("--sessions must be at least 1".into());
    }
    let mut courses: Vec<String> = Vec::with_capacity(args.sessions);
    let mut sessions = Vec::with_capacity(args.sessions);
    // Each course gets a join code as one made through the API does.
    let mut codes = Vec::with_capacity(args.sessions);
    for _ in 0..args.sessions {
        use rand_core::RngCore;
        let mut bytes = [0u8; join_code::LENGTH];
        rand_core::OsRng.try_fill_bytes(&mut bytes).map_err(|err| format!("no randomness for a join code: {err}"))?;
        codes.push(join_code::from_random(bytes));
    }
    conn.transaction(|conn| {
        for (index, code) in codes.iter().enumerate() {
            if args.one_course && index > 0 {
                courses.push(courses[0].clone());
                let course_id = courses[0].clone();
                sessions.push(insert_session(conn, args, &instructor.id, &course_id, index, now, db_now)?);
                continue;
            }
            let course = CourseRow {
                id: Uuid::new_v4().to_string(),
                instructor_id: instructor.id.clone(),
                title: format!("Load test {run_id} #{index}"),
                description: Some("Made by classroom seed-load.".into()),
                created_at: db_now,
                join_code: Some(code.clone()),
            };
            db::courses::insert(conn, &course)?;
            let session_id = insert_session(conn, args, &instructor.id, &course.id, index, now, db_now)?;
            courses.push(course.id);
            sessions.push(session_id);
        }
        Ok::<_, diesel::result::Error>(())
    })
    .map_err(db_error)?;

    // Equal blocks: student i belongs to session i / block.
    let block = args.users.div_ceil(args.sessions).max(1);
    let mut users = Vec::with_capacity(args.users);
    let indices: Vec<usize> = (0..args.users).collect();
    for chunk in indices.chunks(ROWS_PER_TRANSACTION) {
        conn.transaction(|conn| {
            for &index in chunk {
                let session = index / block;
                let user = UserRow {
                    id: Uuid::new_v4().to_string(),
                    email: format!("load-{run_id}-{index}@example.test"),
                    name: format!("Student {index}"),
                    role: "student".into(),
                    password_hash: password_hash.clone(),
                    created_at: db_now,
                };
                db::users::insert(conn, &user)?;
                let enrollment = EnrollmentRow {
                    course_id: courses[session].clone(),
                    user_id: user.id.clone(),
                    enrolled_at: db_now,
                };
                diesel::insert_into(db::schema::enrollments::table).values(&enrollment).execute(conn)?;
                let (token, digest) = new_token();
                db::tokens::insert(conn, &token_row(digest, &user.id, db_now, expires_at))?;
                users.push(SeededUser { id: user.id, email: user.email, token, session });
            }
            Ok::<_, diesel::result::Error>(())
        })
        .map_err(db_error)?;
    }

    Ok(SeedOutput {
        instructor: SeededUser { id: instructor.id, email: instructor.email, token: instructor_token, session: 0 },
        courses,
        sessions,
        users,
    })
}

fn token_row(
    digest: String,
    user_id: &str,
    now: chrono::NaiveDateTime,
    expires_at: chrono::NaiveDateTime,
) -> AuthTokenRow {
    AuthTokenRow { token_hash: digest, user_id: user_id.to_string(), created_at: now, expires_at, revoked_at: None }
}

fn db_error(err: diesel::result::Error) -> String {
    format!("database error while seeding: {err}")
}

/// One live session of the run, with its chat room; returns its id.
fn insert_session(
    conn: &mut db::AnyConnection,
    args: &SeedArgs,
    instructor_id: &str,
    course_id: &str,
    index: usize,
    now: chrono::DateTime<chrono::Utc>,
    db_now: chrono::NaiveDateTime,
) -> diesel::QueryResult<String> {
    let chat_room = ChatRoomRow {
        id: Uuid::new_v4().to_string(),
        name: format!("Load session {index}"),
        room_type: "live_session".into(),
        participants_json: "[]".into(),
        is_active: true,
        created_at: db_now,
    };
    // By default scheduled a minute ago: the join window is open,
    // and no reminder is due (those fire only before the start), so
    // the scheduler leaves the run alone (`--starts-in-minutes`).
    let session = LiveSessionRow {
        id: Uuid::new_v4().to_string(),
        instructor_id: instructor_id.to_string(),
        course_id: course_id.to_string(),
        chat_room_id: chat_room.id.clone(),
        title: format!("Load session {index}"),
        description: None,
        scheduled_start_time: to_db_time(now + Duration::minutes(args.starts_in_minutes)),
        scheduled_end_time: to_db_time(now + Duration::hours(args.session_hours)),
        actual_start_time: None,
        actual_end_time: None,
        max_attendees: None,
        status: SessionStatus::Scheduled.as_str().into(),
        recording_url: None,
        created_at: db_now,
        updated_at: db_now,
    };
    db::chat::insert_room(conn, &chat_room)?;
    db::live_sessions::insert(conn, &session)?;
    Ok(session.id)
}
