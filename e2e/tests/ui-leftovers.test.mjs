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
