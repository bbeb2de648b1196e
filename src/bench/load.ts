/**
 * The load generator: {@link runPhase} opens `connections` TCP connections (round-robin over the
 * targets), keeps `pipeline` operations in flight on each, and measures the replies.
 *
 * An operation is a row of {@link OPS}: one request (`SET`, `GET`, `INCR`, `MSET`) or several
 * sent together (`MULTI` ... `EXEC`); it completes with the last of its replies, and fails when
 * any of them is an error. Which operation comes next is drawn by the mix's weights.
 *
 * It is built to cost the measured system as little as possible: requests are copied from
 * pre-encoded templates ({@link RequestEncoder}); every time replies arrive, the replies in the
 * chunk are counted without being decoded ({@link ReplyCounter}) and as many new requests are
 * written, in one write; per connection there is one pending read and at most one pending write,
 * and no promise or object per request. Latency is the time from building a request's batch to
 * reading the chunk that completes its reply.
 *
 * A phase is: warmup (requests sent in it are not measured), then the measured part (until
 * `stop`: a number of requests or a time, and never longer than the hard cap), then a drain that
 * waits for the replies still in flight (requests without a reply within `drainMs` count as
 * errors). Only successful operations count as ops and go into the latency histogram; error
 * replies (`-ERR`, `-NOQUORUM`, `-UNKNOWN`, ...) and operations lost with their connection count
 * as errors.
 *
 * @module
 */
import { ConnWriter } from "../net/conn_writer.ts";
import { HARD_CAP_SECONDS, type Mix, mixOps, mixWeight, type StopRule } from "./args.ts";
import { LatencyHistogram } from "./histogram.ts";
import { OP_NAMES, opCode, type OpName, OPS } from "./ops.ts";
import { ReplyCounter, type ReplyKind } from "./reply_counter.ts";
import type { RequestEncoder } from "./requests.ts";

/** A replica's client address. */
export interface Target {
  /** Replica id (for messages). */
  id: number;
  /** Host name or address. */
  host: string;
  /** Client (RESP) port. */
  port: number;
}

/** What one phase does. */
export interface PhaseSpec {
  /** Where connection `i` goes: `targets[i % targets.length]`. */
  targets: readonly Target[];
  /** Number of connections (clients). */
  connections: number;
  /** Operations in flight per connection (1 = closed loop). */
  pipeline: number;
  /** Weights of the operations. */
  mix: Mix;
  /** Request templates (also fixes the key space). */
  encoder: RequestEncoder;
  /** Unmeasured time before the measured part, ms. */
  warmupMs: number;
  /** When the measured part stops sending. */
  stop: StopRule;
  /** Longest measured part whatever `stop` says, ms (default {@link HARD_CAP_SECONDS}). */
  hardCapMs?: number;
  /** How long replies still in flight are waited for after the measured part, ms (10 000). */
  drainMs?: number;
  /** Deadline to open a connection, ms (default 5000). */
  connectTimeoutMs?: number;
  /**
   * Use keys 0, 1, 2, ... in order instead of random keys, one per operation (every key slot of
   * the operation gets it). For preloading: with a PUT-only mix and `stop: {kind: "ops", ops:
   * keys}` every key is written once.
   */
  sequentialKeys?: boolean;
  /** Ends the phase early: sending stops, connections close, in-flight requests are not counted. */
  signal?: AbortSignal;
  /** Called once when the measured part begins (e.g. to sample CPU counters). */
  onMeasureStart?: () => void;
}

/** Figures of one operation kind in a phase. */
export interface OpStats {
  /** Successful measured operations. */
  ops: number;
  /** Measured operations that failed (error reply, lost connection, no reply in time). */
  errors: number;
  /** Successful operations with a null reply (`$-1`: a GET that found no value). */
  nil: number;
  /** Latencies of the successful measured replies. */
  latency: LatencyHistogram;
}

