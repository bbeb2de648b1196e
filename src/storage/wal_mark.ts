/**
 * The sync mark of the write-ahead log: the file `wal-synced.mark`, which says up to which
 * position (segment, byte offset) the log is known durable, so that recovery can tell a torn or
 * reordered tail (after the mark: never acknowledged, cut off) from damage to data that may have
 * been acknowledged (before it: refused). See `wal.ts` for how recovery uses it.
 *
 * The file has two 512-byte slots. Each holds one checksummed record (`record_codec.ts`) of JSON
 * `{"seq":n,"segment":s,"offset":o}` and zero padding; update `n` goes to slot `n % 2`, written in
 * place. Reading takes the valid slot with the highest `seq`. So a torn update (bad checksum) is
 * detected and the other slot, an older value, is used instead.
 *
 * Why a stale mark is always safe: an update is written only after the fdatasync that made its
 * position durable has returned, and the file is created (atomically, fsynced) only after every
 * segment before its position was fsynced. So whichever updates reach the disk, in whatever order,
 * the mark read back is at most the true durable point. Recovery treats everything before it as
 * data that must be intact and everything after it as a possibly torn tail; a stale mark only
 * narrows the first part (see `wal.ts`: within the power-loss model the data between a stale mark
 * and the true durable point is intact anyway, so no acknowledged record is ever cut).
 *
 * Updates are not fsynced on the write path (that would double the fdatasyncs an acknowledgement
 * waits for): {@link SyncMarkWriter} fdatasyncs the file in the background, one at a time, at
 * most once per {@link MARK_SYNC_INTERVAL_MS} (an fdatasync of the mark after every one of the
 * log cost 10-40% of the throughput of `scripts/wal_bench.ts` and doubled the disk writes of
 * small records), and on close. Until the OS or that fdatasync writes it, the mark on disk lags:
 * recovery then checks less, never wrongly.
 *
 * @module
 */

import { join } from "node:path";
import { encodeRecord, scanRecordPrefix } from "./record_codec.ts";
import type { WalFile, WalIo } from "./wal_io.ts";

/** Name of the sync mark file in the log's directory. */
export const SYNC_MARK_FILE = "wal-synced.mark";
/** Size of one slot of the mark file; the file holds two. */
export const MARK_SLOT_BYTES = 512;
/** Least time between two background fdatasyncs of the mark, by default. */
export const MARK_SYNC_INTERVAL_MS = 100;

/** A position in the log (the same shape as `WalPosition` of `wal.ts`). */
export interface MarkPosition {
  segment: number;
  offset: number;
}

/** One slot's content: the update number and the position. */
interface MarkValue extends MarkPosition {
  seq: number;
}

/** The bytes of a slot holding update `seq` of the mark, at `position`. */
export function encodeMarkSlot(seq: number, position: MarkPosition): Uint8Array {
  const json = JSON.stringify({ seq, segment: position.segment, offset: position.offset });
  const slot = new Uint8Array(MARK_SLOT_BYTES);
  slot.set(encodeRecord(new TextEncoder().encode(json)));
  return slot;
}

/** The value of one slot, or null if it does not hold a valid one (torn, never written). */
function decodeSlot(slot: Uint8Array): MarkValue | null {
  const { payloads } = scanRecordPrefix(slot, { zeroPadding: true });
  if (payloads.length === 0) return null;
  try {
    const { seq, segment, offset } = JSON.parse(new TextDecoder().decode(payloads[0]));
    return [seq, segment, offset].every((n) => Number.isSafeInteger(n) && n >= 0)
      ? { seq, segment, offset }
      : null;
  } catch {
    return null;
  }
}

/**
 * The position a mark file's content says the log is durable up to: the valid slot with the
 * highest update number; null when no slot is valid.
 */
export function decodeMark(bytes: Uint8Array): MarkPosition | null {
  const values = [0, 1].flatMap((i) => {
    const value = decodeSlot(bytes.subarray(i * MARK_SLOT_BYTES, (i + 1) * MARK_SLOT_BYTES));
    return value === null ? [] : [value];
  });
  if (values.length === 0) return null;
  const latest = values.reduce((a, b) => (b.seq > a.seq ? b : a));
  return { segment: latest.segment, offset: latest.offset };
}

