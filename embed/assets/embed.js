/* Samizdat embed: shows a random, signature-checked fragment of a censored page.
   No dependencies. Fragment data only ever reaches the page through textContent and
   createElement; links must be http(s). `flask embed publish` fills in CONFIG. */
(function () {
  "use strict";
  var CONFIG = /*SAMIZDAT_CONFIG*/{};
  // One instance per archive and signing key: two archives' widgets on one page (or one site)
  // never share holders, cached packs or the serial that refuses older indexes.
  var ID = CONFIG.kid + "|" + CONFIG.archive, STORE = "samizdat:" + ID + ":";
  var TIMEOUT_MS = 2000, SKEW_MS = 3600000;
  var me = document.currentScript;
  // Relative origins (a self-hosted copy) are resolved against where this script came from.
  var SCRIPT_SRC = (me && me.src) || location.href;
  var all = window.__samizdatEmbeds = window.__samizdatEmbeds || {};
  if (all[ID]) { all[ID].srcs.push(SCRIPT_SRC); all[ID].scan(); return; }
  var srcs = [SCRIPT_SRC];
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
  function utf8(bytes) { return new TextDecoder().decode(bytes); }
  function bytesOf(text) { return new TextEncoder().encode(text); }
  function sha256(bytes) { return subtle.digest("SHA-256", bytes).then(hex); }
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
  function edKey(raw) { return subtle.importKey("raw", raw, { name: "Ed25519" }, false, ["verify"]); }
  function ed25519Key() {
    if (!keyPromise) keyPromise = subtle ? edKey(b64urlBytes(CONFIG.key)) : Promise.reject(new Error("no WebCrypto"));
    return keyPromise;
  }
  function warn(e) { if (window.console) console.warn("Samizdat: " + (e && e.message || e)); }
  // --- The log (CONFIG.log, absent from older builds): a fragment is shown only when its
  // approval is in the log under a checkpoint signed by the pinned log key and cosigned by
  // CONFIG.log.quorum of the pinned witnesses, so a stolen pack key alone cannot add words.
  // The largest checkpoint this page has accepted, in memory only (readers leave no trace):
  // a smaller one after it is a rollback, another root at its size a fork.
  var checkpoints = {}, floor = { size: -1 };
  function vkeyOf(v, type) {  // a signed-note verifier key <name>+<hex id>+<base64(type || key)>
    var p = String(v).split("+"), raw = b64urlBytes(p.slice(2).join("+"));
    if (raw[0] !== type || raw.length !== 33) throw new Error("bad pinned key");
    return { name: p[0], id: p[1], raw: raw.subarray(1) };
  }
  function checkpointOf(index) {  // {size, root, time, revoked} of its checkpoint, once verified
    var note = index.checkpoint;
    if (typeof note !== "string") return Promise.reject(new Error("the index names no log checkpoint"));
    return checkpoints[note] || (checkpoints[note] = Promise.resolve().then(function () {
      var L = CONFIG.log, at = note.lastIndexOf("\n\n"), text = note.slice(0, at + 1), body = bytesOf(text);
      if (at < 0 || note.slice(-1) !== "\n") throw new Error("checkpoint is not a signed note");
      var sigs = note.slice(at + 2, -1).split("\n").map(function (line) {
        var m = /^\u2014 (\S+) (\S+)$/.exec(line), b = m && b64urlBytes(m[2]);
        if (!b || b.length < 5) throw new Error("checkpoint has a malformed signature line");
        return { name: m[1], id: hex(b.subarray(0, 4)), sig: b.subarray(4) };
      });
      var keys = [vkeyOf(L.key, 1)].concat((L.witnesses || []).map(function (w) { return vkeyOf(w, 4); }));
      return Promise.all(keys.map(function (k, n) {
        return Promise.all(sigs.filter(function (s) { return s.name === k.name && s.id === k.id; }).map(function (s) {
          var msg = body, sig = s.sig, d = new DataView(sig.buffer, sig.byteOffset, sig.length), t;
          if (n) {  // tlog-cosignature/v1: an 8-byte timestamp, then Ed25519 over a header + the text
            if (sig.length !== 72) return false;
            t = d.getUint32(0) * 4294967296 + d.getUint32(4);
            if (t > (Date.now() + SKEW_MS) / 1000) return false;
            msg = bytesOf("cosignature/v1\ntime " + t + "\n" + text);
            sig = sig.subarray(8);
          }
          return edKey(k.raw).then(function (key) {
            return subtle.verify({ name: "Ed25519" }, key, sig, msg).then(function (ok) { return ok && (t || 1); });
          });
        })).then(function (oks) {
          if (oks.indexOf(false) >= 0) throw new Error("checkpoint has a bad signature by " + k.name);
          return Math.max.apply(null, oks.concat(0));  // a cosigner's newest time; 0: none
        });
      })).then(function (have) {
        // Newest first: the quorum-th is how fresh the policy is met (docs/provenance.md).
        var times = have.slice(1).filter(Boolean).sort(function (a, b) { return b - a; }), q = L.quorum || 0;
        var lines = text.split("\n"), root = b64urlBytes(lines[2] || ""), cp = { revoked: {} }, m;
        if (!have[0]) throw new Error("checkpoint is not signed by the log key");
        if (times.length < q) throw new Error("checkpoint has " + times.length + " of the " + q + " cosignatures its policy needs");
        if (lines[0] !== keys[0].name || !/^(0|[1-9]\d{0,15})$/.test(lines[1]) || root.length !== 32) throw new Error("checkpoint is malformed");
        lines.slice(3).forEach(function (l) {  // extension lines: "time T", "revoked pack KID T"
          if ((m = /^time (\d{1,12})$/.exec(l))) cp.signed = +m[1];
          if ((m = /^revoked pack ([0-9a-f]{16}) (\d{1,12})$/.exec(l))) cp.revoked[m[1]] = +m[2];
        });
        cp.size = +lines[1]; cp.root = hex(root); cp.time = q ? times[q - 1] : cp.signed;
        return cp;
      });
    }));
  }
  // The index's checkpoint if this page may believe it: its key not revoked when the index or
  // the checkpoint was made, younger than CONFIG.log.maxAge, never smaller than one accepted.
  function admit(index) {
    return checkpointOf(index).then(function (cp) {
      var max = CONFIG.log.maxAge, r = cp.revoked[CONFIG.kid], at = Date.parse(index.generated_at) / 1000;
      if (r <= at || r <= cp.signed) throw new Error("index signed by pack key " + CONFIG.kid + ", which the log revokes from " + new Date(r * 1000).toISOString());
      if (max && !(cp.time > Date.now() / 1000 - max)) throw new Error("checkpoint is older than " + max + " s: the archive has not refreshed it");
      if (cp.size < floor.size) throw new Error("checkpoint of size " + cp.size + " is older than the size " + floor.size + " this page accepted: rolled back");
      if (cp.size === floor.size && cp.root !== floor.root) throw new Error("checkpoint of size " + cp.size + " has another root than the one this page accepted: a fork");
      return (floor = cp);
    });
  }
  function digest(prefix, a, b) {  // RFC 9162: leaf SHA-256(0x00 || entry), node SHA-256(0x01 || l || r)
    var x = new Uint8Array(1 + a.length + (b ? b.length : 0));
    x[0] = prefix; x.set(a, 1); if (b) x.set(b, 1 + a.length);
    return subtle.digest("SHA-256", x).then(function (h) { return new Uint8Array(h); });
  }
  function proven(f, cp) {  // resolves if f's approval is in the log under cp (RFC 9162 2.1.3.2)
    var g = f.log || {}, e = {}, proof = g.proof, fn = g.index, sn = cp.size - 1, i = 0, why = "fragment " + f.id + ": ";
    try { e = JSON.parse(g.entry); } catch (x) { /* refused below */ }
    if (e.type !== "decision" || e.fragment !== f.id || !/^(approved|edited)$/.test(e.decision) ||
        !Array.isArray(proof) || !(fn >= 0 && fn <= sn && fn % 1 === 0)) return Promise.reject(new Error(why + "no logged approval"));
    function step(r) {
      if (i === proof.length) {
        if (sn || hex(r) !== cp.root) throw new Error(why + "inclusion proof does not lead to the checkpoint");
        return f;
      }
      var p = b64urlBytes(String(proof[i++])), left = fn % 2 || fn === sn;
      if (!sn || p.length !== 32) throw new Error(why + "bad inclusion proof");
      if (left) while (fn && fn % 2 === 0) { fn /= 2; sn = Math.floor(sn / 2); }
      fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
      return (left ? digest(1, p, r) : digest(1, r, p)).then(step);
    }
    return sha256(bytesOf(f.text)).then(function (h) {
      if (h !== e.text_sha256) throw new Error(why + "its text is not the logged one");
      return digest(0, bytesOf(g.entry)).then(step);
    });
  }
  // The fragment at ``at`` if proven, else the next proven one of the list; never an unproven one.
  function choose(list, at, index) {
    if (!CONFIG.log) return Promise.resolve(list[at]);
    var k = 0;
    return admit(index).then(function (cp) {
      return (function attempt() {
        if (k >= list.length) throw new Error("no fragment here is proven in the log");
        return proven(list[(at + k++) % list.length], cp).catch(function (e) { warn(e); return attempt(); });
      })();
    });
  }
  // Where Ed25519 is missing from WebCrypto, only the app's own https origin is trusted
  // (TLS then vouches for the bytes); every other origin must prove its packs by signature.
  // The index of ``path`` inside a signed envelope (text), once its signature is checked.
  function verifyEnvelope(origin, text, path) {
    var env = JSON.parse(text);
    var payload = bytesOf(env.payload), mine = null;
    (env.signatures || []).forEach(function (s) { if (s.alg === "Ed25519" && s.kid === CONFIG.kid) mine = s; });
    if (!mine) throw new Error("not signed with our key");
    return ed25519Key().then(function (key) {
      return subtle.verify({ name: "Ed25519" }, key, b64urlBytes(mine.signature), payload);
    }, function () {
      return origin.trustedWithoutSignature === true;
    }).then(function (ok) {
      if (!ok) throw new Error("bad signature");
      var index = JSON.parse(env.payload);
      if (index.format !== "samizdat-pack/1") throw new Error("unknown format");
      if (index.pack + "/index.json" !== path) throw new Error("wrong pack");
      // With a pinned log, an index whose checkpoint fails is refused before any shard is fetched.
      return CONFIG.log ? admit(index).then(function () { return index; }) : index;
    });
  }
  // Whether a (verified) index may be shown: its signed expiry is ahead and it was not made
  // later than this clock allows, so no stale copy keeps words that were rejected since.
  function fresh(index) {
    var now = Date.now();
    return Date.parse(index.expires) > now && Date.parse(index.generated_at) < now + SKEW_MS;
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
  function fragmentsOf(shard, entry) {
    var list = JSON.parse(shard).fragments;
    if (!list || list.length !== entry.count) throw new Error("bad shard");
    return list;
  }
  // ``cached`` (the verified cache, or null, once settled) sets the floor: an index older than
  // one already seen is refused, so a replayed copy cannot roll fragments back.
  function loadFromOrigin(origin, path, cached) {
    var base = new URL(origin.packs, SCRIPT_SRC).href, env, table;
    return fetchBytes(base + path).then(function (bytes) {
      env = utf8(bytes);
      return Promise.all([verifyEnvelope(origin, env, path), cached]);
    }).then(function (got) {
      var index = got[0], seen = got[1];
      if (!fresh(index)) throw new Error("expired");
      if (seen && index.serial < seen.index.serial) throw new Error("replayed older index");
      if (!index.count) { remember(path, { env: env }); return {}; }
      // A large pack lists tables of shards; each is checked against its hash like a shard.
      var at = randomBelow(index.count), found = locate(index.tables || index.shards, at);
      if (!found) throw new Error("bad index");
      var shardPromise = !index.tables ? Promise.resolve(found) :
        fetchVerified(base, found.entry).then(function (t) { table = t; return locate(JSON.parse(t).shards, found.at); });
      return shardPromise.then(function (got) {
        if (!got) throw new Error("bad index");
        return fetchVerified(base, got.entry).then(function (shard) {
          var list = fragmentsOf(shard, got.entry);
          // The signed envelope and the exact bytes, so the cache is verified like an origin.
          return choose(list, got.at, index).then(function (pick) {
            remember(path, { env: env, table: table, shard: shard });
            return { pick: pick };
          });
        });
      });
    });
  }
  // The cached pack, believed only as far as it verifies (host-page scripts can write
  // localStorage too): the signed index, then its table and shard against the hashes it names.
  function fromCache(path) {
    var c = recall(path);
    if (!c || typeof c.env !== "string") return Promise.resolve(null);
    return Promise.resolve(c.env).then(function (env) { return verifyEnvelope({}, env, path); }).then(function (index) {
      if (!index.count) return { index: index, fragments: [] };
      var list = !index.tables ? Promise.resolve(index.shards) :
        listed(index.tables, c.table).then(function () { return JSON.parse(c.table).shards; });
      return list.then(function (shards) { return listed(shards, c.shard); }).then(function (entry) {
        return { index: index, fragments: fragmentsOf(c.shard, entry) };
      });
    }).catch(function () { return null; });
  }
  function listed(list, text) {  // the entry of ``list`` naming ``text``'s sha256
    if (typeof text !== "string") return Promise.reject(new Error("missing"));
    return sha256(bytesOf(text)).then(function (h) {
      for (var i = 0; list && i < list.length; i++) if (list[i].sha256 === h) return list[i];
      throw new Error("not in the index");
    });
  }
  function locate(list, at) {
    for (var i = 0; list && i < list.length; i++) {
      if (at < list[i].count) return { entry: list[i], at: at };
      at -= list[i].count;
    }
    return null;
  }
  function fetchVerified(base, entry) {  // the text of a shard or table, checked against its hash
    return fetchBytes(base + "shards/" + entry.sha256 + ".json").then(function (bytes) {
      return sha256(bytes).then(function (h) {
        if (h !== entry.sha256) throw new Error("does not match its hash");
        return utf8(bytes);
      });
    });
  }
  function load(collection, lang) {
    var path = packPath(collection, lang), origins = CONFIG.origins || [], i = 0, cached = fromCache(path);
    function next() {
      if (i >= origins.length) {
        return cached.then(function (c) {
          if (c && fresh(c.index) && c.fragments.length) {
            return choose(c.fragments, randomBelow(c.fragments.length), c.index).then(function (pick) { return { pick: pick }; });
          }
          throw new Error("every origin failed");
        });
      }
      return loadFromOrigin(origins[i++], path, cached).catch(function (e) { warn(e); return next(); });
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
    // A fragment that opens with its own quotation mark gets no second one from our style.
    var quoted = /^["'\u201C\u201D\u201E\u00AB\u2018\u2019\u2039\u300C\u300E]/.test(fragment.text);
    var text = el("p", { "class": quoted ? "text quoted" : "text", dir: "auto" }, fragment.text);
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
  // A holder belongs to the archive whose script tags follow it; one with no script after it
  // (one script tag for a whole page) goes to whichever widget comes first.
  function mine(holder) {
    var free = true;
    for (var n = holder.nextElementSibling; n && n.tagName === "SCRIPT"; n = n.nextElementSibling) {
      if (!me || srcs.indexOf(n.src) >= 0) return true;
      if (n.src) free = false;
    }
    return free;
  }
  function scan() {
    frameOptions();
    var nodes = document.querySelectorAll("blockquote.samizdat-fragment:not([data-samizdat-busy])");
    Array.prototype.forEach.call(nodes, function (holder) {
      if (!mine(holder)) return;
      holder.setAttribute("data-samizdat-busy", "1");
      var opts = { size: holder.getAttribute("data-size"), theme: holder.getAttribute("data-theme"),
                   words: holder.getAttribute("data-words") || "en" };
      // No WebCrypto digest at all (very old browsers, or http pages): keep the static fragment.
      if (!subtle || !window.fetch || !window.TextDecoder) return;
      load(holder.getAttribute("data-collection") || "all", holder.getAttribute("data-lang") || "")
        .then(function (got) { if (got.pick) render(holder, got.pick, CONFIG.archive, opts); })
        .catch(warn);  // every origin failed: the static fragment stays
    });
  }
  all[ID] = { scan: scan, srcs: srcs, config: CONFIG };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", scan);
  else scan();
})();
