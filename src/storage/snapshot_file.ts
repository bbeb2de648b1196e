/**
 * Whole-state snapshot files, written atomically and checksummed, plus the two durable-file
 * helpers the rest of `src/storage/` shares: {@link syncDirectory} (also {@link syncDirectoryAsync})
 * and {@link writeFileAtomically}.
 *
 * A snapshot file holds the value as one group of records (`record_groups.ts`: a header record,
 * then JSON documents of about 1 MiB, its large arrays in batches of elements), so that a state of
 * any size is written and read a piece at a time, never as one string, each piece checksummed. Files of older releases
 * hold exactly one record, the UTF-8 JSON of the whole value; they are still read. A file is
 * written to `<path>.tmp`, fsync'ed, renamed over `<path>`, and the directory is fsync'ed, so
 * after a crash at any point `<path>` is either the previous snapshot or the new one, complete. A
 * leftover `<path>.tmp` (crash before the rename) is never read and is overwritten by the next
 * write.
 *
 * @module
 */

import { dirname } from "node:path";
import { CorruptionError, RECORD_HEADER_BYTES, scanRecords } from "./record_codec.ts";
import { groupRecords, joinGroups, type LocatedPayload } from "./record_groups.ts";
import { yieldToLoop } from "../yield_to_loop.ts";
import { writeAll } from "../write_all.ts";

/** Suffix of the temporary file an atomic write goes through before it is renamed into place. */
export const TEMP_SUFFIX = ".tmp";

/** Error codes with which a platform or file system refuses to fsync a directory. */
const DIR_SYNC_REFUSALS = new Set(["EINVAL", "ENOTSUP", "EOPNOTSUPP", "EISDIR", "EBADF"]);

/**
 * Makes the directory entries of `dir` durable (after a create or rename in it) by opening it
 * read-only and fsync'ing it. Platforms that cannot do that (Windows, some file systems) are
 * ignored: only that refusal is, any other error is thrown.
 */
export function syncDirectory(dir: string): void {
  if (Deno.build.os === "windows") return;
  let handle: Deno.FsFile;
  try {
    handle = Deno.openSync(dir, { read: true });
  } catch (e) {
    if (isDirSyncRefusal(e)) return;
    throw e;
  }
  try {
    handle.syncSync();
  } catch (e) {
    if (!isDirSyncRefusal(e)) throw e;
  } finally {
    handle.close();
  }
}

/** {@link syncDirectory} without holding the event loop: the fsync runs on Deno's thread pool. */
export async function syncDirectoryAsync(dir: string): Promise<void> {
  if (Deno.build.os === "windows") return;
  let handle: Deno.FsFile;
  try {
    handle = await Deno.open(dir, { read: true });
  } catch (e) {
    if (isDirSyncRefusal(e)) return;
    throw e;
  }
  try {
    await handle.sync();
  } catch (e) {
    if (!isDirSyncRefusal(e)) throw e;
  } finally {
    handle.close();
  }
}

function isDirSyncRefusal(e: unknown): boolean {
  if (e instanceof Deno.errors.NotSupported || e instanceof Deno.errors.IsADirectory) return true;
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === "string" && DIR_SYNC_REFUSALS.has(code);
}

/** Writes all of `bytes` to `file` at its current position (looping over short writes). */
export function writeAllSync(file: Deno.FsFile, bytes: Uint8Array): void {
  let done = 0;
  while (done < bytes.length) {
    const n = file.writeSync(bytes.subarray(done));
    if (n <= 0) throw new Deno.errors.WriteZero(`write returned ${n}`);
    done += n;
  }
}

/**
 * Replaces the file at `path` with `bytes` atomically and durably: writes `<path>.tmp`, fsyncs
 * it, renames it over `path`, fsyncs the directory. On failure the temporary file is removed (best
 * effort) and `path` is left as it was.
 */
export function writeFileAtomically(path: string, bytes: Uint8Array): void {
  const temp = path + TEMP_SUFFIX;
  try {
    const file = Deno.openSync(temp, { write: true, create: true, truncate: true });
    try {
      writeAllSync(file, bytes);
      file.syncSync();
    } finally {
      file.close();
    }
    Deno.renameSync(temp, path);
  } catch (e) {
    try {
      Deno.removeSync(temp);
    } catch {
      // Best effort: the temporary file may not exist; a leftover one is harmless.
    }
    throw e;
  }
  syncDirectory(dirname(path));
}

/**
 * Parses a record payload as UTF-8 JSON.
 *
 * @throws {CorruptionError} naming `file` and `offset` if it is not valid UTF-8 JSON (its
 * checksum matched, so it was written that way: a bug or deliberate damage, not a torn write).
 */
export function parseJsonPayload(payload: Uint8Array, file: string, offset: number): unknown {
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(payload));
  } catch (e) {
    throw new CorruptionError(
      `${file}: record at byte offset ${offset} has a valid checksum but is not UTF-8 JSON: ` +
        (e instanceof Error ? e.message : String(e)),
      { file, offset },
    );
  }
}

