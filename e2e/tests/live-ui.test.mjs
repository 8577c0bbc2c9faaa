// Issue 15, second batch, in a real browser: my status as the server knows
// it, a dashboard that follows the server, renames reaching open rooms,
// offline classmates with their last-seen time, and the room's details.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { shot } from '../support/browser.mjs';
import { stage } from '../support/stage.mjs';
import { courseWith, rest, schedule, signUp } from '../support/classroom.mjs';

const { person } = stage();

test('status menu: automatic activity kept apart, the real status after a reload, closes, fits a phone', { timeout: 120000 }, async () => {
  const grace = await person('Grace');
  const ada = await person('Ada');
  await signUp(grace, 'instructor');
  await signUp(ada, 'student');
  await courseWith(grace, 'Rust 101', [ada]);
  const session = await schedule(grace.page, 'Ownership', 2);
  const { page } = ada;

  // In the room, the activity is the automatic one, and the menu says so.
  await page.goto(`/#/sessions/${session.id}`);
  await page.locator('section[aria-label="Participants"] .person', { hasText: 'Ada' }).waitFor();
  const toggle = page.locator('#status-toggle');
  await toggle.click();
  const note = page.locator('#my-activity-auto');
  await note.waitFor();
  assert.match(await note.textContent(), /Set automatically: "In live session: Ownership"/);
  assert.equal(await page.getByLabel('Activity', { exact: true }).inputValue(), '', 'the automatic line is not put in my field');
  assert.equal(await page.getByLabel('Status', { exact: true }).inputValue(), '', 'Automatic');
  await shot(page, '30-status-menu-automatic.png');

  // Item 1: saving Do not disturb does not freeze the session's line as mine.
  await page.getByLabel('Status', { exact: true }).selectOption('dnd');
  await page.getByRole('button', { name: 'Save status' }).click();
  await page.getByText('Status saved.').first().waitFor();
  await page.locator('#my-status-label', { hasText: /^Do not disturb$/ }).waitFor();
  // Item 3: a change of page closes the menu.
  await page.getByRole('link', { name: 'Dashboard' }).click();
  await page.getByRole('heading', { name: 'Hello, Ada' }).waitFor();
  assert.equal(await page.locator('#status-panel').isHidden(), true, 'closed on a change of page');
  const [, mine] = await rest(page, 'GET', `/api/presence/user/${ada.id}`);
  assert.equal(mine.status, 'dnd');
  assert.equal(mine.activity, null, `the session's line went with the session: ${JSON.stringify(mine)}`);

  // Item 2: after a reload, the header and the menu show Do not disturb, and
  // saving an unrelated change keeps it.
  await page.reload();
  await page.locator('#my-status-label', { hasText: /^Do not disturb$/ }).waitFor();
  assert.equal(await page.locator('#status-toggle .status-dot').getAttribute('data-status'), 'dnd');
  await toggle.click();
  await page.waitForFunction(() => document.getElementById('my-status').value === 'dnd');
  await page.getByLabel('Activity', { exact: true }).fill('Reading chapter 4');
  await page.getByRole('button', { name: 'Save status' }).click();
  await page.getByText('Status saved.').first().waitFor();
  const [, after] = await rest(page, 'GET', `/api/presence/user/${ada.id}`);
  assert.deepEqual([after.status, after.activity, after.own.activityAutomatic], ['dnd', 'Reading chapter 4', false]);

  // Item 3: Escape closes it and gives focus back to the toggle; so does a click outside.
  assert.equal(await page.locator('#status-panel').isVisible(), true);
  await page.keyboard.press('Escape');
  assert.equal(await page.locator('#status-panel').isHidden(), true, 'Escape closes');
  assert.equal(await toggle.getAttribute('aria-expanded'), 'false');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'status-toggle', 'focus back on the toggle');
  await toggle.click();
  await page.locator('#status-panel').waitFor();
  await page.getByRole('heading', { name: 'Hello, Ada' }).click();
  assert.equal(await page.locator('#status-panel').isHidden(), true, 'a click outside closes');

  // Item 3: at 390 px the open menu is inside the screen.
  for (const width of [1280, 390]) {
    await page.setViewportSize({ width, height: 800 });
    await toggle.click();
    const box = await page.locator('#status-panel').boundingBox();
    assert.ok(box.x >= 0 && box.x + box.width <= width, `the menu fits at ${width}px: ${JSON.stringify(box)}`);
    if (width === 390) await shot(page, '31-status-menu-phone.png');
    await page.keyboard.press('Escape');
  }

  assert.deepEqual([...grace.problems, ...ada.problems], []);
  await grace.context.close();
  await ada.context.close();
});

