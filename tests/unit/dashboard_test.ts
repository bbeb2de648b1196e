/**
 * The dashboard's route module (files served with their content types, every module the page
 * imports is served) and its pure arithmetic (`src/http/dashboard/model.js`, shared with the
 * browser): rates from counters, lag, merged view changes, formatting of missing values.
 */
import assert from "node:assert/strict";
import { HttpServer } from "../../src/http/http_server.ts";
import { DASHBOARD_FILES, dashboardRoutes } from "../../src/http/dashboard.ts";
import {
  chartWindow,
  deliveredLag,
  formatAgo,
  formatBytes,
  formatDuration,
  formatNumber,
  mergeViewChanges,
  MISSING,
  niceCeiling,
  ratePerSecond,
  show,
  statusBase,
  sumSeries,
  trimHistory,
} from "../../src/http/dashboard/model.js";
import { Logger } from "../../src/log/logger.ts";

Deno.test("dashboard: / and every asset are served with their content types", async () => {
  const server = new HttpServer({
    hostname: "127.0.0.1",
    port: 0,
    routes: dashboardRoutes(),
    log: new Logger({ id: 0, sink: (r) => assert.fail(r.msg) }),
  });
  await server.open();
  try {
    const base = `http://127.0.0.1:${server.addr.port}`;
    const index = await fetch(`${base}/`);
    assert.equal(index.status, 200);
    assert.equal(index.headers.get("content-type"), "text/html; charset=utf-8");
    assert.match(index.headers.get("content-security-policy") ?? "", /default-src 'self'/);
    const html = await index.text();
    assert.match(html, /<meta name="viewport" content="width=device-width/);
    // Every file the page references, and every module a script imports, is served.
    const referenced = new Set(
      [...html.matchAll(/(?:href|src)="\/dashboard\/([^"]+)"/g)].map((m) => m[1]),
    );
    assert.deepEqual([...referenced].sort(), ["dashboard.css", "dashboard.js"]);
    const imported = new Set<string>();
    for (const [name, type] of Object.entries(DASHBOARD_FILES)) {
      if (name === "index.html") continue;
      const res = await fetch(`${base}/dashboard/${name}`);
      assert.equal(res.status, 200, name);
      assert.equal(res.headers.get("content-type"), type, name);
      assert.equal(res.headers.get("x-content-type-options"), "nosniff");
      const text = await res.text();
      for (const m of text.matchAll(/^import [^;]*? from "\.\/([^"]+)";/gms)) {
        assert.ok(m[1] in DASHBOARD_FILES, `${name} imports ${m[1]}, which is not served`);
        imported.add(m[1]);
      }
    }
    assert.deepEqual([...imported].sort(), ["chart.js", "model.js"]);
    const missing = await fetch(`${base}/dashboard/nope.js`);
    assert.equal(missing.status, 404);
    await missing.body?.cancel();
  } finally {
    await server.close();
  }
});

Deno.test("dashboard model: ops/s from counter readings; restarts and gaps give null", () => {
  assert.equal(ratePerSecond({ at: 1000, total: 10 }, { at: 1500, total: 60 }), 100);
  assert.equal(ratePerSecond(null, { at: 1500, total: 60 }), null);
  assert.equal(ratePerSecond({ at: 1000, total: 600 }, { at: 1500, total: 5 }), null);
  assert.equal(ratePerSecond({ at: 1000, total: 10 }, { at: 1000, total: 20 }), null);
  assert.equal(ratePerSecond({ at: 1000, total: undefined }, { at: 1500, total: 20 }), null);
  assert.equal(ratePerSecond({ at: 1000, total: 10 }, { at: 1500, total: null }), null);
});

Deno.test("dashboard model: lag behind the most advanced up replica", () => {
  const lag = deliveredLag([
    { id: 1, up: true, delivered: 90 },
    { id: 2, up: true, delivered: 100 },
    { id: 3, up: false, delivered: 500 },
    { id: 4, up: true, delivered: undefined },
  ]);
  assert.deepEqual([...lag], [[1, 10], [2, 0], [3, null], [4, null]]);
  assert.deepEqual([...deliveredLag([{ id: 1, up: false, delivered: 3 }])], [[1, null]]);
});

