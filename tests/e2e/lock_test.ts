/**
 * End to end: a lock service on real replica processes under kill -9 and SIGSTOP ("Redis data
 * model", Proof). Clients take one lock, Redis style, with a unique value per attempt and a TTL:
 *
 * ```text
 * SET lock <id> NX PX 2000                             acquire (nil: someone holds it; retry)
 * INCR fenced  (1 to 3 times)                          the work done while holding it
 * WATCH lock ; GET lock ; MULTI ; DEL lock ; EXEC      release, only if still ours
 * ```
 *
 * Each client has its own connection, they are spread over the three replicas and move on to the
 * next replica when theirs dies, hangs or answers NOQUORUM/UNKNOWN. While they run, one replica is
 * SIGKILLed and restarted and another SIGSTOPped for a few seconds and SIGCONTed.
 *
 * Judged from the history:
 * - **Mutual exclusion.** A client that got `OK` holds the lock from the acquire's reply until the
 *   earlier of the start of its release and `acquire.call + TTL` (it may not count on more: the
 *   lock expires TTL after the time its SET was stamped with, which is at or after the call). No
 *   two such intervals overlap. (Less {@link CLOCK_SLACK_MS}: replicas stamp operations with
 *   `Date.now()`, whole milliseconds, so a stamp may be up to 1 ms before the call as measured
 *   here with `performance.now()`.)
 * - **Fencing.** Every `INCR fenced` a holder completed inside its interval returned more than
 *   every one completed by holders whose intervals came before.
 * - **Linearizability** (`checkModelLinearizable`) of the lock's history and, separately (a
 *   history is linearizable iff each key's is), of the counter's. The model has no clock (every
 *   operation is applied at time 0), so the lock's history is modelled without TTLs:
 *   `SET lock <id> NX`, `GET lock`, `DEL lock` (a committed release, with DEL's reply), and, for
 *   every acquisition that may have succeeded and was not released by its holder, the lock's
 *   expiry as a `DEL lock` whose outcome is unknown, called at `acquire.call + TTL`.
 *
 *   Why that is sound (a correct run never fails the check): the lock taken by an acquisition
 *   expires at the first place in the order whose time reaches the SET's stamp + TTL, which is
 *   after real time `acquire.call + TTL` (stamps are taken after the call, and an operation's time
 *   never runs ahead of the real time it is applied at); from there on every operation finds the
 *   key gone, exactly as if a `DEL lock` had been applied there; an unknown-outcome operation may
 *   be placed anywhere after its call, or nowhere. A lock released by its holder (EXEC answered
 *   `[1]`) was deleted before it could expire, so it gets no such DEL. What the model gives away:
 *   its expiry DEL is unconditional and may be placed after a later holder's SET, so the model
 *   alone would accept some overlapping holders; the interval check above is what judges mutual
 *   exclusion exactly, the model check judges everything else (who got OK or nil, what GET saw,
 *   what DEL deleted).
 * - At the end every replica reports the same digest at the same delivered index.
 *
 * Bounded: at most {@link MAX_ROUNDS} acquisition attempts per client, no attempt starts after
 * {@link RUN_CAP_MS}, a command waits at most {@link OP_TIMEOUT_MS}, every wait has a deadline.
 * Replicas run with `--failure-timeout 500`. The seed (printed) drives the random choices;
 * `LAMPORTKV_SEED=<seed>` replays them.
 *
 * Sanitizers: off, because the replica child processes and their output pipes outlive single
 * async ops by design (the harness awaits them all in `stop()`).
 *
 * @module
 */
import assert from "node:assert/strict";
import { checkModelLinearizable, type ModelOp } from "../support/model_check.ts";
import { workloadSeed } from "../support/history.ts";
import { Prng } from "../support/prng.ts";
import { type TestCluster, withCluster } from "../support/cluster.ts";
import { type CallOutcome, FailoverClient, showReply } from "../support/failover_client.ts";

