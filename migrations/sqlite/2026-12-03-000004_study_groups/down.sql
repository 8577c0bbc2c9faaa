DROP TABLE study_group_sessions;
DROP TABLE study_group_invites;
DROP INDEX study_groups_by_course;
DROP INDEX study_groups_by_chat_room;
ALTER TABLE study_groups DROP COLUMN member_count;
ALTER TABLE study_groups DROP COLUMN visibility;
