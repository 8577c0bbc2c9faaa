// An axe-core scan (run inside the page) of every page of the app, signed
// out, as an instructor and as a student, at desktop and phone width: no
// serious or critical violation. Office hours are scanned as they are in
// use too: the queue open with a student waiting, the student called in,
// and the private room on both sides; so are a newcomer's pages, all empty
// states, and the account menu of the header at phone width.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

import { stage } from '../support/stage.mjs';
import { courseWith, rest, schedule, signUp } from '../support/classroom.mjs';

const { person } = stage();
const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/** The serious and critical violations on the page as it is, in words. */
async function scan(page, label) {
  await page.evaluate(AXE);
  const violations = await page.evaluate(async () => (await window.axe.run(document, { resultTypes: ['violations'] })).violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => ({ id: v.id, impact: v.impact, help: v.help, targets: v.nodes.slice(0, 4).map((n) => n.target.join(' ')) })));
  return violations.map((v) => `${label}: ${v.id} (${v.impact}) ${v.help}: ${v.targets.join(' | ')}`);
}

/** Scans a page at 1280 and 390 px. */
async function scanBoth(page, label, found) {
  for (const width of [1280, 390]) {
    await page.setViewportSize({ width, height: 900 });
    found.push(...await scan(page, `${label} @${width}`));
  }
  await page.setViewportSize({ width: 1280, height: 900 });
}

