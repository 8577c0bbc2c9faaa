-- A notification addressed to everyone of a course or a study group (issue
-- 11): a session's reminder is one row, not one per enrolled student, and
-- each person's view is derived from their enrollments and memberships.
-- It reaches those who belonged when it was made (enrolled_at / joined_at
-- not after created_at), as a row per person did.
CREATE TABLE audience_notifications (
    id TEXT PRIMARY KEY NOT NULL,
    course_id TEXT REFERENCES courses (id) ON DELETE CASCADE,
    group_id TEXT REFERENCES study_groups (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    data_json TEXT,
    dedupe_key TEXT NOT NULL UNIQUE,
    created_at TIMESTAMP NOT NULL,
    CHECK ((course_id IS NULL) <> (group_id IS NULL))
);
CREATE INDEX audience_notifications_by_course ON audience_notifications (course_id, created_at);
CREATE INDEX audience_notifications_by_group ON audience_notifications (group_id, created_at);

-- Who has read which: a row per person who marked one read, so it grows
-- with what people do, not with the audience.
CREATE TABLE audience_notification_reads (
    notification_id TEXT NOT NULL REFERENCES audience_notifications (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    read_at TIMESTAMP NOT NULL,
    PRIMARY KEY (notification_id, user_id)
);
CREATE INDEX audience_notification_reads_by_user ON audience_notification_reads (user_id);
