/**
 * Static sharding end to end: 2 replica groups × 3 real replica processes (config lines with
 * `group=`), group g1 owning slots 0-8191 and g2 8192-16383. Every replica lists both shards in
 * CLUSTER SLOTS / SHARDS / NODES / INFO; a key of the other group's slots gets
 * `-MOVED <slot> <host>:<port>` (plain redis-cli shows it, `redis-cli -c` and the lamportkv client
 * follow it); multi-key commands over two slots get CROSSSLOT; ioredis's `Cluster` and
 * node-redis's `createCluster` spread ~200 keys over both groups (single keys, hash-tagged
 * multi-key commands, MULTI/EXEC), each key ends up in exactly one group; a replica of each
 * group killed with kill -9 does not stop the clients, and after g2's master is killed every
 * replica names another one and the clients go on.
 *
 * Sanitizers: off (child processes, and the libraries' sockets and timers, outlive single ops).
 *
 * @module
 */
import assert from "node:assert/strict";
import { Cluster } from "ioredis";
import { createCluster } from "redis";
import {
  type CommandResult,
  respCall,
  runClient,
  runCommand,
  type TestCluster,
  waitFor,
  withCluster,
} from "../support/cluster.ts";
import { succeeds } from "../support/redis_server.ts";
import { keySlot } from "../../src/kv/slots.ts";
import { RespError } from "../../src/net/resp.ts";

const TEST = { sanitizeOps: false, sanitizeResources: false };

/** `redis-cli` is there (run_tests.sh installs redis-tools with apt-get when it can). */
const HAVE_REDIS_CLI = await succeeds("redis-cli", ["--version"]);
if (!HAVE_REDIS_CLI) console.log("SKIPPED: redis-cli steps: redis-cli not installed");

type Nested = (string | number | null | Nested)[];

/** Slots 0-8191 are g1's (replicas 1-3), 8192-16383 g2's (replicas 4-6). */
const G1 = [1, 2, 3];
const G2 = [4, 5, 6];
const ownerOf = (key: string) => keySlot(key) < 8192 ? G1 : G2;

/** The first key `<prefix><n>` of group `ids`. */
function keyOf(prefix: string, ids: number[]): string {
  for (let n = 0; n < 10_000; n++) if (ownerOf(`${prefix}${n}`) === ids) return `${prefix}${n}`;
  throw new Error("no key");
}

/** `redis-cli -h 127.0.0.1 -p <port> <args>` (its output, whatever its exit status). */
function redisCli(port: number, args: string[]): Promise<CommandResult> {
  return runCommand("redis-cli", ["-h", "127.0.0.1", "-p", String(port), ...args], {
    timeoutMs: 15_000,
  });
}

/** The master port of each range of replica `id`'s CLUSTER SLOTS, `start-end:port`. */
async function slotMasters(cluster: TestCluster, id: number): Promise<string[]> {
  const slots = await respCall(cluster.clientPort(id), ["CLUSTER", "SLOTS"]) as Nested;
  return slots.map((r) => {
    const [start, end, master] = r as [number, number, Nested];
    return `${start}-${end}:${master[1]}`;
  });
}

