// The instructor's attendance view of a session.
import { h, mount, formatTime } from '../dom.js';
import { api } from '../api.js';

export async function attendancePage(main, { params }) {
  mount(main, h('p', { class: 'loading' }, 'Loading attendance'));
  try {
    const [session, summary, attendees] = await Promise.all([
      api.get(`/api/live-sessions/${params.id}`),
      api.get(`/api/live-sessions/${params.id}/attendance`),
      api.get(`/api/live-sessions/${params.id}/attendees`),
    ]);
    mount(main,
      h('h1', {}, `Attendance: ${session.title}`),
      h('section', { class: 'card', 'aria-label': 'Summary', id: 'attendance-summary' },
        h('p', {}, h('strong', {}, String(summary.attendeeCount)), ' students attended'),
        h('p', {}, 'Total ', String(summary.totalMinutes), ' minutes, average ', String(summary.averageMinutes), ' minutes')),
      h('table', { class: 'card', 'aria-label': 'Attendees' },
        h('thead', {}, h('tr', {}, h('th', {}, 'Name'), h('th', {}, 'Joined'), h('th', {}, 'Left'), h('th', {}, 'Minutes present'))),
        h('tbody', {}, attendees.map((a) => h('tr', {},
          h('td', {}, a.name), h('td', {}, formatTime(a.joinedAt)), h('td', {}, a.leftAt ? formatTime(a.leftAt) : 'still here'),
          h('td', {}, String(Math.round(a.secondsPresent / 6) / 10)))))),
      h('p', {}, h('a', { href: `#/sessions/${params.id}` }, 'Back to the session')));
  } catch (error) {
    mount(main, h('p', { class: 'error-text' }, `Attendance unavailable: ${error.message}`));
  }
}
