/* Samizdat embed: shows a random, signature-checked fragment of a censored page.
   No dependencies. Fragment data only ever reaches the page through textContent and
   createElement; links must be http(s). `flask embed publish` fills in CONFIG. */
(function () {
  "use strict";
  var CONFIG = /*SAMIZDAT_CONFIG*/{};
  if (window.__samizdatEmbed) { window.__samizdatEmbed.scan(); return; }
  var TIMEOUT_MS = 2000, STORE = "samizdat:";
  // Relative origins (a self-hosted copy) are resolved against where this script came from.
  var SCRIPT_SRC = (document.currentScript && document.currentScript.src) || location.href;
  var subtle = window.crypto && window.crypto.subtle;
  var keyPromise = null;

  function b64urlBytes(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) s += "=";
    var bin = atob(s), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }
  function hex(buf) {
    return Array.prototype.map.call(new Uint8Array(buf), function (b) {
      return ("0" + b.toString(16)).slice(-2);
    }).join("");
  }
  function fetchBytes(url) {
    // Each origin gets TIMEOUT_MS; a censor's black hole must not hold the widget hostage.
    var ctl = window.AbortController ? new AbortController() : null;
    var timer = setTimeout(function () { if (ctl) ctl.abort(); }, TIMEOUT_MS);
    return fetch(url, { signal: ctl && ctl.signal, credentials: "omit", referrerPolicy: "no-referrer" })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.arrayBuffer();
      })
      .then(function (b) { clearTimeout(timer); return new Uint8Array(b); },
            function (e) { clearTimeout(timer); throw e; });
  }
  function ed25519Key() {
    if (!keyPromise) {
      keyPromise = subtle ? subtle.importKey("raw", b64urlBytes(CONFIG.key), { name: "Ed25519" }, false, ["verify"])
        : Promise.reject(new Error("no WebCrypto"));
    }
    return keyPromise;
  }
  // Where Ed25519 is missing from WebCrypto, only the app's own https origin is trusted
  // (TLS then vouches for the bytes); every other origin must prove its packs by signature.
  function verifyEnvelope(origin, bytes) {
    var env = JSON.parse(new TextDecoder().decode(bytes));
    var payload = new TextEncoder().encode(env.payload), mine = null;
    (env.signatures || []).forEach(function (s) { if (s.alg === "Ed25519" && s.kid === CONFIG.kid) mine = s; });
    if (!mine) throw new Error("not signed with our key");
    return ed25519Key().then(function (key) {
      return subtle.verify({ name: "Ed25519" }, key, b64urlBytes(mine.signature), payload);
    }, function () {
      return origin.trustedWithoutSignature === true;
    }).then(function (ok) {
      if (!ok) throw new Error("bad signature");
      return JSON.parse(env.payload);
    });
  }
  function remember(name, value) {
    try { localStorage.setItem(STORE + name, JSON.stringify(value)); } catch (e) { /* full or off */ }
  }
  function recall(name) {
    try { return JSON.parse(localStorage.getItem(STORE + name) || "null"); } catch (e) { return null; }
  }
  function randomBelow(n) {
    // Rejection sampling keeps the pick exactly uniform over all n fragments.
    var limit = Math.floor(4294967296 / n) * n, x = new Uint32Array(1);
    do { window.crypto.getRandomValues(x); } while (x[0] >= limit);
    return x[0] % n;
  }
  function packPath(collection, lang) {  // relative to an origin's packs/ base
    // Attributes come from strangers' pages: only path-safe names, never "../".
    var safe = /^[a-z0-9][a-z0-9_-]{0,62}$/;
    if (!safe.test(collection || "")) collection = "all";
    if (!safe.test(lang || "")) lang = "";
    return (collection || "all") + (lang ? "/lang/" + lang : "") + "/index.json";
  }
  function loadFromOrigin(origin, collection, lang) {
    var path = packPath(collection, lang), base = new URL(origin.packs, SCRIPT_SRC).href;
    return fetchBytes(base + path).then(function (bytes) {
      return verifyEnvelope(origin, bytes);
    }).then(function (index) {
      if (index.format !== "samizdat-pack/1") throw new Error("unknown format");
      if (index.pack + "/index.json" !== path) throw new Error("wrong pack");
      var seen = recall("serial:" + path) || 0;
      if (index.serial < seen) throw new Error("replayed older index");
      if (!index.count) return { index: index, fragments: [] };
      // A large pack lists tables of shards; each is checked against its hash like a shard.
      var at = randomBelow(index.count), found = locate(index.tables || index.shards, at);
      var shardPromise = !index.tables ? Promise.resolve(found) :
        fetchVerified(base, found.entry).then(function (table) { return locate(table.shards, found.at); });
      return shardPromise.then(function (got) {
        if (!got) throw new Error("bad index");
        return fetchVerified(base, got.entry).then(function (shard) {
          var list = shard.fragments;
          if (!list || list.length !== got.entry.count) throw new Error("bad shard");
          remember("serial:" + path, index.serial);
          remember("last:" + path, { fragments: list, archive: CONFIG.archive });
          return { index: index, fragments: list, pick: list[got.at], archive: CONFIG.archive };
        });
      });
    });
  }
  function locate(list, at) {
    for (var i = 0; list && i < list.length; i++) {
      if (at < list[i].count) return { entry: list[i], at: at };
      at -= list[i].count;
    }
    return null;
  }
  function fetchVerified(base, entry) {
    return fetchBytes(base + "shards/" + entry.sha256 + ".json").then(function (bytes) {
      return subtle.digest("SHA-256", bytes).then(function (d) {
        if (hex(d) !== entry.sha256) throw new Error("does not match its hash");
        return JSON.parse(new TextDecoder().decode(bytes));
      });
    });
  }
  function load(collection, lang) {
    var origins = CONFIG.origins || [], i = 0;
    function next() {
      if (i >= origins.length) {
        var last = recall("last:" + packPath(collection, lang));
        if (last && last.fragments.length) {
          return { pick: last.fragments[randomBelow(last.fragments.length)], archive: last.archive, cached: true };
        }
        throw new Error("every origin failed");
      }
      var origin = origins[i++];
      return loadFromOrigin(origin, collection, lang).catch(next);
    }
    return Promise.resolve().then(next);
  }
  function safeHref(url, base) {
    try {
      var u = new URL(url, base);
      return u.protocol === "https:" || u.protocol === "http:" ? u.href : null;
    } catch (e) { return null; }
  }
  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    for (var k in attrs) if (attrs[k] != null) node.setAttribute(k, attrs[k]);
    if (text != null) node.textContent = text;
    return node;
  }
  function words(lang) {
    var w = CONFIG.words || {};
    return w[lang] || w.en || {};
  }
  function render(holder, fragment, archive, opts) {
    var w = words(opts.words);
    var host = el("div", { "class": "samizdat-embed", "data-samizdat-rendered": "1" });
    var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;
    // A constructed sheet is not inline style, so host pages whose CSP forbids inline styles
    // still get ours; older browsers take a <style> element instead.
    if (root !== host && root.adoptedStyleSheets !== undefined && window.CSSStyleSheet) {
      try { var sheet = new CSSStyleSheet(); sheet.replaceSync(CONFIG.css || ""); root.adoptedStyleSheets = [sheet]; }
      catch (e) { root.appendChild(el("style", null, CONFIG.css || "")); }
    } else root.appendChild(el("style", null, CONFIG.css || ""));
    var quote = el("blockquote", { "class": "fragment " + (opts.size || "card") + " " + (opts.theme || "light"),
                                   cite: safeHref(fragment.source_url), lang: fragment.language || null });
    var text = el("p", { "class": "text", dir: "auto" }, fragment.text);
    quote.appendChild(text);
    if (fragment.edited) quote.appendChild(el("p", { "class": "edited" }, w.edited || "Edited by an archivist"));
    var cite = el("cite", { dir: "auto" });
    var source = safeHref(fragment.source_url);
    var title = fragment.title || fragment.site_name || fragment.source_url;
    if (source) cite.appendChild(el("a", { href: source, rel: "noopener noreferrer nofollow", target: "_blank" }, title));
    else cite.textContent = title;
    quote.appendChild(cite);
    var archived = safeHref(fragment.link, archive);
    if (archived) {
      quote.appendChild(el("a", { "class": "archived", href: archived, rel: "noopener noreferrer", target: "_blank" },
                           w.read || "Read the archived page"));
    }
    quote.appendChild(el("p", { "class": "about" }, (w.about || "Censored text, kept alive by Samizdat") +
      (fragment.country ? " · " + fragment.country : "")));
    root.appendChild(quote);
    holder.parentNode.replaceChild(host, holder);
  }
  function frameOptions() {
    // The static frame page takes its choices from its own query string (?collection=&size=…).
    if (!document.documentElement.hasAttribute("data-samizdat-frame")) return;
    var q = new URLSearchParams(location.search);
    Array.prototype.forEach.call(document.querySelectorAll("blockquote.samizdat-fragment"), function (b) {
      ["collection", "lang", "size", "theme", "words"].forEach(function (name) {
        var v = q.get(name);
        if (v && /^[a-z0-9_-]{1,64}$/i.test(v)) b.setAttribute("data-" + name, v);
      });
    });
  }
  function scan() {
    frameOptions();
    var nodes = document.querySelectorAll("blockquote.samizdat-fragment:not([data-samizdat-busy])");
    Array.prototype.forEach.call(nodes, function (holder) {
      holder.setAttribute("data-samizdat-busy", "1");
      var opts = { size: holder.getAttribute("data-size"), theme: holder.getAttribute("data-theme"),
                   words: holder.getAttribute("data-words") || "en" };
      // No WebCrypto digest at all (very old browsers, or http pages): keep the static fragment.
      if (!subtle || !window.fetch || !window.TextDecoder) return;
      load(holder.getAttribute("data-collection") || "all", holder.getAttribute("data-lang") || "")
        .then(function (got) { if (got.pick) render(holder, got.pick, got.archive, opts); })
        .catch(function () { /* every origin failed: the static fragment stays */ });
    });
  }
  window.__samizdatEmbed = { scan: scan, config: CONFIG };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", scan);
  else scan();
})();
