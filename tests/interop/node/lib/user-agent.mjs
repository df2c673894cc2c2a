// A minimal "browser" for the front-channel half of the code flow: plain fetch with
// redirect: 'manual', a cookie jar, and form posts built from the hidden inputs of Latchkey's
// login and consent pages. It stops at the first redirect that leaves the issuer (the
// client's redirect_uri) and returns that URL, unvisited.

const MAX_STEPS = 12;

export class UserAgent {
  constructor(issuer) {
    this.origin = new URL(issuer).origin;
    this.cookies = new Map();
    this.visited = []; // 'login' | 'consent', in the order the pages were shown
  }

  cookieHeader() {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  storeCookies(res) {
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const i = pair.indexOf('=');
      const name = pair.slice(0, i).trim();
      const value = pair.slice(i + 1).trim();
      const expired = attrs.some((a) => /^\s*max-age\s*=\s*(0|-\d+)\s*$/i.test(a));
      if (expired) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  async request(url, init = {}) {
    const headers = new Headers(init.headers);
    if (this.cookies.size) headers.set('cookie', this.cookieHeader());
    const res = await fetch(url, {
      ...init,
      headers,
      redirect: 'manual',
      signal: AbortSignal.timeout(10_000),
    });
    this.storeCookies(res);
    return res;
  }

  // Follows the authorization request through login and consent. `decision` is the consent
  // button to press. Returns the redirect URL that leaves the issuer.
  async authorize(authorizationUrl, { username, password, decision = 'allow' }) {
    let url = new URL(authorizationUrl);
    let res = await this.request(url);
    for (let step = 0; step < MAX_STEPS; step++) {
      if (res.status >= 300 && res.status < 400) {
        const next = new URL(res.headers.get('location'), url);
        if (next.origin !== this.origin) return next;
        url = next;
        res = await this.request(url);
        continue;
      }
      const html = await res.text();
      if (res.status !== 200) {
        throw new Error(`${url.pathname} answered ${res.status}: ${html.slice(0, 300)}`);
      }
      const form = parseForm(html, url);
      const body = new URLSearchParams(form.hidden);
      if (form.action.origin !== this.origin && /id="form-post"/.test(html)) {
        // response_mode=form_post: the page would POST these fields to the client; hand them
        // over as that request, unsent.
        return new Request(form.action, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body,
        });
      }
      if ('password' in form.fields) {
        this.visited.push('login');
        body.set('username', username);
        body.set('password', password);
      } else if (/name="decision"/.test(html)) {
        this.visited.push('consent');
        body.set('decision', decision);
      } else {
        throw new Error(`unexpected page at ${url}: ${html.slice(0, 300)}`);
      }
      url = form.action;
      res = await this.request(url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body,
      });
    }
    throw new Error(`no redirect back to the client after ${MAX_STEPS} steps`);
  }

  // A person at the device verification page (RFC 8628 §3.3): types `userCode`, logs in when
  // asked, answers the consent page with `decision`. Returns the final page's text.
  async approveDevice(verificationUri, userCode, { username, password, decision = 'allow' }) {
    let url = new URL(verificationUri);
    let res = await this.request(url);
    let html = await res.text();
    let form = parseForm(html, url);
    const body = new URLSearchParams(form.hidden);
    body.set('user_code', userCode);
    res = await this.request(form.action, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body,
    });
    for (let step = 0; step < MAX_STEPS; step++) {
      if (res.status >= 300 && res.status < 400) {
        url = new URL(res.headers.get('location'), url);
        res = await this.request(url);
        continue;
      }
      html = await res.text();
      if (res.status !== 200) throw new Error(`${url.pathname} answered ${res.status}: ${html.slice(0, 300)}`);
      if (!/<form\b/i.test(html)) return html;
      form = parseForm(html, url);
      const next = new URLSearchParams(form.hidden);
      if ('password' in form.fields) {
        this.visited.push('login');
        next.set('username', username);
        next.set('password', password);
      } else if (/name="decision"/.test(html)) {
        this.visited.push('consent');
        next.set('decision', decision);
      } else {
        throw new Error(`unexpected page at ${url}: ${html.slice(0, 300)}`);
      }
      url = form.action;
      res = await this.request(url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: next,
      });
    }
    throw new Error(`the device flow did not end after ${MAX_STEPS} steps`);
  }
}

function decodeEntities(s) {
  return s
    .replace(/&quot;/g, '"')
    .replace(/&#x27;|&#39;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

function attr(tag, name) {
  const m = tag.match(new RegExp(`\\s${name}\\s*=\\s*"([^"]*)"`, 'i'));
  return m ? decodeEntities(m[1]) : undefined;
}

// The first POST form of the page: its action, hidden inputs and the names of other inputs.
export function parseForm(html, pageUrl) {
  const formTag = html.match(/<form\b[^>]*method\s*=\s*"post"[^>]*>/i);
  if (!formTag) throw new Error(`no POST form on ${pageUrl}`);
  const action = new URL(attr(formTag[0], 'action') ?? pageUrl.href, pageUrl);
  const hidden = {};
  const fields = {};
  for (const [tag] of html.matchAll(/<input\b[^>]*>/gi)) {
    const name = attr(tag, 'name');
    if (!name) continue;
    if ((attr(tag, 'type') ?? '').toLowerCase() === 'hidden') hidden[name] = attr(tag, 'value') ?? '';
    else fields[name] = attr(tag, 'type') ?? 'text';
  }
  return { action, hidden, fields };
}
