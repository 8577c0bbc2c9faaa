//! What the other nodes' sockets may have missed of this node's
//! publications: the ones Redis refused (it restarted, or this node lost
//! it for a while) and the ones the full outbox dropped. Once Redis is back
//! the node tells every other node, and they close the sockets concerned
//! with 1012 (`DisconnectReason::MissedFrames`): those reconnect and rejoin
//! with `sinceMessageId`, catching up from the database. A frame lost
//! silently would leave a chat with a hole nobody sees.

use std::collections::HashSet;

use uuid::Uuid;

use super::wire::{all_nodes_channel, topic_of_channel, NodeMessage};
use crate::engine::hub::Topic;

/// Past this many topics and sockets, listing them is not worth it: every
/// socket of every other node reconnects instead.
const LISTED_AT_MOST: usize = 4096;

#[derive(Debug, Default, Clone, PartialEq)]
pub struct MissedFrames {
    /// Too much was lost to list (or a message for every node was): every
    /// socket of the other nodes reconnects.
    pub everything: bool,
    /// Topics whose subscribers lost a frame.
    pub topics: HashSet<Topic>,
    /// Sockets that lost a frame, a subscription or a close meant for them alone.
    pub sockets: HashSet<Uuid>,
}

impl MissedFrames {
    pub fn is_empty(&self) -> bool {
        !self.everything && self.topics.is_empty() && self.sockets.is_empty()
    }

    /// Records a publication that never reached Redis.
    pub fn note(&mut self, channel: &str, payload: &[u8]) {
        if self.everything {
            return;
        }
        if let Some(topic) = topic_of_channel(channel) {
            self.topics.insert(topic);
        } else if channel == all_nodes_channel() {
            match NodeMessage::decode(payload) {
                // Those users' sockets lost a frame: as if published to each one's topic.
                Some(NodeMessage::DeliverToUsers { users, .. }) => {
                    self.topics.extend(users.into_iter().map(Topic::User));
                }
                Some(NodeMessage::Presence { flush, .. }) => self.topics.extend(flush.members().map(Topic::User)),
                // A revoked token's sockets, wherever they are: they must not outlive it.
                _ => self.everything = true,
            }
        } else {
            match NodeMessage::decode(payload) {
                Some(
                    NodeMessage::Deliver { socket, .. }
                    | NodeMessage::Close { socket, .. }
                    | NodeMessage::Subscribe { socket, .. }
                    | NodeMessage::Unsubscribe { socket, .. },
                ) => {
                    self.sockets.insert(socket);
                }
                // A lost call ends in `node_unavailable` for its caller,
                // who got no ack: nothing was promised.
                Some(NodeMessage::Request { .. } | NodeMessage::Answer { .. }) => {}
                Some(NodeMessage::CloseTokenSockets { .. })
                | Some(NodeMessage::Missed { .. })
                | Some(NodeMessage::DeliverToUsers { .. })
                | Some(NodeMessage::Presence { .. })
                | None => self.everything = true,
            }
        }
        self.cap();
    }

    /// For the log: how much, not the whole list.
    pub fn summary(&self) -> String {
        if self.everything {
            "every socket".to_string()
        } else {
            format!("{} topics, {} sockets", self.topics.len(), self.sockets.len())
        }
    }

    /// Adds what an earlier, failed notice carried.
    pub fn merge(&mut self, other: MissedFrames) {
        self.everything |= other.everything;
        if !self.everything {
            self.topics.extend(other.topics);
            self.sockets.extend(other.sockets);
        }
        self.cap();
    }

    fn cap(&mut self) {
        if self.everything || self.topics.len() + self.sockets.len() > LISTED_AT_MOST {
            *self = MissedFrames { everything: true, ..MissedFrames::default() };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::cluster::wire::{node_channel, topic_channel};
    use crate::engine::DisconnectReason;

    #[test]
    fn a_lost_publication_names_its_topic_and_a_lost_socket_message_its_socket() {
        let (room, socket, node) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let mut missed = MissedFrames::default();
        assert!(missed.is_empty());
        missed.note(&topic_channel(Topic::Room(room)), b"whatever the frame");
        missed.note(
            &node_channel(node),
            &NodeMessage::Subscribe { socket, topic: Topic::Room(room), host: false }.encode(),
        );
        missed.note(&node_channel(node), &NodeMessage::Request { from: node, call: 1, body: "{}" }.encode());
        assert_eq!(missed.topics, HashSet::from([Topic::Room(room)]));
        assert_eq!(missed.sockets, HashSet::from([socket]));
        assert!(!missed.everything);
    }

    #[test]
    fn a_lost_push_to_many_users_names_each_users_topic() {
        let (ada, bob, node) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let mut missed = MissedFrames::default();
        let push = NodeMessage::DeliverToUsers { origin: node, users: vec![ada, bob], frame: "{}" };
        missed.note(&all_nodes_channel(), &push.encode());
        assert!(!missed.everything);
        assert_eq!(missed.topics, HashSet::from([Topic::User(ada), Topic::User(bob)]));
    }

    #[test]
    fn a_lost_revocation_or_an_unreadable_message_closes_everything() {
        let user = Uuid::new_v4();
        let mut revocation = MissedFrames::default();
        let close =
            NodeMessage::CloseTokenSockets { user, token_fingerprint: 1, reason: DisconnectReason::TokenRevoked };
        revocation.note(&all_nodes_channel(), &close.encode());
        assert!(revocation.everything);

        let mut garbage = MissedFrames::default();
        garbage.note(&node_channel(user), b"?");
        assert!(garbage.everything && garbage.topics.is_empty());
    }

    #[test]
    fn too_much_to_list_becomes_everything() {
        let mut missed = MissedFrames::default();
        for _ in 0..=LISTED_AT_MOST {
            missed.note(&topic_channel(Topic::User(Uuid::new_v4())), b"");
        }
        assert!(missed.everything);
        assert!(missed.topics.is_empty(), "the list is dropped, not kept growing");

        let mut merged = MissedFrames::default();
        merged.note(&topic_channel(Topic::Room(Uuid::new_v4())), b"");
        merged.merge(missed);
        assert!(merged.everything && merged.topics.is_empty());
    }
}
