/**
 * Blocked clients as replicated state: the waiter queue of blocking commands (BLPOP, BRPOP,
 * BLMOVE, BRPOPLPUSH, BLMPOP, and XREAD/XREADGROUP with BLOCK), identical on every replica
 * because it changes only when operations are applied in the total order.
 *
 * A waiter is registered by the `__BLOCK` operation when its command finds nothing to take. It
 * records its owner (the replica and process that holds the client connection), the keys it waits
 * on, the command line (as it waits: XREAD's `$` resolved, {@link BlockSpec.resolve}) and its
 * deadline in ordered time. When an operation writes a key that waiters wait on, the waiters of
 * that key are offered what it holds, earliest registered first ({@link Waiters.serveReady}): the
 * command's {@link BlockSpec.take} takes what it wants (a list pop removes the elements; a stream
 * read copies the new entries, XREADGROUP also moves them into its consumer's pending list) and
 * the waiter holds it (it is *handed*), or an error reply to end with (XREADGROUP whose group or
 * stream was deleted). Every waiter is offered in turn, so each XREAD waiter of a stream gets
 * the new entries, and a group's entries go to its first waiter only. Only its owner resolves a
 * hand-off:
 *
 * - `__BFINISH <id>` (the owner still has the client, or its timer fired): a handed waiter's
 *   elements become the client's reply ({@link BlockSpec.finish}); a waiting one times out (null
 *   array); an unknown one (dropped meanwhile) answers a null array too. So an element is never
 *   both handed and timed out: whichever comes first in the order decides.
 * - `__BCANCEL <id>` (the client's connection closed): a waiting waiter is removed, a handed one
 *   gives its elements back where they were taken ({@link BlockSpec.undo}), and they are offered
 *   to the next waiters.
 * - `__BDROP <owner>` cancels every waiter of an owner that can no longer answer: a replica that
 *   left the view (submitted by the view's leader) or an earlier process of a restarted replica
 *   (submitted by that replica).
 *
 * An element therefore leaves the data set only when its owner, alive and in the view, orders a
 * `__BFINISH` for it; a waiter whose replica dies holds its elements until the drop gives them
 * back. The window that remains is the one of every command: the owner dies after its finish is
 * delivered and before its reply reaches the socket.
 *
 * @module
 */
import type { ByteString, Reply } from "../core/types.ts";
import type { KeySpace } from "./keyspace.ts";
import { hashOf } from "./digest_hash.ts";

/**
 * What a command took for a waiter (JSON-compatible; its {@link BlockSpec} reads it back). `err`:
 * the waiter ends with that error reply (and `items` is empty).
 */
export type Handed = { key: ByteString; items: ByteString[]; head: boolean; err?: string };

/** How a blocking command waits and is served; registered on its {@link CommandSpec}. */
export interface BlockSpec {
  /** Whether this command line blocks (default: always; XREAD only with its BLOCK option). */
  blocks?(argv: readonly ByteString[]): boolean;
  /** The keys to wait on, in order, and the timeout in ms (0: forever), or an error reply. */
  parse(argv: readonly ByteString[]): { keys: ByteString[]; timeoutMs: number } | { err: string };
  /**
   * The command line as it waits, fixed at the `__BLOCK`'s place in the order (XREAD: `$` becomes
   * each stream's last ID then); default: unchanged.
   */
  resolve?(ks: KeySpace, argv: readonly ByteString[]): ByteString[];
  /**
   * Serves the command at once when it can: its reply (error replies included), or undefined
   * when it must wait. Default: {@link take} from the first key that has something.
   */
  serve?(ks: KeySpace, argv: readonly ByteString[]): Reply | undefined;
  /**
   * Takes what the command wants from `key`: what it took (or the error it ends with), undefined
   * when the key has nothing for it, or an error reply (WRONGTYPE) when it cannot be served from
   * this key now (it keeps waiting).
   */
  take(ks: KeySpace, argv: readonly ByteString[], key: ByteString): Handed | undefined | {
    err: string;
  };
  /** The client's reply for what was taken (BLMOVE also pushes it to its destination here). */
  finish(ks: KeySpace, argv: readonly ByteString[], handed: Handed): Reply;
  /** Puts what was taken back where it came from. */
  undo(ks: KeySpace, argv: readonly ByteString[], handed: Handed): void;
}

/** Changes kept for {@link Waiters.takeChanged} when nobody takes them (a store without host). */
const MAX_CHANGED = 65_536;

/** The reply of `__BLOCK` when the client now waits (never sent to a client). */
export const BLOCKED_STATUS = "__BLOCKED";

/** One blocked client. */
export interface Waiter {
  /** `<owner>/<n>`, unique. */
  id: string;
  /** `<replica id>.<process incarnation>`: who holds the client connection. */
  owner: string;
  keys: ByteString[];
  /** The blocking command line (BLPOP k1 k2 5, ...). */
  argv: ByteString[];
  /** Ordered time (ms) after which the owner times it out; 0: never. */
  deadline: number;
  /** What was taken for it, once handed. */
  handed?: Handed;
}