test('the dashboard follows the server: a new session appears, Join opens at the 5-minute mark', { timeout: 120000 }, async () => {
  const grace = await person('Grace');
  const ada = await person('Ada');
  await signUp(grace, 'instructor');
  await signUp(ada, 'student');
  await courseWith(grace, 'Rust 101', [ada]);
  const { page } = ada;
  await page.getByRole('heading', { name: 'Hello, Ada' }).waitFor();
  const upcoming = page.locator('section[aria-label="Upcoming sessions"]');
  await upcoming.getByText('Nothing scheduled.').waitFor();

  // Scheduled while Ada watches: it appears without a reload.
  await schedule(grace.page, 'Pop quiz', 60);
  await upcoming.locator('article', { hasText: 'Pop quiz' }).waitFor({ timeout: 10000 });

  // One that opens for joining 12 s from now: Join turns on by itself.
  const [, courses] = await rest(grace.page, 'GET', '/api/courses');
  const start = Date.now() + 5 * 60000 + 12000;
  const [status] = await rest(grace.page, 'POST', '/api/live-sessions', {
    courseId: courses[0].id, title: 'Warm-up',
    scheduledStartTime: new Date(start).toISOString(), scheduledEndTime: new Date(start + 3600000).toISOString(),
  });
  assert.equal(status, 201);
  const join = upcoming.getByRole('button', { name: 'Join Warm-up' });
  await join.waitFor();
  assert.equal(await join.isDisabled(), true, 'not yet');
  await page.waitForFunction(() => !document.querySelector('button[aria-label="Join Warm-up"]').disabled, null, { timeout: 30000 });
  assert.ok(Date.now() >= start - 5 * 60000, 'not before its time');
  await shot(page, '32-dashboard-join-open.png');

  // Clicking "Dashboard" on the dashboard loads it again.
  const reloaded = page.waitForRequest((r) => r.url().includes('/api/live-sessions?'));
  await page.getByRole('link', { name: 'Dashboard' }).click();
  await reloaded;
  await join.click();
  await page.getByRole('heading', { name: 'Warm-up' }).waitFor();

  assert.deepEqual([...grace.problems, ...ada.problems], []);
  await grace.context.close();
  await ada.context.close();
});

test('a rename reaches open rooms; classmates who went offline stay listed with when they were last seen', { timeout: 120000 }, async () => {
  const grace = await person('Grace');
  const ada = await person('Ada');
  const bob = await person('Bob');
  await signUp(grace, 'instructor');
  await signUp(ada, 'student');
  await signUp(bob, 'student');
  await courseWith(grace, 'Rust 101', [ada, bob]);
  const session = await schedule(grace.page, 'Ownership', 2);

  // Item 9: the instructor renames the session; the heading of Ada's open room follows.
  for (const who of [ada, bob]) {
    await who.page.goto(`/#/sessions/${session.id}`);
    await who.page.getByRole('heading', { name: 'Ownership' }).waitFor();
  }
  const participants = ada.page.locator('section[aria-label="Participants"]');
  await participants.locator('ul[aria-label="Participants"] .person', { hasText: 'Bob' }).waitFor();
  const [renamed] = await rest(grace.page, 'PUT', `/api/live-sessions/${session.id}`, { title: 'Ownership and borrowing' });
  assert.equal(renamed, 200);
  await ada.page.getByRole('heading', { name: 'Ownership and borrowing' }).waitFor();
  assert.equal(await ada.page.locator('#session-title').textContent(), 'Ownership and borrowing');

  // Item 8: Bob leaves the room: he stays in the list, as having left.
  await bob.page.getByRole('link', { name: 'Dashboard' }).click();
  const leftLine = participants.locator('ul[aria-label="Left the session"] li', { hasText: 'Bob' });
  await leftLine.waitFor();
  assert.match(await leftLine.locator('.joined').textContent(), /^left \d/);
  assert.equal(await participants.locator('ul[aria-label="Participants"] li', { hasText: 'Bob' }).count(), 0);
  await shot(ada.page, '33-room-left.png');

  // Item 8: Bob closes his browser: Ada's dashboard lists him offline, last seen just now.
  await ada.page.getByRole('link', { name: 'Dashboard' }).click();
  const classmates = ada.page.locator('section[aria-label="Classmates"]');
  await classmates.locator('ul[aria-label="Online now"] li', { hasText: 'Bob' }).waitFor();
  await bob.context.close();
  const offline = classmates.locator('ul[aria-label="Offline"] li', { hasText: 'Bob' });
  await offline.waitFor();
  assert.equal(await offline.locator('.last-seen').textContent(), 'last seen just now');
  assert.equal(await offline.locator('.dot').getAttribute('data-status'), 'offline');
  for (const width of [1280, 390]) {
    await ada.page.setViewportSize({ width, height: 800 });
    const card = await classmates.boundingBox();
    const line = await offline.boundingBox();
    assert.ok(line.x + line.width <= card.x + card.width + 0.5, `the line stays in its card at ${width}px`);
    await shot(ada.page, `34-classmates-${width}.png`);
  }

  assert.deepEqual([...grace.problems, ...ada.problems, ...bob.problems], []);
  await grace.context.close();
  await ada.context.close();
});

