//! One room's chat, free of I/O: sequence numbers, the recent window that
//! reconnecting clients catch up from, the fate of each message's write
//! (in flight, stored, failed), resends by `clientMsgId`, edits and
//! deletes, unread counts, and the typing throttle.
//!
//! A message is shown to the room as soon as it is sequenced, while its
//! write is still in flight: delivery does not wait for the commit, the
//! sender's ack does. A write that fails is retracted from the window, and
//! the room actor tells everyone (`message-deleted`).

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::domain::chat::{ChatMessage, MessageType};

/// One `user-typing` per person per this long reaches the room.
pub const TYPING_THROTTLE: Duration = Duration::seconds(2);

/// A message someone asks to post, validated.
#[derive(Debug, Clone)]
pub struct Draft {
    pub sender_id: Uuid,
    pub sender_name: String,
    pub text: String,
    pub message_type: MessageType,
    pub client_msg_id: Option<String>,
}

/// What posting a draft comes to.
#[derive(Debug, Clone, PartialEq)]
pub enum Posted {
    /// A new message: show it to the room and store it.
    New(ChatMessage),
    /// A resend of a message already stored: answer with it, show nothing.
    Stored(ChatMessage),
    /// A resend of a message whose write has not finished: its outcome is
    /// this resend's answer too.
    InFlight(Uuid),
}

#[derive(Debug, Clone)]
pub struct ChatLog {
    room_id: Uuid,
    next_seq: i64,
    /// What the room was shown, oldest first: stored messages and those in flight.
    window: VecDeque<ChatMessage>,
    capacity: usize,
    /// From this sequence number on, the window holds every message of the
    /// room (before it, only the database knows).
    complete_from: i64,
    /// Messages whose write has not been answered yet (some may have left
    /// the window), with their sender and client id.
    in_flight: HashMap<Uuid, Option<(Uuid, String)>>,
    /// The same, by sender and client id: resends find theirs without a scan.
    in_flight_by_client: HashMap<(Uuid, String), Uuid>,
    last_typing: HashMap<Uuid, DateTime<Utc>>,
}

impl ChatLog {
    /// The log of a room whose stored messages end at `last_seq` (0 when empty).
    pub fn new(room_id: Uuid, last_seq: i64, capacity: usize) -> Self {
        Self {
            room_id,
            next_seq: last_seq + 1,
            window: VecDeque::new(),
            capacity: capacity.max(1),
            complete_from: last_seq + 1,
            in_flight: HashMap::new(),
            in_flight_by_client: HashMap::new(),
            last_typing: HashMap::new(),
        }
    }

    pub fn room_id(&self) -> Uuid {
        self.room_id
    }

    /// Sequences a draft, unless it is a resend of a message the log knows.
    pub fn post(&mut self, draft: Draft, now: DateTime<Utc>) -> Posted {
        if let Some(client_msg_id) = &draft.client_msg_id {
            if let Some(id) = self.in_flight_by_client.get(&(draft.sender_id, client_msg_id.clone())) {
                return Posted::InFlight(*id);
            }
            let same =
                |m: &&ChatMessage| m.sender_id == draft.sender_id && m.client_msg_id.as_ref() == Some(client_msg_id);
            if let Some(earlier) = self.window.iter().rev().find(same) {
                return Posted::Stored(earlier.clone());
            }
        }
        let message = ChatMessage {
            id: Uuid::new_v4(),
            room_id: self.room_id,
            sender_id: draft.sender_id,
            sender_name: draft.sender_name,
            message: draft.text,
            message_type: draft.message_type,
            created_at: now,
            client_msg_id: draft.client_msg_id,
            edited_at: None,
            deleted: false,
            seq: self.next_seq,
        };
        self.next_seq += 1;
        let client = message.client_msg_id.clone().map(|id| (message.sender_id, id));
        if let Some(client) = &client {
            self.in_flight_by_client.insert(client.clone(), message.id);
        }
        self.in_flight.insert(message.id, client);
        self.window.push_back(message.clone());
        if self.window.len() > self.capacity {
            if let Some(evicted) = self.window.pop_front() {
                self.complete_from = evicted.seq + 1;
            }
        }
        // Whoever posts has stopped typing.
        self.last_typing.remove(&message.sender_id);
        Posted::New(message)
    }

    /// The write of a message committed.
    pub fn stored(&mut self, message_id: Uuid) {
        self.settled(message_id);
    }

    fn settled(&mut self, message_id: Uuid) {
        if let Some(Some(client)) = self.in_flight.remove(&message_id) {
            self.in_flight_by_client.remove(&client);
        }
    }

