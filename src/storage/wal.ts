/**
 * The write-ahead log: records, each framed and checksummed by `record_codec.ts`, in preallocated
 * segment files (`wal_segments.ts`), the way etcd's WAL is laid out.
 *
 * A record's payload is the byte {@link BINARY_RECORD_TAG} followed by the record in the binary
 * value codec (`src/codec/binary_value.ts`, the codec of peer messages too). A payload that starts
 * with `{` is the UTF-8 JSON of a record written by an older release, still read; a record too
 * large for one record (a replica's whole state) is a group of JSON documents
 * (`record_groups.ts`).
 *
 * {@link WriteAheadLog.append} is cheap: it encodes and frames the record into an in-memory
 * buffer and gives it its place, a segment and a byte offset. {@link WriteAheadLog.sync} writes
 * everything buffered and makes it durable according to the {@link FsyncMode}:
 *
 * - `"always"`: every `append` writes and fdatasyncs before it returns (synchronous; slow, simple).
 * - `"batch"`: group commit. `sync()` writes the buffer and runs one fdatasync for all of it; calls
 *   made while an fdatasync is running share the next one, so there are never two at once and a
 *   burst of appends costs one fdatasync.
 * - `"never"`: `sync()` writes to the OS without fdatasync: survives a process crash, not a power
 *   failure or kernel crash.
 *
 * Segments: each is preallocated to `segmentBytes` (its size set, a hole that reads as zeros, no
 * data written) and fsync'ed in the background before it is used, so appends never change the
 * file size. (It used to be zero-filled: that doubled the disk writes and, measured on Linux,
 * made each fdatasync of a small append write back about 1 MiB; see README, Performance.) A
 * record goes into the current segment if it fits (a larger one
 * fills an empty segment alone); otherwise into the next. Before the first record of a segment is
 * written the previous segment is fdatasync'ed, and the directory is fsync'ed before that record
 * counts, so a crash never leaves a hole before a later record. When the next segment is not
 * ready in time, a plain file is created instead (correct, only slower to sync).
 *
 * Compaction is by position, not by rewriting: {@link WriteAheadLog.position} is where the next
 * record goes; a snapshot taken now stores it, and once the snapshot is durable,
 * {@link WriteAheadLog.releaseBefore} deletes the segments before it. Opening with `from` (the
 * snapshot's position) skips the records before it and deletes the segments wholly before it, so
 * a crash between the snapshot and the deletion changes nothing.
 *
 * Record numbers count appends since {@link WriteAheadLog.open}: 1, 2, ... . `synced` is the
 * number of the last record known durable (per the mode), so a caller that must not act before
 * record `n` is durable waits until `synced >= n`.
 *
 * Crash safety and the sync mark: a power loss can leave the writes made since the last
 * fdatasync partly on disk, in any order (the OS may have written later pages of the file but not
 * earlier ones) and the last one torn; a process crash can leave a partly written record. So
 * after each fdatasync returns, the log writes where it is now durable to a small mark file
 * (`wal_mark.ts`: two checksummed slots written alternately, so a torn update is detected and the
 * older slot used; fdatasync'ed in the background, never on the acknowledgement path). A mark is
 * only ever written after the data it covers is durable, so any mark read back is at most the
 * true durable point: a stale mark is safe. `open` then decides (`wal_recovery.ts`): a bad record
 * after the mark is a torn tail, cut off with everything after it even when valid records follow
 * it (they were never reported synced, so never acknowledged); a bad record before the mark, or
 * one followed by a valid record in a later segment (a segment is fdatasync'ed before the next
 * one is written), is damage to data that may have been acknowledged: {@link CorruptionError},
 * and nothing on disk is changed. A stale mark only narrows what is checked: within the
 * power-loss model the data between it and the true durable point is intact anyway, so it is
 * never cut; only damage there from another cause (a bad disk) would go unnoticed. A log without
 * a mark (written before marks existed) is read by the older rule: a bad record followed by a
 * valid one in its segment is damage, else a torn tail. `open` fdatasyncs every segment it read
 * and then replaces the mark with the start of the new segment. After opening, appends always
 * start a new segment, so nothing is ever written after a cut or into the part of a segment a
 * snapshot made obsolete.
 *
 * After a write or fdatasync fails the log accepts nothing more (the state of the file is then
 * unknown; retrying fsync after a failure is not safe on Linux): every later call throws the
 * first failure. Restart and reopen to recover what is on disk.
 *
 * @module
 */

