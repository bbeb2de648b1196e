/**
 * Redis Cluster mode against one lamportkv replica set (one shard owning every hash slot): the
 * CLUSTER commands agree on every replica, and the cluster-aware clients route by themselves:
 * `redis-cli -c`, ioredis's `Cluster` and node-redis's `createCluster` (single-slot commands,
 * hash-tagged multi-key commands and transactions), and still after the shard's master (the
 * view's leader) is killed with kill -9.
 *
 * Sanitizers: off (child processes, and the libraries' sockets and timers, outlive single ops).
 *
 * @module
 */
import assert from "node:assert/strict";
import { Cluster } from "ioredis";
import { createCluster } from "redis";
import {
  respCall,
  runCommand,
  type TestCluster,
  waitFor,
  withCluster,
} from "../support/cluster.ts";
import { keySlot } from "../../src/kv/slots.ts";
import { RespError } from "../../src/net/resp.ts";

const TEST = { sanitizeOps: false, sanitizeResources: false };

/** `redis-cli` is there (installed by run_tests.sh when it can be). */
const HAVE_REDIS_CLI = await (async () => {
  try {
    return (await new Deno.Command("redis-cli", {
      args: ["--version"],
      stdout: "null",
      stderr: "null",
    })
      .output()).success;
  } catch {
    return false;
  }
})();
if (!HAVE_REDIS_CLI) console.log("SKIPPED: redis-cli -c step: redis-cli not installed");

type Nested = (string | number | null | Nested)[];

/** CLUSTER SLOTS of replica `id`, as `[start, end, [host, port, nodeId]...]`. */
async function slots(cluster: TestCluster, id: number): Promise<Nested> {
  return await respCall(cluster.clientPort(id), ["CLUSTER", "SLOTS"]) as Nested;
}

