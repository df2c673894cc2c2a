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
  show(await userManager.getUser());

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
