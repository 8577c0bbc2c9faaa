//! Presence of one user, aggregated over all of their connections.
//!
//! Pure rules: no I/O and no clock. Every call takes `now`, so the owning actor
//! decides what time it is and tests drive it with made-up instants.
//!
//! `lastSeenAt` in a [`PresenceView`] is deliberately coarse so that heartbeats
//! are not "changes": while the user is not offline it is the moment the current
//! online session began (first connection opened); while offline it is the
//! moment the last connection closed. The fine-grained time of the latest
//! activity, which is what gets stored, is [`Presence::last_seen_at`].

use std::collections::HashSet;
use std::fmt;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::input;
use crate::error::AppError;

/// Longest activity line accepted, counted in characters, not bytes.
pub const MAX_ACTIVITY_CHARS: usize = 100;

/// A status as it is shown to others (and stored in `user_presence.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PresenceStatus {
    /// Connected and active recently, or manually "available".
    Online,
    /// Idle for `idle_after`, or manually away.
    Away,
    /// Manually busy.
    Busy,
    /// Manually "do not disturb".
    Dnd,
    /// No open connection, or hidden by `appear_offline`.
    Offline,
}

impl PresenceStatus {
    /// The wire and database spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            PresenceStatus::Online => "online",
            PresenceStatus::Away => "away",
            PresenceStatus::Busy => "busy",
            PresenceStatus::Dnd => "dnd",
            PresenceStatus::Offline => "offline",
        }
    }

    /// Inverse of [`PresenceStatus::as_str`]; `None` for any other text.
    pub fn parse(text: &str) -> Option<PresenceStatus> {
        use PresenceStatus::*;
        [Online, Away, Busy, Dnd, Offline].into_iter().find(|status| status.as_str() == text)
    }
}

/// A status picked by hand; it overrides the automatic one while it lasts.
/// There is no manual "offline": that is [`PrivacySettings::appear_offline`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ManualStatus {
    /// Available: also keeps the user from turning away when idle.
    Online,
    /// Away even while active.
    Away,
    /// Busy.
    Busy,
    /// Do not disturb.
    Dnd,
}

impl ManualStatus {
    /// The wire and database spelling (same words as [`PresenceStatus`]).
    pub fn as_str(self) -> &'static str {
        PresenceStatus::from(self).as_str()
    }

    /// Inverse of [`ManualStatus::as_str`]; `None` for any other text, "offline" included.
    pub fn parse(text: &str) -> Option<ManualStatus> {
        use ManualStatus::*;
        [Online, Away, Busy, Dnd].into_iter().find(|status| status.as_str() == text)
    }
}

impl From<ManualStatus> for PresenceStatus {
    /// A manual status shows as the status of the same name.
    fn from(status: ManualStatus) -> Self {
        match status {
            ManualStatus::Online => PresenceStatus::Online,
            ManualStatus::Away => PresenceStatus::Away,
            ManualStatus::Busy => PresenceStatus::Busy,
            ManualStatus::Dnd => PresenceStatus::Dnd,
        }
    }
}

/// What watchers may see; the user's own view ignores these.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrivacySettings {
    /// Watchers never see the activity line.
    pub hide_activity: bool,
    /// Watchers never see `lastSeenAt`.
    pub hide_last_seen: bool,
    /// Watchers see "offline" with no activity and no `lastSeenAt`, whatever the
    /// truth. `lastSeenAt` is hidden too (not frozen) so that invisible users look
    /// the same whether they are connected or not: watchers can tell the setting
    /// is on, never whether the user is there.
    pub appear_offline: bool,
}

/// New privacy settings as asked for; a field left out keeps its value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PrivacyChange {
    /// Watchers never see my activity line.
    pub hide_activity: Option<bool>,
    /// Watchers never see when I was last seen.
    pub hide_last_seen: Option<bool>,
    /// Watchers see me offline (I keep working normally).
    pub appear_offline: Option<bool>,
}

impl PrivacyChange {
    /// `current` with the given fields replaced.
    pub fn applied_to(self, current: PrivacySettings) -> PrivacySettings {
        PrivacySettings {
            hide_activity: self.hide_activity.unwrap_or(current.hide_activity),
            hide_last_seen: self.hide_last_seen.unwrap_or(current.hide_last_seen),
            appear_offline: self.appear_offline.unwrap_or(current.appear_offline),
        }
    }
}

/// Presence as sent on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PresenceView {
    /// The status shown.
    pub status: PresenceStatus,
    /// The activity line; always `None` while offline.
    pub activity: Option<String>,
    /// Session start while not offline, last close while offline (see module doc).
    pub last_seen_at: Option<DateTime<Utc>>,
}

/// Why an update was refused; the state is left unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PresenceError {
    /// The activity line has more than [`MAX_ACTIVITY_CHARS`] characters. It is
    /// rejected rather than truncated so the client learns its text was not shown.
    ActivityTooLong {
        /// Length of the refused line, in characters.
        chars: usize,
    },
    /// The manual status would expire at or before `now`.
    ExpiryNotInFuture,
    /// An expiry was given without a manual status to expire.
    ExpiryWithoutStatus,
    /// A status that cannot be picked by hand ("offline" included: that is
    /// [`PrivacySettings::appear_offline`]).
    InvalidStatus {
        /// The refused text.
        given: String,
    },
    /// Text or a time no field accepts (`domain::input`).
    Input(AppError),
}

