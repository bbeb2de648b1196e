/**
 * A deterministic, seeded simulation of a sharded cluster: two replica groups (each a
 * {@link Simulation} with its own faults: crashes, restarts, pauses, partitions of a minority)
 * on one event queue, clients that route every key by its slot as a cluster client does, and a
 * migrator that moves slot ranges back and forth between the groups with the reshard
 * tool itself (`src/client/reshard.ts`, async, settled between events), killed and rerun at
 * random points.
 *
 * Clients follow `-MOVED` (remember the slot's new owner), `-ASK` (send the command once to the
 * target, marked ASKING) and `-TRYAGAIN` (try again after a pause); a request that timed out or was
 * refused (NOQUORUM) is retried within the same group with the same exactly-once tag. A redirect
 * is a definite answer (nothing was applied), so the next attempt carries a new tag.
 *
 * @module
 */
import type { ByteString, OpResult, Outcome, ReplicaId } from "../../src/core/types.ts";
import type { KvStore } from "../../src/kv/store.ts";
import { keySlot, SLOTS } from "../../src/kv/slots.ts";
import { initialSlotMap, type SlotMap } from "../../src/kv/slot_map.ts";
import { EventQueue } from "./event_queue.ts";
import { Prng } from "../support/prng.ts";
import { kvOp, type ModelOp } from "../support/ops.ts";
import { encodeExec } from "../../src/kv/commands/tx.ts";
import {
  ATTEMPT_TIMEOUT_MS,
  DEFAULT_SIM,
  type GroupHost,
  MAX_ATTEMPTS,
  registerOp,
  type SimOptions,
  type SimResult,
  Simulation,
} from "./simulator.ts";
import {
  asking,
  type Redirect,
  redirectOf,
  shardMapOf,
  shardStore,
  slotsInFlight,
  stampAsking,
  toRespValue,
} from "./shard_store.ts";
import { reshard, type ShardedCluster } from "../../src/client/reshard.ts";

/** What to simulate. */
export interface ShardSimOptions {
  seed: number;
  /** Each group's replicas, network and faults (`scenario: "random"` picks one per group). */
  group: Omit<SimOptions, "seed" | "clients">;
  clients: number;
  opsPerClient: number;
  /** Keys are `{t<i>}k<j>`: `tags` hash tags (one slot each) of `keysPerTag` keys. */
  tags: number;
  keysPerTag: number;
  /** Slot moves the migrator makes (each one run to completion, through kills and failures). */
  moves: number;
  /**
   * What clients do: `registers` (SET/GET/DEL/EXISTS of single keys, checked per key; the
   * default) or `datamodel` (counters, SET NX, MSET/MGET, transactions within one hash tag,
   * checked as a whole against the state machine as the model).
   */
  workload?: "registers" | "datamodel";
  /** Keys per MIGRATEKEYS batch. */
  batch: number;
  /** Probability that a client sends an operation to a random group rather than the slot's. */
  strayRate: number;
  /** Probability that the migrator is killed after a step (it is then run again from scratch). */
  killRate: number;
  /** Give up after this much simulated time. */
  maxSimMs: number;
  /**
   * Every this many seeds (0: never), the groups retain 8 log entries and snapshot every 12, so
   * that replicas catch up from snapshots.
   */
  smallLogEvery: number;
}

/** Defaults: two groups of 3 replicas, faults picked per seed. */
export const DEFAULT_SHARD_SIM: Omit<ShardSimOptions, "seed"> = {
  group: { ...DEFAULT_SIM, scenario: "random" },
  clients: 3,
  opsPerClient: 10,
  tags: 3,
  keysPerTag: 2,
  moves: 3,
  batch: 1,
  strayRate: 0.2,
  killRate: 0.1,
  maxSimMs: 120_000,
  smallLogEvery: 3,
};

/** The groups, control group first. */
export const GROUPS = ["a", "b"] as const;

