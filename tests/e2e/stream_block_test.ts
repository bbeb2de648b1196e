/**
 * End to end: XREAD and XREADGROUP with BLOCK as waiters of the replicated waiter queue, on real
 * replica processes.
 *
 * - **Every reader sees the same entries.** XREAD BLOCK readers on all three replicas, each
 *   reading on from the last ID it saw, while producers on all three replicas add entries: every
 *   reader receives exactly the stream's entries, in stream order.
 * - **Each group entry is delivered once.** XREADGROUP BLOCK consumers of one group, two on each
 *   replica, while producers on all three add entries: every entry reaches exactly one consumer,
 *   the PEL is empty after the XACKs on every replica, and every replica's log of hand-offs
 *   (`__BFINISH <waiter> -> <reply>`, logged with `--verbose`) is the same.
 * - **SIGKILL.** XREADGROUP readers blocked at one replica, first in line, and that replica is
 *   SIGKILLed; entries added afterwards all reach the readers of the others, or sit in the PEL of
 *   a dead reader's consumer (handed before its waiter was dropped), which reads them again with
 *   ID 0 on another replica: none is lost or delivered twice.
 * - **Same bytes as Redis.** A fixed script of blocking stream reads (served at once, woken by an
 *   XADD or an EXEC, timing out, ended by XGROUP DESTROY and DEL, errors, inside MULTI), with the
 *   writes on another connection (on lamportkv, to another replica) once the reader is blocked,
 *   gets byte-identical replies from lamportkv and from a real `redis-server` (skipped with a
 *   `SKIPPED:` line when it cannot be run or installed).
 *
 * Bounded: a fixed number of entries, every wait has a deadline. Sanitizers off: the replica
 * child processes outlive single async ops by design.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { ByteString } from "../../src/core/types.ts";
import { RespError, type RespValue } from "../../src/net/resp.ts";
import { RespTestClient, type TestCluster, waitFor, withCluster } from "../support/cluster.ts";
import {
  announceSkip,
  redisSkipReason,
  skipName,
  withRedisServer,
} from "../support/redis_server.ts";
import { PipelineConnection, renderCommand, renderReply } from "../support/tagged_resp.ts";
import { blockedCount, finishes, respOn } from "../support/blocked_log.ts";
import * as kill9 from "../support/blocked_kill.ts";

const EXTRA_ARGS = ["--verbose", "--failure-timeout", "500"];
const TEST = { sanitizeOps: false, sanitizeResources: false };

type Entry = [ByteString, ByteString[]];

/** The entries of a one-stream XREAD/XREADGROUP reply, [] for a null reply; throws on errors. */
function entriesOf(reply: RespValue): Entry[] {
  if (reply === null) return [];
  if (reply instanceof RespError) throw new Error(`unexpected error ${reply.message}`);
  assert.ok(Array.isArray(reply), `unexpected reply ${JSON.stringify(reply)}`);
  const [[, entries]] = reply as [ByteString, Entry[]][];
  return entries;
}

/** Producers on every replica: `perReplica` entries each, `p<id>-<n>`; their IDs. */
async function produce(cluster: TestCluster, perReplica: number): Promise<string[]> {
  const ids: string[] = [];
  await Promise.all(cluster.ids.map(async (id) => {
    const c = await RespTestClient.connect(cluster.clientPort(id));
    try {
      for (let n = 0; n < perReplica; n++) {
        const reply = await c.call(["XADD", "s", "*", "p", `p${id}-${n}`], 10_000);
        assert.equal(typeof reply, "string", `XADD answered ${JSON.stringify(reply)}`);
        ids.push(reply as string);
      }
    } finally {
      await c.close();
    }
  }));
  return ids;
}

Deno.test({
  name: "stream block: XREAD readers blocked on different replicas all see the same entries",
  ...TEST,
  fn: async () => {
    await withCluster({ replicas: 3, extraArgs: EXTRA_ARGS }, async (cluster) => {
      const PER_REPLICA = 20;
      const TOTAL = PER_REPLICA * cluster.ids.length;
      const deadline = performance.now() + 40_000;
      const seen = new Map<number, Entry[]>();
      const readers = cluster.ids.map(async (id) => {
        const c = await RespTestClient.connect(cluster.clientPort(id));
        const got: Entry[] = [];
        seen.set(id, got);
        try {
          let last = "$"; // first: entries after the stream's last ID when it blocks
          while (got.length < TOTAL && performance.now() < deadline) {
            const cmd = ["XREAD", "COUNT", "7", "BLOCK", "5000", "STREAMS", "s", last];
            const entries = entriesOf(await c.call(cmd, 15_000));
            got.push(...entries);
            if (entries.length > 0) last = entries[entries.length - 1][0];
          }
        } finally {
          await c.close();
        }
      });
      // Every reader waits before the first entry is added: `$` then means "from the start".
      await waitFor(() => blockedCount(cluster, 1, /"XREAD"/) >= cluster.ids.length, {
        timeoutMs: 15_000,
        message: "the three readers to block",
      });
      const added = await produce(cluster, PER_REPLICA);
      await Promise.all(readers);
      const all = await respOn(cluster, 1, ["XRANGE", "s", "-", "+"]) as Entry[];
      assert.equal(all.length, TOTAL);
      assert.deepEqual(all.map(([id]) => id).sort(), [...added].sort(), "every XADD is there");
      for (const id of cluster.ids) {
        assert.deepEqual(seen.get(id), all, `replica ${id}'s reader saw the stream, in order`);
      }
      await cluster.waitForAgreement();
    });
  },
});

