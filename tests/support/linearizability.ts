/**
 * A linearizability checker for client histories of the replicated key-value map.
 *
 * **Model.** Per key the state is `string | null` (null = absent), initially absent:
 * - `put(k, v)` returns `{kind: "ok"}`, state becomes `v`;
 * - `get(k)` returns `{kind: "value", value: state}`;
 * - `delete(k)` returns `{kind: "int", value: 1}` if present else `0`, state becomes absent;
 * - `has(k)` returns `{kind: "int", value: 1}` if present else `0`.
 *
 * **Verdict.** `{ok: true}` only with proof: a linearization was found for every key. Otherwise
 * the first failing key (in order of first appearance) and a message for a person. Keys are
 * checked independently: a history of this model is linearizable iff every key's subhistory is
 * (P-compositionality).
 *
 * **Time convention.** Op A must take effect before op B only if `A.ret < B.call`, strictly.
 * Intervals that touch (`A.ret === B.call`) count as concurrent, which is the safe choice when
 * clocks can tie: in the event list, calls sort before returns at equal times.
 *
 * **Unknown outcomes.** An op has an unknown outcome when `ret === null` or `result` is absent
 * (no response, or an UNKNOWN error). It may have taken effect at any point after its call, or
 * never. Unknown reads (`get`, `has`) constrain nothing and are dropped. Unknown writes (`put`,
 * `delete`) have no deadline and any result, and may stay unplaced (as if they took effect after
 * everything else). Nothing relies on a client having one op in flight: a client that timed out
 * and moved on leaves an unknown op overlapping its later ops, which is legal.
 *
 * **Search.** Wing & Gong's algorithm with Lowe's memoization, as in Knossos and Porcupine: the
 * call and return events of the known ops sit in a doubly-linked list sorted by time; a
 * depth-first search places one of the calls before the first return still in the list (lifting
 * it and its return out), backtracks when no candidate works, and remembers every configuration
 * (ops placed, state) it has explored, so none is explored twice. It only builds linearizations
 * of a canonical form, which loses nothing, because any linearization can be rewritten into one:
 * - A read that may take effect now and fits the current state is placed at once, without
 *   trying alternatives: moving a read forward to a point where it fits changes no result.
 * - An unknown write is placed only where it changes the state and right before a known op that
 *   observes the state (get, has, delete). Otherwise it could be left out without changing any
 *   result. Unknown writes with the same effect (puts of one value; all deletes) are
 *   interchangeable once called, so they are used in call order.
 * - Values that no get returned are one value to the search (has and delete only see presence),
 *   and a configuration that has used fewer unknown deletes or puts of such values is never
 *   worse than one that used more, so the memo compares those by count.
 * - When the key holds a value that a pending get returned and no pending put writes, no write
 *   is placed: it would leave that get unplaceable.
 *
 * **Bound and windows.** The search of a key stops after `maxSteps` steps. Then the checker tries
 * to prove a violation from windows of the history around the point where the search got stuck,
 * which is sound: any linearization of the history, cut at two times, is one of the window that
 * starts from some unknown value, in which ops crossing the cuts are optional. If no window
 * refutes, the result is a failure saying that the search exceeded the bound: not proven either
 * way.
 *
 * **Messages.** Cheap necessary conditions come first (a get of a value that no put wrote before
 * the get returned). Otherwise the message shows the longest linearizable prefix found, the value
 * after it, the ops that could come next and why none works, and, when it can find them, the ops
 * each of which alone stands in the way (without it, the rest could be linearized).
 *
 * A malformed history (missing fields, wrong types, `ret < call`, non-finite times) is a bug in
 * the test that built it: `checkLinearizable` throws a `TypeError` naming the op's index. A result
 * of the wrong shape for its op (e.g. a `get` answered with `{kind: "ok"}`) is a behaviour of the
 * system under test and simply cannot be linearized.
 *
 * @module
 */

/** One client operation in a recorded history. */
export interface HistoryOp {
  /** Which client issued it (a client normally has at most one op in flight; not relied on). */
  client: number;
  /** The operation; `value` is required for `put` and ignored otherwise. */
  op: { kind: "put" | "get" | "delete" | "has"; key: string; value?: string };
  /** Invocation time (any monotonic clock shared by all clients). */
  call: number;
  /** Response time; null = no response (outcome unknown). */
  ret: number | null;
  /** The result; absent when `ret` is null or the op failed with UNKNOWN. */
  result?: { kind: "ok" } | { kind: "value"; value: string | null } | {
    kind: "int";
    value: number;
  };
}

/** The verdict: `ok: true` only when a linearization was found for every key. */
export type CheckResult = { ok: true } | { ok: false; key: string; message: string };

/** Options of {@link checkLinearizable}. */
export interface CheckOptions {
  /**
   * Bound on search steps for each key (default {@link DEFAULT_MAX_STEPS}). A key whose search
   * needs more fails with a "search exceeded" message.
   */
  maxSteps?: number;
}

/** Default search bound per key. */
export const DEFAULT_MAX_STEPS = 5_000_000;

const PUT = 0;
const GET = 1;
const DELETE = 2;
const HAS = 3;

/** Expected result that no model state can produce. */
const IMPOSSIBLE = -1;

