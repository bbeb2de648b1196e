/**
 * End to end: one replica's host clock is minutes off ("Redis data model", Proof). Replica 3 runs
 * with `--clock-offset-ms` (it stamps the operations it receives with its wall clock plus the
 * offset). Expiry uses ordered time: the state machine's time is the largest stamp along the
 * order, so it never goes back, and every replica applies every write at the same time; reads
 * compare TTLs with max(ordered time, local clock).
 *
 * What that promises, and what is checked here:
 * - **No divergence.** Writes with expiry through every replica (SET with PX/EX, EXPIRE, SET XX
 *   KEEPTTL, INCR) leave every replica with the same digest at the same delivered index.
 * - **A TTL is never outlived by more than the skew.** A key's expiry time is the ordered time at
 *   its write plus its TTL, and the ordered time is at most the real time plus the largest skew
 *   ahead; so a lock `SET lock a NX PX 3000` taken through replica 1 is gone, at every replica,
 *   by 3 s + the skew. It may be gone earlier (a replica ahead pushes the ordered time on), which
 *   is allowed. With replica 3 five minutes ahead and serving writes, the ordered time runs five
 *   minutes ahead at the real pace, so the lock is gone after its 3 s (checked). With replica 3
 *   ahead and idle, the ordered time stands still until the real time catches up with it: that is
 *   the worst case, checked with a skew of {@link SMALL_SKEW_MS} (five minutes would not fit a
 *   test).
 * - **Expired keys are removed by the background sweep** (DBSIZE, which counts expired keys not yet
 *   removed, drops to the number of keys without a TTL) though no write touches them.
 * - **A clock behind changes nothing.** With replica 3 five minutes behind, its writes never make
 *   the ordered time go back: a key set through replica 1 with PX 1500 is gone after its 1.5 s
 *   while replica 3 keeps writing; TTLs set through replica 3 are not longer than asked.
 *
 * "Gone in time" is measured by polling every replica with a deadline, from the call of the SET
 * that set the TTL; a lateness above {@link LATE_MARGIN_MS} (scheduling on a busy machine) fails.
 * The seed of the random write mix is printed; `LAMPORTKV_SEED=<seed>` replays it.
 *
 * Sanitizers: off, because the replica child processes and their output pipes outlive single
 * async ops by design (the harness awaits them all in `stop()`).
 *
 * @module
 */
import assert from "node:assert/strict";
import { workloadSeed } from "../support/history.ts";
import { Prng } from "../support/prng.ts";
import { respCall, RespTestClient, type TestCluster, withCluster } from "../support/cluster.ts";
import { showReply } from "../support/failover_client.ts";
import type { RespValue } from "../../src/net/resp.ts";

const FIVE_MINUTES_MS = 5 * 60_000;
const SMALL_SKEW_MS = 2000;
/** Lateness tolerated when checking that a key is gone in time (polling, scheduling). */
const LATE_MARGIN_MS = 1000;
/** Operations each writer sends in the write phase. */
const WRITES_PER_REPLICA = 120;
const LOCK_TTL_MS = 3000;

/** A cluster whose replica 3 has its clock shifted by `offsetMs`. */
function skewed<T>(offsetMs: number, body: (cluster: TestCluster) => Promise<T>): Promise<T> {
  return withCluster({
    replicas: 3,
    replicaArgs: { 3: [`--clock-offset-ms=${offsetMs}`] },
  }, body);
}

async function call(port: number, argv: string[]): Promise<RespValue> {
  return await respCall(port, argv, 5000);
}

function expectOk(reply: RespValue, what: string): void {
  assert.equal(reply, "OK", `${what} answered ${showReply(reply)}`);
}

/**
 * Writes with expiry through every replica at once: one writer per replica, a seeded random mix.
 * Keys `keep:*` never get a TTL; keys `ttl:*` always end with one of at most 1.5 s. Returns the
 * number of `keep:*` keys written.
 */