Deno.test({
  name: "stream block: XREADGROUP readers on three replicas get each entry exactly once",
  ...TEST,
  fn: async () => {
    await withCluster({ replicas: 3, extraArgs: EXTRA_ARGS }, async (cluster) => {
      const PER_REPLICA = 30;
      const TOTAL = PER_REPLICA * cluster.ids.length;
      const CONSUMERS = 6;
      assert.equal(await respOn(cluster, 1, ["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]), "OK");
      const received: string[] = [];
      const byConsumer = new Map<string, string[]>();
      const deadline = performance.now() + 40_000;
      const consumers = Array.from({ length: CONSUMERS }, async (_, i) => {
        const id = cluster.ids[i % cluster.ids.length];
        const name = `c${i}`;
        const mine: string[] = [];
        byConsumer.set(name, mine);
        const c = await RespTestClient.connect(cluster.clientPort(id));
        try {
          while (received.length < TOTAL && performance.now() < deadline) {
            const cmd = ["XREADGROUP", "GROUP", "g", name, "COUNT", "2", "BLOCK", "1000"];
            const entries = entriesOf(await c.call([...cmd, "STREAMS", "s", ">"], 15_000));
            for (const [eid] of entries) {
              received.push(eid);
              mine.push(eid);
              assert.equal(await c.call(["XACK", "s", "g", eid], 10_000), 1, `XACK ${eid}`);
            }
          }
        } finally {
          await c.close();
        }
      });
      await waitFor(() => blockedCount(cluster, 1, /"XREADGROUP"/) >= CONSUMERS, {
        timeoutMs: 15_000,
        message: "the consumers to block",
      });
      const added = await produce(cluster, PER_REPLICA);
      await Promise.all(consumers);
      assert.equal(new Set(received).size, received.length, "no entry was delivered twice");
      assert.deepEqual([...received].sort(), [...added].sort(), "every entry was delivered");
      for (const [name, ids] of byConsumer) {
        const sorted = [...ids].sort((a, b) => cmpId(a, b));
        assert.deepEqual(ids, sorted, `${name} got its entries in stream order`);
      }
      cluster.note(
        `stream block: ${[...byConsumer].map(([n, ids]) => `${n}:${ids.length}`).join(" ")}`,
      );
      await cluster.waitForAgreement();
      for (const id of cluster.ids) {
        assert.deepEqual(await respOn(cluster, id, ["XPENDING", "s", "g"]), [0, null, null, null]);
      }
      const histories = cluster.ids.map((id) => finishes(cluster, id));
      // A served finish's reply (logged as JSON) holds the stream's name: `[[\"s\", ...`.
      assert.ok(histories[0].some((h) => h.includes('[[\\"s\\"')), "hand-offs were logged");
      assert.deepEqual(histories[1], histories[0], "replica 2 saw the same hand-offs as 1");
      assert.deepEqual(histories[2], histories[0], "replica 3 saw the same hand-offs as 1");
    });
  },
});

Deno.test({
  name: "stream block: a replica with blocked XREADGROUP readers is SIGKILLed, no entry is lost",
  ...TEST,
  fn: async () => {
    await withCluster({ replicas: 3, extraArgs: EXTRA_ARGS }, async (cluster) => {
      const ENTRIES = 30;
      assert.equal(await respOn(cluster, 1, ["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]), "OK");
      const read = (
        name: string,
        block: string,
      ) => ["XREADGROUP", "GROUP", "g", name, "COUNT", "1", "BLOCK", block, "STREAMS", "s", ">"];
      // Readers at replica 3 block first: they are first in line for every XADD.
      const doomed = await kill9.blockAt(
        cluster,
        3,
        [0, 1, 2].map((i) => read(`d${i}`, "0")),
        /"__BLOCK" "3\.[^"]+" "XREADGROUP"/,
      );
      const received: string[] = [];
      let done = false;
      const readers = kill9.survivors(
        cluster,
        4,
        (i) => read(`s${i}`, "1000"),
        () => !done,
        (reply) => {
          for (const [eid] of entriesOf(reply)) received.push(eid);
        },
      );
      await waitFor(() => blockedCount(cluster, 1, /"__BLOCK" "[12]\.[^"]+" "XREADGROUP"/) >= 4, {
        message: "the survivors' readers to block",
      });
      await kill9.killWithClients(cluster, 3, doomed);
      // Pipelined at once: they may be ordered before the leader drops replica 3's waiters, which
      // are then handed the first of them (into their consumers' PEL).
      const added: string[] = [];
      const entries = Array.from({ length: ENTRIES }, (_, n) => n);
      await kill9.pipelineUntilOrdered(
        cluster,
        1,
        entries,
        (n) => ["XADD", "s", "*", "n", String(n)],
        (
          _n,
          reply,
        ) => {
          if (typeof reply !== "string") throw new Error(`XADD answered ${JSON.stringify(reply)}`);
          added.push(reply);
        },
      );
      await kill9.waitDropped(cluster, 3, 3);
      // Every entry reaches a survivor, or is pending for a dead reader (handed before the drop).
      const deadPending = async () => {
        const p = await respOn(cluster, 1, ["XPENDING", "s", "g", "-", "+", "100"]) as [
          string,
          string,
        ][];
        return p.filter(([, consumer]) => consumer.startsWith("d")).map(([eid]) => eid);
      };
      let pending: string[] = [];
      await waitFor(async () => {
        pending = await deadPending();
        return received.length + pending.length >= added.length;
      }, { timeoutMs: 20_000, message: "every entry to be received or pending" });
      done = true;
      await readers;
      const all = [...received, ...pending];
      assert.equal(new Set(all).size, all.length, "no entry delivered twice");
      assert.deepEqual([...all].sort(), [...added].sort(), "every entry delivered once");
      cluster.note(
        `stream block: ${received.length} to survivors, ${pending.length} pending for the dead`,
      );
      // A dead reader's consumer reads what it was handed again, on another replica.
      for (const [i] of doomed.entries()) {
        const mine = await respOn(cluster, 2, [
          "XREADGROUP",
          "GROUP",
          "g",
          `d${i}`,
          "STREAMS",
          "s",
          "0",
        ]);
        for (const [eid] of entriesOf(mine)) assert.ok(pending.includes(eid), `${eid} pending`);
      }
      await cluster.waitForAgreement({ ids: [1, 2] });
    });
  },
});

/** Compares two `ms-seq` IDs. */
function cmpId(a: string, b: string): number {
  const [am, as] = a.split("-").map(BigInt);
  const [bm, bs] = b.split("-").map(BigInt);
  return am !== bm ? (am < bm ? -1 : 1) : as === bs ? 0 : as < bs ? -1 : 1;
}

/**
 * A step of the script: a command answered by itself, or a reader's command that blocks and the
 * writes (on another connection) that end its wait.
 */
type Step = ByteString[] | { block: ByteString[]; then: ByteString[][] };

const GROUP = ["XREADGROUP", "GROUP", "g", "c1"];
const SCRIPT: Step[] = [
  ["XADD", "s", "1-1", "f", "a"],
  ["XREAD", "BLOCK", "0", "STREAMS", "s", "0"],
  ["XREAD", "COUNT", "1", "BLOCK", "0", "STREAMS", "s", "none", "0", "0"],
  ["XREAD", "BLOCK", "30", "STREAMS", "s", "$"],
  ["XREAD", "BLOCK", "20", "STREAMS", "none", "0"],
  {
    block: ["XREAD", "BLOCK", "0", "STREAMS", "none", "s", "$", "$"],
    then: [["XADD", "s", "2-1", "f", "b"]],
  },
  { block: ["XREAD", "BLOCK", "0", "STREAMS", "s", "2-1"], then: [["XADD", "s", "2-2", "f", "c"]] },
  {
    block: ["XREAD", "COUNT", "1", "BLOCK", "0", "STREAMS", "s", "$"],
    then: [["MULTI"], ["XADD", "s", "3-1", "f", "d"], ["XADD", "s", "3-2", "f", "e"], ["EXEC"]],
  },
  {
    block: ["XREAD", "BLOCK", "0", "STREAMS", "new", "$"],
    then: [["SET", "new", "x"], ["DEL", "new"], ["XADD", "new", "0-1", "f", "g"]],
  },
  ["XGROUP", "CREATE", "s", "g", "$"],
  { block: [...GROUP, "BLOCK", "0", "STREAMS", "s", ">"], then: [["XADD", "s", "4-1", "f", "h"]] },
  ["XPENDING", "s", "g"],
  {
    block: [...GROUP, "COUNT", "1", "NOACK", "BLOCK", "0", "STREAMS", "s", ">"],
    then: [["MULTI"], ["XADD", "s", "5-1", "f", "i"], ["XADD", "s", "5-2", "f", "j"], ["EXEC"]],
  },
  ["XPENDING", "s", "g"],
  [...GROUP, "BLOCK", "0", "STREAMS", "s", ">"],
  [...GROUP, "BLOCK", "0", "STREAMS", "s", "0"],
  ["XREADGROUP", "GROUP", "g", "c2", "BLOCK", "25", "STREAMS", "s", ">"],
  {
    block: [...GROUP, "BLOCK", "0", "STREAMS", "s", ">"],
    then: [["XGROUP", "SETID", "s", "g", "0"], ["XADD", "s", "6-1", "f", "k"]],
  },
  { block: [...GROUP, "BLOCK", "0", "STREAMS", "s", ">"], then: [["XGROUP", "DESTROY", "s", "g"]] },
  ["XGROUP", "CREATE", "s", "g", "$"],
  { block: [...GROUP, "BLOCK", "0", "STREAMS", "s", ">"], then: [["DEL", "s"]] },
  [...GROUP, "BLOCK", "0", "STREAMS", "s", ">"],
  ["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"],
  { block: [...GROUP, "BLOCK", "0", "STREAMS", "s", ">"], then: [["SET", "s", "x"]] },
  ["XREAD", "BLOCK", "0", "STREAMS", "s", "$"],
  ["DEL", "s"],
  ["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"],
  [...GROUP, "BLOCK", "0", "STREAMS", "s", "$"],
  ["XREAD", "BLOCK", "-1", "STREAMS", "s", "$"],
  ["XREAD", "BLOCK", "soon", "STREAMS", "s", "$"],
  ["XREAD", "BLOCK", "0", "STREAMS", "s"],
  ["XREAD", "BLOCK", "0", "STREAMS", "s", ">"],
  ["XREAD", "BLOCK"],
  ["MULTI"],
  ["XREAD", "BLOCK", "0", "STREAMS", "s", "$"],
  [...GROUP, "BLOCK", "0", "STREAMS", "s", ">"],
  ["EXEC"],
];

/** One side of the comparison: a reader's and a writer's connection. */
interface Side {
  reader: PipelineConnection;
  writer: PipelineConnection;
  /** How many times a reader's command started to wait so far (or waits now). */
  waits(): Promise<number>;
}

/** Runs the script on `side`: every reply rendered, in order. */
async function runScript(side: Side): Promise<string[]> {
  const out: string[] = [];
  for (const step of SCRIPT) {
    if (Array.isArray(step)) {
      const [reply] = await side.reader.pipeline([step]);
      out.push(`${renderCommand(step)} -> ${renderReply(reply)}`);
      continue;
    }
    const before = await side.waits();
    const pending = side.reader.pipeline([step.block]);
    await waitFor(async () => (await side.waits()) > before, {
      timeoutMs: 10_000,
      message: `the reader to block: ${renderCommand(step.block)}`,
    });
    for (const w of step.then) {
      const [reply] = await side.writer.pipeline([w]);
      out.push(`  ${renderCommand(w)} -> ${renderReply(reply)}`);
    }
    const [reply] = await pending;
    out.push(`${renderCommand(step.block)} (blocked) -> ${renderReply(reply)}`);
  }
  return out;
}

const SAME_BYTES = "stream block: the same bytes as redis-server for a fixed script";
const redisSkip = await redisSkipReason();
Deno.test({
  name: skipName(SAME_BYTES, redisSkip),
  ignore: redisSkip !== undefined,
  ...TEST,
  fn: async () => {
    await withRedisServer(async (redis) => {
      await withCluster({ replicas: 3, extraArgs: EXTRA_ARGS }, async (cluster) => {
        const conns = await Promise.all([
          PipelineConnection.connect(redis.port),
          PipelineConnection.connect(redis.port),
          PipelineConnection.connect(cluster.clientPort(2)),
          PipelineConnection.connect(cluster.clientPort(3)),
        ]);
        try {
          const [rr, rw, lr, lw] = conns;
          const theirs = await runScript({
            reader: rr,
            writer: rw,
            // Redis's INFO says how many clients wait now (0 or 1 here).
            waits: async () => {
              const [info] = await rw.pipeline([["INFO", "clients"]]);
              return Number(/blocked_clients:(\d+)/.exec(renderReply(info))?.[1] ?? 0);
            },
          });
          const ours = await runScript({
            reader: lr,
            writer: lw,
            // The reader's replica logs every waiter it registers.
            waits: () =>
              Promise.resolve(
                blockedCount(cluster, 2, /"XREAD"/) + blockedCount(cluster, 2, /"XREADGROUP"/),
              ),
          });
          assert.deepEqual(ours, theirs);
        } finally {
          await Promise.all(conns.map((c) => c.close()));
        }
        await cluster.waitForAgreement();
      });
    });
  },
});
announceSkip(SAME_BYTES, redisSkip);