const CLIENTS = 5;
const TTL_MS = 2000;
/** See the module doc: the lease a client counts on ends this much before call + TTL. */
const CLOCK_SLACK_MS = 2;
const MAX_ROUNDS = 3000;
const RUN_CAP_MS = 25_000;
const OP_TIMEOUT_MS = 1500;
const PAUSE_MS = 3000;
const EXTRA_ARGS = ["--failure-timeout", "500"];

/** One acquisition attempt that may have taken the lock (`OK`, or an unknown outcome). */
interface Acquisition {
  client: number;
  id: string;
  call: number;
  /** The acquire's reply time; null when its outcome is unknown. */
  ret: number | null;
  /** When the holder began its release (it stopped counting on the lock); null if it did not. */
  releaseCall: number | null;
  /** The release's EXEC answered [1]: the holder itself deleted the lock. */
  released: boolean;
  /** Replies of the INCRs completed while holding: [call, ret, value]. */
  work: [number, number, number][];
}

/** The end of the time a holder counts on the lock. */
function leaseEnd(a: Acquisition): number {
  const expiry = a.call + TTL_MS - CLOCK_SLACK_MS;
  return a.releaseCall === null ? expiry : Math.min(a.releaseCall, expiry);
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

class LockService {
  /** The lock's history (SET NX, GET, DEL), for the model check. */
  readonly lockOps: ModelOp[] = [];
  /** The counter's history (INCR), for the model check. */
  readonly fencedOps: ModelOp[] = [];
  readonly acquisitions: Acquisition[] = [];
  readonly counts = { held: 0, busy: 0, unknown: 0, released: 0, lost: 0 };
  readonly #cluster: TestCluster;
  readonly #stopAt = performance.now() + RUN_CAP_MS;
  #stopped = false;
  #failure: unknown = undefined;
  #active = 0;
  readonly #done: Promise<void>;

  constructor(cluster: TestCluster, rng: Prng) {
    this.#cluster = cluster;
    const ports = cluster.ids.map((id) => cluster.clientPort(id));
    const clients: Promise<void>[] = [];
    for (let i = 0; i < CLIENTS; i++) {
      const client = new FailoverClient({
        ports,
        start: i,
        timeoutMs: OP_TIMEOUT_MS,
        name: `client ${i}`,
        note: (line) => cluster.note(line),
      });
      this.#active++;
      clients.push(
        this.#loop(i, client, new Prng(rng.int(0, 2 ** 32 - 1)))
          .finally(() => this.#active--)
          .catch((err) => {
            this.#failure ??= err;
            this.#stopped = true;
          })
          .finally(() => client.close()),
      );
    }
    this.#done = Promise.all(clients).then(() => {});
  }

  get #running(): boolean {
    return !this.#stopped && performance.now() < this.#stopAt;
  }

  #record(ops: ModelOp[], client: number, argv: string[], out: CallOutcome): void {
    if (out.kind === "failed") return; // not applied
    if (out.kind === "unknown") ops.push({ client, argv, call: out.call, ret: null });
    else ops.push({ client, argv, call: out.call, ret: out.ret, reply: out.reply });
  }

  async #loop(client: number, c: FailoverClient, rng: Prng): Promise<void> {
    for (let n = 0; n < MAX_ROUNDS && this.#running; n++) {
      const id = `c${client}-${n}`;
      const acquire = await c.call(["SET", "lock", id, "NX", "PX", String(TTL_MS)]);
      this.#record(this.lockOps, client, ["SET", "lock", id, "NX"], acquire);
      if (acquire.kind === "failed") continue;
      if (acquire.kind === "unknown") {
        // Maybe ours, maybe not: the client does not count on it (it expires by itself).
        this.counts.unknown++;
        this.acquisitions.push({
          client,
          id,
          call: acquire.call,
          ret: null,
          releaseCall: null,
          released: false,
          work: [],
        });
        continue;
      }
      if (acquire.reply === null) {
        this.counts.busy++;
        // Someone holds it: retry a little later (a client's pacing, not a wait for a condition).
        await delay(rng.int(2, 15));
        continue;
      }
      if (acquire.reply !== "OK") {
        throw new Error(`SET lock ${id} NX PX answered ${showReply(acquire.reply)}`);
      }
      this.counts.held++;
      const held: Acquisition = {
        client,
        id,
        call: acquire.call,
        ret: acquire.ret,
        releaseCall: null,
        released: false,
        work: [],
      };
      this.acquisitions.push(held);
      await this.#hold(client, c, held, rng.int(1, 3));
    }
  }

  /** Does the work while the lease lasts, then releases the lock if it is still ours. */
  async #hold(client: number, c: FailoverClient, held: Acquisition, jobs: number): Promise<void> {
    const expiry = held.call + TTL_MS - CLOCK_SLACK_MS;
    for (let j = 0; j < jobs && performance.now() < expiry; j++) {
      const incr = await c.call(["INCR", "fenced"]);
      this.#record(this.fencedOps, client, ["INCR", "fenced"], incr);
      if (incr.kind !== "reply") return; // the connection is gone; the lock will expire
      if (typeof incr.reply !== "number") {
        throw new Error(`INCR fenced answered ${showReply(incr.reply)}`);
      }
      held.work.push([incr.call, incr.ret, incr.reply]);
    }
    held.releaseCall = performance.now();
    const watch = await c.call(["WATCH", "lock"]);
    if (watch.kind !== "reply") return;
    expect(watch.reply, "OK", "WATCH lock");
    const get = await c.call(["GET", "lock"]);
    this.#record(this.lockOps, client, ["GET", "lock"], get);
    if (get.kind !== "reply") return;
    if (get.reply !== held.id) {
      // Expired (and maybe taken by someone else): not ours to delete.
      this.counts.lost++;
      const unwatch = await c.call(["UNWATCH"]);
      if (unwatch.kind === "reply") expect(unwatch.reply, "OK", "UNWATCH");
      return;
    }
    for (const [argv, want] of [[["MULTI"], "OK"], [["DEL", "lock"], "QUEUED"]] as const) {
      const r = await c.call([...argv]);
      if (r.kind !== "reply") return;
      expect(r.reply, want, argv[0]);
    }
    const exec = await c.call(["EXEC"]);
    if (exec.kind === "failed") return;
    if (exec.kind === "unknown") {
      this.lockOps.push({ client, argv: ["DEL", "lock"], call: exec.call, ret: null });
      return;
    }
    if (exec.reply === null) return; // the lock changed since WATCH (it expired): nothing done
    if (
      !Array.isArray(exec.reply) || exec.reply.length !== 1 || typeof exec.reply[0] !== "number"
    ) {
      throw new Error(`EXEC of a release answered ${showReply(exec.reply)}`);
    }
    const deleted = exec.reply[0];
    this.lockOps.push({
      client,
      argv: ["DEL", "lock"],
      call: exec.call,
      ret: exec.ret,
      reply: deleted,
    });
    if (deleted === 1) {
      held.released = true;
      this.counts.released++;
    }
  }

  #giveUp(): string | undefined {
    if (this.#failure !== undefined) return `a client failed: ${this.#failure}`;
    if (this.#active === 0) return "every client has made all its attempts";
    return this.#running ? undefined : "the run hit its time cap";
  }

  /** Waits until `n` more acquisitions than now have succeeded. */
  async progress(n: number, what: string): Promise<void> {
    const target = this.counts.held + n;
    await this.#cluster.waitFor(() => this.counts.held >= target, {
      timeoutMs: 15_000,
      message: `${n} more acquisitions of the lock ${what}`,
      giveUpIf: () => this.#giveUp(),
    });
    this.#cluster.note(`lock: ${n} more acquisitions ${what}`);
  }

  /** Lets the clients run for `ms` more. */
  async runFor(ms: number, what: string): Promise<void> {
    const until = performance.now() + ms;
    const before = this.counts.held;
    await this.#cluster.waitFor(() => performance.now() >= until, {
      timeoutMs: ms + 1000,
      message: `the clients to run for ${Math.round(ms)} ms ${what}`,
      giveUpIf: () => this.#giveUp(),
    });
    this.#cluster.note(`lock: ${this.counts.held - before} acquisitions ${what}`);
  }

  /** Stops starting attempts and waits for the clients (bounded by the command timeout). */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#done;
    if (this.#failure !== undefined) throw this.#failure;
  }
}

