// Q&A: ask (optionally anonymous to classmates), upvote once, and for the
// instructor answer, pin and dismiss. The list arrives whole and ordered.
import { h, mount } from '../dom.js';
import { toast, withBusy } from './toasts.js';
import { icon } from './icons.js';

const SVG = 'http://www.w3.org/2000/svg';
/** A pin drawn in SVG: an emoji would show as a box where no emoji font is installed. */
function pinMark() {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', '0 0 16 16');
  svg.setAttribute('aria-hidden', 'true');
  const path = document.createElementNS(SVG, 'path');
  path.setAttribute('d', 'M5 1h6v1.5l-1 1V7l2.5 2.5V11H8.75v4h-1.5v-4H3.5V9.5L6 7V3.5l-1-1z');
  svg.append(path);
  return h('span', { class: 'pin-mark' }, svg, 'Pinned');
}

/**
 * The questions I upvoted, remembered per person and session: the server
 * refuses a second vote (`already_voted`), so the button shows the vote as
 * given instead of offering it again.
 */
function votedStore(key) {
  let ids = [];
  try { ids = JSON.parse(localStorage.getItem(key) || '[]'); } catch { ids = []; }
  const set = new Set(ids);
  return {
    has: (id) => set.has(id),
    add(id) { set.add(id); try { localStorage.setItem(key, JSON.stringify([...set])); } catch { /* private mode: this page only */ } },
  };
}

export function qaPanel({ isLeader, onAsk, onVote, onModerate, me, sessionId }) {
  const voted = votedStore(`voted:${me}:${sessionId}`);
  let current = [];
  const list = h('div', { 'aria-label': 'Questions' });
  const input = h('input', { maxlength: 500, 'aria-label': 'Your question', placeholder: 'Ask a question…' });
  const anonymous = h('input', { type: 'checkbox', id: 'qa-anonymous', style: 'width:auto' });
  const ask = h('button', { type: 'submit' }, 'Ask');
  const reason = h('p', { class: 'hint', id: 'qa-disabled-reason', hidden: true });
  input.setAttribute('aria-describedby', 'qa-disabled-reason');
  let enabled = true;
  const form = h('form', {
    class: 'stack',
    onsubmit: (event) => {
      event.preventDefault();
      const text = input.value.trim();
      if (!text || !enabled) return;
      withBusy(ask, async () => {
        await onAsk(text, anonymous.checked);
        input.value = '';
      });
    },
  }, input, reason, h('div', { class: 'row' }, h('label', { for: 'qa-anonymous', style: 'margin:0' }, anonymous, ' Anonymous to classmates'), ask));

  function item(q) {
    const who = q.askedBy ? q.askedBy.name : 'Anonymous';
    const mine = q.askedBy && q.askedBy.userId === me;
    const done = voted.has(q.id);
    const votes = `${q.votes} vote${q.votes === 1 ? '' : 's'}`;
    const buttons = [
      h('button', {
        class: `upvote${done ? ' voted' : ''}`,
        'aria-label': done ? `Upvoted: ${q.text}` : mine ? `Your question: ${q.text}` : `Upvote: ${q.text}`,
        'aria-pressed': done ? 'true' : 'false',
        title: done ? 'You upvoted this question' : mine ? 'You cannot upvote your own question' : 'Upvote',
        disabled: done || mine,
        onclick: (e) => vote(e.currentTarget, q.id),
      }, icon('chevron-up'), ` ${votes}${done ? ' · voted' : ''}`),
    ];
    if (isLeader) {
      if (q.status !== 'answered') buttons.push(h('button', { class: 'answer', onclick: (e) => withBusy(e.currentTarget, () => onModerate('answer', q.id)) }, 'Answered'));
      buttons.push(h('button', { onclick: (e) => withBusy(e.currentTarget, () => onModerate('pin', q.id, !q.pinned)) }, q.pinned ? 'Unpin' : 'Pin'));
      buttons.push(h('button', { onclick: (e) => withBusy(e.currentTarget, () => onModerate('dismiss', q.id)) }, 'Dismiss'));
    }
    return h('div', { class: `question ${q.status}${q.pinned ? ' pinned' : ''}`, role: 'listitem', dataset: { id: q.id } },
      h('div', { class: 'text' }, q.pinned ? pinMark() : null, q.text),
      h('div', { class: 'muted' }, who, q.status === 'answered' ? ' · answered' : '', q.anonymous && isLeader ? ' (anonymous to classmates)' : ''),
      h('div', { class: 'row' }, buttons));
  }

  /** Upvotes once; a vote the server already has counts as given, not as an error. */
  async function vote(button, id) {
    button.disabled = true;
    try {
      await onVote(id);
      voted.add(id);
    } catch (error) {
      if (error.code === 'already_voted') voted.add(id);
      else toast(`Not upvoted: ${error.message}`, { kind: 'error' });
    }
    drawList();
  }

  /** A list of questions (a list role only with items in it), or the empty state. */
  function drawList() {
    if (current.length) list.setAttribute('role', 'list');
    else list.removeAttribute('role');
    mount(list, current.length ? current.map(item) : h('p', { class: 'empty' }, 'No questions yet.'));
  }

  return {
    element: h('section', { class: 'card stack', 'aria-label': 'Questions and answers' }, h('h2', {}, 'Q&A'), form, list),
    /** Turns asking on or off; off with a reason, shown in words. */
    setEnabled(on, why = '') {
      enabled = on;
      input.disabled = !on;
      anonymous.disabled = !on;
      ask.disabled = !on;
      reason.hidden = on || !why;
      reason.textContent = on ? '' : why;
    },
    render(questions) {
      current = questions;
      drawList();
    },
  };
}
