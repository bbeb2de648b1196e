/**
 * End to end under stop faults: real replica processes crash (SIGKILL), hang (SIGSTOP) and come
 * back while concurrent clients keep working. The history stays linearizable, the majority keeps
 * serving once it has formed a view without the lost replica, and the replica that comes back is
 * taken into a view again and ends with the same delivered index and digest. Also: a replica left
 * without a majority never acknowledges; a paused replica that wakes up never serves a stale read;
 * after every replica is SIGKILLed at once and restarted, no acknowledged write is lost.
 *
 * Clients fail over to the next replica on a timeout, a lost connection or NOQUORUM. Replicas run
 * with `--failure-timeout 500` so that views change quickly. Set `LAMPORTKV_SEED` to replay.
 *
 * Sanitizers: off, because the replica child processes and their output pipes outlive single
 * async ops by design (the harness awaits them all in `stop()`).
 *
 * @module
 */
import assert from "node:assert/strict";
import { checkLinearizable } from "../support/linearizability.ts";
import { HistoryRecorder, runWorkload, workloadSeed } from "../support/history.ts";
import { Prng } from "../support/prng.ts";
import { respCall, RespTestClient, type TestCluster, withCluster } from "../support/cluster.ts";
import { encodeCommand, RespError } from "../../src/net/resp.ts";

const CLIENTS = 6;
const KEYS = ["a", "b", "c"];
/** Hard cap of a workload; the tests stop it earlier, once their fault sequence is done. */
const RUN_CAP_MS = 30_000;
const EXTRA_ARGS = ["--failure-timeout", "500"];

/** A workload running in the background on `cluster`. */
class BackgroundWorkload {
  readonly history = new HistoryRecorder();
  readonly #done: Promise<unknown>;
  #stopped = false;
  /** A client that failed outright (not an operation error): stops the waits at once. */
  #failure: unknown = undefined;

  constructor(readonly cluster: TestCluster, seed: number) {
    this.#done = runWorkload({
      replicas: cluster.ids.map((id) => ({ id, port: cluster.clientPort(id) })),
      clients: CLIENTS,
      keys: KEYS,
      rng: new Prng(seed),
      runMs: RUN_CAP_MS,
      maxOpsPerClient: 1_000_000,
      opTimeoutMs: 3000,
      failover: true,
      history: this.history,
      stop: () => this.#stopped,
      note: (line) => cluster.note(line),
    }).catch((err) => {
      this.#failure = err;
      this.#stopped = true;
    });
  }

  /** Waits until `n` more ops than now have completed with a result. */
  async progress(n: number, what: string): Promise<void> {
    const target = this.history.counts().done + n;
    await this.cluster.waitFor(() => this.history.counts().done >= target, {
      timeoutMs: 15_000,
      message: `${n} more completed ops ${what}`,
      giveUpIf: () =>
        this.#failure === undefined ? undefined : `the workload failed: ${this.#failure}`,
    });
    this.cluster.note(`workload: ${n} more ops completed ${what}`);
  }

  /** Stops starting ops and waits for the clients to finish (bounded by their op timeout). */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#done;
    if (this.#failure !== undefined) throw this.#failure;
  }
}

function assertLinearizable(history: HistoryRecorder, seed: number): void {
  const c = history.counts();
  console.log(`history: ${c.done} completed, ${c.unknown} unknown, ${c.failed} failed`);
  const verdict = checkLinearizable(history.ops());
  if (!verdict.ok) {
    assert.fail(`history not linearizable (seed ${seed}), key ${verdict.key}:\n${verdict.message}`);
  }
}

/** Runs `faults` under a background workload, then checks the history and agreement. */
async function underLoad(
  name: string,
  replicas: 3 | 5,
  faults: (cluster: TestCluster, workload: BackgroundWorkload) => Promise<void>,
): Promise<void> {
  const seed = workloadSeed();
  console.log(`${name} seed: ${seed} (replay with LAMPORTKV_SEED=${seed})`);
  await withCluster({ replicas, extraArgs: EXTRA_ARGS }, async (cluster) => {
    const workload = new BackgroundWorkload(cluster, seed);
    try {
      await workload.progress(100, "before any fault");
      await faults(cluster, workload);
    } finally {
      await workload.stop();
    }
    assertLinearizable(workload.history, seed);
    const { delivered } = await cluster.waitForAgreement({ timeoutMs: 15_000 });
    // Every completed write took a log index (reads are answered without one).
    assert.ok(delivered >= workload.history.writesDone());
  });
}

