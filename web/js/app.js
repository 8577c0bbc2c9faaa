// The app shell: header with connection state and my status, and a small
// hash router that gives each page a way to clean up after itself.
import { h, mount, pageTitle } from './dom.js';
import { store } from './store.js';
import { realtime } from './socket.js';
import { toast } from './components/toasts.js';
import { statusMenu } from './components/status-menu.js';
import { desktopNotify } from './components/desktop-notify.js';
import { menu } from './components/menu.js';
import { icon } from './components/icons.js';
import { loginPage, registerPage } from './pages/auth.js';
import { dashboardPage } from './pages/dashboard.js';
import { sessionsPage } from './pages/sessions.js';
import { roomPage } from './pages/room.js';
import { attendancePage } from './pages/attendance.js';
import { groupsPage } from './pages/groups.js';
import { groupRoomPage } from './pages/group-room.js';
import { officeHoursPage } from './pages/office-hours.js';
import { officeHoursManagePage } from './pages/office-hours-manage.js';
import { officeHoursRoomPage } from './pages/office-hours-room.js';
import { api } from './api.js';

// Each route: its pattern, its page, whether it needs a signed-in user, and
// the page's title (a page with a name of its own, a room, refines it).
const routes = [
  [/^#\/login$/, loginPage, false, 'Sign in'],
  [/^#\/register$/, registerPage, false, 'Create an account'],
  [/^#\/dashboard$/, dashboardPage, true, 'Dashboard'],
  [/^#\/sessions$/, sessionsPage, true, 'Live sessions'],
  [/^#\/sessions\/(?<id>[0-9a-f-]{36})$/, roomPage, true, 'Live session'],
  [/^#\/sessions\/(?<id>[0-9a-f-]{36})\/attendance$/, attendancePage, true, 'Attendance'],
  [/^#\/groups$/, groupsPage, true, 'Study groups'],
  [/^#\/groups\/(?<id>[0-9a-f-]{36})$/, groupRoomPage, true, 'Study group'],
  [/^#\/office-hours$/, officeHoursPage, true, 'Office hours'],
  [/^#\/office-hours\/manage$/, officeHoursManagePage, true, 'My office hours'],
  [/^#\/office-hours\/room\/(?<id>[0-9a-f-]{36})$/, officeHoursRoomPage, true, 'Office hours room'],
];

const CONNECTION_WORDS = {
  open: 'Connected', connecting: 'Connecting…', reconnecting: 'Reconnecting…', offline: 'Offline',
};

let cleanups = [];
/** Set on signing in or out: the next page gives focus to the start of the document. */
let focusStart = false;
let stopWatchingConnection = () => {};

function renderHeader() {
  const topbar = document.getElementById('topbar');
  if (!store.me) {
    mount(topbar, h('a', { class: 'brand', href: '#/login' }, 'Classroom'));
    return;
  }
  const conn = h('span', { class: 'conn', id: 'connection-state', role: 'status', 'aria-live': 'polite', dataset: { state: realtime.state } }, CONNECTION_WORDS[realtime.state]);
  stopWatchingConnection();
  stopWatchingConnection = realtime.on('state', (state) => { conn.dataset.state = state; conn.textContent = CONNECTION_WORDS[state]; });
  mount(topbar,
    h('a', { class: 'brand', href: '#/dashboard' }, 'Classroom'),
    h('nav', { 'aria-label': 'Main' }, [['#/dashboard', 'Dashboard'], ['#/sessions', 'Sessions'], ['#/groups', 'Groups'], ['#/office-hours', 'Office hours']]
      .map(([href, text]) => h('a', { href, onclick: reloadIfHere }, text))),
    conn,
    statusMenu(),
    accountMenu());
}

/**
 * My name and Sign out: in the header's row on a desktop; on a phone behind
 * one button, so that the header keeps to two rows (styles.css, `.account`).
 */
function accountMenu() {
  const panel = h('div', { class: 'account-panel', id: 'account-panel' },
    h('span', { class: 'muted account-name' }, store.me.name),
    h('button', { type: 'button', onclick: signOut }, 'Sign out'));
  const toggle = h('button', {
    type: 'button', class: 'account-toggle icon-button', id: 'account-toggle',
    'aria-expanded': 'false', 'aria-controls': 'account-panel', 'aria-label': `Account: ${store.me.name}`,
  }, icon('menu'));
  const element = h('div', { class: 'account' }, toggle, panel);
  const account = menu({ element, toggle, show: (open) => element.classList.toggle('open', open) });
  toggle.addEventListener('click', () => {
    if (account.isOpen()) { account.close(false); return; }
    account.open();
    panel.querySelector('button').focus();
  });
  return element;
}

/** A link to the page already shown reloads it (no hash change would). */
function reloadIfHere(event) {
  if (event.currentTarget.getAttribute('href') !== location.hash) return;
  event.preventDefault();
  route();
}

async function signOut() {
  try { await api.post('/api/auth/logout'); } catch { /* signing out locally regardless */ }
  realtime.disconnect();
  store.signOut();
  location.hash = '#/login';
}

async function route() {
  for (const fn of cleanups) { try { fn(); } catch { /* page already gone */ } }
  cleanups = [];
  const hash = location.hash || (store.me ? '#/dashboard' : '#/login');
  const main = document.getElementById('main');
  for (const [pattern, page, needsAuth, title] of routes) {
    const match = hash.match(pattern);
    if (!match) continue;
    if (needsAuth && !store.me) { location.hash = '#/login'; return; }
    if (!needsAuth && store.me) { location.hash = '#/dashboard'; return; }
    pageTitle(title);
    await page(main, { params: match.groups || {}, cleanup: (fn) => cleanups.push(fn) });
    // After signing in (or out) the form that had focus is gone: a keyboard
    // user starts again at the top of the page (the skip link, then the
    // header), not somewhere inside the new page.
    if (focusStart) {
      focusStart = false;
      document.querySelector('.skip-link').focus();
    }
    return;
  }
  location.hash = store.me ? '#/dashboard' : '#/login';
}

store.onChange(() => {
  focusStart = true;
  renderHeader();
  if (store.token) realtime.connect(store.token);
  else realtime.disconnect();
});

// A reminder about the session whose room I have open says nothing new.
realtime.on('notification', (n) => {
  const sessionId = n && n.data && n.data.sessionId;
  if (sessionId && location.hash === `#/sessions/${sessionId}`) return;
  toast(n.title);
  // "Session starting" also on the desktop, for someone in another tab.
  if (sessionId && /^session_reminder_/.test(n.kind || '')) {
    desktopNotify(n.title, { body: n.body || '', tag: `${n.kind}:${sessionId}`, href: `#/sessions/${sessionId}` });
  }
});
realtime.on('study-group-invite', ({ invite }) => {
  if (!invite) return;
  toast(`${invite.invitedByName || 'A classmate'} invited you to ${invite.groupName || 'a study group'}. See Groups.`);
});

// Office hours news reaches a student on any page; the office-hours pages
// follow it by themselves.
realtime.on('admitted-to-office-hours', ({ roomId }) => {
  const here = location.hash === `#/office-hours/room/${roomId}`;
  if (!here) desktopNotify('Your instructor is ready for you', { body: 'Open the office hours room.', tag: `admitted:${roomId}`, href: `#/office-hours/room/${roomId}` });
  if (!here) {
    toast(h('span', {}, 'Your instructor is ready for you. ', h('a', { href: `#/office-hours/room/${roomId}` }, 'Open the room')), { ms: 15000 });
  }
});
realtime.on('removed-from-queue', ({ reason }) => {
  const why = { closed: 'the queue closed', absent: 'you were away too long', skipped: 'your instructor skipped your turn' }[reason];
  toast(`You are no longer in the office hours queue${why ? `: ${why}` : ''}.`, { kind: 'error', ms: 8000 });
});
realtime.on('office-hours-completed', ({ reason }) => {
  toast(reason === 'inactive' ? 'Your office hours session ended after a while without messages.' : 'Your office hours session is completed.', { ms: 8000 });
});

// The skip link moves focus to the page; as a plain "#main" it would be a
// route change (the router would send it to the dashboard).
document.querySelector('.skip-link').addEventListener('click', (event) => {
  event.preventDefault();
  document.getElementById('main').focus();
});

renderHeader();
if (store.token) realtime.connect(store.token);
window.addEventListener('hashchange', route);
route();
