/**
 * The load generator: {@link runPhase} runs `connections` clients, each with one TCP connection
 * (round-robin over the targets), keeps `pipeline` operations in flight on each, and measures the
 * replies. Against a sharded cluster ({@link PhaseRouting}) a client has one connection to each
 * group instead (to the group's replicas round-robin), `pipeline` operations in flight over all
 * of them, and sends each operation to the group owning its key's hash slot; a `-MOVED` reply is
 * followed (the operation is sent again where it names, and the slot's owner corrected), and
 * counted; the operation's latency runs from its first sending.
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
import { type KeySpace, OP_NAMES, opCode, type OpKind, type OpName, OPS } from "./ops.ts";
import { type BenchShard, shardOfAddress } from "./shards.ts";
import { parseRedirect } from "../kv/slots.ts";
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
  /**
   * Where client `i` goes without `routing`: `targets[i % targets.length]` (ignored with
   * `routing`).
   */
  targets: readonly Target[];
  /**
   * A sharded cluster: client `i` has a connection to replica `i % n` of each shard's `n` and
   * sends each operation to the shard owning its first key's slot (the mix must have one key per
   * operation: several would span slots).
   */
  routing?: PhaseRouting;
  /** Number of clients (connections without `routing`). */
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

/** How a phase routes operations over the shards of a sharded cluster. */
export interface PhaseRouting {
  /** The shards (replica groups). */
  shards: readonly BenchShard[];
  /** The owning shard of each slot; a MOVED naming another owner updates it (not with misroute). */
  owner: Uint16Array;
  /** The slot of each key index, by key space (see `keySlotTable`). */
  keySlots: Readonly<Record<KeySpace, Uint16Array>>;
  /**
   * Send every operation first to the shard after its owner (in shard order), which answers
   * MOVED, then follow that: to measure what one redirection costs.
   */
  misroute: boolean;
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
  /** Clients asked for. */
  connections: number;
  /** Clients whose connections (one per shard) all opened. */
  connected: number;
  /** Successful measured operations by the shard that answered them (one shard without routing). */
  shardOps: number[];
  /** MOVED and ASK redirections followed by measured operations. */
  moved: number;
  /** Of {@link moved}, those answered by each shard. */
  shardMoved: number[];
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

/** The key space of the first key of `kind` (null: it has no key). */
function firstKeySpace(kind: OpKind): KeySpace | null {
  for (const command of kind.commands) {
    for (const arg of command) if (typeof arg === "object" && "key" in arg) return arg.space;
  }
  return null;
}

/** State shared by the clients of one phase. */
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
  /** By operation code, the slots of its first key's key space (null: not routed). */
  readonly routeSlots: (Uint16Array | null)[];
  /** Successful measured operations by shard. */
  readonly shardOps: number[];
  /** MOVED and ASK redirections followed by measured operations. */
  moved = 0;
  /** Of {@link moved}, those answered by each shard. */
  readonly shardMoved: number[];
  /** A one-key scratch array (re-sent operations). */
  readonly one = new Float64Array(1);
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
    const routing = spec.routing;
    this.routeSlots = OPS.map((kind) => {
      const space = firstKeySpace(kind);
      return routing === undefined || space === null ? null : routing.keySlots[space];
    });
    this.shardOps = new Array(routing?.shards.length ?? 1).fill(0);
    this.shardMoved = new Array(routing?.shards.length ?? 1).fill(0);
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

/** `ASKING`, sent before an operation that follows an `-ASK`. */
const ASKING = new TextEncoder().encode("*1\r\n$6\r\nASKING\r\n");

/** Most MOVED and ASK redirections one operation follows before it counts as an error. */
const MAX_REDIRECTS = 5;

/**
 * One benchmark client: one connection per shard (one for a cluster without groups), at most
 * `pipeline` operations in flight over all of them, each operation sent to the shard that owns
 * its key's slot (or, with `misroute`, first to another one).
 */
class LoadClient {
  readonly phase: PhaseState;
  /** The connection to each shard, by shard index. */
  readonly legs: LoadConnection[] = [];
  /** Operations in flight over every leg. */
  inFlight = 0;
  #closed = false;
  /** Key indexes of the operation being written, by key slot. */
  readonly #keys: Float64Array;
  /** Per leg, the batch being written in one {@link fill} and its length. */
  readonly #batches: (Uint8Array | null)[];
  readonly #offsets: Int32Array;

