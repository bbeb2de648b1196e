/**
 * A deterministic, seeded simulation of a whole lamportkv cluster: the real protocol core
 * (`Replica` + `KvStore`) driven by a simulated network and simulated clients, with every random
 * choice drawn from one seed.
 *
 * Network: FIFO links with random delays (so messages reorder across links) that go down and come
 * back (in-flight messages are lost; the core resends). Disk: every replica persists records and
 * snapshots; a record becomes durable after a random fsync delay. Faults: crash-stop of a minority,
 * crash and restart (the unsynced tail of the log is lost; the replica recovers from what its
 * disk holds), a whole-cluster crash and restart, pauses (a stopped process: its input queues up,
 * its timers stop), partitions of a minority (both directions cut until healed), and cutting the
 * coordinator off in the middle of a view change.
 * Clients retry a failed or silent request at another replica with the same exactly-once tag,
 * like the real client library.
 *
 * @module
 */
import { Replica, type StateMachine } from "../../src/core/replica.ts";
import type {
  Action,
  ByteString,
  ClientTag,
  Command,
  DurableSnapshot,
  Event,
  Op,
  OpResult,
  Outcome,
  PeerMessage,
  ReplicaId,
} from "../../src/core/types.ts";
import { KvStore } from "../../src/kv/store.ts";
import { parseNotifyFlags } from "../../src/kv/notify.ts";
import { EventQueue } from "./event_queue.ts";
import { overTheWire, recordFromBytes, snapshotFileCopy } from "./wire.ts";
import { encodeRecordPayload } from "../../src/storage/wal.ts";
import { Prng } from "../support/prng.ts";
import type { HistoryOp } from "../support/linearizability.ts";
import { kvOp, type ModelOp, modelResult } from "../support/ops.ts";
import { encodeExec } from "../../src/kv/commands/tx.ts";
import { foundingReplicaSet, type ReplicaSet } from "../../src/kv/replica_set.ts";

const TRACE = Deno.env.get("SIM_TRACE") === "1";
/** Tells reads from writes, as the replicas do. */
const READS = new KvStore();

/** Fault scenarios, one per run (link flaps happen in all of them). */
export type Scenario =
  | "flaps"
  | "crash"
  | "restart"
  | "restart-all"
  | "pause"
  | "partition"
  | "cut-coordinator"
  | "one-way-cut"
  | "stable-partition"
  | "partial-partition";

/** What to simulate. Times are simulated milliseconds; a replica ticks every 10 ms. */
export interface SimOptions {
  seed: number;
  replicas: number;
  clients: number;
  opsPerClient: number;
  keys: number;
  /** Largest one-way delay of a message. */
  maxDelayMs: number;
  /** Probability per 10 ms that some link goes down. */
  linkFailureRate: number;
  /** Longest time a link stays down before it reconnects. */
  maxLinkDownMs: number;
  /** Links stop flapping after this time (or when the clients are done, if sooner). */
  flapUntilMs: number;
  /** The faults of this run; "random" picks one from the seed. */
  scenario: Scenario | "random";
  /** Delivered entries each replica retains (small values force snapshot transfers). */
  retainEntries: number;
  /** Deliveries between durable snapshots (small values exercise log replacement). */
  snapshotEvery: number;
  /**
   * Deliveries between delivery marks (what a restarted replica re-delivers). Default: 0 (never),
   * 1, 4 or 16 by the seed, so that every suite restarts replicas with and without them.
   */
  deliveryMarkEvery?: number;
  /**
   * After every n-th fsync of a replica its storage asks for a snapshot (`snapshot-due`), as a
   * disk storage does once its log grew large in bytes: snapshots at points the delivery count
   * does not choose. Default: 0 (never).
   */
  snapshotDueEvery?: number;
  /** Longest fsync delay. */
  maxSyncMs: number;
  /**
   * Longest delay between an event a replica handled and its `flush` (when it sends the acks it
   * coalesced and starts a probe round); default 2. Longer flushes widen the window in which a
   * replica has delivered an entry but not yet sent the ack that lets others deliver it.
   */
  maxFlushMs?: number;
  /** Give up (and report no progress) after this much simulated time. */
  maxSimMs: number;
  /**
   * What clients do: `registers` (SET/GET/DEL/EXISTS of single keys, checked per key) or
   * `datamodel` (counters, SET NX, MSET/MGET, transactions over a few keys, checked as a whole
   * against the state machine as the model).
   */
  workload?: "registers" | "datamodel";
  /**
   * Keep running (heartbeats, and clients with `opsPerClient`) at least until this time, so that
   * the views a permanent fault leaves behind can be watched settle. Default 0.
   */
  observeUntilMs?: number;
  /** Longest pause of a paused replica in the `pause` scenario (default 3,000). */
  maxPauseMs?: number;
  /** Longest pause of a client between two of its operations (default 20). */
  thinkMs?: number;
  /**
   * Ordered events: every replica publishes keyspace notifications (`KEA`), the data-model
   * workload also sends PUBLISH, and each delivery records what its replica published while
   * applying it ({@link DeliveryRecord.events}).
   */
  events?: boolean;
  /**
   * Membership changes: this many spare replicas (ids after the founding ones) run from the
   * start outside the configuration, waiting to join; an operator adds, promotes and removes
   * replicas through the order (`__REPLICASET`) while the faults go on, and each view's leader
   * promotes a caught-up replica as the runtime does. Default 0 (no changes).
   */
  spares?: number;
  /** With {@link spares}: the operator adds every spare as a learner (default: one in four). */
  learnerAdds?: boolean;
}

/** Fault scenarios that keep no replica down for good (membership runs: a crashed-for-good
 * replica plus changes could leave no majority). */
const TEMPORARY_SCENARIOS: Scenario[] = [
  "flaps",
  "restart",
  "restart-all",
  "pause",
  "partition",
  "cut-coordinator",
];

/** Defaults for a 3-replica run; tests override what they vary. */
export const DEFAULT_SIM: Omit<SimOptions, "seed"> = {
  replicas: 3,
  clients: 5,
  opsPerClient: 20,
  keys: 3,
  maxDelayMs: 15,
  linkFailureRate: 0.05,
  maxLinkDownMs: 300,
  flapUntilMs: 30_000,
  scenario: "flaps",
  retainEntries: 10_000,
  snapshotEvery: 10_000,
  maxSyncMs: 3,
  maxSimMs: 120_000,
};

/** One delivery as a replica saw it. */
export interface DeliveryRecord {
  index: number;
  /** `view:origin:seq`, the entry's identity. */
  id: string;
  /** The entry's view (membership changes depend on it). */
  view: number;
  /** `client:seq` of the request it carries. */
  tag: string;
  /** The command's operation (for replaying the log). */
  op: Op;
  result: string;
  /** With {@link SimOptions.events}: the messages (`channel message`) published applying it. */
  events?: string[];
}

/** One client operation, over all its attempts. */
export interface RequestRecord {
  client: number;
  tag: ClientTag;
  /**
   * Sent without its exactly-once tag, like a plain Redis client: never retried, so it may be
   * applied at most once (a put with a value no other operation writes).
   */
  plain: boolean;
  /** The register operation (null for the data-model workload). */
  op: ModelOp | null;
  /** The command line sent. */
  argv: ByteString[];
  /** A read (what the replicas answer at a place in the order without logging it). */
  read: boolean;
  call: number;
  /** When it succeeded (null: never did, outcome unknown). */
  ret: number | null;
  result?: OpResult;
  attempts: number;
  /** Every outcome received, in order, for diagnostics. */
  outcomes: Outcome[];
  /** The replica of each attempt, in order (answered or not). */
  triedAt: ReplicaId[];
  /** The replica of each answer that was NOQUORUM (late answers included). */
  refusedBy: ReplicaId[];
}