/**
 * SIGKILLs replica `victim` of a 3-replica cluster under load, waits for the others' view and for
 * progress in it, restarts the victim and waits for it to be back in the view and for progress.
 */
async function crashAndRejoin(
  cluster: TestCluster,
  workload: BackgroundWorkload,
  victim: number,
): Promise<void> {
  const others = cluster.ids.filter((id) => id !== victim);
  assert.equal((await cluster.kill(victim)).signal, "SIGKILL");
  await cluster.waitForView({ ids: others });
  await workload.progress(100, `in the view without replica ${victim}`);
  await cluster.restart(victim);
  await cluster.waitForView({ ids: cluster.ids });
  assert.equal(
    await respCall(cluster.clientPort(victim), ["SET", "rejoined", String(victim)], 10_000),
    "OK",
  );
  await workload.progress(100, `after replica ${victim} rejoined`);
}

Deno.test({
  name: "e2e faults: a replica crashes and restarts under load; linearizable, all agree",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await underLoad("crash", 3, (cluster, workload) => crashAndRejoin(cluster, workload, 3));
  },
});

Deno.test({
  name: "e2e faults: the coordinator crashes under load; a new one takes over; all agree",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    // Replica 1 is the lowest id in the newest view: it coordinates every view change, so its
    // crash makes replica 2 coordinate the next one.
    await underLoad(
      "coordinator crash",
      3,
      (cluster, workload) => crashAndRejoin(cluster, workload, 1),
    );
  },
});

Deno.test({
  name: "e2e faults: a replica hangs (SIGSTOP) and resumes under load; linearizable, all agree",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await underLoad("pause", 3, async (cluster, workload) => {
      cluster.pause(1); // the coordinator of the first view
      try {
        await cluster.waitForView({ ids: [2, 3] });
        await workload.progress(100, "in the view without replica 1");
      } finally {
        cluster.resume(1);
      }
      await cluster.waitForView({ ids: [1, 2, 3] });
      assert.equal(await respCall(cluster.clientPort(1), ["SET", "taken-back", "1"], 10_000), "OK");
      await workload.progress(100, "after replica 1 was taken back");
    });
  },
});

Deno.test({
  name: "e2e faults: 5 replicas, two crash at once; the other three serve; all five agree again",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await underLoad("crash 2 of 5", 5, async (cluster, workload) => {
      await Promise.all([cluster.kill(2), cluster.kill(5)]);
      await cluster.waitForView({ ids: [1, 3, 4] });
      await workload.progress(100, "in the view of replicas 1, 3, 4");
      await cluster.restart(2);
      await cluster.restart(5);
      await cluster.waitForView({ ids: [1, 2, 3, 4, 5] });
      await workload.progress(100, "after replicas 2 and 5 rejoined");
    });
  },
});

Deno.test({
  name: "e2e faults: a replica left alone never acknowledges; with a majority back it serves",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await withCluster({ replicas: 3, extraArgs: EXTRA_ARGS }, async (cluster) => {
      const port = cluster.clientPort(1);
      assert.equal(await respCall(port, ["SET", "kept", "before"], 10_000), "OK");
      await Promise.all([cluster.kill(2), cluster.kill(3)]);
      // Alone, replica 1 must not acknowledge a write nor answer a read: NOQUORUM (nothing
      // applied) or UNKNOWN (may be applied later), never OK or a value.
      const possible = new Set<string | null>(["before"]);
      for (const argv of [["SET", "kept", "alone"], ["GET", "kept"], ["DEL", "kept"]]) {
        const reply = await respCall(port, argv, 15_000);
        cluster.note(
          `alone: ${argv.join(" ")} -> ${
            reply instanceof RespError ? `-${reply.message}` : JSON.stringify(reply)
          }`,
        );
        assert.ok(
          reply instanceof RespError && (reply.code === "NOQUORUM" || reply.code === "UNKNOWN"),
          `${argv.join(" ")} on a replica without a majority got ${JSON.stringify(reply)}`,
        );
        if (reply.code === "UNKNOWN" && argv[0] === "SET") possible.add("alone");
        if (reply.code === "UNKNOWN" && argv[0] === "DEL") possible.add(null);
      }
      await cluster.restart(2);
      await cluster.waitForView({ ids: [1, 2] });
      // A NOQUORUM write was not applied; an UNKNOWN one may have been.
      const value = await respCall(cluster.clientPort(2), ["GET", "kept"], 10_000);
      assert.ok(
        (typeof value === "string" || value === null) && possible.has(value),
        `GET kept after the majority is back: ${JSON.stringify(value)}, expected one of ${
          JSON.stringify([...possible])
        }`,
      );
      cluster.note(`"kept" after the majority is back: ${JSON.stringify(value)}`);
      assert.equal(await respCall(port, ["SET", "after", "majority"], 10_000), "OK");
      await cluster.restart(3);
      await cluster.waitForView({ ids: [1, 2, 3] });
      assert.equal(await respCall(cluster.clientPort(3), ["GET", "after"], 10_000), "majority");
      await cluster.waitForAgreement();
    });
  },
});

