/**
 * The command registry: one table of every command lamportkv knows, used by the client port's
 * dispatcher (arity, where a command runs), the state machine (apply, read or write), the REPL
 * (help and completion) and `COMMAND` (its replies are built from these entries).
 *
 * A data command has an `apply` function: it runs inside the state machine at the operation's
 * place in the total order (reads locally at their place, writes after multicast), so it must be
 * deterministic: it reads time only from {@link ApplyContext.ks}`.now` and randomness only from
 * {@link ApplyContext.random}. A command without `apply` is answered by the server itself
 * (connection state, transactions, introspection); the server asserts at start that it has a
 * handler for each of them.
 *
 * @module
 */
import type { ByteString, Reply } from "../core/types.ts";
import type { KeySpace } from "./keyspace.ts";
import type { AclState } from "./acl.ts";
import type { NotifySetting } from "./notify.ts";
import type { BlockSpec, Waiters } from "./waiters.ts";
import type { ReplicaSet } from "./replica_set.ts";
import type { SlotState } from "./slot_state.ts";

/** Redis's command flags (those lamportkv uses). */
export type CommandFlag =
  | "write"
  | "readonly"
  | "denyoom"
  | "admin"
  | "noscript"
  | "loading"
  | "stale"
  | "fast"
  | "pubsub"
  | "blocking"
  | "allow_busy"
  | "no_auth"
  | "no_multi";

/** Command groups as `COMMAND DOCS` names them. */
export type CommandGroup =
  | "string"
  | "generic"
  | "hash"
  | "list"
  | "set"
  | "stream"
  | "transactions"
  | "connection"
  | "server"
  | "pubsub"
  | "lamportkv";

/** What a data command sees while it is applied. */
export interface ApplyContext {
  /** The key space; its `now` is the operation's ordered time. */
  ks: KeySpace;
  /** True for a write in the order (may modify `ks`); false for a read. */
  write: boolean;
  /** Deterministic numbers in [0, 1): the same sequence on every replica for this operation. */
  random(): number;
  /** The replicated user table (only the internal `__acl` operation changes it). */
  acl?: AclState;
  /** The replicated `notify-keyspace-events` (only the internal `__config` operation sets it). */
  notify?: NotifySetting;
  /**
   * Publishes `message` on `channel` to this replica's own subscribers (PUBLISH, keyspace
   * notifications); returns how many received it here. Touches no replicated state.
   */
  publish(channel: ByteString, message: ByteString): number;
  /** Applies a command inside this one (EXEC's queued commands), with its own notifications. */
  run(spec: CommandSpec & { apply: ApplyFn }, argv: ByteString[]): Reply;
  /** The replicated queue of blocked clients (only the internal `__b*` operations use it). */
  waiters?: Waiters;
  /** The replicated replica set (only the internal `__replicaset` operation changes it). */
  replicaSet?: { get(): ReplicaSet; set(next: ReplicaSet): void };
  /** The view of the entry being applied (absent for reads). */
  view?: number;
  /** The group's slot state (only the `__reshard` operations change it); absent: not sharded. */
  slots?: SlotState;
}

/** A data command's implementation. `argv[0]` is the name as the client sent it. */
type ApplyFn = (ctx: ApplyContext, argv: ByteString[]) => Reply;

/** One command. */
export interface CommandSpec {
  /** Lowercase name. */
  name: string;
  /** Redis arity: `n` means exactly n words (name included), `-n` at least n. */
  arity: number;
  flags: readonly CommandFlag[];
  /** First key, last key (-1: the last argument, -2: the one before), step; 0,0,0: no keys. */
  keys: readonly [number, number, number];
  group: CommandGroup;
  /** One line: what it does. */
  summary: string;
  /** The arguments after the name, as Redis documents them, e.g. `key value [NX | XX]`. */
  syntax: string;
  /** The Redis version that introduced it. */
  since: string;
  /** Data commands: what the state machine does (absent: the server answers it). */
  apply?: ApplyFn;
  /** Not callable by clients (operations the server builds itself, e.g. a transaction). */
  internal?: boolean;
  /** Keys that move (XREAD's after STREAMS): the key arguments of a line, for ACL checks. */
  movableKeys?: (argv: readonly ByteString[]) => ByteString[];
  /** A container (XGROUP, XINFO): its subcommands' arities, name and subcommand included. */
  subcommands?: Readonly<Record<string, number>>;
  /**
   * Blocking commands: how they wait and are served (`waiters.ts`). Outside a transaction the
   * server sends them as `__BLOCK` (XREAD/XREADGROUP only with BLOCK, see `BlockSpec.blocks`);
   * `apply` is their non-blocking form (inside MULTI).
   */
  block?: BlockSpec;
}

/** True when `argv` has a count of words that `spec.arity` allows. */
export function arityOk(spec: Pick<CommandSpec, "arity">, argc: number): boolean {
  return spec.arity >= 0 ? argc === spec.arity : argc >= -spec.arity;
}

/**
 * Redis's checks of a command line before it runs or is queued in `MULTI`: the arity, then for a
 * container ({@link CommandSpec.subcommands}) the subcommand's name and arity. Null when it
 * passes.
 */
