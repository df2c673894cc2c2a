// Accessibility of every built-in page: Debian's Chromium (playwright-core) walks each page a
// person can meet (login and its error, the forced password change, the second factor and its
// error, consent, the account page signed in and out, TOTP enrolment, recovery codes, the
// device code form and its error, the account page's refused password change, sign-out asked
// and done, an error page, the form_post page as
// a browser without scripts sees it, and, on the server that sends mail, "Forgot password?"
// with its error and answer, the reset form with its error, an expired link, sign-up and its
// error, "check your mail" and the confirmed address, the login page with an upstream's button
// and the account page with its linked sign-ins), in English and German, and axe-core
// checks each in the light and the dark theme against WCAG 2.0/2.1/2.2 A and AA. Any violation fails the suite, naming the
// page, language, theme, rule and element.
//
// axe-core is evaluated through the DevTools protocol, not injected as a script tag, so the
// pages keep their real Content-Security-Policy while they are checked; any CSP violation or
// script error on a page fails the suite too. The suite's users are created here through the
// admin API, so the other suites' user stays untouched.
//
// Screenshots of the main pages at desktop width and 390 px, light and dark, go to artifacts/
// and, with INTEROP_SCREENSHOTS, to docs/screenshots/.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (run tests/interop/run.sh pages)`);
  return value;
};
const issuer = env('INTEROP_ISSUER');
// The server with mail and sign-up on (run.sh starts it for this suite and the mail suite).
const mailIssuer = env('INTEROP_MAIL_ISSUER');
const mailDir = env('INTEROP_MAIL_DIR');
const adminToken = env('INTEROP_ADMIN_TOKEN');
const clientId = env('INTEROP_SPA_CLIENT_ID');
const spa = `http://127.0.0.1:${Number(env('INTEROP_SPA_PORT'))}`;
const artifacts = env('INTEROP_ARTIFACTS');
const screenshots = process.env.INTEROP_SCREENSHOTS;
const TIMEOUT = 15_000;
const LANGUAGES = ['en', 'de'];
const SCHEMES = ['light', 'dark'];
// The WCAG success criteria axe-core can check automatically, up to 2.2 AA.
const AXE_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'];

