// Drives the oidc-client-ts single-page app in Debian's Chromium (playwright-core, no
// downloaded browser): log in on Latchkey's pages, consent, come back signed in with the
// name from userinfo, renew with the refresh token, sign out. The steps run in order in one
// browser; screenshots of the login, consent and signed-in pages go to artifacts/.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { startSpaServer } from './server.mjs';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (run tests/interop/run.sh)`);
  return value;
};
const issuer = env('INTEROP_ISSUER');
const clientId = env('INTEROP_SPA_CLIENT_ID');
const spaPort = Number(env('INTEROP_SPA_PORT'));
const spa = `http://127.0.0.1:${spaPort}`;
const artifacts = env('INTEROP_ARTIFACTS');
const user = { username: env('INTEROP_USERNAME'), password: env('INTEROP_PASSWORD'), name: env('INTEROP_USER_NAME') };
const TIMEOUT = 15_000;

let server, context, page, userDataDir;
const problems = []; // uncaught page errors and console errors, checked at the end
const offHost = []; // any request that tried to leave 127.0.0.1 (aborted)

before(async () => {
  await mkdir(artifacts, { recursive: true });
  server = await startSpaServer({ port: spaPort, issuer, clientId });
  userDataDir = await mkdtemp(join(tmpdir(), 'latchkey-interop-chromium-'));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.INTEROP_CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync',
    ],
    viewport: { width: 900, height: 700 },
    timeout: 30_000,
  });
  context.setDefaultTimeout(TIMEOUT);
  // Everything stays on the loopback interface.
  await context.route('**/*', (route) => {
    const host = new URL(route.request().url()).hostname;
    if (host === '127.0.0.1') return route.continue();
    offHost.push(route.request().url());
    return route.abort();
  });
  page = context.pages()[0] ?? (await context.newPage());
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`console error on ${page.url()}: ${msg.text()}`);
  });
});

after(async () => {
  await context?.close().catch(() => {});
  await new Promise((resolve) => (server ? server.close(resolve) : resolve()));
  if (userDataDir) await rm(userDataDir, { recursive: true, force: true });
});

const shot = (name) => page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });
const text = (selector) => page.locator(selector).innerText();
const loginButton = () => page.locator('button#login');

test('the app starts signed out and offers "Log in"', async () => {
  await page.goto(`${spa}/index.html`);
  await page.locator('#status', { hasText: 'signed out' }).waitFor();
  assert.ok(await loginButton().isVisible());
});

test('"Log in" leads to Latchkey\'s login page', async () => {
  await loginButton().click();
  await page.waitForURL((url) => url.href.startsWith(`${issuer}/login?`));
  await page.locator('input[name=username]').waitFor();
  await shot('login');
  // The title names the product: by default (no LATCHKEY_BRAND_NAME) the issuer's host name.
  assert.equal(await page.title(), `Sign in · ${new URL(issuer).hostname}`);
  assert.match(await text('main'), /Interop SPA/, 'the login page names the client');
});

test('signing in leads to the consent page listing the requested scopes', async () => {
  await page.fill('input[name=username]', user.username);
  await page.fill('input[name=password]', user.password);
  await Promise.all([
    page.waitForURL((url) => url.href.startsWith(`${issuer}/consent?`)),
    page.locator('form button[type=submit], form input[type=submit]').first().click(),
  ]);
  await page.locator('button[name=decision][value=allow]').waitFor();
  await shot('consent');
  const body = await text('main');
  assert.match(body, /Interop SPA/, 'the consent page names the client');
  assert.match(body, /email address/i, 'the email scope is explained');
  assert.match(body, /stay signed in/i, 'offline_access is explained');
});

let firstToken;
test('Allow returns to the app signed in, with the name from userinfo', async () => {
  await page.click('button[name=decision][value=allow]');
  await page.waitForURL(`${spa}/index.html`);
  await page.locator('#status', { hasText: 'signed in' }).waitFor();
  assert.equal(await text('#name'), user.name);
  assert.match(await text('#scope'), /offline_access/);
  firstToken = await text('#access-token');
  assert.match(firstToken, /^[\w-]+\.[\w-]+\.[\w-]+$/, 'the access token is a JWT');
  await shot('signed-in');
});

