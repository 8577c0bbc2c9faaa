// Live sessions: a calendar by week or by month (in the viewer's time zone,
// which it names), a filtered list, and for instructors the dialog to
// schedule or edit a session.
import { h, mount, formatClock, formatTime, timeZone } from '../dom.js';
import { api } from '../api.js';
import { store } from '../store.js';
import { realtime } from '../socket.js';
import { sessionCard } from '../components/session-card.js';
import { toast, withBusy } from '../components/toasts.js';
import { emptyState } from '../components/empty-state.js';
import { icon } from '../components/icons.js';

const DAY_MS = 24 * 3600 * 1000;

function startOfMonth(date) {
  return new Date(date.getFullYear(), date.getMonth(), 1);
}

function startOfWeek(date) {
  const d = new Date(date);
  d.setHours(0, 0, 0, 0);
  const monday = (d.getDay() + 6) % 7;
  return new Date(d.getTime() - monday * DAY_MS);
}

/** A datetime-local value for a Date, in the browser's time zone. */
function localInput(date) {
  const d = new Date(date.getTime() - date.getTimezoneOffset() * 60000);
  return d.toISOString().slice(0, 16);
}

export async function sessionsPage(main, { cleanup }) {
  let weekStart = startOfWeek(new Date());
  let monthStart = startOfMonth(new Date());
  let view = 'week';
  let courses = [];
  // A list of days, each a list of sessions whose status is said in words too
  // (a grid would need rows; colour alone says nothing to many).
  const calendar = h('ul', { class: 'calendar', 'aria-label': 'Week calendar' });
  const weekLabel = h('strong', { 'aria-live': 'polite', id: 'calendar-range' });
  const viewButtons = ['week', 'month'].map((which) => h('button', {
    type: 'button', 'aria-pressed': String(which === view), dataset: { view: which },
    onclick: () => { view = which; viewButtons.forEach((b) => b.setAttribute('aria-pressed', String(b.dataset.view === view))); loadWeek(); },
  }, which === 'week' ? 'Week' : 'Month'));
  /** Moves the calendar by one week or month (-1, +1), or back to now (0). */
  function step(by) {
    if (view === 'month') monthStart = by ? new Date(monthStart.getFullYear(), monthStart.getMonth() + by, 1) : startOfMonth(new Date());
    else weekStart = by ? new Date(weekStart.getFullYear(), weekStart.getMonth(), weekStart.getDate() + by * 7) : startOfWeek(new Date());
    loadWeek();
  }
  const list = h('div', { class: 'grid', 'aria-label': 'Session list' });
  const courseFilter = h('select', { id: 'filter-course', 'aria-label': 'Course' }, h('option', { value: '' }, 'All my courses'));
  const statusFilter = h('select', { id: 'filter-status', 'aria-label': 'Status' },
    h('option', { value: '' }, 'Any status'), ['scheduled', 'active', 'ended', 'cancelled'].map((s) => h('option', { value: s }, s)));
  const dialog = sessionDialog(() => refresh());

  const prev = h('button', { class: 'icon-button', onclick: () => step(-1), 'aria-label': 'Previous week' }, icon('chevron-left'));
  const current = h('button', { onclick: () => step(0) }, 'This week');
  const next = h('button', { class: 'icon-button', onclick: () => step(1), 'aria-label': 'Next week' }, icon('chevron-right'));

  mount(main,
    h('div', { class: 'row' }, h('h1', {}, 'Live sessions'),
      store.isInstructor() ? h('button', { class: 'primary', id: 'new-session', onclick: () => dialog.open(null, courses) }, 'New session') : null),
    h('section', { class: 'stack', 'aria-label': 'Calendar' },
      h('div', { class: 'row' },
        prev, current, next,
        weekLabel,
        h('span', { class: 'view-switch', role: 'group', 'aria-label': 'Calendar view' }, viewButtons)),
      h('p', { class: 'hint', id: 'calendar-zone' }, `Times in your time zone: ${timeZone()}`),
      calendar),
    calendarFeed(),
    h('section', { class: 'stack', 'aria-label': 'List', style: 'margin-top:1.5rem' },
      h('h2', {}, 'All sessions'),
      h('div', { class: 'row' }, courseFilter, statusFilter),
      list),
    dialog.element);

  const courseTitle = (id) => (courses.find((c) => c.id === id) || {}).title;

  let drawn = 0;
  /** Draws the week or the month shown (the name kept from when it was only a week). */
  async function loadWeek() {
    const month = view === 'month';
    const from = month ? monthStart : weekStart;
    const to = month ? new Date(from.getFullYear(), from.getMonth() + 1, 1) : new Date(from.getFullYear(), from.getMonth(), from.getDate() + 7);
    const drawing = ++drawn;
    const unit = month ? 'month' : 'week';
    prev.setAttribute('aria-label', `Previous ${unit}`);
    next.setAttribute('aria-label', `Next ${unit}`);
    current.textContent = `This ${unit}`;
    calendar.setAttribute('aria-label', month ? 'Month calendar' : 'Week calendar');
    calendar.classList.toggle('month', month);
    weekLabel.textContent = month
      ? from.toLocaleDateString(undefined, { month: 'long', year: 'numeric' })
      : `${from.toLocaleDateString()} – ${new Date(to.getTime() - 1).toLocaleDateString()}`;
    // Days by the calendar, not by 24 hours: a change to summer time stays on its date.
    const days = [];
    for (let day = new Date(from); day < to; day = new Date(day.getFullYear(), day.getMonth(), day.getDate() + 1)) days.push(day);
    try {
      const sessions = await api.get(`/api/live-sessions?from=${encodeURIComponent(from.toISOString())}&to=${encodeURIComponent(to.toISOString())}`);
      if (drawing !== drawn) return; // a later click drew something else meanwhile
      const today = new Date().toDateString();
      mount(calendar, days.map((day, i) => {
        const events = sessions.filter((s) => new Date(s.scheduledStartTime).toDateString() === day.toDateString());
        const isToday = day.toDateString() === today;
        // The month's first day sits under its weekday (Monday first).
        const style = month && i === 0 ? `grid-column-start: ${((day.getDay() + 6) % 7) + 1}` : null;
        const date = `${day.getFullYear()}-${String(day.getMonth() + 1).padStart(2, '0')}-${String(day.getDate()).padStart(2, '0')}`;
        return h('li', { class: `day${isToday ? ' today' : ''}${events.length ? '' : ' no-events'}`, 'aria-current': isToday ? 'date' : null, style, dataset: { date } },
          h('h3', {}, day.toLocaleDateString(undefined, { weekday: 'short', day: 'numeric', month: 'short' }), isToday ? h('span', { class: 'sr-only' }, ' (today)') : null),
          events.map((s) => h('a', { class: `event ${s.status}`, href: `#/sessions/${s.id}`, title: `${s.title} (${s.status})` },
            `${formatClock(s.scheduledStartTime)} ${s.title}`, h('span', { class: 'event-status' }, s.status))));
      }), sessions.length ? null : h('li', { class: 'empty calendar-empty' }, `Nothing scheduled this ${unit}.`));
    } catch (error) {
      mount(calendar, h('li', { class: 'error-text' }, `Could not load the calendar: ${error.message}`));
    }
  }

  async function loadList() {
    const params = new URLSearchParams();
    if (courseFilter.value) params.set('courseId', courseFilter.value);
    if (statusFilter.value) params.set('status', statusFilter.value);
    try {
      const sessions = await api.get(`/api/live-sessions?${params}`);
      mount(list, sessions.length
        ? sessions.map((s) => sessionCard(s, {
          courseTitle: courseTitle(s.courseId),
          isLeader: s.instructorId === store.me.id || store.me.role === 'admin',
          onEdit: (session) => dialog.open(session, courses),
        }))
        : emptyState(courseFilter.value || statusFilter.value
          ? { icon: 'calendar', title: 'No sessions match.', hint: 'Try another course or status.' }
          : store.isInstructor()
            ? { icon: 'calendar', title: 'No sessions yet.', hint: 'Schedule a live session with New session: your students get reminders.' }
            : { icon: 'calendar', title: 'No sessions yet.', hint: courses.length ? 'Your instructors\' sessions will show here.' : 'Enroll in a course on your dashboard to see its sessions.' }));
    } catch (error) {
      mount(list, h('p', { class: 'error-text' }, `Could not load sessions: ${error.message}`));
    }
  }

  async function refresh() {
    await Promise.all([loadWeek(), loadList()]);
  }

  courseFilter.addEventListener('change', loadList);
  statusFilter.addEventListener('change', loadList);
  try {
    courses = await api.get('/api/courses');
    courses.forEach((c) => courseFilter.append(h('option', { value: c.id }, c.title)));
  } catch (error) {
    toast(`Could not load courses: ${error.message}`, { kind: 'error' });
  }
  await refresh();
  // Join buttons open at the five-minute mark without a reload.
  const timer = setInterval(loadList, 30000);
  cleanup(() => clearInterval(timer));
  cleanup(realtime.on('session-status-changed', refresh));
  cleanup(realtime.on('session-updated', refresh));
}

