/**
 * End to end: a bank on real replica processes under kill -9 and SIGSTOP ("Redis data model",
 * Proof). Five accounts start at 100 each (one MSET). Transfer clients move random amounts
 * between two accounts with optimistic transactions:
 *
 * ```text
 * WATCH a b ; MGET a b ; MULTI ; SET a <a-x> ; SET b <b+x> ; EXEC     (again on a null EXEC)
 * ```
 *
 * and reader clients read every account at once with MGET. Each client has its own connection,
 * they are spread over the three replicas, and a client whose replica dies, hangs or answers
 * NOQUORUM/UNKNOWN moves on to the next replica (its WATCH is then lost: the transfer starts over).
 * While they run, one replica is SIGKILLed and restarted and another is SIGSTOPped until the
 * other two have formed a view and made progress without it, then SIGCONTed.
 *
 * Checked:
 * - every MGET of all accounts sums to the initial total and shows no negative balance;
 * - at the end every replica reports the same digest at the same delivered index, and reads the
 *   same balances, which sum to the total;
 * - the history is linearizable with the real state machine as the model
 *   (`checkModelLinearizable`): a committed transfer is modelled as `MSET a <a'> b <b'>` at its
 *   EXEC (a watched EXEC that commits writes exactly those values at its place in the order); an
 *   EXEC whose outcome is unknown as the same MSET with an unknown outcome (applied at some point
 *   after its call, or never); an EXEC answered with a null array changed nothing and is left
 *   out; every MGET that got balances is a read.
 *
 * Bounded: at most {@link MAX_TRANSFERS} transfers and {@link MAX_READS} reads per client, no
 * operation starts after {@link RUN_CAP_MS}, and a command waits at most {@link OP_TIMEOUT_MS}.
 * Every wait on the cluster has a deadline. Replicas run with `--failure-timeout 500`.
 *
 * Random choices (accounts, amounts, the replicas hit by faults) come from the seed printed at the
 * start; `LAMPORTKV_SEED=<seed>` replays them (the interleaving of real processes is not replayed).
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
import { respCall, type TestCluster, withCluster } from "../support/cluster.ts";
import { FailoverClient, showReply } from "../support/failover_client.ts";
import type { RespValue } from "../../src/net/resp.ts";

const ACCOUNTS = ["acct:0", "acct:1", "acct:2", "acct:3", "acct:4"];
const INITIAL = 100;
const TOTAL = INITIAL * ACCOUNTS.length;
const TRANSFER_CLIENTS = 4;
const READER_CLIENTS = 2;
const MAX_TRANSFERS = 1500;
const MAX_READS = 1500;
/** No operation starts after this; the test stops the clients earlier, once its faults are done. */
const RUN_CAP_MS = 25_000;
const OP_TIMEOUT_MS = 2000;
/** A transfer gives up after this many aborted or interrupted attempts. */
const MAX_ATTEMPTS = 20;
const EXTRA_ARGS = ["--failure-timeout", "500"];
/** Operations in the history the falsification check works on. */
const TEETH_OPS = 600;
/** How long (at least) the SIGSTOPped replica stays stopped. */
const PAUSE_MS = 3000;

/** The clients, their history and what they saw, running in the background. */
class Bank {
  readonly history: ModelOp[] = [];
  /** MGETs of all accounts that did not sum to the total (or showed a negative balance). */
  readonly badReads: string[] = [];
  readonly counts = { committed: 0, aborted: 0, unknown: 0, reads: 0, interrupted: 0 };
  readonly #cluster: TestCluster;
  readonly #stopAt = performance.now() + RUN_CAP_MS;
  #stopped = false;
  #failure: unknown = undefined;
  /** Clients that have not finished their loop. */
  #active = 0;
  readonly #done: Promise<void>;

