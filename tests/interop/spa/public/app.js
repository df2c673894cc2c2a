// The app: one UserManager configured with the issuer (authority) and the client id; the
// library finds every endpoint through discovery. The values come from /config.js, written
// by the test server.
import { UserManager, WebStorageStateStore } from 'oidc-client-ts';
import config from '/config.js';

export const userManager = new UserManager({
  authority: config.issuer,
  client_id: config.clientId,
  redirect_uri: `${location.origin}/callback.html`,
  post_logout_redirect_uri: `${location.origin}/index.html`,
  response_type: 'code',
  scope: 'openid profile email offline_access',
  loadUserInfo: true, // the name shown comes from userinfo (profile scope)
  automaticSilentRenew: false,
  revokeTokensOnSignout: true,
  userStore: new WebStorageStateStore({ store: window.sessionStorage }),
});

const $ = (id) => document.getElementById(id);
let renewals = 0;

function show(user) {
  const signedIn = Boolean(user && !user.expired);
  $('status').textContent = signedIn ? 'signed in' : 'signed out';
  $('signed-in').hidden = !signedIn;
  $('login').hidden = signedIn;
  $('renew').hidden = !signedIn;
  $('logout').hidden = !signedIn;
  if (!signedIn) return;
  $('name').textContent = user.profile.name ?? '';
  $('email').textContent = user.profile.email ? `<${user.profile.email}>` : '';
  $('sub').textContent = user.profile.sub;
  $('scope').textContent = user.scope;
  $('renewals').textContent = String(renewals);
  $('expires-in').textContent = String(user.expires_in);
  $('access-token').textContent = user.access_token;
}

// The app's backend (backend.mjs) keeps a session of its own for the Latchkey session (the
// ID token's `sid`). When Latchkey ends that session it tells the backend (back-channel
// logout); the page, asking the backend every second, then signs out too.
const POLL_MS = 1000;
let watching;

async function backendSession(init) {
  const res = await fetch('/session', init);
  return (await res.json()).state;
}

async function watchBackendSession(user) {
  if (watching || !user?.id_token) return;
  let state = await backendSession();
  if (state !== 'active') state = await backendSession({ method: 'POST', body: user.id_token });
  if (state !== 'active') throw new Error(`the backend refused the session (${state})`);
  watching = setInterval(async () => {
    try {
      if ((await backendSession()) !== 'ended') return;
    } catch {
      return; // a poll cut short (the page is navigating away): try again next time
    }
    clearInterval(watching);
    watching = undefined;
    await userManager.removeUser();
    show(null);
    $('ended').hidden = false;
  }, POLL_MS);
}

function fail(err) {
  $('error').textContent = `${err.name}: ${err.message}`;
  $('status').textContent = 'error';
}

async function main() {
  // Back from the end-session endpoint (RP-Initiated Logout): finish the sign-out.
  const params = new URLSearchParams(location.search);
  if (params.has('state')) {
    await userManager.signoutRedirectCallback();
    history.replaceState(null, '', '/index.html');
  }
  const user = await userManager.getUser();
  show(user);
  if (user && !user.expired) await watchBackendSession(user);

  $('login').onclick = () => userManager.signinRedirect().catch(fail);
  $('renew').onclick = async () => {
    // With a refresh token in the user, signinSilent uses the refresh_token grant.
    try {
      const user = await userManager.signinSilent();
      renewals += 1;
      show(user);
    } catch (err) {
      fail(err);
    }
  };
  $('logout').onclick = async () => {
    try {
      if (await userManager.metadataService.getEndSessionEndpoint()) {
        await userManager.signoutRedirect(); // revokes the tokens first, then redirects
      } else {
        await userManager.revokeTokens();
        await userManager.removeUser();
        show(null);
      }
    } catch (err) {
      fail(err);
    }
  };
}

// Only the app page runs the UI; callback.html imports userManager alone.
if ($('status')) main().catch(fail);
