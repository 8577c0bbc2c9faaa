// Building DOM without innerHTML: text is always set as text, so user
// content (chat, names, questions) can never become markup.

/** h('div', {class: 'x', onclick: fn}, 'text', child) */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'class') el.className = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (value === true) el.setAttribute(key, '');
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces the content of an element. */
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** The tab's title: the page's name, then the app's ("Dashboard · Classroom"). */
export function pageTitle(name) {
  document.title = name ? `${name} · Classroom` : 'Classroom';
}

export function formatTime(iso) {
  if (!iso) return '';
  return new Date(iso).toLocaleString(undefined, { weekday: 'short', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}

/** The viewer's time zone, to say which time a page shows ("Europe/Paris"). */
export function timeZone() {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'local time';
}

export function formatClock(iso) {
  return iso ? new Date(iso).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' }) : '';
}

export function since(iso) {
  if (!iso) return '';
  const seconds = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
  if (seconds < 60) return 'just now';
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return formatTime(iso);
}

/** Calls fn once, `ms` after the last of a burst of calls. */
export function debounce(fn, ms) {
  let timer = null;
  const debounced = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => { timer = null; fn(...args); }, ms);
  };
  debounced.cancel = () => clearTimeout(timer);
  return debounced;
}

/**
 * Calls fn at most once every `ms`, always after the last call of a burst
 * too: a steady stream of calls (presence in a busy course) cannot put it
 * off for ever, nor run it for every call.
 */
export function throttle(fn, ms) {
  let timer = null;
  const throttled = () => {
    if (timer) return;
    timer = setTimeout(() => { timer = null; fn(); }, ms);
  };
  throttled.cancel = () => { clearTimeout(timer); timer = null; };
  return throttled;
}

/** Redraws a part of the page, giving focus back to the same control. */
export function keepFocus(container, redraw) {
  const focused = document.activeElement;
  const label = focused && container.contains(focused) ? focused.getAttribute('aria-label') || focused.textContent : null;
  redraw();
  if (!label) return;
  const again = [...container.querySelectorAll('button, a, input, select')]
    .find((el) => (el.getAttribute('aria-label') || el.textContent) === label);
  if (again) again.focus();
}
