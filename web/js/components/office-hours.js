// Office hours, the pieces the pages share: words for waits, slots and the
// server's refusals, an instructor's status card, and watching statuses
// over the socket (watched again after a reconnect, unwatched on leaving).
import { h, formatTime, formatClock } from '../dom.js';
import { realtime } from '../socket.js';

export const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];

/** "about 10 min" for a number of seconds. */
export function formatWait(seconds) {
  if (seconds === null || seconds === undefined) return '';
  const minutes = Math.round(seconds / 60);
  if (minutes < 1) return 'less than a minute';
  if (minutes < 60) return `about ${minutes} min`;
  const hours = Math.floor(minutes / 60);
  return `about ${hours} h${minutes % 60 ? ` ${minutes % 60} min` : ''}`;
}

/** "12 min" for a span in seconds (analytics). */
export function formatSpan(seconds) {
  if (seconds === null || seconds === undefined) return '–';
  if (seconds < 60) return `${Math.round(seconds)} s`;
  const minutes = Math.round(seconds / 60);
  return minutes < 60 ? `${minutes} min` : `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/** "Monday 14:00–16:00 (Europe/Paris)", with "drop-in" for drop-in slots. */
export function slotLabel(slot) {
  return `${DAYS[slot.dayOfWeek] || '?'} ${slot.startTime}–${slot.endTime} (${slot.timeZone})${slot.mode === 'drop-in' ? ' · drop-in' : ''}`;
}

/** How long ago someone joined, as "waiting 4 min". */
export function waitingFor(iso) {
  const seconds = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
  if (seconds < 60) return 'waiting under a minute';
  const minutes = Math.floor(seconds / 60);
  return minutes < 60 ? `waiting ${minutes} min` : `waiting ${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

const FIELDS = { startTime: 'the start', endTime: 'the end', dayOfWeek: 'the day', timeZone: 'the time zone', question: 'your question', topic: 'the topic', message: 'the announcement' };

/** The server's refusal as a sentence for people (field names in words). */
export function friendly(error) {
  const special = {
    question_too_long: 'Your question is too long: at most 500 characters.',
    topic_too_long: 'The topic is too long: at most 100 characters.',
    message_too_long: 'The announcement is too long: at most 500 characters.',
    slot_overlaps: 'This slot overlaps another of your active slots. Change its day or times.',
    invalid_time_zone: 'Unknown time zone: use a name such as Europe/Paris or America/New_York.',
    queue_closed: 'The queue is closed right now: you can join when office hours open.',
    already_in_queue: 'You already have a place with this instructor.',
  }[error.code];
  if (special) return special;
  let text = error.message || 'Something went wrong.';
  for (const [field, words] of Object.entries(FIELDS)) text = text.replaceAll(field, words);
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** Open or closed, as a coloured badge. */
export function openBadge(status) {
  return h('span', { class: `status ${status.isOpen ? 'active' : 'cancelled'}` }, status.isOpen ? 'Open' : 'Closed');
}

/** When the next office hours start, in words. */
export function nextOpenText(status) {
  if (!status.nextOpenAt) return 'No office hours scheduled.';
  const at = new Date(status.nextOpenAt);
  const sameDay = at.toDateString() === new Date().toDateString();
  return `Next office hours: ${sameDay ? `today ${formatClock(status.nextOpenAt)}` : formatTime(status.nextOpenAt)}`;
}

/** The last announcement, if any. */
export function announcementBox(announcement, title = 'Announcement') {
  if (!announcement) return null;
  return h('div', { class: 'oh-announcement', role: 'note', 'aria-label': title },
    h('strong', {}, title), h('span', { class: 'muted' }, ` · ${formatClock(announcement.sentAt)}`),
    h('div', { class: 'text' }, announcement.message));
}

/**
 * Watches the statuses of `ids` on this socket: `onStatus(status)` with
 * each ack (a full status) and `office-hours-status` push (the changed
 * figures). Watches again after a reconnect; stops when the page goes.
 * `add(id)` watches one more (a course just taken).
 */
export function watchStatuses(initial, { onStatus, onPush, cleanup }) {
  const ids = [...initial];
  const watch = (instructorId) => realtime.send('watch-office-hours', { instructorId })
    .then(({ status }) => onStatus(status))
    .catch(() => { /* the next reconnect tries again */ });
  const watchAll = () => ids.forEach(watch);
  cleanup(realtime.on('office-hours-status', (data) => { if (data && ids.includes(data.instructorId)) onPush(data); }));
  cleanup(realtime.on('ready', watchAll));
  cleanup(realtime.on('reconnected', watchAll));
  cleanup(() => {
    for (const instructorId of ids) realtime.send('unwatch-office-hours', { instructorId }).catch(() => {});
  });
  if (realtime.state === 'open') watchAll();
  return {
    add(instructorId) {
      if (ids.includes(instructorId)) return;
      ids.push(instructorId);
      if (realtime.state === 'open') watch(instructorId);
    },
  };
}
