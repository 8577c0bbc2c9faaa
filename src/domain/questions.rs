//! Q&A of a live session: students ask (optionally anonymous to classmates),
//! others upvote once each, the instructor answers, pins or dismisses. The
//! room sees the list ordered: pinned first, then by votes, then oldest first.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::AppError;

/// Longest question accepted, in characters.
pub const MAX_QUESTION_CHARS: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum QuestionStatus {
    Open,
    Answered,
    Dismissed,
}

impl QuestionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            QuestionStatus::Open => "open",
            QuestionStatus::Answered => "answered",
            QuestionStatus::Dismissed => "dismissed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "open" => Some(QuestionStatus::Open),
            "answered" => Some(QuestionStatus::Answered),
            "dismissed" => Some(QuestionStatus::Dismissed),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Question {
    pub id: Uuid,
    pub asker_id: Uuid,
    pub asker_name: String,
    pub text: String,
    pub anonymous: bool,
    pub status: QuestionStatus,
    pub pinned: bool,
    pub created_at: DateTime<Utc>,
    pub voters: HashSet<Uuid>,
}

/// Who asked, when the viewer may know.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Asker {
    pub user_id: Uuid,
    pub name: String,
}

/// A question as one audience sees it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QuestionView {
    pub id: Uuid,
    pub text: String,
    /// Null for an anonymous question, except for the instructor.
    pub asked_by: Option<Asker>,
    pub anonymous: bool,
    pub votes: usize,
    pub status: QuestionStatus,
    pub pinned: bool,
    pub created_at: DateTime<Utc>,
}

/// Who is looking at the board: the instructor sees every asker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    Leaders,
    Classmates,
}

#[derive(Debug, Clone, Default)]
pub struct QuestionBoard {
    questions: HashMap<Uuid, Question>,
}

impl QuestionBoard {
    pub fn new() -> Self {
        Self::default()
    }

    /// Puts back a question read from the database.
    pub fn restore(&mut self, question: Question) {
        self.questions.insert(question.id, question);
    }

    pub fn get(&self, id: Uuid) -> Result<&Question, AppError> {
        self.questions.get(&id).ok_or_else(|| AppError::not_found("question"))
    }

    /// Checks and adds a new question; returns it.
    pub fn ask(&mut self, question: Question) -> Result<&Question, AppError> {
        let text = question.text.trim();
        crate::domain::input::multi_line("A question", text)?;
        if text.is_empty() {
            return Err(AppError::bad_request("empty_question", "A question needs some text."));
        }
        if text.chars().count() > MAX_QUESTION_CHARS {
            return Err(AppError::too_large(format!("A question may have at most {MAX_QUESTION_CHARS} characters.")));
        }
        let question = Question { text: text.to_string(), ..question };
        let id = question.id;
        self.questions.insert(id, question);
        self.get(id)
    }

    /// Checks that `voter` may upvote; `vote` then records it.
    pub fn check_vote(&self, id: Uuid, voter: Uuid) -> Result<(), AppError> {
        let question = self.get(id)?;
        if question.asker_id == voter {
            return Err(AppError::bad_request("own_question", "You cannot upvote your own question."));
        }
        if question.status == QuestionStatus::Dismissed {
            return Err(AppError::conflict("question_dismissed", "That question was dismissed."));
        }
        if question.voters.contains(&voter) {
            return Err(AppError::conflict("already_voted", "You already upvoted this question."));
        }
        Ok(())
    }

    pub fn vote(&mut self, id: Uuid, voter: Uuid) -> Result<(), AppError> {
        self.check_vote(id, voter)?;
        if let Some(question) = self.questions.get_mut(&id) {
            question.voters.insert(voter);
        }
        Ok(())
    }

    pub fn set_status(&mut self, id: Uuid, status: QuestionStatus) -> Result<(), AppError> {
        let question = self.questions.get_mut(&id).ok_or_else(|| AppError::not_found("question"))?;
        question.status = status;
        if status == QuestionStatus::Dismissed {
            question.pinned = false;
        }
        Ok(())
    }

    pub fn set_pinned(&mut self, id: Uuid, pinned: bool) -> Result<(), AppError> {
        let question = self.questions.get_mut(&id).ok_or_else(|| AppError::not_found("question"))?;
        if pinned && question.status == QuestionStatus::Dismissed {
            return Err(AppError::conflict("question_dismissed", "A dismissed question cannot be pinned."));
        }
        question.pinned = pinned;
        Ok(())
    }

