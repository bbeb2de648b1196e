/**
 * A deterministic, seeded simulation of a whole lamportkv cluster: the real protocol core
 * (`Replica` + `KvStore`) driven by a simulated network and simulated clients, with every random
 * choice drawn from one seed. Links are FIFO with random delays (so messages reorder across
 * links), go down and come back (in-flight messages are lost; the core resends), and replicas tick
 * with random phases. The result holds everything the invariant checks need.
 *
 * @module
 */
import { Replica } from "../../src/core/replica.ts";
import type {
  Action,
  ClientTag,
  Command,
  Event,
  Op,
  OpResult,
  Outcome,
  PeerMessage,
  ReplicaId,
} from "../../src/core/types.ts";
import { KvStore } from "../../src/kv/store.ts";
import { EventQueue } from "./event_queue.ts";
import { Prng } from "../support/prng.ts";
import type { HistoryOp } from "../support/linearizability.ts";

/** What to simulate. Times are simulated milliseconds; a replica ticks every 10 ms. */
export interface SimOptions {
  seed: number;
  replicas: number;
  clients: number;
  opsPerClient: number;
  keys: number;
  /** Largest one-way delay of a message. */
  maxDelayMs: number;
  /** Probability per 10 ms that some link goes down. */
  linkFailureRate: number;
  /** Longest time a link stays down before it reconnects. */
  maxLinkDownMs: number;
  /** Give up (and report no progress) after this much simulated time. */
  maxSimMs: number;
}

/** Defaults for a 3-replica run; tests override what they vary. */
export const DEFAULT_SIM: Omit<SimOptions, "seed"> = {
  replicas: 3,
  clients: 5,
  opsPerClient: 20,
  keys: 3,
  maxDelayMs: 15,
  linkFailureRate: 0.05,
  maxLinkDownMs: 300,
  maxSimMs: 120_000,
};

/** One delivery as a replica saw it. */
export interface DeliveryRecord {
  index: number;
  /** `view:origin:seq`, the entry's identity. */
  id: string;
  /** `client:seq` of the request it carries. */
  tag: string;
  result: string;
}

/** A request as the simulated client saw it. */
export interface RequestRecord {
  client: number;
  replica: ReplicaId;
  op: Op;
  call: number;
  ret: number | null;
  outcome?: Outcome;
  replies: number;
}

/** Everything a run produced. */
export interface SimResult {
  options: SimOptions;
  endedAt: number;
  quiescent: boolean;
  requests: RequestRecord[];
  deliveries: Map<ReplicaId, DeliveryRecord[]>;
  digests: Map<ReplicaId, string>;
  /** Thrown by a replica's core (an invariant failed), if any. */
  crash?: string;
}

interface Link {
  up: boolean;
  epoch: number;
  lastArrival: number;
}

/** Runs one simulation to quiescence (or `maxSimMs`). */
export function simulate(options: SimOptions): SimResult {
  return new Simulation(options).run();
}

class Simulation {
  readonly rng: Prng;
  readonly queue = new EventQueue();
  readonly ids: ReplicaId[];
  readonly replicas = new Map<ReplicaId, Replica>();
  readonly stores = new Map<ReplicaId, KvStore>();
  readonly links = new Map<string, Link>();
  readonly flushScheduled = new Set<ReplicaId>();
  readonly requests: RequestRecord[] = [];
  readonly deliveries = new Map<ReplicaId, DeliveryRecord[]>();
  readonly pendingNext = new Map<number, () => void>();
  clientsDone = 0;
  faultsOn = true;
  crash: string | undefined;

  constructor(readonly options: SimOptions) {
    this.rng = new Prng(options.seed);
    this.ids = Array.from({ length: options.replicas }, (_, i) => i + 1);
    for (const id of this.ids) {
      const store = new KvStore();
      this.stores.set(id, store);
      this.replicas.set(id, new Replica({ id, replicas: this.ids }, store));
      this.deliveries.set(id, []);
      for (const peer of this.ids) {
        if (peer !== id) this.links.set(`${id}>${peer}`, { up: true, epoch: 0, lastArrival: 0 });
      }
    }
  }

  run(): SimResult {
    const { queue, options } = this;
    for (const id of this.ids) {
      const phase = this.rng.int(0, 9);
      queue.at(phase, () => this.tick(id));
      for (const peer of this.ids) if (peer !== id) this.handle(id, { type: "link-up", peer });
    }
    for (let c = 0; c < options.clients; c++) {
      queue.at(this.rng.int(0, 20), () => this.clientStep(c, 0, this.rng.pick(this.ids)));
    }
    queue.at(10, () => this.faultStep());
    let quiescent = false;
    while (!this.crash && queue.now <= options.maxSimMs && queue.runNext()) {
      if (this.clientsDone === options.clients && this.settled()) {
        quiescent = true;
        break;
      }
    }
    const digests = new Map([...this.stores].map(([id, s]) => [id, s.digest()]));
    return {
      options,
      endedAt: queue.now,
      quiescent,
      requests: this.requests,
      deliveries: this.deliveries,
      digests,
      crash: this.crash,
    };
  }

  /** Every replica idle and every link up: nothing more can happen. */
  settled(): boolean {
    for (const link of this.links.values()) if (!link.up) return false;
    for (const r of this.replicas.values()) {
      const s = r.status();
      if (s.holdback > 0 || s.pending > 0) return false;
    }
    const counts = [...this.deliveries.values()].map((d) => d.length);
    return counts.every((n) => n === counts[0]);
  }

