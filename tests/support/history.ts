/**
 * Records a concurrent client history for the linearizability checker
 * (`tests/support/linearizability.ts`), with call and return times from `performance.now()`.
 *
 * ```ts
 * const history = new HistoryRecorder();
 * const h = history.begin(client, { kind: "put", key: "k", value: "v1" });
 * const reply = await conn.call(["SET", "k", "v1"]);
 * history.record(h, reply);            // or end(h, result) / unknown(h) / failed(h)
 * checkLinearizable(history.ops());
 * ```
 *
 * - {@link HistoryRecorder.end}: the op returned a result.
 * - {@link HistoryRecorder.unknown}: timeout, connection loss or an `UNKNOWN` error: the op may or
 *   may not have taken effect (`ret = null`, no result).
 * - {@link HistoryRecorder.failed}: a definite non-application (`NOQUORUM`, `REFUSED`, `LOADING`):
 *   the op is dropped from the history.
 *
 * An op begun and never ended is reported as unknown by {@link HistoryRecorder.ops}.
 *
 * {@link runWorkload} drives concurrent clients over real connections with a seeded random mix
 * of operations and records their history.
 *
 * @module
 */
import { RespError, type RespValue } from "../../src/net/resp.ts";
import {
  ConnectionClosedError,
  describeError,
  ReplyTimeoutError,
  RespTestClient,
} from "./cluster.ts";
import type { HistoryOp } from "./linearizability.ts";
import { Prng } from "./prng.ts";

/** The operation of a history entry. */
export type HistoryOpSpec = HistoryOp["op"];
/** A known result of a history entry. */
export type HistoryResult = NonNullable<HistoryOp["result"]>;

/** Refers to one begun op. */
export interface OpHandle {
  /** Position in the recorder (begin order). */
  readonly index: number;
}

type State = "pending" | "done" | "unknown" | "failed";

interface Recorded {
  op: HistoryOp;
  state: State;
}

/** How one reply is classified by {@link classifyReply}. */
export type ReplyClass =
  | { outcome: "ok"; result: HistoryResult }
  | { outcome: "unknown"; reason: string }
  | { outcome: "failed"; reason: string };

/**
 * What an error reply says about a write's fate: `"unknown"` for `-UNKNOWN` (it may still be
 * applied), `"failed"` for a definite non-application (`-NOQUORUM`, `-REFUSED`, and `-LOADING`
 * from a restarting replica still loading its data directory), `null` for any other error.
 */
export function errorOutcome(reply: RespError): "unknown" | "failed" | null {
  if (reply.code === "UNKNOWN") return "unknown";
  if (reply.code === "NOQUORUM" || reply.code === "REFUSED" || reply.code === "LOADING") {
    return "failed";
  }
  return null;
}

/**
 * Classifies a RESP reply to `op`: a result of the right shape (`+OK` for put, a bulk or null for
 * get, `:0`/`:1` for delete and has); `-UNKNOWN ...` is unknown; `-NOQUORUM`/`-REFUSED`/`-LOADING`
 * failed.
 *
 * @throws {Error} for any other reply (a wrong shape or another error): a bug in the system.
 */
export function classifyReply(op: HistoryOpSpec, reply: RespValue): ReplyClass {
  if (reply instanceof RespError) {
    const outcome = errorOutcome(reply);
    if (outcome !== null) return { outcome, reason: reply.message };
    throw new Error(
      `unexpected error reply to ${op.kind} ${JSON.stringify(op.key)}: ` +
        `-${reply.message}`,
    );
  }
  switch (op.kind) {
    case "put":
      if (reply === "OK") return { outcome: "ok", result: { kind: "ok" } };
      break;
    case "get":
      if (reply === null || typeof reply === "string") {
        return { outcome: "ok", result: { kind: "value", value: reply } };
      }
      break;
    case "delete":
    case "has":
      if (reply === 0 || reply === 1) {
        return { outcome: "ok", result: { kind: "int", value: reply } };
      }
      break;
  }
  throw new Error(
    `reply of the wrong shape to ${op.kind} ${JSON.stringify(op.key)}: ` +
      JSON.stringify(reply),
  );
}

/** Records begun and ended operations of many concurrent clients. */
export class HistoryRecorder {
  readonly #entries: Recorded[] = [];
  readonly #now: () => number;

