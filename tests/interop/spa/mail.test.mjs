// Mail in a real browser: Debian's Chromium (playwright-core) against a Latchkey that sends
// its mail to a real SMTP server (tests/mail/smtp_sink.py, started by run.sh, writing each
// message as JSON into INTEROP_MAIL_DIR) and allows sign-up. Two people, end to end, in the
// middle of the SPA client's authorization request:
// - Grace forgot her password: "Forgot password?" on the login page, the mail's link, a new
//   password, then she signs in with it and comes back to the app with a code;
// - Hedy signs up: "Create an account", the mail's link opened in the same browser, consent,
//   and back to the app with a code.
// Screenshots of each new page, at desktop width and at 390 px, go to docs/screenshots/
// (INTEROP_SCREENSHOTS) and artifacts/.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (run tests/interop/run.sh mail)`);
  return value;
};
const issuer = env('INTEROP_MAIL_ISSUER');
const adminToken = env('INTEROP_ADMIN_TOKEN');
const clientId = env('INTEROP_SPA_CLIENT_ID');
const callback = `http://127.0.0.1:${env('INTEROP_SPA_PORT')}/callback.html`;
const mailDir = env('INTEROP_MAIL_DIR');
const artifacts = env('INTEROP_ARTIFACTS');
const screenshots = process.env.INTEROP_SCREENSHOTS;
const TIMEOUT = 15_000;

let browser;
let dir;
const problems = [];

async function shoot(page, name) {
  for (const [suffix, width] of [['desktop', 1100], ['390', 390]]) {
    await page.setViewportSize({ width, height: 800 });
    const file = `${name}-${suffix}.png`;
    await page.screenshot({ path: join(artifacts, file), fullPage: true });
    if (screenshots) await page.screenshot({ path: join(screenshots, file), fullPage: true });
  }
  await page.setViewportSize({ width: 1100, height: 800 });
}

/** A new browser context whose requests stay on the loopback and whose redirect to the
 * client's callback is answered here (the test reads the code from its URL). */
async function context() {
  const ctx = await browser.newContext({ viewport: { width: 1100, height: 800 } });
  ctx.setDefaultTimeout(TIMEOUT);
  await ctx.route('**/*', (route) => {
    const url = new URL(route.request().url());
    if (url.href.startsWith(callback)) {
      return route.fulfill({ status: 200, contentType: 'text/html', body: '<!doctype html><title>app</title><p>back in the app</p>' });
    }
    if (url.hostname === '127.0.0.1' || url.hostname === 'localhost') return route.continue();
    problems.push(`off-host request: ${url.href}`);
    return route.abort();
  });
  const page = await ctx.newPage();
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`console error on ${page.url()}: ${msg.text()}`);
  });
  return { ctx, page };
}

/** The SPA client's authorization request (PKCE S256). */
function authorizeUrl() {
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const query = new URLSearchParams({
    response_type: 'code', client_id: clientId, redirect_uri: callback, scope: 'openid email',
    state: randomBytes(8).toString('hex'), code_challenge: challenge, code_challenge_method: 'S256',
  });
  return `${issuer}/authorize?${query}`;
}

