/**
 * The replicated state machine: the typed key space, ordered time, and the exactly-once client
 * table. Every replica applies the same operations in the same order and so reaches the same
 * state; nothing here reads a clock or a random source: an operation carries the time its origin
 * received it, and the state machine's time is the maximum of those times along the order (so it
 * never goes back, and a replica whose clock is off cannot make replicas diverge). Randomness
 * (SPOP, SRANDMEMBER) is derived from the operation's place in the order.
 *
 * @module
 */
import { DIGEST_BATCH_BYTES } from "../limits.ts";
import type { ByteString, Command, Reply } from "../core/types.ts";
import type { StateMachine } from "../core/replica.ts";
import { KeySpace, type KeySpaceSnapshot } from "./keyspace.ts";
import { type ApplyContext, arityOk, type CommandSpec, keysOf } from "./registry.ts";
import { commandEvents, type KeyChange, notificationsOf, NOTIFY, NotifySetting } from "./notify.ts";
import { COMMANDS } from "./commands/index.ts";
import { err } from "./reply.ts";
import { AclState } from "./acl.ts";
import { Prng } from "./prng.ts";
import { Waiters, type WaitersSnapshot } from "./waiters.ts";
import { hashOf } from "./digest_hash.ts";
import type { Membership } from "../core/membership.ts";
import { asReplicaSet, nextReplicaSet, parseReplicaSet, type ReplicaSet } from "./replica_set.ts";
import { SlotState } from "./slot_state.ts";
import type { SlotMap } from "./slot_map.ts";
import { decodeExec } from "./commands/tx.ts";
import { keySlot } from "./slots.ts";

/** How many clients the exactly-once table remembers (least recently used are forgotten). */
const DEFAULT_CLIENT_TABLE_SIZE = 65_536;
/** How many results each client's table keeps (requests it may have in flight at once). */
export const CLIENT_RESULT_WINDOW = 16;

/** The snapshot form of a {@link KvStore}. */
export interface KvSnapshot {
  format: 2;
  time: number;
  keyspace: KeySpaceSnapshot;
  /** Per client: the highest seq forgotten, and the remembered `[seq, reply]`s. */
  clients: [string, number, [number, Reply][]][];
  /** The user table's `ACL LIST` lines; absent while it was never initialised. */
  acl?: string[];
  /** `notify-keyspace-events` bits set through the order; absent while never set. */
  notify?: number;
  /** Blocked clients in registration order; absent when there are none. */
  waiters?: WaitersSnapshot;
  /** The replica set (absent in older snapshots: the founding one). */
  replicaSet?: ReplicaSet;
  /** A sharded group's slot state (`slot_state.ts`); absent: the config's epoch-0 state. */
  slots?: unknown;
}

/** A replica group of a sharded cluster: its name and the config's epoch-0 slot map. */
export interface StoreSharding {
  group: string;
  map: SlotMap;
}

/**
 * Where a replica's store publishes (PUBLISH, keyspace notifications): its own subscribers.
 * Returns how many received the message on this replica.
 */
export type PublishSink = (channel: ByteString, message: ByteString) => number;

interface ClientRecord {
  /** Results of seqs at or below this were forgotten. */
  floor: number;
  results: Map<number, Reply>;
}

/** An old-format result (`{kind: "ok" | "value" | "int"}`) as a {@link Reply}. */
function upgradeReply(r: unknown): Reply {
  const o = r as { kind?: string; value?: unknown } | null;
  if (o && typeof o === "object" && !Array.isArray(o) && typeof o.kind === "string") {
    if (o.kind === "ok") return { ok: "OK" };
    return o.value as Reply;
  }
  return r as Reply;
}

/** Keys {@link KvStore.preparing} restores between two pauses (about 10-20 ms of work here). */
export const RESTORE_SLICE_KEYS = 10_000;

/** Keys restored between two {@link KvStore.onRestoreProgress} reports. */
export const RESTORE_PROGRESS_KEYS = 65_536;

/**
 * The key-value state machine. A tagged write (`cmd.tag`) whose `seq` was applied before is a
 * retry: it is not applied again and returns the recorded result. Each client's last
 * {@link CLIENT_RESULT_WINDOW} results are kept, so a client may pipeline that many tagged
 * writes and retry any of them; a retry of an older one is refused. Reads are always executed.
 */