test('room details: typing after sending, votes given, no reminder for the room I am in, plan colours, disabled look, no emoji icon, chat before the start', { timeout: 150000 }, async () => {
  const grace = await person('Grace');
  const ada = await person('Ada');
  const bob = await person('Bob');
  await signUp(grace, 'instructor');
  await signUp(ada, 'student');
  await signUp(bob, 'student');
  await courseWith(grace, 'Rust 101', [ada, bob]);

  // The disabled recording field of a new session looks disabled and says why.
  await grace.page.goto('/#/sessions');
  await grace.page.getByRole('button', { name: 'New session' }).click();
  const recording = grace.page.getByLabel('Recording link (optional)');
  assert.equal(await recording.isDisabled(), true);
  const look = (locator) => locator.evaluate((el) => { const s = getComputedStyle(el); return [s.backgroundColor, s.borderStyle]; });
  const [disabledLook, enabledLook] = [await look(recording), await look(grace.page.getByLabel('Title'))];
  assert.notDeepEqual(disabledLook, enabledLook, 'a disabled field does not look like an enabled one');
  assert.equal(disabledLook[1], 'dashed');
  assert.equal(await grace.page.locator('#s-recording-hint').textContent(), 'You can add the recording link once the session is created.');
  await shot(grace.page, '35-new-session-dialog.png');
  await grace.page.getByRole('button', { name: 'Close' }).click();
  const session = await schedule(grace.page, 'Ownership', 2);

  // Ada's socket frames, to know when the "has started" notification reached her page.
  let startedReached;
  const startedFrame = new Promise((resolve) => { startedReached = resolve; });
  ada.page.on('websocket', (ws) => ws.on('framereceived', (f) => {
    const text = String(f.payload);
    if (text.includes('"notification"') && text.includes('has started')) startedReached();
  }));
  for (const who of [grace, ada, bob]) {
    await who.page.goto(`/#/sessions/${session.id}`);
    await who.page.getByRole('heading', { name: 'Ownership' }).waitFor();
  }
  await ada.page.reload();
  await ada.page.getByRole('heading', { name: 'Ownership' }).waitFor();
  await ada.page.locator('ul[aria-label="Participants"] .person', { hasText: 'Bob' }).waitFor();
  await grace.page.locator('ul[aria-label="Participants"] .person', { hasText: 'Ada' }).waitFor();

  // Decided: before the start the room is a waiting room, chat open, and it says so.
  assert.match(await ada.page.locator('#room-waiting').textContent(), /Not started yet: Grace will start the session\. You can chat and ask questions while you wait\./);
  assert.equal(await ada.page.getByRole('textbox', { name: 'Chat message' }).isDisabled(), false);

  // Typing right after sending shows on the others' screens.
  const box = ada.page.getByRole('textbox', { name: 'Chat message' });
  await box.fill('First message');
  await box.press('Enter');
  await grace.page.locator('.msg .text', { hasText: 'First message' }).waitFor();
  await grace.page.locator('.typing', { hasText: /^$/ }).waitFor();
  await box.pressSequentially('and');
  await grace.page.locator('.typing', { hasText: 'Ada is typing…' }).waitFor({ timeout: 1500 });

  // Upvotes: Bob's own question cannot be upvoted by him; Ada's vote shows as given.
  await bob.page.getByLabel('Your question').fill('What is a borrow?');
  await bob.page.getByRole('button', { name: 'Ask' }).click();
  await bob.page.getByRole('button', { name: 'Your question: What is a borrow?' }).waitFor();
  assert.equal(await bob.page.getByRole('button', { name: 'Your question: What is a borrow?' }).isDisabled(), true);
  await ada.page.getByRole('button', { name: 'Upvote: What is a borrow?' }).click();
  const given = ada.page.getByRole('button', { name: 'Upvoted: What is a borrow?' });
  await given.waitFor();
  assert.equal(await given.getAttribute('aria-pressed'), 'true');
  assert.equal(await given.isDisabled(), true);
  assert.match(await given.textContent(), /1 vote · voted/);
  // Another device (nothing remembered) offers the vote: the server's
  // "already voted" shows as the vote given, not as an error.
  await ada.page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith('voted:')).forEach((k) => localStorage.removeItem(k)));
  await ada.page.reload();
  await ada.page.getByRole('button', { name: 'Upvote: What is a borrow?' }).click();
  await given.waitFor();
  assert.equal(await ada.page.locator('.toast.error').count(), 0, 'no error for a second vote');

  // Pinned: a drawn mark, no emoji that a font may lack.
  await grace.page.getByRole('button', { name: 'Pin' }).click();
  const pinned = ada.page.locator('.question.pinned .text');
  await pinned.locator('.pin-mark svg').waitFor();
  assert.doesNotMatch(await pinned.textContent(), /\p{Extended_Pictographic}/u);
  assert.doesNotMatch(await ada.page.locator('main').textContent(), /\p{Extended_Pictographic}/u, 'no emoji in the room');

  // "Has started, join now" is not shown to Ada, who is in the room.
  await grace.page.getByRole('button', { name: 'Start session' }).click();
  await ada.page.waitForFunction(() => document.querySelector('.status')?.textContent === 'active');
  await startedFrame;
  // A message sent after it, on the same socket, shown: the notification was handled before.
  await grace.page.getByRole('textbox', { name: 'Chat message' }).fill('We have started');
  await grace.page.getByRole('button', { name: 'Send' }).click();
  await ada.page.locator('.msg .text', { hasText: 'We have started' }).waitFor();
  assert.equal(await ada.page.locator('.toast', { hasText: 'has started' }).count(), 0, 'no "has started" toast in the room');
  assert.equal(await ada.page.locator('#room-waiting').isHidden(), true, 'started: no waiting note');

  // The plan's colours: green online, orange away, red busy and do not disturb.
  const dot = (page, id) => page.locator(`ul[aria-label="Participants"] .dot[data-user-id="${id}"]`);
  const colour = (locator) => locator.evaluate((el) => getComputedStyle(el).backgroundColor);
  assert.equal(await colour(dot(grace.page, bob.id)), 'rgb(30, 142, 62)', 'online is green');
  for (const [status, rgb] of [['away', 'rgb(227, 116, 0)'], ['busy', 'rgb(197, 34, 31)'], ['dnd', 'rgb(197, 34, 31)']]) {
    await bob.page.locator('#status-toggle').click();
    await bob.page.getByLabel('Status', { exact: true }).selectOption(status);
    await bob.page.getByRole('button', { name: 'Save status' }).click();
    await bob.page.keyboard.press('Escape');
    await grace.page.locator(`ul[aria-label="Participants"] .dot[data-user-id="${bob.id}"][data-status="${status}"]`).waitFor();
    assert.equal(await colour(dot(grace.page, bob.id)), rgb, `${status} colour`);
  }
  await shot(grace.page, '36-room-colours.png');

  assert.deepEqual([...grace.problems, ...ada.problems, ...bob.problems], []);
  for (const who of [grace, ada, bob]) await who.context.close();
});

