// node-oidc-provider as a real upstream identity provider for Latchkey's tests
// (tests/it/upstream/node.rs). It signs every user in at once as ACCOUNT_ID (amr pwd, otp) and
// grants what is asked, so a test drives the whole round trip without a person.
//
// Usage: node provider.mjs OIDC_CALLBACK OAUTH2_CALLBACK
// Listens on 127.0.0.1 on a port the system picks, and prints "ready PORT" once listening.
// Two clients: `latchkey` (client_secret_basic, for kind "oidc") and `latchkey-oauth2`
// (client_secret_post, for kind "oauth2" with explicit endpoints), both with secret
// CLIENT_SECRET below.

import * as crypto from 'node:crypto';
import * as http from 'node:http';

import Provider from 'oidc-provider';

const CLIENT_SECRET = 'node-upstream-secret';
const ACCOUNT_ID = 'node-user-1';

const [oidcCallback, oauth2Callback] = process.argv.slice(2);
if (!oidcCallback || !oauth2Callback) {
  console.error('usage: provider.mjs OIDC_CALLBACK OAUTH2_CALLBACK');
  process.exit(2);
}

const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'upstream-es256', use: 'sig', alg: 'ES256' };

let handler = (_req, res) => { res.statusCode = 503; res.end(); };
const server = http.createServer((req, res) => handler(req, res));
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: 'latchkey',
        client_secret: CLIENT_SECRET,
        redirect_uris: [oidcCallback],
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
        id_token_signed_response_alg: 'ES256',
      },
      {
        client_id: 'latchkey-oauth2',
        client_secret: CLIENT_SECRET,
        redirect_uris: [oauth2Callback],
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_post',
        id_token_signed_response_alg: 'ES256',
      },
    ],
    jwks: { keys: [jwk] },
    scopes: ['openid', 'email', 'profile'],
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
    pkce: { required: () => true },
    features: { devInteractions: { enabled: false } },
    findAccount: async (_ctx, id) => ({
      accountId: id,
      claims: async () => ({
        sub: id, email: 'node-user@example.com', email_verified: true, name: 'Node User',
      }),
    }),
    // Consent is given at once: every requested scope is granted.
    loadExistingGrant: async (ctx) => {
      const grant = new ctx.oidc.provider.Grant({
        clientId: ctx.oidc.client.clientId,
        accountId: ctx.oidc.session.accountId,
      });
      grant.addOIDCScope('openid email profile');
      await grant.save();
      return grant;
    },
  });
  // The login: whoever arrives is ACCOUNT_ID, having used a password and a one-time code.
  provider.use(async (ctx, next) => {
    if (ctx.method === 'GET' && ctx.path.startsWith('/interaction/')) {
      await provider.interactionFinished(ctx.req, ctx.res,
        { login: { accountId: ACCOUNT_ID, amr: ['pwd', 'otp'] } },
        { mergeWithLastSubmission: false });
      ctx.respond = false;
      return;
    }
    await next();
  });
  handler = provider.callback();
  console.log(`ready ${port}`);
});
