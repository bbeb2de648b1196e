/**
 * The write-ahead log: one append-only file of JSON records, each framed and checksummed by
 * `record_codec.ts`.
 *
 * {@link WriteAheadLog.append} is cheap: it JSON-encodes and frames the record into an in-memory
 * buffer. {@link WriteAheadLog.sync} writes everything buffered with one write and makes it
 * durable according to the {@link FsyncMode}:
 *
 * - `"always"`: every `append` writes and fdatasyncs before it returns (synchronous; slow, simple).
 * - `"batch"`: group commit. `sync()` writes the buffer and runs one fdatasync for all of it; calls
 *   made while an fdatasync is running share the next one, so there are never two at once and a
 *   burst of appends costs one fdatasync.
 * - `"never"`: `sync()` writes to the OS without fdatasync: survives a process crash, not a power
 *   failure or kernel crash.
 *
 * Record numbers count appends since {@link WriteAheadLog.open}: 1, 2, ... . `synced` is the
 * number of the last record known durable (per the mode), so a caller that must not act before
 * record `n` is durable waits until `synced >= n`.
 *
 * Crash safety: a crash can leave a partly written record at the end of the file; `open` reports
 * it and truncates it away. Damage anywhere else throws {@link CorruptionError}: the log is never
 * silently shortened past a valid record. {@link WriteAheadLog.replace} swaps the whole file
 * atomically (temporary file, fsync, rename, directory fsync); a leftover temporary file from a
 * crash during a replace is removed by `open`.
 *
 * After a write or fdatasync fails the log accepts nothing more (the state of the file is then
 * unknown; retrying fsync after a failure is not safe on Linux): every later call throws the
 * first failure. Restart and reopen to recover what is on disk.
 *
 * @module
 */

import { concatBytes } from "../kv/bytes.ts";
import { dirname } from "node:path";
import { CorruptionError, encodeRecord, RECORD_HEADER_BYTES, scanRecords } from "./record_codec.ts";
import {
  jsonBytes,
  parseJsonPayload,
  syncDirectory,
  TEMP_SUFFIX,
  writeAllSync,
} from "./snapshot_file.ts";

export { CorruptionError };

/** When the log fdatasyncs; see the module documentation. */
export type FsyncMode = "always" | "batch" | "never";

/** The result of {@link WriteAheadLog.open}. */
export interface OpenedWal {
  /** The open log, positioned after the last valid record. */
  wal: WriteAheadLog;
  /** The records found in the file, in order (parsed JSON). */
  records: unknown[];
  /** The torn record found (and truncated away) at the end of the file, if any. */
  tornTail: { offset: number; reason: string } | null;
}

/** Counters for diagnostics and tests. */
export interface WalStats {
  /** write calls that carried records to the file (a short write retried counts once). */
  writes: number;
  /** fdatasync calls made on the log file. */
  fsyncs: number;
}

const FSYNC_MODES: readonly FsyncMode[] = ["always", "batch", "never"];

/** An append-only log of JSON records in one file. Create it with {@link WriteAheadLog.open}. */
export class WriteAheadLog {
  /** Path of the log file. */
  readonly path: string;
  /** The fsync mode it was opened with. */
  readonly mode: FsyncMode;

  #file: Deno.FsFile;
  /** Files superseded by `replace()` while an fdatasync on them was still running. */
  #retired: Deno.FsFile[] = [];
  #buffer: Uint8Array[] = [];
  #bufferBytes = 0;
  #fileBytes: number;
  #appended = 0;
  #synced = 0;
  /** The fdatasync round in flight, and the record number it makes durable. */
  #round: Promise<number> | null = null;
  #roundTarget = 0;
  /** The round queued to start when the current one ends (shared by every caller meanwhile). */
  #next: Promise<number> | null = null;
  #failure: Error | null = null;
  #closing: Promise<void> | null = null;
  #stats: WalStats = { writes: 0, fsyncs: 0 };

  private constructor(path: string, mode: FsyncMode, file: Deno.FsFile, fileBytes: number) {
    this.path = path;
    this.mode = mode;
    this.#file = file;
    this.#fileBytes = fileBytes;
  }