import { joinedRun } from "../kv/bytes.ts";
import { join } from "node:path";
import { CorruptionError, encodeRecordParts, RECORD_HEADER_BYTES } from "./record_codec.ts";
import { parseJsonPayload } from "./snapshot_file.ts";
import { BinaryValueError, decodeValue, encodeValue } from "../codec/binary_value.ts";
import { groupRecords } from "./record_groups.ts";
import { DENO_WAL_IO, type WalFile, type WalIo } from "./wal_io.ts";
import { MARK_SYNC_INTERVAL_MS, readSyncMark, SYNC_MARK_FILE, SyncMarkWriter } from "./wal_mark.ts";
import { planRecovery, type SegmentBytes } from "./wal_recovery.ts";
import { LazyArray } from "../codec/lazy_array.ts";
import {
  LEGACY_WAL_FILE,
  legacyLogPath,
  listSegments,
  preallocatedFile,
  PREPARED_SEGMENT_FILE,
  segmentPath,
} from "./wal_segments.ts";

/** When the log fdatasyncs; see the module documentation. */
export type FsyncMode = "always" | "batch" | "never";

/** A place in the log: a segment number and a byte offset in that segment. */
export interface WalPosition {
  segment: number;
  offset: number;
}

/** Options of {@link WriteAheadLog.open}. */
export interface WalOptions {
  fsync: FsyncMode;
  /** Size each segment is preallocated to (default {@link DEFAULT_SEGMENT_BYTES}). */
  segmentBytes?: number;
  /** Records before this position are obsolete (a snapshot covers them): skipped, and the
   * segments wholly before it deleted. Default: the start of the log. Its segment need not
   * exist: a snapshot may be taken before the first record of that segment was written. */
  from?: WalPosition;
  /**
   * Called with each record as it is read from {@link OpenedWal.records}; may throw. What it
   * returns, unless `undefined`, is read instead of the record (its checked form).
   */
  check?: (record: unknown, index: number) => unknown;
  /**
   * Called as {@link OpenedWal.records} are read in order, now and then (every
   * {@link READ_REPORT_EVERY} records, and after the last), with the bytes read so far (framing
   * included; of {@link OpenedWal.bytes}): how far a replay has come.
   */
  onRead?: (bytes: number) => void;
  /** The file system (default: the real one; tests simulate power losses with their own). */
  io?: WalIo;
  /** Least time between background fdatasyncs of the sync mark (default
   * {@link MARK_SYNC_INTERVAL_MS}; 0 for no timer, as deterministic tests want). */
  markSyncIntervalMs?: number;
}

/** The result of {@link WriteAheadLog.open}. */
export interface OpenedWal {
  /** The open log; new records go into a new segment. */
  wal: WriteAheadLog;
  /**
   * The records from `from` on, in order, each decoded (and checked by `check`) when it is read,
   * so that recovery holds one record at a time rather than the whole log: a decoding or check
   * failure (a record whose checksum holds but whose content does not: a bug or deliberate
   * damage) is thrown by the read. Reads may repeat (each decodes again). The array holds the
   * segments' bytes: drop it once read.
   */
  records: LazyArray<unknown>;
  /** The bytes those records take in the segments (framing included). */
  bytes: number;
  /** The torn record found (and cut off) at the end of the log, if any. */
  tornTail: { file: string; offset: number; reason: string } | null;
}

/** Counters for diagnostics and tests. */
export interface WalStats {
  /** write calls that carried records to a file (a short write retried counts once). */
  writes: number;
  /** fdatasync calls made on segment files. */
  fsyncs: number;
  /** Segments started since open. */
  segments: number;
  /** Of those, the ones that had to be created on the spot (no preallocated one was ready). */
  unprepared: number;
}

/** Default segment size: 16 MiB. */
export const DEFAULT_SEGMENT_BYTES = 16 * 1024 * 1024;

