/**
 * One replica of the Lamport total-order multicast with majority-voted views, as a pure state
 * machine: `step(event) -> actions`, with no sockets, disk or timers inside.
 *
 * Normal case (DESIGN.md): a client request is stamped `(ts = clock, origin = self, seq)`, put in
 * the holdback queue and sent as an UPDATE to every other member. Every replica acknowledges what
 * it holds durably with a cumulative ack vector (per origin, the highest seq persisted and
 * synced), coalesced to one ACK per event-loop turn and repeated on every heartbeat. The head of
 * the holdback queue is delivered once every member's ack vector covers it: that ack was stamped
 * after the head and links are FIFO, so nothing that sorts before the head can still arrive.
 * Delivery applies the command to the state machine, gives it the next global log index, and the
 * origin replies. Reads (what the state machine calls a read) are not multicast: each takes the place (ts, self) and is
 * answered there after one probe round (see `#submitRead`).
 *
 * Views: the coordinator (the lowest-id live replica among those in the newest view) proposes a
 * new view of the largest group of live replicas connected both ways when membership should
 * change; it needs a majority of the configured replicas. A member whose acks stop making
 * progress is suspected like a silent one, and a healthy view ignores proposals from outside it
 * (see src/core/README.md, Liveness under permanent faults). Members stop the old view and FLUSH; the coordinator decides the new
 * view's starting log ({@link planView}) and sends each member what it lacks (NEWVIEW); once
 * every member holds its part (ACCEPTED), it COMMITs, members deliver and go normal. Sequence
 * numbers, holdback and acks are per view. A replica that cannot see a majority refuses.
 *
 * Durability: what must survive a restart is emitted as `persist` actions; acks and votes count
 * only once the host reports them `synced` (see src/core/README.md).
 *
 * Peer input is untrusted: every message is validated ({@link Replica.check}) before it touches
 * the state, and one that does not fit (a stranger, a sequence gap, a number out of range, an
 * install that does not continue our log, ...) is answered with a `reject` action instead: the
 * host closes that connection. The `invariant()`s left are for this replica's own logic.
 *
 * @module
 */
import { invariant } from "./assert.ts";
import { LamportClock } from "./clock.ts";
import { DeliveredLog } from "./delivered_log.ts";
import { FailureDetector } from "./failure_detector.ts";
import { ProgressMonitor } from "./progress_monitor.ts";
import { EarlyMessages } from "./early_messages.ts";
import { compareEntries, entryId, HoldbackQueue } from "./holdback.ts";
import { SeenEntries } from "./seen_entries.ts";
import { DivergenceDetector } from "./divergence.ts";
import { planView, ReportConflict } from "./view_change.ts";
import {
  foundingMembership,
  holdsMajority,
  isMember,
  type Membership,
  nextViewOf,
  proposerOf,
  sameIds,
  validReplicaId,
} from "./membership.ts";
import type {
  AckVector,
  Action,
  Command,
  DurableSnapshot,
  Entry,
  Event,
  FlushReport,
  Install,
  OpResult,
  PeerHealth,
  PeerMessage,
  PersistRecord,
  Recovered,
  ReplicaId,
  ReplicaOptions,
  ReplicaStatus,
  Snapshot,
  Stamp,
} from "./types.ts";

/** The replicated state machine the core applies delivered commands to. */
export interface StateMachine {
  /**
   * True when `cmd` only reads: it is answered locally at its place in the order (see
   * `#submitRead`) instead of being multicast. Operations are opaque to the core otherwise.
   */
  isRead(cmd: Command): boolean;
  /**
   * Applies one command in delivery order and returns its result. `view` is the view of the
   * delivered entry (absent for reads); membership changes depend on it.
   */
  apply(cmd: Command, view?: number): OpResult;
  /** Number of keys. */
  readonly size: number;
  /** Hash of the state; equal on replicas that applied the same commands. */
  digest(): string;
  /**
   * The whole state as it is now, JSON-compatible. It may be read (serialized) long after, any
   * number of times, while operations go on: it must stay the state of this moment (the key-value
   * store's is a copy-on-write view, not a copy).
   */
  snapshot(): unknown;
  /** Replaces the whole state with one taken by {@link snapshot}. */
  restore(state: unknown): void;
  /** Why `state` (received from a peer) could not be restored, or null when it can. */
  checkState?(state: unknown): string | null;
  /**
   * The configuration in force after the last applied operation (see `membership.ts`). Absent:
   * the founding configuration never changes.
   */
  readonly membership?: Membership;
  /**
   * The configuration in force once `cmd` is delivered in view `view` with `current` in force,
   * or null when `cmd` changes nothing (not a change, or a refused one). Pure: {@link apply}
   * reaches the same configuration from the same arguments. The core uses it to see what an
   * install it plans would change before anyone delivers it.
   */
  nextMembership?(current: Membership, cmd: Command, view: number): Membership | null;
  /** The configuration recorded in a {@link snapshot} state (undefined: the founding one). */
  membershipOf?(state: unknown): Membership | undefined;
}

/**
 * The largest view number, timestamp, sequence number, log index or probe round a peer may send.
 * Far beyond anything a cluster reaches, and far enough below 2^53 that our own arithmetic on
 * them (the next view number, the next clock tick) stays exact.
 */
const MAX_PROTOCOL_NUMBER = 2 ** 48;

/**
 * How far ahead of this replica's clock a received timestamp may be: 2^42, over a year of 100,000
 * clock ticks a second (a replica away for longer is refused by its peers and must be rebuilt).
 * Without it, one message stamped near {@link MAX_PROTOCOL_NUMBER} (from a peer that passed the
 * handshake, or a bit flip) pushes every clock of the cluster to the top of the range, after which
 * every message is out of range and refused: the cluster is wedged for good. With it, that takes
 * 64 such messages, each refused unless the clocks have caught up with the one before.
 */
const MAX_CLOCK_LEAD = 2 ** 42;

/**
 * The failure-related timings that follow from how long a silent peer takes to be suspected: a
 * request that finds no view waits two such periods before NOQUORUM; a view change is retried
 * after half of one. At least 10 ticks each.
 */
export function timingsForSuspicion(
  suspectTicks: number,
): Required<Pick<ReplicaOptions, "suspectTicks" | "noQuorumTicks" | "viewChangeTimeoutTicks">> {
  const ticks = Math.max(10, Math.round(suspectTicks));
  return {
    suspectTicks: ticks,
    noQuorumTicks: 2 * ticks,
    viewChangeTimeoutTicks: Math.max(10, Math.round(ticks / 2)),
  };
}

/** Deliveries between the checkpoints whose digests replicas compare, by default. */
export const DEFAULT_CHECKPOINT_EVERY = 1000;

/**
 * Learners are dropped from a view after this many failure timeouts of silence (members after
 * one), and a learner that has not reported being in the view makes a new view change only after
 * as long: no write waits for a learner, and a joiner restoring a large state is silent a while.
 */
const LEARNER_PATIENCE = 10;

/** Ticks a view change waits for learners' reports once every voter's arrived (3 heartbeats). */
const LEARNER_REPORT_TICKS = 30;

/** Deliveries between snapshots by default (also the default of entries retained in memory). */
export const DEFAULT_SNAPSHOT_EVERY = 10_000;

/** From this many keys on, snapshots are also spaced by the keys (by default). */
export const DEFAULT_SNAPSHOT_GROWS_FROM = 100_000;

/** From `snapshotGrowsFrom` keys on, snapshots are at least this % of the keys apart (default). */
export const DEFAULT_SNAPSHOT_LOG_PERCENT = 50;

/** Ticks of silence after which a peer is suspected, by default (1 s at the runtime's 10 ms). */
export const DEFAULT_SUSPECT_TICKS = 100;

const DEFAULTS = {
  heartbeatTicks: 10,
  requestTimeoutTicks: 500,
  ...timingsForSuspicion(DEFAULT_SUSPECT_TICKS),
  snapshotEvery: DEFAULT_SNAPSHOT_EVERY,
  snapshotGrowsFrom: DEFAULT_SNAPSHOT_GROWS_FROM,
  snapshotLogPercent: DEFAULT_SNAPSHOT_LOG_PERCENT,
  deliveryMarkEvery: 1000,
  deliveryMarkBytes: 1 << 20,
  catchUpEntries: 10_000,
  catchUpBytes: 16 << 20,
  // Eight operations of the default largest value (8 MiB), far from the heap's limit.
  retainBytes: 64 << 20,
};

/**
 * The bytes an entry carries, as the delivery marks and the catch-up rule count them: its
 * command's arguments (what makes a log record, a flush report or an install large).
 */
function entryBytes(entry: Entry): number {
  let n = 0;
  for (const arg of entry.cmd.op.argv) n += arg.length;
  return n;
}

/**
 * About what a delivered entry held in memory costs besides its arguments: the entry, its command
 * and argument array, and each string's header. The bound on the entries kept for lagging members
 * counts it, so that it also bounds many small entries (a huge `snapshotEvery`).
 */
const ENTRY_HEAP_BYTES = 256;

/** An entry's bytes as the bound on the retained log counts them (see {@link ENTRY_HEAP_BYTES}). */
function retainedBytes(entry: Entry): number {
  return ENTRY_HEAP_BYTES + entryBytes(entry);
}

type State = ReplicaStatus["state"];

/** Ticks after which waiting reads are probed for again. */
const PROBE_RETRY_TICKS = 5;

/** A client write of this replica's, in {@link Replica} `#pending` by {@link pendingKey}. */
interface PendingRequest {
  id: number;
  seq: number;
  cmd: Command;
  deadline: number;
}

/** A read answered locally at its place in the order, once a probe round confirms that place. */
interface LocalRead {
  id: number;
  cmd: Command;
  /** Its place in the total order is (ts, this replica). */
  ts: number;
  /** The probe round every other member must answer before the read may be applied. */
  round: number;
  deadline: number;
}

interface QueuedRequest {
  id: number;
  cmd: Command;
  deadline: number;
}

interface Coordination {
  view: number;
  members: ReplicaId[];
  learners: ReplicaId[];
  /**
   * Members and learners: everyone whose report the change waits for, and who receives the
   * install. Its acceptance waits for the voters among them only (see {@link Replica.#onAccepted}).
   */
  participants: ReplicaId[];
  reports: Map<ReplicaId, FlushReport>;
  /** When every voter's report had arrived (learners' may come a little later). */
  votersReportedAt?: number;
  installs?: Map<ReplicaId, Install>;
  accepted: Set<ReplicaId>;
}

/**
 * The record a replica persists when it accepts the install of `msg` (before it answers
 * ACCEPTED). Exported so that the host can encode a large one ahead (`encodingAhead`).
 */
export function acceptRecordOf(
  msg: Extract<PeerMessage, { type: "newview" }>,
): Extract<PersistRecord, { r: "accept" }> {
  return {
    r: "accept",
    view: msg.view,
    members: msg.members,
    learners: msg.learners ?? [],
    install: msg.install,
  };
}

