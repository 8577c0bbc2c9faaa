//! The broker over Redis (`REDIS_URL`): a publication is delivered to this
//! node's subscribers at once and published to the topic's channel for the
//! other nodes'; subscribing a socket of another node (a room here admitted
//! it) asks that node to subscribe it.

use std::sync::Arc;

use bytestring::ByteString;
use futures_util::future::BoxFuture;
use uuid::Uuid;

use super::wire::NodeMessage;
use super::Cluster;
use crate::engine::broker::Broker;
use crate::engine::hub::{Audience, Hub, SocketRef, Topic};
use crate::engine::presence::fanout::PresenceFlush;

/// Up to this many users, a push to users is a `PUBLISH` per user.
pub const USERS_PUBLISHED_ONE_BY_ONE: usize = 16;

pub struct RedisBroker {
    hub: Arc<Hub>,
    cluster: Arc<Cluster>,
}

impl RedisBroker {
    pub fn new(hub: Arc<Hub>, cluster: Arc<Cluster>) -> Self {
        Self { hub, cluster }
    }
}

impl Broker for RedisBroker {
    fn publish(&self, topic: Topic, frame: &ByteString, audience: Audience) {
        self.hub.deliver(topic, frame, audience);
        self.cluster.publish(topic, frame, audience);
    }

    /// A few users: a publication to each one's topic, which reaches only
    /// the nodes that have their sockets. Many (a course): one message to
    /// every node, which each delivers to the sockets it has.
    fn publish_to_users(&self, users: &mut dyn Iterator<Item = Uuid>, frame: &ByteString) {
        let users: Vec<Uuid> = users.collect();
        for user in &users {
            self.hub.deliver(Topic::User(*user), frame, Audience::Everyone);
        }
        if users.len() <= USERS_PUBLISHED_ONE_BY_ONE {
            for user in users {
                self.cluster.publish(Topic::User(user), frame, Audience::Everyone);
            }
        } else {
            self.cluster.publish_to_users(users, frame);
        }
    }

    /// One message to every node, which each delivers to the members it has.
    fn publish_presence(&self, flush: &PresenceFlush) {
        flush.deliver(&self.hub);
        self.cluster.publish_presence(flush);
    }

    fn subscribe(&self, topic: Topic, socket: SocketRef, host: bool) {
        if let Some(node) = socket.home() {
            return self.cluster.tell(node, &NodeMessage::Subscribe { socket: socket.id(), topic, host });
        }
        if let Topic::User(_) = topic {
            // Every socket subscribes to its user's topic first: the directory of local sockets.
            self.cluster.socket_opened(&socket);
        }
        self.hub.subscribe(topic, socket, host);
        // Not awaited: who must not miss the first frame listens earlier (`Cluster::expect_topic`).
        drop(self.cluster.sync_topic(topic));
    }

    fn unsubscribe(&self, topic: Topic, socket_id: Uuid) {
        if let Some(node) = self.cluster.home_of(socket_id) {
            return self.cluster.tell(node, &NodeMessage::Unsubscribe { socket: socket_id, topic });
        }
        if let Topic::User(_) = topic {
            self.cluster.socket_closed(socket_id);
        }
        self.hub.unsubscribe(topic, socket_id);
        drop(self.cluster.sync_topic(topic));
    }

    /// Other nodes may have subscribers: always worth publishing.
    fn has_subscribers(&self, _: Topic) -> bool {
        true
    }

    /// Here, or a node listening to the topic's channel (a node listens
    /// while it has a subscriber, or one on its way in).
    fn is_watched(&self, topic: Topic) -> BoxFuture<'static, bool> {
        if self.hub.count(topic) > 0 {
            return Box::pin(std::future::ready(true));
        }
        let cluster = Arc::clone(&self.cluster);
        Box::pin(async move {
            match cluster.listening_nodes(topic).await {
                Ok(nodes) => nodes > 0,
                Err(err) => {
                    log::warn!("node {}: cannot tell who listens to {topic:?}: {err}", cluster.node_id);
                    true
                }
            }
        })
    }
}