/** How many records read between two {@link WalOptions.onRead} reports. */
export const READ_REPORT_EVERY = 16_384;

/** Records queued for one segment are joined into write calls of at most this many bytes. */
const JOIN_WRITES_UP_TO = 256 * 1024;

/** Every {@link FsyncMode}. */
export const FSYNC_MODES: readonly FsyncMode[] = ["always", "batch", "never"];

/** Records waiting to be written, all for one segment. */
interface Pending {
  segment: number;
  /** The records' bytes in order: each record's header and payload, back to back. */
  frames: Uint8Array[];
}

/** The segment file records are being written to. */
interface ActiveSegment {
  number: number;
  file: WalFile;
  /** Bytes written to it: where the next write goes. */
  written: number;
  /** Written since its last fdatasync. */
  dirty: boolean;
}

/** The first byte of a record's payload in the binary value codec (JSON starts with `{`). */
export const BINARY_RECORD_TAG = 0x01;

/**
 * The payload of `record` as the log stores it: {@link BINARY_RECORD_TAG}, then its binary value
 * (inside a checksummed frame; {@link decodeRecordPayload} reads it back).
 *
 * @throws {TypeError} if `record` has no encoding.
 */
export function encodeRecordPayload(record: unknown): Uint8Array {
  return encodeValue(record, BINARY_RECORD_TAG);
}

/**
 * The record a payload holds: binary (after {@link BINARY_RECORD_TAG}) or an older release's
 * JSON.
 *
 * @throws {CorruptionError} naming `file` and `offset` if it is neither (its checksum matched,
 * so it was written that way: a bug or deliberate damage, not a torn write).
 */
export function decodeRecordPayload(payload: Uint8Array, file: string, offset: number): unknown {
  if (payload.length === 0 || payload[0] !== BINARY_RECORD_TAG) {
    return parseJsonPayload(payload, file, offset);
  }
  try {
    return decodeValue(payload, 1);
  } catch (e) {
    if (!(e instanceof BinaryValueError)) throw e;
    throw new CorruptionError(
      `${file}: record at byte offset ${offset} has a valid checksum but is not a binary ` +
        `record: ${e.message}`,
      { file, offset },
    );
  }
}

/** An append-only log of records in segment files. Create it with {@link WriteAheadLog.open}. */
export class WriteAheadLog {
  /** The directory holding the segments. */
  readonly dir: string;
  /** The fsync mode it was opened with. */
  readonly mode: FsyncMode;
  /** The size segments are preallocated to. */
  readonly segmentBytes: number;
  /** Called with the duration in seconds of every fdatasync of a segment (metrics). */
  onFsync: ((seconds: number) => void) | undefined;

  readonly #io: WalIo;
  /** The sync mark; null only inside {@link open}. */
  #mark: SyncMarkWriter | null = null;
  /** Segment files on disk, ascending. */
  #segments: number[];
  /** Where the next appended record goes. */
  #tail: number;
  #tailUsed = 0;
  #pending: Pending[] = [];
  #active: ActiveSegment | null = null;
  /** A preallocated next segment, ready to be renamed into place. */
  #prepared: WalFile | null = null;
  #preparing: Promise<void> | null = null;
  #appended = 0;
  #synced = 0;
  /** The sync round in flight, and the record number it makes durable. */
  #round: Promise<number> | null = null;
  #roundTarget = 0;
  /** The round queued to start when the current one ends (shared by every caller meanwhile). */
  #next: Promise<number> | null = null;
  #failure: Error | null = null;
  #closing: Promise<void> | null = null;
  #stats: WalStats = { writes: 0, fsyncs: 0, segments: 0, unprepared: 0 };

  private constructor(
    dir: string,
    mode: FsyncMode,
    segmentBytes: number,
    segments: number[],
    io: WalIo,
  ) {
    this.dir = dir;
    this.#io = io;
    this.mode = mode;
    this.segmentBytes = segmentBytes;
    this.#segments = segments;
    this.#tail = (segments.at(-1) ?? -1) + 1;
  }