  constructor(phase: PhaseState, conns: readonly Deno.TcpConn[], targets: readonly Target[]) {
    this.phase = phase;
    this.#keys = new Float64Array(phase.keySlots);
    conns.forEach((conn, shard) => {
      this.legs.push(new LoadConnection(this, shard, conn, targets[shard]));
    });
    this.#batches = this.legs.map(() => null);
    this.#offsets = new Int32Array(this.legs.length);
  }

  /** Sends what the phase allows, then reads every leg until nothing is in flight. */
  async run(): Promise<void> {
    this.fill(performance.now());
    await Promise.all(this.legs.map((leg) => leg.run()));
    this.close(null);
  }

  /** Closes every leg; `reason` (if any) becomes the error of requests still in flight. */
  close(reason: string | null): void {
    this.#closed = true;
    for (const leg of this.legs) leg.close(reason);
  }

  /** Counts every leg's measured in-flight operations as failed and closes them all. */
  lose(reason: string): void {
    for (const leg of this.legs) leg.lose(reason);
    this.close(reason);
  }

  /** The leg that gets an operation on key `key` of the key space `slots` maps (null: any). */
  #legOf(slots: Uint16Array | null, key: number): LoadConnection {
    const routing = this.phase.spec.routing;
    if (slots === null || routing === undefined) return this.legs[0];
    const owner = routing.owner[slots[key]];
    return this.legs[routing.misroute ? (owner + 1) % this.legs.length : owner];
  }

  /** Sends as many new operations as the phase allows, one write per leg; closes when done. */
  fill(now: number): void {
    if (this.#closed) return;
    const phase = this.phase;
    const n = phase.allowance(now, phase.spec.pipeline - this.inFlight);
    if (n === 0) {
      if (this.inFlight === 0) this.close(null);
      return;
    }
    const spec = phase.spec;
    const enc = spec.encoder;
    const keys = this.#keys;
    const measured = now >= phase.t0 ? 1 : 0;
    const batches = this.#batches;
    const offsets = this.#offsets;
    for (let k = 0; k < n; k++) {
      const code = phase.nextOp();
      const kind = OPS[code];
      if (spec.sequentialKeys) keys.fill(phase.nextKey++);
      else {
        for (let s = 0; s < kind.keySlots; s++) keys[s] = Math.floor(Math.random() * enc.keys);
      }
      const leg = this.#legOf(phase.routeSlots[code], keys[0]);
      const i = leg.shard;
      const batch = batches[i] ??= new Uint8Array(n * phase.maxOpBytes);
      offsets[i] = enc.writeOp(batch, offsets[i], code, keys);
      leg.push(code, keys[0], now, measured, 0);
    }
    this.inFlight += n;
    for (let i = 0; i < batches.length; i++) {
      const batch = batches[i];
      if (batch === null) continue;
      this.legs[i].write(batch.subarray(0, offsets[i]));
      batches[i] = null;
      offsets[i] = 0;
    }
  }
}

/** One connection of a {@link LoadClient}, to a replica of one shard. */
class LoadConnection {
  /** The index of its shard. */
  readonly shard: number;
  readonly #client: LoadClient;
  readonly #phase: PhaseState;
  readonly #conn: Deno.TcpConn;
  readonly #target: Target;
  readonly #counter: ReplyCounter;
  readonly #pipeline: number;
  // In-flight operations, oldest first: a ring of send time, operation code, measured flag,
  // replies still to come, whether a reply so far was an error or a null, the first key's index
  // and the MOVED and ASK redirections followed so far.
  readonly #sentAt: Float64Array;
  readonly #kind: Uint8Array;
  readonly #measured: Uint8Array;
  readonly #remaining: Uint16Array;
  readonly #failed: Uint8Array;
  readonly #nil: Uint8Array;
  readonly #key: Float64Array;
  readonly #redirects: Uint8Array;
  #head = 0;
  #inFlight = 0;
  #now = 0;
  #closed = false;
  #closeReason: string | null = null;
  /** Writes requests in order, joining those queued in one turn into one socket write. */
  readonly #writer: ConnWriter;