/** A replica of the total-order multicast. */
export class Replica {
  readonly id: ReplicaId;
  /** The configuration the cluster was founded with (until the state machine records another). */
  readonly #founding: Membership;
  /**
   * A configuration newer than our delivered state's, seen in the install of a view change this
   * replica coordinated and abandoned (its members were no majority of it): proposals use it
   * until a view is installed here. Cleared on commit.
   */
  #configHint: Membership | undefined;
  /**
   * Where a replica outside the configuration announces itself (its heartbeats say it waits to
   * join): the config file's replicas.
   */
  readonly #seeds: readonly ReplicaId[];
  /**
   * Replicas outside our configuration that wrote to us (they count us in), until they are
   * silent for the failure timeout.
   */
  readonly #contacts = new Set<ReplicaId>();
  /** {@link #peers}, as of the last change of the configuration or the view. */
  #peerSet = new Set<ReplicaId>();
  #peerList: readonly ReplicaId[] = [];
  /** Replicas outside the configuration that sent us heartbeats (waiting to join), and when. */
  readonly #strangers = new Map<ReplicaId, number>();
  readonly #machine: StateMachine;
  readonly #opt: typeof DEFAULTS & { retainEntries: number };
  readonly #detector: FailureDetector;
  /** Members of the current view whose acks stopped making progress. */
  readonly #progress: ProgressMonitor;
  /** Normal messages of the promised view that arrived before its install (a learner's). */
  readonly #early = new EarlyMessages();
  /** Per learner of the installed view: since when it reports being in it (see #trackLearners). */
  readonly #inViewSince = new Map<ReplicaId, number>();
  readonly #divergence: DivergenceDetector;

  #now = 0;
  readonly #clock = new LamportClock();

  // ---- view ----
  #state: State = "joining";
  /** The installed view: the last one this replica was normal in (-1: none yet). */
  #view = -1;
  #members: ReplicaId[] = [];
  /** The learners of the installed view: they receive its entries and acks, never ack. */
  #learners: ReplicaId[] = [];
  /** Highest view number accepted in a proposal. */
  #promised = -1;
  /** Highest view number seen anywhere. */
  #highestSeen = -1;
  #installedAt = 0;
  #changeStartedAt = 0;
  #coordination: Coordination | undefined;
  #accepted:
    | { view: number; members: ReplicaId[]; learners?: ReplicaId[]; install: Install }
    | undefined;
  /**
   * The last view-change message sent to each peer (a learner's install and the commit behind
   * it), resent when its link comes back.
   */
  readonly #vcOutbox = new Map<ReplicaId, PeerMessage[]>();

  // ---- normal case, per view ----
  #nextSeq = 1;
  #holdback = new HoldbackQueue();
  /** Per origin: the highest seq received (contiguous; links are FIFO). Includes self. */
  #received = new Map<ReplicaId, number>();
  /** Per origin: the highest seq persisted here (what our acks may claim). Includes self. */
  #durable = new Map<ReplicaId, number>();
  /** Per other member: its latest ack vector. */
  #acks = new Map<ReplicaId, Map<ReplicaId, number>>();
  /** Own entries not yet acknowledged by every member, for resending after reconnects. */
  #unacked: Entry[] = [];
  #ackDirty = false;

  // ---- durability ----
  /** Persist actions emitted by this process, and how many of them the host reported durable. */
  #persisted = 0;
  #synced = 0;
  /** Work waiting for a persist action to be durable, in persist order. */
  #afterSyncQueue: { n: number; run: (out: Action[]) => void }[] = [];
  #sinceSnapshot = 0;
  /** Deliveries since the last delivery mark was persisted. */
  #sinceMark = 0;
  /** Bytes of the entries delivered since the last delivery mark (see {@link entryBytes}). */
  #sinceMarkBytes = 0;

  // ---- delivered state ----
  #last: Stamp | null = null;
  readonly #log: DeliveredLog;

  // ---- clients ----
  /** Own requests in the order, by `view:seq`, and the same in deadline order. */
  readonly #pending = new Map<string, PendingRequest>();
  /** Requests waiting for a normal view. */
  #queued: QueuedRequest[] = [];
  /** Local reads of the current view in stamp order, and the probe rounds confirming them. */
  #reads: LocalRead[] = [];
  #probeRound = 0;
  #probeNeeded = false;
  #probeSentAt = 0;
  /** Per other member: the stamp of its answer to the highest probe round it answered. */
  #probeAckTs = new Map<ReplicaId, number>();
  /** Per other member: the highest probe round it answered in the current view. */
  #probeAcked = new Map<ReplicaId, number>();

