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

/** A person in their own browser context, failing the test on any page error or alert. */
export async function person(browser, baseURL, name) {
  const context = await browser.newContext({ baseURL, viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (error) => problems.push(`${name}: page error ${error.message}`));
  page.on('dialog', async (dialog) => {
    problems.push(`${name}: unexpected ${dialog.type()} "${dialog.message()}"`);
    await dialog.dismiss();
  });
  return { name, context, page, problems };
}

export async function shot(page, file) {
  await page.screenshot({ path: resolve(SCREENSHOTS, file), fullPage: true });
}
