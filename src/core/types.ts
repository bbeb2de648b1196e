/**
 * The vocabulary of the pure protocol core: operations, multicast entries, peer messages, and the
 * events that drive a replica and the actions it asks its host to carry out.
 *
 * Nothing here does I/O. The runtime (`src/runtime/`) and the simulator (`tests/sim/`) translate
 * sockets, timers and disks into {@link Event}s and carry out the {@link Action}s.
 *
 * @module
 */

/** A replica id: a positive integer from the config file. */
export type ReplicaId = number;

/**
 * A binary-safe byte string: every UTF-16 code unit is in 0..255 and stands for one raw byte (the
 * "latin1" view of the bytes). Keys and values travel and are stored in this form, so arbitrary
 * bytes (newlines, NULs, UTF-8 sequences) survive unchanged. Convert with `src/kv/bytes.ts`.
 */
export type ByteString = string;

/**
 * A client operation, opaque to the core: a command's arguments (`argv[0]` is its name) and the
 * wall-clock time in ms at which the originating replica received it. The state machine says what
 * it means and whether it is a read ({@link StateMachine}); the core only orders it.
 */
export interface Op {
  argv: ByteString[];
  time: number;
}

/**
 * Identifies one client request for exactly-once application of retries: the state machine
 * remembers the last `seq` and its result per `client`.
 */
export interface ClientTag {
  client: string;
  seq: number;
}

/** An operation as submitted by a client, with its optional exactly-once tag. */
export interface Command {
  op: Op;
  tag?: ClientTag;
  /**
   * A read to answer from this replica's state at once, without its place in the order being
   * confirmed (Redis's READONLY): possibly stale. Never sent to peers.
   */
  local?: boolean;
}

/**
 * A reply of the state machine, shaped like RESP2 and JSON-compatible (it is kept in the
 * exactly-once table of snapshots): `null` is a null bulk string, a string is a bulk
 * {@link ByteString}, a number a safe integer, an array an array; `{ok}` a status (simple string)
 * reply, `{err}` an error reply (its text starts with the code, e.g. `"WRONGTYPE ..."`), `{int}` an
 * integer outside the safe range as decimal text, `{nil: "array"}` a null array. Opaque to the
 * core.
 */
export type Reply =
  | null
  | ByteString
  | number
  | { ok: string }
  | { err: string }
  | { int: string }
  | { nil: "array" }
  | Reply[];

/** The result of applying an operation: the state machine's {@link Reply}. */
export type OpResult = Reply;

/**
 * One multicast operation. `(view, origin, seq)` identifies it; `(ts, origin)` orders it. Sequence
 * numbers are per origin and per view and start at 1, with no gaps.
 */
export interface Entry {
  view: number;
  ts: number;
  origin: ReplicaId;
  seq: number;
  cmd: Command;
}

/**
 * Cumulative acknowledgement vector: for each origin, the highest `seq` (in the sender's current
 * view) that the sender has received from that origin, its own origin included.
 */
export type AckVector = Record<ReplicaId, number>;

/** Where an entry sits in the total order (enough to compare with {@link Entry}s). */
export interface Stamp {
  view: number;
  ts: number;
  origin: ReplicaId;
}

/** The state machine's state right after log index `index` was applied. */
export interface Snapshot {
  index: number;
  /** Stamp of the entry at `index` (null if none, or if it is unknown). */
  last: Stamp | null;
  /** Opaque, JSON-compatible state of the state machine. */
  state: unknown;
}

/**
 * What a member needs to reach the new view's log: optionally a snapshot, then the entries at
 * indexes `from`, `from + 1`, ... (`from` is `snapshot.index + 1` when a snapshot is given).
 */
export interface Install {
  snapshot?: Snapshot;
  from: number;
  entries: Entry[];
}

/** A member's answer to a view proposal: everything the coordinator needs from it. */
export interface FlushReport {
  /** The last view this member was normal in (-1 if none since it started). */
  normalView: number;
  /** Index of its last delivered entry. */
  delivered: number;
  /** Stamp of its last delivered entry, if known. */
  last: Stamp | null;
  /** Its undelivered entries of `normalView`. */
  holdback: Entry[];
  /** Its delivered entries after the coordinator's delivered index, as far as it retains them. */
  log: { from: number; entries: Entry[] };
  /** Its state at `delivered`, when `log` cannot reach back to the coordinator's index. */
  snapshot?: Snapshot;
  /** An accepted but not yet committed install of a later view. */
  accepted?: { view: number; install: Install };
  /**
   * The member holds no state at all, not even the founding configuration (a replica that joins
   * an existing cluster): it must start from a snapshot, never from a log suffix.
   */
  blank?: boolean;
}

