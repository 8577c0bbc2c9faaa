// A session at a glance: title, course, time, attendees, status colour and
// the Join button, open from five minutes before the start.
import { h, formatTime } from '../dom.js';

export const JOIN_EARLY_MS = 5 * 60 * 1000;

export function joinOpen(session, now = Date.now()) {
  if (session.status === 'ended' || session.status === 'cancelled') return false;
  return session.status === 'active' || now >= new Date(session.scheduledStartTime).getTime() - JOIN_EARLY_MS;
}

export function sessionCard(session, { courseTitle, isLeader, onEdit } = {}) {
  const canJoin = isLeader ? session.status !== 'ended' && session.status !== 'cancelled' : joinOpen(session);
  const joinHint = canJoin ? '' : session.status === 'scheduled' ? 'Join opens 5 minutes before the start' : 'Not available';
  return h('article', { class: `card session-card ${session.status}`, 'aria-label': `Session ${session.title}` },
    h('div', { class: 'row' }, h('h3', {}, session.title), h('span', { class: `status ${session.status}` }, session.status)),
    h('div', { class: 'muted' }, courseTitle ? `${courseTitle} · ` : '', `with ${session.instructorName}`),
    h('div', {}, formatTime(session.scheduledStartTime), ' – ', new Date(session.scheduledEndTime).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' })),
    h('div', { class: 'muted' }, `${session.attendeeCount} attending`, session.maxAttendees ? ` of ${session.maxAttendees}` : ''),
    session.recordingUrl ? h('a', { href: session.recordingUrl, target: '_blank', rel: 'noopener noreferrer' }, 'Recording') : null,
    h('div', { class: 'row' },
      h('button', {
        class: 'primary join', disabled: !canJoin, title: joinHint, 'aria-label': `Join ${session.title}`,
        onclick: () => { location.hash = `#/sessions/${session.id}`; },
      }, 'Join'),
      isLeader && onEdit ? h('button', { onclick: () => onEdit(session) }, 'Edit') : null,
      isLeader && session.status === 'ended' ? h('a', { href: `#/sessions/${session.id}/attendance` }, 'Attendance') : null,
      !canJoin && joinHint ? h('span', { class: 'muted' }, joinHint) : null));
}
