/**
 * End to end, the two liveness gaps of permanent faults (issue 13), with every replica's peer
 * port behind a fault proxy (`tests/support/fault_proxy.ts`):
 *
 * - 3 replicas, one direction of one link cut for good (1 → 3: replica 3 no longer hears 1, while
 *   1 hears 3 and 2 hears both): the cluster leaves one of the two ends out of its view, and
 *   writes keep completing once that is done.
 * - 5 replicas, a stable partition 2|3: the three serve, and the view number stops increasing.
 * - The same with a bridge: replica 2 of the minority still talks to replica 3 of the majority.
 *   Replica 2 hears a majority (1, 2 and 3) without being connected to one; before views were
 *   formed of connected replicas only, its proposals broke the majority's view up every 0.5-1 s.
 *
 * In both, once a majority is normal in a view without the cut-off replicas, a batch of writes
 * (with failover across every replica) completes and the view stays the same throughout: its
 * members are still normal in it, with the same number, after the batch. Replicas run with
 * `--failure-timeout 500`.
 *
 * Sanitizers: off, because the replica child processes, their output pipes and the proxies'
 * sockets outlive single async ops by design (the harness awaits them all in `stop()`).
 *
 * @module
 */
import assert from "node:assert/strict";
import { type TestCluster, waitFor, withCluster } from "../support/cluster.ts";
import { DROP, partition } from "../support/fault_proxy.ts";
import { FailoverClient, showReply } from "../support/failover_client.ts";

const EXTRA_ARGS = ["--failure-timeout", "500"];
/** Writes per batch (at least). */
const WRITES = 30;
/**
 * The second batch goes on at least this long (a window of several failure timeouts, in which
 * views that cycle would show; bounded by {@link MAX_WRITES}).
 */
const WATCH_MS = 4_000;
const MAX_WRITES = 5_000;
/** Deadline of one write, through failovers and a view change. */
const WRITE_DEADLINE_MS = 20_000;
/** Deadline for a majority view to form after the fault. */
const VIEW_DEADLINE_MS = 20_000;

/** A view and the replicas normal in it (every one of its members). */
interface Serving {
  view: number;
  members: number[];
}

/**
 * The view every member of which is normal in it, if some running replica is normal in a view
 * of `size` members that includes none of `without`; else null.
 */
async function servingView(
  cluster: TestCluster,
  size: number,
  without: (members: number[]) => boolean,
): Promise<Serving | null> {
  const infos = await Promise.all(
    cluster.ids.map((id) => cluster.info(id, 2000).catch(() => null)),
  );
  for (const info of infos) {
    if (info === null || info.state !== "normal") continue;
    const members = info.members.split(",").map(Number);
    if (members.length !== size || !without(members)) continue;
    const same = members.every((m) => {
      const other = infos[cluster.ids.indexOf(m)];
      return other !== null && other.state === "normal" && other.view === info.view &&
        other.members === info.members;
    });
    if (same) return { view: Number(info.view), members };
  }
  return null;
}

/** Waits (bounded) until {@link servingView} finds a view; returns it. */
async function waitForServing(
  cluster: TestCluster,
  size: number,
  without: (members: number[]) => boolean,
  what: string,
): Promise<Serving> {
  let found: Serving | null = null;
  await waitFor(async () => (found = await servingView(cluster, size, without)) !== null, {
    timeoutMs: VIEW_DEADLINE_MS,
    intervalMs: 100,
    message: what,
  });
  return found!;
}

/**
 * Writes `WRITES` distinct values (and more until `watchMs` passed) through a failover client over every replica; each must be
 * acknowledged (`OK`) within {@link WRITE_DEADLINE_MS}, retried as it fails over. Then reads
 * the last one back.
 */