/** Messages between replicas. Each carries the sender's Lamport clock in `ts`. */
export type PeerMessage =
  /** A multicast operation (its `ts` is `entry.ts`). */
  | { type: "update"; entry: Entry }
  /**
   * Cumulative ack vector; also sent on every heartbeat. `view` is the sender's view if it is
   * normal in one, else -1 (its acks are then empty); `promised` the highest view it accepted;
   * `hears` the other replicas it heard from within the failure timeout (so that a link that
   * works one way only is seen from both ends; absent: not reported).
   */
  | {
    type: "ack";
    view: number;
    promised: number;
    ts: number;
    acks: AckVector;
    hears?: ReplicaId[];
  }
  /**
   * Coordinator to members: phase 1 of a view change. `delivered` is the coordinator's;
   * `learners` take part in the change but never vote nor ack (absent: none).
   */
  | {
    type: "propose";
    view: number;
    ts: number;
    members: ReplicaId[];
    learners?: ReplicaId[];
    delivered: number;
  }
  /** Member to coordinator: it accepted the proposal and stopped the old view. */
  | { type: "flush"; view: number; ts: number; report: FlushReport }
  /** Coordinator to each member: what it lacks of the new view's starting log. */
  | {
    type: "newview";
    view: number;
    ts: number;
    members: ReplicaId[];
    learners?: ReplicaId[];
    install: Install;
  }
  /** Member to coordinator: it holds its install. */
  | { type: "accepted"; view: number; ts: number }
  /** Coordinator to members: every member holds its install; deliver it and go normal. */
  | { type: "commit"; view: number; ts: number }
  /** A replica places local reads: answer if you are normal in `view` (batched per turn). */
  | { type: "probe"; view: number; ts: number; round: number }
  /** The answer to a probe, sent only by a member normal in `view`. */
  | { type: "probe-ack"; view: number; ts: number; round: number }
  /** The sender's latest checkpoint: its state's digest at delivered index `index` (heartbeat). */
  | { type: "checkpoint"; view: number; ts: number; index: number; digest: string };

/** Why a client request failed. */
export type ErrorCode =
  /**
   * The operation may or may not have been applied: it was put into the order (multicast) and
   * then timed out, or the view broke before it was delivered.
   */
  | "UNKNOWN"
  /**
   * This replica cannot reach a quorum and did not put the operation into the order (refused
   * before it was multicast, or no view was formed in time; or a read that was not confirmed):
   * this request was not applied.
   */
  | "NOQUORUM"
  /** The request was refused before it entered the order; nothing was applied. */
  | "REFUSED"
  /** A write sent to a learner, which serves reads only (Redis's error for a replica). */
  | "READONLY"
  /** This replica is not a member of the configuration in force; nothing was applied. */
  | "NOTMEMBER";

/** What a client gets back. */
export type Outcome =
  | { ok: true; result: OpResult }
  | { ok: false; code: ErrorCode; message: string };

/**
 * What a replica asks its host to keep durably, in order, in its write-ahead log. Replaying them
 * after a {@link DurableSnapshot} rebuilds everything a restarted replica must not forget.
 */
export type PersistRecord =
  /** An update of the current view, received or created (persisted before it is acked). */
  | { r: "entry"; entry: Entry }
  /** The replica promised view `view` (persisted before its FLUSH is sent). */
  | { r: "promise"; view: number }
  /** The replica holds its install of view `view` (persisted before ACCEPTED is sent). */
  | { r: "accept"; view: number; members: ReplicaId[]; learners?: ReplicaId[]; install: Install }
  /** View `view` was committed here: its install was delivered. */
  | { r: "commit"; view: number }
  /**
   * A delivery mark: in view `view` this replica had delivered up to log index `index`, whose
   * entry is `last` (persisted every `deliveryMarkEvery` deliveries, never waited for). Recovery
   * re-delivers the held-back entries it covers, so that a restarted replica reports and needs
   * only what came after it rather than everything since its last snapshot.
   */
  | { r: "delivered"; view: number; index: number; last: Stamp };

