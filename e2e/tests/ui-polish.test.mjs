// Issue 15, third batch, in a real browser: keyboard-only use with focus at
// the top after signing in, page titles and the favicon, safe links in chat,
// toasts that stay few, move nothing and cover no control on a phone, the
// calendar's month view in the viewer's time zone, and desktop
// notifications asked for only after a click.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { shot } from '../support/browser.mjs';
import { stage } from '../support/stage.mjs';
import { courseWith, rest, schedule, signUp } from '../support/classroom.mjs';

const { person } = stage();

/** Presses Tab (or Shift+Tab) until `reached` holds in the page; fails after `max` presses. */
async function tabTo(page, reached, { back = false, max = 80 } = {}) {
  for (let i = 0; i < max; i += 1) {
    await page.keyboard.press(back ? 'Shift+Tab' : 'Tab');
    if (await page.evaluate(reached)) return;
  }
  throw new Error(`not reached with ${back ? 'Shift+Tab' : 'Tab'}: ${reached}`);
}

const focused = (page) => page.evaluate(() => {
  const el = document.activeElement;
  return { tag: el.tagName.toLowerCase(), id: el.id, cls: el.className, text: el.textContent.trim(), inHeader: Boolean(el.closest('#topbar')) };
});

const overlaps = (a, b) => a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;

test('keyboard only: signing in puts focus at the top of the page; chat and a status change without a mouse; page titles; favicon', { timeout: 120000 }, async () => {
  const grace = await person('Grace');
  const ada = await person('Ada');
  await signUp(grace, 'instructor');
  await signUp(ada, 'student');
  await courseWith(grace, 'Rust 101', [ada]);
  const session = await schedule(grace.page, 'Ownership', 2);
  await grace.page.goto(`/#/sessions/${session.id}`);
  await grace.page.getByRole('heading', { name: 'Ownership' }).waitFor();
  assert.equal(await grace.page.title(), 'Ownership · Classroom', 'a room is titled by its session');

  const { page } = ada;
  const email = await page.evaluate(() => JSON.parse(localStorage.getItem('me')).email);
  assert.equal(await page.title(), 'Dashboard · Classroom');
  await page.goto('/#/sessions');
  await page.getByRole('heading', { name: 'Live sessions' }).waitFor();
  assert.equal(await page.title(), 'Live sessions · Classroom');
  // The favicon the page links to is an SVG served by the binary.
  const icon = await page.evaluate(async () => {
    const link = document.querySelector('link[rel="icon"]');
    const response = await fetch(link.href);
    return [link.getAttribute('href'), response.status, response.headers.get('content-type')];
  });
  assert.deepEqual(icon, ['/favicon.svg', 200, 'image/svg+xml']);

  // Signing out and in again, with the keyboard only.
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  assert.equal(await page.title(), 'Sign in · Classroom');
  await tabTo(page, () => document.activeElement.id === 'email');
  await page.keyboard.type(email);
  await page.keyboard.press('Tab');
  await page.keyboard.type('correct horse');
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { name: 'Hello, Ada' }).waitFor();
  await page.locator('#connection-state[data-state="open"]').waitFor();
  // Item 15: focus is at the start of the page, not inside it.
  await page.waitForFunction(() => document.activeElement.classList.contains('skip-link'), null, { timeout: 5000 }).catch(() => {});
  const first = await focused(page);
  assert.equal(first.cls, 'skip-link', `focus after signing in: ${JSON.stringify(first)}`);
  assert.equal(await page.locator('.skip-link').isVisible(), true);
  await shot(page, '40-focus-after-sign-in.png');
  await page.keyboard.press('Tab');
  const second = await focused(page);
  assert.ok(second.inHeader, `the next stop is the header: ${JSON.stringify(second)}`);
  assert.equal(second.text, 'Classroom');
  // The skip link goes to the page itself (and stays on the dashboard).
  await page.keyboard.press('Shift+Tab');
  await page.keyboard.press('Enter');
  assert.equal((await focused(page)).id, 'main');
  assert.match(page.url(), /#\/dashboard$/);

  // Into the room and a message, by keyboard.
  await tabTo(page, () => document.activeElement.getAttribute('aria-label') === 'Join Ownership');
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { name: 'Ownership' }).waitFor();
  await page.locator('ul[aria-label="Participants"] .person', { hasText: 'Ada' }).waitFor();
  assert.equal(await page.title(), 'Ownership · Classroom');
  await tabTo(page, () => document.activeElement.getAttribute('aria-label') === 'Chat message');
  await page.keyboard.type('Typed without a mouse');
  await page.keyboard.press('Enter');
  await grace.page.locator('.msg .text', { hasText: 'Typed without a mouse' }).waitFor();

  // My status, by keyboard: back up to the header's menu, open it, choose, save.
  await tabTo(page, () => document.activeElement.id === 'status-toggle', { back: true });
  await page.keyboard.press('Enter');
  await page.locator('#my-status:enabled').waitFor();
  await tabTo(page, () => document.activeElement.id === 'my-status');
  for (let i = 0; i < 8 && await page.locator('#my-status').inputValue() !== 'away'; i += 1) await page.keyboard.press('ArrowDown');
  assert.equal(await page.locator('#my-status').inputValue(), 'away');
  await tabTo(page, () => document.activeElement.textContent.trim() === 'Save status');
  await page.keyboard.press('Enter');
  await page.getByText('Status saved.').first().waitFor();
  await grace.page.locator(`ul[aria-label="Participants"] .dot[data-user-id="${ada.id}"][data-status="away"]`).waitFor();
  const [, mine] = await rest(page, 'GET', `/api/presence/user/${ada.id}`);
  assert.equal(mine.status, 'away');

  assert.deepEqual([...grace.problems, ...ada.problems], []);
  await grace.context.close();
  await ada.context.close();
});