Deno.test({
  name: "e2e sharded: 2 groups × 3 replicas, MOVED/CROSSSLOT, redis-cli -c, ioredis, node-redis",
  ...TEST,
  fn: async () => {
    await withCluster({ replicas: 6, groups: 2 }, async (cluster) => {
      const port = (id: number) => cluster.clientPort(id);
      assert.deepEqual([...cluster.groups], [["g1", G1], ["g2", G2]]);

      // Each replica sees the other group's replicas up once it probed them (every second).
      await waitFor(async () => {
        for (const id of [...G1, ...G2]) {
          const info = String(await respCall(port(id), ["CLUSTER", "INFO"]));
          if (!info.includes("cluster_state:ok") || !info.includes("cluster_slots_ok:16384")) {
            return false;
          }
        }
        return true;
      }, { message: "every replica's CLUSTER INFO to say cluster_state:ok", timeoutMs: 15_000 });
      // Every replica lists both shards: g1's leader (1) and g2's (4) as masters.
      const expected = [`0-8191:${port(1)}`, `8192-16383:${port(4)}`];
      // (A probe made while a group's lowest replica was still starting named another: probes
      // run every second, so the listings settle.)
      await waitFor(async () => {
        const seen = await Promise.all([...G1, ...G2].map((id) => slotMasters(cluster, id)));
        return seen.every((m) => JSON.stringify(m) === JSON.stringify(expected));
      }, { message: `every replica to list the masters ${expected.join(" ")}` });
      const ids = await Promise.all(
        [...G1, ...G2].map(async (id) => await respCall(port(id), ["CLUSTER", "MYID"]) as string),
      );
      assert.equal(new Set(ids).size, 6);
      const nodes = String(await respCall(port(5), ["CLUSTER", "NODES"])).trim().split("\n");
      assert.equal(nodes.length, 6);
      assert.match(
        nodes[0],
        new RegExp(`^${ids[0]} 127\\.0\\.0\\.1:${port(1)}@\\d+ master - .* 0-8191$`),
      );
      assert.match(
        nodes[3],
        new RegExp(`^${ids[3]} 127\\.0\\.0\\.1:${port(4)}@\\d+ master - .* 8192-16383$`),
      );
      assert.match(nodes[4], new RegExp(`^${ids[4]} .* myself,slave ${ids[3]} `));
      const info = String(await respCall(port(2), ["CLUSTER", "INFO"]));
      assert.match(
        info,
        /^cluster_enabled:1\r\ncluster_state:ok\r\ncluster_slots_assigned:16384\r\n/,
      );
      assert.match(info, /\r\ncluster_known_nodes:6\r\ncluster_size:2\r\n/);
      const shards = await respCall(port(6), ["CLUSTER", "SHARDS"]) as Nested[];
      assert.deepEqual(shards.map((s) => s.slice(0, 3)), [
        ["slots", [0, 8191], "nodes"],
        ["slots", [8192, 16383], "nodes"],
      ]);
      // A key of the other group: MOVED to its master; two slots in one command: CROSSSLOT.
      const k1 = keyOf("key", G1);
      const k2 = keyOf("key", G2);
      const moved = `MOVED ${keySlot(k2)} 127.0.0.1:${port(4)}`;
      const refused = await respCall(port(2), ["SET", k2, "v"]);
      assert.ok(refused instanceof RespError && refused.message === moved, `${refused}`);
      const cross = await respCall(port(1), ["MSET", k1, "a", keyOf("other", G1), "b"]);
      assert.ok(
        cross instanceof RespError &&
          cross.message === "CROSSSLOT Keys in request don't hash to the same slot",
        `${cross}`,
      );

      if (HAVE_REDIS_CLI) {
        // Plain redis-cli shows the redirection; with -c it follows it.
        const plain = await redisCli(port(1), ["GET", k2]);
        assert.equal(`${plain.stdout}${plain.stderr}`.trim(), moved, JSON.stringify(plain));
        for (const [id, key] of [[1, k2], [4, k1]] as const) {
          const set = await redisCli(port(id), ["-c", "SET", key, `cli-${key}`]);
          assert.equal(set.stdout.trim().split("\n").at(-1), "OK", JSON.stringify(set));
          const get = await redisCli(port(id === 1 ? 5 : 2), ["-c", "GET", key]);
          assert.equal(get.stdout.trim().split("\n").at(-1), `cli-${key}`, JSON.stringify(get));
        }
        // Redis's own cluster checker: two masters, 8,192 slots each, every slot covered.
        const check = await runCommand(
          "redis-cli",
          ["--cluster", "check", `127.0.0.1:${port(1)}`],
          { timeoutMs: 15_000 },
        );
        assert.equal(check.code, 0, JSON.stringify(check));
        assert.match(check.stdout, /\[OK\] All nodes agree about slots configuration/);
        assert.match(check.stdout, /\[OK\] All 16384 slots covered/);
        assert.equal(check.stdout.match(/\(8192 slots\) master/g)?.length, 2, check.stdout);
      }
      // The lamportkv client follows MOVED too (one-shot, starting at replica 1 of g1).
      const lk = keyOf("lk", G2);
      const put = await runClient([cluster.configPath, "-r", "1", "set", lk, "from-client"]);
      assert.equal(put.stdout, "OK\n", JSON.stringify(put));
      assert.equal(await respCall(port(6), ["GET", lk]), "from-client");
      // ioredis Cluster (from a g1 replica) and node-redis createCluster (from a g2 replica).
      const io = new Cluster([{ host: "127.0.0.1", port: port(2) }], {
        clusterRetryStrategy: (times) => (times > 50 ? null : 100),
      });
      const nr = createCluster({ rootNodes: [{ socket: { host: "127.0.0.1", port: port(5) } }] });
      let nr2: typeof nr | undefined;
      try {
        await nr.connect();
        const keys = Array.from({ length: 200 }, (_, i) => `user:${i}`);
        const inG1 = keys.filter((k) => ownerOf(k) === G1).length;
        assert.ok(inG1 > 50 && inG1 < 150, `keys spread over both groups (${inG1} in g1)`);
        for (const [i, k] of keys.entries()) {
          assert.equal(await (i % 2 === 0 ? io.set(k, String(i)) : nr.set(k, String(i))), "OK");
        }
        for (const [i, k] of keys.entries()) {
          assert.equal(await (i % 2 === 0 ? nr.get(k) : io.get(k)), String(i));
          assert.equal(await (i % 2 === 0 ? io.incr(k) : nr.incr(k)), i + 1);
        }
        // Hash tags: multi-key commands and transactions in one slot, on either group.
        for (const tag of [keyOf("tag", G1), keyOf("tag", G2)]) {
          const tagged = [`{${tag}}:a`, `{${tag}}:b`, `{${tag}}:c`];
          assert.equal(await io.mset(tagged[0], "1", tagged[1], "2", tagged[2], "3"), "OK");
          assert.deepEqual(await nr.mGet(tagged), ["1", "2", "3"]);
          const tx = await io.multi().incr(`{${tag}}:n`).incr(`{${tag}}:n`).exec();
          assert.deepEqual(tx, [[null, 1], [null, 2]]);
          assert.deepEqual(await nr.multi().incr(`{${tag}}:n`).get(`{${tag}}:n`).exec(), [3, "3"]);
        }
        await assert.rejects(io.mset(k1, "x", keyOf("other", G2), "y"), /CROSSSLOT/);
        // Each key is held by exactly one group: its owner's.
        const held = new Map<string, number[]>();
        for (const [ids, id] of [[G1, 2], [G2, 6]] as const) {
          const all = await respCall(port(id), ["KEYS", "*"]) as string[];
          assert.equal(await respCall(port(id), ["DBSIZE"]), all.length);
          for (const k of all) {
            assert.equal(ownerOf(k), ids, `${k} (slot ${keySlot(k)}) held by the right group`);
            held.set(k, ids);
          }
        }
        for (const k of keys) assert.ok(held.has(k), `${k} is held`);
        // (lk's slot: the lamportkv client's key, written whether redis-cli is there or not.)
        const slot = keySlot(lk);
        const count = await respCall(port(5), ["CLUSTER", "COUNTKEYSINSLOT", String(slot)]);
        const inSlot = [...held.keys()].filter((k) => keySlot(k) === slot).length;
        assert.ok(inSlot >= 1);
        assert.equal(count, inSlot);

        // kill -9 one replica of each group that is not its master (3 of g1, 6 of g2): both
        // clients go on, on every key.
        await cluster.kill(3, "SIGKILL");
        await cluster.kill(6, "SIGKILL");
        for (const [i, k] of keys.entries()) {
          const value = `after-3-6-${i}`;
          assert.equal(await (i % 2 === 0 ? io.set(k, value) : nr.set(k, value)), "OK");
          assert.equal(await (i % 2 === 0 ? nr.get(k) : io.get(k)), value);
        }
        await cluster.restart(3);
        await cluster.restart(6);
        await cluster.waitForView({ ids: G1 });
        await cluster.waitForView({ ids: G2 });

        // kill -9 g2's master (4): g2 serves with 5 and 6, and every replica names 5 its master.
        await cluster.kill(4, "SIGKILL");
        const after = [`0-8191:${port(1)}`, `8192-16383:${port(5)}`];
        await waitFor(async () => {
          for (const id of [1, 2, 3, 5, 6]) {
            if ((await slotMasters(cluster, id)).join() !== after.join()) return false;
          }
          return true;
        }, { message: "every replica to name replica 5 g2's master", timeoutMs: 20_000 });
        // ioredis's Cluster goes on by itself. node-redis's keeps waiting to reconnect to the node
        // that died (it looks the slots up again only after MOVED): a new one is started.
        nr2 = createCluster({ rootNodes: [{ socket: { host: "127.0.0.1", port: port(3) } }] });
        await nr2.connect();
        for (const [i, k] of keys.entries()) {
          const value = `after-4-${i}`;
          assert.equal(await (i % 2 === 0 ? io.set(k, value) : nr2.set(k, value)), "OK");
          assert.equal(await (i % 2 === 0 ? nr2.get(k) : io.get(k)), value);
        }
        const moved5 = await respCall(port(1), ["GET", k2]);
        assert.ok(
          moved5 instanceof RespError &&
            moved5.message === `MOVED ${keySlot(k2)} 127.0.0.1:${port(5)}`,
          `${moved5}`,
        );
      } finally {
        io.disconnect();
        nr.destroy();
        nr2?.destroy();
      }
    });
  },
});
