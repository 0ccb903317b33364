/* The book's site behaviour: theme toggle, mobile menu, copy buttons, tabs, outline highlight, search.
   No network: the search index is a local script (search-index.js) loaded on first use. */
(function () {
  "use strict";
  var doc = document.documentElement;

  // ---------------------------------------------------------------- dark / light
  var toggle = document.getElementById("theme-toggle");
  if (toggle) {
    toggle.addEventListener("click", function () {
      var next = doc.getAttribute("data-theme") === "dark" ? "light" : "dark";
      doc.setAttribute("data-theme", next);
      try { localStorage.setItem("book-theme", next); } catch (e) { /* private mode */ }
    });
  }

  // ---------------------------------------------------------------- mobile menu
  var menuBtn = document.getElementById("menu-toggle");
  var backdrop = document.getElementById("backdrop");
  function setMenu(open) {
    document.body.classList.toggle("menu-open", open);
    if (menuBtn) menuBtn.setAttribute("aria-expanded", open ? "true" : "false");
    if (backdrop) backdrop.hidden = !open;
  }
  if (menuBtn) menuBtn.addEventListener("click", function () { setMenu(!document.body.classList.contains("menu-open")); });
  if (backdrop) backdrop.addEventListener("click", function () { setMenu(false); });
  document.addEventListener("keydown", function (e) { if (e.key === "Escape") setMenu(false); });
  var active = document.querySelector(".sidebar li.active");
  if (active && active.scrollIntoView) { active.scrollIntoView({ block: "nearest" }); }

  // ---------------------------------------------------------------- copy buttons
  document.querySelectorAll(".copy-btn").forEach(function (btn) {
    btn.addEventListener("click", function () {
      var code = btn.parentNode.querySelector("pre code");
      if (!code) return;
      var text = Array.prototype.map.call(code.childNodes, function (n) {
        return n.classList && n.classList.contains("lineno") ? "" : n.textContent;
      }).join("");
      var done = function () {
        btn.textContent = "Copied"; btn.classList.add("copied");
        setTimeout(function () { btn.textContent = "Copy"; btn.classList.remove("copied"); }, 1500);
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(done, function () { fallbackCopy(text); done(); });
      } else { fallbackCopy(text); done(); }
    });
  });
  function fallbackCopy(text) {
    var ta = document.createElement("textarea");
    ta.value = text; ta.style.position = "fixed"; ta.style.opacity = "0";
    document.body.appendChild(ta); ta.select();
    try { document.execCommand("copy"); } catch (e) { /* nothing more to do */ }
    document.body.removeChild(ta);
  }

  // ---------------------------------------------------------------- tabs
  document.querySelectorAll(".tab-set").forEach(function (set) {
    var labels = set.querySelectorAll(":scope > .tab-labels > .tab-label");
    var panels = set.querySelectorAll(":scope > .tab-panel");
    labels.forEach(function (label, i) {
      label.addEventListener("click", function () {
        labels.forEach(function (l, j) { l.classList.toggle("active", i === j); l.setAttribute("aria-selected", i === j ? "true" : "false"); });
        panels.forEach(function (p, j) { p.hidden = i !== j; });
      });
    });
  });

  // ---------------------------------------------------------------- outline: highlight the section in view
  var links = Array.prototype.slice.call(document.querySelectorAll(".outline a"));
  var targets = links.map(function (a) { return document.getElementById(decodeURIComponent(a.getAttribute("href").slice(1))); });
  function onScroll() {
    var current = -1;
    for (var i = 0; i < targets.length; i++) {
      if (targets[i] && targets[i].getBoundingClientRect().top < 120) current = i;
    }
    links.forEach(function (a, i) { a.classList.toggle("current", i === current); });
  }
  if (links.length) { window.addEventListener("scroll", onScroll, { passive: true }); onScroll(); }

  // ---------------------------------------------------------------- previews of cross-references and citations
  var pop = null, popTimer = null, pageCache = {};
  function hidePreview() { clearTimeout(popTimer); if (pop) { pop.remove(); pop = null; } }
  function targetOf(a, then) {
    var href = a.getAttribute("href") || "", hash = href.indexOf("#");
    if (hash < 0) return then(null);
    var id = decodeURIComponent(href.slice(hash + 1)), path = href.slice(0, hash);
    if (!path) return then(document.getElementById(id));
    if (!window.fetch || location.protocol === "file:") return then(null);
    var got = pageCache[path] || (pageCache[path] = fetch(path).then(function (r) { return r.ok ? r.text() : ""; })
      .then(function (t) { return new DOMParser().parseFromString(t, "text/html"); }).catch(function () { return null; }));
    got.then(function (d) { then(d ? d.getElementById(id) : null); });
  }
  function showPreview(a) {
    targetOf(a, function (el) {
      if (!el || !a.matches(":hover")) return;
      hidePreview();
      var node = el.closest ? (el.closest("figure, .math-display, li, .cell, .admonition, section") || el) : el;
      if (/^H[1-6]$/.test(el.tagName)) {               // a section: its heading and first paragraph
        node = document.createElement("div");
        node.appendChild(el.cloneNode(true));
        var next = el.nextElementSibling;
        if (next) node.appendChild(next.cloneNode(true));
      }
      pop = document.createElement("div");
      pop.className = "preview";
      pop.setAttribute("role", "tooltip");
      var clone = node.cloneNode(true);
      clone.removeAttribute && clone.removeAttribute("id");
      clone.querySelectorAll("[id]").forEach(function (e) { e.removeAttribute("id"); });
      clone.querySelectorAll("img").forEach(function (i) { i.loading = "eager"; });
      pop.appendChild(clone);
      document.body.appendChild(pop);
      var r = a.getBoundingClientRect(), w = Math.min(480, window.innerWidth - 16);
      pop.style.width = w + "px";
      pop.style.left = Math.max(8, Math.min(r.left + window.scrollX, window.scrollX + window.innerWidth - w - 8)) + "px";
      var below = r.bottom + 8 + pop.offsetHeight < window.innerHeight;
      pop.style.top = (below ? r.bottom + window.scrollY + 8 : r.top + window.scrollY - pop.offsetHeight - 8) + "px";
    });
  }
  document.querySelectorAll("a.xref, a.cite").forEach(function (a) {
    a.removeAttribute("title");
    a.addEventListener("mouseenter", function () { clearTimeout(popTimer); popTimer = setTimeout(function () { showPreview(a); }, 250); });
    a.addEventListener("mouseleave", function () { clearTimeout(popTimer); popTimer = setTimeout(hidePreview, 150); });
    a.addEventListener("focus", function () { showPreview(a); });
    a.addEventListener("blur", hidePreview);
  });
  window.addEventListener("scroll", function () { if (pop) hidePreview(); }, { passive: true });

  // ---------------------------------------------------------------- search
  var input = document.getElementById("search-input");
  var box = document.getElementById("search-results");
  var index = null, loading = false, selected = -1;

  function loadIndex(then) {
    if (index) return then();
    if (window.BOOK_SEARCH_INDEX) { index = window.BOOK_SEARCH_INDEX; return then(); }
    if (loading) return;
    loading = true;
    var s = document.createElement("script");
    s.src = "search-index.js";
    s.onload = function () { index = window.BOOK_SEARCH_INDEX || []; then(); };
    s.onerror = function () { index = []; then(); };
    document.head.appendChild(s);
  }
  function escapeHtml(s) {
    return s.replace(/[&<>"']/g, function (c) { return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]; });
  }
  function escapeRe(s) { return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"); }
  function highlight(text, words) {
    var out = escapeHtml(text);
    words.forEach(function (w) { out = out.replace(new RegExp("(" + escapeRe(escapeHtml(w)) + ")", "ig"), "<mark>$1</mark>"); });
    return out;
  }
  function snippet(text, words) {
    var lower = text.toLowerCase(), pos = -1;
    for (var i = 0; i < words.length && pos < 0; i++) pos = lower.indexOf(words[i]);
    var start = Math.max(0, pos - 60);
    return (start > 0 ? "…" : "") + text.slice(start, start + 170) + (start + 170 < text.length ? "…" : "");
  }
  function search(q) {
    var words = q.toLowerCase().split(/\s+/).filter(function (w) { return w.length > 0; });
    if (!words.length) return [];
    var hits = [];
    index.forEach(function (e) {
      var title = (e.t + " " + e.h).toLowerCase(), text = e.x.toLowerCase(), score = 0;
      for (var i = 0; i < words.length; i++) {
        var w = words[i], inTitle = title.indexOf(w) >= 0, inText = text.indexOf(w) >= 0;
        if (!inTitle && !inText) return;
        score += (inTitle ? 10 : 0) + (inText ? 1 + Math.min(5, text.split(w).length - 1) : 0);
      }
      hits.push({ e: e, score: score });
    });
    hits.sort(function (a, b) { return b.score - a.score; });
    return hits.slice(0, 12).map(function (h) { return h.e; });
  }
  function show() {
    var q = input.value.trim();
    if (!q) { box.hidden = true; box.innerHTML = ""; return; }
    loadIndex(function () {
      var words = q.toLowerCase().split(/\s+/).filter(Boolean);
      var hits = search(q);
      selected = -1;
      if (!hits.length) {
        box.innerHTML = '<div class="sr-empty">No results for “' + escapeHtml(q) + '”</div>';
      } else {
        box.innerHTML = hits.map(function (e) {
          return '<a class="search-hit" href="' + escapeHtml(e.u) + '"><span class="sr-title">' + highlight(e.t, words) +
            (e.h && e.h !== e.t ? ' <span class="sr-heading">› ' + highlight(e.h, words) + "</span>" : "") + "</span>" +
            '<span class="sr-snippet">' + highlight(snippet(e.x, words), words) + "</span></a>";
        }).join("");
      }
      box.hidden = false;
    });
  }
  if (input && box) {
    input.addEventListener("input", show);
    input.addEventListener("focus", function () { loadIndex(function () {}); if (input.value.trim()) show(); });
    input.addEventListener("keydown", function (e) {
      var hits = box.querySelectorAll("a.search-hit");
      if (e.key === "ArrowDown" || e.key === "ArrowUp") {
        if (!hits.length) return;
        e.preventDefault();
        selected = (selected + (e.key === "ArrowDown" ? 1 : -1) + hits.length) % hits.length;
        hits.forEach(function (h, i) { h.classList.toggle("selected", i === selected); });
      } else if (e.key === "Enter") {
        var target = hits[selected >= 0 ? selected : 0];
        if (target) window.location.href = target.getAttribute("href");
      } else if (e.key === "Escape") {
        box.hidden = true; input.blur();
      }
    });
    document.addEventListener("click", function (e) { if (!e.target.closest || !e.target.closest(".search")) box.hidden = true; });
    document.addEventListener("keydown", function (e) {
      var tag = (e.target.tagName || "").toLowerCase();
      if ((e.key === "/" || ((e.ctrlKey || e.metaKey) && e.key === "k")) && tag !== "input" && tag !== "textarea") {
        e.preventDefault(); input.focus();
      }
    });
  }
})();
