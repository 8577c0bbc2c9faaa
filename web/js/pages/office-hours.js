// Office hours for a student: my instructors with their status (open or
// closed, the slot now and the next one, who waits, the estimated wait, the
// last announcement), joining a queue with a question, my place in line as
// it moves, "up soon", defer and leave, and the way into the private room
// once admitted. Everything follows the pushes; instructors get their own
// page (office-hours-manage.js) on the same route.
import { h, mount, debounce, formatClock, keepFocus } from '../dom.js';
import { api } from '../api.js';
import { store } from '../store.js';
import { realtime } from '../socket.js';
import { toast, withBusy } from '../components/toasts.js';
import { emptyState, pageLink } from '../components/empty-state.js';
import {
  formatWait, slotLabel, friendly, openBadge, nextOpenText, announcementBox, watchStatuses,
} from '../components/office-hours.js';
import { officeHoursManagePage } from './office-hours-manage.js';

const MAX_QUESTION = 500;

export async function officeHoursPage(main, context) {
  if (store.isInstructor()) return officeHoursManagePage(main, context);
  return studentPage(main, context);
}

async function studentPage(main, { cleanup }) {
  mount(main, h('h1', {}, 'Office hours'), h('p', { class: 'loading' }, 'Loading your instructors'));
  let statuses;
  try {
    statuses = await api.get('/api/office-hours/instructors');
  } catch (error) {
    mount(main, h('h1', {}, 'Office hours'),
      h('p', { class: 'error-text', role: 'alert' }, `Could not load your instructors' office hours: ${error.message}`),
      h('button', { onclick: () => window.dispatchEvent(new HashChangeEvent('hashchange')) }, 'Try again'));
    return;
  }
  if (!statuses.length) {
    mount(main, h('h1', {}, 'Office hours'),
      emptyState({ icon: 'clock', title: 'No instructor to see yet.', hint: 'Office hours are your instructors\'. Enroll in a course with its code, on your dashboard.', action: pageLink('Go to my dashboard', '#/dashboard') }));
    return;
  }

  const cards = new Map();
  const upSoon = new Set();
  for (const status of statuses) cards.set(status.instructorId, instructorCard(status));
  mount(main,
    h('h1', {}, 'Office hours'),
    h('p', { class: 'muted' }, 'Ask your instructors for help: join a queue while their office hours are open, and you will be let into a private room when it is your turn.'),
    h('div', { class: 'grid oh-grid', id: 'office-hours-instructors' }, [...cards.values()].map((c) => c.element)));

  /** One instructor's card; parts are redrawn in place so typing is never lost. */
  function instructorCard(initial) {
    let status = initial;
    const id = status.instructorId;
    const title = h('h2', { id: `oh-title-${id}` }, status.name);
    const badge = h('span', {});
    const figures = h('p', { class: 'oh-figures' });
    const when = h('p', { class: 'muted' });
    const slots = h('p', { class: 'muted oh-slots' });
    const note = h('div', {});
    const action = h('div', { class: 'oh-action' });
    let shape = null;

    // The join form, made once (what is typed survives every redraw).
    const topic = h('input', { id: `oh-topic-${id}`, maxlength: 200, placeholder: 'e.g. Homework 3' });
    const question = h('textarea', { id: `oh-question-${id}`, rows: 3, placeholder: 'What would you like help with?' });
    const count = h('span', { class: 'muted oh-count', 'aria-live': 'polite' }, `0 / ${MAX_QUESTION}`);
    const problem = h('p', { class: 'error-text', role: 'alert' });
    const join = h('button', { class: 'primary', type: 'submit' }, 'Join the queue');
    question.addEventListener('input', () => {
      const n = question.value.trim().length;
      count.textContent = `${n} / ${MAX_QUESTION}`;
      count.classList.toggle('error-text', n > MAX_QUESTION);
    });
    const form = h('form', {
      class: 'stack', 'aria-label': `Join ${status.name}'s queue`,
      onsubmit: (event) => {
        event.preventDefault();
        problem.textContent = '';
        withBusy(join, async () => {
          try {
            const entry = await api.post('/api/office-hours/join-queue', {
              instructorId: id,
              question: question.value.trim() || undefined,
              topic: topic.value.trim() || undefined,
            });
            question.value = '';
            topic.value = '';
            count.textContent = `0 / ${MAX_QUESTION}`;
            status = { ...status, myEntry: entry };
            render();
          } catch (error) {
            problem.textContent = friendly(error);
            if (error.code === 'queue_closed' || error.code === 'already_in_queue') refresh();
          }
        });
      },
    },
    h('label', { for: `oh-topic-${id}` }, 'Topic (optional)'), topic,
    h('label', { for: `oh-question-${id}` }, 'Your question'), question,
    h('div', { class: 'row' }, join, count), problem);

    function render() {
      mount(badge, openBadge(status));
      const waiting = `${status.waitingCount} waiting`;
      const wait = status.isOpen && !status.myEntry ? ` · estimated wait ${formatWait(status.estimatedWaitSec)}` : '';
      figures.textContent = status.isOpen ? `${waiting}${wait}` : 'The queue is closed.';
      when.textContent = status.currentSlot
        ? `Now: ${slotLabel(status.currentSlot)}`
        : status.isOpen ? 'Open now' : nextOpenText(status);
      if (status.isOpen && status.nextOpenAt && status.currentSlot) when.textContent += ` · ${nextOpenText(status)}`;
      slots.textContent = status.slots && status.slots.length
        ? `Weekly: ${status.slots.filter((s) => s.isActive).map(slotLabel).join('; ')}` : '';
      slots.hidden = !slots.textContent;
      mount(note, announcementBox(status.announcement));
      renderAction();
    }

    function renderAction() {
      const entry = status.myEntry;
      const next = entry ? entry.status : status.dropInRoomId ? 'drop-in' : status.isOpen ? 'open' : 'closed';
      // Redrawn at every move in line: focus stays on the same button.
      if (next === 'waiting') return keepFocus(action, () => mount(action, waitingPanel(entry)));
      if (next === 'admitted') return keepFocus(action, () => mount(action, admittedPanel(entry)));
      if (next === shape && next === 'open') return undefined;
      shape = next;
      if (next === 'open') return mount(action, form);
      if (next === 'drop-in') {
        return mount(action, h('div', { class: 'oh-admitted' },
          h('strong', {}, `${status.name} holds a drop-in now: come in and ask.`),
          h('a', { class: 'button primary', href: `#/office-hours/room/${status.dropInRoomId}` }, 'Enter the drop-in room')));
      }
      return mount(action, h('p', { class: 'empty' }, 'You can join when the queue opens.'));
    }

    function waitingPanel(entry) {
      shape = 'waiting';
      const soon = upSoon.has(entry.id) || entry.position <= 2;
      return h('div', { class: `oh-waiting${soon ? ' soon' : ''}`, role: 'status', 'aria-label': `Your place with ${status.name}` },
        h('p', { class: 'oh-position' }, 'Your position: ', h('strong', { class: 'oh-place' }, String(entry.position)),
          entry.position === 1 ? h('span', { class: 'muted' }, ' · you are next') : null),
        h('p', {}, 'Estimated wait: ', h('strong', {}, formatWait(entry.estimatedWaitSec))),
        soon ? h('p', { class: 'oh-up-soon' }, 'You are up soon: stay on this site so you do not miss your turn.') : null,
        entry.topic || entry.question ? h('div', { class: 'oh-question' },
          entry.topic ? h('span', { class: 'badge' }, entry.topic) : null,
          entry.question ? h('div', { class: 'text' }, entry.question) : null) : null,
        h('p', { class: 'muted' }, `In line since ${formatClock(entry.joinedQueueAt)}`),
        h('div', { class: 'row' },
          h('button', {
            disabled: entry.deferred, title: entry.deferred ? 'You can let others go first only once.' : null,
            onclick: (e) => withBusy(e.currentTarget, async () => {
              try {
                const moved = await api.post(`/api/office-hours/queue/${entry.id}/defer`);
                upSoon.delete(entry.id);
                status = { ...status, myEntry: moved };
                render();
                toast(`You let others go first: you are now number ${moved.position}.`);
              } catch (error) { throw new Error(friendly(error)); }
            }),
          }, entry.deferred ? 'Already deferred' : 'Let others go first'),
          h('button', {
            class: 'danger',
            onclick: (e) => withBusy(e.currentTarget, async () => {
              try {
                await api.post(`/api/office-hours/queue/${entry.id}/leave`);
              } catch (error) {
                if (error.code !== 'not_waiting') throw new Error(friendly(error));
              }
              toast(`You left ${status.name}'s queue.`);
              await refresh();
            }),
          }, 'Leave the queue')));
    }

    function admittedPanel(entry) {
      shape = 'admitted';
      return h('div', { class: 'oh-admitted', role: 'alert' },
        h('strong', {}, `${status.name} is ready for you.`),
        h('a', { class: 'button primary', id: `oh-enter-${id}`, href: `#/office-hours/room/${entry.roomId}` }, 'Enter the private room'));
    }

    async function refresh() {
      try {
        status = await api.get(`/api/office-hours/instructor/${id}`);
        render();
      } catch (error) {
        mount(figures, h('span', { class: 'error-text' }, `Could not refresh: ${error.message}`));
      }
    }

    render();
    return {
      element: h('article', { class: 'card oh-card', 'aria-labelledby': `oh-title-${id}`, dataset: { instructorId: id } },
        h('div', { class: 'row' }, title, badge), figures, when, slots, note, action),
      get status() { return status; },
      set(next) { status = next; render(); },
      merge(changes) { status = { ...status, ...changes }; render(); },
      refresh: debounce(refresh, 200),
    };
  }

  const cardOf = (data) => (data ? cards.get(data.instructorId) : undefined);
  const ids = [...cards.keys()];
  watchStatuses(ids, {
    cleanup,
    onStatus: (status) => cardOf(status)?.set(status),
    // The push carries the slot now and the announcement too: merged as is.
    onPush: (push) => { const card = cardOf(push); if (card) card.merge(push); },
  });
  cleanup(() => { for (const card of cards.values()) card.refresh.cancel(); });

  const onMine = (event, fn) => cleanup(realtime.on(event, (data) => {
    const card = cardOf(data);
    if (card) fn(card, data);
  }));
  onMine('queue-position', (card, { queueId, position, estimatedWaitSec }) => {
    const entry = card.status.myEntry;
    if (entry && entry.id === queueId) card.merge({ myEntry: { ...entry, position, estimatedWaitSec } });
  });
  onMine('office-hours-up-soon', (card, { queueId, position }) => {
    upSoon.add(queueId);
    const entry = card.status.myEntry;
    if (entry && entry.id === queueId) card.merge({ myEntry: { ...entry, position } });
    toast(`You are up soon with ${card.status.name}: number ${position} in line.`);
  });
  onMine('admitted-to-office-hours', (card, { queueId, roomId }) => {
    const entry = card.status.myEntry;
    card.merge({ myEntry: { ...(entry || { id: queueId }), status: 'admitted', roomId } });
    card.refresh();
  });
  // app.js toasts these everywhere; here the card follows.
  onMine('removed-from-queue', (card) => { card.merge({ myEntry: null }); card.refresh(); });
  onMine('office-hours-completed', (card) => { card.merge({ myEntry: null }); card.refresh(); });
  onMine('office-hours-announcement', (card, { message, sentAt }) => {
    card.merge({ announcement: { message, sentAt } });
    toast(`${card.status.name}: ${message}`, { ms: 8000 });
  });
  // Whatever happened while the socket was away.
  cleanup(realtime.on('reconnected', () => { for (const card of cards.values()) card.refresh(); }));
}
