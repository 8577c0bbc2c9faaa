// Office hours in a real browser: an instructor keeps a weekly schedule
// (the server's refusals shown in words) and opens her queue by hand; three
// students join with questions and follow their place in line live; the
// instructor admits the first, they talk in the private room (a link
// included, a reload losing nothing), she completes the help and the
// student sees it; she admits the other two together into one room; ending
// office hours tells whoever still waits. Through the UI only.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { register, shot } from '../support/browser.mjs';
import { stage } from '../support/stage.mjs';

const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const QUESTION = 'Why does my base case never stop the recursion?';
const { person } = stage();

const nav = (page, name) => page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name }).click();
const card = (page, name) => page.getByRole('article', { name });
const noToasts = (page) => page.locator('.toast').first().waitFor({ state: 'detached', timeout: 20000 });

async function addSlot(page, { day, start, end, zone, mode = 'queue' }) {
  await page.getByLabel('Day', { exact: true }).selectOption(day);
  await page.getByLabel('Starts').fill(start);
  await page.getByLabel('Ends').fill(end);
  await page.getByLabel('Time zone').fill(zone);
  await page.getByLabel('Mode').selectOption(mode);
  const answer = page.waitForResponse((r) => r.url().endsWith('/api/office-hours/schedule') && r.request().method() === 'POST');
  await page.getByRole('button', { name: 'Add slot' }).click();
  return (await answer).status();
}

