/**
 * Keyspace notifications (`notify-keyspace-events`): Redis's flag letters, and the events a write
 * command produces, derived from the keys it actually modified (the key space reports them while
 * the command runs) and the command's name, so that no command implementation has to emit them.
 *
 * Events are produced inside the state machine at the operation's place in the total order, so
 * every replica produces the same events in the same order; each replica publishes them to its
 * own subscribers (`__keyspace@0__:<key>` with the event as message, `__keyevent@0__:<event>`
 * with the key as message), as Redis does.
 *
 * @module
 */
import type { ByteString } from "../core/types.ts";

/** Event classes and channel kinds, Redis's bits. */
export const NOTIFY = Object.freeze({
  keyspace: 1 << 0, // K
  keyevent: 1 << 1, // E
  generic: 1 << 2, // g
  string: 1 << 3, // $
  list: 1 << 4, // l
  set: 1 << 5, // s
  hash: 1 << 6, // h
  zset: 1 << 7, // z
  expired: 1 << 8, // x
  evicted: 1 << 9, // e
  stream: 1 << 10, // t
  keyMiss: 1 << 11, // m
  module: 1 << 12, // d
  new: 1 << 13, // n
});

/** `A`: every class but key-miss and new (Redis's NOTIFY_ALL). */
const ALL = NOTIFY.generic | NOTIFY.string | NOTIFY.list | NOTIFY.set | NOTIFY.hash |
  NOTIFY.zset | NOTIFY.expired | NOTIFY.evicted | NOTIFY.stream | NOTIFY.module;

/** The class letters in the order Redis prints them (`A` stands for all of them but `n`). */
const CLASS_LETTERS: readonly [string, number][] = [
  ["g", NOTIFY.generic],
  ["$", NOTIFY.string],
  ["l", NOTIFY.list],
  ["s", NOTIFY.set],
  ["h", NOTIFY.hash],
  ["z", NOTIFY.zset],
  ["x", NOTIFY.expired],
  ["e", NOTIFY.evicted],
  ["t", NOTIFY.stream],
  ["d", NOTIFY.module],
  ["n", NOTIFY.new],
];

/** Redis's CONFIG SET error for a bad `notify-keyspace-events` value. */
export const BAD_NOTIFY_FLAGS =
  "ERR CONFIG SET failed (possibly related to argument 'notify-keyspace-events') - Invalid event class character. Use 'Ag$lshzxeKEtmdn'.";

/** The bits of a `notify-keyspace-events` value, or null when it has a letter Redis refuses. */
export function parseNotifyFlags(text: string): number | null {
  let flags = 0;
  for (const c of text) {
    if (c === "A") flags |= ALL;
    else if (c === "K") flags |= NOTIFY.keyspace;
    else if (c === "E") flags |= NOTIFY.keyevent;
    else if (c === "m") flags |= NOTIFY.keyMiss;
    else {
      const letter = CLASS_LETTERS.find(([l]) => l === c);
      if (letter === undefined) return null;
      flags |= letter[1];
    }
  }
  return flags;
}

/** The canonical text of `flags`, as CONFIG GET prints it (Redis's order). */
export function formatNotifyFlags(flags: number): string {
  let out = "";
  if ((flags & ALL) === ALL) {
    out += "A";
    if (flags & NOTIFY.new) out += "n";
  } else {
    for (const [letter, bit] of CLASS_LETTERS) if (flags & bit) out += letter;
  }
  if (flags & NOTIFY.keyspace) out += "K";
  if (flags & NOTIFY.keyevent) out += "E";
  if (flags & NOTIFY.keyMiss) out += "m";
  return out;
}

/** How a key was modified by one command (the key space's report). */
export type KeyChange = "new" | "changed" | "gone";

/** What a command does to one key: its event's class and name, or null for none. */
type EventOf = (argv: readonly ByteString[], key: ByteString) => [number, string] | null;

const fixed = (cls: number, event: string): EventOf => () => [cls, event];
const isLeft = (word: ByteString | undefined) => word?.toLowerCase() === "left";

/** Source key gets `srcEvent`, destination key `dstEvent` (RENAME, SMOVE, LMOVE...). */
function moved(cls: number, src: (argv: readonly ByteString[]) => string, dst: typeof src) {
  return (argv: readonly ByteString[], key: ByteString): [number, string] =>
    key === argv[1] ? [cls, src(argv)] : [cls, dst(argv)];
}

const G = NOTIFY.generic;
const S = NOTIFY.string;
const L = NOTIFY.list;
const H = NOTIFY.hash;
const SET = NOTIFY.set;

