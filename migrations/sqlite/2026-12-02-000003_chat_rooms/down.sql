DROP INDEX live_sessions_by_chat_room;
DROP TABLE chat_read_markers;
ALTER TABLE chat_messages DROP COLUMN deleted_at;
ALTER TABLE chat_messages DROP COLUMN edited_at;
