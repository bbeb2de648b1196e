/**
 * End to end: online membership change with real replica processes.
 *
 * 1. A 3-replica cluster under a concurrent workload grows to 5 (replicas 4 and 5 start with
 *    `--join`, are added with `REPLICASET ADD` and become voters once caught up), then replicas 1
 *    and 2 are removed (`REPLICASET REMOVE`, then stopped), then one of the new replicas is
 *    SIGKILLed. Throughout, the workload goes on: no gap without a successful operation longer
 *    than {@link MAX_GAP_MS} (computed from the recorded history), the history (with final reads
 *    of every key) is linearizable, the survivors agree on delivered index and digest, every
 *    acknowledged write of a write-only ledger reads back, and a client with the original config
 *    file (replicas 1, 2, 3; only 3 remains) still works.
 * 2. The operator's side: REPLICASET ADD errors (id in use, address in use, a change in
 *    progress), REMOVE of an unknown id, a replica not yet added answering `-NOTMEMBER`, a learner
 *    (ADD ... LEARNER) serving linearizable reads and refusing writes with Redis's `-READONLY`,
 *    READONLY on a connection giving local reads, a removed replica answering `-NOTMEMBER` naming
 *    the current members, INFO's role/voters/learners fields.
 *
 * A joining replica must reach every current member's peer port: until it is added it knows
 * only the replicas of its config file, so each joiner gets a config file listing the current
 * members and itself (`join<id>.txt` in the cluster's dir).
 *
 * Clients of the workload know all five client ports from the start and move on to the next
 * one on a lost connection, a timeout, `NOQUORUM`/`UNKNOWN`, or a refusal (`NOTMEMBER` from a
 * replica not or no longer a member, `READONLY` for a write on a learner): refusals are answered
 * before the command is ordered, so such an operation was not applied and is left out of the
 * history. Set `LAMPORTKV_SEED` to replay a seed.
 *
 * Sanitizers: off, because the replica child processes and their output pipes outlive single
 * async ops by design (the harness awaits them all in `stop()`).
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { parseConfig } from "../../src/config/config.ts";
import { LamportClient } from "../../src/client/client.ts";
import { encodeCommand, RespError, type RespValue } from "../../src/net/resp.ts";
import { checkLinearizable } from "../support/linearizability.ts";
import {
  argvOf,
  errorOutcome,
  HistoryRecorder,
  isConnectionTrouble,
  randomOp,
  workloadSeed,
} from "../support/history.ts";
import { Prng } from "../support/prng.ts";
import {
  configText,
  describeError,
  freePorts,
  respCall,
  RespTestClient,
  type TestCluster,
  withCluster,
} from "../support/cluster.ts";

const CLIENTS = 6;
const KEYS = ["a", "b", "c", "d"];
/** Hard cap of the workload; the test stops it once its sequence is done. */
const RUN_CAP_MS = 180_000;
/** The longest time without any successful operation the workload may see. */
const MAX_GAP_MS = 5000;
const OP_TIMEOUT_MS = 3000;
/** A workload client moves to the next replica after this many operations. */
const ROTATE_EVERY = 20;
const EXTRA_ARGS = ["--failure-timeout", "500"];
/** How long a joiner may take to catch up and be promoted. */
const JOIN_TIMEOUT_MS = 60_000;

/** One row of `REPLICASET MEMBERS`. */
interface Row {
  id: number;
  host: string;
  "client-port": number;
  "peer-port": number;
  role: string;
  state: string;
}

/** `REPLICASET MEMBERS` of the replica on `port`. */
async function members(port: number): Promise<Row[]> {
  const reply = await respCall(port, ["REPLICASET", "MEMBERS"], 3000);
  if (!Array.isArray(reply)) throw new Error(`MEMBERS: ${show(reply)}`);
  return reply.map((r) => {
    if (!Array.isArray(r)) throw new Error(`MEMBERS row: ${show(r)}`);
    const o: Record<string, RespValue> = {};
    for (let i = 0; i + 1 < r.length; i += 2) o[String(r[i])] = r[i + 1];
    return o as unknown as Row;
  });
}

