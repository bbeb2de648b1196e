/**
 * Failure detection by silence: a peer heard from (by any message) within `suspectTicks` is
 * alive. It also remembers the view each peer last reported, which elects coordinators and shows
 * who is behind.
 *
 * @module
 */
import type { ReplicaId } from "./types.ts";

/** Tracks when each peer was last heard from and the view it reported. */
export class FailureDetector {
  readonly #self: ReplicaId;
  readonly #peers: readonly ReplicaId[];
  readonly #suspectTicks: number;
  readonly #lastHeard = new Map<ReplicaId, number>();
  readonly #view = new Map<ReplicaId, number>();

  /** `replicas` is every configured id, `self` included. */
  constructor(self: ReplicaId, replicas: readonly ReplicaId[], suspectTicks: number) {
    this.#self = self;
    this.#peers = replicas.filter((r) => r !== self);
    this.#suspectTicks = suspectTicks;
  }

  /** Records a message from `peer` at tick `now`; `view` is the view it says it is in. */
  heard(peer: ReplicaId, now: number, view?: number): void {
    this.#lastHeard.set(peer, now);
    if (view !== undefined) this.#view.set(peer, view);
  }

  /** True if `peer` was heard from within the timeout (self is always alive). */
  isAlive(peer: ReplicaId, now: number): boolean {
    if (peer === this.#self) return true;
    const last = this.#lastHeard.get(peer);
    return last !== undefined && now - last <= this.#suspectTicks;
  }

  /** Every replica believed alive at `now`, self included, ascending. */
  alive(now: number): ReplicaId[] {
    return [this.#self, ...this.#peers.filter((p) => this.isAlive(p, now))].sort((a, b) => a - b);
  }

  /** Ticks since `peer` was last heard from at `now`; null if never. */
  silence(peer: ReplicaId, now: number): number | null {
    const last = this.#lastHeard.get(peer);
    return last === undefined ? null : now - last;
  }

  /** The view `peer` last reported (-1 if none yet). */
  reportedView(peer: ReplicaId): number {
    return this.#view.get(peer) ?? -1;
  }
}
