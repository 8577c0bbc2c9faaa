// Short messages in the corner: errors in words, notifications as they come.
// A few at a time (the oldest goes first), each closable and gone by itself.
// On a phone they lie over the page, never in its flow (nothing moves under
// a finger), and where they cover no control that is on screen: the bottom
// edge if it is free, else the top edge, else the free band nearest the
// bottom (over text, say); with no band free, where they cover the fewest,
// never the one in use if that can be helped (see `place`).
import { h } from '../dom.js';
import { icon } from './icons.js';

const PHONE = window.matchMedia('(max-width: 600px)');
/** Space kept between the stack and the screen's edges or a control (px). */
const MARGIN = 8;

/** How many show at once: fewer on a phone, where each takes a whole row. */
export function maxToasts() {
  return PHONE.matches ? 2 : 3;
}

/** What a toast must not lie over: what one can press or type in. */
const CONTROLS = ['a[href]', 'button', 'input', 'textarea', 'select', '[tabindex="0"]']
  .flatMap((c) => [`main ${c}`, `#topbar ${c}`]).join(', ');

/** The controls on screen, as vertical extents (the stack spans the screen's width). */
function controlsOnScreen() {
  const found = [];
  for (const el of document.querySelectorAll(CONTROLS)) {
    const r = el.getBoundingClientRect();
    if (!r.width || !r.height || r.bottom <= 0 || r.top >= window.innerHeight) continue;
    found.push({ el, top: r.top, bottom: r.bottom });
  }
  return found;
}

/** Where the stack goes on a phone: its top, in px from the top of the screen. */
function bestTop(height, controls) {
  const lowest = window.innerHeight - height - MARGIN;
  const candidates = [lowest, MARGIN];
  for (const c of controls) candidates.push(c.bottom + MARGIN, c.top - MARGIN - height);
  const cost = (top) => {
    const under = controls.filter((c) => c.top < top + height && top < c.bottom);
    return under.length + (under.some((c) => c.el === document.activeElement) ? 1000 : 0);
  };
  let best = lowest;
  let bestCost = Infinity;
  // The edges first (bottom, then top), then the others from the bottom up.
  const order = [lowest, MARGIN, ...candidates.slice(2).filter((top) => top >= MARGIN && top <= lowest).sort((a, b) => b - a)];
  for (const top of order) {
    const c = cost(top);
    if (c < bestCost) { best = top; bestCost = c; }
    if (c === 0) break;
  }
  return best;
}

function place() {
  const box = document.getElementById('toasts');
  if (!box) return;
  if (!PHONE.matches || !box.children.length) {
    box.style.top = '';
    return;
  }
  box.style.top = `${bestTop(box.getBoundingClientRect().height, controlsOnScreen())}px`;
}

let placing = false;
function placeSoon() {
  if (placing) return;
  placing = true;
  requestAnimationFrame(() => { placing = false; place(); });
}
// Scrolling moves the controls under the stack: it moves once the scrolling stops.
let settle = null;
window.addEventListener('scroll', () => { clearTimeout(settle); settle = setTimeout(placeSoon, 120); }, { passive: true });
for (const event of ['resize', 'focusin']) window.addEventListener(event, placeSoon, { passive: true });
const stack = document.getElementById('toasts');
if (stack) new MutationObserver(placeSoon).observe(stack, { childList: true });

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
  place();
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