  /**
   * Opens the log in `dir` (which must exist), reads every record from `options.from` on, and
   * preallocates the segment new records will go to. A torn record at the end is cut off on disk
   * and reported; a single-file log of the older format (`wal.log`) becomes segment 0.
   *
   * Every record's framing and checksum is checked before anything on disk is changed: a refused
   * open leaves the directory exactly as it was. A record's content is decoded and checked when
   * it is read from the result's `records` (see {@link OpenedWal.records}): a record whose
   * checksum holds was written as it is, so such a failure is a bug or deliberate damage, and
   * what open changed before it (a torn tail cut, obsolete files removed) was never acknowledged
   * or is covered by the snapshot.
   *
   * @throws {CorruptionError} if a record before the sync mark, or one followed by valid records,
   * is damaged (see the module documentation), or a segment is missing between others or the
   * mark's segment is shorter than the mark.
   */
  static async open(dir: string, options: WalOptions): Promise<OpenedWal> {
    const mode = options.fsync;
    if (!FSYNC_MODES.includes(mode)) {
      throw new TypeError(`unknown fsync mode ${JSON.stringify(mode)} (always, batch or never)`);
    }
    const segmentBytes = options.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
    if (!Number.isSafeInteger(segmentBytes) || segmentBytes < 4096) {
      throw new RangeError(`segment size must be an integer of at least 4096 bytes`);
    }
    const from = options.from ?? { segment: 0, offset: 0 };

    const io = options.io ?? DENO_WAL_IO;

    // Read and check every record's framing first: a log refused here is left exactly as it was.
    const legacy = legacyLogPath(dir, io);
    const all = listSegments(dir, io);
    if (legacy !== null && all.length > 0) {
      throw new Error(
        `${dir}: both ${LEGACY_WAL_FILE} and log segments are present; move one of them away`,
      );
    }
    const pathOf = (n: number) => legacy ?? segmentPath(dir, n);
    const segments = legacy !== null
      ? (from.segment === 0 ? [0] : [])
      : all.filter((n) => n >= from.segment);
    for (let i = 1; i < segments.length; i++) {
      if (segments[i] !== segments[i - 1] + 1) {
        const missing = segmentPath(dir, segments[i - 1] + 1);
        throw new CorruptionError(`${missing} is missing: the log has a hole`, { file: missing });
      }
    }
    const mark = legacy !== null ? null : await readSyncMark(io, dir);
    const loaded: SegmentBytes[] = [];
    for (const n of segments) {
      loaded.push({ number: n, path: pathOf(n), bytes: await io.readFile(pathOf(n)) });
    }
    const plan = planRecovery(loaded, mark, from.segment);
    const kept = plan.records.filter((r) => r.segment > from.segment || r.offset >= from.offset);
    const { check, onRead } = options;
    // A group's bytes are its records' (it is read back as its first): from one start to the next.
    const bytesOf = (i: number) =>
      i + 1 < kept.length && kept[i + 1].segment === kept[i].segment
        ? kept[i + 1].offset - kept[i].offset
        : RECORD_HEADER_BYTES + kept[i].payload.length;
    let bytes = 0;
    for (let i = 0; i < kept.length; i++) bytes += bytesOf(i);
    // In-order reads so far, and their bytes (a repeated or out-of-order read reports nothing).
    let readInOrder = 0;
    let readBytes = 0;
    const records = new LazyArray<unknown>(kept.length, (i) => {
      const r = kept[i];
      const record = "value" in r ? r.value : decodeRecordPayload(r.payload, r.path, r.offset);
      const checked = check?.(record, i) ?? record;
      if (i === readInOrder) {
        readInOrder++;
        readBytes += bytesOf(i);
        if (readInOrder % READ_REPORT_EVERY === 0 || readInOrder === kept.length) {
          onRead?.(readBytes);
        }
      }
      return checked;
    });
    const tornTail = plan.tornTail;

    // Then repair: cut torn tails, drop what is obsolete or left over, adopt the older format.
    for (const cut of plan.cuts) {
      const file = io.open(cut.path, "existing");
      try {
        await file.setSize(cut.bytes);
        await file.sync();
      } finally {
        file.close();
      }
    }
    io.remove(join(dir, PREPARED_SEGMENT_FILE));
    io.remove(join(dir, LEGACY_WAL_FILE + ".tmp"));
    io.remove(join(dir, SYNC_MARK_FILE + ".tmp"));
    const obsolete = legacy !== null ? [] : all.filter((n) => n < from.segment);
    for (const n of obsolete) io.remove(segmentPath(dir, n));
    if (legacy !== null) {
      if (segments.length > 0) io.rename(legacy, segmentPath(dir, 0));
      else io.remove(legacy);
    }
    if (obsolete.length > 0 || legacy !== null) io.syncDir(dir);
    const wal = new WriteAheadLog(dir, mode, segmentBytes, segments, io);
    // Never append into a segment read here (not after a cut), nor into the one `from` points
    // into: records there before its offset would be skipped by the next open.
    wal.#tail = Math.max(wal.#tail, from.offset > 0 ? from.segment + 1 : from.segment);
    // Everything read is made durable (a process killed in "never" mode may have left some of it
    // in the page cache only), then the mark says so: the log is durable up to the new segment.
    for (const n of segments) {
      const file = io.open(segmentPath(dir, n), "existing");
      try {
        await file.syncData();
      } finally {
        file.close();
      }
    }
    wal.#mark = await SyncMarkWriter.create(
      io,
      dir,
      { segment: wal.#tail, offset: 0 },
      options.markSyncIntervalMs ?? MARK_SYNC_INTERVAL_MS,
    );
    await wal.#prepare();
    return { wal, records, bytes, tornTail };
  }