  /** A recorder; `now` is the clock (default `performance.now`). */
  constructor(now: () => number = () => performance.now()) {
    this.#now = now;
  }

  /** Starts an op of `client` now. */
  begin(client: number, op: HistoryOpSpec): OpHandle {
    const index = this.#entries.length;
    this.#entries.push({
      op: { client, op: { ...op }, call: this.#now(), ret: null },
      state: "pending",
    });
    return { index };
  }

  #take(handle: OpHandle): Recorded {
    const e = this.#entries[handle.index];
    if (e === undefined) throw new Error(`no op #${handle.index} in this history`);
    if (e.state !== "pending") throw new Error(`op #${handle.index} already ended (${e.state})`);
    return e;
  }

  /** The op returned `result` now. */
  end(handle: OpHandle, result: HistoryResult): void {
    const e = this.#take(handle);
    e.op.ret = this.#now();
    e.op.result = result;
    e.state = "done";
  }

  /** The op's outcome is unknown (timeout, connection lost, `UNKNOWN`): `ret = null`. */
  unknown(handle: OpHandle): void {
    const e = this.#take(handle);
    e.op.ret = null;
    delete e.op.result;
    e.state = "unknown";
  }

  /** The op was definitely not applied (`NOQUORUM`, `REFUSED`): it is left out of the history. */
  failed(handle: OpHandle): void {
    this.#take(handle).state = "failed";
  }

  /**
   * Ends the op according to its RESP reply (see {@link classifyReply}); returns the class.
   *
   * @throws {Error} for a reply that is neither a result nor a known error (the op is then
   * recorded as unknown, so the history stays well-formed).
   */
  record(handle: OpHandle, reply: RespValue): ReplyClass {
    const e = this.#entries[handle.index];
    let cls: ReplyClass;
    try {
      cls = classifyReply(e.op.op, reply);
    } catch (err) {
      this.unknown(handle);
      throw err;
    }
    if (cls.outcome === "ok") this.end(handle, cls.result);
    else if (cls.outcome === "unknown") this.unknown(handle);
    else this.failed(handle);
    return cls;
  }

  /** The history for the checker: every op but the failed ones; pending ones count as unknown. */
  ops(): HistoryOp[] {
    return this.#entries
      .filter((e) => e.state !== "failed")
      .map((e) => {
        const op: HistoryOp = {
          client: e.op.client,
          op: { ...e.op.op },
          call: e.op.call,
          ret: null,
        };
        if (e.state === "done") {
          op.ret = e.op.ret;
          op.result = e.op.result;
        }
        return op;
      });
  }

  /** Writes (PUT, DELETE) that completed with a result: each took one log index. */
  writesDone(): number {
    return this.#entries.filter((e) =>
      e.state === "done" && (e.op.op.kind === "put" || e.op.op.kind === "delete")
    ).length;
  }

  /** How many ops ended each way so far. */
  counts(): { done: number; unknown: number; failed: number; pending: number } {
    const c = { done: 0, unknown: 0, failed: 0, pending: 0 };
    for (const e of this.#entries) c[e.state]++;
    return c;
  }
}

// ---------------------------------------------------------------------------------------------
// A random workload that records its history

/** Options of {@link runWorkload}. */
export interface WorkloadOptions {
  /** Client ports of the replicas, by id; client `i` starts on the `i % n`-th. */
  replicas: readonly { id: number; port: number }[];
  /** Number of concurrent clients (each with its own connection, one op in flight). */
  clients: number;
  /** Keys to work on. */
  keys: readonly string[];
  /** Seeds each client's generator. */
  rng: Prng;
  /** No op starts after this many ms. */
  runMs: number;
  /** No client runs more ops than this. */
  maxOpsPerClient: number;
  /** No op starts once this returns true (checked before each op). */
  stop?: () => boolean;
  /** A reply later than this makes the op unknown and the client reconnect (default 4000). */
  opTimeoutMs?: number;
  /**
   * After a timeout, a lost connection or NOQUORUM, reconnect to the next replica in `replicas`
   * instead of the same one (default false).
   */
  failover?: boolean;
  /** Where to record (default: a new recorder). */
  history?: HistoryRecorder;
  /** Log sink for connection trouble (e.g. `cluster.note`). */
  note?: (line: string) => void;
}

