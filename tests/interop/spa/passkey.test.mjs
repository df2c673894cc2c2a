// Passkeys in a real browser: Debian's Chromium (playwright-core) with a CDP WebAuthn virtual
// authenticator (CTAP2, internal transport, resident keys, user verification). Ada signs in
// to her account page with her password and registers a passkey; then a fresh browser
// context (holding only that credential, as her phone would) signs in to the oidc-client-ts
// app through Latchkey's login page with "Sign in with a passkey", consents, and comes back
// signed in. Screenshots of the new pages, at desktop width and at 390 px, go to
// docs/screenshots/ (INTEROP_SCREENSHOTS) and artifacts/.
//
// WebAuthn relying-party ids are domain names, so this suite's Latchkey runs with the issuer
// http://localhost:PORT (INTEROP_PASSKEY_ISSUER; run.sh starts it).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { startSpaServer } from './server.mjs';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (run tests/interop/run.sh passkey)`);
  return value;
};
const issuer = env('INTEROP_PASSKEY_ISSUER');
const clientId = env('INTEROP_SPA_CLIENT_ID');
const spaPort = Number(env('INTEROP_SPA_PORT'));
const spa = `http://127.0.0.1:${spaPort}`;
const artifacts = env('INTEROP_ARTIFACTS');
const screenshots = process.env.INTEROP_SCREENSHOTS;
const user = { username: env('INTEROP_USERNAME'), password: env('INTEROP_PASSWORD'), name: env('INTEROP_USER_NAME') };
const TIMEOUT = 15_000;

let server, first, second, third;
const problems = [];
const offHost = [];

async function launch(name) {
  const dir = await mkdtemp(join(tmpdir(), `latchkey-passkey-${name}-`));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: process.env.INTEROP_CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync',
    ],
    viewport: { width: 1100, height: 800 },
    timeout: 30_000,
  });
  context.setDefaultTimeout(TIMEOUT);
  await context.route('**/*', (route) => {
    const host = new URL(route.request().url()).hostname;
    if (host === '127.0.0.1' || host === 'localhost') return route.continue();
    offHost.push(route.request().url());
    return route.abort();
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`console error on ${page.url()}: ${msg.text()}`);
  });
  // The virtual authenticator: a platform authenticator that verifies its user.
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2', transport: 'internal', hasResidentKey: true,
      hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true,
    },
  });
  return { dir, context, page, cdp, authenticatorId };
}

async function shoot(page, name) {
  for (const [suffix, width] of [['desktop', 1100], ['390', 390]]) {
    await page.setViewportSize({ width, height: 800 });
    const file = `${name}-${suffix}.png`;
    await page.screenshot({ path: join(artifacts, file), fullPage: true });
    if (screenshots) await page.screenshot({ path: join(screenshots, file), fullPage: true });
  }
  await page.setViewportSize({ width: 1100, height: 800 });
}

before(async () => {
  await mkdir(artifacts, { recursive: true });
  if (screenshots) await mkdir(screenshots, { recursive: true });
  server = await startSpaServer({ port: spaPort, issuer, clientId });
  first = await launch('register');
});

after(async () => {
  for (const b of [first, second, third]) {
    await b?.context.close().catch(() => {});
    if (b) await rm(b.dir, { recursive: true, force: true });
  }
  await new Promise((resolve) => (server ? server.close(resolve) : resolve()));
});

test('the account page registers a passkey', async () => {
  const { page, cdp, authenticatorId } = first;
  await page.goto(`${issuer}/account`);
  await page.fill('input[name=username]', user.username);
  await page.fill('input[name=password]', user.password);
  await Promise.all([
    page.waitForURL(`${issuer}/account`),
    page.locator('form button[type=submit]').first().click(),
  ]);
  const form = page.locator('form#passkey-register');
  await form.waitFor({ state: 'visible' });
  assert.ok(await page.locator('#passkey-needs-script').isHidden(), 'the script replaced the note');
  await shoot(page, 'account-passkeys-empty');
  await page.fill('#passkey-name', 'Interop laptop');
  await Promise.all([
    page.waitForEvent('load'),
    form.locator('button[type=submit]').click(),
  ]);
  // Now that Ada has a second factor, the account page asks for it before it shows more:
  // the passkey confirms the password session (the step-up offers it beside the code field).
  const stepUp = page.locator('button#passkey-sign-in');
  await stepUp.waitFor({ state: 'visible' });
  await shoot(page, 'account-step-up');
  await Promise.all([page.waitForURL(`${issuer}/account`), stepUp.click()]);
  await page.locator('.passkey-name', { hasText: 'Interop laptop' }).waitFor();
  const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
  assert.equal(credentials.length, 1);
  assert.match(await page.locator('main').innerText(), /Last used: \d{1,2} \p{L}+ 20\d\d/u, 'the step-up used it');
  assert.equal(credentials[0].isResidentCredential, true, 'a discoverable credential');
  assert.equal(credentials[0].rpId, 'localhost');
  await shoot(page, 'account-passkeys');
  first.credential = credentials[0];
});

