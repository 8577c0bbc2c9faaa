// Steps many end-to-end tests share: signing up, a course with students,
// scheduling through the dialog, and REST calls made with a page's token.
import assert from 'node:assert/strict';

/** A datetime-local value `minutes` from now, in the browser's zone. */
export function localIn(minutes) {
  const d = new Date(Date.now() + minutes * 60000);
  return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
}

/** Signs up through the UI, the socket open; sets `who.id`. */
export async function signUp(who, role) {
  const { page } = who;
  await page.goto('/#/register');
  await page.getByLabel('Name').fill(who.name);
  await page.getByLabel('Email').fill(`user-${Date.now()}-${Math.random().toString(36).slice(2)}@example.com`);
  await page.getByLabel('Password (8 characters or more)').fill('correct horse');
  await page.getByLabel('I am').selectOption(role);
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.locator('#connection-state[data-state="open"]').waitFor();
  who.id = await page.evaluate(() => JSON.parse(localStorage.getItem('me')).id);
}

/** The instructor creates a course on the dashboard; each student enrolls with its code. Returns the code. */
export async function courseWith(instructor, title, students) {
  await instructor.page.getByLabel('New course title').fill(title);
  await instructor.page.getByRole('button', { name: 'Create course' }).click();
  const code = (await instructor.page.locator('.course-code').first().textContent()).trim();
  for (const student of students) {
    await student.page.getByLabel('Enroll with a course code').fill(code);
    await student.page.getByRole('button', { name: 'Enroll' }).click();
    await student.page.locator('section[aria-label="My courses"]', { hasText: title }).waitFor();
    // The instructor is a classmate from now on, without a reload.
    await student.page.locator('section[aria-label="Classmates"]', { hasText: instructor.name }).waitFor();
  }
  return code;
}

/** Schedules through the Sessions page's dialog; returns the new session. */
export async function schedule(page, title, startsInMinutes, lengthMinutes = 60) {
  if (!page.url().endsWith('#/sessions')) await page.goto('/#/sessions');
  await page.getByRole('button', { name: 'New session' }).click();
  await page.getByLabel('Title').fill(title);
  await page.getByLabel('Starts').fill(localIn(startsInMinutes));
  await page.getByLabel('Ends').fill(localIn(startsInMinutes + lengthMinutes));
  const created = page.waitForResponse((r) => r.url().endsWith('/api/live-sessions') && r.request().method() === 'POST');
  await page.getByRole('button', { name: 'Save' }).click();
  const response = await created.catch(async (error) => {
    const hint = await page.locator('dialog[open]').textContent().catch(() => '');
    throw new Error(`${title} not sent: ${error.message}; the dialog says: ${hint}`);
  });
  assert.equal(response.status(), 201, `${title} scheduled`);
  await page.locator('dialog[open]').waitFor({ state: 'detached' }).catch(() => {});
  return response.json();
}

/** A REST call with the page's token: [status, body]. */
export async function rest(page, method, path, body) {
  return page.evaluate(async ([m, p, b]) => {
    const headers = { Authorization: `Bearer ${localStorage.getItem('token')}`, Accept: 'application/json' };
    if (b !== undefined) headers['Content-Type'] = 'application/json';
    const response = await fetch(p, { method: m, headers, body: b === undefined ? undefined : JSON.stringify(b) });
    const text = await response.text();
    let data = text;
    try { data = JSON.parse(text); } catch { /* not JSON */ }
    return [response.status, data];
  }, [method, path, body]);
}
