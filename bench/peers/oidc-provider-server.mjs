// node-oidc-provider, configured as the benchmark's peer for the client_credentials scenario:
// one confidential client (client_secret_basic) that gets ES256-signed JWT access tokens for
// one resource server through resource indicators (RFC 8707), as Latchkey issues them.
//
// Usage: NODE_ENV=production node oidc-provider-server.mjs PORT CLIENT_ID CLIENT_SECRET RESOURCE
//
// Listens on 127.0.0.1 only. Storage is the provider's built-in memory adapter: JWT access
// tokens from client_credentials are not stored, so no database sits in this path (nor in
// Latchkey's client_credentials path). Prints "ready" on stdout once listening.

import * as crypto from 'node:crypto';

import Provider from 'oidc-provider';

const [port, clientId, clientSecret, resource] = process.argv.slice(2);
if (!port || !clientId || !clientSecret || !resource) {
  console.error('usage: oidc-provider-server.mjs PORT CLIENT_ID CLIENT_SECRET RESOURCE');
  process.exit(2);
}

// One P-256 signing key, generated per start (Latchkey also signs with an in-memory key).
const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'bench-es256', use: 'sig', alg: 'ES256' };

const issuer = `http://127.0.0.1:${port}`;
const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    grant_types: ['client_credentials'],
    redirect_uris: [],
    response_types: [],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: 'api.read',
  }],
  clientDefaults: { id_token_signed_response_alg: 'ES256' },
  jwks: { keys: [jwk] },
  scopes: ['api.read'],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => resource,
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, indicator) => {
        if (indicator !== resource) throw new Provider.errors.InvalidTarget();
        return {
          scope: 'api.read',
          audience: resource,
          accessTokenTTL: 3600,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'ES256' } },
        };
      },
    },
  },
});

// Quiet in production: log server errors only, one line each.
provider.on('server_error', (_ctx, err) => console.error('server_error', err?.message));

const server = provider.listen(Number(port), '127.0.0.1', () => {
  console.log('ready');
});

// Exit promptly on SIGTERM (the harness stops its servers that way).
process.on('SIGTERM', () => server.close(() => process.exit(0)));
