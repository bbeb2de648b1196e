/**
 * The dashboard in a real browser (headless Chromium via puppeteer-core) against three real
 * replicas: `/` from replica 1 shows every replica's card (id, address, up, normal, view); a
 * bounded RESP load moves the ops/s chart's data (read from `window.lamportkvDashboard`, not from
 * pixels); replica 3 frozen with SIGSTOP (fetches time out) and killed with SIGKILL (connections
 * refused) is shown down, and up again when thawed and restarted. A phone-sized page (mobile
 * emulation) has a 390px layout with nothing wider.
 *
 * Timing: the page promises to mark a stopped replica down within 2 s. That is checked as a
 * wait with a deadline, not as a measured duration: from the kill, the test waits for the card to
 * say down for at most 2 s plus one poll period (500 ms, the slack between the page's checks and
 * the test's), and fails if it does not.
 *
 * A second test serves the page with fake replicas (no cluster): a report with almost nothing in
 * it shows `—` everywhere, a report with storage, peers and view changes shows them formatted, an
 * unreachable port is down, a replica without an HTTP port is unmonitored.
 *
 * Screenshots (laptop 1280x800, phone 390x844, and the laptop view with a replica down) are
 * written to `test-output/dashboard/` (gitignored). Skipped with a `SKIPPED:` line when Chromium
 * is missing and cannot be installed.
 */
import assert from "node:assert/strict";
import type { Page, Viewport } from "puppeteer-core";
import { freePorts, PROJECT_ROOT, RespTestClient, withCluster } from "../support/cluster.ts";
import { chromiumSkipReason, withBrowser } from "../support/browser.ts";
import { announceSkip, skipName } from "../support/redis_server.ts";
import type { StatusReport } from "../../src/http/health.ts";
import { type HttpRoute, HttpServer, jsonResponse } from "../../src/http/http_server.ts";
import { dashboardRoutes } from "../../src/http/dashboard.ts";
import { logTo } from "../support/log_capture.ts";

const NAME = "dashboard: live cluster page in Chromium (cards, ops chart, down and back up)";
const SKIP = await chromiumSkipReason();
const OUT = `${PROJECT_ROOT}test-output/dashboard`;
/** The page's poll period (model.js POLL_MS). */
const POLL_MS = 500;
/** The page's promise: a stopped replica is shown down within this long. */
const DOWN_WITHIN_MS = 2000;

interface Published {
  replicas: Record<string, {
    up: boolean | null;
    state: string | null;
    view: number | null;
    members: number[] | null;
  }>;
  charts: Record<string, { label: string; points: { t: number; v: number | null }[] }[]>;
}

/** The little of the DOM the page functions below use (the tests are type-checked without DOM). */
interface PageDocument {
  querySelector(selector: string): PageElement | null;
  getElementById(id: string): PageElement | null;
  documentElement: { scrollWidth: number };
}
interface PageElement {
  dataset: Record<string, string | undefined>;
  textContent: string | null;
  getAttribute(name: string): string | null;
}

function published(page: Page): Promise<Published> {
  return page.evaluate(() =>
    (globalThis as unknown as { lamportkvDashboard: Published }).lamportkvDashboard
  );
}

/** The text of `[data-field=field]` in replica `id`'s card. */
function cardField(page: Page, id: number, field: string): Promise<string> {
  return page.$eval(
    `[data-replica="${id}"] [data-field="${field}"]`,
    (e) => e.textContent ?? "",
  );
}

/** Waits until replica `id`'s card has `data-up` = `up` (and, when given, `data-state`). */
async function waitCard(
  page: Page,
  id: number,
  up: "true" | "false",
  timeoutMs: number,
  state?: string,
): Promise<void> {
  await page.waitForFunction(
    (id: number, up: string, state: string | null) => {
      const doc = (globalThis as unknown as { document: PageDocument }).document;
      const card = doc.querySelector(`[data-replica="${id}"]`);
      return card !== null && card.dataset.up === up &&
        (state === null || card.dataset.state === state);
    },
    { timeout: timeoutMs, polling: 50 },
    id,
    up,
    state ?? null,
  );
}

/**
 * Waits until the page shows replicas `ids` up, normal, in one view later than `afterView` whose
 * members are exactly `ids`; returns that view.
 */