const axeSource = await readFile(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

let browser;
const problems = [];
const offHost = [];
const checked = [];

async function admin(method, path, body, base = issuer) {
  const response = await fetch(`${base}/admin${path}`, {
    method,
    headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
    body: body && JSON.stringify(body),
  });
  const text = await response.text();
  assert.ok(response.ok, `${method} /admin${path}: ${response.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

async function createUser(username, extra = {}, base = issuer) {
  const password = `pages ${randomBytes(9).toString('base64url')}`;
  const user = await admin('POST', '/users', {
    username, password, email: `${username}@example.test`, email_verified: true,
    name: username, ...extra,
  }, base);
  return { username, password, sub: user.sub };
}

/** RFC 6238 (SHA-1, 6 digits, 30 s) for a base32 secret: the code an authenticator app shows. */
function totp(secret, at = Date.now()) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of secret.replace(/=+$/, '').toUpperCase()) bits += alphabet.indexOf(c).toString(2).padStart(5, '0');
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(at / 1000 / 30)));
  const mac = createHmac('sha1', key).update(counter).digest();
  const offset = mac[mac.length - 1] & 0xf;
  return String((mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000).padStart(6, '0');
}

/** Waits for the first mail to `to` that the SMTP sink received, and returns the link to
 * `path` in it. */
async function mailedLink(to, path) {
  const deadline = Date.now() + TIMEOUT;
  while (Date.now() < deadline) {
    for (const name of await readdir(mailDir)) {
      if (!name.endsWith('.json')) continue;
      const mail = JSON.parse(await readFile(join(mailDir, name), 'utf8'));
      if (!mail.to.includes(to)) continue;
      const match = mail.text.match(new RegExp(`${mailIssuer}${path}\\?token=[A-Za-z0-9_-]+`));
      assert.ok(match, `a ${path} link in: ${mail.text}`);
      return match[0];
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`no mail to ${to}`);
}

function authorizeUrl(extra = {}, base = issuer) {
  const verifier = randomBytes(32).toString('base64url');
  const query = new URLSearchParams({
    response_type: 'code', client_id: clientId, redirect_uri: `${spa}/callback.html`,
    scope: 'openid profile email', state: randomBytes(8).toString('hex'), prompt: 'login',
    code_challenge_method: 'S256',
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    ...extra,
  });
  return `${base}/authorize?${query}`;
}

/** A fresh browser context whose language cookie is `lang` (as the switcher sets it). */
async function open(lang, { formPostScript = true } = {}) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 800 } });
  context.setDefaultTimeout(TIMEOUT);
  await context.addCookies([{ name: 'latchkey_lang', value: lang, url: issuer }]);
  await context.route('**/*', async (route) => {
    const url = new URL(route.request().url());
    // The form_post page as a browser without scripts shows it: its script never arrives
    // (axe-core itself needs JavaScript, so the page's script is held back instead).
    if (!formPostScript && url.pathname === '/static/form_post.js') {
      return route.fulfill({ status: 200, contentType: 'text/javascript', body: '' });
    }
    // "Check your mail" reloads itself every 10 s (a meta refresh, no script); the copy that
    // is checked holds still, so that a reload cannot cut the audit short.
    if (url.pathname === '/email/pending' && route.request().method() === 'GET') {
      const response = await route.fetch();
      const body = (await response.text()).replace(/<meta http-equiv="refresh"[^>]*>/, '');
      return route.fulfill({ response, body });
    }
    if (url.hostname === '127.0.0.1' && url.origin !== spa) return route.continue();
    // The app's redirect URI is never served here: the walk stops before it.
    if (url.origin === spa) return route.fulfill({ status: 204, body: '' });
    offHost.push(url.href);
    return route.abort();
  });
  const page = await context.newPage();
  page.on('pageerror', (err) => problems.push(`page error on ${page.url()}: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    // The error pages this walk shows on purpose (a wrong password, a bad code) arrive with
    // their 4xx status, which Chromium reports for the document itself; anything else counts.
    const documentStatus = msg.text().startsWith('Failed to load resource: the server responded with a status of 4')
      && msg.location().url === page.url();
    if (!documentStatus) problems.push(`console error on ${page.url()}: ${msg.text()}`);
  });
  return { context, page };
}

/** axe-core in both themes; returns one line per violation. */
async function audit(page, name, lang) {
  const found = [];
  for (const scheme of SCHEMES) {
    await page.emulateMedia({ colorScheme: scheme });
    if (!(await page.evaluate(() => typeof window.axe === 'object'))) await page.evaluate(axeSource);
    const result = await page.evaluate(
      (tags) => window.axe.run(document, { runOnly: { type: 'tag', values: tags }, resultTypes: ['violations'] }),
      AXE_TAGS,
    );
    for (const v of result.violations) {
      for (const node of v.nodes) {
        found.push(`${name} [${lang}, ${scheme}] ${v.id} (${v.impact}): ${v.help} at ${node.target.join(' ')}`);
      }
    }
    checked.push(`${name} [${lang}, ${scheme}]`);
  }
  await page.emulateMedia({ colorScheme: 'light' });
  return found;
}

async function shoot(page, name) {
  for (const scheme of SCHEMES) {
    await page.emulateMedia({ colorScheme: scheme });
    for (const [suffix, width] of [['desktop', 1100], ['390', 390]]) {
      await page.setViewportSize({ width, height: 800 });
      const file = `${name}-${scheme}-${suffix}.png`;
      await page.screenshot({ path: join(artifacts, file), fullPage: true });
      if (screenshots) await page.screenshot({ path: join(screenshots, file), fullPage: true });
    }
  }
  await page.setViewportSize({ width: 1100, height: 800 });
  await page.emulateMedia({ colorScheme: 'light' });
}

async function submit(page, selector = 'main form button[type=submit]') {
  await Promise.all([page.waitForEvent('load'), page.locator(selector).first().click()]);
}

async function login(page, user) {
  await page.fill('input[name=username]', user.username);
  await page.fill('input[name=password]', user.password);
  await submit(page, '#login-form button[type=submit]');
}

before(async () => {
  await mkdir(artifacts, { recursive: true });
  if (screenshots) await mkdir(screenshots, { recursive: true });
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
});

