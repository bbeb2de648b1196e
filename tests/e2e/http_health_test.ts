/**
 * The HTTP port of real replica processes: `/livez`, `/readyz` (503 with the reason on a replica
 * that has lost its majority, 200 again once it is back) and `/status`.
 */
import assert from "node:assert/strict";
import { respCall, waitFor, withCluster } from "../support/cluster.ts";
import type { StatusReport } from "../../src/http/health.ts";

async function get(url: string): Promise<{ status: number; text: string; type: string }> {
  const res = await fetch(url);
  return {
    status: res.status,
    text: await res.text(),
    type: res.headers.get("content-type") ?? "",
  };
}

Deno.test({
  name: "http: livez, readyz and status on every replica; readyz flips on a lone replica",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    withCluster({ replicas: 3, http: true, settings: ["maxclients 500"] }, async (cluster) => {
      for (const id of cluster.ids) {
        const base = cluster.httpUrl(id);
        assert.equal((await get(`${base}/livez`)).status, 200);
        const ready = await get(`${base}/readyz`);
        assert.equal(ready.status, 200, ready.text);
        const status = await get(`${base}/status`);
        assert.equal(status.status, 200);
        assert.match(status.type, /^application\/json/);
        const report = JSON.parse(status.text) as StatusReport;
        assert.equal(report.id, id);
        assert.equal(report.state, "normal");
        assert.deepEqual(report.members, [1, 2, 3]);
        assert.deepEqual(
          report.replicas.map((r) => r.httpPort),
          cluster.config.replicas.map((r) => r.httpPort),
        );
        assert.equal(report.peers.length, 2);
        // The settings in force, by their config names.
        assert.equal(report.settings.maxclients, "500");
        assert.equal(report.settings.requirepass, undefined);
        assert.match(report.settings["client-output-buffer-limit"], /^normal 0 0 0 pubsub /);
        assert.equal((await get(`${base}/nowhere`)).status, 404);
        assert.equal((await fetch(`${base}/status`, { method: "DELETE" })).status, 405);
      }
      // Operations answered are counted, with their recent latency.
      const before = JSON.parse((await get(`${cluster.httpUrl(1)}/status`)).text) as StatusReport;
      for (let i = 0; i < 50; i++) await respCall(cluster.clientPort(1), ["SET", `k${i}`, "v"]);
      const after = JSON.parse((await get(`${cluster.httpUrl(1)}/status`)).text) as StatusReport;
      assert.ok(
        after.ops.total >= before.ops.total + 50,
        `${before.ops.total} -> ${after.ops.total}`,
      );
      assert.ok(after.latency.p50Ms !== null && after.latency.p99Ms! >= after.latency.p50Ms);
      assert.ok(after.delivered >= before.delivered + 50);
      // A replica alone is not ready, and says why.
      await cluster.kill(2, "SIGKILL");
      await cluster.kill(3, "SIGKILL");
      const base = cluster.httpUrl(1);
      let lone = { status: 0, text: "", type: "" };
      await waitFor(async () => (lone = await get(`${base}/readyz`)).status === 503, {
        timeoutMs: 15_000,
        message: "replica 1's /readyz to answer 503",
      });
      assert.match(lone.text, /^not ready: /);
      assert.equal((await get(`${base}/livez`)).status, 200, "a lone replica is still live");
      cluster.spawn(2);
      await waitFor(async () => (await get(`${base}/readyz`)).status === 200, {
        timeoutMs: 30_000,
        message: "replica 1's /readyz to answer 200 again with a majority back",
      });
    }),
});
