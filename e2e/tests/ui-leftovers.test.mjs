// Issue 15's leftovers, in a real browser; each test says what it checks.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { shot } from '../support/browser.mjs';
import { stage } from '../support/stage.mjs';
import { courseWith, schedule, signUp } from '../support/classroom.mjs';

const { person } = stage();
/** Characters that only an emoji font draws (shown as a box without one). */
const emojiOnPage = (page) => page.evaluate(() => (document.body.innerText.match(/\p{Extended_Pictographic}/gu) || [])
  .filter((c) => !'©®™'.includes(c)));

/** Checks an empty state: an SVG icon, what is missing, a hint; returns its action controls' names. */
async function emptyStateIn(container, label) {
  const state = container.locator('.empty-state').first();
  await state.waitFor();
  const icon = state.locator('svg.icon');
  assert.equal(await icon.count(), 1, `${label}: one icon`);
  const box = await icon.boundingBox();
  assert.ok(box && box.width >= 16 && box.height >= 16, `${label}: the icon shows: ${JSON.stringify(box)}`);
  assert.ok((await state.locator('.empty-title').textContent()).trim().length > 0, `${label}: says what is missing`);
  assert.ok((await state.locator('.empty-hint').textContent()).trim().length > 10, `${label}: says what to do`);
  return state.locator('.empty-actions a, .empty-actions button').allTextContents();
}

test('empty states: a new student\'s dashboard and groups page say what is missing and what to do next, with SVG icons', { timeout: 90000 }, async () => {
  const ada = await person('Ada');
  await signUp(ada, 'student');
  const { page } = ada;
  await page.getByRole('heading', { name: 'Hello, Ada' }).waitFor();
  const section = (name) => page.getByRole('region', { name });

  const actions = {};
  for (const name of ['Upcoming sessions', 'My study groups', 'Office hours', 'Notifications', 'Classmates', 'My courses']) {
    actions[name] = await emptyStateIn(section(name), name);
  }
  assert.deepEqual(actions['Upcoming sessions'], ['Type a course code'], 'no course yet: enrolling is the next step');
  assert.deepEqual(actions['My study groups'], ['Find or create a group']);
  assert.deepEqual(actions['Office hours'], ['Type a course code']);
  await section('Upcoming sessions').getByRole('button', { name: 'Type a course code' }).click();
  assert.equal(await page.evaluate(() => document.activeElement.id), 'course-code', 'the next step is one click away');
  assert.deepEqual(await emojiOnPage(page), []);
  await shot(page, '54-dashboard-empty.png');
  await page.setViewportSize({ width: 390, height: 844 });
  await shot(page, '55-dashboard-empty-phone.png');
  await page.setViewportSize({ width: 1280, height: 900 });

  await section('My study groups').getByRole('link', { name: 'Find or create a group' }).click();
  await page.getByRole('heading', { name: 'Study groups' }).waitFor();
  const mine = page.getByRole('region', { name: 'My groups' });
  assert.deepEqual(await emptyStateIn(mine, 'My groups'), ['Create a group', 'Find a group']);
  await mine.getByText('You are in no study group yet.').waitFor();
  await emptyStateIn(page.getByRole('region', { name: 'Invitations' }), 'Invitations');
  await mine.getByRole('button', { name: 'Create a group' }).click();
  assert.equal(await page.evaluate(() => document.activeElement.id), 'group-name');
  await mine.getByRole('button', { name: 'Find a group' }).click();
  assert.equal(await page.evaluate(() => document.activeElement.id), 'group-search');
  assert.deepEqual(await emojiOnPage(page), []);
  await page.setViewportSize({ width: 390, height: 844 });
  await shot(page, '56-groups-empty-phone.png');
  await page.setViewportSize({ width: 1280, height: 900 });

  // Icon buttons draw an SVG, not a character a font may lack.
  await page.goto('/#/sessions');
  for (const name of ['Previous week', 'Next week']) {
    const button = page.getByRole('button', { name });
    assert.equal(await button.locator('svg').count(), 1, `${name}: an SVG`);
    assert.equal((await button.textContent()).trim(), '', `${name}: no symbol character`);
  }
  await emptyStateIn(page.getByRole('region', { name: 'List' }), 'All sessions');
  await page.evaluate(async () => (await import('/js/components/toasts.js')).toast('Saved.'));
  const dismiss = page.locator('.toast').getByRole('button', { name: 'Dismiss' });
  assert.equal(await dismiss.locator('svg').count(), 1);
  assert.equal((await dismiss.textContent()).trim(), '');
  assert.deepEqual(await emojiOnPage(page), []);

  assert.deepEqual(ada.problems, []);
  await ada.context.close();
});

