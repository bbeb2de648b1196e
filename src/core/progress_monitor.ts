/**
 * Failure detection by lack of progress, within one view: a member whose acknowledgements stay
 * behind what this replica holds for longer than `suspectTicks` is stalled, even though it is
 * heard from. That is what a link failing one way only looks like from the side that still
 * hears: the member's heartbeats arrive, its acks never cover the entries it cannot receive.
 *
 * Each member gets a mark when it falls behind: what this replica held at that moment. The mark
 * is cleared once the member's acks cover it (a new one is set if it is still behind then), so a
 * member that keeps up under a steady load is never stalled, however busy the view is.
 *
 * @module
 */
import type { ReplicaId } from "./types.ts";

interface Mark {
  /** Per origin, the seq this replica held when the member fell behind. */
  target: ReadonlyMap<ReplicaId, number>;
  since: number;
}

/** Per member of the current view, since when its acks have been behind (see the module doc). */
export class ProgressMonitor {
  readonly #suspectTicks: number;
  #marks = new Map<ReplicaId, Mark>();

  /** A member is stalled once behind for more than `suspectTicks`. */
  constructor(suspectTicks: number) {
    this.#suspectTicks = suspectTicks;
  }

  /** Forgets every mark (a new view starts, or this replica left its view). */
  reset(): void {
    this.#marks = new Map();
  }

  /**
   * Updates the marks at tick `now`: `held` is, per origin, the highest seq this replica holds;
   * `ackOf(member, origin)` the highest seq of `origin` that `member` acknowledged.
   */
  update(
    now: number,
    members: readonly ReplicaId[],
    held: ReadonlyMap<ReplicaId, number>,
    ackOf: (member: ReplicaId, origin: ReplicaId) => number,
  ): void {
    const covers = (member: ReplicaId, target: ReadonlyMap<ReplicaId, number>) => {
      for (const [origin, seq] of target) if (ackOf(member, origin) < seq) return false;
      return true;
    };
    for (const member of members) {
      const mark = this.#marks.get(member);
      if (mark !== undefined && !covers(member, mark.target)) continue;
      if (covers(member, held)) this.#marks.delete(member);
      else this.#marks.set(member, { target: new Map(held), since: now });
    }
  }

  /** True when `member` has been behind for more than the timeout at `now`. */
  stalled(member: ReplicaId, now: number): boolean {
    const mark = this.#marks.get(member);
    return mark !== undefined && now - mark.since > this.#suspectTicks;
  }
}