/** State id of "absent" (interned values start at 1). */
const ABSENT = 0;

/** How many ops of the longest prefix, and of the stuck candidates, a failure message shows. */
const SHOW_PREFIX = 8;
const SHOW_CANDIDATES = 10;

/** An op of one key, with values interned to small integers. */
interface KeyOp {
  /** Position in the input history. */
  index: number;
  source: HistoryOp;
  kind: number;
  call: number;
  /** Return time; +Infinity when the outcome is unknown. */
  ret: number;
  known: boolean;
  /** For put: the interned value written. */
  arg: number;
  /** A known op made optional because it crosses the edge of a window (see `refuteLocally`). */
  edge?: boolean;
  /**
   * For a known op: get → interned value expected; has/delete → 0 or 1; put → 0;
   * {@link IMPOSSIBLE} when the recorded result has the wrong shape.
   */
  expect: number;
}

/** A call or return event in the search list. */
interface EventNode {
  op: number;
  isCall: boolean;
  time: number;
  /** For a call: its return event. */
  match: EventNode | null;
  prev: EventNode | null;
  next: EventNode | null;
}

/** Values of one key interned to integers: 0 = absent, 1.. = strings. */
class ValueTable {
  readonly names: (string | null)[] = [null];
  readonly #ids = new Map<string, number>();

  id(value: string | null): number {
    if (value === null) return ABSENT;
    let id = this.#ids.get(value);
    if (id === undefined) {
      id = this.names.length;
      this.names.push(value);
      this.#ids.set(value, id);
    }
    return id;
  }
}

/**
 * Checks that `history` is linearizable with respect to the key-value model described in the
 * module documentation.
 *
 * Returns `{ok: true}` only when every key's subhistory has a linearization. Otherwise returns
 * the first failing key and a readable message: either the longest linearizable prefix found and
 * the ops that could not be placed after it, or that the search exceeded `maxSteps`.
 *
 * @throws {TypeError} when the history is malformed (see the module documentation).
 */
export function checkLinearizable(history: HistoryOp[], opts: CheckOptions = {}): CheckResult {
  const maxSteps = opts.maxSteps ?? DEFAULT_MAX_STEPS;
  if (typeof maxSteps !== "number" || !(maxSteps > 0) || Number.isNaN(maxSteps)) {
    throw new TypeError(`maxSteps must be a positive number, got ${String(maxSteps)}`);
  }
  if (!Array.isArray(history)) throw new TypeError("history must be an array");

  const byKey = new Map<string, { ops: KeyOp[]; values: ValueTable }>();
  history.forEach((h, index) => {
    validate(h, index);
    let group = byKey.get(h.op.key);
    if (group === undefined) {
      group = { ops: [], values: new ValueTable() };
      byKey.set(h.op.key, group);
    }
    const op = toKeyOp(h, index, group.values);
    if (op !== null) group.ops.push(op);
  });

  for (const [key, group] of byKey) {
    const failure = checkKey(key, group.ops, group.values, maxSteps);
    if (failure !== null) return failure;
  }
  return { ok: true };
}

function validate(h: HistoryOp, index: number): void {
  const where = `history[${index}]`;
  if (h === null || typeof h !== "object") throw new TypeError(`${where} is not an object`);
  if (typeof h.client !== "number") throw new TypeError(`${where}.client must be a number`);
  const op = h.op;
  if (op === null || typeof op !== "object") throw new TypeError(`${where}.op is not an object`);
  if (!["put", "get", "delete", "has"].includes(op.kind)) {
    throw new TypeError(`${where}.op.kind is not put/get/delete/has: ${String(op.kind)}`);
  }
  if (typeof op.key !== "string") throw new TypeError(`${where}.op.key must be a string`);
  if (op.kind === "put" && typeof op.value !== "string") {
    throw new TypeError(`${where}: put needs a string op.value`);
  }
  if (typeof h.call !== "number" || !Number.isFinite(h.call)) {
    throw new TypeError(`${where}.call must be a finite number`);
  }
  if (h.ret !== null) {
    if (typeof h.ret !== "number" || !Number.isFinite(h.ret)) {
      throw new TypeError(`${where}.ret must be a finite number or null`);
    }
    if (h.ret < h.call) throw new TypeError(`${where}: ret ${h.ret} is before call ${h.call}`);
  }
  const r = h.result;
  if (r !== undefined) {
    if (r === null || typeof r !== "object") throw new TypeError(`${where}.result is malformed`);
    if (r.kind === "value") {
      if (r.value !== null && typeof r.value !== "string") {
        throw new TypeError(`${where}.result.value must be a string or null`);
      }
    } else if (r.kind === "int") {
      if (typeof r.value !== "number") {
        throw new TypeError(`${where}.result.value must be a number`);
      }
    } else if (r.kind !== "ok") {
      throw new TypeError(`${where}.result.kind is not ok/value/int`);
    }
  }
}