/** The event of each write command that has one, by its lowercase name (Redis's names). */
const EVENTS: Readonly<Record<string, EventOf>> = {
  del: fixed(G, "del"),
  unlink: fixed(G, "del"),
  delete: fixed(G, "del"),
  getdel: fixed(G, "del"),
  rename: moved(G, () => "rename_from", () => "rename_to"),
  renamenx: moved(G, () => "rename_from", () => "rename_to"),
  expire: fixed(G, "expire"),
  pexpire: fixed(G, "expire"),
  expireat: fixed(G, "expire"),
  pexpireat: fixed(G, "expire"),
  persist: fixed(G, "persist"),
  getex: (argv) => [G, argv.some((a) => a.toLowerCase() === "persist") ? "persist" : "expire"],
  set: fixed(S, "set"),
  put: fixed(S, "set"),
  setnx: fixed(S, "set"),
  setex: fixed(S, "set"),
  psetex: fixed(S, "set"),
  getset: fixed(S, "set"),
  mset: fixed(S, "set"),
  msetnx: fixed(S, "set"),
  append: fixed(S, "append"),
  setrange: fixed(S, "setrange"),
  incr: fixed(S, "incrby"),
  decr: fixed(S, "incrby"),
  incrby: fixed(S, "incrby"),
  decrby: fixed(S, "incrby"),
  incrbyfloat: fixed(S, "incrbyfloat"),
  lpush: fixed(L, "lpush"),
  lpushx: fixed(L, "lpush"),
  rpush: fixed(L, "rpush"),
  rpushx: fixed(L, "rpush"),
  lpop: fixed(L, "lpop"),
  rpop: fixed(L, "rpop"),
  lset: fixed(L, "lset"),
  lrem: fixed(L, "lrem"),
  ltrim: fixed(L, "ltrim"),
  linsert: fixed(L, "linsert"),
  rpoplpush: moved(L, () => "rpop", () => "lpush"),
  lmove: moved(
    L,
    (a) => (isLeft(a[3]) ? "lpop" : "rpop"),
    (a) => (isLeft(a[4]) ? "lpush" : "rpush"),
  ),
  lmpop: (argv) => [L, isLeft(argv[Number(argv[1]) + 2]) ? "lpop" : "rpop"],
  hset: fixed(H, "hset"),
  hmset: fixed(H, "hset"),
  hsetnx: fixed(H, "hset"),
  hdel: fixed(H, "hdel"),
  hincrby: fixed(H, "hincrby"),
  hincrbyfloat: fixed(H, "hincrbyfloat"),
  sadd: fixed(SET, "sadd"),
  srem: fixed(SET, "srem"),
  spop: fixed(SET, "spop"),
  smove: moved(SET, () => "srem", () => "sadd"),
  sinterstore: fixed(SET, "sinterstore"),
  sunionstore: fixed(SET, "sunionstore"),
  sdiffstore: fixed(SET, "sdiffstore"),
};

/** Commands that also report `expire` when they leave the key with an expiry time. */
const MAY_SET_EXPIRY = new Set(["set", "setex", "psetex"]);

/** One notification: its class, event name and key. */
export interface KeyEvent {
  cls: number;
  event: string;
  key: ByteString;
}

/**
 * The events of one applied write command, from the keys it changed (in the order they were
 * first changed): `new` for a key it created, its own event, and `del` for a key it emptied
 * (a pop of the last element). `hasExpiry(key)` says whether the key has an expiry time now.
 */
export function commandEvents(
  argv: readonly ByteString[],
  changes: ReadonlyMap<ByteString, KeyChange>,
  created: ReadonlySet<ByteString>,
  hasExpiry: (key: ByteString) => boolean,
): KeyEvent[] {
  const name = argv[0].toLowerCase();
  const of = Object.hasOwn(EVENTS, name) ? EVENTS[name] : undefined;
  if (of === undefined) return [];
  const out: KeyEvent[] = [];
  for (const [key, change] of changes) {
    const ev = of(argv, key);
    if (ev === null) continue;
    const [cls, event] = ev;
    if (change === "gone") {
      // EXPIRE in the past deletes the key: Redis then reports only `del`.
      if (cls === G) out.push({ cls, event: event === "expire" ? "del" : event, key });
      else out.push({ cls, event, key }, { cls: G, event: "del", key });
      continue;
    }
    if (created.has(key)) out.push({ cls: NOTIFY.new, event: "new", key });
    out.push({ cls, event, key });
    if (MAY_SET_EXPIRY.has(name) && cls === S && hasExpiry(key)) {
      out.push({ cls: G, event: "expire", key });
    }
  }
  return out;
}

/**
 * The channel/message pairs Redis publishes for `e` under `flags`: the keyspace channel first,
 * then the keyevent channel; none when the class is not enabled.
 */
export function notificationsOf(flags: number, e: KeyEvent): [ByteString, ByteString][] {
  if ((flags & e.cls) === 0) return [];
  const out: [ByteString, ByteString][] = [];
  if (flags & NOTIFY.keyspace) out.push([`__keyspace@0__:${e.key}`, e.event]);
  if (flags & NOTIFY.keyevent) out.push([`__keyevent@0__:${e.event}`, e.key]);
  return out;
}

/**
 * The replicated `notify-keyspace-events` value: the config file's until a `CONFIG SET` of it
 * is applied in the order, from then on the value set (kept in snapshots).
 */
export class NotifySetting {
  /** The config file's value (used while none was set through the order). */
  readonly fallback: number;
  #set: number | undefined;

  /** A setting that falls back to `fallback` (bits, see {@link parseNotifyFlags}). */
  constructor(fallback = 0) {
    this.fallback = fallback;
  }

  /** The flags in force. */
  get flags(): number {
    return this.#set ?? this.fallback;
  }

  /** Sets the flags (a CONFIG SET applied in the order). */
  set(flags: number): void {
    this.#set = flags;
  }

  /** The value set through the order, or undefined while none was. */
  snapshot(): number | undefined {
    return this.#set;
  }

  /** Restores a {@link snapshot}. */
  restore(v: unknown): void {
    if (v !== undefined && !(Number.isSafeInteger(v) && (v as number) >= 0)) {
      throw new TypeError("malformed notify-keyspace-events in snapshot");
    }
    this.#set = v as number | undefined;
  }
}
