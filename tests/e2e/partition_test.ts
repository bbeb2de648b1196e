/**
 * End to end under network partitions made by the test: every replica's peer port is behind a
 * fault proxy (`tests/support/fault_proxy.ts`, cluster option `proxy: true`), and the test cuts
 * every link between a minority and the rest, both directions, while concurrent clients keep
 * working on every replica (with failover). Then:
 *
 * - the majority forms a view without the minority and keeps completing operations;
 * - the cut-off replicas never answer with a value: requests sent to them after the cut get
 *   `NOQUORUM` or `UNKNOWN` (checked with raw RESP `SET` and `GET` on their client ports, and for
 *   every workload op they answered before the heal), and only `NOQUORUM` once their INFO shows
 *   they left the normal state; their INFO is not normal in the majority's view;
 * - after the heal every replica is normal in one view again, and all end with the same delivered
 *   index and digest;
 * - the whole history (workload and probes) is linearizable.
 *
 * Each case runs two partitions in turn: links cut (connections closed, new ones refused) or
 * made a black hole (connections stay open, bytes vanish: only the failure detector can tell),
 * the second one cutting off the coordinator (lowest id) while a link inside the majority is
 * delayed. Workload clients that failed over go back to their first replica now and then, so the
 * cut-off replicas keep getting workload requests too.
 * Replicas run with `--failure-timeout 500`. Set `LAMPORTKV_SEED` to replay a workload.
 *
 * Sanitizers: off, because the replica child processes, their output pipes and the proxies'
 * sockets outlive single async ops by design (the harness awaits them all in `stop()`).
 *
 * @module
 */
import assert from "node:assert/strict";
import { checkLinearizable } from "../support/linearizability.ts";
import {
  argvOf,
  type HistoryOpSpec,
  HistoryRecorder,
  isConnectionTrouble,
  randomOp,
  type ReplyClass,
  workloadSeed,
} from "../support/history.ts";
import { Prng } from "../support/prng.ts";
import {
  describeError,
  RespTestClient,
  type TestCluster,
  withCluster,
} from "../support/cluster.ts";
import { BLACKHOLE, delayRule, DROP, type LinkRule, partition } from "../support/fault_proxy.ts";
import { RespError, type RespValue } from "../../src/net/resp.ts";

const EXTRA_ARGS = ["--failure-timeout", "500"];
const KEYS = ["a", "b", "c"];
/** The key the probes of the cut-off replicas write and read (not used by the workload). */
const PROBE_KEY = "probe";
/** Hard caps of a workload; the tests stop it earlier, once their fault sequence is done. */
const RUN_CAP_MS = 25_000;
const MAX_OPS_PER_CLIENT = 2_000;
const OP_TIMEOUT_MS = 3000;
/** A client that failed over returns to its first replica after this many ops elsewhere. */
const HOME_EVERY = 20;
/** Deadline of a probe's reply: a replica without a majority answers within ~2 failure timeouts. */
const PROBE_TIMEOUT_MS = 5000;

/** One op the workload sent: where, when, and how it ended. */
interface SentOp {
  client: number;
  replica: number;
  op: HistoryOpSpec;
  call: number;
  /** When the reply came (null: timeout or lost connection). */
  ret: number | null;
  outcome: ReplyClass["outcome"];
  reply: string;
}

/** A short printable form of a reply. */
function show(reply: RespValue): string {
  return reply instanceof RespError ? `-${reply.message}` : JSON.stringify(reply);
}

/**
 * Concurrent clients in the background, each with one op in flight, starting on replica
 * `client % n` and failing over to the next replica after anything but a result. Records the
 * history for the checker and, per op, which replica answered.
 */
class Workload {
  readonly history = new HistoryRecorder();
  readonly sent: SentOp[] = [];
  readonly #cluster: TestCluster;
  readonly #done: Promise<void>;
  #stopped = false;
  /** The first error of a client (a reply no correct replica gives), rethrown by stop(). */
  #failure: unknown = undefined;

