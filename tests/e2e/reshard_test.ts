/**
 * Online resharding end to end, by hand: 2 replica groups × 3 real replica processes (g1 owns
 * slots 0-8191 and is the control group, g2 8192-16383). One slot of g1 holding keys (a string,
 * a list with an expiry, a hash) moves to g2 through the CLUSTER subcommands sent over RESP:
 * SETSLOT IMPORTING at g2, SETSLOT MIGRATING at g1, batches of MIGRATEKEYS / IMPORTKEYS /
 * MIGRATEDONE, SETSLOT NODE at g1; g2's replicas learn the new map from g1 by themselves (their
 * group probe), and LOADSLOTMAP by hand is then a no-op. Meanwhile: a new key at g1 is answered ASK,
 * an in-transit key TRYAGAIN, ASKING + SET at g2 is served, a key absent at g2 without ASKING is
 * MOVED back to g1, `redis-cli -c` follows an ASK. After: the slot's keys are MOVED from g1 to g2, `redis-cli -c` reads them
 * through g1, CLUSTER SLOTS of every replica shows the split, no key is lost or duplicated, and a restarted
 * replica keeps the new map.
 *
 * Sanitizers: off (child processes outlive single ops).
 *
 * @module
 */
import assert from "node:assert/strict";
import { respCall, RespTestClient, runCommand, waitFor, withCluster } from "../support/cluster.ts";
import { succeeds } from "../support/redis_server.ts";
import { keySlot } from "../../src/kv/slots.ts";
import { RespError, type RespValue } from "../../src/net/resp.ts";

const TEST = { sanitizeOps: false, sanitizeResources: false };
const HAVE_REDIS_CLI = await succeeds("redis-cli", ["--version"]);
if (!HAVE_REDIS_CLI) console.log("SKIPPED: redis-cli steps: redis-cli not installed");

const G1 = [1, 2, 3];
const G2 = [4, 5, 6];
const TRYAGAIN = "TRYAGAIN Multiple keys request during rehashing of slot";

/** The error text of `reply` (fails when it is not an error). */
function errorOf(reply: RespValue): string {
  assert.ok(reply instanceof RespError, `expected an error, got ${JSON.stringify(reply)}`);
  return reply.message;
}

