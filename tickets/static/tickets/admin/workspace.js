/* The operator's workspace: hour steppers (15 minutes), running timers, confirmations.
   No framework, no build step. The server stays the source of truth: timers are drawn from
   their start time as stored on the server, corrected for the browser clock's offset. */
(function () {
  "use strict";
  var STEP = 0.25;

  function parseHours(text) {
    text = (text || "").trim().toLowerCase();
    var m;
    if ((m = text.match(/^(\d{1,2}):([0-5]\d)$/))) return parseInt(m[1], 10) + parseInt(m[2], 10) / 60;
    if ((m = text.match(/^(\d{1,4})\s*m(in)?$/))) return parseInt(m[1], 10) / 60;
    if ((m = text.match(/^\d{1,3}([.,]\d+)?$/))) return parseFloat(text.replace(",", "."));
    return 0;
  }

  function step(button) {
    var input = document.getElementById(button.dataset.target);
    var delta = parseFloat(button.dataset.step);
    // Snap to the quarter hour first, then move one step; never below one step.
    var quarters = Math.round(parseHours(input.value) / STEP) + Math.round(delta / STEP);
    input.value = (Math.max(quarters, 1) * STEP).toFixed(2);
    input.dispatchEvent(new Event("change", { bubbles: true }));
  }

  function pad(n) { return n < 10 ? "0" + n : String(n); }

  function drawTimers(offset) {
    document.querySelectorAll(".sbt-timer[data-started]").forEach(function (el) {
      var seconds = Math.max(0, Math.floor((Date.now() + offset - Date.parse(el.dataset.started)) / 1000));
      el.textContent = Math.floor(seconds / 3600) + ":" + pad(Math.floor(seconds / 60) % 60) + ":" + pad(seconds % 60);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("button[data-step]").forEach(function (button) {
      button.addEventListener("click", function () { step(button); });
    });
    // Arrow keys in an hours box move it by a quarter hour, like the buttons beside it.
    document.querySelectorAll("button[data-step]").forEach(function (button) {
      var input = document.getElementById(button.dataset.target);
      var up = parseFloat(button.dataset.step) > 0;
      input.addEventListener("keydown", function (event) {
        if (event.key === (up ? "ArrowUp" : "ArrowDown")) {
          event.preventDefault();
          step(button);
        }
      });
    });
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
