// A "Show password" button after every password field that asks for one (data-reveal holds
// the button's label in the page's language). Without this script the field stays a plain
// password field. The button is a toggle (aria-pressed); the field's value never leaves it.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("input[type=password][data-reveal]").forEach(function (field) {
    var button = document.createElement("button");
    button.type = "button";
    button.className = "reveal";
    button.textContent = field.getAttribute("data-reveal");
    button.setAttribute("aria-pressed", "false");
    button.setAttribute("aria-controls", field.id);
    button.addEventListener("click", function () {
      var shown = field.type === "password";
      field.type = shown ? "text" : "password";
      button.setAttribute("aria-pressed", shown ? "true" : "false");
    });
    field.insertAdjacentElement("afterend", button);
  });
  // Fields go back to hidden before the form is sent, so the browser's password manager
  // sees a password field when it offers to save.
  document.querySelectorAll("form").forEach(function (form) {
    form.addEventListener("submit", function () {
      form.querySelectorAll("input[data-reveal]").forEach(function (field) {
        field.type = "password";
      });
    });
  });
});
