// A study group in a real browser: three classmates (an instructor's course
// makes them classmates), a private group, invitations accepted from the
// list, a live chat with presence dots, unread counts on the dashboard and
// the "New messages" line, edits and deletes seen by everyone, a planned
// group session, and an admin's member management. Through the UI only.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { register, shot } from '../support/browser.mjs';
import { stage } from '../support/stage.mjs';

const GROUP = 'Graph Theory Crew';
const DROP_IN = 'Dynamic Programming Drop-in';
const { person } = stage();

async function say(who, text) {
  await who.page.getByRole('textbox', { name: 'Chat message' }).fill(text);
  await who.page.getByRole('button', { name: 'Send' }).click();
  await who.page.locator('.msg .text', { hasText: text }).waitFor();
}

const message = (page, text) => page.locator('.msg .text', { hasText: text });
const memberDot = (page, userId, status) => page.locator(`.member-list .dot[data-user-id="${userId}"][data-status="${status}"]`);
const dashboardGroup = (page) => page.getByRole('region', { name: 'My study groups' }).locator('li', { hasText: GROUP });

/** A datetime-local value `minutes` from now, in the browser's zone. */
function localIn(minutes) {
  const d = new Date(Date.now() + minutes * 60000);
  return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
}

test('three classmates in a private study group', { timeout: 180000 }, async () => {
  const grace = await person('Grace');
  const ada = await person('Ada');
  const bob = await person('Bob');
  const cleo = await person('Cleo');
  const everyone = [grace, ada, bob, cleo];

  // An instructor's course makes the three students classmates.
  await register(grace, 'instructor');
  await grace.page.getByLabel('New course title').fill('Algorithms');
  await grace.page.getByRole('button', { name: 'Create course' }).click();
  const code = (await grace.page.locator('.course-code').first().textContent()).trim();
  await grace.context.close();
  for (const student of [ada, bob, cleo]) {
    await register(student, 'student');
    await student.page.getByLabel('Enroll with a course code').fill(code);
    await student.page.getByRole('button', { name: 'Enroll' }).click();
    await student.page.getByText('Algorithms').first().waitFor();
  }

  // Ada creates a private group of the course.
  await ada.page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Groups' }).click();
  await ada.page.getByRole('heading', { name: 'Study groups' }).waitFor();
  await ada.page.getByText('You are in no study group yet.').waitFor();
  await ada.page.getByLabel('Group name').fill(GROUP);
  await ada.page.getByLabel('Description (optional)').fill('Weekly problem sets <b>together</b>');
  await ada.page.getByLabel('Course (optional)').selectOption({ label: 'Algorithms' });
  await ada.page.getByLabel('Who can join').selectOption('private');
  await ada.page.getByLabel('Member limit (optional)').fill('6');
  await ada.page.getByRole('button', { name: 'Create group' }).click();
  await ada.page.getByRole('heading', { name: GROUP, level: 1 }).waitFor();
  assert.equal(await ada.page.locator('.group-description').textContent(), 'Weekly problem sets <b>together</b>', 'the description is text');
  await ada.page.locator('.badge', { hasText: 'Private' }).waitFor();
  await ada.page.locator('.badge', { hasText: 'Algorithms' }).waitFor();
  await ada.page.locator('.member-list li', { hasText: '(you)' }).locator('.badge', { hasText: 'admin' }).waitFor();

  // She invites Bob and Cleo, who are online on their dashboards; the
  // invitation reaches each of them live.
  for (const invitee of [bob, cleo]) {
    await ada.page.getByLabel('Classmate', { exact: true }).selectOption({ label: invitee.name });
    await ada.page.getByRole('button', { name: 'Invite', exact: true }).click();
    await ada.page.getByText(`${invitee.name} is invited.`).waitFor();
    await invitee.page.getByText(`Ada invited you to ${GROUP}`).waitFor();
  }

  // They accept it from their list of invitations.
  for (const invitee of [bob, cleo]) {
    const { page } = invitee;
    await page.getByRole('region', { name: 'My study groups' }).getByRole('link', { name: '1 invitation waiting' }).click();
    await page.getByRole('heading', { name: 'Study groups' }).waitFor();
    await page.locator('.invite', { hasText: GROUP }).getByText('Invited by Ada').waitFor();
    if (invitee === cleo) await shot(page, 'groups-01-invitation.png');
    await page.getByRole('button', { name: `Accept the invitation to ${GROUP}` }).click();
    await page.getByRole('article', { name: `Group ${GROUP}` }).waitFor();
    await page.getByText('No invitations.').waitFor();
  }

  // Bob opens a public group of his own; Cleo finds it and joins.
  await bob.page.getByLabel('Group name').fill(DROP_IN);
  await bob.page.getByLabel('Who can join').selectOption('public');
  await bob.page.getByRole('button', { name: 'Create group' }).click();
  await bob.page.getByRole('heading', { name: DROP_IN, level: 1 }).waitFor();
  await cleo.page.getByLabel('Search public groups').fill('drop-IN');
  await cleo.page.getByRole('button', { name: `Join ${DROP_IN}` }).click();
  await cleo.page.getByRole('heading', { name: DROP_IN, level: 1 }).waitFor();
  await bob.page.locator('.member-list li', { hasText: 'Cleo' }).waitFor();

  // Everyone in the private group's room: presence dots, chat both ways.
  for (const member of [bob, cleo]) {
    await member.page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Groups' }).click();
    await member.page.getByRole('article', { name: `Group ${GROUP}` }).getByRole('link', { name: GROUP }).click();
    await member.page.getByRole('heading', { name: GROUP, level: 1 }).waitFor();
  }
  await ada.page.locator('.member-list li').nth(2).waitFor();
  await memberDot(ada.page, bob.id, 'online').waitFor();
  await memberDot(ada.page, cleo.id, 'online').waitFor();
  await memberDot(bob.page, ada.id, 'online').waitFor();
  await ada.page.locator('.member-list li', { hasText: 'Cleo' }).locator('.here').waitFor();
  await ada.page.locator('#group-stats', { hasText: '3 members of 6 · 3 online now' }).waitFor();

  await say(ada, 'Hi both! Problem set 3 tonight?');
  await message(bob.page, 'Hi both! Problem set 3 tonight?').waitFor();
  await message(cleo.page, 'Hi both! Problem set 3 tonight?').waitFor();
  await say(bob, 'Yes, I am stuck on Dijkstra');
  await message(ada.page, 'Yes, I am stuck on Dijkstra').waitFor();
  await message(cleo.page, 'Yes, I am stuck on Dijkstra').waitFor();
  // Typing is sent (and shown) at most once per 2 s per person: his message
  // just now counted as typing.
  await bob.page.waitForTimeout(2100);
  await bob.page.getByRole('textbox', { name: 'Chat message' }).pressSequentially('hmm');
  await ada.page.getByText('Bob is typing…').waitFor();
  await bob.page.getByRole('textbox', { name: 'Chat message' }).fill('');

  // Bob plans a group session; Ada sees it without reloading.
  await bob.page.getByLabel('Session title').fill('Exam review');
  await bob.page.getByLabel('Starts').fill(localIn(60));
  await bob.page.getByLabel('Ends').fill(localIn(120));
  await bob.page.getByRole('button', { name: 'Schedule' }).click();
  await bob.page.getByText('Group session scheduled.').waitFor();
  await ada.page.getByRole('list', { name: 'Upcoming group sessions' }).getByText('Exam review').waitFor();

  // Cleo is on her dashboard while Ada writes: the unread count shows there.
  await cleo.page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Dashboard' }).click();
  await dashboardGroup(cleo.page).waitFor();
  assert.equal(await dashboardGroup(cleo.page).locator('.unread-badge').count(), 0, 'all read when she left');
  await say(ada, 'Unread one: BFS first');
  await say(ada, 'Unread two: then Dijkstra');
  await dashboardGroup(cleo.page).getByLabel('2 unread messages').waitFor();
  await shot(cleo.page, 'groups-02-dashboard-unread.png');

  // Her group card says the same; she opens the room from it: the "New
  // messages" line is above the first unread message.
  await cleo.page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Groups' }).click();
  const unreadCard = cleo.page.getByRole('article', { name: `Group ${GROUP}` });
  await unreadCard.getByLabel('2 unread messages').waitFor();
  await cleo.page.getByRole('article', { name: `Group ${DROP_IN}` }).waitFor();
  await cleo.page.locator('.toast').first().waitFor({ state: 'detached' }); // a clear picture
  await shot(cleo.page, 'groups-03-list-unread.png');
  await unreadCard.getByRole('link', { name: GROUP }).click();
  const marker = cleo.page.getByRole('separator', { name: 'New messages' });
  await marker.waitFor();
  await message(cleo.page, 'Unread two: then Dijkstra').waitFor();
  const afterMarker = await marker.evaluate((el) => el.nextElementSibling.textContent);
  assert.match(afterMarker, /Unread one: BFS first/, 'the line is right above the first unread message');
  const beforeMarker = await marker.evaluate((el) => el.previousElementSibling.textContent);
  assert.match(beforeMarker, /stuck on Dijkstra/, 'what she had read is above the line');
  await shot(cleo.page, 'groups-04-room-new-messages.png');

  // Ada edits one message and deletes the other: everyone sees it.
  await ada.page.getByRole('button', { name: 'Edit message: Unread one: BFS first' }).click();
  await ada.page.getByRole('textbox', { name: 'Edit message' }).fill('Unread one: BFS first, then DFS');
  await ada.page.getByRole('button', { name: 'Save' }).click();
  for (const other of [bob, cleo]) {
    await other.page.locator('.msg', { hasText: 'edited' }).locator('.text', { hasText: 'Unread one: BFS first, then DFS' }).waitFor();
  }
  await ada.page.getByRole('button', { name: 'Delete message: Unread two: then Dijkstra' }).click();
  for (const other of [bob, cleo]) {
    await other.page.locator('.msg.deleted', { hasText: 'message deleted' }).waitFor();
    assert.equal(await message(other.page, 'Unread two').count(), 0, 'the deleted text is gone');
  }
  assert.equal(await cleo.page.locator('.msg', { hasText: 'Hi both!' }).getByRole('button', { name: /^Edit message/ }).count(), 0,
    'no edit on others\' messages');
  await say(cleo, 'Thanks, reading it now');
  await message(ada.page, 'Thanks, reading it now').waitFor();
  await shot(ada.page, 'groups-05-room-admin.png');

  // Having read in the room, Cleo's group card shows nothing unread.
  await cleo.page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Groups' }).click();
  const card = cleo.page.getByRole('article', { name: `Group ${GROUP}` });
  await card.waitFor();
  await card.getByText('3 online now').waitFor();
  assert.equal(await card.locator('.unread-badge').count(), 0, 'mark-read cleared the count');

  // Cleo leaves the site: her dot turns grey for Ada.
  await cleo.context.close();
  await memberDot(ada.page, cleo.id, 'offline').waitFor({ timeout: 15000 });
  await ada.page.locator('#group-stats', { hasText: '2 online now' }).waitFor();

  // The admin's tools: Bob is made an admin (his page follows), then Ada
  // removes Bob, whose page leaves the room with a message.
  await ada.page.getByRole('button', { name: 'Make Bob an admin' }).click();
  await ada.page.locator('.member-list li', { hasText: 'Bob' }).locator('.badge', { hasText: 'admin' }).waitFor();
  await bob.page.getByRole('button', { name: 'Edit group' }).waitFor();
  await ada.page.getByRole('button', { name: 'Make Bob a member' }).click();
  await bob.page.getByRole('button', { name: 'Edit group' }).waitFor({ state: 'detached' });
  await ada.page.getByRole('button', { name: 'Remove Bob from the group' }).click();
  await bob.page.getByText(`You are no longer a member of ${GROUP}.`).waitFor();
  await bob.page.getByRole('heading', { name: 'Study groups' }).waitFor();
  await ada.page.locator('.member-list li', { hasText: 'Bob' }).waitFor({ state: 'detached' });

  // Phone width still works.
  await ada.page.setViewportSize({ width: 390, height: 844 });
  await ada.page.getByRole('textbox', { name: 'Chat message' }).waitFor();
  await shot(ada.page, 'groups-06-phone.png');

  const problems = everyone.flatMap((p) => p.problems);
  assert.deepEqual(problems, [], 'no page errors, no alerts');
  await ada.context.close();
  await bob.context.close();
});
