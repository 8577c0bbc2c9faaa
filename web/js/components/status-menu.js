// My own presence: a status (with an optional expiry) and privacy settings.
import { h } from '../dom.js';
import { api } from '../api.js';
import { toast, withBusy } from './toasts.js';
import { rememberPresence } from './presence.js';
import { store } from '../store.js';

export function statusMenu() {
  const panel = h('div', { class: 'menu-panel', hidden: true, id: 'status-panel' });
  const toggle = h('button', { 'aria-expanded': 'false', 'aria-controls': 'status-panel', class: 'status-toggle' }, 'My status');
  toggle.addEventListener('click', async () => {
    const open = panel.hidden;
    panel.hidden = !open;
    toggle.setAttribute('aria-expanded', String(open));
    if (open) await fill();
  });

  const status = h('select', { id: 'my-status', 'aria-label': 'Status' },
    h('option', { value: '' }, 'Automatic'),
    h('option', { value: 'online' }, 'Available'),
    h('option', { value: 'away' }, 'Away'),
    h('option', { value: 'busy' }, 'Busy'),
    h('option', { value: 'dnd' }, 'Do not disturb'));
  const expiry = h('select', { id: 'my-status-expiry', 'aria-label': 'Until' },
    h('option', { value: '' }, 'Until I change it'),
    h('option', { value: '30' }, 'For 30 minutes'),
    h('option', { value: '60' }, 'For 1 hour'),
    h('option', { value: '240' }, 'For 4 hours'));
  const activity = h('input', { id: 'my-activity', maxlength: 100, placeholder: 'e.g. Studying for the quiz', 'aria-label': 'Activity' });
  const save = h('button', { class: 'primary', type: 'button' }, 'Save status');
  save.addEventListener('click', () => withBusy(save, async () => {
    const minutes = Number(expiry.value);
    const body = {
      status: status.value || null,
      activity: activity.value.trim() || null,
      expiresAt: status.value && minutes ? new Date(Date.now() + minutes * 60000).toISOString() : null,
    };
    const presence = await api.put('/api/presence/status', body);
    rememberPresence(presence);
    toast('Status saved.');
  }));

  const privacy = {
    hideActivity: h('input', { type: 'checkbox', id: 'hide-activity', style: 'width:auto' }),
    hideLastSeen: h('input', { type: 'checkbox', id: 'hide-last-seen', style: 'width:auto' }),
    appearOffline: h('input', { type: 'checkbox', id: 'appear-offline', style: 'width:auto' }),
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
      const [mine, settings] = await Promise.all([
        api.get(`/api/presence/user/${store.me.id}`),
        api.get('/api/presence/privacy'),
      ]);
      activity.value = mine.activity || '';
      privacy.hideActivity.checked = settings.hideActivity;
      privacy.hideLastSeen.checked = settings.hideLastSeen;
      privacy.appearOffline.checked = settings.appearOffline;
    } catch (error) {
      toast(`Could not load your status: ${error.message}`, { kind: 'error' });
    }
  }

  const row = (box, text) => h('label', { for: box.id, class: 'row', style: 'margin:.3rem 0' }, box, text);
  panel.append(
    h('label', { for: 'my-status' }, 'Status'), status,
    h('label', { for: 'my-status-expiry' }, 'Until'), expiry,
    h('label', { for: 'my-activity' }, 'Activity'), activity,
    h('div', { style: 'margin-top:.5rem' }, save),
    h('hr'),
    h('strong', {}, 'Privacy'),
    row(privacy.hideActivity, 'Hide my activity'),
    row(privacy.hideLastSeen, 'Hide when I was last seen'),
    row(privacy.appearOffline, 'Appear offline'));
  return h('div', { class: 'menu' }, toggle, panel);
}
