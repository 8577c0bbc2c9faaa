// Short messages in the corner: errors in words, notifications as they come.
import { h } from '../dom.js';

export function toast(message, { kind = 'info', ms = 5000 } = {}) {
  const box = document.getElementById('toasts');
  const el = h('div', { class: `toast ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, message);
  box.append(el);
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