/** Converts a history op; null when it is an unknown-outcome read (dropped). */
function toKeyOp(h: HistoryOp, index: number, values: ValueTable): KeyOp | null {
  const known = h.ret !== null && h.result !== undefined;
  const kind = h.op.kind === "put"
    ? PUT
    : h.op.kind === "get"
    ? GET
    : h.op.kind === "delete"
    ? DELETE
    : HAS;
  if (!known && (kind === GET || kind === HAS)) return null;
  const arg = kind === PUT ? values.id(h.op.value as string) : ABSENT;
  let expect = IMPOSSIBLE;
  const r = h.result;
  if (known && r !== undefined) {
    if (kind === PUT) {
      if (r.kind === "ok") expect = 0;
    } else if (kind === GET) {
      if (r.kind === "value") expect = values.id(r.value);
    } else if (r.kind === "int" && (r.value === 0 || r.value === 1)) {
      expect = r.value;
    }
  }
  return {
    index,
    source: h,
    kind,
    call: h.call,
    ret: known ? h.ret as number : Infinity,
    known,
    arg,
    expect,
  };
}

/**
 * Applies a get, delete or has to a state that is absent (0) or a value id: the new state, or -1
 * when the op's recorded result does not fit.
 */
function step(op: KeyOp, state: number): number {
  const present = state !== ABSENT ? 1 : 0;
  switch (op.kind) {
    case GET:
      return op.expect === state ? state : -1;
    case DELETE:
      return !op.known || op.expect === present ? ABSENT : -1;
    default: // HAS
      return op.expect === present ? state : -1;
  }
}