/** Waits for the first mail to `to` and returns it (as the sink wrote it). */
async function mailTo(to) {
  const deadline = Date.now() + TIMEOUT;
  while (Date.now() < deadline) {
    for (const name of await readdir(mailDir)) {
      if (!name.endsWith('.json')) continue;
      const mail = JSON.parse(await readFile(join(mailDir, name), 'utf8'));
      if (mail.to.includes(to)) return mail;
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`no mail to ${to}`);
}

function linkIn(mail, path) {
  const match = mail.text.match(new RegExp(`${issuer}${path}\\?token=[A-Za-z0-9_-]+`));
  assert.ok(match, `a ${path} link in: ${mail.text}`);
  return match[0];
}

async function admin(path, body) {
  const answer = await fetch(`${issuer}/admin${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await answer.text();
  assert.equal(answer.status, 201, text);
  return JSON.parse(text);
}

before(async () => {
  await mkdir(artifacts, { recursive: true });
  if (screenshots) await mkdir(screenshots, { recursive: true });
  dir = await mkdtemp(join(tmpdir(), 'latchkey-mail-'));
  browser = await chromium.launch({
    executablePath: process.env.INTEROP_CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'],
    timeout: 30_000,
  });
});

after(async () => {
  await browser?.close().catch(() => {});
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('a forgotten password is reset through the mailed link, then the app signs in', async () => {
  await admin('/users', {
    username: 'grace', password: 'an old passphrase nobody remembers',
    email: 'grace@example.test', email_verified: true, name: 'Grace Hopper',
  });
  const { ctx, page } = await context();
  await page.goto(authorizeUrl());
  await page.waitForURL((url) => url.href.startsWith(`${issuer}/login?`));
  const loginUrl = page.url();
  await page.getByRole('link', { name: 'Forgot password?' }).click();
  await page.waitForURL((url) => url.pathname === '/password/forgot');
  await shoot(page, 'password-forgot');
  await page.fill('input[name=login]', 'grace');
  await Promise.all([page.waitForURL(`${issuer}/password/forgot`), page.click('button[type=submit]')]);
  assert.match(await page.locator('main').innerText(), /If an account matches/);
  await shoot(page, 'password-forgot-sent');

  const mail = await mailTo('grace@example.test');
  assert.match(mail.subject, /Reset your password/);
  await page.goto(linkIn(mail, '/password/reset'));
  await shoot(page, 'password-reset');
  const fresh = 'lighthouse marmalade velocity';
  await page.fill('input[name=password]', fresh);
  await page.fill('input[name=password_confirm]', fresh);
  await Promise.all([page.waitForURL(`${issuer}/password/reset`), page.click('button[type=submit]')]);
  assert.match(await page.locator('h1').innerText(), /Password changed/);
  await shoot(page, 'password-reset-done');

  // Back to the app's login page: the new password works.
  await page.goto(loginUrl);
  await page.fill('input[name=username]', 'grace');
  await page.fill('input[name=password]', fresh);
  await Promise.all([
    page.waitForURL((url) => url.pathname === '/consent' || url.href.startsWith(callback)),
    page.click('form#login-form button[type=submit]'),
  ]);
  if (new URL(page.url()).pathname === '/consent') {
    await Promise.all([page.waitForURL((url) => url.href.startsWith(callback)), page.click('button[name=decision][value=allow]')]);
  }
  assert.ok(new URL(page.url()).searchParams.get('code'), 'the app got a code');
  await ctx.close();
});

test('a new person signs up in the middle of the request and returns to the app', async () => {
  const { ctx, page } = await context();
  await page.goto(authorizeUrl());
  await page.waitForURL((url) => url.href.startsWith(`${issuer}/login?`));
  await page.getByRole('link', { name: 'Create an account' }).click();
  await page.waitForURL((url) => url.pathname === '/signup');
  await shoot(page, 'signup');
  await page.fill('input[name=username]', 'hedy');
  await page.fill('input[name=email]', 'hedy@example.test');
  await page.fill('input[name=password]', 'frequency hopping torpedo');
  await Promise.all([page.waitForURL(`${issuer}/signup`), page.click('button[type=submit]')]);
  assert.match(await page.locator('main').innerText(), /open the link/);
  await shoot(page, 'signup-sent');

  const mail = await mailTo('hedy@example.test');
  assert.match(mail.subject, /finish signing up/);
  await page.goto(linkIn(mail, '/email/verify'));
  await page.waitForURL((url) => url.pathname === '/consent' || url.href.startsWith(callback));
  if (new URL(page.url()).pathname === '/consent') {
    await shoot(page, 'signup-consent');
    await Promise.all([page.waitForURL((url) => url.href.startsWith(callback)), page.click('button[name=decision][value=allow]')]);
  }
  assert.ok(new URL(page.url()).searchParams.get('code'), 'the app got a code');
  await ctx.close();
});

test('no page raised a script error or left the loopback', () => {
  assert.deepEqual(problems, []);
});
