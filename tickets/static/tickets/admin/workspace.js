/* The operator's workspace: hour steppers (15 minutes), running timers, confirmations.
   No framework, no build step. The server stays the source of truth: the -/+ buttons send
   what was typed to the server, which reads it with the same rules as saving and answers the
   new hours or its message (the browser holds no grammar of its own); timers are drawn from
   their start time as stored on the server, corrected for the browser clock's offset. */
(function () {
  "use strict";
  var pending = Promise.resolve();  // one question at a time: each press starts from the last answer

  function showError(input, text) {
    var box = document.getElementById(input.id + "-error");
    if (box) {
      box.textContent = text;
      box.hidden = !text;
    }
    if (text) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
  }

  function askServer(button) {
    var input = document.getElementById(button.dataset.target);
    var query = new URLSearchParams({ hours: input.value, steps: button.dataset.steps });
    return fetch(button.dataset.url + "?" + query.toString(), {
      credentials: "same-origin",
      headers: { Accept: "application/json" }
    })
      .then(function (response) { return response.json(); })
      .then(function (answer) {
        if (answer.hours === undefined) {
          showError(input, answer.error || "The hours could not be read.");
          return;
        }
        showError(input, "");
        input.value = answer.hours;
        input.dispatchEvent(new Event("change", { bubbles: true }));
      })
      .catch(function () {
        showError(input, "The server could not be asked; the hours were not changed.");
      });
  }

  function step(button) {
    pending = pending.then(function () { return askServer(button); });
  }

  // The reply as the client will see it: the server renders it with the portal's own message
  // template and escaping (the answer is HTML built by the server, never from the typed text
  // here); an internal note gets the server's reminder that the client never sees it.
  function preview(button) {
    var box = document.getElementById("reply-preview");
    fetch(button.dataset.url, {
      method: "POST",
      body: new FormData(button.form),
      credentials: "same-origin",
      headers: { Accept: "application/json" }
    })
      .then(function (response) { return response.json(); })
      .then(function (answer) {
        if (answer.html === undefined) box.textContent = answer.error || "No preview.";
        else box.innerHTML = answer.html;
        box.hidden = false;
      })
      .catch(function () {
        box.textContent = "The server could not be asked for a preview.";
        box.hidden = false;
      });
  }

  function pad(n) { return n < 10 ? "0" + n : String(n); }

  function drawTimers(offset) {
    document.querySelectorAll(".sbt-timer[data-started]").forEach(function (el) {
      var seconds = Math.max(0, Math.floor((Date.now() + offset - Date.parse(el.dataset.started)) / 1000));
      el.textContent = Math.floor(seconds / 3600) + ":" + pad(Math.floor(seconds / 60) % 60) + ":" + pad(seconds % 60);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("button[data-steps]").forEach(function (button) {
      button.addEventListener("click", function () { step(button); });
    });
    // Arrow keys in an hours box move it by a quarter hour, like the buttons beside it.
    document.querySelectorAll("button[data-steps]").forEach(function (button) {
      var input = document.getElementById(button.dataset.target);
      var up = parseInt(button.dataset.steps, 10) > 0;
      input.addEventListener("input", function () { showError(input, ""); });
      input.addEventListener("keydown", function (event) {
        if (event.key === (up ? "ArrowUp" : "ArrowDown")) {
          event.preventDefault();
          step(button);
        }
      });
    });
    var previewButton = document.getElementById("reply-preview-button");
    if (previewButton) {
      previewButton.addEventListener("click", function () { preview(previewButton); });
    }
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.dataset.confirm)) event.preventDefault();
      });
    });
    var timer = document.querySelector(".sbt-timer[data-now]");
    if (timer) {
      var offset = Date.parse(timer.dataset.now) - Date.now();  // server clock minus ours
      drawTimers(offset);
      window.setInterval(function () { drawTimers(offset); }, 1000);
    }
  });
})();
