// The plan's original stack, to measure ours against (issue 17): a Node
// Socket.IO server doing what `loadgen --socket-io` asks of ours in the
// seed-shaped scenarios. It joins a socket to its live session's room with
// the participant list, and answers `session-message` with the broadcast and
// an ack of the same shapes as ours. It keeps nothing: no database, no
// permissions beyond the token, so it measures Socket.IO's transport and
// fan-out alone, while ours also stores every message before its ack.
//
//   node server.mjs TOKENS.json      (TOKENS.json from `classroom seed-load`)
//   PORT (default 18090) is where it listens, on 127.0.0.1.
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { Server } from 'socket.io';

const tokens = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const users = new Map(tokens.users.map((user) => [user.token, user]));
const port = Number(process.env.PORT || 18090);

const http = createServer((_, response) => { response.writeHead(404); response.end(); });
const io = new Server(http, { transports: ['websocket'], serveClient: false });

io.use((socket, next) => {
  const user = users.get(socket.handshake.auth?.token);
  if (!user) return next(new Error('unauthorized'));
  socket.data.user = user;
  next();
});

const person = (user) => ({ userId: user.id, name: user.email, role: 'student' });

io.on('connection', (socket) => {
  const { user } = socket.data;
  socket.emit('connected', { userId: user.id, connectionId: socket.id });

  socket.on('join-live-session', async (data, ack) => {
    const sessionId = data?.sessionId;
    await socket.join(sessionId);
    const joinedAt = new Date().toISOString();
    const participants = [...(io.sockets.adapter.rooms.get(sessionId) ?? [])]
      .map((id) => io.sockets.sockets.get(id)?.data.user)
      .filter(Boolean)
      .map((member) => ({ ...person(member), joinedAt }));
    socket.to(sessionId).emit('user-joined', { sessionId, roomId: sessionId, user: person(user), joinedAt });
    ack?.({ ok: true, data: { session: { id: sessionId, status: 'active' }, participants, questions: [] } });
  });

  socket.on('session-message', (data, ack) => {
    const sessionId = data?.sessionId;
    if (!socket.rooms.has(sessionId)) {
      ack?.({ ok: false, error: { code: 'forbidden', message: 'Join the session first.' } });
      return;
    }
    const message = {
      id: randomUUID(), roomId: sessionId, senderId: user.id, senderName: user.email,
      message: data.message, messageType: 'text', createdAt: new Date().toISOString(),
      clientMsgId: data.clientMsgId ?? null, editedAt: null, deleted: false,
    };
    io.to(sessionId).emit('new-message', { sessionId, roomId: sessionId, message });
    ack?.({ ok: true, data: { message } });
  });
});

http.listen(port, '127.0.0.1', () => console.error(`listening on http://127.0.0.1:${port}`));