test('attendance: students counted, the instructor not, absentees listed, "1 minute", CSV export', { timeout: 120000 }, async () => {
  const grace = await person('Grace');
  const ada = await person('Ada');
  const bob = await person('Bob');
  const cleo = await person('Cleo');
  await signUp(grace, 'instructor');
  for (const student of [ada, bob, cleo]) await signUp(student, 'student');
  await courseWith(grace, 'Rust 101', [ada, bob, cleo]);
  const session = await schedule(grace.page, 'Ownership', 2);
  for (const who of [grace, ada, bob]) {
    await who.page.goto(`/#/sessions/${session.id}`);
    await who.page.getByRole('heading', { name: 'Ownership' }).waitFor();
  }
  await grace.page.locator('ul[aria-label="Participants"] .person', { hasText: 'Bob' }).waitFor();
  await grace.page.locator('ul[aria-label="Participants"] .person', { hasText: 'Ada' }).waitFor();
  // Their arrivals are stored (the room shows people before that).
  await grace.page.waitForFunction(async (id) => {
    const response = await fetch(`/api/live-sessions/${id}/attendees`, { headers: { Authorization: `Bearer ${localStorage.getItem('token')}` } });
    return response.ok && (await response.json()).length === 3;
  }, session.id, { polling: 100 });
  await grace.page.getByRole('button', { name: 'Start session' }).click();
  await grace.page.getByRole('button', { name: 'End session' }).click();
  await grace.page.getByRole('link', { name: 'See attendance' }).click();

  const count = grace.page.locator('#attendance-count');
  await count.waitFor();
  assert.equal(await count.textContent(), '2 of 3 students attended');
  const rows = grace.page.locator('table[aria-label="Attendees"] tbody tr');
  assert.equal(await rows.count(), 2, 'Ada and Bob, not the instructor');
  assert.deepEqual(await rows.locator('td:first-child').allTextContents(), ['Ada', 'Bob']);
  assert.deepEqual(await grace.page.locator('#absentees li').allTextContents(), ['Cleo'], 'who never came');
  assert.doesNotMatch(await grace.page.locator('main').textContent(), /\b1 minutes\b/);
  const words = await grace.page.evaluate(async () => {
    const { minutesText, studentsText } = await import('/js/pages/attendance.js');
    return [minutesText(1), minutesText(1.04), minutesText(0.5), minutesText(12), minutesText(0.01), minutesText(0), studentsText(1), studentsText(3)];
  });
  assert.deepEqual(words, ['1 minute', '1 minute', '0.5 minutes', '12 minutes', 'less than a minute', '0 minutes', '1 student', '3 students']);

  const download = grace.page.waitForEvent('download');
  await grace.page.getByRole('button', { name: 'Download CSV' }).click();
  const file = await download;
  assert.equal(file.suggestedFilename(), 'attendance-Ownership.csv');
  const { readFile } = await import('node:fs/promises');
  const lines = (await readFile(await file.path(), 'utf8')).split('\r\n');
  assert.equal(lines[0], 'name,status,joined_at,left_at,minutes_present');
  assert.match(lines[1], /^Ada,present,\d{4}-/);
  assert.match(lines[2], /^Bob,present,\d{4}-/);
  assert.equal(lines[3], 'Cleo,absent,,,0.0');
  for (const width of [1280, 390]) {
    await grace.page.setViewportSize({ width, height: 800 });
    const table = await grace.page.locator('table[aria-label="Attendees"]').boundingBox();
    assert.ok(table.x >= 0 && table.x + table.width <= width, `the table fits at ${width}px`);
    await shot(grace.page, `37-attendance-${width}.png`);
  }

  assert.deepEqual([...grace.problems, ...ada.problems, ...bob.problems, ...cleo.problems], []);
  for (const who of [grace, ada, bob, cleo]) await who.context.close();
});