Deno.test({
  name:
    "e2e cluster mode: CLUSTER commands, redis-cli -c, ioredis Cluster, node-redis createCluster",
  ...TEST,
  fn: async () => {
    await withCluster({ replicas: 3 }, async (cluster) => {
      await cluster.waitForView({ ids: [1, 2, 3] });
      const port = (id: number) => cluster.clientPort(id);

      // Every replica names the same shard: all 16,384 slots, master = the view's leader (1).
      const first = await slots(cluster, 1);
      for (const id of [2, 3]) assert.deepEqual(await slots(cluster, id), first);
      const [[start, end, master, ...replicas]] = first as [[number, number, Nested, ...Nested[]]];
      assert.deepEqual([start, end], [0, 16383]);
      assert.deepEqual(master.slice(0, 2), ["127.0.0.1", port(1)]);
      assert.deepEqual(replicas.map((r) => r[1]), [port(2), port(3)]);
      const ids = await Promise.all(
        [1, 2, 3].map(async (id) => await respCall(port(id), ["CLUSTER", "MYID"]) as string),
      );
      assert.equal(new Set(ids).size, 3);
      assert.ok(ids.every((i) => /^[0-9a-f]{40}$/.test(i)), ids.join());
      assert.equal(master[2], ids[0]);
      const nodes = String(await respCall(port(2), ["CLUSTER", "NODES"])).trim().split("\n");
      assert.equal(nodes.length, 3);
      assert.match(
        nodes[0],
        new RegExp(`^${ids[0]} 127\\.0\\.0\\.1:${port(1)}@\\d+ master - .* 0-16383$`),
      );
      assert.match(nodes[1], new RegExp(`^${ids[1]} .* myself,slave ${ids[0]} `));
      const info = String(await respCall(port(3), ["CLUSTER", "INFO"]));
      assert.match(info, /^cluster_enabled:1\r\ncluster_state:ok\r\n/);
      assert.match(info, /\r\ncluster_known_nodes:3\r\n/);
      // INFO agrees: a cluster node, in both sections (Redis's redis_mode with cluster-enabled).
      const server = String(await respCall(port(3), ["INFO", "server"]));
      assert.match(server, /\r\nredis_mode:cluster\r\n/);
      assert.match(String(await respCall(port(3), ["INFO", "cluster"])), /cluster_enabled:1\r\n/);
      const shards = await respCall(port(1), ["CLUSTER", "SHARDS"]) as Nested;
      assert.equal(shards.length, 1);
      assert.deepEqual((shards[0] as Nested).slice(0, 3), ["slots", [0, 16383], "nodes"]);

      // KEYSLOT is Redis's (CRC16/XMODEM, hash tags), and the slot queries are reads in the order.
      assert.equal(await respCall(port(1), ["CLUSTER", "KEYSLOT", "foo"]), 12182);
      assert.equal(await respCall(port(1), ["CLUSTER", "KEYSLOT", "{user1000}.following"]), 3443);
      const tagged = ["{acct}:a", "{acct}:b", "{acct}:c"];
      assert.equal(
        await respCall(port(2), ["MSET", tagged[0], "1", tagged[1], "2", tagged[2], "3"]),
        "OK",
      );
      const slot = String(keySlot("acct"));
      assert.equal(await respCall(port(3), ["CLUSTER", "COUNTKEYSINSLOT", slot]), 3);
      assert.deepEqual(
        (await respCall(port(1), ["CLUSTER", "GETKEYSINSLOT", slot, "2"]) as string[]).length,
        2,
      );
      const invalid = await respCall(port(1), ["CLUSTER", "COUNTKEYSINSLOT", "16384"]);
      assert.ok(
        invalid instanceof RespError && invalid.message === "ERR Invalid slot",
        `${invalid}`,
      );

      if (HAVE_REDIS_CLI) {
        const cli = async (p: number, ...args: string[]) => {
          const out = await new Deno.Command("redis-cli", {
            args: ["-c", "-h", "127.0.0.1", "-p", String(p), ...args],
            stdout: "piped",
            stderr: "piped",
          }).output();
          assert.ok(out.success, new TextDecoder().decode(out.stderr));
          return new TextDecoder().decode(out.stdout).trim();
        };
        assert.equal(await cli(port(3), "SET", "cli-key", "v"), "OK");
        assert.equal(await cli(port(2), "GET", "cli-key"), "v");
        // Redis's own cluster checker sees one master owning every slot, the others replicas.
        // (runCommand: killed, not left hanging, should it never finish.)
        const check = await runCommand(
          "redis-cli",
          ["--cluster", "check", `127.0.0.1:${port(1)}`],
          { timeoutMs: 15_000 },
        );
        const report = check.stdout;
        assert.equal(check.code, 0, report + check.stderr);
        assert.match(report, /\[OK\] All nodes agree about slots configuration/);
        assert.match(report, /\[OK\] All 16384 slots covered/);
        assert.match(report, /2 additional replica\(s\)/);
      }

      // ioredis Cluster: routes by itself; single keys, hash-tagged multi-key, a transaction.
      const io = new Cluster([{ host: "127.0.0.1", port: port(2) }], {
        clusterRetryStrategy: (times) => (times > 50 ? null : 100),
      });
      try {
        assert.equal(await io.set("io:k", "1"), "OK");
        assert.equal(await io.get("io:k"), "1");
        assert.deepEqual(await io.mget(...tagged), ["1", "2", "3"]);
        const tx = await io.multi().incr("{io}n").incr("{io}n").exec();
        assert.deepEqual(tx, [[null, 1], [null, 2]]);
      } finally {
        io.disconnect();
      }

      // node-redis createCluster: the same.
      const nr = createCluster({ rootNodes: [{ socket: { host: "127.0.0.1", port: port(3) } }] });
      await nr.connect();
      try {
        assert.equal(await nr.get("io:k"), "1");
        assert.equal(await nr.set("nr:k", "2"), "OK");
        assert.deepEqual(await nr.mGet(tagged), ["1", "2", "3"]);
        assert.deepEqual(await nr.multi().incr("{io}n").get("{io}n").exec(), [3, "3"]);
      } finally {
        await nr.close();
      }

      // The master (the leader, replica 1) dies: the others name replica 2, and a cluster client
      // started from replica 3 works.
      await cluster.kill(1, "SIGKILL");
      await waitFor(async () => {
        const s = await slots(cluster, 3).catch(() => []);
        return s.length === 1 && ((s[0] as Nested)[2] as Nested)[1] === port(2);
      }, { message: "CLUSTER SLOTS to name replica 2 the master", timeoutMs: 20_000 });
      const after = new Cluster([{ host: "127.0.0.1", port: port(3) }], {
        clusterRetryStrategy: (times) => (times > 50 ? null : 100),
      });
      try {
        assert.equal(await after.get("nr:k"), "2");
        assert.equal(await after.set("after", "3"), "OK");
      } finally {
        after.disconnect();
      }
      assert.equal(await respCall(port(2), ["GET", "after"]), "3");
    });
  },
});
