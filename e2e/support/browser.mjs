// Debian's Chromium, headless, driven by playwright-core.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';

export const SCREENSHOTS = resolve(import.meta.dirname, '../screenshots');

export async function launch() {
  mkdirSync(SCREENSHOTS, { recursive: true });
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/**
 * A person in their own browser context, failing the test on any page error
 * or alert; `options` are more of playwright's context options (`timezoneId`).
 */
export async function person(browser, baseURL, name, options = {}) {
  const context = await browser.newContext({ baseURL, viewport: { width: 1280, height: 900 }, ...options });
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (error) => problems.push(`${name}: page error ${error.message}`));
  page.on('dialog', async (dialog) => {
    problems.push(`${name}: unexpected ${dialog.type()} "${dialog.message()}"`);
    await dialog.dismiss();
  });
  return { name, context, page, problems };
}

/** Registers `who` through the UI as `role`, signed in with the socket open; sets `who.id`. */
export async function register(who, role) {
  const { page } = who;
  await page.goto('/#/register');
  await page.getByLabel('Name').fill(who.name);
  await page.getByLabel('Email').fill(`${who.name.toLowerCase()}-${Date.now()}@example.com`);
  await page.getByLabel('Password (8 characters or more)').fill('correct horse');
  await page.getByLabel('I am').selectOption(role);
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.getByRole('heading', { name: `Hello, ${who.name}` }).waitFor();
  await page.locator('#connection-state[data-state="open"]').waitFor();
  who.id = await page.evaluate(() => JSON.parse(localStorage.getItem('me')).id);
}

export async function shot(page, file) {
  await page.screenshot({ path: resolve(SCREENSHOTS, file), fullPage: true });
}