  tick(id: ReplicaId): void {
    this.handle(id, { type: "tick" });
    this.queue.after(10, () => this.tick(id));
  }

  faultStep(): void {
    if (this.clientsDone === this.options.clients) this.faultsOn = false;
    if (!this.faultsOn) return;
    if (this.rng.chance(this.options.linkFailureRate)) {
      const from = this.rng.pick(this.ids);
      const to = this.rng.pick(this.ids.filter((p) => p !== from));
      this.linkDown(from, to);
      if (this.rng.chance(0.5)) this.linkDown(to, from);
    }
    this.queue.after(10, () => this.faultStep());
  }

  linkDown(from: ReplicaId, to: ReplicaId): void {
    const link = this.links.get(`${from}>${to}`)!;
    if (!link.up) return;
    link.up = false;
    link.epoch += 1;
    this.queue.after(this.rng.int(1, this.options.maxLinkDownMs), () => {
      link.up = true;
      link.lastArrival = this.queue.now;
      this.handle(from, { type: "link-up", peer: to });
    });
  }

  send(from: ReplicaId, to: ReplicaId, msgs: PeerMessage[]): void {
    const link = this.links.get(`${from}>${to}`)!;
    if (!link.up) return; // the host drops what it cannot send; the core resends
    const delay = this.rng.chance(0.05)
      ? this.rng.int(0, this.options.maxDelayMs * 10)
      : this.rng.int(0, this.options.maxDelayMs);
    const arrival = Math.max(this.queue.now + delay, link.lastArrival);
    link.lastArrival = arrival;
    const epoch = link.epoch;
    this.queue.at(arrival, () => {
      if (link.epoch === epoch) this.handle(to, { type: "peer", from, msgs });
    });
  }

  handle(id: ReplicaId, event: Event): void {
    if (this.crash) return;
    let actions: Action[];
    try {
      actions = this.replicas.get(id)!.step(event);
    } catch (e) {
      this.crash = `replica ${id} threw on ${event.type}: ${e instanceof Error ? e.stack : e}`;
      return;
    }
    this.carryOut(id, actions);
    if (event.type !== "flush" && !this.flushScheduled.has(id)) {
      this.flushScheduled.add(id);
      this.queue.after(this.rng.int(0, 2), () => {
        this.flushScheduled.delete(id);
        this.handle(id, { type: "flush" });
      });
    }
  }

  carryOut(id: ReplicaId, actions: Action[]): void {
    const frames = new Map<ReplicaId, PeerMessage[]>();
    for (const action of actions) {
      if (action.type === "send") {
        const batch = frames.get(action.to) ?? [];
        batch.push(action.msg);
        frames.set(action.to, batch);
      } else if (action.type === "reply") {
        this.onReply(action.id, action.outcome);
      } else {
        const { entry } = action;
        this.deliveries.get(id)!.push({
          index: action.index,
          id: `${entry.view}:${entry.origin}:${entry.seq}`,
          tag: entry.cmd.tag ? `${entry.cmd.tag.client}:${entry.cmd.tag.seq}` : "",
          result: JSON.stringify(action.result),
        });
      }
    }
    for (const [to, msgs] of frames) this.send(id, to, msgs);
  }

  clientStep(client: number, done: number, replica: ReplicaId): void {
    if (done === this.options.opsPerClient) {
      this.clientsDone += 1;
      return;
    }
    if (this.rng.chance(0.2)) replica = this.rng.pick(this.ids);
    const key = `k${this.rng.int(0, this.options.keys - 1)}`;
    const roll = this.rng.next();
    const op: Op = roll < 0.4
      ? { kind: "put", key, value: `c${client}-${done}` }
      : roll < 0.7
      ? { kind: "get", key }
      : roll < 0.85
      ? { kind: "delete", key }
      : { kind: "has", key };
    const id = this.requests.length;
    const record: RequestRecord = {
      client,
      replica,
      op,
      call: this.queue.now,
      ret: null,
      replies: 0,
    };
    this.requests.push(record);
    const cmd: Command = { op, tag: requestTag(client, done) };
    this.pendingNext.set(
      id,
      () => this.queue.after(this.rng.int(0, 20), () => this.clientStep(client, done + 1, replica)),
    );
    this.handle(replica, { type: "request", id, cmd });
  }

  onReply(id: number, outcome: Outcome): void {
    const record = this.requests[id];
    record.replies += 1;
    if (record.replies > 1) return; // reported by the invariant checks
    record.ret = this.queue.now;
    record.outcome = outcome;
    const next = this.pendingNext.get(id);
    this.pendingNext.delete(id);
    next?.();
  }
}

/** The exactly-once tag of client `client`'s request number `n` (from 0). */
export function requestTag(client: number, n: number): ClientTag {
  return { client: `c${client}`, seq: n + 1 };
}

/** The simulated client history in the linearizability checker's form. */
export function toHistory(requests: RequestRecord[]): HistoryOp[] {
  return requests.map((r) => {
    const known = r.outcome?.ok === true;
    return {
      client: r.client,
      op: r.op.kind === "put"
        ? { kind: r.op.kind, key: r.op.key, value: r.op.value }
        : { kind: r.op.kind, key: r.op.key },
      call: r.call,
      ret: known ? r.ret : null,
      result: known ? (r.outcome as { ok: true; result: OpResult }).result : undefined,
    };
  });
}
