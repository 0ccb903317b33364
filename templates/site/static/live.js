/* "Run live" on notebook pages: the page's code cells become editable and runnable against a Jupyter
   kernel, on Binder or on a Jupyter server the reader gives (URL + token). The library is thebe (npm,
   served from assets/thebe/); nothing is loaded from another machine until the reader connects, and
   with a local server nothing leaves the reader's machine at all. */
(function () {
  "use strict";
  var button = document.getElementById("live-toggle");
  var dialog = document.getElementById("live-dialog");
  var status = document.getElementById("live-status");
  var configEl = document.getElementById("live-config");
  if (!button || !dialog || !configEl) return;
  var config = JSON.parse(configEl.textContent || "{}");
  var STORE = "book-live-server";
  var started = false;

  function setStatus(text, kind) {
    status.hidden = false;
    status.textContent = text;
    status.className = "live-status" + (kind ? " live-" + kind : "");
  }

  // remember the last local server (not the token) for the next page
  try {
    var saved = JSON.parse(localStorage.getItem(STORE) || "null");
    if (saved && saved.url) {
      document.getElementById("live-url").value = saved.url;
      dialog.querySelector('input[value="local"]').checked = true;
    }
  } catch (e) { /* private mode */ }

  button.addEventListener("click", function () {
    if (started) return;
    if (dialog.showModal) dialog.showModal(); else dialog.setAttribute("open", "");
  });

  dialog.addEventListener("close", function () {
    if (dialog.returnValue !== "connect") return;
    var local = dialog.querySelector('input[value="local"]').checked;
    var url = document.getElementById("live-url").value.trim().replace(/\/+$/, "");
    var token = document.getElementById("live-token").value.trim();
    if (local && !/^https?:\/\/[^/]+/.test(url)) {
      setStatus("The server URL must start with http:// or https:// (for example http://localhost:8888).", "error");
      return;
    }
    try { if (local) localStorage.setItem(STORE, JSON.stringify({ url: url })); } catch (e) { /* private mode */ }
    start(local ? { url: url, token: token } : null);
  });

  function loadThebe(then) {
    if (window.thebe && window.thebe.bootstrap) return then();
    var css = document.createElement("link");
    css.rel = "stylesheet"; css.href = "assets/thebe/thebe.css";
    document.head.appendChild(css);
    var s = document.createElement("script");
    s.src = "assets/thebe/index.js";
    s.onload = then;
    s.onerror = function () { setStatus("Could not load the live-code library (assets/thebe).", "error"); started = false; };
    document.head.appendChild(s);
  }

  // mark each code cell's source for thebe and pair it with its output area (created when missing)
  function prepareCells() {
    document.querySelectorAll(".cell.code-cell").forEach(function (cell) {
      var code = cell.querySelector(".cell-input pre code");
      if (!code) return;
      var pre = document.createElement("pre");
      pre.setAttribute("data-executable", "true");
      pre.setAttribute("data-language", "python");
      pre.textContent = code.textContent.replace(/\n$/, "");
      var input = cell.querySelector(".cell-input");
      var hidden = input.closest("details.hidden-code");
      if (hidden) hidden.open = true;
      input.parentNode.replaceChild(pre, input);
      var out = cell.querySelector(".outputs");
      if (!out) {
        out = document.createElement("div");
        out.className = "outputs";
        pre.parentNode.insertBefore(out, pre.nextSibling);
      }
      out.setAttribute("data-output", "true");
      out.classList.add("live-output");
    });
  }

  function start(server) {
    started = true;
    button.disabled = true;
    button.textContent = "● Live";
    setStatus(server ? "Connecting to " + server.url + " …" : "Starting a Binder server (this can take a few minutes) …", "busy");
    loadThebe(function () {
      prepareCells();
      document.body.classList.add("live-mode");
      var options = {
        requestKernel: true,
        mountStatusWidget: false, mountActivateWidget: false,
        mountRunButton: true, mountRunAllButton: true, mountRestartButton: true, mountRestartAllButton: false,
        predefinedOutput: true,
        selector: "[data-executable]", outputSelector: "[data-output]",
        mathjaxUrl: false,
        kernelOptions: { kernelName: config.kernel || "python3", path: "/" },
        codeMirrorConfig: { lineNumbers: false }
      };
      if (server) {
        options.useBinder = false;
        options.serverSettings = { baseUrl: server.url, token: server.token, appendToken: true,
                                   wsUrl: server.url.replace(/^http/, "ws") };
      } else {
        options.useBinder = true;
        options.binderOptions = { repo: config.repo, ref: config.ref || "HEAD", binderUrl: config.binderUrl,
                                  repoProvider: config.provider || "github" };
      }
      var events = window.thebe.events;
      if (events && events.on) {
        events.on("status", function (_e, data) {
          if (document.body.getAttribute("data-live") === "ready" && !/error|dead|failed/.test(data && data.status)) return;
          if (data && data.message) setStatus((data.status === "ready" || data.status === "idle" ? "" : "… ") + data.message,
                                              /error|dead|failed/.test(data.status) ? "error" : "busy");
        });
      }
      window.thebe.bootstrap(options).then(function (r) {
        if (!r || !r.session) throw new Error("no kernel session");
        setStatus("Live: connected to a " + (config.kernel || "python3") + " kernel" +
                  (server ? " on " + server.url : " on Binder") + ". Edit a cell and press Shift+Enter, or its run button.", "ready");
        document.body.setAttribute("data-live", "ready");
      }).catch(function (err) {
        setStatus("Could not start a kernel: " + (err && err.message ? err.message : err) +
                  (server ? " — is the server running, the token right, and allow_origin set?" : ""), "error");
        document.body.setAttribute("data-live", "error");
      });
    });
  }
})();