impl fmt::Display for PresenceError {
    /// A message fit for the client.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PresenceError::ActivityTooLong { chars } => {
                write!(f, "activity is {chars} characters long; at most {MAX_ACTIVITY_CHARS} are allowed")
            }
            PresenceError::ExpiryNotInFuture => {
                write!(f, "the status expiry must be in the future")
            }
            PresenceError::ExpiryWithoutStatus => write!(f, "an expiry needs a status to expire"),
            PresenceError::InvalidStatus { given } => {
                write!(f, "status {given:?} cannot be set; use online, away, busy or dnd, or null to clear it")
            }
            PresenceError::Input(err) => write!(f, "{}", err.body.message),
        }
    }
}

impl std::error::Error for PresenceError {}

impl From<PresenceError> for AppError {
    /// Every refusal is bad input (400), each with its own code.
    fn from(err: PresenceError) -> Self {
        if let PresenceError::Input(err) = err {
            return err;
        }
        let code = match &err {
            PresenceError::ActivityTooLong { .. } => "activity_too_long",
            PresenceError::ExpiryNotInFuture => "expiry_not_in_future",
            PresenceError::ExpiryWithoutStatus => "expiry_without_status",
            PresenceError::InvalidStatus { .. } => "invalid_status",
            PresenceError::Input(_) => "invalid_data",
        };
        let mut message = err.to_string();
        if let Some(first) = message.get(0..1) {
            message = first.to_uppercase() + &message[1..] + ".";
        }
        AppError::bad_request(code, message)
    }
}

/// A change asked for by the user, as it arrives (the `update-presence` event
/// and `PUT /api/presence/status` share it). Absent fields stay as they are;
/// `null` clears. Unknown fields are refused so a typo is not silently ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PresenceUpdate {
    /// `online`, `away`, `busy` or `dnd` sets a manual status; `null` clears it.
    #[serde(default, deserialize_with = "crate::domain::input::absent_or_null")]
    #[schema(value_type = Option<String>)]
    pub status: Option<Option<String>>,
    /// The activity line (at most 100 characters); `null` or blank clears it.
    #[serde(default, deserialize_with = "crate::domain::input::absent_or_null")]
    #[schema(value_type = Option<String>)]
    pub activity: Option<Option<String>>,
    /// When the manual status given with it ends by itself.
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

/// A [`PresenceUpdate`] whose status was understood (serialized between
/// nodes: a field left out is unchanged, `null` is cleared).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PresenceChange {
    /// `None`: unchanged; `Some(None)`: cleared; `Some(Some(s))`: set.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub status: Option<Option<ManualStatus>>,
    /// Only with a status being set.
    pub expires_at: Option<DateTime<Utc>>,
    /// `None`: unchanged; `Some(None)`: cleared; `Some(Some(text))`: set.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub activity: Option<Option<String>>,
}

/// A field that is there, `null` included (left out, it stays `None`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

impl PresenceUpdate {
    /// Parses the status text; [`PresenceError::InvalidStatus`] for anything
    /// that is not a manual status.
    pub fn into_change(self) -> Result<PresenceChange, PresenceError> {
        if let Some(Some(activity)) = &self.activity {
            input::single_line("activity", activity).map_err(PresenceError::Input)?;
        }
        if let Some(at) = self.expires_at {
            input::time("expiresAt", at).map_err(PresenceError::Input)?;
        }
        let status = match self.status {
            None => None,
            Some(None) => Some(None),
            Some(Some(text)) => {
                Some(Some(ManualStatus::parse(&text).ok_or(PresenceError::InvalidStatus { given: text })?))
            }
        };
        Ok(PresenceChange { status, expires_at: self.expires_at, activity: self.activity })
    }
}

/// The activity line the engine sets while a user is in a live session; a
/// long title is shortened (with an ellipsis) to fit [`MAX_ACTIVITY_CHARS`].
pub fn live_session_activity(title: &str) -> String {
    const PREFIX: &str = "In live session: ";
    let room = MAX_ACTIVITY_CHARS - PREFIX.chars().count();
    let title = title.trim();
    if title.chars().count() <= room {
        return format!("{PREFIX}{title}");
    }
    let short: String = title.chars().take(room - 1).collect();
    format!("{PREFIX}{}…", short.trim_end())
}

/// What only the user sees of their own presence: the status they set by
/// hand (if any, and until when) and whether the activity line is the one the
/// engine set (joining a live session) rather than theirs. Menus need it to
/// show the truth: "Do not disturb until 15:30", not the status it results in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OwnPresence {
    /// The manual status in force; null when the status is automatic.
    pub manual_status: Option<ManualStatus>,
    /// When the manual status ends by itself; null when it holds until changed.
    pub manual_status_expires_at: Option<DateTime<Utc>>,
    /// The activity line was set by the server (a live session), not by the user.
    pub activity_automatic: bool,
}

/// One person's presence as REST answers and acks carry it:
/// `{userId, name, status, activity, lastSeenAt}`, and `own` in the user's
/// own view only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserPresenceView {
    /// Whose presence.
    pub user_id: Uuid,
    /// Their display name.
    pub name: String,
    /// As the reader may see it (privacy applied unless it is their own).
    pub status: PresenceStatus,
    /// Null while offline or hidden.
    pub activity: Option<String>,
    /// Null when never seen or hidden.
    pub last_seen_at: Option<DateTime<Utc>>,
    /// The user's own view only (absent from anyone else's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub own: Option<OwnPresence>,
}