/**
 * My private calendar feed: an address a calendar app subscribes to (shown
 * once, when made: the server keeps only a digest), a new one in place of
 * the old, or none.
 */
function calendarFeed() {
  const state = h('p', { class: 'muted', id: 'feed-state' }, 'Loading…');
  const shown = h('div', { class: 'stack', id: 'feed-address' });
  const actions = h('div', { class: 'row' });
  const section = h('section', { class: 'card stack feed', 'aria-labelledby': 'feed-heading', style: 'margin-top:1.5rem' },
    h('h2', { id: 'feed-heading' }, 'Subscribe in your calendar app'),
    h('p', { class: 'hint' }, 'Google Calendar, Outlook or Apple Calendar can follow your live sessions, your study groups\' sessions and office hours through a private address. Anyone with the address sees them: keep it to yourself; make a new one if it got out.'),
    state, shown, actions);

  function render(feed, made) {
    state.textContent = feed.active
      ? `Your calendar feed is on (address made ${formatTime(feed.createdAt)}).${made ? '' : ' The address is shown only when made; make a new one to see it again (the old one then stops working).'}`
      : 'Your calendar feed is off.';
    mount(shown, made ? [
      h('label', { for: 'feed-url' }, 'Your private calendar address'),
      h('div', { class: 'row' },
        h('input', { id: 'feed-url', readonly: true, value: made.url, class: 'feed-url', onfocus: (e) => e.currentTarget.select() }),
        h('button', { type: 'button', onclick: async () => {
          try { await navigator.clipboard.writeText(made.url); toast('Address copied.'); } catch { toast('Select the address and copy it.', { kind: 'error' }); }
        } }, 'Copy'),
        h('a', { class: 'button', href: made.webcalUrl }, 'Open in my calendar app')),
    ] : []);
    const make = h('button', { type: 'button', class: feed.active ? '' : 'primary', onclick: () => withBusy(make, async () => {
      const created = await api.post('/api/calendar/feed');
      render({ active: true, createdAt: created.createdAt }, created);
    }) }, feed.active ? 'Make a new address' : 'Make my calendar address');
    const off = feed.active ? h('button', { type: 'button', onclick: () => withBusy(off, async () => {
      await api.del('/api/calendar/feed');
      render({ active: false }, null);
      toast('Calendar feed turned off: its address no longer works.');
    }) }, 'Turn the feed off') : null;
    mount(actions, make, off);
  }
  api.get('/api/calendar/feed').then((feed) => render(feed, null))
    .catch((error) => { state.textContent = `Could not load your calendar feed: ${error.message}`; });
  return section;
}