/** Everything a run produced. */
export interface SimResult {
  options: SimOptions;
  scenario: Scenario;
  endedAt: number;
  quiescent: boolean;
  requests: RequestRecord[];
  /** Deliveries per replica incarnation (`"2"`, then `"2#1"` after its first restart, ...). */
  deliveries: Map<string, DeliveryRecord[]>;
  digests: Map<ReplicaId, string>;
  /** Delivered index of each live replica at the end. */
  finalDelivered: Map<ReplicaId, number>;
  /** Replicas that crashed (their records are kept; they are not expected to catch up). */
  crashed: Set<ReplicaId>;
  /** Thrown by a replica's core (an invariant failed), if any. */
  crash?: string;
  /** Replies that arrived for a request attempt already answered. */
  duplicateReplies: number;
  /** NEWVIEW messages sent with a snapshot (a member too far behind for a log suffix). */
  snapshotInstalls: number;
  /** Entries restarted replicas re-delivered in recovery because a delivery mark covered them. */
  markedRedeliveries: number;
  /** Snapshots replicas took because their storage asked (`snapshot-due`). */
  dueSnapshots: number;
  /** NEWVIEW messages that took a voter in as a learner, to catch up first. */
  catchUpInstalls: number;
  /** Read answers that arrived after their client attempt gave up. */
  lateReads: HistoryOp[];
  /**
   * Reads answered from a state older than one some replica had delivered when the read reached
   * its replica (see {@link Simulation.checkFresh}): each one a violation.
   */
  staleReads: string[];
  /** Attempts sent in a stable period that did not succeed within the progress bound. */
  slowAttempts: string[];
  /**
   * Under a permanent fault (`one-way-cut`, `stable-partition`, `partial-partition`): when it
   * began, and the time of
   * every view installed (a replica went normal in a view number none had been normal in).
   */
  permanentFaultAt: number | null;
  viewInstalls: number[];
  /** The founding replica set (what a replay starts from). */
  founding: ReplicaSet;
  /** Every view installed (normal somewhere), in view-number order. */
  views: SimView[];
  /** Membership operations the operator got an answer for: the line and the reply. */
  membershipOps: { argv: string[]; result: string }[];
}

/** A view as first installed somewhere. */
export interface SimView {
  view: number;
  members: ReplicaId[];
  learners: ReplicaId[];
  /** The delivered index its starting log ends at. */
  start: number;
}

interface Link {
  up: boolean;
  /** Held down by a partition until healed. */
  cut: boolean;
  epoch: number;
  lastArrival: number;
}

/** A replica's simulated disk: what survives a crash is the snapshot and the synced records. */
interface Disk {
  snapshot?: DurableSnapshot;
  /** Each record as the log stores it (`encodeRecordPayload`). */
  records: Uint8Array[];
  synced: number;
}

interface Attempt {
  request: RequestRecord;
  call: number;
  replica: ReplicaId;
  /** Sent in a stable period to a replica that could serve: it must succeed in time. */
  mustProgress: boolean;
  /** When it got its first answer, and whether that was a success. */
  answeredAt?: number;
  ok?: boolean;
  /** The client stopped waiting (answered or timed out). */
  done: boolean;
  replies: number;
  /** The highest log index delivered anywhere when the replica took the request in. */
  arrivalIndex?: number;
  /** The replicas' step (see {@link Simulation.steps}) in which its replica took it in. */
  arrivalStep?: number;
}

/** The scenario a seed picks when the options say "random". */
export function scenarioOf(options: SimOptions): Scenario {
  if (options.scenario !== "random") return options.scenario;
  if ((options.spares ?? 0) > 0) {
    return TEMPORARY_SCENARIOS[options.seed % TEMPORARY_SCENARIOS.length];
  }
  const all: Scenario[] = [
    "flaps",
    "crash",
    "restart",
    "restart-all",
    "pause",
    "partition",
    "cut-coordinator",
  ];
  return all[options.seed % all.length];
}

/** Runs one simulation to quiescence (or `maxSimMs`). */
export function simulate(options: SimOptions): SimResult {
  return new Simulation(options).run();
}

/**
 * What a replica group shares with others that run on the same event queue (a sharded
 * simulation): the queue, the seeded random source, and the clients, which live outside it.
 */
export interface GroupHost {
  queue: EventQueue;
  rng: Prng;
  /** The group's name, prefixed to its trace lines. */
  name: string;
  /** An answer to a request the host submitted with {@link Simulation.handle}. */
  onReply(id: number, outcome: Outcome): void;
  /** True once the host's clients are done: link flaps stop. */
  workDone(): boolean;
  /** A replica's state machine (its founding replica set, undefined for a spare). */
  newStore(founding: ReplicaSet | undefined): KvStore;
  /** Called after replica `id` (incarnation `incarnation`) delivered an entry into `store`. */
  onDeliver?(id: ReplicaId, incarnation: string, store: KvStore): void;
  /**
   * What replica `id`'s session makes of a client command when it reads it (after a pause:
   * when the replica wakes up), with the replica's `store` as it is then.
   */
  onRead?(store: KvStore, cmd: Command): Command;
}

/** A replica's standing as the simulator watches it: its state, view, members and learners. */
type Standing = Replica["standing"];

/** How long a client waits for an answer before it tries again elsewhere. */
export const ATTEMPT_TIMEOUT_MS = 3_000;
/** A period is stable this long after the last fault change (detection, then a view change). */
const STABLE_AFTER_MS = 2_000;
/**
 * Under a permanent fault, the period is stable this long after it began: a link that fails one
 * way, or a partition with a bridge, can take two rounds of detection (the first view formed
 * may include both ends of a link whose failure was not yet reported).
 */
const PERMANENT_STABLE_AFTER_MS = 4_000;
/** In a stable period, a request to a replica that can serve succeeds within this. */
export const PROGRESS_BOUND_MS = 1_500;
/** Attempts of one request before its client gives up (its outcome stays unknown). */
export const MAX_ATTEMPTS = 40;

/**
 * One replica group (replicas, their disks, links and faults) and, on its own, its clients and
 * operator. Given a {@link GroupHost}, it shares the host's queue and random source and its
 * requests come from the host (several groups then run side by side).
 */
export class Simulation {
  readonly rng: Prng;
  readonly queue: EventQueue;
  readonly scenario: Scenario;
  /** Every replica of the run: the founding ones, then the spares. */
  readonly ids: ReplicaId[];
  /** The replicas of the config file (the founding configuration's voters). */
  readonly foundingIds: ReplicaId[];
  readonly founding: ReplicaSet;
  readonly majority: number;
  /** Every view installed somewhere, by view number: its members, learners, starting index. */
  readonly viewMembers = new Map<number, SimView>();
  /** The operator's membership operations answered, and how many are still to come. */
  readonly membershipOps: { argv: string[]; result: string }[] = [];
  operatorLeft = 0;
  /** Operator requests by request id (ids from OPERATOR_IDS up). */
  readonly operatorRequests = new Map<number, { argv: string[]; tries: number; seq: number }>();
  nextOperatorId = OPERATOR_IDS;
  operatorSeq = 0;
  /** When each learner's promotion was last submitted (the leader's duty, as in the runtime). */
  readonly promotedAt = new Map<ReplicaId, number>();
  readonly replicas = new Map<ReplicaId, Replica>();
  readonly stores = new Map<ReplicaId, KvStore>();
  /** What each applied command published (by the command object the core applied). */
  readonly published = new WeakMap<Command, string[]>();
  readonly links = new Map<string, Link>();
  readonly flushScheduled = new Set<ReplicaId>();
  readonly requests: RequestRecord[] = [];
  readonly attempts: Attempt[] = [];
  readonly deliveries = new Map<string, DeliveryRecord[]>();
  readonly disks = new Map<ReplicaId, Disk>();
  /** Per replica: its incarnation, and persist actions emitted by the current one. */
  readonly incarnation = new Map<ReplicaId, number>();
  readonly persisted = new Map<ReplicaId, number>();
  readonly syncScheduled = new Set<ReplicaId>();
  /** Replicas down for a while (crashed, to be restarted). */
  readonly down = new Set<ReplicaId>();
  readonly crashed = new Set<ReplicaId>();
  readonly paused = new Map<ReplicaId, Event[]>();
  readonly lastState = new Map<ReplicaId, string>();
  readonly continuations = new Map<RequestRecord, () => void>();
  /** Read answers that reached a client attempt after it gave up (checked all the same). */
  readonly lateReads: HistoryOp[] = [];
  readonly staleReads: string[] = [];
  /** Steps the replicas took so far (`step` calls): which came first, a send or an arrival. */
  steps = 0;
  /** Per replica: the view it was last normal in, and the step in which it went normal there. */
  readonly normalSince = new Map<ReplicaId, { view: number; step: number }>();
  /** Per replica (its incarnation): the step in which it sent each of its probe rounds. */
  readonly probesSent = new Map<ReplicaId, Map<number, number>>();
  /** Per replica: the highest probe round each other one answered it, by `view:answerer`. */
  readonly probeAnswers = new Map<ReplicaId, Map<string, number>>();
  /** The highest log index any replica has delivered so far. */
  maxDelivered = 0;
  clientsDone = 0;
  faultsOn = true;
  /** Scenario faults still to be undone (a pause or partition in force). */
  openFaults = 0;
  cutCoordinatorArmed = false;
  duplicateReplies = 0;
  snapshotInstalls = 0;
  markedRedeliveries = 0;
  catchUpInstalls = 0;
  snapshotsTaken = 0;
  dueSnapshots = 0;
  crash: string | undefined;

