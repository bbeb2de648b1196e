/**
 * An in-memory {@link WalIo} that can simulate a power loss, for running the real write-ahead log
 * code (`src/storage/wal.ts`) under it.
 *
 * Each file keeps two images: what reads see (the page cache) and what is durable (the disk), plus
 * the writes made since (in order, each with a sequence number). An fdatasync or fsync covers the
 * writes made before it was called and makes them durable when it completes. In manual mode
 * ({@link PowerLossFs.manual}) asynchronous syncs complete only when the test says so
 * ({@link PowerLossFs.completeSync}), so a test decides deterministically which syncs are in
 * flight when the power goes; synchronous ones complete at once.
 *
 * {@link PowerLossFs.powerLoss} returns the file system as found after a power loss: every file
 * holds its durable image, plus an arbitrary subset of its later writes, split into 512-byte
 * sectors and applied in an arbitrary order (so a sector may also hold an older version of
 * itself), and the last sector applied possibly torn (only its first bytes written). A file grows
 * to the end of the last sector applied past its durable size, zeros in between.
 *
 * Simplification: file and directory metadata (creation, renames, removals, sizes set with
 * `setSize`) is durable at once; only data writes can be lost. The log makes every such change
 * durable (fsync of the file or the directory) before it counts on it, so this hides no case the
 * log relies on.
 *
 * @module
 */

import type { OpenHow, WalFile, WalIo } from "../../src/storage/wal_io.ts";
import type { Prng } from "./prng.ts";

/** Sector size: the unit in which unsynced writes reach the disk, or not. */
export const SECTOR_BYTES = 512;

interface PendingWrite {
  seq: number;
  offset: number;
  bytes: Uint8Array;
}

/** One file's content: as read, as durable, and the writes in between. */
class Node {
  data: Uint8Array;
  durable: Uint8Array;
  writes: PendingWrite[] = [];

  constructor(data: Uint8Array = new Uint8Array(0), durable: Uint8Array = data.slice()) {
    this.data = data;
    this.durable = durable;
  }

  /** Makes the writes up to `seq` durable. */
  settle(seq: number): void {
    for (const w of this.writes) if (w.seq <= seq) this.durable = put(this.durable, w);
    this.writes = this.writes.filter((w) => w.seq > seq);
  }
}

/** `image` with `write` applied (grown as needed). */
function put(image: Uint8Array, write: { offset: number; bytes: Uint8Array }): Uint8Array {
  const end = write.offset + write.bytes.length;
  const out = end > image.length ? new Uint8Array(end) : image;
  if (out !== image) out.set(image);
  out.set(write.bytes, write.offset);
  return out;
}

/** `image` cut or grown (with zeros) to `length` bytes. */
function resize(image: Uint8Array, length: number): Uint8Array {
  if (length <= image.length) return image.slice(0, length);
  const out = new Uint8Array(length);
  out.set(image);
  return out;
}

interface PendingSync {
  node: Node;
  seq: number;
  resolve: () => void;
}

/** See the module documentation. */
export class PowerLossFs implements WalIo {
  /** When true, asynchronous syncs wait for {@link completeSync}; else they complete at once. */
  manual = false;
  readonly #files = new Map<string, Node>();
  #seq = 0;
  #pending: PendingSync[] = [];

  /** The number of asynchronous syncs in flight (manual mode). */
  get pendingSyncs(): number {
    return this.#pending.length;
  }

  /** Completes the in-flight sync number `i` (0 is the oldest). */
  completeSync(i: number): void {
    const [sync] = this.#pending.splice(i, 1);
    sync.node.settle(sync.seq);
    sync.resolve();
  }