function expect(reply: unknown, want: string, what: string): void {
  if (reply !== want) {
    throw new Error(`${what} answered ${JSON.stringify(reply)}, expected ${want}`);
  }
}

function show(a: Acquisition): string {
  const f = (t: number | null) => (t === null ? "?" : t.toFixed(1));
  return `client ${a.client} ${a.id}: acquire [${f(a.call)}, ${f(a.ret)}], holds until ` +
    `${f(leaseEnd(a))} (release began ${f(a.releaseCall)}, released ${a.released})`;
}

/** No two holders at once: the holders' intervals, sorted by start, do not overlap. */
function assertMutualExclusion(acquisitions: readonly Acquisition[], seed: number): void {
  const holders = acquisitions.filter((a) => a.ret !== null).sort((a, b) => a.ret! - b.ret!);
  for (let i = 1; i < holders.length; i++) {
    const prev = holders[i - 1];
    const cur = holders[i];
    if (cur.ret! < leaseEnd(prev)) {
      assert.fail(
        `two holders of the lock at once (seed ${seed}):\n  ${show(prev)}\n  ${show(cur)}`,
      );
    }
  }
}

/** Work done inside successive holders' intervals is ordered: their INCR replies increase. */
function assertFencing(acquisitions: readonly Acquisition[], seed: number): void {
  const holders = acquisitions.filter((a) => a.ret !== null).sort((a, b) => a.ret! - b.ret!);
  let maxBefore = -Infinity;
  let maxBy: Acquisition | undefined;
  for (const a of holders) {
    const inside = a.work.filter(([, ret]) => ret <= leaseEnd(a)).map(([, , v]) => v);
    if (inside.length === 0) continue;
    const lo = Math.min(...inside);
    if (lo <= maxBefore) {
      assert.fail(
        `INCR fenced under the lock went back (seed ${seed}): ${lo} by ${show(a)}, after ` +
          `${maxBefore} by ${maxBy === undefined ? "?" : show(maxBy)}`,
      );
    }
    maxBefore = Math.max(...inside);
    maxBy = a;
  }
}

