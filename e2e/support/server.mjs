// Starts the real server binary on a random port with a fresh SQLite file.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export async function startServer(extraEnv = {}) {
  const bin = process.env.CLASSROOM_BIN || resolve(import.meta.dirname, '../../target/debug/classroom');
  const dir = mkdtempSync(join(tmpdir(), 'classroom-e2e-'));
  const child = spawn(bin, [], {
    env: {
      ...process.env,
      DATABASE_URL: join(dir, 'e2e.db'),
      BIND_ADDR: '127.0.0.1:0',
      RUST_LOG: 'info,actix_web=warn',
      ...extraEnv,
    },
    stdio: ['ignore', 'inherit', 'pipe'],
  });
  const log = [];
  const url = await new Promise((resolveUrl, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${log.join('')}`)), 30000);
    child.stderr.on('data', (chunk) => {
      const text = chunk.toString();
      log.push(text);
      const match = text.match(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
      if (match) {
        clearTimeout(timer);
        resolveUrl(match[1]);
      }
    });
    child.on('exit', (code) => reject(new Error(`server exited with ${code}:\n${log.join('')}`)));
  });
  return {
    url,
    log,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((done) => child.once('exit', done));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