test('axe-core finds no serious or critical violation on any page', { timeout: 180000 }, async () => {
  const found = [];
  const grace = await person('Grace');
  const ada = await person('Ada');

  await ada.page.goto('/#/login');
  await ada.page.getByRole('button', { name: 'Sign in' }).waitFor();
  await scanBoth(ada.page, 'login', found);
  await ada.page.goto('/#/register');
  await ada.page.getByRole('button', { name: 'Create account' }).waitFor();
  await scanBoth(ada.page, 'register', found);

  await signUp(grace, 'instructor');
  await signUp(ada, 'student');
  await courseWith(grace, 'Rust 101', [ada]);
  const session = await schedule(grace.page, 'Ownership', 2);
  const [, courses] = await rest(grace.page, 'GET', '/api/courses');
  const [status, group] = await rest(ada.page, 'POST', '/api/study-groups', { name: 'Borrowers', courseId: courses[0].id, visibility: 'public' });
  assert.equal(status, 201, JSON.stringify(group));

  for (const [who, role] of [[grace, 'instructor'], [ada, 'student']]) {
    const { page } = who;
    await page.goto('/#/dashboard');
    await page.locator('section[aria-label="My courses"]', { hasText: 'Rust 101' }).waitFor();
    await scanBoth(page, `${role} dashboard`, found);
    await page.locator('#status-toggle').click();
    await page.locator('#status-panel').waitFor();
    found.push(...await scan(page, `${role} status menu`));
    await page.keyboard.press('Escape');
    // On a phone, name and Sign out are in a menu of their own.
    await page.setViewportSize({ width: 390, height: 900 });
    await page.locator('#account-toggle').click();
    await page.getByRole('button', { name: 'Sign out' }).waitFor();
    found.push(...await scan(page, `${role} account menu @390`));
    await page.keyboard.press('Escape');
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.goto('/#/sessions');
    await page.locator('article', { hasText: 'Ownership' }).first().waitFor();
    await scanBoth(page, `${role} sessions`, found);
    await page.getByRole('button', { name: 'Month', exact: true }).click();
    await page.getByRole('list', { name: 'Month calendar' }).locator('a.event', { hasText: 'Ownership' }).waitFor();
    await scanBoth(page, `${role} sessions, month`, found);
    await page.goto(`/#/sessions/${session.id}`);
    await page.locator('ul[aria-label="Participants"] .person').first().waitFor();
    await scanBoth(page, `${role} room`, found);
    await page.goto('/#/groups');
    await page.getByText('Borrowers').first().waitFor();
    await scanBoth(page, `${role} groups`, found);
    await page.goto(`/#/groups/${group.id}`);
    await page.getByRole('heading', { name: 'Borrowers' }).waitFor();
    await scanBoth(page, `${role} group room`, found);
    await page.goto('/#/office-hours');
    await page.getByRole('heading', { level: 1 }).first().waitFor();
    await scanBoth(page, `${role} office hours`, found);
  }

  // A newcomer's pages: empty states everywhere.
  const cleo = await person('Cleo');
  await signUp(cleo, 'student');
  await cleo.page.locator('section[aria-label="My courses"] .empty-state').waitFor();
  await scanBoth(cleo.page, 'newcomer dashboard', found);
  await cleo.page.goto('/#/groups');
  await cleo.page.locator('#my-groups .empty-state').waitFor();
  await scanBoth(cleo.page, 'newcomer groups', found);
  assert.deepEqual(cleo.problems, []);
  await cleo.context.close();

  // Office hours in use.
  await grace.page.goto('/#/office-hours');
  await grace.page.getByRole('button', { name: 'Open the queue' }).click();
  await grace.page.locator('#oh-open-state', { hasText: 'Open' }).waitFor();
  await ada.page.goto('/#/office-hours');
  const card = ada.page.getByRole('article', { name: 'Grace' });
  await card.getByLabel('Your question').fill('Why does the borrow checker reject this?');
  await card.getByRole('button', { name: 'Join the queue' }).click();
  await card.getByRole('status', { name: 'Your place with Grace' }).waitFor();
  await scanBoth(ada.page, 'student office hours, waiting', found);
  await grace.page.getByRole('list', { name: 'Students waiting' }).locator('li', { hasText: 'Ada' }).waitFor();
  await scanBoth(grace.page, 'instructor office hours, a student waiting', found);
  await grace.page.getByRole('button', { name: 'Admit Ada' }).click();
  await card.getByText('Grace is ready for you.').waitFor();
  await scanBoth(ada.page, 'student office hours, admitted', found);
  await grace.page.getByRole('link', { name: 'Open the room with Ada' }).waitFor();
  await scanBoth(grace.page, 'instructor office hours, a room open', found);
  await card.getByRole('link', { name: 'Enter the private room' }).click();
  await grace.page.getByRole('link', { name: 'Open the room with Ada' }).click();
  for (const who of [grace, ada]) {
    await who.page.getByRole('heading', { name: 'Office hours: Grace with Ada' }).waitFor();
    await who.page.locator('.person', { hasText: who.name }).waitFor();
  }
  await ada.page.getByRole('textbox', { name: 'Chat message' }).fill('See https://doc.rust-lang.org/book/ please');
  await ada.page.getByRole('button', { name: 'Send' }).click();
  await grace.page.locator('.msg a[href="https://doc.rust-lang.org/book/"]').waitFor();
  await scanBoth(ada.page, 'student office hours room', found);
  await scanBoth(grace.page, 'instructor office hours room', found);
  await grace.page.getByRole('button', { name: 'Complete Ada' }).click();
  await ada.page.getByText('Your instructor completed this session.').waitFor();
  await scanBoth(ada.page, 'student office hours room, completed', found);
  await grace.page.goto('/#/office-hours/manage');
  await grace.page.getByRole('heading', { name: 'My office hours' }).waitFor();
  await grace.page.locator('#oh-analytics').getByText('1 student helped.').waitFor();
  await scanBoth(grace.page, 'instructor office hours, analytics', found);

  await grace.page.goto('/#/sessions');
  await grace.page.getByRole('button', { name: 'New session' }).click();
  await grace.page.locator('dialog[open]').waitFor();
  found.push(...await scan(grace.page, 'new session dialog'));
  await grace.page.getByRole('button', { name: 'Close' }).click();
  await grace.page.goto(`/#/sessions/${session.id}`);
  await grace.page.getByRole('button', { name: 'Start session' }).click();
  await grace.page.getByRole('button', { name: 'End session' }).click();
  await grace.page.getByRole('link', { name: 'See attendance' }).click();
  await grace.page.locator('#attendance-count').waitFor();
  await scanBoth(grace.page, 'attendance', found);

  assert.deepEqual(found, [], `axe found:\n${found.join('\n')}`);
  assert.deepEqual([...grace.problems, ...ada.problems], []);
  await grace.context.close();
  await ada.context.close();
});
