// The ops console page: polls /api/overview and draws it. Plain DOM, no library, no build step.
// Every value from the server is set as text, never as markup.
"use strict";

const POLL_MS = 2000;
const TOKEN_KEY = "renkei.ops.token";
const SVG = "http://www.w3.org/2000/svg";
const CITY_NAMES = { "112224": "Koshigaya 越谷市", "112216": "Soka 草加市" };
// Where each system sits in a city, as the assessment draws it: the registry feeds the
// address systems; the business system and the intermediate server face outwards.
const CITY_SLOTS = {
  resident_registry: [0, 0], juki_cs: [1, 0],
  integrated_address: [0, 1], welfare_address: [1, 1],
  health_mgmt: [0, 2], intermediate_server: [1, 2],
};
const NATIONAL_SLOTS = { juki_prefecture: 0, ops_console: 1, provision_network: 2 };
const BOX_W = 210, BOX_H = 84, GAP_X = 36, GAP_Y = 44, PAD = 22, TITLE_H = 30;

let timer = null;
let paused = false;
let idleMinutes = 15;
let lastActivity = Date.now();

const $ = (id) => document.getElementById(id);

function token() { return sessionStorage.getItem(TOKEN_KEY); }

function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function fmtRate(v) { return v === null || v === undefined ? "—" : v < 10 ? v.toFixed(2) : v.toFixed(0); }
function fmtRatio(v) { return v === null || v === undefined ? "—" : (v * 100).toFixed(1) + "%"; }
function fmtMs(v) { return v === null || v === undefined ? "—" : v < 10 ? v.toFixed(1) + " ms" : v.toFixed(0) + " ms"; }
function fmtNum(v) { return v === null || v === undefined ? "—" : String(Math.round(v)); }
function fmtAge(s) {
  if (s === null || s === undefined) return "—";
  if (s < 90) return Math.round(s) + " s";
  if (s < 5400) return Math.round(s / 60) + " min";
  return (s / 3600).toFixed(1) + " h";
}
const STATE_TEXT = { ready: "READY", not_ready: "NOT READY", down: "DOWN" };

function setStatus(text) { $("status").textContent = text; }

function showSignIn(message) {
  stopPolling();
  sessionStorage.removeItem(TOKEN_KEY);
  $("console").hidden = true;
  $("sign-out").hidden = true;
  $("sign-in").hidden = false;
  $("sign-in-error").textContent = message || "";
  setStatus("signed out");
}

