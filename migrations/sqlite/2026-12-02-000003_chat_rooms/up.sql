-- The room core: messages can be edited and deleted by their author, each
-- member's reading position is kept per room (unread counts follow them
-- across devices), and a room finds its live session by the room's id.
ALTER TABLE chat_messages ADD COLUMN edited_at TIMESTAMP;
ALTER TABLE chat_messages ADD COLUMN deleted_at TIMESTAMP;

CREATE TABLE chat_read_markers (
    room_id TEXT NOT NULL REFERENCES chat_rooms (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    last_read_seq BIGINT NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (room_id, user_id)
);

CREATE INDEX live_sessions_by_chat_room ON live_sessions (chat_room_id);