test('links in chat: http(s) addresses become safe links, nothing else does, and text stays text', { timeout: 90000 }, async () => {
  const grace = await person('Grace');
  const ada = await person('Ada');
  await signUp(grace, 'instructor');
  await signUp(ada, 'student');
  await courseWith(grace, 'Rust 101', [ada]);
  const session = await schedule(grace.page, 'Ownership', 2);
  for (const who of [grace, ada]) {
    await who.page.goto(`/#/sessions/${session.id}`);
    await who.page.getByRole('heading', { name: 'Ownership' }).waitFor();
    await who.page.locator('ul[aria-label="Participants"] .person', { hasText: who.name }).waitFor();
  }
  const BOOK = 'https://doc.rust-lang.org/book/ch04-01-what-is-ownership.html?x=1&y=2';
  const text = `Read ${BOOK}. Not javascript:window.__xss=1 nor <img src=x onerror="window.__xss=2"> `
    + '<a href="javascript:window.__xss=3">this</a> or [that](javascript:window.__xss=4) or http://example.com/a)';
  const box = ada.page.getByRole('textbox', { name: 'Chat message' });
  await box.fill(text);
  await box.press('Enter');
  await ada.page.getByRole('textbox', { name: 'Chat message' }).fill('javascript:window.__xss=5');
  await ada.page.getByRole('textbox', { name: 'Chat message' }).press('Enter');

  for (const { page } of [grace, ada]) {
    const row = page.locator('.msg', { hasText: 'Read https://' });
    await row.waitFor();
    assert.equal(await row.locator('.text').textContent(), text, 'the text is shown as it was written');
    const links = await row.locator('.text a').evaluateAll((as) => as.map((a) => [a.getAttribute('href'), a.textContent, a.rel, a.target]));
    assert.deepEqual(links, [
      [BOOK, BOOK, 'noopener noreferrer', '_blank'],
      ['http://example.com/a', 'http://example.com/a', 'noopener noreferrer', '_blank'],
    ], 'only the http(s) addresses, without the punctuation after them');
    assert.equal(await row.locator('img').count(), 0, 'no markup from the text');
    const plain = page.locator('.msg', { hasText: 'javascript:window.__xss=5' });
    await plain.waitFor();
    assert.equal(await plain.locator('a').count(), 0, 'a javascript: address is no link');
    assert.equal(await page.locator('.msg a[href^="javascript:" i]').count(), 0);
    assert.equal(await page.evaluate(() => window.__xss), undefined, 'nothing ran');
  }
  await shot(grace.page, '41-chat-links.png');
  assert.deepEqual([...grace.problems, ...ada.problems], []);
  await grace.context.close();
  await ada.context.close();
});

/** The controls on screen (in the page or the header) that a box lies over. */
const controlsUnder = (page, box) => page.evaluate((b) => [...document.querySelectorAll('main a[href], main button, main input, main textarea, main select, #topbar a, #topbar button')]
  .map((el) => [el, el.getBoundingClientRect()])
  .filter(([, r]) => r.width && r.height && r.left < b.x + b.width && b.x < r.right && r.top < b.y + b.height && b.y < r.bottom)
  .map(([el]) => el.getAttribute('aria-label') || el.textContent.trim() || el.tagName), box);