async function signIn(event) {
  event.preventDefault();
  const body = { user_id: $("user-id").value.trim(), password: $("password").value, totp: $("totp").value.trim() };
  let response;
  try {
    response = await fetch("/staff/login", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  } catch (e) {
    $("sign-in-error").textContent = "the console does not answer";
    return;
  }
  const reply = await response.json().catch(() => ({}));
  if (!response.ok) {
    $("sign-in-error").textContent = reply.detail || reply.title || "sign-in refused";
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, reply.token);
  $("password").value = "";
  $("totp").value = "";
  $("sign-in").hidden = true;
  $("sign-out").hidden = false;
  lastActivity = Date.now();
  poll();
}

async function signOut() {
  const t = token();
  if (t) await fetch("/staff/logout", { method: "POST", headers: { Authorization: "Bearer " + t } }).catch(() => {});
  showSignIn("signed out");
}

function stopPolling() { if (timer) clearTimeout(timer); timer = null; }

function schedule() { stopPolling(); timer = setTimeout(poll, POLL_MS); }

// Sign-in sessions end after a while without use (M09): a page left alone stops polling
// so that its session can expire, and resumes on the next touch of mouse or keyboard.
function idle() { return Date.now() - lastActivity > idleMinutes * 60000; }

function activity() {
  lastActivity = Date.now();
  if (paused) { paused = false; poll(); }
}

async function poll() {
  const t = token();
  if (!t) { showSignIn(); return; }
  if (idle()) {
    paused = true;
    stopPolling();
    setStatus(`paused after ${idleMinutes} minutes without activity; move the mouse or press a key to resume`);
    return;
  }
  let response;
  try {
    response = await fetch("/api/overview", { headers: { Authorization: "Bearer " + t }, cache: "no-store" });
  } catch (e) {
    setStatus("the console does not answer; retrying");
    schedule();
    return;
  }
  if (response.status === 401) {
    const reply = await response.json().catch(() => ({}));
    showSignIn(reply.detail);
    return;
  }
  if (response.status === 403) {
    const reply = await response.json().catch(() => ({}));
    showSignIn(reply.detail || "this account may not view the console");
    return;
  }
  if (!response.ok) {
    setStatus(`the overview failed (${response.status}); retrying`);
    schedule();
    return;
  }
  const overview = await response.json();
  idleMinutes = overview.idle_minutes || idleMinutes;
  render(overview);
  schedule();
}

function render(o) {
  $("sign-in").hidden = true;
  $("console").hidden = false;
  $("sign-out").hidden = false;
  const ready = o.services.filter((s) => s.state === "ready").length;
  setStatus(`${ready} of ${o.services.length} services ready · NATS ${o.nats.reachable ? (o.nats.healthy ? "healthy" : "unhealthy") : "unreachable"} · ${o.generated_at}`);
  const problem = $("problem");
  problem.hidden = !o.problem;
  problem.textContent = o.problem || "";
  const byId = Object.fromEntries(o.services.map((s) => [s.principal, s]));
  drawTopology(o.topology, byId, o.cities);
  fillServices(o.services);
  fillNats(o.nats);
  fillLedgers(o.ledgers);
  fillFeatures(o.intermediate_server);
}

// --- topology ----------------------------------------------------------------------

function columnOrder(groups, cities) {
  // the national systems stand between the first city and the others, as the network does
  const order = [];
  groups.forEach((g) => { if (g !== "national") order.push(g); });
  if (groups.includes("national")) order.splice(Math.min(1, order.length), 0, "national");
  return order;
}

function layout(topology, cities) {
  const order = columnOrder(topology.groups, cities);
  const nationalIndex = order.indexOf("national");
  const positions = {};
  const frames = [];
  let x = PAD;
  let height = 0;
  for (const [index, group] of order.entries()) {
    const nodes = topology.nodes.filter((n) => n.group === group);
    const national = group === "national";
    const cols = national ? 1 : 2;
    const mirror = !national && nationalIndex >= 0 && index > nationalIndex;
    let extra = 3;
    const slots = nodes.map((n) => {
      if (national) return [0, n.service in NATIONAL_SLOTS ? NATIONAL_SLOTS[n.service] : extra++];
      const slot = CITY_SLOTS[n.service];
      if (!slot) { const s = [(extra - 3) % 2, 3 + Math.floor((extra - 3) / 2)]; extra++; return s; }
      return [mirror ? 1 - slot[0] : slot[0], slot[1]];
    });
    const rows = Math.max(3, ...slots.map((s) => s[1] + 1));
    const width = cols * BOX_W + (cols - 1) * GAP_X + 2 * PAD;
    nodes.forEach((n, i) => {
      const [c, r] = slots[i];
      positions[n.id] = { x: x + PAD + c * (BOX_W + GAP_X), y: PAD + TITLE_H + PAD + r * (BOX_H + GAP_Y), w: BOX_W, h: BOX_H };
    });
    const h = TITLE_H + 2 * PAD + rows * BOX_H + (rows - 1) * GAP_Y;
    frames.push({ group, x, y: PAD, w: width, h });
    height = Math.max(height, h);
    x += width + 2 * GAP_X;
  }
  return { positions, frames, width: x - 2 * GAP_X + PAD, height: height + 2 * PAD };
}

function groupTitle(group) {
  if (group === "national") return "National · 国 (simulated)";
  return `${CITY_NAMES[group] || "City"} (${group})`;
}

function border(from, box) {
  // where the line from `from` to the centre of `box` crosses the box's edge
  const cx = box.x + box.w / 2, cy = box.y + box.h / 2;
  const dx = from.x - cx, dy = from.y - cy;
  if (dx === 0 && dy === 0) return { x: cx, y: cy };
  const scale = Math.min(Math.abs((box.w / 2 + 4) / (dx || 1e-9)), Math.abs((box.h / 2 + 4) / (dy || 1e-9)));
  return { x: cx + dx * scale, y: cy + dy * scale };
}

function drawTopology(topology, byId, cities) {
  const root = $("topology");
  const { positions, frames, width, height } = layout(topology, cities);
  root.replaceChildren();
  root.setAttribute("viewBox", `0 0 ${width} ${height}`);
  const defs = svg("defs");
  for (const kind of ["bus", "event", "network"]) {
    const marker = svg("marker", { id: `arrow-${kind}`, viewBox: "0 0 10 10", refX: "9", refY: "5", markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse" });
    marker.append(svg("path", { d: "M0,0 L10,5 L0,10 z", class: `arrow ${kind}`, fill: kind === "network" ? "#0969da" : kind === "event" ? "#8250df" : "#6e7781" }));
    defs.append(marker);
  }
  root.append(defs);
  for (const f of frames) {
    const g = svg("g", { class: "group", "data-group": f.group });
    g.append(svg("rect", { class: "group-box", x: f.x, y: f.y, width: f.w, height: f.h, rx: 10 }));
    g.append(svg("text", { class: "group-title", x: f.x + PAD, y: f.y + PAD + 12 }, groupTitle(f.group)));
    root.append(g);
  }
  for (const e of topology.edges) {
    const a = positions[e.source], b = positions[e.target];
    if (!a || !b) continue;
    const start = border({ x: b.x + b.w / 2, y: b.y + b.h / 2 }, a);
    const end = border({ x: a.x + a.w / 2, y: a.y + a.h / 2 }, b);
    const attrs = { class: `edge ${e.kind}`, x1: start.x, y1: start.y, x2: end.x, y2: end.y, "marker-end": `url(#arrow-${e.kind})` };
    if (e.kind === "network") attrs["marker-start"] = "url(#arrow-network)";
    const line = svg("line", attrs);
    line.append(svg("title", {}, `${e.source} → ${e.target}: ${e.labels.join(", ")}`));
    root.append(line);
  }
  for (const n of topology.nodes) {
    const p = positions[n.id];
    const s = byId[n.id] || { state: "down" };
    const g = svg("g", { class: `node ${s.state}`, "data-principal": n.id, "data-state": s.state });
    g.append(svg("rect", { x: p.x, y: p.y, width: p.w, height: p.h, rx: 7 }));
    g.append(svg("text", { class: "name", x: p.x + 10, y: p.y + 19 }, n.name));
    g.append(svg("text", { class: "badge", x: p.x + p.w - 10, y: p.y + 72, "text-anchor": "end" }, STATE_TEXT[s.state] || s.state));
    g.append(svg("text", { class: "name-ja", x: p.x + 10, y: p.y + 36 }, n.name_ja));
    const figures = s.state === "down" ? `no answer (${(s.detail || "?").split(":")[0]})`.slice(0, 34)
      : `${fmtRate(s.requests_per_second)} req/s · ${fmtRatio(s.error_ratio)} err`;
    g.append(svg("text", { class: "figures", x: p.x + 10, y: p.y + 55 }, figures));
    if (s.state !== "down") {
      const outbox = s.outbox_backlog === null || s.outbox_backlog === undefined ? "" : ` · outbox ${fmtNum(s.outbox_backlog)}`;
      g.append(svg("text", { class: "figures", x: p.x + 10, y: p.y + 72 }, `p95 ${fmtMs(s.p95_ms)}${outbox}`));
    }
    g.append(svg("title", {}, `${n.id}: ${s.state}${s.detail ? " — " + s.detail : ""}`));
    root.append(g);
  }
}

// --- tables ------------------------------------------------------------------------

function row(cells, attrs = {}) {
  const tr = el("tr", attrs);
  for (const c of cells) {
    const td = el("td", c.cls ? { class: c.cls } : {}, c.text);
    tr.append(td);
  }
  return tr;
}

function fillServices(services) {
  const body = $("services").tBodies[0];
  body.replaceChildren(...services.map((s) => row([
    { text: s.principal },
    { text: STATE_TEXT[s.state] || s.state, cls: "state" },
    { text: fmtRate(s.requests_per_second), cls: "num" },
    { text: fmtRatio(s.error_ratio), cls: "num" },
    { text: fmtMs(s.p95_ms), cls: "num" },
    { text: fmtNum(s.outbox_backlog), cls: "num" },
    { text: s.bus === null ? "—" : s.bus, cls: s.bus === "ok" ? "ok" : s.bus === null ? "" : "bad" },
    { text: s.detail },
  ], { class: s.state, "data-principal": s.principal, "data-state": s.state })));
}

function fillNats(n) {
  const dl = $("nats");
  const items = n.reachable
    ? [["state", n.healthy ? "healthy (JetStream up)" : "unhealthy"], ["server", `${n.server_name || "?"} · ${n.version || "?"} · up ${n.uptime || "?"}`],
       ["connections", n.connections], ["clients", (n.clients || []).join(", ") || "none"], ["slow consumers", n.slow_consumers], ["monitoring", n.url]]
    : [["state", "unreachable"], ["why", n.error], ["monitoring", n.url || "—"]];
  dl.replaceChildren();
  for (const [k, v] of items) {
    dl.append(el("dt", {}, k));
    const dd = el("dd", {}, v);
    if (k === "state") dd.className = n.reachable && n.healthy ? "ok" : "bad";
    dl.append(dd);
  }
  const js = n.jetstream || { streams: [], consumers: [] };
  $("streams").tBodies[0].replaceChildren(...js.streams.map((s) => row([
    { text: s.name }, { text: s.messages, cls: "num" }, { text: s.consumers, cls: "num" }, { text: s.replicas, cls: "num" },
  ])));
  $("consumers").tBodies[0].replaceChildren(...js.consumers.map((c) => row([
    { text: `${c.stream} / ${c.name}` },
    { text: c.pending, cls: "num" + (c.pending > 0 ? " warn" : "") },
    { text: c.ack_pending, cls: "num" },
    { text: c.redelivered, cls: "num" + (c.redelivered > 0 ? " warn" : "") },
  ])));
}

function fillLedgers(ledgers) {
  $("ledgers").tBodies[0].replaceChildren(...ledgers.map((l) => {
    if (!l.available) return row([{ text: l.principal }, { text: "not available", cls: "na" }, { text: "" }, { text: "" }, { text: l.detail, cls: "na" }], { "data-principal": l.principal });
    const c = l.checkpoint;
    const verdict = l.verified === true ? "✓ verifies" : l.verified === false ? "✗ " + l.detail : l.detail;
    return row([
      { text: l.principal },
      { text: c ? c.tree_size : "—", cls: "num" },
      { text: c ? `#${c.seq} ${c.time || ""}` : "—" },
      { text: c ? fmtAge(c.age_seconds) : "—", cls: "num" },
      { text: verdict, cls: l.verified === true ? "ok" : l.verified === false ? "bad" : "na" },
    ], { "data-principal": l.principal });
  }));
}

function fillFeatures(cities) {
  const root = $("features");
  root.replaceChildren();
  for (const city of cities) {
    root.append(el("h3", {}, groupTitle(city.city)));
    for (const f of city.features) {
      const p = el("p", { class: "feature", "data-feature": f.key, "data-city": city.city });
      p.append(el("strong", {}, f.title + ": "));
      if (!f.available) p.append(el("span", { class: "na" }, "not available"));
      else if (!f.figures) p.append(el("span", { class: "bad" }, f.detail));
      else p.append(el("span", {}, Object.entries(f.figures).map(([k, v]) => `${k} ${typeof v === "object" ? JSON.stringify(v) : v}`).join(" · ")));
      root.append(p);
    }
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("sign-in-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", signOut);
  for (const type of ["mousemove", "keydown", "pointerdown", "wheel", "touchstart"]) {
    document.addEventListener(type, activity, { passive: true });
  }
  poll();
});
