// Mail in a real browser: Debian's Chromium (playwright-core) against a Latchkey that sends
// its mail to a real SMTP server (tests/mail/smtp_sink.py, started by run.sh, writing each
// message as JSON into INTEROP_MAIL_DIR), allows sign-up and requires a verified address.
// The relying party is the SPA (oidc-client-ts, served by server.mjs on its registered
// redirect URI), so each flow ends back in the app, signed in with tokens. Three people, end
// to end, each starting from the app's "Log in":
// - Grace forgot her password: "Forgot password?" on the login page, the mail's link, a new
//   password (a common one refused first), then she signs in with it and is back in the app;
// - Hedy signs up: "Create an account", the mail's link opened in the same browser, consent,
//   and back in the app;
// - Katherine's address is not verified yet: her login stops at "check your mail" until she
//   follows the mailed link, then goes on to the app.
// Screenshots of each of these pages, at desktop width and at 390 px, go to docs/screenshots/
// (INTEROP_SCREENSHOTS) and artifacts/.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { startSpaServer } from './server.mjs';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (run tests/interop/run.sh mail)`);
  return value;
};
const issuer = env('INTEROP_MAIL_ISSUER');
const adminToken = env('INTEROP_ADMIN_TOKEN');
const clientId = env('INTEROP_SPA_CLIENT_ID');
const spaPort = Number(env('INTEROP_SPA_PORT'));
const spa = `http://127.0.0.1:${spaPort}`;
const mailDir = env('INTEROP_MAIL_DIR');
const artifacts = env('INTEROP_ARTIFACTS');
const screenshots = process.env.INTEROP_SCREENSHOTS;
const TIMEOUT = 15_000;

let browser;
let server;
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

/** A new browser context whose requests stay on the loopback. */
async function context() {
  const ctx = await browser.newContext({ viewport: { width: 1100, height: 800 } });
  ctx.setDefaultTimeout(TIMEOUT);
  await ctx.route('**/*', (route) => {
    const url = new URL(route.request().url());
    if (url.hostname === '127.0.0.1' || url.hostname === 'localhost') return route.continue();
    problems.push(`off-host request: ${url.href}`);
    return route.abort();
  });
  const page = await ctx.newPage();
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    // A refused form comes back with its 4xx status, which Chromium reports for the document.
    const documentStatus = msg.text().startsWith('Failed to load resource: the server responded with a status of 4')
      && msg.location().url === page.url();
    if (!documentStatus) problems.push(`console error on ${page.url()}: ${msg.text()}`);
  });
  return { ctx, page };
}

/** The app, signed out; its "Log in" leads to Latchkey's login page, whose URL is returned. */
async function startAtTheApp(page) {
  await page.goto(`${spa}/index.html`);
  await page.locator('#status', { hasText: 'signed out' }).waitFor();
  await page.click('button#login');
  await page.waitForURL((url) => url.href.startsWith(`${issuer}/login?`));
  return page.url();
}

/** Allows on the consent page when it is shown, then checks that the app is signed in as
 * `name` (from userinfo) and holds an access, ID and refresh token. */
async function backInTheApp(page, name) {
  await page.waitForURL((url) => url.pathname === '/consent' || url.href.startsWith(`${spa}/index.html`));
  if (new URL(page.url()).pathname === '/consent') {
    await Promise.all([
      page.waitForURL(`${spa}/index.html`),
      page.click('button[name=decision][value=allow]'),
    ]);
  }
  await page.locator('#status', { hasText: 'signed in' }).waitFor();
  assert.equal(await page.locator('#name').innerText(), name);
  assert.match(await page.locator('#access-token').innerText(), /^[\w-]+\.[\w-]+\.[\w-]+$/, 'an access token');
  const stored = await page.evaluate(() => {
    const key = Object.keys(sessionStorage).find((k) => k.startsWith('oidc.user:'));
    return key && JSON.parse(sessionStorage.getItem(key));
  });
  assert.ok(stored?.id_token && stored?.refresh_token, 'the app holds an ID token and a refresh token');
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
  // The app the flows return to, on the port its redirect URI names.
  server = await startSpaServer({ port: spaPort, issuer, clientId });
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
  await new Promise((resolve) => (server ? server.close(resolve) : resolve()));
});

