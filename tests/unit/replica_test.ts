import assert from "node:assert/strict";
import { Replica } from "../../src/core/replica.ts";
import { InvariantError } from "../../src/core/assert.ts";
import type { Action, Command, Entry, Event, PeerMessage } from "../../src/core/types.ts";
import { KvStore } from "../../src/kv/store.ts";
import { SyncCluster } from "../support/sync_cluster.ts";

const put = (key: string, value: string): Command => ({
  op: { argv: ["SET", key, value], time: 0 },
});
const get = (key: string): Command => ({ op: { argv: ["GET", key], time: 0 } });

/**
 * Replica `id`, normal in view 0 of `ids` with nothing delivered yet, stepped by hand (what it
 * persists is durable at once; what it sends goes nowhere).
 */
function replica(id: number, ids = [1, 2, 3], requestTimeoutTicks?: number) {
  const cluster = new SyncCluster(ids, { requestTimeoutTicks });
  cluster.start();
  const r = cluster.replicas.get(id)!;
  assert.equal(r.status().view, 0);
  return { step: (event: Event) => cluster.step(id, event), status: () => r.status() };
}

const sends = (actions: Action[], to?: number) =>
  actions.filter((a): a is Extract<Action, { type: "send" }> =>
    a.type === "send" && (to === undefined || a.to === to)
  );
const replies = (actions: Action[]) =>
  actions.filter((a): a is Extract<Action, { type: "reply" }> => a.type === "reply");
const delivered = (actions: Action[]) =>
  actions.filter((a): a is Extract<Action, { type: "deliver" }> => a.type === "deliver");

function update(ts: number, origin: number, seq: number, cmd = get("k")): PeerMessage {
  return { type: "update", entry: { view: 0, ts, origin, seq, cmd } };
}
function ack(ts: number, acks: Record<number, number>): PeerMessage {
  return { type: "ack", view: 0, promised: 0, ts, acks };
}

Deno.test("replica: a request is stamped and multicast to every other member", () => {
  const r = replica(1);
  const clock = r.status().clock;
  const out = r.step({ type: "request", id: 7, cmd: put("a", "1") });
  const msgs = sends(out);
  assert.deepEqual(msgs.map((s) => s.to), [2, 3]);
  const entry = (msgs[0].msg as { entry: Entry }).entry;
  assert.deepEqual([entry.view, entry.ts, entry.origin, entry.seq], [0, clock + 1, 1, 1]);
  assert.equal(r.status().holdback, 1);
  assert.equal(r.status().pending, 1);
});

Deno.test("replica: acked by all but one never delivers; the last ack delivers and replies", () => {
  const r = replica(1);
  r.step({ type: "request", id: 7, cmd: put("a", "1") });
  let out = r.step({ type: "peer", from: 2, msgs: [ack(5, { 1: 1, 2: 0, 3: 0 })] });
  assert.equal(delivered(out).length, 0);
  for (let i = 0; i < 50; i++) out = r.step({ type: "tick" });
  assert.equal(r.status().delivered, 0, "2 of 3 acks must not deliver");
  out = r.step({ type: "peer", from: 3, msgs: [ack(6, { 1: 1 })] });
  assert.equal(delivered(out).length, 1);
  assert.deepEqual(replies(out), [{
    type: "reply",
    id: 7,
    outcome: { ok: true, result: { ok: "OK" } },
  }]);
  assert.equal(r.status().delivered, 1);
  assert.equal(r.status().keys, 1);
});

Deno.test("replica: timestamp ties are delivered in origin order", () => {
  const r = replica(3);
  // Updates from 2 and 1 with the same timestamp, 2's first.
  r.step({ type: "peer", from: 2, msgs: [update(4, 2, 1, put("k", "from2"))] });
  r.step({ type: "peer", from: 1, msgs: [update(4, 1, 1, put("k", "from1"))] });
  const out = [
    ...r.step({ type: "peer", from: 2, msgs: [ack(9, { 1: 1, 2: 1 })] }),
    ...r.step({ type: "peer", from: 1, msgs: [ack(9, { 1: 1, 2: 1 })] }),
  ];
  assert.deepEqual(delivered(out).map((d) => d.entry.origin), [1, 2]);
  assert.deepEqual(delivered(out).map((d) => d.index), [1, 2]);
});

Deno.test("replica: an entry waits behind an unacknowledged earlier one", () => {
  const r = replica(3);
  r.step({ type: "peer", from: 1, msgs: [update(2, 1, 1)] });
  r.step({ type: "peer", from: 2, msgs: [update(5, 2, 1)] });
  // 2's entry is acked by everyone, 1's only by 1 and 3: nothing may be delivered yet.
  let out = r.step({ type: "peer", from: 1, msgs: [ack(10, { 1: 1, 2: 1 })] });
  assert.equal(delivered(out).length, 0);
  out = r.step({ type: "peer", from: 2, msgs: [ack(10, { 2: 1 })] });
  assert.equal(delivered(out).length, 0);
  out = r.step({ type: "peer", from: 2, msgs: [ack(11, { 1: 1, 2: 1 })] });
  assert.deepEqual(delivered(out).map((d) => d.entry.origin), [1, 2]);
});

