// The SPA's backend stub: what a relying party's server does for OpenID Connect Back-Channel
// Logout 1.0, with panva's jose for every JWT check.
//
//   POST /session            the page hands over its ID token after signing in; the stub
//                            verifies it (signature against jwks_uri, iss, aud, exp) and opens
//                            a session of its own for that `sid` (an HttpOnly cookie)
//   GET  /session            the page asks whether its backend session is still active
//   POST /backchannel-logout Latchkey posts a logout token (§2.5); the stub validates it
//                            (§2.6) and ends every session of that `sid` (or `sub`)
//   GET  /backchannel-log    for the test: every logout token received and what became of it
//
// The page polls GET /session and signs out when the backend says its session was ended.
import { randomBytes } from 'node:crypto';
import { createRemoteJWKSet, jwtVerify } from 'jose';

const LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';
const COOKIE = 'stub_session';
const MAX_BODY = 64 * 1024;

export class Backend {
  constructor({ issuer, clientId }) {
    this.issuer = issuer;
    this.clientId = clientId;
    this.sessions = new Map(); // cookie value -> { sid, sub, ended }
    this.seenJtis = new Set();
    this.log = []; // { status, reason, sid, sub, jti }
    this.jwks = undefined;
  }

  handles(method, path) {
    return (
      (path === '/session' && (method === 'GET' || method === 'POST')) ||
      (path === '/backchannel-logout' && method === 'POST') ||
      (path === '/backchannel-log' && method === 'GET')
    );
  }

  async keys() {
    if (!this.jwks) {
      const res = await fetch(`${this.issuer}/.well-known/openid-configuration`);
      const discovery = await res.json();
      this.jwks = createRemoteJWKSet(new URL(discovery.jwks_uri));
    }
    return this.jwks;
  }

  async handle(req, res, path) {
    try {
      if (path === '/backchannel-log') return json(res, 200, this.log);
      if (path === '/backchannel-logout') return await this.backchannelLogout(req, res);
      if (req.method === 'POST') return await this.openSession(req, res);
      const session = this.sessions.get(cookie(req, COOKIE));
      if (!session) return json(res, 200, { state: 'none' });
      return json(res, 200, { state: session.ended ? 'ended' : 'active', sid: session.sid });
    } catch (err) {
      return json(res, 500, { error: String(err) });
    }
  }

  async openSession(req, res) {
    const idToken = (await body(req)).trim();
    let claims;
    try {
      ({ payload: claims } = await jwtVerify(idToken, await this.keys(), {
        issuer: this.issuer,
        audience: this.clientId,
        requiredClaims: ['sub', 'sid', 'exp', 'iat'],
      }));
    } catch (err) {
      return json(res, 400, { error: `the ID token is not valid: ${err.message}` });
    }
    const id = randomBytes(24).toString('base64url');
    this.sessions.set(id, { sid: claims.sid, sub: claims.sub, ended: false });
    res.setHeader('set-cookie', `${COOKIE}=${id}; Path=/; HttpOnly; SameSite=Lax`);
    return json(res, 201, { state: 'active', sid: claims.sid });
  }

  // Back-Channel Logout 1.0 §2.6: validate the logout token, then end the sessions it names.
  // Answers 400 for a token that is not valid (§2.8), 200 once done (also for a jti seen
  // before: delivery is at-least-once).
  async backchannelLogout(req, res) {
    const form = new URLSearchParams(await body(req));
    const token = form.get('logout_token');
    const refuse = (reason) => {
      this.log.push({ status: 400, reason });
      return json(res, 400, { error: 'invalid_request', error_description: reason });
    };
    if (!token) return refuse('no logout_token');
    let claims;
    try {
      ({ payload: claims } = await jwtVerify(token, await this.keys(), {
        issuer: this.issuer,
        audience: this.clientId,
        typ: 'logout+jwt',
        requiredClaims: ['iat', 'exp', 'jti', 'events'],
        maxTokenAge: '2 minutes',
      }));
    } catch (err) {
      return refuse(`signature or claims: ${err.message}`);
    }
    if (typeof claims.events?.[LOGOUT_EVENT] !== 'object') return refuse('no back-channel logout event');
    if ('nonce' in claims) return refuse('a logout token carries no nonce');
    if (!claims.sid && !claims.sub) return refuse('neither sid nor sub');
    const entry = { status: 200, reason: 'ok', sid: claims.sid, sub: claims.sub, jti: claims.jti };
    if (this.seenJtis.has(claims.jti)) {
      entry.reason = 'repeat';
    } else {
      this.seenJtis.add(claims.jti);
      for (const session of this.sessions.values()) {
        if (claims.sid ? session.sid === claims.sid : session.sub === claims.sub) session.ended = true;
      }
    }
    this.log.push(entry);
    res.writeHead(200, { 'cache-control': 'no-store' });
    return res.end();
  }
}

function json(res, status, value) {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(value));
}

function cookie(req, name) {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return v.join('=');
  }
  return undefined;
}

async function body(req) {
  let text = '';
  for await (const chunk of req) {
    text += chunk;
    if (text.length > MAX_BODY) throw new Error('body too large');
  }
  return text;
}
