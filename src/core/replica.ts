/**
 * One replica of the Lamport total-order multicast, as a pure state machine:
 * `step(event) -> actions`, with no sockets, disk or timers inside.
 *
 * Normal case (DESIGN.md): a client request is stamped `(ts = clock, origin = self, seq)`, put in
 * the holdback queue and sent as an UPDATE to every other member. Every replica acknowledges what
 * it received with a cumulative ack vector (per origin, the highest seq received), coalesced to one
 * ACK per event-loop turn and repeated on every heartbeat. The head of the holdback queue is
 * delivered once every member's ack vector covers it: that ack was stamped after the head and
 * links are FIFO, so nothing that sorts before the head can still arrive. Delivery applies the
 * command to the state machine, gives it the next global log index, and the origin replies.
 *
 * @module
 */
import { invariant } from "./assert.ts";
import { LamportClock } from "./clock.ts";
import { compareEntries, HoldbackQueue } from "./holdback.ts";
import type {
  AckVector,
  Action,
  Command,
  Entry,
  Event,
  OpResult,
  PeerMessage,
  ReplicaId,
  ReplicaOptions,
  ReplicaStatus,
} from "./types.ts";

/** The replicated state machine the core applies delivered commands to. */
export interface StateMachine {
  /** Applies one command in delivery order and returns its result. */
  apply(cmd: Command): OpResult;
  /** Number of keys. */
  readonly size: number;
  /** Hash of the state; equal on replicas that applied the same commands. */
  digest(): string;
}

const DEFAULTS = { heartbeatTicks: 10, requestTimeoutTicks: 500 };

interface PendingRequest {
  id: number;
  seq: number;
  deadline: number;
}

/** A replica of the total-order multicast. */
export class Replica {
  readonly id: ReplicaId;
  readonly #replicas: readonly ReplicaId[];
  readonly #machine: StateMachine;
  readonly #heartbeatTicks: number;
  readonly #requestTimeoutTicks: number;

  #now = 0;
  readonly #clock = new LamportClock();
  #view = 0;
  #members: ReplicaId[];
  #nextSeq = 1;
  readonly #holdback = new HoldbackQueue();
  /** Per origin: the highest seq received (contiguous; links are FIFO). Includes self. */
  readonly #received = new Map<ReplicaId, number>();
  /** Per other member: its latest ack vector. */
  readonly #acks = new Map<ReplicaId, Map<ReplicaId, number>>();
  /** Own entries not yet acknowledged by every member, by seq, for resending after reconnects. */
  #unacked: Entry[] = [];
  #ackDirty = false;
  #delivered = 0;
  #lastDelivered: Entry | undefined;
  /** Own requests waiting for delivery, by seq, and the same in deadline order. */
  readonly #pending = new Map<number, PendingRequest>();
  #deadlines: PendingRequest[] = [];

  /** Builds replica `options.id` of the cluster `options.replicas`, applying to `machine`. */
  constructor(options: ReplicaOptions, machine: StateMachine) {
    const replicas = [...new Set(options.replicas)].sort((a, b) => a - b);
    invariant(replicas.includes(options.id), `replica ${options.id} is not in ${replicas}`);
    this.id = options.id;
    this.#replicas = replicas;
    this.#machine = machine;
    this.#heartbeatTicks = options.heartbeatTicks ?? DEFAULTS.heartbeatTicks;
    this.#requestTimeoutTicks = options.requestTimeoutTicks ?? DEFAULTS.requestTimeoutTicks;
    this.#members = [...replicas];
    for (const r of replicas) {
      this.#received.set(r, 0);
      if (r !== this.id) this.#acks.set(r, new Map());
    }
  }

  /** Feeds one event; returns the actions to carry out, in order. */
  step(event: Event): Action[] {
    const out: Action[] = [];
    switch (event.type) {
      case "tick":
        this.#onTick(out);
        break;
      case "request":
        this.#onRequest(event.id, event.cmd, out);
        break;
      case "peer":
        for (const msg of event.msgs) this.#onMessage(event.from, msg, out);
        break;
      case "link-up":
        this.#onLinkUp(event.peer, out);
        break;
      case "flush":
        this.#onFlush(out);
        break;
    }
    this.#deliverReady(out);
    return out;
  }