  constructor(readonly options: SimOptions, readonly host?: GroupHost) {
    this.queue = host?.queue ?? new EventQueue();
    this.rng = host?.rng ?? new Prng(options.seed);
    this.scenario = scenarioOf(options);
    this.foundingIds = Array.from({ length: options.replicas }, (_, i) => i + 1);
    this.ids = Array.from({ length: options.replicas + (options.spares ?? 0) }, (_, i) => i + 1);
    this.founding = foundingReplicaSet(this.foundingIds.map(simAddress));
    this.majority = Math.floor(options.replicas / 2) + 1;
    for (const id of this.ids) {
      this.disks.set(id, { records: [], synced: 0 });
      this.incarnation.set(id, 0);
      this.boot(id);
      for (const peer of this.ids) {
        if (peer !== id) {
          this.links.set(`${id}>${peer}`, { up: true, cut: false, epoch: 0, lastArrival: 0 });
        }
      }
    }
  }

  /** Starts (or restarts) replica `id` from what its disk holds. */
  boot(id: ReplicaId): void {
    const disk = this.disks.get(id)!;
    // A spare starts outside the configuration: it learns it from its first view's snapshot.
    const founder = this.foundingIds.includes(id);
    const store = this.host?.newStore(founder ? this.founding : undefined) ?? new KvStore(
      undefined,
      this.options.events ? parseNotifyFlags("KEA")! : 0,
      founder ? this.founding : undefined,
    );
    this.stores.set(id, store);
    const machine = this.options.events ? this.recording(store) : store;
    this.persisted.set(id, 0);
    this.normalSince.delete(id);
    this.probesSent.set(id, new Map());
    this.probeAnswers.set(id, new Map());
    const inc = this.incarnation.get(id)!;
    this.deliveries.set(this.incarnationName(id), []);
    const recovered = inc === 0 ? undefined : {
      snapshot: structuredClone(disk.snapshot),
      records: disk.records.map((bytes, i) => recordFromBytes(bytes, i)),
    };
    this.replicas.set(
      id,
      new Replica({
        id,
        replicas: founder ? this.foundingIds : [],
        seeds: this.foundingIds,
        // Compare digests often, so that any false divergence would show in the simulation.
        checkpointEvery: 5,
        retainEntries: this.options.retainEntries,
        snapshotEvery: this.options.snapshotEvery,
        deliveryMarkEvery: this.options.deliveryMarkEvery ?? [0, 1, 4, 16][this.options.seed % 4],
        // Voters behind by more take a view in as learners first (always so with a snapshot).
        catchUpEntries: [10_000, 4, 16][Math.floor(this.options.seed / 4) % 3],
        recovered,
      }, machine),
    );
    if (recovered?.records.some((r) => r.r === "delivered")) {
      // What the marks added: the same recovery without them, on a scratch store.
      const without = new Replica({
        id,
        replicas: founder ? this.foundingIds : [],
        recovered: {
          snapshot: structuredClone(disk.snapshot),
          records: recovered.records.filter((r) => r.r !== "delivered"),
        },
      }, new KvStore(undefined, 0, founder ? this.founding : undefined));
      this.markedRedeliveries += this.replicas.get(id)!.status().delivered -
        without.status().delivered;
    }
  }

  /** `store`, remembering what each command it applies publishes (see {@link published}). */
  recording(store: KvStore): StateMachine {
    let buffer: string[] = [];
    store.onPublish = (channel, message) => {
      buffer.push(`${channel} ${message}`);
      return 0; // no subscribers in the simulation: every replica replies the same
    };
    return {
      isRead: (cmd) => store.isRead(cmd),
      apply: (cmd, view) => {
        buffer = [];
        const result = store.apply(cmd, view);
        this.published.set(cmd, buffer);
        return result;
      },
      get membership() {
        return store.membership;
      },
      nextMembership: (current, cmd, view) => store.nextMembership(current, cmd, view),
      membershipOf: (state) => store.membershipOf(state),
      get size() {
        return store.size;
      },
      digest: () => store.digest(),
      snapshot: () => store.snapshot(),
      restore: (state) => store.restore(state),
      checkState: (state) => store.checkState(state),
    };
  }

  deliveriesOf(id: ReplicaId): DeliveryRecord[] {
    return this.deliveries.get(this.incarnationName(id))!;
  }

  /** Replica `id`'s current incarnation: `"2"`, then `"2#1"` after its first restart, ... */
  incarnationName(id: ReplicaId): string {
    const inc = this.incarnation.get(id)!;
    return inc === 0 ? `${id}` : `${id}#${inc}`;
  }

  run(): SimResult {
    const { queue, options } = this;
    this.start();
    let quiescent = false;
    while (!this.crash && queue.now <= options.maxSimMs && queue.runNext()) {
      if (this.clientsDone === options.clients && this.operatorLeft === 0 && this.settled()) {
        quiescent = true;
        break;
      }
    }
    return this.result(quiescent);
  }

  /** Schedules the replicas' ticks, the clients, the link flaps and the faults of the run. */
  start(): void {
    const { queue, options } = this;
    for (const id of this.ids) {
      queue.at(this.rng.int(0, 9), () => this.tick(id));
      for (const peer of this.ids) if (peer !== id) this.handle(id, { type: "link-up", peer });
    }
    for (let c = 0; c < options.clients; c++) {
      queue.at(this.rng.int(0, 20), () => this.nextOp(c, 0));
    }
    queue.at(10, () => this.flapStep());
    this.scheduleScenario();
    this.scheduleMembership();
  }