  constructor(cluster: TestCluster, seed: number, clients: number) {
    this.#cluster = cluster;
    const rng = new Prng(seed);
    const stopAt = performance.now() + RUN_CAP_MS;
    this.#done = Promise.all(
      Array.from(
        { length: clients },
        (_, c) =>
          this.#client(c, new Prng(rng.int(0, 2 ** 32 - 1)), stopAt).catch((err) => {
            this.#failure ??= err;
            this.#stopped = true;
          }),
      ),
    ).then(() => {});
  }

  async #client(client: number, rng: Prng, stopAt: number): Promise<void> {
    const ids = this.#cluster.ids;
    const home = client % ids.length;
    let at = home;
    let away = 0;
    let conn: RespTestClient | null = null;
    const moveTo = async (next: number, why: string) => {
      await conn?.close();
      conn = null;
      at = next;
      away = 0;
      this.#cluster.note(`client ${client}: ${why}; moving to replica ${ids[at]}`);
    };
    const moveOn = (why: string) => moveTo((at + 1) % ids.length, why);
    try {
      for (let i = 0; i < MAX_OPS_PER_CLIENT && !this.#stopped && performance.now() < stopAt; i++) {
        // Away from home, go back now and then: a cut-off home replica keeps getting requests.
        if (at !== home && ++away > HOME_EVERY) await moveTo(home, "back home");
        const replica = ids[at];
        if (conn === null) {
          try {
            conn = await RespTestClient.connect(this.#cluster.clientPort(replica));
          } catch (err) {
            if (!isConnectionTrouble(err)) throw err;
            await moveOn(describeError(err));
            continue;
          }
        }
        const op = randomOp(rng, KEYS, client, i);
        const handle = this.history.begin(client, op);
        const call = performance.now();
        let reply: RespValue;
        try {
          reply = await conn.call(argvOf(op), OP_TIMEOUT_MS);
        } catch (err) {
          this.history.unknown(handle);
          if (!isConnectionTrouble(err)) throw err;
          this.sent.push({
            client,
            replica,
            op,
            call,
            ret: null,
            outcome: "unknown",
            reply: describeError(err),
          });
          await moveOn(describeError(err));
          continue;
        }
        const ret = performance.now();
        const cls = this.history.record(handle, reply); // throws on a reply no replica may give
        this.sent.push({
          client,
          replica,
          op,
          call,
          ret,
          outcome: cls.outcome,
          reply: show(reply),
        });
        if (cls.outcome !== "ok") await moveOn(show(reply));
      }
    } finally {
      await (conn as RespTestClient | null)?.close();
    }
  }

  /** Ops answered with a result by one of `replicas`, sent after `since`. */
  completed(replicas: readonly number[], since: number): number {
    return this.sent.filter((s) =>
      s.outcome === "ok" && s.call > since && replicas.includes(s.replica)
    )
      .length;
  }

  /** Waits (deadline) until `n` more ops sent after `since` got a result from one of `replicas`. */
  async progress(n: number, replicas: readonly number[], since: number, what: string) {
    const target = this.completed(replicas, since) + n;
    await this.#cluster.waitFor(() => this.completed(replicas, since) >= target, {
      timeoutMs: 10_000,
      message: `${n} more ops completed through replicas ${replicas.join(", ")} ${what}`,
      giveUpIf: () =>
        this.#failure === undefined
          ? undefined
          : `the workload failed: ${describeError(this.#failure)}`,
    });
    this.#cluster.note(`workload: ${n} more ops completed through ${replicas.join(", ")} ${what}`);
  }

  /**
   * Stops starting ops and waits for the clients to finish (bounded by the op timeout).
   *
   * @throws the first error of a client (e.g. a reply of the wrong shape).
   */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#done;
    if (this.#failure !== undefined) throw this.#failure;
  }
}

/** Sends raw RESP commands to one replica's client port, recording them in the history. */
class Probe {
  #n = 0;

  constructor(
    readonly cluster: TestCluster,
    readonly history: HistoryRecorder,
    /** History client id of this probe (distinct from the workload's). */
    readonly client: number,
  ) {}