test('silent renewal uses the refresh token and shows a new access token', async () => {
  const before = await storedUser();
  assert.ok(before.refresh_token, 'the app holds a refresh token (offline_access)');
  const refreshRequests = [];
  const onRequest = (req) => {
    if (req.method() === 'POST' && req.postData()?.includes('grant_type=refresh_token')) refreshRequests.push(req.url());
  };
  page.on('request', onRequest);
  await page.click('button#renew');
  await page.locator('#renewals', { hasText: '1' }).waitFor();
  page.off('request', onRequest);
  assert.equal(refreshRequests.length, 1, 'one refresh_token grant request was made');
  assert.ok(refreshRequests[0].startsWith(issuer));
  const renewed = await text('#access-token');
  assert.notEqual(renewed, firstToken, 'a new access token');
  const afterRenewal = await storedUser();
  assert.ok(afterRenewal.refresh_token && afterRenewal.refresh_token !== before.refresh_token, 'the refresh token rotated');
  assert.equal(await text('#name'), user.name);
});

test('sign-out clears the app\'s state (RP-Initiated Logout when discovery offers it)', async () => {
  const held = await storedUser();
  const discovery = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
  const revocations = [];
  const onRequest = (req) => {
    if (req.method() === 'POST' && req.url() === discovery.revocation_endpoint) revocations.push(req.postData());
  };
  page.on('request', onRequest);
  await page.click('button#logout');
  if (discovery.end_session_endpoint) {
    // The end-session endpoint ends the Latchkey session (the id_token_hint confirms it, or a
    // confirmation page does) and sends the browser back to the post-logout redirect URI.
    await page.waitForURL((url) => url.href.startsWith(`${spa}/index.html`) || url.href.startsWith(discovery.end_session_endpoint));
    if (page.url().startsWith(discovery.end_session_endpoint)) {
      await page.click('form button[type=submit]');
      await page.waitForURL((url) => url.href.startsWith(`${spa}/index.html`));
    }
  }
  await page.locator('#status', { hasText: 'signed out' }).waitFor();
  page.off('request', onRequest);
  assert.equal(await storedUser(), null, 'no user left in the app\'s storage');
  // revokeTokensOnSignout: the app revoked its refresh token at the revocation endpoint (CORS).
  assert.ok(revocations.some((body) => new URLSearchParams(body).get('token') === held.refresh_token),
    'the refresh token was sent to the revocation endpoint');
  assert.ok(await loginButton().isVisible());

  // And that refresh token is dead now.
  const res = await fetch(discovery.token_endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: held.refresh_token, client_id: clientId }),
  });
  assert.equal(res.status, 400);
  assert.equal((await res.json()).error, 'invalid_grant');

  if (discovery.end_session_endpoint) {
    // The Latchkey session ended too: logging in again asks for the password.
    await loginButton().click();
    await page.waitForURL((url) => url.href.startsWith(`${issuer}/login?`));
  }
});

test('response_mode=form_post: the browser posts the code to the client by itself', async () => {
  // A PKCE pair of the page's own making; the code is not redeemed here, only delivered.
  const verifier = 'form-post-verifier-0123456789-0123456789-0123456789';
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier)));
  const challenge = Buffer.from(digest).toString('base64url');
  const query = new URLSearchParams({
    response_type: 'code', client_id: clientId, redirect_uri: `${spa}/form_post_callback`,
    scope: 'openid', state: 'form-post-state', response_mode: 'form_post',
    code_challenge: challenge, code_challenge_method: 'S256',
  });
  await page.goto(`${issuer}/authorize?${query}`);
  if (page.url().startsWith(`${issuer}/login?`)) {
    await page.fill('input[name=username]', user.username);
    await page.fill('input[name=password]', user.password);
    await Promise.all([
      page.waitForURL((url) => url.href.startsWith(`${issuer}/consent?`)),
      page.locator('form button[type=submit]').first().click(),
    ]);
  }
  await Promise.all([
    page.waitForURL(`${spa}/form_post_callback`),
    page.click('button[name=decision][value=allow]'),
  ]);
  const posted = JSON.parse(await page.locator('body').innerText());
  assert.ok(posted.code, 'the code was posted');
  assert.equal(posted.state, 'form-post-state');
  assert.equal(posted.iss, issuer);
});

test('no page errors, and no request left 127.0.0.1', () => {
  assert.deepEqual(problems, []);
  assert.deepEqual(offHost, []);
});

// The user oidc-client-ts keeps in sessionStorage (null when signed out).
async function storedUser() {
  const raw = await page.evaluate(
    ({ issuer, clientId }) => sessionStorage.getItem(`oidc.user:${issuer}:${clientId}`),
    { issuer, clientId },
  );
  return raw ? JSON.parse(raw) : null;
}
