/**
 * A seeded random generator of Redis commands for differential testing, and the reply
 * normalizer that decides when two replies to the same command agree.
 *
 * ## Generator
 *
 * {@link CommandGenerator} turns a seed ({@link Prng}) into an endless sequence of
 * {@link Unit}s: a single command, a `MULTI ... EXEC` block (which must stay on one connection), or
 * a full `SCAN`-style iteration. Commands work on a small key space ({@link KEYS}: 8 keys, so
 * strings, hashes, lists and sets collide and the `WRONGTYPE` paths run) with edge values: the
 * empty string, binary bytes (`\r\n`, `\0`, `\xff`), 64-bit limits (`9223372036854775807`,
 * `-9223372036854775808` and one past them), `1e308`, `inf`, `nan`, non-numbers, negative counts,
 * out-of-range indexes, random command-name case, invalid option combinations, and wrong arity.
 *
 * Commands come in {@link Family families}; a generator only emits commands of the families it is
 * given, so a test enables what the server under test supports:
 *
 * | family    | commands                                                                        |
 * | --------- | ------------------------------------------------------------------------------- |
 * | `basic`   | `GET k`, `SET k v`, `DEL k`, `EXISTS k` (one key), `PING [msg]`, their arity    |
 * |           | errors, unknown commands                                                        |
 * | `strings` | SET with NX/XX/GET/EX/PX/EXAT/PXAT/KEEPTTL (valid and invalid combos), SETNX,     |
 * |           | SETEX, PSETEX, GETSET, GETDEL, GETEX, APPEND, STRLEN, GETRANGE, SETRANGE, INCR,  |
 * |           | DECR, INCRBY, DECRBY, INCRBYFLOAT, MGET, MSET, MSETNX                            |
 * | `keys`    | DEL/UNLINK/EXISTS with many keys, TYPE, RENAME, RENAMENX, KEYS, DBSIZE,          |
 * |           | RANDOMKEY, FLUSHALL (rarely), SCAN [MATCH] [COUNT] [TYPE]                       |
 * | `expiry`  | EXPIRE/PEXPIRE/EXPIREAT/PEXPIREAT with NX/XX/GT/LT, TTL, PTTL, EXPIRETIME,       |
 * |           | PEXPIRETIME, PERSIST                                                            |
 * | `hashes`  | HSET, HSETNX, HGET, HMGET, HDEL, HGETALL, HEXISTS, HLEN, HINCRBY, HINCRBYFLOAT,  |
 * |           | HKEYS, HVALS, HSCAN                                                             |
 * | `lists`   | LPUSH, RPUSH, LPOP/RPOP [count], LLEN, LRANGE, LINDEX, LSET, LREM, LTRIM, LMOVE, |
 * |           | LPOS [RANK] [COUNT] [MAXLEN]                                                    |
 * | `sets`    | SADD, SREM, SMEMBERS, SISMEMBER, SMISMEMBER, SCARD, SINTER, SUNION, SDIFF,       |
 * |           | SINTERSTORE, SUNIONSTORE, SDIFFSTORE, SSCAN, SPOP, SRANDMEMBER                  |
 * | `streams` | XADD (explicit and `ms-*` IDs, NOMKSTREAM, MAXLEN/MINID = ~ LIMIT), XRANGE,      |
 * |           | XREVRANGE, XLEN, XDEL, XTRIM, XREAD, XGROUP, XREADGROUP, XACK, XPENDING, XCLAIM, |
 * |           | XAUTOCLAIM, XINFO GROUPS/CONSUMERS                                              |
 * | `tx`      | MULTI + queued commands of the other enabled families + EXEC or DISCARD,         |
 * |           | queue-time errors (EXECABORT), WATCH before MULTI, EXEC/DISCARD without MULTI   |
 *
 * Every family except `basic` and `tx` also emits wrong-arity calls of its own commands.
 *
 * Expiry times are chosen so that no reply depends on timing: relative times are long (days to
 * decades) and absolute times are far in the future or in the past (the key is deleted at once).
 * Every time value embeds the command's index in the sequence, so two times are never equal and a
 * later command always sets a later expiry within one "bucket" of magnitudes; buckets are at
 * least 900 000 s apart. Hence `EXPIRE ... GT/LT` compares the same way on any server regardless
 * of how long commands take (sequences of up to 800 000 commands).
 *
 * ## Documented differences (the normalizer, {@link compareReplies})
 *
 * Each generated command carries a {@link Check} that says how its replies are compared. Replies
 * are {@link TaggedReply}s, so the RESP type is always compared (a simple string never equals a
 * bulk string). Everything is compared exactly, byte for byte, except:
 *
 * 1. **Unordered replies** (`unordered`): SMEMBERS, SINTER, SUNION, SDIFF, KEYS, HKEYS, HVALS,
 *    `SPOP key count` (only generated with count 0, negative, or larger than any set, so it pops
 *    everything or nothing and the data stays identical). Redis does not define the order (it
 *    depends on the hash table or intset encoding); the arrays are compared as sorted multisets.
 * 2. **Field/value replies** (`pairs`): HGETALL is compared as a map from field to value (the
 *    pair order is undefined, the pairing is not).
 * 3. **Scans** (SCAN, HSCAN, SSCAN): cursors are opaque and differ between implementations. The
 *    test runs a full iteration (cursor 0 to 0, {@link ScanUnit}) and compares the union of the
 *    elements returned (SCAN/SSCAN as a set, HSCAN as a field->value map). Duplicates, which a
 *    scan may legally return, are removed. An error reply (e.g. `ERR invalid cursor`, `ERR syntax
 *    error`) is compared exactly.
 * 4. **Random replies** (`shape`): SRANDMEMBER and RANDOMKEY are compared by shape only: nil vs
 *    bulk, and the array length for the count form. SPOP without count (or with a small count) is
 *    not generated at all: it would make the data differ.
 * 5. **Time-dependent integers** (`tolerance`): TTL and EXPIRETIME within 2 (seconds), PTTL and
 *    PEXPIRETIME within 2000 (ms), because the two servers run each command at slightly
 *    different instants. Negative replies (-1: no expiry, -2: no key) are compared exactly.
 * 6. **Idle times** (`idle`): XPENDING's extended rows and XINFO CONSUMERS carry idle times in ms,
 *    which depend on when each server ran the command: the row's third element and the value
 *    after `idle` are masked. Streams get explicit IDs only (`*` IDs are the server's clock), and
 *    idle-time filters are 0 or an hour (never in between). XINFO STREAM is not generated (its
 *    radix-tree figures are Redis's memory layout).
 * 7. **Transactions** (`exec`): the EXEC array is compared element by element, each element
 *    with the check of its queued command; a non-array EXEC reply (EXECABORT error, nil after a
 *    WATCH conflict) exactly.
 *
 * With `errors: "code"` ({@link CompareOptions}), error replies are compared by their first word
 * only (`ERR`, `WRONGTYPE`, `EXECABORT`...): for servers whose messages are not yet Redis's.
 *
 * @module
 */
import type { ByteString } from "../../src/core/types.ts";
import { Prng } from "./prng.ts";
import { renderReply, type TaggedReply } from "./tagged_resp.ts";

// ---------------------------------------------------------------------------------------------
// Families, units, checks

