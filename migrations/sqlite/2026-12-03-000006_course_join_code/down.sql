DROP INDEX courses_join_code;
ALTER TABLE courses DROP COLUMN join_code;
