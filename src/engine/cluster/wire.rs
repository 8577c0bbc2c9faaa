//! What nodes say to each other through Redis, byte for byte. A frame for
//! sockets is carried as it is (already serialized once by whoever
//! published it), behind a short binary header: no JSON around JSON.
//!
//! Two kinds of channel: one per topic (a room, a user, an office-hours
//! watch list), which every node with subscribers to the topic listens to,
//! and one per node, for what is meant for that node alone.

use std::borrow::Cow;
use std::sync::Arc;

use bytestring::ByteString;
use uuid::Uuid;

use super::missed::MissedFrames;
use crate::engine::hub::{Audience, Topic};
use crate::engine::presence::fanout::{CircleBatch, PresenceFlush};
use crate::engine::DisconnectReason;

/// Every key and channel of ours starts with this.
pub const PREFIX: &str = "classroom";

pub fn topic_channel(topic: Topic) -> String {
    let (kind, id) = topic_parts(topic);
    format!("{PREFIX}:topic:{}:{id}", kind as char)
}

pub fn node_channel(node: Uuid) -> String {
    format!("{PREFIX}:node:{node}")
}

/// What every node hears (a revoked token's sockets may be on any).
pub fn all_nodes_channel() -> String {
    format!("{PREFIX}:nodes:all")
}

/// The topic a topic channel's name stands for.
pub fn topic_of_channel(channel: &str) -> Option<Topic> {
    let rest = channel.strip_prefix(PREFIX)?.strip_prefix(":topic:")?;
    let (kind, id) = rest.split_once(':')?;
    let kind = *kind.as_bytes().first().filter(|_| kind.len() == 1)?;
    topic_from_parts(kind, Uuid::parse_str(id).ok()?)
}

fn topic_parts(topic: Topic) -> (u8, Uuid) {
    match topic {
        Topic::Room(id) => (b'r', id),
        Topic::User(id) => (b'u', id),
        Topic::OfficeHours(id) => (b'o', id),
    }
}

fn topic_from_parts(kind: u8, id: Uuid) -> Option<Topic> {
    match kind {
        b'r' => Some(Topic::Room(id)),
        b'u' => Some(Topic::User(id)),
        b'o' => Some(Topic::OfficeHours(id)),
        _ => None,
    }
}

/// A frame published to a topic: who published it (a node skips its own,
/// having delivered them already), to whom among the subscribers, and the frame.
#[derive(Debug, PartialEq)]
pub struct Publication<'a> {
    pub origin: Uuid,
    pub audience: Audience,
    pub frame: &'a str,
}

impl Publication<'_> {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + 17 + self.frame.len());
        out.extend_from_slice(self.origin.as_bytes());
        let (tag, id) = match self.audience {
            Audience::Everyone => (b'e', Uuid::nil()),
            Audience::AllBut(user) => (b'b', user),
            Audience::AllButSocket(socket) => (b's', socket),
            Audience::Hosts => (b'h', Uuid::nil()),
            Audience::Guests => (b'g', Uuid::nil()),
        };
        out.push(tag);
        out.extend_from_slice(id.as_bytes());
        out.extend_from_slice(self.frame.as_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> Option<Publication<'_>> {
        let mut reader = Reader(bytes);
        let origin = reader.uuid()?;
        let tag = reader.byte()?;
        let id = reader.uuid()?;
        let audience = match tag {
            b'e' => Audience::Everyone,
            b'b' => Audience::AllBut(id),
            b's' => Audience::AllButSocket(id),
            b'h' => Audience::Hosts,
            b'g' => Audience::Guests,
            _ => return None,
        };
        Some(Publication { origin, audience, frame: reader.rest_str()? })
    }
}

/// What one node asks of another, on the other's own channel.
#[derive(Debug, PartialEq)]
pub enum NodeMessage<'a> {
    /// A frame for one socket of the receiving node.
    Deliver {
        socket: Uuid,
        frame: &'a str,
    },
    /// Close one of its sockets, for this reason.
    Close {
        socket: Uuid,
        reason: DisconnectReason,
    },
    /// Put one of its sockets in a topic (a room admitted it).
    Subscribe {
        socket: Uuid,
        topic: Topic,
        host: bool,
    },
    /// Take one of its sockets out of a topic.
    Unsubscribe {
        socket: Uuid,
        topic: Topic,
    },
    /// A call to an actor the receiving node owns; answered with `Answer`
    /// on the caller's channel under the same id.
    Request {
        from: Uuid,
        call: u64,
        body: &'a str,
    },
    Answer {
        call: u64,
        body: &'a str,
    },
    /// Close a user's sockets opened with a token of this fingerprint
    /// (`auth::token_fingerprint`): it was revoked. Sent to every node.
    CloseTokenSockets {
        user: Uuid,
        token_fingerprint: u128,
        reason: DisconnectReason,
    },
    /// One frame for every socket of each of these users, wherever they
    /// are: a course-wide push is one message, not a `PUBLISH` per user.
    /// Sent to every node; `origin` delivered it to its own sockets already.
    DeliverToUsers {
        origin: Uuid,
        users: Vec<Uuid>,
        frame: &'a str,
    },
    /// A window of `origin`'s presence batches, for every node's sockets of
    /// the circles' members (`presence::fanout`). Sent to every node.
    Presence {
        origin: Uuid,
        flush: Cow<'a, PresenceFlush>,
    },
    /// What the other nodes' sockets missed of `origin`'s publications
    /// while it could not reach Redis: close those sockets (1012). Sent to every node.
    Missed {
        origin: Uuid,
        missed: MissedFrames,
    },
}