  constructor(cluster: TestCluster, rng: Prng) {
    this.#cluster = cluster;
    const ports = cluster.ids.map((id) => cluster.clientPort(id));
    const clients: Promise<void>[] = [];
    for (let i = 0; i < TRANSFER_CLIENTS + READER_CLIENTS; i++) {
      const client = new FailoverClient({
        ports,
        start: i,
        timeoutMs: OP_TIMEOUT_MS,
        name: `client ${i}`,
        note: (line) => cluster.note(line),
      });
      const clientRng = new Prng(rng.int(0, 2 ** 32 - 1));
      const body = i < TRANSFER_CLIENTS
        ? this.#transferLoop(i, client, clientRng)
        : this.#readLoop(i, client);
      this.#active++;
      clients.push(
        body.finally(() => this.#active--).catch((err) => {
          this.#failure ??= err;
          this.#stopped = true;
        }).finally(() => client.close()),
      );
    }
    this.#done = Promise.all(clients).then(() => {});
  }

  get #running(): boolean {
    return !this.#stopped && performance.now() < this.#stopAt;
  }

  /** Completed operations so far (committed transfers and reads). */
  get progressCount(): number {
    return this.counts.committed + this.counts.reads;
  }

  async #transferLoop(id: number, c: FailoverClient, rng: Prng): Promise<void> {
    for (let n = 0; n < MAX_TRANSFERS && this.#running; n++) {
      const a = rng.pick(ACCOUNTS);
      const b = rng.pick(ACCOUNTS.filter((x) => x !== a));
      await this.#transfer(id, c, a, b, rng.int(1, 40));
    }
  }

  /** One transfer of up to `amount` from `a` to `b`, retried while the EXEC aborts. */
  async #transfer(id: number, c: FailoverClient, a: string, b: string, amount: number) {
    for (let attempt = 0; attempt < MAX_ATTEMPTS && this.#running; attempt++) {
      const watch = await c.call(["WATCH", a, b]);
      if (watch.kind !== "reply") continue; // the connection (and the session) is gone
      expectReply(watch.reply, "OK", "WATCH");
      const read = await c.call(["MGET", a, b]);
      if (read.kind !== "reply") continue;
      const [va, vb] = balances(read.reply, 2);
      this.history.push({
        client: id,
        argv: ["MGET", a, b],
        call: read.call,
        ret: read.ret,
        reply: read.reply,
      });
      const x = Math.min(amount, va);
      if (x === 0) {
        const unwatch = await c.call(["UNWATCH"]);
        if (unwatch.kind === "reply") expectReply(unwatch.reply, "OK", "UNWATCH");
        return;
      }
      const writes = [a, String(va - x), b, String(vb + x)];
      if (!(await queue(c, ["MULTI"], "OK"))) continue;
      if (!(await queue(c, ["SET", a, writes[1]], "QUEUED"))) continue;
      if (!(await queue(c, ["SET", b, writes[3]], "QUEUED"))) continue;
      const exec = await c.call(["EXEC"]);
      if (exec.kind === "failed") {
        this.counts.interrupted++;
        continue; // definitely not applied: try again
      }
      if (exec.kind === "unknown") {
        // Applied at its place or never: the client cannot tell, so it does not retry.
        this.counts.unknown++;
        this.history.push({ client: id, argv: ["MSET", ...writes], call: exec.call, ret: null });
        return;
      }
      if (exec.reply === null) {
        this.counts.aborted++;
        continue; // a watched account changed since WATCH: nothing was applied
      }
      const replies = exec.reply;
      if (!Array.isArray(replies) || replies.length !== 2 || replies.some((r) => r !== "OK")) {
        throw new Error(`EXEC of a transfer answered ${showReply(exec.reply)}`);
      }
      this.counts.committed++;
      this.history.push({
        client: id,
        argv: ["MSET", ...writes],
        call: exec.call,
        ret: exec.ret,
        reply: "OK",
      });
      return;
    }
  }

  async #readLoop(id: number, c: FailoverClient): Promise<void> {
    for (let n = 0; n < MAX_READS && this.#running; n++) {
      const read = await c.call(["MGET", ...ACCOUNTS]);
      if (read.kind !== "reply") continue; // a read that got no answer changed nothing
      const values = balances(read.reply, ACCOUNTS.length);
      const sum = values.reduce((s, v) => s + v, 0);
      if (sum !== TOTAL || values.some((v) => v < 0)) {
        this.badReads.push(
          `client ${id} at ${read.ret.toFixed(1)} ms on replica ${this.#cluster.ids[c.at]}: ` +
            `${JSON.stringify(values)} (sum ${sum})`,
        );
      }
      this.counts.reads++;
      this.history.push({
        client: id,
        argv: ["MGET", ...ACCOUNTS],
        call: read.call,
        ret: read.ret,
        reply: read.reply,
      });
    }
  }

  /** Waits until `n` more operations than now have completed. */
  async progress(n: number, what: string): Promise<void> {
    const target = this.progressCount + n;
    await this.#cluster.waitFor(() => this.progressCount >= target, {
      timeoutMs: 15_000,
      message: `${n} more completed transfers and reads ${what}`,
      giveUpIf: () => this.#giveUp(),
    });
    this.#cluster.note(`bank: ${n} more operations completed ${what}`);
  }

  /** Lets the clients run for `ms` more (fails early if a client failed or the run hit its cap). */
  async runFor(ms: number, what: string): Promise<void> {
    const until = performance.now() + ms;
    const before = this.progressCount;
    await this.#cluster.waitFor(() => performance.now() >= until, {
      timeoutMs: ms + 1000,
      message: `the clients to run for ${Math.round(ms)} ms ${what}`,
      giveUpIf: () => this.#giveUp(),
    });
    this.#cluster.note(`bank: ${this.progressCount - before} operations completed ${what}`);
  }

  #giveUp(): string | undefined {
    if (this.#failure !== undefined) return `a client failed: ${this.#failure}`;
    if (this.#active === 0) return "every client has done all its operations";
    return this.#running ? undefined : "the run hit its time cap";
  }

  /** Stops starting operations and waits for the clients (bounded by the command timeout). */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#done;
    if (this.#failure !== undefined) throw this.#failure;
  }
}

