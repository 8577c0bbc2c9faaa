// Live chat, the same for every kind of room: a log that scrolls to the
// newest message (unless the reader scrolled up), timestamps, who is
// typing, links shared as links (and web addresses in text as links), a box
// to write in, and edit and delete on one's own messages (changes pushed by
// the room show up everywhere).
import { h, mount, formatClock } from '../dom.js';

const TYPING_SHOWN_MS = 3000;
/** The server's limit (MAX_MESSAGE_CHARS in src/domain/chat.rs), in characters of the trimmed text. */
export const MAX_MESSAGE_CHARS = 4000;

/** Characters as the server counts them (code points, not UTF-16 units), of the trimmed text. */
function charCount(text) {
  return [...text.trim()].length;
}
const LINK = /^https?:\/\/\S+$/;
/** A web address inside a message's text (its end trimmed of punctuation after). */
const URL_IN_TEXT = /\bhttps?:\/\/[^\s<>"]+/gi;
const TRAILING = /[.,;:!?'")\]}]+$/;

/** The address as a link may point to it: http(s) only, never `javascript:` or another scheme. */
export function safeHref(text) {
  try {
    const url = new URL(text);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
  } catch {
    return null;
  }
}

function anchor(href, text) {
  return h('a', { href, target: '_blank', rel: 'noopener noreferrer' }, text);
}

/**
 * A message's text with its web addresses as links: the rest stays text
 * nodes (never markup), and only http(s) addresses become links.
 */
export function linkify(text) {
  const parts = [];
  let at = 0;
  for (const match of text.matchAll(URL_IN_TEXT)) {
    const address = match[0].replace(TRAILING, '');
    const href = safeHref(address);
    if (!href) continue;
    if (match.index > at) parts.push(text.slice(at, match.index));
    parts.push(anchor(href, address));
    at = match.index + address.length;
  }
  if (at < text.length) parts.push(text.slice(at));
  return parts;
}

/** The body of a message: its text (addresses in it as links), a link, or the mark of a deleted one. */
function body(message) {
  if (message.deleted) return h('em', { class: 'muted' }, 'message deleted');
  const href = message.messageType === 'link' ? safeHref(message.message) : null;
  if (href) return anchor(href, message.message);
  return linkify(message.message);
}

/**
 * onSend(text, messageType), onTyping(); with `me` (my user id), onEdit(id,
 * text) and onDelete(id) offer both on my messages.
 */
export function chatPanel({ onSend, onTyping, me, onEdit, onDelete }) {
  const log = h('div', { class: 'chat-log', role: 'log', 'aria-label': 'Chat messages', tabindex: 0 });
  const typing = h('div', { class: 'typing', 'aria-live': 'polite' });
  // No maxlength: a long paste is kept whole and the counter says how much to cut.
  const input = h('textarea', { rows: 2, 'aria-label': 'Chat message', placeholder: 'Write a message…', 'aria-describedby': 'chat-count chat-limit chat-disabled-reason' });
  const counter = h('span', { class: 'char-count', id: 'chat-count' });
  const reason = h('p', { class: 'hint', id: 'chat-disabled-reason', hidden: true });
  const limitNote = h('p', { class: 'hint error-text', id: 'chat-limit', hidden: true });
  const error = h('div', { class: 'error-text', role: 'alert' });
  const send = h('button', { class: 'primary', type: 'submit' }, 'Send');
  let enabled = true;
  let over = false;

  /** The counter ("3,950 / 4,000") and, past the limit, by how much. */
  function renderCount() {
    const count = charCount(input.value);
    over = count > MAX_MESSAGE_CHARS;
    counter.textContent = `${count.toLocaleString()} / ${MAX_MESSAGE_CHARS.toLocaleString()}`;
    counter.classList.toggle('over', over);
    counter.title = `A message may have at most ${MAX_MESSAGE_CHARS.toLocaleString()} characters.`;
    limitNote.hidden = !over;
    limitNote.textContent = over ? `${(count - MAX_MESSAGE_CHARS).toLocaleString()} characters over the limit of ${MAX_MESSAGE_CHARS.toLocaleString()}: shorten the message to send it.` : '';
    send.disabled = !enabled || over;
  }
  const seen = new Set();
  const typers = new Map();
  let lastTypingSent = 0;

  const form = h('form', {
    class: 'stack',
    onsubmit: async (event) => {
      event.preventDefault();
      const text = input.value.trim();
      if (!text || over || !enabled) return;
      send.disabled = true;
      error.textContent = '';
      // Posting ends my typing (the server forgets it too): the next key
      // pressed says "typing" again at once, not 2 s later.
      lastTypingSent = 0;
      // Cleared now, not when the ack comes: what I type meanwhile (the next
      // message) must not be wiped by this one's ack. A failure puts the
      // text back if the box is still empty.
      input.value = '';
      renderCount();
      try {
        await onSend(text, LINK.test(text) ? 'link' : 'text');
      } catch (err) {
        if (!input.value) input.value = text;
        error.textContent = `Not sent: ${err.message}`;
      } finally {
        send.disabled = !enabled || over;
        renderCount();
        if (enabled) input.focus();
      }
    },
  }, input, limitNote, reason, h('div', { class: 'row' }, send, error, counter));
  renderCount();

  input.addEventListener('input', () => {
    renderCount();
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

  const rows = new Map();

  /** Turns a message's text into a box to edit it in place. */
  function startEdit(message, row) {
    const text = row.querySelector('.text');
    const box = h('textarea', { rows: 2, 'aria-label': 'Edit message' });
    box.value = message.message;
    const problem = h('span', { class: 'error-text', role: 'alert' });
    const done = () => render(message);
    const save = async () => {
      const next = box.value.trim();
      if (!next || next === message.message) return done();
      if (charCount(next) > MAX_MESSAGE_CHARS) {
        problem.textContent = `Not saved: at most ${MAX_MESSAGE_CHARS.toLocaleString()} characters (this has ${charCount(next).toLocaleString()}).`;
        return;
      }
      try {
        render(await onEdit(message.id, next));
      } catch (err) {
        problem.textContent = `Not saved: ${err.message}`;
      }
    };
    box.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && !event.shiftKey) { event.preventDefault(); save(); }
      if (event.key === 'Escape') done();
    });
    mount(text, box, h('div', { class: 'row' },
      h('button', { type: 'button', class: 'primary', onclick: save }, 'Save'),
      h('button', { type: 'button', onclick: done }, 'Cancel'), problem));
    box.focus();
  }

  /** Draws (or redraws) a message's row. */
  function render(message) {
    const row = rows.get(message.id);
    if (!row) return;
    const mine = me && message.senderId === me && !message.deleted;
    const actions = mine && onEdit ? h('span', { class: 'msg-actions' },
      h('button', { type: 'button', class: 'link', 'aria-label': `Edit message: ${message.message}`, onclick: () => startEdit(message, row) }, 'Edit'),
      h('button', { type: 'button', class: 'link', 'aria-label': `Delete message: ${message.message}`, onclick: async () => {
        try { render(await onDelete(message.id)); } catch (err) { showError(row, err); }
      } }, 'Delete')) : null;
    mount(row,
      h('div', { class: 'meta' }, h('strong', {}, message.senderName), ' · ', h('time', { datetime: message.createdAt }, formatClock(message.createdAt)),
        message.editedAt && !message.deleted ? ' · edited' : '', actions),
      h('div', { class: 'text' }, body(message)));
    row.classList.toggle('deleted', Boolean(message.deleted));
  }

  function showError(row, err) {
    row.append(h('div', { class: 'error-text', role: 'alert' }, `Not deleted: ${err.message}`));
  }

  return {
    element: h('section', { class: 'card stack', 'aria-label': 'Chat' }, h('h2', {}, 'Chat'), log, typing, form),
    /** Adds a message once (a resend or a catch-up never shows twice). */
    add(message) {
      if (seen.has(message.id)) return;
      seen.add(message.id);
      const nearBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 80;
      const row = h('div', { class: 'msg', dataset: { id: message.id } });
      rows.set(message.id, row);
      log.append(row);
      render(message);
      if (nearBottom) log.scrollTop = log.scrollHeight;
      if (typers.has(message.senderName)) {
        clearTimeout(typers.get(message.senderName));
        typers.delete(message.senderName);
        renderTyping();
      }
    },
    /** A message changed (edited, or deleted: also one whose write failed). */
    update(message) {
      if (rows.has(message.id)) render(message);
    },
    deleted(messageId) {
      const row = rows.get(messageId);
      if (!row) return;
      row.classList.add('deleted');
      mount(row.querySelector('.text') || row, h('em', { class: 'muted' }, 'message deleted'));
      row.querySelector('.msg-actions')?.remove();
    },
    lastId() {
      const rows = log.querySelectorAll('.msg');
      return rows.length ? rows[rows.length - 1].dataset.id : null;
    },
    /**
     * Puts the "New messages" line above a message (where the reader
     * stopped reading) and scrolls the log to it; one marker at a time.
     */
    markUnread(messageId) {
      log.querySelector('.unread-marker')?.remove();
      const row = rows.get(messageId);
      if (!row) return false;
      const marker = h('div', { class: 'unread-marker', role: 'separator', 'aria-label': 'New messages' }, h('span', {}, 'New messages'));
      row.before(marker);
      log.scrollTop = Math.max(0, marker.offsetTop - 8);
      return true;
    },
    clearUnreadMarker() {
      log.querySelector('.unread-marker')?.remove();
    },
    typing(name) {
      clearTimeout(typers.get(name));
      typers.set(name, setTimeout(() => { typers.delete(name); renderTyping(); }, TYPING_SHOWN_MS));
      renderTyping();
    },
    /** Turns the box on or off; off with a reason, shown under it in words. */
    setEnabled(on, why = '') {
      enabled = on;
      if (!on) {
        // A closed chat has nobody typing into it.
        for (const timer of typers.values()) clearTimeout(timer);
        typers.clear();
        renderTyping();
      }
      input.disabled = !on;
      send.disabled = !on || over;
      reason.hidden = on || !why;
      reason.textContent = on ? '' : why;
    },
  };
}
