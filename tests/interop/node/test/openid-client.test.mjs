// panva's openid-client (v6) as a confidential relying party (client_secret_basic), configured
// with nothing but the issuer URL: every endpoint comes from discovery. The tests run in
// order and share the tokens they get.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as client from 'openid-client';
import { UserAgent } from '../lib/user-agent.mjs';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (run tests/interop/run.sh)`);
  return value;
};
const issuer = env('INTEROP_ISSUER');
const clientId = env('INTEROP_NODE_CLIENT_ID');
const clientSecret = env('INTEROP_NODE_CLIENT_SECRET');
const redirectUri = env('INTEROP_REDIRECT_URI');
const user = {
  username: env('INTEROP_USERNAME'),
  password: env('INTEROP_PASSWORD'),
  sub: env('INTEROP_USER_SUB'),
  name: env('INTEROP_USER_NAME'),
  email: env('INTEROP_USER_EMAIL'),
};
const SCOPE = 'openid profile email offline_access';

let config;
const browser = new UserAgent(issuer);

// Runs the code flow with PKCE, state and nonce through the browser; returns the token
// response (already checked by openid-client: state, iss, ID token claims and signature).
async function codeFlow({ scope = SCOPE, extra = {}, decision = 'allow' } = {}) {
  const codeVerifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope,
    code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    state,
    nonce,
    ...extra,
  });
  const callback = await browser.authorize(url, { ...user, decision });
  const tokens = await client.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: codeVerifier,
    expectedState: state,
    expectedNonce: nonce,
    idTokenExpected: true,
  });
  return { tokens, callback, nonce, state };
}

// Asserts that `promise` rejects with an OAuth error response carrying `code`.
async function rejectsWith(promise, code) {
  await assert.rejects(promise, (err) => {
    assert.equal(err.error ?? err.code, code, `expected ${code}, got ${err.error ?? err.code}: ${err.message}`);
    return true;
  });
}

test('discovery: issuer, endpoints and PKCE S256 come from the issuer URL alone', async () => {
  config = await client.discovery(new URL(issuer), clientId, undefined, client.ClientSecretBasic(clientSecret), {
    // The library's own switch for http issuers (loopback test server), and: verify the ID
    // token's JWS signature against jwks_uri too, not only its claims.
    execute: [client.allowInsecureRequests, client.enableNonRepudiationChecks],
  });
  const meta = config.serverMetadata();
  assert.equal(meta.issuer, issuer);
  assert.ok(meta.authorization_endpoint && meta.token_endpoint && meta.jwks_uri);
  assert.ok(meta.userinfo_endpoint && meta.revocation_endpoint && meta.introspection_endpoint);
  assert.ok(config.serverMetadata().supportsPKCE('S256'));
  assert.equal(meta.authorization_response_iss_parameter_supported, true);
});

let first;
test('code flow with PKCE, state and nonce: login, consent, validated ID token', async () => {
  first = await codeFlow();
  assert.deepEqual(browser.visited, ['login', 'consent'], 'a first login shows the login and consent pages');
  // RFC 9207: the authorization response names the issuer; state comes back unchanged.
  assert.equal(first.callback.origin + first.callback.pathname, redirectUri);
  assert.equal(first.callback.searchParams.get('iss'), issuer);
  assert.equal(first.callback.searchParams.get('state'), first.state);

  const { tokens } = first;
  assert.equal(tokens.token_type.toLowerCase(), 'bearer');
  assert.ok(tokens.access_token && tokens.refresh_token && tokens.id_token);
  assert.ok(tokens.expiresIn() > 0);
  assert.deepEqual(tokens.scope.split(' ').sort(), SCOPE.split(' ').sort());
  const claims = tokens.claims();
  assert.equal(claims.iss, issuer);
  assert.equal(claims.sub, user.sub);
  assert.deepEqual([claims.aud].flat(), [clientId]);
  assert.equal(claims.nonce, first.nonce);
  assert.ok(claims.exp > Date.now() / 1000 && claims.iat <= Date.now() / 1000 + 5);
  assert.ok(claims.auth_time && claims.at_hash && claims.sid, 'auth_time, at_hash and sid are present');
});

test('userinfo: the access token returns the profile and email claims', async () => {
  const info = await client.fetchUserInfo(config, first.tokens.access_token, user.sub);
  assert.equal(info.sub, user.sub);
  assert.equal(info.name, user.name);
  assert.equal(info.email, user.email);
  assert.equal(info.email_verified, true);
});

test('refresh: every use rotates the refresh token; a retry within the grace gets the same successor; an older one fails with invalid_grant', async () => {
  const old = first.tokens.refresh_token;
  const renewed = await client.refreshTokenGrant(config, old);
  assert.ok(renewed.refresh_token, 'a new refresh token is issued');
  assert.notEqual(renewed.refresh_token, old, 'the refresh token changes');
  assert.notEqual(renewed.access_token, first.tokens.access_token);
  // A refreshed ID token (when sent) follows OIDC Core §12.2: same iss, sub and aud, and the
  // auth_time of the original authentication.
  if (renewed.id_token) {
    const before = first.tokens.claims();
    const now = renewed.claims();
    assert.equal(now.iss, before.iss);
    assert.equal(now.sub, before.sub);
    assert.deepEqual(now.aud, before.aud);
    assert.equal(now.auth_time, before.auth_time);
  }
  const info = await client.fetchUserInfo(config, renewed.access_token, user.sub);
  assert.equal(info.sub, user.sub);

  // A client that lost the answer and retries at once (LATCHKEY_REFRESH_TOKEN_REUSE_GRACE,
  // 10 s by default) is given the same successor again, not a revoked family.
  const retried = await client.refreshTokenGrant(config, old);
  assert.equal(retried.refresh_token, renewed.refresh_token, 'the same successor');
  const next = await client.refreshTokenGrant(config, renewed.refresh_token);
  assert.notEqual(next.refresh_token, renewed.refresh_token);
  // Two generations behind is reuse, grace or not: it revokes the whole family, the
  // rotated-in refresh token and its access token too.
  await rejectsWith(client.refreshTokenGrant(config, old), 'invalid_grant');
  await rejectsWith(client.refreshTokenGrant(config, next.refresh_token), 'invalid_grant');
  const intro = await client.tokenIntrospection(config, next.access_token);
  assert.equal(intro.active, false, 'the family’s access token is no longer active');
});

test('second authorization: the session and the remembered consent skip both pages', async () => {
  browser.visited = [];
  const again = await codeFlow();
  assert.deepEqual(browser.visited, [], 'no login and no consent page the second time');
  assert.equal(again.tokens.claims().sub, user.sub);
  first = again;
});

test('introspection: an active access token with its RFC 7662 fields', async () => {
  const intro = await client.tokenIntrospection(config, first.tokens.access_token);
  assert.equal(intro.active, true);
  assert.equal(intro.sub, user.sub);
  assert.equal(intro.client_id, clientId);
  assert.equal(intro.iss, issuer);
  assert.deepEqual(intro.scope.split(' ').sort(), SCOPE.split(' ').sort());
  assert.ok(intro.exp > intro.iat);
  assert.ok(intro.token_type);
  // The refresh token introspects as active too (for its own client).
  const rt = await client.tokenIntrospection(config, first.tokens.refresh_token, { token_type_hint: 'refresh_token' });
  assert.equal(rt.active, true);
});

test('revocation: a revoked access token is inactive and refused by userinfo', async () => {
  await client.tokenRevocation(config, first.tokens.access_token, { token_type_hint: 'access_token' });
  const intro = await client.tokenIntrospection(config, first.tokens.access_token);
  assert.equal(intro.active, false);
  await assert.rejects(client.fetchUserInfo(config, first.tokens.access_token, user.sub), (err) => {
    assert.equal(err.status ?? err.cause?.status, 401, `expected a 401, got ${err.message}`);
    return true;
  });
});

test('revocation: a revoked refresh token can no longer be used', async () => {
  await client.tokenRevocation(config, first.tokens.refresh_token, { token_type_hint: 'refresh_token' });
  await rejectsWith(client.refreshTokenGrant(config, first.tokens.refresh_token), 'invalid_grant');
  // Revoking an unknown token is not an error (RFC 7009 §2.2).
  await client.tokenRevocation(config, 'not-a-token-latchkey-ever-issued');
});

test('client credentials: a token for the client itself, no refresh or ID token', async () => {
  const tokens = await client.clientCredentialsGrant(config, { scope: 'interop.read' });
  assert.ok(tokens.access_token);
  assert.equal(tokens.refresh_token, undefined);
  assert.equal(tokens.id_token, undefined);
  assert.equal(tokens.scope, 'interop.read');
  const intro = await client.tokenIntrospection(config, tokens.access_token);
  assert.equal(intro.active, true);
  assert.equal(intro.client_id, clientId);
  assert.equal(intro.sub, clientId);
  assert.equal(intro.scope, 'interop.read');
});

test('consent denied: access_denied comes back with state and iss, and the library reports it', async () => {
  browser.visited = [];
  await assert.rejects(codeFlow({ extra: { prompt: 'consent' }, decision: 'deny' }), (err) => {
    assert.equal(err.error, 'access_denied', err.message);
    return true;
  });
  assert.deepEqual(browser.visited, ['consent'], 'prompt=consent shows the consent page again');
});