impl UserPresenceView {
    /// Names a view.
    pub fn new(user_id: Uuid, name: impl Into<String>, view: PresenceView) -> Self {
        Self {
            user_id,
            name: name.into(),
            status: view.status,
            activity: view.activity,
            last_seen_at: view.last_seen_at,
            own: None,
        }
    }

    /// The same view with what only its owner sees.
    pub fn with_own(mut self, own: OwnPresence) -> Self {
        self.own = Some(own);
        self
    }
}

/// The order of a list of contacts: people not offline first, by name; then
/// offline people, the most recently seen first; those never seen (or who
/// hide it) last, by name. Ties by user id, so the order is stable.
pub fn sort_contacts(views: &mut [UserPresenceView]) {
    views.sort_by(|a, b| {
        let offline = |v: &UserPresenceView| v.status == PresenceStatus::Offline;
        offline(a)
            .cmp(&offline(b))
            .then_with(|| if offline(a) { b.last_seen_at.cmp(&a.last_seen_at) } else { std::cmp::Ordering::Equal })
            .then_with(|| a.name.cmp(&b.name))
            .then_with(|| a.user_id.cmp(&b.user_id))
    });
}

/// Presence of one user: their open connections, manual status, activity line
/// and privacy settings, and the rules that turn these into views.
#[derive(Debug, Clone)]
pub struct Presence {
    user_id: Uuid,
    idle_after: Duration,
    connections: HashSet<Uuid>,
    /// Latest activity while online; the time the last connection closed once offline.
    last_seen_at: Option<DateTime<Utc>>,
    /// When the current online session began; `None` while offline.
    online_since: Option<DateTime<Utc>>,
    manual: Option<ManualStatus>,
    manual_expires_at: Option<DateTime<Utc>>,
    activity: Option<String>,
    /// The activity line is the engine's (a live session), not the user's.
    activity_automatic: bool,
    privacy: PrivacySettings,
    /// The watcher view last handed out, so identical states are not re-sent.
    published: Option<PresenceView>,
}

impl Presence {
    /// An offline user with no history. A negative `idle_after` counts as zero.
    pub fn new(user_id: Uuid, idle_after: Duration) -> Self {
        Self {
            user_id,
            idle_after: idle_after.max(Duration::zero()),
            connections: HashSet::new(),
            last_seen_at: None,
            online_since: None,
            manual: None,
            manual_expires_at: None,
            activity: None,
            activity_automatic: false,
            privacy: PrivacySettings::default(),
            published: None,
        }
    }

    /// Loads stored fields after a restart; call it right after [`Presence::new`].
    /// An expired manual status is kept but has no effect. An over-long stored
    /// activity is truncated, not refused: a bad row must not fail a restart.
    pub fn restore(
        &mut self,
        last_seen_at: Option<DateTime<Utc>>,
        manual: Option<ManualStatus>,
        manual_expires_at: Option<DateTime<Utc>>,
        activity: Option<String>,
        privacy: PrivacySettings,
    ) {
        // max: a stale row must not move last-seen backwards if connections came first.
        self.last_seen_at = self.last_seen_at.max(last_seen_at);
        self.manual = manual;
        self.manual_expires_at = manual.and(manual_expires_at);
        self.activity = activity
            .map(|text| text.chars().take(MAX_ACTIVITY_CHARS).collect::<String>())
            .filter(|text| !text.trim().is_empty());
        self.activity_automatic = false;
        self.privacy = privacy;
        self.published = None;
    }

    /// The user this presence belongs to.
    pub fn user_id(&self) -> Uuid {
        self.user_id
    }

    /// Opens a connection; opening counts as activity, hearing again of
    /// one already open does not (a socket is announced twice when the actor
    /// starts: by the hub at load, then by its own late `Connect`). Returns
    /// `true` if it was not open yet.
    pub fn connect(&mut self, connection: Uuid, now: DateTime<Utc>) -> bool {
        if self.connections.is_empty() {
            self.online_since = Some(now);
        }
        let added = self.connections.insert(connection);
        if added {
            self.mark_active(now);
        }
        added
    }

    /// Closes a connection. Closing the last one makes the user offline, sets
    /// last-seen to `now` and clears the activity line (it stopped being true; the
    /// client or engine sets it again on reconnect). Closing a tab is not activity:
    /// dropped networks close tabs too. Returns `true` if it was open.
    pub fn disconnect(&mut self, connection: Uuid, now: DateTime<Utc>) -> bool {
        if !self.connections.remove(&connection) {
            return false;
        }
        if self.connections.is_empty() {
            self.last_seen_at = self.last_seen_at.max(Some(now));
            self.online_since = None;
            self.activity = None;
            self.activity_automatic = false;
        }
        true
    }

    /// Records activity (any frame, heartbeats included) from a connection.
    /// Frames from a connection that is not open are ignored and return `false`:
    /// a late frame after the close must not make an offline user "seen".
    pub fn touch(&mut self, connection: Uuid, now: DateTime<Utc>) -> bool {
        if !self.connections.contains(&connection) {
            return false;
        }
        self.mark_active(now);
        true
    }

