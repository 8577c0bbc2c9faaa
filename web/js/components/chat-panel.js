// Live chat: a log that scrolls to the newest message (unless the reader
// scrolled up), timestamps, who is typing, and a box to write in.
import { h, formatClock } from '../dom.js';

const TYPING_SHOWN_MS = 3000;

export function chatPanel({ onSend, onTyping }) {
  const log = h('div', { class: 'chat-log', role: 'log', 'aria-label': 'Chat messages', tabindex: 0 });
  const typing = h('div', { class: 'typing', 'aria-live': 'polite' });
  const input = h('textarea', { rows: 2, maxlength: 4000, 'aria-label': 'Chat message', placeholder: 'Write a message…' });
  const error = h('div', { class: 'error-text', role: 'alert' });
  const send = h('button', { class: 'primary', type: 'submit' }, 'Send');
  const seen = new Set();
  const typers = new Map();
  let lastTypingSent = 0;

  const form = h('form', {
    class: 'stack',
    onsubmit: async (event) => {
      event.preventDefault();
      const text = input.value.trim();
      if (!text) return;
      send.disabled = true;
      error.textContent = '';
      try {
        await onSend(text);
        input.value = '';
      } catch (err) {
        error.textContent = `Not sent: ${err.message}`;
      } finally {
        send.disabled = false;
        input.focus();
      }
    },
  }, input, h('div', { class: 'row' }, send, error));

  input.addEventListener('input', () => {
    if (Date.now() - lastTypingSent > 2000) {
      lastTypingSent = Date.now();
      onTyping();
    }
  });
  input.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  function renderTyping() {
    const names = [...typers.keys()];
    typing.textContent = names.length === 0 ? '' : `${names.join(', ')} ${names.length === 1 ? 'is' : 'are'} typing…`;
  }

  return {
    element: h('section', { class: 'card stack', 'aria-label': 'Chat' }, h('h2', {}, 'Chat'), log, typing, form),
    /** Adds a message once (a resend or a catch-up never shows twice). */
    add(message) {
      if (seen.has(message.id)) return;
      seen.add(message.id);
      const nearBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 80;
      log.append(h('div', { class: 'msg', dataset: { id: message.id } },
        h('div', { class: 'meta' }, h('strong', {}, message.senderName), ' · ', h('time', { datetime: message.createdAt }, formatClock(message.createdAt))),
        h('div', { class: 'text' }, message.message)));
      if (nearBottom) log.scrollTop = log.scrollHeight;
      if (typers.has(message.senderName)) {
        clearTimeout(typers.get(message.senderName));
        typers.delete(message.senderName);
        renderTyping();
      }
    },
    lastId() {
      const last = log.lastElementChild;
      return last ? last.dataset.id : null;
    },
    typing(name) {
      clearTimeout(typers.get(name));
      typers.set(name, setTimeout(() => { typers.delete(name); renderTyping(); }, TYPING_SHOWN_MS));
      renderTyping();
    },
    setEnabled(enabled) {
      input.disabled = !enabled;
      send.disabled = !enabled;
    },
  };
}