function assertModel(name: string, ops: readonly ModelOp[], seed: number): void {
  const t = performance.now();
  const verdict = checkModelLinearizable(ops);
  console.log(
    `lock: model check of the ${name} (${ops.length} operations): ` +
      `${verdict.ok ? "ok" : "FAILED"} (${verdict.steps} steps, ${
        Math.round(performance.now() - t)
      } ms)`,
  );
  if (!verdict.ok) {
    assert.fail(`the ${name}'s history is not linearizable (seed ${seed}):\n${verdict.message}`);
  }
}

/**
 * The lock's check has teeth: in a prefix of the history, one acquisition that found the lock
 * taken (before any lock could expire) turned into a success is rejected.
 */
function assertCheckHasTeeth(lockOps: readonly ModelOp[], expiries: readonly ModelOp[]): void {
  const firstExpiry = Math.min(...expiries.map((e) => e.call));
  const sorted = [...lockOps].sort((a, b) => a.call - b.call);
  const at = sorted.findIndex((o) =>
    o.argv[0] === "SET" && o.ret !== null && o.ret < firstExpiry && o.reply === null
  );
  assert.ok(at >= 0, "no SET NX found the lock taken before the first expiry: nothing to mutate");
  const busy = sorted[at];
  const prefix = sorted.slice(0, Math.max(400, at + 1));
  const bad = prefix.map((o) => (o === busy ? { ...o, reply: "OK" } : o));
  const verdict = checkModelLinearizable(bad, 500_000);
  assert.ok(
    !verdict.ok && verdict.message.startsWith("not linearizable"),
    `the checker accepted a second holder (${busy.argv.join(" ")} -> OK): ` +
      (verdict.ok ? "accepted" : verdict.message),
  );
}

