/**
 * `XREAD` and `XREADGROUP` with `BLOCK`: the connection waits until the read returns entries or
 * its timeout passes, and every attempt is decided in the total order.
 *
 * The wait polls the command without `BLOCK` (the state machine ignores `BLOCK`, as Redis does
 * inside `MULTI`): each poll is one operation at one place in the order. XREADGROUP is a write
 * (every replica hands the same entries to the same consumer), so it is polled by a read first
 * (the internal `__xreadgroup_ready`, same arguments) and submitted only when that read finds
 * something: an idle blocked consumer adds nothing to the order or the log. The reply is the first
 * poll that returns entries (or an error); a timeout is answered only after a poll returned
 * nothing and none is in flight, so an entry is never both delivered and timed out. `$` in
 * `XREAD` is resolved once, at the start, to the streams' last IDs (the internal `__xlastid`
 * read), so entries added while the connection waits are returned. Polls start
 * {@link BLOCK_POLL_MIN_MS} apart and back off to {@link BLOCK_POLL_MAX_MS}; they stop when the
 * connection is gone.
 *
 * @module
 */
import type { ByteString, Reply } from "../core/types.ts";
import { is, parseInt64 } from "../kv/commands/args.ts";
import { NIL_ARRAY } from "../kv/reply.ts";

/** First delay between two polls of a blocked read (ms). */
export const BLOCK_POLL_MIN_MS = 10;
/** Largest delay between two polls of a blocked read (ms). */
export const BLOCK_POLL_MAX_MS = 200;

/** A blocked read's view of its connection. */
export interface BlockHost {
  /** Submits a data command (in the order, or as a read at its place); `reply` gets the result. */
  submit(argv: ByteString[], reply: (r: Reply) => void): void;
  /** False once the connection is gone: the wait ends without a reply. */
  open(): boolean;
  /** Wall-clock ms. */
  now(): number;
  /** Runs `fn` after `ms` (a timer). */
  later(fn: () => void, ms: number): void;
}

/** A blocking stream read: its timeout (0: none), the line without BLOCK, and its `$` keys. */
export interface BlockingRead {
  timeoutMs: number;
  argv: ByteString[];
  /** Indexes in `argv` of `$` IDs (XREAD) and the indexes of their keys. */
  dollars: { id: number; key: number }[];
}

/**
 * The blocking form of an XREAD/XREADGROUP line, or undefined when it has no valid BLOCK option
 * or no STREAMS (the command then answers by itself, with Redis's errors).
 */
export function blockingRead(argv: readonly ByteString[]): BlockingRead | undefined {
  const name = argv[0].toLowerCase();
  if (name !== "xread" && name !== "xreadgroup") return undefined;
  let block = -1;
  let timeout = 0;
  let streams = -1;
  for (let i = 1; i < argv.length; i++) {
    const more = argv.length - i - 1;
    if (is(argv[i], "block") && more > 0) {
      const t = parseInt64(argv[i + 1]);
      if (t === null || t < 0n) return undefined;
      block = i;
      timeout = t > BigInt(Number.MAX_SAFE_INTEGER) ? 0 : Number(t);
      i++;
    } else if (is(argv[i], "count") && more > 0) i++;
    else if (is(argv[i], "group") && more >= 2) i += 2;
    else if (is(argv[i], "streams") && more > 0) {
      streams = i + 1;
      break;
    }
  }
  if (block < 0 || streams < 0 || (argv.length - streams) % 2 !== 0) return undefined;
  const out = [...argv.slice(0, block), ...argv.slice(block + 2)];
  const first = streams - 2;
  const n = (out.length - first) / 2;
  const dollars: { id: number; key: number }[] = [];
  if (name === "xread") {
    for (let k = 0; k < n; k++) {
      if (out[first + n + k] === "$") dollars.push({ id: first + n + k, key: first + k });
    }
  }
  return { timeoutMs: timeout, argv: out, dollars };
}

function isNilArray(r: Reply): boolean {
  return r !== null && typeof r === "object" && !Array.isArray(r) && "nil" in r;
}

/** Runs a {@link BlockingRead}; `respond` gets its one reply (none if the connection goes). */
export function runBlockingRead(
  read: BlockingRead,
  host: BlockHost,
  respond: (r: Reply) => void,
): void {
  const deadline = read.timeoutMs === 0 ? Infinity : host.now() + read.timeoutMs;
  let delay = BLOCK_POLL_MIN_MS;
  const group = read.argv[0].toLowerCase() === "xreadgroup";
  const again = (argv: ByteString[]) => {
    if (!host.open()) return;
    host.later(() => poll(argv), Math.max(0, Math.min(delay, deadline - host.now())));
    delay = Math.min(delay * 2, BLOCK_POLL_MAX_MS);
  };
  const attempt = (argv: ByteString[]) =>
    host.submit(argv, (r) => {
      if (!isNilArray(r) || host.now() >= deadline) return respond(r);
      again(argv);
    });
  // XREADGROUP is a write: it is submitted only when a read of the same line finds something.
  const poll = (argv: ByteString[]) => {
    if (!host.open()) return;
    if (!group) return attempt(argv);
    host.submit(["__xreadgroup_ready", ...argv.slice(1)], (r) => {
      if (r === 1) return attempt(argv);
      if (r !== 0 || host.now() >= deadline) return respond(r === 0 ? NIL_ARRAY : r);
      again(argv);
    });
  };
  if (read.dollars.length === 0) return poll(read.argv);
  host.submit(["__xlastid", ...read.dollars.map((d) => read.argv[d.key])], (r) => {
    if (!Array.isArray(r)) return respond(r);
    const argv = [...read.argv];
    read.dollars.forEach((d, i) => (argv[d.id] = r[i] as ByteString));
    poll(argv);
  });
}