async function writeWithExpiry(cluster: TestCluster, rng: Prng): Promise<number> {
  const keep = new Set<string>();
  const writer = async (id: number, rng: Prng) => {
    const c = await RespTestClient.connect(cluster.clientPort(id));
    try {
      const send = async (argv: string[]) => {
        const reply = await c.call(argv, 5000);
        return { reply, what: `${argv.join(" ")} through replica ${id}` };
      };
      for (let i = 0; i < WRITES_PER_REPLICA; i++) {
        const key = `ttl:${id}:${i}`;
        switch (rng.int(0, 5)) {
          case 0: {
            const { reply, what } = await send(["SET", `keep:${id}:${i}`, "v"]);
            expectOk(reply, what);
            keep.add(`keep:${id}:${i}`);
            break;
          }
          case 1: {
            const { reply, what } = await send(["SET", key, "v", "PX", String(rng.int(100, 1500))]);
            expectOk(reply, what);
            break;
          }
          case 2: {
            const { reply, what } = await send(["SET", key, "v", "EX", "1"]);
            expectOk(reply, what);
            break;
          }
          case 3: {
            const set = await send(["SET", key, "v"]);
            expectOk(set.reply, set.what);
            const exp = await send(
              rng.chance(0.5) ? ["EXPIRE", key, "1"] : ["PEXPIRE", key, String(rng.int(100, 1500))],
            );
            assert.equal(exp.reply, 1, `${exp.what} answered ${showReply(exp.reply)}`);
            break;
          }
          case 4: {
            const { reply, what } = await send(["INCR", `keep:counter:${id}`]);
            assert.equal(typeof reply, "number", `${what} answered ${showReply(reply)}`);
            keep.add(`keep:counter:${id}`);
            break;
          }
          default: {
            const set = await send(["SET", key, "v1", "PX", String(rng.int(100, 1500))]);
            expectOk(set.reply, set.what);
            // XX: if it expired meanwhile (a replica ahead moves the time on), create nothing.
            const again = await send(["SET", key, "v2", "XX", "KEEPTTL"]);
            assert.ok(
              again.reply === "OK" || again.reply === null,
              `${again.what} answered ${showReply(again.reply)}`,
            );
          }
        }
      }
    } finally {
      await c.close();
    }
  };
  await Promise.all(cluster.ids.map((id) => writer(id, new Prng(rng.int(0, 2 ** 32 - 1)))));
  cluster.note(`skew: ${WRITES_PER_REPLICA} writes through each replica, ${keep.size} kept keys`);
  return keep.size;
}

/** Writes through replica `id` continuously (INCR keep:tick) until stopped. */
class Ticker {
  #stopped = false;
  readonly #done: Promise<void>;
  ticks = 0;

  constructor(cluster: TestCluster, id: number) {
    this.#done = (async () => {
      const c = await RespTestClient.connect(cluster.clientPort(id));
      try {
        for (let i = 0; i < 100_000 && !this.#stopped; i++) {
          const reply = await c.call(["INCR", "keep:tick"], 5000);
          assert.equal(typeof reply, "number", `INCR keep:tick answered ${showReply(reply)}`);
          this.ticks++;
        }
      } finally {
        await c.close();
      }
    })();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#done;
  }
}

/**
 * Polls every replica until `key` is gone at all of them; returns the ms from `since` (the call of
 * the write that gave it its TTL) until then. Fails after `deadlineMs` from `since`.
 */
async function goneEverywhere(
  cluster: TestCluster,
  key: string,
  since: number,
  deadlineMs: number,
): Promise<number> {
  const left = since + deadlineMs - performance.now();
  let last = "";
  await cluster.waitFor(async () => {
    const replies = await Promise.all(
      cluster.ids.map((id) => call(cluster.clientPort(id), ["GET", key])),
    );
    last = cluster.ids.map((id, i) => `${id}: ${showReply(replies[i])}`).join(", ");
    return replies.every((r) => r === null);
  }, {
    timeoutMs: Math.max(1, left),
    intervalMs: 20,
    message: `${key} to be gone at every replica within ${deadlineMs} ms of its write`,
  }).catch((err) => {
    throw new Error(`${err.message}; last GET ${key}: ${last}`);
  });
  return performance.now() - since;
}