test('a forgotten password is reset through the mailed link, then the app signs in', async () => {
  await admin('/users', {
    username: 'grace', password: 'an old passphrase nobody remembers',
    email: 'grace@example.test', email_verified: true, name: 'Grace Hopper',
  });
  const { ctx, page } = await context();
  const loginUrl = await startAtTheApp(page);
  await page.getByRole('link', { name: 'Forgot password?' }).click();
  await page.waitForURL((url) => url.pathname === '/password/forgot');
  await shoot(page, 'password-forgot');
  await page.fill('input[name=login]', 'grace');
  await Promise.all([page.waitForURL(`${issuer}/password/forgot`), page.click('main form button[type=submit]')]);
  assert.match(await page.locator('main').innerText(), /If an account matches/);
  await shoot(page, 'password-forgot-sent');

  const mail = await mailTo('grace@example.test');
  assert.match(mail.subject, /Reset your password/);
  await page.goto(linkIn(mail, '/password/reset'));
  await shoot(page, 'password-reset');
  // A password attackers try first is refused, and the link stays usable.
  await page.fill('input[name=password]', 'password123');
  await page.fill('input[name=password_confirm]', 'password123');
  await Promise.all([page.waitForURL(`${issuer}/password/reset`), page.click('main form button[type=submit]')]);
  await page.locator('#password-error').waitFor();
  await shoot(page, 'password-reset-refused');
  const fresh = 'lighthouse marmalade velocity';
  await page.fill('input[name=password]', fresh);
  await page.fill('input[name=password_confirm]', fresh);
  await Promise.all([page.waitForURL(`${issuer}/password/reset`), page.click('main form button[type=submit]')]);
  assert.match(await page.locator('h1').innerText(), /Password changed/);
  await shoot(page, 'password-reset-done');

  // Back to the app's login page: the new password works, and the app gets its tokens.
  await page.goto(loginUrl);
  await page.fill('input[name=username]', 'grace');
  await page.fill('input[name=password]', fresh);
  await page.click('form#login-form button[type=submit]');
  await backInTheApp(page, 'Grace Hopper');
  await ctx.close();
});

test('a new person signs up in the middle of the request and returns to the app', async () => {
  const { ctx, page } = await context();
  await startAtTheApp(page);
  await page.getByRole('link', { name: 'Create an account' }).click();
  await page.waitForURL((url) => url.pathname === '/signup');
  await shoot(page, 'signup');
  await page.fill('input[name=username]', 'hedy');
  await page.fill('input[name=email]', 'hedy@example.test');
  await page.fill('input[name=password]', 'frequency hopping torpedo');
  await Promise.all([page.waitForURL(`${issuer}/signup`), page.click('main form button[type=submit]')]);
  assert.match(await page.locator('main').innerText(), /open the link/);
  await shoot(page, 'signup-sent');

  const mail = await mailTo('hedy@example.test');
  assert.match(mail.subject, /finish signing up/);
  await page.goto(linkIn(mail, '/email/verify'));
  await page.waitForURL((url) => url.pathname === '/consent' || url.href.startsWith(spa));
  if (new URL(page.url()).pathname === '/consent') await shoot(page, 'signup-consent');
  // A signed-up account has no name claim: the app shows none, and the confirmed address.
  await backInTheApp(page, '');
  assert.equal(await page.locator('#email').innerText(), '<hedy@example.test>');
  await ctx.close();
});

test('an unverified address holds the login at "check your mail" until its link is followed', async () => {
  await admin('/users', {
    username: 'katherine', password: 'orbital mechanics by hand',
    email: 'katherine@example.test', email_verified: false, name: 'Katherine Johnson',
  });
  // A user created with an unverified address is mailed its link.
  const mail = await mailTo('katherine@example.test');
  assert.match(mail.subject, /Confirm your email address/);
  const { ctx, page } = await context();
  await startAtTheApp(page);
  await page.fill('input[name=username]', 'katherine');
  await page.fill('input[name=password]', 'orbital mechanics by hand');
  await Promise.all([
    page.waitForURL((url) => url.pathname === '/email/pending'),
    page.click('form#login-form button[type=submit]'),
  ]);
  const pendingUrl = page.url();
  assert.match(await page.locator('main').innerText(), /k•••@example\.test/);
  await shoot(page, 'email-pending');

  await page.goto(linkIn(mail, '/email/verify'));
  assert.match(await page.locator('h1').innerText(), /confirmed/i);
  await shoot(page, 'email-verified');
  // The "check your mail" page now lets the request go on.
  await page.goto(pendingUrl);
  await backInTheApp(page, 'Katherine Johnson');
  await ctx.close();
});

test('no page raised a script error or left the loopback', () => {
  assert.deepEqual(problems, []);
});
