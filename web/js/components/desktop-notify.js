// Desktop notifications (the Web Notifications API) for "session starting"
// and "admitted" (office hours). The browser is asked for permission only
// when the person clicks the button that says so, never on page load; a
// notification shows only while the tab is not what the person looks at
// (otherwise the toast says it).
import { h } from '../dom.js';

const supported = () => 'Notification' in window;

/** Shows a desktop notification if allowed and the tab is in the background; a click opens `href`. */
export function desktopNotify(title, { body = '', tag, href } = {}) {
  if (!supported() || Notification.permission !== 'granted') return;
  if (document.visibilityState === 'visible' && document.hasFocus()) return;
  try {
    const note = new Notification(title, { body, tag, icon: '/favicon.svg' });
    note.onclick = () => {
      window.focus();
      if (href) location.hash = href;
      note.close();
    };
  } catch {
    // Some browsers allow notifications only from a service worker: the toast still says it.
  }
}

const WORDS = {
  granted: 'Desktop notifications are on for sessions starting and office hours.',
  denied: 'Desktop notifications are blocked in this browser\'s site settings.',
};

/** The line on the dashboard: a button to turn desktop notifications on, or where they stand. */
export function desktopNotifyControl() {
  const line = h('p', { class: 'hint', id: 'desktop-notify-state' });
  const wrap = h('div', { class: 'row', id: 'desktop-notify' });
  function render() {
    if (!supported()) { wrap.replaceChildren(); return; }
    const permission = Notification.permission;
    line.textContent = WORDS[permission] || '';
    if (permission === 'default') {
      const button = h('button', { type: 'button', onclick: async () => {
        button.disabled = true;
        try { await Notification.requestPermission(); } finally { render(); }
      } }, 'Turn on desktop notifications');
      wrap.replaceChildren(button);
    } else {
      wrap.replaceChildren(line);
    }
  }
  render();
  return wrap;
}