    /// The write of a message failed (or the database already held it under
    /// another id): it leaves the window. Returns it if the room was shown it.
    pub fn failed(&mut self, message_id: Uuid) -> Option<ChatMessage> {
        self.settled(message_id);
        let position = self.window.iter().position(|m| m.id == message_id)?;
        self.window.remove(position)
    }

    pub fn is_in_flight(&self, message_id: Uuid) -> bool {
        self.in_flight.contains_key(&message_id)
    }

    /// A message of the window.
    pub fn find(&self, message_id: Uuid) -> Option<&ChatMessage> {
        self.window.iter().rev().find(|m| m.id == message_id)
    }

    /// Puts an edited or deleted copy in place of the window's one, if there.
    pub fn replace(&mut self, changed: &ChatMessage) {
        if let Some(kept) = self.window.iter_mut().rev().find(|m| m.id == changed.id) {
            *kept = changed.clone();
        }
    }

    /// What came after `message_id`, oldest first, if the window still holds it.
    pub fn since(&self, message_id: Uuid) -> Option<Vec<ChatMessage>> {
        let position = self.window.iter().position(|m| m.id == message_id)?;
        Some(self.window.iter().skip(position + 1).cloned().collect())
    }

    /// The window's messages after sequence number `seq`, oldest first.
    pub fn after_seq(&self, seq: i64) -> impl Iterator<Item = &ChatMessage> {
        self.window.iter().filter(move |m| m.seq > seq)
    }

    /// How many messages of others, not deleted, came after `read_seq`; None
    /// when the window does not reach back that far (ask the database).
    pub fn unread_after(&self, read_seq: i64, reader: Uuid) -> Option<u64> {
        if read_seq + 1 < self.complete_from {
            return None;
        }
        Some(self.after_seq(read_seq).filter(|m| m.sender_id != reader && !m.deleted).count() as u64)
    }

    /// Whether `user` typing now is worth telling the room (one per person
    /// per [`TYPING_THROTTLE`]).
    pub fn typing(&mut self, user: Uuid, now: DateTime<Utc>) -> bool {
        if self.last_typing.get(&user).is_some_and(|last| now - *last < TYPING_THROTTLE) {
            return false;
        }
        self.last_typing.insert(user, now);
        true
    }

    /// Forgets the typing state of someone who left.
    pub fn forget_typist(&mut self, user: Uuid) {
        self.last_typing.remove(&user);
    }

