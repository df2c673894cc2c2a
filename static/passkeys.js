// Passkeys (WebAuthn) on the login and account pages. Served from /static under a CSP that
// allows no inline script and no eval. The pages work without it for password users: the
// passkey controls stay hidden until this script finds a browser that supports passkeys.
//
// It talks to the JSON endpoints under /webauthn with the page's CSRF token (from
// <meta name="csrf-token">) in X-CSRF-Token; the server checks every ceremony.
"use strict";
(function () {
  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function toBytes(b64url) {
    var b64 = b64url.replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) {
      b64 += "=";
    }
    var raw = atob(b64);
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) {
      bytes[i] = raw.charCodeAt(i);
    }
    return bytes.buffer;
  }

  function toB64url(buffer) {
    var bytes = new Uint8Array(buffer);
    var raw = "";
    for (var i = 0; i < bytes.length; i++) {
      raw += String.fromCharCode(bytes[i]);
    }
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  // PublicKeyCredentialCreationOptionsJSON -> options for navigator.credentials.create.
  function creationOptions(json) {
    if (PublicKeyCredential.parseCreationOptionsFromJSON) {
      return PublicKeyCredential.parseCreationOptionsFromJSON(json);
    }
    var o = Object.assign({}, json);
    o.challenge = toBytes(json.challenge);
    o.user = Object.assign({}, json.user, { id: toBytes(json.user.id) });
    o.excludeCredentials = (json.excludeCredentials || []).map(function (c) {
      return Object.assign({}, c, { id: toBytes(c.id) });
    });
    return o;
  }

  // PublicKeyCredentialRequestOptionsJSON -> options for navigator.credentials.get.
  function requestOptions(json) {
    if (PublicKeyCredential.parseRequestOptionsFromJSON) {
      return PublicKeyCredential.parseRequestOptionsFromJSON(json);
    }
    var o = Object.assign({}, json);
    o.challenge = toBytes(json.challenge);
    o.allowCredentials = (json.allowCredentials || []).map(function (c) {
      return Object.assign({}, c, { id: toBytes(c.id) });
    });
    return o;
  }

  // A PublicKeyCredential as RegistrationResponseJSON / AuthenticationResponseJSON.
  function credentialJSON(cred) {
    if (typeof cred.toJSON === "function") {
      return cred.toJSON();
    }
    var r = cred.response;
    var response = { clientDataJSON: toB64url(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = toB64url(r.attestationObject);
      response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      response.authenticatorData = toB64url(r.authenticatorData);
      response.signature = toB64url(r.signature);
      if (r.userHandle) {
        response.userHandle = toB64url(r.userHandle);
      }
    }
    return {
      id: cred.id,
      rawId: toB64url(cred.rawId),
      type: cred.type,
      response: response,
      clientExtensionResults: cred.getClientExtensionResults(),
      authenticatorAttachment: cred.authenticatorAttachment || undefined,
    };
  }

  function post(path, body) {
    return fetch(path, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
      body: JSON.stringify(body),
    }).then(function (response) {
      return response.json().then(function (json) {
        if (!response.ok) {
          throw new Error(json.error_description || json.error || "request failed");
        }
        return json;
      });
    });
  }

  // Goes where the server says: a URL, or (response_mode=form_post) a form POSTed there.
  function follow(answer) {
    if (!answer.form_post) {
      window.location.assign(answer.redirect);
      return;
    }
    var form = document.createElement("form");
    form.method = "post";
    form.action = answer.redirect;
    Object.keys(answer.form_post).forEach(function (name) {
      var input = document.createElement("input");
      input.type = "hidden";
      input.name = name;
      input.value = answer.form_post[name];
      form.appendChild(input);
    });
    document.body.appendChild(form);
    form.submit();
  }

  function show(el, visible) {
    if (el) {
      el.hidden = !visible;
    }
  }

  // On a flow's login or second-factor page `interaction` names the flow; on the account
  // page's step-up it is empty, and the passkey confirms the signed-in account instead.
  function setUpLogin(box) {
    // The second-factor page of a user without codes has no form, so the box names it too.
    var field = document.querySelector('input[name="interaction"]');
    var interaction = box.getAttribute("data-interaction") || (field ? field.value : "");
    var start = interaction ? { interaction: interaction } : {};
    var error = document.getElementById("passkey-error");
    var pending = null; // the conditional request, aborted before a modal one starts

    function signIn(mediation) {
      var controller = new AbortController();
      if (pending) {
        pending.abort();
      }
      if (mediation === "conditional") {
        pending = controller;
      }
      return post("/webauthn/login/options", start)
        .then(function (options) {
          var request = {
            publicKey: requestOptions(options.publicKey),
            signal: controller.signal,
          };
          if (mediation) {
            request.mediation = mediation;
          }
          return navigator.credentials.get(request);
        })
        .then(function (credential) {
          var answer = Object.assign({ credential: credentialJSON(credential) }, start);
          return post("/webauthn/login", answer);
        })
        .then(follow);
    }

    show(box, true);
    show(document.getElementById("passkey-needs-script"), false);
    document.getElementById("passkey-sign-in").addEventListener("click", function () {
      show(error, false);
      signIn(null).catch(function (e) {
        if (e && e.name !== "AbortError") {
          show(error, true);
        }
      });
    });
    // Conditional mediation: the browser offers passkeys in the username field's autofill
    // (only where there is such a field: the login page).
    var autofill = document.querySelector('input[autocomplete~="webauthn"]');
    if (autofill && PublicKeyCredential.isConditionalMediationAvailable) {
      PublicKeyCredential.isConditionalMediationAvailable().then(function (available) {
        if (available) {
          signIn("conditional").catch(function () {
            // Aborted for the button, or dismissed: the button remains.
          });
        }
      });
    }
  }

  function setUpRegister(form) {
    var error = document.getElementById("passkey-error");
    show(form, true);
    show(document.getElementById("passkey-needs-script"), false);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      show(error, false);
      var name = document.getElementById("passkey-name").value;
      post("/webauthn/register/options", { name: name })
        .then(function (options) {
          return navigator.credentials.create({
            publicKey: creationOptions(options.publicKey),
          });
        })
        .then(function (credential) {
          return post("/webauthn/register", credentialJSON(credential));
        })
        .then(function () {
          window.location.reload();
        })
        .catch(function () {
          show(error, true);
        });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (!window.PublicKeyCredential || !navigator.credentials) {
      return;
    }
    var login = document.getElementById("passkey-login");
    if (login) {
      setUpLogin(login);
    }
    var register = document.getElementById("passkey-register");
    if (register) {
      setUpRegister(register);
    }
  });
})();