/** The toasts' box on screen (viewport coordinates). */
const stackBox = (page) => page.evaluate(() => {
  const r = document.getElementById('toasts').getBoundingClientRect();
  return { x: r.x, y: r.y, width: r.width, height: r.height };
});

test('toasts: a few at a time, closable, gone by themselves at desktop and 390 px; on a phone they move nothing and cover no control in use', { timeout: 90000 }, async () => {
  const grace = await person('Grace');
  const ada = await person('Ada');
  await signUp(grace, 'instructor');
  await signUp(ada, 'student');
  await courseWith(grace, 'Rust 101', [ada]);
  const session = await schedule(grace.page, 'Ownership', 2);
  const { page } = ada;
  await page.goto(`/#/sessions/${session.id}`);
  await page.getByRole('heading', { name: 'Ownership' }).waitFor();
  await page.locator('ul[aria-label="Participants"] .person', { hasText: 'Ada' }).waitFor();
  const burst = (n) => page.evaluate(async (count) => {
    const { toast } = await import('/js/components/toasts.js');
    for (let i = 1; i <= count; i += 1) toast(`Something happened (${i} of ${count}).`);
  }, n);
  const toasts = page.locator('.toast');
  const goneByThemselves = () => page.waitForFunction(() => document.querySelectorAll('.toast').length === 0, null, { timeout: 10000 });

  await burst(5);
  assert.equal(await toasts.count(), 3, 'three at most on a desktop');
  assert.match(await toasts.last().textContent(), /5 of 5/, 'the newest kept');
  await toasts.first().getByRole('button', { name: 'Dismiss' }).click();
  assert.equal(await toasts.count(), 2, 'closed by hand');
  await goneByThemselves();

  await page.setViewportSize({ width: 390, height: 800 });
  // At the top of the page: nothing moves when they come (no control jumps
  // away from a finger about to press it), and they cover no control.
  await page.evaluate(() => window.scrollTo(0, 0));
  const leave = page.getByRole('button', { name: 'Leave' });
  const before = await leave.boundingBox();
  await burst(5);
  assert.equal(await toasts.count(), 2, 'two at most on a phone');
  assert.deepEqual(await leave.boundingBox(), before, 'the page did not move under the toasts');
  assert.deepEqual(await controlsUnder(page, await stackBox(page)), [], 'no control under the toasts at the top of the page');
  await shot(page, '42-toasts-phone-top.png');

  // Scrolled so that Leave is at the top of the screen: not covered.
  await leave.evaluate((el) => el.scrollIntoView({ block: 'start' }));
  await burst(3);
  const atLeave = await controlsUnder(page, await stackBox(page));
  assert.ok(!atLeave.includes('Leave'), `the toasts cover Leave: ${JSON.stringify(atLeave)}`);
  assert.deepEqual(atLeave, [], 'no control under the toasts');

  // Typing in the chat box at the bottom of the screen: the box and Send stay clear.
  const box = page.getByRole('textbox', { name: 'Chat message' });
  await box.evaluate((el) => el.scrollIntoView({ block: 'end' }));
  await box.focus();
  await burst(4);
  assert.equal(await toasts.count(), 2);
  for (const control of [box, page.getByRole('button', { name: 'Send' })]) {
    const b = await control.boundingBox();
    for (const t of await toasts.all()) {
      const tb = await t.boundingBox();
      assert.ok(!overlaps(tb, b), `a toast covers a control: ${JSON.stringify([tb, b])}`);
    }
  }
  assert.deepEqual(await controlsUnder(page, await stackBox(page)), [], 'no control under the toasts');
  await shot(page, '43-toasts-phone-scrolled.png');
  await goneByThemselves();

  assert.deepEqual([...grace.problems, ...ada.problems], []);
  await grace.context.close();
  await ada.context.close();
});