test('a student queues, is admitted, talks privately and is completed', { timeout: 180000 }, async () => {
  const grace = await person('Grace');
  const ada = await person('Ada');
  const bob = await person('Bob');
  const cleo = await person('Cleo');
  const everyone = [grace, ada, bob, cleo];

  await register(grace, 'instructor');
  await grace.page.getByLabel('New course title').fill('Algorithms');
  await grace.page.getByRole('button', { name: 'Create course' }).click();
  const code = (await grace.page.locator('.course-code').first().textContent()).trim();
  for (const student of [ada, bob, cleo]) {
    await register(student, 'student');
    await student.page.getByLabel('Enroll with a course code').fill(code);
    await student.page.getByRole('button', { name: 'Enroll' }).click();
    await student.page.getByText('Algorithms').first().waitFor();
  }

  // The instructor's weekly schedule: a slot three days from now; an
  // overlapping one and a backwards one are refused in words.
  await nav(grace.page, 'Office hours');
  await grace.page.getByRole('heading', { name: 'My office hours' }).waitFor();
  await grace.page.getByText('No weekly slot yet').waitFor();
  const day = DAYS[(new Date().getDay() + 3) % 7];
  assert.equal(await addSlot(grace.page, { day, start: '10:00', end: '11:30', zone: 'Europe/Paris' }), 201);
  const slots = grace.page.getByRole('list', { name: 'Weekly slots' });
  await slots.getByText(`${day} 10:00–11:30 (Europe/Paris)`).waitFor();
  assert.equal(await addSlot(grace.page, { day, start: '11:00', end: '12:00', zone: 'Europe/Paris' }), 409);
  await grace.page.getByRole('form', { name: 'Add a weekly slot' }).getByText('This slot overlaps another of your active slots').waitFor();
  assert.equal(await addSlot(grace.page, { day, start: '15:00', end: '14:00', zone: 'Europe/Paris' }), 400);
  await grace.page.getByText('The end must be after the start').waitFor();
  assert.equal(await addSlot(grace.page, { day, start: '14:00', end: '15:00', zone: 'Mars/Olympus' }), 400);
  await grace.page.getByText('Unknown time zone').waitFor();
  assert.equal(await slots.locator('li').count(), 1, 'only the valid slot was added');

  // She opens the queue by hand; the students' pages follow.
  await nav(ada.page, 'Office hours');
  const adaCard = card(ada.page, 'Grace');
  await adaCard.getByText('Closed', { exact: true }).waitFor();
  await adaCard.getByText(`Weekly: ${day} 10:00–11:30 (Europe/Paris)`).waitFor();
  await grace.page.getByRole('button', { name: 'Open the queue' }).click();
  await grace.page.locator('#oh-open-state', { hasText: 'Open' }).waitFor();
  await adaCard.getByText('Open', { exact: true }).waitFor();
  await adaCard.getByText('0 waiting').waitFor();

  // Ada's question is too long: the server's refusal, in words.
  await adaCard.getByLabel('Topic (optional)').fill('Recursion');
  await adaCard.getByLabel('Your question').fill('x'.repeat(501));
  await adaCard.getByText('501 / 500').waitFor();
  await adaCard.getByRole('button', { name: 'Join the queue' }).click();
  await adaCard.getByRole('alert').getByText('Your question is too long: at most 500 characters.').waitFor();
  await adaCard.getByLabel('Your question').fill(QUESTION);
  await adaCard.getByRole('button', { name: 'Join the queue' }).click();
  const adaPlace = adaCard.getByRole('status', { name: 'Your place with Grace' });
  await adaPlace.locator('.oh-position', { hasText: 'Your position: 1' }).waitFor();
  await adaPlace.getByText('you are next').waitFor();
  assert.match(await adaPlace.textContent(), /Estimated wait: /);

  // Bob joins behind her.
  await nav(bob.page, 'Office hours');
  const bobCard = card(bob.page, 'Grace');
  await bobCard.getByText('1 waiting').waitFor();
  await bobCard.getByLabel('Your question').fill('Is quicksort stable?');
  await bobCard.getByRole('button', { name: 'Join the queue' }).click();
  const bobPlace = bobCard.getByRole('status', { name: 'Your place with Grace' });
  await bobPlace.locator('.oh-position', { hasText: 'Your position: 2' }).waitFor();
  await nav(cleo.page, 'Office hours');
  const cleoCard = card(cleo.page, 'Grace');
  await cleoCard.getByLabel('Your question').fill('When is a greedy choice safe?');
  await cleoCard.getByRole('button', { name: 'Join the queue' }).click();
  const cleoPlace = cleoCard.getByRole('status', { name: 'Your place with Grace' });
  await cleoPlace.locator('.oh-position', { hasText: 'Your position: 3' }).waitFor();
  await noToasts(ada.page);
  await shot(ada.page, 'office-hours-01-student-waiting.png');

  // The live queue on the instructor's page.
  const queue = grace.page.getByRole('list', { name: 'Students waiting' });
  await queue.locator('li', { hasText: 'Ada' }).getByText(QUESTION).waitFor();
  await queue.locator('li', { hasText: 'Ada' }).getByText('Recursion', { exact: true }).waitFor();
  await queue.locator('li', { hasText: 'Bob' }).getByText('Is quicksort stable?').waitFor();
  assert.match(await queue.locator('li').first().textContent(), /Ada/, 'Ada is first');
  await grace.page.getByLabel('Message to the students waiting and in rooms').fill('I will take you in order, about 10 minutes each.');
  await grace.page.getByRole('button', { name: 'Send to everyone waiting' }).click();
  await bobCard.getByRole('note', { name: 'Announcement' }).getByText('about 10 minutes each').waitFor();
  await noToasts(grace.page);
  await shot(grace.page, 'office-hours-02-instructor-queue.png');

  // She admits Ada: Ada is called in, Bob moves up live.
  await grace.page.getByRole('button', { name: 'Admit Ada' }).click();
  await adaCard.getByText('Grace is ready for you.').waitFor();
  await bobPlace.locator('.oh-position', { hasText: 'Your position: 1' }).waitFor();
  await bobPlace.getByText('You are up soon').waitFor();
  await cleoPlace.locator('.oh-position', { hasText: 'Your position: 2' }).waitFor();
  await adaCard.getByRole('link', { name: 'Enter the private room' }).click();
  await ada.page.getByRole('heading', { name: 'Office hours: Grace with Ada' }).waitFor();
  await ada.page.getByRole('region', { name: 'Your question' }).getByText(QUESTION).waitFor();

  await grace.page.getByRole('link', { name: 'Open the room with Ada' }).click();
  await grace.page.getByRole('heading', { name: 'Office hours: Grace with Ada' }).waitFor();
  await grace.page.locator('.oh-room-student', { hasText: 'Ada' }).getByText(QUESTION).waitFor();

  // They talk in private.
  const say = async (who, text) => {
    await who.page.getByRole('textbox', { name: 'Chat message' }).fill(text);
    await who.page.getByRole('button', { name: 'Send' }).click();
  };
  await say(grace, 'Hi Ada, show me your base case.');
  await ada.page.locator('.msg .text', { hasText: 'show me your base case' }).waitFor();
  await say(ada, 'if (n == 0) return; but I call f(n - 2)');
  await grace.page.locator('.msg .text', { hasText: 'I call f(n - 2)' }).waitFor();
  // A reload keeps what was said (the history over REST, then the room's catch-up).
  await ada.page.reload();
  await ada.page.getByRole('heading', { name: 'Office hours: Grace with Ada' }).waitFor();
  await ada.page.locator('.msg .text', { hasText: 'show me your base case' }).waitFor();
  await ada.page.locator('.msg .text', { hasText: 'I call f(n - 2)' }).waitFor();
  await say(grace, 'Now trace f(3) by hand.');
  await ada.page.locator('.msg .text', { hasText: 'trace f(3)' }).waitFor();
  const BOOK = 'https://doc.rust-lang.org/book/ch03-05-control-flow.html';
  await say(grace, BOOK);
  await ada.page.locator(`.msg a[href="${BOOK}"]`).waitFor();
  await grace.page.locator('.person', { hasText: 'Ada' }).waitFor();
  await noToasts(grace.page);
  await shot(grace.page, 'office-hours-03-private-room.png');

  // She completes; Ada sees it, and the room is closed for both.
  await grace.page.getByRole('button', { name: 'Complete Ada' }).click();
  await ada.page.getByText('Your instructor completed this session.').waitFor();
  await grace.page.getByText('Session completed: this room is closed.').waitFor();
  assert.equal(await ada.page.getByRole('textbox', { name: 'Chat message' }).isDisabled(), true, 'the chat is closed');
  await ada.page.locator('.msg .text', { hasText: 'show me your base case' }).waitFor();
  await noToasts(ada.page);
  await shot(ada.page, 'office-hours-04-student-completed.png');

  // Back on her page, Bob and Cleo wait; she admits them together.
  await grace.page.getByRole('link', { name: 'Back to my queue' }).first().click();
  await queue.locator('li', { hasText: 'Bob' }).waitFor();
  await queue.locator('li', { hasText: 'Cleo' }).waitFor();
  assert.equal(await queue.locator('li', { hasText: 'Ada' }).count(), 0);
  await grace.page.getByText('No private room is open.').waitFor();
  await grace.page.locator('#oh-analytics').getByText('1 student helped.').waitFor();
  await grace.page.getByLabel('Admit the next').fill('2');
  await grace.page.getByRole('button', { name: 'Admit together' }).click();
  await bobCard.getByText('Grace is ready for you.').waitFor();
  await cleoCard.getByText('Grace is ready for you.').waitFor();
  await grace.page.getByRole('article', { name: 'Room with Bob, Cleo' }).waitFor();
  await bobCard.getByRole('link', { name: 'Enter the private room' }).click();
  await bob.page.getByRole('heading', { name: /Office hours: Grace with/ }).waitFor();
  await bob.page.locator('.person', { hasText: 'Bob' }).waitFor();

  // Ada asks again; ending office hours tells her, and the room stays.
  await nav(ada.page, 'Office hours');
  await adaCard.getByLabel('Your question').fill('And tail calls?');
  await adaCard.getByRole('button', { name: 'Join the queue' }).click();
  await adaPlace.locator('.oh-position', { hasText: 'Your position: 1' }).waitFor();
  await grace.page.getByRole('button', { name: 'Close the queue' }).click();
  await ada.page.getByText('You are no longer in the office hours queue: the queue closed.').waitFor();
  await adaCard.getByText('Closed', { exact: true }).waitFor();
  await adaCard.getByRole('button', { name: 'Join the queue' }).waitFor({ state: 'detached' });
  await queue.getByText('The queue is closed.').waitFor();
  await grace.page.getByRole('article', { name: 'Room with Bob, Cleo' }).waitFor();
  await noToasts(grace.page);
  await shot(grace.page, 'office-hours-05-instructor-schedule-analytics.png');

  // The dashboard card says where things stand.
  await nav(ada.page, 'Dashboard');
  await ada.page.getByRole('region', { name: 'Office hours' }).getByText('Grace').waitFor();

  const problems = everyone.flatMap((p) => p.problems);
  assert.deepEqual(problems, [], 'no page errors, no alerts');
  for (const p of everyone) await p.context.close();
});
