// An office-hours private room (or a drop-in room): who is here, the chat
// with the instructor over the room events, the student's question, and
// for the instructor a "Complete" per student. The student sees when the
// help was completed; the room closes after its last student. Re-joins
// after a reconnect with the last message seen.
import { h, mount, pageTitle, keepFocus, formatClock } from '../dom.js';
import { api } from '../api.js';
import { store } from '../store.js';
import { realtime } from '../socket.js';
import { chatPanel } from '../components/chat-panel.js';
import { participantList } from '../components/participant-list.js';
import { rememberPresence } from '../components/presence.js';
import { toast, withBusy } from '../components/toasts.js';
import { friendly } from '../components/office-hours.js';
import { icon } from '../components/icons.js';

export async function officeHoursRoomPage(main, { params, cleanup }) {
  const roomId = params.id;
  const me = store.me.id;
  const isInstructor = store.isInstructor();
  const back = h('a', { href: '#/office-hours', class: 'back-link' }, icon('arrow-left'), isInstructor ? 'Back to my queue' : 'Back to office hours');
  const title = h('h1', {}, 'Office hours');
  const subtitle = h('p', { class: 'muted' });
  const banner = h('div', { role: 'status', 'aria-live': 'polite', class: 'card banner', id: 'oh-room-banner', hidden: true });
  const about = h('div', { class: 'stack', id: 'oh-room-students' }, h('p', { class: 'loading' }, 'Loading'));
  const participants = participantList();
  let joined = false;
  let over = false;
  let mine = [];
  let endedAt = null;
  const layout = h('div', { class: 'room oh-room-page' });

  const inRoom = (event, data) => realtime.send(event, { roomId, ...data });
  const chat = chatPanel({
    me,
    onSend: (message, messageType) => inRoom('room-message', { message, messageType, clientMsgId: crypto.randomUUID() }).then(({ message: m }) => chat.add(m)),
    onTyping: () => inRoom('typing-in-room', {}).catch(() => {}),
    onEdit: (messageId, message) => inRoom('edit-message', { messageId, message }).then(({ message: m }) => m),
    onDelete: (messageId) => inRoom('delete-message', { messageId }).then(({ message: m }) => m),
  });
  chat.setEnabled(false);

  mount(main,
    h('div', { class: 'row' }, title),
    subtitle, banner,
    mount(layout,
      h('div', { class: 'stack' }, participants.element,
        h('section', { class: 'card stack', 'aria-labelledby': 'oh-about-title' },
          h('h2', { id: 'oh-about-title' }, isInstructor ? 'Students' : 'Your question'), about)),
      chat.element),
    h('p', {}, back));

  /** The help is over for me: say so, close the chat, keep what was said. */
  function finished(text) {
    if (over) return;
    over = true;
    joined = false;
    endedAt = new Date().toISOString();
    chat.setEnabled(false);
    layout.classList.add('oh-over');
    banner.hidden = false;
    mount(banner, h('strong', {}, text), ' ', back.cloneNode(true));
  }

  // --- who is helped here (the instructor's queue, the student's entry) ----
  function renderAbout() {
    if (isInstructor) {
      keepFocus(about, () => mount(about, mine.length ? mine.map((entry) => h('div', { class: 'oh-room-student', dataset: { queueId: entry.id } },
        h('div', { class: 'row' }, h('strong', {}, entry.studentName),
          h('button', { class: 'primary small', 'aria-label': `Complete ${entry.studentName}`, onclick: (e) => withBusy(e.currentTarget, () => complete(entry)) }, 'Complete')),
        entry.topic ? h('span', { class: 'badge' }, entry.topic) : null,
        h('div', { class: 'text' }, entry.question || h('em', { class: 'muted' }, 'No question given'))))
        : h('p', { class: 'empty' }, over ? 'Everyone here was helped.' : 'No student is waiting for you in this room.')));
      return;
    }
    const entry = mine[0];
    mount(about, entry ? [
      h('div', { class: 'muted' }, `With ${entry.instructorName}`),
      entry.topic ? h('span', { class: 'badge' }, entry.topic) : null,
      h('div', { class: 'text' }, entry.question || h('em', { class: 'muted' }, 'No question given')),
      endedAt ? h('p', { class: 'oh-done' }, `Completed at ${formatClock(endedAt)}`) : null]
      : h('p', { class: 'empty' }, over ? 'This room is closed.' : 'A drop-in room: ask your question in the chat.'));
  }

  async function complete(entry) {
    try {
      await api.post(`/api/office-hours/queue/${entry.id}/complete`);
    } catch (error) { throw new Error(friendly(error)); }
    toast(`Help for ${entry.studentName} completed.`);
    mine = mine.filter((e) => e.id !== entry.id);
    renderAbout();
    if (!mine.length) finished('Session completed: this room is closed.');
  }

  async function loadEntries() {
    try {
      if (isInstructor) {
        const queue = await api.get('/api/office-hours/queue');
        mine = queue.entries.filter((e) => e.roomId === roomId && e.status === 'admitted');
      } else {
        mine = (await api.get('/api/office-hours/my-queue')).filter((e) => e.roomId === roomId);
      }
      renderAbout();
    } catch (error) {
      mount(about, h('p', { class: 'error-text' }, `Could not load who is helped here: ${error.message}`));
    }
  }

  // --- the room -----------------------------------------------------------------
  async function join() {
    if (over) return;
    try {
      const reply = await inRoom('join-room', { sinceMessageId: chat.lastId() || undefined });
      joined = true;
      if (reply.room && reply.room.name) { title.textContent = reply.room.name; pageTitle(reply.room.name); }
      subtitle.textContent = reply.mode === 'drop-in' ? 'Drop-in room: any of the instructor\'s students may come in.' : 'A private room: only you and the people admitted with you see this chat.';
      (reply.missedMessages || []).forEach((m) => chat.add(m));
      participants.reset(reply.participants || []);
      for (const p of reply.participants || []) api.get(`/api/presence/user/${p.userId}`).then(rememberPresence).catch(() => {});
      chat.setEnabled(true);
      banner.hidden = true;
    } catch (error) {
      joined = false;
      chat.setEnabled(false);
      if (error.code === 'forbidden' || error.code === 'not_found') {
        finished(isInstructor ? 'This room is closed.' : 'This room is closed, or you were not admitted into it.');
        return;
      }
      banner.hidden = false;
      mount(banner, `Could not enter the room: ${error.message}`);
    }
  }

  const on = (event, fn) => cleanup(realtime.on(event, (data) => { if (data && data.roomId === roomId) fn(data); }));
  on('new-message', ({ message }) => chat.add(message));
  on('message-edited', ({ message }) => chat.update(message));
  on('message-deleted', ({ messageId }) => chat.deleted(messageId));
  on('user-typing', ({ name }) => chat.typing(name));
  on('user-joined', ({ user, joinedAt }) => {
    participants.joined({ ...user, joinedAt });
    api.get(`/api/presence/user/${user.userId}`).then(rememberPresence).catch(() => {});
  });
  on('user-left', ({ userId }) => participants.left(userId));
  on('office-hours-completed', ({ reason }) => {
    // Sent to the student whose help ended.
    const words = { completed: 'Your instructor completed this session.', skipped: 'Your instructor ended this session.', inactive: 'This session ended after a while without messages.' };
    finished(words[reason] || 'This session is over.');
    renderAbout();
  });
  cleanup(realtime.on('queue-updated', (data) => {
    if (!isInstructor || !data || data.instructorId !== me || over) return;
    mine = data.entries.filter((e) => e.roomId === roomId && e.status === 'admitted');
    renderAbout();
    if (!mine.length && joined && subtitle.textContent.startsWith('A private')) finished('Session completed: this room is closed.');
  }));
  cleanup(realtime.on('reconnected', join));
  cleanup(realtime.on('ready', join));
  cleanup(() => { over = true; if (joined) inRoom('leave-room', {}).catch(() => {}); });

  /** What was said before this page opened (a reload, or a finished session's transcript). */
  async function loadHistory() {
    try {
      (await api.get(`/api/office-hours/rooms/${roomId}/messages?limit=100`)).forEach((m) => chat.add(m));
    } catch (error) {
      if (error.code !== 'forbidden' && error.code !== 'not_found') {
        mount(banner, `Could not load the earlier messages: ${error.message}`);
        banner.hidden = false;
      }
    }
  }

  await Promise.all([loadEntries(), loadHistory()]);
  if (realtime.state === 'open') await join();
}
