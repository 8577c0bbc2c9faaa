-- A short code to join a course, read out in class (issue 15, item 13).
-- Courses made before codes get one from their id: its first 8 hexadecimal
-- digits, as "XXXX-XXXX"; new courses get random ones from the server.
ALTER TABLE courses ADD COLUMN join_code TEXT;
UPDATE courses SET join_code = upper(substr(replace(id, '-', ''), 1, 4) || '-' || substr(replace(id, '-', ''), 5, 4));
CREATE UNIQUE INDEX courses_join_code ON courses (join_code);
