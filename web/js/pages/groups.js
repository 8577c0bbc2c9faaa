// Study groups: my groups as cards that follow the room's activity and the
// members' presence, the invitations waiting for me, a form to create a
// group, and a search of the public groups I may join.
import { h, mount, debounce, throttle, formatTime } from '../dom.js';
import { api } from '../api.js';
import { realtime } from '../socket.js';
import { groupCard } from '../components/group-card.js';
import { toast, withBusy } from '../components/toasts.js';
import { emptyState, focusButton } from '../components/empty-state.js';

export async function groupsPage(main, { cleanup }) {
  const mine = h('div', { class: 'grid group-grid', id: 'my-groups' }, h('p', { class: 'loading' }, 'Loading your groups'));
  const invites = h('div', { class: 'stack', id: 'group-invites' }, h('p', { class: 'loading' }, 'Loading invitations'));
  const results = h('div', { class: 'stack', id: 'group-search-results', 'aria-live': 'polite' });
  let courses = [];
  const courseTitle = (id) => (courses.find((c) => c.id === id) || {}).title;

  try {
    courses = await api.get('/api/courses');
  } catch (error) {
    toast(`Could not load your courses: ${error.message}`, { kind: 'error' });
  }

  mount(main,
    h('h1', {}, 'Study groups'),
    h('section', { class: 'stack', 'aria-labelledby': 'my-groups-title' }, h('h2', { id: 'my-groups-title' }, 'My groups'), mine),
    h('div', { class: 'grid', style: 'margin-top:1rem' },
      h('section', { class: 'card stack', 'aria-labelledby': 'invites-title' }, h('h2', { id: 'invites-title' }, 'Invitations'), invites),
      h('section', { class: 'card', 'aria-labelledby': 'create-group-title' }, h('h2', { id: 'create-group-title' }, 'Create a group'), createForm()),
      h('section', { class: 'card stack', 'aria-labelledby': 'find-group-title' }, h('h2', { id: 'find-group-title' }, 'Find a group'), searchForm(), results)));

  async function loadMine() {
    try {
      const groups = await api.get('/api/study-groups');
      mount(mine, groups.length
        ? groups.map((g) => groupCard(g, { courseTitle: courseTitle(g.courseId) }))
        : emptyState({
          icon: 'users', title: 'You are in no study group yet.', hint: 'Make one for your classmates, or find a public group to join.',
          action: [focusButton('Create a group', '#group-name'), focusButton('Find a group', '#group-search')],
        }));
    } catch (error) {
      mount(mine, h('p', { class: 'error-text' }, `Could not load your groups: ${error.message}`));
    }
  }

  async function loadInvites() {
    try {
      const list = await api.get('/api/study-groups/invites');
      mount(invites, list.length ? list.map(inviteItem)
        : emptyState({ icon: 'mail', title: 'No invitations.', hint: 'When a classmate invites you to a private group, it shows here.' }));
    } catch (error) {
      mount(invites, h('p', { class: 'error-text' }, `Could not load invitations: ${error.message}`));
    }
  }

  function inviteItem(invite) {
    const name = invite.groupName || 'a study group';
    return h('div', { class: 'invite', dataset: { inviteId: invite.id } },
      h('div', {}, h('strong', {}, name)),
      h('div', { class: 'muted' }, invite.invitedByName ? `Invited by ${invite.invitedByName}` : 'You are invited',
        invite.createdAt ? ` · ${formatTime(invite.createdAt)}` : ''),
      h('div', { class: 'row' },
        h('button', {
          class: 'primary', 'aria-label': `Accept the invitation to ${name}`,
          onclick: (e) => withBusy(e.currentTarget, async () => {
            await api.post(`/api/study-groups/invites/${invite.id}/accept`);
            toast(`You joined ${name}.`);
            await Promise.all([loadMine(), loadInvites()]);
          }),
        }, 'Accept'),
        h('button', {
          'aria-label': `Decline the invitation to ${name}`,
          onclick: (e) => withBusy(e.currentTarget, async () => {
            await api.post(`/api/study-groups/invites/${invite.id}/decline`);
            toast(`Invitation to ${name} declined.`);
            await loadInvites();
          }),
        }, 'Decline')));
  }

  function createForm() {
    const name = h('input', { id: 'group-name', maxlength: 100, required: true });
    const description = h('textarea', { id: 'group-description', rows: 2, maxlength: 2000 });
    const course = h('select', { id: 'group-course' }, h('option', { value: '' }, 'No course'),
      courses.map((c) => h('option', { value: c.id }, c.title)));
    const visibility = h('select', { id: 'group-visibility' },
      h('option', { value: 'private' }, 'Private: by invitation only'),
      h('option', { value: 'public' }, 'Public: anyone allowed may join'));
    const max = h('input', { id: 'group-max', type: 'number', min: 2, max: 10000, inputmode: 'numeric', placeholder: 'No limit' });
    const error = h('p', { class: 'error-text', role: 'alert' });
    const button = h('button', { class: 'primary', type: 'submit' }, 'Create group');
    return h('form', {
      class: 'stack',
      onsubmit: (event) => {
        event.preventDefault();
        error.textContent = '';
        withBusy(button, async () => {
          try {
            const group = await api.post('/api/study-groups', {
              name: name.value.trim(),
              description: description.value.trim() || undefined,
              courseId: course.value || undefined,
              visibility: visibility.value,
              maxMembers: max.value ? Number(max.value) : undefined,
            });
            toast(`Group ${group.name} created.`);
            location.hash = `#/groups/${group.id}`;
          } catch (err) {
            error.textContent = err.message;
          }
        });
      },
    },
    h('label', { for: 'group-name' }, 'Group name'), name,
    h('label', { for: 'group-description' }, 'Description (optional)'), description,
    h('label', { for: 'group-course' }, 'Course (optional)'), course,
    h('label', { for: 'group-visibility' }, 'Who can join'), visibility,
    h('label', { for: 'group-max' }, 'Member limit (optional)'), max,
    error, button);
  }

  function searchForm() {
    const q = h('input', { id: 'group-search', type: 'search', maxlength: 100, placeholder: 'Part of a name' });
    const course = h('select', { id: 'group-search-course', 'aria-label': 'In course' }, h('option', { value: '' }, 'Any course'),
      courses.map((c) => h('option', { value: c.id }, c.title)));
    const run = debounce(search, 250);
    q.addEventListener('input', run);
    course.addEventListener('change', search);
    async function search() {
      const params = new URLSearchParams({ q: q.value.trim() });
      if (course.value) params.set('courseId', course.value);
      try {
        const found = await api.get(`/api/study-groups/search?${params}`);
        mount(results, found.length ? found.map(resultItem)
          : emptyState({ icon: 'search', title: 'No public group to join matches.', hint: 'Try another name or course, or create the group yourself.', action: focusButton('Create a group', '#group-name') }));
      } catch (error) {
        mount(results, h('p', { class: 'error-text' }, `Search failed: ${error.message}`));
      }
    }
    cleanup(() => run.cancel());
    search();
    return h('form', { class: 'stack', role: 'search', onsubmit: (e) => { e.preventDefault(); search(); } },
      h('label', { for: 'group-search' }, 'Search public groups'),
      h('div', { class: 'row search-row' }, q, course, h('button', { type: 'submit' }, 'Search')));
  }

  function resultItem(group) {
    const full = group.maxMembers && group.memberCount >= group.maxMembers;
    return h('div', { class: 'result', dataset: { groupId: group.id } },
      h('div', {}, h('strong', {}, group.name), courseTitle(group.courseId) ? h('span', { class: 'muted' }, ` · ${courseTitle(group.courseId)}`) : null),
      group.description ? h('div', { class: 'muted clamp' }, group.description) : null,
      h('div', { class: 'row' },
        h('span', { class: 'muted' }, `${group.memberCount} member${group.memberCount === 1 ? '' : 's'}`,
          group.maxMembers ? ` of ${group.maxMembers}` : '', ` · ${group.onlineCount || 0} online`),
        h('button', {
          'aria-label': `Join ${group.name}`, disabled: full, title: full ? 'This group is full' : null,
          onclick: (e) => withBusy(e.currentTarget, async () => {
            await api.post(`/api/study-groups/${group.id}/join`);
            toast(`You joined ${group.name}.`);
            location.hash = `#/groups/${group.id}`;
          }),
        }, full ? 'Full' : 'Join')));
  }

  await Promise.all([loadMine(), loadInvites()]);

  // Activity comes in bursts (one push per group a second, presence of
  // many people): the cards are read again once the burst is over.
  const refreshCards = debounce(loadMine, 400);
  cleanup(() => refreshCards.cancel());
  // Presence changes all the time in a busy course: online counts follow
  // within a few seconds, not at every push.
  const refreshOnline = throttle(loadMine, 3000);
  cleanup(() => refreshOnline.cancel());
  cleanup(realtime.on('study-group-activity', refreshCards));
  cleanup(realtime.on('study-group-updated', refreshCards));
  cleanup(realtime.on('unread-updated', refreshCards));
  cleanup(realtime.on('presence-updated', refreshOnline));
  cleanup(realtime.on('removed-from-study-group', refreshCards));
  cleanup(realtime.on('study-group-invite', () => loadInvites()));
  cleanup(realtime.on('reconnected', () => { loadMine(); loadInvites(); }));
  // "5 min ago" keeps telling the truth.
  const timer = setInterval(loadMine, 60000);
  cleanup(() => clearInterval(timer));
}
