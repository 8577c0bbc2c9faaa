// A whole live session in a real browser: an instructor and two students,
// each in their own browser context, through the UI only.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { register, shot } from '../support/browser.mjs';
import { stage } from '../support/stage.mjs';

const XSS = '<img src=x onerror=alert(1)>';
const { person } = stage();

/** A datetime-local value `minutes` from now, in the browser's zone. */
function localIn(minutes) {
  const d = new Date(Date.now() + minutes * 60000);
  return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
}

async function schedule(page, title, startsInMinutes) {
  await page.getByRole('button', { name: 'New session' }).click();
  await page.getByLabel('Title').fill(title);
  await page.getByLabel('Starts').fill(localIn(startsInMinutes));
  await page.getByLabel('Ends').fill(localIn(startsInMinutes + 60));
  // The server's answer, not the toast: an earlier toast may still be showing.
  const created = page.waitForResponse((r) => r.url().endsWith('/api/live-sessions') && r.request().method() === 'POST');
  await page.getByRole('button', { name: 'Save' }).click();
  assert.equal((await created).status(), 201, `${title} scheduled`);
  await page.getByText('Session scheduled.').first().waitFor();
}

const dot = (page, userId) => page.locator(`.room .dot[data-user-id="${userId}"]`).first();

test('an instructor and two students through a whole live session', { timeout: 120000 }, async () => {
  const grace = await person('Grace');
  const ada = await person('Ada');
  const bob = await person('Bob');
  const everyone = [grace, ada, bob];

  await grace.page.goto('/');
  await grace.page.getByRole('heading', { name: 'Sign in' }).waitFor();
  await shot(grace.page, '01-sign-in.png');

  // Accounts, a course, enrollment with the course code.
  await register(grace, 'instructor');
  await register(ada, 'student');
  await register(bob, 'student');
  await grace.page.getByLabel('New course title').fill('Rust 101');
  await grace.page.getByRole('button', { name: 'Create course' }).click();
  const code = (await grace.page.locator('.course-code').first().textContent()).trim();
  for (const student of [ada, bob]) {
    await student.page.getByLabel('Enroll with a course code').fill(code);
    await student.page.getByRole('button', { name: 'Enroll' }).click();
    await student.page.getByText('Rust 101').first().waitFor();
  }
  await shot(ada.page, '02-dashboard.png');

  // Two sessions: one opening for joins now, one next week.
  await grace.page.goto('/#/sessions');
  await schedule(grace.page, 'Ownership live', 2);
  await schedule(grace.page, 'Lifetimes later', 3 * 24 * 60);
  await grace.page.locator('.calendar .event', { hasText: 'Ownership live' }).waitFor();
  await shot(grace.page, '03-calendar.png');

  // Ada sees both; only the one in its window can be joined.
  await ada.page.goto('/#/sessions');
  const later = ada.page.getByRole('button', { name: 'Join Lifetimes later' });
  await later.waitFor();
  assert.equal(await later.isDisabled(), true, 'Join is closed until 5 minutes before the start');
  await ada.page.getByRole('button', { name: 'Join Ownership live' }).click();
  await ada.page.getByRole('heading', { name: 'Ownership live' }).waitFor();

  await grace.page.getByRole('button', { name: 'Join Ownership live' }).click();
  await grace.page.getByRole('button', { name: 'Start session' }).click();
  await grace.page.locator('.status.active').first().waitFor();
  await ada.page.locator('.status.active').first().waitFor();
  const graceId = await grace.page.evaluate(() => JSON.parse(localStorage.getItem('me')).id);
  const bobId = await bob.page.evaluate(() => JSON.parse(localStorage.getItem('me')).id);

  await bob.page.goto('/#/sessions');
  await bob.page.getByRole('button', { name: 'Join Ownership live' }).click();
  await ada.page.locator('.person', { hasText: 'Bob' }).waitFor();
  await grace.page.locator('.person', { hasText: 'Grace' }).locator('.badge.instructor').waitFor();

  // Chat both ways, and a message that must stay text.
  await ada.page.getByRole('textbox', { name: 'Chat message' }).fill('Hello from Ada');
  await ada.page.getByRole('button', { name: 'Send' }).click();
  await grace.page.locator('.msg .text', { hasText: 'Hello from Ada' }).waitFor();
  await grace.page.getByRole('textbox', { name: 'Chat message' }).fill('Welcome, Ada');
  await grace.page.getByRole('button', { name: 'Send' }).click();
  await ada.page.locator('.msg .text', { hasText: 'Welcome, Ada' }).waitFor();
  await ada.page.getByRole('textbox', { name: 'Chat message' }).fill(XSS);
  await ada.page.getByRole('button', { name: 'Send' }).click();
  const shown = grace.page.locator('.msg .text', { hasText: '<img' });
  await shown.waitFor();
  assert.equal(await shown.textContent(), XSS, 'the markup is shown as text');
  assert.equal(await grace.page.locator('.chat-log img').count(), 0, 'no element was made from chat text');

  // Ada edits her message and deletes the other; a link is shared as a link.
  await ada.page.getByRole('button', { name: 'Edit message: Hello from Ada' }).click();
  await ada.page.getByRole('textbox', { name: 'Edit message' }).fill('Hello from Ada, edited');
  await ada.page.getByRole('button', { name: 'Save' }).click();
  await grace.page.locator('.msg', { hasText: 'edited' }).locator('.text', { hasText: 'Hello from Ada, edited' }).waitFor();
  await ada.page.getByRole('button', { name: `Delete message: ${XSS}` }).click();
  await grace.page.locator('.msg.deleted', { hasText: 'message deleted' }).waitFor();
  assert.equal(await grace.page.locator('.msg .text', { hasText: '<img' }).count(), 0, 'the deleted text is gone');
  const adasMessage = grace.page.locator('.msg', { hasText: 'Hello from Ada, edited' });
  assert.equal(await adasMessage.getByRole('button', { name: /^Edit message/ }).count(), 0, 'no edit on others\' messages');
  await grace.page.getByRole('textbox', { name: 'Chat message' }).fill('https://doc.rust-lang.org/book/');
  await grace.page.getByRole('button', { name: 'Send' }).click();
  const link = ada.page.locator('.msg .text a', { hasText: 'https://doc.rust-lang.org/book/' });
  await link.waitFor();
  assert.equal(await link.getAttribute('href'), 'https://doc.rust-lang.org/book/');
  await shot(ada.page, '04a-chat-edit-delete-link.png');

  // Typing is shown to the others.
  await bob.page.getByRole('textbox', { name: 'Chat message' }).pressSequentially('thinking');
  await grace.page.getByText('Bob is typing…').waitFor();

  // Q&A: asked, upvoted by a classmate, answered by the instructor.
  await ada.page.getByLabel('Your question').fill('What is a move?');
  await ada.page.getByRole('button', { name: 'Ask' }).click();
  await bob.page.getByRole('button', { name: 'Upvote: What is a move?' }).click();
  await grace.page.locator('.question', { hasText: 'What is a move?' }).locator('.upvote', { hasText: '1 vote' }).waitFor();
  await grace.page.locator('.question', { hasText: 'What is a move?' }).getByRole('button', { name: 'Answered' }).click();
  await ada.page.locator('.question.answered', { hasText: 'What is a move?' }).waitFor();
  await shot(grace.page, '04-room-instructor.png');

  // Bob reloads and misses a message meanwhile: the chat catches up.
  const reload = bob.page.reload();
  await grace.page.getByRole('textbox', { name: 'Chat message' }).fill('Sent while Bob reloads');
  await grace.page.getByRole('button', { name: 'Send' }).click();
  await reload;
  await bob.page.locator('.msg .text', { hasText: 'Sent while Bob reloads' }).waitFor();
  await bob.page.locator('.msg .text', { hasText: 'Hello from Ada' }).waitFor();
  assert.equal(await bob.page.locator('.msg .text', { hasText: 'Sent while Bob reloads' }).count(), 1, 'shown once');
  await shot(bob.page, '05-room-after-reload.png');

  // Bob sets himself busy: his dot turns red on Ada's page (the plan's colour for busy).
  await bob.page.getByRole('button', { name: 'My status' }).click();
  await bob.page.getByLabel('Status', { exact: true }).selectOption('busy');
  await bob.page.getByRole('button', { name: 'Save status' }).click();
  await bob.page.getByText('Status saved.').waitFor();
  await ada.page.locator(`.room .dot[data-user-id="${bobId}"][data-status="busy"]`).waitFor();
  const red = await dot(ada.page, bobId).evaluate((el) => getComputedStyle(el).backgroundColor);
  assert.equal(red, 'rgb(197, 34, 31)', 'busy shows red');

  // The instructor ends the session while Bob types: the closed chat shows nobody typing.
  await bob.page.getByRole('textbox', { name: 'Chat message' }).pressSequentially('one more');
  await ada.page.getByText('Bob is typing…').waitFor();
  await grace.page.getByRole('button', { name: 'End session' }).click();
  await ada.page.getByText('This session has ended.').waitFor();
  assert.equal(await ada.page.locator('.typing').textContent(), '', 'nobody types into a closed chat');
  await grace.page.getByRole('link', { name: 'See attendance' }).click();
  await grace.page.locator('#attendance-summary').getByText('2').first().waitFor();
  assert.match(await grace.page.locator('table').textContent(), /Ada/);
  await shot(grace.page, '06-attendance.png');

  // The instructor's page closes: her dot turns grey on the students' pages.
  await ada.page.locator(`.room .dot[data-user-id="${graceId}"][data-status="online"]`).waitFor();
  await grace.context.close();
  await ada.page.locator(`.room .dot[data-user-id="${graceId}"][data-status="offline"]`).waitFor({ timeout: 10000 });
  const grey = await dot(ada.page, graceId).evaluate((el) => getComputedStyle(el).backgroundColor);
  assert.equal(grey, 'rgb(128, 134, 139)', 'offline shows grey');
  await shot(ada.page, '07-instructor-offline.png');

  // Phone width still works.
  await ada.page.setViewportSize({ width: 390, height: 844 });
  await shot(ada.page, '08-phone.png');

  const problems = everyone.flatMap((p) => p.problems);
  assert.deepEqual(problems, [], 'no page errors, no alerts');
  await ada.context.close();
  await bob.context.close();
});
