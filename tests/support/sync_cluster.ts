/**
 * A tiny synchronous cluster for unit tests: replicas exchange messages immediately, in FIFO
 * order per link, until nothing is in flight. Replicas can be cut off to test view changes
 * step by step, without the seeded simulator.
 *
 * @module
 */
import { Replica } from "../../src/core/replica.ts";
import type {
  Action,
  Command,
  Event,
  Outcome,
  PeerMessage,
  PersistRecord,
  ReplicaId,
  ReplicaOptions,
} from "../../src/core/types.ts";
import { KvStore } from "../../src/kv/store.ts";
import { foundingReplicaSet } from "../../src/kv/replica_set.ts";

/** Replicas wired together in memory. */
export class SyncCluster {
  readonly replicas = new Map<ReplicaId, Replica>();
  readonly stores = new Map<ReplicaId, KvStore>();
  /** Replies received, by replica then request id. */
  readonly replies = new Map<ReplicaId, Map<number, Extract<Action, { type: "reply" }>>>();
  /**
   * What each replica persisted, in order: its write-ahead log for a recovery, as long as it took
   * no snapshot (tests that recover from it set `snapshotEvery: 0`).
   */
  readonly records = new Map<ReplicaId, PersistRecord[]>();
  /** `diverged` actions, by replica. */
  readonly diverged = new Map<ReplicaId, Extract<Action, { type: "diverged" }>>();
  readonly #inFlight: { from: ReplicaId; to: ReplicaId; msg: PeerMessage }[] = [];
  readonly #isolated = new Set<ReplicaId>();
  /** Links held by {@link holdFrom}, with what waits on them (FIFO kept). */
  readonly #held = new Map<string, { from: ReplicaId; to: ReplicaId; msg: PeerMessage }[]>();
  #holdWhen: ((from: ReplicaId, to: ReplicaId, msg: PeerMessage) => boolean) | undefined;

  /**
   * Builds replicas `ids` (all with the same options). With `founding`, only those found the
   * cluster (their stores hold its replica set); the others start outside it, waiting to join.
   */
  constructor(
    readonly ids: ReplicaId[],
    options: Partial<ReplicaOptions> = {},
    founding?: ReplicaId[],
  ) {
    const set = founding === undefined ? undefined : foundingReplicaSet(founding.map(address));
    for (const id of ids) {
      const founder = founding === undefined || founding.includes(id);
      const store = new KvStore(undefined, 0, founder ? set : undefined);
      this.stores.set(id, store);
      const replicas = founding === undefined ? ids : founder ? founding : [];
      this.replicas.set(
        id,
        new Replica({ ...options, id, replicas, seeds: founding ?? ids }, store),
      );
      this.replies.set(id, new Map());
      this.records.set(id, []);
    }
  }