    /// Sets (`Some`) or clears (`None`) the manual status, optionally until
    /// `expires_at`; counts as activity.
    /// Errors: [`PresenceError::ExpiryNotInFuture`] if `expires_at <= now`,
    /// [`PresenceError::ExpiryWithoutStatus`] if clearing with an expiry.
    pub fn set_manual(
        &mut self,
        status: Option<ManualStatus>,
        expires_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<(), PresenceError> {
        match (status, expires_at) {
            (None, Some(_)) => return Err(PresenceError::ExpiryWithoutStatus),
            (Some(_), Some(at)) if at <= now => return Err(PresenceError::ExpiryNotInFuture),
            _ => {}
        }
        self.manual = status;
        self.manual_expires_at = expires_at;
        self.mark_active(now);
        Ok(())
    }

    /// Sets or clears the activity line; counts as activity. Blank text clears it,
    /// so `""` and `None` never publish as two different views.
    /// Errors: [`PresenceError::ActivityTooLong`] above [`MAX_ACTIVITY_CHARS`] characters.
    pub fn set_activity(&mut self, activity: Option<String>, now: DateTime<Utc>) -> Result<(), PresenceError> {
        let activity = activity.filter(|text| !text.trim().is_empty());
        if let Some(text) = &activity {
            let chars = text.chars().count();
            if chars > MAX_ACTIVITY_CHARS {
                return Err(PresenceError::ActivityTooLong { chars });
            }
        }
        self.activity = activity;
        self.activity_automatic = false;
        self.mark_active(now);
        Ok(())
    }

    /// Sets the activity line on the user's behalf (joining a live session):
    /// it shows like any other, but the user's own view marks it automatic,
    /// and it stays automatic until the user writes a line of their own.
    pub fn set_automatic_activity(&mut self, text: String, now: DateTime<Utc>) -> Result<(), PresenceError> {
        self.set_activity(Some(text), now)?;
        self.activity_automatic = self.activity.is_some();
        Ok(())
    }

    /// Whether the activity line is the automatic one.
    pub fn activity_is_automatic(&self) -> bool {
        self.activity_automatic && self.activity.is_some()
    }

    /// What only the user sees: the manual status in force and whether the
    /// activity line is automatic.
    pub fn own_view(&self, now: DateTime<Utc>) -> OwnPresence {
        let manual = self.manual_status(now);
        OwnPresence {
            manual_status: manual.map(|(status, _)| status),
            manual_status_expires_at: manual.and_then(|(_, at)| at),
            activity_automatic: self.activity_is_automatic(),
        }
    }

    /// Applies a whole [`PresenceChange`] or none of it: everything is checked
    /// before anything changes. Counts as activity. An empty change is a
    /// heartbeat (activity only), which is what a client's periodic
    /// `update-presence {}` is.
    pub fn apply(&mut self, change: PresenceChange, now: DateTime<Utc>) -> Result<(), PresenceError> {
        match (change.status, change.expires_at) {
            (None | Some(None), Some(_)) => return Err(PresenceError::ExpiryWithoutStatus),
            (Some(Some(_)), Some(at)) if at <= now => return Err(PresenceError::ExpiryNotInFuture),
            _ => {}
        }
        let activity = change.activity.map(|text| text.filter(|text| !text.trim().is_empty()));
        if let Some(Some(text)) = &activity {
            let chars = text.chars().count();
            if chars > MAX_ACTIVITY_CHARS {
                return Err(PresenceError::ActivityTooLong { chars });
            }
        }
        if let Some(status) = change.status {
            self.manual = status;
            self.manual_expires_at = change.expires_at;
        }
        if let Some(activity) = activity {
            // The automatic line sent back as it is (a form saved with it)
            // stays automatic: it is not the user's, and it goes with the session.
            let resent = self.activity_is_automatic() && activity.as_deref() == self.activity.as_deref();
            if !resent {
                self.activity = activity;
                self.activity_automatic = false;
            }
        }
        self.mark_active(now);
        Ok(())
    }

    /// Whether [`Presence::watcher_view_changed`] would return a view now,
    /// without recording it: lets the owner decide to publish (later, coalesced)
    /// without spending the change.
    pub fn watcher_view_pending(&self, now: DateTime<Utc>) -> bool {
        self.published.as_ref() != Some(&self.view_for_watcher(now))
    }

    /// Replaces the privacy settings.
    pub fn set_privacy(&mut self, privacy: PrivacySettings) {
        self.privacy = privacy;
    }

    /// The current privacy settings.
    pub fn privacy(&self) -> PrivacySettings {
        self.privacy
    }

    /// How many connections are open.
    pub fn connection_count(&self) -> usize {
        self.connections.len()
    }

    /// Whether any connection is open.
    pub fn is_connected(&self) -> bool {
        !self.connections.is_empty()
    }

    /// Latest activity while online, last close while offline: the value to store.
    pub fn last_seen_at(&self) -> Option<DateTime<Utc>> {
        self.last_seen_at
    }

    /// The stored activity line, whatever the privacy settings.
    pub fn activity(&self) -> Option<&str> {
        self.activity.as_deref()
    }

    /// The manual status and its expiry, or `None` if there is none or it expired.
    pub fn manual_status(&self, now: DateTime<Utc>) -> Option<(ManualStatus, Option<DateTime<Utc>>)> {
        self.active_manual(now).map(|status| (status, self.manual_expires_at))
    }

    /// The true status, ignoring `appear_offline`: offline without connections,
    /// else the live manual status, else away once idle for `idle_after`, else online.
    pub fn effective_status(&self, now: DateTime<Utc>) -> PresenceStatus {
        if !self.is_connected() {
            return PresenceStatus::Offline;
        }
        if let Some(status) = self.active_manual(now) {
            return status.into();
        }
        match self.idle_at() {
            Some(at) if now >= at => PresenceStatus::Away,
            _ => PresenceStatus::Online,
        }
    }

    /// What the user sees of themselves: the truth, privacy settings ignored.
    pub fn view_for_self(&self, now: DateTime<Utc>) -> PresenceView {
        let status = self.effective_status(now);
        if status == PresenceStatus::Offline {
            return PresenceView { status, activity: None, last_seen_at: self.last_seen_at };
        }
        PresenceView { status, activity: self.activity.clone(), last_seen_at: self.online_since }
    }

    /// What others see: [`Presence::view_for_self`] filtered by the privacy settings.
    pub fn view_for_watcher(&self, now: DateTime<Utc>) -> PresenceView {
        if self.privacy.appear_offline {
            return PresenceView { status: PresenceStatus::Offline, activity: None, last_seen_at: None };
        }
        let mut view = self.view_for_self(now);
        if self.privacy.hide_activity {
            view.activity = None;
        }
        if self.privacy.hide_last_seen {
            view.last_seen_at = None;
        }
        view
    }

    /// The watcher view if it differs from the one this last returned, else `None`.
    /// The first call (also the first after [`Presence::restore`]) always returns
    /// it. Touches while online change nothing, as `lastSeenAt` is coarse.
    pub fn watcher_view_changed(&mut self, now: DateTime<Utc>) -> Option<PresenceView> {
        let view = self.view_for_watcher(now);
        if self.published.as_ref() == Some(&view) {
            return None;
        }
        self.published = Some(view.clone());
        Some(view)
    }

    /// Watchers may have been told anything (the presence moved from a dead
    /// node's actor): the next view is published whatever it is.
    pub fn forget_published(&mut self) {
        self.published = None;
    }

    /// The next instant after `now` at which the status may change with no call
    /// in between (turning idle, manual status expiring), for one timer instead of
    /// polling. `None` when nothing will change on its own. Recompute after every
    /// call and after the timer fires; it may fire with no visible change.
    pub fn next_deadline(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if !self.is_connected() {
            return None;
        }
        if self.active_manual(now).is_some() {
            // Idling cannot show through a manual status, so only its expiry matters.
            return self.manual_expires_at;
        }
        self.idle_at().filter(|at| *at > now)
    }

    /// Activity only counts while connected; `max` guards against events that
    /// arrive out of order, so last-seen never moves backwards.
    fn mark_active(&mut self, now: DateTime<Utc>) {
        if self.is_connected() {
            self.last_seen_at = self.last_seen_at.max(Some(now));
        }
    }

    /// The manual status unless its expiry has passed (expired at exactly `expires_at`).
    fn active_manual(&self, now: DateTime<Utc>) -> Option<ManualStatus> {
        self.manual.filter(|_| self.manual_expires_at.is_none_or(|at| now < at))
    }

    /// When the user turns away if nothing happens; `None` on overflow (never).
    fn idle_at(&self) -> Option<DateTime<Utc>> {
        self.last_seen_at?.checked_add_signed(self.idle_after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use PresenceStatus::{Away, Busy, Dnd, Offline, Online};

    /// A fixed instant plus `minutes`, so tests never read the clock.
    fn at(minutes: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap() + Duration::minutes(minutes)
    }

    #[test]
    fn a_change_crosses_nodes_telling_unchanged_from_cleared() {
        let changes = [
            PresenceChange::default(),
            PresenceChange { status: Some(None), activity: Some(None), expires_at: None },
            PresenceChange {
                status: Some(Some(ManualStatus::Dnd)),
                expires_at: Some(at(30)),
                activity: Some(Some("Reading".into())),
            },
        ];
        for change in changes {
            let text = serde_json::to_string(&change).unwrap();
            assert_eq!(serde_json::from_str::<PresenceChange>(&text).unwrap(), change, "{text}");
        }
    }

    /// A user who goes away after 5 idle minutes, with one tab opened at minute 0.
    fn connected() -> (Presence, Uuid) {
        let mut p = Presence::new(Uuid::new_v4(), Duration::minutes(5));
        let tab = Uuid::new_v4();
        p.connect(tab, at(0));
        (p, tab)
    }

    #[test]
    fn three_tabs_stay_online_until_the_last_closes() {
        let (mut p, a) = connected();
        let (b, c) = (Uuid::new_v4(), Uuid::new_v4());
        assert!(p.connect(b, at(0)) && p.connect(c, at(0)));
        assert!(!p.connect(a, at(0)), "the same tab twice is one connection");
        assert!(p.disconnect(a, at(1)) && p.disconnect(b, at(2)));
        assert_eq!((p.connection_count(), p.effective_status(at(2))), (1, Online));
        assert!(!p.disconnect(b, at(2)), "already closed");
        assert!(p.disconnect(c, at(3)));
        assert_eq!(p.last_seen_at(), Some(at(3)));
        let view = p.view_for_watcher(at(4));
        assert_eq!((view.status, view.last_seen_at), (Offline, Some(at(3))));
        assert!(!p.touch(c, at(5)), "a late frame from a closed tab is ignored");
        assert_eq!(p.last_seen_at(), Some(at(3)));
    }

    #[test]
    fn hearing_again_of_an_open_connection_is_not_activity() {
        let mut p = Presence::new(Uuid::new_v4(), Duration::minutes(5));
        let tab = Uuid::new_v4();
        assert!(p.connect(tab, at(0)));
        assert!(!p.connect(tab, at(4)), "already open");
        assert_eq!(p.effective_status(at(5)), PresenceStatus::Away, "idle since minute 0, the repeat notwithstanding");
    }

    #[test]
    fn idle_turns_away_and_any_tab_brings_back() {
        let (mut p, a) = connected();
        let b = Uuid::new_v4();
        p.connect(b, at(0));
        assert!(p.touch(a, at(3)));
        assert!(!p.touch(Uuid::new_v4(), at(6)), "unknown connections are not activity");
        assert_eq!(p.effective_status(at(7)), Online, "the touch at 3 reset idling");
        assert_eq!(p.effective_status(at(8)), Away, "away exactly idle_after later");
        assert!(p.touch(b, at(9)));
        assert_eq!((p.effective_status(at(9)), p.last_seen_at()), (Online, Some(at(9))));
    }

    #[test]
    fn manual_busy_holds_until_expiry_then_automatic_applies() {
        let (mut p, a) = connected();
        p.set_manual(Some(ManualStatus::Busy), Some(at(10)), at(0)).unwrap();
        assert_eq!(p.effective_status(at(9)), Busy, "idle since 5, hidden by busy");
        assert_eq!(p.manual_status(at(9)), Some((ManualStatus::Busy, Some(at(10)))));
        assert_eq!(p.effective_status(at(10)), Away, "expired: automatic, idle since 5");
        assert_eq!(p.manual_status(at(10)), None);
        p.touch(a, at(11));
        assert_eq!(p.effective_status(at(11)), Online);
    }

    #[test]
    fn clearing_the_manual_status_restores_the_automatic_one() {
        let (mut p, _) = connected();
        p.set_manual(Some(ManualStatus::Dnd), None, at(0)).unwrap();
        assert_eq!(p.effective_status(at(60)), Dnd, "no expiry: it holds");
        let past = p.set_manual(Some(ManualStatus::Busy), Some(at(60)), at(60));
        assert_eq!(past, Err(PresenceError::ExpiryNotInFuture));
        let orphan = p.set_manual(None, Some(at(90)), at(60));
        assert_eq!(orphan, Err(PresenceError::ExpiryWithoutStatus));
        assert_eq!(p.effective_status(at(60)), Dnd, "refused updates change nothing");
        p.set_manual(None, None, at(61)).unwrap();
        assert_eq!(p.effective_status(at(62)), Online, "clearing counted as activity");
        assert_eq!(p.effective_status(at(66)), Away);
    }

    #[test]
    fn an_automatic_activity_stays_automatic_until_the_user_writes_their_own() {
        let (mut p, _) = connected();
        let line = live_session_activity("Rust 101");
        p.set_automatic_activity(line.clone(), at(0)).unwrap();
        assert!(p.activity_is_automatic());
        // A status saved with the form, the automatic line sent back unchanged.
        let change = PresenceChange {
            status: Some(Some(ManualStatus::Dnd)),
            expires_at: None,
            activity: Some(Some(line.clone())),
        };
        p.apply(change, at(1)).unwrap();
        assert!(p.activity_is_automatic(), "sending the automatic line back does not make it mine");
        assert_eq!(p.activity(), Some(line.as_str()));
        let own = p.own_view(at(1));
        assert_eq!(
            (own.manual_status, own.manual_status_expires_at, own.activity_automatic),
            (Some(ManualStatus::Dnd), None, true)
        );
        // A line of the user's own is theirs.
        let change = PresenceChange { activity: Some(Some("Taking notes".into())), ..Default::default() };
        p.apply(change, at(2)).unwrap();
        assert!(!p.activity_is_automatic());
        // Clearing it leaves nothing automatic either.
        p.set_automatic_activity(line, at(3)).unwrap();
        p.apply(PresenceChange { activity: Some(None), ..Default::default() }, at(4)).unwrap();
        assert_eq!((p.activity(), p.activity_is_automatic()), (None, false));
    }

    #[test]
    fn the_own_view_tells_the_manual_status_and_its_expiry_until_it_ends() {
        let (mut p, a) = connected();
        assert_eq!(
            p.own_view(at(0)),
            OwnPresence { manual_status: None, manual_status_expires_at: None, activity_automatic: false }
        );
        p.set_manual(Some(ManualStatus::Busy), Some(at(30)), at(0)).unwrap();
        let own = p.own_view(at(29));
        assert_eq!((own.manual_status, own.manual_status_expires_at), (Some(ManualStatus::Busy), Some(at(30))));
        assert_eq!(p.own_view(at(30)).manual_status, None, "expired: automatic again");
        p.set_automatic_activity("In live session: X".into(), at(31)).unwrap();
        p.disconnect(a, at(32));
        assert!(!p.own_view(at(32)).activity_automatic, "offline: no activity at all");
    }

    #[test]
    fn contacts_are_listed_online_first_then_by_last_seen() {
        let view = |name: &str, status, seen: Option<i64>| {
            UserPresenceView::new(
                Uuid::new_v4(),
                name,
                PresenceView { status, activity: None, last_seen_at: seen.map(at) },
            )
        };
        let mut list = vec![
            view("Zoe", Offline, None),
            view("Bob", Offline, Some(10)),
            view("Yann", Busy, Some(0)),
            view("Cleo", Offline, Some(30)),
            view("Ada", Online, Some(5)),
            view("Abe", Offline, None),
        ];
        sort_contacts(&mut list);
        let names: Vec<&str> = list.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["Ada", "Yann", "Cleo", "Bob", "Abe", "Zoe"]);
    }

    #[test]
    fn appear_offline_hides_from_watchers_only() {
        let (mut p, _) = connected();
        p.set_activity(Some("In live session: Rust 101".into()), at(0)).unwrap();
        p.set_privacy(PrivacySettings { appear_offline: true, ..Default::default() });
        let hidden = PresenceView { status: Offline, activity: None, last_seen_at: None };
        assert_eq!(p.view_for_watcher(at(1)), hidden);
        let me = p.view_for_self(at(1));
        assert_eq!((me.status, me.activity.as_deref()), (Online, Some("In live session: Rust 101")));
        assert_eq!(p.effective_status(at(1)), Online);
    }

    #[test]
    fn hide_activity_and_hide_last_seen_filter_the_watcher_view() {
        let (mut p, _) = connected();
        p.set_activity(Some("Viewing course: X".into()), at(0)).unwrap();
        let open = p.view_for_watcher(at(1));
        assert_eq!((open.activity.as_deref(), open.last_seen_at), (Some("Viewing course: X"), Some(at(0))));
        p.set_privacy(PrivacySettings { hide_activity: true, ..Default::default() });
        let view = p.view_for_watcher(at(1));
        assert_eq!((view.activity, view.last_seen_at), (None, Some(at(0))));
        p.set_privacy(PrivacySettings { hide_last_seen: true, ..Default::default() });
        let view = p.view_for_watcher(at(1));
        assert_eq!((view.activity.as_deref(), view.last_seen_at), (Some("Viewing course: X"), None));
        assert_eq!(p.view_for_self(at(1)).last_seen_at, Some(at(0)), "self view ignores privacy");
    }

    #[test]
    fn offline_users_show_no_activity_and_lose_it_on_last_close() {
        let (mut p, a) = connected();
        p.set_activity(Some("Viewing course: X".into()), at(0)).unwrap();
        p.disconnect(a, at(1));
        assert_eq!((p.view_for_watcher(at(2)).activity, p.activity()), (None, None));
        p.connect(a, at(3));
        let view = p.view_for_watcher(at(3));
        assert_eq!(view.activity, None, "stale activity does not come back");
        assert_eq!(view.last_seen_at, Some(at(3)), "a new session began");
    }

    #[test]
    fn identical_states_are_not_republished() {
        let (mut p, a) = connected();
        assert_eq!(p.watcher_view_changed(at(0)).map(|v| v.status), Some(Online), "first is sent");
        for minute in 1..=4 {
            p.touch(a, at(minute));
            assert_eq!(p.watcher_view_changed(at(minute)), None, "heartbeat at {minute}");
        }
        assert_eq!(p.watcher_view_changed(at(9)).map(|v| v.status), Some(Away));
        assert_eq!(p.watcher_view_changed(at(10)), None);
        p.set_activity(Some("Viewing course: X".into()), at(10)).unwrap();
        let back = p.watcher_view_changed(at(10)).expect("back, with an activity");
        assert_eq!((back.status, back.activity.as_deref()), (Online, Some("Viewing course: X")));
    }

    #[test]
    fn a_presence_taken_over_publishes_its_view_even_if_unchanged() {
        let (mut p, a) = connected();
        p.disconnect(a, at(1));
        assert_eq!(p.watcher_view_changed(at(1)).map(|v| v.status), Some(Offline));
        assert!(!p.watcher_view_pending(at(2)), "offline, and watchers were told so");
        p.forget_published();
        assert!(p.watcher_view_pending(at(2)), "what watchers were told is unknown: told again");
        assert_eq!(p.watcher_view_changed(at(2)).map(|v| v.status), Some(Offline));
    }

    #[test]
    fn next_deadline_follows_idling_and_expiry() {
        let (mut p, a) = connected();
        assert_eq!(p.next_deadline(at(0)), Some(at(5)));
        p.touch(a, at(2));
        assert_eq!(p.next_deadline(at(2)), Some(at(7)));
        assert_eq!(p.next_deadline(at(7)), None, "already away: only activity changes it");
        p.set_manual(Some(ManualStatus::Busy), Some(at(20)), at(8)).unwrap();
        assert_eq!(p.next_deadline(at(8)), Some(at(20)), "the expiry, not idling, comes next");
        p.set_manual(Some(ManualStatus::Dnd), None, at(9)).unwrap();
        assert_eq!(p.next_deadline(at(9)), None, "no expiry: nothing changes on its own");
        p.set_manual(Some(ManualStatus::Busy), Some(at(12)), at(10)).unwrap();
        assert_eq!(p.next_deadline(at(12)), Some(at(15)), "after expiry: idling from minute 10");
        p.disconnect(a, at(13));
        assert_eq!(p.next_deadline(at(13)), None, "offline never changes on its own");
    }

    #[test]
    fn activity_is_limited_to_100_characters() {
        let (mut p, _) = connected();
        let longest = "é".repeat(MAX_ACTIVITY_CHARS); // 200 bytes: characters count, not bytes
        p.set_activity(Some(longest.clone()), at(0)).unwrap();
        let refused = p.set_activity(Some("x".repeat(101)), at(0));
        assert_eq!(refused, Err(PresenceError::ActivityTooLong { chars: 101 }));
        assert_eq!(p.activity(), Some(longest.as_str()), "a refusal keeps the previous line");
        p.set_activity(Some("  ".into()), at(0)).unwrap();
        assert_eq!(p.activity(), None, "blank clears");
    }

    #[test]
    fn restore_brings_back_stored_fields() {
        let mut p = Presence::new(Uuid::new_v4(), Duration::minutes(5));
        let privacy = PrivacySettings { hide_last_seen: true, ..Default::default() };
        p.restore(Some(at(-60)), Some(ManualStatus::Dnd), Some(at(30)), Some("y".repeat(150)), privacy);
        assert_eq!(p.view_for_self(at(0)).last_seen_at, Some(at(-60)));
        assert_eq!(p.activity().map(|text| text.chars().count()), Some(MAX_ACTIVITY_CHARS));
        assert_eq!(p.privacy(), privacy);
        p.connect(Uuid::new_v4(), at(0));
        assert_eq!(p.effective_status(at(0)), Dnd);
        assert_eq!(p.effective_status(at(30)), Away, "the stored expiry still applies");
    }

    #[test]
    fn apply_changes_all_or_nothing() {
        let (mut p, _) = connected();
        let change = |status: Option<Option<ManualStatus>>, expires_at, activity: Option<Option<&str>>| {
            PresenceChange { status, expires_at, activity: activity.map(|a| a.map(String::from)) }
        };
        let too_long = "x".repeat(MAX_ACTIVITY_CHARS + 1);
        let refused = p.apply(change(Some(Some(ManualStatus::Busy)), None, Some(Some(&too_long))), at(1));
        assert_eq!(refused, Err(PresenceError::ActivityTooLong { chars: 101 }));
        assert_eq!(p.effective_status(at(1)), Online, "the valid status was not applied either");
        let refused = p.apply(change(None, Some(at(9)), None), at(1));
        assert_eq!(refused, Err(PresenceError::ExpiryWithoutStatus), "an expiry alone has nothing to expire");

        p.apply(change(Some(Some(ManualStatus::Busy)), Some(at(10)), Some(Some("Taking quiz"))), at(1)).unwrap();
        assert_eq!((p.effective_status(at(2)), p.activity()), (Busy, Some("Taking quiz")));
        p.apply(change(None, None, Some(Some("Viewing course: X"))), at(3)).unwrap();
        assert_eq!(p.manual_status(at(3)), Some((ManualStatus::Busy, Some(at(10)))), "absent status is kept");
        p.apply(change(Some(None), None, None), at(4)).unwrap();
        assert_eq!((p.effective_status(at(4)), p.activity()), (Online, Some("Viewing course: X")));
        p.apply(change(None, None, Some(None)), at(5)).unwrap();
        assert_eq!(p.activity(), None, "null clears");
        p.apply(PresenceChange::default(), at(8)).unwrap();
        assert_eq!((p.last_seen_at(), p.effective_status(at(12))), (Some(at(8)), Online), "a heartbeat is activity");
    }

    #[test]
    fn pending_views_are_reported_without_being_spent() {
        let (mut p, a) = connected();
        assert!(p.watcher_view_pending(at(0)), "nothing published yet");
        assert!(p.watcher_view_pending(at(0)), "asking does not publish");
        p.watcher_view_changed(at(0));
        p.touch(a, at(1));
        assert!(!p.watcher_view_pending(at(1)), "a heartbeat is no news");
        assert!(p.watcher_view_pending(at(6)), "turned away");
        p.set_privacy(PrivacySettings { appear_offline: true, ..Default::default() });
        p.watcher_view_changed(at(6));
        p.disconnect(a, at(7));
        assert!(!p.watcher_view_pending(at(7)), "an invisible user leaving changes nothing for watchers");
    }

    #[test]
    fn updates_parse_absent_null_and_values_apart() {
        let parse = |json: &str| serde_json::from_str::<PresenceUpdate>(json).map(|u| u.into_change());
        let empty = parse("{}").unwrap().unwrap();
        assert_eq!(empty, PresenceChange::default());
        let cleared = parse(r#"{"status":null,"activity":null}"#).unwrap().unwrap();
        assert_eq!((cleared.status, cleared.activity), (Some(None), Some(None)));
        let set = parse(r#"{"status":"dnd","activity":"Taking quiz"}"#).unwrap().unwrap();
        assert_eq!(
            (set.status, set.activity.flatten().as_deref()),
            (Some(Some(ManualStatus::Dnd)), Some("Taking quiz"))
        );
        let offline = parse(r#"{"status":"offline"}"#).unwrap().unwrap_err();
        assert_eq!(AppError::from(offline).code(), "invalid_status");
        assert!(parse(r#"{"statsu":"busy"}"#).is_err(), "unknown fields are refused");
    }

    #[test]
    fn privacy_changes_replace_only_what_they_name() {
        let current = PrivacySettings { hide_activity: true, ..Default::default() };
        let change: PrivacyChange = serde_json::from_str(r#"{"appearOffline":true}"#).unwrap();
        let next = change.applied_to(current);
        assert_eq!(next, PrivacySettings { hide_activity: true, hide_last_seen: false, appear_offline: true });
        assert!(serde_json::from_str::<PrivacyChange>(r#"{"invisible":true}"#).is_err());
    }

    #[test]
    fn session_activity_fits_the_limit() {
        assert_eq!(live_session_activity("Rust 101"), "In live session: Rust 101");
        let long = live_session_activity(&"t".repeat(300));
        assert_eq!(long.chars().count(), MAX_ACTIVITY_CHARS);
        assert!(long.ends_with('…'));
    }

    #[test]
    fn statuses_round_trip_through_text() {
        for status in [Online, Away, Busy, Dnd, Offline] {
            assert_eq!(PresenceStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(ManualStatus::parse("dnd"), Some(ManualStatus::Dnd));
        assert_eq!((ManualStatus::parse("offline"), PresenceStatus::parse("Online")), (None, None));
    }
}
