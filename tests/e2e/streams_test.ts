/**
 * Streams across real replica processes: producers on all three replicas, a consumer group with
 * consumers on different replicas, and kill -9 of the replica a consumer reads from in the middle
 * of the run. The consumer fails over to another replica and resumes from its pending entries
 * (XREADGROUP with ID 0) and then `>`. Checked at the end: every entry was delivered and
 * acknowledged exactly once by the group (no ID acknowledged twice, the PEL empty), each
 * consumer's `>` deliveries are in stream order, every producer's confirmed entry is in the stream
 * once, and XRANGE is identical on every replica. Then pending entries survive kill -9 and restart
 * of a replica: the restarted replica reports the same PEL and hands it back to its consumer.
 * A second test blocks XREAD and two XREADGROUP consumers on some replicas and wakes them with
 * XADDs on another: each entry goes to one consumer, and the PEL is the same on every replica.
 *
 * Bounded: 3 x {@link PER_PRODUCER} entries, a deadline on every wait.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { ByteString } from "../../src/core/types.ts";
import type { RespValue } from "../../src/net/resp.ts";
import {
  respCall,
  RespTestClient,
  type TestCluster,
  waitFor,
  withCluster,
} from "../support/cluster.ts";
import { FailoverClient, showReply } from "../support/failover_client.ts";

const EXTRA_ARGS = ["--failure-timeout", "500"];
/** Entries each producer adds. */
const PER_PRODUCER = 120;
/** A consumer gives up after this long (the test fails then). */
const RUN_DEADLINE_MS = 90_000;

type Entry = [ByteString, ByteString[]];

/** The entries of an XREADGROUP reply for the one stream read, or [] for a null reply. */
function entriesOf(reply: RespValue): Entry[] {
  if (reply === null) return [];
  assert.ok(Array.isArray(reply), `XREADGROUP: ${showReply(reply)}`);
  const [[, entries]] = reply as [ByteString, Entry[]][];
  return entries;
}

/** A producer: adds PER_PRODUCER entries through a failover client; outcomes by payload. */
async function produce(
  cluster: TestCluster,
  index: number,
  confirmed: Map<string, string>,
  uncertain: Set<string>,
): Promise<void> {
  const client = new FailoverClient({
    ports: cluster.ids.map((id) => cluster.clientPort(id)),
    start: index,
    name: `producer ${index}`,
    note: (l) => cluster.note(l),
  });
  try {
    for (let n = 0; n < PER_PRODUCER; n++) {
      const payload = `p${index}-${n}`;
      const out = await client.call(["XADD", "s", "*", "payload", payload]);
      if (out.kind === "reply") {
        assert.equal(typeof out.reply, "string", `XADD: ${showReply(out.reply)}`);
        confirmed.set(payload, out.reply as string);
      } else if (out.kind === "unknown") uncertain.add(payload);
    }
  } finally {
    await client.close();
  }
}

/** What one consumer saw. */
interface ConsumerLog {
  /** IDs delivered by `>`, in the order received. */
  fresh: string[];
  /** IDs handed back from the consumer's PEL after a failover. */
  recovered: string[];
  /** IDs whose XACK answered 1. */
  acked: string[];
}

/**
 * A consumer of group `g`: reads `>` in batches and acknowledges each entry; after its
 * connection failed (a new replica), it first reads its own pending entries (ID 0) and
 * acknowledges those. Stops once `done()` and nothing is new or pending.
 */
async function consume(
  cluster: TestCluster,
  name: string,
  start: number,
  done: () => boolean,
): Promise<ConsumerLog> {
  const log: ConsumerLog = { fresh: [], recovered: [], acked: [] };
  const client = new FailoverClient({
    ports: cluster.ids.map((id) => cluster.clientPort(id)),
    start,
    name,
    note: (l) => cluster.note(l),
  });
  const deadline = performance.now() + RUN_DEADLINE_MS;
  let recoverNext = false;
  try {
    for (;;) {
      assert.ok(performance.now() < deadline, `${name}: not finished within the deadline`);
      const history = recoverNext;
      const finishing = done();
      const out = await client.call([
        "XREADGROUP",
        "GROUP",
        "g",
        name,
        "COUNT",
        "20",
        "STREAMS",
        "s",
        history ? "0" : ">",
      ]);
      if (out.kind !== "reply") {
        recoverNext = true; // the read may have moved entries into our PEL unseen
        continue;
      }
      const entries = entriesOf(out.reply);
      recoverNext = false;
      for (const [id] of entries) (history ? log.recovered : log.fresh).push(id);
      for (const [id] of entries) {
        const ack = await client.call(["XACK", "s", "g", id]);
        if (ack.kind !== "reply") {
          recoverNext = true; // unacknowledged ones come back from the PEL
          break;
        }
        assert.ok(typeof ack.reply === "number", `XACK: ${showReply(ack.reply)}`);
        if (ack.reply === 1) log.acked.push(id);
      }
      if (entries.length === 0 && !history && finishing) {
        // One last look at our own PEL before stopping.
        const rest = await client.call(["XREADGROUP", "GROUP", "g", name, "STREAMS", "s", "0"]);
        if (rest.kind === "reply" && entriesOf(rest.reply).length === 0) break;
        recoverNext = true;
      }
    }
  } finally {
    await client.close();
  }
  return log;
}