function show(reply: RespValue): string {
  return reply instanceof RespError ? `-${reply.message}` : JSON.stringify(reply);
}

/** Waits until replica `asked` lists `id` with `role` and state in-view. */
async function waitRole(
  cluster: TestCluster,
  asked: number,
  id: number,
  role: string,
  timeoutMs = JOIN_TIMEOUT_MS,
): Promise<void> {
  let last = "";
  try {
    await cluster.waitFor(async () => {
      const rows = await members(cluster.clientPort(asked));
      last = rows.map((r) => `${r.id}:${r.role}/${r.state}`).join(" ");
      return rows.some((r) => r.id === id && r.role === role && r.state === "in-view");
    }, {
      timeoutMs,
      intervalMs: 100,
      message: `replica ${asked} to list replica ${id} as ${role} in-view`,
      giveUpIf: () => cluster.running(id) ? undefined : `replica ${id} is not running`,
    });
  } catch (err) {
    throw new Error(`${describeError(err)}; last MEMBERS: ${last}`);
  }
  cluster.note(`replica ${asked} lists replica ${id} as ${role} in-view: ${last}`);
}

/**
 * Makes replica `id` known to the harness at fresh ports, with a config file listing `current`
 * (the members now) and itself, started with `--join`; returns its ports.
 */
async function prepareJoiner(
  cluster: TestCluster,
  id: number,
  current: number[],
  ports: [number, number],
): Promise<void> {
  const [clientPort, peerPort] = ports;
  cluster.addReplica({ id, host: "127.0.0.1", clientPort, peerPort });
  const lines = [...current, id].map((r) => ({
    id: r,
    clientPort: cluster.clientPort(r),
    peerPort: cluster.peerPort(r),
  }));
  const path = join(cluster.dir, `join${id}.txt`);
  await Deno.writeTextFile(path, configText(lines));
  cluster.setConfigPath(id, path);
  cluster.setArgs(id, ["--join"]);
}

