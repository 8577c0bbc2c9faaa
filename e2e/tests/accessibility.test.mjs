// An axe-core scan (run inside the page) of every page of the app, signed
// out, as an instructor and as a student, at desktop and phone width: no
// serious or critical violation.
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
    await page.goto('/#/sessions');
    await page.locator('article', { hasText: 'Ownership' }).first().waitFor();
    await scanBoth(page, `${role} sessions`, found);
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
