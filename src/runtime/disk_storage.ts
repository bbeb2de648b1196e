/**
 * {@link ReplicaStorage} on a data directory: the write-ahead log (segments `wal-*.log`), the
 * latest durable snapshot (`snapshot.bin`) and the directory's identity (`IDENTITY`), all from
 * `src/storage/`.
 *
 * A snapshot file stores, besides the replica's state, the log position at which it was taken
 * (`walFrom`): recovery reads the snapshot, then the log records from that position on. The
 * segments before it are deleted once the snapshot is durable (and on open, if a crash came
 * first), so compaction never rewrites the log.
 *
 * @module
 */
import type { DurableSnapshot, Install, PersistRecord, Recovered } from "../core/types.ts";
import { join } from "node:path";
import { upgradeDurableSnapshot, upgradeRecord } from "../kv/legacy.ts";
import { CodecError, frameFromWire, persistRecordFromValue } from "../net/peer_codec.ts";
import { acceptRecordOf } from "../core/replica.ts";
import {
  DataDirError,
  type DataDirPaths,
  type FoundingReplica,
  openDataDir,
} from "../storage/data_dir.ts";
import { readSnapshotFile, writeSnapshotFileStreaming } from "../storage/snapshot_file.ts";
import { CorruptionError } from "../storage/record_codec.ts";
import { type FsyncMode, type WalPosition, WriteAheadLog } from "../storage/wal.ts";
import type { ReplicaStorage, StorageStats } from "./storage.ts";
import { BucketCounts, LATENCY_BOUNDS, SLOW_BOUNDS } from "./buckets.ts";
import { segmentPath } from "../storage/wal_segments.ts";
import type { Log } from "../log/logger.ts";
import { MAX_RECORD_BYTES, SLOW_FSYNC_MS, SNAPSHOT_LOG_MIN_BYTES } from "../limits.ts";
import { documentRecords, groupRecords } from "../storage/record_groups.ts";
import type { LazyArray } from "../codec/lazy_array.ts";
import type { LoadProgress } from "./load_progress.ts";

/**
 * Checks log record number `index` (0-based) of the log in `dir` field by field, as the peer wire's
 * messages are checked (`persistRecordFromValue`); a record of a release before the command
 * registry is checked once converted to today's form. Returns the checked record (in today's
 * form), which recovery keeps instead of the decoded one.
 *
 * A record may also be a peer `msgs` frame holding one NEWVIEW message that carries a state: a
 * replica that accepted a state a peer streamed logged the frame's documents as they came
 * ({@link DiskStorage.encodingAhead}). It is checked as a frame from a peer is and stands for the
 * accept record of that message.
 *
 * @throws {CorruptionError} naming the record and the offending field.
 */
export function checkLogRecord(record: unknown, index: number, dir: string): PersistRecord {
  try {
    return acceptOfFrame(record) ?? persistRecordFromValue(record);
  } catch (err) {
    try {
      return persistRecordFromValue(upgradeRecord(record as PersistRecord));
    } catch {
      // Not an older form either: report what is wrong with it as it is.
    }
    throw new CorruptionError(`${dir}: log record ${index + 1}: ${(err as Error).message}`);
  }
}

type AcceptRecord = Extract<PersistRecord, { r: "accept" }>;

/**
 * The accept record that a logged peer frame stands for (see {@link checkLogRecord}), or
 * undefined when `value` is not shaped as a peer frame (no `kind` field).
 *
 * @throws {CodecError} when it is a frame, but not a valid `msgs` frame holding exactly one
 * NEWVIEW message carrying a state.
 */
function acceptOfFrame(value: unknown): AcceptRecord | undefined {
  if (typeof value !== "object" || value === null || !Object.hasOwn(value, "kind")) {
    return undefined;
  }
  const frame = frameFromWire(value);
  const msg = frame.kind === "msgs" && frame.msgs.length === 1 ? frame.msgs[0] : undefined;
  if (msg?.type !== "newview" || msg.install.snapshot === undefined) {
    throw new CodecError(
      "record: a logged peer frame must hold exactly one NEWVIEW message carrying a state",
    );
  }
  return acceptRecordOf(msg);
}

/**
 * True when accept records `a` and `b` are the same value: the same install object (states are
 * never changed once made) and the same other fields.
 */
function sameAccept(a: AcceptRecord, b: AcceptRecord): boolean {
  const shell = (r: AcceptRecord) => JSON.stringify({ ...r, install: null });
  return a.install === b.install && shell(a) === shell(b);
}

