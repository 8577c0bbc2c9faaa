//! Who is in a room now, with which sockets: the part of a room kind's
//! state that rooms without a join window or attendance (study groups,
//! office-hours rooms) share.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::domain::room::{Admission, ParticipantView};

/// Someone in the room now.
struct Present {
    participant: ParticipantView,
    sockets: HashSet<Uuid>,
}

#[derive(Default)]
pub struct Occupants {
    present: HashMap<Uuid, Present>,
}

impl Occupants {
    /// Lets a socket in; `Entered` when its person was not in the room.
    pub fn admit(&mut self, user: &AuthUser, socket_id: Uuid, now: DateTime<Utc>) -> Admission {
        let mut admission = Admission::AnotherTab;
        let present = self.present.entry(user.id).or_insert_with(|| {
            admission = Admission::Entered;
            Present {
                participant: ParticipantView {
                    user_id: user.id,
                    name: user.name.clone(),
                    role: user.role,
                    joined_at: now,
                },
                sockets: HashSet::new(),
            }
        });
        present.sockets.insert(socket_id);
        admission
    }

    pub fn holds(&self, user_id: Uuid, socket_id: Uuid) -> bool {
        self.present.get(&user_id).is_some_and(|present| present.sockets.contains(&socket_id))
    }

    /// Whether all of these sockets of the person are in the room.
    pub fn holds_all(&self, user_id: Uuid, mut socket_ids: impl Iterator<Item = Uuid>) -> bool {
        let Some(present) = self.present.get(&user_id) else { return false };
        socket_ids.all(|socket_id| present.sockets.contains(&socket_id))
    }

    /// Takes a socket out; true when it was the person's last.
    pub fn leave(&mut self, user_id: Uuid, socket_id: Uuid) -> bool {
        let Some(present) = self.present.get_mut(&user_id) else { return false };
        present.sockets.remove(&socket_id);
        if present.sockets.is_empty() {
            self.present.remove(&user_id);
            return true;
        }
        false
    }

    /// Takes a person out with all their sockets; returns the sockets.
    pub fn remove(&mut self, user_id: Uuid) -> Vec<Uuid> {
        self.present.remove(&user_id).map(|present| present.sockets.into_iter().collect()).unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        self.present.is_empty()
    }

    pub fn contains(&self, user_id: Uuid) -> bool {
        self.present.contains_key(&user_id)
    }

    pub fn people(&self) -> Vec<Uuid> {
        self.present.keys().copied().collect()
    }

    /// Everyone present, by name.
    pub fn participants(&self) -> Vec<ParticipantView> {
        let mut people: Vec<ParticipantView> = self.present.values().map(|p| p.participant.clone()).collect();
        people.sort_by(|a, b| a.name.cmp(&b.name));
        people
    }

    pub fn participant(&self, user_id: Uuid) -> Option<ParticipantView> {
        self.present.get(&user_id).map(|p| p.participant.clone())
    }
}