test('an empty office-hours queue says so and what happens next; an instructor without courses is shown the first step', { timeout: 90000 }, async () => {
  const grace = await person('Grace');
  await signUp(grace, 'instructor');
  const { page } = grace;
  await page.getByRole('heading', { name: 'Hello, Grace' }).waitFor();
  assert.deepEqual(await emptyStateIn(page.getByRole('region', { name: 'Upcoming sessions' }), 'Upcoming sessions'), ['Schedule a session']);
  await emptyStateIn(page.getByRole('region', { name: 'My courses' }), 'My courses');
  await page.goto('/#/office-hours');
  await page.getByRole('button', { name: 'Open the queue' }).click();
  await page.locator('#oh-open-state', { hasText: 'Open' }).waitFor();
  const queue = page.getByRole('list', { name: 'Students waiting' });
  await emptyStateIn(queue, 'the queue');
  await queue.getByText('Nobody is waiting.').waitFor();
  assert.deepEqual(await emojiOnPage(page), []);
  await shot(page, '57-office-hours-empty-queue.png');
  assert.deepEqual(grace.problems, []);
  await grace.context.close();
});

/** Presses Tab until `reached` holds in the page; fails after `max` presses. */
async function tabTo(page, reached, max = 40) {
  for (let i = 0; i < max; i += 1) {
    await page.keyboard.press('Tab');
    if (await page.evaluate(reached)) return;
  }
  throw new Error(`not reached with Tab: ${reached}`);
}

/** The header's visible controls, grouped into the rows they sit in; and the header's own box and padding. */
const headerLayout = (page) => page.evaluate(() => {
  const topbar = document.getElementById('topbar');
  const items = [...topbar.querySelectorAll('a, button, .conn')]
    .filter((el) => !el.closest('.menu-panel') && !el.closest('.account.open .account-panel'))
    .map((el) => ({ name: el.getAttribute('aria-label') || el.textContent.trim(), box: el.getBoundingClientRect().toJSON() }))
    .filter(({ box }) => box.width > 0 && box.height > 0)
    .sort((a, b) => a.box.top - b.box.top);
  const rows = [];
  for (const item of items) {
    const row = rows.find((r) => item.box.top < r.bottom - 2 && r.top < item.box.bottom - 2);
    if (row) {
      row.items.push(item.name);
      row.top = Math.min(row.top, item.box.top);
      row.bottom = Math.max(row.bottom, item.box.bottom);
    } else {
      rows.push({ top: item.box.top, bottom: item.box.bottom, items: [item.name] });
    }
  }
  const style = getComputedStyle(topbar);
  return {
    rows,
    height: topbar.getBoundingClientRect().height,
    tallest: Math.max(...items.map(({ box }) => box.height)),
    chrome: parseFloat(style.paddingTop) + parseFloat(style.paddingBottom) + parseFloat(style.borderBottomWidth) + (parseFloat(style.rowGap) || 0),
    items: items.map(({ name, box }) => ({ name, width: box.width, height: box.height, right: box.right })),
  };
});

