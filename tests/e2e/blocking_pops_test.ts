/**
 * End to end: blocking list pops on real replica processes ("Blocking list pops" of issue 14).
 *
 * - **Exactly once, one history.** Waiters on all three replicas (BLPOP, BRPOP, BLMPOP and BLMOVE
 *   over a few lists, short timeouts so they also time out and block again) while pushers on all
 *   three replicas push unique elements: every element is received by exactly one client (BLMOVE's
 *   are in their destination list exactly once), nothing is left, and every replica's log of the
 *   hand-offs (`__BFINISH <waiter> -> <reply>`, logged with `--verbose` at its delivery index) is
 *   the same; the replicas agree on the digest, which covers the waiter queue.
 * - **Replies.** A timeout answers `*-1`; negative and malformed timeouts and WRONGTYPE answer
 *   Redis's errors; a blocked client's pipelined commands wait for it; a client that closes its
 *   connection while blocked takes no element with it.
 * - **SIGKILL.** Clients blocked at one replica, whose waiters are first in line, and that replica
 *   is SIGKILLed; elements pushed afterwards are all received by the clients of the others or left
 *   in the list: the dead replica's waiters are dropped (`__BDROP`) and what they were handed is
 *   given back. Restarted, it catches up (through a snapshot holding a waiter) to the same digest.
 *
 * - **Same bytes as Redis.** A fixed script of blocking commands (served at once, timing out,
 *   errors, inside MULTI) gets byte-identical replies from a replica and from a real
 *   `redis-server` (skipped with a `SKIPPED:` line when it cannot be run or installed).
 *
 * Bounded: a fixed number of elements, every wait has a deadline. Sanitizers off: the replica
 * child processes outlive single async ops by design.
 *
 * @module
 */
import assert from "node:assert/strict";
import { RespTestClient, waitFor, withCluster } from "../support/cluster.ts";
import { encodeCommand, RespError, type RespValue } from "../../src/net/resp.ts";
import {
  announceSkip,
  redisSkipReason,
  skipName,
  withRedisServer,
} from "../support/redis_server.ts";
import { PipelineConnection, renderCommand, renderReply } from "../support/tagged_resp.ts";
import { blockedCount, finishes, respOn } from "../support/blocked_log.ts";
import * as kill9 from "../support/blocked_kill.ts";
import { LamportClient } from "../../src/client/client.ts";

const EXTRA_ARGS = ["--verbose", "--failure-timeout", "500"];
const KEYS = ["q0", "q1", "q2"];
const TEST = { sanitizeOps: false, sanitizeResources: false };

/** The element of a pop reply (`[key, value]`, `[key, [values]]` or a value), or none. */
function elements(reply: RespValue): string[] {
  if (reply === null) return [];
  if (reply instanceof RespError) throw new Error(`unexpected error ${reply.message}`);
  if (typeof reply === "string") return [reply];
  if (Array.isArray(reply)) {
    const v = reply[1];
    return Array.isArray(v) ? v.map(String) : [String(v)];
  }
  throw new Error(`unexpected reply ${JSON.stringify(reply)}`);
}

/** A waiter's command line for client `i` (a mix of the blocking commands). */
function waiterCommand(i: number): string[] {
  const a = KEYS[i % 3];
  const b = KEYS[(i + 1) % 3];
  switch (i % 4) {
    case 0:
      return ["BLPOP", a, b, "0.5"];
    case 1:
      return ["BRPOP", b, "0.5"];
    case 2:
      return ["BLMPOP", "0.5", "2", a, b, "LEFT", "COUNT", "2"];
    default:
      return ["BLMOVE", a, "moved", "LEFT", "RIGHT", "0.5"];
  }
}

