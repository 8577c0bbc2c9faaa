//! The broker seam (centrifuge's `Broker`, Phoenix.PubSub): every fan-out
//! of the engine publishes one pre-serialized frame to a topic here, and
//! the broker gets it to the subscribed sockets on every node.
//!
//! The in-process broker, the default, hands publications straight to this
//! node's [`Hub`]. A broker over Redis implements the same trait: it sends
//! publications to the other nodes and hands the ones it receives to its own
//! hub, so rooms and presence never know how many nodes there are. Rooms
//! keep member ids, never socket addresses; sockets live in the hub.

use std::sync::Arc;

use bytestring::ByteString;
use futures_util::future::BoxFuture;
use uuid::Uuid;

use crate::engine::hub::{Audience, Hub, SocketRef, Topic};
use crate::engine::presence::fanout::PresenceFlush;

pub trait Broker: Send + Sync + 'static {
    /// Sends `frame` to the topic's wanted subscribers, wherever they are.
    /// Publications of one publisher to one topic arrive in order.
    fn publish(&self, topic: Topic, frame: &ByteString, audience: Audience);

    /// Sends a window's presence batches to their circles' members wherever
    /// they are (see `presence::fanout`).
    fn publish_presence(&self, flush: &PresenceFlush);

    /// Subscribes a socket of this node to a topic.
    fn subscribe(&self, topic: Topic, socket: SocketRef, host: bool);

    fn unsubscribe(&self, topic: Topic, socket_id: Uuid);

    /// Whether a publication to the topic could reach anyone (false only
    /// when certain): lets a caller skip building a frame for nobody.
    fn has_subscribers(&self, topic: Topic) -> bool;

    /// Whether a socket on any node is subscribed to the topic now. Unlike
    /// `has_subscribers` it may ask the other nodes' way (Redis), so it is for
    /// rare decisions such as stopping an idle actor; true when it cannot tell.
    fn is_watched(&self, topic: Topic) -> BoxFuture<'static, bool> {
        Box::pin(std::future::ready(self.has_subscribers(topic)))
    }

    /// Sends `frame` to every socket of each of these users.
    fn publish_to_users(&self, users: &mut dyn Iterator<Item = Uuid>, frame: &ByteString) {
        for user in users {
            self.publish(Topic::User(user), frame, Audience::Everyone);
        }
    }
}

/// One node, no network: publishing is delivering.
pub struct LocalBroker {
    hub: Arc<Hub>,
}

impl LocalBroker {
    pub fn new(hub: Arc<Hub>) -> Self {
        Self { hub }
    }
}

impl Broker for LocalBroker {
    fn publish(&self, topic: Topic, frame: &ByteString, audience: Audience) {
        self.hub.deliver(topic, frame, audience);
    }

    fn publish_presence(&self, flush: &PresenceFlush) {
        flush.deliver(&self.hub);
    }

    fn subscribe(&self, topic: Topic, socket: SocketRef, host: bool) {
        self.hub.subscribe(topic, socket, host);
    }

    fn unsubscribe(&self, topic: Topic, socket_id: Uuid) {
        self.hub.unsubscribe(topic, socket_id);
    }

    fn has_subscribers(&self, topic: Topic) -> bool {
        self.hub.count(topic) > 0
    }
}