export class KvStore implements StateMachine {
  readonly #ks = new KeySpace();
  readonly #clients = new Map<string, ClientRecord>();
  /**
   * Stores restored by {@link checkState}'s dry run, per state: {@link restore} of the same state
   * takes their key space instead of building it again (a million keys take a second or more).
   */
  readonly #checked = new WeakMap<object, KvStore>();
  readonly #clientTableSize: number;
  /** The replicated user table (see `acl.ts`). */
  readonly #acl = new AclState();
  /** The replicated queue of blocked clients (see `waiters.ts`). */
  readonly #waiters = new Waiters((argv) => {
    const spec = argv.length > 0 ? COMMANDS.get(argv[0]) : undefined;
    if (spec?.block === undefined || !arityOk(spec, argv.length)) return undefined;
    return (spec.block.blocks?.(argv) ?? true) ? spec.block : undefined;
  });
  /** The ordered time: the largest operation time applied so far. */
  #time = 0;
  /** The replicated `notify-keyspace-events`. */
  readonly #notify: NotifySetting;
  /** The replica set the cluster was founded with (undefined: unknown, e.g. a joining replica). */
  readonly #founding: ReplicaSet | undefined;
  /** The replica set in force; the founding one until an operation changes it. */
  #replicaSet: ReplicaSet | undefined;
  /** How this store was sharded (undefined: not sharded), for its dry runs. */
  readonly #sharding: StoreSharding | undefined;
  /** The group's replicated slot state (undefined: a config without groups). */
  readonly #slots: SlotState | undefined;
  /**
   * Where messages go as operations are applied (set by the replica host; default: nowhere).
   * Called synchronously, at each message's place in the order; not part of the state.
   */
  onPublish: PublishSink = () => 0;

  /**
   * `clientTableSize` bounds the exactly-once table; `notifyKeyspaceEvents` is the config
   * file's `notify-keyspace-events` (bits), in force until one is set through the order;
   * `sharding`: the group of a sharded cluster (its slot state starts from `sharding.map`).
   */
  constructor(
    clientTableSize = DEFAULT_CLIENT_TABLE_SIZE,
    notifyKeyspaceEvents = 0,
    founding?: ReplicaSet,
    sharding?: StoreSharding,
  ) {
    this.#sharding = sharding;
    if (sharding !== undefined) this.#ks.indexSlots(keySlot);
    this.#slots = sharding === undefined ? undefined : new SlotState(sharding.group, sharding.map);
    this.#founding = founding;
    this.#replicaSet = founding;
    this.#clientTableSize = clientTableSize;
    this.#notify = new NotifySetting(notifyKeyspaceEvents);
    this.#ks.waitedOn = this.#waiters.waitedOn;
  }

  /** The `notify-keyspace-events` bits in force at this place in the order. */
  get notifyFlags(): number {
    return this.#notify.flags;
  }

  /** Number of keys. */
  get size(): number {
    return this.#ks.size;
  }

  /** The ordered time (ms): the largest operation time applied so far. */
  get time(): number {
    return this.#time;
  }

  /** The key space, read-only use (INFO, the expiry sweep's trigger, tests). */
  get keyspace(): KeySpace {
    return this.#ks;
  }

  /** The group's replicated slot state (read-only use); undefined without groups. */
  get slots(): SlotState | undefined {
    return this.#slots;
  }

  /** The replicated user table (read-only use: sessions check rights against it). */
  get acl(): AclState {
    return this.#acl;
  }

  /**
   * The replica set in force (voters, learners, addresses), or undefined while it is the
   * founding one of a store built without it.
   */
  get membership(): ReplicaSet | undefined {
    return this.#replicaSet;
  }

  /** The set after `cmd` is delivered in `view` with `current` in force (pure; see core). */
  nextMembership(current: Membership, cmd: Command, view: number): Membership | null {
    const argv = cmd.op.argv;
    if (argv.length === 0 || argv[0].toLowerCase() !== "__replicaset") return null;
    const next = nextReplicaSet(asReplicaSet(current), argv, view);
    return "err" in next ? null : next;
  }

  /** The replica set a snapshot state records (undefined: the founding one). */
  membershipOf(state: unknown): Membership | undefined {
    const raw = (state as Partial<KvSnapshot> | null)?.replicaSet;
    if (raw === undefined) return this.#founding;
    const parsed = parseReplicaSet(raw);
    return typeof parsed === "string" ? this.#founding : parsed;
  }

  /** The blocked clients (read-only use: their owners watch them, INFO, tests). */
  get waiters(): Waiters {
    return this.#waiters;
  }

  /**
   * About the bytes of the records changed since they were hashed into the digest: after each
   * write at most {@link DIGEST_BATCH_BYTES} (see `KeySpace.hashChangedOver`).
   */
  get unhashedBytes(): number {
    return this.#ks.unhashedBytes;
  }

  /** Hash of the state (blocked clients included); equal on replicas that applied the same ops. */
  digest(): string {
    const keys = this.#ks.digest();
    const set = this.#replicaSet;
    const slots = this.#slots?.digest() ?? "";
    if (this.#waiters.size === 0 && set === undefined && slots === "") return keys;
    const parts = [keys, this.#waiters.size === 0 ? "" : this.#waiters.digest()];
    if (set !== undefined) {
      const where = set.addresses.map((a) => [a.id, a.host, a.clientPort, a.peerPort, a.httpPort]);
      parts.push(JSON.stringify([set.voters, set.learners, set.promote, set.changedIn, where]));
    }
    if (slots !== "") parts.push(slots);
    const [a, b] = hashOf(parts);
    return a.toString(16).padStart(8, "0") + b.toString(16).padStart(8, "0");
  }

  /** True for operations that only read (by the command's registry flags). */
  isRead(cmd: Command): boolean {
    const { argv } = unwrapAsking(cmd.op.argv);
    const name = argv[0];
    const spec = name === undefined ? undefined : COMMANDS.get(name);
    return spec !== undefined && spec.apply !== undefined && spec.flags.includes("readonly");
  }

  /** The whole state, JSON-compatible, for snapshots. */
  snapshot(): KvSnapshot {
    const snap: KvSnapshot = {
      format: 2,
      time: this.#time,
      keyspace: this.#ks.snapshot(),
      clients: [...this.#clients].map(([client, r]) => [client, r.floor, [...r.results]]),
    };
    const acl = this.#acl.snapshot();
    if (acl !== undefined) snap.acl = acl;
    const notify = this.#notify.snapshot();
    if (notify !== undefined) snap.notify = notify;
    if (this.#waiters.size > 0) snap.waiters = this.#waiters.snapshot();
    if (this.#replicaSet !== undefined) snap.replicaSet = this.#replicaSet;
    if (this.#slots !== undefined && !this.#slots.pristine) snap.slots = this.#slots.snapshot();
    return snap;
  }

  /**
   * Told how far {@link restore} has come (`restored` of `total` keys), after every
   * {@link RESTORE_PROGRESS_KEYS} keys and at the end: a restarting replica's loading progress.
   * Not part of the state.
   */
  onRestoreProgress: ((restored: number, total: number) => void) | undefined;

  /** Replaces the whole state with a {@link snapshot} (or an older release's). */
  restore(state: unknown): void {
    const report = this.onRestoreProgress;
    const keys = (state as { keyspace?: { keys?: { length?: unknown } } } | null)?.keyspace?.keys;
    const total = typeof keys?.length === "number" ? keys.length : 0;
    let reported = 0;
    // Without a listener, in one slice.
    for (const restored of this.#restoring(state, report ? RESTORE_PROGRESS_KEYS : Infinity)) {
      // The last key's report comes once, at the end, after any pause that follows it (while
      // SCAN's index is built).
      if (restored <= reported || restored >= total) continue;
      reported = restored;
      report?.(restored, total);
    }
    report?.(total, total);
  }

  /**
   * {@link checkState}'s dry run in slices, for a state received from a peer: restores `state`
   * into a scratch store, pausing (yielding) after every `slice` keys so that the caller can let
   * the event loop run (a million keys take about a second, and a replica that is silent for long
   * is dropped from the view). Once it is done, {@link checkState} of the same state object answers
   * at once and {@link restore} takes the scratch store's keys (as after `checkState`). A state
   * that cannot be restored is left for `checkState` to refuse; this never throws.
   */
  *preparing(state: unknown, slice: number = RESTORE_SLICE_KEYS): Generator<unknown> {
    if (typeof state !== "object" || state === null || this.#checked.has(state)) return;
    const probe = this.#emptyLike();
    try {
      yield* probe.#restoring(state, slice);
    } catch {
      return; // checkState will run the dry run again and say why
    }
    this.#checked.set(state, probe);
  }

  /** An empty store configured as this one is (a dry run's scratch store). */
  #emptyLike(): KvStore {
    return new KvStore(
      this.#clientTableSize,
      this.#notify.fallback,
      this.#founding,
      this.#sharding,
    );
  }

  *#restoring(state: unknown, slice: number): Generator<number> {
    const s = state as Partial<KvSnapshot> & { map?: unknown; clients?: unknown[] };
    if (!s || typeof s !== "object" || !Array.isArray(s.clients)) {
      throw new TypeError("malformed KV snapshot");
    }
    this.#clients.clear();
    if (s.format === 2) {
      // A finite time: JSON has no Infinity, so another would not survive the next snapshot.
      if (typeof s.time !== "number" || !Number.isFinite(s.time)) {
        throw new TypeError("malformed KV snapshot time");
      }
      if (s.replicaSet !== undefined) {
        const set = parseReplicaSet(s.replicaSet);
        if (typeof set === "string") throw new TypeError(`malformed KV snapshot: ${set}`);
        this.#replicaSet = set;
      } else {
        this.#replicaSet = this.#founding;
      }
      // First, as it checks every field: a malformed one throws before anything else changed.
      this.#slots?.restore(s.slots);
      this.#acl.restore(s.acl);
      this.#notify.restore(s.notify);
      this.#time = s.time;
      const checked = this.#checked.get(s);
      if (checked !== undefined) {
        this.#checked.delete(s);
        this.#ks.adopt(checked.#ks);
      } else {
        yield* this.#ks.restoring(s.keyspace as KeySpaceSnapshot, slice);
      }
      this.#waiters.restore(s.waiters);
      for (const entry of s.clients) {
        if (!Array.isArray(entry) || entry.length !== 3) throw new TypeError("malformed KV client");
        const [client, floor, results] = entry;
        // Seqs must be integers: #remember trims the table by the smallest seq (found by `<`).
        if (typeof client !== "string" || !Number.isSafeInteger(floor) || !Array.isArray(results)) {
          throw new TypeError("malformed KV client");
        }
        const map = new Map<number, Reply>();
        for (const r of results) {
          if (!Array.isArray(r) || r.length !== 2 || !Number.isSafeInteger(r[0])) {
            throw new TypeError("malformed KV client result");
          }
          map.set(r[0], r[1] as Reply);
        }
        this.#clients.set(client, { floor, results: map });
      }
      return;
    }
    // The format before typed values: {map: [[key, value]], clients: [[client, seq, result]]}.
    if (!Array.isArray(s.map)) throw new TypeError("malformed KV snapshot");
    for (const pair of s.map) {
      if (!Array.isArray(pair) || typeof pair[0] !== "string" || typeof pair[1] !== "string") {
        throw new TypeError("malformed KV snapshot entry");
      }
    }
    this.#time = 0;
    this.#replicaSet = this.#founding;
    this.#slots?.restore(undefined);
    this.#acl.restore(undefined);
    this.#notify.restore(undefined);
    this.#waiters.restore(undefined);
    this.#ks.restoreStrings(s.map as [ByteString, ByteString][]);
    for (const entry of s.clients) {
      if (
        !Array.isArray(entry) || typeof entry[0] !== "string" || !Number.isSafeInteger(entry[1])
      ) {
        throw new TypeError("malformed KV snapshot client");
      }
      const [client, seq, result] = entry as [string, number, unknown];
      this.#clients.set(client, {
        floor: seq - 1,
        results: new Map([[seq, upgradeReply(result)]]),
      });
    }
  }

  /** Why `state` could not be {@link restore}d, or null when it can (a dry run). */
  checkState(state: unknown): string | null {
    // Restored already by preparing(): the same object, unchanged since (states are not mutated).
    if (typeof state === "object" && state !== null && this.#checked.has(state)) return null;
    try {
      const probe = this.#emptyLike();
      probe.restore(state); // which hashes every key into the digest (see KeySpace.restore)
      if (typeof state === "object" && state !== null) this.#checked.set(state, probe);
      return null;
    } catch (err) {
      return err instanceof Error ? err.message : String(err);
    }
  }

  /** Reads a string key without going through the order (for tests and tools only). */
  peek(key: string): string | undefined {
    const r = this.#ks.get(key);
    return r?.t === "string" ? (r.v as string) : undefined;
  }

  /** Applies one delivered (or read) command; `view` is the delivered entry's. */
  apply(cmd: Command, view?: number): Reply {
    const op = cmd.op;
    const { argv, asking } = unwrapAsking(op.argv);
    const spec = COMMANDS.dataCommand(argv, true);
    if ("err" in spec) return spec;
    const time = typeof op.time === "number" && Number.isFinite(op.time) ? op.time : 0;
    if (spec.flags.includes("readonly")) {
      this.#ks.now = Math.max(this.#time, time);
      this.#ks.writing = false;
      return this.#redirect(spec, argv, asking) ?? spec.apply(this.#context(false), argv);
    }
    const tag = cmd.tag;
    let record: ClientRecord | undefined;
    if (tag) {
      record = this.#clients.get(tag.client);
      const seen = record?.results.get(tag.seq);
      if (seen !== undefined) return seen;
      if (record !== undefined && tag.seq <= record.floor) {
        return err("ERR request too old to retry: its result is no longer known");
      }
    }
    this.#ks.now = Math.max(this.#time, time);
    this.#ks.writing = false;
    // Nothing is applied, but the answer is remembered under the tag: the request may still be
    // on its way through another replica of this group (one paused with it, say), and if it came
    // in later, after its client went on elsewhere with a new seq, it must not be applied then
    // (the slot may be back here by that time). Clients send a redirected request with a new seq.
    const redirect = this.#redirect(spec, argv, asking);
    if (redirect !== null) {
      if (tag) this.#remember(tag.client, tag.seq, redirect, record);
      return redirect;
    }
    this.#time = Math.max(this.#time, time);
    this.#ks.now = this.#time;
    this.#ks.version += 1;
    this.#ks.writing = true;
    let result: Reply;
    try {
      result = this.#run(this.#context(true, view), spec, argv);
      // What the operation wrote is offered to blocked clients before anything else is applied.
      this.#waiters.serveReady(this.#ks);
    } catch (e) {
      // A bug, not bad input: every replica hits it at the same place, so the state stays equal.
      result = err(`ERR internal error in '${spec.name}': ${e instanceof Error ? e.message : e}`);
    } finally {
      this.#ks.writing = false;
    }
    // Large values written to many keys are hashed into the digest a batch at a time, not all at
    // the next checkpoint.
    this.#ks.hashChangedOver(DIGEST_BATCH_BYTES);
    if (tag) this.#remember(tag.client, tag.seq, result, record);
    return result;
  }

  /**
   * Where the command is served, at its place in the order (sharded only; see
   * `slot_state.ts`): null here, else the redirect or error. Changes nothing.
   */
  #redirect(spec: CommandSpec, argv: ByteString[], asking: number | null): Reply | null {
    const slots = this.#slots;
    if (slots === undefined) return null;
    const keys = commandKeys(spec, argv);
    return slots.route(keys, (k) => this.#ks.get(k) !== undefined, asking);
  }

  #context(write: boolean, view?: number): ApplyContext {
    const ks = this.#ks;
    let random: Prng | undefined;
    const seed = (ks.version * 0x9e3779b1 + (ks.now % 0x100000000)) >>> 0;
    const ctx: ApplyContext = {
      ks,
      write,
      random: () => (random ??= new Prng(seed)).next(),
      acl: this.#acl,
      notify: this.#notify,
      publish: (channel, message) => this.onPublish(channel, message),
      // The same context: EXEC's commands draw from one random sequence, as they always did.
      run: (spec, argv) => this.#run(ctx, spec, argv),
      waiters: this.#waiters,
      view,
      slots: this.#slots,
      replicaSet: {
        get: () => this.#replicaSet ?? asReplicaSet({ voters: [], learners: [] }),
        set: (next) => {
          this.#replicaSet = next;
        },
      },
    };
    return ctx;
  }

  /**
   * Applies one write command and publishes its keyspace notifications (when enabled): the
   * keys it expired as it met them, then the events of the keys it changed.
   */
  #run(
    ctx: ApplyContext,
    spec: CommandSpec & { apply: (ctx: ApplyContext, argv: ByteString[]) => Reply },
    argv: ByteString[],
  ): Reply {
    const ks = this.#ks;
    const flags = this.#notify.flags;
    if ((flags & (NOTIFY.keyspace | NOTIFY.keyevent)) === 0) return spec.apply(ctx, argv);
    const changes = new Map<ByteString, KeyChange>();
    const created = new Set<ByteString>();
    const outer = ks.observer;
    ks.observer = {
      changed: (key, how) => {
        if (how === "new" && !changes.has(key)) created.add(key);
        changes.set(key, how === "new" ? "changed" : how);
      },
      expired: (key) => this.#notifyEvent(flags, { cls: NOTIFY.expired, event: "expired", key }),
    };
    let result: Reply;
    try {
      result = spec.apply(ctx, argv);
    } finally {
      ks.observer = outer;
    }
    const hasExpiry = (key: ByteString) => (ks.get(key)?.exp ?? 0) !== 0;
    for (const e of commandEvents(argv, changes, created, hasExpiry)) this.#notifyEvent(flags, e);
    return result;
  }

  #notifyEvent(flags: number, e: Parameters<typeof notificationsOf>[1]): void {
    for (const [channel, message] of notificationsOf(flags, e)) this.onPublish(channel, message);
  }

  #remember(client: string, seq: number, result: Reply, record?: ClientRecord): void {
    const r = record ?? { floor: 0, results: new Map<number, Reply>() };
    r.results.set(seq, result);
    while (r.results.size > CLIENT_RESULT_WINDOW) {
      let oldest = Infinity;
      for (const s of r.results.keys()) if (s < oldest) oldest = s;
      r.results.delete(oldest);
      r.floor = Math.max(r.floor, oldest);
    }
    this.#clients.delete(client); // re-insert: Map order is recency order
    this.#clients.set(client, r);
    if (this.#clients.size > this.#clientTableSize) {
      const oldest = this.#clients.keys().next().value;
      if (oldest !== undefined) this.#clients.delete(oldest);
    }
  }
}