test('calendar: a month view, in the viewer\'s time zone, named on the page, at desktop and 390 px; the private feed', { timeout: 90000 }, async () => {
  const grace = await person('Grace', { timezoneId: 'Asia/Tokyo' });
  await signUp(grace, 'instructor');
  const { page } = grace;
  await page.getByLabel('New course title').fill('Rust 101');
  await page.getByRole('button', { name: 'Create course' }).click();
  await page.locator('.course-code').first().waitFor();
  // Through the API: the dialog would take this process's local times for Tokyo's.
  const [, courses] = await rest(page, 'GET', '/api/courses');
  const soon = Date.now() + 2 * 60000;
  const later = Date.now() + 32 * 24 * 3600000;
  for (const [title, at] of [['Ownership', soon], ['Lifetimes', later]]) {
    const [status, made] = await rest(page, 'POST', '/api/live-sessions', {
      courseId: courses[0].id, title, scheduledStartTime: new Date(at).toISOString(), scheduledEndTime: new Date(at + 3600000).toISOString(),
    });
    assert.equal(status, 201, JSON.stringify(made));
  }

  await page.goto('/#/sessions');
  await page.locator('#calendar-zone', { hasText: 'Times in your time zone: Asia/Tokyo' }).waitFor();
  await page.getByRole('button', { name: 'Month', exact: true }).click();
  const calendar = page.getByRole('list', { name: 'Month calendar' });
  await calendar.waitFor();
  const monthName = (ms) => page.evaluate((t) => new Date(t).toLocaleDateString(undefined, { month: 'long', year: 'numeric' }), ms);
  assert.equal(await page.locator('#calendar-range').textContent(), await monthName(Date.now()));
  assert.equal(await page.getByRole('button', { name: 'Month', exact: true }).getAttribute('aria-pressed'), 'true');
  const daysInMonth = await page.evaluate(() => { const d = new Date(); return new Date(d.getFullYear(), d.getMonth() + 1, 0).getDate(); });
  assert.equal(await calendar.locator('li.day').count(), daysInMonth, 'every day of the month');
  // Today's session, at its time in Tokyo.
  const today = calendar.locator('li.day[aria-current="date"]');
  const event = today.locator('a.event', { hasText: 'Ownership' });
  await event.waitFor();
  const [, list] = await rest(page, 'GET', '/api/live-sessions');
  const tokyoClock = await page.evaluate((iso) => new Date(iso).toLocaleTimeString(undefined, { timeZone: 'Asia/Tokyo', hour: '2-digit', minute: '2-digit' }),
    list.find((s) => s.title === 'Ownership').scheduledStartTime);
  assert.ok((await event.textContent()).startsWith(`${tokyoClock} Ownership`), `the time in the viewer's zone (${tokyoClock}): ${await event.textContent()}`);
  // The first day sits under its weekday.
  const firstColumn = await calendar.locator('li.day').first().evaluate((li) => getComputedStyle(li).gridColumnStart);
  const expectedColumn = await page.evaluate(() => { const d = new Date(); return String(((new Date(d.getFullYear(), d.getMonth(), 1).getDay() + 6) % 7) + 1); });
  assert.equal(firstColumn, expectedColumn);
  await shot(page, '44-calendar-month.png');

  // The session 32 days on, a month or two later (in Tokyo).
  const firsts = await page.evaluate((t) => {
    const now = new Date();
    const then = new Date(t);
    const iso = (d) => `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-01`;
    const months = (then.getFullYear() - now.getFullYear()) * 12 + then.getMonth() - now.getMonth();
    return Array.from({ length: months }, (_, i) => iso(new Date(now.getFullYear(), now.getMonth() + i + 1, 1)));
  }, later);
  for (const first of firsts) {
    await page.getByRole('button', { name: 'Next month' }).click();
    await calendar.locator(`li.day[data-date="${first}"]`).waitFor();
  }
  assert.equal(await page.locator('#calendar-range').textContent(), await monthName(later));
  await calendar.locator('a.event', { hasText: 'Lifetimes' }).waitFor();
  await page.getByRole('button', { name: 'This month' }).click();
  await today.locator('a.event', { hasText: 'Ownership' }).waitFor();

  // At 390 px: only the days with something on (and today), nothing wider than the screen.
  await page.setViewportSize({ width: 390, height: 800 });
  const shown = await calendar.locator('li.day').evaluateAll((days) => days
    .filter((d) => getComputedStyle(d).display !== 'none')
    .map((d) => [d.querySelectorAll('a.event').length, d.getAttribute('aria-current')]));
  assert.ok(shown.length >= 1 && shown.every(([events, current]) => events > 0 || current === 'date'), JSON.stringify(shown));
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= 390), 'no sideways scrolling');
  await page.locator('#calendar-zone', { hasText: 'Asia/Tokyo' }).waitFor();
  await shot(page, '45-calendar-month-phone.png');

  // The private feed: made here, read by a calendar app without any login, turned off.
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.getByRole('button', { name: 'Make my calendar address' }).click();
  const address = page.getByLabel('Your private calendar address');
  await address.waitFor();
  const url = await address.inputValue();
  assert.match(url, /\/api\/calendar\/feeds\/[0-9a-f]{64}\.ics$/);
  assert.equal(await page.getByRole('link', { name: 'Open in my calendar app' }).getAttribute('href'), url.replace(/^http:/, 'webcal:'));
  const feed = await fetch(url);
  assert.equal(feed.status, 200);
  assert.match(feed.headers.get('content-type'), /^text\/calendar/);
  const ics = await feed.text();
  assert.match(ics, /SUMMARY:Ownership\r\n/);
  assert.match(ics, /SUMMARY:Lifetimes\r\n/);
  await shot(page, '46-calendar-feed.png');
  await page.getByRole('button', { name: 'Turn the feed off' }).click();
  await page.locator('#feed-state', { hasText: 'Your calendar feed is off.' }).waitFor();
  assert.equal((await fetch(url)).status, 404, 'off: the address no longer works');

  assert.deepEqual(grace.problems, []);
  await grace.context.close();
});

