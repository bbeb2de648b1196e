/**
 * What the replica host needs from durable storage, and the in-memory implementation used when
 * a replica runs without a data directory (tests, and `--fsync never` semantics without a disk).
 *
 * The core emits `persist` and `snapshot` actions; the host appends records, syncs once per
 * event-loop turn (group commit) and reports `synced` back to the core. A snapshot, once durable,
 * supersedes the part of the log it covers.
 *
 * @module
 */
import type { DurableSnapshot, PersistRecord, Recovered } from "../core/types.ts";
import type { BucketCounts } from "./buckets.ts";

/** What a data directory holds and how long its writes take (monitoring). */
export interface StorageStats {
  /** The data directory. */
  dir: string;
  /** Bytes the log's segment files take on disk (segments are preallocated). */
  walBytes: number;
  /** Log segment files on disk. */
  walSegments: number;
  /** Size of the latest durable snapshot file (0 when none). */
  snapshotBytes: number;
  /** Delivered index the latest durable snapshot covers (0 when none). */
  snapshotIndex: number;
  /** Durations of the log's fdatasync calls, seconds (live counts). */
  fsyncSeconds: BucketCounts;
  /** Durations of the snapshots written since start, seconds (live counts). */
  snapshotSeconds: BucketCounts;
}

/** Durable storage of one replica. */
export interface ReplicaStorage {
  /**
   * What was found when the storage was opened (empty for a new replica), handed over once: the
   * storage keeps no reference to it, so that a large log's records (and the bytes they are read
   * from) are garbage once recovery has replayed them.
   *
   * @throws {Error} when it was taken already.
   */
  takeRecovered(): Recovered;
  /** Number of records appended since open (the last record's number). */
  readonly appended: number;
  /** Appends a record; returns its number (1, 2, ... since open). */
  append(record: PersistRecord): number;
  /**
   * Encodes a large record that is about to be appended (an install carrying a state), a piece
   * at a time: the caller lets the event loop run at each step. A later {@link append} of an
   * equal record with the same install object then writes these bytes instead of encoding it
   * in one go. Absent, or yielding nothing, when there is nothing to encode ahead; it never
   * throws (what cannot be encoded is left to the append).
   *
   * `documents`, when given, are the JSON documents of a peer `msgs` frame that holds exactly
   * the NEWVIEW message `record` is the accept record of (`acceptRecordOf`), as it was streamed
   * (`PieceAssembler.takeDocuments`): the storage may log them as they are instead of encoding
   * the state again, and read that frame back as this record.
   */
  encodingAhead?(record: PersistRecord, documents?: readonly Uint8Array[]): Iterable<void>;
  /** Makes every record appended so far durable; resolves with the number durable. */
  sync(): Promise<number>;
  /**
   * Writes `snapshot` durably (possibly in the background); from then on it supersedes every
   * record appended before this call (recovery returns it and only the records appended after),
   * and the storage may drop those records. Until it is durable they stay in the log.
   */
  writeSnapshot(snapshot: DurableSnapshot): void;
  /**
   * True when the log grew large in bytes against the last snapshot, and no snapshot is being
   * written: the host then asks the core for one (`snapshot-due`). Absent: never.
   */
  snapshotDue?(): boolean;
  /** Flushes and releases files. */
  close(): Promise<void>;
  /** Sizes and write durations; absent when nothing is kept on disk. */
  stats?(): StorageStats;
}

/** Storage that keeps nothing: every record is "durable" at once (no data directory). */
export class MemoryStorage implements ReplicaStorage {
  #appended = 0;

  /** Nothing: a new replica. */
  takeRecovered(): Recovered {
    return { records: [] };
  }

  /** Number of records appended. */
  get appended(): number {
    return this.#appended;
  }

  /** Counts the record. */
  append(_record: PersistRecord): number {
    return ++this.#appended;
  }

  /** Resolves with everything appended. */
  sync(): Promise<number> {
    return Promise.resolve(this.#appended);
  }

  /** Nothing to write. */
  writeSnapshot(_snapshot: DurableSnapshot): void {}

  /** Nothing to close. */
  close(): Promise<void> {
    return Promise.resolve();
  }
}