/** A switchable group of commands (see the module documentation). */
export type Family =
  | "basic"
  | "strings"
  | "keys"
  | "expiry"
  | "hashes"
  | "lists"
  | "sets"
  | "streams"
  | "tx";

/** Every family, in a fixed order. */
export const ALL_FAMILIES: readonly Family[] = Object.freeze([
  "basic",
  "strings",
  "keys",
  "expiry",
  "hashes",
  "lists",
  "sets",
  "streams",
  "tx",
]);

/** How the replies of two servers to one command are compared (see the module docs). */
export type Check =
  | { kind: "exact" }
  | { kind: "unordered" }
  | { kind: "pairs" }
  | { kind: "shape" }
  | { kind: "tolerance"; within: number }
  | { kind: "idle" }
  | { kind: "exec"; items: Check[] };

/** One command and how its reply is compared. */
export interface GenCommand {
  argv: ByteString[];
  check: Check;
  family: Family;
  /** A wrong-arity or unknown command: inside MULTI it aborts the transaction (EXECABORT). */
  queueError?: boolean;
}

/**
 * Commands that must be sent in this order on one connection: a single command, or a
 * transaction (`WATCH`/`MULTI` ... `EXEC`/`DISCARD`). They may be pipelined.
 */
export interface CommandsUnit {
  kind: "commands";
  commands: GenCommand[];
}

/**
 * A full scan: send `argv` with `argv[cursorIndex]` = "0" (or the given bad cursor), then again
 * with each returned cursor until it is "0"; compare the union of the elements (`shape`
 * "elements": a set; "pairs": a field->value map). See {@link runScan}.
 */
export interface ScanUnit {
  kind: "scan";
  argv: ByteString[];
  cursorIndex: number;
  shape: "elements" | "pairs";
  family: Family;
}

/** What a test sends next. */
export type Unit = CommandsUnit | ScanUnit;

const EXACT: Check = Object.freeze({ kind: "exact" });
const UNORDERED: Check = Object.freeze({ kind: "unordered" });
const PAIRS: Check = Object.freeze({ kind: "pairs" });
const SHAPE: Check = Object.freeze({ kind: "shape" });
const IDLE: Check = Object.freeze({ kind: "idle" });
const TTL_S: Check = Object.freeze({ kind: "tolerance", within: 2 });
const TTL_MS: Check = Object.freeze({ kind: "tolerance", within: 2000 });

// ---------------------------------------------------------------------------------------------
// Value pools

/** The key space: 8 keys, including the empty key and a binary one. */
export const KEYS: readonly ByteString[] = Object.freeze([
  "a",
  "b",
  "c",
  "d",
  "key:1",
  "key:2",
  "",
  "k\r\n\x00\xff",
]);

/**
 * The keys each family prefers (75% of its key choices; the rest are any key, so types still
 * collide and the WRONGTYPE paths run, without drowning the other paths in WRONGTYPE errors).
 */
const HOME_KEYS: Record<Family, readonly ByteString[]> = {
  basic: KEYS,
  strings: ["a", "b", ""],
  keys: KEYS,
  expiry: KEYS,
  hashes: ["c", "key:1"],
  lists: ["d", "key:2"],
  sets: ["k\r\n\x00\xff", "b"],
  streams: ["key:1", "a"],
  tx: KEYS,
};

/** String values: mostly ordinary, plus every edge. */
const VALUES: readonly ByteString[] = [
  "v",
  "hello",
  "x",
  "abc",
  "",
  "\x00",
  "\r\n",
  "a\r\nb\x00c",
  "\xff\xfe\x80",
  "0",
  "1",
  "-1",
  "10",
  "42",
  "-0",
  "007",
  " 1",
  "1 ",
  "+1",
  "9223372036854775807",
  "-9223372036854775808",
  "9223372036854775808",
  "1e308",
  "3.14",
  "-2.5e-3",
  "inf",
  "-inf",
  "nan",
  "0x10",
  "a fairly long value with spaces and more than thirty-two bytes in it",
];

/** Integer arguments (increments, offsets). */
const INTS: readonly ByteString[] = [
  "0",
  "1",
  "-1",
  "5",
  "-7",
  "100",
  "9223372036854775807",
  "-9223372036854775808",
  "9223372036854775808",
  "abc",
  "",
  "1.5",
  " 3",
];

/** Float arguments (INCRBYFLOAT, HINCRBYFLOAT). */
const FLOATS: readonly ByteString[] = [
  "0.1",
  "-0.25",
  "1.5",
  "3",
  "5.0e3",
  "1e-10",
  "1e308",
  "-1e308",
  "inf",
  "-inf",
  "nan",
  "abc",
  "",
  "1.5x",
];

/** Counts (LPOP count, LPOS COUNT, LREM...). */
const COUNTS: readonly ByteString[] = ["0", "1", "2", "3", "-1", "-2", "-5", "100", "abc"];

/** Indexes (LRANGE, GETRANGE, LINDEX...). */
const INDEXES: readonly ByteString[] = [
  "0",
  "1",
  "2",
  "-1",
  "-2",
  "5",
  "-100",
  "100",
  "abc",
  "9223372036854775807",
  "-9223372036854775808",
];

/** Hash fields and set members: few, so that they repeat. */
const MEMBERS: readonly ByteString[] = ["m1", "m2", "m3", "f", "", "\x00\r\n", "1", "2", "-3"];

/** KEYS / MATCH patterns. */
const PATTERNS: readonly ByteString[] = [
  "*",
  "a",
  "key:*",
  "?",
  "[a-c]",
  "[^a]",
  "k*",
  "*\\*",
  "",
  "m*",
  "[",
];

/** Unknown command names. */
const UNKNOWN: readonly ByteString[] = ["FOO", "SETT", "GETX", "HGETALLL", "xyzzy", "LPOPP"];

/** Redis types for `SCAN ... TYPE`. */
const TYPES: readonly ByteString[] = ["string", "hash", "list", "set", "zset", "nosuchtype"];

// Expiry times (see the module documentation).
const REL_BUCKETS = [100_000, 10_000_000, 1_000_000_000];
const ABS_BUCKETS = [1_000_000, 100_000_000];
const MAX_INDEX = 800_000;

// ---------------------------------------------------------------------------------------------
// The generator

/** Options of {@link CommandGenerator}. */
export interface GeneratorOptions {
  /** The seed of the sequence. */
  seed: number;
  /** The families to draw from (at least one; `tx` alone draws its commands from `basic`). */
  families: readonly Family[];
  /**
   * The wall-clock base for absolute expiry times, in ms (default `Date.now()`). The sequence
   * of argument vectors depends on it only through these times.
   */
  nowMs?: number;
  /**
   * Whether arguments that error messages echo (those of unknown commands) may hold binary bytes
   * (default true). Redis cuts an echoed argument at its first NUL and sends other bytes raw;
   * false keeps them printable, for servers that do not match that yet.
   */
  binaryInErrors?: boolean;
}

type Maker = (g: CommandGenerator) => GenCommand;

/**
 * A seeded sequence of {@link Unit}s over the enabled families. Deterministic: the same seed,
 * families and `nowMs` give the same sequence.
 */
