// My own presence: a status (with an optional expiry), my activity line and
// privacy settings. What the menu and the header show comes from the
// server's own view (`own`: the manual status and whether the activity line
// is the automatic one), read at sign-in, after every reconnect and on every
// opening of the menu, so a reload never shows "Automatic" while I am on Do
// not disturb. The menu closes with Escape, a click outside it, or a change
// of page.
import { h, mount, formatClock } from '../dom.js';
import { api } from '../api.js';
import { toast, withBusy } from './toasts.js';
import { rememberPresence } from './presence.js';
import { realtime } from '../socket.js';
import { store } from '../store.js';
import { menu as menuBehaviour } from './menu.js';

export const STATUS_WORDS = { online: 'Available', away: 'Away', busy: 'Busy', dnd: 'Do not disturb', offline: 'Offline' };

/** My presence as the server last told it (my own view), or null. */
let mine = null;
const watchers = new Set();
let expiryTimer = null;

function setMine(view) {
  if (!view) return;
  mine = view;
  rememberPresence(view);
  clearTimeout(expiryTimer);
  // A manual status that ends by itself: ask again once it has.
  const until = view.own && view.own.manualStatusExpiresAt;
  if (until) expiryTimer = setTimeout(loadMine, Math.max(0, new Date(until).getTime() - Date.now()) + 500);
  watchers.forEach((fn) => fn());
}

export async function loadMine() {
  if (!store.me) return null;
  try {
    setMine(await api.get(`/api/presence/user/${store.me.id}`));
  } catch { /* the header keeps what it knew; the menu says so when opened */ }
  return mine;
}

realtime.on('ready', loadMine);
realtime.on('reconnected', loadMine);

/** How my status reads: "Do not disturb", "Available (automatic)". */
function statusText(view) {
  if (!view) return '…';
  const manual = view.own && view.own.manualStatus;
  if (manual) return STATUS_WORDS[manual];
  return `${STATUS_WORDS[view.status] || view.status} (automatic)`;
}