  /** A snapshot of the replica's state. */
  status(): ReplicaStatus {
    return {
      id: this.id,
      view: this.#view,
      members: [...this.#members],
      clock: this.#clock.value,
      delivered: this.#delivered,
      holdback: this.#holdback.size,
      pending: this.#pending.size,
      keys: this.#machine.size,
      digest: this.#machine.digest(),
    };
  }

  // ---- events ----

  #onTick(out: Action[]): void {
    this.#now += 1;
    if (this.#now % this.#heartbeatTicks === 0) this.#broadcastAck(out);
    this.#expireRequests(out);
  }

  #onRequest(id: number, cmd: Command, out: Action[]): void {
    const entry: Entry = {
      view: this.#view,
      ts: this.#clock.tick(),
      origin: this.id,
      seq: this.#nextSeq++,
      cmd,
    };
    const request = { id, seq: entry.seq, deadline: this.#now + this.#requestTimeoutTicks };
    this.#pending.set(entry.seq, request);
    this.#deadlines.push(request);
    this.#accept(entry);
    this.#unacked.push(entry);
    for (const peer of this.#others()) {
      out.push({ type: "send", to: peer, msg: { type: "update", entry } });
    }
  }

  #onMessage(from: ReplicaId, msg: PeerMessage, out: Action[]): void {
    invariant(this.#replicas.includes(from) && from !== this.id, `message from stranger ${from}`);
    const ts = msg.type === "update" ? msg.entry.ts : msg.ts;
    this.#clock.observe(ts);
    if (msg.type === "update") {
      const { entry } = msg;
      if (entry.view !== this.#view) return;
      invariant(entry.origin === from, `replica ${from} relayed an update of ${entry.origin}`);
      const have = this.#received.get(from) ?? 0;
      if (entry.seq <= have) return; // duplicate after a resend
      invariant(
        entry.seq === have + 1,
        () => `gap from ${from}: got seq ${entry.seq} after ${have} (links must be FIFO)`,
      );
      this.#accept(entry);
      this.#ackDirty = true;
    } else {
      if (msg.view !== this.#view) return;
      this.#mergeAcks(from, msg.acks);
    }
    void out;
  }

  #onLinkUp(peer: ReplicaId, out: Action[]): void {
    if (!this.#members.includes(peer) || peer === this.id) return;
    const acked = this.#ackOf(peer, this.id);
    for (const entry of this.#unacked) {
      if (entry.seq > acked) out.push({ type: "send", to: peer, msg: { type: "update", entry } });
    }
    out.push({ type: "send", to: peer, msg: this.#ackMessage() });
  }

  #onFlush(out: Action[]): void {
    if (this.#ackDirty) this.#broadcastAck(out);
  }

  // ---- ordering and delivery ----

  #accept(entry: Entry): void {
    invariant(
      this.#lastDelivered === undefined || compareEntries(this.#lastDelivered, entry) < 0,
      () =>
        `entry (${entry.ts},${entry.origin}) arrived after (${this.#lastDelivered?.ts},` +
        `${this.#lastDelivered?.origin}) was delivered: total order broken`,
    );
    this.#received.set(entry.origin, entry.seq);
    this.#holdback.push(entry);
  }

  #mergeAcks(from: ReplicaId, acks: AckVector): void {
    const known = this.#acks.get(from);
    invariant(known !== undefined, `no ack slot for ${from}`);
    for (const [origin, seq] of Object.entries(acks)) {
      const o = Number(origin);
      if ((known.get(o) ?? 0) < seq) known.set(o, seq);
    }
    const ownAcked = Math.min(...this.#others().map((p) => this.#ackOf(p, this.id)));
    let drop = 0;
    while (drop < this.#unacked.length && this.#unacked[drop].seq <= ownAcked) drop++;
    if (drop > 0) this.#unacked = this.#unacked.slice(drop);
  }

  /** Highest seq of `origin` that `member` is known to hold. */
  #ackOf(member: ReplicaId, origin: ReplicaId): number {
    if (member === this.id) return this.#received.get(origin) ?? 0;
    const fromVector = this.#acks.get(member)?.get(origin) ?? 0;
    // An origin holds its own updates: the update itself is its acknowledgement.
    return member === origin ? Math.max(fromVector, this.#received.get(origin) ?? 0) : fromVector;
  }

  #deliverable(entry: Entry): boolean {
    return this.#members.every((m) => this.#ackOf(m, entry.origin) >= entry.seq);
  }

  #deliverReady(out: Action[]): void {
    for (;;) {
      const head = this.#holdback.peek();
      if (head === undefined || !this.#deliverable(head)) return;
      this.#holdback.pop();
      this.#lastDelivered = head;
      this.#delivered += 1;
      const result = this.#machine.apply(head.cmd);
      out.push({ type: "deliver", index: this.#delivered, entry: head, result });
      if (head.origin === this.id) {
        const request = this.#pending.get(head.seq);
        if (request) {
          this.#pending.delete(head.seq);
          out.push({ type: "reply", id: request.id, outcome: { ok: true, result } });
        }
      }
    }
  }

  #expireRequests(out: Action[]): void {
    let expired = 0;
    while (expired < this.#deadlines.length && this.#deadlines[expired].deadline <= this.#now) {
      const request = this.#deadlines[expired++];
      if (!this.#pending.has(request.seq)) continue;
      this.#pending.delete(request.seq);
      const missing = this.#others().filter((p) => this.#ackOf(p, this.id) < request.seq);
      out.push({
        type: "reply",
        id: request.id,
        outcome: {
          ok: false,
          code: "UNKNOWN",
          message: `not delivered within ${this.#requestTimeoutTicks} ticks` +
            (missing.length > 0 ? ` (no acknowledgement from replica ${missing.join(", ")})` : "") +
            "; it may still be applied",
        },
      });
    }
    if (expired > 0) this.#deadlines = this.#deadlines.slice(expired);
    // Delivered requests leave stale deadline records behind; drop them when they dominate.
    if (this.#deadlines.length > 2 * this.#pending.size + 64) {
      this.#deadlines = this.#deadlines.filter((r) => this.#pending.has(r.seq));
    }
  }

  // ---- messages ----

  #ackMessage(): PeerMessage {
    const acks: AckVector = {};
    for (const [origin, seq] of this.#received) acks[origin] = seq;
    return { type: "ack", view: this.#view, ts: this.#clock.tick(), acks };
  }

  #broadcastAck(out: Action[]): void {
    this.#ackDirty = false;
    const msg = this.#ackMessage();
    for (const peer of this.#others()) out.push({ type: "send", to: peer, msg });
  }

  #others(): ReplicaId[] {
    return this.#members.filter((m) => m !== this.id);
  }
}
