/**
 * The cluster dashboard (served at `/` by every replica with an HTTP port). Reads the replica list
 * from this replica's `/status`, then polls every replica's `/status` every {@link POLL_MS} ms,
 * each fetch bounded by {@link FETCH_TIMEOUT_MS}: a failed or timed-out fetch marks the replica
 * down at once. Keeps a few minutes of history in the page for the charts.
 *
 * For tests and the curious, `window.lamportkvDashboard` holds what the page shows: per replica
 * (`replicas[id]`: up, state, view, members, delivered, behind) and the charts' data points
 * (`charts.ops`, `charts.latency`: series of `{ t, v }`), refreshed on every render.
 *
 * @module
 */
import { drawChart } from "./chart.js";
import {
  chartWindow,
  deliveredLag,
  FETCH_TIMEOUT_MS,
  formatBytes,
  formatDuration,
  formatNumber,
  mergeViewChanges,
  num,
  POLL_MS,
  ratePerSecond,
  show,
  statusBase,
  sumSeries,
  trimHistory,
} from "./model.js";

const COLORS = ["#2563eb", "#db2777", "#059669", "#d97706", "#7c3aed", "#0891b2", "#dc2626"];
const CLUSTER_COLOR = "#111827";
const pageStarted = Date.now();

/**
 * @typedef {object} Node One replica of the configuration, as the page tracks it.
 * @property {number} id
 * @property {{ id: number, host: string, clientPort: number, httpPort?: number }} endpoint
 * @property {string | null} base its HTTP base URL (null without an HTTP port)
 * @property {string} color
 * @property {boolean | null} up null until the first answer or failure
 * @property {any} report the last `/status` it answered (kept while down, shown as last known)
 * @property {number | null} lastOkAt
 * @property {number | null} downSince
 * @property {string} error why the last fetch failed
 * @property {{ at: number, total: unknown } | null} prev the previous `ops.total` reading
 * @property {{ t: number, v: number | null }[]} ops
 * @property {{ t: number, v: number | null }[]} p50
 * @property {{ t: number, v: number | null }[]} p99
 * @property {HTMLElement} card
 */

/** @type {Node[]} */
let nodes = [];
let renderQueued = false;

/** @param {number} ms */
function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Fetches `url` as JSON within {@link FETCH_TIMEOUT_MS}.
 *
 * @param {string} url
 */
async function fetchStatus(url) {
  const res = await fetch(url, {
    cache: "no-store",
    signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
  });
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  return await res.json();
}

/** @param {unknown} err */
function describe(err) {
  if (err instanceof DOMException && err.name === "TimeoutError") {
    return `no answer within ${FETCH_TIMEOUT_MS} ms`;
  }
  if (err instanceof TypeError) return "unreachable (connection refused or reset)";
  return err instanceof Error ? err.message : String(err);
}

/**
 * @param {string} tag
 * @param {Record<string, string>} [attrs]
 * @param {(Node | string)[]} [children]
 */
function h(tag, attrs = {}, children = []) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  e.append(...children);
  return e;
}

/**
 * Sets the text of `[data-field=name]` inside `root`.
 *
 * @param {ParentNode} root
 * @param {string} name
 * @param {string} text
 */
function setField(root, name, text) {
  const e = root.querySelector(`[data-field="${name}"]`);
  if (e !== null && e.textContent !== text) e.textContent = text;
}

/** @param {number | null} ms */
function clock(ms) {
  return ms === null ? "—" : new Date(ms).toLocaleTimeString([], { hour12: false });
}

