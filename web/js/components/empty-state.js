// What a list with nothing in it shows: an icon, what is (not) there, and
// what to do next, with a link or a button to do it; never a blank area.
import { h } from '../dom.js';
import { icon } from './icons.js';

/**
 * `tag` is the element (an `li` inside a list); `action` is a link or a
 * button already made, or an array of them.
 */
export function emptyState({ icon: name, title, hint, action, tag = 'div', id } = {}) {
  return h(tag, { class: 'empty-state', id },
    h('span', { class: 'empty-icon' }, icon(name || 'search')),
    h('div', { class: 'empty-body' },
      h('p', { class: 'empty-title' }, title),
      hint ? h('p', { class: 'empty-hint' }, hint) : null,
      action ? h('div', { class: 'empty-actions' }, action) : null));
}

/** A button that takes focus to a field of the page (e.g. "Create a group" to its name). */
export function focusButton(text, selector) {
  return h('button', {
    type: 'button',
    class: 'empty-action',
    onclick: (event) => {
      event.preventDefault();
      const field = document.querySelector(selector);
      if (!field) return;
      field.scrollIntoView({ block: 'center' });
      field.focus();
    },
  }, text);
}

/** A link to another page, styled as an empty state's next step. */
export function pageLink(text, href) {
  return h('a', { href, class: 'empty-action' }, text);
}
