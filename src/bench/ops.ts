/**
 * The operations the benchmark can send, as one table ({@link OPS}): each has a name (what
 * `--mix` and the JSON report call it), a table label, the RESP commands one operation sends
 * (keys and values as placeholders that {@link RequestEncoder} patches in place), and what its
 * replies look like. Everything else (argument parsing, the load generator, reply counting, the
 * report) goes through this table; adding an operation is adding a row.
 *
 * One operation may be several commands: its latency runs from sending the first to the reply
 * of the last, and it counts once (as an error when any of its replies is an error). A
 * `MULTI`/`EXEC` transaction is thus one operation, as it is one operation in the replicas'
 * order.
 *
 * @module
 */

/** Names of the operations, in table order. */
export const OP_NAMES = ["put", "get", "incr", "mset10", "multi3"] as const;

/** The name of an operation. */
export type OpName = typeof OP_NAMES[number];

/**
 * One argument of a command template: literal text, a key (slot `slot` of the operation, in
 * key space `space`), or the benchmark value (`--value-size` bytes).
 */
export type ArgTemplate =
  | string
  | { readonly key: number; readonly space: KeySpace }
  | { readonly value: true };

/**
 * Key spaces: `key` holds the values written by `SET`/`MSET` (and read by `GET`), `ctr` the
 * counters of `INCR` (kept apart so that an `INCR` never meets a non-integer value).
 */
export type KeySpace = "key" | "ctr";

/** Prefix of the keys of each key space; all of the same length, so templates are too. */
export const KEY_SPACE_PREFIX: Readonly<Record<KeySpace, string>> = { key: "key:", ctr: "ctr:" };

/** One row of the operation table. */
export interface OpKind {
  /** Name in `--mix` and in the JSON report (`row.op`). */
  readonly name: OpName;
  /** Other names accepted by `--mix`. */
  readonly aliases: readonly string[];
  /** Table label, e.g. `PUT`, `MSET10`. */
  readonly label: string;
  /** What one operation sends, for `--help`. */
  readonly help: string;
  /** The commands one operation sends, in order. */
  readonly commands: readonly (readonly ArgTemplate[])[];
  /** Key slots used by {@link OpKind.commands} (`0..keySlots-1`). */
  readonly keySlots: number;
  /** Top-level replies one operation gets: one per command. */
  readonly replies: number;
  /** How deeply its replies nest arrays (0: no arrays; 1: an array of plain replies). */
  readonly replyDepth: number;
  /** Reads keys of the `key` space, which are therefore written before the first such mix. */
  readonly reads: boolean;
}

const key = (slot: number): ArgTemplate => ({ key: slot, space: "key" });
const ctr = (slot: number): ArgTemplate => ({ key: slot, space: "ctr" });
const VALUE: ArgTemplate = { value: true };

function op(
  kind: Omit<OpKind, "keySlots" | "replies" | "aliases"> & { aliases?: string[] },
): OpKind {
  let keySlots = 0;
  for (const command of kind.commands) {
    for (const arg of command) {
      if (typeof arg === "object" && "key" in arg) keySlots = Math.max(keySlots, arg.key + 1);
    }
  }
  return { ...kind, aliases: kind.aliases ?? [], keySlots, replies: kind.commands.length };
}

const MSET_KEYS = 10;

/** The operation table, indexed by {@link OpKind} code (the position in {@link OP_NAMES}). */
export const OPS: readonly OpKind[] = [
  op({
    name: "put",
    aliases: ["set"],
    label: "PUT",
    help: "SET key value",
    commands: [["SET", key(0), VALUE]],
    replyDepth: 0,
    reads: false,
  }),
  op({
    name: "get",
    label: "GET",
    help: "GET key",
    commands: [["GET", key(0)]],
    replyDepth: 0,
    reads: true,
  }),
  op({
    name: "incr",
    label: "INCR",
    help: "INCR counter",
    commands: [["INCR", ctr(0)]],
    replyDepth: 0,
    reads: false,
  }),
  op({
    name: "mset10",
    label: "MSET10",
    help: `MSET of ${MSET_KEYS} keys and values`,
    commands: [[
      "MSET",
      ...Array.from({ length: MSET_KEYS }, (_, i) => [key(i), VALUE]).flat(),
    ]],
    replyDepth: 0,
    reads: false,
  }),
  op({
    name: "multi3",
    label: "MULTI3",
    help: "MULTI; INCR counter; SET key value; GET key; EXEC",
    commands: [["MULTI"], ["INCR", ctr(0)], ["SET", key(1), VALUE], ["GET", key(2)], ["EXEC"]],
    replyDepth: 1,
    reads: true,
  }),
];

/** The code (index into {@link OPS}) of an operation. */
export function opCode(name: OpName): number {
  return OPS.findIndex((k) => k.name === name);
}

/** The operation called `name` (or one of its aliases), case-insensitively; undefined if none. */
export function findOp(name: string): OpKind | undefined {
  const lower = name.toLowerCase();
  return OPS.find((k) => k.name === lower || k.aliases.includes(lower));
}