/**
 * Reads the sync mark of the log in `dir`: null when there is none (a log written before marks
 * existed) or when no slot of it is valid; recovery then falls back to the rule of the older
 * format (a bad record followed by a valid one is damage, otherwise a torn tail).
 */
export async function readSyncMark(io: WalIo, dir: string): Promise<MarkPosition | null> {
  const path = join(dir, SYNC_MARK_FILE);
  if (!io.exists(path)) return null;
  return decodeMark(await io.readFile(path));
}

/** Keeps the sync mark of one open log up to date; see the module documentation. */
export class SyncMarkWriter {
  #file: WalFile | null;
  #seq: number;
  #dirty = false;
  #flushing: Promise<void> | null = null;
  readonly #intervalMs: number;
  #lastFlush = -Infinity;
  #timer: ReturnType<typeof setTimeout> | undefined;

  private constructor(file: WalFile, seq: number, intervalMs: number) {
    this.#file = file;
    this.#seq = seq;
    this.#intervalMs = intervalMs;
  }

  /**
   * Replaces the mark file of `dir` atomically and durably with one saying `position` (both
   * slots; written to a temporary file, fsynced, renamed, directory fsynced). The caller must have
   * made everything before `position` durable. Background fdatasyncs of later updates are at
   * least `intervalMs` apart (0: one as soon as the previous returns, and no timer).
   */
  static async create(
    io: WalIo,
    dir: string,
    position: MarkPosition,
    intervalMs: number = MARK_SYNC_INTERVAL_MS,
  ): Promise<SyncMarkWriter> {
    const path = join(dir, SYNC_MARK_FILE);
    const temp = path + ".tmp";
    const file = io.open(temp, "truncate");
    try {
      file.writeAt(encodeMarkSlot(0, position), 0);
      file.writeAt(encodeMarkSlot(1, position), MARK_SLOT_BYTES);
      await file.sync();
      io.rename(temp, path);
      await io.syncDirAsync(dir);
    } catch (e) {
      file.close();
      throw e;
    }
    return new SyncMarkWriter(file, 1, intervalMs);
  }

  /**
   * Records that the log is durable up to `position` (call only once it is): written at once, in
   * place, fdatasynced in the background. A failure to write is not fatal: the mark just stays
   * where it was, which is safe, and is not updated any more.
   */
  advance(position: MarkPosition): void {
    if (this.#file === null) return;
    this.#seq += 1;
    try {
      this.#file.writeAt(encodeMarkSlot(this.#seq, position), (this.#seq % 2) * MARK_SLOT_BYTES);
    } catch {
      this.#disable();
      return;
    }
    this.#dirty = true;
    this.#flush();
  }

  /**
   * Starts a background fdatasync of the mark if it moved and none is running or waiting; if the
   * last one started less than the interval ago, waits for the rest of it first.
   */
  #flush(): void {
    const idle = this.#flushing === null && this.#timer === undefined;
    if (!idle || !this.#dirty || this.#file === null) return;
    const wait = this.#lastFlush + this.#intervalMs - performance.now();
    if (wait > 0) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#flush();
      }, wait);
      return;
    }
    this.#lastFlush = performance.now();
    this.#dirty = false;
    this.#flushing = this.#file.syncData().then(() => {
      this.#flushing = null;
      this.#flush();
    }, () => {
      this.#flushing = null;
      this.#disable();
    });
  }

  #disable(): void {
    this.#file?.close();
    this.#file = null;
  }

  /** Waits for the background fdatasyncs, fdatasyncs the latest update, closes the file. */
  async close(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    while (this.#flushing !== null) {
      await this.#flushing;
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    const file = this.#file;
    this.#file = null;
    if (file === null) return;
    try {
      if (this.#dirty) await file.syncData();
    } catch {
      // Advisory: a mark that did not reach the disk is an older, still safe, one.
    } finally {
      file.close();
    }
  }
}