Deno.test("replica: one cumulative ack covers a whole batch", () => {
  const r = replica(1);
  for (let i = 0; i < 5; i++) r.step({ type: "request", id: i, cmd: put(`k${i}`, "v") });
  r.step({ type: "peer", from: 2, msgs: [ack(20, { 1: 5 })] });
  const out = r.step({ type: "peer", from: 3, msgs: [ack(20, { 1: 5 })] });
  assert.equal(delivered(out).length, 5);
  assert.deepEqual(replies(out).map((a) => a.id), [0, 1, 2, 3, 4]);
});

Deno.test("replica: acks are coalesced to one per peer per flush", () => {
  const r = replica(2);
  r.step({ type: "peer", from: 1, msgs: [update(1, 1, 1), update(2, 1, 2), update(3, 1, 3)] });
  const out = r.step({ type: "flush" });
  const acks = sends(out).filter((s) => s.msg.type === "ack");
  assert.deepEqual(acks.map((s) => s.to), [1, 3]);
  assert.deepEqual((acks[0].msg as { acks: Record<number, number> }).acks, { 1: 3, 2: 0, 3: 0 });
  assert.equal(sends(r.step({ type: "flush" })).length, 0, "nothing new: no ack");
});

Deno.test("replica: duplicates are ignored, gaps and strangers fail loudly", () => {
  const r = replica(2);
  r.step({ type: "peer", from: 1, msgs: [update(1, 1, 1)] });
  r.step({ type: "peer", from: 1, msgs: [update(1, 1, 1)] });
  assert.equal(r.status().holdback, 1);
  assert.throws(() => r.step({ type: "peer", from: 1, msgs: [update(3, 1, 3)] }), InvariantError);
  assert.throws(
    () => replica(2).step({ type: "peer", from: 9, msgs: [ack(1, {})] }),
    InvariantError,
  );
  assert.throws(
    () => replica(2).step({ type: "peer", from: 3, msgs: [update(1, 1, 1)] }),
    InvariantError,
  );
});

Deno.test("replica: link-up resends exactly what the peer has not acknowledged", () => {
  const r = replica(1);
  for (let i = 0; i < 4; i++) r.step({ type: "request", id: i, cmd: put("k", `${i}`) });
  r.step({ type: "peer", from: 2, msgs: [ack(10, { 1: 2 })] });
  const out = r.step({ type: "link-up", peer: 2 });
  const resent = sends(out, 2).filter((s) => s.msg.type === "update")
    .map((s) => (s.msg as { entry: Entry }).entry.seq);
  assert.deepEqual(resent, [3, 4]);
  assert.equal(sends(out, 2).at(-1)?.msg.type, "ack", "the resend is followed by our acks");
  assert.equal(sends(out, 3).length, 0);
});

Deno.test("replica: a request that is not delivered in time is answered UNKNOWN", () => {
  const r = replica(1, [1, 2, 3], 20);
  r.step({ type: "request", id: 1, cmd: put("a", "1") });
  r.step({ type: "peer", from: 2, msgs: [ack(3, { 1: 1 })] });
  let answer: Action[] = [];
  for (let i = 0; i < 20 && answer.length === 0; i++) answer = replies(r.step({ type: "tick" }));
  assert.equal(answer.length, 1);
  const outcome = (answer[0] as Extract<Action, { type: "reply" }>).outcome;
  assert.equal(outcome.ok, false);
  assert.match(outcome.ok ? "" : outcome.message, /replica 3/);
  // When it is delivered later, nobody is answered twice.
  const late = r.step({ type: "peer", from: 3, msgs: [ack(30, { 1: 1 })] });
  assert.equal(delivered(late).length, 1);
  assert.equal(replies(late).length, 0);
});

Deno.test("replica: heartbeats carry the ack vector every heartbeat interval", () => {
  const r = new Replica({ id: 1, replicas: [1, 2], heartbeatTicks: 3 }, new KvStore());
  const sent = Array.from({ length: 9 }, () => sends(r.step({ type: "tick" })));
  assert.deepEqual(sent.map((s) => s.length), [0, 0, 1, 0, 0, 1, 0, 0, 1]);
  for (const s of sent.flat()) {
    assert.equal(s.to, 2);
    assert.equal(s.msg.type, "ack");
    assert.ok(s.msg.type === "ack" && typeof s.msg.acks === "object", "an ack vector");
  }
});

Deno.test("replica: a single-replica cluster delivers at once", () => {
  const r = replica(1, [1]);
  const out = r.step({ type: "request", id: 1, cmd: put("a", "1") });
  assert.equal(replies(out).length, 1);
  assert.equal(sends(out).length, 0);
});