  /** What the run produced so far (`quiescent`: it ended settled). */
  result(quiescent: boolean): SimResult {
    const { queue, options } = this;
    const live = this.permanentFaultAt === null ? this.members() : this.serving();
    const digests = new Map(live.map((id) => [id, this.stores.get(id)!.digest()]));
    const finalDelivered = new Map(
      live.map((id) => [id, this.replicas.get(id)!.status().delivered]),
    );
    return {
      options,
      scenario: this.scenario,
      endedAt: queue.now,
      quiescent,
      requests: this.requests,
      deliveries: this.deliveries,
      digests,
      finalDelivered,
      crashed: this.crashed,
      crash: this.crash,
      duplicateReplies: this.duplicateReplies,
      snapshotInstalls: this.snapshotInstalls,
      markedRedeliveries: this.markedRedeliveries,
      dueSnapshots: this.dueSnapshots,
      catchUpInstalls: this.catchUpInstalls,
      lateReads: this.lateReads,
      staleReads: this.staleReads,
      permanentFaultAt: this.permanentFaultAt,
      viewInstalls: [...this.installs.values()].sort((a, b) => a - b),
      founding: this.founding,
      views: [...this.viewMembers.values()].sort((a, b) => a.view - b.view),
      membershipOps: this.membershipOps,
      slowAttempts: this.attempts.filter((a) =>
        a.mustProgress && this.queue.now - a.call > PROGRESS_BOUND_MS &&
        !(a.ok === true && a.answeredAt! - a.call <= PROGRESS_BOUND_MS) &&
        // A fault that began before the bound ran out excuses it.
        this.lastFaultChangeBetween(a.call, a.call + PROGRESS_BOUND_MS) === false
      ).map((a) =>
        `${a.request.argv[0]} at replica ${a.replica}, sent at ${a.call} ms: ` +
        (a.answeredAt === undefined
          ? "never answered"
          : `${a.ok ? "succeeded" : "failed"} after ${a.answeredAt - a.call} ms`)
      ),
    };
  }

  live(): ReplicaId[] {
    return this.ids.filter((id) => !this.crashed.has(id) && !this.down.has(id));
  }

  /**
   * Every fault undone, every live replica normal in one view, idle, and at the same index. Under
   * a permanent fault: the links it cut stay down, and the view is that of a majority (every
   * member normal in it, idle, at the same index) while the rest are not normal.
   */
  settled(): boolean {
    if (this.openFaults > 0 || this.queue.now < (this.options.observeUntilMs ?? 0)) return false;
    for (const [name, link] of this.links) {
      const [from, to] = name.split(">").map(Number);
      const gone = (r: ReplicaId) => this.crashed.has(r) || this.down.has(r);
      if (!link.up && !gone(from) && !gone(to) && !this.partitionedPairs.has(name)) return false;
    }
    const serving = this.serving();
    const statuses = serving.map((id) => this.replicas.get(id)!.status());
    const first = statuses[0];
    const members = this.members();
    if ((this.options.spares ?? 0) > 0) {
      // Every live replica of the configuration in force serves in one view of exactly the
      // live voters and learners, nobody waits to be promoted, and all are idle at one index.
      const config = this.config();
      const live = (ids: readonly ReplicaId[]) => ids.filter((id) => members.includes(id));
      return first !== undefined && members.every((id) => serving.includes(id)) &&
        first.members.join() === live(config.voters).join() &&
        first.learners.join() === live(config.learners).join() &&
        live(config.promote).length === 0 &&
        statuses.every((s) =>
          s.view === first.view && s.holdback === 0 && s.pending === 0 &&
          s.delivered === first.delivered
        );
    }
    const everyone = this.permanentFaultAt === null ? this.live().length : this.majority;
    return statuses.length >= everyone && first.members.length === statuses.length &&
      statuses.every((s) =>
        s.view === first.view && s.holdback === 0 && s.pending === 0 &&
        s.delivered === first.delivered
      ) &&
      this.live().every((id) =>
        serving.includes(id) || this.replicas.get(id)!.standing.state !== "normal"
      );
  }

  /**
   * The replica set in force: that of the live replica that delivered most (without membership
   * changes, the founding one).
   */
  config(): ReplicaSet {
    let best: { delivered: number; set: ReplicaSet } | undefined;
    for (const id of this.live()) {
      const delivered = this.replicas.get(id)!.status().delivered;
      const set = this.stores.get(id)!.membership;
      if (set !== undefined && (best === undefined || delivered > best.delivered)) {
        best = { delivered, set };
      }
    }
    return best?.set ?? this.founding;
  }

  /** The live replicas of the configuration in force (voters and learners). */
  members(): ReplicaId[] {
    if ((this.options.spares ?? 0) === 0) return this.live();
    const config = this.config();
    return this.live().filter((id) => config.voters.includes(id) || config.learners.includes(id));
  }

  /** The live replicas normal in the newest view any live replica is normal in. */
  serving(): ReplicaId[] {
    const normal = this.live().filter((id) => this.replicas.get(id)!.standing.state === "normal");
    const view = Math.max(-1, ...normal.map((id) => this.replicas.get(id)!.standing.view));
    return normal.filter((id) => this.replicas.get(id)!.standing.view === view);
  }

  tick(id: ReplicaId): void {
    if (this.crashed.has(id)) return;
    if (!this.paused.has(id) && !this.down.has(id)) this.handle(id, { type: "tick" });
    this.queue.after(10, () => this.tick(id));
  }

  // ---- faults ----

  flapStep(): void {
    const workDone = this.host?.workDone() ?? this.clientsDone === this.options.clients;
    if (workDone || this.queue.now > this.options.flapUntilMs) {
      this.faultsOn = false;
    }
    if (!this.faultsOn) return;
    if (this.rng.chance(this.options.linkFailureRate)) {
      const from = this.rng.pick(this.ids);
      const to = this.rng.pick(this.ids.filter((p) => p !== from));
      this.linkDown(from, to, this.rng.int(1, this.options.maxLinkDownMs));
      if (this.rng.chance(0.5)) {
        this.linkDown(to, from, this.rng.int(1, this.options.maxLinkDownMs));
      }
    }
    this.queue.after(10, () => this.flapStep());
  }

  scheduleScenario(): void {
    const minority = this.options.replicas - this.majority;
    const start = this.rng.int(200, 2_000);
    switch (this.scenario) {
      case "flaps":
        return;
      case "crash": {
        const victims = this.shuffled(this.ids).slice(0, this.rng.int(1, minority));
        victims.forEach((v, i) =>
          this.queue.at(start + i * this.rng.int(0, 1_500), () => this.crashReplica(v))
        );
        return;
      }
      case "restart": {
        const victims = this.shuffled(this.ids).slice(0, this.rng.int(1, minority));
        for (const v of victims) {
          this.openFaults += 1;
          const at = start + this.rng.int(0, 1_000);
          this.queue.at(at, () => this.crashTemporarily(v));
          this.queue.at(at + this.rng.int(300, 4_000), () => this.restart(v));
        }
        return;
      }
      case "restart-all": {
        this.openFaults += this.ids.length;
        this.queue.at(start, () => this.ids.forEach((v) => this.crashTemporarily(v)));
        for (const v of this.ids) {
          this.queue.at(start + this.rng.int(100, 2_000), () => this.restart(v));
        }
        return;
      }
      case "pause": {
        const victim = this.rng.pick(this.ids);
        this.openFaults += 1;
        this.queue.at(start, () => {
          this.noteFaultChange();
          this.paused.set(victim, []);
        });
        const longest = this.options.maxPauseMs ?? 3_000;
        this.queue.at(start + this.rng.int(1_200, longest), () => this.resume(victim));
        return;
      }
      case "partition": {
        const side = this.shuffled(this.ids).slice(0, this.rng.int(1, minority));
        this.openFaults += 1;
        this.queue.at(start, () => this.partition(side, this.rng.int(1_200, 4_000)));
        return;
      }
      case "one-way-cut": {
        // One direction of one link fails for good: the other direction keeps carrying
        // heartbeats, so silence alone suspects nobody on one side.
        const [from, to] = this.shuffled(this.ids);
        this.queue.at(start, () => this.cutForGood([[from, to]]));
        return;
      }
      case "stable-partition":
      case "partial-partition": {
        // A minority (2 of 5, or 1 of 3) is cut off for good, both directions; in a partial
        // partition one replica of each side still talks to one of the other (a bridge).
        const [bridgeA, ...rest] = this.shuffled(this.ids);
        const side = [bridgeA, ...rest.slice(0, minority - 1)];
        const bridgeB = rest[minority - 1];
        const pairs: [ReplicaId, ReplicaId][] = [];
        for (const a of side) {
          for (const b of this.ids) {
            if (side.includes(b)) continue;
            if (this.scenario === "partial-partition" && a === bridgeA && b === bridgeB) continue;
            pairs.push([a, b], [b, a]);
          }
        }
        this.queue.at(start, () => this.cutForGood(pairs));
        return;
      }
      case "cut-coordinator":
        this.openFaults += 1;
        this.queue.at(start, () => {
          // Make a view change happen, then cut off whoever coordinates it.
          this.cutCoordinatorArmed = true;
          this.partition([this.rng.pick(this.ids)], this.rng.int(1_200, 2_500));
        });
        return;
    }
  }