  /**
   * Opens the log at `path`, creating it if missing (the parent directory must exist), and reads
   * every record. A torn record at the end is truncated away on disk and reported; a leftover
   * temporary file of an interrupted {@link replace} is removed.
   *
   * @throws {CorruptionError} if a record other than the last is damaged (nothing is changed on
   * disk then), or a record with a valid checksum is not JSON.
   */
  static async open(path: string, options: { fsync: FsyncMode }): Promise<OpenedWal> {
    const mode = options.fsync;
    if (!FSYNC_MODES.includes(mode)) {
      throw new TypeError(`unknown fsync mode ${JSON.stringify(mode)} (always, batch or never)`);
    }
    try {
      await Deno.remove(path + TEMP_SUFFIX);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    let file: Deno.FsFile;
    let created = false;
    try {
      file = await Deno.open(path, { read: true, write: true, createNew: true });
      created = true;
    } catch (e) {
      if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
      file = await Deno.open(path, { read: true, write: true });
    }
    try {
      if (created) syncDirectory(dirname(path));
      const bytes = created ? new Uint8Array(0) : await Deno.readFile(path);
      const scan = scanRecords(bytes, path);
      const records: unknown[] = [];
      let offset = 0;
      for (const payload of scan.payloads) {
        records.push(parseJsonPayload(payload, path, offset));
        offset += RECORD_HEADER_BYTES + payload.length;
      }
      if (scan.tornTail !== null) {
        await file.truncate(scan.validBytes);
        await file.sync();
      }
      await file.seek(scan.validBytes, Deno.SeekMode.Start);
      const wal = new WriteAheadLog(path, mode, file, scan.validBytes);
      return { wal, records, tornTail: scan.tornTail };
    } catch (e) {
      file.close();
      throw e;
    }
  }

  /**
   * Appends `record` (JSON-compatible) and returns its number (1, 2, ... counting from `open`).
   * In `"always"` mode it is written and fdatasync'ed before this returns; otherwise it is
   * buffered until the next {@link sync} (or {@link close}).
   *
   * @throws {TypeError} if `record` cannot be JSON-encoded (nothing is appended then); the first
   * failure if the log has failed; an error if it is closed.
   */
  append(record: unknown): number {
    this.#checkUsable();
    const frame = encodeRecord(jsonBytes(record, `write-ahead log ${this.path}`));
    const number = this.#appended + 1;
    if (this.mode === "always") {
      this.#write(frame);
      this.#fdatasyncSync();
      this.#appended = number;
      this.#synced = number;
      return number;
    }
    this.#buffer.push(frame);
    this.#bufferBytes += frame.length;
    this.#appended = number;
    return number;
  }

  /** Number of the last record appended (0 before the first append). */
  get appended(): number {
    return this.#appended;
  }

  /** Number of the last record known durable per the mode (written, in `"never"` mode). */
  get synced(): number {
    return this.#synced;
  }

  /** Size of the log in bytes, including records buffered but not yet written. */
  get sizeBytes(): number {
    return this.#fileBytes + this.#bufferBytes;
  }

  /** Write and fdatasync counts since open (diagnostics). */
  get stats(): WalStats {
    return { ...this.#stats };
  }

  /**
   * Writes everything buffered and makes it durable; resolves with {@link synced}, which is then
   * at least the value `appended` had when this was called. With nothing new it resolves at once
   * without an fsync. In `"batch"` mode calls made while an fdatasync is running share the next
   * one; in `"never"` mode it writes without fsync; in `"always"` mode there is never anything to
   * do. While the log is closing it resolves once the close has flushed.
   *
   * @throws (rejects with) the first failure if a write or fdatasync failed.
   */
  sync(): Promise<number> {
    if (this.#closing !== null) return this.#closing.then(() => this.#synced);
    if (this.#failure !== null) return Promise.reject(this.#failure);
    if (this.mode === "batch") return this.#groupCommit();
    if (this.mode === "never" && this.#appended > this.#synced) {
      try {
        this.#writeBuffered();
      } catch (e) {
        return Promise.reject(e);
      }
      this.#synced = this.#appended;
    }
    return Promise.resolve(this.#synced);
  }

  /**
   * Atomically replaces the whole log with `records` (compaction): writes them to a temporary
   * file, fsyncs it, renames it over the log and fsyncs the directory. Synchronous; when it
   * returns the new log is durable. After a crash at any point the file holds either the old log
   * or exactly `records`.
   *
   * Call it only at a point where `records` supersede everything appended so far: records
   * appended but not yet written are discarded, not flushed, and everything appended counts as
   * durable afterwards (`synced` becomes `appended`). Numbering continues: the replacement
   * records get no numbers, and the next `append` returns `appended + 1`. If it throws before the
   * rename the old log is unchanged and still in use.
   *
   * @throws {TypeError} if a record cannot be JSON-encoded (nothing changes then); I/O errors.
   */
  replace(records: unknown[]): void {
    this.#checkUsable();
    const what = `write-ahead log ${this.path}`;
    const bytes = concatBytes(records.map((r) => encodeRecord(jsonBytes(r, what))));
    const temp = this.path + TEMP_SUFFIX;
    let file: Deno.FsFile | null = null;
    try {
      file = Deno.openSync(temp, { write: true, create: true, truncate: true });
      writeAllSync(file, bytes);
      file.syncSync();
      Deno.renameSync(temp, this.path);
    } catch (e) {
      file?.close();
      try {
        Deno.removeSync(temp);
      } catch {
        // Best effort; open() removes a leftover temporary file anyway.
      }
      throw e;
    }
    const old = this.#file;
    this.#file = file;
    if (this.#round !== null) this.#retired.push(old);
    else old.close();
    this.#buffer = [];
    this.#bufferBytes = 0;
    this.#fileBytes = bytes.length;
    this.#synced = this.#appended;
    try {
      syncDirectory(dirname(this.path));
    } catch (e) {
      throw this.#fail(e);
    }
  }

  /**
   * Flushes buffered records (with fdatasync unless the mode is `"never"`), waits for a running
   * fdatasync, and closes the file. Calling it again returns the same promise. Appending after
   * close throws.
   *
   * @throws (rejects with) the failure if records could not be made durable; the file is closed
   * regardless.
   */
  close(): Promise<void> {
    if (this.#closing === null) this.#closing = this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    let error: Error | null = null;
    try {
      const running = this.#next ?? this.#round;
      if (running !== null) await running.catch(() => {});
      if (this.#failure === null && this.#appended > this.#synced) {
        this.#writeBuffered();
        if (this.mode !== "never") await this.#fdatasync(this.#file);
        this.#synced = this.#appended;
      }
      if (this.#failure !== null && this.#appended > this.#synced) error = this.#failure;
    } catch (e) {
      error = this.#fail(e);
    } finally {
      for (const file of [this.#file, ...this.#retired]) {
        try {
          file.close();
        } catch {
          // Already closed.
        }
      }
      this.#retired = [];
    }
    if (error !== null) throw error;
  }

  #groupCommit(): Promise<number> {
    // A queued round has not started yet: it will write everything appended by then.
    if (this.#next !== null) return this.#next;
    if (this.#round !== null) {
      if (this.#roundTarget >= this.#appended) return this.#round;
      const startNext = () => {
        this.#next = null;
        return this.#startRound();
      };
      this.#next = this.#round.then(startNext, startNext);
      return this.#next;
    }
    return this.#startRound();
  }

  #startRound(): Promise<number> {
    if (this.#failure !== null) return Promise.reject(this.#failure);
    if (this.#synced >= this.#appended) return Promise.resolve(this.#synced);
    const target = this.#appended;
    try {
      this.#writeBuffered();
    } catch (e) {
      return Promise.reject(e);
    }
    this.#roundTarget = target;
    const round = this.#runRound(this.#file, target);
    this.#round = round;
    return round;
  }

  async #runRound(file: Deno.FsFile, target: number): Promise<number> {
    try {
      await this.#fdatasync(file);
    } catch (e) {
      // A failure on a file that replace() has since superseded loses nothing.
      if (file === this.#file) throw this.#fail(e);
    } finally {
      this.#round = null;
      for (const retired of this.#retired) retired.close();
      this.#retired = [];
    }
    if (target > this.#synced) this.#synced = target;
    return this.#synced;
  }

  /** Writes the buffer to the file with one write call (looping only over short writes). */
  #writeBuffered(): void {
    if (this.#bufferBytes === 0) return;
    const bytes = this.#buffer.length === 1 ? this.#buffer[0] : concatBytes(this.#buffer);
    this.#buffer = [];
    this.#bufferBytes = 0;
    this.#write(bytes);
  }

  #write(bytes: Uint8Array): void {
    try {
      writeAllSync(this.#file, bytes);
    } catch (e) {
      throw this.#fail(e);
    }
    this.#stats.writes++;
    this.#fileBytes += bytes.length;
  }

  async #fdatasync(file: Deno.FsFile): Promise<void> {
    this.#stats.fsyncs++;
    await file.syncData();
  }

  #fdatasyncSync(): void {
    this.#stats.fsyncs++;
    try {
      this.#file.syncDataSync();
    } catch (e) {
      throw this.#fail(e);
    }
  }

  /** Records the first failure (the log accepts nothing after it) and returns it. */
  #fail(cause: unknown): Error {
    if (this.#failure === null) {
      const message = cause instanceof Error ? cause.message : String(cause);
      this.#failure = new Error(
        `write-ahead log ${this.path} failed: ${message}; it accepts no more records ` +
          `(restart to recover what is on disk)`,
        { cause },
      );
    }
    return this.#failure;
  }

  #checkUsable(): void {
    if (this.#closing !== null) throw new Error(`write-ahead log ${this.path} is closed`);
    if (this.#failure !== null) throw this.#failure;
  }
}