/** One client operation over all its attempts (in every group it was sent to). */
export interface ShardRequest {
  client: number;
  /** The register operation (null for the data-model workload). */
  op: ModelOp | null;
  /** The command line sent (without the ASKING wrapper). */
  argv: ByteString[];
  call: number;
  ret: number | null;
  result?: OpResult;
  /** Every attempt: `group/replica tag -> answer`, for diagnostics. */
  trail: string[];
}

/** Everything a run produced. */
export interface ShardSimResult {
  options: ShardSimOptions;
  endedAt: number;
  quiescent: boolean;
  /** Per group: what its replicas did (deliveries, digests, ...). */
  groups: Map<string, SimResult>;
  requests: ShardRequest[];
  /** Where each key is at the end: per group, its value there (groups without it omitted). */
  finalKeys: Map<string, Map<string, string>>;
  /** The control group's slot map at the end. */
  finalMap: SlotMap | null;
  /** Per group at the end: its copy's epoch, and its slots moving out, in, and keys in transit. */
  finalSlots: Map<string, { epoch: number; migrating: number; importing: number; transit: number }>;
  /** Problems seen while running (an epoch that went down, a move never finished, ...). */
  problems: string[];
  /** The migrator's commands and their answers, in order. */
  migratorLog: string[];
  /** Slot moves completed, and migrator runs that were killed or failed. */
  movesDone: number;
  migratorRestarts: number;
  /** Keys the migrator moved (IMPORTKEYS payload keys, duplicates included). */
  keysMoved: number;
  /** Redirects the clients followed, by kind. */
  redirects: Record<Redirect["kind"], number>;
  /** Read answers that arrived after their attempt was given up on (in {@link requests} too). */
  lateReads: number;
}

/**
 * Redirects one client operation follows before it gives up (TRYAGAIN lasts while a killed
 * migrator is rerun).
 */
const MAX_REDIRECTS = 200;
/** Runs of the reshard tool for one move before the move is reported as never completed. */
const MAX_MIGRATOR_RUNS = 200;
/** Attempts of one migrator command (at random replicas) before its link reports a failure. */
const MIGRATOR_TRIES = 5;

/** A command for one group, sent by {@link ShardSimulation.send}. */
interface SendRequest {
  group: string;
  argv: ByteString[];
  /** The exactly-once tag (none: an untagged operation). */
  tag?: { client: string; seq: number };
  /** The sender's connections: the replica it talks to in each group. */
  connections: Map<string, ReplicaId>;
  /** Attempts before giving up (default {@link MAX_ATTEMPTS}). */
  maxTries?: number;
  /** Gets an answer that arrived after its attempt was given up on. */
  late?: (result: OpResult) => void;
}

interface PendingAttempt {
  group: string;
  replica: ReplicaId;
  done: boolean;
  answer: (outcome: Outcome) => void;
  late?: (result: OpResult) => void;
}

/** Runs one sharded simulation to quiescence (or `maxSimMs`). */
export function simulateShards(options: ShardSimOptions): Promise<ShardSimResult> {
  return new ShardSimulation(options).run();
}

class ShardSimulation {
  readonly queue = new EventQueue();
  readonly rng: Prng;
  readonly groups = new Map<string, Simulation>();
  readonly attempts: PendingAttempt[] = [];
  readonly requests: ShardRequest[] = [];
  readonly problems: string[] = [];
  readonly keys: string[] = [];
  /** Keys checked at the end beside {@link keys} (the data model's counters). */
  readonly finalKeys: string[] = [];
  /** Highest slot-map epoch each replica incarnation delivered (`group/replica#inc`). */
  readonly epochs = new Map<string, number>();
  readonly redirects: Record<Redirect["kind"], number> = { moved: 0, ask: 0, tryagain: 0 };
  /** Read answers that arrived after their attempt was given up on (checked all the same). */
  lateReads = 0;
  clientsDone = 0;
  migratorDone = false;
  movesDone = 0;
  migratorRestarts = 0;
  keysMoved = 0;

