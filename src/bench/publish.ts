/**
 * The publish mode of `deno task bench` (`--publish`): publish throughput and publish-to-receive
 * latency with one subscriber on every replica.
 *
 * Each level opens one subscriber connection per replica (`SUBSCRIBE` to one channel) and
 * `clients` publisher connections spread round-robin over the replicas, each keeping
 * `pipeline` PUBLISHes in flight. A message carries the time it was sent (this process's
 * monotonic clock), so every subscriber measures how long it took to arrive: through the
 * publisher's replica, the total order (multicast and all-acks delivery) and the subscriber's
 * replica. After the measured time the level waits (bounded) until every subscriber has every
 * acknowledged message; any still missing then are reported.
 *
 * @module
 */
import { encodeCommand, RespReplyParser, type RespValue } from "../net/resp.ts";
import { LatencyHistogram } from "./histogram.ts";
import type { Target } from "./load.ts";
import type { StopRule } from "./args.ts";
import { benchValue } from "./requests.ts";
import { concatBytes } from "../kv/bytes.ts";

/** The channel the benchmark publishes on. */
export const BENCH_CHANNEL = "lamportkv-bench";
/** How long a level waits after its load for the subscribers to catch up, ms. */
const CATCH_UP_MS = 30_000;
/** Longest wait for one batch of PUBLISH replies, ms. */
const REPLY_TIMEOUT_MS = 30_000;

/** What one publish level does. */
export interface PublishSpec {
  /** Replicas: a subscriber on each; publisher `i` goes to `targets[i % n]`. */
  targets: readonly Target[];
  /** Publisher connections. */
  connections: number;
  /** PUBLISHes in flight per publisher connection. */
  pipeline: number;
  /** Payload bytes (beyond the send time it starts with). */
  valueSize: number;
  /** Unmeasured time before the measured part, ms. */
  warmupMs: number;
  /** When publishing stops. */
  stop: StopRule;
  /** Ends the level early. */
  signal?: AbortSignal;
}

/** The figures of one level. */
export interface PublishRow {
  /** Publisher connections. */
  clients: number;
  /** Subscribers (one per replica). */
  subscribers: number;
  /** PUBLISHes acknowledged in the measured time. */
  published: number;
  /** PUBLISHes answered with an error, or never answered. */
  errors: number;
  /** Measured seconds. */
  seconds: number;
  /** `published / seconds`. */
  publishPerSec: number;
  /** PUBLISH reply latency (measured part), ms. */
  publishP50Ms: number | null;
  publishP99Ms: number | null;
  /** Publish-to-receive latency over every subscriber (measured part), ms. */
  receiveP50Ms: number | null;
  receiveP99Ms: number | null;
  /** Messages received, all subscribers together (warmup included). */
  received: number;
  /** Acknowledged messages some subscriber still had not received after the catch-up wait. */
  missing: number;
}

/** A RESP connection that hands each reply to `onReply`. */
class Conn {
  readonly #conn: Deno.TcpConn;
  readonly #parser = new RespReplyParser();
  readonly done: Promise<void>;

  private constructor(conn: Deno.TcpConn, onReply: (r: RespValue) => void) {
    this.#conn = conn;
    this.done = this.#read(onReply);
  }

  static async open(t: Target, onReply: (r: RespValue) => void): Promise<Conn> {
    const conn = await Deno.connect({ hostname: t.host, port: t.port });
    conn.setNoDelay(true);
    return new Conn(conn, onReply);
  }

  async #read(onReply: (r: RespValue) => void): Promise<void> {
    const buf = new Uint8Array(256 * 1024);
    try {
      for (;;) {
        const n = await this.#conn.read(buf);
        if (n === null) return;
        this.#parser.push(buf.subarray(0, n));
        for (let r = this.#parser.next(); r !== undefined; r = this.#parser.next()) onReply(r);
      }
    } catch {
      // closed
    }
  }

  async write(bytes: Uint8Array): Promise<void> {
    let off = 0;
    while (off < bytes.length) off += await this.#conn.write(bytes.subarray(off));
  }

  async close(): Promise<void> {
    try {
      this.#conn.close();
    } catch {
      // closed already
    }
    await this.done;
  }
}

/** Resolves after `ms` or when `signal` aborts. */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done);
  });
}