async function waitOneView(
  page: Page,
  ids: number[],
  afterView: number,
  timeoutMs: number,
): Promise<number> {
  const handle = await page.waitForFunction(
    (ids: number[], afterView: number) => {
      const d = (globalThis as unknown as { lamportkvDashboard?: Published }).lamportkvDashboard;
      const shown = ids.map((id) => d?.replicas[id]);
      const view = shown[0]?.view ?? null;
      const ok = view !== null && view > afterView &&
        shown.every((r) =>
          r !== undefined && r.up === true && r.state === "normal" && r.view === view &&
          JSON.stringify(r.members) === JSON.stringify(ids)
        );
      return ok ? view : false;
    },
    { timeout: timeoutMs, polling: 100 },
    ids,
    afterView,
  );
  return await handle.jsonValue() as number;
}

/** What is left of the page's promise (down within 2 s, plus one poll period) since `t0`. */
function deadlineFrom(t0: number): number {
  return Math.max(1, DOWN_WITHIN_MS + POLL_MS - (performance.now() - t0));
}

/** Whole ms since `t0` (for the log). */
function since(t0: number): number {
  return Math.round(performance.now() - t0);
}

/**
 * SETs on `port` one after another until `count` are answered or `ms` have passed; returns how
 * many were answered OK.
 */
async function load(port: number, count: number, ms: number, tag: string): Promise<number> {
  const c = await RespTestClient.connect(port);
  const deadline = performance.now() + ms;
  let ok = 0;
  try {
    for (let i = 0; i < count && performance.now() < deadline; i++) {
      if (await c.call(["SET", `dash:${tag}:${i % 100}`, String(i)]) === "OK") ok++;
    }
  } finally {
    await c.close();
  }
  return ok;
}

