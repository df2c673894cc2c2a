// panva's openid-client (v6) with its DPoP support (RFC 9449) as a public client registered
// with dpop_bound_access_tokens: the code is bound to the key at the PAR endpoint (§10.1),
// the tokens to the key at the token endpoint, the refresh token of this public client too,
// and userinfo is called with the DPoP scheme and a proof carrying ath. The library keeps the
// server's nonces (DPoP-Nonce) and puts them in its next proofs. The tests run in order and
// share what they get.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as client from 'openid-client';
import * as jose from 'jose';
import { UserAgent } from '../lib/user-agent.mjs';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (run tests/interop/run.sh)`);
  return value;
};
const issuer = env('INTEROP_ISSUER');
const adminToken = env('INTEROP_ADMIN_TOKEN');
const redirectUri = env('INTEROP_REDIRECT_URI');
const user = {
  username: env('INTEROP_USERNAME'),
  password: env('INTEROP_PASSWORD'),
  sub: env('INTEROP_USER_SUB'),
  name: env('INTEROP_USER_NAME'),
};
const SCOPE = 'openid profile offline_access';

let config; // openid-client's configuration, from discovery
let key; // the client's DPoP key pair
let DPoP; // openid-client's DPoP handle for that key
let jkt; // the key's RFC 7638 thumbprint
let tokens; // the latest token response

// Asserts that `promise` rejects with an OAuth error (a token-endpoint body, or a
// WWW-Authenticate challenge) carrying `code`.
async function rejectsWith(promise, code) {
  await assert.rejects(promise, (err) => {
    const got = err.error ?? err.cause?.[0]?.parameters?.error ?? err.code;
    assert.equal(got, code, `expected ${code}, got ${got}: ${err.message}`);
    return true;
  });
}

// The authorization request of a code flow, pushed (PAR) with a proof of `handle`'s key when
// one is given; the browser signs in (and consents the first time). Returns the callback URL
// and the checks the token request repeats.
async function pushedFlow(handle) {
  const codeVerifier = client.randomPKCECodeVerifier();
  const checks = { pkceCodeVerifier: codeVerifier, expectedState: client.randomState(), expectedNonce: client.randomNonce() };
  const url = await client.buildAuthorizationUrlWithPAR(
    config,
    {
      redirect_uri: redirectUri,
      scope: SCOPE,
      code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state: checks.expectedState,
      nonce: checks.expectedNonce,
    },
    handle ? { DPoP: handle } : undefined,
  );
  assert.ok(url.searchParams.get('request_uri')?.startsWith('urn:ietf:params:oauth:request_uri:'));
  const callback = await new UserAgent(issuer).authorize(url, user);
  return { callback, checks: { ...checks, idTokenExpected: true } };
}

test('discovery: DPoP algorithms; a public client registered with dpop_bound_access_tokens', async () => {
  const res = await fetch(`${issuer}/admin/clients`, {
    method: 'POST',
    headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      client_name: 'Interop DPoP (openid-client)',
      redirect_uris: [redirectUri],
      grant_types: ['authorization_code', 'refresh_token'],
      token_endpoint_auth_method: 'none',
      dpop_bound_access_tokens: true,
      scope: SCOPE,
    }),
  });
  const reg = await res.json();
  assert.equal(res.status, 201, JSON.stringify(reg));
  assert.equal(reg.dpop_bound_access_tokens, true);
  config = await client.discovery(new URL(issuer), reg.client_id, undefined, client.None(), {
    execute: [client.allowInsecureRequests, client.enableNonRepudiationChecks],
  });
  const meta = config.serverMetadata();
  for (const alg of ['ES256', 'EdDSA', 'RS256']) {
    assert.ok(meta.dpop_signing_alg_values_supported.includes(alg), alg);
  }
  assert.ok(meta.pushed_authorization_request_endpoint);
  key = await client.randomDPoPKeyPair('ES256');
  DPoP = client.getDPoPHandle(config, key);
  jkt = await jose.calculateJwkThumbprint(await jose.exportJWK(key.publicKey));
});

test('a token request without a proof is refused for this client (invalid_dpop_proof)', async () => {
  const { callback, checks } = await pushedFlow(undefined);
  await rejectsWith(client.authorizationCodeGrant(config, callback, checks), 'invalid_dpop_proof');
});

test('code bound at PAR: another key cannot redeem it, the bound key gets DPoP tokens', async () => {
  const { callback, checks } = await pushedFlow(DPoP);
  // The code is bound to the key of the proof sent to PAR: a proof of another key is refused
  // and does not spend the code.
  const stranger = client.getDPoPHandle(config, await client.randomDPoPKeyPair('ES256'));
  await rejectsWith(client.authorizationCodeGrant(config, callback, checks, undefined, { DPoP: stranger }), 'invalid_grant');
  tokens = await client.authorizationCodeGrant(config, callback, checks, undefined, { DPoP });
  assert.equal(tokens.token_type.toLowerCase(), 'dpop');
  assert.ok(tokens.access_token && tokens.refresh_token && tokens.id_token);
  const access = jose.decodeJwt(tokens.access_token);
  assert.equal(access.cnf?.jkt, jkt, 'the access token is bound to the key (cnf.jkt)');
  const claims = tokens.claims();
  assert.equal(claims.sub, user.sub);
  assert.equal(claims.iss, issuer);
});

test('userinfo: the DPoP scheme with a proof (ath) works; the token as a bearer token does not', async () => {
  const info = await client.fetchUserInfo(config, tokens.access_token, user.sub, { DPoP });
  assert.equal(info.sub, user.sub);
  assert.equal(info.name, user.name);
  // Without the key, the bound token is useless.
  await assert.rejects(client.fetchUserInfo(config, tokens.access_token, user.sub), (err) => {
    assert.equal(err.status ?? err.response?.status, 401, err.message);
    return true;
  });
  // With another key's proof neither.
  const stranger = client.getDPoPHandle(config, await client.randomDPoPKeyPair('ES256'));
  await rejectsWith(client.fetchUserInfo(config, tokens.access_token, user.sub, { DPoP: stranger }), 'invalid_token');
});

test('refresh: the public client refresh token is bound to the key and rotates with its proofs', async () => {
  const stranger = client.getDPoPHandle(config, await client.randomDPoPKeyPair('ES256'));
  await rejectsWith(client.refreshTokenGrant(config, tokens.refresh_token, undefined, { DPoP: stranger }), 'invalid_grant');
  const old = tokens.refresh_token;
  const renewed = await client.refreshTokenGrant(config, old, undefined, { DPoP });
  assert.equal(renewed.token_type.toLowerCase(), 'dpop');
  assert.notEqual(renewed.refresh_token, old, 'the refresh token rotated');
  assert.equal(jose.decodeJwt(renewed.access_token).cnf?.jkt, jkt);
  const info = await client.fetchUserInfo(config, renewed.access_token, user.sub, { DPoP });
  assert.equal(info.sub, user.sub);
  tokens = renewed;
});

test('dpop_jkt at the authorization endpoint binds the code without PAR', async () => {
  const codeVerifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: SCOPE,
    code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    state,
    dpop_jkt: await DPoP.calculateThumbprint(),
  });
  const callback = await new UserAgent(issuer).authorize(url, user);
  const checks = { pkceCodeVerifier: codeVerifier, expectedState: state };
  const stranger = client.getDPoPHandle(config, await client.randomDPoPKeyPair('ES256'));
  await rejectsWith(client.authorizationCodeGrant(config, callback, checks, undefined, { DPoP: stranger }), 'invalid_grant');
  const bound = await client.authorizationCodeGrant(config, callback, checks, undefined, { DPoP });
  assert.equal(jose.decodeJwt(bound.access_token).cnf?.jkt, jkt);
});
