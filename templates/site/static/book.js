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
  // MiniSearch (assets/minisearch.js, from npm) over search-index.js: prefix and fuzzy matching (one
  // typo in five letters: "difusion" finds "diffusion"), accents folded ("frechet" finds "Fréchet").
  var input = document.getElementById("search-input");
  var box = document.getElementById("search-results");
  var engine = null, loading = false, selected = -1, waiting = [];
  var PAGE = 12, limit = PAGE;    // results shown: 12, or all after "Show all"

  function fold(s) { return s.normalize("NFD").replace(/[\u0300-\u036f]/g, "").toLowerCase(); }
  function loadIndex(then) {
    if (engine) return then();
    waiting.push(then);
    if (loading) return;
    loading = true;
    var ready = function () {
      var docs = (window.BOOK_SEARCH_INDEX || []).map(function (e, i) { return { id: i, t: e.t, h: e.h, u: e.u, x: e.x, m: e.m || "" }; });
      if (window.MiniSearch) {
        engine = new window.MiniSearch({
          fields: ["t", "h", "x", "m"], storeFields: ["t", "h", "u", "x"],
          processTerm: function (term) { var t = fold(term); return t.length ? t : null; },
          searchOptions: { boost: { t: 3, h: 2 }, prefix: true, fuzzy: function (term) { return term.length > 3 ? 0.2 : 0; },
                           combineWith: "AND" }
        });
        engine.addAll(docs);
      } else {
        engine = { search: function () { return []; }, broken: true };
      }
      var w = waiting; waiting = [];
      w.forEach(function (f) { f(); });
    };
    if (window.BOOK_SEARCH_INDEX) return ready();
    var s = document.createElement("script");
    s.src = "search-index.js";
    s.onload = ready;
    s.onerror = function () { window.BOOK_SEARCH_INDEX = []; ready(); };
    document.head.appendChild(s);
  }
  function escapeHtml(s) {
    return String(s).replace(/[&<>"']/g, function (c) { return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]; });
  }
  // mark the words that matched (MiniSearch reports them, typos included), accents folded
  function highlight(text, terms) {
    if (!terms.length) return escapeHtml(text);
    var folded = fold(text), marks = [];
    terms.forEach(function (t) {
      var i = 0;
      while (t && (i = folded.indexOf(t, i)) >= 0) { marks.push([i, i + t.length]); i += t.length; }
    });
    marks.sort(function (a, b) { return a[0] - b[0]; });
    var out = "", pos = 0;
    marks.forEach(function (m) {
      if (m[0] < pos) return;
      out += escapeHtml(text.slice(pos, m[0])) + "<mark>" + escapeHtml(text.slice(m[0], m[1])) + "</mark>";
      pos = m[1];
    });
    return out + escapeHtml(text.slice(pos));
  }
  function snippet(text, terms) {
    var folded = fold(text), pos = -1;
    for (var i = 0; i < terms.length && pos < 0; i++) pos = folded.indexOf(terms[i]);
    var start = Math.max(0, pos - 60);
    return (start > 0 ? "…" : "") + text.slice(start, start + 170) + (start + 170 < text.length ? "…" : "");
  }
  function search(q) { return engine.search(q); }
  function show() {
    var q = input.value.trim();
    if (!q) { box.hidden = true; box.innerHTML = ""; return; }
    loadIndex(function () {
      var hits = search(q);
      selected = -1;
      if (engine.broken) {
        box.innerHTML = '<div class="sr-empty">Search is not available in this build.</div>';
      } else if (!hits.length) {
        box.innerHTML = '<div class="sr-empty">No results for “' + escapeHtml(q) + '”</div>';
      } else {
        box.innerHTML = hits.slice(0, limit).map(function (e) {
          var terms = Object.keys(e.match || {}).map(fold);
          return '<a class="search-hit" href="' + escapeHtml(e.u) + '"><span class="sr-title">' + highlight(e.t, terms) +
            (e.h && e.h !== e.t ? ' <span class="sr-heading">› ' + highlight(e.h, terms) + "</span>" : "") + "</span>" +
            '<span class="sr-snippet">' + highlight(snippet(e.x, terms), terms) + "</span></a>";
        }).join("") + (hits.length > limit ?
          '<button type="button" class="sr-more" id="search-more">Show all ' + hits.length + " results (" +
          (hits.length - limit) + " more)</button>" : '<div class="sr-count">' + hits.length + (hits.length === 1 ? " result" : " results") + "</div>");
        var more = document.getElementById("search-more");
        if (more) more.addEventListener("click", function (ev) { ev.stopPropagation(); limit = hits.length; show(); });
      }
      box.hidden = false;
    });
  }
  if (input && box) {
    input.addEventListener("input", function () { limit = PAGE; show(); });
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

  // ---------------------------------------------------------------- wide tables: a visible scroll hint
  function markScrollable() {
    document.querySelectorAll(".table-wrap").forEach(function (w) {
      var wide = w.scrollWidth > w.clientWidth + 1;
      w.classList.toggle("is-scrollable", wide);
      var atEnd = w.scrollLeft + w.clientWidth >= w.scrollWidth - 1;
      w.classList.toggle("at-end", wide && atEnd);
      if (wide && !w.hasAttribute("tabindex")) { w.setAttribute("tabindex", "0"); w.setAttribute("aria-label", "Table: scroll sideways for more columns"); }
    });
  }
  document.querySelectorAll(".table-wrap").forEach(function (w) {
    w.addEventListener("scroll", markScrollable, { passive: true });
  });
  window.addEventListener("resize", markScrollable);
  markScrollable();
})();
