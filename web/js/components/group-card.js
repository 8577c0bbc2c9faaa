// A study group at a glance: name, course, members online now, last
// activity and my unread count; the whole card opens the group's room.
import { h, since } from '../dom.js';

/** "3 unread" as a badge (nothing when there is nothing to read). */
export function unreadBadge(count) {
  if (!count) return null;
  const label = `${count} unread message${count === 1 ? '' : 's'}`;
  return h('span', { class: 'unread-badge', title: label, 'aria-label': label }, count > 99 ? '99+' : String(count));
}

export function groupCard(group, { courseTitle } = {}) {
  const online = group.onlineCount || 0;
  return h('article', { class: `card group-card${group.unreadCount ? ' has-unread' : ''}`, 'aria-label': `Group ${group.name}`, dataset: { groupId: group.id } },
    h('div', { class: 'row' },
      h('h3', {}, h('a', { href: `#/groups/${group.id}` }, group.name)),
      unreadBadge(group.unreadCount)),
    h('div', { class: 'muted' },
      h('span', { class: `badge ${group.visibility}` }, group.visibility === 'private' ? 'Private' : 'Public'),
      courseTitle ? ` ${courseTitle}` : '',
      group.myRole === 'admin' ? ' · you are admin' : ''),
    h('div', { class: 'group-stats' },
      h('span', { class: `online-count${online ? ' some' : ''}` }, `${online} online now`),
      ' · ', `${group.memberCount} member${group.memberCount === 1 ? '' : 's'}`),
    h('div', { class: 'muted' }, 'Last activity ', h('time', { datetime: group.lastActivityAt }, since(group.lastActivityAt))));
}