/** The snapshot form: the waiters in registration order. */
export type WaitersSnapshot = Waiter[];

/** The replica id an owner (`<id>.<incarnation>`) belongs to. */
export function ownerReplica(owner: string): number {
  return Number(owner.split(".")[0]);
}

/** The owner of a waiter id. */
export function ownerOf(id: string): string {
  return id.slice(0, id.lastIndexOf("/"));
}

/** The replicated waiter queue. */
export class Waiters {
  /** Every waiter, in registration order (Map order). */
  readonly #byId = new Map<string, Waiter>();
  /** For each key, its waiting (not handed) waiters' ids in registration order. */
  readonly #byKey = new Map<ByteString, string[]>();
  readonly #spec: (argv: readonly ByteString[]) => BlockSpec | undefined;
  /** Ids whose state changed since {@link takeChanged} (their owners look at them). */
  #changed: string[] = [];

  /**
   * `spec` finds the blocking behaviour of a command line: undefined when it is not a blocking
   * command or has a wrong number of arguments.
   */
  constructor(spec: (argv: readonly ByteString[]) => BlockSpec | undefined) {
    this.#spec = spec;
  }

  /** Number of waiters (handed ones included). */
  get size(): number {
    return this.#byId.size;
  }

  /** The keys somebody waits on (the key space marks them ready when written). */
  get waitedOn(): { has(key: ByteString): boolean } {
    return this.#byKey;
  }

  /** The waiter with `id`, or undefined. */
  get(id: string): Readonly<Waiter> | undefined {
    return this.#byId.get(id);
  }

  /** Every waiter, in registration order. */
  all(): IterableIterator<Readonly<Waiter>> {
    return this.#byId.values();
  }

  /** The ids whose state changed since the last call (handed or removed). */
  takeChanged(): string[] {
    const c = this.#changed;
    this.#changed = [];
    return c;
  }

