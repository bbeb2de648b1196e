/**
 * The files of a segmented write-ahead log in a data directory: their names, listing them, finding
 * a single-file log of the format before segments (`wal.log`, read as segment 0 and then renamed
 * to it), and preallocating a segment ahead of use.
 *
 * ```text
 * <dir>/wal-0000000000000007.log   segment 7: records from byte 0, then zero padding
 * <dir>/wal-0000000000000008.log   segment 8 ...
 * <dir>/wal-next.tmp               the next segment, being preallocated (never read)
 * <dir>/wal-synced.mark            how far the log is known durable (wal_mark.ts)
 * ```
 *
 * Segment numbers only grow; records are ordered by (segment, byte offset).
 *
 * @module
 */

import { join } from "node:path";
import { DENO_WAL_IO, type WalFile, type WalIo } from "./wal_io.ts";

/** Name of the file the next segment is preallocated in before it is renamed into place. */
export const PREPARED_SEGMENT_FILE = "wal-next.tmp";
/** The single-file log of data directories written before the log had segments. */
export const LEGACY_WAL_FILE = "wal.log";

const SEGMENT_NAME = /^wal-(\d{16})\.log$/;

/** The file name of segment `n`: `wal-<16 digits>.log`. */
export function segmentFileName(n: number): string {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`bad segment number ${n}`);
  return `wal-${String(n).padStart(16, "0")}.log`;
}

/** Path of segment `n` in `dir`. */
export function segmentPath(dir: string, n: number): string {
  return join(dir, segmentFileName(n));
}

/** The numbers of the segments in `dir`, ascending. */
export function listSegments(dir: string, io: WalIo = DENO_WAL_IO): number[] {
  const numbers: number[] = [];
  for (const name of io.listFiles(dir)) {
    const match = SEGMENT_NAME.exec(name);
    if (match) numbers.push(Number(match[1]));
  }
  return numbers.sort((a, b) => a - b);
}

/** The path of a single-file log `wal.log` (the format before segments) in `dir`, if there is one. */
export function legacyLogPath(dir: string, io: WalIo = DENO_WAL_IO): string | null {
  const path = join(dir, LEGACY_WAL_FILE);
  return io.exists(path) ? path : null;
}

/**
 * Creates (or empties) `path`, sets its size to `bytes` without writing any data (a hole that
 * reads as zeros) and fsyncs it; resolves with the open file. Appends into it then never change
 * the file's size. It used to be zero-filled instead: that wrote every segment twice, and on
 * Linux the page cache then held it in large folios, so that each fdatasync of a small append
 * wrote back a whole folio (about 1 MiB per fdatasync measured here; see README, Performance).
 */
export async function preallocatedFile(
  io: WalIo,
  path: string,
  bytes: number,
): Promise<WalFile> {
  const file = io.open(path, "truncate");
  try {
    await file.setSize(bytes);
    await file.sync();
    return file;
  } catch (e) {
    file.close();
    throw e;
  }
}