Deno.test({
  name: "blocking pops: every element popped exactly once, the same hand-offs on every replica",
  ...TEST,
  fn: async () => {
    await withCluster({ replicas: 3, extraArgs: EXTRA_ARGS }, async (cluster) => {
      const TOTAL = 600;
      const WAITERS = 12;
      const received: string[] = [];
      const viaMove = new Set<string>();
      let timeouts = 0;
      const deadline = performance.now() + 40_000;
      const waiters = Array.from({ length: WAITERS }, async (_, i) => {
        const c = await RespTestClient.connect(cluster.clientPort(1 + (i % 3)));
        try {
          const cmd = waiterCommand(i);
          while (received.length < TOTAL && performance.now() < deadline) {
            const got = elements(await c.call(cmd, 10_000));
            if (got.length === 0) timeouts++;
            received.push(...got);
            if (cmd[0] === "BLMOVE") { for (const e of got) viaMove.add(e); }
          }
        } finally {
          await c.close();
        }
      });
      const pushers = [1, 2, 3].map(async (id) => {
        const c = await RespTestClient.connect(cluster.clientPort(id));
        try {
          for (let n = 0; n < TOTAL / 3; n += 4) {
            const key = KEYS[(n / 4 + id) % 3];
            const batch = [0, 1, 2, 3].map((k) => `e${id}-${n + k}`);
            const reply = await c.call([n % 8 === 0 ? "RPUSH" : "LPUSH", key, ...batch], 10_000);
            assert.equal(typeof reply, "number", `push answered ${JSON.stringify(reply)}`);
          }
        } finally {
          await c.close();
        }
      });
      await Promise.all([...pushers, ...waiters]);
      const sorted = [...received].sort();
      assert.equal(new Set(sorted).size, sorted.length, "no element was received twice");
      const pushed = [1, 2, 3].flatMap((id) =>
        Array.from({ length: TOTAL / 3 }, (_, n) => `e${id}-${n}`)
      ).sort();
      assert.deepEqual(sorted, pushed, "every pushed element was received");
      cluster.note(`blocking: ${received.length} received, ${timeouts} timeouts`);
      const moved = await respOn(cluster, 1, ["LRANGE", "moved", "0", "-1"]) as string[];
      assert.deepEqual([...moved].sort(), [...viaMove].sort(), "BLMOVE's elements moved once");
      for (const key of KEYS) assert.equal(await respOn(cluster, 2, ["LLEN", key]), 0);
      await cluster.waitForAgreement();
      const histories = [1, 2, 3].map((id) => finishes(cluster, id));
      assert.ok(histories[0].length > 0, "hand-offs were logged");
      assert.deepEqual(histories[1], histories[0], "replica 2 saw the same hand-offs as 1");
      assert.deepEqual(histories[2], histories[0], "replica 3 saw the same hand-offs as 1");
    });
  },
});

/** The raw bytes of the reply to `argv` on a fresh connection (up to `bytes` of them). */
async function rawReply(port: number, argv: string[], bytes: number): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(encodeCommand(argv));
    const buf = new Uint8Array(bytes);
    let got = 0;
    const timer = setTimeout(() => conn.close(), 10_000);
    try {
      while (got < bytes) {
        const n = await conn.read(buf.subarray(got));
        if (n === null) break;
        got += n;
      }
    } finally {
      clearTimeout(timer);
    }
    return new TextDecoder().decode(buf.subarray(0, got));
  } finally {
    try {
      conn.close();
    } catch {
      // closed by the timer
    }
  }
}

