/**
 * The file operations the write-ahead log uses, behind one small interface, so that a test can
 * run the real log code on a file system that simulates a power loss
 * (`tests/support/power_loss_fs.ts`). {@link DENO_WAL_IO} is the real one, on `Deno` files.
 *
 * @module
 */

import { syncDirectory, syncDirectoryAsync, writeAllSync } from "./snapshot_file.ts";

/** An open file of the log: read-write, written at explicit byte offsets. */
export interface WalFile {
  /** Writes all of `bytes` at byte `offset` (extending the file if needed). */
  writeAt(bytes: Uint8Array, offset: number): void;
  /** fdatasync: makes the data written so far durable, without holding the event loop. */
  syncData(): Promise<void>;
  /** fdatasync, synchronously. */
  syncDataSync(): void;
  /** fsync: data and metadata (the size) durable. */
  sync(): Promise<void>;
  /** Sets the size: cuts the file, or extends it with a hole that reads as zeros (no data is
   * written, so no disk block is touched). */
  setSize(bytes: number): Promise<void>;
  /** Closes the file; closing it again does nothing. */
  close(): void;
}

/** How {@link WalIo.open} opens a file: a new one, created or emptied, or an existing one. */
export type OpenHow = "new" | "truncate" | "existing";

/** The file system operations of the write-ahead log. */
export interface WalIo {
  /** The names of the regular files in `dir`. */
  listFiles(dir: string): string[];
  /** Whether `path` exists. */
  exists(path: string): boolean;
  /** The whole content of `path`. */
  readFile(path: string): Promise<Uint8Array>;
  /** Opens `path` read-write; `"new"` fails if it exists, `"truncate"` creates or empties it. */
  open(path: string, how: OpenHow): WalFile;
  /** Renames `from` to `to` (replacing `to`). */
  rename(from: string, to: string): void;
  /** Removes `path` if it exists. */
  remove(path: string): void;
  /** fsyncs the directory `dir` (its entries: created, renamed and removed files). */
  syncDir(dir: string): void;
  /** {@link syncDir} without holding the event loop. */
  syncDirAsync(dir: string): Promise<void>;
}

/** A {@link WalFile} on a `Deno.FsFile`; it seeks only when the offset is not where it is. */
class DenoWalFile implements WalFile {
  readonly #file: Deno.FsFile;
  #position = 0;
  #closed = false;

  constructor(file: Deno.FsFile) {
    this.#file = file;
  }

  writeAt(bytes: Uint8Array, offset: number): void {
    if (offset !== this.#position) this.#file.seekSync(offset, Deno.SeekMode.Start);
    this.#position = offset;
    writeAllSync(this.#file, bytes);
    this.#position = offset + bytes.length;
  }

  syncData(): Promise<void> {
    return this.#file.syncData();
  }

  syncDataSync(): void {
    this.#file.syncDataSync();
  }

  sync(): Promise<void> {
    return this.#file.sync();
  }

  setSize(bytes: number): Promise<void> {
    return this.#file.truncate(bytes);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#file.close();
  }
}

/** The real {@link WalIo}, on `Deno` files. */
export const DENO_WAL_IO: WalIo = {
  listFiles(dir) {
    const names: string[] = [];
    for (const entry of Deno.readDirSync(dir)) if (entry.isFile) names.push(entry.name);
    return names;
  },
  exists(path) {
    try {
      Deno.statSync(path);
      return true;
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return false;
      throw e;
    }
  },
  readFile: (path) => Deno.readFile(path),
  open(path, how) {
    const file = Deno.openSync(path, {
      read: true,
      write: true,
      createNew: how === "new",
      create: how === "truncate",
      truncate: how === "truncate",
    });
    return new DenoWalFile(file);
  },
  rename: (from, to) => Deno.renameSync(from, to),
  remove(path) {
    try {
      Deno.removeSync(path);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  },
  syncDir: syncDirectory,
  syncDirAsync: syncDirectoryAsync,
};