/** @param {Node["endpoint"]} ep */
function buildCard(ep) {
  const rows = [
    ["state", "state"],
    ["view", "view"],
    ["members", "members"],
    ["delivered", "delivered"],
    ["behind", "entries behind"],
    ["queues", "holdback / pending"],
    ["keys", "keys"],
    ["ops", "ops (errors)"],
    ["latency", "p50 / p99"],
    ["wal", "WAL"],
    ["snapshot", "snapshot"],
    ["peers", "peers"],
    ["uptime", "uptime"],
  ];
  return h("article", { class: "card", "data-replica": String(ep.id), "data-up": "unknown" }, [
    h("header", {}, [
      h("h3", {}, [h("span", { class: "swatch", "data-field": "swatch" }), `Replica ${ep.id}`]),
      h("span", { class: "badge", "data-field": "badge" }, ["…"]),
    ]),
    h("div", { class: "addr", "data-field": "addr" }, [`${ep.host}:${ep.clientPort}`]),
    h(
      "dl",
      {},
      rows.flatMap(([field, label]) => [
        h("dt", {}, [label]),
        h("dd", { "data-field": field }, ["—"]),
      ]),
    ),
    h("footer", { "data-field": "note" }, [""]),
  ]);
}

/**
 * @param {Node} node
 * @param {any} report
 * @param {number} now
 */
function onReport(node, report, now) {
  if (node.up !== true) node.downSince = null;
  node.up = true;
  node.report = report;
  node.lastOkAt = now;
  node.error = "";
  const cur = { at: now, total: report?.ops?.total };
  node.ops.push({ t: now, v: ratePerSecond(node.prev, cur) });
  node.prev = num(cur.total) === null ? null : cur;
  node.p50.push({ t: now, v: num(report?.latency?.p50Ms) });
  node.p99.push({ t: now, v: num(report?.latency?.p99Ms) });
}

/**
 * @param {Node} node
 * @param {unknown} err
 * @param {number} now
 */
function onFailure(node, err, now) {
  if (node.up !== false) node.downSince = now;
  node.up = false;
  node.error = describe(err);
  node.prev = null;
  for (const series of [node.ops, node.p50, node.p99]) series.push({ t: now, v: null });
}

/** @param {Node} node */
async function pollForever(node) {
  if (node.base === null) return;
  for (;;) {
    const started = Date.now();
    try {
      onReport(node, await fetchStatus(`${node.base}/status`), Date.now());
    } catch (err) {
      onFailure(node, err, Date.now());
    }
    for (const s of [node.ops, node.p50, node.p99]) trimHistory(s, Date.now());
    queueRender();
    await sleep(Math.max(0, POLL_MS - (Date.now() - started)));
  }
}

function queueRender() {
  if (renderQueued) return;
  renderQueued = true;
  setTimeout(() => {
    renderQueued = false;
    render();
  }, 0);
}

