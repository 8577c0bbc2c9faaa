// The official socket.io-client against /socket.io/ (issue 17): the events of
// the contract through Socket.IO, beside a native /ws client in the same room,
// with the client's default options (HTTP long-polling, then the upgrade to
// WebSocket), WebSocket only, and polling only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { io } from 'socket.io-client';
import WebSocket from 'ws';
import { startServer } from '../support/server.mjs';

/** A REST call: [status, body]. */
async function call(url, method, path, token, body) {
  const headers = { Accept: 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  return [response.status, text ? JSON.parse(text) : null];
}

async function register(url, name, role) {
  const email = `${name.toLowerCase()}-${Date.now()}-${Math.random().toString(36).slice(2)}@example.com`;
  const [status, body] = await call(url, 'POST', '/api/auth/register', null,
    { email, password: 'correct horse', name, role });
  assert.equal(status, 201, `${name} registered: ${JSON.stringify(body)}`);
  return { name, token: body.token, id: body.user.id };
}

/** The ways a client may be set up: `io(url, options)`. */
const TRANSPORTS = {
  'default options (polling, then the upgrade)': {},
  'WebSocket only': { transports: ['websocket'] },
  'polling only': { transports: ['polling'] },
};

/** A socket.io-client socket, connected; with default options, also upgraded. */
async function connect(url, who, options) {
  const socket = io(url, { ...options, auth: { token: who.token }, reconnection: false });
  const pushes = recorder(socket);
  await new Promise((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('connect_error', reject);
  });
  const engine = socket.io.engine;
  if (!options.transports) {
    // A client with default options connects over polling first, then switches.
    if (engine.transport.name !== 'websocket') await new Promise((resolve) => engine.once('upgrade', resolve));
    assert.equal(engine.transport.name, 'websocket');
  } else {
    assert.equal(engine.transport.name, options.transports[0]);
  }
  return { socket, pushes, who };
}

/** Every event a socket gets, to wait for one matching a test. */
function recorder(socket) {
  const seen = [];
  const waiters = [];
  socket.onAny((event, data) => {
    seen.push({ event, data });
    for (const waiter of [...waiters]) waiter();
  });
  return {
    seen,
    next(event, matches = () => true, timeoutMs = 5000) {
      return new Promise((resolve, reject) => {
        const find = () => seen.find((push) => push.event === event && matches(push.data));
        const check = () => {
          const found = find();
          if (!found) return;
          waiters.splice(waiters.indexOf(check), 1);
          clearTimeout(timer);
          resolve(found.data);
        };
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(check), 1);
          reject(new Error(`no ${event} within ${timeoutMs} ms; got ${seen.map((p) => p.event).join(', ')}`));
        }, timeoutMs);
        waiters.push(check);
        check();
      });
    },
  };
}

/** An event with an ack: our ack body `{ok, data}` or `{ok: false, error}`. */
async function ask(client, event, data) {
  return client.socket.timeout(5000).emitWithAck(event, data);
}

async function ok(client, event, data) {
  const answer = await ask(client, event, data);
  assert.equal(answer.ok, true, `${client.who.name} ${event}: ${JSON.stringify(answer)}`);
  return answer.data;
}

/** A native /ws client, for the mixed room. */
async function nativeClient(url, who) {
  const ws = new WebSocket(`${url.replace('http', 'ws')}/ws?token=${who.token}`);
  const pending = new Map();
  const seen = [];
  let nextAck = 1;
  ws.on('message', (raw) => {
    const frame = JSON.parse(raw.toString());
    if (frame.ack !== undefined) pending.get(frame.ack)?.(frame);
    else seen.push(frame);
  });
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  return {
    ws,
    seen,
    send(event, data) {
      const ack = nextAck++;
      return new Promise((resolve) => {
        pending.set(ack, resolve);
        ws.send(JSON.stringify({ event, data, ack }));
      });
    },
  };
}