  constructor(client: LoadClient, shard: number, conn: Deno.TcpConn, target: Target) {
    this.shard = shard;
    this.#client = client;
    this.#phase = client.phase;
    this.#conn = conn;
    this.#target = target;
    // Every operation of the client may be in flight on this leg.
    this.#pipeline = this.#phase.spec.pipeline;
    this.#counter = new ReplyCounter({ maxDepth: this.#phase.replyDepth });
    this.#sentAt = new Float64Array(this.#pipeline);
    this.#kind = new Uint8Array(this.#pipeline);
    this.#measured = new Uint8Array(this.#pipeline);
    this.#remaining = new Uint16Array(this.#pipeline);
    this.#failed = new Uint8Array(this.#pipeline);
    this.#nil = new Uint8Array(this.#pipeline);
    this.#key = new Float64Array(this.#pipeline);
    this.#redirects = new Uint8Array(this.#pipeline);
    // A failed write fails what is in flight; the read side then ends on the closed socket.
    this.#writer = new ConnWriter(
      conn,
      (err) => this.#client.lose(this.#closeReason ?? `write failed: ${describe(err)}`),
    );
  }

  /** Notes an operation written (or about to be written) to this leg, at the ring's tail. */
  push(
    code: number,
    key: number,
    sentAt: number,
    measured: number,
    redirects: number,
    extraReplies = 0,
  ): void {
    let slot = this.#head + this.#inFlight;
    if (slot >= this.#pipeline) slot -= this.#pipeline;
    this.#sentAt[slot] = sentAt;
    this.#kind[slot] = code;
    this.#measured[slot] = measured;
    this.#remaining[slot] = OPS[code].replies + extraReplies;
    this.#failed[slot] = 0;
    this.#nil[slot] = 0;
    this.#key[slot] = key;
    this.#redirects[slot] = redirects;
    this.#inFlight++;
  }

  /** Writes request bytes (after {@link push}ing their operations). */
  write(bytes: Uint8Array): void {
    this.#writer.write(bytes);
  }

  /** Removes the oldest operation from the ring. */
  #pop(): void {
    this.#head = this.#head + 1 === this.#pipeline ? 0 : this.#head + 1;
    this.#inFlight--;
  }

  /**
   * After `-MOVED <slot> <host>:<port>` for the oldest operation: notes the owner it names and
   * sends the operation there; after `-ASK <slot> <host>:<port>` (its slot is migrating and the
   * key is not at the source): sends `ASKING` and the operation there, without changing the
   * owner. False when this is no redirection to follow.
   */
  #followRedirect(error: string | undefined): boolean {
    const phase = this.#phase;
    const routing = phase.spec.routing;
    const slot = this.#head;
    const code = this.#kind[slot];
    if (routing === undefined || error === undefined || OPS[code].replies !== 1) return false;
    if (this.#redirects[slot] >= MAX_REDIRECTS) return false;
    const redirect = parseRedirect(error);
    if (redirect === null) return false;
    const shard = shardOfAddress(routing.shards, redirect.host, redirect.port);
    if (shard < 0) return false;
    if (!routing.misroute && !redirect.ask) routing.owner[redirect.slot] = shard;
    const measured = this.#measured[slot];
    if (measured === 1) {
      phase.moved++;
      phase.shardMoved[this.shard]++;
    }
    const key = this.#key[slot];
    const sentAt = this.#sentAt[slot];
    const redirects = this.#redirects[slot] + 1;
    this.#pop();
    const to = this.#client.legs[shard];
    const asking = redirect.ask ? ASKING.length : 0;
    const bytes = new Uint8Array(asking + phase.spec.encoder.opBytes[code]);
    if (redirect.ask) bytes.set(ASKING, 0);
    phase.one[0] = key;
    phase.spec.encoder.writeOp(bytes, asking, code, phase.one);
    // ASKING's +OK is one more reply of the operation.
    to.push(code, key, sentAt, measured, redirects, redirect.ask ? 1 : 0);
    to.write(bytes);
    return true;
  }

