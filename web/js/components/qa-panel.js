// Q&A: ask (optionally anonymous to classmates), upvote once, and for the
// instructor answer, pin and dismiss. The list arrives whole and ordered.
import { h, mount } from '../dom.js';
import { withBusy } from './toasts.js';

export function qaPanel({ isLeader, onAsk, onVote, onModerate }) {
  const list = h('div', { 'aria-label': 'Questions', role: 'list' });
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
    const buttons = [
      h('button', { class: 'upvote', 'aria-label': `Upvote: ${q.text}`, onclick: (e) => withBusy(e.currentTarget, () => onVote(q.id)) }, `▲ ${q.votes}`),
    ];
    if (isLeader) {
      if (q.status !== 'answered') buttons.push(h('button', { class: 'answer', onclick: (e) => withBusy(e.currentTarget, () => onModerate('answer', q.id)) }, 'Answered'));
      buttons.push(h('button', { onclick: (e) => withBusy(e.currentTarget, () => onModerate('pin', q.id, !q.pinned)) }, q.pinned ? 'Unpin' : 'Pin'));
      buttons.push(h('button', { onclick: (e) => withBusy(e.currentTarget, () => onModerate('dismiss', q.id)) }, 'Dismiss'));
    }
    return h('div', { class: `question ${q.status}${q.pinned ? ' pinned' : ''}`, role: 'listitem', dataset: { id: q.id } },
      h('div', { class: 'text' }, q.pinned ? '📌 ' : '', q.text),
      h('div', { class: 'muted' }, who, q.status === 'answered' ? ' · answered' : '', q.anonymous && isLeader ? ' (anonymous to classmates)' : ''),
      h('div', { class: 'row' }, buttons));
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
      mount(list, questions.length ? questions.map(item) : h('p', { class: 'empty' }, 'No questions yet.'));
    },
  };
}