/** Waits until every replica's DBSIZE is `keys` (expired keys swept); returns how long it took. */
async function sweptEverywhere(cluster: TestCluster, keys: number): Promise<number> {
  const t = performance.now();
  let last = "";
  await cluster.waitFor(async () => {
    const sizes = await Promise.all(
      cluster.ids.map((id) => call(cluster.clientPort(id), ["DBSIZE"])),
    );
    last = cluster.ids.map((id, i) => `${id}: ${showReply(sizes[i])}`).join(", ");
    return sizes.every((s) => s === keys);
  }, {
    timeoutMs: 10_000,
    intervalMs: 50,
    message: `every replica's DBSIZE to drop to ${keys} (the keys without a TTL)`,
  }).catch((err) => {
    throw new Error(`${err.message}; last DBSIZE: ${last}`);
  });
  return performance.now() - t;
}

/** A TTL read through replica `id`, in ms (PTTL). */
async function pttl(cluster: TestCluster, id: number, key: string): Promise<number> {
  const reply = await call(cluster.clientPort(id), ["PTTL", key]);
  assert.equal(typeof reply, "number", `PTTL ${key} through replica ${id}: ${showReply(reply)}`);
  return reply as number;
}

function seedOf(name: string): Prng {
  const seed = workloadSeed();
  console.log(`${name} seed: ${seed} (replay with LAMPORTKV_SEED=${seed})`);
  return new Prng(seed);
}

Deno.test({
  name: "e2e clock skew: a replica 5 minutes ahead: no divergence, TTLs not outlived, swept",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const rng = seedOf("clock_skew (ahead)");
    const t0 = performance.now();
    await skewed(FIVE_MINUTES_MS, async (cluster) => {
      const kept = await writeWithExpiry(cluster, rng);
      const agreed = await cluster.waitForAgreement();
      cluster.note(`after the writes: delivered ${agreed.delivered}, digest ${agreed.digest}`);

      // Replica 3 keeps serving writes (the ordered time runs 5 minutes ahead, at the real pace).
      const ticker = new Ticker(cluster, 3);
      try {
        const lockCall = performance.now();
        expectOk(
          await call(cluster.clientPort(1), ["SET", "lock", "a", "NX", "PX", String(LOCK_TTL_MS)]),
          "SET lock a NX PX through replica 1",
        );
        const gone = await goneEverywhere(cluster, "lock", lockCall, LOCK_TTL_MS + LATE_MARGIN_MS);
        console.log(
          `skew ahead: the ${LOCK_TTL_MS} ms lock was gone everywhere after ${Math.round(gone)} ms`,
        );

        // Every key with a TTL is swept, though no write touches it (+1: keep:tick).
        const swept = await sweptEverywhere(cluster, kept + 1);
        console.log(`skew ahead: expired keys swept within ${Math.round(swept)} ms`);
      } finally {
        await ticker.stop();
      }
      assert.ok(ticker.ticks > 0);
      const final = await cluster.waitForAgreement();
      cluster.note(`at the end: delivered ${final.delivered}, digest ${final.digest}`);
    });
    console.log(`clock skew (ahead) took ${Math.round(performance.now() - t0)} ms`);
  },
});