/** Stands in for the browser's Notification: records what is asked and shown; "granted" survives a reload. */
function fakeNotifications() {
  let stored = null;
  try { stored = sessionStorage.getItem('fake-notes'); } catch { /* about:blank has no storage */ }
  const log = JSON.parse(stored || '{"asked":0,"shown":[],"permission":"default"}');
  const save = () => { try { sessionStorage.setItem('fake-notes', JSON.stringify(log)); } catch { /* as above */ } };
  window.__notes = log;
  window.Notification = class {
    static get permission() { return log.permission; }
    static async requestPermission() { log.asked += 1; log.permission = 'granted'; save(); return 'granted'; }
    constructor(title, options = {}) { log.shown.push({ title, body: options.body, tag: options.tag }); save(); }
    close() {}
  };
  // The person looks at another window: what reaches this tab goes to the desktop.
  document.hasFocus = () => false;
}

test('desktop notifications: asked for only after a click; "session starting" and "admitted" shown', { timeout: 120000 }, async () => {
  const grace = await person('Grace');
  const ada = await person('Ada');
  await ada.context.addInitScript(fakeNotifications);
  await signUp(grace, 'instructor');
  await signUp(ada, 'student');
  await courseWith(grace, 'Rust 101', [ada]);
  const session = await schedule(grace.page, 'Ownership', 2);
  const { page } = ada;
  await page.goto('/#/dashboard');
  const turnOn = page.getByRole('button', { name: 'Turn on desktop notifications' });
  await turnOn.waitFor();
  assert.equal(await page.evaluate(() => window.__notes.asked), 0, 'not asked on loading the page');
  await turnOn.click();
  await page.locator('#desktop-notify-state', { hasText: 'Desktop notifications are on' }).waitFor();
  assert.equal(await page.evaluate(() => window.__notes.asked), 1, 'asked once, on the click');

  // The session starts while Ada is on her dashboard.
  await grace.page.goto(`/#/sessions/${session.id}`);
  await grace.page.getByRole('button', { name: 'Start session' }).click();
  const tag = `session_reminder_started:${session.id}`;
  await page.waitForFunction((t) => window.__notes.shown.some((n) => n.tag === t), tag);
  const started = await page.evaluate((t) => window.__notes.shown.find((n) => n.tag === t), tag);
  assert.match(started.title, /Ownership/);

  // Office hours: Ada waits, goes on with something else, and is admitted.
  await grace.page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Office hours' }).click();
  await grace.page.getByRole('button', { name: 'Open the queue' }).click();
  await grace.page.locator('#oh-open-state', { hasText: 'Open' }).waitFor();
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Office hours' }).click();
  const card = page.getByRole('article', { name: 'Grace' });
  await card.getByLabel('Your question').fill('Why does the borrow checker complain?');
  await card.getByRole('button', { name: 'Join the queue' }).click();
  await card.getByRole('status', { name: 'Your place with Grace' }).waitFor();
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Groups' }).click();
  await grace.page.getByRole('button', { name: 'Admit Ada' }).click();
  await page.waitForFunction(() => window.__notes.shown.some((n) => n.title === 'Your instructor is ready for you'));
  const admitted = await page.evaluate(() => window.__notes.shown.find((n) => n.title === 'Your instructor is ready for you'));
  assert.match(admitted.tag, /^admitted:[0-9a-f-]{36}$/);
  assert.equal(await page.evaluate(() => window.__notes.asked), 1, 'never asked again');

  assert.deepEqual([...grace.problems, ...ada.problems], []);
  await grace.context.close();
  await ada.context.close();
});
