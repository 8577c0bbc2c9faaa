//! A socket of another node, as the rooms of this node see it: frames for
//! it and requests to close it go to its node, which hands them to the real
//! socket under its own slow-consumer policy.

use std::sync::Arc;

use bytestring::ByteString;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::wire::NodeMessage;
use super::Cluster;
use crate::auth::AuthUser;
use crate::engine::hub::{Refused, Socket, SocketRef};
use crate::engine::DisconnectReason;

/// A socket as a forwarded call names it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SocketStub {
    pub id: Uuid,
    /// The node the socket is open on.
    pub node: Uuid,
    pub user: AuthUser,
}

impl SocketStub {
    /// A socket of this node (`node`), as another node is to know it.
    pub fn of(socket: &SocketRef, node: Uuid) -> Self {
        Self { id: socket.id(), node, user: socket.user().as_ref().clone() }
    }
}

pub struct RemoteSocket {
    id: Uuid,
    node: Uuid,
    user: Arc<AuthUser>,
    cluster: Arc<Cluster>,
}

impl RemoteSocket {
    pub fn new(stub: SocketStub, cluster: Arc<Cluster>) -> Arc<Self> {
        Arc::new(Self { id: stub.id, node: stub.node, user: Arc::new(stub.user), cluster })
    }
}

impl Socket for RemoteSocket {
    fn id(&self) -> Uuid {
        self.id
    }

    fn user(&self) -> &Arc<AuthUser> {
        &self.user
    }

    /// Never full here: its own node applies the slow-consumer policy.
    fn try_push(&self, frame: ByteString) -> Result<(), Refused> {
        self.cluster.tell(self.node, &NodeMessage::Deliver { socket: self.id, frame: &frame });
        Ok(())
    }

    fn close(&self, reason: DisconnectReason) {
        self.cluster.tell(self.node, &NodeMessage::Close { socket: self.id, reason });
    }

    fn opened_with(&self, _: u128) -> bool {
        false
    }

    fn home(&self) -> Option<Uuid> {
        Some(self.node)
    }
}