  /**
   * Appends `record` (a JSON-shaped value) and returns its number (1, 2, ... counting from `open`).
   * In `"always"` mode it is written and fdatasync'ed before this returns; otherwise it is
   * buffered until the next {@link sync} (or {@link close}).
   *
   * @throws {TypeError} if `record` cannot be encoded (nothing is appended then); the first
   * failure if the log has failed; an error if it is closed.
   */
  append(record: unknown): number {
    this.#checkUsable();
    this.#queue(encodeRecordParts(encodeRecordPayload(record)));
    return this.#counted();
  }

  /**
   * Like {@link append}, for a record that may be larger than one record may be (a replica's
   * whole state): it is written as a group of records (`record_groups.ts`: a header, then JSON
   * documents of about 1 MiB each), and read back as one record. A group cut short by a
   * crash (never synced) is cut off as a torn tail.
   */
  appendLarge(record: unknown): number {
    return this.appendGroup(groupRecords(record));
  }

  /**
   * {@link appendLarge} of a record whose group was encoded ahead: `records` are the records
   * `groupRecords` gave for it (each its header and payload), in order.
   */
  appendGroup(records: Iterable<readonly Uint8Array[]>): number {
    this.#checkUsable();
    // All of them made before any is queued: a record with no encoding appends nothing (a
    // group's header queued alone would end the log in a group cut short, past the sync mark).
    const all = [...records];
    for (const parts of all) this.#queue(parts);
    return this.#counted();
  }

  /** Queues one record, given as its header and payload, in the segment it fits in. */
  #queue(parts: readonly Uint8Array[]): void {
    let length = 0;
    for (const part of parts) length += part.length;
    if (this.#tailUsed > 0 && this.#tailUsed + length > this.segmentBytes) {
      this.#tail += 1;
      this.#tailUsed = 0;
    }
    this.#tailUsed += length;
    const last = this.#pending.at(-1);
    if (last !== undefined && last.segment === this.#tail) last.frames.push(...parts);
    else this.#pending.push({ segment: this.#tail, frames: [...parts] });
  }

  /** Counts one appended record (written and synced here in `"always"` mode); its number. */
  #counted(): number {
    const number = this.#appended + 1;
    if (this.mode === "always") {
      this.#writePendingSync();
      this.#synced = number;
      this.#advanceMark();
    }
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

  /** Where the next record goes: every record appended so far lies before it. */
  get position(): WalPosition {
    return { segment: this.#tail, offset: this.#tailUsed };
  }

  /**
   * About the bytes of the log from `from` (a position at or before {@link position}) to
   * {@link position}: every segment in between counts as `segmentBytes`, its unused end included
   * (one holding a single record larger than that counts as that).
   */
  bytesSince(from: WalPosition): number {
    const to = this.position;
    return Math.max(0, (to.segment - from.segment) * this.segmentBytes + to.offset - from.offset);
  }

  /** The segment files on disk, ascending (diagnostics and tests). */
  get segments(): number[] {
    return [...this.#segments];
  }

  /** Counters since open (diagnostics). */
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
        this.#writePendingSync();
      } catch (e) {
        return Promise.reject(e);
      }
      this.#synced = this.#appended;
    }
    return Promise.resolve(this.#synced);
  }

