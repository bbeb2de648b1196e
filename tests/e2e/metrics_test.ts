/**
 * `GET /metrics` of real replica processes: `promtool check metrics` accepts every replica's
 * output; after load the operation counters, latency and fsync histograms and byte counters have
 * moved; the delivered index is equal on every replica; view and members are right; a killed peer
 * shows its link down and leaves the view. `/status` carries the storage sizes and view changes.
 */
import assert from "node:assert/strict";
import { respCall, RespTestClient, waitFor, withCluster } from "../support/cluster.ts";
import {
  parseMetrics,
  promtoolCheck,
  promtoolSkipReason,
  type Sample,
  sample,
} from "../support/prom_text.ts";
import { announceSkip } from "../support/redis_server.ts";
import type { StatusReport } from "../../src/http/health.ts";
import { METRICS_CONTENT_TYPE } from "../../src/http/metrics.ts";

/** Writes per load round (bounded). */
const WRITES = 200;

const promtoolSkip = await promtoolSkipReason();
announceSkip("metrics e2e: promtool check metrics", promtoolSkip);

async function scrape(base: string): Promise<{ text: string; samples: Sample[] }> {
  const res = await fetch(`${base}/metrics`);
  const text = await res.text();
  assert.equal(res.status, 200, text);
  assert.equal(res.headers.get("content-type"), METRICS_CONTENT_TYPE);
  return { text, samples: parseMetrics(text) };
}

Deno.test({
  name: "metrics: promtool accepts them, they move with load, agree, and show a killed peer",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    withCluster({ replicas: 3, http: true }, async (cluster) => {
      const base = (id: number) => cluster.httpUrl(id);
      for (const id of cluster.ids) {
        const { text, samples } = await scrape(base(id));
        if (promtoolSkip === undefined) {
          const check = await promtoolCheck(text);
          assert.ok(check.ok, `replica ${id}: promtool check metrics:\n${check.output}`);
        }
        assert.equal(sample(samples, "lamportkv_view_members"), 3);
        assert.equal(sample(samples, "lamportkv_state", { state: "normal" }), 1);
        assert.equal(sample(samples, "lamportkv_ready"), 1);
        for (const r of cluster.ids) {
          assert.equal(sample(samples, "lamportkv_view_member", { replica: String(r) }), 1);
          if (r === id) continue;
          assert.equal(sample(samples, "lamportkv_peer_link_up", { peer: String(r) }), 1);
        }
      }
      const before = (await scrape(base(1))).samples;
      const count = (s: Sample[], name: string, labels: Record<string, string> = {}) =>
        sample(s, name, labels) ?? 0;

      // Bounded load on replica 1: writes and reads over one connection.
      const client = await RespTestClient.connect(cluster.clientPort(1));
      try {
        for (let i = 0; i < WRITES; i++) {
          assert.equal(await client.call(["SET", `m${i}`, "v".repeat(100)]), "OK");
        }
        for (let i = 0; i < 20; i++) await client.call(["GET", `m${i}`]);
        const after = (await scrape(base(1))).samples;
        const moved = (name: string, labels: Record<string, string>, by: number) => {
          const was = count(before, name, labels);
          const now = count(after, name, labels);
          assert.ok(now >= was + by, `${name} ${JSON.stringify(labels)}: ${was} -> ${now}`);
        };
        moved("lamportkv_operations_total", { command: "set", result: "ok" }, WRITES);
        moved("lamportkv_operations_total", { command: "get", result: "ok" }, 20);
        moved("lamportkv_request_duration_seconds_count", { command: "set" }, WRITES);
        moved("lamportkv_request_duration_seconds_bucket", { command: "set", le: "+Inf" }, WRITES);
        moved("lamportkv_wal_fsync_duration_seconds_count", {}, 1);
        moved("lamportkv_network_received_bytes_total", { port: "client" }, WRITES * 100);
        moved("lamportkv_network_sent_bytes_total", { port: "client" }, WRITES * 5);
        moved("lamportkv_network_sent_bytes_total", { port: "peer" }, WRITES * 100);
        moved("lamportkv_network_received_bytes_total", { port: "peer" }, 1);
        assert.ok(count(after, "lamportkv_wal_bytes") > 0);
        assert.ok(count(after, "lamportkv_wal_segments") >= 1);
        assert.equal(count(after, "lamportkv_connected_clients"), 1);
        assert.ok(count(after, "lamportkv_event_loop_lag_seconds_count") > 0);
        assert.ok(count(after, "process_resident_memory_bytes") > 0);
      } finally {
        await client.close();
      }

      // Every replica delivers the same index (after the load it is at least WRITES).
      await waitFor(async () => {
        const indexes = await Promise.all(
          cluster.ids.map(async (id) =>
            sample((await scrape(base(id))).samples, "lamportkv_delivered_index")
          ),
        );
        return indexes[0]! >= WRITES && indexes.every((x) => x === indexes[0]);
      }, { timeoutMs: 15_000, message: "an equal delivered index on every replica" });
      const views = await Promise.all(
        cluster.ids.map(async (id) => sample((await scrape(base(id))).samples, "lamportkv_view")),
      );
      assert.ok(views.every((v) => v === views[0] && v! >= 0), `views ${views}`);

      // /status: the data directory's sizes and the view installed.
      const status = await (await fetch(`${base(1)}/status`)).json() as StatusReport;
      assert.ok(status.storage !== undefined && status.storage.walBytes > 0, "storage reported");
      assert.equal(status.viewChanges.at(-1)?.view, views[0]);
      assert.deepEqual(status.viewChanges.at(-1)?.members, [1, 2, 3]);
      const peer2 = status.peers.find((p) => p.id === 2);
      assert.ok(peer2 !== undefined && peer2.lastHeardMs !== null && peer2.ackedBehind !== null);

      // A killed peer: its link goes down, then the view goes on without it.
      await cluster.kill(3, "SIGKILL");
      await waitFor(async () => {
        const s = (await scrape(base(1))).samples;
        return sample(s, "lamportkv_peer_link_up", { peer: "3" }) === 0 &&
          sample(s, "lamportkv_view_member", { replica: "3" }) === 0 &&
          sample(s, "lamportkv_view_members") === 2 &&
          sample(s, "lamportkv_state", { state: "normal" }) === 1;
      }, { timeoutMs: 20_000, message: "replica 1 sees 3's link down and a view of 1, 2" });
      const last = (await scrape(base(1))).samples;
      assert.ok(count(last, "lamportkv_view") > views[0]!);
      assert.ok(count(last, "lamportkv_view_changes_total") >= 2);
      assert.ok(count(last, "lamportkv_peer_last_heard_seconds", { peer: "3" }) > 0);
      const after = await (await fetch(`${base(1)}/status`)).json() as StatusReport;
      assert.match(after.viewChanges.at(-1)?.cause ?? "", /replica 3 left/);
      assert.equal(await respCall(cluster.clientPort(1), ["GET", "m0"]), "v".repeat(100));
    }),
});
