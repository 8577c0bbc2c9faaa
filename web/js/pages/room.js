// The session room: participants, live chat, Q&A, and the instructor's
// start and end. Re-joins after a reconnect with the last message seen, so
// whatever was missed arrives in order and nothing shows twice.
import { h, mount, formatTime } from '../dom.js';
import { api } from '../api.js';
import { store } from '../store.js';
import { realtime } from '../socket.js';
import { chatPanel } from '../components/chat-panel.js';
import { participantList } from '../components/participant-list.js';
import { qaPanel } from '../components/qa-panel.js';
import { rememberPresence } from '../components/presence.js';
import { toast, withBusy } from '../components/toasts.js';

export async function roomPage(main, { params, cleanup }) {
  const sessionId = params.id;
  mount(main, h('p', { class: 'loading' }, 'Opening the session'));
  let session;
  try {
    session = await api.get(`/api/live-sessions/${sessionId}`);
  } catch (error) {
    mount(main, h('p', { class: 'error-text' }, `This session cannot be opened: ${error.message}`), h('a', { href: '#/sessions' }, 'Back to sessions'));
    return;
  }
  const isLeader = session.instructorId === store.me.id || store.me.role === 'admin';
  const banner = h('div', { role: 'status', 'aria-live': 'polite', class: 'card', hidden: true });
  const status = h('span', { class: `status ${session.status}` }, session.status);
  const participants = participantList();
  const send = (event, data) => realtime.send(event, { sessionId, ...data });
  // The session's chat is a room: its own events post, edit and delete.
  const roomId = session.chatRoomId;
  const inRoom = (event, data) => realtime.send(event, { roomId, ...data });
  const chat = chatPanel({
    me: store.me.id,
    onSend: (message, messageType) => inRoom('room-message', { message, messageType, clientMsgId: crypto.randomUUID() }).then(({ message: m }) => chat.add(m)),
    onTyping: () => send('typing-in-session', {}).catch(() => {}),
    onEdit: (messageId, message) => inRoom('edit-message', { messageId, message }).then(({ message: m }) => m),
    onDelete: (messageId) => inRoom('delete-message', { messageId }).then(({ message: m }) => m),
  });
  const qa = qaPanel({
    isLeader,
    onAsk: (question, anonymous) => send('ask-question', { question, anonymous }),
    onVote: (questionId) => send('upvote-question', { questionId }),
    onModerate: (action, questionId, pinned) => send(`${action}-question`, { questionId, ...(action === 'pin' ? { pinned } : {}) }),
  });

  const controls = h('div', { class: 'row' });
  function renderControls() {
    status.className = `status ${session.status}`;
    status.textContent = session.status;
    const buttons = [];
    if (isLeader && session.status === 'scheduled') {
      buttons.push(h('button', { class: 'primary', onclick: (e) => withBusy(e.currentTarget, async () => { session = await api.post(`/api/live-sessions/${sessionId}/start`); renderControls(); }) }, 'Start session'));
    }
    if (isLeader && session.status === 'active') {
      buttons.push(h('button', { class: 'danger', id: 'end-session', onclick: (e) => withBusy(e.currentTarget, async () => { session = await api.post(`/api/live-sessions/${sessionId}/end`); renderControls(); }) }, 'End session'));
    }
    if (session.status !== 'ended' && session.status !== 'cancelled') {
      buttons.push(h('button', { id: 'leave-session', onclick: (e) => withBusy(e.currentTarget, async () => { await send('leave-live-session', {}).catch(() => {}); location.hash = '#/sessions'; }) }, 'Leave'));
    }
    if (isLeader && session.status === 'ended') buttons.push(h('a', { href: `#/sessions/${sessionId}/attendance`, id: 'attendance-link' }, 'See attendance'));
    mount(controls, buttons);
    const over = session.status === 'ended' || session.status === 'cancelled';
    chat.setEnabled(!over);
    banner.hidden = !over;
    banner.textContent = over ? `This session has ${session.status === 'ended' ? 'ended' : 'been cancelled'}.` : '';
  }

  mount(main,
    h('div', { class: 'row' }, h('h1', {}, session.title), status),
    h('p', { class: 'muted' }, formatTime(session.scheduledStartTime), session.description ? ` · ${session.description}` : ''),
    controls, banner,
    h('div', { class: 'room' }, participants.element, chat.element, qa.element));
  renderControls();

  // History first, then join from the last message we have.
  try {
    (await api.get(`/api/live-sessions/${sessionId}/messages?limit=50`)).forEach((m) => chat.add(m));
  } catch (error) {
    toast(`Chat history unavailable: ${error.message}`, { kind: 'error' });
  }

  async function join() {
    if (session.status === 'ended' || session.status === 'cancelled') return;
    try {
      const reply = await send('join-live-session', { sinceMessageId: chat.lastId() || undefined });
      session = reply.session;
      participants.reset(reply.participants);
      qa.render(reply.questions || []);
      renderControls();
      // Presence of everyone in the room, for their dots.
      for (const p of reply.participants) api.get(`/api/presence/user/${p.userId}`).then(rememberPresence).catch(() => {});
    } catch (error) {
      banner.hidden = false;
      banner.textContent = error.code === 'join_window_closed' || error.code === 'session_full' || error.code === 'session_over'
        ? error.message : `Could not join: ${error.message}`;
      chat.setEnabled(false);
    }
  }

  const on = (event, fn) => cleanup(realtime.on(event, (data) => { if (!data.sessionId || data.sessionId === sessionId) fn(data); }));
  on('new-message', ({ message }) => chat.add(message));
  on('user-joined', ({ user, joinedAt }) => participants.joined({ ...user, joinedAt }));
  on('user-left', ({ userId }) => participants.left(userId));
  on('user-typing', ({ name }) => chat.typing(name));
  on('message-edited', ({ message }) => chat.update(message));
  on('message-deleted', ({ messageId }) => chat.deleted(messageId));
  on('questions-updated', ({ questions }) => qa.render(questions));
  on('session-status-changed', (data) => { session = data.session; renderControls(); });
  on('session-updated', (data) => { session = data.session; renderControls(); });
  cleanup(realtime.on('reconnected', join));
  cleanup(realtime.on('ready', join));
  cleanup(() => send('leave-live-session', {}).catch(() => {}));
  if (realtime.state === 'open') await join();
}
