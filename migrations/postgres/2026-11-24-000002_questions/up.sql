-- Q&A of live sessions: questions and one vote per person and question.
CREATE TABLE session_questions (
    id TEXT PRIMARY KEY NOT NULL,
    session_id TEXT NOT NULL REFERENCES live_sessions (id) ON DELETE CASCADE,
    asker_id TEXT NOT NULL REFERENCES users (id),
    text TEXT NOT NULL,
    anonymous BOOLEAN NOT NULL DEFAULT FALSE,
    status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'answered', 'dismissed')),
    pinned BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX session_questions_by_session ON session_questions (session_id, created_at);

CREATE TABLE question_votes (
    question_id TEXT NOT NULL REFERENCES session_questions (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id),
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (question_id, user_id)
);
