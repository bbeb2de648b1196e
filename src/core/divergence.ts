/**
 * Divergence detection: replicas compare the digest of their state at the same delivered index.
 *
 * Every `every` deliveries (a checkpoint: the delivered index is a multiple of `every`) a replica
 * records the state machine's digest, and tells the others its latest checkpoint with each
 * heartbeat. Replicas that applied the same operations have the same digest there, so a
 * difference means a replica's state went wrong (a bug, a damaged disk that passed its checksums,
 * memory corruption, a forged message that slipped through). The replica whose digest differs
 * from the one a majority of its view reported for the same index has diverged: the core stops it
 * (a `diverged` action) rather than let it serve wrong data. Replicas that agree with the majority
 * go on; they never stop because of a minority.
 *
 * Pure and deterministic: no I/O, no clocks; the core feeds it deliveries and peer reports.
 *
 * @module
 */
import type { ReplicaId } from "./types.ts";

/** How many recent checkpoints are kept, of ours and of each peer's reports. */
const KEEP = 8;

/** This replica's digest differs from the one a majority reported for the same index. */
export interface Divergence {
  index: number;
  mine: string;
  majority: string;
  /** The replicas that reported the majority's digest. */
  agreeing: ReplicaId[];
}

/** Tracks checkpoints and judges reports. */
export class DivergenceDetector {
  readonly #self: ReplicaId;
  readonly #every: number;
  /** Our checkpoints: delivered index to digest. */
  readonly #mine = new Map<number, string>();
  /** Reports of peers: index to (replica to digest). */
  readonly #reports = new Map<number, Map<ReplicaId, string>>();
  #diverged: Divergence | null = null;
  /** The divergence was handed out by {@link takeDivergence}. */
  #reported = false;
  /** Our latest checkpoint (the largest index in `#mine`). */
  #latest: { index: number; digest: string } | null = null;

  /** `every`: deliveries between checkpoints (0: never). */
  constructor(self: ReplicaId, every: number) {
    this.#self = self;
    this.#every = every;
  }

  /** The first divergence found, if any (it is final). */
  get diverged(): Divergence | null {
    return this.#diverged;
  }

  /** The divergence found, the first time it is asked for after it was found; else null. */
  takeDivergence(): Divergence | null {
    if (this.#diverged === null || this.#reported) return null;
    this.#reported = true;
    return this.#diverged;
  }

  /** Our latest checkpoint, to tell the others. */
  latest(): { index: number; digest: string } | null {
    return this.#latest;
  }

  /** `index` was delivered; `digest` computes the state's digest (called only at a checkpoint). */
  delivered(index: number, digest: () => string, members: readonly ReplicaId[]): void {
    if (this.#every <= 0 || index % this.#every !== 0) return;
    this.#latest = { index, digest: digest() };
    this.#mine.set(index, this.#latest.digest);
    trim(this.#mine);
    this.#judge(index, members);
  }

  /** Peer `from` reports `digest` at `index`. */
  report(from: ReplicaId, index: number, digest: string, members: readonly ReplicaId[]): void {
    if (this.#every <= 0 || index % this.#every !== 0) return;
    let at = this.#reports.get(index);
    if (at === undefined) {
      at = new Map();
      this.#reports.set(index, at);
      trim(this.#reports);
    }
    at.set(from, digest);
    this.#judge(index, members);
  }

  /** Our state was replaced (a snapshot was installed): our older checkpoints no longer apply. */
  reset(): void {
    this.#mine.clear();
    this.#latest = null;
  }

  #judge(index: number, members: readonly ReplicaId[]): void {
    if (this.#diverged !== null) return;
    const mine = this.#mine.get(index);
    const reports = this.#reports.get(index);
    if (mine === undefined || reports === undefined) return;
    const majority = Math.floor(members.length / 2) + 1;
    const votes = new Map<string, ReplicaId[]>();
    for (const [replica, digest] of reports) {
      if (replica === this.#self || !members.includes(replica)) continue;
      votes.set(digest, [...(votes.get(digest) ?? []), replica]);
    }
    for (const [digest, agreeing] of votes) {
      if (digest !== mine && agreeing.length >= majority) {
        this.#diverged = { index, mine, majority: digest, agreeing };
      }
    }
  }
}

/** Keeps the `KEEP` largest keys of `m`. */
function trim<V>(m: Map<number, V>): void {
  while (m.size > KEEP) {
    let least = Infinity;
    for (const k of m.keys()) if (k < least) least = k;
    m.delete(least);
  }
}
