//! Q&A in a session's room: ask, upvote, and the instructor's answer, pin
//! and dismiss. Each change is stored through the persistence actor (the ack
//! waits for the commit) and the room gets the new ordered list, serialized
//! once for its hosts (who see anonymous askers) and once for the rest.

use std::collections::HashSet;

use actix::prelude::*;
use serde_json::json;
use uuid::Uuid;

use super::LiveSession;
use crate::db::models::QuestionRow;
use crate::db::{self, to_db_time};
use crate::domain::questions::{Audience, Question, QuestionBoard, QuestionStatus, QuestionView};
use crate::engine::hub::{Audience as Recipients, SocketRef};
use crate::engine::persistence::PersistError;
use crate::engine::room::{RoomActor, RoomKind};
use crate::error::{AppError, AppResult};
use crate::protocol::{event_frame, events};

impl RoomActor<LiveSession> {
    /// Pushes the ordered list to the room, one frame per audience.
    fn publish_questions(&self) {
        let Some(kind) = self.kind.as_ref() else { return };
        let frame = |audience| {
            event_frame(
                events::QUESTIONS_UPDATED,
                &json!({ "sessionId": kind.room.facts.id, "questions": kind.questions.views(audience) }),
            )
        };
        self.publish(&frame(Audience::Leaders), Recipients::Hosts);
        self.publish(&frame(Audience::Classmates), Recipients::Guests);
    }

    /// The member's audience, or an error if the socket is not in the room.
    fn audience_of(&self, socket: &SocketRef) -> AppResult<Audience> {
        let kind = self.member(socket)?;
        Ok(if kind.is_host(socket.user()) { Audience::Leaders } else { Audience::Classmates })
    }

    fn questions_mut(&mut self) -> AppResult<&mut QuestionBoard> {
        self.kind.as_mut().map(|kind| &mut kind.questions).ok_or_else(|| AppError::not_found("live session"))
    }

    fn session_id(&self) -> String {
        self.kind.as_ref().map(|kind| kind.room.facts.id.to_string()).unwrap_or_default()
    }
}

/// Waits for a write and turns its outcome into the ack's result.
async fn stored<T>(write: impl std::future::Future<Output = Result<(), PersistError>>, value: T) -> AppResult<T> {
    write.await.map_err(AppError::from)?;
    Ok(value)
}

#[derive(Message)]
#[rtype(result = "AppResult<QuestionView>")]
pub struct AskQuestion {
    pub socket: SocketRef,
    pub text: String,
    pub anonymous: bool,
}

impl Handler<AskQuestion> for RoomActor<LiveSession> {
    type Result = ResponseFuture<AppResult<QuestionView>>;

    fn handle(&mut self, ask: AskQuestion, _: &mut Context<Self>) -> Self::Result {
        let now = self.now();
        let asked = (|| {
            self.audience_of(&ask.socket)?;
            let user = ask.socket.user();
            let question = Question {
                id: Uuid::new_v4(),
                asker_id: user.id,
                asker_name: user.name.clone(),
                text: ask.text.clone(),
                anonymous: ask.anonymous,
                status: QuestionStatus::Open,
                pinned: false,
                created_at: now,
                voters: HashSet::new(),
            };
            let question = self.questions_mut()?.ask(question)?.clone();
            // The asker may always see their own name on their question.
            let view = QuestionBoard::view(&question, Audience::Leaders);
            Ok::<_, AppError>((question, view))
        })();
        let (question, view) = match asked {
            Ok(asked) => asked,
            Err(err) => return Box::pin(async move { Err(err) }),
        };
        self.publish_questions();
        let row = QuestionRow {
            id: question.id.to_string(),
            session_id: self.session_id(),
            asker_id: question.asker_id.to_string(),
            text: question.text.clone(),
            anonymous: question.anonymous,
            status: question.status.as_str().into(),
            pinned: false,
            created_at: to_db_time(now),
            updated_at: to_db_time(now),
        };
        let persistence = self.registry.deps.persistence.clone();
        Box::pin(stored(async move { persistence.write(move |conn| db::questions::insert(conn, &row)).await }, view))
    }
}

#[derive(Message)]
#[rtype(result = "AppResult<QuestionView>")]
pub struct UpvoteQuestion {
    pub socket: SocketRef,
    pub question_id: Uuid,
}

impl Handler<UpvoteQuestion> for RoomActor<LiveSession> {
    type Result = ResponseFuture<AppResult<QuestionView>>;

    fn handle(&mut self, vote: UpvoteQuestion, _: &mut Context<Self>) -> Self::Result {
        let voter = vote.socket.user().id;
        let voted = (|| {
            let audience = self.audience_of(&vote.socket)?;
            let questions = self.questions_mut()?;
            questions.vote(vote.question_id, voter)?;
            Ok::<_, AppError>(QuestionBoard::view(questions.get(vote.question_id)?, audience))
        })();
        let view = match voted {
            Ok(view) => view,
            Err(err) => return Box::pin(async move { Err(err) }),
        };
        self.publish_questions();
        let (question, voter, at) = (vote.question_id.to_string(), voter.to_string(), to_db_time(self.now()));
        let persistence = self.registry.deps.persistence.clone();
        Box::pin(stored(
            async move { persistence.write(move |conn| db::questions::insert_vote(conn, &question, &voter, at)).await },
            view,
        ))
    }
}

/// What the instructor does with a question.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Moderation {
    Answer,
    Pin(bool),
    Dismiss,
}

#[derive(Message)]
#[rtype(result = "AppResult<QuestionView>")]
pub struct ModerateQuestion {
    pub socket: SocketRef,
    pub question_id: Uuid,
    pub action: Moderation,
}

impl Handler<ModerateQuestion> for RoomActor<LiveSession> {
    type Result = ResponseFuture<AppResult<QuestionView>>;

    fn handle(&mut self, moderate: ModerateQuestion, _: &mut Context<Self>) -> Self::Result {
        let moderated = (|| {
            if self.audience_of(&moderate.socket)? != Audience::Leaders {
                return Err(AppError::forbidden("Only the session's instructor moderates questions."));
            }
            let id = moderate.question_id;
            let questions = self.questions_mut()?;
            match moderate.action {
                Moderation::Answer => questions.set_status(id, QuestionStatus::Answered)?,
                Moderation::Dismiss => questions.set_status(id, QuestionStatus::Dismissed)?,
                Moderation::Pin(pinned) => questions.set_pinned(id, pinned)?,
            }
            Ok::<_, AppError>(questions.get(id)?.clone())
        })();
        let question = match moderated {
            Ok(question) => question,
            Err(err) => return Box::pin(async move { Err(err) }),
        };
        self.publish_questions();
        let view = QuestionBoard::view(&question, Audience::Leaders);
        let (id, status, pinned, at) =
            (question.id.to_string(), question.status.as_str(), question.pinned, to_db_time(self.now()));
        let persistence = self.registry.deps.persistence.clone();
        Box::pin(stored(
            async move { persistence.write(move |conn| db::questions::update_state(conn, &id, status, pinned, at)).await },
            view,
        ))
    }
}
