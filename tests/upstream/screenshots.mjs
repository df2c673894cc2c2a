// Screenshots of the login page with upstream buttons (docs/screenshots/), in Debian's
// Chromium driven by playwright-core. Run by screenshots.sh, which starts Latchkey with a
// client and three upstreams; this opens AUTHORIZE_URL and captures the login page it
// lands on at desktop width and at 390 px (a phone).
//
// Usage: node screenshots.mjs AUTHORIZE_URL OUT_DIR

import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { chromium } from 'playwright-core';

const [authorizeUrl, outDir] = process.argv.slice(2);
const userDataDir = await mkdtemp(join(tmpdir(), 'latchkey-screenshots-'));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: process.env.INTEROP_CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'],
  viewport: { width: 1280, height: 860 },
});
const page = context.pages()[0] ?? await context.newPage();
for (const [name, width, height] of [['login-upstreams-desktop', 1280, 860], ['login-upstreams-390', 390, 844]]) {
  await page.setViewportSize({ width, height });
  await page.goto(authorizeUrl);
  await page.waitForSelector('button[name="upstream"]');
  const buttons = await page.locator('button[name="upstream"]').count();
  if (buttons !== 3) throw new Error(`expected 3 upstream buttons, found ${buttons}`);
  await page.screenshot({ path: join(outDir, `${name}.png`), fullPage: true });
  console.log(`wrote ${name}.png`);
}
await context.close();