/** `REPLICASET ADD` of replica `id` (as the harness knows it), asked of `asked`. */
function addCommand(cluster: TestCluster, id: number, learner = false): string[] {
  return [
    "REPLICASET",
    "ADD",
    String(id),
    "127.0.0.1",
    String(cluster.clientPort(id)),
    String(cluster.peerPort(id)),
    ...(learner ? ["LEARNER"] : []),
  ];
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Concurrent clients over all `ports` (see the module doc), plus a ledger writer that SETs
 * `ledger:<n>` once each and remembers which were acknowledged.
 */
class MembershipWorkload {
  readonly history = new HistoryRecorder();
  /** Acknowledged ledger writes: key -> value. */
  readonly ledger = new Map<string, string>();
  /** Operations refused with NOTMEMBER / READONLY. */
  readonly refusals = { NOTMEMBER: 0, READONLY: 0 };
  readonly startedAt = performance.now();
  stoppedAt = 0;
  readonly #done: Promise<unknown>;
  #stopped = false;
  #failure: unknown = undefined;
  readonly #ports: readonly number[];
  readonly #cluster: TestCluster;

  constructor(cluster: TestCluster, ports: readonly number[], seed: number) {
    this.#cluster = cluster;
    this.#ports = ports;
    const rng = new Prng(seed);
    const capAt = performance.now() + RUN_CAP_MS;
    const running = () => !this.#stopped && performance.now() < capAt;
    this.#done = Promise.all([
      ...Array.from(
        { length: CLIENTS },
        (_, i) => this.#client(i, new Prng(rng.int(0, 2 ** 32 - 1)), running),
      ),
      this.#ledgerWriter(running),
    ]).catch((err) => {
      this.#failure = err;
      this.#stopped = true;
    });
  }

  /** A connection loop over the ports: `send` returns whether to move to the next port. */
  async #loop(
    name: string,
    first: number,
    running: () => boolean,
    send: (conn: RespTestClient, i: number) => Promise<boolean>,
  ): Promise<void> {
    let at = first % this.#ports.length;
    let conn: RespTestClient | null = null;
    const moveOn = async (why: string) => {
      await conn?.close();
      conn = null;
      at = (at + 1) % this.#ports.length;
      this.#cluster.note(`${name}: ${why}; moving to port ${this.#ports[at]}`);
    };
    try {
      for (let i = 0; i < 1_000_000 && running(); i++) {
        if (conn === null) {
          try {
            conn = await RespTestClient.connect(this.#ports[at]);
          } catch (err) {
            if (!isConnectionTrouble(err)) throw err;
            await moveOn(describeError(err));
            await delay(20); // every port may be refusing for a moment
            continue;
          }
        }
        let moveAway: boolean;
        try {
          moveAway = await send(conn, i);
        } catch (err) {
          if (!isConnectionTrouble(err)) throw err;
          await moveOn(describeError(err));
          continue;
        }
        if (moveAway) await moveOn("refused or no outcome");
        else if (i % ROTATE_EVERY === ROTATE_EVERY - 1) {
          // Move on now and then, so that every replica (learners, joiners, leavers) is used.
          await conn.close();
          conn = null;
          at = (at + 1) % this.#ports.length;
        }
      }
    } finally {
      await (conn as RespTestClient | null)?.close();
    }
  }

  #refused(reply: RespValue): boolean {
    if (!(reply instanceof RespError)) return false;
    if (reply.code === "NOTMEMBER" || reply.code === "READONLY") {
      this.refusals[reply.code]++;
      return true;
    }
    return false;
  }

  #client(client: number, rng: Prng, running: () => boolean): Promise<void> {
    return this.#loop(`client ${client}`, client, running, async (conn, i) => {
      const op = randomOp(rng, KEYS, client, i);
      const handle = this.history.begin(client, op);
      let reply: RespValue;
      try {
        reply = await conn.call(argvOf(op), OP_TIMEOUT_MS);
      } catch (err) {
        this.history.unknown(handle);
        throw err;
      }
      if (this.#refused(reply)) {
        if (reply instanceof RespError && reply.code === "READONLY") {
          assert.notEqual(op.kind, "get", "a learner refused a read");
          assert.equal(reply.message, "READONLY You can't write against a read only replica.");
        }
        this.history.failed(handle);
        return true;
      }
      return this.history.record(handle, reply).outcome !== "ok";
    });
  }

  #ledgerWriter(running: () => boolean): Promise<void> {
    return this.#loop("ledger", 0, running, async (conn, i) => {
      const key = `ledger:${i}`;
      const value = `v${i}`;
      const reply = await conn.call(["SET", key, value], OP_TIMEOUT_MS);
      if (this.#refused(reply)) return true;
      if (reply === "OK") {
        this.ledger.set(key, value);
        return false;
      }
      // No outcome, or none yet (a restarted replica answers -LOADING while it loads).
      if (reply instanceof RespError && errorOutcome(reply) !== null) return true;
      throw new Error(`ledger SET ${key}: unexpected reply ${show(reply)}`);
    });
  }

  /** Waits until `n` more ops than now have completed with a result. */
  async progress(n: number, what: string): Promise<void> {
    const target = this.history.counts().done + n;
    await this.#cluster.waitFor(() => this.history.counts().done >= target, {
      timeoutMs: 20_000,
      message: `${n} more completed ops ${what}`,
      giveUpIf: () =>
        this.#failure === undefined ? undefined : `the workload failed: ${this.#failure}`,
    });
    this.#cluster.note(`workload: ${n} more ops completed ${what}`);
  }

  /** Stops starting ops and waits for the clients to finish (bounded by the op timeout). */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#done;
    this.stoppedAt = performance.now();
    if (this.#failure !== undefined) throw this.#failure;
  }

  /**
   * The longest time without a successful operation, from the workload's start to its stop: the
   * largest distance between consecutive returns of completed operations (and the ends).
   */
  longestGap(): { ms: number; from: number; to: number } {
    const rets = this.history.ops().flatMap((o) => o.ret === null ? [] : [o.ret]).sort((a, b) =>
      a - b
    );
    const points = [this.startedAt, ...rets, this.stoppedAt];
    let best = { ms: 0, from: this.startedAt, to: this.startedAt };
    for (let i = 1; i < points.length; i++) {
      const ms = points[i] - points[i - 1];
      if (ms > best.ms) best = { ms, from: points[i - 1], to: points[i] };
    }
    return best;
  }
}