Deno.test({
  name: "blocking pops: timeouts, errors, and a client that leaves takes nothing with it",
  ...TEST,
  fn: async () => {
    await withCluster({ replicas: 3, extraArgs: EXTRA_ARGS }, async (cluster) => {
      for (const id of cluster.ids) {
        assert.equal(
          await rawReply(cluster.clientPort(id), ["BLPOP", "none", "0.2"], 5),
          "*-1\r\n",
        );
      }
      assert.equal(
        await rawReply(cluster.clientPort(2), ["BLMOVE", "none", "d", "LEFT", "LEFT", "0.1"], 5),
        "*-1\r\n",
      );
      const neg = await respOn(cluster, 1, ["BRPOP", "k", "-1"]);
      assert.deepEqual(neg, new RespError("ERR timeout is negative"));
      const bad = await respOn(cluster, 1, ["BLPOP", "k", "soon"]);
      assert.deepEqual(bad, new RespError("ERR timeout is not a float or out of range"));
      await respOn(cluster, 1, ["SET", "str", "x"]);
      const wrong = await respOn(cluster, 3, ["BLPOP", "str", "1"]);
      assert.ok(wrong instanceof RespError && wrong.code === "WRONGTYPE");

      // A blocked client that goes away: its waiter is cancelled, the element stays.
      const leaver = await RespTestClient.connect(cluster.clientPort(2));
      await leaver.write(encodeCommand(["BLPOP", "left", "0"]));
      await waitFor(() => cluster.logged(1, /deliver #\d+ "__BLOCK" .*"BLPOP" "left"/), {
        message: "the leaver's BLPOP to block",
      });
      await leaver.close();
      await waitFor(() => cluster.logged(1, /deliver #\d+ "__BCANCEL"/), {
        message: "the leaver's waiter to be cancelled",
      });
      assert.equal(await respOn(cluster, 3, ["RPUSH", "left", "kept"]), 1);
      assert.deepEqual(await respOn(cluster, 1, ["LRANGE", "left", "0", "-1"]), ["kept"]);

      // As in Redis, a blocked client's next commands wait: its own pipelined push does not
      // serve it.
      const piped = await RespTestClient.connect(cluster.clientPort(1));
      try {
        await piped.write(encodeCommand(["BLPOP", "pipe", "0.3"]));
        await piped.write(encodeCommand(["RPUSH", "pipe", "x"]));
        assert.equal(await piped.next(10_000), null, "timed out");
        assert.equal(await piped.next(10_000), 1);
      } finally {
        await piped.close();
      }

      // The lamportkv client waits a blocking command's timeout on top of its deadline.
      const client = new LamportClient(cluster.config, { deadlineMs: 300, attemptTimeoutMs: 300 });
      try {
        const t0 = performance.now();
        const pending = client.command(["BLPOP", "patient", "0"]);
        await waitFor(() => performance.now() - t0 > 1500, { message: "five deadlines to pass" });
        assert.equal(await respOn(cluster, 2, ["RPUSH", "patient", "p"]), 1);
        assert.deepEqual(await pending, ["patient", "p"]);
      } finally {
        await client.close();
      }

      // Served across replicas: a waiter at replica 3, a push at replica 1.
      const w = await RespTestClient.connect(cluster.clientPort(3));
      try {
        await w.write(encodeCommand(["BRPOPLPUSH", "src", "dst", "0"]));
        await waitFor(() => cluster.logged(1, /deliver #\d+ "__BLOCK" .*"BRPOPLPUSH"/), {
          message: "BRPOPLPUSH to block",
        });
        assert.equal(await respOn(cluster, 1, ["RPUSH", "src", "a", "b"]), 2);
        assert.equal(await w.next(10_000), "b");
        assert.deepEqual(await respOn(cluster, 2, ["LRANGE", "dst", "0", "-1"]), ["b"]);
        assert.deepEqual(await respOn(cluster, 2, ["LRANGE", "src", "0", "-1"]), ["a"]);
      } finally {
        await w.close();
      }
      await cluster.waitForAgreement();
    });
  },
});

Deno.test({
  name: "blocking pops: a replica with waiters is SIGKILLed and no element is lost",
  ...TEST,
  fn: async () => {
    // Snapshots every 10 deliveries: the waiter queue goes through them, on disk and to the
    // restarted replica.
    const extraArgs = [...EXTRA_ARGS, "--snapshot-every", "10"];
    await withCluster({ replicas: 3, extraArgs }, async (cluster) => {
      const ELEMENTS = 30;
      // Clients at replica 3 block first: they are first in line for every push.
      const doomed = await kill9.blockAt(
        cluster,
        3,
        [0, 1, 2].map(() => ["BLPOP", "jobs", "0"]),
        /"__BLOCK" "3\.[^"]+"/,
      );
      const received: string[] = [];
      const readers = kill9.survivors(
        cluster,
        4,
        () => ["BLPOP", "jobs", "1"],
        () => received.length < ELEMENTS,
        (reply) => received.push(...elements(reply)),
      );
      await waitFor(() => blockedCount(cluster, 1, /"__BLOCK" "[12]\.[^"]+"/) >= 4, {
        message: "the survivors' clients to block",
      });
      await kill9.killWithClients(cluster, 3, doomed);
      // Pipelined at once: they wait for the others' view and are ordered as soon as it forms,
      // before the leader drops replica 3's waiters, which are handed the first of them.
      const pushed: string[] = [];
      const maybe: string[] = [];
      const jobs = Array.from({ length: ELEMENTS }, (_, i) => `job${i}`);
      await kill9.pipelineUntilOrdered(
        cluster,
        1,
        jobs,
        (el) => ["RPUSH", "jobs", el],
        (el, reply) => {
          if (typeof reply === "number") pushed.push(el);
          else maybe.push(el); // may have been applied: counted once if it shows up
        },
      );
      await readers;
      const left = await respOn(cluster, 2, ["LRANGE", "jobs", "0", "-1"]) as string[];
      const all = [...received, ...left].sort();
      assert.equal(new Set(all).size, all.length, "no element received twice");
      for (const el of pushed) assert.ok(all.includes(el), `${el} was lost`);
      for (const el of all) assert.ok(pushed.includes(el) || maybe.includes(el), `${el}?`);
      await kill9.waitDropped(cluster, 3, 3);
      const log = cluster.logs.filter((l) => l.id === 1).map((l) => l.text);
      const drop = log.findIndex((t) => t.includes('"__BDROP"'));
      const firstPush = log.findIndex((t) => /deliver #\d+ "RPUSH" "jobs"/.test(t));
      cluster.note(
        `blocking: ${pushed.length} pushed, ${maybe.length} unknown, ${received.length} ` +
          `received, ${left.length} left; pushes ${
            firstPush < drop ? "were handed to the dead waiters first" : "came after the drop"
          }`,
      );
      await cluster.waitForAgreement({ ids: [1, 2] });
      // Back with its log: it catches up to the same state (through a snapshot: it is more than
      // 10 deliveries behind), the waiter queue included: a client stays blocked meanwhile.
      const idle = await RespTestClient.connect(cluster.clientPort(2));
      try {
        await idle.write(encodeCommand(["BLPOP", "idle", "0"]));
        await waitFor(() => cluster.logged(1, /"__BLOCK" "[^"]+" "BLPOP" "idle" .*__BLOCKED/), {
          message: "the idle client to block",
        });
        await cluster.restart(3);
        await cluster.waitForAgreement();
        assert.equal(await respOn(cluster, 3, ["RPUSH", "idle", "i"]), 1);
        assert.deepEqual(await idle.next(10_000), ["idle", "i"]);
      } finally {
        await idle.close();
      }
      await cluster.waitForAgreement();
    });
  },
});

