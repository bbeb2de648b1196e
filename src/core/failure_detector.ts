/**
 * Failure detection by silence: a peer heard from (by any message) within `suspectTicks` is
 * alive. It also remembers the view each peer last reported, which elects coordinators and shows
 * who is behind, and whom each peer last said it hears, which shows links that work one way only:
 * two replicas are connected when each hears the other.
 *
 * @module
 */
import type { ReplicaId } from "./types.ts";

/** Up to this many other candidates, {@link FailureDetector.largestGroup} tries every group. */
export const EXHAUSTIVE_GROUP = 8;

/** Tracks when each peer was last heard from, the view it reported and whom it hears. */
export class FailureDetector {
  readonly #self: ReplicaId;
  #peers: readonly ReplicaId[];
  readonly #suspectTicks: number;
  /** Per peer, when it was last heard from or given a grace period ({@link grace}). */
  readonly #lastHeard = new Map<ReplicaId, number>();
  /** Per peer, when a message of its last arrived (what {@link hearing} reports). */
  readonly #lastReceived = new Map<ReplicaId, number>();
  readonly #view = new Map<ReplicaId, number>();
  readonly #hears = new Map<ReplicaId, ReadonlySet<ReplicaId>>();

  /** `replicas` is every configured id, `self` included. */
  constructor(self: ReplicaId, replicas: readonly ReplicaId[], suspectTicks: number) {
    this.#self = self;
    this.#peers = replicas.filter((r) => r !== self);
    this.#suspectTicks = suspectTicks;
  }

  /**
   * Changes whom it watches (the configuration or the view changed). What it knew of a replica
   * that stays is kept; a replica no longer watched is forgotten.
   */
  setPeers(replicas: readonly ReplicaId[]): void {
    const peers = replicas.filter((r) => r !== this.#self);
    for (const known of this.#peers) {
      if (peers.includes(known)) continue;
      this.#lastHeard.delete(known);
      this.#lastReceived.delete(known);
      this.#view.delete(known);
      this.#hears.delete(known);
    }
    this.#peers = peers;
  }

  /**
   * Records a message from `peer` at tick `now`; `view` is the view it says it is in, `hears`
   * the replicas it says it heard from lately.
   */
  heard(peer: ReplicaId, now: number, view?: number, hears?: readonly ReplicaId[]): void {
    this.#lastHeard.set(peer, now);
    this.#lastReceived.set(peer, now);
    if (view !== undefined) this.#view.set(peer, view);
    if (hears !== undefined) this.#hears.set(peer, new Set(hears));
  }

  /**
   * Counts `peer` as heard from at `now` without a message from it (a member of a view just
   * installed): it is alive for a full timeout, but not reported as heard ({@link hearing}).
   */
  grace(peer: ReplicaId, now: number): void {
    this.#lastHeard.set(peer, Math.max(now, this.#lastHeard.get(peer) ?? now));
  }

  /** True if `peer` was heard from within the timeout (self is always alive). */
  isAlive(peer: ReplicaId, now: number): boolean {
    return this.heardWithin(peer, now, this.#suspectTicks);
  }

  /**
   * True if `peer` was heard from within `ticks` (a longer patience than the timeout, for
   * replicas whose silence costs nothing, such as learners).
   */
  heardWithin(peer: ReplicaId, now: number, ticks: number): boolean {
    if (peer === this.#self) return true;
    const last = this.#lastHeard.get(peer);
    return last !== undefined && now - last <= ticks;
  }

  /** Every replica believed alive at `now`, self included, ascending. */
  alive(now: number): ReplicaId[] {
    return [this.#self, ...this.#peers.filter((p) => this.isAlive(p, now))].sort((a, b) => a - b);
  }

  /** Ticks since a message of `peer` last arrived, at `now` (grace not counted); null if never. */
  silence(peer: ReplicaId, now: number): number | null {
    const last = this.#lastReceived.get(peer);
    return last === undefined ? null : now - last;
  }

  /** The other replicas a message arrived from within the timeout (what this one reports). */
  hearing(now: number): ReplicaId[] {
    return this.#peers.filter((p) => this.#received(p, now));
  }

  /** The view `peer` last reported (-1 if none yet). */
  reportedView(peer: ReplicaId): number {
    return this.#view.get(peer) ?? -1;
  }

  /**
   * True unless the link between `a` and `b` is known to fail one way or both at `now`: from
   * self, by silence; from a peer, by its latest report (none yet: assumed to work).
   */
  connected(a: ReplicaId, b: ReplicaId, now: number): boolean {
    return this.#listens(a, b, now) && this.#listens(b, a, now);
  }

  /**
   * True unless `listener` is known not to hear `speaker` at `now` (for self, by silence; for a
   * peer, by its latest report; no report yet: assumed to hear).
   */
  hears(listener: ReplicaId, speaker: ReplicaId, now: number): boolean {
    return this.#listens(listener, speaker, now);
  }

  /**
   * The largest group of `candidates` (self included) that are pairwise {@link connected} at
   * `now`, ascending. Ties go to the group with the most of `preferred` (the current members,
   * so that a view that works is kept), then to lower ids. Exhaustive up to
   * {@link EXHAUSTIVE_GROUP} other candidates, greedy (in order of preference) beyond.
   */
  largestGroup(
    candidates: readonly ReplicaId[],
    preferred: readonly ReplicaId[],
    now: number,
  ): ReplicaId[] {
    const rank = (r: ReplicaId) => preferred.includes(r) ? 0 : 1;
    const others = candidates.filter((r) => r !== this.#self)
      .sort((a, b) => rank(a) - rank(b) || a - b);
    const fits = (group: readonly ReplicaId[], r: ReplicaId) =>
      group.every((g) => this.connected(g, r, now));
    let best: ReplicaId[] = [this.#self];
    if (others.length > EXHAUSTIVE_GROUP) {
      for (const r of others) if (fits(best, r)) best.push(r);
      return best.sort((a, b) => a - b);
    }
    const score = (group: readonly ReplicaId[]) =>
      group.filter((r) => preferred.includes(r)).length;
    // Groups are visited preferred and low ids first (bit i is others[i]); a later group
    // replaces the best only when it is strictly better.
    for (let mask = 1; mask < 1 << others.length; mask++) {
      const group = [this.#self];
      let ok = true;
      for (let i = 0; ok && i < others.length; i++) {
        if ((mask & (1 << i)) === 0) continue;
        ok = fits(group, others[i]);
        group.push(others[i]);
      }
      if (!ok) continue;
      if (
        group.length > best.length || (group.length === best.length && score(group) > score(best))
      ) best = group;
    }
    return best.sort((a, b) => a - b);
  }

  #received(peer: ReplicaId, now: number): boolean {
    const last = this.#lastReceived.get(peer);
    return last !== undefined && now - last <= this.#suspectTicks;
  }

  #listens(listener: ReplicaId, speaker: ReplicaId, now: number): boolean {
    if (listener === this.#self) return this.#received(speaker, now);
    return this.#hears.get(listener)?.has(speaker) ?? true;
  }
}