/** An error message and how often it occurred. */
export interface ErrorCount {
  /** The error reply text (without `-`) or a description of a connection failure. */
  message: string;
  /** Occurrences among measured requests (connection failures: connections). */
  count: number;
}

/** Result of {@link runPhase}. */
export interface PhaseResult {
  /** Figures of every operation (all zero for those not in the mix). */
  stats: Record<OpName, OpStats>;
  /** PUT figures (`stats.put`). */
  put: OpStats;
  /** GET figures (`stats.get`). */
  get: OpStats;
  /** Measured wall time: from the end of the warmup to the last measured reply, seconds. */
  seconds: number;
  /** Connections asked for. */
  connections: number;
  /** Connections that opened. */
  connected: number;
  /** Most frequent errors (at most 20 distinct messages, most frequent first). */
  errorMessages: ErrorCount[];
  /** True when the signal ended the phase. */
  aborted: boolean;
  /** True when the hard cap stopped a phase before its `--ops` were sent. */
  cutOff: boolean;
}

const READ_BUFFER_BYTES = 64 * 1024;
const MAX_DISTINCT_ERRORS = 20;
const DEFAULT_DRAIN_MS = 10_000;
const DEFAULT_CONNECT_TIMEOUT_MS = 5000;

function newStats(): OpStats {
  return { ops: 0, errors: 0, nil: 0, latency: new LatencyHistogram() };
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** State shared by the connections of one phase. */
class PhaseState {
  readonly spec: PhaseSpec;
  /** Figures by operation code. */
  readonly stats: OpStats[] = OPS.map(newStats);
  readonly errors = new Map<string, number>();
  /** Start of the measured part (performance.now() ms). */
  t0 = Infinity;
  /** Seconds mode: when sending stops. */
  tEnd = Infinity;
  /** When the hard cap stops sending. */
  capAt = Infinity;
  /** Ops mode: measured requests still to send. */
  budget = Infinity;
  /** Next key in sequential mode. */
  nextKey = 0;
  /** No more requests are sent. */
  stopped = false;
  cutOff = false;
  aborted = false;
  /** Time of the last measured reply (or failure). */
  lastMeasuredAt = -Infinity;
  /** Codes of the mix's operations and their cumulative shares (the last is 1). */
  readonly mixCodes: Uint8Array;
  readonly mixShares: Float64Array;
  /** Bytes of the longest request of the mix. */
  readonly maxOpBytes: number;
  /** Deepest reply nesting of the mix's operations. */
  readonly replyDepth: number;
  /** Most key slots of one of the mix's operations. */
  readonly keySlots: number;
  /** Called once, when sending stops (starts the drain deadline). */
  onStop: () => void = () => {};

  constructor(spec: PhaseSpec) {
    this.spec = spec;
    const names = mixOps(spec.mix);
    if (names.length === 0) throw new Error("a mix needs an operation with a non-zero weight");
    const codes = names.map(opCode);
    const total = names.reduce((sum, op) => sum + mixWeight(spec.mix, op), 0);
    let cumulative = 0;
    this.mixCodes = Uint8Array.from(codes);
    this.mixShares = Float64Array.from(
      names,
      (op) => (cumulative += mixWeight(spec.mix, op)) / total,
    );
    this.mixShares[names.length - 1] = 1;
    this.maxOpBytes = Math.max(...codes.map((c) => spec.encoder.opBytes[c]));
    this.replyDepth = Math.max(...codes.map((c) => OPS[c].replyDepth));
    this.keySlots = Math.max(...codes.map((c) => OPS[c].keySlots));
    if (spec.stop.kind === "ops") this.budget = spec.stop.ops;
  }

  /** The code of the next operation, drawn by the mix's weights. */
  nextOp(): number {
    const codes = this.mixCodes;
    if (codes.length === 1) return codes[0];
    const r = Math.random();
    const shares = this.mixShares;
    let i = 0;
    while (r >= shares[i] && i < codes.length - 1) i++;
    return codes[i];
  }

  noteError(message: string, count = 1): void {
    const text = message.length > 200 ? `${message.slice(0, 200)}...` : message;
    const seen = this.errors.get(text);
    if (seen !== undefined) this.errors.set(text, seen + count);
    else if (this.errors.size < MAX_DISTINCT_ERRORS) this.errors.set(text, count);
  }

  /** Stops sending for good (idempotent). */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.onStop();
  }

  /** How many requests a connection with `free` slots may send now (0 = none, maybe never). */
  allowance(now: number, free: number): number {
    if (this.stopped || free <= 0) return 0;
    if (now < this.t0) return free;
    if (now >= this.capAt) {
      this.cutOff = this.spec.stop.kind === "ops";
      this.stop();
      return 0;
    }
    if (now >= this.tEnd) {
      this.stop();
      return 0;
    }
    let n = Math.min(free, this.budget);
    if (this.spec.sequentialKeys) n = Math.min(n, this.spec.encoder.keys - this.nextKey);
    this.budget -= n;
    if (
      this.budget <= 0 || (this.spec.sequentialKeys && this.nextKey + n >= this.spec.encoder.keys)
    ) {
      this.stop();
    }
    return n;
  }
}