test('a fresh browser signs in to the app with the passkey alone', async () => {
  assert.ok(first.credential, 'registered first');
  second = await launch('sign-in');
  const { page, cdp, authenticatorId } = second;
  // The same credential on this browser's authenticator (its private key, user handle and
  // counter): a second device of Ada's would hold it the same way.
  await cdp.send('WebAuthn.addCredential', { authenticatorId, credential: first.credential });
  // The virtual authenticator answers a conditional request at once (no autofill to pick
  // from), which would sign in before the button is used: this browser has no conditional
  // mediation, so the button is what signs in. (The last test covers conditional mediation.)
  await second.context.addInitScript(() => {
    if (window.PublicKeyCredential) {
      Object.defineProperty(PublicKeyCredential, 'isConditionalMediationAvailable', { value: undefined });
    }
  });
  await page.goto(`${spa}/index.html`);
  await page.locator('#status', { hasText: 'signed out' }).waitFor();
  await page.locator('button#login').click();
  await page.waitForURL((url) => url.href.startsWith(`${issuer}/login?`));
  const button = page.locator('button#passkey-sign-in');
  await button.waitFor({ state: 'visible' });
  assert.match(await button.innerText(), /Sign in with a passkey/);
  await shoot(page, 'login-passkey');
  await Promise.all([
    page.waitForURL((url) => url.href.startsWith(`${issuer}/consent?`)),
    button.click(),
  ]);
  await page.click('button[name=decision][value=allow]');
  await page.waitForURL(`${spa}/index.html`);
  await page.locator('#status', { hasText: 'signed in' }).waitFor();
  assert.equal(await page.locator('#name').innerText(), user.name);
  const stored = await page.evaluate(
    ({ issuer, clientId }) => JSON.parse(sessionStorage.getItem(`oidc.user:${issuer}:${clientId}`)),
    { issuer, clientId },
  );
  const claims = JSON.parse(Buffer.from(stored.id_token.split('.')[1], 'base64url'));
  assert.deepEqual(claims.amr, ['hwk', 'mfa'], 'the ID token says how the user signed in');
  const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
  assert.ok(credentials[0].signCount > first.credential.signCount, 'the counter moved on');
});

test('the login page in German offers the passkey too', async () => {
  const { page } = second;
  const query = new URLSearchParams({
    response_type: 'code', client_id: clientId, redirect_uri: `${spa}/callback.html`,
    scope: 'openid', prompt: 'login', ui_locales: 'de', code_challenge_method: 'S256',
    code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
  });
  await page.goto(`${issuer}/authorize?${query}`);
  await page.waitForURL((url) => url.href.startsWith(`${issuer}/login?`));
  const button = page.locator('button#passkey-sign-in');
  await button.waitFor({ state: 'visible' });
  assert.match(await button.innerText(), /Mit einem Passkey anmelden/);
  await shoot(page, 'login-passkey-de');
});

test('with conditional mediation the browser offers the passkey by itself', async () => {
  // A third browser with the credential as the second left it (its counter moved on: the
  // first browser's copy is now behind, and would be refused as a clone). The virtual
  // authenticator picks it for the conditional request the login page starts on load,
  // without any click.
  const { credentials } = await second.cdp.send('WebAuthn.getCredentials', { authenticatorId: second.authenticatorId });
  third = await launch('conditional');
  await third.cdp.send('WebAuthn.addCredential', { authenticatorId: third.authenticatorId, credential: credentials[0] });
  const { page } = third;
  const query = new URLSearchParams({
    response_type: 'code', client_id: clientId, redirect_uri: `${spa}/callback.html`,
    scope: 'openid', prompt: 'login', code_challenge_method: 'S256',
    code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
  });
  await page.goto(`${issuer}/authorize?${query}`);
  await page.waitForURL((url) => url.href.startsWith(`${issuer}/consent?`));
});

test('no page errors, and no request left the machine', () => {
  assert.deepEqual(problems, []);
  assert.deepEqual(offHost, []);
});