Deno.test({
  name: "e2e lock: SET NX PX locks under kill -9 and SIGSTOP never have two holders at once",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const seed = workloadSeed();
    console.log(`lock_test seed: ${seed} (replay with LAMPORTKV_SEED=${seed})`);
    const rng = new Prng(seed);
    const t0 = performance.now();
    await withCluster({ replicas: 3, extraArgs: EXTRA_ARGS }, async (cluster) => {
      const victim = rng.pick(cluster.ids);
      const sleeper = rng.pick(cluster.ids.filter((id) => id !== victim));
      cluster.note(`lock: replica ${victim} will be killed, replica ${sleeper} paused`);
      const service = new LockService(cluster, rng);
      try {
        await service.progress(30, "before any fault");

        assert.equal((await cluster.kill(victim, "SIGKILL")).signal, "SIGKILL");
        await cluster.waitForView({ ids: cluster.ids.filter((id) => id !== victim) });
        await service.progress(20, `in the view without replica ${victim}`);
        await cluster.restart(victim);
        await cluster.waitForView({ ids: cluster.ids });
        await service.progress(20, `after replica ${victim} rejoined`);

        const pausedAt = performance.now();
        cluster.pause(sleeper);
        try {
          await cluster.waitForView({ ids: cluster.ids.filter((id) => id !== sleeper) });
          await service.progress(20, `while replica ${sleeper} is stopped`);
          await service.runFor(PAUSE_MS - (performance.now() - pausedAt), "while it is stopped");
        } finally {
          cluster.resume(sleeper);
        }
        await cluster.waitForView({ ids: cluster.ids });
        await service.progress(20, `after replica ${sleeper} was taken back`);
      } finally {
        await service.stop();
      }
      const c = service.counts;
      const expired = service.acquisitions.filter((a) => !a.released).length;
      console.log(
        `lock: ${c.held} acquisitions (${c.released} released by their holder, ${c.lost} found ` +
          `expired at release), ${c.busy} found it taken, ${c.unknown} with an unknown outcome; ` +
          `${expired} locks left to expire`,
      );
      assert.ok(c.held >= 100, `too few acquisitions (${c.held})`);
      assert.ok(c.busy > 0, "no attempt ever found the lock taken: no contention was tested");

      assertMutualExclusion(service.acquisitions, seed);
      assertFencing(service.acquisitions, seed);

      // Expiry, as a DEL with an unknown outcome (see the module doc).
      const expiries: ModelOp[] = service.acquisitions
        .filter((a) => !a.released)
        .map((a) => ({
          client: -1,
          argv: ["DEL", "lock"],
          call: a.call + TTL_MS - CLOCK_SLACK_MS,
          ret: null,
        }));
      assertModel("lock", [...service.lockOps, ...expiries], seed);
      assertModel("counter", service.fencedOps, seed);
      assertCheckHasTeeth(service.lockOps, expiries);

      const agreed = await cluster.waitForAgreement({ timeoutMs: 15_000 });
      cluster.note(`agreement at delivered ${agreed.delivered}, digest ${agreed.digest}`);
    });
    console.log(`lock_test took ${Math.round(performance.now() - t0)} ms`);
  },
});