export class CommandGenerator {
  /** The seed. */
  readonly seed: number;
  /** The enabled families. */
  readonly families: readonly Family[];
  readonly #rng: Prng;
  readonly #nowSec: number;
  /** See {@link GeneratorOptions.binaryInErrors}. */
  readonly binaryInErrors: boolean;
  /** Index of the next command (every command of every unit counts). */
  #index = 0;
  /** The single-command makers of the enabled families except tx, with weights. */
  readonly #makers: { family: Family; make: Maker }[] = [];
  readonly #scans: { family: Family; make: (g: CommandGenerator) => ScanUnit }[] = [];
  /** The family of the command being made (for {@link key}). */
  #family: Family = "basic";

  /** A generator for `options.seed` over `options.families`. */
  constructor(options: GeneratorOptions) {
    if (options.families.length === 0) throw new Error("no family enabled");
    for (const f of options.families) {
      if (!ALL_FAMILIES.includes(f)) throw new Error(`unknown family ${f}`);
    }
    this.seed = options.seed;
    this.families = [...options.families];
    this.#rng = new Prng(options.seed);
    this.#nowSec = Math.floor((options.nowMs ?? Date.now()) / 1000);
    this.binaryInErrors = options.binaryInErrors ?? true;
    const plain = this.families.filter((f) => f !== "tx");
    for (const f of plain.length === 0 ? ["basic" as Family] : plain) {
      for (const make of MAKERS[f]) this.#makers.push({ family: f, make });
      for (const make of SCANS[f] ?? []) this.#scans.push({ family: f, make });
    }
  }

  /** Number of commands generated so far. */
  get commandCount(): number {
    return this.#index;
  }