/** Everything durable about a replica at one point: its log can restart empty after it. */
export interface DurableSnapshot {
  /** Delivered state: index, last stamp, state machine state. */
  snapshot: Snapshot;
  /** Last view this replica was normal in, and its members. */
  view: number;
  members: ReplicaId[];
  /** The learners of `view` (absent: none). */
  learners?: ReplicaId[];
  promised: number;
  accepted?: { view: number; members: ReplicaId[]; learners?: ReplicaId[]; install: Install };
  /** Undelivered entries of `view`. */
  holdback: Entry[];
}

/** What a replica recovers from its data directory. */
export interface Recovered {
  snapshot?: DurableSnapshot;
  /** The log's records in order, read once (a data directory's are decoded as they are read). */
  records: Iterable<PersistRecord>;
}

/** Everything that can happen to a replica. */
export type Event =
  /** Logical time advances by one tick (the runtime ticks every 10 ms). */
  | { type: "tick" }
  /** A client asks for `cmd`; the reply carries the same `id`. */
  | { type: "request"; id: number; cmd: Command }
  /** A batch of messages (one frame) arrived from peer `from`, in the order it sent them. */
  | { type: "peer"; from: ReplicaId; msgs: PeerMessage[] }
  /**
   * Part of a long message from `from` arrived (a streamed snapshot takes seconds): it is alive,
   * though none of its messages has arrived meanwhile.
   */
  | { type: "peer-alive"; from: ReplicaId }
  /**
   * The outgoing link to `peer` was (re)established. Messages sent to a peer while its link was
   * down are dropped by the host; the core resends what the peer has not acknowledged.
   */
  | { type: "link-up"; peer: ReplicaId }
  /** End of an event-loop turn: the core emits coalesced acknowledgements. */
  | { type: "flush" }
  /** The first `upTo` persist actions of this process are durable. */
  | { type: "synced"; upTo: number }
  /**
   * The host's storage asks for a snapshot now (its log grew large in bytes against its last
   * snapshot, which counting deliveries does not see: large values). Ignored with `snapshotEvery`
   * 0 (no snapshots) and while the replica is not normal in a view (the host asks again).
   */
  | { type: "snapshot-due" };

/** What a replica asks its host to do, in order. */
export type Action =
  /** Send `msg` to `to` over the FIFO link (dropped if the link is down). */
  | { type: "send"; to: ReplicaId; msg: PeerMessage }
  /** Answer client request `id`. */
  | { type: "reply"; id: number; outcome: Outcome }
  /** `entry` was delivered at global log `index` with `result` (for logs and observers). */
  | { type: "deliver"; index: number; entry: Entry; result: OpResult }
  /**
   * Append `record` to the write-ahead log. Persist actions are numbered 1, 2, ... in the order
   * emitted; the host reports progress with `synced` events (group commit is up to the host).
   */
  | { type: "persist"; record: PersistRecord }
  /**
   * Write `snapshot` durably (atomically). Once it is durable, the log records persisted before
   * this action may be dropped; records persisted after it must be kept. Durability of records
   * is still reported by `synced` only.
   */
  | { type: "snapshot"; snapshot: DurableSnapshot }
  /**
   * A message from `peer` failed validation (`Replica.check`): it and the rest of its batch
   * were not processed. Close the connection it came on (log `reason`); the core is unchanged.
   */
  | { type: "reject"; peer: ReplicaId; reason: string }
  /**
   * This replica's state differs from the one a majority of its view reported at the same
   * delivered index: it must stop serving (and say so loudly). Emitted once; final.
   */
  | { type: "diverged"; index: number; mine: string; majority: string; agreeing: ReplicaId[] };