/** Commands whose replies must be the same bytes as Redis's, one at a time. */
const SCRIPT: string[][] = [
  ["RPUSH", "a", "1", "2", "3", "4"],
  ["SET", "s", "x"],
  ["BLPOP", "none", "a", "0"],
  ["BRPOP", "a", "none", "1.5"],
  ["BLPOP", "none", "0.05"],
  ["BRPOP", "none", "0.01"],
  ["BLMOVE", "none", "d", "LEFT", "RIGHT", "0.01"],
  ["BRPOPLPUSH", "none", "d", "0.01"],
  ["BLMPOP", "0.01", "1", "none", "LEFT"],
  ["BLMOVE", "a", "d", "RIGHT", "LEFT", "0"],
  ["BRPOPLPUSH", "a", "d", "0"],
  ["LRANGE", "d", "0", "-1"],
  ["BLMPOP", "0", "2", "none", "d", "RIGHT", "COUNT", "5"],
  ["RPUSH", "a", "5", "6"],
  ["BLPOP", "s", "a", "0"],
  ["BLMOVE", "a", "s", "LEFT", "LEFT", "0"],
  ["BLPOP", "a", "1e17"],
  ["BLPOP", "a", "1e-400"],
  ["BLPOP", "a", "-1"],
  ["BLPOP", "a", "nope"],
  ["BLPOP", "a", "inf"],
  ["BLPOP", "a", "-inf"],
  ["BLMOVE", "a", "d", "UP", "LEFT", "0"],
  ["BLMPOP", "0", "0", "a", "LEFT"],
  ["BLMPOP", "0", "1", "a", "MIDDLE"],
  ["BLMPOP", "0", "1", "a", "LEFT", "COUNT", "0"],
  ["BLPOP", "a"],
  ["BLMOVE", "a", "d", "LEFT", "LEFT"],
  ["MULTI"],
  ["BLPOP", "none", "0"],
  ["BLMOVE", "none", "d", "LEFT", "LEFT", "0"],
  ["BLMPOP", "0", "1", "none", "LEFT"],
  ["BLPOP", "a", "0"],
  ["EXEC"],
  ["LRANGE", "a", "0", "-1"],
];

const SAME_BYTES = "blocking pops: the same bytes as redis-server for a fixed script";
const redisSkip = await redisSkipReason();
Deno.test({
  name: skipName(SAME_BYTES, redisSkip),
  ignore: redisSkip !== undefined,
  ...TEST,
  fn: async () => {
    await withRedisServer(async (redis) => {
      await withCluster({ replicas: 3 }, async (cluster) => {
        const theirs = await PipelineConnection.connect(redis.port);
        const ours = await PipelineConnection.connect(cluster.clientPort(2));
        try {
          for (const cmd of SCRIPT) {
            const [want] = await theirs.pipeline([cmd]);
            const [got] = await ours.pipeline([cmd]);
            assert.equal(renderReply(got), renderReply(want), renderCommand(cmd));
          }
        } finally {
          await theirs.close();
          await ours.close();
        }
      });
    });
  },
});
announceSkip(SAME_BYTES, redisSkip);
