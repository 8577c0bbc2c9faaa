#!/usr/bin/env python3
# Usage: benches/load/flood.py PORT TOKEN SERVER_PID binary|text MIB (docs/benchmarks.md).
# One client floods empty binary frames (and, second run, bad JSON text
# frames) without ever reading; prints the server's RSS before and after.
import base64, os, socket, sys, time
port, token, pid, kind, mib = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
def rss():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) // 1024
s = socket.create_connection(("127.0.0.1", port))
key = base64.b64encode(os.urandom(16)).decode()
s.sendall((f"GET /ws?token={token} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
time.sleep(0.2)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # and never read
if kind == "binary":
    frame = bytes([0x82, 0x80, 1, 2, 3, 4])
else:
    payload = b"{not json"
    mask = bytes([1, 2, 3, 4])
    frame = bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
chunk = frame * ((1 << 20) // len(frame))
before = rss(); sent = 0; peak = before
try:
    for _ in range(mib):
        s.sendall(chunk); sent += len(chunk); peak = max(peak, rss())
except OSError as err:
    print("cut by the server after", sent >> 20, "MiB:", err)
time.sleep(1); after = rss()
print(f"{kind}: sent {sent >> 20} MiB; server RSS before {before} MiB, peak {max(peak, after)} MiB, after {after} MiB")