  /** `SET probe <unique value>` or `GET probe` on `replica`, recorded; returns the reply. */
  async send(replica: number, kind: "put" | "get"): Promise<RespValue> {
    const op: HistoryOpSpec = kind === "put"
      ? { kind, key: PROBE_KEY, value: `p${this.client}-${this.#n++}` }
      : { kind, key: PROBE_KEY };
    const handle = this.history.begin(this.client, op);
    let reply: RespValue;
    const conn = await RespTestClient.connect(this.cluster.clientPort(replica));
    try {
      reply = await conn.call(argvOf(op), PROBE_TIMEOUT_MS);
    } catch (err) {
      this.history.unknown(handle);
      throw new Error(`${argvOf(op).join(" ")} on replica ${replica}: ${describeError(err)}`);
    } finally {
      await conn.close();
    }
    this.history.record(handle, reply);
    this.cluster.note(`probe: ${argvOf(op).join(" ")} on replica ${replica} -> ${show(reply)}`);
    return reply;
  }

  /** Sends a SET and a GET to a cut-off replica: each must be refused with one of `codes`. */
  async expectRefused(replica: number, codes: readonly string[], when: string): Promise<void> {
    for (const kind of ["put", "get"] as const) {
      const reply = await this.send(replica, kind);
      assert.ok(
        reply instanceof RespError && codes.includes(reply.code),
        `${kind === "put" ? "SET" : "GET"} on replica ${replica} ${when} got ${
          show(reply)
        }; expected ${codes.join(" or ")}`,
      );
    }
  }
}

function assertLinearizable(history: HistoryRecorder, seed: number): void {
  const c = history.counts();
  console.log(`history: ${c.done} completed, ${c.unknown} unknown, ${c.failed} failed`);
  const verdict = checkLinearizable(history.ops());
  if (!verdict.ok) {
    assert.fail(
      `history not linearizable (seed ${seed}; replay with LAMPORTKV_SEED=${seed}), ` +
        `key ${verdict.key}:\n${verdict.message}`,
    );
  }
}

/** One partition of a scenario: who is cut off, how, and extra rules inside the majority. */
interface Round {
  /** The replicas cut off from the rest (a minority). */
  minority: number[];
  /** The rule of every link across the cut, both directions. */
  rule: LinkRule;
  /** Extra rules (e.g. a delay) on links inside the majority during this round. */
  extra?: { from: number; to: number; rule: LinkRule }[];
}

/** When a minority was cut off and healed again. */
interface CutWindow {
  minority: number[];
  cutAt: number;
  healAt: number;
}

/** Cuts off `round.minority` under load, checks both sides, heals, waits for everyone. */
async function runRound(
  cluster: TestCluster,
  workload: Workload,
  probes: Map<number, Probe>,
  round: Round,
  window: CutWindow,
): Promise<void> {
  const { minority } = round;
  const majority = cluster.ids.filter((id) => !minority.includes(id));
  const net = cluster.network();
  for (const e of round.extra ?? []) net.setRule(e.from, e.to, e.rule);
  window.cutAt = performance.now();
  partition(cluster, minority, round.rule);
  cluster.note(`partition ${minority.join(",")} | ${majority.join(",")}: ${net.describe()}`);
  // Right after the cut the minority may still think it is normal: whatever it answers must not
  // be a value (UNKNOWN for what it had put in order, NOQUORUM otherwise).
  await Promise.all(
    minority.map((id) =>
      probes.get(id)!.expectRefused(id, ["NOQUORUM", "UNKNOWN"], "just after the cut")
    ),
  );
  const view = await cluster.waitForView({ ids: majority, timeoutMs: 10_000 });
  cluster.note(`the majority ${majority.join(",")} is normal in view ${view}`);
  await workload.progress(150, majority, window.cutAt, "in the majority's view");

  // Once a cut-off replica noticed (INFO not normal), it refuses every request with NOQUORUM.
  for (const id of minority) {
    let last: Record<string, string> = {};
    await cluster.waitFor(async () => {
      last = await cluster.info(id, 2000);
      return last.state !== "normal";
    }, { timeoutMs: 5000, message: `replica ${id} to leave the normal state` });
    cluster.note(`replica ${id} cut off: state=${last.state} view=${last.view}`);
    assert.notEqual(Number(last.view), view, `replica ${id} is in the majority's view ${view}`);
    await probes.get(id)!.expectRefused(id, ["NOQUORUM"], "after it lost the majority");
    const again = await cluster.info(id, 2000);
    assert.notEqual(again.state, "normal", `replica ${id} became normal while cut off`);
    assert.notEqual(Number(again.view), view, `replica ${id} joined view ${view} while cut off`);
  }
  await workload.progress(100, majority, window.cutAt, "while the minority refuses");

  window.healAt = performance.now();
  net.heal();
  cluster.note("healed every link");
  await cluster.waitForView({ ids: cluster.ids, timeoutMs: 15_000 });
  for (const id of minority) {
    const reply = await probes.get(id)!.send(id, "put");
    assert.equal(reply, "OK", `SET on replica ${id} after the heal`);
  }
  await workload.progress(150, cluster.ids, window.healAt, "after the heal");
}