function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/** Runs one publish level. Throws when a subscriber cannot connect or subscribe. */
export async function runPublishLevel(spec: PublishSpec): Promise<PublishRow> {
  const receive = new LatencyHistogram();
  const publish = new LatencyHistogram();
  const padding = benchValue(spec.valueSize);
  let measureFrom = Infinity;
  let measureTo = Infinity;
  const received: number[] = spec.targets.map(() => 0);
  const subs: Conn[] = [];
  const confirmed: Promise<void>[] = [];
  try {
    for (const [i, t] of spec.targets.entries()) {
      let confirm!: () => void;
      confirmed.push(new Promise((r) => (confirm = r)));
      const sub = await Conn.open(t, (r) => {
        if (!Array.isArray(r)) return;
        if (r[0] === "subscribe") return confirm();
        if (r[0] !== "message") return;
        received[i]++;
        const payload = String(r[2]);
        const sentAt = Number(payload.slice(0, payload.indexOf(":")));
        if (sentAt >= measureFrom && sentAt < measureTo) {
          receive.recordMs(performance.now() - sentAt);
        }
      });
      subs.push(sub);
      await sub.write(encodeCommand(["SUBSCRIBE", BENCH_CHANNEL]));
    }
    await Promise.race([
      Promise.all(confirmed),
      sleep(10_000).then(() => {
        throw new Error("subscribers did not get their SUBSCRIBE confirmations within 10 s");
      }),
    ]);

    let acked = 0;
    let measuredAcked = 0;
    let errors = 0;
    let sent = 0;
    const started = performance.now();
    measureFrom = started + spec.warmupMs;
    const stop = spec.stop;
    const deadline = stop.kind === "seconds" ? measureFrom + stop.seconds * 1000 : Infinity;
    const more = () =>
      !spec.signal?.aborted && performance.now() < deadline &&
      (stop.kind !== "ops" || sent < stop.ops);

    const publisher = async (i: number) => {
      const pending: number[] = [];
      let waiting: (() => void) | undefined;
      const conn = await Conn.open(spec.targets[i % spec.targets.length], (r) => {
        const sentAt = pending.shift();
        if (sentAt === undefined) return;
        if (typeof r === "number") {
          acked++;
          if (sentAt >= measureFrom) {
            measuredAcked++;
            publish.recordMs(performance.now() - sentAt);
          }
        } else errors++;
        if (pending.length === 0) waiting?.();
      });
      try {
        while (more()) {
          const batch: Uint8Array[] = [];
          for (let k = 0; k < spec.pipeline && more(); k++) {
            const now = performance.now();
            pending.push(now);
            sent++;
            batch.push(encodeCommand(["PUBLISH", BENCH_CHANNEL, `${now}:${padding}`]));
          }
          const answered = new Promise<void>((r) => (waiting = r));
          await conn.write(batch.length === 1 ? batch[0] : concatBytes(batch));
          await Promise.race([answered, sleep(REPLY_TIMEOUT_MS, spec.signal)]);
          if (pending.length > 0) {
            errors += pending.length;
            break;
          }
        }
      } finally {
        await conn.close();
      }
    };
    await Promise.all(Array.from({ length: spec.connections }, (_, i) => publisher(i)));
    measureTo = performance.now();
    const seconds = Math.max(0, (measureTo - measureFrom) / 1000);
    // Every subscriber should get every acknowledged message (bounded wait).
    const catchUpUntil = performance.now() + CATCH_UP_MS;
    while (received.some((n) => n < acked) && performance.now() < catchUpUntil) {
      if (spec.signal?.aborted) break;
      await sleep(10, spec.signal);
    }
    const missing = Math.max(0, ...received.map((n) => acked - n));
    const has = (h: LatencyHistogram) => h.count > 0;
    return {
      clients: spec.connections,
      subscribers: spec.targets.length,
      published: measuredAcked,
      errors,
      seconds: round(seconds, 3),
      publishPerSec: seconds > 0 ? round(measuredAcked / seconds, 1) : 0,
      publishP50Ms: has(publish) ? round(publish.percentileMs(50), 3) : null,
      publishP99Ms: has(publish) ? round(publish.percentileMs(99), 3) : null,
      receiveP50Ms: has(receive) ? round(receive.percentileMs(50), 3) : null,
      receiveP99Ms: has(receive) ? round(receive.percentileMs(99), 3) : null,
      received: received.reduce((a, b) => a + b, 0),
      missing,
    };
  } finally {
    await Promise.all(subs.map((s) => s.close()));
  }
}

/** The publish table: one row per level. */
export function formatPublishTable(rows: readonly PublishRow[]): string {
  const head = [
    "clients",
    "subs",
    "publish/s",
    "pub p50 ms",
    "pub p99 ms",
    "recv p50 ms",
    "recv p99 ms",
    "received",
    "missing",
    "errors",
  ];
  const ms = (v: number | null) => (v === null ? "-" : v.toFixed(2));
  const body = rows.map((r) => [
    String(r.clients),
    String(r.subscribers),
    String(Math.round(r.publishPerSec)),
    ms(r.publishP50Ms),
    ms(r.publishP99Ms),
    ms(r.receiveP50Ms),
    ms(r.receiveP99Ms),
    String(r.received),
    String(r.missing),
    String(r.errors),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((row) => row[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i])).join("  ");
  return [line(head), ...body.map(line)].join("\n");
}
