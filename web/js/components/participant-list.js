// Who is in the room, with role badges, joined time and presence dots; once
// the session is over, who attended it instead (nobody is in it any more).
import { h, mount, formatClock } from '../dom.js';
import { person } from './presence.js';

export function participantList() {
  const list = h('ul', { class: 'plain', 'aria-label': 'Participants' });
  const count = h('span', { class: 'muted' });
  const title = h('span', {}, 'Participants');
  const note = h('p', { class: 'hint participants-note', id: 'participants-note', hidden: true });
  const people = new Map();
  /** Changes pushed while a join's answer is awaited (null when none is). */
  let pending = null;
  /** Set when the session is over: `{ endedAt, cancelled }`. */
  let over = null;

  function render() {
    const sorted = [...people.values()].sort((a, b) => (a.role === 'instructor' ? -1 : b.role === 'instructor' ? 1 : a.name.localeCompare(b.name)));
    if (over) {
      // Everyone seen, with when they came and went: an account of the
      // session, not a list of who is here (nobody is).
      const line = (p) => h('li', { class: 'attended', dataset: { userId: p.userId } },
        person(p.userId, p.name, h('span', { class: `badge ${p.role}` }, p.role)),
        h('div', { class: 'joined' }, `joined ${formatClock(p.joinedAt)} · `,
          p.stayedToEnd ? 'stayed to the end' : `left ${formatClock(p.leftAt)}`));
      title.textContent = 'Attended';
      list.setAttribute('aria-label', 'Attended');
      mount(list, sorted.map(line));
      leftPart.hidden = true;
      count.textContent = `(${sorted.length})`;
      return;
    }
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
  const element = h('section', { class: 'card participants', 'aria-label': 'Participants' }, h('h2', {}, title, ' ', count), note, list, leftPart);

  return {
    element,
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
      if (over) return;
      const apply = () => people.set(p.userId, { ...p, leftAt: null });
      if (pending) pending.push(apply);
      apply();
      render();
    },
    left(userId, leftAt) {
      if (over) return;
      const apply = () => {
        const p = people.get(userId);
        if (p) people.set(userId, { ...p, leftAt: leftAt || new Date().toISOString() });
      };
      if (pending) pending.push(apply);
      apply();
      render();
    },
    /**
     * The session ended (or was cancelled): nobody is in the room now.
     * `attendees` (from the attendance, for its instructor) replaces who
     * this page saw come; `why` follows the note (what the list is).
     */
    close({ endedAt, cancelled = false, attendees = null, why = '' }) {
      if (over) return;
      over = { endedAt, cancelled };
      pending = null;
      if (attendees) {
        people.clear();
        const end = endedAt ? Date.parse(endedAt) : Infinity;
        attendees.forEach((p) => people.set(p.userId, { ...p, stayedToEnd: !p.leftAt || Date.parse(p.leftAt) >= end }));
      } else {
        for (const [id, p] of people) if (!p.leftAt) people.set(id, { ...p, leftAt: endedAt, stayedToEnd: true });
      }
      const when = endedAt ? ` at ${formatClock(endedAt)}` : '';
      note.textContent = cancelled ? 'The session was cancelled: nobody is in the room.'
        : `The session ended${when}: nobody is in the room now.${why ? ` ${why}` : ''}`;
      note.hidden = false;
      element.classList.add('over');
      render();
    },
  };
}