export function statusMenu() {
  const panel = h('div', { class: 'menu-panel', hidden: true, id: 'status-panel', role: 'group', 'aria-label': 'My status' });
  const dot = h('span', { class: 'status-dot', 'aria-hidden': 'true' });
  const label = h('span', { id: 'my-status-label' });
  // On a phone only the dot shows; the words stay the button's name (see `.status-words`).
  const toggle = h('button', { 'aria-expanded': 'false', 'aria-controls': 'status-panel', class: 'status-toggle', id: 'status-toggle' },
    dot, h('span', { class: 'status-words' }, 'My status: ', label));
  function renderToggle() {
    // The dot says what the label says: a status I set shows even in the
    // moment after a reload when the server has not seen my new socket yet
    // (and so calls me offline).
    dot.dataset.status = mine ? (mine.own && mine.own.manualStatus) || mine.status : 'offline';
    label.textContent = statusText(mine);
  }

  const status = h('select', { id: 'my-status', 'aria-label': 'Status' },
    h('option', { value: '' }, 'Automatic'),
    h('option', { value: 'online' }, 'Available'),
    h('option', { value: 'away' }, 'Away'),
    h('option', { value: 'busy' }, 'Busy'),
    h('option', { value: 'dnd' }, 'Do not disturb'));
  const expiry = h('select', { id: 'my-status-expiry', 'aria-label': 'Until' });
  const activity = h('input', { id: 'my-activity', maxlength: 100, placeholder: 'e.g. Studying for the quiz', 'aria-label': 'Activity', 'aria-describedby': 'my-activity-auto' });
  const automaticNote = h('p', { class: 'hint', id: 'my-activity-auto', hidden: true });
  const save = h('button', { class: 'primary', type: 'button' }, 'Save status');

  /** The form as loaded, to send only what I changed. */
  let loaded = { status: '', expiry: '', activity: '' };
  function fillForm() {
    const own = (mine && mine.own) || {};
    const until = own.manualStatus && own.manualStatusExpiresAt;
    mount(expiry,
      until ? h('option', { value: 'keep' }, `Until ${formatClock(until)} (as set)`) : null,
      h('option', { value: '' }, 'Until I change it'),
      h('option', { value: '30' }, 'For 30 minutes'),
      h('option', { value: '60' }, 'For 1 hour'),
      h('option', { value: '240' }, 'For 4 hours'));
    status.value = own.manualStatus || '';
    expiry.value = until ? 'keep' : '';
    const automatic = Boolean(own.activityAutomatic && mine.activity);
    // An automatic line is shown as such, not put in the field: saving must
    // not make it mine (it goes by itself when I leave the session).
    activity.value = automatic ? '' : (mine && mine.activity) || '';
    automaticNote.hidden = !automatic;
    automaticNote.textContent = automatic ? `Set automatically: "${mine.activity}". It ends when you leave; type a line of your own to replace it.` : '';
    loaded = { status: status.value, expiry: expiry.value, activity: activity.value.trim() };
  }

  save.addEventListener('click', () => withBusy(save, async () => {
    const body = {};
    if (status.value !== loaded.status || expiry.value !== loaded.expiry) {
      body.status = status.value || null;
      const keep = expiry.value === 'keep' ? mine.own.manualStatusExpiresAt : null;
      const minutes = Number(expiry.value);
      body.expiresAt = status.value ? keep || (minutes ? new Date(Date.now() + minutes * 60000).toISOString() : null) : null;
    }
    const typed = activity.value.trim();
    if (typed !== loaded.activity) body.activity = typed || null;
    setMine(await api.put('/api/presence/status', body));
    fillForm();
    toast('Status saved.');
  }));

  const privacy = {
    hideActivity: h('input', { type: 'checkbox', id: 'hide-activity', class: 'check' }),
    hideLastSeen: h('input', { type: 'checkbox', id: 'hide-last-seen', class: 'check' }),
    appearOffline: h('input', { type: 'checkbox', id: 'appear-offline', class: 'check' }),
  };
  for (const box of Object.values(privacy)) {
    box.addEventListener('change', async () => {
      try {
        await api.put('/api/presence/privacy', {
          hideActivity: privacy.hideActivity.checked,
          hideLastSeen: privacy.hideLastSeen.checked,
          appearOffline: privacy.appearOffline.checked,
        });
        toast('Privacy saved.');
      } catch (error) {
        box.checked = !box.checked;
        toast(`Privacy not saved: ${error.message}`, { kind: 'error' });
      }
    });
  }

  async function fill() {
    try {
      const [view, settings] = await Promise.all([
        api.get(`/api/presence/user/${store.me.id}`),
        api.get('/api/presence/privacy'),
      ]);
      setMine(view);
      fillForm();
      privacy.hideActivity.checked = settings.hideActivity;
      privacy.hideLastSeen.checked = settings.hideLastSeen;
      privacy.appearOffline.checked = settings.appearOffline;
    } catch (error) {
      toast(`Could not load your status: ${error.message}`, { kind: 'error' });
    }
  }

  const row = (box, text) => h('label', { for: box.id, class: 'row check-row' }, box, text);
  panel.append(
    h('label', { for: 'my-status' }, 'Status'), status,
    h('label', { for: 'my-status-expiry' }, 'Until'), expiry,
    h('label', { for: 'my-activity' }, 'Activity'), activity, automaticNote,
    h('div', { class: 'menu-actions' }, save),
    h('hr'),
    h('strong', {}, 'Privacy'),
    row(privacy.hideActivity, 'Hide my activity'),
    row(privacy.hideLastSeen, 'Hide when I was last seen'),
    row(privacy.appearOffline, 'Appear offline'));
  fillForm();

  const element = h('div', { class: 'menu status-menu' }, toggle, panel);
  const menu = menuBehaviour({ element, toggle, show: (open) => { panel.hidden = !open; } });
  toggle.addEventListener('click', async () => {
    if (menu.isOpen()) { menu.close(false); return; }
    menu.open();
    // Until the server's view is in, the form is not mine to change: a
    // choice made before it arrives would be overwritten by it (and a save
    // would then send nothing).
    const controls = [status, expiry, activity, save];
    controls.forEach((control) => { control.disabled = true; });
    panel.setAttribute('aria-busy', 'true');
    try {
      await fill();
    } finally {
      controls.forEach((control) => { control.disabled = false; });
      panel.removeAttribute('aria-busy');
    }
  });

  renderToggle();
  const redraw = () => { if (element.isConnected) renderToggle(); else watchers.delete(redraw); };
  watchers.add(redraw);
  if (!mine || mine.userId !== (store.me && store.me.id)) { mine = null; loadMine(); }
  return element;
}
