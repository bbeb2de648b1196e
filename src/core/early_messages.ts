/**
 * Normal-case messages (updates, acks) of a view that arrive before this replica installed it.
 *
 * A view change does not wait for its learners to accept the install (they vote for nothing, and
 * a joining learner may take seconds to receive and restore a large snapshot): the members go
 * normal and send the new view's updates while a learner may still be waiting for the install on
 * the coordinator's link. Those updates must not be lost, since delivery relies on every link
 * being FIFO; they are held here, in arrival order, and handled once the view is installed.
 *
 * Bounded by an estimate of their bytes: past it, what was held is dropped and the view is marked
 * lost, and the replica must not serve in that view (it waits for the next view change, which
 * brings it up to date like any replica that fell behind).
 *
 * @module
 */
import type { PeerMessage, ReplicaId } from "./types.ts";

/** Default bound of the held messages' estimated bytes. */
export const DEFAULT_EARLY_BYTES = 64 * 1024 * 1024;

/** Estimated bytes per message beside an update's arguments. */
const MESSAGE_OVERHEAD = 128;

type NormalMessage = Extract<PeerMessage, { type: "update" | "ack" }>;

/** What {@link EarlyMessages.take} returns: the held messages in order, or "lost". */
export type Held = readonly (readonly [ReplicaId, NormalMessage])[] | "lost";

/** The messages of one view held until it is installed (see the module doc). */
export class EarlyMessages {
  readonly #maxBytes: number;
  #view = -1;
  #held: [ReplicaId, NormalMessage][] = [];
  #bytes = 0;
  #lost = false;

  /** Holds at most about `maxBytes` of messages. */
  constructor(maxBytes: number = DEFAULT_EARLY_BYTES) {
    this.#maxBytes = maxBytes;
  }

  /** Messages held now. */
  get size(): number {
    return this.#held.length;
  }

  /** Holds `msg` of `view` from `from` (what was held for another view is dropped). */
  hold(view: number, from: ReplicaId, msg: NormalMessage): void {
    if (view !== this.#view) {
      this.clear();
      this.#view = view;
    }
    if (this.#lost) return;
    this.#bytes += MESSAGE_OVERHEAD +
      (msg.type === "update" ? msg.entry.cmd.op.argv.reduce((n, a) => n + a.length, 0) : 0);
    if (this.#bytes > this.#maxBytes) {
      this.#held = [];
      this.#lost = true;
      return;
    }
    this.#held.push([from, msg]);
  }

  /** Takes what was held for `view` (nothing for another view) and forgets it. */
  take(view: number): Held {
    const held: Held = view !== this.#view ? [] : this.#lost ? "lost" : this.#held;
    this.clear();
    return held;
  }

  /** Forgets everything held. */
  clear(): void {
    this.#view = -1;
    this.#held = [];
    this.#bytes = 0;
    this.#lost = false;
  }
}