    /// The visible questions (dismissed ones hidden), in display order.
    pub fn ordered(&self) -> Vec<&Question> {
        let mut visible: Vec<&Question> =
            self.questions.values().filter(|q| q.status != QuestionStatus::Dismissed).collect();
        visible.sort_by(|a, b| {
            b.pinned
                .cmp(&a.pinned)
                .then(b.voters.len().cmp(&a.voters.len()))
                .then(a.created_at.cmp(&b.created_at))
                .then(a.id.cmp(&b.id))
        });
        visible
    }

    pub fn view(question: &Question, audience: Audience) -> QuestionView {
        let show_asker = !question.anonymous || audience == Audience::Leaders;
        QuestionView {
            id: question.id,
            text: question.text.clone(),
            asked_by: show_asker.then(|| Asker { user_id: question.asker_id, name: question.asker_name.clone() }),
            anonymous: question.anonymous,
            votes: question.voters.len(),
            status: question.status,
            pinned: question.pinned,
            created_at: question.created_at,
        }
    }

    pub fn views(&self, audience: Audience) -> Vec<QuestionView> {
        self.ordered().into_iter().map(|q| Self::view(q, audience)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn question(asker: Uuid, text: &str, minute: u32, anonymous: bool) -> Question {
        Question {
            id: Uuid::new_v4(),
            asker_id: asker,
            asker_name: "Ada".into(),
            text: text.into(),
            anonymous,
            status: QuestionStatus::Open,
            pinned: false,
            created_at: Utc.with_ymd_and_hms(2026, 11, 24, 14, minute, 0).unwrap(),
            voters: HashSet::new(),
        }
    }

    #[test]
    fn votes_count_once_per_person_and_never_for_oneself() {
        let (ada, bob) = (Uuid::new_v4(), Uuid::new_v4());
        let mut board = QuestionBoard::new();
        let id = board.ask(question(ada, "Why borrow?", 0, false)).unwrap().id;
        assert_eq!(board.vote(id, ada).unwrap_err().code(), "own_question");
        board.vote(id, bob).unwrap();
        assert_eq!(board.vote(id, bob).unwrap_err().code(), "already_voted");
        assert_eq!(board.get(id).unwrap().voters.len(), 1);
        assert_eq!(board.vote(Uuid::new_v4(), bob).unwrap_err().code(), "not_found");
    }

    #[test]
    fn the_list_is_pinned_then_by_votes_then_oldest_and_hides_dismissed() {
        let mut board = QuestionBoard::new();
        let asker = Uuid::new_v4();
        let first = board.ask(question(asker, "first", 0, false)).unwrap().id;
        let popular = board.ask(question(asker, "popular", 1, false)).unwrap().id;
        let pinned = board.ask(question(asker, "pinned", 2, false)).unwrap().id;
        let dismissed = board.ask(question(asker, "dismissed", 3, false)).unwrap().id;
        board.vote(popular, Uuid::new_v4()).unwrap();
        board.vote(popular, Uuid::new_v4()).unwrap();
        board.set_pinned(pinned, true).unwrap();
        board.set_status(dismissed, QuestionStatus::Dismissed).unwrap();
        let order: Vec<Uuid> = board.ordered().iter().map(|q| q.id).collect();
        assert_eq!(order, vec![pinned, popular, first]);
        assert_eq!(board.vote(dismissed, Uuid::new_v4()).unwrap_err().code(), "question_dismissed");
    }

    #[test]
    fn anonymous_askers_are_known_to_the_instructor_only() {
        let mut board = QuestionBoard::new();
        board.ask(question(Uuid::new_v4(), "shy question", 0, true)).unwrap();
        assert!(board.views(Audience::Classmates)[0].asked_by.is_none());
        assert!(board.views(Audience::Leaders)[0].asked_by.is_some());
    }

    #[test]
    fn questions_are_trimmed_and_bounded() {
        let mut board = QuestionBoard::new();
        assert_eq!(board.ask(question(Uuid::new_v4(), "  ", 0, false)).unwrap_err().code(), "empty_question");
        let long = "q".repeat(MAX_QUESTION_CHARS + 1);
        assert_eq!(board.ask(question(Uuid::new_v4(), &long, 0, false)).unwrap_err().code(), "too_large");
        assert_eq!(board.ask(question(Uuid::new_v4(), " ok? ", 0, false)).unwrap().text, "ok?");
    }
}