  shuffled(ids: ReplicaId[]): ReplicaId[] {
    const out = [...ids];
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.rng.int(0, i);
      [out[i], out[j]] = [out[j], out[i]];
    }
    return out;
  }

  /** Time of the last crash, restart, pause, resume, partition or heal, and all of them. */
  lastFaultChange = 0;
  readonly faultChanges: number[] = [];

  noteFaultChange(): void {
    this.lastFaultChange = this.queue.now;
    this.faultChanges.push(this.queue.now);
  }

  lastFaultChangeBetween(from: number, to: number): boolean {
    return this.faultChanges.some((t) => t >= from && t <= to);
  }

  /**
   * True when `replica` can serve and nothing but link flaps happened for long enough that failure
   * detection and a view change are over: a request sent to it now must succeed in time.
   */
  stable(replica: ReplicaId): boolean {
    if (this.crashed.has(replica) || this.down.has(replica) || this.paused.has(replica)) {
      return false;
    }
    if (this.openFaults > 0 || this.queue.now - this.lastFaultChange < STABLE_AFTER_MS) {
      return false;
    }
    // Under a permanent fault, a replica the majority's view left out cannot serve: only those
    // normal now are expected to (and stay so, once the views settled).
    if (this.permanentFaultAt !== null) {
      return this.queue.now - this.permanentFaultAt >= PERMANENT_STABLE_AFTER_MS &&
        this.replicas.get(replica)!.standing.state === "normal";
    }
    if ((this.options.spares ?? 0) > 0) {
      // Membership changes: only a member of the configuration in force serves, and a change
      // that took effect lately is a fault change of its own (a view change follows it).
      return !this.operatorBusy && this.members().includes(replica) &&
        this.config().voters.includes(replica) &&
        this.queue.now - this.lastMembershipChange >= STABLE_AFTER_MS;
    }
    // Only a replica in the majority's component; the rest were crashed for good.
    return this.live().length >= this.majority;
  }

  crashReplica(id: ReplicaId): void {
    this.noteFaultChange();
    this.trace(`${id} CRASHES`);
    this.crashed.add(id);
    for (const peer of this.ids) {
      if (peer === id) continue;
      this.cut(id, peer);
      this.cut(peer, id);
    }
  }

  /** Kills `id`; what it had not synced is lost. It comes back with {@link restart}. */
  crashTemporarily(id: ReplicaId): void {
    this.noteFaultChange();
    this.trace(`${id} CRASHES (will restart)`);
    this.down.add(id);
    const disk = this.disks.get(id)!;
    disk.records = disk.records.slice(0, disk.synced);
    for (const peer of this.ids) {
      if (peer === id) continue;
      this.cut(id, peer);
      this.cut(peer, id);
    }
  }

  restart(id: ReplicaId): void {
    this.noteFaultChange();
    this.trace(`${id} RESTARTS`);
    this.down.delete(id);
    this.openFaults -= 1;
    this.syncScheduled.delete(id);
    this.incarnation.set(id, this.incarnation.get(id)! + 1);
    this.boot(id);
    for (const peer of this.ids) {
      if (peer === id || this.crashed.has(peer) || this.down.has(peer)) continue;
      for (const [a, b] of [[id, peer], [peer, id]]) {
        const link = this.links.get(`${a}>${b}`)!;
        if (this.partitionedPairs.has(`${a}>${b}`)) continue;
        link.cut = false;
        this.reconnect(a, b);
      }
    }
  }

  /** When a permanent fault began (null: none in this run). */
  permanentFaultAt: number | null = null;
  /** Per view number ever normal somewhere: when it was first installed. */
  readonly installs = new Map<number, number>();

  /** Cuts the links `pairs` (`from -> to`) until the end of the run. */
  cutForGood(pairs: [ReplicaId, ReplicaId][]): void {
    this.noteFaultChange();
    this.permanentFaultAt = this.queue.now;
    this.trace(`CUT FOR GOOD ${pairs.map(([a, b]) => `${a}>${b}`).join(" ")}`);
    for (const [a, b] of pairs) {
      this.cut(a, b);
      this.partitionedPairs.add(`${a}>${b}`);
    }
  }

  /** Links held down by a partition in force (a restart does not heal them). */
  readonly partitionedPairs = new Set<string>();

  resume(id: ReplicaId): void {
    this.noteFaultChange();
    this.trace(`${id} RESUMES`);
    const backlog = this.paused.get(id) ?? [];
    this.paused.delete(id);
    this.openFaults -= 1;
    // A process woken up reads its sockets in no particular order: each source stays FIFO,
    // but a client request may be handled before messages that arrived earlier from peers.
    const sources = new Map<string, Event[]>();
    for (const event of backlog) {
      const source = event.type === "peer" ? `peer ${event.from}` : event.type;
      const queue = sources.get(source) ?? [];
      queue.push(event);
      sources.set(source, queue);
    }
    const queues = [...sources.values()];
    while (queues.length > 0) {
      const i = this.rng.int(0, queues.length - 1);
      this.handle(id, queues[i].shift()!);
      if (queues[i].length === 0) queues.splice(i, 1);
    }
  }

  /** Cuts `side` off from everyone else (both directions) for `ms`. */
  partition(side: ReplicaId[], ms: number): void {
    this.noteFaultChange();
    this.trace(`PARTITION [${side}] for ${ms} ms`);
    const cutLinks: [ReplicaId, ReplicaId][] = [];
    for (const a of side) {
      for (const b of this.ids) {
        if (side.includes(b)) continue;
        cutLinks.push([a, b], [b, a]);
      }
    }
    for (const [a, b] of cutLinks) {
      this.cut(a, b);
      this.partitionedPairs.add(`${a}>${b}`);
    }
    this.queue.after(ms, () => {
      this.noteFaultChange();
      this.trace(`HEAL [${side}]`);
      this.openFaults -= 1;
      for (const [a, b] of cutLinks) {
        this.partitionedPairs.delete(`${a}>${b}`);
        if (this.crashed.has(a) || this.crashed.has(b) || this.down.has(a) || this.down.has(b)) {
          continue;
        }
        this.links.get(`${a}>${b}`)!.cut = false;
        this.reconnect(a, b);
      }
    });
  }

  cut(from: ReplicaId, to: ReplicaId): void {
    const link = this.links.get(`${from}>${to}`)!;
    link.cut = true;
    link.up = false;
    link.epoch += 1;
  }

  linkDown(from: ReplicaId, to: ReplicaId, ms: number): void {
    const link = this.links.get(`${from}>${to}`)!;
    if (!link.up) return;
    link.up = false;
    link.epoch += 1;
    this.queue.after(ms, () => {
      if (!link.cut) this.reconnect(from, to);
    });
  }

  reconnect(from: ReplicaId, to: ReplicaId): void {
    const link = this.links.get(`${from}>${to}`)!;
    if (link.up) return;
    link.up = true;
    link.lastArrival = this.queue.now;
    this.handle(from, { type: "link-up", peer: to });
  }

  // ---- network ----

  send(from: ReplicaId, to: ReplicaId, msgs: PeerMessage[]): void {
    const link = this.links.get(`${from}>${to}`)!;
    if (!link.up) return; // the host drops what it cannot send; the core resends
    const delay = this.rng.chance(0.05)
      ? this.rng.int(0, this.options.maxDelayMs * 10)
      : this.rng.int(0, this.options.maxDelayMs);
    const arrival = Math.max(this.queue.now + delay, link.lastArrival);
    link.lastArrival = arrival;
    const epoch = link.epoch;
    // Encoded when sent, as a link does: what arrives is what the codec gave back.
    const received = overTheWire(msgs);
    this.queue.at(arrival, () => {
      if (link.epoch === epoch) this.handle(to, { type: "peer", from, msgs: received });
    });
  }

  handle(id: ReplicaId, event: Event): void {
    if (this.crash || this.crashed.has(id) || this.down.has(id)) return;
    const backlog = this.paused.get(id);
    if (backlog) {
      if (event.type !== "tick" && event.type !== "flush") backlog.push(event);
      return;
    }
    if (event.type === "request" && this.host?.onRead !== undefined) {
      event = { ...event, cmd: this.host.onRead(this.stores.get(id)!, event.cmd) };
    }
    this.steps += 1;
    if (event.type === "request" && this.host === undefined && event.id < OPERATOR_IDS) {
      this.attempts[event.id].arrivalIndex = this.maxDelivered;
      this.attempts[event.id].arrivalStep = this.steps;
    }
    const replica = this.replicas.get(id)!;
    // Probe answers as they arrive, and where a probe is answered, its standing before the step.
    let before: Standing | undefined;
    if (event.type === "peer") {
      for (const msg of event.msgs) {
        if (msg.type === "probe") before ??= replica.standing;
        if (msg.type !== "probe-ack") continue;
        const answers = this.probeAnswers.get(id)!;
        const key = `${msg.view}:${event.from}`;
        answers.set(key, Math.max(answers.get(key) ?? 0, msg.round));
      }
    }
    let actions: Action[];
    try {
      actions = replica.step(event);
    } catch (e) {
      this.crash = `replica ${id} threw on ${event.type}: ${e instanceof Error ? e.stack : e}`;
      return;
    }
    const standing = replica.standing;
    if (standing.state === "normal" && this.normalSince.get(id)?.view !== standing.view) {
      this.normalSince.set(id, { view: standing.view, step: this.steps });
    }
    this.carryOut(id, actions, standing, before);
    if (standing.state === "normal" && !this.installs.has(standing.view)) {
      this.installs.set(standing.view, this.queue.now);
      this.viewMembers.set(standing.view, {
        view: standing.view,
        members: [...standing.members],
        learners: [...standing.learners],
        start: replica.status().delivered,
      });
    }
    if ((this.options.spares ?? 0) > 0 && replica.leads) this.promoteCaughtUp(id, replica);
    if (event.type !== "flush" && !this.flushScheduled.has(id)) {
      this.flushScheduled.add(id);
      this.queue.after(this.rng.int(0, this.options.maxFlushMs ?? 2), () => {
        this.flushScheduled.delete(id);
        this.handle(id, { type: "flush" });
      });
    }
  }

  trace(line: string): void {
    if (TRACE) {
      const name = this.host ? `${this.host.name}: ` : "";
      console.log(`${String(this.queue.now).padStart(6)} ${name}${line}`);
    }
  }

  /**
   * Carries out what replica `id` did in a step: `standing` is its standing after the step,
   * `before` before it (only where it answered probes).
   */
  carryOut(id: ReplicaId, actions: Action[], standing: Standing, before?: Standing): void {
    const frames = new Map<ReplicaId, PeerMessage[]>();
    let proposed = false;
    if (this.host === undefined) this.checkFresh(id, actions, standing);
    for (const action of actions) {
      if (action.type === "send") {
        if (action.msg.type === "probe") this.probesSent.get(id)!.set(action.msg.round, this.steps);
        if (action.msg.type === "probe-ack") {
          this.checkProbeAnswer(id, action.to, action.msg.view, standing, before);
        }
        const batch = frames.get(action.to) ?? [];
        batch.push(action.msg);
        frames.set(action.to, batch);
        if (action.msg.type === "propose") proposed = true;
        if (action.msg.type === "newview" && action.msg.install.snapshot) {
          this.snapshotInstalls += 1;
        }
        if (
          action.msg.type === "newview" && action.msg.learners?.includes(action.to) &&
          this.replicas.get(id)!.membership.voters.includes(action.to)
        ) {
          this.catchUpInstalls += 1;
        }
        if (TRACE && action.msg.type !== "update" && action.msg.type !== "ack") {
          this.trace(`${id}->${action.to} ${action.msg.type} v${action.msg.view}`);
        }
      } else if (action.type === "reply") {
        if (this.host && action.id < OPERATOR_IDS) this.host.onReply(action.id, action.outcome);
        else this.onReply(action.id, action.outcome);
      } else if (action.type === "persist") {
        this.disks.get(id)!.records.push(encodeRecordPayload(action.record));
        this.persisted.set(id, this.persisted.get(id)! + 1);
        this.scheduleSync(id);
      } else if (action.type === "snapshot") {
        // Written atomically and durably; it supersedes every record persisted before it.
        this.snapshotsTaken += 1;
        const disk = this.disks.get(id)!;
        disk.snapshot = snapshotFileCopy(action.snapshot);
        disk.records = [];
        disk.synced = 0;
        this.scheduleSync(id);
      } else if (action.type === "reject") {
        // Every simulated peer is correct: a refused message is a bug of the validation.
        throw new Error(`replica ${id} refused a message of ${action.peer}: ${action.reason}`);
      } else if (action.type === "diverged") {
        // Every simulated replica applies the same operations: a divergence is a bug.
        throw new Error(`replica ${id} diverged: ${JSON.stringify(action)}`);
      } else {
        const { entry } = action;
        this.maxDelivered = Math.max(this.maxDelivered, action.index);
        this.deliveriesOf(id).push({
          index: action.index,
          id: `${entry.view}:${entry.origin}:${entry.seq}`,
          view: entry.view,
          tag: entry.cmd.tag ? `${entry.cmd.tag.client}:${entry.cmd.tag.seq}` : "",
          op: entry.cmd.op,
          result: JSON.stringify(action.result),
          ...(this.options.events ? { events: this.published.get(entry.cmd) ?? [] } : {}),
        });
        this.host?.onDeliver?.(id, this.incarnationName(id), this.stores.get(id)!);
      }
    }
    if (TRACE) {
      const s = this.replicas.get(id)!.status();
      const key = `${s.state} v${s.view} [${s.members}]`;
      if (this.lastState.get(id) !== key) this.trace(`${id} is ${key} delivered ${s.delivered}`);
      this.lastState.set(id, key);
    }
    for (const [to, msgs] of frames) this.send(id, to, msgs);
    if (proposed && this.cutCoordinatorArmed) {
      this.cutCoordinatorArmed = false;
      this.openFaults += 1;
      this.partition([id], this.rng.int(500, 2_500));
    }
  }

  /**
   * Read freshness, a check stronger than linearizability of what clients saw: a read is answered
   * from a state that contains every entry any replica had delivered when the read reached its
   * replica, whether or not a client has seen that entry yet. (A member or learner that answers a
   * probe may not yet have sent the ack that lets the reader deliver what it just delivered
   * itself: the read must wait for it.) The state a reply in `actions` was answered from is the
   * replica's delivered index just before the next delivery in `actions`, or at the end of them.
   */
  checkFresh(id: ReplicaId, actions: Action[], standing: Standing): void {
    let next: number | undefined;
    for (let i = actions.length - 1; i >= 0; i--) {
      const action = actions[i];
      if (action.type === "deliver") next = action.index - 1;
      if (action.type !== "reply" || action.id >= OPERATOR_IDS || !action.outcome.ok) continue;
      const attempt = this.attempts[action.id];
      if (attempt.arrivalIndex === undefined || !attempt.request.read) continue;
      this.checkConfirmed(id, attempt, standing);
      const answeredAt = next ?? this.replicas.get(id)!.status().delivered;
      if (answeredAt < attempt.arrivalIndex) {
        this.staleReads.push(
          `stale read: ${attempt.request.argv[0]} (${attempt.request.tag.client}:` +
            `${attempt.request.tag.seq}) answered by replica ${id} at ${this.queue.now} ms from ` +
            `index ${answeredAt}, but index ${attempt.arrivalIndex} was delivered before it ` +
            `arrived`,
        );
      }
    }
  }

  /**
   * The probe rule (src/core/README.md, Reads): a replica answers a probe only while it is
   * normal in the view it answers for, to a member or learner of that view. (A frame's probe
   * comes after anything else in it, so its answer's standing is the one after the step; the one
   * before is accepted too.) Throws otherwise, as for a refused message.
   */
  checkProbeAnswer(
    id: ReplicaId,
    to: ReplicaId,
    view: number,
    after: Standing,
    before: Standing | undefined,
  ): void {
    const serves = (s: Standing | undefined) =>
      s !== undefined && s.state === "normal" && s.view === view &&
      (s.members.includes(to) || s.learners.includes(to));
    if (serves(after) || serves(before)) return;
    throw new Error(
      `replica ${id} (${after.state} in view ${after.view}) answered a probe of replica ${to} ` +
        `for view ${view}, not being normal there with it`,
    );
  }

  /**
   * The read rule (src/core/README.md, Reads): a read is answered by a replica normal in a view,
   * once every other member of that view answered it there a probe sent after the read arrived,
   * and after the replica went normal in that view (reads that wait when their replica leaves
   * its view wait for the next one). Throws otherwise.
   */
  checkConfirmed(id: ReplicaId, attempt: Attempt, standing: Standing): void {
    const { client, seq } = attempt.request.tag;
    const read = `read ${client}:${seq} answered by replica ${id} in view ${standing.view}`;
    const since = this.normalSince.get(id);
    if (standing.state !== "normal" || since?.view !== standing.view) {
      throw new Error(`${read}, but it is ${standing.state}`);
    }
    const after = Math.max(attempt.arrivalStep!, since.step);
    for (const m of standing.members) {
      if (m === id) continue;
      const round = this.probeAnswers.get(id)!.get(`${standing.view}:${m}`);
      const sent = round === undefined ? undefined : this.probesSent.get(id)!.get(round);
      if (sent !== undefined && sent > after) continue;
      throw new Error(
        `${read}: member ${m} answered no probe of that view sent after the read arrived ` +
          `(step ${attempt.arrivalStep}) and the view went normal there (step ${since.step})`,
      );
    }
  }

  /** Per replica: its fsyncs so far (see {@link SimOptions.snapshotDueEvery}). */
  readonly syncs = new Map<ReplicaId, number>();

  /** An fsync after a random delay makes everything persisted so far durable. */
  scheduleSync(id: ReplicaId): void {
    if (this.syncScheduled.has(id)) return;
    this.syncScheduled.add(id);
    const inc = this.incarnation.get(id)!;
    this.queue.after(this.rng.int(0, this.options.maxSyncMs), () => {
      this.syncScheduled.delete(id);
      if (this.incarnation.get(id) !== inc || this.down.has(id) || this.crashed.has(id)) return;
      const disk = this.disks.get(id)!;
      disk.synced = disk.records.length;
      this.handle(id, { type: "synced", upTo: this.persisted.get(id)! });
      const due = this.options.snapshotDueEvery ?? 0;
      const syncs = (this.syncs.get(id) ?? 0) + 1;
      this.syncs.set(id, syncs);
      if (due > 0 && syncs % due === 0 && !this.crash) {
        const taken = this.snapshotsTaken;
        this.handle(id, { type: "snapshot-due" });
        this.dueSnapshots += this.snapshotsTaken - taken;
      }
    });
  }

  // ---- clients ----

  nextOp(client: number, n: number): void {
    if (n === this.options.opsPerClient) {
      this.clientsDone += 1;
      return;
    }
    let op: ModelOp | null = null;
    let argv: ByteString[];
    if (this.options.workload === "datamodel") {
      argv = this.dataModelCommand(client, n);
    } else {
      const key = `k${this.rng.int(0, this.options.keys - 1)}`;
      op = registerOp(this.rng, key, `c${client}-${n}`);
      argv = kvOp(op).argv;
    }
    const plain = op?.kind === "put" && this.rng.chance(0.25);
    const request: RequestRecord = {
      client,
      tag: requestTag(client, n),
      plain,
      op,
      argv,
      read: READS.isRead({ op: { argv, time: 0 } }),
      call: this.queue.now,
      ret: null,
      attempts: 0,
      outcomes: [],
      triedAt: [],
      refusedBy: [],
    };
    this.requests.push(request);
    this.attempt(request, this.pickReplica(), () => {
      this.queue.after(
        this.rng.int(0, this.options.thinkMs ?? 20),
        () => this.nextOp(client, n + 1),
      );
    });
  }

  attempt(request: RequestRecord, replica: ReplicaId, then?: () => void): void {
    if (then) this.continuations.set(request, then);
    request.attempts += 1;
    request.triedAt.push(replica);
    const id = this.attempts.length;
    const attempt: Attempt = {
      request,
      call: this.queue.now,
      replica,
      mustProgress: this.stable(replica),
      done: false,
      replies: 0,
    };
    this.attempts.push(attempt);
    this.queue.after(ATTEMPT_TIMEOUT_MS, () => {
      if (!attempt.done) this.failed(attempt);
    });
    const op = { argv: request.argv, time: this.queue.now };
    const cmd = request.plain ? { op } : { op, tag: request.tag };
    this.handle(replica, { type: "request", id, cmd });
  }

  onReply(id: number, outcome: Outcome): void {
    if (id >= OPERATOR_IDS) return this.onOperatorReply(id, outcome);
    const attempt = this.attempts[id];
    attempt.replies += 1;
    if (!outcome.ok && outcome.code === "NOQUORUM") attempt.request.refusedBy.push(attempt.replica);
    if (attempt.answeredAt === undefined) {
      attempt.answeredAt = this.queue.now;
      attempt.ok = outcome.ok;
    }
    // A late answer to an attempt the client gave up on is fine; a second answer is not.
    if (attempt.replies > 1) this.duplicateReplies += 1;
    if (attempt.done) {
      // The client gave up waiting, but the answer is still an answer: a stale read would show.
      const { op } = attempt.request;
      if (outcome.ok && op !== null && (op.kind === "get" || op.kind === "has")) {
        this.lateReads.push({
          client: 1_000_000 + id,
          op: { kind: op.kind, key: op.key },
          call: attempt.call,
          ret: this.queue.now,
          result: modelResult(op.kind, outcome.result),
        });
      }
      return;
    }
    attempt.done = true;
    const { request } = attempt;
    request.outcomes.push(outcome);
    if (outcome.ok) {
      request.ret = this.queue.now;
      request.result = outcome.result;
      this.finish(request);
    } else {
      this.retry(request);
    }
  }

  failed(attempt: Attempt): void {
    attempt.done = true;
    this.retry(attempt.request);
  }

  /** A random command of the data-model workload: few keys, so operations conflict. */
  dataModelCommand(client: number, n: number): ByteString[] {
    const k = () => `k${this.rng.int(0, this.options.keys - 1)}`;
    const c = () => `c${this.rng.int(0, 1)}`;
    const v = `c${client}-${n}`;
    const roll = this.rng.int(0, this.options.events ? 10 : 9);
    switch (roll) {
      case 10:
        return ["PUBLISH", `ch${client % 2}`, v];
      case 0:
      case 1:
        return ["INCR", c()];
      case 2:
        return ["SET", k(), v, "NX"];
      case 3:
        return ["SET", k(), v];
      case 4: {
        const [a, b] = [k(), k()];
        return ["MSET", a, v, b, v];
      }
      case 5:
      case 6:
        return ["MGET", "k0", "k1", "k2", "c0", "c1"];
      case 7:
        return ["DEL", k()];
      case 8:
        return ["GETSET", k(), v];
      default:
        return encodeExec([], [["INCR", c()], ["SET", k(), v], ["MGET", "k0", "k1"], [
          "INCRBY",
          "k0",
          "1",
        ]]);
    }
  }

  /**
   * Where a client sends a request: any replica; with membership changes, mostly one of the
   * configuration in force, as a client that learned it from a replica does.
   */
  pickReplica(): ReplicaId {
    if ((this.options.spares ?? 0) === 0 || this.rng.chance(0.3)) return this.rng.pick(this.ids);
    const config = this.config();
    return this.rng.pick([...config.voters, ...config.learners]);
  }

  // ---- membership changes ----

  /**
   * The operator: a few membership operations at random times while clients run and faults
   * happen: add spares (as voters to be, or as learners), promote learners, remove members.
   * Each is retried with its exactly-once tag until it gets an answer other than "try again".
   */
  scheduleMembership(): void {
    const spares = this.ids.filter((id) => !this.foundingIds.includes(id));
    if (spares.length === 0) return;
    this.operatorLeft = this.rng.int(3, 6);
    const next = () => {
      const config = this.config();
      const members = [...config.voters, ...config.learners];
      const unused = spares.filter((id) => !this.everAdded.has(id));
      const roll = this.rng.next();
      let argv: string[];
      if (unused.length > 0 && roll < 0.45) {
        const id = unused[0];
        this.everAdded.add(id);
        const a = simAddress(id);
        argv = ["__REPLICASET", "ADD", `${id}`, a.host, `${a.clientPort}`, `${a.peerPort}`];
        if (this.rng.chance(0.25) || this.options.learnerAdds) argv.push("LEARNER");
      } else if (config.learners.length > 0 && roll < 0.6) {
        argv = ["__REPLICASET", "PROMOTE", `${this.rng.pick([...config.learners])}`];
      } else {
        argv = ["__REPLICASET", "REMOVE", `${this.rng.pick(members)}`];
      }
      this.operatorSubmit(argv, () => {
        if (--this.operatorLeft > 0) this.queue.after(this.rng.int(200, 2_500), next);
      });
    };
    this.queue.at(this.rng.int(100, 1_000), next);
  }

  /** When a membership operation was last answered, or a promotion submitted. */
  lastMembershipChange = 0;
  /** An operator's membership operation is in flight (it may take effect at any moment). */
  operatorBusy = false;

  /** Spares the operator added once (a removed replica is not added back). */
  readonly everAdded = new Set<ReplicaId>();
  readonly operatorDone = new Map<number, () => void>();

  operatorSubmit(argv: string[], done: () => void): void {
    const seq = ++this.operatorSeq;
    this.trace(`OPERATOR ${argv.slice(1).join(" ")}`);
    this.operatorBusy = true;
    // A change in flight is a disturbance like a fault: a request it overtakes (say, a read at a
    // replica it removes) is excused from the progress bound.
    this.noteFaultChange();
    this.operatorTry(argv, seq, 1, done);
  }

  operatorTry(argv: string[], seq: number, tries: number, done: () => void): void {
    const id = this.nextOperatorId++;
    this.operatorRequests.set(id, { argv, tries, seq });
    this.operatorDone.set(id, done);
    const target = this.pickReplica();
    this.queue.after(ATTEMPT_TIMEOUT_MS, () => {
      if (this.operatorRequests.delete(id)) {
        this.operatorDone.delete(id);
        this.operatorRetry(argv, seq, tries, done);
      }
    });
    const cmd = { op: { argv, time: this.queue.now }, tag: { client: "operator", seq } };
    this.handle(target, { type: "request", id, cmd });
  }

  operatorRetry(argv: string[], seq: number, tries: number, done: () => void): void {
    if (tries >= MAX_ATTEMPTS) {
      this.membershipOps.push({ argv, result: "gave up" });
      this.operatorBusy = false;
      return done();
    }
    this.queue.after(this.rng.int(50, 300), () => this.operatorTry(argv, seq, tries + 1, done));
  }

  onOperatorReply(id: number, outcome: Outcome): void {
    const request = this.operatorRequests.get(id);
    const done = this.operatorDone.get(id);
    if (!request || !done) return; // a promotion, or an attempt already given up
    this.operatorRequests.delete(id);
    this.operatorDone.delete(id);
    if (!outcome.ok) return this.operatorRetry(request.argv, request.seq, request.tries, done);
    const result = JSON.stringify(outcome.result);
    this.membershipOps.push({ argv: request.argv, result });
    this.lastMembershipChange = this.queue.now;
    this.operatorBusy = false;
    this.trace(`OPERATOR ${request.argv.slice(1).join(" ")} -> ${result}`);
    done();
  }

  /** The view's leader promotes learners marked for it once they follow the view. */
  promoteCaughtUp(id: ReplicaId, replica: Replica): void {
    const config = this.stores.get(id)!.membership;
    if (config === undefined || config.promote.length === 0) return;
    for (const learner of replica.caughtUpLearners()) {
      if (!config.promote.includes(learner)) continue;
      const last = this.promotedAt.get(learner);
      if (last !== undefined && this.queue.now - last < 500) continue;
      this.promotedAt.set(learner, this.queue.now);
      this.lastMembershipChange = this.queue.now;
      this.noteFaultChange();
      const argv = ["__REPLICASET", "PROMOTE", `${learner}`];
      const requestId = this.nextOperatorId++;
      this.queue.after(
        0,
        () => this.handle(id, { type: "request", id: requestId, cmd: { op: { argv, time: 0 } } }),
      );
    }
  }

  retry(request: RequestRecord): void {
    if (request.plain || request.attempts >= MAX_ATTEMPTS) return this.finish(request);
    const next = this.pickReplica();
    this.queue.after(this.rng.int(20, 200), () => this.attempt(request, next));
  }

  finish(request: RequestRecord): void {
    const then = this.continuations.get(request);
    this.continuations.delete(request);
    then?.();
  }
}