  constructor(readonly options: ShardSimOptions) {
    this.rng = new Prng(options.seed);
    const map = initialSlotMap(GROUPS);
    this.tagOwners = Array.from({ length: options.tags }, (_, t) => map.owner(keySlot(`{t${t}}`)));
    for (let t = 0; t < options.tags; t++) {
      for (let k = 0; k < options.keysPerTag; k++) this.keys.push(`{t${t}}k${k}`);
      if (options.workload === "datamodel") this.finalKeys.push(`{t${t}}c`);
    }
    GROUPS.forEach((name, g) => {
      const host: GroupHost = {
        queue: this.queue,
        rng: this.rng,
        name,
        onReply: (id, outcome) => this.onReply(id, outcome),
        workDone: () => this.clientsDone === this.options.clients && this.migratorDone,
        newStore: (founding) => shardStore(name, map, founding),
        onDeliver: (_id, incarnation, store) => this.noteEpoch(`${name}/${incarnation}`, store),
        onRead: stampAsking,
      };
      // The group's own seed only picks its fault scenario; every random draw uses the shared rng.
      const groupOptions = { ...options.group, seed: options.seed * GROUPS.length + g, clients: 0 };
      if (options.smallLogEvery > 0 && options.seed % options.smallLogEvery === 0) {
        // Snapshots and snapshot transfers carry the slot state (in-transit keys included).
        Object.assign(groupOptions, { retainEntries: 8, snapshotEvery: 12 });
      }
      this.groups.set(name, new Simulation(groupOptions, host));
    });
  }

  async run(): Promise<ShardSimResult> {
    for (const group of this.groups.values()) group.start();
    for (let c = 0; c < this.options.clients; c++) {
      const routes = new ClientRoutes(initialSlotMap(GROUPS));
      this.queue.at(this.rng.int(0, 20), () => this.nextOp(c, 0, routes));
    }
    this.queue.at(this.rng.int(100, 1_000), () => this.migrate(0));
    let quiescent = false;
    const groups = [...this.groups.values()];
    while (
      !groups.some((g) => g.crash) && this.queue.now <= this.options.maxSimMs &&
      this.queue.runNext()
    ) {
      await this.settleTool();
      if (
        this.clientsDone === this.options.clients && this.migratorDone &&
        groups.every((g) => g.settled())
      ) {
        quiescent = true;
        break;
      }
    }
    return this.result(quiescent);
  }

  result(quiescent: boolean): ShardSimResult {
    const finalKeys = new Map<string, Map<string, string>>();
    for (const key of [...this.keys, ...this.finalKeys]) {
      const at = new Map<string, string>();
      for (const [name, group] of this.groups) {
        const replica = group.serving()[0];
        const value = replica === undefined ? undefined : group.stores.get(replica)!.peek(key);
        if (value !== undefined) at.set(name, value);
      }
      finalKeys.set(key, at);
    }
    const finalSlots: ShardSimResult["finalSlots"] = new Map();
    for (const [name, group] of this.groups) {
      const replica = group.serving()[0];
      if (replica === undefined) continue;
      const store = group.stores.get(replica)!;
      finalSlots.set(name, { epoch: shardMapOf(store)?.epoch ?? 0, ...slotsInFlight(store) });
    }
    const control = this.groups.get(GROUPS[0])!;
    const controlReplica = control.serving()[0];
    return {
      options: this.options,
      endedAt: this.queue.now,
      quiescent,
      groups: new Map([...this.groups].map(([name, g]) => [name, g.result(quiescent)])),
      requests: this.requests,
      finalKeys,
      finalSlots,
      finalMap: controlReplica === undefined
        ? null
        : shardMapOf(control.stores.get(controlReplica)!),
      problems: this.problems,
      movesDone: this.movesDone,
      migratorLog: this.migratorLog,
      migratorRestarts: this.migratorRestarts,
      keysMoved: this.keysMoved,
      redirects: this.redirects,
      lateReads: this.lateReads,
    };
  }

