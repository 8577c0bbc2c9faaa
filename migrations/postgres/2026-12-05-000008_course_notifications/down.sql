DROP TABLE audience_notification_reads;
DROP TABLE audience_notifications;
