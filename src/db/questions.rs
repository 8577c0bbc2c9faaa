//! Q&A questions and their votes.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use std::collections::HashSet;

use uuid::Uuid;

use crate::db::models::QuestionRow;
use crate::db::schema::{question_votes, session_questions, users};
use crate::db::{from_db_time, parse_id, AnyConnection};
use crate::domain::questions::{Question, QuestionBoard, QuestionStatus};
use crate::error::{AppError, AppResult};

/// Stores a question once: a write retried after the connection dropped
/// finds its own row (see `db::chat::insert_message`).
pub fn insert(conn: &mut AnyConnection, question: &QuestionRow) -> QueryResult<()> {
    let stored: i64 =
        session_questions::table.filter(session_questions::id.eq(&question.id)).count().get_result(conn)?;
    if stored == 0 {
        diesel::insert_into(session_questions::table).values(question).execute(conn)?;
    }
    Ok(())
}

/// Stores a vote once (the room refuses a second vote before it gets here).
pub fn insert_vote(conn: &mut AnyConnection, question_id: &str, user_id: &str, at: NaiveDateTime) -> QueryResult<()> {
    let stored: i64 = question_votes::table.find((question_id, user_id)).count().get_result(conn)?;
    if stored > 0 {
        return Ok(());
    }
    diesel::insert_into(question_votes::table)
        .values((
            question_votes::question_id.eq(question_id),
            question_votes::user_id.eq(user_id),
            question_votes::created_at.eq(at),
        ))
        .execute(conn)
        .map(|_| ())
}

pub fn update_state(
    conn: &mut AnyConnection,
    id: &str,
    status: &str,
    pinned: bool,
    at: NaiveDateTime,
) -> QueryResult<()> {
    diesel::update(session_questions::table.find(id))
        .set((
            session_questions::status.eq(status),
            session_questions::pinned.eq(pinned),
            session_questions::updated_at.eq(at),
        ))
        .execute(conn)
        .map(|_| ())
}

/// A session's questions with the askers' names, and every vote (question, voter).
pub fn for_session(
    conn: &mut AnyConnection,
    session_id: &str,
) -> QueryResult<(Vec<(QuestionRow, String)>, Vec<(String, String)>)> {
    let questions = session_questions::table
        .inner_join(users::table)
        .filter(session_questions::session_id.eq(session_id))
        .select((QuestionRow::as_select(), users::name))
        .load(conn)?;
    let votes = question_votes::table
        .inner_join(session_questions::table)
        .filter(session_questions::session_id.eq(session_id))
        .select((question_votes::question_id, question_votes::user_id))
        .load(conn)?;
    Ok((questions, votes))
}

/// Rebuilds a session's board from the database.
pub fn load_board(conn: &mut AnyConnection, session_id: &str) -> AppResult<QuestionBoard> {
    let (rows, votes) = for_session(conn, session_id)?;
    let mut board = QuestionBoard::new();
    for (row, asker_name) in rows {
        let id = parse_id(&row.id).map_err(AppError::internal)?;
        let voters: HashSet<Uuid> = votes
            .iter()
            .filter(|(question, _)| *question == row.id)
            .filter_map(|(_, voter)| parse_id(voter).ok())
            .collect();
        board.restore(Question {
            id,
            asker_id: parse_id(&row.asker_id).map_err(AppError::internal)?,
            asker_name,
            text: row.text,
            anonymous: row.anonymous,
            status: QuestionStatus::parse(&row.status).unwrap_or(QuestionStatus::Open),
            pinned: row.pinned,
            created_at: from_db_time(row.created_at),
            voters,
        });
    }
    Ok(board)
}
