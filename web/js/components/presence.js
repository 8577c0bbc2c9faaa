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

/**
 * Initials from letters only: the first letter of the first and of the
 * last word that has one ("Ada Lovelace" gives "AL", "B<ob" gives "B");
 * "?" for a name without letters.
 */
export function initials(name) {
  const firsts = String(name || '').split(/\s+/)
    .map((word) => (word.match(/\p{L}/u) || [])[0])
    .filter(Boolean);
  if (firsts.length === 0) return '?';
  const picked = firsts.length === 1 ? firsts : [firsts[0], firsts[firsts.length - 1]];
  return picked.join('').toLocaleUpperCase();
}

/** An avatar with initials and a presence dot (green online, orange away, red busy or do not disturb, grey offline). */
export function avatar(userId, name) {
  const letters = initials(name);
  const p = known.get(userId);
  const label = describe(userId);
  return h('span', { class: 'avatar', title: label },
    letters,
    h('span', { class: 'dot', role: 'img', 'aria-label': label, dataset: { userId, status: p ? p.status : 'offline' } }));
}

/**
 * A person line: avatar, name, optional badge. A long name is cut with an
 * ellipsis (the whole name in its tooltip); the badge keeps its room.
 */
export function person(userId, name, ...extra) {
  return h('div', { class: 'person' }, avatar(userId, name), h('span', { class: 'person-name', title: name }, name), ...extra);
}
