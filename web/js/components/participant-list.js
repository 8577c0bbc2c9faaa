// Who is in the room, with role badges, joined time and presence dots.
import { h, mount, formatClock } from '../dom.js';
import { person } from './presence.js';

export function participantList() {
  const list = h('ul', { class: 'plain', 'aria-label': 'Participants' });
  const count = h('span', { class: 'muted' });
  const people = new Map();
  /** Changes pushed while a join's answer is awaited (null when none is). */
  let pending = null;

  function render() {
    const sorted = [...people.values()].sort((a, b) => (a.role === 'instructor' ? -1 : b.role === 'instructor' ? 1 : a.name.localeCompare(b.name)));
    const here = sorted.filter((p) => !p.leftAt);
    const gone = sorted.filter((p) => p.leftAt);
    const line = (p) => h('li', { class: p.leftAt ? 'left-room' : null, dataset: { userId: p.userId } },
      person(p.userId, p.name, h('span', { class: `badge ${p.role}` }, p.role)),
      h('div', { class: 'joined' }, p.leftAt ? `left ${formatClock(p.leftAt)}` : `joined ${formatClock(p.joinedAt)}`));
    mount(list, here.map(line));
    mount(leftList, gone.map(line));
    leftPart.hidden = gone.length === 0;
    count.textContent = `(${here.length})`;
  }
  // Who came and went stays listed, with when they left, rather than vanishing.
  const leftList = h('ul', { class: 'plain', 'aria-label': 'Left the session' });
  const leftPart = h('div', { hidden: true }, h('h3', { class: 'sub' }, 'Left'), leftList);

  return {
    element: h('section', { class: 'card', 'aria-label': 'Participants' }, h('h2', {}, 'Participants ', count), list, leftPart),
    /**
     * A join was sent: its answer's list is as of when the server took it,
     * so arrivals and departures pushed before the answer are replayed on it.
     */
    expectReset() { pending = []; },
    reset(participants) {
      // Those who left stay listed as such; everyone present comes from the server.
      for (const [id, p] of people) if (!p.leftAt) people.delete(id);
      participants.forEach((p) => people.set(p.userId, p));
      const replay = pending || [];
      pending = null;
      replay.forEach((apply) => apply());
      render();
    },
    joined(p) {
      const apply = () => people.set(p.userId, { ...p, leftAt: null });
      if (pending) pending.push(apply);
      apply();
      render();
    },
    left(userId, leftAt) {
      const apply = () => {
        const p = people.get(userId);
        if (p) people.set(userId, { ...p, leftAt: leftAt || new Date().toISOString() });
      };
      if (pending) pending.push(apply);
      apply();
      render();
    },
  };
}
