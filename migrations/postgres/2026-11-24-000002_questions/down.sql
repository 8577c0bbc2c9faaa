DROP TABLE question_votes;
DROP TABLE session_questions;