Deno.test({
  name: "e2e membership: 3 -> 5 -> remove 1, 2 -> kill -9 a new one, under load; linearizable",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const seed = workloadSeed();
    console.log(`membership_test seed: ${seed} (replay with LAMPORTKV_SEED=${seed})`);
    await withCluster({ replicas: 3, extraArgs: EXTRA_ARGS }, async (cluster) => {
      const originalConfig = await Deno.readTextFile(cluster.configPath);
      const [c4, p4, c5, p5] = freePorts(4);
      await prepareJoiner(cluster, 4, [1, 2, 3], [c4, p4]);
      const allPorts = [1, 2, 3].map((id) => cluster.clientPort(id)).concat([c4, c5]);
      const workload = new MembershipWorkload(cluster, allPorts, seed);
      try {
        await workload.progress(100, "before any change");

        // Grow: 4 joins and becomes a voter.
        await cluster.restart(4);
        assert.equal(await respCall(cluster.clientPort(3), addCommand(cluster, 4), 10_000), "OK");
        await waitRole(cluster, 3, 4, "voter");
        await cluster.waitForView({ ids: [1, 2, 3, 4], timeoutMs: 20_000 });
        await workload.progress(100, "with 4 voters");

        // 5 joins (its file lists the current members 1..4 and itself).
        await prepareJoiner(cluster, 5, [1, 2, 3, 4], [c5, p5]);
        await cluster.restart(5);
        assert.equal(await respCall(cluster.clientPort(4), addCommand(cluster, 5), 10_000), "OK");
        await waitRole(cluster, 3, 5, "voter");
        await cluster.waitForView({ ids: [1, 2, 3, 4, 5], timeoutMs: 20_000 });
        const info5 = await cluster.info(5);
        assert.equal(info5.replica_role, "voter");
        assert.equal(info5.voters, "1,2,3,4,5");
        await workload.progress(100, "with 5 voters");

        // Shrink: remove 1, then 2; each is stopped once REMOVE replied.
        for (const [gone, rest] of [[1, [2, 3, 4, 5]], [2, [3, 4, 5]]] as const) {
          const asked = rest[rest.length - 1];
          assert.equal(
            await respCall(
              cluster.clientPort(asked),
              ["REPLICASET", "REMOVE", String(gone)],
              20_000,
            ),
            "OK",
          );
          await cluster.waitFor(async () => {
            const reply = await respCall(cluster.clientPort(gone), ["GET", "a"]);
            return reply instanceof RespError && reply.code === "NOTMEMBER";
          }, { message: `removed replica ${gone} to answer NOTMEMBER` });
          await cluster.kill(gone, "SIGTERM");
          await cluster.waitForView({ ids: [...rest], timeoutMs: 20_000 });
          await workload.progress(100, `without replica ${gone}`);
        }

        // Crash one of the new voters: 3 and 4 remain, a majority of 3, 4, 5.
        assert.equal((await cluster.kill(5)).signal, "SIGKILL");
        await cluster.waitForView({ ids: [3, 4], timeoutMs: 20_000 });
        await workload.progress(100, "after replica 5 was killed");
      } finally {
        await workload.stop();
      }

      // Final reads of every key, on both survivors, are part of the history.
      for (const [k, id] of KEYS.flatMap((key) => [[key, 3], [key, 4]] as const)) {
        const h = workload.history.begin(1000 + id, { kind: "get", key: k });
        workload.history.record(h, await respCall(cluster.clientPort(id), ["GET", k], 10_000));
      }
      const c = workload.history.counts();
      const gap = workload.longestGap();
      console.log(
        `history: ${c.done} completed, ${c.unknown} unknown, ${c.failed} failed (refused: ` +
          `${workload.refusals.NOTMEMBER} NOTMEMBER, ${workload.refusals.READONLY} READONLY); ` +
          `ledger: ${workload.ledger.size} acknowledged; longest gap ${Math.round(gap.ms)} ms`,
      );
      assert.ok(
        gap.ms <= MAX_GAP_MS,
        `no operation succeeded for ${Math.round(gap.ms)} ms (from ${
          Math.round(gap.from - workload.startedAt)
        } ms to ${Math.round(gap.to - workload.startedAt)} ms after the start)`,
      );
      const verdict = checkLinearizable(workload.history.ops());
      if (!verdict.ok) {
        assert.fail(
          `history not linearizable (seed ${seed}), key ${verdict.key}:\n${verdict.message}`,
        );
      }

      const agreed = await cluster.waitForAgreement({ ids: [3, 4], timeoutMs: 20_000 });
      assert.ok(agreed.delivered >= workload.history.writesDone() + workload.ledger.size);

      // Nothing acknowledged is lost: every acknowledged ledger write reads back on both.
      const keys = [...workload.ledger.keys()];
      assert.ok(keys.length > 0, "the ledger writer got nothing acknowledged");
      for (const id of [3, 4]) {
        const values = await respCall(cluster.clientPort(id), ["MGET", ...keys], 10_000);
        assert.ok(Array.isArray(values), `MGET on ${id}: ${show(values)}`);
        keys.forEach((k, i) => assert.equal(values[i], workload.ledger.get(k), `${k} on ${id}`));
      }

      // A client with the original config file (1, 2, 3; only 3 remains) still works. The
      // client library does not learn the members from the replicas: it works because 3 is in
      // its file and it fails over past the stopped 1 and 2.
      const client = new LamportClient(parseConfig(originalConfig, cluster.configPath), {
        deadlineMs: 20_000,
      });
      try {
        await client.put("after-membership", "works");
        assert.equal(await client.get("after-membership"), "works");
        assert.equal(client.replica, 3);
      } finally {
        await client.close();
      }
    });
  },
});

