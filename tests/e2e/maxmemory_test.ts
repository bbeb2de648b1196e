/**
 * End to end: `maxmemory` on real replicas. Writes are accepted until the replica's used memory
 * passes the limit, then refused with Redis's OOM error before they are ordered, while reads and
 * deletions still run and the other replicas hold every write that was accepted; CONFIG GET and
 * INFO report the setting. A second test sends the same commands to a real `redis-server` with
 * `maxmemory 1` and compares the replies.
 *
 * Sanitizers: off, because the replica child processes and their output pipes outlive single
 * async ops by design (the harness awaits them all in `stop()`).
 *
 * @module
 */
import assert from "node:assert/strict";
import { RespError, type RespValue } from "../../src/net/resp.ts";
import { parseInfo } from "../../src/net/info.ts";
import { respCall, RespTestClient, waitFor, withCluster } from "../support/cluster.ts";
import {
  announceSkip,
  redisSkipReason,
  skipName,
  withRedisServer,
} from "../support/redis_server.ts";

const OOM = "OOM command not allowed when used memory > 'maxmemory'.";
const MiB = 2 ** 20;
/** Bytes of each value written until the replica refuses. */
const VALUE_BYTES = 256 * 1024;
/** The most values written (256 MiB): the limit is 64 MiB, so the loop ends well before. */
const MAX_WRITES = 1000;
/** The most time the writing loop runs. */
const WRITE_DEADLINE_MS = 60_000;

/** An error reply's message (anything else as a string, which then fails the comparison). */
function errorText(reply: RespValue): string {
  return reply instanceof RespError ? reply.message : `not an error: ${String(reply)}`;
}

Deno.test({
  name: "maxmemory: writes are refused with OOM once used memory passes it; reads and DEL run",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await withCluster({ replicas: 3, settings: ["maxmemory 64mb"] }, async (cluster) => {
      const port = cluster.clientPort(1);
      await waitFor(() => cluster.logged(1, /refused \(OOM\) above 64 MiB of used memory/), {
        timeoutMs: 5000,
        message: "replica 1 to log where writes are refused",
      });
      assert.deepEqual(await respCall(port, ["CONFIG", "GET", "maxmemory"]), [
        "maxmemory",
        String(64 * MiB),
      ]);
      const info = parseInfo(String(await respCall(port, ["INFO", "memory"])));
      assert.equal(info.maxmemory, String(64 * MiB));
      assert.equal(info.write_memory_limit, String(64 * MiB));
      assert.equal(info.maxmemory_policy, "noeviction");

      const value = "v".repeat(VALUE_BYTES);
      const c = await RespTestClient.connect(port);
      let accepted = 0;
      let refusal: RespValue | undefined;
      try {
        const deadline = performance.now() + WRITE_DEADLINE_MS;
        for (let i = 0; i < MAX_WRITES && performance.now() < deadline; i++) {
          const reply = await c.call(["SET", `big:${i}`, value], 10_000);
          if (reply instanceof RespError) {
            refusal = reply;
            break;
          }
          assert.equal(reply, "OK", `SET big:${i}`);
          accepted++;
        }
        assert.ok(refusal !== undefined, `no refusal after ${accepted} SETs of 256 KiB`);
        assert.equal(errorText(refusal), OOM);
        assert.ok(accepted > 0, "the first write, below the limit, was accepted");
        cluster.note(`replica 1 accepted ${accepted} SETs of 256 KiB before OOM`);
        // Other commands that add data are refused too; reads, deletions and PING still run.
        assert.equal(errorText(await c.call(["INCR", "n"])), OOM);
        assert.equal(errorText(await c.call(["RPUSH", "l", "x"])), OOM);
        assert.equal(await c.call(["GET", "big:0"]), value);
        assert.equal(await c.call(["EXISTS", `big:${accepted - 1}`]), 1);
        assert.equal(await c.call(["DEL", "big:0"]), 1);
        assert.equal(await c.call(["PING"]), "PONG");
      } finally {
        await c.close();
      }
      // Every accepted write was ordered and applied everywhere; the refused one nowhere.
      const last = `big:${accepted - 1}`;
      for (const id of cluster.ids) {
        const p = cluster.clientPort(id);
        await waitFor(async () => (await respCall(p, ["EXISTS", "big:0"])) === 0, {
          timeoutMs: 10_000,
          message: `replica ${id} to apply the DEL`,
        });
        assert.equal(await respCall(p, ["GET", last]), value, `replica ${id}: ${last}`);
        assert.equal(await respCall(p, ["EXISTS", `big:${accepted}`]), 0, `replica ${id}`);
      }
    });
  },
});

const SKIP = await redisSkipReason();
const DIFF = "maxmemory: OOM replies, in and out of MULTI, are a real Redis's";
announceSkip(DIFF, SKIP);

Deno.test({
  name: skipName(DIFF, SKIP),
  ignore: SKIP !== undefined,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const script: string[][] = [
      ["SET", "a", "b"],
      ["GET", "a"],
      ["APPEND", "a", "x"],
      ["SADD", "s", "m"],
      ["EXPIRE", "a", "10"],
      ["DEL", "a"],
      ["MULTI"],
      ["GET", "a"],
      ["SET", "a", "b"],
      ["EXEC"],
      ["MULTI"],
      ["DISCARD"],
      ["PING"],
    ];
    /** Every reply of `script` on one connection to `port`, errors as `-message`. */
    const replies = async (port: number): Promise<unknown[]> => {
      const c = await RespTestClient.connect(port);
      try {
        const out: unknown[] = [];
        for (const argv of script) {
          const r = await c.call(argv);
          out.push(r instanceof RespError ? `-${r.message}` : r);
        }
        return out;
      } finally {
        await c.close();
      }
    };
    await withRedisServer(async (redis) => {
      await withCluster({ replicas: 3, settings: ["maxmemory 1mb"] }, async (cluster) => {
        const expected = await replies(redis.port);
        assert.ok(expected.includes(`-${OOM}`), `redis-server refused nothing: ${expected}`);
        assert.deepEqual(await replies(cluster.clientPort(1)), expected);
      });
    }, { extraArgs: ["--maxmemory", "1"] });
  },
});