const REASONS: [DisconnectReason; 8] = [
    DisconnectReason::ServerShutdown,
    DisconnectReason::FrameTooLarge,
    DisconnectReason::HeartbeatTimeout,
    DisconnectReason::SlowConsumer,
    DisconnectReason::TokenRevoked,
    DisconnectReason::TokenExpired,
    DisconnectReason::BadFrames,
    DisconnectReason::MissedFrames,
];

impl NodeMessage<'_> {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            NodeMessage::Deliver { socket, frame } => {
                out.push(b'D');
                out.extend_from_slice(socket.as_bytes());
                out.extend_from_slice(frame.as_bytes());
            }
            NodeMessage::Close { socket, reason } => {
                out.push(b'C');
                out.extend_from_slice(socket.as_bytes());
                out.push(REASONS.iter().position(|known| known == reason).unwrap_or(0) as u8);
            }
            NodeMessage::Subscribe { socket, topic, host } => {
                out.push(b'S');
                out.extend_from_slice(socket.as_bytes());
                let (kind, id) = topic_parts(*topic);
                out.push(kind);
                out.extend_from_slice(id.as_bytes());
                out.push(u8::from(*host));
            }
            NodeMessage::Unsubscribe { socket, topic } => {
                out.push(b'U');
                out.extend_from_slice(socket.as_bytes());
                let (kind, id) = topic_parts(*topic);
                out.push(kind);
                out.extend_from_slice(id.as_bytes());
            }
            NodeMessage::Request { from, call, body } => {
                out.push(b'Q');
                out.extend_from_slice(from.as_bytes());
                out.extend_from_slice(&call.to_be_bytes());
                out.extend_from_slice(body.as_bytes());
            }
            NodeMessage::Answer { call, body } => {
                out.push(b'A');
                out.extend_from_slice(&call.to_be_bytes());
                out.extend_from_slice(body.as_bytes());
            }
            NodeMessage::CloseTokenSockets { user, token_fingerprint, reason } => {
                out.push(b'T');
                out.extend_from_slice(user.as_bytes());
                out.extend_from_slice(&token_fingerprint.to_be_bytes());
                out.push(REASONS.iter().position(|known| known == reason).unwrap_or(0) as u8);
            }
            NodeMessage::DeliverToUsers { origin, users, frame } => {
                out.push(b'W');
                out.extend_from_slice(origin.as_bytes());
                out.extend_from_slice(&(users.len() as u32).to_be_bytes());
                for user in users {
                    out.extend_from_slice(user.as_bytes());
                }
                out.extend_from_slice(frame.as_bytes());
            }
            NodeMessage::Presence { origin, flush } => {
                out.push(b'P');
                out.extend_from_slice(origin.as_bytes());
                put_len(&mut out, flush.circles.len());
                for batch in &flush.circles {
                    put_len(&mut out, batch.members.len());
                    for member in batch.members.iter() {
                        out.extend_from_slice(member.as_bytes());
                    }
                    put_len(&mut out, batch.singles.len());
                    for (user, frame) in &batch.singles {
                        out.extend_from_slice(user.as_bytes());
                        put_str(&mut out, frame);
                    }
                    put_str(&mut out, &batch.diff);
                }
            }
            NodeMessage::Missed { origin, missed } => {
                out.push(b'M');
                out.extend_from_slice(origin.as_bytes());
                out.push(u8::from(missed.everything));
                out.extend_from_slice(&(missed.topics.len() as u32).to_be_bytes());
                for topic in &missed.topics {
                    let (kind, id) = topic_parts(*topic);
                    out.push(kind);
                    out.extend_from_slice(id.as_bytes());
                }
                for socket in &missed.sockets {
                    out.extend_from_slice(socket.as_bytes());
                }
            }
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Option<NodeMessage<'_>> {
        let mut reader = Reader(bytes);
        Some(match reader.byte()? {
            b'D' => NodeMessage::Deliver { socket: reader.uuid()?, frame: reader.rest_str()? },
            b'C' => NodeMessage::Close { socket: reader.uuid()?, reason: *REASONS.get(reader.byte()? as usize)? },
            b'S' => {
                let socket = reader.uuid()?;
                let topic = topic_from_parts(reader.byte()?, reader.uuid()?)?;
                NodeMessage::Subscribe { socket, topic, host: reader.byte()? == 1 }
            }
            b'U' => {
                let socket = reader.uuid()?;
                NodeMessage::Unsubscribe { socket, topic: topic_from_parts(reader.byte()?, reader.uuid()?)? }
            }
            b'Q' => NodeMessage::Request { from: reader.uuid()?, call: reader.u64()?, body: reader.rest_str()? },
            b'A' => NodeMessage::Answer { call: reader.u64()?, body: reader.rest_str()? },
            b'T' => NodeMessage::CloseTokenSockets {
                user: reader.uuid()?,
                token_fingerprint: u128::from_be_bytes(reader.take(16)?.try_into().ok()?),
                reason: *REASONS.get(reader.byte()? as usize)?,
            },
            b'W' => {
                let origin = reader.uuid()?;
                let count = u32::from_be_bytes(reader.take(4)?.try_into().ok()?) as usize;
                // Each user is 16 bytes: a count the message cannot hold is refused before any allocation.
                if count > reader.0.len() / 16 {
                    return None;
                }
                let users = (0..count).map(|_| reader.uuid()).collect::<Option<Vec<Uuid>>>()?;
                NodeMessage::DeliverToUsers { origin, users, frame: reader.rest_str()? }
            }
            b'P' => {
                let origin = reader.uuid()?;
                // Every count is checked against the bytes left before anything is allocated for it.
                let circles = reader.count(4)?;
                let mut flush = PresenceFlush { circles: Vec::with_capacity(circles) };
                for _ in 0..circles {
                    let members = reader.count(16)?;
                    let members = (0..members).map(|_| reader.uuid()).collect::<Option<Arc<[Uuid]>>>()?;
                    let singles = reader.count(20)?;
                    let singles = (0..singles)
                        .map(|_| Some((reader.uuid()?, ByteString::from(reader.str()?))))
                        .collect::<Option<Vec<_>>>()?;
                    flush.circles.push(CircleBatch { members, singles, diff: ByteString::from(reader.str()?) });
                }
                NodeMessage::Presence { origin, flush: Cow::Owned(flush) }
            }
            b'M' => {
                let origin = reader.uuid()?;
                let everything = reader.byte()? == 1;
                let count = u32::from_be_bytes(reader.take(4)?.try_into().ok()?);
                let mut missed = MissedFrames { everything, ..MissedFrames::default() };
                for _ in 0..count {
                    missed.topics.insert(topic_from_parts(reader.byte()?, reader.uuid()?)?);
                }
                while !reader.0.is_empty() {
                    missed.sockets.insert(reader.uuid()?);
                }
                NodeMessage::Missed { origin, missed }
            }
            _ => return None,
        })
    }
}

