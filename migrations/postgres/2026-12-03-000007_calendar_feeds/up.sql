-- A private calendar feed per user (issue 15): the `.ics` address a calendar
-- app subscribes to without signing in. Only the token's SHA-256 digest is
-- kept, as for login tokens; one feed a user, replaced when regenerated and
-- removed when revoked.
CREATE TABLE calendar_feeds (
    user_id TEXT PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    created_at TIMESTAMP NOT NULL
);
