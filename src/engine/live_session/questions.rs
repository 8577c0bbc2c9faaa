//! Q&A in the room: ask, upvote, and the instructor's answer, pin and
//! dismiss. Each change is stored through the persistence actor (the ack
//! waits for the commit) and the room gets the new ordered list, serialized
//! once for the instructor (who sees anonymous askers) and once for the rest.

use std::collections::HashSet;

use actix::prelude::*;
use serde_json::json;
use uuid::Uuid;

use super::{Connection, LiveSessionActor};
use crate::auth::AuthUser;
use crate::db::models::QuestionRow;
use crate::db::{self, to_db_time};
use crate::domain::questions::{Audience, Question, QuestionBoard, QuestionStatus, QuestionView};
use crate::error::{AppError, AppResult};
use crate::protocol::{event_frame, events};

impl LiveSessionActor {
    /// Pushes the ordered list to the room, one frame per audience.
    fn publish_questions(&mut self, ctx: &mut Context<Self>) {
        let frame = |audience| {
            event_frame(
                events::QUESTIONS_UPDATED,
                &json!({ "sessionId": self.session_id, "questions": self.questions.views(audience) }),
            )
        };
        let (for_leaders, for_others) = (frame(Audience::Leaders), frame(Audience::Classmates));
        self.fan_out(|member| Some(if member.leads { for_leaders.clone() } else { for_others.clone() }), ctx);
    }

    /// The member's audience, or an error if the socket is not in the room.
    fn audience_of(&mut self, user: &AuthUser, connection: &Connection) -> AppResult<Audience> {
        if !self.welcome_back(user, connection) {
            return Err(AppError::forbidden("Join the session first."));
        }
        let room = self.room()?;
        Ok(if room.leads(user.id, user.role) { Audience::Leaders } else { Audience::Classmates })
    }
}

/// Waits for a write and turns its outcome into the ack's result.
async fn stored<T>(
    write: impl std::future::Future<Output = Result<(), crate::engine::persistence::PersistError>>,
    value: T,
) -> AppResult<T> {
    write.await.map_err(AppError::from)?;
    Ok(value)
}

#[derive(Message)]
#[rtype(result = "AppResult<QuestionView>")]
pub struct AskQuestion {
    pub user: AuthUser,
    pub connection: Connection,
    pub text: String,
    pub anonymous: bool,
}

impl Handler<AskQuestion> for LiveSessionActor {
    type Result = ResponseFuture<AppResult<QuestionView>>;

    fn handle(&mut self, ask: AskQuestion, ctx: &mut Context<Self>) -> Self::Result {
        let now = self.now();
        let asked = (|| {
            let audience = self.audience_of(&ask.user, &ask.connection)?;
            let question = Question {
                id: Uuid::new_v4(),
                asker_id: ask.user.id,
                asker_name: ask.user.name.clone(),
                text: ask.text.clone(),
                anonymous: ask.anonymous,
                status: QuestionStatus::Open,
                pinned: false,
                created_at: now,
                voters: HashSet::new(),
            };
            let question = self.questions.ask(question)?.clone();
            // The asker may always see their own name on their question.
            let view = QuestionBoard::view(
                &question,
                if audience == Audience::Leaders { audience } else { Audience::Leaders },
            );
            Ok::<_, AppError>((question, view))
        })();
        let (question, view) = match asked {
            Ok(asked) => asked,
            Err(err) => return Box::pin(async move { Err(err) }),
        };
        self.publish_questions(ctx);
        let row = QuestionRow {
            id: question.id.to_string(),
            session_id: self.session_id.to_string(),
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
    pub user: AuthUser,
    pub connection: Connection,
    pub question_id: Uuid,
}

impl Handler<UpvoteQuestion> for LiveSessionActor {
    type Result = ResponseFuture<AppResult<QuestionView>>;

    fn handle(&mut self, vote: UpvoteQuestion, ctx: &mut Context<Self>) -> Self::Result {
        let voted = (|| {
            let audience = self.audience_of(&vote.user, &vote.connection)?;
            self.questions.vote(vote.question_id, vote.user.id)?;
            Ok::<_, AppError>(QuestionBoard::view(self.questions.get(vote.question_id)?, audience))
        })();
        let view = match voted {
            Ok(view) => view,
            Err(err) => return Box::pin(async move { Err(err) }),
        };
        self.publish_questions(ctx);
        let (question, voter, at) = (vote.question_id.to_string(), vote.user.id.to_string(), to_db_time(self.now()));
        let persistence = self.registry.deps.persistence.clone();
        Box::pin(stored(
            async move { persistence.write(move |conn| db::questions::insert_vote(conn, &question, &voter, at)).await },
            view,
        ))
    }
}

/// What the instructor does with a question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moderation {
    Answer,
    Pin(bool),
    Dismiss,
}

#[derive(Message)]
#[rtype(result = "AppResult<QuestionView>")]
pub struct ModerateQuestion {
    pub user: AuthUser,
    pub connection: Connection,
    pub question_id: Uuid,
    pub action: Moderation,
}

impl Handler<ModerateQuestion> for LiveSessionActor {
    type Result = ResponseFuture<AppResult<QuestionView>>;

    fn handle(&mut self, moderate: ModerateQuestion, ctx: &mut Context<Self>) -> Self::Result {
        let moderated = (|| {
            if self.audience_of(&moderate.user, &moderate.connection)? != Audience::Leaders {
                return Err(AppError::forbidden("Only the session's instructor moderates questions."));
            }
            let id = moderate.question_id;
            match moderate.action {
                Moderation::Answer => self.questions.set_status(id, QuestionStatus::Answered)?,
                Moderation::Dismiss => self.questions.set_status(id, QuestionStatus::Dismissed)?,
                Moderation::Pin(pinned) => self.questions.set_pinned(id, pinned)?,
            }
            Ok::<_, AppError>(self.questions.get(id)?.clone())
        })();
        let question = match moderated {
            Ok(question) => question,
            Err(err) => return Box::pin(async move { Err(err) }),
        };
        self.publish_questions(ctx);
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
