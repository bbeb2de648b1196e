/**
 * {@link ReplicaStorage} on a data directory: the write-ahead log (`wal.log`), the latest durable
 * snapshot (`snapshot.bin`) and the directory's identity (`IDENTITY`), all from `src/storage/`.
 *
 * @module
 */
import type { DurableSnapshot, PersistRecord, Recovered } from "../core/types.ts";
import { join } from "node:path";
import { DataDirError, type DataDirPaths, openDataDir } from "../storage/data_dir.ts";
import { jsonChunks } from "../storage/json_chunks.ts";
import { readSnapshotFile, writeSnapshotFileStreaming } from "../storage/snapshot_file.ts";
import { type FsyncMode, WriteAheadLog } from "../storage/wal.ts";
import type { ReplicaStorage } from "./storage.ts";

/** What {@link DiskStorage.open} needs. */
export interface DiskStorageOptions {
  /** The data directory (created on first use). */
  dir: string;
  /** Which cluster and replica it belongs to (checked on every open). */
  cluster: string;
  replica: number;
  fsync: FsyncMode;
  /** Where recovery notes go (a truncated torn tail, what was recovered). */
  log: (line: string) => void;
}

const RECORD_KINDS = new Set(["entry", "promise", "accept", "commit"]);

/** A replica's data directory, opened and recovered. */
export class DiskStorage implements ReplicaStorage {
  readonly recovered: Recovered;
  readonly paths: DataDirPaths;
  readonly #wal: WriteAheadLog;
  readonly #lock: Deno.FsFile;
  readonly #log: (line: string) => void;
  /** While a snapshot is being written: the records appended since it was taken. */
  #sinceSnapshot: PersistRecord[] | undefined;
  #snapshotDone: Promise<void> = Promise.resolve();

  private constructor(
    paths: DataDirPaths,
    lock: Deno.FsFile,
    wal: WriteAheadLog,
    recovered: Recovered,
    log: (line: string) => void,
  ) {
    this.paths = paths;
    this.#lock = lock;
    this.#wal = wal;
    this.recovered = recovered;
    this.#log = log;
  }

  /**
   * Opens (or creates) the data directory and reads what it holds. A torn last log record (a
   * crash mid-write) is truncated and logged.
   *
   * @throws {DataDirError} when the directory belongs to another replica or cluster.
   * @throws {CorruptionError} when a snapshot or a log record before the last is damaged.
   */
  static async open(options: DiskStorageOptions): Promise<DiskStorage> {
    const paths = openDataDir(options.dir, { cluster: options.cluster, replica: options.replica });
    const lock = await lockDataDir(paths.dir);
    let snapshot: DurableSnapshot | undefined;
    let opened;
    try {
      snapshot = readSnapshotFile(paths.snapshot) as DurableSnapshot | undefined;
      opened = await WriteAheadLog.open(paths.wal, { fsync: options.fsync });
    } catch (err) {
      lock.close();
      throw err;
    }
    const { wal, records, tornTail } = opened;
    if (tornTail) {
      options.log(
        `recovery: truncated a torn record at byte ${tornTail.offset} of ${paths.wal} ` +
          `(${tornTail.reason}); it was never acknowledged`,
      );
    }
    for (const [i, record] of records.entries()) {
      const kind = (record as { r?: unknown })?.r;
      if (typeof kind !== "string" || !RECORD_KINDS.has(kind)) {
        await wal.close();
        lock.close();
        throw new Error(`${paths.wal}: record ${i + 1} is not a lamportkv record`);
      }
    }
    if (snapshot || records.length > 0) {
      options.log(
        `recovery: ${snapshot ? `snapshot at index ${snapshot.snapshot.index}, ` : ""}` +
          `${records.length} log records from ${paths.dir}`,
      );
    }
    return new DiskStorage(
      paths,
      lock,
      wal,
      { snapshot, records: records as PersistRecord[] },
      options.log,
    );
  }

  /** Records appended since open. */
  get appended(): number {
    return this.#wal.appended;
  }

  /** Appends to the log (buffered; durable after {@link sync}). */
  append(record: PersistRecord): number {
    this.#sinceSnapshot?.push(record);
    return this.#wal.append(record);
  }

  /** Group commit: one fsync for everything appended so far (per the fsync mode). */
  sync(): Promise<number> {
    return this.#wal.sync();
  }

  /**
   * Starts writing the snapshot in the background (in pieces, so the event loop keeps serving);
   * the log keeps growing meanwhile. Once the snapshot is durable, the log is replaced by the
   * records appended since the snapshot was taken. If a snapshot is still being written this one
   * is skipped (the next will come); if writing fails the log is simply kept.
   */
  writeSnapshot(snapshot: DurableSnapshot): void {
    if (this.#sinceSnapshot !== undefined) return;
    const since: PersistRecord[] = [];
    this.#sinceSnapshot = since;
    this.#snapshotDone = writeSnapshotFileStreaming(this.paths.snapshot, jsonChunks(snapshot))
      .then(() => {
        this.#sinceSnapshot = undefined;
        this.#wal.replace(since);
      }, (err) => {
        this.#sinceSnapshot = undefined;
        this.#log(`snapshot at index ${snapshot.snapshot.index} not written (log kept): ${err}`);
      });
  }

  /** Resolves when no snapshot is being written. */
  snapshotIdle(): Promise<void> {
    return this.#snapshotDone;
  }

  /** Waits for a snapshot being written, flushes and closes the log, releases the directory. */
  async close(): Promise<void> {
    await this.#snapshotDone;
    try {
      await this.#wal.close();
    } finally {
      this.#lock.close();
    }
  }
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