  /** The paths of the files, sorted. */
  paths(): string[] {
    return [...this.#files.keys()].sort();
  }

  /** What reads of `path` see now. */
  content(path: string): Uint8Array {
    const node = this.#node(path);
    return node.data.slice();
  }

  /** Replaces the content of `path` (durable at once): for injecting damage. */
  overwrite(path: string, bytes: Uint8Array): void {
    this.#files.set(path, new Node(bytes.slice()));
  }

  /** A copy with everything durable as it is now readable (a clean copy). */
  clone(): PowerLossFs {
    const copy = new PowerLossFs();
    for (const [path, node] of this.#files) copy.#files.set(path, new Node(node.data.slice()));
    return copy;
  }

  /** The file system after a power loss now; see the module documentation. Not in manual mode. */
  powerLoss(rng: Prng): PowerLossFs {
    const after = new PowerLossFs();
    const keep = rng.next(); // how much of the unsynced data reaches the disk, this time
    for (const [path, node] of this.#files) {
      let image: Uint8Array = node.durable.slice();
      const sectors: PendingWrite[] = [];
      for (const w of node.writes) {
        let at = w.offset;
        while (at < w.offset + w.bytes.length) {
          const end = Math.min(
            w.offset + w.bytes.length,
            (Math.floor(at / SECTOR_BYTES) + 1) *
              SECTOR_BYTES,
          );
          sectors.push({
            seq: w.seq,
            offset: at,
            bytes: w.bytes.subarray(at - w.offset, end - w.offset),
          });
          at = end;
        }
      }
      const chosen = sectors.filter(() => rng.next() < keep);
      for (let i = chosen.length - 1; i > 0; i--) {
        const j = rng.int(0, i);
        [chosen[i], chosen[j]] = [chosen[j], chosen[i]];
      }
      if (chosen.length > 0 && rng.chance(0.3)) {
        const last = chosen[chosen.length - 1];
        chosen[chosen.length - 1] = {
          ...last,
          bytes: last.bytes.subarray(0, rng.int(0, last.bytes.length - 1)),
        };
      }
      for (const sector of chosen) image = put(image, sector);
      after.#files.set(path, new Node(image));
    }
    return after;
  }

  #node(path: string): Node {
    const node = this.#files.get(path);
    if (node === undefined) throw new Deno.errors.NotFound(`${path}: no such file`);
    return node;
  }

  #sync(node: Node): Promise<void> {
    const seq = this.#seq;
    if (!this.manual) {
      node.settle(seq);
      return Promise.resolve();
    }
    return new Promise((resolve) => this.#pending.push({ node, seq, resolve }));
  }

  listFiles(dir: string): string[] {
    const prefix = dir.endsWith("/") ? dir : dir + "/";
    return [...this.#files.keys()]
      .filter((p) => p.startsWith(prefix) && !p.slice(prefix.length).includes("/"))
      .map((p) => p.slice(prefix.length));
  }

  exists(path: string): boolean {
    return this.#files.has(path);
  }

  readFile(path: string): Promise<Uint8Array> {
    try {
      return Promise.resolve(this.content(path));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  open(path: string, how: OpenHow): WalFile {
    if (how === "new" && this.#files.has(path)) {
      throw new Deno.errors.AlreadyExists(`${path}: exists`);
    }
    if (how === "existing") this.#node(path);
    else if (how === "truncate" || !this.#files.has(path)) this.#files.set(path, new Node());
    const node = this.#node(path);
    // A handle follows its file through renames: it holds the node, not the path.
    return {
      writeAt: (bytes, offset) => {
        const write = { seq: ++this.#seq, offset, bytes: bytes.slice() };
        node.data = put(node.data, write);
        node.writes.push(write);
      },
      syncData: () => this.#sync(node),
      syncDataSync: () => node.settle(this.#seq),
      sync: () => this.#sync(node),
      setSize: (bytes) => {
        node.data = resize(node.data, bytes);
        node.durable = resize(node.durable, bytes);
        node.writes = node.writes.flatMap((w) =>
          w.offset >= bytes
            ? []
            : [{ ...w, bytes: w.bytes.subarray(0, Math.min(w.bytes.length, bytes - w.offset)) }]
        );
        return Promise.resolve();
      },
      close: () => {},
    };
  }

  rename(from: string, to: string): void {
    this.#files.set(to, this.#node(from));
    this.#files.delete(from);
  }

  remove(path: string): void {
    this.#files.delete(path);
  }

  syncDir(_dir: string): void {}

  syncDirAsync(_dir: string): Promise<void> {
    return Promise.resolve();
  }
}
