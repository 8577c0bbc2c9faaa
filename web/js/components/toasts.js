// Short messages in the corner: errors in words, notifications as they come.
// A few at a time (the oldest goes first), each closable and gone by itself;
// on a phone they sit in the page's flow under the header (see `.toasts` in
// styles.css).
import { h } from '../dom.js';
import { icon } from './icons.js';

/** How many show at once: fewer on a phone, where each takes a whole row. */
export function maxToasts() {
  return window.matchMedia('(max-width: 600px)').matches ? 2 : 3;
}

export function toast(message, { kind = 'info', ms = 5000 } = {}) {
  const box = document.getElementById('toasts');
  // The same words again (a burst of one kind of news) restart the one shown.
  const text = typeof message === 'string' ? message : null;
  const same = text && [...box.children].find((el) => el.dataset.text === text);
  if (same) same.remove();
  const el = h('div', { class: `toast ${kind}`, role: kind === 'error' ? 'alert' : 'status', dataset: text ? { text } : {} },
    h('div', { class: 'toast-text' }, message),
    h('button', { type: 'button', class: 'toast-close', 'aria-label': 'Dismiss', title: 'Dismiss', onclick: () => el.remove() }, icon('close')));
  box.append(el);
  while (box.children.length > maxToasts()) box.firstElementChild.remove();
  setTimeout(() => el.remove(), ms);
}

/** Runs an action with its button disabled meanwhile; errors become toasts. */
export async function withBusy(button, action) {
  const label = button.textContent;
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  try {
    return await action();
  } catch (error) {
    toast(error.message || 'Something went wrong.', { kind: 'error' });
    return undefined;
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
    button.textContent = label;
  }
}