/**
 * Runs `rounds` of partitions one after the other on a proxied cluster of `replicas` under a
 * background workload of `clients`, then checks agreement and linearizability.
 */
async function partitionScenario(
  name: string,
  replicas: 3 | 5,
  rounds: Round[],
  clients: number,
): Promise<void> {
  const seed = workloadSeed();
  console.log(`${name} seed: ${seed} (replay with LAMPORTKV_SEED=${seed})`);
  await withCluster({ replicas, extraArgs: EXTRA_ARGS, proxy: true }, async (cluster) => {
    const workload = new Workload(cluster, seed, clients);
    const probes = new Map(
      cluster.ids.map((id) => [id, new Probe(cluster, workload.history, 100 + id)]),
    );
    const windows: CutWindow[] = [];
    try {
      await workload.progress(150, cluster.ids, 0, "before any partition");
      for (const round of rounds) {
        const window = { minority: round.minority, cutAt: Infinity, healAt: Infinity };
        windows.push(window);
        await runRound(cluster, workload, probes, round, window);
      }
    } finally {
      await workload.stop();
    }

    // What the workload sent to a cut-off replica after a cut and got answered before the heal
    // must not be a result.
    let answeredWhileCut = 0;
    for (const w of windows) {
      const answered = workload.sent.filter((s) =>
        w.minority.includes(s.replica) && s.call > w.cutAt && s.ret !== null && s.ret < w.healAt
      );
      cluster.note(
        `${answered.length} workload ops answered by ${w.minority.join(",")} while cut off`,
      );
      answeredWhileCut += answered.length;
      for (const s of answered) {
        assert.notEqual(
          s.outcome,
          "ok",
          `replica ${s.replica} answered ${JSON.stringify(s.op)} with ${s.reply} while cut off`,
        );
      }
    }
    assert.ok(answeredWhileCut > 0, "no cut-off replica answered anything: nothing was checked");

    // The probe key as the majority sees it, into the history too (an UNKNOWN probe may be
    // applied).
    await new Probe(cluster, workload.history, 99).send(cluster.ids[0], "get");

    const agreed = await cluster.waitForAgreement({ timeoutMs: 15_000 });
    cluster.note(`agreement: delivered ${agreed.delivered}, digest ${agreed.digest}`);
    // Every completed write took a log index (reads are answered without one).
    assert.ok(agreed.delivered >= workload.history.writesDone());
    await cluster.waitForView({ ids: cluster.ids, timeoutMs: 5000 });
    assertLinearizable(workload.history, seed);
  });
}

Deno.test({
  name: "e2e partition: 3 replicas, one cut off; it refuses, the majority serves; heal, all agree",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await partitionScenario("partition 3|1", 3, [
      { minority: [3], rule: DROP },
      // Then the coordinator of the view (the lowest id), silently, with a slow majority link.
      { minority: [1], rule: BLACKHOLE, extra: [{ from: 2, to: 3, rule: delayRule(15) }] },
    ], 6);
  },
});

Deno.test({
  name: "e2e partition: 5 replicas, two cut off; they refuse, three serve; heal, all agree",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await partitionScenario("partition 5|2", 5, [
      { minority: [4, 5], rule: BLACKHOLE },
      { minority: [1, 3], rule: DROP, extra: [{ from: 4, to: 2, rule: delayRule(15) }] },
    ], 8);
  },
});
