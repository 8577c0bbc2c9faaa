// The dashboard: my courses, upcoming sessions, notifications, my study
// groups with their unread counts, office hours, and the classmates online
// now.
import { h, mount, formatTime, debounce, throttle, since, keepFocus } from '../dom.js';
import { api } from '../api.js';
import { store } from '../store.js';
import { realtime } from '../socket.js';
import { sessionCard, JOIN_EARLY_MS } from '../components/session-card.js';
import { person, rememberPresence } from '../components/presence.js';
import { toast, withBusy } from '../components/toasts.js';
import { unreadBadge } from '../components/group-card.js';
import { formatWait, nextOpenText, openBadge, watchStatuses } from '../components/office-hours.js';
import { desktopNotifyControl } from '../components/desktop-notify.js';
import { emptyState, focusButton, pageLink } from '../components/empty-state.js';

export async function dashboardPage(main, { cleanup }) {
  const courses = h('div', { class: 'stack' }, h('p', { class: 'loading' }, 'Loading courses'));
  const upcoming = h('div', { class: 'stack' }, h('p', { class: 'loading' }, 'Loading sessions'));
  const notifications = h('div', { class: 'stack' }, h('p', { class: 'loading' }, 'Loading notifications'));
  const online = h('div', { class: 'stack', id: 'online-list' }, h('p', { class: 'loading' }, 'Loading'));
  const groups = h('div', { class: 'stack', id: 'dashboard-groups' }, h('p', { class: 'loading' }, 'Loading groups'));
  const officeHours = h('div', { class: 'stack', id: 'dashboard-office-hours' }, h('p', { class: 'loading' }, 'Loading office hours'));

  mount(main,
    h('h1', {}, `Hello, ${store.me.name}`),
    h('div', { class: 'grid' },
      h('section', { class: 'card', 'aria-label': 'Upcoming sessions' }, h('h2', {}, 'Upcoming sessions'), upcoming),
      h('section', { class: 'card', 'aria-label': 'My study groups' }, h('h2', {}, 'My study groups'), groups),
      h('section', { class: 'card', 'aria-label': 'Office hours' }, h('h2', {}, 'Office hours'), officeHours),
      h('section', { class: 'card', 'aria-label': 'Notifications' }, h('h2', {}, 'Notifications'), desktopNotifyControl(), notifications),
      h('section', { class: 'card', 'aria-label': 'Classmates' }, h('h2', {}, 'Classmates'), online),
      h('section', { class: 'card', 'aria-label': 'My courses' }, h('h2', {}, 'My courses'), courses)));

  let courseTitles = new Map();
  async function loadCourses() {
    try {
      const list = await api.get('/api/courses');
      courseTitles = new Map(list.map((c) => [c.id, c.title]));
      mount(courses,
        list.length ? list.map((c) => h('div', {},
          h('strong', {}, c.title),
          store.isInstructor() && c.joinCode ? h('div', { class: 'muted' }, 'Join code: ', h('code', { class: 'course-code', title: 'Students type this code (or read it out in class) to enroll' }, c.joinCode)) : null))
          : store.isInstructor()
            ? emptyState({ icon: 'book', title: 'No courses yet.', hint: 'Create your first course below: its join code is what your students type to enroll.' })
            : emptyState({ icon: 'book', title: 'You are not enrolled in a course yet.', hint: 'Ask your instructor for the course code and type it below.' }),
        store.isInstructor() ? createCourseForm() : enrollForm());
    } catch (error) {
      mount(courses, h('p', { class: 'error-text' }, `Could not load courses: ${error.message}`));
    }
  }

  function createCourseForm() {
    const title = h('input', { id: 'course-title', maxlength: 200, required: true });
    const button = h('button', { type: 'submit' }, 'Create course');
    return h('form', {
      class: 'stack',
      onsubmit: (event) => {
        event.preventDefault();
        withBusy(button, async () => {
          await api.post('/api/courses', { title: title.value });
          toast('Course created.');
          await loadCourses();
        });
      },
    }, h('label', { for: 'course-title' }, 'New course title'), title, button);
  }

  function enrollForm() {
    const code = h('input', { id: 'course-code', required: true, placeholder: 'e.g. KM7R-Q2XD', autocomplete: 'off', 'aria-describedby': 'course-code-error' });
    const problem = h('p', { class: 'hint error-text', id: 'course-code-error', role: 'alert' });
    const button = h('button', { type: 'submit' }, 'Enroll');
    code.addEventListener('input', () => { problem.textContent = ''; code.removeAttribute('aria-invalid'); });
    return h('form', {
      class: 'stack',
      onsubmit: (event) => {
        event.preventDefault();
        withBusy(button, async () => {
          const typed = code.value.trim();
          // The short join code; a course id (the code of old) still works.
          const isId = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(typed);
          try {
            if (isId) await api.post(`/api/courses/${typed.toLowerCase()}/enroll`);
            else await api.post('/api/courses/join', { code: typed });
          } catch (error) {
            code.setAttribute('aria-invalid', 'true');
            problem.textContent = error.status === 404 && isId ? 'No course has that code. Check it with your instructor.' : error.message;
            code.focus();
            return;
          }
          toast('Enrolled.');
          // The sessions' empty state depends on whether I take a course: courses first.
          await loadCourses();
          // The course's people are my classmates now: the card shows them at once
          // (a presence push brings only those whose presence changes).
          await Promise.all([loadSessions(), loadOfficeHours(), loadOnline()]);
        });
      },
    }, h('label', { for: 'course-code' }, 'Enroll with a course code'), code, problem, button);
  }

  /** The sessions shown, redrawn when a card's Join opens (five minutes before the start). */
  let sessionList = [];
  let joinTimer = null;
  cleanup(() => clearTimeout(joinTimer));
  function renderSessions() {
    clearTimeout(joinTimer);
    mount(upcoming, sessionList.length
      ? sessionList.map((s) => sessionCard(s, { courseTitle: courseTitles.get(s.courseId), isLeader: s.instructorId === store.me.id }))
      : noSessions());
    const now = Date.now();
    const next = Math.min(...sessionList.filter((s) => s.status === 'scheduled')
      .map((s) => new Date(s.scheduledStartTime).getTime() - JOIN_EARLY_MS)
      .filter((at) => at > now));
    // Timers longer than about 24 days fire at once; such a card waits for a later redraw.
    if (Number.isFinite(next) && next - now < 2 ** 31 - 1) joinTimer = setTimeout(() => keepFocus(upcoming, renderSessions), next - now + 50);
  }
  /** Nothing coming: what to do about it depends on who I am and whether I take a course. */
  function noSessions() {
    if (store.isInstructor()) {
      return emptyState({ icon: 'calendar', title: 'Nothing scheduled.', hint: 'Plan a live session: your students see it here and get reminders.', action: pageLink('Schedule a session', '#/sessions') });
    }
    if (!courseTitles.size) {
      return emptyState({ icon: 'calendar', title: 'Nothing scheduled.', hint: 'Enroll in a course to see its live sessions here.', action: focusButton('Type a course code', '#course-code') });
    }
    return emptyState({ icon: 'calendar', title: 'Nothing scheduled.', hint: 'Your instructors\' next sessions will show here.', action: pageLink('See the calendar', '#/sessions') });
  }
  async function loadSessions() {
    try {
      const from = new Date(Date.now() - 3 * 3600 * 1000).toISOString();
      sessionList = (await api.get(`/api/live-sessions?from=${encodeURIComponent(from)}`))
        .filter((s) => s.status === 'scheduled' || s.status === 'active')
        .slice(0, 6);
      keepFocus(upcoming, renderSessions);
    } catch (error) {
      mount(upcoming, h('p', { class: 'error-text' }, `Could not load sessions: ${error.message}`));
    }
  }

  async function loadNotifications() {
    try {
      const list = await api.get('/api/notifications?limit=10');
      mount(notifications, list.length ? list.map((n) => {
        const open = n.data && n.data.groupId ? h('a', { class: 'button', href: `#/groups/${n.data.groupId}` }, 'Open group')
          : n.data && n.data.sessionId ? h('a', { class: 'button', href: `#/sessions/${n.data.sessionId}` }, 'Open session')
            : n.data && n.data.queueId ? h('a', { class: 'button', href: '#/office-hours' }, 'Open office hours') : null;
        const markRead = n.readAt ? null : h('button', { onclick: async (e) => withBusy(e.currentTarget, async () => { await api.post(`/api/notifications/${n.id}/read`); await loadNotifications(); }) }, 'Mark read');
        // The two actions sit apart in a row of their own, each big enough for a finger (see `.notification-actions`).
        return h('div', { class: `notification${n.readAt ? ' read' : ''}` },
          h('strong', {}, n.title), h('div', { class: 'muted' }, formatTime(n.createdAt)),
          open || markRead ? h('div', { class: 'notification-actions' }, open, markRead) : null);
      })
        : emptyState({ icon: 'bell', title: 'No notifications.', hint: 'Reminders before your sessions and invitations to study groups will show here.' }));
    } catch (error) {
      mount(notifications, h('p', { class: 'error-text' }, `Could not load notifications: ${error.message}`));
    }
  }

  /** Everyone I may see: who is on now, then the others with when they were last seen. */
  async function loadOnline() {
    try {
      const list = (await api.get('/api/presence/contacts?limit=30')).filter((p) => p.userId !== store.me.id);
      list.forEach(rememberPresence);
      const on = list.filter((p) => p.status !== 'offline');
      const off = list.filter((p) => p.status === 'offline');
      const line = (p) => h('li', { dataset: { userId: p.userId } }, person(p.userId, p.name,
        p.status !== 'offline' ? (p.activity ? h('span', { class: 'muted activity' }, p.activity) : null)
          : h('span', { class: 'muted last-seen' }, p.lastSeenAt ? `last seen ${since(p.lastSeenAt)}` : 'offline')));
      if (!list.length) {
        mount(online, emptyState({ icon: 'users', title: 'No classmates yet.', hint: 'People who share a course with you show here, and whether they are online.' }));
        return;
      }
      mount(online,
        h('h3', { class: 'sub' }, `Online now (${on.length})`),
        on.length ? h('ul', { class: 'plain', 'aria-label': 'Online now' }, on.map(line)) : h('p', { class: 'empty' }, 'Nobody else is online.'),
        off.length ? [h('h3', { class: 'sub' }, 'Offline'), h('ul', { class: 'plain', 'aria-label': 'Offline' }, off.map(line))] : null);
    } catch (error) {
      mount(online, h('p', { class: 'error-text' }, `Could not load your classmates: ${error.message}`));
    }
  }

  async function loadGroups() {
    try {
      const [list, invites] = await Promise.all([
        api.get('/api/study-groups'),
        api.get('/api/study-groups/invites').catch(() => []),
      ]);
      mount(groups,
        invites.length ? h('p', {}, h('a', { href: '#/groups', class: 'invite-link' },
          `${invites.length} invitation${invites.length === 1 ? '' : 's'} waiting`)) : null,
        list.length ? h('ul', { class: 'plain dash-groups' }, list.map((g) => h('li', { dataset: { groupId: g.id } },
          h('a', { href: `#/groups/${g.id}` }, g.name),
          unreadBadge(g.unreadCount),
          h('div', { class: 'muted' }, `${g.onlineCount || 0} online · active ${since(g.lastActivityAt)}`))))
          : emptyState({ icon: 'users', title: 'No study group yet.', hint: 'Study with classmates: create a group, or join a public one.', action: pageLink('Find or create a group', '#/groups') }));
    } catch (error) {
      mount(groups, h('p', { class: 'error-text' }, `Could not load your groups: ${error.message}`));
    }
  }

  /** My instructors' office hours (mine, for an instructor), at a glance. */
  let officeStatuses = [];
  let watching = null;
  function renderOfficeHours() {
    if (store.isInstructor()) {
      const mine = officeStatuses[0];
      mount(officeHours, mine ? [
        h('div', { class: 'row' }, openBadge(mine), h('span', {}, `${mine.waitingCount} waiting`)),
        mine.isOpen ? null : h('div', { class: 'muted' }, nextOpenText(mine)),
        h('a', { href: '#/office-hours' }, 'Manage my queue and schedule')]
        : emptyState({ icon: 'clock', title: 'Office hours are not available.', hint: 'Open your office hours page to set a weekly schedule.', action: pageLink('Go to office hours', '#/office-hours') }));
      return;
    }
    mount(officeHours, officeStatuses.length ? [
      h('ul', { class: 'plain dash-office-hours' }, officeStatuses.map((s) => h('li', { dataset: { instructorId: s.instructorId } },
        h('strong', {}, s.name), ' ', openBadge(s),
        h('div', { class: 'muted' }, s.myEntry
          ? s.myEntry.status === 'admitted' ? 'Ready for you now' : `You are number ${s.myEntry.position} in line`
          : s.isOpen ? `${s.waitingCount} waiting · wait ${formatWait(s.estimatedWaitSec)}` : nextOpenText(s))))),
      h('a', { href: '#/office-hours' }, 'Go to office hours')]
      : emptyState({ icon: 'clock', title: 'No office hours to show.', hint: 'Enroll in a course to see when its instructor can help you.', action: focusButton('Type a course code', '#course-code') }));
  }
  async function loadOfficeHours() {
    try {
      officeStatuses = await api.get('/api/office-hours/instructors');
      renderOfficeHours();
      // A course just taken: its instructor's status is followed too.
      if (watching) officeStatuses.forEach((s) => watching.add(s.instructorId));
    } catch (error) {
      mount(officeHours, h('p', { class: 'error-text' }, `Could not load office hours: ${error.message}`));
    }
  }

  await loadCourses();
  await Promise.all([loadSessions(), loadNotifications(), loadOnline(), loadGroups(), loadOfficeHours()]);
  // Office hours follow the statuses watched and my own queue's news.
  const refreshOfficeHours = debounce(loadOfficeHours, 300);
  cleanup(() => refreshOfficeHours.cancel());
  watching = watchStatuses(officeStatuses.map((s) => s.instructorId), {
    cleanup,
    onStatus: () => {},
    onPush: (push) => {
      officeStatuses = officeStatuses.map((s) => (s.instructorId === push.instructorId ? { ...s, ...push } : s));
      renderOfficeHours();
    },
  });
  for (const event of ['queue-position', 'admitted-to-office-hours', 'removed-from-queue', 'office-hours-completed', 'queue-updated']) {
    cleanup(realtime.on(event, refreshOfficeHours));
  }
  const refreshGroups = debounce(loadGroups, 400);
  cleanup(() => refreshGroups.cancel());
  for (const event of ['study-group-activity', 'study-group-updated', 'study-group-invite', 'removed-from-study-group', 'unread-updated']) {
    cleanup(realtime.on(event, refreshGroups));
  }
  // Sessions: scheduled, edited, started, ended or cancelled (pushed to the
  // course's people), and reminders, which also mean a Join may have opened.
  const refreshSessions = debounce(loadSessions, 200);
  cleanup(() => refreshSessions.cancel());
  cleanup(realtime.on('notification', () => { loadNotifications(); refreshSessions(); }));
  for (const event of ['session-status-changed', 'session-updated', 'reconnected']) {
    cleanup(realtime.on(event, refreshSessions));
  }
  const refreshGroupsOnline = throttle(loadGroups, 3000);
  cleanup(() => refreshGroupsOnline.cancel());
  const refreshOnline = throttle(loadOnline, 1000);
  cleanup(() => refreshOnline.cancel());
  cleanup(realtime.on('presence-updated', () => { refreshOnline(); refreshGroupsOnline(); }));
}