/**
 * `argv` without its `__ASKING <stamp>` wrapper, and the stamp (null: no wrapper). A wrapper
 * without a stamp (written before stamps, 2026-12-05) counts as stamp 0, which no import since
 * then accepts.
 */
function unwrapAsking(argv: ByteString[]): { argv: ByteString[]; asking: number | null } {
  // (The length first: lower-casing every delivered command's name would allocate a string.)
  if (argv.length < 2 || argv[0].length !== 8 || argv[0].toLowerCase() !== "__asking") {
    return { argv, asking: null };
  }
  if (argv.length > 2 && /^[0-9]{1,15}$/.test(argv[1])) {
    return { argv: argv.slice(2), asking: Number(argv[1]) };
  }
  return { argv: argv.slice(1), asking: 0 };
}

/**
 * The keys a command line acts on, for routing: its spec's; a transaction's, those of all its
 * queued commands; a blocking command's (`__BLOCK <id> <command>...`), its command's.
 */
function commandKeys(spec: CommandSpec, argv: ByteString[]): ByteString[] {
  if (spec.name === "__exec") {
    const tx = decodeExec(argv);
    if (tx === null) return [];
    return tx.queued.flatMap((q) => {
      const inner = COMMANDS.get(q[0] ?? "");
      return inner === undefined || inner.internal ? [] : keysOf(inner, q);
    });
  }
  if (spec.name === "__block") {
    const inner = COMMANDS.get(argv[2] ?? "");
    return inner === undefined || inner.internal ? [] : keysOf(inner, argv.slice(2));
  }
  return keysOf(spec, argv);
}