  /** Handles one complete reply (called by the counter, in order). */
  readonly #onReply = (kind: ReplyKind, error?: string): void => {
    if (this.#inFlight === 0) throw new Error("more replies than requests");
    const slot = this.#head;
    const measured = this.#measured[slot] === 1;
    const phase = this.#phase;
    if (kind === "error") {
      if (this.#followRedirect(error)) return;
      // The first error of an operation is its error.
      if (this.#failed[slot] === 0 && measured) phase.noteError(error ?? "error reply");
      this.#failed[slot] = 1;
    } else if (kind === "nil") {
      this.#nil[slot] = 1;
    }
    if (--this.#remaining[slot] > 0) return;
    this.#pop();
    this.#client.inFlight--;
    if (!measured) return;
    const stats = phase.stats[this.#kind[slot]];
    phase.lastMeasuredAt = this.#now;
    if (this.#failed[slot] === 1) {
      stats.errors++;
      return;
    }
    stats.ops++;
    phase.shardOps[this.shard]++;
    if (this.#nil[slot] === 1) stats.nil++;
    stats.latency.recordMs(this.#now - this.#sentAt[slot]);
  };

  /** Reads replies (and sends what the phase allows after each) until the client closes it. */
  async run(): Promise<void> {
    const buf = new Uint8Array(READ_BUFFER_BYTES);
    // Bounded in time: the client closes its legs when nothing is in flight and the phase has
    // stopped sending, and the phase's watchdog closes them after the drain.
    while (!this.#closed) {
      let n: number | null;
      try {
        n = await this.#conn.read(buf);
      } catch (err) {
        this.#client.lose(this.#closeReason ?? `read failed: ${describe(err)}`);
        break;
      }
      if (n === null) {
        this.#client.lose(this.#closeReason ?? "connection closed by the replica");
        break;
      }
      const now = performance.now();
      this.#now = now;
      try {
        this.#counter.feed(buf.subarray(0, n), this.#onReply);
      } catch (err) {
        this.#client.lose(describe(err));
        break;
      }
      this.#client.fill(now);
    }
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
  lose(reason: string): void {
    const phase = this.#phase;
    let lost = 0;
    for (let k = 0, slot = this.#head; k < this.#inFlight; k++) {
      if (this.#measured[slot] === 1 && !phase.aborted) {
        phase.stats[this.#kind[slot]].errors++;
        lost++;
      }
      slot = slot + 1 === this.#pipeline ? 0 : slot + 1;
    }
    this.#client.inFlight -= this.#inFlight;
    this.#inFlight = 0;
    if (lost > 0) {
      phase.lastMeasuredAt = Math.max(phase.lastMeasuredAt, performance.now());
      phase.noteError(`replica ${this.#target.id}: ${this.#closeReason ?? reason}`, lost);
    }
    this.close(reason);
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
  const shards = spec.routing?.shards ?? [{ group: "", targets: spec.targets }];
  if (shards.some((s) => s.targets.length === 0)) throw new Error("no targets");
  const phase = new PhaseState(spec);
  let measureStarted = false;
  const startMeasure = () => {
    if (measureStarted) return;
    measureStarted = true;
    spec.onMeasureStart?.();
  };

  // Open every connection (concurrently): one per client, or one per client and shard.
  const timeoutMs = spec.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const wanted = Array.from(
    { length: spec.connections },
    (_, i) => shards.map((s) => s.targets[i % s.targets.length]),
  );
  const opened = await Promise.all(
    wanted.map((targets) =>
      Promise.allSettled(targets.map((t) => connectWithTimeout(t, timeoutMs)))
    ),
  );
  const conns: LoadClient[] = [];
  opened.forEach((legs, i) => {
    const targets = wanted[i];
    const failed = legs.flatMap((r, s) => r.status === "rejected" ? [[r.reason, s] as const] : []);
    if (failed.length === 0) {
      const open = legs.map((r) => (r as PromiseFulfilledResult<Deno.TcpConn>).value);
      conns.push(new LoadClient(phase, open, targets));
      return;
    }
    for (const r of legs) if (r.status === "fulfilled") r.value.close();
    for (const [reason, s] of failed) {
      const target = targets[s];
      phase.noteError(
        `cannot connect to replica ${target.id} (${target.host}:${target.port}): ` +
          describe(reason),
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
    shardOps: phase.shardOps,
    moved: phase.moved,
    shardMoved: phase.shardMoved,
    errorMessages,
    aborted: phase.aborted,
    cutOff: phase.cutOff,
  };
}
