// Written by hand for both dialects: ids are Text, times are Timestamp (UTC).
// Keep in step with migrations/sqlite and migrations/postgres.

diesel::table! {
    users (id) {
        id -> Text,
        email -> Text,
        name -> Text,
        role -> Text,
        password_hash -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    auth_tokens (token_hash) {
        token_hash -> Text,
        user_id -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    courses (id) {
        id -> Text,
        instructor_id -> Text,
        title -> Text,
        description -> Nullable<Text>,
        created_at -> Timestamp,
        join_code -> Nullable<Text>,
    }
}

diesel::table! {
    enrollments (course_id, user_id) {
        course_id -> Text,
        user_id -> Text,
        enrolled_at -> Timestamp,
    }
}

diesel::table! {
    chat_rooms (id) {
        id -> Text,
        name -> Text,
        room_type -> Text,
        participants_json -> Text,
        is_active -> Bool,
        created_at -> Timestamp,
    }
}

diesel::table! {
    chat_messages (id) {
        id -> Text,
        room_id -> Text,
        seq -> BigInt,
        sender_id -> Text,
        message -> Text,
        message_type -> Text,
        client_msg_id -> Nullable<Text>,
        created_at -> Timestamp,
        edited_at -> Nullable<Timestamp>,
        deleted_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    chat_read_markers (room_id, user_id) {
        room_id -> Text,
        user_id -> Text,
        last_read_seq -> BigInt,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    live_sessions (id) {
        id -> Text,
        instructor_id -> Text,
        course_id -> Text,
        chat_room_id -> Text,
        title -> Text,
        description -> Nullable<Text>,
        scheduled_start_time -> Timestamp,
        scheduled_end_time -> Timestamp,
        actual_start_time -> Nullable<Timestamp>,
        actual_end_time -> Nullable<Timestamp>,
        max_attendees -> Nullable<Integer>,
        status -> Text,
        recording_url -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    live_session_attendees (session_id, user_id) {
        session_id -> Text,
        user_id -> Text,
        joined_at -> Timestamp,
        left_at -> Nullable<Timestamp>,
        last_joined_at -> Timestamp,
        seconds_present -> BigInt,
    }
}

diesel::table! {
    user_presence (user_id) {
        user_id -> Text,
        status -> Text,
        manual_status -> Nullable<Text>,
        manual_status_expires_at -> Nullable<Timestamp>,
        activity -> Nullable<Text>,
        last_seen_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    presence_privacy (user_id) {
        user_id -> Text,
        hide_activity -> Bool,
        hide_last_seen -> Bool,
        appear_offline -> Bool,
    }
}

diesel::table! {
    study_groups (id) {
        id -> Text,
        name -> Text,
        description -> Nullable<Text>,
        course_id -> Nullable<Text>,
        created_by -> Text,
        chat_room_id -> Text,
        is_active -> Bool,
        max_members -> Nullable<Integer>,
        created_at -> Timestamp,
        visibility -> Text,
        member_count -> Integer,
    }
}

diesel::table! {
    study_group_invites (id) {
        id -> Text,
        group_id -> Text,
        user_id -> Text,
        invited_by -> Text,
        status -> Text,
        created_at -> Timestamp,
        answered_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    study_group_sessions (id) {
        id -> Text,
        group_id -> Text,
        title -> Text,
        scheduled_start_time -> Timestamp,
        scheduled_end_time -> Timestamp,
        created_by -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    study_group_members (group_id, user_id) {
        group_id -> Text,
        user_id -> Text,
        role -> Text,
        joined_at -> Timestamp,
    }
}

diesel::table! {
    office_hours (id) {
        id -> Text,
        instructor_id -> Text,
        day_of_week -> Integer,
        start_time -> Time,
        end_time -> Time,
        is_active -> Bool,
        created_at -> Timestamp,
        time_zone -> Text,
        mode -> Text,
    }
}

diesel::table! {
    office_hours_queue (id) {
        id -> Text,
        instructor_id -> Text,
        student_id -> Text,
        status -> Text,
        question -> Nullable<Text>,
        chat_room_id -> Nullable<Text>,
        joined_queue_at -> Timestamp,
        admitted_at -> Nullable<Timestamp>,
        completed_at -> Nullable<Timestamp>,
        topic -> Nullable<Text>,
        queue_rank -> BigInt,
        deferred -> Bool,
        end_reason -> Nullable<Text>,
    }
}

diesel::table! {
    office_hours_state (instructor_id) {
        instructor_id -> Text,
        manual_open -> Nullable<Bool>,
        manual_until -> Nullable<Timestamp>,
        opened_at -> Nullable<Timestamp>,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    office_hours_rooms (room_id) {
        room_id -> Text,
        instructor_id -> Text,
        mode -> Text,
        slot_id -> Nullable<Text>,
        opened_at -> Timestamp,
        closed_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    office_hours_announcements (id) {
        id -> Text,
        instructor_id -> Text,
        message -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    notifications (id) {
        id -> Text,
        user_id -> Text,
        kind -> Text,
        title -> Text,
        body -> Text,
        data_json -> Nullable<Text>,
        dedupe_key -> Nullable<Text>,
        created_at -> Timestamp,
        read_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    audience_notifications (id) {
        id -> Text,
        course_id -> Nullable<Text>,
        group_id -> Nullable<Text>,
        kind -> Text,
        title -> Text,
        body -> Text,
        data_json -> Nullable<Text>,
        dedupe_key -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    audience_notification_reads (notification_id, user_id) {
        notification_id -> Text,
        user_id -> Text,
        read_at -> Timestamp,
    }
}

diesel::table! {
    session_questions (id) {
        id -> Text,
        session_id -> Text,
        asker_id -> Text,
        text -> Text,
        anonymous -> Bool,
        status -> Text,
        pinned -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    question_votes (question_id, user_id) {
        question_id -> Text,
        user_id -> Text,
        created_at -> Timestamp,
    }
}

diesel::joinable!(auth_tokens -> users (user_id));
diesel::joinable!(session_questions -> users (asker_id));
diesel::joinable!(question_votes -> session_questions (question_id));
diesel::joinable!(courses -> users (instructor_id));
diesel::joinable!(enrollments -> courses (course_id));
diesel::joinable!(enrollments -> users (user_id));
diesel::joinable!(chat_messages -> chat_rooms (room_id));
diesel::joinable!(chat_messages -> users (sender_id));
diesel::joinable!(chat_read_markers -> chat_rooms (room_id));
diesel::joinable!(live_sessions -> courses (course_id));
diesel::joinable!(live_session_attendees -> live_sessions (session_id));
diesel::joinable!(live_session_attendees -> users (user_id));
diesel::joinable!(study_group_members -> study_groups (group_id));
diesel::joinable!(study_group_members -> users (user_id));
diesel::table! {
    calendar_feeds (user_id) {
        user_id -> Text,
        token_hash -> Text,
        created_at -> Timestamp,
    }
}

diesel::joinable!(calendar_feeds -> users (user_id));
diesel::joinable!(notifications -> users (user_id));
diesel::joinable!(audience_notification_reads -> audience_notifications (notification_id));
diesel::joinable!(study_group_invites -> study_groups (group_id));
diesel::joinable!(study_group_sessions -> study_groups (group_id));
diesel::joinable!(office_hours_rooms -> chat_rooms (room_id));

diesel::allow_tables_to_appear_in_same_query!(
    calendar_feeds,
    chat_read_markers,
    users,
    auth_tokens,
    courses,
    enrollments,
    chat_rooms,
    chat_messages,
    live_sessions,
    live_session_attendees,
    user_presence,
    presence_privacy,
    study_groups,
    study_group_members,
    study_group_invites,
    study_group_sessions,
    office_hours,
    office_hours_queue,
    office_hours_state,
    office_hours_rooms,
    office_hours_announcements,
    notifications,
    audience_notifications,
    audience_notification_reads,
    session_questions,
    question_votes,
);