  /** The next unit. */
  next(): Unit {
    const r = this.#rng;
    if (this.families.includes("tx") && r.chance(0.08)) return this.#tx();
    if (this.#scans.length > 0 && r.chance(0.02)) {
      const scan = r.pick(this.#scans);
      this.#family = scan.family;
      this.#index++;
      return scan.make(this);
    }
    const one = this.#single();
    return { kind: "commands", commands: [one, ...this.#expiredProbes([one])] };
  }

  /**
   * `EXISTS key` after each SET with an absolute expiry time: when that time is past, Redis keeps
   * the expired key (and counts it in DBSIZE) until its expiry cycle or an access removes it,
   * while lamportkv never counts a key whose time has passed. The probe makes Redis remove it at
   * once, so that a later DBSIZE compares exactly.
   */
  #expiredProbes(cmds: readonly GenCommand[]): GenCommand[] {
    const out: GenCommand[] = [];
    for (const c of cmds) {
      const [name, key] = c.argv;
      if (name?.toLowerCase() !== "set" || key === undefined) continue;
      if (!c.argv.slice(3).some((a) => /^(ex|px)at$/i.test(a))) continue;
      out.push({ argv: ["EXISTS", key], check: EXACT, family: c.family });
      this.#index++;
    }
    return out;
  }

  /**
   * One command of an enabled family. `inTx`: a queue-time error (which aborts the whole
   * transaction) is redrawn, up to 3 times, so that most transactions run.
   */
  #single(inTx = false): GenCommand {
    let cmd: GenCommand;
    for (let attempt = 0;; attempt++) {
      const m = this.#rng.pick(this.#makers);
      this.#family = m.family;
      cmd = m.make(this);
      if (!inTx || !cmd.queueError || attempt >= 3) break;
    }
    this.#index++;
    return cmd;
  }

  #tx(): CommandsUnit {
    const r = this.#rng;
    const commands: GenCommand[] = [];
    const add = (argv: ByteString[], check: Check = EXACT) => {
      commands.push({ argv, check, family: "tx" });
      this.#index++;
    };
    const roll = r.next();
    if (roll < 0.03) {
      add([this.name("EXEC")]);
      return { kind: "commands", commands };
    }
    if (roll < 0.06) {
      add([this.name("DISCARD")]);
      return { kind: "commands", commands };
    }
    if (r.chance(0.2)) {
      const watched = this.key();
      add([this.name("WATCH"), watched, ...(r.chance(0.3) ? [this.key()] : [])]);
      // Sometimes the same connection touches a key before MULTI: EXEC then returns nil for a
      // watched key that was modified, and runs normally otherwise.
      if (r.chance(0.5)) commands.push(this.#single());
    }
    add([this.name("MULTI")]);
    const queued: Check[] = [];
    const n = r.int(0, 5);
    for (let i = 0; i < n; i++) {
      const roll = r.next();
      if (roll < 0.02) {
        add([this.name("MULTI")]); // nested: an error, not queued
      } else if (roll < 0.04) {
        add([this.name("WATCH"), this.key()]); // not allowed inside MULTI
      } else if (roll < 0.05) {
        add([r.pick(UNKNOWN), this.echoedValue()]); // queue-time error: EXECABORT
      } else if (roll < 0.06) {
        add([this.name("GET")]); // queue-time arity error: EXECABORT
      } else {
        const c = this.#single(true);
        commands.push(c);
        queued.push(c.check);
      }
    }
    if (r.chance(0.12)) add([this.name("DISCARD")]);
    else add([this.name("EXEC")], { kind: "exec", items: queued });
    commands.push(...this.#expiredProbes(commands));
    return { kind: "commands", commands };
  }

  // --- helpers used by the makers ------------------------------------------------------------

  /** The PRNG (for makers). */
  get rng(): Prng {
    return this.#rng;
  }

  /** `name` in random case: mostly upper, sometimes lower or mixed. */
  name(name: string): ByteString {
    const roll = this.#rng.next();
    if (roll < 0.8) return name;
    if (roll < 0.93) return name.toLowerCase();
    let out = "";
    for (const ch of name) out += this.#rng.chance(0.5) ? ch.toLowerCase() : ch;
    return out;
  }

  /** A key: one of the current family's home keys 75% of the time, else any key. */
  key(): ByteString {
    return this.#rng.pick(this.#rng.chance(0.75) ? HOME_KEYS[this.#family] : KEYS);
  }

  /** `lo..hi` keys (repeats allowed). */
  keys(lo: number, hi: number): ByteString[] {
    return Array.from({ length: this.#rng.int(lo, hi) }, () => this.key());
  }

  /** A value: ordinary 60% of the time, else any edge value. */
  value(): ByteString {
    return this.#rng.chance(0.6) ? this.#rng.pick(VALUES.slice(0, 4)) : this.#rng.pick(VALUES);
  }

  /** A value that an error message may echo (see {@link GeneratorOptions.binaryInErrors}). */
  echoedValue(): ByteString {
    for (;;) {
      const v = this.value();
      if (this.binaryInErrors || /^[\x20-\x7e]*$/.test(v)) return v;
    }
  }

  /** An integer-ish argument: a small integer 60% of the time, else any edge. */
  int(): ByteString {
    return this.#rng.chance(0.6) ? String(this.#rng.int(-20, 20)) : this.#rng.pick(INTS);
  }

  /** A float-ish argument. */
  float(): ByteString {
    return this.#rng.pick(FLOATS);
  }

  /** A count. */
  count(): ByteString {
    return this.#rng.pick(COUNTS);
  }

  /** An index. */
  index(): ByteString {
    return this.#rng.chance(0.6) ? String(this.#rng.int(-4, 4)) : this.#rng.pick(INDEXES);
  }

  /** A hash field or set member. */
  member(): ByteString {
    return this.#rng.pick(MEMBERS);
  }

  /** `lo..hi` members. */
  members(lo: number, hi: number): ByteString[] {
    return Array.from({ length: this.#rng.int(lo, hi) }, () => this.member());
  }

  /** A pattern for KEYS / MATCH. */
  pattern(): ByteString {
    return this.#rng.pick(PATTERNS);
  }

  /**
   * A relative expiry in seconds (or ms with `ms`), unique to this command (see the module
   * docs); 8% of the time an invalid or non-positive one.
   */
  relTime(ms = false): ByteString {
    const r = this.#rng;
    if (r.chance(0.08)) return r.pick(["0", "-1", "-100", "abc", "1.5", "9223372036854775807"]);
    const sec = r.pick(REL_BUCKETS) + Math.min(this.#index, MAX_INDEX);
    return ms ? String(sec * 1000 + r.int(0, 999)) : String(sec);
  }

  /**
   * An absolute expiry (unix seconds, or ms with `ms`), unique to this command and far in the
   * future; 10% of the time in the past (the key is deleted at once) or invalid.
   */
  absTime(ms = false): ByteString {
    const r = this.#rng;
    if (r.chance(0.1)) {
      const past = r.pick([1, 100, this.#nowSec - 100_000]);
      return r.chance(0.15) ? r.pick(["abc", "-5", "9223372036854775807"]) : String(
        ms ? past * 1000 : past,
      );
    }
    const sec = this.#nowSec + r.pick(ABS_BUCKETS) + Math.min(this.#index, MAX_INDEX);
    return ms ? String(sec * 1000 + r.int(0, 999)) : String(sec);
  }
}

/** A command of family `family`. */
function cmd(family: Family, argv: ByteString[], check: Check = EXACT): GenCommand {
  return { argv, check, family };
}

/**
 * A wrong-arity call of one of `table`'s commands: `[name, minArgs, maxArgs]` counts the
 * arguments after the name (maxArgs -1: unlimited). Produces too few arguments, or too many for
 * a command with a fixed maximum.
 */
function arityError(g: CommandGenerator, family: Family, table: [string, number, number][]) {
  const [name, min, max] = g.rng.pick(table);
  const tooMany = max >= 0 && (min === 0 || g.rng.chance(0.4));
  const n = tooMany ? max + 1 + g.rng.int(0, 1) : g.rng.int(0, min - 1);
  const args = Array.from({ length: n }, (_, i) => (i === 0 ? g.key() : g.value()));
  return { ...cmd(family, [g.name(name), ...args]), queueError: true };
}

// --- basic -----------------------------------------------------------------------------------

const BASIC_ARITY: [string, number, number][] = [
  ["GET", 1, 1],
  ["SET", 2, -1],
  ["DEL", 1, -1],
  ["EXISTS", 1, -1],
  ["PING", 0, 1],
];

const BASIC: Maker[] = [
  (g) => cmd("basic", [g.name("GET"), g.key()]),
  (g) => cmd("basic", [g.name("GET"), g.key()]),
  (g) => cmd("basic", [g.name("SET"), g.key(), g.value()]),
  (g) => cmd("basic", [g.name("SET"), g.key(), g.value()]),
  (g) => cmd("basic", [g.name("DEL"), g.key()]),
  (g) => cmd("basic", [g.name("EXISTS"), g.key()]),
  (g) => cmd("basic", g.rng.chance(0.5) ? [g.name("PING")] : [g.name("PING"), g.value()]),
  (g) => arityError(g, "basic", BASIC_ARITY),
  (g) => ({
    ...cmd("basic", [
      g.rng.pick(UNKNOWN),
      ...Array.from({ length: g.rng.int(0, 3) }, () => g.echoedValue()),
    ]),
    queueError: true,
  }),
];

// --- strings ---------------------------------------------------------------------------------

const STRING_ARITY: [string, number, number][] = [
  ["SETNX", 2, 2],
  ["SETEX", 3, 3],
  ["PSETEX", 3, 3],
  ["GETSET", 2, 2],
  ["GETDEL", 1, 1],
  ["GETEX", 1, -1],
  ["APPEND", 2, 2],
  ["STRLEN", 1, 1],
  ["GETRANGE", 3, 3],
  ["SETRANGE", 3, 3],
  ["INCR", 1, 1],
  ["DECR", 1, 1],
  ["INCRBY", 2, 2],
  ["DECRBY", 2, 2],
  ["INCRBYFLOAT", 2, 2],
  ["MGET", 1, -1],
  ["MSET", 2, -1],
  ["MSETNX", 2, -1],
];

/** SET's options: 0-3 of them, any combination (invalid ones included). */
function setOptions(g: CommandGenerator): ByteString[] {
  const out: ByteString[] = [];
  const n = g.rng.pick([0, 1, 1, 1, 2, 2, 3]);
  for (let i = 0; i < n; i++) {
    switch (g.rng.int(0, 8)) {
      case 0:
        out.push(g.name("NX"));
        break;
      case 1:
        out.push(g.name("XX"));
        break;
      case 2:
        out.push(g.name("GET"));
        break;
      case 3:
        out.push(g.name("EX"), g.relTime());
        break;
      case 4:
        out.push(g.name("PX"), g.relTime(true));
        break;
      case 5:
        out.push(g.name("EXAT"), g.absTime());
        break;
      case 6:
        out.push(g.name("PXAT"), g.absTime(true));
        break;
      case 7:
        out.push(g.name("KEEPTTL"));
        break;
      default:
        out.push(g.rng.pick(["EX", "BOGUS", "PX"])); // a missing value or an unknown option
        break;
    }
  }
  return out;
}

/** Alternating key/value arguments; sometimes a dangling key (wrong arity). */
function keyValues(g: CommandGenerator): ByteString[] {
  const out: ByteString[] = [];
  const n = g.rng.int(1, 4);
  for (let i = 0; i < n; i++) out.push(g.key(), g.value());
  if (g.rng.chance(0.08)) out.push(g.key());
  return out;
}

const STRINGS: Maker[] = [
  (g) => cmd("strings", [g.name("SET"), g.key(), g.value(), ...setOptions(g)]),
  (g) => cmd("strings", [g.name("SET"), g.key(), g.value(), ...setOptions(g)]),
  (g) => cmd("strings", [g.name("SETNX"), g.key(), g.value()]),
  (g) => cmd("strings", [g.name("SETEX"), g.key(), g.relTime(), g.value()]),
  (g) => cmd("strings", [g.name("PSETEX"), g.key(), g.relTime(true), g.value()]),
  (g) => cmd("strings", [g.name("GETSET"), g.key(), g.value()]),
  (g) => cmd("strings", [g.name("GETDEL"), g.key()]),
  (g) => {
    const opts: ByteString[][] = [
      [],
      ["EX", g.relTime()],
      ["PX", g.relTime(true)],
      ["EXAT", g.absTime()],
      ["PXAT", g.absTime(true)],
      ["PERSIST"],
      ["PERSIST", "EX", "100"],
      ["BOGUS"],
    ];
    return cmd("strings", [g.name("GETEX"), g.key(), ...g.rng.pick(opts)]);
  },
  (g) => cmd("strings", [g.name("APPEND"), g.key(), g.value()]),
  (g) => cmd("strings", [g.name("STRLEN"), g.key()]),
  (g) => cmd("strings", [g.name("GETRANGE"), g.key(), g.index(), g.index()]),
  (g) =>
    cmd("strings", [
      g.name("SETRANGE"),
      g.key(),
      g.rng.pick(["0", "1", "3", "10", "-1", "536870912", "abc", String(g.rng.int(0, 40))]),
      g.value(),
    ]),
  (g) => cmd("strings", [g.name("INCR"), g.key()]),
  (g) => cmd("strings", [g.name("DECR"), g.key()]),
  (g) => cmd("strings", [g.name("INCRBY"), g.key(), g.int()]),
  (g) => cmd("strings", [g.name("DECRBY"), g.key(), g.int()]),
  (g) => cmd("strings", [g.name("INCRBYFLOAT"), g.key(), g.float()]),
  (g) => cmd("strings", [g.name("MGET"), ...g.keys(1, 5)]),
  (g) => cmd("strings", [g.name("MSET"), ...keyValues(g)]),
  (g) => cmd("strings", [g.name("MSETNX"), ...keyValues(g)]),
  (g) => cmd("strings", [g.name("GET"), g.key()]),
  (g) => arityError(g, "strings", STRING_ARITY),
];

// --- keys ------------------------------------------------------------------------------------

const KEYS_ARITY: [string, number, number][] = [
  ["DEL", 1, -1],
  ["UNLINK", 1, -1],
  ["EXISTS", 1, -1],
  ["TYPE", 1, 1],
  ["RENAME", 2, 2],
  ["RENAMENX", 2, 2],
  ["KEYS", 1, 1],
  ["DBSIZE", 0, 0],
  ["RANDOMKEY", 0, 0],
  ["SCAN", 1, -1],
];

const KEYS_FAMILY: Maker[] = [
  (g) => cmd("keys", [g.name("DEL"), ...g.keys(1, 5)]),
  (g) => cmd("keys", [g.name("UNLINK"), ...g.keys(1, 4)]),
  (g) => cmd("keys", [g.name("EXISTS"), ...g.keys(1, 6)]),
  (g) => cmd("keys", [g.name("TYPE"), g.key()]),
  (g) => cmd("keys", [g.name("RENAME"), g.key(), g.key()]),
  (g) => cmd("keys", [g.name("RENAMENX"), g.key(), g.key()]),
  (g) => cmd("keys", [g.name("KEYS"), g.pattern()], UNORDERED),
  (g) => cmd("keys", [g.name("DBSIZE")]),
  (g) => cmd("keys", [g.name("RANDOMKEY")], SHAPE),
  (g) =>
    g.rng.chance(0.04)
      ? cmd("keys", [g.name("FLUSHALL"), ...(g.rng.chance(0.3) ? [g.rng.pick(["SYNC"])] : [])])
      : cmd("keys", [g.name("EXISTS"), g.key()]),
  (g) => arityError(g, "keys", KEYS_ARITY),
];

/** `[MATCH p] [COUNT n]` in random order, sometimes invalid. */
function scanOptions(g: CommandGenerator, withType: boolean): ByteString[] {
  const out: ByteString[] = [];
  if (g.rng.chance(0.4)) out.push(g.name("MATCH"), g.pattern());
  if (g.rng.chance(0.4)) out.push(g.name("COUNT"), g.rng.pick(["1", "2", "10", "1000", "0"]));
  if (withType && g.rng.chance(0.3)) out.push(g.name("TYPE"), g.rng.pick(TYPES));
  if (g.rng.chance(0.03)) out.push("BOGUS");
  return out;
}

/** A scan starting at cursor 0, or (3%) at an invalid cursor. */
function scanUnit(
  g: CommandGenerator,
  family: Family,
  head: ByteString[],
  withType: boolean,
  shape: ScanUnit["shape"],
): ScanUnit {
  const cursor = g.rng.chance(0.03) ? "abc" : "0";
  const argv = [...head, cursor, ...scanOptions(g, withType)];
  return { kind: "scan", argv, cursorIndex: head.length, shape, family };
}

// --- expiry ----------------------------------------------------------------------------------

const EXPIRY_ARITY: [string, number, number][] = [
  ["EXPIRE", 2, -1],
  ["PEXPIRE", 2, -1],
  ["EXPIREAT", 2, -1],
  ["PEXPIREAT", 2, -1],
  ["TTL", 1, 1],
  ["PTTL", 1, 1],
  ["EXPIRETIME", 1, 1],
  ["PEXPIRETIME", 1, 1],
  ["PERSIST", 1, 1],
];

/** Expire conditions: usually none or one, sometimes an invalid pair or an unknown word. */
function expireFlags(g: CommandGenerator): ByteString[] {
  const roll = g.rng.next();
  if (roll < 0.4) return [];
  if (roll < 0.9) return [g.name(g.rng.pick(["NX", "XX", "GT", "LT"]))];
  return [g.rng.pick(["NX", "GT", "XX"]), g.rng.pick(["XX", "LT", "GT", "BOGUS"])];
}

const EXPIRY: Maker[] = [
  (g) => cmd("expiry", [g.name("EXPIRE"), g.key(), g.relTime(), ...expireFlags(g)]),
  (g) => cmd("expiry", [g.name("PEXPIRE"), g.key(), g.relTime(true), ...expireFlags(g)]),
  (g) => cmd("expiry", [g.name("EXPIREAT"), g.key(), g.absTime(), ...expireFlags(g)]),
  (g) => cmd("expiry", [g.name("PEXPIREAT"), g.key(), g.absTime(true), ...expireFlags(g)]),
  (g) => cmd("expiry", [g.name("TTL"), g.key()], TTL_S),
  (g) => cmd("expiry", [g.name("PTTL"), g.key()], TTL_MS),
  (g) => cmd("expiry", [g.name("EXPIRETIME"), g.key()], TTL_S),
  (g) => cmd("expiry", [g.name("PEXPIRETIME"), g.key()], TTL_MS),
  (g) => cmd("expiry", [g.name("PERSIST"), g.key()]),
  (g) => arityError(g, "expiry", EXPIRY_ARITY),
];

// --- hashes ----------------------------------------------------------------------------------

const HASH_ARITY: [string, number, number][] = [
  ["HSET", 3, -1],
  ["HSETNX", 3, 3],
  ["HGET", 2, 2],
  ["HMGET", 2, -1],
  ["HDEL", 2, -1],
  ["HGETALL", 1, 1],
  ["HEXISTS", 2, 2],
  ["HLEN", 1, 1],
  ["HINCRBY", 3, 3],
  ["HINCRBYFLOAT", 3, 3],
  ["HKEYS", 1, 1],
  ["HVALS", 1, 1],
  ["HSCAN", 2, -1],
];

/** Field/value pairs; sometimes a dangling field (wrong arity). */
function fieldValues(g: CommandGenerator): ByteString[] {
  const out: ByteString[] = [];
  const n = g.rng.int(1, 3);
  for (let i = 0; i < n; i++) out.push(g.member(), g.value());
  if (g.rng.chance(0.06)) out.push(g.member());
  return out;
}

const HASHES: Maker[] = [
  (g) => cmd("hashes", [g.name("HSET"), g.key(), ...fieldValues(g)]),
  (g) => cmd("hashes", [g.name("HSET"), g.key(), ...fieldValues(g)]),
  (g) => cmd("hashes", [g.name("HSETNX"), g.key(), g.member(), g.value()]),
  (g) => cmd("hashes", [g.name("HGET"), g.key(), g.member()]),
  (g) => cmd("hashes", [g.name("HMGET"), g.key(), ...g.members(1, 4)]),
  (g) => cmd("hashes", [g.name("HDEL"), g.key(), ...g.members(1, 3)]),
  (g) => cmd("hashes", [g.name("HGETALL"), g.key()], PAIRS),
  (g) => cmd("hashes", [g.name("HEXISTS"), g.key(), g.member()]),
  (g) => cmd("hashes", [g.name("HLEN"), g.key()]),
  (g) => cmd("hashes", [g.name("HINCRBY"), g.key(), g.member(), g.int()]),
  (g) => cmd("hashes", [g.name("HINCRBYFLOAT"), g.key(), g.member(), g.float()]),
  (g) => cmd("hashes", [g.name("HKEYS"), g.key()], UNORDERED),
  (g) => cmd("hashes", [g.name("HVALS"), g.key()], UNORDERED),
  (g) => arityError(g, "hashes", HASH_ARITY),
];

// --- lists -----------------------------------------------------------------------------------

const LIST_ARITY: [string, number, number][] = [
  ["LPUSH", 2, -1],
  ["RPUSH", 2, -1],
  ["LPOP", 1, 2],
  ["RPOP", 1, 2],
  ["LLEN", 1, 1],
  ["LRANGE", 3, 3],
  ["LINDEX", 2, 2],
  ["LSET", 3, 3],
  ["LREM", 3, 3],
  ["LTRIM", 3, 3],
  ["LMOVE", 4, 4],
  ["LPOS", 2, -1],
];

function lposOptions(g: CommandGenerator): ByteString[] {
  const out: ByteString[] = [];
  if (g.rng.chance(0.4)) out.push(g.name("RANK"), g.rng.pick(["1", "2", "-1", "-2", "0", "abc"]));
  if (g.rng.chance(0.4)) out.push(g.name("COUNT"), g.rng.pick(["0", "1", "2", "-1"]));
  if (g.rng.chance(0.3)) out.push(g.name("MAXLEN"), g.rng.pick(["0", "1", "3", "-1"]));
  if (g.rng.chance(0.03)) out.push("BOGUS");
  return out;
}

const SIDES = ["LEFT", "RIGHT", "left", "UP"];

const LISTS: Maker[] = [
  (g) => cmd("lists", [g.name("LPUSH"), g.key(), ...g.members(1, 3)]),
  (g) => cmd("lists", [g.name("RPUSH"), g.key(), ...g.members(1, 3)]),
  (g) =>
    cmd("lists", [
      g.name(g.rng.pick(["LPOP", "RPOP"])),
      g.key(),
      ...(
        g.rng.chance(0.5) ? [g.count()] : []
      ),
    ]),
  (g) => cmd("lists", [g.name("LLEN"), g.key()]),
  (g) => cmd("lists", [g.name("LRANGE"), g.key(), g.index(), g.index()]),
  (g) => cmd("lists", [g.name("LINDEX"), g.key(), g.index()]),
  (g) => cmd("lists", [g.name("LSET"), g.key(), g.index(), g.member()]),
  (g) => cmd("lists", [g.name("LREM"), g.key(), g.count(), g.member()]),
  (g) => cmd("lists", [g.name("LTRIM"), g.key(), g.index(), g.index()]),
  (g) => cmd("lists", [g.name("LMOVE"), g.key(), g.key(), g.rng.pick(SIDES), g.rng.pick(SIDES)]),
  (g) => cmd("lists", [g.name("LPOS"), g.key(), g.member(), ...lposOptions(g)]),
  (g) => arityError(g, "lists", LIST_ARITY),
];

// --- sets ------------------------------------------------------------------------------------

const SET_ARITY: [string, number, number][] = [
  ["SADD", 2, -1],
  ["SREM", 2, -1],
  ["SMEMBERS", 1, 1],
  ["SISMEMBER", 2, 2],
  ["SMISMEMBER", 2, -1],
  ["SCARD", 1, 1],
  ["SINTER", 1, -1],
  ["SUNION", 1, -1],
  ["SDIFF", 1, -1],
  ["SINTERSTORE", 2, -1],
  ["SUNIONSTORE", 2, -1],
  ["SDIFFSTORE", 2, -1],
  ["SSCAN", 2, -1],
  ["SPOP", 1, 2],
  ["SRANDMEMBER", 1, 2],
];

const SETS: Maker[] = [
  (g) => cmd("sets", [g.name("SADD"), g.key(), ...g.members(1, 4)]),
  (g) => cmd("sets", [g.name("SADD"), g.key(), ...g.members(1, 4)]),
  (g) => cmd("sets", [g.name("SREM"), g.key(), ...g.members(1, 3)]),
  (g) => cmd("sets", [g.name("SMEMBERS"), g.key()], UNORDERED),
  (g) => cmd("sets", [g.name("SISMEMBER"), g.key(), g.member()]),
  (g) => cmd("sets", [g.name("SMISMEMBER"), g.key(), ...g.members(1, 4)]),
  (g) => cmd("sets", [g.name("SCARD"), g.key()]),
  (g) =>
    cmd("sets", [g.name(g.rng.pick(["SINTER", "SUNION", "SDIFF"])), ...g.keys(1, 3)], UNORDERED),
  (g) =>
    cmd("sets", [
      g.name(g.rng.pick(["SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"])),
      g.key(),
      ...g.keys(1, 3),
    ]),
  // Pops everything or nothing, or fails: the data stays the same on both servers.
  (g) =>
    cmd(
      "sets",
      [g.name("SPOP"), g.key(), g.rng.pick(["1000", "1000", "1000", "0", "-1", "abc"])],
      UNORDERED,
    ),
  (g) =>
    cmd(
      "sets",
      [g.name("SRANDMEMBER"), g.key(), ...(g.rng.chance(0.7) ? [g.count()] : [])],
      SHAPE,
    ),
  (g) => arityError(g, "sets", SET_ARITY),
];

// --- streams ---------------------------------------------------------------------------------

const STREAM_ARITY: [string, number, number][] = [
  ["XADD", 4, -1],
  ["XRANGE", 3, -1],
  ["XREVRANGE", 3, -1],
  ["XLEN", 1, 1],
  ["XDEL", 2, -1],
  ["XTRIM", 3, -1],
  ["XACK", 3, -1],
  ["XPENDING", 2, -1],
  ["XCLAIM", 5, -1],
  ["XAUTOCLAIM", 5, -1],
];

const GROUPS = ["g1", "g2", "nogroup"];
const CONSUMERS = ["alice", "bob", ""];

/**
 * A stream ID argument: mostly one near the command's index (so XADDs mostly succeed, IDs
 * growing with the sequence), sometimes small, extreme, partial or invalid.
 */
function streamId(g: CommandGenerator, allowSpecial = false): ByteString {
  const r = g.rng;
  const roll = r.next();
  const near = g.commandCount + 1 - r.int(0, 3);
  if (roll < 0.55) return `${near}-${r.int(0, 2)}`;
  if (roll < 0.65) return String(Math.max(0, near - r.int(0, 10)));
  if (roll < 0.75 && allowSpecial) return r.pick(["-", "+"]);
  if (roll < 0.8 && allowSpecial) return `(${near}-${r.int(0, 1)}`;
  return r.pick([
    "0",
    "0-0",
    "0-1",
    "1-1",
    "18446744073709551615-18446744073709551615",
    "18446744073709551616",
    "abc",
    "1-x",
    "",
    "-1",
    "007-1",
    "(",
    "(0-0",
  ]);
}

/** XADD/XTRIM trimming options. */
function trimOptions(g: CommandGenerator): ByteString[] {
  const r = g.rng;
  const out: ByteString[] = [];
  if (r.chance(0.5)) {
    out.push(g.name(r.pick(["MAXLEN", "MINID"])));
    if (r.chance(0.5)) out.push(r.pick(["=", "~"]));
    out.push(
      out[0].toUpperCase() === "MAXLEN" ? r.pick(["0", "1", "2", "5", "-1", "abc"]) : streamId(g),
    );
    if (r.chance(0.2)) out.push(g.name("LIMIT"), r.pick(["0", "1", "10", "-1"]));
  } else if (r.chance(0.05)) out.push(g.name("LIMIT"), "5");
  return out;
}

/** A key, group and consumer (`XREADGROUP GROUP g c`, XCLAIM...). */
function groupArgs(g: CommandGenerator): ByteString[] {
  return [g.key(), g.rng.pick(GROUPS), g.rng.pick(CONSUMERS)];
}

/** XREADGROUP/XREAD STREAMS tail: 1-2 keys and their IDs. */
function streamsTail(g: CommandGenerator, group: boolean): ByteString[] {
  const keys = g.keys(1, 2);
  const ids = keys.map(() =>
    group ? g.rng.pick([">", ">", "0", streamId(g)]) : g.rng.pick(["0", "$", streamId(g)])
  );
  if (g.rng.chance(0.04)) ids.pop(); // unbalanced
  return [g.name("STREAMS"), ...keys, ...ids];
}

const STREAMS: Maker[] = [
  (g) =>
    cmd("streams", [
      g.name("XADD"),
      g.key(),
      ...(g.rng.chance(0.1) ? [g.name("NOMKSTREAM")] : []),
      ...trimOptions(g),
      g.rng.chance(0.15) ? `${g.commandCount + 1}-*` : streamId(g),
      ...g.members(1, 2).flatMap((m) => [m, g.value()]),
    ]),
  (g) =>
    cmd("streams", [
      g.name("XADD"),
      g.key(),
      streamId(g),
      ...g.members(1, 1).flatMap((m) => [m, g.value()]),
    ]),
  (g) =>
    cmd("streams", [
      g.name(g.rng.pick(["XRANGE", "XREVRANGE"])),
      g.key(),
      streamId(g, true),
      streamId(g, true),
      ...(g.rng.chance(0.3) ? [g.name("COUNT"), g.count()] : []),
    ]),
  (g) =>
    cmd("streams", [
      g.name(g.rng.pick(["XRANGE", "XREVRANGE"])),
      g.key(),
      ...(g.rng.chance(0.5) ? ["-", "+"] : ["+", "-"]),
    ]),
  (g) => cmd("streams", [g.name("XLEN"), g.key()]),
  (g) =>
    cmd("streams", [
      g.name("XDEL"),
      g.key(),
      ...Array.from({ length: g.rng.int(1, 3) }, () => streamId(g)),
    ]),
  (g) => cmd("streams", [g.name("XTRIM"), g.key(), ...trimOptions(g)]),
  (g) =>
    cmd("streams", [
      g.name("XREAD"),
      ...(g.rng.chance(0.4) ? [g.name("COUNT"), g.count()] : []),
      ...streamsTail(g, false),
    ]),
  (g) =>
    cmd("streams", [
      g.name("XGROUP"),
      g.name("CREATE"),
      g.key(),
      g.rng.pick(GROUPS),
      g.rng.pick(["0", "$", streamId(g)]),
      ...(g.rng.chance(0.5) ? [g.name("MKSTREAM")] : []),
      ...(g.rng.chance(0.15) ? [g.name("ENTRIESREAD"), g.rng.pick(["0", "3", "-1", "-2"])] : []),
    ]),
  (g) =>
    cmd("streams", [
      g.name("XGROUP"),
      g.name(g.rng.pick(["SETID", "SETID", "DESTROY", "CREATECONSUMER", "DELCONSUMER", "FOO"])),
      g.key(),
      g.rng.pick(GROUPS),
      ...(g.rng.chance(0.8) ? [g.rng.pick(["0", "$", ...CONSUMERS, streamId(g)])] : []),
    ]),
  (g) =>
    cmd("streams", [
      g.name("XREADGROUP"),
      g.name("GROUP"),
      g.rng.pick(GROUPS),
      g.rng.pick(CONSUMERS),
      ...(g.rng.chance(0.4) ? [g.name("COUNT"), g.rng.pick(["1", "2", "0", "-1"])] : []),
      ...(g.rng.chance(0.15) ? [g.name("NOACK")] : []),
      ...streamsTail(g, true),
    ]),
  (g) =>
    cmd("streams", [
      g.name("XREADGROUP"),
      g.name("GROUP"),
      g.rng.pick(GROUPS),
      g.rng.pick(CONSUMERS),
      g.name("STREAMS"),
      g.key(),
      ">",
    ]),
  (g) =>
    cmd("streams", [
      g.name("XACK"),
      g.key(),
      g.rng.pick(GROUPS),
      ...Array.from({ length: g.rng.int(1, 3) }, () => streamId(g)),
    ]),
  (g) => cmd("streams", [g.name("XPENDING"), g.key(), g.rng.pick(GROUPS)]),
  (g) =>
    cmd(
      "streams",
      [
        g.name("XPENDING"),
        g.key(),
        g.rng.pick(GROUPS),
        ...(g.rng.chance(0.3) ? [g.name("IDLE"), g.rng.pick(["0", "3600000", "abc"])] : []),
        streamId(g, true),
        streamId(g, true),
        g.count(),
        ...(g.rng.chance(0.4) ? [g.rng.pick(CONSUMERS)] : []),
      ],
      IDLE,
    ),
  (g) =>
    cmd("streams", [
      g.name("XCLAIM"),
      ...groupArgs(g),
      g.rng.pick(["0", "0", "3600000", "-5", "abc"]),
      ...Array.from({ length: g.rng.int(1, 3) }, () => streamId(g)),
      ...(g.rng.chance(0.3) ? [g.name("JUSTID")] : []),
      ...(g.rng.chance(0.15) ? [g.name("FORCE")] : []),
      ...(g.rng.chance(0.15) ? [g.name("RETRYCOUNT"), g.rng.pick(["3", "abc"])] : []),
      ...(g.rng.chance(0.1) ? [g.name("LASTID"), streamId(g)] : []),
      ...(g.rng.chance(0.05) ? ["BOGUS"] : []),
    ]),
  (g) =>
    cmd("streams", [
      g.name("XAUTOCLAIM"),
      ...groupArgs(g),
      g.rng.pick(["0", "0", "3600000", "abc"]),
      streamId(g, true),
      ...(g.rng.chance(0.4) ? [g.name("COUNT"), g.rng.pick(["1", "2", "10", "0", "-1"])] : []),
      ...(g.rng.chance(0.3) ? [g.name("JUSTID")] : []),
    ]),
  (g) => cmd("streams", [g.name("XINFO"), g.name("GROUPS"), g.key()]),
  (g) => cmd("streams", [g.name("XINFO"), g.name("CONSUMERS"), g.key(), g.rng.pick(GROUPS)], IDLE),
  (g) => arityError(g, "streams", STREAM_ARITY),
];

const MAKERS: Record<Family, Maker[]> = {
  basic: BASIC,
  strings: STRINGS,
  keys: KEYS_FAMILY,
  expiry: EXPIRY,
  hashes: HASHES,
  lists: LISTS,
  sets: SETS,
  streams: STREAMS,
  tx: [],
};

const SCANS: Partial<Record<Family, ((g: CommandGenerator) => ScanUnit)[]>> = {
  keys: [(g) => scanUnit(g, "keys", [g.name("SCAN")], true, "elements")],
  hashes: [(g) => scanUnit(g, "hashes", [g.name("HSCAN"), g.key()], false, "pairs")],
  sets: [(g) => scanUnit(g, "sets", [g.name("SSCAN"), g.key()], false, "elements")],
};

// ---------------------------------------------------------------------------------------------
// Scans

/** Sends one command, returns its reply (e.g. one pipelined batch of one). */
export type SendOne = (argv: ByteString[]) => Promise<TaggedReply>;

/** Most SCAN calls of one iteration before giving up (a server that never returns cursor 0). */
export const MAX_SCAN_CALLS = 10_000;

/**
 * Runs a full scan ({@link ScanUnit}) with `send`: from the unit's cursor until the server
 * returns cursor "0". Resolves with one synthetic reply: the first error reply as is, a malformed
 * reply as an error `-MALFORMED ...`, or an array of the distinct elements (for `pairs`, flat
 * field/value pairs, the last value of a field winning) in first-seen order.
 */
export async function runScan(unit: ScanUnit, send: SendOne): Promise<TaggedReply> {
  const argv = [...unit.argv];
  const seen = new Map<ByteString, ByteString>();
  for (let calls = 0; calls < MAX_SCAN_CALLS; calls++) {
    const reply = await send([...argv]);
    if (reply.type === "error") return reply;
    const parts = reply.type === "array" ? reply.value : null;
    const cursor = parts?.[0];
    const items = parts?.[1];
    if (
      parts === null || parts.length !== 2 || cursor?.type !== "bulk" || cursor.value === null ||
      items?.type !== "array" || items.value === null ||
      items.value.some((i) => i.type !== "bulk" || i.value === null) ||
      (unit.shape === "pairs" && items.value.length % 2 !== 0)
    ) {
      return { type: "error", value: `MALFORMED scan reply ${renderReply(reply)}` };
    }
    const values = items.value.map((i) => (i as { value: ByteString }).value);
    if (unit.shape === "pairs") {
      for (let i = 0; i < values.length; i += 2) seen.set(values[i], values[i + 1]);
    } else {
      for (const v of values) seen.set(v, v);
    }
    if (cursor.value === "0") {
      const flat: TaggedReply[] = [];
      for (const [k, v] of seen) {
        flat.push({ type: "bulk", value: k });
        if (unit.shape === "pairs") flat.push({ type: "bulk", value: v });
      }
      return { type: "array", value: flat };
    }
    argv[unit.cursorIndex] = cursor.value;
  }
  return { type: "error", value: `MALFORMED scan did not end within ${MAX_SCAN_CALLS} calls` };
}

/** The {@link Check} of a scan's synthetic reply. */
export function scanCheck(unit: ScanUnit): Check {
  return unit.shape === "pairs" ? PAIRS : UNORDERED;
}

// ---------------------------------------------------------------------------------------------
// The normalizer

/** Options of {@link compareReplies}. */
export interface CompareOptions {
  /** `exact` (default): error replies must match byte for byte; `code`: only the first word. */
  errors?: "exact" | "code";
}

function errorCode(s: ByteString): ByteString {
  const space = s.indexOf(" ");
  return space < 0 ? s : s.slice(0, space);
}

/**
 * The canonical form of `reply` under `check` (tolerance and exec are handled by
 * {@link compareReplies}): equal canonical forms mean agreeing replies.
 */
export function normalizeReply(
  reply: TaggedReply,
  check: Check,
  options: CompareOptions = {},
): string {
  if (reply.type === "error") {
    return options.errors === "code" ? `-${errorCode(reply.value)} ...` : renderReply(reply);
  }
  switch (check.kind) {
    case "unordered":
      if (reply.type !== "array" || reply.value === null) break;
      return `unordered[${
        reply.value.map((r) => normalizeReply(r, EXACT, options)).sort().join(", ")
      }]`;
    case "pairs": {
      if (reply.type !== "array" || reply.value === null || reply.value.length % 2 !== 0) break;
      const pairs: string[] = [];
      for (let i = 0; i < reply.value.length; i += 2) {
        pairs.push(
          `${normalizeReply(reply.value[i], EXACT, options)} => ${
            normalizeReply(reply.value[i + 1], EXACT, options)
          }`,
        );
      }
      return `map{${pairs.sort().join(", ")}}`;
    }
    case "idle":
      if (reply.type !== "array" || reply.value === null) break;
      return `[${reply.value.map((r) => normalizeIdle(r, options)).join(", ")}]`;
    case "shape":
      if (reply.type === "array" && reply.value !== null) {
        return `array of ${reply.value.length} elements`;
      }
      if (reply.type === "bulk" && reply.value !== null) return "a bulk string";
      break;
    default:
      break;
  }
  if (reply.type === "array" && reply.value !== null) {
    return `[${reply.value.map((r) => normalizeReply(r, EXACT, options)).join(", ")}]`;
  }
  return renderReply(reply);
}

/** One row of XPENDING's extended form or XINFO CONSUMERS with its idle time masked. */
function normalizeIdle(row: TaggedReply, options: CompareOptions): string {
  if (row.type !== "array" || row.value === null) return normalizeReply(row, EXACT, options);
  const items = row.value;
  const pendingRow = items.length === 4 && items[2].type === "int";
  return `[${
    items.map((r, i) => {
      const prev = items[i - 1];
      const masked = (pendingRow && i === 2) ||
        (prev !== undefined && prev.type === "bulk" && prev.value === "idle");
      return masked && r.type === "int" ? "<idle>" : normalizeReply(r, EXACT, options);
    }).join(", ")
  }]`;
}

/**
 * Undefined when `a` and `b` agree under `check` (see the module documentation), else a
 * description of the difference.
 */
export function compareReplies(
  check: Check,
  a: TaggedReply,
  b: TaggedReply,
  options: CompareOptions = {},
): string | undefined {
  if (
    check.kind === "tolerance" && a.type === "int" && b.type === "int" &&
    !a.value.startsWith("-") && !b.value.startsWith("-")
  ) {
    const diff = Math.abs(Number(a.value) - Number(b.value));
    return diff <= check.within
      ? undefined
      : `${a.value} and ${b.value} differ by ${diff} (> ${check.within})`;
  }
  if (
    check.kind === "exec" && a.type === "array" && b.type === "array" && a.value !== null &&
    b.value !== null && a.value.length === check.items.length &&
    b.value.length === check.items.length
  ) {
    for (let i = 0; i < check.items.length; i++) {
      const d = compareReplies(check.items[i], a.value[i], b.value[i], options);
      if (d !== undefined) return `EXEC element ${i}: ${d}`;
    }
    return undefined;
  }
  const na = normalizeReply(a, check, options);
  const nb = normalizeReply(b, check, options);
  return na === nb ? undefined : `${na}\n    vs ${nb}`;
}