  /** Feeds `event` to `id` and routes the resulting sends; persisting is instantly durable. */
  step(id: ReplicaId, event: Event): Action[] {
    const actions = this.replicas.get(id)!.step(event);
    let persisted = 0;
    for (const a of actions) {
      if (a.type === "send") this.#send({ from: id, to: a.to, msg: a.msg });
      if (a.type === "reply") this.replies.get(id)!.set(a.id, a);
      if (a.type === "diverged") this.diverged.set(id, a);
      if (a.type === "persist") {
        persisted += 1;
        this.records.get(id)!.push(a.record);
      }
    }
    if (persisted > 0) {
      const total = (this.#persisted.get(id) ?? 0) + persisted;
      this.#persisted.set(id, total);
      actions.push(...this.step(id, { type: "synced", upTo: total }));
    }
    return actions;
  }

  readonly #persisted = new Map<ReplicaId, number>();

  /** Delivers messages (and end-of-turn flushes) until nothing is in flight. */
  settle(maxMessages = 100_000): void {
    for (let n = 0; this.#inFlight.length > 0; n++) {
      if (n > maxMessages) throw new Error("messages never stop");
      const { from, to, msg } = this.#inFlight.shift()!;
      if (this.#isolated.has(from) || this.#isolated.has(to) || !this.replicas.has(to)) continue;
      this.step(to, { type: "peer", from, msgs: [msg] });
      this.step(to, { type: "flush" });
    }
  }

  /** Advances every replica by `ticks`, settling after each tick. */
  tick(ticks = 1): void {
    for (let t = 0; t < ticks; t++) {
      for (const id of this.ids) this.step(id, { type: "tick" });
      this.settle();
    }
  }

  /** Connects every link and runs until every replica is normal in one view (or throws). */
  start(maxTicks = 200): void {
    for (const id of this.ids) {
      for (const peer of this.ids) if (peer !== id) this.step(id, { type: "link-up", peer });
    }
    this.settle();
    for (let t = 0; t < maxTicks; t++) {
      const members = this.ids.filter((id) => this.replicas.get(id)!.status().role !== "none");
      if (members.every((id) => this.replicas.get(id)!.status().state === "normal")) return;
      this.tick();
    }
    throw new Error("no view formed");
  }

  /** Ticks until `done` holds (or throws after `maxTicks`). */
  tickUntil(done: () => boolean, what: string, maxTicks = 500): void {
    for (let t = 0; t < maxTicks; t++) {
      if (done()) return;
      this.tick();
    }
    throw new Error(`not within ${maxTicks} ticks: ${what}`);
  }

  #send(m: { from: ReplicaId; to: ReplicaId; msg: PeerMessage }): void {
    const link = `${m.from}>${m.to}`;
    const held = this.#held.get(link);
    if (held !== undefined) held.push(m);
    else if (this.#holdWhen?.(m.from, m.to, m.msg)) this.#held.set(link, [m]);
    else this.#inFlight.push(m);
  }

  /**
   * From now on, a link on which a message matching `when` is sent is held: that message and
   * every later one on the link wait, in order, until {@link releaseHeld} (a slow link).
   */
  holdFrom(when: (from: ReplicaId, to: ReplicaId, msg: PeerMessage) => boolean): void {
    this.#holdWhen = when;
  }

  /** Messages waiting on held links. */
  get heldCount(): number {
    let n = 0;
    for (const list of this.#held.values()) n += list.length;
    return n;
  }

  /** Stops holding: what waited is sent, in order, and settled. */
  releaseHeld(): void {
    this.#holdWhen = undefined;
    const held = [...this.#held.values()];
    this.#held.clear();
    for (const list of held) this.#inFlight.push(...list);
    this.settle();
  }

  #nextRequest = 1;

  /** Sends `cmd` to `id` and returns its reply's outcome (undefined: none within 100 ticks). */
  request(id: ReplicaId, cmd: Command): Outcome | undefined {
    const requestId = this.#nextRequest++;
    this.step(id, { type: "request", id: requestId, cmd });
    this.step(id, { type: "flush" });
    this.settle();
    for (let t = 0; t < 100 && !this.replies.get(id)!.has(requestId); t++) {
      this.tick();
      this.step(id, { type: "flush" });
      this.settle();
    }
    return this.replies.get(id)!.get(requestId)?.outcome;
  }

  /** Cuts `id` off from everyone (messages to and from it are lost) until {@link heal}. */
  isolate(id: ReplicaId): void {
    this.#isolated.add(id);
  }

  /** Reconnects `id`. */
  heal(id: ReplicaId): void {
    this.#isolated.delete(id);
    for (const peer of this.ids) {
      if (peer === id) continue;
      this.step(id, { type: "link-up", peer });
      this.step(peer, { type: "link-up", peer: id });
    }
    this.settle();
  }
}

/** A replica's address in an in-memory cluster (only its uniqueness matters). */
export function address(id: ReplicaId) {
  return { id, host: "mem", clientPort: 7000 + id, peerPort: 8000 + id };
}
