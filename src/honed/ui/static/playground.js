// The playground's Run, streamed: outputs appear as the models write them. Without this script (or
// without fetch streams) the form posts to /playground/run and the page shows the outputs when all are
// done. The server sends lines of JSON: {"html"} is the results grid rendered by the server (escaped by
// its templates, so it is set as markup, as htmx swaps pages' fragments); {"cell", "text"} is a piece of
// model output, appended as text only (never parsed as markup).
(function () {
  "use strict";
  var form = document.getElementById("playground");
  var area = document.getElementById("results-area");
  if (!form || !area || !form.getAttribute("action") || !window.fetch || !window.TextDecoder) {
    return;
  }

  var received = false;

  function apply(event) {
    received = true;
    if (typeof event.html === "string") {
      area.innerHTML = event.html;
      if (window.htmx) {
        window.htmx.process(area);
      }
    } else if (typeof event.cell === "string") {
      var cell = document.getElementById(event.cell);
      if (cell) {
        cell.textContent += event.text;
      }
    }
  }

  async function run(button) {
    var body = new FormData(form);
    if (button && button.name) {
      body.append(button.name, button.value);
    }
    var response = await fetch("/playground/stream", {
      method: "POST",
      body: body,
      credentials: "same-origin",
    });
    var type = response.headers.get("content-type") || "";
    if (!response.ok || type.indexOf("application/x-ndjson") !== 0 || !response.body) {
      // A refused form (or a server without streaming): post it the plain way, which shows why.
      form.submit();
      return;
    }
    var reader = response.body.getReader();
    var decoder = new TextDecoder();
    var buffer = "";
    for (;;) {
      var step = await reader.read();
      if (step.done) {
        break;
      }
      buffer += decoder.decode(step.value, { stream: true });
      var end;
      while ((end = buffer.indexOf("\n")) >= 0) {
        var line = buffer.slice(0, end);
        buffer = buffer.slice(end + 1);
        if (line) {
          apply(JSON.parse(line));
        }
      }
    }
  }

  form.addEventListener("submit", function (event) {
    var button = event.submitter;
    if (button && button.getAttribute("formaction")) {
      return; // "Save as a new version" posts the form as it is
    }
    event.preventDefault();
    var running = document.getElementById("run");
    if (running) {
      running.disabled = true;
    }
    received = false;
    run(button)
      .catch(function () {
        if (!received) {
          form.submit(); // nothing ran yet: the plain post runs it
          return;
        }
        var note = document.createElement("p");
        note.className = "flash error";
        note.textContent = "the connection was lost while the models ran: run again to see every output";
        area.prepend(note);
      })
      .finally(function () {
        if (running) {
          running.disabled = false;
        }
      });
  });
})();