/** What {@link DiskStorage.open} needs. */
export interface DiskStorageOptions {
  /** The data directory (created on first use). */
  dir: string;
  /** Which cluster and replica it belongs to (checked on every open). */
  cluster: string;
  replica: number;
  /** The founding replicas, kept in a new directory's identity (absent: a joining replica). */
  founding?: FoundingReplica[];
  fsync: FsyncMode;
  /** Size log segments are preallocated to (default: the log's, 16 MiB). */
  segmentBytes?: number;
  /** Where recovery, snapshot, log truncation and slow-sync events go. */
  log: Log;
  /** Told the sizes of the snapshot file and the log's records, then the log's bytes replayed. */
  progress?: LoadProgress;
}

/** A replica's data directory, opened and recovered. */
export class DiskStorage implements ReplicaStorage {
  #recovered: Recovered | undefined;
  readonly paths: DataDirPaths;
  readonly #wal: WriteAheadLog;
  readonly #lock: Deno.FsFile;
  readonly #log: Log;
  #writingSnapshot = false;
  #snapshotDone: Promise<void> = Promise.resolve();
  #closing: Promise<void> | undefined;
  /** Monitoring: fsync and snapshot durations, the latest durable snapshot's index and size. */
  readonly #fsyncSeconds = new BucketCounts(LATENCY_BOUNDS);
  readonly #snapshotSeconds = new BucketCounts(SLOW_BOUNDS);
  /** Installs encoded ahead ({@link encodingAhead}), with the record each was encoded for. */
  readonly #ahead = new WeakMap<Install, { record: AcceptRecord; records: Uint8Array[][] }>();
  #snapshotIndex: number;
  #snapshotBytes: number;
  /** Where the log after the latest durable snapshot starts. */
  #snapshotFrom: WalPosition;

  private constructor(
    paths: DataDirPaths,
    lock: Deno.FsFile,
    wal: WriteAheadLog,
    recovered: Recovered,
    log: Log,
    snapshotFrom: WalPosition,
  ) {
    this.paths = paths;
    this.#lock = lock;
    this.#wal = wal;
    this.#recovered = recovered;
    this.#log = log;
    wal.onFsync = (seconds) => this.#fsyncSeconds.observe(seconds);
    this.#snapshotIndex = recovered.snapshot?.snapshot.index ?? 0;
    this.#snapshotBytes = fileSize(paths.snapshot);
    this.#snapshotFrom = snapshotFrom;
  }