test('a short course join code, typed as heard, and a clear word for a wrong one', { timeout: 90000 }, async () => {
  const grace = await person('Grace');
  const ada = await person('Ada');
  await signUp(grace, 'instructor');
  await signUp(ada, 'student');
  await grace.page.getByLabel('New course title').fill('Rust 101');
  await grace.page.getByRole('button', { name: 'Create course' }).click();
  const code = (await grace.page.locator('.course-code').first().textContent()).trim();
  assert.match(code, /^[A-HJ-NP-Z2-9]{4}-[A-HJ-NP-Z2-9]{4}$/, `a code to read out: ${code}`);
  await shot(grace.page, '38-join-code.png');

  const { page } = ada;
  const field = page.getByLabel('Enroll with a course code');
  await field.fill('ZZZZ-ZZZZ');
  await page.getByRole('button', { name: 'Enroll' }).click();
  const problem = page.locator('#course-code-error');
  await problem.filter({ hasText: 'No course has the code ZZZZ-ZZZZ. Check it with your instructor.' }).waitFor();
  assert.equal(await field.getAttribute('aria-invalid'), 'true');
  assert.doesNotMatch(await problem.textContent(), /resource|id\b/i);
  await field.fill('abc');
  await page.getByRole('button', { name: 'Enroll' }).click();
  await problem.filter({ hasText: 'A course code is 8 letters and digits' }).waitFor();
  for (const width of [1280, 390]) {
    await page.setViewportSize({ width, height: 800 });
    await shot(page, `39-wrong-code-${width}.png`);
  }

  await field.fill(code.toLowerCase().replace('-', ' '));
  await page.getByRole('button', { name: 'Enroll' }).click();
  await page.locator('section[aria-label="My courses"]', { hasText: 'Rust 101' }).waitFor();
  assert.equal(await problem.textContent(), '');

  assert.deepEqual([...grace.problems, ...ada.problems], []);
  await grace.context.close();
  await ada.context.close();
});