Deno.test({
  name: "e2e clock skew: a replica ahead and idle: a lock outlives its TTL by the skew at most",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const t0 = performance.now();
    await skewed(SMALL_SKEW_MS, async (cluster) => {
      // One write through replica 3 moves the ordered time SMALL_SKEW_MS ahead; then it is idle.
      expectOk(await call(cluster.clientPort(3), ["SET", "keep:x", "1"]), "SET through replica 3");
      const lockCall = performance.now();
      expectOk(
        await call(cluster.clientPort(1), ["SET", "lock", "a", "NX", "PX", String(LOCK_TTL_MS)]),
        "SET lock a NX PX through replica 1",
      );
      const gone = await goneEverywhere(
        cluster,
        "lock",
        lockCall,
        LOCK_TTL_MS + SMALL_SKEW_MS + LATE_MARGIN_MS,
      );
      console.log(
        `skew ahead, idle: the ${LOCK_TTL_MS} ms lock was gone everywhere after ` +
          `${Math.round(gone)} ms (skew ${SMALL_SKEW_MS} ms)`,
      );
      await sweptEverywhere(cluster, 1);
      await cluster.waitForAgreement();
    });
    console.log(`clock skew (ahead, idle) took ${Math.round(performance.now() - t0)} ms`);
  },
});

Deno.test({
  name: "e2e clock skew: a replica 5 minutes behind does not move the ordered time back",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const rng = seedOf("clock_skew (behind)");
    const t0 = performance.now();
    await skewed(-FIVE_MINUTES_MS, async (cluster) => {
      const kept = await writeWithExpiry(cluster, rng);
      const agreed = await cluster.waitForAgreement();
      cluster.note(`after the writes: delivered ${agreed.delivered}, digest ${agreed.digest}`);

      const ticker = new Ticker(cluster, 3); // replica 3 keeps writing, stamping 5 minutes ago
      try {
        // A TTL set through replica 1, read through every replica: never longer than asked.
        const setCall = performance.now();
        expectOk(await call(cluster.clientPort(1), ["SET", "k1", "v", "PX", "1500"]), "SET k1");
        for (const id of cluster.ids) {
          const ms = await pttl(cluster, id, "k1");
          assert.ok(ms > 0 && ms <= 1500, `PTTL k1 through replica ${id}: ${ms}`);
        }
        // TTLs set through replica 3 (its stamps are 5 minutes old): not longer than asked.
        const setCall3 = performance.now();
        expectOk(await call(cluster.clientPort(3), ["SET", "k3", "v", "PX", "1500"]), "SET k3");
        expectOk(await call(cluster.clientPort(1), ["SET", "e3", "v"]), "SET e3");
        const expire3 = performance.now();
        assert.equal(await call(cluster.clientPort(3), ["PEXPIRE", "e3", "1500"]), 1);
        for (const id of cluster.ids) {
          for (const key of ["k3", "e3"]) {
            const ms = await pttl(cluster, id, key);
            assert.ok(
              ms <= 1500,
              `PTTL ${key} through replica ${id}: ${ms} (set through replica 3)`,
            );
          }
        }
        const gone1 = await goneEverywhere(cluster, "k1", setCall, 1500 + LATE_MARGIN_MS);
        const gone3 = await goneEverywhere(cluster, "k3", setCall3, 1500 + LATE_MARGIN_MS);
        const goneE = await goneEverywhere(cluster, "e3", expire3, 1500 + LATE_MARGIN_MS);
        console.log(
          `skew behind: 1500 ms TTLs gone everywhere after ${Math.round(gone1)} ms (set through ` +
            `replica 1), ${Math.round(gone3)} and ${Math.round(goneE)} ms (through replica 3)`,
        );
        const swept = await sweptEverywhere(cluster, kept + 1);
        console.log(`skew behind: expired keys swept within ${Math.round(swept)} ms`);
      } finally {
        await ticker.stop();
      }
      const final = await cluster.waitForAgreement();
      cluster.note(`at the end: delivered ${final.delivered}, digest ${final.digest}`);
    });
    console.log(`clock skew (behind) took ${Math.round(performance.now() - t0)} ms`);
  },
});