test('the header keeps to two rows at 390 px, with name and Sign out in a menu that works by keyboard', { timeout: 90000 }, async () => {
  const ada = await person('Ada Lovelace-Byron');
  await signUp(ada, 'student');
  const { page } = ada;

  // A desktop: one row, everything in sight.
  let layout = await headerLayout(page);
  assert.equal(layout.rows.length, 1, `one row at 1280 px: ${JSON.stringify(layout.rows)}`);
  assert.equal(await page.getByRole('button', { name: 'Sign out' }).isVisible(), true);
  assert.equal(await page.locator('#account-toggle').isVisible(), false, 'no menu button on a desktop');

  await page.setViewportSize({ width: 390, height: 800 });
  // Reconnecting is the longest word the connection may show: still two rows.
  for (const state of ['open', 'reconnecting']) {
    await page.evaluate((s) => { const el = document.getElementById('connection-state'); el.dataset.state = s; el.textContent = s === 'open' ? 'Connected' : 'Reconnecting…'; }, state);
    layout = await headerLayout(page);
    assert.ok(layout.rows.length <= 2, `at most two rows at 390 px (${state}): ${JSON.stringify(layout.rows)}`);
    assert.ok(layout.height <= 2 * layout.tallest + layout.chrome + 1,
      `the header is no taller than two rows: ${layout.height} > 2 × ${layout.tallest} + ${layout.chrome}`);
    assert.ok(layout.items.every((item) => item.right <= 390), `nothing off the screen: ${JSON.stringify(layout.items)}`);
  }
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= 390), 'no sideways scrolling');
  for (const link of ['Dashboard', 'Sessions', 'Groups', 'Office hours']) {
    assert.equal(await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: link }).isVisible(), true, `${link} in sight`);
  }
  const signOut = page.getByRole('button', { name: 'Sign out' });
  assert.equal(await signOut.isVisible(), false, 'Sign out is in the menu');
  const toggle = page.getByRole('button', { name: 'Account: Ada Lovelace-Byron' });
  const toggleBox = await toggle.boundingBox();
  assert.ok(toggleBox.width >= 44 && toggleBox.height >= 44, `the menu button is big enough to touch: ${JSON.stringify(toggleBox)}`);
  const statusBox = await page.locator('#status-toggle').boundingBox();
  assert.ok(statusBox.width >= 44 && statusBox.height >= 44, `my status too: ${JSON.stringify(statusBox)}`);
  await shot(page, '50-header-phone.png');

  // By keyboard: to the menu button, open, Sign out has focus; Escape closes and gives focus back.
  await page.locator('.skip-link').focus();
  await tabTo(page, () => document.activeElement.id === 'account-toggle');
  assert.equal(await toggle.getAttribute('aria-expanded'), 'false');
  await page.keyboard.press('Enter');
  assert.equal(await toggle.getAttribute('aria-expanded'), 'true');
  await signOut.waitFor();
  assert.equal(await page.evaluate(() => document.activeElement.textContent.trim()), 'Sign out', 'focus on the first item');
  assert.equal(await page.getByText('Ada Lovelace-Byron', { exact: true }).isVisible(), true, 'who I am, in the menu');
  const panel = await page.locator('#account-panel').boundingBox();
  assert.ok(panel.x >= 0 && panel.x + panel.width <= 390, `the menu fits the screen: ${JSON.stringify(panel)}`);
  assert.ok((await headerLayout(page)).rows.length <= 2, 'an open menu adds no row to the header');
  await shot(page, '51-header-phone-menu.png');
  await page.keyboard.press('Escape');
  assert.equal(await signOut.isVisible(), false, 'Escape closes');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'account-toggle', 'focus back on the menu button');
  // A click outside closes it too; and Sign out works from it.
  await toggle.click();
  await signOut.waitFor();
  await page.getByRole('heading', { name: 'Hello, Ada Lovelace-Byron' }).click({ position: { x: 5, y: 5 } });
  assert.equal(await signOut.isVisible(), false, 'a click outside closes');
  await toggle.click();
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();

  assert.deepEqual(ada.problems, []);
  await ada.context.close();
});