/**
 * Writes `value` (JSON-compatible) as the snapshot at `path`, atomically and durably (see the
 * module documentation). Synchronous: returns once the snapshot is on disk.
 *
 * @throws {TypeError} if `value` cannot be JSON-encoded; I/O errors as thrown by Deno.
 */
export function writeSnapshotFile(path: string, value: unknown): void {
  const temp = path + TEMP_SUFFIX;
  try {
    const file = Deno.openSync(temp, { write: true, create: true, truncate: true });
    try {
      for (const [header, payload] of groupRecords(value)) {
        writeAllSync(file, header);
        writeAllSync(file, payload);
      }
      file.syncSync();
    } finally {
      file.close();
    }
    Deno.renameSync(temp, path);
  } catch (e) {
    removeQuietly(temp);
    throw e;
  }
  syncDirectory(dirname(path));
}

/**
 * {@link writeSnapshotFile} without holding the event loop for the whole of it: the records are
 * serialized and written one by one, the event loop running between them, and nothing but the
 * record being written is held besides `value` (which must not change meanwhile). The result is
 * the same file.
 */
export async function writeSnapshotFileStreaming(path: string, value: unknown): Promise<void> {
  const temp = path + TEMP_SUFFIX;
  try {
    const file = await Deno.open(temp, { write: true, create: true, truncate: true });
    try {
      for (const [header, payload] of groupRecords(value)) {
        await writeAll(file, header);
        await writeAll(file, payload);
        // Let the replica serve meanwhile: serializing a record took a while.
        await yieldToLoop();
      }
      await file.syncData();
    } finally {
      file.close();
    }
    await Deno.rename(temp, path);
  } catch (e) {
    await Deno.remove(temp).catch(() => {});
    throw e;
  }
  await syncDirectoryAsync(dirname(path));
}

function removeQuietly(path: string): void {
  try {
    Deno.removeSync(path);
  } catch {
    // Best effort: the temporary file may not exist; a leftover one is harmless.
  }
}

/**
 * Reads the snapshot at `path`: the value given to {@link writeSnapshotFile}, or `undefined` if
 * there is no snapshot file. A leftover `<path>.tmp` is ignored. `onRead` is told how many of the
 * file's bytes are read and parsed, after each record (about 1 MiB each).
 *
 * @throws {CorruptionError} if the file is damaged in any way (empty, truncated, bad checksum,
 * trailing bytes, not JSON): a snapshot is renamed into place only when complete, so there is no
 * torn tail to forgive.
 */
export function readSnapshotFile(
  path: string,
  onRead?: (bytes: number) => void,
): unknown | undefined {
  let bytes: Uint8Array;
  try {
    bytes = Deno.readFileSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
  return decodeSnapshotFile(bytes, path, onRead);
}

/**
 * The decoder part of {@link readSnapshotFile}: the value held by the bytes of a snapshot file.
 * Pure (no I/O); `path` only labels errors, `onRead` hears how far it came.
 *
 * @throws {CorruptionError} if the bytes are damaged in any way (see {@link readSnapshotFile}).
 */
export function decodeSnapshotFile(
  bytes: Uint8Array,
  path: string,
  onRead?: (bytes: number) => void,
): unknown {
  if (bytes.length === 0) {
    throw new CorruptionError(`${path}: snapshot file is empty`, { file: path, offset: 0 });
  }
  const scan = scanRecords(bytes, path);
  if (scan.tornTail !== null) {
    throw new CorruptionError(
      `${path}: damaged snapshot record at byte offset ${scan.tornTail.offset}: ` +
        scan.tornTail.reason,
      { file: path, offset: scan.tornTail.offset },
    );
  }
  const located: LocatedPayload[] = [];
  let offset = 0;
  for (const payload of scan.payloads) {
    located.push({ path, offset, payload });
    offset += RECORD_HEADER_BYTES + payload.length;
  }
  const { values, unfinished } = joinGroups(
    located,
    onRead && ((r) => onRead(r.offset + RECORD_HEADER_BYTES + r.payload.length)),
  );
  if (unfinished !== undefined) {
    throw new CorruptionError(`${path}: the snapshot ends before its value is complete`, {
      file: path,
      offset: unfinished.offset,
    });
  }
  const [first] = values;
  if (first === undefined) {
    throw new CorruptionError(`${path}: snapshot file holds no record`, { file: path, offset: 0 });
  }
  if (values.length > 1) {
    throw new CorruptionError(
      "value" in first
        ? `${path}: records after the end of the snapshot`
        : `${path}: snapshot file holds ${values.length} records and no group header`,
      { file: path, offset: values[1].at.offset },
    );
  }
  // A group, or an older release's file: one record, the JSON of the whole value.
  return "value" in first ? first.value : parseJsonPayload(first.at.payload, path, 0);
}
