// Presence everywhere: a map of what we know about people, kept fresh by
// `presence-updated` pushes, and avatars whose dot follows it.
import { h } from '../dom.js';
import { since } from '../dom.js';
import { realtime } from '../socket.js';

const known = new Map();

export function rememberPresence(presence) {
  if (!presence || !presence.userId) return;
  known.set(presence.userId, { ...(known.get(presence.userId) || {}), ...presence });
  refreshDots(presence.userId);
}

realtime.on('presence-updated', (presence) => rememberPresence(presence));

/** Whether what we know of someone says they are not offline. */
export function isOnline(userId) {
  const p = known.get(userId);
  return Boolean(p && p.status && p.status !== 'offline');
}

function describe(userId) {
  const p = known.get(userId);
  if (!p) return 'Presence unknown';
  const status = { online: 'Online', away: 'Away', busy: 'Busy', dnd: 'Do not disturb', offline: 'Offline' }[p.status] || p.status;
  const parts = [status];
  if (p.activity) parts.push(p.activity);
  if (p.status === 'offline' && p.lastSeenAt) parts.push(`last seen ${since(p.lastSeenAt)}`);
  return parts.join(' - ');
}

function refreshDots(userId) {
  for (const dot of document.querySelectorAll(`.dot[data-user-id="${CSS.escape(userId)}"]`)) {
    const p = known.get(userId);
    dot.dataset.status = p ? p.status : 'offline';
    const label = describe(userId);
    dot.parentElement.title = label;
    dot.setAttribute('aria-label', label);
  }
}

/** An avatar with initials and a presence dot (green online, orange away or busy, grey offline). */
export function avatar(userId, name) {
  const initials = (name || '?').split(/\s+/).map((w) => w[0]).join('').slice(0, 2).toUpperCase();
  const p = known.get(userId);
  const label = describe(userId);
  return h('span', { class: 'avatar', title: label },
    initials,
    h('span', { class: 'dot', role: 'img', 'aria-label': label, dataset: { userId, status: p ? p.status : 'offline' } }));
}

/** A person line: avatar, name, optional badge. */
export function person(userId, name, ...extra) {
  return h('div', { class: 'person' }, avatar(userId, name), h('span', {}, name), ...extra);
}
