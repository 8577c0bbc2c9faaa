-- Office hours (issue 13): slots keep their IANA zone and mode; queue
-- entries keep a rank (arrival order, permuted by a defer), a topic, the one
-- defer and why they ended; one open entry per student and instructor is a
-- unique index, so two joins racing cannot both land.
ALTER TABLE office_hours ADD COLUMN time_zone TEXT NOT NULL DEFAULT 'UTC';
ALTER TABLE office_hours ADD COLUMN mode TEXT NOT NULL DEFAULT 'queue' CHECK (mode IN ('queue', 'drop-in'));

ALTER TABLE office_hours_queue ADD COLUMN topic TEXT;
ALTER TABLE office_hours_queue ADD COLUMN queue_rank BIGINT NOT NULL DEFAULT 0;
ALTER TABLE office_hours_queue ADD COLUMN deferred BOOLEAN NOT NULL DEFAULT 0;
ALTER TABLE office_hours_queue ADD COLUMN end_reason TEXT;
CREATE UNIQUE INDEX office_hours_queue_one_open ON office_hours_queue (instructor_id, student_id)
    WHERE status IN ('waiting', 'admitted');
CREATE INDEX office_hours_queue_by_student ON office_hours_queue (student_id, status);
CREATE INDEX office_hours_queue_by_room ON office_hours_queue (chat_room_id);
CREATE INDEX office_hours_queue_by_admission ON office_hours_queue (instructor_id, admitted_at);

-- A manual open or close, holding until manual_until (null: until changed).
CREATE TABLE office_hours_state (
    instructor_id TEXT PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    manual_open BOOLEAN,
    manual_until TIMESTAMP,
    opened_at TIMESTAMP,
    updated_at TIMESTAMP NOT NULL
);

-- The instructor's rooms: private ones (admissions) and drop-in ones.
CREATE TABLE office_hours_rooms (
    room_id TEXT PRIMARY KEY NOT NULL REFERENCES chat_rooms (id),
    instructor_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    mode TEXT NOT NULL CHECK (mode IN ('private', 'drop-in')),
    slot_id TEXT,
    opened_at TIMESTAMP NOT NULL,
    closed_at TIMESTAMP
);
CREATE INDEX office_hours_rooms_open ON office_hours_rooms (instructor_id, closed_at);

CREATE TABLE office_hours_announcements (
    id TEXT PRIMARY KEY NOT NULL,
    instructor_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    message TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX office_hours_announcements_by_instructor ON office_hours_announcements (instructor_id, created_at);
