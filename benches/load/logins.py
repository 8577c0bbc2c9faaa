#!/usr/bin/env python3
# Usage: benches/load/logins.py PORT N: N sign-ins with unknown emails at once (docs/benchmarks.md).
import sys, threading, json, urllib.request, collections
port, n = int(sys.argv[1]), int(sys.argv[2])
codes = collections.Counter(); lock = threading.Lock()
def one(i):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/auth/login", data=json.dumps({"email": f"x{i}@example.com", "password": "nope nope"}).encode(), headers={"content-type": "application/json"})
    try:
        code = urllib.request.urlopen(req, timeout=60).status
    except urllib.error.HTTPError as e:
        code = e.code
    except Exception as e:
        code = type(e).__name__
    with lock: codes[code] += 1
ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
[t.start() for t in ts]; [t.join() for t in ts]
print(dict(codes))