  /** Slot-map epochs only grow, at every replica incarnation. */
  noteEpoch(incarnation: string, store: KvStore): void {
    const epoch = shardMapOf(store)?.epoch ?? 0;
    const before = this.epochs.get(incarnation) ?? 0;
    if (epoch < before) {
      this.problems.push(`${incarnation}: slot-map epoch went from ${before} down to ${epoch}`);
    }
    this.epochs.set(incarnation, Math.max(epoch, before));
  }

  // ---- requests to a group ----

  /**
   * Sends `request.argv` to `request.group` with its exactly-once tag (if any) over the sender's
   * connection to that group (a replica it keeps while it answers; a new random one after a
   * failure), again (same tag) while the answer is a timeout or a refusal; `answer` gets the
   * first other outcome, or undefined after `request.maxTries` attempts.
   */
  send(
    request: SendRequest,
    answer: (result: OpResult | undefined, trail: string) => void,
    tries = 1,
  ): void {
    const { group, argv, tag, connections } = request;
    const sim = this.groups.get(group)!;
    const replica = connections.get(group) ?? this.rng.pick(sim.ids);
    const id = this.attempts.length;
    const retry = (why: string) => {
      connections.delete(group);
      if (tries >= (request.maxTries ?? MAX_ATTEMPTS)) return answer(undefined, why);
      this.queue.after(this.rng.int(20, 200), () => this.send(request, answer, tries + 1));
    };
    const attempt: PendingAttempt = {
      group,
      replica,
      done: false,
      late: request.late,
      answer: (outcome) => {
        if (!outcome.ok) return retry(outcome.code);
        connections.set(group, replica);
        answer(outcome.result, `${group}/${replica}`);
      },
    };
    this.attempts.push(attempt);
    this.queue.after(ATTEMPT_TIMEOUT_MS, () => {
      if (attempt.done) return;
      attempt.done = true;
      retry("timeout");
    });
    const op = { argv, time: this.queue.now };
    sim.handle(replica, { type: "request", id, cmd: tag ? { op, tag } : { op } });
  }

  onReply(id: number, outcome: Outcome): void {
    const attempt = this.attempts[id];
    if (attempt === undefined) return;
    if (attempt.done) {
      if (outcome.ok) attempt.late?.(outcome.result);
      return;
    }
    attempt.done = true;
    attempt.answer(outcome);
  }

  // ---- clients ----