/** Sends a command answered by the session itself; false if the connection was lost. */
async function queue(c: FailoverClient, argv: string[], want: string): Promise<boolean> {
  const r = await c.call(argv);
  if (r.kind !== "reply") return false; // the session is gone: the transfer starts over
  expectReply(r.reply, want, argv[0]);
  return true;
}

function expectReply(reply: RespValue, want: string, what: string): void {
  if (reply !== want) throw new Error(`${what} answered ${showReply(reply)}, expected ${want}`);
}

/** The balances in an MGET reply of `n` accounts (every account exists: all were initialised). */
function balances(reply: RespValue, n: number): number[] {
  if (!Array.isArray(reply) || reply.length !== n) {
    throw new Error(`MGET of ${n} accounts answered ${showReply(reply)}`);
  }
  return reply.map((v) => {
    if (typeof v !== "string" || !/^-?[0-9]+$/.test(v)) {
      throw new Error(`MGET answered a balance that is not an integer: ${showReply(reply)}`);
    }
    return Number(v);
  });
}

/**
 * The check has teeth: a prefix of the history (the first {@link TEETH_OPS} operations) in which
 * one read of all accounts shows, for the first account, a balance no operation ever wrote to it,
 * is rejected. (A prefix: proving a history not linearizable means exhausting its search space.)
 */
function assertCheckHasTeeth(history: readonly ModelOp[]): void {
  const prefix = [...history].sort((a, b) => a.call - b.call).slice(0, TEETH_OPS);
  const written = new Set<string>();
  for (const op of prefix) {
    for (let i = 1; op.argv[0] === "MSET" && i < op.argv.length; i += 2) {
      if (op.argv[i] === ACCOUNTS[0]) written.add(op.argv[i + 1]);
    }
  }
  let never = 0;
  while (written.has(String(never))) never++;
  const reads = prefix.filter((o) => o.argv.length === 1 + ACCOUNTS.length && o.ret !== null);
  const falsified = reads[Math.floor(reads.length / 2)];
  const reply = [String(never), ...(falsified.reply as string[]).slice(1)];
  const bad = prefix.map((o) => (o === falsified ? { ...o, reply } : o));
  const verdict = checkModelLinearizable(bad, 500_000);
  assert.ok(
    !verdict.ok && verdict.message.startsWith("not linearizable"),
    `the checker did not reject a read of ${JSON.stringify(reply)}: ` +
      (verdict.ok ? "accepted" : verdict.message),
  );
}

