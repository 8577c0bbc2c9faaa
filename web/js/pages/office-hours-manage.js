// Office hours for an instructor: open or close the queue, the live queue
// (from `queue-updated` pushes) with admit, admit the next few together and
// skip, the private rooms open now with complete, an announcement to
// everyone waiting, the weekly schedule, and the figures of past help.
import { h, mount, debounce, formatClock, keepFocus } from '../dom.js';
import { api } from '../api.js';
import { store } from '../store.js';
import { realtime } from '../socket.js';
import { toast, withBusy } from '../components/toasts.js';
import { emptyState } from '../components/empty-state.js';
import {
  DAYS, formatWait, formatSpan, slotLabel, waitingFor, friendly, openBadge, nextOpenText, announcementBox, watchStatuses,
} from '../components/office-hours.js';

const MAX_ADMIT = 20;

/** A date input's value for a Date (local day). */
function dateInput(date) {
  const d = new Date(date.getTime() - date.getTimezoneOffset() * 60000);
  return d.toISOString().slice(0, 10);
}

export async function officeHoursManagePage(main, { cleanup }) {
  if (!store.isInstructor()) { location.hash = '#/office-hours'; return; }
  const me = store.me.id;
  mount(main, h('h1', {}, 'My office hours'), h('p', { class: 'loading' }, 'Loading your queue'));
  let status;
  let queue;
  try {
    [[status], queue] = await Promise.all([api.get('/api/office-hours/instructors'), api.get('/api/office-hours/queue')]);
  } catch (error) {
    mount(main, h('h1', {}, 'My office hours'),
      h('p', { class: 'error-text', role: 'alert' }, `Could not load your office hours: ${error.message}`),
      h('button', { onclick: () => window.dispatchEvent(new HashChangeEvent('hashchange')) }, 'Try again'));
    return;
  }

  // --- header: open or closed, the slot now, the next one -------------------
  const badge = h('span', { id: 'oh-open-state' });
  const toggle = h('div', {});
  const when = h('p', { class: 'muted', id: 'oh-when' });

  function renderHeader() {
    mount(badge, openBadge({ isOpen: queue.isOpen }));
    const parts = [];
    if (status.currentSlot) parts.push(`Now: ${slotLabel(status.currentSlot)}`);
    else if (queue.isOpen) parts.push('Opened by hand: it stays open until you close it or a slot starts or ends.');
    if (!queue.isOpen || status.currentSlot) parts.push(nextOpenText(status));
    when.textContent = parts.join(' · ');
    keepFocus(toggle, () => mount(toggle, queue.isOpen
      ? h('button', { class: 'danger', onclick: (e) => withBusy(e.currentTarget, () => setOpen(false)) }, 'Close the queue')
      : h('button', { class: 'primary', onclick: (e) => withBusy(e.currentTarget, () => setOpen(true)) }, 'Open the queue')));
  }

  async function setOpen(open) {
    const answer = await api.post(`/api/office-hours/${open ? 'open' : 'close'}`);
    queue = { ...queue, isOpen: answer.isOpen };
    toast(answer.isOpen ? 'The queue is open: your students can join.' : 'The queue is closed; those still waiting were told.');
    renderHeader();
    refreshStatus();
  }

  // --- the live queue ---------------------------------------------------------
  const waitingList = h('ol', { class: 'plain oh-queue', 'aria-label': 'Students waiting', id: 'oh-queue' });
  const waitingCount = h('span', { class: 'muted' });
  const admitCount = h('input', { id: 'oh-admit-count', type: 'number', min: 1, max: MAX_ADMIT, value: 2, inputmode: 'numeric' });
  const admitMany = h('button', { type: 'submit' }, 'Admit together');
  const admitForm = h('form', {
    class: 'row oh-admit-many',
    onsubmit: (event) => {
      event.preventDefault();
      const n = Math.max(1, Math.min(MAX_ADMIT, Number(admitCount.value) || 1));
      const ids = waiting().slice(0, n).map((e) => e.id);
      if (!ids.length) return;
      withBusy(admitMany, async () => {
        try {
          const { entries } = await api.post('/api/office-hours/admit', { queueIds: ids });
          toast(`${entries.map((e) => e.studentName).join(', ')} admitted into one room.`);
        } catch (error) { throw new Error(friendly(error)); }
      });
    },
  }, h('label', { for: 'oh-admit-count' }, 'Admit the next'), admitCount, h('span', { class: 'muted' }, 'into one room'), admitMany);

  const waiting = () => queue.entries.filter((e) => e.status === 'waiting');
  const admitted = () => queue.entries.filter((e) => e.status === 'admitted');

  function renderQueue() {
    const list = waiting();
    waitingCount.textContent = `(${list.length})`;
    admitForm.hidden = list.length < 2;
    keepFocus(waitingList, () => mount(waitingList, list.length ? list.map((entry) => h('li', { class: 'oh-entry', dataset: { queueId: entry.id } },
      h('span', { class: 'oh-pos', 'aria-label': `Position ${entry.position}` }, String(entry.position)),
      h('div', { class: 'oh-entry-main' },
        h('div', {}, h('strong', {}, entry.studentName),
          entry.deferred ? h('span', { class: 'badge deferred', title: 'Let others go first once' }, 'deferred') : null,
          ' ', h('span', { class: 'muted oh-since', dataset: { since: entry.joinedQueueAt } }, waitingFor(entry.joinedQueueAt))),
        entry.topic ? h('span', { class: 'badge' }, entry.topic) : null,
        h('div', { class: 'text' }, entry.question || h('em', { class: 'muted' }, 'No question given'))),
      h('div', { class: 'row oh-entry-actions' },
        h('button', { class: 'primary', 'aria-label': `Admit ${entry.studentName}`, onclick: (e) => withBusy(e.currentTarget, () => admitOne(entry)) }, 'Admit'),
        h('button', { 'aria-label': `Skip ${entry.studentName}`, onclick: (e) => withBusy(e.currentTarget, () => skip(entry)) }, 'Skip'))))
      : emptyState(queue.isOpen
        ? { tag: 'li', icon: 'queue', title: 'Nobody is waiting.', hint: 'Students of your courses join from their Office hours page; they show here as they do.' }
        : { tag: 'li', icon: 'queue', title: 'The queue is closed.', hint: 'Open it above, or let your weekly slots open it.' })));
    renderRooms();
  }

  async function admitOne(entry) {
    try {
      await api.post(`/api/office-hours/admit/${entry.id}`);
      toast(`${entry.studentName} admitted: open the room to talk.`);
    } catch (error) { throw new Error(friendly(error)); }
  }

  async function skip(entry) {
    try {
      await api.post(`/api/office-hours/queue/${entry.id}/skip`);
      toast(`${entry.studentName} was skipped.`);
    } catch (error) { throw new Error(friendly(error)); }
  }

  async function complete(entry) {
    try {
      await api.post(`/api/office-hours/queue/${entry.id}/complete`);
      toast(`Help for ${entry.studentName} completed.`);
    } catch (error) { throw new Error(friendly(error)); }
  }

  // --- the rooms open now ---------------------------------------------------------
  const rooms = h('div', { class: 'stack', id: 'oh-rooms' });
  function renderRooms() {
    const byRoom = new Map();
    for (const entry of admitted()) {
      if (!byRoom.has(entry.roomId)) byRoom.set(entry.roomId, []);
      byRoom.get(entry.roomId).push(entry);
    }
    keepFocus(rooms, () => mount(rooms, byRoom.size ? [...byRoom].map(([roomId, entries]) => {
      const names = entries.map((e) => e.studentName).join(', ');
      return h('article', { class: 'oh-room', 'aria-label': `Room with ${names}`, dataset: { roomId } },
        h('div', { class: 'row' }, h('strong', {}, `With ${names}`),
          h('span', { class: 'muted' }, `since ${formatClock(entries[0].admittedAt)}`),
          h('a', { class: 'button primary', href: `#/office-hours/room/${roomId}`, 'aria-label': `Open the room with ${names}` }, 'Open the room')),
        h('ul', { class: 'plain' }, entries.map((entry) => h('li', { class: 'row' },
          h('span', { class: 'oh-student' }, entry.studentName),
          h('button', { class: 'small', 'aria-label': `Complete ${entry.studentName}`, onclick: (e) => withBusy(e.currentTarget, () => complete(entry)) }, 'Complete'),
          h('button', { class: 'small', 'aria-label': `No-show: ${entry.studentName} did not come`, title: 'Did not show up', onclick: (e) => withBusy(e.currentTarget, () => skip(entry)) }, 'No-show')))));
    }) : emptyState({ icon: 'chat', title: 'No private room is open.', hint: 'Admit a student from the queue to talk in private.' })));
  }

  // Waiting times keep telling the truth without redrawing the buttons.
  const clock = setInterval(() => {
    for (const el of waitingList.querySelectorAll('.oh-since')) el.textContent = waitingFor(el.dataset.since);
  }, 30000);
  cleanup(() => clearInterval(clock));

  // --- announcement ------------------------------------------------------------------
  const lastAnnouncement = h('div', {});
  const announceText = h('textarea', { id: 'oh-announcement', rows: 2, placeholder: 'e.g. Running 10 minutes late' });
  const announceError = h('p', { class: 'error-text', role: 'alert' });
  const announceButton = h('button', { type: 'submit' }, 'Send to everyone waiting');
  const announceForm = h('form', {
    class: 'stack',
    onsubmit: (event) => {
      event.preventDefault();
      announceError.textContent = '';
      withBusy(announceButton, async () => {
        try {
          status = { ...status, announcement: await api.post('/api/office-hours/announce', { message: announceText.value }) };
          announceText.value = '';
          renderAnnouncement();
          toast('Announcement sent.');
        } catch (error) {
          announceError.textContent = friendly(error);
        }
      });
    },
  }, h('label', { for: 'oh-announcement' }, 'Message to the students waiting and in rooms'), announceText, announceError, h('div', {}, announceButton));
  function renderAnnouncement() {
    mount(lastAnnouncement, announcementBox(status.announcement, 'Last sent'));
  }

  // --- the weekly schedule --------------------------------------------------------------
  const slotList = h('ul', { class: 'plain oh-slots-list', 'aria-label': 'Weekly slots' });
  function renderSlots() {
    const slots = [...(status.slots || [])].sort((a, b) => a.dayOfWeek - b.dayOfWeek || a.startTime.localeCompare(b.startTime));
    keepFocus(slotList, () => mount(slotList, slots.length ? slots.map((slot) => h('li', { class: `row oh-slot${slot.isActive ? '' : ' paused'}`, dataset: { slotId: slot.id } },
      h('span', { class: 'oh-slot-label' }, slotLabel(slot)),
      slot.isActive ? null : h('span', { class: 'badge' }, 'paused'),
      h('button', {
        class: 'small', 'aria-label': `${slot.isActive ? 'Pause' : 'Resume'} ${slotLabel(slot)}`,
        onclick: (e) => withBusy(e.currentTarget, async () => {
          try {
            await api.put(`/api/office-hours/schedule/${slot.id}`, { isActive: !slot.isActive });
          } catch (error) { throw new Error(friendly(error)); }
          await refreshStatus.now();
        }),
      }, slot.isActive ? 'Pause' : 'Resume'),
      h('button', {
        class: 'small', 'aria-label': `Delete ${slotLabel(slot)}`,
        onclick: (e) => withBusy(e.currentTarget, async () => {
          await api.del(`/api/office-hours/schedule/${slot.id}`);
          toast('Slot deleted.');
          await refreshStatus.now();
        }),
      }, 'Delete')))
      : emptyState({ tag: 'li', icon: 'calendar', title: 'No weekly slot yet.', hint: 'Add a slot below, or open the queue by hand.' })));
  }

  function slotForm() {
    const zones = typeof Intl.supportedValuesOf === 'function' ? Intl.supportedValuesOf('timeZone') : [];
    const myZone = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
    const day = h('select', { id: 'oh-slot-day' }, DAYS.map((name, i) => h('option', { value: i }, name)));
    day.value = String(new Date().getDay());
    const start = h('input', { id: 'oh-slot-start', type: 'time', required: true, value: '14:00' });
    const end = h('input', { id: 'oh-slot-end', type: 'time', required: true, value: '16:00' });
    const zone = h('input', { id: 'oh-slot-zone', list: 'oh-zones', value: myZone, autocomplete: 'off', spellcheck: 'false' });
    const mode = h('select', { id: 'oh-slot-mode' },
      h('option', { value: 'queue' }, 'Queue: students wait and are admitted'),
      h('option', { value: 'drop-in' }, 'Drop-in: one room anyone may enter'));
    const error = h('p', { class: 'error-text', role: 'alert' });
    const button = h('button', { class: 'primary', type: 'submit' }, 'Add slot');
    return h('form', {
      class: 'stack oh-slot-form', 'aria-label': 'Add a weekly slot',
      onsubmit: (event) => {
        event.preventDefault();
        error.textContent = '';
        withBusy(button, async () => {
          try {
            await api.post('/api/office-hours/schedule', {
              dayOfWeek: Number(day.value), startTime: start.value, endTime: end.value,
              timeZone: zone.value.trim() || undefined, mode: mode.value,
            });
            toast(`Slot added: ${DAYS[Number(day.value)]} ${start.value}–${end.value}.`);
            await refreshStatus.now();
          } catch (err) {
            error.textContent = friendly(err);
          }
        });
      },
    },
    h('div', { class: 'oh-slot-fields' },
      h('div', {}, h('label', { for: 'oh-slot-day' }, 'Day'), day),
      h('div', {}, h('label', { for: 'oh-slot-start' }, 'Starts'), start),
      h('div', {}, h('label', { for: 'oh-slot-end' }, 'Ends'), end)),
    h('label', { for: 'oh-slot-zone' }, 'Time zone'), zone,
    h('datalist', { id: 'oh-zones' }, zones.map((z) => h('option', { value: z }))),
    h('label', { for: 'oh-slot-mode' }, 'Mode'), mode,
    error, h('div', {}, button));
  }

  // --- analytics ----------------------------------------------------------------------
  const figures = h('div', { id: 'oh-analytics', 'aria-live': 'polite' });
  function analyticsForm() {
    const from = h('input', { id: 'oh-from', type: 'date', value: dateInput(new Date(Date.now() - 29 * 86400000)) });
    const to = h('input', { id: 'oh-to', type: 'date', value: dateInput(new Date()) });
    const button = h('button', { type: 'submit' }, 'Show');
    const load = async () => {
      mount(figures, h('p', { class: 'loading' }, 'Loading'));
      try {
        if (!from.value || !to.value) throw new Error('Choose both days.');
        const start = new Date(`${from.value}T00:00`);
        const endDay = new Date(`${to.value}T00:00`);
        const end = new Date(endDay.getTime() + 86400000);
        const days = await api.get(`/api/office-hours/analytics?from=${encodeURIComponent(start.toISOString())}&to=${encodeURIComponent(end.toISOString())}`);
        const helped = days.reduce((n, d) => n + d.helped, 0);
        mount(figures, days.length ? [
          h('p', {}, `${helped} student${helped === 1 ? '' : 's'} helped.`),
          h('table', { class: 'oh-table' },
            h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Day (UTC)'), h('th', { scope: 'col' }, 'Helped'),
              h('th', { scope: 'col' }, 'Median wait'), h('th', { scope: 'col' }, '90% waited under'), h('th', { scope: 'col' }, 'Median help'))),
            h('tbody', {}, days.map((d) => h('tr', {},
              h('td', {}, new Date(`${d.date}T12:00:00Z`).toLocaleDateString(undefined, { weekday: 'short', month: 'short', day: 'numeric', timeZone: 'UTC' })),
              h('td', {}, String(d.helped)), h('td', {}, formatSpan(d.medianWaitSec)),
              h('td', {}, formatSpan(d.p90WaitSec)), h('td', {}, formatSpan(d.medianHelpSec))))))]
          : h('p', { class: 'empty' }, 'Nobody was helped in this period.'));
      } catch (error) {
        mount(figures, h('p', { class: 'error-text', role: 'alert' }, friendly(error)));
      }
    };
    load();
    return h('form', { class: 'row oh-range', onsubmit: (event) => { event.preventDefault(); withBusy(button, load); } },
      h('div', {}, h('label', { for: 'oh-from' }, 'From'), from),
      h('div', {}, h('label', { for: 'oh-to' }, 'To'), to),
      button);
  }

  // --- the page ---------------------------------------------------------------------------
  const estimate = h('p', { class: 'muted', id: 'oh-estimate' });
  function renderEstimate() {
    estimate.textContent = waiting().length || queue.isOpen
      ? `A student joining now would wait ${formatWait(status.estimatedWaitSec)}.` : '';
  }

  mount(main,
    h('div', { class: 'row' }, h('h1', {}, 'My office hours'), badge, toggle),
    when,
    h('div', { class: 'oh-manage' },
      h('div', { class: 'stack' },
        h('section', { class: 'card stack', 'aria-labelledby': 'oh-queue-title' },
          h('h2', { id: 'oh-queue-title' }, 'Queue ', waitingCount), estimate, admitForm, waitingList),
        h('section', { class: 'card stack', 'aria-labelledby': 'oh-rooms-title' },
          h('h2', { id: 'oh-rooms-title' }, 'Private rooms'), rooms),
        h('section', { class: 'card stack', 'aria-labelledby': 'oh-analytics-title' },
          h('h2', { id: 'oh-analytics-title' }, 'Analytics'), analyticsForm(), figures)),
      h('div', { class: 'stack' },
        h('section', { class: 'card stack', 'aria-labelledby': 'oh-announce-title' },
          h('h2', { id: 'oh-announce-title' }, 'Announcement'), lastAnnouncement, announceForm),
        h('section', { class: 'card stack', 'aria-labelledby': 'oh-schedule-title' },
          h('h2', { id: 'oh-schedule-title' }, 'Weekly schedule'), slotList, slotForm()))));

  function renderAll() {
    renderHeader();
    renderQueue();
    renderEstimate();
    renderAnnouncement();
    renderSlots();
  }
  renderAll();

  async function loadStatus() {
    try {
      [status] = await api.get('/api/office-hours/instructors');
      renderAll();
    } catch (error) {
      toast(`Could not refresh your office hours: ${error.message}`, { kind: 'error' });
    }
  }
  const refreshStatus = debounce(loadStatus, 200);
  refreshStatus.now = loadStatus;
  cleanup(() => refreshStatus.cancel());

  async function loadQueue() {
    try {
      queue = await api.get('/api/office-hours/queue');
      renderAll();
    } catch (error) {
      toast(`Could not refresh the queue: ${error.message}`, { kind: 'error' });
    }
  }

  cleanup(realtime.on('queue-updated', (data) => {
    if (!data || data.instructorId !== me) return;
    queue = { isOpen: data.isOpen, entries: data.entries };
    renderAll();
  }));
  cleanup(realtime.on('office-hours-announcement', (data) => {
    if (!data || data.instructorId !== me) return;
    status = { ...status, announcement: { message: data.message, sentAt: data.sentAt } };
    renderAnnouncement();
  }));
  // The status follows the schedule (a slot starting or ending); its
  // current slot comes with the full status.
  watchStatuses([me], {
    cleanup,
    onStatus: (full) => { status = full; renderAll(); },
    onPush: (push) => {
      const changed = push.isOpen !== queue.isOpen;
      status = { ...status, ...push };
      queue = { ...queue, isOpen: push.isOpen };
      renderAll();
      if (changed) refreshStatus();
    },
  });
  cleanup(realtime.on('reconnected', loadQueue));
}