test('an ended session\'s room lists who attended, not who is here, and says why chat and questions are closed', { timeout: 120000 }, async () => {
  const grace = await person('Grace');
  const ada = await person('Ada');
  const bob = await person('Bob');
  await signUp(grace, 'instructor');
  await signUp(ada, 'student');
  await signUp(bob, 'student');
  await courseWith(grace, 'Rust 101', [ada, bob]);
  const session = await schedule(grace.page, 'Ownership', 2);
  for (const who of [grace, ada, bob]) {
    await who.page.goto(`/#/sessions/${session.id}`);
    await who.page.locator('ul[aria-label="Participants"] .person', { hasText: who.name }).waitFor();
  }
  await grace.page.getByRole('button', { name: 'Start session' }).click();
  await ada.page.locator('.status.active').first().waitFor();
  // Bob leaves before the end.
  await ada.page.locator('ul[aria-label="Participants"] .person', { hasText: 'Bob' }).waitFor();
  await bob.page.getByRole('button', { name: 'Leave' }).click();
  await ada.page.locator('ul[aria-label="Left the session"] .person', { hasText: 'Bob' }).waitFor();

  await grace.page.getByRole('button', { name: 'End session' }).click();
  const { page } = ada;
  const section = page.getByRole('region', { name: 'Participants' });
  await section.getByRole('heading', { name: /^Attended/ }).waitFor();
  await section.getByText(/^The session ended at .*: nobody is in the room now\./).waitFor();
  assert.equal(await page.locator('ul[aria-label="Participants"]').count(), 0, 'no list of who is here');
  const attended = section.getByRole('list', { name: 'Attended' });
  const line = (name) => attended.locator('li', { has: page.locator('.person-name', { hasText: name }) });
  assert.match(await line('Ada').textContent(), /joined .* · stayed to the end/);
  assert.match(await line('Grace').textContent(), /stayed to the end/);
  assert.match(await line('Bob').textContent(), /joined .* · left /, 'Bob left before the end');
  assert.match(await section.getByRole('heading', { level: 2 }).textContent(), /Attended \(3\)/);
  // Chat and questions are closed, and say so.
  assert.equal(await page.getByRole('textbox', { name: 'Chat message' }).isDisabled(), true);
  assert.equal(await page.getByRole('button', { name: 'Send' }).isDisabled(), true);
  await page.getByText('The chat closed when the session ended.').waitFor();
  assert.equal(await page.getByRole('textbox', { name: 'Your question' }).isDisabled(), true);
  assert.equal(await page.getByRole('button', { name: 'Ask' }).isDisabled(), true);
  await page.getByText('Questions closed when the session ended.').waitFor();
  assert.equal(await page.getByRole('button', { name: 'Leave' }).count(), 0, 'nothing to leave');
  await shot(page, '52-room-ended.png');
  await page.setViewportSize({ width: 390, height: 844 });
  await shot(page, '53-room-ended-phone.png');

  // The instructor, opening the room again: the attendance, from the server.
  await grace.page.reload();
  const hers = grace.page.getByRole('region', { name: 'Participants' });
  await hers.getByRole('heading', { name: 'Attended (3)' }).waitFor();
  const herLine = (name) => hers.getByRole('list', { name: 'Attended' }).locator('li', { has: grace.page.locator('.person-name', { hasText: name }) });
  assert.match(await herLine('Bob').textContent(), /left /);
  assert.match(await herLine('Ada').textContent(), /stayed to the end/);
  assert.equal(await herLine('Grace').locator('.badge.instructor').count(), 1);
  // A student opening it again: it ended, nobody is here; no list of people he cannot know.
  await bob.page.goto(`/#/sessions/${session.id}`);
  const his = bob.page.getByRole('region', { name: 'Participants' });
  await his.getByText(/The session ended at .*: nobody is in the room now\. The full attendance is with your instructor\./).waitFor();
  assert.equal(await bob.page.locator('ul[aria-label="Participants"]').count(), 0);

  assert.deepEqual([...grace.problems, ...ada.problems, ...bob.problems], []);
  for (const who of [grace, ada, bob]) await who.context.close();
});

const overlaps = (a, b) => a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;

test('touch targets: a notification\'s "Open session" and "Mark read" are 44 px and apart at 390 px', { timeout: 90000 }, async () => {
  const grace = await person('Grace');
  const ada = await person('Ada');
  await signUp(grace, 'instructor');
  await signUp(ada, 'student');
  await courseWith(grace, 'Rust 101', [ada]);
  const session = await schedule(grace.page, 'Ownership', 2);
  await grace.page.goto(`/#/sessions/${session.id}`);
  await grace.page.getByRole('button', { name: 'Start session' }).click();

  const { page } = ada;
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto('/#/dashboard');
  const notifications = page.getByRole('region', { name: 'Notifications' });
  const item = notifications.locator('.notification', { hasText: 'Ownership has started' });
  await item.waitFor();
  const open = item.getByRole('link', { name: 'Open session' });
  const read = item.getByRole('button', { name: 'Mark read' });
  const [a, b] = [await open.boundingBox(), await read.boundingBox()];
  for (const [name, box] of [['Open session', a], ['Mark read', b]]) {
    assert.ok(box.width >= 44 && box.height >= 44, `${name} is at least 44 × 44 px: ${JSON.stringify(box)}`);
  }
  assert.ok(!overlaps(a, b), `apart: ${JSON.stringify([a, b])}`);
  const gap = Math.max(b.x - (a.x + a.width), a.x - (b.x + b.width), b.y - (a.y + a.height), a.y - (b.y + b.height));
  assert.ok(gap >= 8, `at least 8 px between them: ${gap}`);
  await shot(page, '58-notification-targets-phone.png');
  await read.click();
  await item.getByRole('button', { name: 'Mark read' }).waitFor({ state: 'detached' });
  assert.equal(await open.isVisible(), true, 'the link stays');
  // On a desktop, the same two stay apart.
  await page.setViewportSize({ width: 1280, height: 900 });
  assert.equal(await notifications.getByRole('link', { name: 'Open session' }).first().isVisible(), true);

  assert.deepEqual([...grace.problems, ...ada.problems], []);
  await grace.context.close();
  await ada.context.close();
});
