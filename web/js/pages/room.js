// The session room: participants, live chat, Q&A, and the instructor's
// start and end. Re-joins after a reconnect with the last message seen, so
// whatever was missed arrives in order and nothing shows twice.
import { h, mount, pageTitle, formatTime, timeZone } from '../dom.js';
import { api } from '../api.js';
import { store } from '../store.js';
import { realtime } from '../socket.js';
import { chatPanel } from '../components/chat-panel.js';
import { participantList } from '../components/participant-list.js';
import { qaPanel } from '../components/qa-panel.js';
import { rememberPresence } from '../components/presence.js';
import { toast, withBusy } from '../components/toasts.js';

/** An RFC 3339 time inside a server message. */
const RFC3339 = /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})/g;

/**
 * Why joining was refused, in words: a time in the server's message (the
 * `join_window_closed` one says when the room opens) is shown readable, in
 * the viewer's time zone.
 */
function refusal(error) {
  const message = error.message.replace(RFC3339, (iso) => `${formatTime(iso)} (${timeZone()})`);
  if (['join_window_closed', 'session_full', 'session_over'].includes(error.code)) return message;
  return `Could not join: ${message}`;
}

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
  const waiting = h('p', { class: 'card waiting-note', id: 'room-waiting', hidden: true });
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
    me: store.me.id,
    sessionId,
    onAsk: (question, anonymous) => send('ask-question', { question, anonymous }),
    onVote: (questionId) => send('upvote-question', { questionId }),
    onModerate: (action, questionId, pinned) => send(`${action}-question`, { questionId, ...(action === 'pin' ? { pinned } : {}) }),
  });

  const controls = h('div', { class: 'row' });
  /** Why joining was refused, if it was (then chat and Ask are off). */
  let joinRefused = '';
  // Title, time and description follow edits (`session-updated`).
  const heading = h('h1', { id: 'session-title' });
  const details = h('p', { class: 'muted', id: 'session-details' });
  function renderHeading() {
    heading.textContent = session.title;
    pageTitle(session.title);
    mount(details, h('time', { datetime: session.scheduledStartTime }, formatTime(session.scheduledStartTime)), ` (${timeZone()})`,
      session.description ? ` · ${session.description}` : '');
  }
  function renderControls() {
    renderHeading();
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
    const ended = over ? `This session has ${session.status === 'ended' ? 'ended' : 'been cancelled'}.` : '';
    // Controls that cannot work are off, with the reason in words.
    if (over) {
      closeParticipants();
      const when = session.status === 'ended' ? 'the session ended' : 'the session was cancelled';
      chat.setEnabled(false, `The chat closed when ${when}.`);
      qa.setEnabled(false, `Questions closed when ${when}.`);
    } else {
      // The banner says why; the controls say what it means for them.
      chat.setEnabled(!joinRefused, joinRefused && 'You can chat once you are in the session (see above).');
      qa.setEnabled(!joinRefused, joinRefused && 'You can ask once you are in the session (see above).');
    }
    banner.hidden = !over && !joinRefused;
    banner.textContent = over ? ended : joinRefused;
    // Decided (docs/protocol.md): the room is a waiting room from the moment
    // it opens for joining; chat and questions are open before the start.
    waiting.hidden = !(session.status === 'scheduled' && !joinRefused);
    waiting.textContent = isLeader
      ? 'Not started yet. Students in the room can already chat and ask questions; start the session when you are ready.'
      : `Not started yet: ${session.instructorName || 'your instructor'} will start the session. You can chat and ask questions while you wait.`;
  }

  /**
   * Once the session is over the list says who attended, not who is here:
   * its instructor reads the attendance; anyone else keeps whom they saw.
   */
  let participantsClosed = false;
  async function closeParticipants() {
    if (participantsClosed) return;
    participantsClosed = true;
    const endedAt = session.actualEndTime || null;
    if (session.status === 'cancelled') {
      participants.close({ endedAt, cancelled: true });
      return;
    }
    if (isLeader) {
      try {
        const attendees = await api.get(`/api/live-sessions/${sessionId}/attendees`);
        participants.close({
          endedAt,
          attendees: attendees.map((a) => ({ ...a, role: a.userId === session.instructorId ? 'instructor' : 'student' })),
          why: attendees.length ? 'Everyone who came:' : 'Nobody came.',
        });
        return;
      } catch { /* as anyone else: those this page saw */ }
    }
    participants.close({ endedAt, why: 'The full attendance is with your instructor.' });
  }

  mount(main,
    h('div', { class: 'row' }, heading, status),
    details,
    controls, banner, waiting,
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
      participants.expectReset();
      const reply = await send('join-live-session', { sinceMessageId: chat.lastId() || undefined });
      session = reply.session;
      joinRefused = '';
      participants.reset(reply.participants);
      qa.render(reply.questions || []);
      renderControls();
      // Presence of everyone in the room, for their dots.
      for (const p of reply.participants) api.get(`/api/presence/user/${p.userId}`).then(rememberPresence).catch(() => {});
    } catch (error) {
      joinRefused = refusal(error);
      renderControls();
    }
  }

  const on = (event, fn) => cleanup(realtime.on(event, (data) => { if (!data.sessionId || data.sessionId === sessionId) fn(data); }));
  on('new-message', ({ message }) => chat.add(message));
  on('user-joined', ({ user, joinedAt }) => participants.joined({ ...user, joinedAt }));
  on('user-left', ({ userId, leftAt }) => participants.left(userId, leftAt));
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