/** @param {Node} node @param {Map<number, number | null>} lag */
function renderCard(node, lag) {
  const c = node.card;
  const r = node.up === true ? node.report : null;
  const up = node.base === null ? "unmonitored" : node.up === null ? "unknown" : String(node.up);
  c.dataset.up = up;
  c.classList.toggle("down", node.up === false);
  /** @type {HTMLElement} */ (c.querySelector(".swatch")).style.background = node.color;
  setField(
    c,
    "badge",
    node.base === null ? "no HTTP port" : node.up === null ? "…" : node.up ? "up" : "down",
  );
  const state = typeof r?.state === "string" ? r.state : null;
  setField(c, "state", show(state));
  c.dataset.state = show(state);
  setField(c, "view", show(num(r?.view)));
  setField(c, "members", Array.isArray(r?.members) ? r.members.join(" ") : "—");
  setField(c, "delivered", show(num(r?.delivered)));
  const behind = lag.get(node.id) ?? null;
  setField(c, "behind", behind === null ? "—" : String(behind));
  const holdback = num(r?.holdback);
  const pending = num(r?.pending);
  setField(
    c,
    "queues",
    holdback === null && pending === null ? "—" : `${show(holdback)} / ${show(pending)}`,
  );
  setField(c, "keys", show(num(r?.keys)));
  const total = num(r?.ops?.total);
  setField(c, "ops", total === null ? "—" : `${total} (${show(num(r.ops.errors))})`);
  const p50 = num(r?.latency?.p50Ms);
  const p99 = num(r?.latency?.p99Ms);
  setField(
    c,
    "latency",
    p50 === null && p99 === null ? "—" : `${formatNumber(p50)} / ${formatNumber(p99)} ms`,
  );
  const st = r?.storage;
  setField(
    c,
    "wal",
    st
      ? `${formatBytes(st.walBytes)} (${show(num(st.walSegments))} ${
        num(st.walSegments) === 1 ? "segment" : "segments"
      })`
      : "—",
  );
  setField(
    c,
    "snapshot",
    st ? `${formatBytes(st.snapshotBytes)} @ ${show(num(st.snapshotIndex))}` : "—",
  );
  const peers = Array.isArray(r?.peers) ? r.peers : [];
  setField(
    c,
    "peers",
    peers.length === 0 ? "—" : peers.map((/** @type {any} */ p) => {
      const link = p.linkUp && p.incoming ? "✓" : p.linkUp || p.incoming ? "½" : "✗";
      const heard = num(p.lastHeardMs);
      return `${p.id}${link}${heard === null ? "" : ` ${formatNumber(heard)}ms`}`;
    }).join("  "),
  );
  setField(c, "uptime", r ? formatDuration(r.uptimeSeconds) : "—");
  let note = "";
  if (node.base === null) note = "no HTTP port in the configuration: not monitored";
  else if (node.up === false) {
    const since = node.downSince === null ? "" : ` since ${clock(node.downSince)}`;
    const seen = node.lastOkAt === null ? "Never answered" : `Last seen ${clock(node.lastOkAt)}`;
    note = `down${since}: ${node.error}. ${seen}.`;
  } else if (r && r.ready === false) note = `not ready: ${show(r.reason)}`;
  else if (r && typeof r.version === "string") note = `v${r.version}`;
  setField(c, "note", note);
}

function render() {
  const now = Date.now();
  const lag = deliveredLag(nodes.map((n) => ({
    id: n.id,
    up: n.up === true,
    delivered: n.report?.delivered,
  })));
  for (const node of nodes) renderCard(node, lag);

  const monitored = nodes.filter((n) => n.base !== null);
  const up = monitored.filter((n) => n.up === true);
  const views = up.map((n) => num(n.report?.view)).filter((v) => v !== null);
  const delivered = up.map((n) => num(n.report?.delivered)).filter((v) => v !== null);
  const cluster = sumSeries(up.length === 0 ? [] : nodes.map((n) => n.ops), 1000);
  const lastCluster = cluster.length === 0 ? null : cluster[cluster.length - 1].v;
  setField(document, "up", `${up.length} of ${monitored.length}`);
  setField(document, "view", views.length === 0 ? "—" : String(Math.max(...views)));
  setField(document, "delivered", delivered.length === 0 ? "—" : String(Math.max(...delivered)));
  setField(document, "rate", formatNumber(lastCluster));
  setField(document, "updated", clock(now));
  document.body.classList.toggle("degraded", up.length < monitored.length);

  const windowMs = chartWindow(now - pageStarted);
  const opsSeries = [
    ...nodes.map((n) => ({ label: `replica ${n.id}`, color: n.color, points: n.ops })),
    { label: "cluster", color: CLUSTER_COLOR, dashed: true, points: cluster },
  ];
  const latencySeries = nodes.flatMap((n) => [
    { label: `replica ${n.id} p99`, color: n.color, points: n.p99 },
    { label: `replica ${n.id} p50`, color: n.color, dashed: true, points: n.p50 },
  ]);
  drawChart(
    /** @type {SVGSVGElement} */ (document.getElementById("ops-chart")),
    opsSeries,
    { now, windowMs, floor: 10 },
  );
  drawChart(
    /** @type {SVGSVGElement} */ (document.getElementById("latency-chart")),
    latencySeries,
    { now, windowMs, floor: 1 },
  );

  renderViewChanges();
  publish(lag, opsSeries, latencySeries);
}

