// panva's openid-client (v6) driving the client protocols of issue 15: private_key_jwt client
// authentication, pushed authorization requests (PAR), signed request objects (JAR),
// response_mode=form_post and the device authorization grant. Each test registers the client
// it needs through the admin API, with keys it generates itself.
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
const user = { username: env('INTEROP_USERNAME'), password: env('INTEROP_PASSWORD'), sub: env('INTEROP_USER_SUB') };
const insecure = { execute: [client.allowInsecureRequests] };

async function register(metadata) {
  const res = await fetch(`${issuer}/admin/clients`, {
    method: 'POST',
    headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify(metadata),
  });
  const body = await res.json();
  assert.equal(res.status, 201, JSON.stringify(body));
  return body;
}

// A key pair of the client's own, and the public half as a registrable JWK.
async function clientKey(kid) {
  const { publicKey, privateKey } = await jose.generateKeyPair('ES256', { extractable: true });
  const jwk = { ...(await jose.exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' };
  return { privateKey, jwk, kid };
}

let signer; // { config, key }

test('private_key_jwt: a client signs its assertions; token, introspection and revocation accept them', async () => {
  const key = await clientKey('interop-1');
  const reg = await register({
    client_name: 'Interop private_key_jwt',
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code', 'client_credentials'],
    token_endpoint_auth_method: 'private_key_jwt',
    scope: 'openid profile interop.read',
    jwks: { keys: [key.jwk] },
  });
  assert.equal(reg.client_secret, undefined, 'no secret for a key-based client');
  const config = await client.discovery(
    new URL(issuer),
    reg.client_id,
    undefined,
    client.PrivateKeyJwt({ key: key.privateKey, kid: key.kid }),
    insecure,
  );
  const meta = config.serverMetadata();
  assert.ok(meta.token_endpoint_auth_methods_supported.includes('private_key_jwt'));
  assert.ok(meta.token_endpoint_auth_signing_alg_values_supported.includes('ES256'));
  const tokens = await client.clientCredentialsGrant(config, { scope: 'interop.read' });
  const intro = await client.tokenIntrospection(config, tokens.access_token);
  assert.equal(intro.active, true);
  assert.equal(intro.client_id, reg.client_id);
  await client.tokenRevocation(config, tokens.access_token);
  assert.equal((await client.tokenIntrospection(config, tokens.access_token)).active, false);
  signer = { config, key };
});

// The front channel of a code flow started at `url`; returns the token response.
async function finish(config, url, { codeVerifier, state, nonce }) {
  const browser = new UserAgent(issuer);
  const callback = await browser.authorize(url, user);
  return client.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: codeVerifier,
    expectedState: state,
    expectedNonce: nonce,
    idTokenExpected: true,
  });
}

async function flowParams(extra = {}) {
  const codeVerifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  return {
    checks: { codeVerifier, state, nonce },
    params: {
      redirect_uri: redirectUri,
      scope: 'openid profile',
      code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state,
      nonce,
      ...extra,
    },
  };
}

test('PAR: the request is pushed (authenticated with private_key_jwt) and redeemed by request_uri', async () => {
  const { config } = signer;
  assert.ok(config.serverMetadata().pushed_authorization_request_endpoint);
  const { params, checks } = await flowParams();
  const url = await client.buildAuthorizationUrlWithPAR(config, params);
  assert.ok(url.searchParams.get('request_uri').startsWith('urn:ietf:params:oauth:request_uri:'));
  assert.equal(url.searchParams.get('redirect_uri'), null, 'only the request_uri travels');
  const tokens = await finish(config, url, checks);
  assert.equal(tokens.claims().sub, user.sub);
});

test('JAR: a request object signed with the client key carries the request', async () => {
  const { config, key } = signer;
  assert.equal(config.serverMetadata().request_parameter_supported, true);
  const { params, checks } = await flowParams();
  const url = await client.buildAuthorizationUrlWithJAR(config, params, { key: key.privateKey, kid: key.kid });
  assert.ok(url.searchParams.get('request'));
  const tokens = await finish(config, url, checks);
  assert.equal(tokens.claims().sub, user.sub);
});

test('form_post: the authorization response is posted, and the library reads it', async () => {
  const { config } = signer;
  assert.ok(config.serverMetadata().response_modes_supported.includes('form_post'));
  const { params, checks } = await flowParams({ response_mode: 'form_post' });
  const url = client.buildAuthorizationUrl(config, params);
  const tokens = await finish(config, url, checks);
  assert.equal(tokens.claims().sub, user.sub);
});

test('device flow: the device polls while a person approves on /device, then gets tokens once', async () => {
  const reg = await register({
    client_name: 'Interop TV',
    grant_types: ['urn:ietf:params:oauth:grant-type:device_code'],
    token_endpoint_auth_method: 'none',
    scope: 'openid profile',
  });
  const config = await client.discovery(new URL(issuer), reg.client_id, undefined, client.None(), insecure);
  const response = await client.initiateDeviceAuthorization(config, { scope: 'openid profile' });
  assert.match(response.user_code, /^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/);
  assert.equal(response.verification_uri, `${issuer}/device`);
  const person = new UserAgent(issuer);
  const polling = client.pollDeviceAuthorizationGrant(config, response);
  const done = await person.approveDevice(response.verification_uri, response.user_code.toLowerCase(), user);
  assert.match(done, /return to your device/);
  assert.deepEqual(person.visited, ['login', 'consent']);
  const tokens = await polling;
  assert.equal(tokens.claims().sub, user.sub);
  assert.ok(tokens.access_token);
});