  nextOp(client: number, n: number, routes: ClientRoutes): void {
    if (n === this.options.opsPerClient) {
      this.clientsDone += 1;
      return;
    }
    let op: ModelOp | null = null;
    let argv: ByteString[];
    let slot: number;
    if (this.options.workload === "datamodel") {
      const tag = this.rng.int(0, this.options.tags - 1);
      argv = this.dataModelCommand(tag, `c${client}-${n}`);
      slot = keySlot(`{t${tag}}`);
    } else {
      const key = this.rng.pick(this.keys);
      op = registerOp(this.rng, key, `c${client}-${n}`);
      argv = kvOp(op).argv;
      slot = keySlot(key);
    }
    const request: ShardRequest = {
      client,
      op,
      argv,
      call: this.queue.now,
      ret: null,
      trail: [],
    };
    this.requests.push(request);
    const seqs = this.clientSeqs;
    let redirects = 0;
    const attempt = (group: string, ask: boolean) => {
      const seq = (seqs.get(client) ?? 0) + 1;
      seqs.set(client, seq);
      const send = {
        group,
        argv: ask ? asking(argv) : argv,
        tag: { client: `c${client}`, seq },
        connections: routes.connections,
        // An ASK is not followed again after a timeout (as the lamportkv client goes back to the
        // source then): by the time of a retry, the slot may be moving again.
        maxTries: ask ? 1 : undefined,
        // The client gave up waiting, but a read's answer is still an answer: a stale one shows.
        late: op !== null && (op.kind === "get" || op.kind === "has")
          ? (result: OpResult) => {
            if (redirectOf(result) !== null) return;
            this.lateReads += 1;
            this.requests.push({
              ...request,
              client: 1_000_000 + this.requests.length,
              ret: this.queue.now,
              result,
              trail: [`${this.queue.now} late answer to${ask ? " asking" : ""} #${seq}`],
            });
          }
          : undefined,
      };
      this.send(send, (result, at) => {
        const answer = result === undefined ? "no answer" : JSON.stringify(result);
        request.trail.push(`${at}${ask ? " asking" : ""} #${seq} -> ${answer}`);
        const redirect = result === undefined ? null : redirectOf(result);
        if (result !== undefined && redirect === null) {
          request.ret = this.queue.now;
          request.result = result;
          return done();
        }
        if (result === undefined || ++redirects > MAX_REDIRECTS) return done(); // unknown
        this.redirects[redirect!.kind] += 1;
        if (redirect!.kind === "moved") {
          routes.learn(slot, redirect!.group);
          attempt(redirect!.group, false);
        } else if (redirect!.kind === "ask") {
          attempt(redirect!.group, true);
        } else {
          this.queue.after(this.rng.int(10, 100), () => attempt(group, ask));
        }
      });
    };
    const done = () =>
      this.queue.after(this.rng.int(0, 20), () => this.nextOp(client, n + 1, routes));
    // Now and then a client asks a group at random, as one that starts from any node or holds a
    // stale map does: the importing side must redirect it too.
    attempt(
      this.rng.chance(this.options.strayRate) ? this.rng.pick(GROUPS) : routes.owner(slot),
      false,
    );
  }

  /**
   * A random command of the data-model workload on the keys of hash tag `tag` (one slot): a
   * counter, SET NX, MSET/MGET, GETSET, DEL and a transaction; `v` is the value it writes. Keys
   * in the same slot may be partly moved: the source answers TRYAGAIN.
   */
  dataModelCommand(tag: number, v: string): ByteString[] {
    const keys = this.keys.filter((k) => k.startsWith(`{t${tag}}`));
    const k = () => this.rng.pick(keys);
    const counter = `{t${tag}}c`;
    switch (this.rng.int(0, 8)) {
      case 0:
        return ["INCR", counter];
      case 1:
        return ["SET", k(), v, "NX"];
      case 2:
        return ["SET", k(), v];
      case 3:
        return ["MSET", k(), v, k(), v];
      case 4:
      case 5:
        return ["MGET", ...keys, counter];
      case 6:
        return ["DEL", k()];
      case 7:
        return ["GETSET", k(), v];
      default:
        return encodeExec([], [["INCR", counter], ["SET", k(), v], ["MGET", ...keys]]);
    }
  }

  /** Each client's last exactly-once sequence number (shared by all groups). */
  readonly clientSeqs = new Map<number, number>();

  // ---- the migrator ----