Deno.test({
  name: "e2e bank: transfers with WATCH/MULTI/EXEC under kill -9 and SIGSTOP keep the total",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const seed = workloadSeed();
    console.log(`bank_test seed: ${seed} (replay with LAMPORTKV_SEED=${seed})`);
    const rng = new Prng(seed);
    const t0 = performance.now();
    await withCluster({ replicas: 3, extraArgs: EXTRA_ARGS }, async (cluster) => {
      const init = ACCOUNTS.flatMap((k) => [k, String(INITIAL)]);
      const initCall = performance.now();
      assert.equal(await respCall(cluster.clientPort(1), ["MSET", ...init], 10_000), "OK");
      const initOp: ModelOp = {
        client: -1,
        argv: ["MSET", ...init],
        call: initCall,
        ret: performance.now(),
        reply: "OK",
      };

      const victim = rng.pick(cluster.ids);
      const sleeper = rng.pick(cluster.ids.filter((id) => id !== victim));
      cluster.note(`bank: replica ${victim} will be killed, replica ${sleeper} paused`);
      const bank = new Bank(cluster, rng);
      try {
        await bank.progress(100, "before any fault");

        const afterKill = cluster.ids.filter((id) => id !== victim);
        assert.equal((await cluster.kill(victim, "SIGKILL")).signal, "SIGKILL");
        await cluster.waitForView({ ids: afterKill });
        await bank.progress(150, `in the view without replica ${victim}`);
        await cluster.restart(victim);
        await cluster.waitForView({ ids: cluster.ids });
        await bank.progress(150, `after replica ${victim} rejoined`);

        // The stopped replica stays stopped for PAUSE_MS at least, and until the other two have
        // formed a view and made progress without it: its clients time out and move on.
        const awake = cluster.ids.filter((id) => id !== sleeper);
        const pausedAt = performance.now();
        cluster.pause(sleeper);
        try {
          await cluster.waitForView({ ids: awake });
          await bank.progress(150, `while replica ${sleeper} is stopped`);
          await bank.runFor(PAUSE_MS - (performance.now() - pausedAt), "while it is stopped");
        } finally {
          cluster.resume(sleeper);
        }
        await cluster.waitForView({ ids: cluster.ids });
        await bank.progress(150, `after replica ${sleeper} was taken back`);
      } finally {
        await bank.stop();
      }
      const c = bank.counts;
      console.log(
        `bank: ${c.committed} transfers committed, ${c.aborted} EXECs aborted (retried), ` +
          `${c.unknown} unknown, ${c.interrupted} interrupted; ${c.reads} reads of all accounts`,
      );
      assert.deepEqual(bank.badReads, [], `reads that broke the total (seed ${seed})`);
      assert.ok(c.committed >= 20, `too few transfers committed (${c.committed})`);

      // Every replica ends in the same state, and reads the same balances that sum to the total.
      const agreed = await cluster.waitForAgreement({ timeoutMs: 15_000 });
      cluster.note(`agreement at delivered ${agreed.delivered}, digest ${agreed.digest}`);
      const finals: ModelOp[] = [];
      let final: RespValue = null;
      for (const id of cluster.ids) {
        const call = performance.now();
        const reply = await respCall(cluster.clientPort(id), ["MGET", ...ACCOUNTS], 10_000);
        finals.push({
          client: -2 - id,
          argv: ["MGET", ...ACCOUNTS],
          call,
          ret: performance.now(),
          reply,
        });
        if (id === cluster.ids[0]) final = reply;
        assert.deepEqual(reply, final, `replica ${id}'s final balances differ`);
      }
      const finalBalances = balances(final, ACCOUNTS.length);
      assert.equal(finalBalances.reduce((s, v) => s + v, 0), TOTAL, `final ${final}`);
      console.log(`bank: final balances ${JSON.stringify(finalBalances)}`);

      const history = [initOp, ...bank.history, ...finals];
      const checkStart = performance.now();
      const verdict = checkModelLinearizable(history);
      const checkMs = Math.round(performance.now() - checkStart);
      console.log(
        `bank: model check of ${history.length} operations: ${verdict.ok ? "ok" : "FAILED"} ` +
          `(${verdict.steps} steps, ${checkMs} ms)`,
      );
      if (!verdict.ok) {
        assert.fail(`bank history not linearizable (seed ${seed}):\n${verdict.message}`);
      }
      const teethStart = performance.now();
      assertCheckHasTeeth(history);
      console.log(
        `bank: a falsified read is rejected (${Math.round(performance.now() - teethStart)} ms)`,
      );
    });
    console.log(`bank_test took ${Math.round(performance.now() - t0)} ms`);
  },
});