Deno.test({
  name: skipName(NAME, SKIP),
  ignore: SKIP !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    withCluster({ replicas: 3, http: true }, (cluster) =>
      withBrowser(async (browser) => {
        await Deno.mkdir(OUT, { recursive: true });
        const pageErrors: string[] = [];
        const open = async (viewport: Viewport): Promise<Page> => {
          const page = await browser.newPage();
          page.on("pageerror", (err) => pageErrors.push(String(err)));
          await page.setViewport(viewport);
          const res = await page.goto(`${cluster.httpUrl(1)}/`, { timeout: 10_000 });
          assert.equal(res?.status(), 200);
          assert.match(res?.headers()["content-type"] ?? "", /^text\/html/);
          return page;
        };
        const page = await open({ width: 1280, height: 800 });
        // A phone (mobile emulation: the layout follows the viewport meta tag) from the start,
        // so its charts have the same history when it is photographed.
        const phone = await open({ width: 390, height: 844, deviceScaleFactor: 2, isMobile: true });

        // Every replica's card: id, address, up, normal, the view.
        for (const id of cluster.ids) await waitCard(page, id, "true", 10_000, "normal");
        const status = await (await fetch(`${cluster.httpUrl(1)}/status`)).json() as StatusReport;
        for (const id of cluster.ids) {
          const title = await page.$eval(`[data-replica="${id}"] h3`, (e) => e.textContent ?? "");
          assert.equal(title, `Replica ${id}`);
          assert.equal(await cardField(page, id, "addr"), `127.0.0.1:${cluster.clientPort(id)}`);
          assert.equal(await cardField(page, id, "badge"), "up");
          assert.equal(await cardField(page, id, "state"), "normal");
          assert.equal(await cardField(page, id, "view"), String(status.view));
          assert.equal(await cardField(page, id, "members"), "1 2 3");
        }

        // A bounded load moves the ops/s chart: after the load started, replica 1's, replica 2's
        // and the cluster's series each reach at least half the load's average rate (some sample
        // of a series is at least its average; half allows for the polls' misalignment with the
        // load's start and end), and replica 1's card counts every SET it answered.
        const loadStart = Date.now();
        const [sent1, sent2] = await Promise.all([
          load(cluster.clientPort(1), 3000, 5000, "a"),
          load(cluster.clientPort(2), 1500, 5000, "b"),
        ]);
        const loadSeconds = (Date.now() - loadStart) / 1000;
        assert.ok(sent1 >= 20 && sent2 >= 20, `load too small: ${sent1}, ${sent2}`);
        const expected = {
          "replica 1": sent1 / loadSeconds / 2,
          "replica 2": sent2 / loadSeconds / 2,
          "cluster": (sent1 + sent2) / loadSeconds / 2,
        };
        await page.waitForFunction(
          (since: number, expected: Record<string, number>) => {
            const d = (globalThis as unknown as { lamportkvDashboard: Published })
              .lamportkvDashboard;
            return Object.entries(expected).every(([label, min]) =>
              d.charts.ops.find((s) => s.label === label)?.points.some((p) =>
                p.t > since && p.v !== null && p.v >= min
              ) ?? false
            );
          },
          { timeout: 5000, polling: 100 },
          loadStart,
          expected,
        ).catch(async (err) => {
          const ops = (await published(page)).charts.ops.map((s) =>
            `${s.label}: ${s.points.filter((p) => p.t > loadStart).map((p) => p.v).join(",")}`
          );
          throw new Error(
            `ops chart never reached ${JSON.stringify(expected)}: ${ops.join("; ")}: ${err}`,
          );
        });
        await page.waitForFunction(
          (sent: number) => {
            const doc = (globalThis as unknown as { document: PageDocument }).document;
            const text = doc.querySelector(`[data-replica="1"] [data-field="ops"]`)?.textContent;
            return Number(text?.split(" ")[0]) >= sent;
          },
          { timeout: 3000, polling: 100 },
          sent1,
        ).catch(async (err) => {
          throw new Error(
            `replica 1's card says ${await cardField(page, 1, "ops")} ops after ${sent1} SETs ` +
              `were answered: ${err}`,
          );
        });
        const data = await published(page);
        const latency = data.charts.latency.find((s) => s.label === "replica 1 p50");
        assert.ok(latency?.points.some((p) => p.t > loadStart && p.v !== null), "no p50 points");
        await page.screenshot({ path: `${OUT}/laptop.png`, fullPage: true });

        // The phone: the viewport meta tag gives a 390px layout and nothing is wider.
        const widths = await phone.evaluate(() => {
          const g = globalThis as unknown as { innerWidth: number; document: PageDocument };
          return { inner: g.innerWidth, scroll: g.document.documentElement.scrollWidth };
        });
        assert.deepEqual(widths, { inner: 390, scroll: 390 }, "phone layout width");
        await waitCard(phone, 1, "true", 3000, "normal");
        await phone.screenshot({ path: `${OUT}/phone.png`, fullPage: true });
        await phone.close();

        // Frozen (SIGSTOP), replica 3 answers nothing: its fetches time out and it is shown
        // down. Replicas 1 and 2 go on in a view without it; thawed, it is shown up again, in a
        // new view of all three.
        let stoppedAt = performance.now();
        cluster.pause(3);
        await waitCard(page, 3, "false", deadlineFrom(stoppedAt));
        cluster.note(`dashboard: replica 3 down ${since(stoppedAt)} ms after SIGSTOP`);
        const without = await waitOneView(page, [1, 2], status.view, 15_000);
        cluster.resume(3);
        const rejoined = await waitOneView(page, [1, 2, 3], without, 20_000);

        // kill -9 replica 3: its card says down within 2 s (+ one poll period of slack).
        // (The kill is awaited after the card: reaping the process is not part of the promise.)
        stoppedAt = performance.now();
        const killed = cluster.kill(3, "SIGKILL");
        await waitCard(page, 3, "false", deadlineFrom(stoppedAt));
        await killed;
        cluster.note(`dashboard: replica 3 down ${since(stoppedAt)} ms after SIGKILL`);
        assert.equal(await cardField(page, 3, "badge"), "down");
        assert.equal(await cardField(page, 3, "state"), "—");
        assert.match(await cardField(page, 3, "note"), /^down since /);
        const after = await published(page);
        assert.equal(after.replicas[1].up, true, "replica 1 still up");
        assert.equal(after.replicas[2].up, true, "replica 2 still up");
        await page.screenshot({ path: `${OUT}/laptop-down.png`, fullPage: true });

        // Restarted, it comes back up, in a new view of all three.
        await cluster.restart(3);
        await waitOneView(page, [1, 2, 3], rejoined, 20_000);
        assert.deepEqual(pageErrors, [], "uncaught errors in the page");
      })),
});
announceSkip(NAME, SKIP);

const PARTIAL =
  "dashboard: partial and full status reports, an unreachable and an unmonitored replica";

/** A `/status` answer as a replica serves it (any origin may read it). */
function statusRoute(report: () => unknown): HttpRoute {
  return {
    methods: ["GET"],
    path: "/status",
    handle: () => jsonResponse(report(), 200, { "access-control-allow-origin": "*" }),
  };
}