/** A read on replica `id` (in the order there). */
function on(cluster: TestCluster, id: number, argv: ByteString[]): Promise<RespValue> {
  return respCall(cluster.clientPort(id), argv, 10_000);
}

Deno.test({
  name: "e2e streams: a consumer group across replicas survives kill -9 of a consumer's replica",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await withCluster({ replicas: 3, extraArgs: EXTRA_ARGS }, async (cluster) => {
      assert.equal(await on(cluster, 1, ["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]), "OK");
      const confirmed = new Map<string, string>();
      const uncertain = new Set<string>();
      let producing = 3;
      const producers = [0, 1, 2].map((i) =>
        produce(cluster, i, confirmed, uncertain).finally(() => producing--)
      );
      // Consumer "c2" reads from replica 2 (the victim), "c3" from replica 3.
      const victim = 2;
      const consumers = [
        consume(cluster, "c2", 1, () => producing === 0),
        consume(cluster, "c3", 2, () => producing === 0),
      ];
      await waitFor(() => confirmed.size >= PER_PRODUCER, {
        timeoutMs: 60_000,
        message: "a third of the entries to be added",
      });
      assert.equal((await cluster.kill(victim, "SIGKILL")).signal, "SIGKILL");
      await Promise.all(producers);
      const logs = await Promise.all(consumers);
      await cluster.restart(victim);
      await cluster.waitForView({ ids: cluster.ids, timeoutMs: 30_000 });
      await cluster.waitForAgreement({ timeoutMs: 30_000 });

      // XRANGE is identical on every replica, the restarted one included.
      const ranges = await Promise.all(
        cluster.ids.map((id) => on(cluster, id, ["XRANGE", "s", "-", "+"])),
      );
      for (const r of ranges) assert.deepEqual(r, ranges[0]);
      const stream = ranges[0] as Entry[];
      const ids = stream.map(([id]) => id);
      cluster.note(
        `streams: ${stream.length} entries (${confirmed.size} confirmed, ${uncertain.size} ` +
          `uncertain); c2 ${logs[0].fresh.length} fresh + ${logs[0].recovered.length} recovered, ` +
          `c3 ${logs[1].fresh.length} fresh + ${logs[1].recovered.length} recovered`,
      );
      // Every confirmed entry is there once, with its ID; uncertain ones at most once.
      const byPayload = new Map<string, string[]>();
      for (const [id, fields] of stream) {
        byPayload.set(fields[1], [...(byPayload.get(fields[1]) ?? []), id]);
      }
      for (const [payload, id] of confirmed) {
        assert.deepEqual(byPayload.get(payload), [id], payload);
      }
      for (const [payload, at] of byPayload) {
        assert.equal(at.length, 1, `${payload} added twice`);
        assert.ok(confirmed.has(payload) || uncertain.has(payload), `${payload} never sent`);
      }
      assert.ok(stream.length >= 3 * PER_PRODUCER - uncertain.size);
      // Strictly increasing IDs.
      for (let i = 1; i < ids.length; i++) assert.ok(cmp(ids[i - 1], ids[i]) < 0, ids[i]);

      // Each consumer's new deliveries follow the stream's order, and no entry went to both.
      const owner = new Map<string, string>();
      for (const [name, log] of [["c2", logs[0]], ["c3", logs[1]]] as const) {
        for (let i = 1; i < log.fresh.length; i++) {
          assert.ok(cmp(log.fresh[i - 1], log.fresh[i]) < 0, `${name}: out of order`);
        }
        for (const id of log.fresh) {
          assert.equal(owner.get(id), undefined, `${id} delivered to two consumers`);
          owner.set(id, name);
        }
      }
      // Every entry reached a consumer (new, or back from its PEL after a lost reply), and was
      // acknowledged once: no ID answered XACK 1 twice, and nothing is pending anywhere.
      const delivered = new Set([...logs.flatMap((l) => [...l.fresh, ...l.recovered])]);
      for (const id of ids) assert.ok(delivered.has(id), `${id} never delivered`);
      const acked = logs.flatMap((l) => l.acked);
      assert.equal(new Set(acked).size, acked.length, "an entry was acknowledged twice");
      for (const id of cluster.ids) {
        assert.deepEqual(await on(cluster, id, ["XPENDING", "s", "g"]), [0, null, null, null]);
        const [group] = await on(cluster, id, ["XINFO", "GROUPS", "s"]) as RespValue[][];
        assert.equal(group[7], ids[ids.length - 1], "the group's last delivered ID");
      }
      assert.ok(logs[0].fresh.length > 0 && logs[1].fresh.length > 0, "both consumers read");

      // Pending entries survive kill -9 and restart.
      for (let i = 0; i < 5; i++) await on(cluster, 1, ["XADD", "s", "*", "payload", `late-${i}`]);
      const read = entriesOf(
        await on(cluster, 1, ["XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s", ">"]),
      );
      assert.equal(read.length, 5);
      const pel = (r: RespValue) => (r as RespValue[][]).map((e) => [e[0], e[1], e[3]]);
      const before = pel(await on(cluster, 1, ["XPENDING", "s", "g", "-", "+", "100"]));
      assert.deepEqual(before.map((e) => e[0]), read.map((e) => e[0]));
      await cluster.kill(1, "SIGKILL");
      await cluster.waitForView({ ids: [2, 3], timeoutMs: 30_000 });
      assert.deepEqual(pel(await on(cluster, 3, ["XPENDING", "s", "g", "-", "+", "100"])), before);
      await cluster.restart(1);
      await cluster.waitForView({ ids: cluster.ids, timeoutMs: 30_000 });
      await cluster.waitForAgreement({ timeoutMs: 30_000 });
      assert.deepEqual(pel(await on(cluster, 1, ["XPENDING", "s", "g", "-", "+", "100"])), before);
      const again = entriesOf(
        await on(cluster, 1, ["XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s", "0"]),
      );
      assert.deepEqual(again, read);
      const ack = await on(cluster, 1, ["XACK", "s", "g", ...read.map((e) => e[0])]);
      assert.equal(ack, 5);
    });
  },
});

/** Compares two `ms-seq` IDs. */
function cmp(a: string, b: string): number {
  const [am, as] = a.split("-").map(BigInt);
  const [bm, bs] = b.split("-").map(BigInt);
  return am !== bm ? (am < bm ? -1 : 1) : as === bs ? 0 : as < bs ? -1 : 1;
}

Deno.test({
  name: "e2e streams: blocked XREAD and XREADGROUP on one replica are woken by XADD on another",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await withCluster({ replicas: 3, extraArgs: EXTRA_ARGS }, async (cluster) => {
      assert.equal(await on(cluster, 1, ["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]), "OK");
      const reader = await RespTestClient.connect(cluster.clientPort(2));
      const c1 = await RespTestClient.connect(cluster.clientPort(1));
      const c2 = await RespTestClient.connect(cluster.clientPort(2));
      try {
        // A timeout with nothing to read answers a null array.
        assert.equal(await reader.call(["XREAD", "BLOCK", "50", "STREAMS", "nokey", "$"]), null);
        // `$` is the stream's last ID when the read takes its place in the order: entries added
        // from then on wake it. Add entries (bounded) until it answers with one of them.
        const read = reader.call(["XREAD", "BLOCK", "0", "STREAMS", "w", "$"], 20_000);
        let answered: RespValue | undefined;
        read.then((r) => (answered = r));
        const added: RespValue[] = [];
        await waitFor(async () => {
          added.push(await on(cluster, 3, ["XADD", "w", "*", "n", String(added.length)]));
          return answered !== undefined;
        }, { timeoutMs: 15_000, message: "the blocked XREAD to answer" });
        const [[key, [[wid, fields]]]] = answered as [string, Entry[]][];
        assert.equal(key, "w");
        const at = added.indexOf(wid);
        assert.ok(at >= 0, `XREAD answered ${wid}, not an added entry`);
        assert.deepEqual(fields, ["n", String(at)]);

        const group = ["XREADGROUP", "GROUP", "g"];
        const tail = ["BLOCK", "0", "STREAMS", "s", ">"];
        const got1 = c1.call([...group, "c1", ...tail], 20_000);
        const got2 = c2.call([...group, "c2", ...tail], 20_000);
        // The first XADD wakes exactly one consumer, the second one the other.
        const id1 = await on(cluster, 3, ["XADD", "s", "*", "n", "1"]);
        const first = await Promise.race([got1.then(() => 1), got2.then(() => 2)]);
        const id2 = await on(cluster, 3, ["XADD", "s", "*", "n", "2"]);
        const [r1, r2] = await Promise.all([got1, got2]);
        const byConsumer = first === 1 ? [r1, r2] : [r2, r1];
        assert.deepEqual(byConsumer[0], [["s", [[id1, ["n", "1"]]]]]);
        assert.deepEqual(byConsumer[1], [["s", [[id2, ["n", "2"]]]]]);
        await cluster.waitForAgreement({ timeoutMs: 15_000 });
        const pending = await Promise.all(
          cluster.ids.map((id) => on(cluster, id, ["XPENDING", "s", "g"])),
        );
        for (const p of pending) {
          assert.deepEqual(p, [2, id1, id2, [["c1", "1"], ["c2", "1"]]]);
        }
      } finally {
        await Promise.all([reader.close(), c1.close(), c2.close()]);
      }
    });
  },
});
