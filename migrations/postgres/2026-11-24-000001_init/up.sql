-- Phase 1 tables the plan takes for granted, then every table of the plan.
-- Ids are UUID strings and times are UTC timestamps in both dialects, so one
-- diesel schema serves SQLite and PostgreSQL alike.

CREATE TABLE users (
    id TEXT PRIMARY KEY NOT NULL,
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('student', 'instructor', 'admin')),
    password_hash TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

-- Only a SHA-256 of each token is kept: a leaked table opens no account.
CREATE TABLE auth_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP
);
CREATE INDEX auth_tokens_by_user ON auth_tokens (user_id);

CREATE TABLE courses (
    id TEXT PRIMARY KEY NOT NULL,
    instructor_id TEXT NOT NULL REFERENCES users (id),
    title TEXT NOT NULL,
    description TEXT,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX courses_by_instructor ON courses (instructor_id);

CREATE TABLE enrollments (
    course_id TEXT NOT NULL REFERENCES courses (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    enrolled_at TIMESTAMP NOT NULL,
    PRIMARY KEY (course_id, user_id)
);
CREATE INDEX enrollments_by_user ON enrollments (user_id);

CREATE TABLE chat_rooms (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    room_type TEXT NOT NULL,
    participants_json TEXT NOT NULL,
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMP NOT NULL
);

-- seq orders a room's messages (assigned by the room's actor); client_msg_id
-- makes a resend after a reconnect land once.
CREATE TABLE chat_messages (
    id TEXT PRIMARY KEY NOT NULL,
    room_id TEXT NOT NULL REFERENCES chat_rooms (id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    sender_id TEXT NOT NULL REFERENCES users (id),
    message TEXT NOT NULL,
    message_type TEXT NOT NULL DEFAULT 'text',
    client_msg_id TEXT,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (room_id, seq),
    UNIQUE (room_id, sender_id, client_msg_id)
);
CREATE INDEX chat_messages_by_room_time ON chat_messages (room_id, created_at);

CREATE TABLE live_sessions (
    id TEXT PRIMARY KEY NOT NULL,
    instructor_id TEXT NOT NULL REFERENCES users (id),
    course_id TEXT NOT NULL REFERENCES courses (id) ON DELETE CASCADE,
    chat_room_id TEXT NOT NULL REFERENCES chat_rooms (id),
    title TEXT NOT NULL,
    description TEXT,
    scheduled_start_time TIMESTAMP NOT NULL,
    scheduled_end_time TIMESTAMP NOT NULL,
    actual_start_time TIMESTAMP,
    actual_end_time TIMESTAMP,
    max_attendees INTEGER,
    status TEXT NOT NULL DEFAULT 'scheduled'
        CHECK (status IN ('scheduled', 'active', 'ended', 'cancelled')),
    recording_url TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX live_sessions_by_course_start ON live_sessions (course_id, scheduled_start_time);
CREATE INDEX live_sessions_by_start ON live_sessions (scheduled_start_time);

-- One row per person and session; rejoins move last_joined_at and add to
-- seconds_present when they leave again.
CREATE TABLE live_session_attendees (
    session_id TEXT NOT NULL REFERENCES live_sessions (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id),
    joined_at TIMESTAMP NOT NULL,
    left_at TIMESTAMP,
    last_joined_at TIMESTAMP NOT NULL,
    seconds_present BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (session_id, user_id)
);

CREATE TABLE user_presence (
    user_id TEXT PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    status TEXT NOT NULL DEFAULT 'offline',
    manual_status TEXT,
    manual_status_expires_at TIMESTAMP,
    activity TEXT,
    last_seen_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE presence_privacy (
    user_id TEXT PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    hide_activity BOOLEAN NOT NULL DEFAULT FALSE,
    hide_last_seen BOOLEAN NOT NULL DEFAULT FALSE,
    appear_offline BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE TABLE study_groups (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    description TEXT,
    course_id TEXT REFERENCES courses (id) ON DELETE SET NULL,
    created_by TEXT NOT NULL REFERENCES users (id),
    chat_room_id TEXT NOT NULL REFERENCES chat_rooms (id),
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    max_members INTEGER,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE study_group_members (
    group_id TEXT NOT NULL REFERENCES study_groups (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role TEXT NOT NULL DEFAULT 'member' CHECK (role IN ('admin', 'member')),
    joined_at TIMESTAMP NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX study_group_members_by_user ON study_group_members (user_id);

CREATE TABLE office_hours (
    id TEXT PRIMARY KEY NOT NULL,
    instructor_id TEXT NOT NULL REFERENCES users (id),
    day_of_week INTEGER NOT NULL CHECK (day_of_week BETWEEN 0 AND 6),
    start_time TIME NOT NULL,
    end_time TIME NOT NULL,
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX office_hours_by_instructor ON office_hours (instructor_id);

CREATE TABLE office_hours_queue (
    id TEXT PRIMARY KEY NOT NULL,
    instructor_id TEXT NOT NULL REFERENCES users (id),
    student_id TEXT NOT NULL REFERENCES users (id),
    status TEXT NOT NULL DEFAULT 'waiting'
        CHECK (status IN ('waiting', 'admitted', 'completed', 'cancelled')),
    question TEXT,
    chat_room_id TEXT REFERENCES chat_rooms (id),
    joined_queue_at TIMESTAMP NOT NULL,
    admitted_at TIMESTAMP,
    completed_at TIMESTAMP
);
CREATE INDEX office_hours_queue_by_instructor ON office_hours_queue (instructor_id, status, joined_queue_at);

-- dedupe_key makes a reminder land once even if its sender is restarted.
CREATE TABLE notifications (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    data_json TEXT,
    dedupe_key TEXT UNIQUE,
    created_at TIMESTAMP NOT NULL,
    read_at TIMESTAMP
);
CREATE INDEX notifications_by_user ON notifications (user_id, created_at);