/** The instructor's create and edit dialog. */
function sessionDialog(onSaved) {
  const title = h('input', { id: 's-title', maxlength: 200, required: true });
  const description = h('textarea', { id: 's-description', rows: 2 });
  const course = h('select', { id: 's-course', required: true });
  const start = h('input', { id: 's-start', type: 'datetime-local', required: true, 'aria-describedby': 's-start-hint' });
  const startHint = h('p', { id: 's-start-hint', class: 'hint', 'aria-live': 'polite' });
  const end = h('input', { id: 's-end', type: 'datetime-local', required: true });
  const max = h('input', { id: 's-max', type: 'number', min: 1 });
  const recording = h('input', { id: 's-recording', type: 'url', placeholder: 'https://…', 'aria-describedby': 's-recording-hint' });
  const recordingHint = h('p', { id: 's-recording-hint', class: 'hint', hidden: true }, 'You can add the recording link once the session is created.');
  const error = h('p', { class: 'error-text', role: 'alert' });
  const save = h('button', { class: 'primary', type: 'submit' }, 'Save');
  const heading = h('h2', { id: 's-heading' });
  let editing = null;
  const PAST_WORDS = 'A session cannot start in the past: choose a time from now on.';
  const GRACE_MS = 60000; // as the server allows, for a form filled in "now"

  /** Whether the start in the form moved into the past (an unchanged start of an edit is fine). */
  function startInPast() {
    if (!start.value) return false;
    const at = new Date(start.value).getTime();
    if (editing && at === new Date(editing.scheduledStartTime).setSeconds(0, 0)) return false;
    return at < Date.now() - GRACE_MS;
  }

  function checkStart() {
    const past = startInPast();
    start.setCustomValidity(past ? PAST_WORDS : '');
    startHint.classList.toggle('error-text', past);
    startHint.textContent = past ? PAST_WORDS : `Now or later; times are in your time zone (${timeZone()}).`;
  }
  start.addEventListener('input', checkStart);
  start.addEventListener('change', checkStart);

  const form = h('form', { method: 'dialog', class: 'stack', 'aria-labelledby': 's-heading' },
    heading,
    h('label', { for: 's-course' }, 'Course'), course,
    h('label', { for: 's-title' }, 'Title'), title,
    h('label', { for: 's-description' }, 'Description'), description,
    h('label', { for: 's-start' }, 'Starts'), start, startHint,
    h('label', { for: 's-end' }, 'Ends'), end,
    h('label', { for: 's-max' }, 'Capacity (optional)'), max,
    h('label', { for: 's-recording' }, 'Recording link (optional)'), recording, recordingHint,
    error,
    h('div', { class: 'row' }, save, h('button', { type: 'button', onclick: () => dialog.close() }, 'Close')));
  const dialog = h('dialog', { 'aria-labelledby': 's-heading' }, form);

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    error.textContent = '';
    checkStart();
    if (startInPast()) { error.textContent = PAST_WORDS; return; }
    save.disabled = true;
    const body = {
      title: title.value,
      description: description.value.trim() || null,
      scheduledStartTime: new Date(start.value).toISOString(),
      scheduledEndTime: new Date(end.value).toISOString(),
      maxAttendees: max.value ? Number(max.value) : null,
    };
    try {
      if (editing) {
        if (editing.status !== 'scheduled') {
          delete body.scheduledStartTime; delete body.scheduledEndTime; delete body.maxAttendees;
        }
        await api.put(`/api/live-sessions/${editing.id}`, { ...body, recordingUrl: recording.value.trim() || null });
      } else {
        await api.post('/api/live-sessions', { ...body, courseId: course.value });
      }
      dialog.close();
      toast(editing ? 'Session updated.' : 'Session scheduled.');
      onSaved();
    } catch (err) {
      error.textContent = err.code === 'start_in_past' ? PAST_WORDS : err.message;
    } finally {
      save.disabled = false;
    }
  });

  return {
    element: dialog,
    open(session, courses) {
      editing = session;
      heading.textContent = session ? 'Edit session' : 'New session';
      course.replaceChildren(...courses.filter((c) => c.instructorId === store.me.id || store.me.role === 'admin').map((c) => h('option', { value: c.id }, c.title)));
      course.disabled = Boolean(session);
      const soon = new Date(Date.now() + 60 * 60000);
      title.value = session ? session.title : '';
      description.value = session ? session.description || '' : '';
      if (session) course.value = session.courseId;
      start.value = localInput(session ? new Date(session.scheduledStartTime) : soon);
      end.value = localInput(session ? new Date(session.scheduledEndTime) : new Date(soon.getTime() + 60 * 60000));
      // The browser refuses an earlier start too; an edit may keep a start that has passed.
      const now = new Date();
      const kept = session ? new Date(session.scheduledStartTime) : now;
      start.min = localInput(kept < now ? kept : now);
      checkStart();
      max.value = session && session.maxAttendees ? session.maxAttendees : '';
      recording.value = session ? session.recordingUrl || '' : '';
      recording.disabled = !session;
      recording.placeholder = session ? 'https://…' : '';
      recordingHint.hidden = Boolean(session);
      error.textContent = courses.length ? '' : 'Create a course first (on the dashboard).';
      dialog.showModal();
      title.focus();
    },
  };
}