function renderViewChanges() {
  const rows = mergeViewChanges(
    nodes.filter((n) => n.report).map((n) => ({ id: n.id, viewChanges: n.report.viewChanges })),
  );
  const body = /** @type {HTMLElement} */ (document.getElementById("view-changes"));
  const empty = /** @type {HTMLElement} */ (document.getElementById("view-changes-empty"));
  empty.hidden = rows.length > 0;
  body.replaceChildren(...rows.map((row) =>
    h("tr", {}, [
      h("td", {}, [Number.isFinite(row.at) ? clock(row.at) : "—"]),
      h("td", {}, [String(row.view)]),
      h("td", {}, [row.members.length === 0 ? "—" : row.members.join(" ")]),
      h("td", {}, [row.causes.length === 0 ? "—" : row.causes.join("; ")]),
      h("td", {}, [row.installedBy.join(" ")]),
    ])
  ));
}

/**
 * @param {Map<number, number | null>} lag
 * @param {{ label: string, points: { t: number, v: number | null }[] }[]} ops
 * @param {{ label: string, points: { t: number, v: number | null }[] }[]} latency
 */
function publish(lag, ops, latency) {
  /** @type {Record<number, object>} */
  const replicas = {};
  for (const n of nodes) {
    const r = n.up === true ? n.report : null;
    replicas[n.id] = {
      up: n.up,
      state: r?.state ?? null,
      view: r?.view ?? null,
      members: r?.members ?? null,
      delivered: r?.delivered ?? null,
      behind: lag.get(n.id) ?? null,
      downSince: n.downSince,
    };
  }
  const copy = (/** @type {typeof ops} */ list) =>
    list.map((s) => ({ label: s.label, points: s.points.map((p) => ({ t: p.t, v: p.v })) }));
  Object.assign(globalThis, {
    lamportkvDashboard: { replicas, charts: { ops: copy(ops), latency: copy(latency) } },
  });
}

function renderLegend() {
  const legend = /** @type {HTMLElement} */ (document.getElementById("legend"));
  // Colors through the CSSOM: the page's CSP forbids style attributes.
  const swatch = (/** @type {string} */ color, dashed = false) => {
    const i = h("i", dashed ? { class: "dashed" } : {});
    if (dashed) i.style.borderColor = color;
    else i.style.background = color;
    return i;
  };
  legend.replaceChildren(
    ...nodes.map((n) => h("span", {}, [swatch(n.color), `replica ${n.id}`])),
    h("span", {}, [swatch(CLUSTER_COLOR, true), "cluster"]),
  );
}

async function start() {
  const banner = /** @type {HTMLElement} */ (document.getElementById("banner"));
  /** @type {any} */
  let first;
  for (;;) {
    try {
      first = await fetchStatus("/status");
      break;
    } catch (err) {
      banner.hidden = false;
      banner.textContent = `This replica's /status cannot be read (${describe(err)}); retrying…`;
      await sleep(POLL_MS);
    }
  }
  banner.hidden = true;
  setField(document, "self", String(first.id));
  const endpoints = Array.isArray(first.replicas) ? first.replicas : [];
  const grid = /** @type {HTMLElement} */ (document.getElementById("cards"));
  nodes = endpoints.map((/** @type {any} */ ep, /** @type {number} */ i) => {
    const base = ep.id === first.id
      ? location.origin
      : statusBase(ep, location.hostname, location.protocol);
    return {
      id: ep.id,
      endpoint: ep,
      base,
      color: COLORS[i % COLORS.length],
      up: null,
      report: null,
      lastOkAt: null,
      downSince: null,
      error: "",
      prev: null,
      ops: [],
      p50: [],
      p99: [],
      card: buildCard(ep),
    };
  });
  grid.replaceChildren(...nodes.map((n) => n.card));
  renderLegend();
  globalThis.addEventListener("resize", queueRender);
  for (const node of nodes) pollForever(node);
}

start();
