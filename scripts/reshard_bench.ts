/**
 * Migration speed of online resharding on loopback: starts a sharded cluster of 2 groups × 3
 * replica processes (temporary directory, free ports), loads `--keys` string keys of `--bytes`
 * bytes into group g1's slots (pipelined SETs to g1's leader), then moves g1's slots 0-8191 to g2
 * with the resharding module (`src/client/reshard.ts`, one lamportkv client per group, batches of
 * `--batch` keys) and prints keys/s and MB/s (MB: 10^6 bytes of keys and payloads as sent); with
 * `--back`, moves them back too and prints that run as well. No other load runs meanwhile.
 *
 * ```sh
 * deno run -A scripts/reshard_bench.ts --keys 100000 --bytes 100 --batch 1000
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { respCall, RespTestClient, startCluster, waitFor } from "../tests/support/cluster.ts";
import { LamportClient } from "../src/client/client.ts";
import { ClientGroups, summaryLine } from "../src/client/reshard_cli.ts";
import { reshard } from "../src/client/reshard.ts";
import { keySlot } from "../src/kv/slots.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    keys: { type: "string", default: "100000" },
    bytes: { type: "string", default: "100" },
    batch: { type: "string", default: "1000" },
    back: { type: "boolean", default: false },
  },
});
const keys = Number(values.keys);
const bytes = Number(values.bytes);
const batch = Number(values.batch);

const cluster = await startCluster({ replicas: 6, groups: 2 });
try {
  const port = cluster.clientPort(1);
  await waitFor(async () => {
    for (const id of cluster.ids) {
      const info = String(await respCall(cluster.clientPort(id), ["CLUSTER", "INFO"]));
      if (!info.includes("cluster_state:ok")) return false;
    }
    return true;
  }, { message: "cluster_state:ok everywhere", timeoutMs: 20_000 });

  // Keys of g1's slots (0-8191), pipelined 1,000 at a time.
  const names: string[] = [];
  for (let n = 0; names.length < keys; n++) if (keySlot(`key:${n}`) < 8192) names.push(`key:${n}`);
  const value = "x".repeat(bytes);
  const loader = await RespTestClient.connect(port);
  const loadStart = performance.now();
  for (let i = 0; i < names.length; i += 1000) {
    const chunk = names.slice(i, i + 1000);
    const replies = await loader.pipeline(chunk.map((k) => ["SET", k, value]), 30_000);
    for (let j = 0; j < chunk.length; j++) {
      if (replies[j] !== "OK") throw new Error(`SET ${chunk[j]}: ${JSON.stringify(replies[j])}`);
    }
  }
  await loader.close();
  console.log(
    `loaded ${keys} keys of ${bytes} B in ${((performance.now() - loadStart) / 1000).toFixed(1)} s`,
  );

  const groups = new ClientGroups(
    cluster.config,
    (id) => new LamportClient(cluster.config, { preferredReplica: id, deadlineMs: 60_000 }),
  );
  try {
    for (const to of values.back ? ["g2", "g1"] : ["g2"]) {
      const summary = await reshard(groups, { start: 0, end: 8191 }, to, { batch });
      console.log(`0-8191 -> ${to}, batches of ${batch}: ${summaryLine(summary)}`);
    }
  } finally {
    await groups.close();
  }
} finally {
  await cluster.stop();
}
