// Back-channel logout (OpenID Connect Back-Channel Logout 1.0) to the oidc-client-ts app in
// Debian's Chromium (playwright-core): the app signs in through Latchkey's pages and hands its
// ID token to its backend stub (backend.mjs), which opens a session of its own for the `sid`.
// An operator then ends the user's Latchkey sessions through the admin API: Latchkey posts a
// logout token to the stub's backchannel_logout_uri, the stub validates it with jose and ends
// its session, and the page, asking its backend, shows that it was signed out. No browser
// navigation carries the logout: it goes server to server.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { startSpaServer } from './server.mjs';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (run tests/interop/run.sh backchannel)`);
  return value;
};
const issuer = env('INTEROP_ISSUER');
const clientId = env('INTEROP_SPA_CLIENT_ID');
const adminToken = env('INTEROP_ADMIN_TOKEN');
const spaPort = Number(env('INTEROP_SPA_PORT'));
const spa = `http://127.0.0.1:${spaPort}`;
const artifacts = env('INTEROP_ARTIFACTS');
const user = {
  username: env('INTEROP_USERNAME'),
  password: env('INTEROP_PASSWORD'),
  name: env('INTEROP_USER_NAME'),
  sub: env('INTEROP_USER_SUB'),
};
const TIMEOUT = 15_000;

let server, context, page, userDataDir;
const problems = [];
const offHost = [];

before(async () => {
  await mkdir(artifacts, { recursive: true });
  server = await startSpaServer({ port: spaPort, issuer, clientId });
  userDataDir = await mkdtemp(join(tmpdir(), 'latchkey-interop-backchannel-'));
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
const stubLog = async () => (await fetch(`${spa}/backchannel-log`)).json();

test('discovery advertises back-channel logout with sid', async () => {
  const discovery = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
  assert.equal(discovery.backchannel_logout_supported, true);
  assert.equal(discovery.backchannel_logout_session_supported, true);
});

let sid;
test('the app signs in, and its backend opens a session for the ID token\'s sid', async () => {
  await page.goto(`${spa}/index.html`);
  await page.locator('#status', { hasText: 'signed out' }).waitFor();
  await page.click('button#login');
  await page.waitForURL((url) => url.href.startsWith(`${issuer}/login?`));
  await page.fill('input[name=username]', user.username);
  await page.fill('input[name=password]', user.password);
  await Promise.all([
    page.waitForURL((url) => !url.href.startsWith(`${issuer}/login`)),
    page.locator('form button[type=submit]').first().click(),
  ]);
  // The consent page appears unless an earlier suite already granted these scopes.
  if (page.url().startsWith(`${issuer}/consent`)) await page.click('button[name=decision][value=allow]');
  await page.waitForURL(`${spa}/index.html`);
  await page.locator('#status', { hasText: 'signed in' }).waitFor();
  assert.equal(await page.locator('#name').innerText(), user.name);
  // The page handed its ID token to the backend, which verified it and keeps the sid.
  const session = await page.evaluate(async () => (await fetch('/session')).json());
  assert.equal(session.state, 'active');
  assert.ok(session.sid, 'the backend session is tied to the sid');
  sid = session.sid;
  assert.equal(await page.locator('#ended').isVisible(), false);
  await shot('backchannel-signed-in');
});

test('the stub refuses a logout token that is not Latchkey\'s', async () => {
  // Well-formed, but signed by nobody Latchkey knows: jose's signature check refuses it.
  const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const forged = [
    b64({ alg: 'RS256', typ: 'logout+jwt', kid: 'forged' }),
    b64({ iss: issuer, aud: clientId, iat: now, exp: now + 60, jti: 'forged-1', sid,
      events: { 'http://schemas.openid.net/event/backchannel-logout': {} } }),
    Buffer.from('not a signature').toString('base64url'),
  ].join('.');
  const res = await fetch(`${spa}/backchannel-logout`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ logout_token: forged }),
  });
  assert.equal(res.status, 400);
  const session = await page.evaluate(async () => (await fetch('/session')).json());
  assert.equal(session.state, 'active', 'a forged token ends nothing');
});

test('an operator ends the user\'s sessions: the logout token reaches the stub, and the page signs out', async () => {
  const res = await fetch(`${issuer}/admin/users/${user.sub}/sessions`, {
    method: 'DELETE',
    headers: { authorization: `Bearer ${adminToken}` },
  });
  assert.equal(res.status, 204);
  // Server to server: the delivery loop posts within a second or two; the page polls its
  // backend every second.
  await page.locator('#ended').waitFor({ state: 'visible', timeout: 20_000 });
  await page.locator('#status', { hasText: 'signed out' }).waitFor();
  assert.ok(await page.locator('button#login').isVisible());
  const users = await page.evaluate(() => Object.keys(sessionStorage).filter((k) => k.startsWith('oidc.user:')));
  assert.deepEqual(users, [], 'the app dropped its user');
  await shot('backchannel-signed-out');

  // The stub saw one valid logout token for that sid (and the forged one, refused).
  const log = await stubLog();
  const accepted = log.filter((e) => e.status === 200);
  assert.equal(accepted.length, 1, JSON.stringify(log));
  assert.equal(accepted[0].sid, sid);
  assert.equal(accepted[0].sub, user.sub);
  assert.equal(log.filter((e) => e.status === 400).length, 1, JSON.stringify(log));

  // Latchkey's admin API shows the delivery as delivered.
  const deliveries = await (await fetch(`${issuer}/admin/clients/${clientId}/logout-deliveries`, {
    headers: { authorization: `Bearer ${adminToken}` },
  })).json();
  const ours = deliveries.items.filter((d) => d.sid === sid);
  assert.equal(ours.length, 1, JSON.stringify(deliveries));
  assert.equal(ours[0].status, 'delivered');
});

test('the Latchkey session is gone too: signing in again asks for the password', async () => {
  await page.click('button#login');
  await page.waitForURL((url) => url.href.startsWith(`${issuer}/login?`));
  await page.locator('input[name=password]').waitFor();
});

test('no page errors, no console errors, nothing left 127.0.0.1', () => {
  assert.deepEqual(problems, []);
  assert.deepEqual(offHost, []);
});
