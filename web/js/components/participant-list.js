// Who is in the room, with role badges, joined time and presence dots.
import { h, mount, formatClock } from '../dom.js';
import { person } from './presence.js';

export function participantList() {
  const list = h('ul', { class: 'plain', 'aria-label': 'Participants' });
  const count = h('span', { class: 'muted' });
  const people = new Map();

  function render() {
    const sorted = [...people.values()].sort((a, b) => (a.role === 'instructor' ? -1 : b.role === 'instructor' ? 1 : a.name.localeCompare(b.name)));
    mount(list, sorted.map((p) => h('li', {},
      person(p.userId, p.name, h('span', { class: `badge ${p.role}` }, p.role)),
      h('div', { class: 'joined' }, `joined ${formatClock(p.joinedAt)}`))));
    count.textContent = `(${people.size})`;
  }

  return {
    element: h('section', { class: 'card', 'aria-label': 'Participants' }, h('h2', {}, 'Participants ', count), list),
    reset(participants) { people.clear(); participants.forEach((p) => people.set(p.userId, p)); render(); },
    joined(p) { people.set(p.userId, p); render(); },
    left(userId) { people.delete(userId); render(); },
  };
}