Deno.test({
  name: "e2e reshard: one slot with keys moves from g1 to g2 by CLUSTER commands",
  ...TEST,
  fn: async () => {
    await withCluster({ replicas: 6, groups: 2 }, async (cluster) => {
      const port = (id: number) => cluster.clientPort(id);
      const call = (id: number, ...argv: string[]) => respCall(port(id), argv);
      await waitFor(async () => {
        for (const id of [...G1, ...G2]) {
          const info = String(await call(id, "CLUSTER", "INFO"));
          if (!info.includes("cluster_slots_ok:16384")) return false;
        }
        const slots = JSON.stringify(await call(2, "CLUSTER", "SLOTS"));
        return slots.includes(`${port(1)}`) && slots.includes(`${port(4)}`);
      }, { message: "every replica's CLUSTER INFO to say all slots ok", timeoutMs: 15_000 });

      // Keys of one slot S of g1 (hash tag {b}), of three types; one key of another slot.
      const S = keySlot("{b}");
      assert.ok(S < 8192);
      const strings = Array.from({ length: 7 }, (_, i) => `{b}s${i}`);
      for (const k of strings) assert.equal(String(await call(1, "SET", k, `v-${k}`)), "OK");
      assert.equal(await call(2, "RPUSH", "{b}list", "a", "b", "c"), 3);
      assert.equal(await call(3, "PEXPIRE", "{b}list", "600000"), 1);
      assert.equal(await call(1, "HSET", "{b}hash", "f", "x", "g", "y"), 2);
      const all = [...strings, "{b}list", "{b}hash"];
      assert.equal(await call(1, "CLUSTER", "COUNTKEYSINSLOT", String(S)), all.length);

      // Errors: MIGRATING at the group that does not own S, IMPORTING at the one that does,
      // MIGRATEKEYS before MIGRATING, NODE outside the control group.
      assert.match(
        errorOf(await call(4, "CLUSTER", "SETSLOT", String(S), "MIGRATING", "g1")),
        new RegExp(`^ERR I'm not the owner of hash slot ${S}$`),
      );
      assert.match(
        errorOf(await call(1, "CLUSTER", "SETSLOT", String(S), "IMPORTING", "g2")),
        new RegExp(`^ERR I'm already the owner of hash slot ${S}$`),
      );
      assert.match(
        errorOf(await call(1, "CLUSTER", "MIGRATEKEYS", String(S), "10")),
        /not migrating/,
      );
      assert.match(
        errorOf(await call(4, "CLUSTER", "SETSLOT", String(S), "NODE", "g2")),
        /only accepted by the control group g1/,
      );

      // A client blocked on an empty list of S at g1 before the move (answered MOVED when S
      // leaves g1, as Redis Cluster does).
      const blocked = respCall(port(2), ["BLPOP", "{b}queue", "0"], 60_000);
      await waitFor(
        async () => String(await call(2, "INFO", "clients")).includes("blocked_clients:1"),
        { message: "replica 2 to count the blocked client in INFO", timeoutMs: 15_000 },
      );
      // 1-2: importing at g2, migrating at g1 (each twice: idempotent).
      for (let i = 0; i < 2; i++) {
        assert.equal(
          String(await call(5, "CLUSTER", "SETSLOT", String(S), "IMPORTING", "g1")),
          "OK",
        );
        assert.equal(
          String(await call(2, "CLUSTER", "SETSLOT", String(S), "MIGRATING", "g2")),
          "OK",
        );
      }
      const nodes = String(await call(1, "CLUSTER", "NODES"));
      assert.match(nodes, new RegExp(`\\[${S}->-[0-9a-f]{40}\\]`), nodes);
      // A key of S that g1 does not hold: ASK to g2's master; at g2 without ASKING: MOVED back.
      assert.equal(errorOf(await call(1, "GET", "{b}new")), `ASK ${S} 127.0.0.1:${port(4)}`);
      assert.equal(errorOf(await call(4, "GET", "{b}new")), `MOVED ${S} 127.0.0.1:${port(1)}`);
      const asker = await RespTestClient.connect(port(4));
      try {
        assert.equal(String(await asker.call(["ASKING"])), "OK");
        assert.equal(String(await asker.call(["SET", "{b}new", "created-at-g2"])), "OK");
        // The flag lasts one command.
        assert.equal(
          errorOf(await asker.call(["GET", "{b}other"])),
          `MOVED ${S} 127.0.0.1:${port(1)}`,
        );
      } finally {
        await asker.close();
      }
      all.push("{b}new");
      // The key exists at g2 now: served there without ASKING; g1 (where it is absent) says ASK.
      assert.equal(await call(6, "GET", "{b}new"), "created-at-g2");
      assert.equal(errorOf(await call(3, "GET", "{b}new")), `ASK ${S} 127.0.0.1:${port(4)}`);

      // 3: batches of 3 keys.
      let batches = 0;
      for (let round = 0; round < 20; round++) {
        const reply = await call(1, "CLUSTER", "MIGRATEKEYS", String(S), "3") as RespValue[];
        const [id, ...pairs] = reply as [number, ...string[]];
        if (pairs.length === 0) break;
        batches++;
        assert.ok(pairs.length <= 6);
        // Asked again before it is done: the same batch (resume).
        assert.deepEqual(await call(2, "CLUSTER", "MIGRATEKEYS", String(S), "3"), reply);
        const moving = pairs[0];
        assert.equal(errorOf(await call(3, "GET", moving)), TRYAGAIN);
        assert.equal(
          errorOf(await call(2, "MGET", moving, "{b}none")),
          TRYAGAIN,
          "in transit: TRYAGAIN",
        );
        // At g2 the key is not there yet: MOVED to g1.
        assert.equal(errorOf(await call(5, "GET", moving)), `MOVED ${S} 127.0.0.1:${port(1)}`);
        const args = ["CLUSTER", "IMPORTKEYS", "g1", String(id), ...pairs];
        assert.equal(await call(4, ...args), 1);
        assert.equal(await call(6, ...args), 0, "a batch is applied once");
        // Still in transit at g1 until MIGRATEDONE; served at g2 (it exists there now).
        assert.equal(errorOf(await call(1, "GET", moving)), TRYAGAIN);
        assert.notEqual(await call(5, "TYPE", moving), "none");
        assert.equal(await call(1, "CLUSTER", "MIGRATEDONE", String(id)), pairs.length / 2);
        assert.equal(await call(2, "CLUSTER", "MIGRATEDONE", String(id)), 0);
        assert.equal(errorOf(await call(3, "GET", moving)), `ASK ${S} 127.0.0.1:${port(4)}`);
        if (HAVE_REDIS_CLI && batches === 1) {
          // redis-cli -c follows the ASK (sending ASKING) to the moved key, mid-migration.
          const got = await runCommand(
            "redis-cli",
            ["-h", "127.0.0.1", "-p", String(port(1)), "-c", "TYPE", moving],
            { timeoutMs: 15_000 },
          );
          const type = moving.endsWith("list")
            ? "list"
            : moving.endsWith("hash")
            ? "hash"
            : "string";
          assert.equal(got.stdout.trim().split("\n").at(-1), type, JSON.stringify(got));
        }
      }
      assert.equal(batches, 3, "9 keys in batches of 3");
      assert.equal(await call(1, "CLUSTER", "COUNTKEYSINSLOT", String(S)), 0);
      assert.equal(await call(4, "CLUSTER", "COUNTKEYSINSLOT", String(S)), all.length);

      // 4: the control group assigns S to g2 (epoch 1); again: still 1.
      assert.equal(await call(1, "CLUSTER", "SETSLOT", String(S), "NODE", "g2"), 1);
      assert.equal(await call(3, "CLUSTER", "SETSLOT", String(S), "NODE", "g2"), 1);
      const map = await call(2, "CLUSTER", "SLOTMAP") as RespValue[];
      assert.equal(map[0], 1);
      assert.equal(errorOf(await blocked), `MOVED ${S} 127.0.0.1:${port(4)}`);
      assert.match(String(await call(2, "INFO", "clients")), /blocked_clients:0/);
      // 5: g2 learns the control group's map by itself (its probe reads g1's SLOTMAP every
      // second); LOADSLOTMAP by hand is then a no-op (0), and an older epoch too.
      await waitFor(async () => {
        const mine = await call(6, "CLUSTER", "SLOTMAP") as RespValue[];
        return mine[0] === 1;
      }, { message: "g2 to adopt the map of epoch 1 from the control group", timeoutMs: 15_000 });
      const load = ["CLUSTER", "LOADSLOTMAP", ...map.flatMap((r) => Array.isArray(r) ? r : [r])]
        .map(String);
      assert.equal(await call(4, ...load), 0);
      assert.equal(await call(5, ...load.map((a, i) => i === 2 ? "0" : a)), 0);
      assert.deepEqual(await call(6, "CLUSTER", "SLOTMAP"), map);
      // Until step 6, g1 has handed S over: ASK, not MOVED (g2 might not have had the map yet).
      assert.equal(errorOf(await call(2, "GET", "{b}s0")), `ASK ${S} 127.0.0.1:${port(4)}`);
      assert.match(String(await call(1, "CLUSTER", "NODES")), new RegExp(`\\[${S}->-`));
      // 6: the same map again at every group ends the hand-over (0: nothing newer adopted).
      for (const id of [4, 1]) assert.equal(await call(id, ...load), 0);

      // After: g1 sends S's keys to g2 with MOVED; g2 serves them; nothing was lost.
      for (const id of G1) {
        assert.equal(errorOf(await call(id, "GET", "{b}s0")), `MOVED ${S} 127.0.0.1:${port(4)}`);
      }
      for (const k of strings) assert.equal(await call(5, "GET", k), `v-${k}`);
      assert.deepEqual(await call(6, "LRANGE", "{b}list", "0", "-1"), ["a", "b", "c"]);
      const ttl = await call(4, "PTTL", "{b}list") as number;
      assert.ok(ttl > 0 && ttl <= 600_000, `the expiry moved with the list (${ttl})`);
      assert.deepEqual(await call(4, "HGETALL", "{b}hash"), ["f", "x", "g", "y"]);
      assert.equal(await call(1, "CLUSTER", "COUNTKEYSINSLOT", String(S)), 0);
      assert.equal(await call(5, "CLUSTER", "COUNTKEYSINSLOT", String(S)), all.length);
      // Importing and migrating were cleared by the map change.
      assert.doesNotMatch(String(await call(1, "CLUSTER", "NODES")), /->-|-<-/);
      assert.doesNotMatch(String(await call(4, "CLUSTER", "NODES")), /->-|-<-/);

      // Every replica's CLUSTER SLOTS shows the split: S at g2's master.
      const expected = [
        S > 0 ? `0-${S - 1}:${port(1)}` : "",
        `${S}-${S}:${port(4)}`,
        `${S + 1}-8191:${port(1)}`,
        `8192-16383:${port(4)}`,
      ].filter((r) => r !== "");
      for (const id of [...G1, ...G2]) {
        const slots = await call(id, "CLUSTER", "SLOTS") as [number, number, RespValue[]][];
        const seen = slots.map(([a, b, m]) => `${a}-${b}:${m[1]}`).join(" ");
        assert.equal(seen, expected.join(" "), `replica ${id}'s CLUSTER SLOTS`);
      }
      if (HAVE_REDIS_CLI) {
        const get = await runCommand(
          "redis-cli",
          ["-h", "127.0.0.1", "-p", String(port(2)), "-c", "GET", "{b}s3"],
          { timeoutMs: 15_000 },
        );
        assert.equal(get.stdout.trim().split("\n").at(-1), "v-{b}s3", JSON.stringify(get));
        const check = await runCommand(
          "redis-cli",
          ["--cluster", "check", `127.0.0.1:${port(5)}`],
          { timeoutMs: 15_000 },
        );
        assert.match(check.stdout, /\[OK\] All 16384 slots covered/, JSON.stringify(check));
      }
      // The slot state is durable: a g1 replica restarted (its log replayed) keeps the new map.
      await cluster.kill(2, "SIGTERM");
      await cluster.restart(2);
      await waitFor(async () => {
        const r = await call(2, "GET", "{b}s0");
        return r instanceof RespError && r.message === `MOVED ${S} 127.0.0.1:${port(4)}`;
      }, { message: "restarted replica 2 to redirect the moved slot", timeoutMs: 15_000 });
      assert.deepEqual(await call(2, "CLUSTER", "SLOTMAP"), map);
    });
  },
});
