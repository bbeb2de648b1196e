/**
 * The files of a segmented write-ahead log in a data directory: their names, listing them, finding
 * a single-file log of the format before segments (`wal.log`, read as segment 0 and then renamed
 * to it), and zero-filling a segment ahead of use.
 *
 * ```text
 * <dir>/wal-0000000000000007.log   segment 7: records from byte 0, then zero padding
 * <dir>/wal-0000000000000008.log   segment 8 ...
 * <dir>/wal-next.tmp               the next segment, being zero-filled (never read)
 * ```
 *
 * Segment numbers only grow; records are ordered by (segment, byte offset).
 *
 * @module
 */

import { join } from "node:path";
import { writeAll } from "./snapshot_file.ts";

/** Name of the file the next segment is zero-filled in before it is renamed into place. */
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
export function listSegments(dir: string): number[] {
  const numbers: number[] = [];
  for (const entry of Deno.readDirSync(dir)) {
    const match = entry.isFile ? SEGMENT_NAME.exec(entry.name) : null;
    if (match) numbers.push(Number(match[1]));
  }
  return numbers.sort((a, b) => a - b);
}

/** The path of a single-file log `wal.log` (the format before segments) in `dir`, if there is one. */
export function legacyLogPath(dir: string): string | null {
  const path = join(dir, LEGACY_WAL_FILE);
  try {
    Deno.statSync(path);
    return path;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/** Removes `path` if it exists. */
export function removeIfPresent(path: string): void {
  try {
    Deno.removeSync(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}

/**
 * Creates (or truncates) `path`, writes `bytes` zero bytes to it without holding the event loop
 * and fsyncs it; resolves with the open file (read-write, positioned at its end). Writing into a
 * file whose blocks are already allocated and whose size does not change lets `fdatasync` flush
 * just the data, without a file system journal commit.
 */
export async function zeroFilledFile(path: string, bytes: number): Promise<Deno.FsFile> {
  const file = await Deno.open(path, { read: true, write: true, create: true, truncate: true });
  try {
    const zeros = new Uint8Array(Math.min(bytes, 1024 * 1024));
    for (let written = 0; written < bytes; written += zeros.length) {
      await writeAll(file, zeros.subarray(0, Math.min(zeros.length, bytes - written)));
    }
    await file.sync();
    return file;
  } catch (e) {
    file.close();
    throw e;
  }
}