/** Tunables of the core, all in ticks. */
export interface ReplicaOptions {
  /** This replica's id. */
  id: ReplicaId;
  /**
   * The founding configuration's voters (the config file's replicas), in force until the state
   * machine records another one. Empty for a replica that joins an existing cluster.
   */
  replicas: ReplicaId[];
  /**
   * Where this replica announces itself while it is outside the configuration (a joining or a
   * removed replica): the config file's replicas. Default: `replicas`.
   */
  seeds?: ReplicaId[];
  /** Ticks between heartbeats (default 10 = 100 ms). */
  heartbeatTicks?: number;
  /** Ticks a request may wait in the order before it is answered UNKNOWN (default 500 = 5 s). */
  requestTimeoutTicks?: number;
  /** Ticks of silence after which a peer is suspected (default 100 = 1 s). */
  suspectTicks?: number;
  /** Ticks a view change may take before it is retried with a higher number (default 50). */
  viewChangeTimeoutTicks?: number;
  /**
   * Deliveries between checkpoints whose digests replicas compare (default 1,000; 0: never). A
   * replica whose digest differs from the one a majority reported stops (`diverged` action).
   */
  checkpointEvery?: number;
  /** Ticks a request waits for a view before it is answered NOQUORUM (default 200 = 2 s). */
  noQuorumTicks?: number;
  /** Delivered entries kept in memory for lagging members (default: `snapshotEvery`, else 10,000). */
  retainEntries?: number;
  /**
   * Also a bound in bytes (default 64 MiB; an entry counts its arguments and 256 bytes): once the
   * entries held take twice this many, the oldest are dropped until they take at most this many
   * (the last one is always kept), so that large values do not fill the heap with old entries.
   */
  retainBytes?: number;
  /**
   * Deliveries between durable snapshots (default 10,000; 0: never); with at least
   * `snapshotGrowsFrom` keys, also at least `snapshotLogPercent` % of the state machine's size
   * (its keys), so that a snapshot's cost per write stays bounded however large the state grows.
   */
  snapshotEvery?: number;
  /** From this many keys on, snapshots are also spaced by the keys (default 100,000). */
  snapshotGrowsFrom?: number;
  /**
   * From `snapshotGrowsFrom` keys on, snapshots are at least this percentage of the keys
   * deliveries apart (default 50; 0: `snapshotEvery` alone). It bounds the log a restart
   * re-delivers after its snapshot, against the snapshots' cost per write.
   */
  snapshotLogPercent?: number;
  /**
   * Deliveries between delivery marks (a small log record, see {@link PersistRecord}; default
   * 1,000; 0: never). A restarted replica re-delivers what its last mark covers; the entries after
   * it wait in its holdback for the next view change, which carries them in its flush report.
   */
  deliveryMarkEvery?: number;
  /**
   * Also a delivery mark once the entries delivered since the last one carry this many bytes of
   * arguments (default 1 MiB), so that the entries a restarted replica holds back stay small
   * however large each is.
   */
  deliveryMarkBytes?: number;
  /**
   * A voter whose install in a view change carries a snapshot or more than this many entries
   * (default 10,000) is taken into that view as a learner, so that no write waits while it
   * receives and applies it, and made a member by the next view change once it follows the view.
   */
  catchUpEntries?: number;
  /** As {@link catchUpEntries}, for an install whose entries carry more than this many bytes of
   * arguments (default 16 MiB). */
  catchUpBytes?: number;
  /** State recovered from the data directory (a restart), if any. */
  recovered?: Recovered;
}

/** A snapshot of a replica's state for INFO and tests. */
export interface ReplicaStatus {
  id: ReplicaId;
  /** The installed view (-1 before the first one). */
  view: number;
  /** normal: serving in `view`; changing/installing: in a view change; joining: no view yet. */
  state: "normal" | "changing" | "installing" | "joining";
  members: ReplicaId[];
  /** The learners of `view`. */
  learners: ReplicaId[];
  /** This replica's part in the configuration in force (none: joining, or removed). */
  role: "voter" | "learner" | "none";
  /** The configuration in force: its voters (majorities are counted over them). */
  voters: ReplicaId[];
  clock: number;
  /** Global index of the last delivered entry (0 when none). */
  delivered: number;
  /** Number of entries waiting in the holdback queue. */
  holdback: number;
  /** Own entries kept for resending until every other member acknowledged them. */
  unacked: number;
  /** Number of client requests waiting for their delivery. */
  pending: number;
  keys: number;
  /** Hash of the map; equal on replicas at the same delivered index. */
  digest: string;
}

/** How this replica sees one peer (read-only; for monitoring). */
export interface PeerHealth {
  id: ReplicaId;
  /** Ticks since anything was heard from the peer; null if never. */
  silentTicks: number | null;
  /**
   * This replica's own entries of the current view that the peer has not acknowledged yet; null
   * when the peer is not a member of the view this replica is normal in.
   */
  ackedBehind: number | null;
}