Deno.test({
  name: skipName(PARTIAL, SKIP),
  ignore: SKIP !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    // Fake replicas on loopback: 1 serves the page and a report with almost nothing in it (as an
    // older replica would), 2 a report with every optional part filled in, 3 is a port nobody
    // listens on, 4 has no HTTP port.
    const logs: string[] = [];
    const serve = (routes: HttpRoute[]) =>
      new HttpServer({ hostname: "127.0.0.1", port: 0, routes, log: logTo(logs) });
    const [closedPort] = freePorts(1);
    let replicas: unknown[] = [];
    const one = serve([...dashboardRoutes(), statusRoute(() => ({ id: 1, replicas }))]);
    const installedAt = Date.now() - 5000;
    const two = serve([statusRoute(() => ({
      id: 2,
      version: "9.9.9",
      state: "normal",
      view: 7,
      members: [1, 2],
      delivered: 10,
      holdback: 0,
      pending: 0,
      keys: 3,
      replicas,
      peers: [{ id: 1, linkUp: true, incoming: true, lastHeardMs: 12, ackedBehind: 0 }],
      ops: { total: 5, errors: 1 },
      latency: { p50Ms: 0.5, p99Ms: 2.25, windowSeconds: 10 },
      storage: {
        dir: "/x",
        walBytes: 12_345,
        walSegments: 2,
        snapshotBytes: 2_000_000,
        snapshotIndex: 9,
      },
      viewChanges: [{ view: 7, members: [1, 2], at: installedAt, cause: "replica 3 suspected" }],
    }))]);
    await one.open();
    try {
      await two.open();
      try {
        const ep = (id: number, httpPort?: number) => ({
          id,
          host: "127.0.0.1",
          clientPort: 7000 + id,
          peerPort: 7100 + id,
          ...(httpPort === undefined ? {} : { httpPort }),
        });
        replicas = [ep(1, one.addr.port), ep(2, two.addr.port), ep(3, closedPort), ep(4)];
        await withBrowser(async (browser) => {
          const page = await browser.newPage();
          const pageErrors: string[] = [];
          page.on("pageerror", (err) => pageErrors.push(String(err)));
          const openedAt = performance.now();
          await page.goto(`http://127.0.0.1:${one.addr.port}/`, { timeout: 10_000 });
          await waitCard(page, 1, "true", 5000);
          await waitCard(page, 2, "true", 5000, "normal");
          await waitCard(page, 3, "false", deadlineFrom(openedAt));
          for (const field of ["state", "view", "members", "delivered", "behind", "ops"]) {
            assert.equal(await cardField(page, 1, field), "—", `replica 1's ${field}`);
          }
          for (const field of ["queues", "keys", "latency", "wal", "snapshot", "peers"]) {
            assert.equal(await cardField(page, 1, field), "—", `replica 1's ${field}`);
          }
          const full: Record<string, string> = {
            addr: "127.0.0.1:7002",
            view: "7",
            members: "1 2",
            delivered: "10",
            behind: "0",
            queues: "0 / 0",
            keys: "3",
            ops: "5 (1)",
            latency: "0.50 / 2.25 ms",
            wal: "12.3 kB (2 segments)",
            snapshot: "2.0 MB @ 9",
            peers: "1✓ 12.0ms",
          };
          for (const [field, text] of Object.entries(full)) {
            assert.equal(await cardField(page, 2, field), text, `replica 2's ${field}`);
          }
          assert.match(
            await cardField(page, 3, "note"),
            /^down since .*unreachable.*Never answered/,
          );
          assert.equal(await cardField(page, 1, "note"), "", "no version reported, none shown");
          assert.equal(await cardField(page, 2, "note"), "v9.9.9");
          assert.equal(
            await page.$eval(`[data-replica="4"]`, (e) => e.getAttribute("data-up")),
            "unmonitored",
          );
          assert.equal(await cardField(page, 4, "badge"), "no HTTP port");
          const rows = await page.$$eval(
            "#view-changes tr",
            (trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent)),
          );
          assert.equal(rows.length, 1);
          assert.deepEqual(rows[0].slice(1), ["7", "1 2", "replica 3 suspected", "2"]);
          assert.match(rows[0][0] ?? "", /^\d\d:\d\d:\d\d$/);
          await Deno.mkdir(OUT, { recursive: true });
          await page.screenshot({ path: `${OUT}/partial.png`, fullPage: true });
          assert.deepEqual(pageErrors, [], "uncaught errors in the page");
        });
      } finally {
        await two.close();
      }
    } finally {
      await one.close();
    }
    assert.deepEqual(logs, [], "HTTP handler failures");
  },
});
announceSkip(PARTIAL, SKIP);