for (const lang of LANGUAGES) {
  test(`every page meets WCAG 2.2 AA in axe-core (${lang}, light and dark)`, async () => {
    const violations = [];
    const check = async (page, name, { shot = false } = {}) => {
      assert.equal(await page.locator('html').getAttribute('lang'), lang, `${name} is in ${lang}`);
      violations.push(...(await audit(page, name, lang)));
      if (shot && (lang === 'en' || name === 'login')) await shoot(page, `pages-${name}${lang === 'en' ? '' : `-${lang}`}`);
    };
    const grace = await createUser(`grace-${lang}`);
    const { context, page } = await open(lang);

    await page.goto(authorizeUrl());
    await page.waitForURL((url) => url.pathname === '/login');
    // The show-password toggle: a real button after the field, pressed state announced.
    const reveal = page.locator('#password + button.reveal');
    await reveal.waitFor();
    assert.equal(await reveal.getAttribute('aria-pressed'), 'false');
    await check(page, 'login', { shot: true });
    // The checker can fail: the same page with a field's label removed is reported.
    await page.evaluate(() => document.querySelector('label[for=username]').remove());
    const broken = await audit(page, 'login-without-label', lang);
    assert.ok(broken.some((v) => v.includes('] label (')), `axe-core missed it: ${broken}`);
    await page.reload();
    await reveal.click();
    assert.equal(await page.locator('#password').getAttribute('type'), 'text');
    assert.equal(await reveal.getAttribute('aria-pressed'), 'true');
    await reveal.click();

    await login(page, { ...grace, password: 'not the password' });
    assert.equal(await page.locator('#password').getAttribute('aria-describedby'), 'login-error');
    await check(page, 'login-error', { shot: true });

    await login(page, grace);
    await page.waitForURL((url) => url.pathname === '/consent');
    await check(page, 'consent', { shot: true });

    await page.goto(`${issuer}/account`);
    await check(page, 'account', { shot: true });
    // A refused password change: the message right after the field it concerns.
    await page.fill('#current_password', 'not the password');
    await page.fill('#new-password', 'umbrella quinoa trombone');
    await submit(page, 'form[action="/account/password"] button');
    assert.equal(await page.locator('#current_password').getAttribute('aria-describedby'), 'current-password-error');
    await check(page, 'account-error');
    await page.goto(`${issuer}/account/totp`);
    await check(page, 'totp');

    await page.goto(`${issuer}/device`);
    await check(page, 'device', { shot: true });
    await page.fill('#user_code', 'BCDF-GHJK');
    await submit(page);
    await check(page, 'device-error');

    await page.goto(`${issuer}/logout`);
    await check(page, 'logout');
    await submit(page);
    await check(page, 'logout-done');

    await page.goto(`${issuer}/authorize`);
    await check(page, 'error', { shot: true });
    await page.goto(`${issuer}/account`);
    await check(page, 'account-login');

    // The forced password change, and its error.
    const hopper = await createUser(`hopper-${lang}`, { password_reset_required: true });
    await page.goto(authorizeUrl());
    await login(page, hopper);
    await page.locator('#new_password').waitFor();
    await check(page, 'password');
    await page.fill('#new_password', 'a new password 1');
    await page.fill('#confirm_password', 'a new password 2');
    await submit(page);
    await check(page, 'password-error');

    // The second factor, its error, and new recovery codes on the account page.
    const lin = await createUser(`lin-${lang}`);
    const { secret } = await admin('POST', `/users/${lin.sub}/totp`);
    await page.goto(authorizeUrl());
    await login(page, lin);
    await page.locator('#otp').waitFor();
    await check(page, 'otp', { shot: true });
    await page.fill('#otp', totp(secret) === '000000' ? '111111' : '000000');
    await submit(page);
    assert.equal(await page.locator('#otp').getAttribute('aria-describedby'), 'otp-error');
    await check(page, 'otp-error');
    await page.fill('#otp', totp(secret));
    await submit(page);
    await page.waitForURL((url) => url.pathname === '/consent');
    await page.goto(`${issuer}/account`);
    await submit(page, 'form[action="/account/recovery-codes"] button');
    await page.locator('#recovery-codes li').first().waitFor();
    await check(page, 'recovery-codes');
    await context.close();

    // form_post without its script: the page with the button that posts the response.
    const noScript = await open(lang, { formPostScript: false });
    await noScript.page.goto(authorizeUrl({ response_mode: 'form_post' }));
    await login(noScript.page, grace);
    await submit(noScript.page, 'button[name=decision][value=allow]');
    await noScript.page.locator('#form-post').waitFor();
    await check(noScript.page, 'form-post');
    await noScript.context.close();

    // The pages around mail, on the server that sends it.
    const { context: mailContext, page: m } = await open(lang);
    await m.goto(`${mailIssuer}/password/forgot`);
    await check(m, 'forgot', { shot: true });
    await m.fill('#login', '   ');
    await submit(m);
    await check(m, 'forgot-error');
    const ida = await createUser(`ida-${lang}`);
    await m.goto(`${mailIssuer}/password/forgot`);
    await m.fill('#login', ida.username);
    await submit(m);
    await check(m, 'forgot-sent');
    await m.goto(await mailedLink(`ida-${lang}@example.test`, '/password/reset'));
    await check(m, 'reset', { shot: true });
    await m.fill('#password', 'a new password 1');
    await m.fill('#password_confirm', 'a new password 2');
    await submit(m);
    assert.equal(await m.locator('#password').getAttribute('aria-describedby'), 'password-error');
    await check(m, 'reset-error');
    await m.goto(`${mailIssuer}/password/reset?token=no-such-link`);
    await check(m, 'link-expired');

    await m.goto(authorizeUrl({}, mailIssuer));
    await m.waitForURL((url) => url.pathname === '/login');
    await Promise.all([m.waitForEvent('load'), m.locator('a[href^="/signup"]').click()]);
    await check(m, 'signup', { shot: true });
    await m.fill('#username', grace.username);
    await m.fill('#email', `someone-${lang}@example.test`);
    await m.fill('#password', 'frequency hopping torpedo');
    await submit(m);
    await check(m, 'signup-error');

    // A user whose address is not verified: created on the mail server, which mails the link.
    const joan = await createUser(`joan-${lang}`, { email_verified: false }, mailIssuer);
    const verify = await mailedLink(`joan-${lang}@example.test`, '/email/verify');
    await m.goto(authorizeUrl({}, mailIssuer));
    await login(m, joan);
    await m.waitForURL((url) => url.pathname === '/email/pending');
    // Loaded again as a navigation of its own, so that the route above holds it still (a
    // page reached through a redirect is not routed).
    await m.goto(m.url());
    await check(m, 'email-pending', { shot: true });
    await m.goto(verify);
    await check(m, 'email-verified');
    await mailContext.close();

    // Upstream identity providers: the login page's buttons and the account page's linked
    // sign-ins section. The upstream is never contacted, and is deleted again at once so
    // that the other suites' login pages stay as they were.
    const upstream = `pages-${lang}`;
    await admin('POST', '/upstreams', {
      id: upstream, display_name: 'Example SSO', kind: 'oidc',
      issuer: 'https://sso.example.com', client_id: 'latchkey', client_secret: 'never-used',
    });
    try {
      const federated = await open(lang);
      await federated.page.goto(authorizeUrl());
      await federated.page.locator(`button[name=upstream][value=${upstream}]`).waitFor();
      await check(federated.page, 'login-upstreams', { shot: true });
      // Signed in (grace consented before, so the flow may go on to the app), the account page.
      await login(federated.page, grace);
      await federated.page.goto(`${issuer}/account`);
      await federated.page.locator('#identities').waitFor();
      await check(federated.page, 'account-upstreams');
      await federated.context.close();
    } finally {
      await admin('DELETE', `/upstreams/${upstream}`);
    }

    assert.deepEqual(violations, [], `axe-core found:\n${violations.join('\n')}`);
  });
}

test('no page had a script error, a CSP violation or a request off this machine', () => {
  // 30 pages and the broken login page, two languages, two themes.
  assert.equal(checked.length, 31 * 2 * 2, `pages checked: ${checked}`);
  assert.deepEqual(problems, []);
  assert.deepEqual(offHost, []);
});
