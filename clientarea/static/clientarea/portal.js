// Cost calculator: asks the server, which computes with the same statement function as the
// monthly rollup, and shows the answer without reloading the page. The form still works
// without JavaScript (it reloads the dashboard with ?extra=).
(function () {
  "use strict";

  function setup(form) {
    var url = form.getAttribute("data-estimate-url");
    var input = form.querySelector("input[name=extra]");
    var output = form.querySelector("output.estimate");
    var error = form.querySelector("[data-field=error]");
    var timer = null;
    var sequence = 0;

    function show(data) {
      Object.keys(data.display).forEach(function (name) {
        var target = output.querySelector("[data-field=" + name + "]");
        if (target) { target.textContent = data.display[name]; }
      });
      output.hidden = false;
      form.setAttribute("data-total", data.total);
    }

    function estimate() {
      var mine = ++sequence;
      error.textContent = "";
      form.setAttribute("aria-busy", "true");
      fetch(url + "?extra=" + encodeURIComponent(input.value.trim()), {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      })
        .then(function (response) {
          return response.json().then(function (data) { return { ok: response.ok, data: data }; });
        })
        .then(function (result) {
          if (mine !== sequence) { return; }
          form.removeAttribute("aria-busy");
          if (result.ok) {
            show(result.data);
          } else {
            output.hidden = true;
            var messages = result.data.extra || [result.data.detail || "Cannot estimate that."];
            error.textContent = messages.join(" ");
          }
        })
        .catch(function () {
          form.removeAttribute("aria-busy");
          error.textContent = "The estimate is not available right now; press Estimate to retry.";
        });
    }

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      estimate();
    });
    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(estimate, 350);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("form.calculator[data-estimate-url]"), setup);
  });
})();