async function writeBatch(cluster: TestCluster, batch: string, watchMs = 0): Promise<void> {
  const client = new FailoverClient({
    ports: cluster.ids.map((id) => cluster.clientPort(id)),
    start: 0,
    timeoutMs: 3000,
    note: (line) => cluster.note(line),
    name: `writer ${batch}`,
  });
  try {
    const start = performance.now();
    let i = 0;
    for (; i < MAX_WRITES && (i < WRITES || performance.now() - start < watchMs); i++) {
      const value = `${batch}-${i}`;
      const deadline = performance.now() + WRITE_DEADLINE_MS;
      let last = "";
      for (;;) {
        assert.ok(
          performance.now() < deadline,
          `write ${value} not acknowledged within ${WRITE_DEADLINE_MS} ms (last: ${last})`,
        );
        // The same SET again after an unknown outcome is harmless: it writes the same value.
        const outcome = await client.call(["SET", `key-${batch}`, value]);
        if (outcome.kind === "reply") {
          assert.equal(outcome.reply, "OK", `SET ${value}: ${showReply(outcome.reply)}`);
          break;
        }
        last = `${outcome.kind}: ${outcome.why}`;
      }
    }
    let read: string | undefined;
    for (let tries = 0; read === undefined && tries < 3 * cluster.ids.length; tries++) {
      const outcome = await client.call(["GET", `key-${batch}`]);
      if (outcome.kind === "reply") read = showReply(outcome.reply);
    }
    assert.equal(read, JSON.stringify(`${batch}-${i - 1}`), `read back of ${batch}`);
  } finally {
    await client.close();
  }
}

/**
 * The fault is in force: a majority view without the cut-off replicas forms, a batch of writes
 * completes, and a second batch leaves the view as it was (same number, members still normal).
 */
async function servesAndSettles(
  cluster: TestCluster,
  size: number,
  without: (members: number[]) => boolean,
  what: string,
): Promise<void> {
  await writeBatch(cluster, "first");
  const before = await waitForServing(cluster, size, without, what);
  cluster.note(`serving: view ${before.view} of ${before.members}`);
  await writeBatch(cluster, "second", WATCH_MS);
  const after = await servingView(cluster, size, without);
  assert.deepEqual(after, before, `the view changed while the fault stayed as it was`);
}

/**
 * Registers a test: a cluster of `replicas` with proxies, a batch of writes, then `fault` (kept
 * until the end), then {@link servesAndSettles} for a view of `size` replicas that `fits`.
 */
function livenessTest(
  name: string,
  replicas: 3 | 5,
  fault: (cluster: TestCluster) => void,
  expected: { size: number; fits: (members: number[]) => boolean; what: string },
): void {
  Deno.test({
    name: `e2e liveness: ${name}`,
    sanitizeOps: false,
    sanitizeResources: false,
    async fn() {
      await withCluster({ replicas, proxy: true, extraArgs: EXTRA_ARGS }, async (cluster) => {
        await writeBatch(cluster, "before");
        fault(cluster);
        await servesAndSettles(cluster, expected.size, expected.fits, expected.what);
      });
    },
  });
}

livenessTest("3 replicas, a link cut in one direction for good; writes go on", 3, (cluster) => {
  // 3 stops hearing 1; 1 still hears 3, and 2 hears both.
  cluster.network().setRule(1, 3, DROP);
  cluster.note("cut 1 -> 3 for good");
}, {
  size: 2,
  fits: (members) => !(members.includes(1) && members.includes(3)),
  what: "a view of 2 replicas without one end of the cut link",
});

/** The view the two partitions below leave: replicas 3, 4 and 5. */
const MAJORITY_SIDE = {
  size: 3,
  fits: (members: number[]) => !members.includes(1) && !members.includes(2),
  what: "a view of replicas 3, 4 and 5",
};

livenessTest(
  "5 replicas, a stable partition 2|3; the three serve, the views settle",
  5,
  (cluster) => {
    partition(cluster, [1, 2]);
    cluster.note("partition [1,2] | [3,4,5] for good");
  },
  MAJORITY_SIDE,
);

livenessTest("5 replicas, a stable partition 2|3 with a bridge; the views settle", 5, (cluster) => {
  const net = cluster.network();
  for (const a of [1, 2]) {
    for (const b of [3, 4, 5]) {
      if (a === 2 && b === 3) continue;
      net.setRule(a, b, DROP);
      net.setRule(b, a, DROP);
    }
  }
  cluster.note("partition [1,2] | [3,4,5] for good, but for the link 2 <-> 3");
}, MAJORITY_SIDE);