/** Number of set bits in a 32-bit word. */
function popcount(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return Math.imul((x + (x >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24;
}

/** Grows an arena to hold at least `need` entries. */
function grow(arena: Int32Array<ArrayBuffer>, need: number): Int32Array<ArrayBuffer> {
  if (need <= arena.length) return arena;
  const bigger = new Int32Array(Math.max(arena.length * 2, need));
  bigger.set(arena);
  return bigger;
}

/**
 * The explored search configurations. A configuration is a short word array (the exact part)
 * plus two counters `a` and `b` ordered by dominance: when (key, a, b) was explored and failed,
 * (key, a', b') with a' >= a and b' >= b fails too. Each key keeps the minimal (a, b) pairs seen.
 *
 * Records `[hash, next, length, pairs, ...words]` sit in one growable arena, chained from a
 * power-of-two bucket table; pairs `[a, b, next]` in another. Millions of configurations cost
 * tens of bytes each rather than an object apiece.
 */
class ConfigSet {
  #arena = new Int32Array(1 << 16);
  #top = 0;
  #pairs = new Int32Array(1 << 12);
  #pairsTop = 0;
  #buckets = new Int32Array(1 << 12).fill(-1);
  #count = 0;

  /** Adds the configuration; false when it, or one that dominates it, is present. */
  add(key: Uint32Array, length: number, a: number, b: number): boolean {
    let hash = 0x811c9dc5 ^ length;
    for (let k = 0; k < length; k++) {
      hash = Math.imul(hash ^ key[k], 0x01000193);
      hash ^= hash >>> 15;
    }
    const arena = this.#arena;
    for (let r = this.#buckets[hash & (this.#buckets.length - 1)]; r >= 0; r = arena[r + 1]) {
      if (arena[r] !== hash || arena[r + 2] !== length) continue;
      let k = 0;
      while (k < length && arena[r + 4 + k] === (key[k] | 0)) k++;
      if (k < length) continue;
      const pairs = this.#pairs;
      for (let q = arena[r + 3]; q >= 0; q = pairs[q + 2]) {
        if (pairs[q] <= a && pairs[q + 1] <= b) return false;
      }
      arena[r + 3] = this.#pair(a, b, arena[r + 3]);
      return true;
    }
    this.#arena = grow(this.#arena, this.#top + 4 + length);
    const r = this.#top;
    const slot = hash & (this.#buckets.length - 1);
    this.#arena[r] = hash;
    this.#arena[r + 1] = this.#buckets[slot];
    this.#arena[r + 2] = length;
    this.#arena[r + 3] = this.#pair(a, b, -1);
    for (let k = 0; k < length; k++) this.#arena[r + 4 + k] = key[k];
    this.#buckets[slot] = r;
    this.#top += 4 + length;
    if (++this.#count > this.#buckets.length) this.#rehash();
    return true;
  }

  #pair(a: number, b: number, next: number): number {
    this.#pairs = grow(this.#pairs, this.#pairsTop + 3);
    const q = this.#pairsTop;
    this.#pairs[q] = a;
    this.#pairs[q + 1] = b;
    this.#pairs[q + 2] = next;
    this.#pairsTop += 3;
    return q;
  }

  #rehash(): void {
    const buckets = new Int32Array(this.#buckets.length * 2).fill(-1);
    const mask = buckets.length - 1;
    const arena = this.#arena;
    for (let r = 0; r < this.#top; r += 4 + arena[r + 2]) {
      const slot = arena[r] & mask;
      arena[r + 1] = buckets[slot];
      buckets[slot] = r;
    }
    this.#buckets = buckets;
  }
}

/** One level of the depth-first search: the op placed to get here and what to try next. */
interface Frame {
  /** The op linearized to reach this configuration (-1 at the root). */
  op: number;
  /** State and observer flag before `op`. */
  prevState: number;
  prevNeed: boolean;
  /** Ops to try next from this configuration, with the state each leads to. */
  tries: number[];
  nexts: number[];
  at: number;
}

/**
 * Unknown-outcome writes with the same effect (puts of one value, or all deletes). Once called
 * they are interchangeable, so they are used in call order: `members[used]` is the only one tried.
 */
interface UnknownClass {
  effect: number;
  members: number[];
  used: number;
}

/** Known ops before the stuck point that the local windows take in, smallest first. */
const WINDOW_SIZES = [4, 16, 64, 256, 1024];

/** Most known ops a suspect analysis tries relaxing one at a time, and how many it reports. */
const SUSPECT_TRIES = 200;
const SHOW_SUSPECTS = 5;

/** Checks one key; null when linearizable, else the failure. */
function checkKey(
  key: string,
  ops: KeyOp[],
  values: ValueTable,
  maxSteps: number,
): CheckResult | null {
  if (!ops.some((op) => op.known)) return null;
  const obvious = obviousViolation(key, ops);
  if (obvious !== null) return obvious;
  const full = search(ops, values, maxSteps, false);
  if (full.outcome === "ok") return null;
  const name = JSON.stringify(key);
  const fail = (message: string): CheckResult => ({ ok: false, key, message });
  if (full.outcome === "fail") {
    // Name suspects from the whole history when it is small, else from a window if one refutes.
    const local = full.totalKnown <= SUSPECT_TRIES ? null : refuteLocally(full, values, maxSteps);
    const blame = local === null
      ? suspects(full, values, false, maxSteps)
      : suspects(local.result, values, true, maxSteps);
    return fail(
      `key ${name}: not linearizable (${plural(ops.length, "op")} on this key).\n` +
        explainStuck(full, false) + explainSuspects(blame),
    );
  }
  const local = refuteLocally(full, values, maxSteps);
  if (local !== null) {
    return fail(
      `key ${name}: not linearizable (${
        plural(ops.length, "op")
      } on this key). The ops called from ` +
        `time ${local.from} to ${local.to} cannot be linearized even from an unknown starting ` +
        `value, with the ops crossing those times treated as optional (the full search ` +
        `exceeded ${maxSteps} steps; this window is a proof on its own).\n` +
        explainStuck(local.result, true) +
        explainSuspects(suspects(local.result, values, true, maxSteps)),
    );
  }
  return fail(
    `key ${name}: search exceeded ${maxSteps} steps (${plural(ops.length, "op")} on this key, ` +
      `${ops.length - full.totalKnown} with unknown outcome); linearizability not proven ` +
      `either way. The deepest point reached:\n` + explainStuck(full, false),
  );
}

/**
 * The known ops of a non-linearizable set each of which, relaxed alone (a read dropped, a write
 * made optional with any result), makes the set linearizable: the likely culprits. Bounded by
 * {@link SUSPECT_TRIES} searches and `maxSteps` steps in all.
 */
function suspects(
  failed: SearchResult,
  values: ValueTable,
  anyStart: boolean,
  maxSteps: number,
): KeyOp[] {
  const found: KeyOp[] = [];
  const ops = failed.ops;
  const known = ops.filter((op) => op.known);
  if (known.length > SUSPECT_TRIES) return found;
  // Closest to where the search got stuck first.
  const at = dueOp(failed)?.ret ?? 0;
  known.sort((a, b) => Math.abs(a.ret - at) - Math.abs(b.ret - at) || a.ret - b.ret);
  let budget = maxSteps;
  for (const culprit of known) {
    if (found.length >= SHOW_SUSPECTS || budget <= 0) break;
    const relaxed: KeyOp[] = [];
    for (const op of ops) {
      if (op !== culprit) relaxed.push(op);
      else if (op.kind === PUT || op.kind === DELETE) {
        relaxed.push({ ...op, known: false, ret: Infinity });
      }
    }
    const result = search(relaxed, values, Math.min(budget, 50_000), anyStart);
    budget -= result.steps;
    if (result.outcome === "ok") found.push(culprit);
  }
  return found;
}

/** The op due first after the longest prefix of a search: where it got stuck. */
function dueOp(found: SearchResult): KeyOp | null {
  const placed = new Set(found.prefix);
  let due: KeyOp | null = null;
  for (let i = 0; i < found.ops.length; i++) {
    const op = found.ops[i];
    if (op.known && !placed.has(i) && (due === null || op.ret < due.ret)) due = op;
  }
  return due;
}

function explainSuspects(found: KeyOp[]): string {
  if (found.length === 0) return "";
  return "\nWithout any one of these ops (a read dropped, a write made optional) it could be " +
    "linearized:\n" + found.map((op) => `  ${describeOp(op)}`).join("\n");
}

/**
 * After the full search ran out of steps: tries to prove a violation from a window of the
 * history around the point where the search got stuck, from time `from` to time `to`.
 *
 * Any linearization of the whole history, cut at times `from` and `to`, gives one of the window
 * in which: the key starts with some value; ops inside [from, to] keep their constraints; ops
 * crossing `from` or `to` may or may not fall inside (writes become optional with any result,
 * reads are dropped); unknown-outcome writes called by `to` stay optional. So when the window
 * cannot be linearized from any starting value, neither can the history.
 */
function refuteLocally(
  full: SearchResult,
  values: ValueTable,
  maxSteps: number,
): { from: number; to: number; result: SearchResult } | null {
  const due = dueOp(full);
  if (due === null) return null;
  // Known ops by return time; a window takes in `size` of them before the due op and a quarter
  // of that after it (the contradiction may involve a read after it, e.g. of the value it
  // would overwrite).
  const known = full.ops.filter((op) => op.known).sort((a, b) =>
    a.ret - b.ret || a.index - b.index
  );
  const dueRank = known.indexOf(due);
  for (const size of WINDOW_SIZES) {
    const first = dueRank - size;
    const lastRank = Math.min(known.length - 1, dueRank + Math.ceil(size / 4));
    const from = first > 0 ? known[first].ret : -Infinity;
    const to = known[lastRank].ret;
    const window: KeyOp[] = [];
    for (const op of full.ops) {
      if (op.call > to || op.ret < from) continue;
      const inside = op.known && op.call >= from && op.ret <= to;
      if (inside || op.kind === PUT || op.kind === DELETE) {
        window.push(inside ? op : { ...op, known: false, ret: Infinity, edge: op.known });
      }
    }
    const result = search(window, values, maxSteps, true);
    if (result.outcome === "fail") return { from, to, result };
    if (first <= 0 && lastRank === known.length - 1) break;
  }
  return null;
}

/** What one search of one key's ops found. */
interface SearchResult {
  outcome: "ok" | "fail" | "exceeded";
  /** The ops searched, in the order their ids refer to. */
  ops: KeyOp[];
  /** The longest linearizable prefix found (op ids). */
  prefix: number[];
  totalKnown: number;
  bestKnown: number;
  /** Steps the search took. */
  steps: number;
}

/**
 * Searches for a linearization of one key's ops, starting from an absent key, or when `anyStart`
 * from an unknown value (resolved by the first op that observes it).
 */
function search(
  keyOps: KeyOp[],
  values: ValueTable,
  maxSteps: number,
  anyStart: boolean,
): SearchResult {
  // Known ops first, by return time, then unknown writes by call: a known op's id is then its
  // rank among return events, which keeps memo keys short (see `remember`).
  const ops = keyOps.slice().sort((a, b) => {
    if (a.known !== b.known) return a.known ? -1 : 1;
    if (a.known && a.ret !== b.ret) return a.ret - b.ret;
    return a.call - b.call || a.index - b.index;
  });
  const n = ops.length;
  let totalKnown = 0;
  while (totalKnown < n && ops[totalKnown].known) totalKnown++;
  const result = (outcome: SearchResult["outcome"]): SearchResult => ({
    outcome,
    ops,
    prefix: bestPrefix,
    totalKnown,
    bestKnown,
    steps,
  });
  let bestKnown = 0;
  /** The longest prefix so far; its first `common` ops are also the first ops of `path`. */
  const bestPrefix: number[] = [];
  let common = 0;
  let steps = 0;
  if (totalKnown === 0) return result("ok");

  // Values no known get returned are indistinguishable to every op of the model (has and delete
  // only see presence): give all of them one state id, so the search treats them as one.
  const readValues = new Set<number>();
  for (const op of ops) if (op.known && op.kind === GET && op.expect > 0) readValues.add(op.expect);
  const unread = values.names.length;
  const arg = ops.map((op) => op.kind === PUT && !readValues.has(op.arg) ? unread : op.arg);
  // The unknown starting value, before and after an op saw that the key is present.
  const anyValue = unread + 1;
  const anyPresent = unread + 2;
  const stepOp = (i: number, state: number): number => {
    const op = ops[i];
    if (op.kind === PUT) return !op.known || op.expect === 0 ? arg[i] : -1;
    if (state < anyValue) return step(op, state);
    // The unknown starting value takes the first value an op observes.
    if (!op.known) return ABSENT; // delete
    if (op.expect === IMPOSSIBLE) return -1;
    if (op.kind === GET) return op.expect === ABSENT && state === anyPresent ? -1 : op.expect;
    if (op.expect === 0) return state === anyValue ? ABSENT : -1;
    return op.kind === DELETE ? ABSENT : anyPresent;
  };

  // Known ops: call and return events in a list sorted by time, calls first at equal times
  // (touching intervals are concurrent). Unknown writes never return, so they stay out of the
  // list: one is eligible once its call is at or before the first return still in the list.
  const calls: EventNode[] = [];
  const events: EventNode[] = [];
  for (let i = 0; i < totalKnown; i++) {
    const ret: EventNode = {
      op: i,
      isCall: false,
      time: ops[i].ret,
      match: null,
      prev: null,
      next: null,
    };
    const call: EventNode = {
      op: i,
      isCall: true,
      time: ops[i].call,
      match: ret,
      prev: null,
      next: null,
    };
    calls.push(call);
    events.push(call, ret);
  }
  events.sort((a, b) => {
    if (a.time !== b.time) return a.time < b.time ? -1 : 1;
    if (a.isCall !== b.isCall) return a.isCall ? -1 : 1;
    return a.op - b.op;
  });
  const head: EventNode = {
    op: -1,
    isCall: false,
    time: -Infinity,
    match: null,
    prev: null,
    next: null,
  };
  let last = head;
  for (const e of events) {
    last.next = e;
    e.prev = last;
    last = e;
  }

  const classes = new Map<number, UnknownClass>();
  const classOf: (UnknownClass | null)[] = new Array(n).fill(null);
  for (let i = totalKnown; i < n; i++) {
    const effect = ops[i].kind === PUT ? arg[i] : ABSENT;
    let cls = classes.get(effect);
    if (cls === undefined) {
      cls = { effect, members: [], used: 0 };
      classes.set(effect, cls);
    }
    cls.members.push(i); // in call order, as ops are sorted
    classOf[i] = cls;
  }
  const putClasses = [...classes.values()].filter((c) => c.effect !== ABSENT);
  /** The two classes the memo counts rather than lists (see `remember`). */
  const countedA = classes.get(ABSENT) ?? null;
  const countedB = classes.get(unread) ?? null;

  // Per value id: known gets still to place that read it, and puts still to place that write it.
  // When the state holds a value that pending gets read and nothing can write again, no write may
  // come next: it would leave those gets unplaceable.
  const pendingReaders = new Int32Array(unread + 3);
  const pendingWriters = new Int32Array(unread + 3);
  for (let i = 0; i < n; i++) {
    const op = ops[i];
    if (op.known && op.kind === GET && op.expect > 0) pendingReaders[op.expect]++;
    if (op.kind === PUT) pendingWriters[arg[i]]++;
  }

  // The configuration: linearized known ops, used unknown writes, model state, observer flag.
  const knownWords = (totalKnown + 31) >>> 5;
  const unknownWords = (n - totalKnown + 31) >>> 5;
  const knownBits = new Uint32Array(knownWords);
  const unknownBits = new Uint32Array(unknownWords);
  let state = anyStart ? anyValue : ABSENT;
  /** The last op linearized is an unknown write: the next one must observe the state. */
  let needObserver = false;
  let knownLinearized = 0;
  const path: number[] = [];

  const apply = (i: number, next: number): void => {
    const op = ops[i];
    state = next;
    needObserver = !op.known;
    path.push(i);
    if (op.kind === PUT) pendingWriters[arg[i]]--;
    const cls = classOf[i];
    if (cls !== null) {
      cls.used++;
      const u = i - totalKnown;
      if (cls !== countedA && cls !== countedB) unknownBits[u >>> 5] |= 1 << (u & 31);
    } else {
      if (op.kind === GET && op.expect > 0) pendingReaders[op.expect]--;
      knownBits[i >>> 5] |= 1 << (i & 31);
      knownLinearized++;
      lift(calls[i]);
    }
  };
  const undo = (frame: Frame): void => {
    const i = frame.op;
    const op = ops[i];
    state = frame.prevState;
    needObserver = frame.prevNeed;
    path.pop();
    if (path.length < common) common = path.length;
    if (op.kind === PUT) pendingWriters[arg[i]]++;
    const cls = classOf[i];
    if (cls !== null) {
      cls.used--;
      const u = i - totalKnown;
      if (cls !== countedA && cls !== countedB) unknownBits[u >>> 5] &= ~(1 << (u & 31));
    } else {
      if (op.kind === GET && op.expect > 0) pendingReaders[op.expect]++;
      knownBits[i >>> 5] &= ~(1 << (i & 31));
      knownLinearized--;
      unlift(calls[i]);
    }
  };

  // Memo of explored configurations. Every known op ranked below the first pending return `p` is
  // linearized, so the key is [p, state and flag, known words from p's on while bits remain,
  // unknown words]. The unknown deletes and the unknown puts of unread values are kept out of the
  // words and compared as counts instead: having used fewer of them is never worse.
  const seen = new ConfigSet();
  const keyBuf = new Uint32Array(2 + knownWords + unknownWords);
  const remember = (p: number): boolean => {
    keyBuf[0] = p;
    keyBuf[1] = state * 2 + (needObserver ? 1 : 0);
    let length = 2;
    let remaining = knownLinearized - p;
    for (let w = p >>> 5; remaining > 0; w++) {
      const word = knownBits[w];
      remaining -= w === p >>> 5 ? popcount(word >>> (p & 31)) : popcount(word);
      keyBuf[length++] = word;
    }
    for (let w = 0; w < unknownWords; w++) keyBuf[length++] = unknownBits[w];
    return seen.add(keyBuf, length, countedA?.used ?? 0, countedB?.used ?? 0);
  };

  const candidates: number[] = [];

  /**
   * Fills `frame` with the ops worth trying next from the current configuration, best first;
   * false when this configuration was explored before.
   */
  const expand = (frame: Frame): boolean => {
    // Candidates: the known calls before the first return event still in the list.
    candidates.length = 0;
    let e = head.next;
    for (; e !== null && e.isCall; e = e.next) candidates.push(e.op);
    steps += candidates.length;
    if (!remember(e === null ? totalKnown : e.op)) return false;

    const frozen = state > 0 && state < anyValue && pendingReaders[state] > 0 &&
      pendingWriters[state] === 0;
    const tries: number[] = [];
    const nexts: number[] = [];
    /** Effects an unknown write would need to have for some candidate to fit. */
    let wantAbsent = false;
    let wantPresent = false;
    const wantValues: number[] = [];
    for (const i of candidates) {
      const op = ops[i];
      if (needObserver && op.kind === PUT) continue;
      const next = stepOp(i, state);
      if (next < 0) {
        // Would fit after an unknown write with the right effect.
        if (op.kind === GET) {
          if (op.expect === ABSENT) wantAbsent = true;
          else if (op.expect > 0) wantValues.push(op.expect);
        } else if (op.expect === 0) wantAbsent = true;
        else if (op.expect === 1) wantPresent = true;
        continue;
      }
      if (next === state && (op.kind === GET || op.kind === HAS || op.kind === DELETE)) {
        // A read (or a delete of an absent key) that fits now and changes nothing can always go
        // first: nothing else to try from here.
        frame.tries = [i];
        frame.nexts = [next];
        return true;
      }
      if (frozen) continue;
      tries.push(i);
      nexts.push(next);
    }
    // Known writes in the order they are due (ids are return ranks).
    const order = tries.map((_, k) => k).sort((a, b) => tries[a] - tries[b]);
    frame.tries = order.map((k) => tries[k]);
    frame.nexts = order.map((k) => nexts[k]);
    if (needObserver || frozen) return true;
    // Unknown writes: only right before a candidate that observes their effect, and only the
    // first unused member of a class, once called (at or before the first pending return).
    const due = e === null ? Infinity : e.time;
    const offer = (cls: UnknownClass | undefined) => {
      if (cls === undefined || cls.used >= cls.members.length || cls.effect === state) return;
      const i = cls.members[cls.used];
      if (ops[i].call > due || frame.tries.includes(i)) return;
      steps++;
      frame.tries.push(i);
      frame.nexts.push(cls.effect);
    };
    if (wantAbsent) offer(classes.get(ABSENT));
    if (wantPresent && state === ABSENT) {
      offer(classes.get(unread));
      for (const cls of putClasses) offer(cls);
    } else {
      for (const v of wantValues) offer(classes.get(v));
    }
    return true;
  };

  const root: Frame = { op: -1, prevState: state, prevNeed: false, tries: [], nexts: [], at: 0 };
  expand(root);
  const frames: Frame[] = [root];
  while (frames.length > 0) {
    if (++steps > maxSteps) return result("exceeded");
    const frame = frames[frames.length - 1];
    if (frame.at < frame.tries.length) {
      const i = frame.tries[frame.at];
      const next = frame.nexts[frame.at];
      frame.at++;
      const child: Frame = {
        op: i,
        prevState: state,
        prevNeed: needObserver,
        tries: [],
        nexts: [],
        at: 0,
      };
      apply(i, next);
      if (knownLinearized === totalKnown) return result("ok");
      if (!expand(child)) {
        undo(child);
        continue;
      }
      if (knownLinearized > bestKnown) {
        // Copy only what changed since the last best: each placed op is copied at most once.
        bestKnown = knownLinearized;
        bestPrefix.length = common;
        for (let k = common; k < path.length; k++) bestPrefix.push(path[k]);
        common = path.length;
      }
      frames.push(child);
    } else {
      // Nothing left to try here: undo the op that led here.
      frames.pop();
      if (frame.op >= 0) undo(frame);
    }
  }
  return result("fail");
}

/** Removes a call and its return from the list. */
function lift(call: EventNode): void {
  const ret = call.match as EventNode;
  (call.prev as EventNode).next = call.next;
  (call.next as EventNode).prev = call.prev;
  (ret.prev as EventNode).next = ret.next;
  if (ret.next !== null) ret.next.prev = ret.prev;
}

/** Puts back a call and its return lifted by {@link lift} (in reverse order). */
function unlift(call: EventNode): void {
  const ret = call.match as EventNode;
  (ret.prev as EventNode).next = ret;
  if (ret.next !== null) ret.next.prev = ret;
  (call.prev as EventNode).next = call;
  (call.next as EventNode).prev = call;
}

/**
 * Necessary conditions checked before the search, for a quick and precise message: a get that
 * returned a value no put of this key wrote before the get returned, or a has/delete that saw the
 * key present when no put had even been called.
 */
function obviousViolation(key: string, ops: KeyOp[]): CheckResult | null {
  const firstPut = new Map<string, number>();
  let anyPut = Infinity;
  for (const op of ops) {
    if (op.kind !== PUT) continue;
    const v = op.source.op.value as string;
    firstPut.set(v, Math.min(firstPut.get(v) ?? Infinity, op.call));
    anyPut = Math.min(anyPut, op.call);
  }
  for (const op of ops) {
    if (!op.known || op.expect === IMPOSSIBLE) continue;
    const r = op.source.result;
    let problem = "";
    if (op.kind === GET && r?.kind === "value" && r.value !== null) {
      if (!((firstPut.get(r.value) ?? Infinity) <= op.ret)) {
        problem = "read a value that no put of this key wrote before the read returned";
      }
    } else if ((op.kind === HAS || op.kind === DELETE) && op.expect === 1 && !(anyPut <= op.ret)) {
      problem = "saw the key present, but no put of this key was called before it returned";
    }
    if (problem !== "") {
      return {
        ok: false,
        key,
        message: `key ${JSON.stringify(key)}: not linearizable: ${describeOp(op)} ${problem}.`,
      };
    }
  }
  return null;
}

function describeOp(op: KeyOp): string {
  const h = op.source;
  let text = `#${op.index} client ${h.client} ${h.op.kind}`;
  if (op.kind === PUT) text += ` ${JSON.stringify(h.op.value)}`;
  const r = h.result;
  let result: string;
  if (h.ret === null || r === undefined) result = "? (outcome unknown)";
  else if (r.kind === "ok") result = "ok";
  else if (r.kind === "value") result = r.value === null ? "absent" : JSON.stringify(r.value);
  else result = String(r.value);
  if (op.edge) result += " (optional: crosses the window edge)";
  const ret = h.ret === null ? "none" : String(h.ret);
  return `${text} -> ${result} [call ${h.call}, ret ${ret}]`;
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}

/** Shows a value of the key; undefined is the unknown starting value of a window. */
function showValue(value: string | null | undefined): string {
  if (value === undefined) return "the unknown starting value";
  return value === null ? "absent" : JSON.stringify(value);
}

/** Why `op` cannot take effect when the key holds `value` (or that it can, but nothing after). */
function explainStep(op: KeyOp, value: string | null | undefined): string {
  const r = op.source.result;
  const fits = "fits here, but no order of the remaining ops works after it";
  if (!op.known || value === undefined) return fits;
  const present = value === null ? 0 : 1;
  if (op.kind === PUT && r?.kind === "ok") return fits;
  if (op.kind === GET && r?.kind === "value") {
    if (r.value === value) return fits;
    return `read ${showValue(r.value)} but the value is ${showValue(value)}`;
  }
  if ((op.kind === HAS || op.kind === DELETE) && r?.kind === "int") {
    if (r.value === present) return fits;
    if (r.value === 0 || r.value === 1) {
      return `returned ${r.value} but the key is ${present ? "present" : "absent"}`;
    }
  }
  return "its result has the wrong shape for this operation";
}

/** Describes the deepest point of a search: the prefix placed and the ops that were stuck. */
function explainStuck(found: SearchResult, anyStart: boolean): string {
  const { ops, prefix } = found;
  const lines: string[] = [];
  lines.push(
    `Longest linearizable prefix found: ${plural(prefix.length, "op")} (${found.bestKnown} ` +
      `of ${found.totalKnown} with known outcome)${anyStart ? " after the window start" : ""}:`,
  );
  const hidden = prefix.length - SHOW_PREFIX;
  if (hidden > 0) lines.push(`  ... ${plural(hidden, "earlier op")}`);
  for (const i of prefix.slice(Math.max(0, hidden))) lines.push(`  ${describeOp(ops[i])}`);
  if (prefix.length === 0) lines.push("  (none)");
  // Replay the prefix for the value (the search itself merges values nobody reads).
  let value: string | null | undefined = anyStart ? undefined : null;
  for (const i of prefix) {
    const op = ops[i];
    const r = op.source.result;
    if (op.kind === PUT) value = op.source.op.value as string;
    else if (op.kind === DELETE) value = null;
    else if (value === undefined && op.known && r?.kind === "value") value = r.value;
    else if (value === undefined && op.known && r?.kind === "int" && r.value === 0) value = null;
  }
  lines.push(`Value after the prefix: ${showValue(value)}.`);

  const placed = new Set(prefix);
  const remaining = ops.map((_, i) => i).filter((i) => !placed.has(i));
  const pendingKnown = remaining.filter((i) => ops[i].known);
  let deadline = pendingKnown[0];
  for (const i of pendingKnown) if (ops[i].ret < ops[deadline].ret) deadline = i;
  const due = ops[deadline];
  lines.push(
    `No op can be placed next such that ${describeOp(due)} takes effect by its return. ` +
      `Candidates for the next op:`,
  );
  const candidates = pendingKnown.filter((i) => ops[i].call <= due.ret).sort((a, b) =>
    ops[a].call - ops[b].call || a - b
  );
  // A value that pending gets still read and no remaining put writes must not be overwritten.
  const reader = pendingKnown.find((i) => {
    const r = ops[i].source.result;
    return ops[i].kind === GET && r?.kind === "value" && r.value === value;
  });
  const rewritable = remaining.some((i) => ops[i].kind === PUT && ops[i].source.op.value === value);
  const frozen = typeof value === "string" && reader !== undefined && !rewritable;
  for (const i of candidates.slice(0, SHOW_CANDIDATES)) {
    const op = ops[i];
    const why = frozen && (op.kind === PUT || op.kind === DELETE) && op.expect !== IMPOSSIBLE &&
        !(op.kind === DELETE && op.expect === 0)
      ? `would overwrite ${showValue(value)}, which ${
        describeOp(ops[reader as number])
      } must still read, and no other put writes it`
      : explainStep(op, value);
    lines.push(`  ${describeOp(op)}: ${why}`);
  }
  if (candidates.length > SHOW_CANDIDATES) {
    lines.push(`  ... ${candidates.length - SHOW_CANDIDATES} more`);
  }
  const optional = remaining.filter((i) => !ops[i].known && ops[i].call <= due.ret).length;
  if (optional > 0) {
    lines.push(
      `  and ${plural(optional, "optional write")} (outcome unknown), none of which makes it ` +
        `work either.`,
    );
  }
  return lines.join("\n");
}
