// What every end-to-end file needs: the server and Chromium, started
// before its tests and stopped after them.
import { after, before } from 'node:test';

import { launch, person } from './browser.mjs';
import { startServer } from './server.mjs';

/** Registers the hooks; `person(name, options)` opens a page for a new user. */
export function stage() {
  let server;
  let browser;
  before(async () => {
    server = await startServer();
    browser = await launch();
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });
  return { person: (name, options) => person(browser, server.url, name, options) };
}