/** The seed of a workload: `LAMPORTKV_SEED` if set (to replay a run), else a random one. */
export function workloadSeed(): number {
  const text = Deno.env.get("LAMPORTKV_SEED");
  if (text !== undefined && /^[0-9]+$/.test(text)) return Number(text) >>> 0;
  return (Math.random() * 2 ** 32) >>> 0;
}

/** A random op on one of `keys`; put values are unique (`c<client>-<n>`). */
export function randomOp(
  rng: Prng,
  keys: readonly string[],
  client: number,
  n: number,
): HistoryOpSpec {
  const key = rng.pick(keys);
  const r = rng.next();
  if (r < 0.4) return { kind: "put", key, value: `c${client}-${n}` };
  if (r < 0.75) return { kind: "get", key };
  if (r < 0.9) return { kind: "delete", key };
  return { kind: "has", key };
}

/** The RESP command of an op (Redis spellings). */
export function argvOf(op: HistoryOpSpec): string[] {
  switch (op.kind) {
    case "put":
      return ["SET", op.key, op.value ?? ""];
    case "get":
      return ["GET", op.key];
    case "delete":
      return ["DEL", op.key];
    case "has":
      return ["EXISTS", op.key];
  }
}

/** A timeout, a refused connection or a lost one. */
export function isConnectionTrouble(err: unknown): boolean {
  return err instanceof ReplyTimeoutError || err instanceof ConnectionClosedError ||
    err instanceof Deno.errors.ConnectionRefused ||
    err instanceof Deno.errors.ConnectionReset || err instanceof Deno.errors.BrokenPipe;
}

/**
 * Runs `clients` concurrent clients doing a random mix of PUT/GET/DELETE/EXISTS and records the
 * history. Bounded by `runMs` and `maxOpsPerClient`; an op waits at most `opTimeoutMs` (then it is
 * unknown), so the whole run ends within about `runMs + opTimeoutMs` (plus connect time).
 *
 * @throws {Error} when a replica gives a reply no correct replica gives (wrong shape, `ERR`).
 */
export async function runWorkload(options: WorkloadOptions): Promise<HistoryRecorder> {
  const history = options.history ?? new HistoryRecorder();
  const stopAt = performance.now() + options.runMs;
  const timeoutMs = options.opTimeoutMs ?? 4000;
  const note = options.note ?? (() => {});
  const n = options.replicas.length;
  const running = () => performance.now() < stopAt && !(options.stop?.() ?? false);

  const runClient = async (client: number, rng: Prng): Promise<void> => {
    let at = client % n;
    let conn: RespTestClient | null = null;
    const moveOn = async (why: string) => {
      await conn?.close();
      conn = null;
      if (options.failover) at = (at + 1) % n;
      note(`client ${client}: ${why}; reconnecting to replica ${options.replicas[at].id}`);
    };
    try {
      for (let i = 0; i < options.maxOpsPerClient && running(); i++) {
        if (conn === null) {
          try {
            conn = await RespTestClient.connect(options.replicas[at].port);
          } catch (err) {
            if (!isConnectionTrouble(err)) throw err;
            await moveOn(describeError(err));
            // Every replica may be down for a moment: back off a little before the next try.
            await new Promise((resolve) => setTimeout(resolve, 20));
            continue;
          }
        }
        const op = randomOp(rng, options.keys, client, i);
        const handle = history.begin(client, op);
        let reply: RespValue;
        try {
          reply = await conn.call(argvOf(op), timeoutMs);
        } catch (err) {
          history.unknown(handle);
          if (!isConnectionTrouble(err)) throw err;
          await moveOn(describeError(err));
          continue;
        }
        const cls = history.record(handle, reply); // throws on a reply no correct replica gives
        if (cls.outcome !== "ok" && options.failover) await moveOn(cls.reason);
      }
    } finally {
      await (conn as RespTestClient | null)?.close();
    }
  };

  await Promise.all(
    Array.from(
      { length: options.clients },
      (_, i) => runClient(i, new Prng(options.rng.int(0, 2 ** 32 - 1))),
    ),
  );
  return history;
}