fn put_len(out: &mut Vec<u8>, len: usize) {
    out.extend_from_slice(&(len as u32).to_be_bytes());
}

/// A string that is not the message's last field: its length, then its bytes.
fn put_str(out: &mut Vec<u8>, text: &str) {
    put_len(out, text.len());
    out.extend_from_slice(text.as_bytes());
}

/// Reads a message front to back; None when it is cut short or not UTF-8.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn byte(&mut self) -> Option<u8> {
        self.take(1).map(|bytes| bytes[0])
    }

    fn uuid(&mut self) -> Option<Uuid> {
        Uuid::from_slice(self.take(16)?).ok()
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }

    /// A count of items of at least `item_bytes` each; None when the rest
    /// of the message cannot hold that many.
    fn count(&mut self, item_bytes: usize) -> Option<usize> {
        let count = self.u32()? as usize;
        (count <= self.0.len() / item_bytes).then_some(count)
    }

    /// A string written by [`put_str`].
    fn str(&mut self) -> Option<&'a str> {
        let len = self.u32()? as usize;
        std::str::from_utf8(self.take(len)?).ok()
    }

    fn rest_str(&mut self) -> Option<&'a str> {
        let rest = std::mem::take(&mut self.0);
        std::str::from_utf8(rest).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_publication_survives_the_trip_with_every_audience() {
        let (origin, someone) = (Uuid::new_v4(), Uuid::new_v4());
        for audience in [
            Audience::Everyone,
            Audience::AllBut(someone),
            Audience::AllButSocket(someone),
            Audience::Hosts,
            Audience::Guests,
        ] {
            let publication = Publication { origin, audience, frame: r#"{"event":"new-message","data":{"é":1}}"# };
            assert_eq!(Publication::decode(&publication.encode()), Some(publication));
        }
    }

    #[test]
    fn node_messages_survive_the_trip() {
        let (node, socket, room) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let messages = [
            NodeMessage::Deliver { socket, frame: "{}" },
            NodeMessage::Close { socket, reason: DisconnectReason::TokenRevoked },
            NodeMessage::Subscribe { socket, topic: Topic::Room(room), host: true },
            NodeMessage::Subscribe { socket, topic: Topic::OfficeHours(room), host: false },
            NodeMessage::Unsubscribe { socket, topic: Topic::User(room) },
            NodeMessage::Request { from: node, call: u64::MAX, body: r#"{"call":"typing"}"# },
            NodeMessage::Answer { call: 7, body: "" },
            NodeMessage::CloseTokenSockets {
                user: node,
                token_fingerprint: u128::MAX - 5,
                reason: DisconnectReason::TokenRevoked,
            },
            NodeMessage::Close { socket, reason: DisconnectReason::MissedFrames },
            NodeMessage::Missed {
                origin: node,
                missed: MissedFrames {
                    everything: false,
                    topics: [Topic::Room(room), Topic::User(socket)].into(),
                    sockets: [socket, node].into(),
                },
            },
            NodeMessage::Missed { origin: node, missed: MissedFrames { everything: true, ..MissedFrames::default() } },
            NodeMessage::DeliverToUsers { origin: node, users: vec![socket, room], frame: r#"{"event":"x"}"# },
            NodeMessage::DeliverToUsers { origin: node, users: Vec::new(), frame: "" },
            NodeMessage::Presence { origin: node, flush: Cow::Owned(presence_flush(socket, room)) },
            NodeMessage::Presence { origin: node, flush: Cow::Owned(PresenceFlush { circles: Vec::new() }) },
        ];
        for message in messages {
            assert_eq!(NodeMessage::decode(&message.encode()), Some(message));
        }
    }

    fn presence_flush(a: Uuid, b: Uuid) -> PresenceFlush {
        PresenceFlush {
            circles: vec![
                CircleBatch {
                    members: Arc::from(vec![a, b]),
                    diff: ByteString::from(r#"{"event":"presence-diff","data":{"updates":[{"é":1}]}}"#),
                    singles: vec![(a, ByteString::from(r#"{"event":"presence-updated"}"#)), (b, ByteString::new())],
                },
                CircleBatch { members: Arc::from(Vec::new()), diff: ByteString::new(), singles: Vec::new() },
            ],
        }
    }

    #[test]
    fn garbage_is_refused_not_misread() {
        assert_eq!(NodeMessage::decode(b""), None);
        assert_eq!(NodeMessage::decode(b"Dshort"), None);
        assert_eq!(NodeMessage::decode(b"Zxxxxxxxxxxxxxxxxxxxxxxx"), None);
        let mut too_many =
            NodeMessage::DeliverToUsers { origin: Uuid::nil(), users: vec![Uuid::nil()], frame: "" }.encode();
        too_many[17..21].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(NodeMessage::decode(&too_many), None, "a count past the message's end");
        let flush = presence_flush(Uuid::nil(), Uuid::nil());
        let presence = NodeMessage::Presence { origin: Uuid::nil(), flush: Cow::Owned(flush) }.encode();
        for cut in 1..presence.len() {
            assert_eq!(NodeMessage::decode(&presence[..cut]), None, "a presence message cut at {cut}");
        }
        let mut too_many_members = presence.clone();
        too_many_members[21..25].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(NodeMessage::decode(&too_many_members), None);
        assert_eq!(Publication::decode(&[0; 20]), None);
        let mut bad_utf8 = NodeMessage::Deliver { socket: Uuid::nil(), frame: "" }.encode();
        bad_utf8.push(0xff);
        assert_eq!(NodeMessage::decode(&bad_utf8), None);
    }

    #[test]
    fn channel_names_round_trip_to_their_topics() {
        let id = Uuid::new_v4();
        for topic in [Topic::Room(id), Topic::User(id), Topic::OfficeHours(id)] {
            assert_eq!(topic_of_channel(&topic_channel(topic)), Some(topic));
        }
        assert_eq!(topic_of_channel(&node_channel(id)), None);
        assert_eq!(topic_of_channel("classroom:topic:x:nope"), None);
    }
}
