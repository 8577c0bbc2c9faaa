// Issue 15, first batch, in a real browser: no start in the past, the room
// before it opens and after it ended, long names and initials, the chat's
// limit, and what is announced to screen readers.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { shot } from '../support/browser.mjs';
import { localIn, schedule, signUp } from '../support/classroom.mjs';
import { stage } from '../support/stage.mjs';

const { person } = stage();
const LONG = 'Bartholomew Featherstonehaugh-Cholmondeley of the Exceedingly Long Surname Family';
const RFC3339 = /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/;



test('start not in the past, the room before and after, long names, the chat limit', { timeout: 120000 }, async () => {
  const grace = await person('Grace');
  const ada = await person('Ada Lovelace');
  const bob = await person('B<ob');
  const bart = await person(LONG);
  const everyone = [grace, ada, bob, bart];

  await signUp(grace, 'instructor');
  await grace.page.getByLabel('New course title').fill('Rust 101');
  await grace.page.getByRole('button', { name: 'Create course' }).click();
  const code = (await grace.page.locator('.course-code').first().textContent()).trim();
  for (const student of [ada, bob, bart]) {
    await signUp(student, 'student');
    await student.page.getByLabel('Enroll with a course code').fill(code);
    await student.page.getByRole('button', { name: 'Enroll' }).click();
    await student.page.getByText('Rust 101').first().waitFor();
  }

  // Item 15: the page is not one big live region; toasts are.
  assert.equal(await ada.page.locator('main').getAttribute('aria-live'), null, '<main> is not aria-live');
  assert.equal(await ada.page.locator('#toasts').getAttribute('aria-live'), 'polite');

  // Item 5: the form says that a start cannot be in the past, and sends nothing.
  await grace.page.goto('/#/sessions');
  await grace.page.getByRole('button', { name: 'New session' }).click();
  const start = grace.page.getByLabel('Starts');
  const min = await start.getAttribute('min');
  assert.ok(min && new Date(min).getTime() <= Date.now() && new Date(min).getTime() > Date.now() - 5 * 60000, `min is now: ${min}`);
  await grace.page.getByLabel('Title').fill('Yesterday');
  await start.fill(localIn(-24 * 60));
  await grace.page.getByLabel('Ends').fill(localIn(-23 * 60));
  await grace.page.locator('#s-start-hint', { hasText: 'A session cannot start in the past' }).waitFor();
  let posted = 0;
  const count = (r) => { if (r.url().endsWith('/api/live-sessions') && r.method() === 'POST') posted += 1; };
  grace.page.on('request', count);
  await grace.page.getByRole('button', { name: 'Save' }).click();
  assert.equal(await start.evaluate((el) => el.validationMessage), 'A session cannot start in the past: choose a time from now on.');
  assert.equal(posted, 0, 'nothing sent for a start in the past');
  grace.page.off('request', count);
  // The server refuses it too, with its code.
  const refused = await grace.page.evaluate(async (courseTitle) => {
    const headers = { Authorization: `Bearer ${localStorage.getItem('token')}`, 'Content-Type': 'application/json' };
    const courses = await (await fetch('/api/courses', { headers })).json();
    const course = courses.find((c) => c.title === courseTitle);
    const at = Date.now() - 3600000;
    const response = await fetch('/api/live-sessions', { method: 'POST', headers, body: JSON.stringify({
      courseId: course.id, title: 'Past', scheduledStartTime: new Date(at).toISOString(), scheduledEndTime: new Date(at + 3600000).toISOString(),
    }) });
    return [response.status, (await response.json()).error.code];
  }, 'Rust 101');
  assert.deepEqual(refused, [400, 'start_in_past']);
  await grace.page.getByRole('button', { name: 'Close' }).click();

  const soon = (await schedule(grace.page, 'Soon', 2)).id;
  const later = (await schedule(grace.page, 'Later', 3 * 24 * 60)).id;

  // Item 7: too early, the room says when it opens, readable and local, and
  // the chat and Ask are off with that reason.
  await ada.page.goto(`/#/sessions/${later}`);
  const banner = ada.page.locator('.card[role="status"]', { hasText: 'opens for joining' });
  await banner.waitFor();
  const words = await banner.textContent();
  assert.doesNotMatch(words, RFC3339, `no raw timestamp: ${words}`);
  const opens = new Date(Date.now() + (3 * 24 * 60 - 5) * 60000);
  assert.match(words, new RegExp(opens.toLocaleDateString(undefined, { month: 'short' })), words);
  const zone = await ada.page.evaluate(() => Intl.DateTimeFormat().resolvedOptions().timeZone);
  assert.ok(words.includes(`(${zone})`), `the viewer's time zone is said: ${words}`);
  assert.equal(await ada.page.getByRole('textbox', { name: 'Chat message' }).isDisabled(), true);
  assert.equal(await ada.page.getByRole('button', { name: 'Ask' }).isDisabled(), true);
  assert.equal(await ada.page.locator('#qa-disabled-reason').textContent(), 'You can ask once you are in the session (see above).');
  assert.equal(await ada.page.locator('#chat-disabled-reason').textContent(), 'You can chat once you are in the session (see above).');
  await shot(ada.page, '20-room-too-early.png');

  // Item 10: a long name is cut with its tooltip, the badge stays in the card;
  // initials from letters.
  for (const who of [grace, ada, bob, bart]) {
    await who.page.goto(`/#/sessions/${soon}`);
    await who.page.getByRole('heading', { name: 'Soon' }).waitFor();
  }
  const card = grace.page.locator('.room section[aria-label="Participants"]');
  const bartLine = card.locator('li', { hasText: 'Bartholomew' }).locator('.person');
  await bartLine.waitFor();
  await card.locator('.person', { hasText: 'B<ob' }).waitFor();
  await card.locator('.person', { hasText: 'Ada Lovelace' }).waitFor();
  for (const width of [1280, 390]) {
    await grace.page.setViewportSize({ width, height: 900 });
    const name = bartLine.locator('.person-name');
    assert.equal(await name.getAttribute('title'), LONG, 'the whole name in the tooltip');
    assert.ok(await name.evaluate((el) => el.scrollWidth > el.clientWidth), `the name is truncated at ${width}px`);
    const box = await card.boundingBox();
    const badge = await bartLine.locator('.badge').boundingBox();
    assert.ok(badge.x >= box.x && badge.x + badge.width <= box.x + box.width + 0.5, `the badge is inside the card at ${width}px`);
    assert.ok(badge.width > 30, 'the badge is not squeezed');
    if (width === 390) await shot(grace.page, '21-long-name-phone.png');
  }
  await grace.page.setViewportSize({ width: 1280, height: 900 });
  const initials = async (name) => (await card.locator('.person', { hasText: name }).locator('.avatar').textContent()).trim();
  assert.equal(await initials('B<ob'), 'B');
  assert.equal(await initials('Ada Lovelace'), 'AL');
  assert.equal(await initials('Bartholomew'), 'BF');

  // Item 11: a long paste is kept whole, with the limit and a counter.
  const box = ada.page.getByRole('textbox', { name: 'Chat message' });
  await box.fill('x'.repeat(10000));
  assert.equal((await box.inputValue()).length, 10000, 'a paste is not cut');
  assert.equal(await ada.page.locator('#chat-count').textContent(), '10,000 / 4,000');
  await ada.page.locator('#chat-limit', { hasText: '6,000 characters over the limit of 4,000' }).waitFor();
  assert.equal(await ada.page.getByRole('button', { name: 'Send' }).isDisabled(), true, 'too long to send');
  await box.fill('y'.repeat(3950));
  assert.equal(await ada.page.locator('#chat-count').textContent(), '3,950 / 4,000');
  assert.equal(await ada.page.locator('#chat-limit').isHidden(), true);
  assert.equal(await ada.page.getByRole('button', { name: 'Send' }).isDisabled(), false);
  await ada.page.getByRole('button', { name: 'Send' }).click();
  await grace.page.locator('.msg .text', { hasText: 'yyyy' }).waitFor();
  await ada.page.locator('#chat-count', { hasText: /^0 \/ 4,000$/ }).waitFor(); // once the send is acknowledged

  // Item 7: after the end, the chat box and Ask are off, with the reason.
  await grace.page.getByRole('button', { name: 'Start session' }).click();
  await ada.page.locator('.status.active').first().waitFor();
  await grace.page.getByRole('button', { name: 'End session' }).click();
  await ada.page.getByText('This session has ended.').first().waitFor();
  assert.equal(await box.isDisabled(), true, 'no chat after the end');
  assert.equal(await ada.page.getByRole('button', { name: 'Ask' }).isDisabled(), true, 'no questions after the end');
  assert.equal(await ada.page.getByLabel('Your question').isDisabled(), true);
  assert.match(await ada.page.locator('#chat-disabled-reason').textContent(), /^The chat closed when the session ended\.$/);
  assert.match(await ada.page.locator('#qa-disabled-reason').textContent(), /^Questions closed when the session ended\.$/);
  await shot(ada.page, '22-room-ended.png');

  const problems = everyone.flatMap((p) => p.problems);
  assert.deepEqual(problems, [], 'no page errors, no alerts');
  for (const who of everyone) await who.context.close();
});