  /**
   * Deletes the segments wholly before `position` (one a durable snapshot stored: the records
   * before it are obsolete). Never deletes the segment being written or any after it. Best effort:
   * the directory is not fsync'ed and a segment that cannot be deleted is kept; neither matters,
   * since opening from that position deletes them again. Does nothing once the log is closing or
   * has failed.
   *
   * @throws the first deletion error, after trying the others (the log stays usable).
   */
  releaseBefore(position: WalPosition): void {
    if (this.#closing !== null || this.#failure !== null) return;
    const limit = Math.min(position.segment, this.#active?.number ?? Infinity);
    let failure: unknown = null;
    for (const n of this.#segments.filter((n) => n < limit)) {
      try {
        this.#io.remove(segmentPath(this.dir, n));
        this.#segments = this.#segments.filter((m) => m !== n);
      } catch (e) {
        failure ??= e;
      }
    }
    if (failure !== null) throw failure;
  }

  /**
   * Flushes buffered records (with fdatasync unless the mode is `"never"`), waits for a running
   * fdatasync and for the preallocation of the next segment, and closes the files. Calling it again
   * returns the same promise. Appending after close throws.
   *
   * @throws (rejects with) the failure if records could not be made durable; the files are closed
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
        const target = this.#appended;
        await this.#writePending(this.#takePending());
        this.#synced = target;
        this.#advanceMark();
      }
      if (this.#failure !== null && this.#appended > this.#synced) error = this.#failure;
    } catch (e) {
      error = this.#fail(e);
    } finally {
      await this.#preparing;
      await this.#mark?.close();
      for (const file of [this.#active?.file, this.#prepared]) {
        try {
          file?.close();
        } catch {
          // Already closed.
        }
      }
      this.#active = null;
      this.#prepared = null;
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
    this.#roundTarget = target;
    const round = this.#runRound(this.#takePending(), target);
    this.#round = round;
    return round;
  }

  async #runRound(pending: Pending[], target: number): Promise<number> {
    try {
      await this.#writePending(pending);
    } catch (e) {
      throw this.#fail(e);
    } finally {
      this.#round = null;
    }
    if (target > this.#synced) this.#synced = target;
    this.#advanceMark();
    return this.#synced;
  }

  /**
   * Moves the sync mark to the end of what was written, once it is durable: called after a round
   * (or an `"always"` append, or the flush of close) made every write so far durable; in
   * `"never"` mode nothing is ever known durable, so the mark stays where open put it.
   */
  #advanceMark(): void {
    if (this.mode === "never" || this.#active === null) return;
    this.#mark?.advance({ segment: this.#active.number, offset: this.#active.written });
  }

  #takePending(): Pending[] {
    const pending = this.#pending;
    this.#pending = [];
    return pending;
  }

  /**
   * Writes `pending` segment by segment and makes it durable per the mode: before the first
   * write to a new segment the previous one is fdatasync'ed; at the end the last one is, and the
   * directory too when a segment was started.
   */
  async #writePending(pending: Pending[]): Promise<void> {
    const durable = this.mode !== "never";
    let started = false;
    for (const { segment, frames } of pending) {
      if (this.#active === null || this.#active.number !== segment) {
        if (durable && this.#active?.dirty) await this.#fdatasync(this.#active);
        // The previous segment's name is durable before the next one is named.
        if (durable && started) await this.#io.syncDirAsync(this.dir);
        this.#activate(segment);
        started = true;
      }
      this.#write(frames);
    }
    if (durable && this.#active?.dirty) await this.#fdatasync(this.#active);
    if (durable && started) await this.#io.syncDirAsync(this.dir);
  }

  /** `"always"` and `"never"` modes: {@link #writePending} without awaiting anything. */
  #writePendingSync(): void {
    const durable = this.mode === "always";
    let started = false;
    for (const { segment, frames } of this.#takePending()) {
      if (this.#active === null || this.#active.number !== segment) {
        if (durable && this.#active?.dirty) this.#fdatasyncSync(this.#active);
        if (durable && started) this.#syncDirectorySync();
        this.#activate(segment);
        started = true;
      }
      this.#write(frames);
    }
    if (durable && this.#active?.dirty) this.#fdatasyncSync(this.#active);
    if (durable && started) this.#syncDirectorySync();
  }

  #syncDirectorySync(): void {
    try {
      this.#io.syncDir(this.dir);
    } catch (e) {
      throw this.#fail(e);
    }
  }

  /** Makes segment `n` the one written to: the preallocated one if ready, else a new plain file. */
  #activate(n: number): void {
    const path = segmentPath(this.dir, n);
    let file: WalFile;
    try {
      if (this.#prepared !== null) {
        file = this.#prepared;
        this.#prepared = null;
        this.#io.rename(join(this.dir, PREPARED_SEGMENT_FILE), path);
      } else {
        file = this.#io.open(path, "new");
        this.#stats.unprepared++;
      }
    } catch (e) {
      throw this.#fail(e);
    }
    this.#active?.file.close();
    this.#active = { number: n, file, written: 0, dirty: false };
    this.#segments.push(n);
    this.#stats.segments++;
    void this.#prepare();
  }

  /**
   * Preallocates the next segment in the background (at most one at a time). A failure is not
   * fatal here: the next segment is then created on the spot, and a real I/O problem shows up in
   * the writes themselves.
   */
  #prepare(): Promise<void> {
    if (this.#prepared !== null || this.#closing !== null) return Promise.resolve();
    if (this.#preparing !== null) return this.#preparing;
    const path = join(this.dir, PREPARED_SEGMENT_FILE);
    this.#preparing = preallocatedFile(this.#io, path, this.segmentBytes).then((file) => {
      this.#preparing = null;
      if (this.#closing !== null) file.close();
      else this.#prepared = file;
    }, () => {
      this.#preparing = null; // the next segment is created on the spot instead (see above)
    });
    return this.#preparing;
  }

  /**
   * Writes `frames` to the active segment: small ones joined into one write call of at most
   * {@link JOIN_WRITES_UP_TO} bytes, a larger one as it is (a state written as a group of 1 MiB
   * records is not copied once more into one buffer per segment). A record's header and payload
   * are two frames; a small record's are joined.
   */
  #write(frames: Uint8Array[]): void {
    const active = this.#active!;
    for (let i = 0; i < frames.length;) {
      const { bytes, end } = joinedRun(frames, i, JOIN_WRITES_UP_TO);
      try {
        active.file.writeAt(bytes, active.written);
      } catch (e) {
        throw this.#fail(e);
      }
      active.written += bytes.length;
      active.dirty = true;
      this.#stats.writes++;
      i = end;
    }
  }

  async #fdatasync(segment: ActiveSegment): Promise<void> {
    this.#stats.fsyncs++;
    segment.dirty = false;
    const started = performance.now();
    await segment.file.syncData();
    this.onFsync?.((performance.now() - started) / 1000);
  }

  #fdatasyncSync(segment: ActiveSegment): void {
    this.#stats.fsyncs++;
    segment.dirty = false;
    const started = performance.now();
    try {
      segment.file.syncDataSync();
      this.onFsync?.((performance.now() - started) / 1000);
    } catch (e) {
      throw this.#fail(e);
    }
  }

  /** Records the first failure (the log accepts nothing after it) and returns it. */
  #fail(cause: unknown): Error {
    if (this.#failure === null) {
      const message = cause instanceof Error ? cause.message : String(cause);
      this.#failure = new Error(
        `write-ahead log in ${this.dir} failed: ${message}; it accepts no more records ` +
          `(restart to recover what is on disk)`,
        { cause },
      );
    }
    return this.#failure;
  }

  #checkUsable(): void {
    if (this.#closing !== null) throw new Error(`write-ahead log in ${this.dir} is closed`);
    if (this.#failure !== null) throw this.#failure;
  }
}