Deno.test({
  name: "e2e membership: REPLICASET errors, NOTMEMBER, learners, READONLY, INFO fields",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await withCluster({ replicas: 3, extraArgs: EXTRA_ARGS }, async (cluster) => {
      const p1 = cluster.clientPort(1);
      const [c4, p4, c5, p5] = freePorts(4);
      await prepareJoiner(cluster, 4, [1, 2, 3], [c4, p4]);
      // 5 is added once 4 is a voter: its file lists 4 too (it must reach every member).
      await prepareJoiner(cluster, 5, [1, 2, 3, 4], [c5, p5]);

      // INFO of a founding voter.
      const info1 = await cluster.info(1);
      assert.equal(info1.replica_role, "voter");
      assert.equal(info1.voters, "1,2,3");
      assert.equal(info1.learners, "");

      // ADD errors that the command line can tell, and those of the replica set in force.
      const inUse = await respCall(p1, [
        "REPLICASET",
        "ADD",
        "2",
        "127.0.0.1",
        String(c4),
        String(p4),
      ]);
      assert.equal(show(inUse), "-ERR replica id 2 is already a member");
      const addrInUse = await respCall(p1, [
        "REPLICASET",
        "ADD",
        "9",
        "localhost",
        String(c4),
        String(cluster.peerPort(3)),
      ]);
      assert.equal(
        show(addrInUse),
        `-ERR address localhost:${cluster.peerPort(3)} is already used by replica 3`,
      );
      const unknown = await respCall(p1, ["REPLICASET", "REMOVE", "9"]);
      assert.equal(show(unknown), "-ERR no such replica '9' (members: 1, 2, 3)");

      // A replica not yet added refuses clients, naming the members.
      await cluster.restart(5);
      const refused = await respCall(cluster.clientPort(5), ["GET", "k"]);
      assert.ok(
        refused instanceof RespError && refused.code === "NOTMEMBER",
        `replica 5 before ADD: ${show(refused)}`,
      );
      assert.equal((await cluster.info(5)).replica_role, "none");

      // 4 is added while it is not running: it stays catching up, so a second voter ADD is
      // refused as a change in progress (deterministically).
      assert.equal(await respCall(p1, addCommand(cluster, 4)), "OK");
      const rows = await members(p1);
      assert.deepEqual(rows.find((r) => r.id === 4)?.role, "catching-up");
      const busy = await respCall(cluster.clientPort(2), addCommand(cluster, 5));
      assert.equal(
        show(busy),
        "-ERR a membership change is already in progress: replica 4 is catching up to become a " +
          "voter",
      );
      await cluster.restart(4);
      await waitRole(cluster, 1, 4, "voter");
      await cluster.waitForView({ ids: [1, 2, 3, 4], timeoutMs: 20_000 });

      // 5 as a learner: linearizable reads, writes refused.
      assert.equal(await respCall(p1, addCommand(cluster, 5, true)), "OK");
      await waitRole(cluster, 1, 5, "learner");
      const info5 = await cluster.info(5);
      assert.equal(info5.replica_role, "learner");
      assert.equal(info5.voters, "1,2,3,4");
      assert.equal(info5.learners, "5");
      const learner = await RespTestClient.connect(cluster.clientPort(5));
      try {
        // Each SET is acknowledged before the learner is asked: a linearizable read sees it.
        for (let i = 0; i < 20; i++) {
          assert.equal(
            await respCall(cluster.clientPort(1 + (i % 4)), ["SET", "k", `v${i}`]),
            "OK",
          );
          assert.equal(await learner.call(["GET", "k"]), `v${i}`);
        }
        assert.equal(
          show(await learner.call(["SET", "k", "nope"])),
          "-READONLY You can't write against a read only replica.",
        );
        assert.equal(
          show(await learner.call(["DEL", "k"])),
          "-READONLY You can't write against a read only replica.",
        );
      } finally {
        await learner.close();
      }

      // READONLY on a connection: reads are answered locally, with no round to the voters: with
      // every voter frozen, a plain GET cannot be answered, a READONLY one is.
      const plain = await RespTestClient.connect(cluster.clientPort(5));
      const local = await RespTestClient.connect(cluster.clientPort(5));
      try {
        assert.equal(await local.call(["READONLY"]), "OK");
        for (const id of [1, 2, 3, 4]) cluster.pause(id);
        try {
          await plain.write(encodeCommand(["GET", "k"]));
          assert.equal(await local.call(["GET", "k"], 10_000), "v19");
          await assert.rejects(plain.next(200), /no reply/);
        } finally {
          for (const id of [1, 2, 3, 4]) cluster.resume(id);
        }
        assert.equal(await plain.next(15_000), "v19");
        assert.equal(await local.call(["READWRITE"]), "OK");
      } finally {
        await plain.close();
        await local.close();
      }

      // A removed voter answers NOTMEMBER, naming the current members.
      await cluster.waitForView({ ids: [1, 2, 3, 4], timeoutMs: 20_000 });
      assert.equal(
        await respCall(cluster.clientPort(2), ["REPLICASET", "REMOVE", "1"], 20_000),
        "OK",
      );
      await cluster.waitFor(async () => {
        const reply = await respCall(p1, ["GET", "k"]);
        return reply instanceof RespError && reply.code === "NOTMEMBER";
      }, { message: "removed replica 1 to answer NOTMEMBER" });
      const gone = await respCall(p1, ["GET", "k"]);
      const described = [2, 3, 4].map((id) => `${id} 127.0.0.1:${cluster.clientPort(id)}`)
        .join(", ");
      assert.equal(
        show(gone),
        `-NOTMEMBER this replica is not a member of the cluster; members: ${described}`,
      );
      assert.equal((await cluster.info(1)).replica_role, "none");
      const info2 = await cluster.info(2);
      assert.equal(info2.voters, "2,3,4");
      assert.equal(info2.learners, "5");
    });
  },
});