/** Request ids of the operator and of promotions (client attempts count from 0). */
const OPERATOR_IDS = 1_000_000_000;

/** A simulated replica's address (only its uniqueness matters). */
function simAddress(id: ReplicaId) {
  return { id, host: "sim", clientPort: 7000 + id, peerPort: 8000 + id };
}

/**
 * A random register operation on `key` (a put writes `value`): 40% puts, 30% gets, 15% deletes,
 * 15% existence checks.
 */
export function registerOp(rng: Prng, key: string, value: string): ModelOp {
  const roll = rng.next();
  return roll < 0.4
    ? { kind: "put", key, value }
    : roll < 0.7
    ? { kind: "get", key }
    : roll < 0.85
    ? { kind: "delete", key }
    : { kind: "has", key };
}

/** The exactly-once tag of client `client`'s request number `n` (from 0). */
export function requestTag(client: number, n: number): ClientTag {
  return { client: `c${client}`, seq: n + 1 };
}

/** The simulated client history in the linearizability checker's form. */
export function toHistory(requests: RequestRecord[]): HistoryOp[] {
  return requests.flatMap((r) =>
    r.op === null ? [] : [{
      client: r.client,
      op: r.op.kind === "put"
        ? { kind: r.op.kind, key: r.op.key, value: r.op.value }
        : { kind: r.op.kind, key: r.op.key },
      call: r.call,
      ret: r.ret,
      result: r.ret === null || r.result === undefined
        ? undefined
        : modelResult(r.op.kind, r.result),
    }]
  );
}