/** One benchmark connection. */
class LoadConnection {
  readonly #phase: PhaseState;
  readonly #conn: Deno.TcpConn;
  readonly #target: Target;
  readonly #counter: ReplyCounter;
  readonly #pipeline: number;
  // In-flight operations, oldest first: a ring of send time, operation code, measured flag,
  // replies still to come, and whether a reply so far was an error or a null.
  readonly #sentAt: Float64Array;
  readonly #kind: Uint8Array;
  readonly #measured: Uint8Array;
  readonly #remaining: Uint16Array;
  readonly #failed: Uint8Array;
  readonly #nil: Uint8Array;
  /** Key indexes of the operation being written, by key slot. */
  readonly #keys: Float64Array;
  #head = 0;
  #inFlight = 0;
  #now = 0;
  #closed = false;
  #closeReason: string | null = null;
  /** Writes requests in order, joining those queued in one turn into one socket write. */
  readonly #writer: ConnWriter;

  constructor(phase: PhaseState, conn: Deno.TcpConn, target: Target) {
    this.#phase = phase;
    this.#conn = conn;
    this.#target = target;
    this.#pipeline = phase.spec.pipeline;
    this.#counter = new ReplyCounter({ maxDepth: phase.replyDepth });
    this.#sentAt = new Float64Array(this.#pipeline);
    this.#kind = new Uint8Array(this.#pipeline);
    this.#measured = new Uint8Array(this.#pipeline);
    this.#remaining = new Uint16Array(this.#pipeline);
    this.#failed = new Uint8Array(this.#pipeline);
    this.#nil = new Uint8Array(this.#pipeline);
    this.#keys = new Float64Array(phase.keySlots);
    // A failed write fails what is in flight; the read side then ends on the closed socket.
    this.#writer = new ConnWriter(
      conn,
      (err) => this.#lose(this.#closeReason ?? `write failed: ${describe(err)}`),
    );
  }

  /** Handles one complete reply (called by the counter, in order). */
  readonly #onReply = (kind: ReplyKind, error?: string): void => {
    if (this.#inFlight === 0) throw new Error("more replies than requests");
    const slot = this.#head;
    const measured = this.#measured[slot] === 1;
    const phase = this.#phase;
    if (kind === "error") {
      // The first error of an operation is its error.
      if (this.#failed[slot] === 0 && measured) phase.noteError(error ?? "error reply");
      this.#failed[slot] = 1;
    } else if (kind === "nil") {
      this.#nil[slot] = 1;
    }
    if (--this.#remaining[slot] > 0) return;
    this.#head = slot + 1 === this.#pipeline ? 0 : slot + 1;
    this.#inFlight--;
    if (!measured) return;
    const stats = phase.stats[this.#kind[slot]];
    phase.lastMeasuredAt = this.#now;
    if (this.#failed[slot] === 1) {
      stats.errors++;
      return;
    }
    stats.ops++;
    if (this.#nil[slot] === 1) stats.nil++;
    stats.latency.recordMs(this.#now - this.#sentAt[slot]);
  };

  /** Sends what the phase allows, then reads replies until nothing is in flight. */
  async run(): Promise<void> {
    const buf = new Uint8Array(READ_BUFFER_BYTES);
    this.#fill(performance.now());
    // Bounded in time: the phase's watchdog closes the connection, which ends a pending read.
    while (this.#inFlight > 0 && !this.#closed) {
      let n: number | null;
      try {
        n = await this.#conn.read(buf);
      } catch (err) {
        this.#lose(this.#closeReason ?? `read failed: ${describe(err)}`);
        break;
      }
      if (n === null) {
        this.#lose(this.#closeReason ?? "connection closed by the replica");
        break;
      }
      const now = performance.now();
      this.#now = now;
      try {
        this.#counter.feed(buf.subarray(0, n), this.#onReply);
      } catch (err) {
        this.#lose(describe(err));
        break;
      }
      this.#fill(now);
    }
    this.close(null);
  }

  /** Closes the connection; `reason` (if any) becomes the error of requests still in flight. */
  close(reason: string | null): void {
    if (reason !== null && this.#closeReason === null) this.#closeReason = reason;
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch {
      // already closed
    }
  }

  /** Counts measured in-flight requests as failed with `reason` and closes. */
  #lose(reason: string): void {
    const phase = this.#phase;
    let lost = 0;
    for (let k = 0, slot = this.#head; k < this.#inFlight; k++) {
      if (this.#measured[slot] === 1 && !phase.aborted) {
        phase.stats[this.#kind[slot]].errors++;
        lost++;
      }
      slot = slot + 1 === this.#pipeline ? 0 : slot + 1;
    }
    this.#inFlight = 0;
    if (lost > 0) {
      phase.lastMeasuredAt = Math.max(phase.lastMeasuredAt, performance.now());
      phase.noteError(`replica ${this.#target.id}: ${reason}`, lost);
    }
    this.close(reason);
  }

  /** Sends as many new operations as the phase allows, in one write. */
  #fill(now: number): void {
    if (this.#closed) return;
    const phase = this.#phase;
    const n = phase.allowance(now, this.#pipeline - this.#inFlight);
    if (n === 0) return;
    const spec = phase.spec;
    const enc = spec.encoder;
    const keys = this.#keys;
    const measured = now >= phase.t0 ? 1 : 0;
    const batch = new Uint8Array(n * phase.maxOpBytes);
    let offset = 0;
    let slot = this.#head + this.#inFlight;
    if (slot >= this.#pipeline) slot -= this.#pipeline;
    for (let k = 0; k < n; k++) {
      const code = phase.nextOp();
      const kind = OPS[code];
      if (spec.sequentialKeys) keys.fill(phase.nextKey++);
      else {
        for (let s = 0; s < kind.keySlots; s++) keys[s] = Math.floor(Math.random() * enc.keys);
      }
      offset = enc.writeOp(batch, offset, code, keys);
      this.#sentAt[slot] = now;
      this.#kind[slot] = code;
      this.#measured[slot] = measured;
      this.#remaining[slot] = kind.replies;
      this.#failed[slot] = 0;
      this.#nil[slot] = 0;
      slot = slot + 1 === this.#pipeline ? 0 : slot + 1;
    }
    this.#inFlight += n;
    this.#writer.write(batch.subarray(0, offset));
  }
}

/** Opens a TCP connection with a deadline; a connection that opens too late is closed. */
async function connectWithTimeout(
  target: Target,
  timeoutMs: number,
): Promise<Deno.TcpConn> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let late = false;
  const attempt = Deno.connect({ hostname: target.host, port: target.port });
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      late = true;
      reject(new Error(`no connection within ${timeoutMs} ms`));
    }, timeoutMs);
  });
  attempt.then((c) => {
    if (late) c.close();
  }, () => {});
  try {
    const conn = await Promise.race([attempt, deadline]);
    conn.setNoDelay(true);
    return conn;
  } finally {
    clearTimeout(timer);
  }
}

/** Runs one phase (see the module doc) and returns its figures. */
export async function runPhase(spec: PhaseSpec): Promise<PhaseResult> {
  if (spec.targets.length === 0) throw new Error("no targets");
  const phase = new PhaseState(spec);
  let measureStarted = false;
  const startMeasure = () => {
    if (measureStarted) return;
    measureStarted = true;
    spec.onMeasureStart?.();
  };

  // Open every connection (concurrently).
  const timeoutMs = spec.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const opened = await Promise.allSettled(
    Array.from(
      { length: spec.connections },
      (_, i) => connectWithTimeout(spec.targets[i % spec.targets.length], timeoutMs),
    ),
  );
  const conns: LoadConnection[] = [];
  opened.forEach((r, i) => {
    const target = spec.targets[i % spec.targets.length];
    if (r.status === "fulfilled") conns.push(new LoadConnection(phase, r.value, target));
    else {
      phase.noteError(
        `cannot connect to replica ${target.id} (${target.host}:${target.port}): ` +
          describe(r.reason),
      );
    }
  });

  const warmupMs = Math.max(0, spec.warmupMs);
  const hardCapMs = spec.hardCapMs ?? HARD_CAP_SECONDS * 1000;
  const drainMs = spec.drainMs ?? DEFAULT_DRAIN_MS;
  const start = performance.now();
  phase.t0 = start + warmupMs;
  phase.capAt = phase.t0 + hardCapMs;
  if (spec.stop.kind === "seconds") phase.tEnd = phase.t0 + spec.stop.seconds * 1000;
  const sendingEndsBy = Math.min(phase.capAt, phase.tEnd);

  const onAbort = () => {
    phase.aborted = true;
    phase.stop();
    for (const c of conns) c.close("aborted");
  };
  const timers: ReturnType<typeof setTimeout>[] = [];
  if (warmupMs === 0) startMeasure();
  else timers.push(setTimeout(startMeasure, warmupMs));
  // The watchdog: whatever is still in flight `drainMs` after sending stopped is given up. Sending
  // stops when the budget is spent or at the end time, and at the latest at the hard cap.
  const giveUp = () => {
    for (const c of conns) c.close(`no reply within ${drainMs / 1000} s of the end of the level`);
  };
  let drainTimer: ReturnType<typeof setTimeout> | undefined;
  phase.onStop = () => {
    if (drainTimer === undefined) drainTimer = setTimeout(giveUp, drainMs);
  };
  timers.push(setTimeout(() => {
    if (sendingEndsBy === phase.capAt && spec.stop.kind === "ops" && phase.budget > 0) {
      phase.cutOff = true;
    }
    phase.stop();
  }, sendingEndsBy - start));
  if (spec.signal?.aborted) onAbort();
  spec.signal?.addEventListener("abort", onAbort);
  try {
    await Promise.all(conns.map((c) => c.run()));
  } finally {
    for (const t of timers) clearTimeout(t);
    clearTimeout(drainTimer);
    spec.signal?.removeEventListener("abort", onAbort);
    for (const c of conns) c.close(null);
  }
  startMeasure();
  const end = Number.isFinite(phase.lastMeasuredAt) ? phase.lastMeasuredAt : performance.now();
  const errorMessages = [...phase.errors].map(([message, count]) => ({ message, count }))
    .sort((a, b) => b.count - a.count);
  const stats = Object.fromEntries(OP_NAMES.map((op, code) => [op, phase.stats[code]])) as Record<
    OpName,
    OpStats
  >;
  return {
    stats,
    put: stats.put,
    get: stats.get,
    seconds: Math.max(0, end - phase.t0) / 1000,
    connections: spec.connections,
    connected: conns.length,
    errorMessages,
    aborted: phase.aborted,
    cutOff: phase.cutOff,
  };
}
