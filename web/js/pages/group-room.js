// A study group's room: the group's header, its members with presence dots
// (and for admins the member management), the persistent chat with a "New
// messages" line where I stopped reading, the group's upcoming study
// sessions, and a box to invite classmates. Re-joins after a reconnect with
// the last message seen, as the session room does.
import { h, mount, pageTitle, formatTime, formatClock, debounce, throttle, keepFocus } from '../dom.js';
import { api } from '../api.js';
import { store } from '../store.js';
import { realtime } from '../socket.js';
import { chatPanel } from '../components/chat-panel.js';
import { person, rememberPresence, isOnline } from '../components/presence.js';
import { toast, withBusy } from '../components/toasts.js';
import { icon } from '../components/icons.js';
import { emptyState } from '../components/empty-state.js';

const MARK_READ_DELAY_MS = 600;

/** A datetime-local value for a Date, in the browser's time zone. */
function localInput(date) {
  const d = new Date(date.getTime() - date.getTimezoneOffset() * 60000);
  return d.toISOString().slice(0, 16);
}

export async function groupRoomPage(main, { params, cleanup }) {
  const groupId = params.id;
  const base = `/api/study-groups/${groupId}`;
  mount(main, h('p', { class: 'loading' }, 'Opening the group'));
  let group;
  let courses = [];
  try {
    [group, courses] = await Promise.all([api.get(base), api.get('/api/courses').catch(() => [])]);
  } catch (error) {
    mount(main, h('p', { class: 'error-text', role: 'alert' }, `This group cannot be opened: ${error.message}`),
      h('a', { href: '#/groups' }, 'Back to study groups'));
    return;
  }
  if (!group.myRole) return notMemberYet(main, group);

  const me = store.me.id;
  const roomId = group.chatRoomId;
  const courseTitle = (id) => (courses.find((c) => c.id === id) || {}).title;
  let members = [];
  let present = new Set();
  let leaving = false;
  let closed = false;
  let joined = false;
  let markerPlaced = false;
  const isAdmin = () => group.myRole === 'admin';

  // --- header -------------------------------------------------------------
  const title = h('h1', {});
  const badges = h('span', { class: 'row' });
  const description = h('p', { class: 'group-description' });
  const stats = h('p', { class: 'muted', id: 'group-stats' });
  const actions = h('div', { class: 'row' });
  const editor = h('div', { hidden: true });
  const banner = h('div', { role: 'status', 'aria-live': 'polite', class: 'card banner', hidden: true });

  function renderHeader() {
    title.textContent = group.name;
    pageTitle(group.name);
    const course = courseTitle(group.courseId);
    mount(badges,
      h('span', { class: `badge ${group.visibility}` }, group.visibility === 'private' ? 'Private' : 'Public'),
      course ? h('span', { class: 'badge course' }, course) : null,
      group.myRole === 'admin' ? h('span', { class: 'badge admin' }, 'You are admin') : null);
    description.textContent = group.description || '';
    description.hidden = !group.description;
    const activity = group.activity;
    const week = activity && activity.messagesPerDay ? activity.messagesPerDay.reduce((n, d) => n + d.count, 0) : null;
    mount(stats,
      `${group.memberCount} member${group.memberCount === 1 ? '' : 's'}`,
      group.maxMembers ? ` of ${group.maxMembers}` : '',
      ` · ${onlineMembers()} online now`,
      week !== null ? ` · ${week} message${week === 1 ? '' : 's'} this week` : '',
      activity ? ` · ${activity.activeMembersThisWeek} active this week` : '');
    // The buttons are drawn again only when they change, so a keyboard
    // user's focus stays where it was while presence comes and goes.
    const shape = `${isAdmin()}:${editor.hidden}`;
    if (actions.dataset.shape === shape) return;
    actions.dataset.shape = shape;
    const buttons = [];
    if (isAdmin()) {
      buttons.push(h('button', { 'aria-expanded': String(!editor.hidden), 'aria-controls': 'group-editor', onclick: toggleEditor }, 'Edit group'));
    }
    buttons.push(h('button', { id: 'leave-group', onclick: (e) => withBusy(e.currentTarget, leaveGroup) }, 'Leave group'));
    keepFocus(actions, () => mount(actions, buttons));
  }

  function onlineMembers() {
    if (!members.length) return group.onlineCount || 0;
    // I am here; the others as their presence says.
    return members.filter((m) => m.userId === me || isOnline(m.userId)).length;
  }

  async function leaveGroup() {
    leaving = true;
    try {
      await api.post(`${base}/leave`);
    } catch (error) {
      leaving = false;
      if (error.code === 'last_admin') throw new Error('You are the only admin: make someone else admin before you leave.');
      throw error;
    }
    toast(`You left ${group.name}.`);
    location.hash = '#/groups';
  }

  // --- the admin's edit form and archive ------------------------------------
  function toggleEditor() {
    editor.hidden = !editor.hidden;
    if (!editor.hidden) fillEditor();
    renderHeader();
  }

  function fillEditor() {
    const name = h('input', { id: 'edit-group-name', maxlength: 100, required: true, value: group.name });
    const desc = h('textarea', { id: 'edit-group-description', rows: 2, maxlength: 2000 });
    desc.value = group.description || '';
    const visibility = h('select', { id: 'edit-group-visibility' },
      h('option', { value: 'private' }, 'Private: by invitation only'),
      h('option', { value: 'public' }, 'Public: anyone allowed may join'));
    visibility.value = group.visibility;
    const max = h('input', { id: 'edit-group-max', type: 'number', min: 2, max: 10000, placeholder: 'No limit', value: group.maxMembers || '' });
    const error = h('p', { class: 'error-text', role: 'alert' });
    const save = h('button', { class: 'primary', type: 'submit' }, 'Save changes');
    const confirmArchive = h('div', { class: 'row', hidden: true },
      h('span', {}, 'Archive the group for everyone? The chat closes.'),
      h('button', { type: 'button', class: 'danger', onclick: (e) => withBusy(e.currentTarget, archive) }, 'Yes, archive'),
      h('button', { type: 'button', onclick: () => { confirmArchive.hidden = true; } }, 'Keep it'));
    const form = h('form', {
      class: 'card stack', id: 'group-editor', 'aria-label': 'Edit group',
      onsubmit: (event) => {
        event.preventDefault();
        error.textContent = '';
        withBusy(save, async () => {
          try {
            group = { ...group, ...(await api.put(base, {
              name: name.value.trim(),
              description: desc.value.trim() || null,
              visibility: visibility.value,
              maxMembers: max.value ? Number(max.value) : null,
            })) };
            editor.hidden = true;
            toast('Group saved.');
            renderHeader();
          } catch (err) {
            error.textContent = err.message;
          }
        });
      },
    },
    h('label', { for: 'edit-group-name' }, 'Group name'), name,
    h('label', { for: 'edit-group-description' }, 'Description'), desc,
    h('label', { for: 'edit-group-visibility' }, 'Who can join'), visibility,
    h('label', { for: 'edit-group-max' }, 'Member limit'), max,
    error,
    h('div', { class: 'row' }, save,
      h('button', { type: 'button', onclick: toggleEditor }, 'Cancel'),
      h('button', { type: 'button', class: 'danger', style: 'margin-left:auto', onclick: () => { confirmArchive.hidden = false; } }, 'Archive group')),
    confirmArchive);
    mount(editor, form);
    name.focus();
  }

  async function archive() {
    leaving = true;
    await api.del(base);
    toast(`${group.name} is archived.`);
    location.hash = '#/groups';
  }

  // --- members ----------------------------------------------------------------
  const memberList = h('ul', { class: 'plain member-list', 'aria-label': 'Members' });
  const memberCount = h('span', { class: 'muted' });

  function renderMembers() {
    memberCount.textContent = `(${members.length})`;
    keepFocus(memberList, () => mount(memberList, members.map((m) => {
      const isMe = m.userId === me;
      const manage = isAdmin() && !isMe ? h('div', { class: 'row member-actions' },
        m.role === 'admin'
          ? h('button', { class: 'small', 'aria-label': `Make ${m.name} a member`, onclick: (e) => withBusy(e.currentTarget, () => setRole(m, 'member')) }, 'Make member')
          : h('button', { class: 'small', 'aria-label': `Make ${m.name} an admin`, onclick: (e) => withBusy(e.currentTarget, () => setRole(m, 'admin')) }, 'Make admin'),
        h('button', { class: 'small', 'aria-label': `Remove ${m.name} from the group`, onclick: (e) => withBusy(e.currentTarget, () => removeMember(m)) }, 'Remove')) : null;
      return h('li', { dataset: { userId: m.userId } },
        person(m.userId, m.name,
          isMe ? h('span', { class: 'muted' }, '(you)') : null,
          m.role === 'admin' ? h('span', { class: 'badge admin' }, 'admin') : null,
          present.has(m.userId) ? h('span', { class: 'here', title: 'In this room now' }, 'here') : null),
        manage);
    })));
    renderHeader();
  }

  async function setRole(member, role) {
    await api.put(`${base}/members/${member.userId}`, { role });
    toast(`${member.name} is now ${role === 'admin' ? 'an admin' : 'a member'}.`);
    await loadMembers();
  }

  async function removeMember(member) {
    await api.del(`${base}/members/${member.userId}`);
    toast(`${member.name} was removed.`);
    await Promise.all([loadMembers(), loadGroup()]);
  }

  async function loadMembers() {
    try {
      members = await api.get(`${base}/members`);
      const mine = members.find((m) => m.userId === me);
      if (mine && mine.role !== group.myRole) group.myRole = mine.role;
      renderMembers();
      // Every member's presence, for the dots (pushes keep them fresh).
      await Promise.all(members.map((m) => api.get(`/api/presence/user/${m.userId}`).then(rememberPresence).catch(() => {})));
      renderHeader();
      renderInvite();
    } catch (error) {
      mount(memberList, h('li', { class: 'error-text' }, `Could not load the members: ${error.message}`));
    }
  }

  async function loadGroup() {
    try {
      group = await api.get(base);
      if (!group.myRole || group.isActive === false) return removed(`You are no longer a member of ${group.name}.`);
      renderHeader();
    } catch (error) {
      if (error.status === 403 || error.status === 404) removed(`You are no longer a member of ${group.name}.`);
    }
  }

  // --- invite ------------------------------------------------------------------
  const inviteSelect = h('select', { id: 'invite-person' });
  const inviteButton = h('button', { type: 'submit' }, 'Invite');
  const inviteNote = h('p', { class: 'muted' });
  let candidates = [];

  async function loadCandidates() {
    try {
      candidates = (await api.get('/api/presence/online')).filter((p) => p.userId !== me);
      candidates.forEach(rememberPresence);
    } catch {
      candidates = [];
    }
    renderInvite();
  }

  function renderInvite() {
    const memberIds = new Set(members.map((m) => m.userId));
    const chosen = inviteSelect.value;
    const people = candidates.filter((p) => !memberIds.has(p.userId)).sort((a, b) => a.name.localeCompare(b.name));
    mount(inviteSelect, people.length
      ? people.map((p) => h('option', { value: p.userId }, p.name))
      : h('option', { value: '' }, 'Nobody online to invite'));
    if (people.some((p) => p.userId === chosen)) inviteSelect.value = chosen;
    inviteSelect.disabled = !people.length;
    inviteButton.disabled = !people.length;
    inviteNote.textContent = 'Classmates online now who are not in the group yet.';
  }

  const inviteForm = h('form', {
    class: 'stack', 'aria-labelledby': 'invite-title',
    onsubmit: (event) => {
      event.preventDefault();
      const userId = inviteSelect.value;
      if (!userId) return;
      const name = inviteSelect.selectedOptions[0].textContent;
      withBusy(inviteButton, async () => {
        try {
          await api.post(`${base}/invites`, { userId });
          toast(`${name} is invited.`);
        } catch (error) {
          if (error.code === 'not_a_classmate') throw new Error(`${name} shares no course with you${group.courseId ? ' or is not in this group\'s course' : ''}.`);
          if (error.code === 'already_member') throw new Error(`${name} is already a member.`);
          throw error;
        }
      });
    },
  }, h('h2', { id: 'invite-title' }, 'Invite a classmate'),
  h('label', { for: 'invite-person' }, 'Classmate'), inviteSelect, h('div', {}, inviteButton), inviteNote);

  // --- sessions ----------------------------------------------------------------
  const sessionList = h('ul', { class: 'plain session-list', 'aria-label': 'Upcoming group sessions' });

  async function loadSessions() {
    try {
      const list = await api.get(`${base}/sessions`);
      const now = Date.now();
      const upcoming = list.filter((s) => new Date(s.scheduledEndTime).getTime() > now);
      mount(sessionList, upcoming.length ? upcoming.map((s) => {
        const live = new Date(s.scheduledStartTime).getTime() <= now;
        return h('li', { class: `group-session${live ? ' live' : ''}` },
          h('div', {}, h('strong', {}, s.title), live ? h('span', { class: 'status active' }, 'now') : null),
          h('div', { class: 'muted' }, formatTime(s.scheduledStartTime), ' – ', formatClock(s.scheduledEndTime)),
          s.createdByName ? h('div', { class: 'muted' }, `planned by ${s.createdByName}`) : null);
      }) : emptyState({ tag: 'li', icon: 'calendar', title: 'No group session planned.', hint: 'Plan one below: every member gets a reminder before it starts.' }));
    } catch (error) {
      mount(sessionList, h('li', { class: 'error-text' }, `Could not load the sessions: ${error.message}`));
    }
  }

  function sessionForm() {
    const soon = new Date(Math.ceil((Date.now() + 30 * 60000) / (15 * 60000)) * 15 * 60000);
    const name = h('input', { id: 'gs-title', maxlength: 200, required: true, placeholder: 'e.g. Exam review' });
    const start = h('input', { id: 'gs-start', type: 'datetime-local', required: true, value: localInput(soon) });
    const end = h('input', { id: 'gs-end', type: 'datetime-local', required: true, value: localInput(new Date(soon.getTime() + 3600000)) });
    const error = h('p', { class: 'error-text', role: 'alert' });
    const button = h('button', { type: 'submit' }, 'Schedule');
    return h('form', {
      class: 'stack', 'aria-label': 'Schedule a group session',
      onsubmit: (event) => {
        event.preventDefault();
        error.textContent = '';
        withBusy(button, async () => {
          try {
            await api.post(`${base}/sessions`, {
              title: name.value.trim(),
              scheduledStartTime: new Date(start.value).toISOString(),
              scheduledEndTime: new Date(end.value).toISOString(),
            });
            name.value = '';
            toast('Group session scheduled.');
            await loadSessions();
          } catch (err) {
            error.textContent = err.message;
          }
        });
      },
    },
    h('h3', {}, 'Plan a session'),
    h('label', { for: 'gs-title' }, 'Session title'), name,
    h('label', { for: 'gs-start' }, 'Starts'), start,
    h('label', { for: 'gs-end' }, 'Ends'), end,
    error, button);
  }

  // --- chat ----------------------------------------------------------------------
  const inRoom = (event, data) => realtime.send(event, { roomId, ...data });
  const chat = chatPanel({
    me,
    onSend: (message, messageType) => inRoom('room-message', { message, messageType, clientMsgId: crypto.randomUUID() })
      .then(({ message: m }) => { chat.add(m); markReadSoon(); }),
    onTyping: () => inRoom('typing-in-room', {}).catch(() => {}),
    onEdit: (messageId, message) => inRoom('edit-message', { messageId, message }).then(({ message: m }) => m),
    onDelete: (messageId) => inRoom('delete-message', { messageId }).then(({ message: m }) => m),
  });
  const messages = [];
  const addMessage = (m) => {
    if (!messages.some((x) => x.id === m.id)) messages.push(m);
    chat.add(m);
  };

  /** The "New messages" line above the first of my unread messages. */
  function placeUnreadMarker(unread) {
    if (!unread) return;
    let left = unread;
    for (let i = messages.length - 1; i >= 0; i -= 1) {
      const m = messages[i];
      if (m.senderId === me || m.deleted) continue;
      left -= 1;
      if (left === 0) { chat.markUnread(m.id); return; }
    }
    // More unread than the history shows: the line goes above the oldest.
    const first = messages.find((m) => m.senderId !== me && !m.deleted);
    if (first) chat.markUnread(first.id);
  }

  let lastMarked = null;
  const markRead = async () => {
    const newest = chat.lastId();
    if (closed || !newest || newest === lastMarked || document.visibilityState !== 'visible' || !joined) return;
    try {
      await inRoom('mark-read', { messageId: newest });
      lastMarked = newest;
    } catch { /* the next message or visit tries again */ }
  };
  // At most one mark-read per MARK_READ_DELAY_MS, never put off for ever by
  // a busy room, and the last one sent before the page closes.
  let markTimer = null;
  const markReadSoon = () => {
    if (markTimer) return;
    markTimer = setTimeout(() => { markTimer = null; markRead(); }, MARK_READ_DELAY_MS);
  };
  cleanup(() => { if (markTimer) { clearTimeout(markTimer); markTimer = null; markRead(); } });
  const onVisible = () => { if (document.visibilityState === 'visible') markReadSoon(); };
  document.addEventListener('visibilitychange', onVisible);
  cleanup(() => document.removeEventListener('visibilitychange', onVisible));

  // --- the page ------------------------------------------------------------------
  mount(main,
    h('div', { class: 'group-header' },
      h('div', { class: 'row' }, title, badges),
      description, stats, actions),
    editor, banner,
    h('div', { class: 'room group-room' },
      h('div', { class: 'stack' },
        h('section', { class: 'card', 'aria-labelledby': 'members-title' }, h('h2', { id: 'members-title' }, 'Members ', memberCount), memberList),
        h('section', { class: 'card' }, inviteForm)),
      chat.element,
      h('section', { class: 'card stack', 'aria-labelledby': 'group-sessions-title' },
        h('h2', { id: 'group-sessions-title' }, 'Upcoming sessions'), sessionList, sessionForm())),
    h('p', {}, h('a', { href: '#/groups', class: 'back-link' }, icon('arrow-left'), 'All my groups')));
  renderHeader();

  // History first (with the unread count as it was when I came in), then
  // join from the newest message we have.
  const unreadAtOpen = group.unreadCount || 0;
  try {
    (await api.get(`${base}/messages?limit=100`)).forEach(addMessage);
  } catch (error) {
    toast(`Chat history unavailable: ${error.message}`, { kind: 'error' });
  }
  async function join() {
    if (closed) return;
    try {
      const reply = await inRoom('join-room', { sinceMessageId: chat.lastId() || undefined });
      joined = true;
      (reply.missedMessages || []).forEach(addMessage);
      present = new Set((reply.participants || []).map((p) => p.userId));
      renderMembers();
      chat.setEnabled(true);
      banner.hidden = true;
      if (!markerPlaced) { markerPlaced = true; placeUnreadMarker(unreadAtOpen); }
      markRead();
    } catch (error) {
      joined = false;
      chat.setEnabled(false);
      banner.hidden = false;
      banner.textContent = `Could not enter the chat: ${error.message}`;
      if (error.code === 'forbidden' || error.code === 'not_found') loadGroup();
    }
  }

  function removed(message) {
    if (closed) return;
    closed = true;
    if (!leaving) toast(message, { kind: 'error', ms: 8000 });
    if (location.hash === `#/groups/${groupId}`) location.hash = '#/groups';
  }

  const on = (event, fn) => cleanup(realtime.on(event, (data) => { if (data && data.roomId === roomId) fn(data); }));
  on('new-message', ({ message }) => { addMessage(message); markReadSoon(); });
  on('message-edited', ({ message }) => {
    const i = messages.findIndex((m) => m.id === message.id);
    if (i >= 0) messages[i] = message;
    chat.update(message);
  });
  on('message-deleted', ({ messageId }) => {
    const m = messages.find((x) => x.id === messageId);
    if (m) m.deleted = true;
    chat.deleted(messageId);
  });
  on('user-typing', ({ name }) => chat.typing(name));
  on('user-joined', ({ user }) => { present.add(user.userId); renderMembers(); });
  on('user-left', ({ userId }) => { present.delete(userId); renderMembers(); });

  const forThisGroup = (event, fn) => cleanup(realtime.on(event, (data) => { if (data && data.groupId === groupId) fn(data); }));
  const refreshAll = debounce(() => Promise.all([loadGroup(), loadMembers(), loadSessions()]), 200);
  cleanup(() => refreshAll.cancel());
  forThisGroup('study-group-updated', refreshAll);
  // New messages change the header's figures. The pushes come at most one
  // a second, so a shorter wait never puts the reading off for long.
  const refreshGroup = debounce(loadGroup, 400);
  cleanup(() => refreshGroup.cancel());
  forThisGroup('study-group-activity', refreshGroup);
  forThisGroup('removed-from-study-group', () => removed(`You are no longer a member of ${group.name}.`));
  // The dots follow every push by themselves (presence.js); the header's
  // count follows at once, the list of people to invite every few seconds.
  const refreshCandidates = throttle(loadCandidates, 3000);
  cleanup(() => refreshCandidates.cancel());
  cleanup(realtime.on('presence-updated', () => { renderHeader(); refreshCandidates(); }));
  cleanup(realtime.on('reconnected', join));
  cleanup(realtime.on('ready', join));
  cleanup(() => { closed = true; if (joined) inRoom('leave-room', {}).catch(() => {}); });

  await Promise.all([loadMembers(), loadSessions(), loadCandidates()]);
  if (realtime.state === 'open') await join();
  else chat.setEnabled(false);
}

/** A public group I am not in: what it is, and a button to join it. */
function notMemberYet(main, group) {
  mount(main,
    h('h1', {}, group.name),
    h('p', { class: 'muted' }, group.visibility === 'public' ? 'A public study group' : 'A private study group',
      ` · ${group.memberCount} member${group.memberCount === 1 ? '' : 's'}`),
    group.description ? h('p', { class: 'group-description' }, group.description) : null,
    h('div', { class: 'row' },
      h('button', {
        class: 'primary',
        onclick: (e) => withBusy(e.currentTarget, async () => {
          await api.post(`/api/study-groups/${group.id}/join`);
          toast(`You joined ${group.name}.`);
          // The same route again: the page opens as a member.
          window.dispatchEvent(new HashChangeEvent('hashchange'));
        }),
      }, 'Join this group'),
      h('a', { href: '#/groups' }, 'Back to study groups')));
}
