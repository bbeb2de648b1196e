// @ts-check
/**
 * The dashboard's arithmetic, without the DOM: what a card shows, rates from counters, how far
 * behind a replica is, the merged list of view changes, value formatting. Loaded by the page as an
 * ES module and imported by the unit tests, so it must stay free of browser globals.
 *
 * Every field of a `/status` report may be missing or null (older replicas, features not yet
 * filled in): each function here turns such a value into `null`, and {@link show} prints `—`.
 *
 * @module
 */

/** What is shown for a missing value. */
export const MISSING = "—";

/** How often each replica's `/status` is fetched, in ms. */
export const POLL_MS = 500;

/** Deadline of one `/status` fetch, in ms (a replica that does not answer in time is down). */
export const FETCH_TIMEOUT_MS = 1000;

/** How much history the charts keep and show, in ms. */
export const HISTORY_MS = 5 * 60 * 1000;

/**
 * A finite number, or null.
 *
 * @param {unknown} v
 * @returns {number | null}
 */
export function num(v) {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

/**
 * `v` as text, or {@link MISSING} when it is null, undefined or an empty string.
 *
 * @param {unknown} v
 * @returns {string}
 */
export function show(v) {
  return v === null || v === undefined || v === "" ? MISSING : String(v);
}

/**
 * A byte count for humans (`0 B`, `12.3 kB`, `4.0 MB`), or {@link MISSING}.
 *
 * @param {unknown} bytes
 * @returns {string}
 */
export function formatBytes(bytes) {
  const b = num(bytes);
  if (b === null || b < 0) return MISSING;
  const units = ["B", "kB", "MB", "GB", "TB"];
  let v = b;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i]}`;
}

/**
 * A rate or latency with sensible precision (`0`, `0.42`, `12.5`, `1234`), or {@link MISSING}.
 *
 * @param {unknown} value
 * @returns {string}
 */
export function formatNumber(value) {
  const v = num(value);
  if (v === null) return MISSING;
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 100) return String(Math.round(v));
  if (a >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

/**
 * A duration in seconds as `3s`, `4m 05s`, `2h 03m`, `1d 02h`, or {@link MISSING}.
 *
 * @param {unknown} seconds
 * @returns {string}
 */
export function formatDuration(seconds) {
  const s = num(seconds);
  if (s === null || s < 0) return MISSING;
  const t = Math.floor(s);
  const pad = (/** @type {number} */ n) => String(n).padStart(2, "0");
  if (t < 60) return `${t}s`;
  if (t < 3600) return `${Math.floor(t / 60)}m ${pad(t % 60)}s`;
  if (t < 86400) return `${Math.floor(t / 3600)}h ${pad(Math.floor(t / 60) % 60)}m`;
  return `${Math.floor(t / 86400)}d ${pad(Math.floor(t / 3600) % 24)}h`;
}

/**
 * A time axis label for `ms` ago: `now`, `-30s`, `-1m`, `-1m30s`.
 *
 * @param {number} ms
 * @returns {string}
 */
export function formatAgo(ms) {
  const s = Math.round(ms / 1000);
  if (s === 0) return "now";
  if (s < 60) return `-${s}s`;
  return s % 60 === 0
    ? `-${s / 60}m`
    : `-${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
}

/**
 * The span the charts show when the page has been open `openMs`: that, rounded up to 15 s, at
 * least 30 s and at most {@link HISTORY_MS}.
 *
 * @param {number} openMs
 * @returns {number}
 */
export function chartWindow(openMs) {
  return Math.min(HISTORY_MS, Math.max(30_000, Math.ceil(openMs / 15_000) * 15_000));
}

/**
 * Operations per second between two readings of a replica's `ops.total` counter: null when
 * either is unknown, no time passed, or the counter went backwards (the replica restarted).
 *
 * @param {{ at: number, total: unknown } | null | undefined} prev reading (`at` in ms)
 * @param {{ at: number, total: unknown }} cur reading
 * @returns {number | null}
 */
export function ratePerSecond(prev, cur) {
  if (prev === null || prev === undefined) return null;
  const a = num(prev.total);
  const b = num(cur.total);
  const dt = cur.at - prev.at;
  if (a === null || b === null || !(dt > 0) || b < a) return null;
  return (b - a) * 1000 / dt;
}

/**
 * How far each up replica's delivered index is behind the most advanced up replica; null for
 * replicas that are down or did not report an index.
 *
 * @param {{ id: number, up: boolean, delivered: unknown }[]} replicas
 * @returns {Map<number, number | null>}
 */
export function deliveredLag(replicas) {
  /** @type {Map<number, number | null>} */
  const lag = new Map();
  const known = replicas.filter((r) => r.up && num(r.delivered) !== null);
  const max = known.length === 0 ? null : Math.max(...known.map((r) => /** @type {number} */ (
    num(r.delivered)
  )));
  for (const r of replicas) {
    const d = num(r.delivered);
    lag.set(r.id, r.up && d !== null && max !== null ? max - d : null);
  }
  return lag;
}

