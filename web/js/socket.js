// The WebSocket client: one socket per tab, acks as promises, events to
// listeners, and automatic reconnection with exponential back-off and
// jitter. Pages re-join their rooms on `reconnected` (with sinceMessageId),
// which is how missed chat is caught up.

const ACK_TIMEOUT_MS = 10000;
const HEARTBEAT_MS = 30000;

export class RealtimeClient {
  constructor() {
    this.state = 'offline';
    this.listeners = new Map();
    this.pending = new Map();
    this.nextAck = 1;
    this.attempt = 0;
    this.token = null;
    this.ws = null;
    this.connectionId = null;
  }

  /** Opens (or re-opens) the socket for this token. */
  connect(token) {
    this.token = token;
    this.closedByUs = false;
    this.open(false);
  }

  disconnect() {
    this.closedByUs = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.heartbeat);
    if (this.ws) this.ws.close(1000);
    this.setState('offline');
  }

  open(isRetry) {
    if (!this.token) return;
    this.setState(isRetry ? 'reconnecting' : 'connecting');
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    // presence=diff: a lecture's arrivals come as one batch per course, not a frame per person.
    const ws = new WebSocket(`${scheme}://${location.host}/ws?token=${encodeURIComponent(this.token)}&presence=diff`);
    this.ws = ws;
    ws.onmessage = (event) => this.receive(event.data);
    ws.onclose = (event) => this.closed(ws, event);
    ws.onerror = () => {};
  }

  receive(text) {
    let frame;
    try { frame = JSON.parse(text); } catch { return; }
    if (frame.ack !== undefined) {
      const waiter = this.pending.get(frame.ack);
      if (!waiter) return;
      this.pending.delete(frame.ack);
      clearTimeout(waiter.timer);
      if (frame.ok) waiter.resolve(frame.data);
      else waiter.reject(Object.assign(new Error(frame.error.message), { code: frame.error.code }));
      return;
    }
    if (frame.event === 'connected') {
      const wasRetry = this.attempt > 0 || this.everConnected;
      this.attempt = 0;
      this.everConnected = true;
      this.connectionId = frame.data.connectionId;
      this.userId = frame.data.userId;
      this.setState('open');
      clearInterval(this.heartbeat);
      // The plan's 30-second presence heartbeat keeps the user active.
      this.heartbeat = setInterval(() => this.send('update-presence', {}).catch(() => {}), HEARTBEAT_MS);
      this.emit(wasRetry ? 'reconnected' : 'ready', frame.data);
      return;
    }
    if (frame.event === 'presence-diff') {
      // Pages listen for presence-updated; a diff may name us too, which they never hear of.
      for (const update of frame.data.updates) {
        if (update.userId !== this.userId) this.emit('presence-updated', update);
      }
      return;
    }
    this.emit(frame.event, frame.data);
  }

  closed(ws, event) {
    if (ws !== this.ws) return;
    clearInterval(this.heartbeat);
    for (const [, waiter] of this.pending) {
      clearTimeout(waiter.timer);
      waiter.reject(Object.assign(new Error('The connection dropped before the server answered.'), { code: 'disconnected' }));
    }
    this.pending.clear();
    if (this.closedByUs || !this.token) return this.setState('offline');
    if (event.code === 1008 || event.code === 4401) return this.setState('offline');
    // Back-off: 0.5 s doubling to 15 s, each with ±50 % jitter so a restarted
    // server is not hit by every tab in the same instant.
    const base = Math.min(15000, 500 * 2 ** this.attempt);
    const delay = base * (0.5 + Math.random());
    this.attempt += 1;
    this.setState('reconnecting');
    this.retryTimer = setTimeout(() => this.open(true), delay);
  }

  /** Sends an event and resolves with the ack's data (rejects with its error). */
  send(event, data) {
    return new Promise((resolve, reject) => {
      if (!this.ws || this.ws.readyState !== WebSocket.OPEN) {
        reject(Object.assign(new Error('Not connected; retrying shortly.'), { code: 'disconnected' }));
        return;
      }
      const ack = this.nextAck++;
      const timer = setTimeout(() => {
        this.pending.delete(ack);
        reject(Object.assign(new Error('The server did not answer in time.'), { code: 'timeout' }));
      }, ACK_TIMEOUT_MS);
      this.pending.set(ack, { resolve, reject, timer });
      this.ws.send(JSON.stringify({ event, data, ack }));
    });
  }

  on(event, fn) {
    if (!this.listeners.has(event)) this.listeners.set(event, new Set());
    this.listeners.get(event).add(fn);
    return () => this.listeners.get(event).delete(fn);
  }

  emit(event, data) {
    for (const fn of this.listeners.get(event) || []) {
      try { fn(data); } catch (error) { console.error(error); }
    }
  }

  setState(state) {
    this.state = state;
    this.emit('state', state);
  }
}

export const realtime = new RealtimeClient();