Deno.test("dashboard model: view changes merged per view, newest first", () => {
  const rows = mergeViewChanges([
    {
      id: 1,
      viewChanges: [
        { view: 3, members: [1, 2, 3], at: 2000, cause: "startup" },
        { view: 6, members: [1, 2], at: 5000, cause: "3 suspected" },
        { view: "bad" },
        null,
      ],
    },
    {
      id: 2,
      viewChanges: [
        { view: 6, members: [1, 2], at: 4990, cause: "3 suspected" },
        { view: 3, members: [1, 2, 3], at: 2010, cause: "join" },
      ],
    },
    { id: 3, viewChanges: undefined },
  ]);
  assert.deepEqual(rows, [
    { view: 6, members: [1, 2], at: 4990, causes: ["3 suspected"], installedBy: [1, 2] },
    { view: 3, members: [1, 2, 3], at: 2000, causes: ["startup", "join"], installedBy: [1, 2] },
  ]);
  const many = [{ id: 1, viewChanges: [1, 2, 3, 4, 5].map((view) => ({ view, at: view })) }];
  assert.deepEqual(mergeViewChanges(many, 2).map((r) => r.view), [5, 4]);
});

Deno.test("dashboard model: missing values print as a dash; numbers, bytes, durations", () => {
  assert.equal(MISSING, "—");
  assert.equal(show(null), MISSING);
  assert.equal(show(undefined), MISSING);
  assert.equal(show(0), "0");
  assert.equal(formatBytes(undefined), MISSING);
  assert.equal(formatBytes(512), "512 B");
  assert.equal(formatBytes(12_345), "12.3 kB");
  assert.equal(formatBytes(4_000_000), "4.0 MB");
  assert.equal(formatNumber(null), MISSING);
  assert.equal(formatNumber(Number.NaN), MISSING);
  assert.equal(formatNumber(0), "0");
  assert.equal(formatNumber(0.4242), "0.42");
  assert.equal(formatNumber(12.54), "12.5");
  assert.equal(formatNumber(1234.4), "1234");
  assert.equal(formatDuration(undefined), MISSING);
  assert.equal(formatDuration(59), "59s");
  assert.equal(formatDuration(245), "4m 05s");
  assert.equal(formatDuration(7380), "2h 03m");
  assert.equal(formatDuration(93600), "1d 02h");
});

Deno.test("dashboard model: series summed per bucket, history trimmed, round axis tops", () => {
  const a = [{ t: 0, v: 10 }, { t: 500, v: 20 }, { t: 1000, v: null }, { t: 1500, v: 4 }];
  const b = [{ t: 200, v: 1 }, { t: 2100, v: 7 }];
  assert.deepEqual(sumSeries([a, b], 1000), [
    { t: 0, v: 16 },
    { t: 1000, v: 4 },
    { t: 2000, v: 7 },
  ]);
  assert.deepEqual(sumSeries([], 1000), []);
  const points = [{ t: 1 }, { t: 5 }, { t: 9 }];
  trimHistory(points, 10, 6);
  assert.deepEqual(points, [{ t: 5 }, { t: 9 }]);
  assert.equal(niceCeiling(0), 1);
  assert.equal(niceCeiling(0, 10), 10);
  assert.equal(niceCeiling(163), 200);
  assert.equal(niceCeiling(420), 500);
  assert.equal(niceCeiling(501), 1000);
  assert.equal(niceCeiling(1000), 1000);
  assert.equal(chartWindow(0), 30_000);
  assert.equal(chartWindow(31_000), 45_000);
  assert.equal(chartWindow(3_600_000), 300_000);
  assert.deepEqual([0, 30_000, 60_000, 90_000, 300_000].map(formatAgo), [
    "now",
    "-30s",
    "-1m",
    "-1m30s",
    "-5m",
  ]);
});

Deno.test("dashboard model: a replica's /status base URL as the page reaches it", () => {
  assert.equal(
    statusBase({ host: "127.0.0.1", httpPort: 8001 }, "example"),
    "http://127.0.0.1:8001",
  );
  assert.equal(statusBase({ host: "0.0.0.0", httpPort: 8001 }, "db.lan"), "http://db.lan:8001");
  assert.equal(statusBase({ host: "::1", httpPort: 8001 }, "x", "https:"), "https://[::1]:8001");
  assert.equal(statusBase({ host: "127.0.0.1" }, "x"), null);
});