/**
 * @typedef {object} ViewChangeRow One view as the dashboard lists it.
 * @property {number} view
 * @property {number[]} members
 * @property {number} at earliest wall-clock ms any replica installed it
 * @property {string[]} causes distinct causes reported, in order of first report
 * @property {number[]} installedBy replicas that reported installing it
 */

/**
 * Merges the `viewChanges[]` reported by several replicas into one row per view, newest view
 * first, at most `limit` rows. Malformed entries are skipped.
 *
 * @param {{ id: number, viewChanges: unknown }[]} reports
 * @param {number} [limit]
 * @returns {ViewChangeRow[]}
 */
export function mergeViewChanges(reports, limit = 20) {
  /** @type {Map<number, ViewChangeRow>} */
  const rows = new Map();
  for (const r of reports) {
    if (!Array.isArray(r.viewChanges)) continue;
    for (const vc of r.viewChanges) {
      const view = num(vc?.view);
      if (view === null) continue;
      const at = num(vc.at);
      const members = Array.isArray(vc.members)
        ? vc.members.filter((/** @type {unknown} */ m) => num(m) !== null)
        : [];
      let row = rows.get(view);
      if (row === undefined) {
        row = { view, members, at: at ?? Infinity, causes: [], installedBy: [] };
        rows.set(view, row);
      }
      if (at !== null && at < row.at) row.at = at;
      if (row.members.length === 0) row.members = members;
      const cause = typeof vc.cause === "string" ? vc.cause : "";
      if (cause !== "" && !row.causes.includes(cause)) row.causes.push(cause);
      if (!row.installedBy.includes(r.id)) row.installedBy.push(r.id);
    }
  }
  return [...rows.values()]
    .map((row) => ({ ...row, installedBy: row.installedBy.sort((a, b) => a - b) }))
    .sort((a, b) => b.view - a.view)
    .slice(0, limit);
}

/**
 * Drops points older than `now - HISTORY_MS` from the front of a time-ordered series (in place).
 *
 * @param {{ t: number }[]} points
 * @param {number} now
 * @param {number} [keepMs]
 */
export function trimHistory(points, now, keepMs = HISTORY_MS) {
  let drop = 0;
  while (drop < points.length && points[drop].t < now - keepMs) drop++;
  if (drop > 0) points.splice(0, drop);
}

/**
 * A round upper bound for a chart's y axis (1, 2, 5 × 10^n) at least `max`, and at least `floor`.
 *
 * @param {number} max
 * @param {number} [floor]
 * @returns {number}
 */
export function niceCeiling(max, floor = 1) {
  const m = Math.max(max, floor);
  const p = Math.pow(10, Math.floor(Math.log10(m)));
  for (const k of [1, 2, 5, 10]) if (k * p >= m) return k * p;
  return 10 * p;
}

/**
 * The base URL of a replica's HTTP port as the page reaches it: its configured host, except a
 * wildcard (`0.0.0.0`, `::`) that means "wherever this page came from" (`pageHost`). IPv6
 * addresses are bracketed. Null when the replica has no HTTP port.
 *
 * @param {{ host: string, httpPort?: number | null }} replica
 * @param {string} pageHost the page's own hostname (`location.hostname`)
 * @param {string} [protocol] the page's protocol (`location.protocol`, default `http:`)
 * @returns {string | null}
 */
export function statusBase(replica, pageHost, protocol = "http:") {
  const port = num(replica.httpPort);
  if (port === null) return null;
  const wildcard = replica.host === "0.0.0.0" || replica.host === "::" || replica.host === "";
  const host = wildcard ? pageHost : replica.host;
  const bracketed = host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
  return `${protocol}//${bracketed}:${port}`;
}

/**
 * Sums several time series into one: time is cut into `bucketMs` buckets, each series
 * contributes the mean of its non-null values in a bucket, and a bucket no series has a value in
 * is left out. Points are `{ t, v }` with `t` in ms; the result is time-ordered with `t` at the
 * start of each bucket (never later than the points it sums).
 *
 * @param {{ t: number, v: number | null }[][]} seriesList
 * @param {number} bucketMs
 * @returns {{ t: number, v: number }[]}
 */
export function sumSeries(seriesList, bucketMs) {
  /** @type {Map<number, number>} */
  const total = new Map();
  for (const points of seriesList) {
    /** @type {Map<number, { sum: number, n: number }>} */
    const mine = new Map();
    for (const p of points) {
      if (p.v === null) continue;
      const b = Math.floor(p.t / bucketMs);
      const acc = mine.get(b) ?? { sum: 0, n: 0 };
      acc.sum += p.v;
      acc.n++;
      mine.set(b, acc);
    }
    for (const [b, { sum, n }] of mine) total.set(b, (total.get(b) ?? 0) + sum / n);
  }
  return [...total.entries()].sort((a, b) => a[0] - b[0]).map(([b, v]) => ({
    t: b * bucketMs,
    v,
  }));
}