  /** Builds replica `options.id` of the cluster `options.replicas`, applying to `machine`. */
  constructor(options: ReplicaOptions, machine: StateMachine) {
    invariant(validReplicaId(options.id), `replica id ${options.id} is out of range`);
    invariant(options.replicas.every(validReplicaId), `replica ids ${options.replicas}`);
    // A replica that joins an existing cluster starts with no founding configuration: it learns
    // the one in force from the snapshot its first view gives it.
    this.#founding = foundingMembership(options.replicas);
    this.#seeds = [...new Set(options.seeds ?? options.replicas)].filter((r) => r !== options.id);
    this.id = options.id;
    this.#machine = machine;
    this.#opt = {
      heartbeatTicks: options.heartbeatTicks ?? DEFAULTS.heartbeatTicks,
      requestTimeoutTicks: options.requestTimeoutTicks ?? DEFAULTS.requestTimeoutTicks,
      suspectTicks: options.suspectTicks ?? DEFAULTS.suspectTicks,
      viewChangeTimeoutTicks: options.viewChangeTimeoutTicks ?? DEFAULTS.viewChangeTimeoutTicks,
      noQuorumTicks: options.noQuorumTicks ?? DEFAULTS.noQuorumTicks,
      // Members further behind than the last snapshot get a snapshot; keep what lies after it.
      retainEntries: options.retainEntries ?? (options.snapshotEvery || DEFAULTS.snapshotEvery),
      snapshotEvery: options.snapshotEvery ?? DEFAULTS.snapshotEvery,
      snapshotGrowsFrom: options.snapshotGrowsFrom ?? DEFAULTS.snapshotGrowsFrom,
      snapshotLogPercent: options.snapshotLogPercent ?? DEFAULTS.snapshotLogPercent,
      deliveryMarkEvery: options.deliveryMarkEvery ?? DEFAULTS.deliveryMarkEvery,
      deliveryMarkBytes: options.deliveryMarkBytes ?? DEFAULTS.deliveryMarkBytes,
      catchUpEntries: options.catchUpEntries ?? DEFAULTS.catchUpEntries,
      catchUpBytes: options.catchUpBytes ?? DEFAULTS.catchUpBytes,
      retainBytes: options.retainBytes ?? DEFAULTS.retainBytes,
    };
    const percent = this.#opt.snapshotLogPercent;
    invariant(Number.isFinite(percent) && percent >= 0, `snapshotLogPercent ${percent}`);
    this.#detector = new FailureDetector(this.id, this.#founding.voters, this.#opt.suspectTicks);
    this.#progress = new ProgressMonitor(this.#opt.suspectTicks);
    this.#divergence = new DivergenceDetector(
      this.id,
      options.checkpointEvery ?? DEFAULT_CHECKPOINT_EVERY,
    );
    this.#log = new DeliveredLog(this.#opt.retainEntries, this.#opt.retainBytes, retainedBytes);
    if (options.recovered) this.#recover(options.recovered);
    this.#refreshPeers();
  }

  /** Feeds one event; returns the actions to carry out, in order. */
  step(event: Event): Action[] {
    const out: Action[] = [];
    switch (event.type) {
      case "tick":
        this.#onTick(out);
        break;
      case "request":
        this.#onRequest(event.id, event.cmd, out);
        break;
      case "peer":
        for (const msg of event.msgs) {
          const refusal = this.check(event.from, msg);
          if (refusal !== null) {
            out.push({ type: "reject", peer: event.from, reason: refusal });
            break;
          }
          this.#onMessage(event.from, msg, out);
        }
        break;
      case "link-up":
        this.#onLinkUp(event.peer, out);
        break;
      case "peer-alive":
        if (event.from !== this.id && this.#knows(event.from)) {
          this.#detector.heard(event.from, this.#now);
        }
        break;
      case "flush":
        if (this.#ackDirty) this.#broadcastAck(out);
        if (this.#probeNeeded) this.#startProbeRound(out);
        break;
      case "synced":
        this.#onSynced(event.upTo, out);
        break;
      case "snapshot-due":
        // Only while normal: during a view change the log grows by an install (a whole state, for
        // a member that catches up), which is delivered as the view commits; then it is asked
        // again, and the snapshot holds the state rather than the install beside it.
        if (this.#opt.snapshotEvery > 0 && this.#state === "normal") this.#takeSnapshot(out);
        break;
    }
    this.#deliverReady(out);
    const diverged = this.#divergence.takeDivergence();
    if (diverged !== null) out.push({ type: "diverged", ...diverged });
    return out;
  }

  /** Where the replica stands, cheaply (no digest): its state, installed view and members. */
  get standing(): {
    state: ReplicaStatus["state"];
    view: number;
    members: readonly ReplicaId[];
    learners: readonly ReplicaId[];
  } {
    return {
      state: this.#state,
      view: this.#view,
      members: [...this.#members],
      learners: [...this.#learners],
    };
  }

  /**
   * How stale a local (READONLY) read may be, in ticks: how long ago this replica last heard
   * from the member of its view it heard from least recently (what it delivered is at most that
   * far behind what they had). Null while it is not normal in a view.
   */
  staleness(): number | null {
    if (this.#state !== "normal") return null;
    let worst = 0;
    for (const m of this.#others()) {
      worst = Math.max(worst, this.#detector.silence(m, this.#now) ?? 0);
    }
    return worst;
  }

  /**
   * The other replicas this one talks to now, ascending: the voters and learners of the
   * configuration it acts on, its installed view's members and learners (a member removed in this
   * view among them until the next view is installed), the seeds while it is outside the
   * configuration, and the replicas outside it that wrote to it and are not silent (see README,
   * "Talking across a change"). Read-only; the same array until the set is recomputed (after a change of the
   * configuration, the view or the contacts), so a host may compare it by identity.
   */
  get peers(): readonly ReplicaId[] {
    return this.#peerList;
  }

  /** The configuration in force at this replica's delivered state. */
  get membership(): Membership {
    return this.#machine.membership ?? this.#founding;
  }

  /**
   * Replicas outside the configuration that sent heartbeats within the failure timeout: they
   * were started to join and wait to be added.
   */
  waitingToJoin(): ReplicaId[] {
    const config = this.membership;
    return [...this.#strangers].filter(([id, at]) =>
      !isMember(config, id) && this.#now - at <= this.#opt.suspectTicks
    ).map(([id]) => id).sort((a, b) => a - b);
  }

  /**
   * Learners of the view this replica leads that are normal in it (they hold its whole starting
   * log and follow it) and have been for a failure timeout, speaking steadily (heard from within
   * two heartbeats): those the configuration wants promoted may be now. A joiner that just
   * restored a large snapshot is busy for a while after it installs the view, and its promotion
   * is a view change that waits for it, holding every write meanwhile.
   */
  caughtUpLearners(): ReplicaId[] {
    if (!this.leads) return [];
    return this.#learners.filter((l) => {
      const since = this.#inViewSince.get(l);
      const silence = this.#detector.silence(l, this.#now);
      return since !== undefined && this.#now - since >= this.#opt.suspectTicks &&
        silence !== null && silence <= 2 * this.#opt.heartbeatTicks;
    });
  }

  /** Notes, each tick, since when each learner of the view reports being in it. */
  #trackLearners(): void {
    for (const l of this.#inViewSince.keys()) {
      if (!this.#learners.includes(l) || this.#detector.reportedView(l) !== this.#view) {
        this.#inViewSince.delete(l);
      }
    }
    if (this.#state !== "normal") return;
    for (const l of this.#learners) {
      if (!this.#inViewSince.has(l) && this.#detector.reportedView(l) === this.#view) {
        this.#inViewSince.set(l, this.#now);
      }
    }
  }

  /**
   * True while this replica is normal in a view whose lowest id it is: the one member that sends
   * the operations no client asks for (the expiry sweep), so that they are not sent N times.
   */
  get leads(): boolean {
    return this.#state === "normal" && Math.min(...this.#members) === this.id;
  }

  /** A snapshot of the replica's state. */
  status(): ReplicaStatus {
    return {
      id: this.id,
      view: this.#view,
      state: this.#state,
      members: [...this.#members],
      learners: [...this.#learners],
      role: this.membership.voters.includes(this.id)
        ? "voter"
        : this.membership.learners.includes(this.id)
        ? "learner"
        : "none",
      voters: [...this.membership.voters],
      clock: this.#clock.value,
      delivered: this.#delivered,
      holdback: this.#holdback.size,
      unacked: this.#unacked.length,
      pending: this.#pending.size + this.#queued.length + this.#reads.length,
      keys: this.#machine.size,
      digest: this.#machine.digest(),
    };
  }

  /**
   * How this replica sees each other configured replica: silence and acknowledgement lag.
   * Read-only (monitoring).
   */
  peerHealth(): PeerHealth[] {
    const ownSent = this.#state === "normal" ? this.#nextSeq - 1 : 0;
    return this.#peerList.map((id) => ({
      id,
      silentTicks: this.#detector.silence(id, this.#now),
      ackedBehind: this.#state === "normal" && this.#members.includes(id)
        ? Math.max(0, ownSent - this.#ackOf(id, this.id))
        : null,
    }));
  }

  // ---- validation of peer input ----

  /**
   * Why `msg` from peer `from` must not be processed now, or null when it may. Pure: looks at the
   * state, changes nothing. {@link step} checks every peer message with it and turns a refusal
   * into a `reject` action; a message that passes cannot break an invariant of the core.
   */
  check(from: ReplicaId, msg: PeerMessage): string | null {
    if (from === this.id || !validReplicaId(from)) {
      return `message from ${from}, which cannot be another replica`;
    }
    const ts = msg.type === "update" ? msg.entry.ts : msg.ts;
    const view = msg.type === "update" ? msg.entry.view : msg.view;
    const bad = number(ts, "ts", 0) ?? number(view, "view", -1);
    if (bad !== null) return `${msg.type}: ${bad}`;
    if (ts > this.#clock.value + MAX_CLOCK_LEAD) {
      return `${msg.type}: ts ${ts} is more than 2^42 ahead of this replica's clock ` +
        `${this.#clock.value}`;
    }
    const problem = this.#checkMessage(from, msg);
    return problem === null ? null : `${msg.type} of view ${view}: ${problem}`;
  }

  #checkMessage(from: ReplicaId, msg: PeerMessage): string | null {
    switch (msg.type) {
      case "update":
        return this.#checkUpdate(from, msg.entry);
      case "ack": {
        const bad = number(msg.promised, "promised", -1);
        if (bad !== null) return bad;
        for (const [origin, seq] of Object.entries(msg.acks)) {
          const o = Number(origin);
          if (!validReplicaId(o)) return `ack for ${origin}, not a replica id`;
          const badSeq = number(seq, `acks[${origin}]`, 0);
          if (badSeq !== null) return badSeq;
          const inView = this.#servesViewWith(from, msg.view) ||
            this.#servesLearner(from, msg.view);
          if (o === this.id && inView && seq >= this.#nextSeq) {
            return `acknowledges our seq ${seq}, we sent up to ${this.#nextSeq - 1}`;
          }
        }
        if (msg.hears !== undefined) {
          if (new Set(msg.hears).size !== msg.hears.length) return `hears ${msg.hears} twice`;
          const stranger = msg.hears.find((r) => !validReplicaId(r) || r === from);
          if (stranger !== undefined) return `hears ${stranger}, not another replica`;
        }
        return null;
      }
      case "probe":
        return number(msg.round, "round", 1);
      case "probe-ack":
        if (msg.round > this.#probeRound || msg.round < 1) {
          return `answers probe round ${msg.round}, we sent up to ${this.#probeRound}`;
        }
        return null;
      case "checkpoint":
        // The digest is the state machine's and opaque here: only its size is bounded.
        return number(msg.index, "index", 1) ??
          (msg.digest.length > 0 && msg.digest.length <= 128 ? null : "digest of a bad length");
      case "propose":
        return this.#checkProposal(from, msg.view, msg.members, msg.learners) ??
          number(msg.delivered, "delivered", 0);
      case "flush":
        return this.#checkReport(msg.report);
      case "newview":
        return this.#checkProposal(from, msg.view, msg.members, msg.learners) ??
          this.#checkInstall(msg.install, "install") ?? this.#checkNewViewFits(msg);
      case "accepted": {
        const c = this.#coordination;
        if (c && c.view === msg.view && !c.participants.includes(from)) {
          return `replica ${from} is not a member of the view`;
        }
        return null;
      }
      case "commit":
        return proposerOf(msg.view) === from
          ? null
          : `replica ${from} did not propose view ${msg.view}`;
    }
  }

  /**
   * A proposal's own consistency. Whether its members are a majority is the coordinator's check
   * (against the configuration its install reaches, which may be newer than ours): a member that
   * lags behind a membership change must still take part in the view that brings it up to date.
   */
  #checkProposal(
    from: ReplicaId,
    view: number,
    members: readonly ReplicaId[],
    learners: readonly ReplicaId[] | undefined,
  ): string | null {
    if (proposerOf(view) !== from) return `replica ${from} cannot propose view ${view}`;
    const everyone = [...members, ...(learners ?? [])];
    if (new Set(everyone).size !== everyone.length) return `members ${everyone} repeat an id`;
    const stranger = everyone.find((m) => !validReplicaId(m));
    if (stranger !== undefined) return `member ${stranger} is not a replica id`;
    if (!members.includes(from)) return `the proposer ${from} is not a member`;
    return null;
  }

  /** An entry's own fields: numbers in range, a configured origin. */
  #checkEntryFields(e: Entry, what: string): string | null {
    const bad = number(e.seq, "seq", 1);
    return bad !== null ? `${what}: ${bad}` : this.#checkStamp(e, what);
  }

  #checkUpdate(from: ReplicaId, entry: Entry): string | null {
    const bad = this.#checkEntryFields(entry, "entry");
    if (bad !== null) return bad;
    if (entry.origin !== from) return `replica ${from} relayed an update of ${entry.origin}`;
    // Only an update of the view we serve with `from` is processed (else it is ignored).
    if (!this.#servesViewWith(from, entry.view)) return null;
    const have = this.#received.get(from) ?? 0;
    // A learner missed entries (its link dropped, and the members acked them meanwhile): it
    // leaves the view and catches up in the next one (see #onNormalMessage), no fault of `from`.
    if (entry.seq > have + 1 && !this.#learners.includes(this.id)) {
      return `gap: got seq ${entry.seq} after ${have}`;
    }
    const last = this.#last;
    if (
      entry.seq === have + 1 && last !== null && last.view === entry.view &&
      compareEntries(last, entry) >= 0
    ) {
      return `entry (${entry.ts},${entry.origin}) sorts before (${last.ts},${last.origin}), ` +
        `which was delivered already`;
    }
    return null;
  }

  #checkStamp(stamp: Stamp | null, what: string): string | null {
    if (stamp === null) return null;
    const bad = number(stamp.view, "view", 0) ?? number(stamp.ts, "ts", 0);
    if (bad !== null) return `${what}: ${bad}`;
    if (!validReplicaId(stamp.origin)) {
      return `${what}: origin ${stamp.origin} is not a replica id`;
    }
    return null;
  }

  #checkSnapshot(s: Snapshot, what: string): string | null {
    const bad = number(s.index, "index", 0) ?? this.#checkStamp(s.last, `${what}.last`);
    if (bad !== null) return `${what}: ${bad}`;
    const state = this.#machine.checkState?.(s.state) ?? null;
    return state === null ? null : `${what}: state: ${state}`;
  }

  #checkEntries(from: number, entries: readonly Entry[], what: string): string | null {
    const bad = number(from, "from", 1) ?? number(from + entries.length, "end", 1);
    if (bad !== null) return `${what}: ${bad}`;
    for (let i = 0; i < entries.length; i++) {
      const problem = this.#checkEntryFields(entries[i], `${what}[${i}]`);
      if (problem !== null) return problem;
    }
    return null;
  }

  #checkInstall(install: Install, what: string): string | null {
    const bad = this.#checkEntries(install.from, install.entries, `${what}.entries`);
    if (bad !== null || !install.snapshot) return bad;
    if (install.from !== install.snapshot.index + 1) {
      return `${what} starts at ${install.from}, after a snapshot at ${install.snapshot.index}`;
    }
    return this.#checkSnapshot(install.snapshot, `${what}.snapshot`);
  }

  /** A NEWVIEW we would accept must continue our log (or start from a snapshot). */
  #checkNewViewFits(msg: Extract<PeerMessage, { type: "newview" }>): string | null {
    // Not accepted, so not checked, whatever it holds: as #onNewView decides. (A view installed
    // here already may have its install resent, kept by a coordinator that missed our ACCEPTED,
    // after we delivered past its start: no fault of the sender.)
    if (
      msg.view !== this.#promised || this.#state === "normal" || msg.view <= this.#view ||
      msg.install.snapshot
    ) {
      return null;
    }
    // Starting past our log's end is no fault of the sender: we crashed after our report and
    // recovered less than we had delivered (delivery is redone, not logged). That NEWVIEW is
    // ignored (see #onNewView); the change times out and is proposed again with a new report.
    if (msg.install.from <= this.#delivered) {
      return `install starts at ${msg.install.from}, we delivered ${this.#delivered}`;
    }
    return null;
  }

  #checkReport(r: FlushReport): string | null {
    const bad = number(r.normalView, "normalView", -1) ?? number(r.delivered, "delivered", 0) ??
      this.#checkStamp(r.last, "report.last") ??
      this.#checkEntries(r.log.from, r.log.entries, "report.log") ??
      this.#checkEntries(1, r.holdback, "report.holdback");
    if (bad !== null) return bad;
    const stray = r.holdback.find((e) => e.view !== r.normalView);
    if (stray) return `report holds back an entry of view ${stray.view}, not ${r.normalView}`;
    if (r.log.entries.length > 0 && r.log.from + r.log.entries.length - 1 !== r.delivered) {
      return `report's log ${r.log.from}+${r.log.entries.length} does not end at ${r.delivered}`;
    }
    for (let i = 0; i < r.log.entries.length; i++) {
      const ours = this.#log.get(r.log.from + i);
      if (ours !== undefined && entryId(ours) !== entryId(r.log.entries[i])) {
        return `report's log disagrees with ours at index ${r.log.from + i}`;
      }
    }
    if (r.snapshot) {
      if (r.snapshot.index !== r.delivered) {
        return `report's snapshot is at ${r.snapshot.index}, not at ${r.delivered}`;
      }
      const problem = this.#checkSnapshot(r.snapshot, "report.snapshot");
      if (problem !== null) return problem;
    }
    if (r.accepted) {
      return number(r.accepted.view, "accepted.view", 0) ??
        this.#checkInstall(r.accepted.install, "report.accepted.install");
    }
    return null;
  }

  // ---- events ----

  #onTick(out: Action[]): void {
    this.#now += 1;
    // A probe may meet a member that is not yet normal in this view, or a link that is down:
    // while reads wait, probe again (any later round confirms them too).
    if (this.#reads.length > 0 && this.#now - this.#probeSentAt >= PROBE_RETRY_TICKS) {
      this.#probeNeeded = true;
    }
    if (this.#now % this.#opt.heartbeatTicks === 0) {
      this.#forgetSilentContacts();
      this.#broadcastAck(out);
      const cp = this.#divergence.latest();
      if (cp !== null && this.#state === "normal") {
        const msg: PeerMessage = {
          type: "checkpoint",
          view: this.#view,
          ts: this.#clock.tick(),
          ...cp,
        };
        this.#sendTo(this.#receivers(), msg, out);
      }
    }
    if (this.#state === "normal") {
      this.#progress.update(this.#now, this.#others(), this.#received, (m, o) => this.#ackOf(m, o));
    }
    this.#trackLearners();
    this.#expireRequests(out);
    this.#checkQuorum(out);
    this.#driveViewChange(out);
  }

  #onRequest(id: number, cmd: Command, out: Action[]): void {
    if (cmd.local && this.#state === "normal" && this.#machine.isRead(cmd)) {
      // READONLY: this replica's delivered state as it is, unconfirmed (see `staleness`).
      const result = this.#machine.apply({ op: cmd.op, tag: cmd.tag });
      out.push({ type: "reply", id, outcome: { ok: true, result } });
      return;
    }
    if (!this.#machine.isRead(cmd) && this.#refusesWrites()) {
      out.push(readOnly(id));
    } else if (this.#state === "normal") {
      this.#submit(id, cmd, out);
    } else if (this.#quorumLost()) {
      out.push(noQuorum(id, "this replica cannot reach a majority of the cluster"));
    } else {
      this.#queued.push({ id, cmd, deadline: this.#now + this.#opt.noQuorumTicks });
    }
  }

  #submit(id: number, cmd: Command, out: Action[]): void {
    if (this.#machine.isRead(cmd)) return this.#submitRead(id, cmd);
    // Requests queued while no view served are submitted here once one does.
    if (this.#refusesWrites()) {
      out.push(readOnly(id));
      return;
    }
    if (!this.#members.includes(this.id)) {
      // A voter catching up as a learner: the next view makes it a member (as while no view
      // serves, the write waits for it, up to the same deadline).
      this.#queued.push({ id, cmd, deadline: this.#now + this.#opt.noQuorumTicks });
      return;
    }
    const entry: Entry = {
      view: this.#view,
      ts: this.#clock.tick(),
      origin: this.id,
      seq: this.#nextSeq++,
      cmd,
    };
    // Deadlines only grow, so #pending (insertion order) is in deadline order.
    this.#pending.set(pendingKey(entry), {
      id,
      seq: entry.seq,
      cmd,
      deadline: this.#now + this.#opt.requestTimeoutTicks,
    });
    this.#accept(entry, out);
    const receivers = this.#receivers();
    // Kept for resending until every receiver acknowledged it (see #mergeAcks); with none (a
    // replica alone in its view) no ack ever comes, and it would be kept for good.
    if (receivers.length > 0) this.#unacked.push(entry);
    const msg: PeerMessage = { type: "update", entry };
    this.#sendTo(receivers, msg, out);
  }

  // ---- local reads ----

  /**
   * A read takes the place (ts, self) in the total order without being multicast. It is applied
   * when every entry ordered before it has been delivered here and every other member of the
   * view has answered a probe sent after it arrived: their answers are stamped after it and links
   * are FIFO, so nothing ordered before it can still arrive, and a member that left this view
   * does not answer. Nothing after it is delivered before it is applied.
   */
  #submitRead(id: number, cmd: Command): void {
    this.#reads.push({
      id,
      cmd,
      ts: this.#clock.tick(),
      round: this.#probeRound + 1,
      deadline: this.#now + this.#opt.requestTimeoutTicks,
    });
    this.#probeNeeded = true;
  }

  #startProbeRound(out: Action[]): void {
    this.#probeNeeded = false;
    this.#probeSentAt = this.#now;
    this.#probeRound += 1;
    const msg: PeerMessage = {
      type: "probe",
      view: this.#view,
      ts: this.#clock.tick(),
      round: this.#probeRound,
    };
    this.#sendTo(this.#others(), msg, out);
  }

  #readConfirmed(read: LocalRead): boolean {
    for (const p of this.#others()) if ((this.#probeAcked.get(p) ?? 0) < read.round) return false;
    return true;
  }

  /**
   * Leaves the current view's service (or the wait for one) for `state`. Reads not yet applied
   * have no place any more: they wait for the next view like any queued request.
   */
  #stopServing(state: Exclude<State, "normal">): void {
    this.#state = state;
    this.#changeStartedAt = this.#now;
    for (const read of this.#reads) {
      this.#queued.push({
        id: read.id,
        cmd: read.cmd,
        deadline: this.#now + this.#opt.noQuorumTicks,
      });
    }
    this.#reads = [];
  }

  #onMessage(from: ReplicaId, msg: PeerMessage, out: Action[]): void {
    invariant(validReplicaId(from) && from !== this.id, `message from stranger ${from}`);
    this.#clock.observe(msg.type === "update" ? msg.entry.ts : msg.ts);
    if (!this.#knows(from)) {
      // Outside the configuration and the views: a replica started to join (or one removed that
      // has not learnt it yet). Its heartbeats say it is there; a proposal from it may still be
      // one we must follow (we may be the one behind), so those go on below.
      if (msg.type === "ack") this.#strangers.set(from, this.#now);
      // Whoever writes to us counts us in: one of us is behind a membership change (we are
      // joining, or we restarted with an older configuration, or it did). Talk back, so that
      // each side sees the other alive and connected and the coordinator can take both in.
      this.#contacts.add(from);
      this.#refreshPeers();
      if (
        isMember(this.#config(), this.id) && msg.type !== "ack" && msg.type !== "propose" &&
        msg.type !== "newview" && msg.type !== "commit"
      ) return;
    }
    const view = msg.type === "update" ? msg.entry.view : msg.view;
    this.#highestSeen = Math.max(this.#highestSeen, view);
    if (msg.type === "ack") this.#highestSeen = Math.max(this.#highestSeen, msg.promised);
    if (msg.type === "ack") this.#detector.heard(from, this.#now, msg.view, msg.hears);
    else this.#detector.heard(from, this.#now);
    switch (msg.type) {
      case "update":
      case "ack":
        return this.#onNormalMessage(from, msg, out);
      case "probe":
        if (this.#servesViewWith(from, msg.view) || this.#servesLearner(from, msg.view)) {
          const answer: PeerMessage = {
            type: "probe-ack",
            view: this.#view,
            ts: this.#clock.tick(),
            round: msg.round,
          };
          out.push({ type: "send", to: from, msg: answer });
        }
        return;
      case "probe-ack":
        if (this.#servesViewWith(from, msg.view)) {
          if (msg.round > (this.#probeAcked.get(from) ?? 0)) this.#probeAckTs.set(from, msg.ts);
          this.#probeAcked.set(from, Math.max(this.#probeAcked.get(from) ?? 0, msg.round));
        }
        return;
      case "checkpoint":
        if (this.#servesViewWith(from, msg.view)) {
          this.#divergence.report(from, msg.index, msg.digest, this.#members);
        }
        return;
      case "propose":
        return this.#onPropose(from, msg, out);
      case "flush":
        return this.#onFlush(from, msg.view, msg.report, out);
      case "newview":
        return this.#onNewView(from, msg, out);
      case "accepted":
        return this.#onAccepted(from, msg.view, out);
      case "commit":
        if (this.#accepted?.view === msg.view) this.#commit(out);
        return;
    }
  }

  #onNormalMessage(
    from: ReplicaId,
    msg: Extract<PeerMessage, { type: "update" | "ack" }>,
    out: Action[],
  ): void {
    const view = msg.type === "update" ? msg.entry.view : msg.view;
    // The view we promised went normal before its install reached us (its coordinator does not
    // wait for learners): keep its messages in order until we install it.
    if (
      this.#state !== "normal" && view === this.#promised && this.#accepted?.view !== view &&
      view > this.#view
    ) {
      return this.#early.hold(view, from, msg);
    }
    // A normal message of the view we accepted means that view was committed.
    if (this.#accepted?.view === view && this.#accepted.members.includes(from)) this.#commit(out);
    // The majority moved on without us: stop serving from this view.
    if (this.#state === "normal" && view > this.#view) this.#stopServing("joining");
    if (msg.type === "ack" && this.#servesLearner(from, view)) {
      // A learner's acks count for nothing but what we resend it after its link comes back
      // (and when its entries may be forgotten): a lost update would break its order.
      return this.#mergeAcks(from, msg.acks);
    }
    if (!this.#servesViewWith(from, view)) return;
    if (msg.type === "update") {
      const { entry } = msg;
      invariant(entry.origin === from, `replica ${from} relayed an update of ${entry.origin}`);
      const have = this.#received.get(from) ?? 0;
      if (entry.seq <= have) return; // duplicate after a resend
      if (entry.seq > have + 1 && this.#learners.includes(this.id)) {
        this.#stopServing("joining");
        return;
      }
      invariant(
        entry.seq === have + 1,
        () => `gap from ${from}: got seq ${entry.seq} after ${have} (links must be FIFO)`,
      );
      this.#accept(entry, out);
    } else {
      this.#mergeAcks(from, msg.acks);
    }
  }

  #onLinkUp(peer: ReplicaId, out: Action[]): void {
    if (peer === this.id || !this.#knows(peer)) return;
    for (const msg of this.#vcOutbox.get(peer) ?? []) out.push({ type: "send", to: peer, msg });
    if (this.#state === "normal" && this.#receivers().includes(peer)) {
      const acked = this.#ackOf(peer, this.id);
      for (const entry of this.#unacked) {
        if (entry.seq > acked) out.push({ type: "send", to: peer, msg: { type: "update", entry } });
      }
    }
    out.push({ type: "send", to: peer, msg: this.#ackMessage() });
  }

  // ---- ordering and delivery (normal case) ----

  #accept(entry: Entry, out: Action[]): void {
    const last = this.#last;
    invariant(
      last === null || last.view !== entry.view || compareEntries(last, entry) < 0,
      () =>
        `entry (${entry.ts},${entry.origin}) arrived after (${last?.ts},${last?.origin}) was ` +
        `delivered in view ${entry.view}: total order broken`,
    );
    this.#received.set(entry.origin, entry.seq);
    this.#holdback.push(entry);
    const n = this.#persist({ r: "entry", entry }, out);
    this.#afterSync(n, out, () => {
      if (this.#state !== "normal" || entry.view !== this.#view) return;
      if ((this.#durable.get(entry.origin) ?? 0) < entry.seq) {
        this.#durable.set(entry.origin, entry.seq);
        this.#ackDirty = true;
      }
    });
  }

  #mergeAcks(from: ReplicaId, acks: AckVector): void {
    const known = this.#acks.get(from);
    invariant(known !== undefined, `no ack slot for ${from}`);
    for (const [origin, seq] of Object.entries(acks)) {
      const o = Number(origin);
      if ((known.get(o) ?? 0) < seq) known.set(o, seq);
    }
    let ownAcked = Infinity;
    for (const p of this.#receivers()) ownAcked = Math.min(ownAcked, this.#ackOf(p, this.id));
    let drop = 0;
    while (drop < this.#unacked.length && this.#unacked[drop].seq <= ownAcked) drop++;
    if (drop > 0) this.#unacked = this.#unacked.slice(drop);
  }

  /** Highest seq of `origin` that `member` is known to hold durably in the current view. */
  #ackOf(member: ReplicaId, origin: ReplicaId): number {
    if (member === this.id) return this.#durable.get(origin) ?? 0;
    return this.#acks.get(member)?.get(origin) ?? 0;
  }

  #deliverReady(out: Action[]): void {
    if (this.#state !== "normal") return;
    const learner = !this.#members.includes(this.id);
    for (;;) {
      const head = this.#holdback.peek();
      const read = learner ? undefined : this.#reads[0];
      if (
        read && (head === undefined || compareEntries({ ts: read.ts, origin: this.id }, head) < 0)
      ) {
        // A read holds its place: nothing after it is delivered before it is answered.
        if (!this.#readConfirmed(read)) break;
        this.#reads.shift();
        const result = this.#machine.apply(read.cmd);
        out.push({ type: "reply", id: read.id, outcome: { ok: true, result } });
        continue;
      }
      if (head === undefined) break;
      let ready = true;
      for (const m of this.#members) if (this.#ackOf(m, head.origin) < head.seq) ready = false;
      if (!ready) break;
      this.#holdback.pop();
      this.#deliver(head, out);
    }
    if (learner) this.#answerLearnerReads(out);
    const marks = this.#opt.deliveryMarkEvery;
    // Also by bytes: a few hundred large entries after the last mark would otherwise come back
    // as held-back entries in every flush report after a restart (tens of MB each time).
    if (
      marks > 0 && this.#last &&
      (this.#sinceMark >= marks || this.#sinceMarkBytes >= this.#opt.deliveryMarkBytes)
    ) {
      // Not waited for: a mark lost in a crash only makes recovery re-deliver less.
      this.#sinceMark = 0;
      this.#sinceMarkBytes = 0;
      this.#persist(
        { r: "delivered", view: this.#view, index: this.#delivered, last: this.#last },
        out,
      );
    }
    const every = this.#opt.snapshotEvery;
    // A snapshot costs in proportion to the state: with many keys, take one only after as many
    // deliveries as a share of the keys (half by default), so that its cost per write stays
    // bounded however large the state grows (as Redis rewrites its append-only file once it
    // doubled). The share is also what a restart re-delivers at most after the snapshot: a
    // smaller one restarts faster and snapshots more often.
    const size = this.#machine.size;
    const share = (size * this.#opt.snapshotLogPercent) / 100;
    const apart = size >= this.#opt.snapshotGrowsFrom ? Math.max(every, share) : every;
    if (every > 0 && this.#sinceSnapshot >= apart) this.#takeSnapshot(out);
  }

  /** Emits a durable snapshot of this moment; the deliveries until the next are counted anew. */
  #takeSnapshot(out: Action[]): void {
    this.#sinceSnapshot = 0;
    out.push({ type: "snapshot", snapshot: this.#durableSnapshot() });
  }

  /**
   * A learner's reads. Writes complete without a learner's ack, so its clock may lag behind one
   * that completed before a read began: the read's own stamp proves nothing. Its place is taken
   * from the members instead: P = (the smallest stamp of their answers to a probe sent after
   * the read arrived, this replica). Every write that completed before the read began was acked
   * by every member, so each answer is stamped after it: P follows it. Each member's entries
   * stamped before its answer arrived before it (FIFO links) and later ones sort after P. So once
   * every member answered and the holdback's head sorts after P, everything before P is
   * delivered here, and the state answers the read (it may include later entries too: those
   * were already in the order while the read waited, so it can be placed after them).
   */
  #answerLearnerReads(out: Action[]): void {
    while (this.#reads.length > 0) {
      const read = this.#reads[0];
      if (!this.#readConfirmed(read)) return;
      let place = Infinity;
      for (const m of this.#others()) place = Math.min(place, this.#probeAckTs.get(m) ?? 0);
      const head = this.#holdback.peek();
      if (head !== undefined && compareEntries(head, { ts: place, origin: this.id }) < 0) return;
      this.#reads.shift();
      const result = this.#machine.apply(read.cmd);
      out.push({ type: "reply", id: read.id, outcome: { ok: true, result } });
    }
  }

  /** Applies `entry` as the next log index and answers its client if it is ours. */
  #deliver(entry: Entry, out: Action[]): void {
    this.#last = { view: entry.view, ts: entry.ts, origin: entry.origin };
    this.#log.append(entry);
    const config = this.#machine.membership;
    const result = this.#machine.apply(entry.cmd, entry.view);
    if (this.#machine.membership !== config) this.#refreshPeers();
    out.push({ type: "deliver", index: this.#delivered, entry, result });
    this.#divergence.delivered(this.#delivered, () => this.#machine.digest(), this.#members);
    this.#sinceSnapshot += 1;
    this.#sinceMark += 1;
    this.#sinceMarkBytes += entryBytes(entry);
    // (Recovery re-delivers millions of our own entries with nobody waiting: no key to build.)
    if (entry.origin === this.id && this.#pending.size !== 0) {
      const key = pendingKey(entry);
      const request = this.#pending.get(key);
      if (request) {
        this.#pending.delete(key);
        out.push({ type: "reply", id: request.id, outcome: { ok: true, result } });
      }
    }
  }

  // ---- clients: deadlines and quorum ----

  #expireRequests(out: Action[]): void {
    for (const [key, request] of this.#pending) {
      if (request.deadline > this.#now) break;
      this.#pending.delete(key);
      const missing = this.#others().filter((p) => this.#ackOf(p, this.id) < request.seq);
      out.push(unknown(
        request.id,
        `not delivered within ${this.#opt.requestTimeoutTicks} ticks` +
          (missing.length > 0 ? ` (no acknowledgement from replica ${missing.join(", ")})` : ""),
      ));
    }
    while (this.#queued.length > 0 && this.#queued[0].deadline <= this.#now) {
      const request = this.#queued.shift()!;
      out.push(noQuorum(request.id, "no view with a majority was formed in time"));
    }
    while (this.#reads.length > 0 && this.#reads[0].deadline <= this.#now) {
      const read = this.#reads.shift()!;
      out.push(
        noQuorum(read.id, `read not confirmed within ${this.#opt.requestTimeoutTicks} ticks`),
      );
    }
  }

  /** True once this replica has heard from less than a majority for a whole timeout. */
  #quorumLost(): boolean {
    return this.#now > this.#opt.suspectTicks &&
      !holdsMajority(this.#alive(), this.#config());
  }

  #checkQuorum(out: Action[]): void {
    if (!this.#quorumLost()) return;
    for (const request of this.#pending.values()) {
      out.push(unknown(request.id, "lost contact with the majority before it was delivered"));
    }
    this.#pending.clear();
    // Nothing more can be delivered here; stop until a majority takes us back.
    if (this.#state === "normal") this.#stopServing("joining");
    for (const request of this.#queued) {
      out.push(noQuorum(request.id, "this replica cannot reach a majority of the cluster"));
    }
    this.#queued = [];
  }

  // ---- view change ----

  /** Live replicas ordered by preference as coordinator: newest view first, then lowest id. */
  #candidates(): ReplicaId[] {
    const viewOf = (r: ReplicaId) =>
      r === this.id ? (this.#state === "normal" ? this.#view : -1) : this.#detector.reportedView(r);
    // Within the view this replica serves in, its members come before its learners: a voter
    // taken in as a learner to catch up cannot coordinate (a healthy view ignores outsiders).
    const learner = (r: ReplicaId) =>
      this.#state === "normal" && viewOf(r) === this.#view && this.#learners.includes(r) ? 1 : 0;
    const voters = this.#config().voters;
    return this.#alive().filter((r) => voters.includes(r))
      .sort((a, b) => viewOf(b) - viewOf(a) || learner(a) - learner(b) || a - b);
  }

  /**
   * Every replica believed alive, self included, ascending: heard from within the timeout and,
   * if a member of the view this replica is normal in, not stalled (its acks keep up).
   */
  #alive(): ReplicaId[] {
    const alive = this.#detector.alive(this.#now);
    if (this.#state !== "normal") return alive;
    return alive.filter((r) => !this.#progress.stalled(r, this.#now));
  }

  /** True while this replica is normal in a view whose every member is alive (see #alive). */
  #viewHealthy(): boolean {
    if (this.#state !== "normal") return false;
    const alive = this.#alive();
    return this.#members.every((m) => alive.includes(m));
  }

  /**
   * The replicas this one would form a view of: the largest group of alive replicas, itself
   * included, connected both ways pairwise (by silence here, by the peers' reports of whom they
   * hear), keeping the current members on a tie. So the two ends of a link that works one way
   * only are never members together, and a replica left out for it is not taken back while that
   * lasts.
   */
  #wanted(): ReplicaId[] {
    // The voters of both the configuration we act on and our delivered one: a view that
    // delivers a change needs a majority of the configuration before it too.
    const voters = [...this.#config().voters, ...this.membership.voters];
    const alive = this.#alive().filter((r) => voters.includes(r));
    return this.#detector.largestGroup(alive, this.#members, this.#now);
  }

  /**
   * The learners to take into a view of `members`: the configuration's learners that are alive
   * (heard here) and hear every member (they need every member's entries and acks). That they
   * reach every member is not required: a replica that joins may know only some members'
   * addresses until its install gives it the replica set; meanwhile members keep what it has not
   * acknowledged, and resend it once its links are up.
   */
  #wantedLearners(members: readonly ReplicaId[]): ReplicaId[] {
    const c = this.#config();
    // A learner's silence costs nothing (no write waits for it), and a joiner that just received
    // a large snapshot is silent while it restores it: learners are given a longer patience than
    // members before a view change drops them.
    const patience = LEARNER_PATIENCE * this.#opt.suspectTicks;
    const learners = [
      ...c.learners,
      ...[...this.#members, ...this.#learners].filter((r) => this.#leaving(r)),
    ];
    return [...new Set(learners)].filter((l) =>
      l !== this.id && this.#detector.heardWithin(l, this.#now, patience) &&
      members.every((m) => this.#detector.hears(l, m, this.#now))
    ).sort((a, b) => a - b);
  }

  /**
   * True for a member of the installed view that the configuration no longer has (its removal
   * was delivered in this view). It is taken into the next view change as a learner, so that it
   * receives the install and learns it was removed (it then leaves; see #commit): else, cut off
   * from the acks it needed, it would not deliver its own removal and wait for ever.
   */
  #leaving(id: ReplicaId): boolean {
    return id !== this.id && (this.#members.includes(id) || this.#learners.includes(id)) &&
      !isMember(this.#config(), id);
  }

  #driveViewChange(out: Action[]): void {
    // Only a voter coordinates: learners and replicas outside the configuration follow.
    if (!this.#votes()) return;
    const alive = this.#wanted();
    if (!holdsMajority(alive, this.#config())) return;
    const learners = this.#wantedLearners(alive);
    const rank = this.#candidates().indexOf(this.id);
    const timeout = this.#opt.viewChangeTimeoutTicks;
    if (this.#state === "normal") {
      const grace = 3 * this.#opt.heartbeatTicks;
      const settled = this.#now - this.#installedAt > grace;
      // A voter change delivered in this view takes effect with the next view: make one.
      const staying = learners.filter((l) => isMember(this.#config(), l));
      // Learners are not waited for at commit: one may still be receiving its install (a large
      // snapshot) long after the view went normal.
      const learnerSettled =
        this.#now - this.#installedAt > LEARNER_PATIENCE * this.#opt.suspectTicks;
      const lagging = (p: ReplicaId) =>
        this.#detector.reportedView(p) !== this.#view &&
        (this.#members.includes(p) ? settled : learnerSettled);
      // A voter this view took in as a learner to catch up (#catchUpAsLearners) is made a
      // member once it reports following the view (or, like any learner, once it is lagging).
      const wanted = alive.filter((p) =>
        p === this.id || !this.#catchingUp(p) || this.#detector.reportedView(p) === this.#view
      );
      const viewLearners = this.#learners.filter((l) => !this.#catchingUp(l));
      // Kept as long as a learner would be: heard within the learners' patience (it may be
      // restoring a large install), hearing every member (it needs all their updates), and
      // not cut off from us (#cutOff: it could never be made a member).
      const patience = LEARNER_PATIENCE * this.#opt.suspectTicks;
      const lost = (l: ReplicaId) =>
        this.#catchingUp(l) && (!(this.#detector.heardWithin(l, this.#now, patience) &&
          this.#members.every((m) => this.#detector.hears(l, m, this.#now))) || this.#cutOff(l));
      const changed = !sameIds(wanted, this.#members) || !sameIds(staying, viewLearners) ||
        this.#learners.some(lost) || this.membership.changedIn === this.#view ||
        this.#receivers().some(lagging);
      if (changed && rank === 0) this.#propose(alive, learners, out);
      return;
    }
    const waited = this.#now - this.#changeStartedAt;
    const c = this.#coordination;
    if (c) {
      this.#onCoordinatingTick(c, out);
      if (this.#coordination !== c) return; // planning it abandoned the change
      // Waiting for a vote that cannot come (its replica is now suspected) is pointless.
      const lost = !c.installs &&
        c.participants.some((m) =>
          !c.reports.has(m) && !alive.includes(m) && !learners.includes(m)
        );
      if (waited > timeout || lost) this.#propose(alive, learners, out);
    } else if (this.#acceptedAsLearner()) {
      // Taken into a view as a learner (to catch up): its commit comes behind a large install on
      // the coordinator's link, and a proposal of ours meanwhile would make us ignore it.
      if (waited > LEARNER_PATIENCE * this.#opt.suspectTicks) this.#propose(alive, learners, out);
    } else if (waited > timeout * (rank + 1) || (rank === 0 && this.#state === "joining")) {
      this.#propose(alive, learners, out);
    }
  }

  /**
   * True when `peer` speaks but not to us: nothing of it arrived here for two failure timeouts
   * while a member that speaks steadily (heard within two heartbeats, so its report is fresh)
   * still reports hearing it. That is a link failing one way, not a replica restoring a large
   * install (silent to all, which every report shows within a timeout, well inside the two).
   */
  #cutOff(peer: ReplicaId): boolean {
    const silence = this.#detector.silence(peer, this.#now) ?? this.#now;
    return silence > 2 * this.#opt.suspectTicks && this.#others().some((m) => {
      const spoke = this.#detector.silence(m, this.#now);
      return spoke !== null && spoke <= 2 * this.#opt.heartbeatTicks &&
        this.#detector.hears(m, peer, this.#now);
    });
  }

  #propose(members: ReplicaId[], learners: ReplicaId[], out: Action[]): void {
    invariant(
      members.includes(this.id) && holdsMajority(members, this.#config()) &&
        members.every((m, i) => i === 0 || members[i - 1] < m) &&
        learners.every((l) => !members.includes(l)),
      () => `proposing ${members} (+${learners}): not an ascending majority with this replica`,
    );
    // Unique per proposer (round * VIEW_ROUND + its id): two coordinators never propose the
    // same number, and the higher proposal wins everywhere.
    const above = Math.max(this.#highestSeen, this.#promised, this.#view);
    const view = nextViewOf(this.id, above);
    this.#highestSeen = view;
    const participants = [...members, ...learners];
    this.#coordination = {
      view,
      members,
      learners,
      participants,
      reports: new Map(),
      accepted: new Set(),
    };
    this.#vcOutbox.clear();
    const msg: PeerMessage = {
      type: "propose",
      view,
      ts: this.#clock.tick(),
      members,
      ...(learners.length > 0 ? { learners } : {}),
      delivered: this.#delivered,
    };
    for (const peer of participants) if (peer !== this.id) this.#sendVc(peer, msg, out);
    this.#onPropose(this.id, msg, out);
  }

  #onPropose(from: ReplicaId, msg: Extract<PeerMessage, { type: "propose" }>, out: Action[]) {
    if (msg.view <= this.#promised) return;
    if (!msg.members.includes(this.id) && !msg.learners?.includes(this.id)) return;
    // A healthy view is not given up for a replica outside it: the view's own coordinator takes
    // that replica in once it is connected to every member. (Ignoring a proposal is always safe:
    // it is a lost message.) Else a replica left out for a link that works one way only would
    // break up the majority's view again and again.
    if (from !== this.id && !this.#members.includes(from) && this.#viewHealthy()) return;
    this.#promised = msg.view;
    this.#early.clear();
    if (from !== this.id) {
      this.#coordination = undefined;
      this.#vcOutbox.clear();
    }
    this.#stopServing(this.#accepted ? "installing" : "changing");
    // The promise must survive a restart before anyone can count on it.
    const n = this.#persist({ r: "promise", view: msg.view }, out);
    this.#afterSync(n, out, (o) => this.#sendFlush(from, msg.view, this.#report(msg.delivered), o));
  }

  /** What this replica tells a coordinator whose delivered index is `coordinatorDelivered`. */
  #report(coordinatorDelivered: number): FlushReport {
    const from = Math.max(coordinatorDelivered + 1, this.#log.start);
    const entries = this.#log.slice(from, this.#delivered);
    invariant(entries, "the retained log covers start..delivered");
    const report: FlushReport = {
      normalView: this.#view,
      delivered: this.#delivered,
      last: this.#last,
      holdback: this.#holdback.sorted(),
      log: { from, entries },
    };
    if (from > coordinatorDelivered + 1 && this.#delivered > coordinatorDelivered) {
      report.snapshot = this.#snapshot();
    }
    // An install accepted as a learner of its view is no vote: its view was committed without
    // it, so any majority holds it if it was; leaving it out keeps a large install (a snapshot)
    // from travelling back in the report.
    if (this.#accepted && !this.#acceptedAsLearner()) {
      report.accepted = { view: this.#accepted.view, install: this.#accepted.install };
    }
    if (this.#delivered === 0 && this.#founding.voters.length === 0 && !this.#machine.membership) {
      report.blank = true;
    }
    return report;
  }

  #sendFlush(to: ReplicaId, view: number, report: FlushReport, out: Action[]): void {
    if (to === this.id) return this.#onFlush(this.id, view, report, out);
    this.#sendVc(to, { type: "flush", view, ts: this.#clock.tick(), report }, out);
  }

  #onFlush(from: ReplicaId, view: number, report: FlushReport, out: Action[]): void {
    const c = this.#coordination;
    if (!c || c.view !== view || c.installs || !c.participants.includes(from)) return;
    c.reports.set(from, report);
    if (c.reports.size < c.participants.length) {
      // Learners' reports are no votes: once every voter reported, the change waits a little
      // longer for them, then goes on without those still silent (see #onCoordinatingTick).
      if (c.votersReportedAt === undefined && c.members.every((m) => c.reports.has(m))) {
        c.votersReportedAt = this.#now;
      }
      return;
    }
    this.#plan(c, from, out);
  }

  /**
   * While coordinating: once every voter reported and the learners that have not had a few
   * heartbeats more, plans the view without them (they are taken in by a later change).
   */
  #onCoordinatingTick(c: Coordination, out: Action[]): void {
    if (c.installs || c.votersReportedAt === undefined) return;
    if (this.#now - c.votersReportedAt < LEARNER_REPORT_TICKS) return;
    const silent = c.learners.filter((l) => !c.reports.has(l));
    if (silent.length === 0) return;
    c.learners = c.learners.filter((l) => c.reports.has(l));
    c.participants = c.participants.filter((p) => c.reports.has(p));
    this.#plan(c, undefined, out);
  }

  /** Plans the view from every participant's report and sends each its install. */
  #plan(c: Coordination, from: ReplicaId | undefined, out: Action[]): void {
    const view = c.view;
    let plan: ReturnType<typeof planView>;
    try {
      plan = planView(c.reports, {
        delivered: this.#delivered,
        entry: (i) => this.#log.get(i),
        snapshot: () => this.#snapshot(),
      });
    } catch (err) {
      if (!(err instanceof ReportConflict)) throw err;
      // Peer input we cannot use: drop the report that completed the set (the view change is
      // retried after its timeout) and have the host close that peer's connection.
      if (from === undefined) return;
      c.reports.delete(from);
      if (from !== this.id) out.push({ type: "reject", peer: from, reason: err.message });
      return;
    }
    // The members must be a majority of every configuration the new view's starting log passes
    // through (see README, Membership changes). Ours may be behind what a member reported: then
    // abandon this view (nothing was installed anywhere) and propose again knowing it.
    const reached = this.#configsAlong(plan.installs.get(this.id)!);
    const end = reached[reached.length - 1];
    // Replicas the install removes still vote in this change (they count for the majorities of
    // the configurations before their removal) and receive the install, so that they learn it,
    // but they are not members of the view: the view's members are a majority of its own
    // configuration, which the next view's members will intersect.
    const voted = c.members;
    c.members = voted.filter((m) => end.voters.includes(m));
    c.learners = c.learners.filter((l) => isMember(end, l));
    if (
      !c.members.includes(this.id) || !holdsMajority(c.members, end) ||
      reached.some((m) => !holdsMajority(voted, m))
    ) {
      this.#configHint = reached[reached.length - 1];
      this.#coordination = undefined;
      this.#vcOutbox.clear();
      this.#refreshPeers();
      return;
    }
    this.#catchUpAsLearners(c, plan, voted, reached);
    c.installs = plan.installs;
    for (const member of c.participants) {
      const msg: PeerMessage = {
        type: "newview",
        view,
        ts: this.#clock.tick(),
        members: c.members,
        ...(c.learners.length > 0 ? { learners: c.learners } : {}),
        install: plan.installs.get(member)!,
      };
      if (member === this.id) this.#onNewView(this.id, msg, out);
      else this.#sendVc(member, msg, out);
    }
  }

  /**
   * Voters far behind the new view's start (their install carries a snapshot, more than
   * `catchUpEntries` entries or more than `catchUpBytes` of them) are taken into it as learners, if the others still hold every
   * majority the change needs without their votes: the commit does not wait while they receive
   * and apply a large install (a member down for long, or wiped), and the next view change, made
   * once they report following this view, takes them in as members with a short install. Their
   * flush then counts as a learner's (no vote): the majorities are checked without them.
   */
  #catchUpAsLearners(
    c: Coordination,
    plan: ReturnType<typeof planView>,
    voted: readonly ReplicaId[],
    reached: readonly Membership[],
  ): void {
    const far = (i: Install) =>
      i.snapshot !== undefined || i.entries.length > this.#opt.catchUpEntries ||
      i.entries.reduce((sum, e) => sum + entryBytes(e), 0) > this.#opt.catchUpBytes;
    const behind = c.members.filter((m) => m !== this.id && far(plan.installs.get(m)!));
    if (behind.length === 0) return;
    const members = c.members.filter((m) => !behind.includes(m));
    const voters = voted.filter((m) => !behind.includes(m));
    if (!holdsMajority(members, reached[reached.length - 1])) return;
    if (reached.some((m) => !holdsMajority(voters, m))) return;
    c.members = members;
    c.learners = [...c.learners, ...behind].sort((a, b) => a - b);
  }

  /** True while this replica holds an install it accepted as a learner of its view (no vote). */
  #acceptedAsLearner(): boolean {
    return this.#accepted !== undefined && !this.#accepted.members.includes(this.id);
  }

  /** True for a voter of the configuration that the installed view has as a learner. */
  #catchingUp(id: ReplicaId): boolean {
    return this.#learners.includes(id) && this.#config().voters.includes(id);
  }

  #onNewView(from: ReplicaId, msg: Extract<PeerMessage, { type: "newview" }>, out: Action[]) {
    // A view installed here already (its install resent behind a commit on a new link) is done.
    if (msg.view !== this.#promised || this.#state === "normal" || msg.view <= this.#view) return;
    const { install } = msg;
    // Planned from a report we made before a crash, for more than we recovered: a lost message.
    if (!install.snapshot && install.from > this.#delivered + 1) return;
    invariant(
      install.snapshot
        ? install.from === install.snapshot.index + 1
        : install.from === this.#delivered + 1,
      () =>
        `install for view ${msg.view} starts at ${install.from}, we delivered ${this.#delivered}`,
    );
    const record = acceptRecordOf(msg);
    const { r: _, ...accepted } = record;
    this.#accepted = accepted;
    this.#state = "installing";
    const n = this.#persist(record, out);
    this.#afterSync(n, out, (o) => {
      if (this.#accepted?.view !== msg.view) return;
      if (from === this.id) this.#onAccepted(this.id, msg.view, o);
      else this.#sendVc(from, { type: "accepted", view: msg.view, ts: this.#clock.tick() }, o);
    });
  }

  #onAccepted(from: ReplicaId, view: number, out: Action[]): void {
    // Its install, kept for a resend (see #sendVc), is no longer needed.
    const kept = this.#vcOutbox.get(from);
    if (kept !== undefined) {
      this.#vcOutbox.set(from, kept.filter((m) => m.type !== "newview" || m.view !== view));
    }
    const c = this.#coordination;
    if (!c || c.view !== view || !c.installs) return;
    c.accepted.add(from);
    // Learners are not waited for: they vote for nothing and acknowledge nothing, so the view
    // holds without them, and a learner that must first receive and restore a large snapshot
    // (a joining replica) would hold every write of the cluster for as long. It gets the commit
    // behind the install, on the same link, and installs at its own pace.
    if (c.participants.some((p) => !c.learners.includes(p) && !c.accepted.has(p))) return;
    const msg: PeerMessage = { type: "commit", view, ts: this.#clock.tick() };
    for (const member of c.participants) if (member !== this.id) this.#sendVc(member, msg, out);
    this.#commit(out);
  }

  /** Installs the accepted view: delivers its starting log and goes normal in it. */
  #commit(out: Action[]): void {
    const accepted = this.#accepted;
    invariant(accepted, "commit without an accepted view");
    // Having promised a later view, we must not operate in this one: its coordinator may not
    // know what we would deliver here. The later view carries this install (we reported it).
    if (this.#promised !== accepted.view) return;
    this.#persist({ r: "commit", view: accepted.view }, out);
    const resubmittable = accepted.install.snapshot === undefined;
    this.#applyInstall(out);
    if (!this.#members.includes(this.id) && !this.#learners.includes(this.id)) {
      // This install removed us: we voted for it and delivered it, and serve no more.
      this.#state = "joining";
      this.#configHint = undefined;
      this.#refreshPeers();
      this.#resetViewState();
      for (const r of this.#pending.values()) {
        out.push(unknown(r.id, "this replica was removed from the cluster"));
      }
      this.#pending.clear();
      for (const r of this.#queued) {
        out.push(noQuorum(r.id, "this replica was removed from the cluster"));
      }
      this.#queued = [];
      return;
    }
    this.#state = "normal";
    this.#installedAt = this.#now;
    this.#configHint = undefined;
    this.#refreshPeers();
    // Every member was heard from during the change: suspect none of them for a full timeout.
    for (const m of this.#receivers()) this.#detector.grace(m, this.#now);
    if (this.#coordination?.view === accepted.view) this.#coordination = undefined;
    this.#resetViewState();
    // Our requests of older views still pending are not in the new view's starting log. Every
    // entry ever delivered is in it, and older views are closed: so when the install spelled
    // out every entry (no snapshot), they were never delivered and never will be, and they are
    // submitted again in this view. Behind a snapshot we cannot tell: their outcome is unknown.
    const stale = [...this.#pending.values()];
    this.#pending.clear();
    const queued = this.#queued;
    this.#queued = [];
    for (const request of stale) {
      if (resubmittable) this.#submit(request.id, request.cmd, out);
      else out.push(unknown(request.id, "the view changed before it was delivered"));
    }
    for (const request of queued) this.#submit(request.id, request.cmd, out);
    this.#broadcastAck(out);
    const early = this.#early.take(accepted.view);
    if (early === "lost") this.#stopServing("joining");
    else for (const [from, msg] of early) this.#onNormalMessage(from, msg, out);
  }

  /** Delivers the accepted install and makes its view the installed one (not yet normal). */
  #applyInstall(out: Action[]): void {
    const accepted = this.#accepted;
    invariant(accepted, "no accepted install to apply");
    const { install } = accepted;
    if (install.snapshot) this.#restoreSnapshot(install.snapshot);
    invariant(install.from === this.#delivered + 1, "install does not continue our log");
    for (const entry of install.entries) {
      this.#clock.observe(entry.ts);
      this.#deliver(entry, out);
    }
    this.#view = accepted.view;
    this.#members = [...accepted.members];
    this.#learners = [...(accepted.learners ?? [])];
    this.#accepted = undefined;
    this.#holdback = new HoldbackQueue();
  }

  #resetViewState(): void {
    this.#nextSeq = 1;
    this.#holdback = new HoldbackQueue();
    this.#received = new Map(this.#members.map((m) => [m, 0]));
    this.#durable = new Map(this.#members.map((m) => [m, 0]));
    this.#acks = new Map(this.#receivers().map((m) => [m, new Map()]));
    this.#unacked = [];
    this.#ackDirty = false;
    this.#probeAcked = new Map();
    this.#probeAckTs = new Map();
    this.#progress.reset();
    this.#inViewSince.clear();
  }

  /**
   * The configurations `install` passes through once delivered here: the one it starts from
   * (ours, or its snapshot's), then each one an entry of it changes to.
   */
  #configsAlong(install: Install): Membership[] {
    const m = this.#machine;
    let config = install.snapshot
      ? (m.membershipOf?.(install.snapshot.state) ?? this.#founding)
      : this.membership;
    const reached = [config];
    if (!m.nextMembership) return reached;
    for (const e of install.entries) {
      const next = m.nextMembership(config, e.cmd, e.view);
      if (next !== null) reached.push(config = next);
    }
    return reached;
  }

  #snapshot(): Snapshot {
    return { index: this.#delivered, last: this.#last, state: this.#machine.snapshot() };
  }

  /** Replaces the state machine, the delivered point and the retained log by `s`. */
  #restoreSnapshot(s: Snapshot): void {
    this.#machine.restore(s.state);
    this.#refreshPeers();
    this.#divergence.reset();
    this.#last = s.last;
    this.#log.resetTo(s.index);
  }

  /** Number of entries delivered (the delivered log's end). */
  get #delivered(): number {
    return this.#log.end;
  }

  // ---- durability ----

  #persist(record: PersistRecord, out: Action[]): number {
    out.push({ type: "persist", record });
    return ++this.#persisted;
  }

  /** Runs `run` once persist action `n` is durable (now, if it already is). */
  #afterSync(n: number, out: Action[], run: (out: Action[]) => void): void {
    if (n <= this.#synced) run(out);
    else this.#afterSyncQueue.push({ n, run });
  }

  #onSynced(upTo: number, out: Action[]): void {
    invariant(upTo <= this.#persisted, () => `synced ${upTo} of ${this.#persisted} records`);
    if (upTo <= this.#synced) return;
    this.#synced = upTo;
    let done = 0;
    while (done < this.#afterSyncQueue.length && this.#afterSyncQueue[done].n <= upTo) {
      this.#afterSyncQueue[done++].run(out);
    }
    if (done > 0) this.#afterSyncQueue = this.#afterSyncQueue.slice(done);
  }

  /**
   * Recovery: delivers held-back entries of the installed view up to where `install` starts.
   * They are what this replica delivered before the crash: delivery is a prefix of the
   * (ts, origin) order, and an entry is delivered only once it is durable here.
   */
  #redeliverBefore(install: Install, out: Action[]): void {
    while (!install.snapshot && this.#delivered < install.from - 1) {
      const head = this.#holdback.pop();
      invariant(head, () => `recovery: no entry for index ${this.#delivered + 1}`);
      this.#deliver(head, out);
    }
  }

  /**
   * Recovery: delivers held-back entries up to a delivery mark of the installed view. Every entry
   * it covers was persisted here before it was delivered, hence before the mark, so it is in the
   * holdback (the recovered log is a prefix of what was written); entries of the view that sort
   * before the mark's stamp are exactly the ones delivered up to it (delivery is a prefix of the
   * view's (ts, origin) order). A mark of an older view, or behind what is delivered, says nothing.
   */
  #redeliverTo(mark: Extract<PersistRecord, { r: "delivered" }>, out: Action[]): void {
    if (mark.view !== this.#view || mark.index <= this.#delivered) return;
    while (this.#delivered < mark.index) {
      const head = this.#holdback.pop();
      invariant(
        head && compareEntries(head, mark.last) <= 0,
        () => `recovery: no entry for index ${this.#delivered + 1} before its delivery mark`,
      );
      // Held entries at or before the snapshot's point were delivered with it already.
      if (this.#last && this.#last.view === head.view && compareEntries(head, this.#last) <= 0) {
        continue;
      }
      this.#deliver(head, out);
    }
    const last = this.#last;
    invariant(
      last && compareEntries(last, mark.last) === 0 && last.view === mark.last.view,
      () => `recovery: delivery mark at index ${mark.index} names another entry`,
    );
  }

  /** Everything durable about this replica now (a snapshot action supersedes the log). */
  #durableSnapshot(): DurableSnapshot {
    const durable: DurableSnapshot = {
      snapshot: this.#snapshot(),
      view: this.#view,
      members: [...this.#members],
      promised: this.#promised,
      holdback: this.#holdback.sorted(),
    };
    if (this.#learners.length > 0) durable.learners = [...this.#learners];
    if (this.#accepted) durable.accepted = { ...this.#accepted };
    return durable;
  }

  /**
   * Rebuilds the durable state after a restart: snapshot, then records in order. The entries of
   * the last installed view come back as holdback (their delivery order is their (ts, origin)
   * order, so a view change re-delivers them exactly as before). The replica starts joining.
   */
  #recover({ snapshot, records }: Recovered): void {
    const seen = new SeenEntries();
    const hold = (e: Entry) => {
      if (e.view !== this.#view || !seen.add(e.origin, e.seq)) return;
      this.#holdback.push(e);
    };
    if (snapshot) {
      this.#restoreSnapshot(snapshot.snapshot);
      this.#view = snapshot.view;
      this.#members = [...snapshot.members];
      this.#learners = [...(snapshot.learners ?? [])];
      this.#promised = snapshot.promised;
      if (snapshot.accepted) this.#accepted = { ...snapshot.accepted };
      snapshot.holdback.forEach(hold);
    }
    // What re-delivery would do is done already (replies, deliveries: nobody waits for them);
    // emptied after each record, not kept for a whole log's entries.
    const discard: Action[] = [];
    for (const record of records) {
      discard.length = 0;
      switch (record.r) {
        case "entry":
          hold(record.entry);
          break;
        case "promise":
          this.#promised = Math.max(this.#promised, record.view);
          break;
        case "accept":
          this.#accepted = {
            view: record.view,
            members: record.members,
            learners: record.learners ?? [],
            install: record.install,
          };
          break;
        case "delivered":
          this.#redeliverTo(record, discard);
          break;
        case "commit":
          if (this.#accepted?.view === record.view) {
            this.#redeliverBefore(this.#accepted.install, discard);
            this.#applyInstall(discard);
            seen.clear();
          }
          break;
      }
    }
    // An accepted install continues the log we had before the crash: reach its start.
    if (this.#accepted) this.#redeliverBefore(this.#accepted.install, discard);
    // Entries at or before the delivered point were delivered already; drop them.
    if (this.#last) {
      const last = this.#last;
      const keep = this.#holdback.sorted().filter((e) =>
        e.view !== last.view || compareEntries(e, last) > 0
      );
      this.#holdback = new HoldbackQueue();
      for (const e of keep) this.#holdback.push(e);
    }
    this.#promised = Math.max(this.#promised, this.#view);
    this.#highestSeen = this.#promised;
    this.#state = "joining";
  }

  /** Sends `msg` to each of `peers`. */
  #sendTo(peers: readonly ReplicaId[], msg: PeerMessage, out: Action[]): void {
    for (const to of peers) out.push({ type: "send", to, msg });
  }

  /** True when this replica is normal in `view` and `from` is a member of it. */
  #servesViewWith(from: ReplicaId, view: number): boolean {
    return this.#state === "normal" && view === this.#view && this.#members.includes(from);
  }

  /**
   * Sends a view-change message to `to`, to be resent if the link comes back: it replaces the
   * last one, except that an install of the same view stays before it until `to` accepts it
   * (#onAccepted): the commit is useless to a learner whose install was lost with the link (a
   * member's install is accepted before any commit is sent).
   */
  #sendVc(to: ReplicaId, msg: PeerMessage, out: Action[]): void {
    const view = msg.type === "update" ? undefined : msg.view;
    const install = msg.type === "newview"
      ? []
      : (this.#vcOutbox.get(to) ?? []).filter((m) => m.type === "newview" && m.view === view);
    this.#vcOutbox.set(to, [...install, msg]);
    out.push({ type: "send", to, msg });
  }

  // ---- messages ----

  #ackMessage(): PeerMessage {
    const normal = this.#state === "normal";
    const acks: AckVector = {};
    if (normal) { for (const [origin, seq] of this.#durable) acks[origin] = seq; }
    return {
      type: "ack",
      view: normal ? this.#view : -1,
      promised: this.#promised,
      ts: this.#clock.tick(),
      acks,
      hears: this.#detector.hearing(this.#now),
    };
  }

  #broadcastAck(out: Action[]): void {
    this.#ackDirty = false;
    const msg = this.#ackMessage();
    this.#sendTo(this.#peerList, msg, out);
  }

  /** The other members of the installed view (whose acks and probe answers count). */
  #others(): ReplicaId[] {
    return this.#members.filter((m) => m !== this.id);
  }

  /** Everyone else who receives the installed view's entries: its other members and learners. */
  #receivers(): ReplicaId[] {
    return [...this.#members, ...this.#learners].filter((m) => m !== this.id);
  }

  /**
   * The configuration this replica acts on: its delivered state's, or a newer one it saw in a
   * view change it had to abandon for it (see {@link #configHint}).
   */
  #config(): Membership {
    return this.#configHint ?? this.membership;
  }

  /**
   * True when this replica refuses writes (Redis's READONLY), the one rule for it: a replica
   * originates entries only as a member of its view (a learner's acks do not count, so no view
   * could wait for them). While no view serves here, one that is no voter of the configuration it
   * acts on refuses at once rather than wait for a view it would not be a member of either. A
   * voter the view has as a learner while it catches up does not refuse: its writes wait for the
   * view that takes it in as a member (see #submit).
   */
  #refusesWrites(): boolean {
    if (this.#state !== "normal") return !this.#votes();
    return !this.#members.includes(this.id) && !this.#catchingUp(this.id);
  }

  /** True when this replica may vote: a voter of the configuration it acts on. */
  #votes(): boolean {
    return this.#config().voters.includes(this.id);
  }

  /**
   * Every other replica this one talks to (heartbeats, failure detection): the configuration's
   * voters and learners, and the installed view's members and learners.
   */
  #peers(): ReplicaId[] {
    const c = this.#config();
    const all = new Set([...c.voters, ...c.learners, ...this.#members, ...this.#learners]);
    if (!isMember(c, this.id)) { for (const s of this.#seeds) all.add(s); }
    for (const s of this.#contacts) all.add(s);
    all.delete(this.id);
    return [...all].sort((a, b) => a - b);
  }

  /**
   * Stops talking back to contacts silent for the failure timeout (stopped, or cut off): the
   * next message of one makes it a contact again.
   */
  #forgetSilentContacts(): void {
    let forgot = false;
    for (const id of this.#contacts) {
      if (this.#detector.isAlive(id, this.#now)) continue;
      this.#contacts.delete(id);
      forgot = true;
    }
    if (forgot) this.#refreshPeers();
  }

  /** True when `id` is one of {@link #peers} (as of the last {@link #refreshPeers}). */
  #knows(id: ReplicaId): boolean {
    return this.#peerSet.has(id);
  }

  /** True when this replica is normal in `view` and `from` is one of its learners. */
  #servesLearner(from: ReplicaId, view: number): boolean {
    return this.#state === "normal" && view === this.#view && this.#learners.includes(from);
  }

  /** Tells the failure detector whom to watch after the configuration or the view changed. */
  #refreshPeers(): void {
    const peers = this.#peers();
    this.#peerList = Object.freeze(peers);
    this.#peerSet = new Set(peers);
    this.#detector.setPeers(peers);
  }
}

/** The key of an own write in `#pending`: its view and sequence number. */
function pendingKey(entry: Pick<Entry, "view" | "seq">): string {
  return `${entry.view}:${entry.seq}`;
}

/**
 * An error reply. `UNKNOWN`: the request was put into the order (multicast, or placed as a read)
 * and not answered, so it may yet be applied. `NOQUORUM`: it certainly was not put into the order
 * by this replica (refused, or waiting for a view that did not come), or it was a read.
 */
function failure(id: number, code: "UNKNOWN" | "NOQUORUM", why: string): Action {
  const consequence = code === "UNKNOWN"
    ? "it may have been applied"
    : "it was not put into the order (not applied)";
  return { type: "reply", id, outcome: { ok: false, code, message: `${why}; ${consequence}` } };
}

function unknown(id: number, why: string): Action {
  return failure(id, "UNKNOWN", why);
}

function noQuorum(id: number, why: string): Action {
  return failure(id, "NOQUORUM", why);
}

/** Redis's refusal of a write at a read-only replica: not put into the order. */
function readOnly(id: number): Action {
  return {
    type: "reply",
    id,
    outcome: {
      ok: false,
      code: "READONLY",
      message: "You can't write against a read only replica.",
    },
  };
}

/** Null when `n` is an integer in `min..MAX_PROTOCOL_NUMBER`, else what is wrong with `name`. */
function number(n: number, name: string, min: number): string | null {
  return Number.isSafeInteger(n) && n >= min && n <= MAX_PROTOCOL_NUMBER
    ? null
    : `${name} ${n} is out of range ${min}..${MAX_PROTOCOL_NUMBER}`;
}