export function argvError(spec: CommandSpec, argv: readonly ByteString[]): { err: string } | null {
  if (!arityOk(spec, argv.length)) {
    return { err: `ERR wrong number of arguments for '${spec.name}' command` };
  }
  const subs = spec.subcommands;
  if (subs === undefined) return null;
  const sub = argv[1].toLowerCase();
  const arity = Object.hasOwn(subs, sub) ? subs[sub] : undefined;
  if (arity === undefined) {
    const nul = argv[1].indexOf("\0"); // Redis prints the name as a C string
    const name = (nul < 0 ? argv[1] : argv[1].slice(0, nul)).slice(0, 128);
    return { err: `ERR unknown subcommand '${name}'. Try ${spec.name.toUpperCase()} HELP.` };
  }
  if (!arityOk({ arity }, argv.length)) {
    return { err: `ERR wrong number of arguments for '${spec.name}|${sub}' command` };
  }
  return null;
}

/** The key arguments of a command line, by the spec's key positions (or its movable keys). */
export function keysOf(spec: CommandSpec, argv: readonly ByteString[]): ByteString[] {
  if (spec.movableKeys !== undefined) return spec.movableKeys(argv);
  const [first, lastSpec, step] = spec.keys;
  if (first === 0) return [];
  const last = lastSpec < 0 ? argv.length + lastSpec : lastSpec;
  const out: ByteString[] = [];
  for (let i = first; i <= last && i < argv.length; i += step) out.push(argv[i]);
  return out;
}

/** Redis's categories that its command flags and groups do not imply. */
const EXTRA_CATEGORIES: Readonly<Record<string, readonly string[]>> = {
  keys: ["@dangerous"],
  flushall: ["@keyspace", "@dangerous"],
  flushdb: ["@keyspace", "@dangerous"],
  info: ["@dangerous"],
  dbsize: ["@keyspace"],
  command: ["@connection"],
};

/**
 * ACL categories of a command, derived from its flags and group as Redis derives them (plus the
 * few Redis assigns by hand).
 */
export function categoriesOf(spec: CommandSpec): string[] {
  const cats = new Set<string>();
  const flags = new Set(spec.flags);
  if (flags.has("write")) cats.add("@write");
  if (flags.has("readonly")) cats.add("@read");
  if (flags.has("admin")) cats.add("@admin").add("@dangerous");
  if (flags.has("fast")) cats.add("@fast");
  else cats.add("@slow");
  if (flags.has("pubsub")) cats.add("@pubsub");
  if (flags.has("blocking")) cats.add("@blocking");
  if (spec.group === "generic") cats.add("@keyspace");
  if (["string", "hash", "list", "set", "stream"].includes(spec.group)) cats.add(`@${spec.group}`);
  if (spec.group === "transactions") cats.add("@transaction");
  if (spec.group === "connection") cats.add("@connection");
  if (spec.group === "pubsub") cats.add("@pubsub");
  for (const c of EXTRA_CATEGORIES[spec.name] ?? []) cats.add(c);
  return [...cats];
}

/** A registry of command specs by lowercase name. */
export class CommandTable {
  readonly #byName = new Map<string, CommandSpec>();
  /** The same specs by upper-case name: what clients send, found without lower-casing it. */
  readonly #byUpperName = new Map<string, CommandSpec>();

  /** Builds the table; names must be unique and lowercase. */
  constructor(specs: Iterable<CommandSpec>) {
    for (const s of specs) {
      if (s.name !== s.name.toLowerCase()) throw new Error(`command name ${s.name} not lowercase`);
      if (this.#byName.has(s.name)) throw new Error(`command ${s.name} registered twice`);
      // Any data command not flagged readonly is ordered like a write (PUBLISH: pubsub).
      const ordered = ["write", "readonly", "pubsub"].some((f) =>
        s.flags.includes(f as CommandFlag)
      );
      if (s.apply !== undefined && !ordered) {
        throw new Error(`data command ${s.name} must be flagged write, readonly or pubsub`);
      }
      this.#byName.set(s.name, s);
      this.#byUpperName.set(s.name.toUpperCase(), s);
    }
  }

  /** The spec of `name` (any case), or undefined. */
  get(name: ByteString): CommandSpec | undefined {
    return this.#byName.get(name) ?? this.#byUpperName.get(name) ??
      this.#byName.get(name.toLowerCase());
  }

  /**
   * The data command `argv` names, checked as the state machine runs it: an error reply for an
   * unknown name, a command the server answers itself, an internal one (unless `internal`), or a
   * wrong number of arguments (see {@link argvError}).
   */
  dataCommand(
    argv: readonly ByteString[],
    internal: boolean,
  ): (CommandSpec & { apply: ApplyFn }) | { err: string } {
    const spec = argv.length > 0 ? this.get(argv[0]) : undefined;
    if (spec?.apply === undefined || (spec.internal && !internal)) {
      return { err: `ERR unknown command '${argv[0] ?? ""}'` };
    }
    const bad = argvError(spec, argv);
    if (bad !== null) return bad;
    return spec as CommandSpec & { apply: ApplyFn };
  }

  /** Every spec, internal ones included. */
  all(): CommandSpec[] {
    return [...this.#byName.values()];
  }

  /** Every spec a client may call. */
  public(): CommandSpec[] {
    return this.all().filter((s) => !s.internal);
  }
}