  /**
   * Opens (or creates) the data directory and reads what it holds. A torn or reordered log tail
   * after the point the log last reported durable (a crash or power loss mid-write; never
   * acknowledged) is truncated and logged.
   *
   * @throws {DataDirError} when the directory belongs to another replica or cluster.
   * @throws {CorruptionError} when a snapshot, or a log record before that point, is damaged.
   */
  static async open(options: DiskStorageOptions): Promise<DiskStorage> {
    const paths = openDataDir(options.dir, {
      cluster: options.cluster,
      replica: options.replica,
      ...(options.founding === undefined ? {} : { founding: options.founding }),
    });
    const lock = await lockDataDir(paths.dir);
    let snapshot: DurableSnapshot | undefined;
    let snapshotFrom: WalPosition = { segment: 0, offset: 0 };
    let opened;
    // The snapshot file's size is known before it is read (seconds at millions of keys); the
    // log's, once its records' framing is checked.
    options.progress?.sized(fileSize(paths.snapshot), 0);
    try {
      const stored = readStoredSnapshot(paths.snapshot, options.progress);
      snapshot = stored?.snapshot;
      if (stored !== undefined) snapshotFrom = stored.walFrom;
      opened = await WriteAheadLog.open(paths.dir, {
        fsync: options.fsync,
        segmentBytes: options.segmentBytes,
        from: stored?.walFrom,
        check: (record, i) => checkLogRecord(record, i, paths.dir),
        onRead: (bytes) => options.progress?.replayed(bytes),
      });
    } catch (err) {
      lock.close();
      throw err;
    }
    const { wal, records, tornTail } = opened;
    if (tornTail) {
      options.log.warn(
        "recovery.torn_tail",
        `recovery: cut off a torn record at byte ${tornTail.offset} of ${tornTail.file} ` +
          `(${tornTail.reason}); it was never acknowledged`,
        { file: tornTail.file, offset: tornTail.offset },
      );
    }
    if (snapshot || records.length > 0) {
      options.log.info(
        "recovery.done",
        `recovery: ${snapshot ? `snapshot at index ${snapshot.snapshot.index}, ` : ""}` +
          `${records.length} log records from ${paths.dir}`,
        { snapshotIndex: snapshot?.snapshot.index, records: records.length, dir: paths.dir },
      );
    }
    const storage = new DiskStorage(
      paths,
      lock,
      wal,
      {
        snapshot: snapshot && upgradeDurableSnapshot(snapshot),
        // In today's form once read: what checkLogRecord returns.
        records: records as LazyArray<PersistRecord>,
      },
      options.log,
      snapshotFrom,
    );
    options.progress?.sized(storage.#snapshotBytes, opened.bytes);
    return storage;
  }

  /** {@link ReplicaStorage.takeRecovered}: its log records are decoded and checked as read. */
  takeRecovered(): Recovered {
    const recovered = this.#recovered;
    if (recovered === undefined) throw new Error("the recovered state was taken already");
    this.#recovered = undefined;
    return recovered;
  }

  /** Records appended since open. */
  get appended(): number {
    return this.#wal.appended;
  }

  /**
   * Appends to the log (buffered; durable after {@link sync}; synced here with `always`). An
   * install carrying a snapshot (a replica's whole state) goes as a group of records of about 1
   * MiB each, never as one string, whatever the state's size.
   */
  append(record: PersistRecord): number {
    const started = performance.now();
    let n: number;
    if (record.r === "accept" && record.install.snapshot !== undefined) {
      const ahead = this.#ahead.get(record.install);
      this.#ahead.delete(record.install);
      n = ahead !== undefined && sameAccept(ahead.record, record)
        ? this.#wal.appendGroup(ahead.records)
        : this.#wal.appendLarge(record);
    } else {
      n = this.#wal.append(record);
    }
    this.#noteSync(started);
    return n;
  }

  /**
   * Encodes an install carrying a state (what {@link append} writes as a group of records of
   * about 1 MiB each) a record at a time, yielding after each; kept until that install is
   * appended (or dropped with it). Anything else yields nothing, and so does the rest of a record
   * that turns out to have no encoding (its append then fails as it would have).
   *
   * With `documents` (the streamed frame of the message, see {@link ReplicaStorage.encodingAhead})
   * the group's records are those documents as they are, only framed and checksummed: recovery
   * reads the frame back as this record ({@link checkLogRecord}). A document too large for a
   * record (one element of a state over a record's limit) leaves the record to be encoded as a
   * whole instead.
   */
  *encodingAhead(record: PersistRecord, documents?: readonly Uint8Array[]): Generator<void> {
    if (record.r !== "accept" || record.install.snapshot === undefined) return;
    const fits = documents?.every((doc) => doc.length <= MAX_RECORD_BYTES) === true;
    const records: Uint8Array[][] = [];
    try {
      for (const parts of fits ? documentRecords(documents!) : groupRecords(record)) {
        records.push(parts);
        yield;
      }
    } catch {
      return; // no encoding: left to the append, which fails as it would have
    }
    this.#ahead.set(record.install, { record, records });
  }

  /** Group commit: one fsync for everything appended so far (per the fsync mode). */
  sync(): Promise<number> {
    const started = performance.now();
    return this.#wal.sync().then((upTo) => {
      this.#noteSync(started);
      return upTo;
    });
  }

  /** Logs a log write and sync that took more than {@link SLOW_FSYNC_MS} (rate-limited). */
  #noteSync(started: number): void {
    const ms = Math.round(performance.now() - started);
    if (ms <= SLOW_FSYNC_MS) return;
    this.#log.limited("warn", "wal.slow_fsync", "wal", `log sync took ${ms} ms`, { ms });
  }

  /**
   * Starts writing the snapshot in the background (in pieces, so the event loop keeps serving);
   * the log keeps growing meanwhile. The snapshot stores the log position of this moment; once it
   * is durable the segments before that position are deleted. If a snapshot is still being
   * written this one is skipped (the next will come); if writing fails the log is simply kept.
   */
  writeSnapshot(snapshot: DurableSnapshot): void {
    if (this.#writingSnapshot) return;
    this.#writingSnapshot = true;
    const walFrom = this.#wal.position;
    const stored: StoredSnapshot = { ...snapshot, walFrom };
    const index = snapshot.snapshot.index;
    const started = performance.now();
    this.#snapshotDone = writeSnapshotFileStreaming(this.paths.snapshot, stored)
      .then(() => {
        this.#writingSnapshot = false;
        const ms = performance.now() - started;
        this.#snapshotSeconds.observe(ms / 1000);
        this.#snapshotIndex = index;
        this.#snapshotBytes = fileSize(this.paths.snapshot);
        this.#snapshotFrom = walFrom;
        this.#log.info("snapshot.written", `snapshot at index ${index} written`, {
          index,
          bytes: this.#snapshotBytes,
          ms: Math.round(ms),
        });
        const before = this.#wal.segments.length;
        try {
          this.#wal.releaseBefore(walFrom);
        } catch (err) {
          this.#log.warn(
            "log.truncate_failed",
            `log segments before the snapshot not all deleted (next start will): ${err}`,
          );
        }
        const deleted = before - this.#wal.segments.length;
        if (deleted > 0) {
          this.#log.info("log.truncated", `deleted ${deleted} log segments before the snapshot`, {
            segments: deleted,
            index,
          });
        }
      }, (err) => {
        this.#writingSnapshot = false;
        this.#log.error(
          "snapshot.failed",
          `snapshot at index ${index} not written (log kept): ${err}`,
          { index },
        );
      });
  }

  /**
   * {@link ReplicaStorage.snapshotDue}: no snapshot is being written, and the log after the
   * latest one takes at least {@link SNAPSHOT_LOG_MIN_BYTES} and at least as many bytes as that
   * snapshot's file (Redis's rewrite rule: the log grew by 100% of the base, 64 MB at least).
   * Deliveries are counted by the core; this sees the bytes, which large values make grow far
   * faster than the deliveries.
   */
  snapshotDue(): boolean {
    if (this.#writingSnapshot) return false;
    const bytes = this.#wal.bytesSince(this.#snapshotFrom);
    return bytes >= SNAPSHOT_LOG_MIN_BYTES && bytes >= this.#snapshotBytes;
  }

  /** Sizes on disk (a stat per log segment) and write durations. */
  stats(): StorageStats {
    const segments = this.#wal.segments;
    let walBytes = 0;
    for (const n of segments) walBytes += fileSize(segmentPath(this.paths.dir, n));
    return {
      dir: this.paths.dir,
      walBytes,
      walSegments: segments.length,
      snapshotBytes: this.#snapshotBytes,
      snapshotIndex: this.#snapshotIndex,
      fsyncSeconds: this.#fsyncSeconds,
      snapshotSeconds: this.#snapshotSeconds,
    };
  }

  /** Resolves when no snapshot is being written. */
  snapshotIdle(): Promise<void> {
    return this.#snapshotDone;
  }

  /**
   * Waits for a snapshot being written, flushes and closes the log, releases the directory.
   * Calling it again returns the same promise.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    await this.#snapshotDone.catch(() => {});
    try {
      await this.#wal.close();
    } finally {
      this.#lock.close();
    }
  }
}

/** The snapshot file's content: the replica's durable state and where the log continues. */
type StoredSnapshot = DurableSnapshot & { walFrom: WalPosition };

/**
 * Reads the snapshot file, if any, and splits off its log position. A snapshot written before the
 * log had segments has none: its log (`wal.log`, now segment 0) holds only later records.
 *
 * @throws {CorruptionError} when the file is damaged or its log position is malformed.
 */
function readStoredSnapshot(
  path: string,
  progress: LoadProgress | undefined,
): { snapshot: DurableSnapshot; walFrom: WalPosition } | undefined {
  const raw = readSnapshotFile(path, progress && ((bytes) => progress.read(bytes))) as
    | StoredSnapshot
    | undefined;
  if (raw === undefined) return undefined;
  const { walFrom, ...snapshot } = raw;
  if (walFrom === undefined) return { snapshot, walFrom: { segment: 0, offset: 0 } };
  const { segment, offset } = walFrom as Partial<WalPosition>;
  if (!isCount(segment) || !isCount(offset)) {
    throw new CorruptionError(`${path}: malformed log position ${JSON.stringify(walFrom)}`, {
      file: path,
    });
  }
  return { snapshot, walFrom: { segment, offset } };
}

/** Size of the file at `path`; 0 when it does not exist (e.g. deleted meanwhile). */
function fileSize(path: string): number {
  try {
    return Deno.statSync(path).size;
  } catch {
    return 0;
  }
}

function isCount(n: unknown): n is number {
  return typeof n === "number" && Number.isSafeInteger(n) && n >= 0;
}

/** How long to wait for the data directory's lock before calling it in use. */
const LOCK_WAIT_MS = 500;

/**
 * Takes the exclusive lock of a data directory (flock on `LOCK`, held while the file is open and
 * released by the kernel when the process dies), so that a replica started twice on one
 * directory is refused before it reads or repairs anything.
 *
 * @throws {DataDirError} when another process holds it.
 */
async function lockDataDir(dir: string): Promise<Deno.FsFile> {
  const file = await Deno.open(join(dir, "LOCK"), { read: true, write: true, create: true });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const acquired = await Promise.race([
    file.lock(true).then(() => true),
    new Promise<boolean>((resolve) => timer = setTimeout(() => resolve(false), LOCK_WAIT_MS)),
  ]);
  clearTimeout(timer);
  if (!acquired) {
    // The pending lock request ends with the process, which is about to exit.
    throw new DataDirError(
      `data directory ${dir} is in use by another process (is this replica already running?)`,
    );
  }
  return file;
}