    /// The highest sequence number handed out.
    pub fn last_seq(&self) -> i64 {
        self.next_seq - 1
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::clock::{Clock, ManualClock};

    fn draft(sender: Uuid, text: &str, client_msg_id: Option<&str>) -> Draft {
        Draft {
            sender_id: sender,
            sender_name: "Ada".into(),
            text: text.into(),
            message_type: MessageType::Text,
            client_msg_id: client_msg_id.map(String::from),
        }
    }

    fn clock() -> ManualClock {
        ManualClock::new(Utc.with_ymd_and_hms(2026, 12, 2, 14, 0, 0).unwrap())
    }

    fn new_message(posted: Posted) -> ChatMessage {
        match posted {
            Posted::New(message) => message,
            other => panic!("expected a new message, got {other:?}"),
        }
    }

    #[test]
    fn messages_are_numbered_after_what_is_stored() {
        let clock = clock();
        let mut log = ChatLog::new(Uuid::new_v4(), 41, 10);
        let ada = Uuid::new_v4();
        let first = new_message(log.post(draft(ada, "a", None), clock.now()));
        let second = new_message(log.post(draft(ada, "b", None), clock.now()));
        assert_eq!((first.seq, second.seq), (42, 43));
        assert_eq!(log.last_seq(), 43);
        assert_eq!(first.room_id, log.room_id());
    }

    #[test]
    fn a_resend_waits_while_in_flight_then_gets_the_stored_original() {
        let clock = clock();
        let mut log = ChatLog::new(Uuid::new_v4(), 0, 10);
        let ada = Uuid::new_v4();
        let original = new_message(log.post(draft(ada, "hi", Some("c1")), clock.now()));
        assert_eq!(log.post(draft(ada, "hi", Some("c1")), clock.now()), Posted::InFlight(original.id));
        // Another sender may use the same client id.
        assert!(matches!(log.post(draft(Uuid::new_v4(), "hi", Some("c1")), clock.now()), Posted::New(_)));
        log.stored(original.id);
        assert!(!log.is_in_flight(original.id));
        assert_eq!(log.post(draft(ada, "hi", Some("c1")), clock.now()), Posted::Stored(original));
    }

    #[test]
    fn a_failed_write_leaves_the_window_and_its_resend_is_new() {
        let clock = clock();
        let mut log = ChatLog::new(Uuid::new_v4(), 0, 10);
        let ada = Uuid::new_v4();
        let lost = new_message(log.post(draft(ada, "hi", Some("c1")), clock.now()));
        let kept = new_message(log.post(draft(ada, "there", None), clock.now()));
        assert_eq!(log.failed(lost.id).map(|m| m.id), Some(lost.id));
        assert!(log.find(lost.id).is_none());
        assert_eq!(log.after_seq(0).map(|m| m.id).collect::<Vec<_>>(), vec![kept.id]);
        let again = new_message(log.post(draft(ada, "hi", Some("c1")), clock.now()));
        assert_ne!(again.id, lost.id, "nothing stored: the resend is a new attempt");
    }

    #[test]
    fn catching_up_works_within_the_window_only() {
        let clock = clock();
        let mut log = ChatLog::new(Uuid::new_v4(), 0, 3);
        let ada = Uuid::new_v4();
        let ids: Vec<Uuid> =
            (0..5).map(|n| new_message(log.post(draft(ada, &n.to_string(), None), clock.now())).id).collect();
        assert!(log.since(ids[0]).is_none(), "the first two left the window");
        let missed: Vec<Uuid> = log.since(ids[2]).unwrap().iter().map(|m| m.id).collect();
        assert_eq!(missed, vec![ids[3], ids[4]]);
        assert!(log.since(ids[4]).unwrap().is_empty());
    }

    #[test]
    fn a_resend_older_than_the_window_is_left_to_the_database() {
        let clock = clock();
        let mut log = ChatLog::new(Uuid::new_v4(), 0, 2);
        let ada = Uuid::new_v4();
        let old = new_message(log.post(draft(ada, "old", Some("c1")), clock.now()));
        log.stored(old.id);
        for n in 0..2 {
            let m = new_message(log.post(draft(ada, &n.to_string(), None), clock.now()));
            log.stored(m.id);
        }
        // The log cannot tell: it proposes a new message, whose write then
        // finds the original (the room retracts the copy).
        assert!(matches!(log.post(draft(ada, "old", Some("c1")), clock.now()), Posted::New(_)));
    }

    #[test]
    fn unread_counts_others_messages_after_the_marker_while_the_window_reaches() {
        let clock = clock();
        let mut log = ChatLog::new(Uuid::new_v4(), 10, 4);
        let (ada, bob) = (Uuid::new_v4(), Uuid::new_v4());
        let a1 = new_message(log.post(draft(ada, "a1", None), clock.now())); // 11
        new_message(log.post(draft(bob, "b1", None), clock.now())); // 12
        let a2 = new_message(log.post(draft(ada, "a2", None), clock.now())); // 13
        assert_eq!(log.unread_after(10, bob), Some(2), "Ada's two, not Bob's own");
        assert_eq!(log.unread_after(a1.seq, bob), Some(1));
        assert_eq!(log.unread_after(9, bob), None, "message 10 is only in the database");
        let deleted = a2.deleted_by(ada, clock.now()).unwrap();
        log.replace(&deleted);
        assert_eq!(log.unread_after(a1.seq, bob), Some(0), "a deleted message is not unread");
        for n in 0..3 {
            new_message(log.post(draft(ada, &n.to_string(), None), clock.now()));
        }
        assert_eq!(log.unread_after(10, bob), None, "message 11 left the window");
        assert_eq!(log.unread_after(a2.seq, bob), Some(3));
    }

    #[test]
    fn edits_replace_the_windows_copy() {
        let clock = clock();
        let mut log = ChatLog::new(Uuid::new_v4(), 0, 4);
        let ada = Uuid::new_v4();
        let message = new_message(log.post(draft(ada, "teh", None), clock.now()));
        let edited = message.edited(ada, "the".into(), clock.now()).unwrap();
        log.replace(&edited);
        assert_eq!(log.find(message.id).map(|m| m.message.as_str()), Some("the"));
    }

    #[test]
    fn typing_is_announced_once_per_person_per_throttle() {
        let clock = clock();
        let mut log = ChatLog::new(Uuid::new_v4(), 0, 4);
        let (ada, bob) = (Uuid::new_v4(), Uuid::new_v4());
        assert!(log.typing(ada, clock.now()));
        assert!(!log.typing(ada, clock.now()));
        assert!(log.typing(bob, clock.now()), "each person has their own throttle");
        clock.advance(TYPING_THROTTLE);
        assert!(log.typing(ada, clock.now()));
        new_message(log.post(draft(ada, "done", None), clock.now()));
        assert!(log.typing(ada, clock.now()), "posting ends the typing spell");
        log.forget_typist(bob);
        assert!(log.typing(bob, clock.now()), "a typist who left is forgotten");
    }
}