Deno.test({
  name: "e2e faults: a paused replica that wakes up never answers from its old state",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await withCluster({ replicas: 3, extraArgs: EXTRA_ARGS }, async (cluster) => {
      assert.equal(await respCall(cluster.clientPort(1), ["SET", "k", "old"], 10_000), "OK");
      const early = await RespTestClient.connect(cluster.clientPort(1));
      try {
        cluster.pause(1);
        try {
          await cluster.waitForView({ ids: [2, 3] });
          assert.equal(await respCall(cluster.clientPort(2), ["SET", "k", "new"], 10_000), "OK");
          // Queued in replica 1's socket while it sleeps: read as soon as it wakes up.
          await early.write(encodeCommand(["GET", "k"]));
        } finally {
          cluster.resume(1);
        }
        const late = await respCall(cluster.clientPort(1), ["GET", "k"], 15_000);
        const queued = await early.next(15_000);
        for (const [what, reply] of [["queued GET", queued], ["GET after waking", late]] as const) {
          cluster.note(`${what}: ${reply instanceof RespError ? `-${reply.message}` : reply}`);
          assert.ok(
            reply === "new" ||
              (reply instanceof RespError && ["NOQUORUM", "UNKNOWN"].includes(reply.code)),
            `${what} on the replica that slept: ${JSON.stringify(reply)} (stale read?)`,
          );
        }
      } finally {
        await early.close();
      }
      await cluster.waitForView({ ids: [1, 2, 3] });
      assert.equal(await respCall(cluster.clientPort(1), ["GET", "k"], 10_000), "new");
      await cluster.waitForAgreement();
    });
  },
});

Deno.test({
  name: "e2e faults: every replica SIGKILLed at once and restarted; no acknowledged write lost",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await withCluster({ replicas: 3, extraArgs: EXTRA_ARGS }, async (cluster) => {
      const acked = new Map<string, string>();
      let stop = false;
      const writer = async (w: number) => {
        const c = await RespTestClient.connect(cluster.clientPort(cluster.ids[w % 3]));
        try {
          for (let i = 0; i < 100_000 && !stop; i++) {
            const key = `w${w}-${i}`;
            const value = `v${w}-${i}`;
            let reply;
            try {
              reply = await c.call(["SET", key, value], 5000);
            } catch {
              return; // the replica died under us: this write's outcome is unknown
            }
            if (reply !== "OK") return;
            acked.set(key, value);
          }
        } finally {
          await c.close();
        }
      };
      const writers = Promise.all(Array.from({ length: 6 }, (_, w) => writer(w)));
      try {
        await cluster.waitFor(() => acked.size >= 300, {
          timeoutMs: 15_000,
          message: "300 acknowledged writes",
        });
        // Kill them all while writes are in flight.
        await Promise.all(cluster.ids.map((id) => cluster.kill(id)));
      } finally {
        stop = true;
        await writers;
      }
      cluster.note(`${acked.size} writes acknowledged before the crash`);
      for (const id of cluster.ids) await cluster.restart(id);
      await cluster.waitForView({ ids: cluster.ids });
      for (const id of cluster.ids) {
        const c = await RespTestClient.connect(cluster.clientPort(id));
        try {
          for (const [key, value] of acked) {
            const got = await c.call(["GET", key], 10_000);
            assert.equal(got, value, `replica ${id} after the restart: ${key}`);
          }
        } finally {
          await c.close();
        }
      }
      await cluster.waitForAgreement({ minDelivered: acked.size });
    });
  },
});