  /**
   * `__BLOCK`: serves `argv` at once when a key has something for it, else registers waiter `id`
   * and answers {@link BLOCKED_STATUS}. `now` is the ordered time.
   */
  block(ks: KeySpace, id: string, argv: ByteString[], now: number): Reply {
    const spec = this.#spec(argv);
    if (spec === undefined) return { err: "ERR not a blocking command line" };
    if (this.#byId.has(id)) return { err: "ERR duplicate waiter id" };
    if (spec.resolve !== undefined) argv = spec.resolve(ks, argv);
    const parsed = serveNow(spec, ks, argv);
    if ("err" in parsed) return { err: parsed.err };
    if ("reply" in parsed) return parsed.reply;
    const w: Waiter = {
      id,
      owner: ownerOf(id),
      keys: parsed.keys,
      argv,
      deadline: parsed.timeoutMs === 0 ? 0 : now + parsed.timeoutMs,
    };
    this.#add(w);
    return { ok: BLOCKED_STATUS };
  }

  /**
   * Ends every waiting (not handed) waiter for which `error` gives an error reply: it is handed
   * that error, which its owner's `__BFINISH` answers (a sharded group that no longer serves the
   * waiter's slot: `MOVED`, as Redis Cluster unblocks such clients).
   */
  endWith(error: (w: Readonly<Waiter>) => string | null): void {
    for (const w of this.#byId.values()) {
      if (w.handed !== undefined || w.keys.length === 0) continue;
      const e = error(w);
      if (e === null) continue;
      this.#unindex(w);
      w.handed = { key: w.keys[0], items: [], head: true, err: e };
      this.#noteChanged(w.id);
    }
  }

  /** `__BFINISH`: the owner resolves `id` (see the module comment). */
  finish(ks: KeySpace, id: string): Reply {
    const w = this.#byId.get(id);
    if (w === undefined) return { nil: "array" };
    this.#remove(w);
    if (w.handed === undefined) return { nil: "array" };
    // Handed an error and nothing else: that is the reply.
    if (w.handed.err !== undefined && w.handed.items.length === 0) return { err: w.handed.err };
    const reply = this.#spec(w.argv)!.finish(ks, w.argv, w.handed);
    if (reply !== null && typeof reply === "object" && "err" in reply) {
      this.#spec(w.argv)!.undo(ks, w.argv, w.handed);
    }
    return reply;
  }

  /** `__BCANCEL`: removes `id`, giving back what it was handed; true when it existed. */
  cancel(ks: KeySpace, id: string): boolean {
    const w = this.#byId.get(id);
    if (w === undefined) return false;
    this.#remove(w);
    if (w.handed !== undefined) this.#spec(w.argv)!.undo(ks, w.argv, w.handed);
    return true;
  }

  /**
   * `__BDROP`: cancels every waiter of `owner`, the latest registered first (so each list gets
   * its elements back in their order); the count.
   */
  drop(ks: KeySpace, owner: string): number {
    const mine = [...this.#byId.values()].filter((w) => w.owner === owner);
    for (const w of mine.reverse()) this.cancel(ks, w.id);
    return mine.length;
  }

  /**
   * Offers the keys written by the operation just applied (`ks.ready`) to their waiters, earliest
   * first, until each key has nothing more for them. Runs at the end of every write.
   */
  serveReady(ks: KeySpace): void {
    while (ks.ready.size > 0) {
      const key: ByteString = ks.ready.values().next().value!;
      ks.ready.delete(key);
      const ids = this.#byKey.get(key);
      if (ids === undefined) continue;
      for (const id of [...ids]) {
        const w = this.#byId.get(id)!;
        // Not `break` on nothing: stream readers each wait for their own ID or group.
        const got = this.#spec(w.argv)!.take(ks, w.argv, key);
        if (got === undefined || !("key" in got)) continue;
        this.#unindex(w);
        w.handed = got;
        this.#noteChanged(w.id);
      }
    }
  }

  /** Hash of the waiters and their order (part of the state digest). */
  digest(): string {
    const parts: string[] = [];
    for (const w of this.#byId.values()) parts.push(JSON.stringify(w));
    const [a, b] = hashOf(parts);
    return a.toString(16).padStart(8, "0") + b.toString(16).padStart(8, "0");
  }

  /** The waiters, JSON-compatible. */
  snapshot(): WaitersSnapshot {
    return [...this.#byId.values()].map((w) => structuredClone(w));
  }

  /** Replaces every waiter with a {@link snapshot}'s (undefined: none). Throws TypeError. */
  restore(s: unknown): void {
    this.#byId.clear();
    this.#byKey.clear();
    this.#changed = [];
    if (s === undefined) return;
    if (!Array.isArray(s)) throw new TypeError("malformed waiters snapshot");
    for (const w of s) {
      const waiter = checkWaiter(w);
      if (this.#spec(waiter.argv) === undefined || this.#byId.has(waiter.id)) {
        throw new TypeError("malformed waiter");
      }
      this.#add(waiter);
    }
  }

  #add(w: Waiter): void {
    this.#byId.set(w.id, w);
    if (w.handed !== undefined) return;
    for (const key of new Set(w.keys)) {
      let ids = this.#byKey.get(key);
      if (ids === undefined) this.#byKey.set(key, ids = []);
      ids.push(w.id);
    }
  }

  #remove(w: Waiter): void {
    this.#unindex(w);
    this.#byId.delete(w.id);
    this.#noteChanged(w.id);
  }

  /** Notes a change for the owners; only hints (they also look every 100 ms), so bounded. */
  #noteChanged(id: string): void {
    if (this.#changed.length >= MAX_CHANGED) this.#changed = [];
    this.#changed.push(id);
  }

  #unindex(w: Waiter): void {
    if (w.handed !== undefined) return;
    for (const key of new Set(w.keys)) {
      const ids = this.#byKey.get(key);
      if (ids === undefined) continue;
      const i = ids.indexOf(w.id);
      if (i >= 0) ids.splice(i, 1);
      if (ids.length === 0) this.#byKey.delete(key);
    }
  }
}

/**
 * Runs a blocking command without blocking: an error reply, its reply when some key has
 * something for it, else its parsed keys and timeout (nothing was available).
 */
export function serveNow(
  spec: BlockSpec,
  ks: KeySpace,
  argv: readonly ByteString[],
): { err: string } | { reply: Reply } | { keys: ByteString[]; timeoutMs: number } {
  const parsed = spec.parse(argv);
  if ("err" in parsed) return parsed;
  if (spec.serve !== undefined) {
    const reply = spec.serve(ks, argv);
    return reply === undefined ? parsed : { reply };
  }
  for (const key of parsed.keys) {
    const got = spec.take(ks, argv, key);
    if (got === undefined) continue;
    if (!("key" in got)) return { err: got.err };
    const reply = spec.finish(ks, argv, got);
    if (reply !== null && typeof reply === "object" && "err" in reply) spec.undo(ks, argv, got);
    return { reply };
  }
  return parsed;
}

function isStrings(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === "string");
}

function checkWaiter(v: unknown): Waiter {
  const w = v as Waiter;
  if (
    !w || typeof w !== "object" || typeof w.id !== "string" || typeof w.owner !== "string" ||
    !isStrings(w.keys) || !isStrings(w.argv) || w.argv.length === 0 ||
    typeof w.deadline !== "number" || !Number.isFinite(w.deadline)
  ) {
    throw new TypeError("malformed waiter");
  }
  const h = w.handed;
  if (
    h !== undefined &&
    (!h || typeof h.key !== "string" || !isStrings(h.items) || typeof h.head !== "boolean" ||
      (h.err !== undefined && typeof h.err !== "string"))
  ) {
    throw new TypeError("malformed waiter hand-off");
  }
  const out: Waiter = {
    id: w.id,
    owner: w.owner,
    keys: w.keys,
    argv: w.argv,
    deadline: w.deadline,
  };
  if (h !== undefined) {
    out.handed = { key: h.key, items: h.items, head: h.head };
    if (h.err !== undefined) out.handed.err = h.err;
  }
  return out;
}
