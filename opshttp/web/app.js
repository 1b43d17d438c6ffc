// fastfeed live page: one EventSource on /api/events, conflated by the server to a few
// updates a second; everything is drawn from each message.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  let watched = (params.get("symbols") || "").split(",").map((s) => s.trim()).filter(Boolean);
  let chosen = watched.length > 0; // false: take the first three symbols the feed follows
  let es = null;
  let last = null;

  const fmtInt = (n) => (n === undefined || n === null ? "-" : Math.round(n).toLocaleString("en-US"));

  function connect() {
    if (es) es.close();
    const q = watched.length ? "?symbols=" + encodeURIComponent(watched.join(",")) : "";
    es = new EventSource("/api/events" + q);
    es.onopen = () => { $("conn").textContent = "● live"; $("conn").className = "conn live"; };
    es.onerror = () => { $("conn").textContent = "○ reconnecting"; $("conn").className = "conn"; };
    es.onmessage = (e) => {
      const m = JSON.parse(e.data);
      if (m.symbols) {
        const dl = $("symbols");
        dl.replaceChildren(...m.symbols.map((s) => { const o = document.createElement("option"); o.value = s; return o; }));
        if (!chosen && m.symbols.length) {
          chosen = true;
          setWatched(m.symbols.slice(0, 3));
          return;
        }
      }
      last = m;
      render(m);
    };
  }

  function setWatched(list) {
    watched = [...new Set(list)].slice(0, 16);
    const u = new URL(location.href);
    if (watched.length) u.searchParams.set("symbols", watched.join(",")); else u.searchParams.delete("symbols");
    history.replaceState(null, "", u);
    renderChips();
    connect();
  }

  function renderChips() {
    $("chips").replaceChildren(...watched.map((s) => {
      const c = document.createElement("span");
      c.className = "chip";
      c.textContent = s;
      const x = document.createElement("button");
      x.type = "button"; x.textContent = "×"; x.title = "remove " + s;
      x.onclick = () => setWatched(watched.filter((w) => w !== s));
      c.appendChild(x);
      return c;
    }));
  }

  $("pick").addEventListener("submit", (e) => {
    e.preventDefault();
    const v = $("pick-input").value.trim();
    if (v) setWatched(watched.concat(v.split(",").map((s) => s.trim()).filter(Boolean)));
    $("pick-input").value = "";
  });

  function render(m) {
    $("role").textContent = m.role;
    document.title = "fastfeed " + m.role + (m.health ? " — UNHEALTHY" : "");
    const h = $("health");
    if (m.role === "pub" || m.role === "publisher") { h.textContent = "publishing"; h.className = "health ok"; }
    else if (m.health) {
      const n = (m.health.stale || []).length;
      h.textContent = n ? "UNHEALTHY · " + n + " stale book" + (n > 1 ? "s" : "") : "UNHEALTHY · " + m.health.reason;
      h.title = m.health.reason; h.className = "health bad";
    }
    else { h.textContent = "healthy"; h.title = "/healthz: ok"; h.className = "health ok"; }
    const st = m.stats || {};
    $("k-dgrams").textContent = fmtInt(m.rates[0]);
    $("k-msgs").textContent = fmtInt(m.rates[1]);
    $("k-gaps").textContent = fmtInt(st.gaps);
    $("k-ab").textContent = fmtInt(st.recovered_ab);
    $("k-fix").textContent = fmtInt(st.recovered_fix);
    $("k-snap").textContent = fmtInt(st.snapshots_applied);
    $("k-stale").textContent = fmtInt(st.stale_books);
    $("k-stale").parentElement.classList.toggle("alert", st.stale_books > 0);
    $("k-err").textContent = fmtInt(st.decode_errors);
    $("k-err").parentElement.classList.toggle("alert", st.decode_errors > 0);
    renderLadders(m);
    renderChannels(m.channels || []);
    renderLatency(m.latency);
  }

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function sizeCell(side, lvl, maxSize) {
    const td = el("td", side + " size");
    if (!lvl) return td;
    const bar = el("div", "bar");
    bar.style.width = (maxSize > 0 ? Math.max(2, 100 * parseFloat(lvl[1]) / maxSize) : 0) + "%";
    td.append(bar, el("span", "", lvl[1]));
    return td;
  }

  function renderLadders(m) {
    const byS = new Map((m.books || []).map((b) => [b.symbol, b]));
    const out = [];
    for (const sym of watched) {
      const b = byS.get(sym);
      const card = el("div", "ladder");
      card.dataset.symbol = sym;
      const head = el("div", "ladder-head");
      head.append(el("span", "sym", sym));
      if (!b) {
        head.append(el("span", "badge missing", "NOT FOLLOWED"));
        card.append(head);
        out.push(card);
        continue;
      }
      card.dataset.rptseq = b.rptseq;
      card.dataset.stale = b.stale ? "true" : "false";
      head.append(el("span", "seq", "rptseq " + b.rptseq));
      if (b.stale) { card.classList.add("stale"); head.append(el("span", "badge stale", "STALE")); }
      const lastT = el("span", "last");
      if (b.last) { lastT.append("last "); lastT.append(el("b", "", b.last.price)); if (b.last.size) lastT.append(" × " + b.last.size); }
      else lastT.textContent = "no trade yet";
      head.append(lastT);
      const t = el("table");
      const hr = el("tr");
      for (const [c, s] of [["#", "bid"], ["size", "bid"], ["bid", "bid"], ["ask", "ask"], ["size", "ask"], ["#", "ask"]]) {
        const th = el("th", s, c);
        if (c === "#") th.title = "orders at the level";
        if (s === "ask") th.style.textAlign = "left";
        hr.append(th);
      }
      const thead = el("thead"); thead.append(hr); t.append(thead);
      const tb = el("tbody");
      let maxSize = 0;
      for (const l of b.bids.concat(b.asks)) maxSize = Math.max(maxSize, parseFloat(l[1]));
      const depth = Math.max(10, b.bids.length, b.asks.length);
      for (let i = 0; i < depth; i++) {
        const bid = b.bids[i], ask = b.asks[i];
        const tr = el("tr", bid || ask ? "level" : "empty");
        tr.dataset.level = i;
        tr.append(el("td", "bid orders", bid ? bid[2] : ""), sizeCell("bid", bid, maxSize), el("td", "bid price", bid ? bid[0] : (i === 0 ? "—" : "")),
          el("td", "ask price", ask ? ask[0] : (i === 0 ? "—" : "")), sizeCell("ask", ask, maxSize), el("td", "ask orders", ask ? ask[2] : ""));
        tb.append(tr);
      }
      t.append(tb);
      card.append(head, t);
      out.push(card);
    }
    $("ladders").replaceChildren(...out);
  }

  function renderChannels(chs) {
    $("chan-count").textContent = chs.length + " channels";
    const rows = chs.map((c) => {
      const tr = el("tr");
      tr.dataset.channel = c.channel;
      const st = el("td", "state state-" + (c.state || ""), c.state || "");
      const badge = el("td");
      if (c.stale > 0) badge.append(el("span", "badge stale", c.stale + " STALE"));
      tr.append(el("td", "", c.channel || c.name), st, el("td", "n", fmtInt(c.next)), el("td", "n", fmtInt(c.rate)),
        el("td", "n", fmtInt(c.instruments)), el("td", "n", fmtInt(c.gaps)), el("td", "n", fmtInt(c.missing)),
        el("td", "n", fmtInt(c.recovered_ab)), el("td", "n", fmtInt(c.recovered_fix)), el("td", "n", fmtInt(c.skipped_seq)),
        el("td", "n", fmtInt(c.duplicates)), el("td", "n", fmtInt(c.buffered)), badge);
      return tr;
    });
    $("channels").tBodies[0].replaceChildren(...rows);
  }

  // The plot: x is the percentile on the log scale of 1/(1-p), as HdrHistogram plots it;
  // y the latency in microseconds on a log scale.
  function renderLatency(lat) {
    const cv = $("plot");
    const dpr = window.devicePixelRatio || 1;
    const W = cv.clientWidth || 800, H = Math.round(W * 0.45);
    if (cv.width !== Math.round(W * dpr)) { cv.width = Math.round(W * dpr); cv.height = Math.round(H * dpr); }
    const g = cv.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, W, H);
    const fs = Math.max(11, Math.round(W / 60));
    g.font = fs + "px system-ui, sans-serif";
    const L = fs * 4.2, R = fs * 2.6, T = 12, B = fs * 2.6;
    const xOf = (p) => (p >= 100 ? 5.3 : -Math.log10(1 - p / 100));
    const curves = lat ? [["all", lat.all || [], "#58a6ff"], ["recent", lat.recent || [], "#f0883e"]] : [];
    let ymin = Infinity, ymax = -Infinity, xmax = 3;
    for (const [, pts] of curves) for (const [p, v] of pts) { if (v > 0) { ymin = Math.min(ymin, v); ymax = Math.max(ymax, v); } xmax = Math.max(xmax, Math.min(5.3, xOf(p))); }
    if (!isFinite(ymin)) { ymin = 1; ymax = 1000; }
    const lo = Math.floor(Math.log10(Math.max(ymin, 0.1))), hi = Math.max(lo + 1, Math.ceil(Math.log10(Math.max(ymax, 0.1))));
    xmax = Math.ceil(xmax);
    const px = (x) => L + (x / xmax) * (W - L - R);
    const py = (v) => T + (H - T - B) * (1 - (Math.log10(Math.max(v, Math.pow(10, lo))) - lo) / (hi - lo));
    g.strokeStyle = "#30363d"; g.fillStyle = "#8b949e"; g.lineWidth = 1;
    g.textAlign = "center";
    for (let d = 0; d <= xmax; d++) {
      const x = px(d);
      g.beginPath(); g.moveTo(x, T); g.lineTo(x, H - B); g.stroke();
      const lbl = d === 0 ? "0%" : (100 - Math.pow(10, 2 - d)).toFixed(Math.max(0, d - 2)) + "%";
      g.fillText(lbl, x, H - B + fs * 1.2);
    }
    g.textAlign = "right";
    for (let e = lo; e <= hi; e++) {
      const y = py(Math.pow(10, e));
      g.beginPath(); g.moveTo(L, y); g.lineTo(W - R, y); g.stroke();
      const v = Math.pow(10, e);
      g.fillText(v >= 1e6 ? v / 1e6 + " s" : v >= 1e3 ? v / 1e3 + " ms" : v + " µs", L - 5, y + fs * 0.35);
    }
    g.textAlign = "center";
    g.fillText("percentile", L + (W - L - R) / 2, H - fs * 0.2);
    for (const [name, pts, color] of curves) {
      if (!pts.length) continue;
      g.strokeStyle = color; g.lineWidth = 2.2; g.beginPath();
      pts.forEach(([p, v], i) => { const x = px(Math.min(xOf(p), xmax)), y = py(v); if (i) g.lineTo(x, y); else g.moveTo(x, y); });
      g.stroke();
    }
    g.textAlign = "left";
    let ly = T + fs;
    for (const [name, pts, color] of curves) {
      g.fillStyle = color; g.fillRect(L + 10, ly - fs * 0.6, fs, 3);
      g.fillStyle = "#e6edf3"; g.fillText(name === "all" ? "since start" : "last 5 s", L + 14 + fs, ly);
      ly += fs * 1.3;
    }
    if (!lat) { $("lat-count").textContent = ""; return; }
    $("lat-count").textContent = fmtInt(lat.count) + " messages";
    $("stages").tBodies[0].replaceChildren(...(lat.stages || []).map((s) => {
      const tr = el("tr");
      const f = (v) => (s.count > 0 ? v.toFixed(1) : "—");
      tr.append(el("td", "", s.name), el("td", "n", fmtInt(s.count)), el("td", "n", f(s.p50)), el("td", "n", f(s.p99)),
        el("td", "n", f(s.p999)), el("td", "n", f(s.max)));
      return tr;
    }));
  }

  window.addEventListener("resize", () => { if (last) renderLatency(last.latency); });
  // The ladders as shown, for tests and for copying: [{symbol, stale, rptseq, bids, asks}].
  window.fastfeedLadders = () => [...document.querySelectorAll(".ladder")].map((c) => ({
    symbol: c.dataset.symbol,
    shown: c.dataset.rptseq !== undefined,
    stale: c.dataset.stale === "true",
    badge: !!c.querySelector(".badge.stale"),
    rptseq: Number(c.dataset.rptseq || 0),
    bids: [...c.querySelectorAll("tr.level")].filter((r) => r.querySelector(".bid.price").textContent !== "")
      .map((r) => [r.querySelector(".bid.price").textContent, r.querySelector(".bid.size span").textContent, Number(r.querySelector(".bid.orders").textContent)]),
    asks: [...c.querySelectorAll("tr.level")].filter((r) => r.querySelector(".ask.price").textContent !== "")
      .map((r) => [r.querySelector(".ask.price").textContent, r.querySelector(".ask.size span").textContent, Number(r.querySelector(".ask.orders").textContent)]),
  }));
  window.fastfeedUpdated = () => (last ? last.t : 0);
  renderChips();
  connect();
})();
