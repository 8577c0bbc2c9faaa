-- Study groups (issue 14): public or private, a member count kept on the
-- group row (joins update it with a guarded UPDATE, so the member limit
-- holds under concurrent joins on both databases), invitations, and group
-- study sessions with their reminders.
ALTER TABLE study_groups ADD COLUMN visibility TEXT NOT NULL DEFAULT 'public' CHECK (visibility IN ('public', 'private'));
ALTER TABLE study_groups ADD COLUMN member_count INTEGER NOT NULL DEFAULT 0;
CREATE INDEX study_groups_by_chat_room ON study_groups (chat_room_id);
CREATE INDEX study_groups_by_course ON study_groups (course_id);

CREATE TABLE study_group_invites (
    id TEXT PRIMARY KEY NOT NULL,
    group_id TEXT NOT NULL REFERENCES study_groups (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    invited_by TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'accepted', 'declined')),
    created_at TIMESTAMP NOT NULL,
    answered_at TIMESTAMP
);
-- One pending invitation per person and group: inviting again finds it.
CREATE UNIQUE INDEX study_group_invites_pending ON study_group_invites (group_id, user_id) WHERE status = 'pending';
CREATE INDEX study_group_invites_by_user ON study_group_invites (user_id, status);

CREATE TABLE study_group_sessions (
    id TEXT PRIMARY KEY NOT NULL,
    group_id TEXT NOT NULL REFERENCES study_groups (id) ON DELETE CASCADE,
    title TEXT NOT NULL,
    scheduled_start_time TIMESTAMP NOT NULL,
    scheduled_end_time TIMESTAMP NOT NULL,
    created_by TEXT NOT NULL REFERENCES users (id),
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX study_group_sessions_by_group ON study_group_sessions (group_id, scheduled_start_time);
CREATE INDEX study_group_sessions_by_start ON study_group_sessions (scheduled_start_time);