async function waitUntil(what, check, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

for (const [transport, options] of Object.entries(TRANSPORTS)) {
  test(`socket.io-client, ${transport}, goes through a live session beside a native client`, async () => {
    await liveSession(options);
  });
}

async function liveSession(options) {
  const server = await startServer();
  const clients = [];
  try {
    const { url } = server;
    const teacher = await register(url, 'Grace', 'instructor');
    const students = [await register(url, 'Ada', 'student'), await register(url, 'Alan', 'student'),
      await register(url, 'Edsger', 'student')];
    const [, course] = await call(url, 'POST', '/api/courses', teacher.token, { title: 'Compilers' });
    for (const student of students) {
      const [status] = await call(url, 'POST', `/api/courses/${course.id}/enroll`, student.token);
      assert.equal(status, 201);
    }
    const start = new Date(Date.now() + 60_000);
    const [created, session] = await call(url, 'POST', '/api/live-sessions', teacher.token, {
      courseId: course.id, title: 'Parsing', scheduledStartTime: start.toISOString(),
      scheduledEndTime: new Date(start.getTime() + 3_600_000).toISOString(),
    });
    assert.equal(created, 201, JSON.stringify(session));
    assert.equal((await call(url, 'POST', `/api/live-sessions/${session.id}/start`, teacher.token))[0], 200);

    const grace = await connect(url, teacher, options);
    const ada = await connect(url, students[0], options);
    const alan = await connect(url, students[1], options);
    clients.push(grace, ada, alan);
    // The first event of the contract comes as a Socket.IO event.
    assert.equal((await ada.pushes.next('connected')).userId, students[0].id);

    const sessionId = session.id;
    await ok(grace, 'join-live-session', { sessionId });
    await ok(ada, 'join-live-session', { sessionId });
    const joined = await ok(alan, 'join-live-session', { sessionId });
    assert.deepEqual(joined.participants.map((p) => p.name).sort(), ['Ada', 'Alan', 'Grace']);
    await grace.pushes.next('user-joined', (data) => data.user.name === 'Alan');

    // A native client in the same room sees the Socket.IO clients, and they it.
    const edsger = await nativeClient(url, students[2]);
    const nativeJoin = await edsger.send('join-live-session', { sessionId });
    assert.equal(nativeJoin.ok, true, JSON.stringify(nativeJoin));
    assert.deepEqual(nativeJoin.data.participants.map((p) => p.name).sort(), ['Ada', 'Alan', 'Edsger', 'Grace']);
    await ada.pushes.next('user-joined', (data) => data.user.name === 'Edsger');

    // Chat: the ack is the stored message; everyone, native included, gets it.
    const sent = await ok(ada, 'session-message', { sessionId, message: 'Is LL(1) enough?', clientMsgId: 'ada-1' });
    assert.equal(sent.message.message, 'Is LL(1) enough?');
    await grace.pushes.next('new-message', (data) => data.message.id === sent.message.id);
    await waitUntil('the native client gets the message',
      () => edsger.seen.some((f) => f.event === 'new-message' && f.data.message.id === sent.message.id));
    const reply = await edsger.send('session-message', { sessionId, message: 'Use LR.' });
    assert.equal(reply.ok, true);
    await alan.pushes.next('new-message', (data) => data.message.id === reply.data.message.id);

    // Typing reaches the others, not the typist.
    await ok(alan, 'typing-in-session', { sessionId });
    await grace.pushes.next('user-typing', (data) => data.userId === students[1].id);
    assert.ok(!alan.pushes.seen.some((p) => p.event === 'user-typing'));

    // Q&A: ask, upvote, answer; the rules answer through the ack.
    const { question } = await ok(ada, 'ask-question', { sessionId, question: 'Exam scope?' });
    await ok(alan, 'upvote-question', { sessionId, questionId: question.id });
    const ownVote = await ask(ada, 'upvote-question', { sessionId, questionId: question.id });
    assert.deepEqual([ownVote.ok, ownVote.error.code], [false, 'own_question']);
    const notTheTeacher = await ask(alan, 'answer-question', { sessionId, questionId: question.id });
    assert.equal(notTheTeacher.error.code, 'forbidden');
    await ok(grace, 'answer-question', { sessionId, questionId: question.id });
    await ada.pushes.next('questions-updated');

    // A bad event keeps its ack: one answer, the socket stays.
    const unknown = await ask(ada, 'fly-away', {});
    assert.equal(unknown.error.code, 'unknown_event');
    const notJoined = await ask(ada, 'session-message', { sessionId: crypto.randomUUID(), message: 'x' });
    assert.equal(notJoined.error.code, 'forbidden');
    // Without an ack, a failure is an `error` event.
    ada.socket.emit('session-message', { sessionId });
    assert.equal((await ada.pushes.next('error')).code, 'invalid_data');

    // Presence: a status set through Socket.IO reaches a classmate.
    await ok(alan, 'update-presence', { status: 'busy' });
    await ada.pushes.next('presence-updated', (data) => data.userId === students[1].id && data.status === 'busy');

    // Leave: the others are told.
    await ok(alan, 'leave-live-session', { sessionId });
    await grace.pushes.next('user-left', (data) => data.userId === students[1].id);

    // A reconnect catches up with sinceMessageId: what was said while away is pushed.
    ada.socket.disconnect();
    await grace.pushes.next('user-left', (data) => data.userId === students[0].id);
    const missed = await ok(grace, 'session-message', { sessionId, message: 'Said while Ada was away' });
    const back = await connect(url, students[0], options);
    clients.push(back);
    await ok(back, 'join-live-session', { sessionId, sinceMessageId: sent.message.id });
    await back.pushes.next('new-message', (data) => data.message.id === missed.message.id);
    assert.ok(back.pushes.seen.some((p) => p.event === 'new-message' && p.data.message.id === reply.data.message.id));
    edsger.ws.close();

    // Office hours: a queue joined, an admission and its room, through Socket.IO.
    assert.equal((await call(url, 'POST', '/api/office-hours/open', teacher.token))[0], 200);
    const { entry } = await ok(alan, 'join-office-hours-queue', { instructorId: teacher.id, question: 'Left recursion?' });
    await grace.pushes.next('student-joined-queue', (data) => data.entry.id === entry.id);
    const admission = await ok(grace, 'admit-student', { queueId: entry.id });
    const admitted = await alan.pushes.next('admitted-to-office-hours', (data) => data.queueId === entry.id);
    assert.equal(admitted.roomId, admission.roomId);
    await ok(grace, 'join-room', { roomId: admission.roomId });
    await ok(alan, 'join-room', { roomId: admission.roomId });
    const help = await ok(grace, 'room-message', { roomId: admission.roomId, message: 'Rewrite it as a loop.' });
    await alan.pushes.next('new-message', (data) => data.message.id === help.message.id);
    await ok(grace, 'complete-office-hours', { queueId: entry.id });
    await alan.pushes.next('office-hours-completed');

    // A study group's room: chat with acks, then edit, read by a classmate.
    const [madeGroup, group] = await call(url, 'POST', '/api/study-groups', students[0].token,
      { name: 'Parser club', courseId: course.id });
    assert.equal(madeGroup, 201, JSON.stringify(group));
    assert.equal((await call(url, 'POST', `/api/study-groups/${group.id}/join`, students[1].token))[0], 200);
    const inGroup = await ok(back, 'join-room', { roomId: group.chatRoomId });
    assert.equal(inGroup.room.type, 'study_group');
    await ok(alan, 'join-room', { roomId: group.chatRoomId });
    const note = await ok(back, 'room-message', { roomId: group.chatRoomId, message: 'Meet at 5?' });
    await alan.pushes.next('new-message', (data) => data.message.id === note.message.id);
    await ok(back, 'edit-message', { roomId: group.chatRoomId, messageId: note.message.id, message: 'Meet at 6?' });
    const edited = await alan.pushes.next('message-edited', (data) => data.message.id === note.message.id);
    assert.equal(edited.message.message, 'Meet at 6?');
    const stranger = await ask(grace, 'room-message', { roomId: group.chatRoomId, message: 'hi' });
    assert.equal(stranger.error.code, 'forbidden');
  } finally {
    for (const client of clients) client.socket.disconnect();
    await server.stop();
  }
}

test('socket.io-client: a bad token and another namespace get connect_error with our error', async () => {
  const server = await startServer();
  try {
    const refused = io(server.url, { transports: ['websocket'], auth: { token: 'not-a-token' }, reconnection: false });
    const error = await new Promise((resolve) => refused.once('connect_error', resolve));
    assert.equal(error.data.code, 'unauthorized', JSON.stringify(error.data));
    refused.close();

    const noAuth = io(server.url, { transports: ['websocket'], reconnection: false });
    const missing = await new Promise((resolve) => noAuth.once('connect_error', resolve));
    assert.equal(missing.data.code, 'unauthorized');
    noAuth.close();

    const who = await register(server.url, 'Barbara', 'student');
    const admin = io(`${server.url}/admin`, { transports: ['websocket'], auth: { token: who.token }, reconnection: false });
    const elsewhere = await new Promise((resolve) => admin.once('connect_error', resolve));
    assert.equal(elsewhere.data.code, 'unknown_namespace');
    admin.close();

    // With default options the refusal comes over polling, the same.
    const polling = io(server.url, { auth: { token: 'not-a-token' }, reconnection: false });
    const overPolling = await new Promise((resolve) => polling.once('connect_error', resolve));
    assert.equal(overPolling.data.code, 'unauthorized', JSON.stringify(overPolling.data));
    polling.close();
  } finally {
    await server.stop();
  }
});
