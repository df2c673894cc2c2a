// The form_post response mode (OAuth 2.0 Form Post Response Mode): sends the authorization
// response to the client as soon as the page has loaded. Without scripts the page's button
// does the same. Served from /static under a CSP that allows no inline script.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var form = document.getElementById("form-post");
  if (form) {
    form.submit();
  }
});