  /**
   * Move number `n`: slots around one tag's slot go to the group that does not own that slot; the
   * reshard procedure runs until it completes: killed at random (its pending reply never comes
   * back) or failed, it is run again.
   */
  migrate(n: number): void {
    if (n === this.options.moves) {
      this.migratorDone = true;
      return;
    }
    const tag = this.rng.int(0, this.options.tags - 1);
    const slot = keySlot(`{t${tag}}`);
    const width = this.rng.int(0, 2);
    const slots = { start: Math.max(0, slot - width), end: Math.min(SLOTS - 1, slot + width) };
    const to = this.tagOwners[tag] === GROUPS[0] ? GROUPS[1] : GROUPS[0];
    let runs = 0;
    const runOnce = () => {
      runs += 1;
      let killed = false;
      const connections = new Map<string, ReplicaId>();
      const again = (why: string) => {
        this.migratorRestarts += 1;
        if (runs >= MAX_MIGRATOR_RUNS) {
          this.problems.push(
            `move ${n} (${JSON.stringify(slots)} to ${to}) never completed: ${why}`,
          );
          this.migratorDone = true;
          return;
        }
        this.queue.after(this.rng.int(50, 500), runOnce);
      };
      const cluster: ShardedCluster = {
        groups: GROUPS,
        link: (group) => ({
          call: (argv) => {
            this.toolMoved = true;
            if (argv[1] === "IMPORTKEYS") {
              // `IMPORTKEYS <source> <id> [EPOCH <e>] <key> <payload> ...`
              const first = argv[4]?.toUpperCase() === "EPOCH" ? 6 : 4;
              this.keysMoved += (argv.length - first) / 2;
            }
            return new Promise((resolve, reject) => {
              // As a replica's session submits CLUSTER subcommands: untagged internal operations
              // (a lost reply may be retried and applied twice: every step is idempotent).
              const op = argv[1] === "SLOTMAP" ? ["__SLOTMAP"] : ["__RESHARD", ...argv.slice(1)];
              const sent = this.queue.now;
              const request = { group, argv: op, connections, maxTries: MIGRATOR_TRIES };
              this.send(request, (result) => {
                const answer = result === undefined ? "no answer" : JSON.stringify(result);
                this.migratorLog.push(
                  `${sent}-${this.queue.now} move ${n} run ${runs} ${group}: ${
                    argv.slice(1, 5).join(" ")
                  } -> ${answer.slice(0, 200)}${killed ? " (run killed before)" : ""}`,
                );
                if (killed) return;
                if (this.rng.chance(this.options.killRate)) {
                  // Killed before it read the reply: the promise is dropped, never settled.
                  killed = true;
                  return again("killed");
                }
                this.toolWaits = true;
                if (result === undefined) reject(new Error(`no answer to ${argv.join(" ")}`));
                else resolve(toRespValue(result));
              });
            });
          },
        }),
      };
      const options = { batch: this.options.batch, now: () => this.queue.now };
      reshard(cluster, slots, to, options).then(() => {
        this.toolMoved = true;
        this.movesDone += 1;
        this.tagOwners[tag] = to;
        this.queue.after(this.rng.int(0, 1_000), () => this.migrate(n + 1));
      }, (e) => {
        this.toolMoved = true;
        again(e instanceof Error ? e.message : String(e)); // a step failed
      });
    };
    runOnce();
  }

  /** Every command the migrator sent and its answer, in order (for diagnostics). */
  readonly migratorLog: string[] = [];
  /** The owner of each tag's slot, as the migrator made it. */
  readonly tagOwners: string[];
  /** The tool got a reply: run it until it sends its next command or ends. */
  toolWaits = false;
  /** The tool sent a command or ended since it got its last reply. */
  toolMoved = false;

  /**
   * Lets the reshard tool (async) take its next step before the next event: it runs in
   * microtasks until it sends a command or ends, so a run still depends on its seed alone.
   */
  async settleTool(): Promise<void> {
    if (!this.toolWaits) return;
    this.toolWaits = false;
    this.toolMoved = false;
    for (let i = 0; i < 10_000 && !this.toolMoved; i++) await null;
    if (!this.toolMoved) throw new Error("the reshard tool neither sent a command nor ended");
  }
}

/** A client's idea of who owns each slot: a map, and what MOVED replies taught it since. */
class ClientRoutes {
  readonly #learned = new Map<number, string>();
  /** The replica of each group the client is connected to. */
  readonly connections = new Map<string, ReplicaId>();
  constructor(readonly map: SlotMap) {}

  owner(slot: number): string {
    return this.#learned.get(slot) ?? this.map.owner(slot);
  }

  learn(slot: number, group: string): void {
    this.#learned.set(slot, group);
  }
}
