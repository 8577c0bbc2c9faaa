// The instructor's attendance view of a session: the students who came
// (the instructor is not one of them), for how long, the enrolled students
// who never came, and the whole as a CSV file.
import { h, mount, pageTitle, formatTime, timeZone } from '../dom.js';
import { api } from '../api.js';
import { store } from '../store.js';
import { toast, withBusy } from '../components/toasts.js';

/** "1 minute", "0.5 minutes", "12 minutes"; "less than a minute" rather than a rounded 0. */
export function minutesText(minutes) {
  const value = Math.round(minutes * 10) / 10;
  if (value === 0 && minutes > 0) return 'less than a minute';
  return `${value.toLocaleString()} minute${value === 1 ? '' : 's'}`;
}

/** "1 student", "2 students". */
export function studentsText(count) {
  return `${count.toLocaleString()} student${count === 1 ? '' : 's'}`;
}

/** Fetches the CSV with my token and hands it to the browser as a download. */
async function downloadCsv(sessionId, title) {
  const response = await fetch(`/api/live-sessions/${sessionId}/attendance.csv`, { headers: { Authorization: `Bearer ${store.token}` } });
  if (!response.ok) throw new Error(`The server answered ${response.status}.`);
  const url = URL.createObjectURL(await response.blob());
  const safe = title.replace(/[^\p{L}\p{N}]+/gu, '-').replace(/^-|-$/g, '').slice(0, 60) || 'session';
  const link = h('a', { href: url, download: `attendance-${safe}.csv`, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

export async function attendancePage(main, { params }) {
  mount(main, h('p', { class: 'loading' }, 'Loading attendance'));
  try {
    const [session, summary, attendees] = await Promise.all([
      api.get(`/api/live-sessions/${params.id}`),
      api.get(`/api/live-sessions/${params.id}/attendance`),
      api.get(`/api/live-sessions/${params.id}/attendees`),
    ]);
    const students = attendees.filter((a) => a.userId !== session.instructorId)
      .sort((a, b) => a.name.localeCompare(b.name));
    const absentees = summary.absentees || [];
    const csv = h('button', { type: 'button', id: 'attendance-csv' }, 'Download CSV');
    csv.addEventListener('click', () => withBusy(csv, async () => {
      await downloadCsv(params.id, session.title);
      toast('Attendance downloaded.');
    }));
    pageTitle(`Attendance: ${session.title}`);
    mount(main,
      h('h1', {}, `Attendance: ${session.title}`),
      h('div', { class: 'stack' }, h('section', { class: 'card', 'aria-label': 'Summary', id: 'attendance-summary' },
        h('p', { id: 'attendance-count' }, h('strong', {}, `${summary.attendeeCount} of ${studentsText(summary.enrolledCount)}`), ' attended'),
        h('p', { id: 'attendance-minutes' }, `Total ${minutesText(summary.totalMinutes)}, average ${minutesText(summary.averageMinutes)} per student who came`),
        h('div', { class: 'row' }, csv)),
      h('section', { class: 'card', 'aria-label': 'Who came' },
        h('h2', {}, `Came (${students.length})`),
        students.length ? h('table', { 'aria-label': 'Attendees' },
          h('caption', { class: 'sr-only' }, `Times in ${timeZone()}`),
          h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Name'), h('th', { scope: 'col' }, 'Joined'), h('th', { scope: 'col' }, 'Left'), h('th', { scope: 'col' }, 'Time present'))),
          h('tbody', {}, students.map((a) => h('tr', {},
            h('td', {}, a.name), h('td', {}, formatTime(a.joinedAt)), h('td', {}, a.leftAt ? formatTime(a.leftAt) : 'still here'),
            h('td', {}, minutesText(a.secondsPresent / 60))))))
          : h('p', { class: 'empty' }, 'No student came.')),
      h('section', { class: 'card', 'aria-label': 'Did not come' },
        h('h2', {}, `Did not come (${absentees.length})`),
        absentees.length ? h('ul', { class: 'plain', id: 'absentees' }, absentees.map((a) => h('li', {}, a.name)))
          : h('p', { class: 'empty' }, 'Every enrolled student came.'))),
      h('p', {}, h('a', { href: `#/sessions/${params.id}` }, 'Back to the session')));
  } catch (error) {
    mount(main, h('p', { class: 'error-text' }, `Attendance unavailable: ${error.message}`));
  }
}
