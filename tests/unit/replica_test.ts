import assert from "node:assert/strict";
import { Replica } from "../../src/core/replica.ts";
import { InvariantError } from "../../src/core/assert.ts";
import type {
  Action,
  Command,
  Entry,
  Event,
  Install,
  PeerMessage,
  PersistRecord,
} from "../../src/core/types.ts";
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
function ack(ts: number, acks: Record<number, number>, hears?: number[]): PeerMessage {
  return { type: "ack", view: 0, promised: 0, ts, acks, ...(hears ? { hears } : {}) };
}
/** A proposal of `view` with `members`, from a replica that delivered nothing. */
function propose(view: number, ts: number, members: number[]): PeerMessage {
  return { type: "propose", view, ts, members, delivered: 0 };
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

const rejects = (actions: Action[]) =>
  actions.filter((a): a is Extract<Action, { type: "reject" }> => a.type === "reject");

/** Steps `msgs` from `from` into `r`: exactly one reject whose reason matches `reason`. */
function assertRejected(
  r: ReturnType<typeof replica>,
  from: number,
  msgs: PeerMessage[],
  reason: RegExp,
): void {
  const before = r.status();
  const out = r.step({ type: "peer", from, msgs });
  const refused = rejects(out);
  assert.equal(refused.length, 1, `expected a reject, got ${JSON.stringify(out)}`);
  assert.equal(refused[0].peer, from);
  assert.match(refused[0].reason, reason);
  assert.deepEqual(r.status(), before, "a rejected message changes nothing");
}

Deno.test("replica: duplicates are ignored; gaps, strangers and relays are rejected", () => {
  const r = replica(2);
  r.step({ type: "peer", from: 1, msgs: [update(1, 1, 1)] });
  r.step({ type: "peer", from: 1, msgs: [update(1, 1, 1)] });
  assert.equal(r.status().holdback, 1);
  // The issue's frame: a jump from seq 0 (here 1) to 999999999.
  assertRejected(r, 1, [update(3, 1, 999_999_999)], /gap: got seq 999999999 after 1/);
  assertRejected(r, 1, [update(3, 1, 3)], /gap/);
  assertRejected(r, 1000, [ack(1, {})], /cannot be another replica/);
  assertRejected(r, 2, [ack(1, {})], /cannot be another replica/);
  assertRejected(r, 3, [update(1, 1, 1)], /relayed an update of 1/);
  // The rest of a batch after a refused message is not processed either.
  assertRejected(r, 1, [update(3, 1, 5), update(4, 1, 2)], /gap/);
  assert.equal(r.status().holdback, 1);
  // The link is still usable afterwards: the next update in order is taken.
  r.step({ type: "peer", from: 1, msgs: [update(4, 1, 2)] });
  assert.equal(r.status().holdback, 2);
});

Deno.test("replica: a timestamp far ahead of the clock is refused; one stamp cannot wedge the cluster", () => {
  // Found by the live fuzzer: an ack stamped 2^48 - 63 (in range) from a peer that passed the
  // handshake pushed replica 2's clock to the top of the range; every later message of it was
  // out of range for the others, and the cluster never formed a view with it again.
  const cluster = new SyncCluster([1, 2, 3]);
  cluster.start();
  const r2 = cluster.replicas.get(2)!;
  const clock = r2.status().clock;
  const poisoned: PeerMessage = {
    type: "ack",
    view: r2.status().view,
    promised: 0,
    ts: 2 ** 48 - 63,
    acks: {},
  };
  assertRejected(
    r2,
    3,
    [poisoned],
    /ts 281474976710593 is more than 2\^42 ahead of this replica's clock/,
  );
  assert.equal(r2.status().clock, clock);
  // A lead within the bound is taken (every clock follows) and the cluster keeps working.
  const within: PeerMessage = { ...poisoned, ts: clock + 2 ** 41 };
  assert.deepEqual(rejects(r2.step({ type: "peer", from: 3, msgs: [within] })), []);
  assert.ok(r2.status().clock > 2 ** 41);
  cluster.settle();
  cluster.tick(50);
  cluster.step(1, { type: "request", id: 1, cmd: put("after", "lead") });
  cluster.settle();
  for (const id of [1, 2, 3]) cluster.step(id, { type: "flush" });
  cluster.settle();
  cluster.tick(5);
  assert.equal(cluster.replies.get(1)!.get(1)?.outcome.ok, true, "the write completes");
  const views = [1, 2, 3].map((id) => cluster.replicas.get(id)!.status());
  assert.ok(views.every((v) => v.state === "normal" && v.view === views[0].view));
});

Deno.test("replica: peer numbers out of range and claims that do not fit are rejected", () => {
  const r = replica(2);
  const big = 2 ** 53;
  assertRejected(r, 1, [{ ...ack(big, {}) }], /ts .* out of range/);
  assertRejected(r, 1, [{ type: "ack", view: 0, promised: big, ts: 1, acks: {} }], /promised/);
  assertRejected(r, 1, [ack(1, { 1000: 1 })], /ack for 1000/);
  assertRejected(r, 1, [ack(1, { 2: 5 })], /acknowledges our seq 5/);
  assertRejected(r, 1, [{ type: "probe-ack", view: 0, ts: 1, round: 9 }], /probe round 9/);
  assertRejected(r, 1, [{ type: "commit", view: 4, ts: 1 }], /did not propose view 4/);
  assertRejected(r, 1, [propose(5, 1, [1, 2, 3])], /cannot propose view 5/);
  assertRejected(r, 1, [propose(999, 1, [1, 1, 2])], /repeat/);
  assertRejected(r, 1, [propose(999, 1, [1, 1000])], /member 1000 is not a replica id/);
  assertRejected(
    r,
    1,
    [{ type: "update", entry: { view: 0, ts: 1, origin: 1, seq: 2 ** 50, cmd: get("k") } }],
    /seq .* out of range/,
  );
  assertRejected(r, 1, [ack(1, {}, [3, 1000])], /hears 1000, not another replica/);
  assertRejected(r, 1, [ack(1, {}, [1])], /hears 1, not another replica/);
  assertRejected(r, 1, [ack(1, {}, [2, 2])], /hears 2,2 twice/);
});

Deno.test("replica: a NEWVIEW or flush report that cannot be applied is rejected", () => {
  const r = replica(2);
  // Promise view 999 (proposed by replica 1), then an install that does not continue our log.
  r.step({
    type: "peer",
    from: 1,
    msgs: [propose(999, 10, [1, 2, 3])],
  });
  const entry = { view: 0, ts: 1, origin: 1, seq: 1, cmd: put("a", "1") };
  // An install past our log's end is what a replica that crashed after its report and recovered
  // less gets: ignored like a lost message (the change is proposed again), not refused.
  const newview = (install: Install): PeerMessage => ({
    type: "newview",
    view: 999,
    ts: 11,
    members: [1, 2, 3],
    install,
  });
  const before = r.status();
  const past = r.step({ type: "peer", from: 1, msgs: [newview({ from: 5, entries: [entry] })] });
  assert.deepEqual(rejects(past), []);
  assert.ok(!past.some((a) => a.type === "send" || a.type === "persist"), JSON.stringify(past));
  assert.deepEqual({ ...r.status(), clock: 0 }, { ...before, clock: 0 }, "only the clock moved");
  assertRejected(r, 1, [{
    type: "newview",
    view: 999,
    ts: 11,
    members: [1, 2, 3],
    install: { snapshot: { index: 4, last: null, state: "garbage" }, from: 5, entries: [] },
  }], /snapshot: state: malformed/);
  assertRejected(r, 1, [{
    type: "newview",
    view: 999,
    ts: 11,
    members: [1, 2, 3],
    install: { from: 1, entries: [{ ...entry, origin: 1000 }] },
  }], /origin 1000/);
  const report = {
    normalView: 0,
    delivered: 1,
    last: null,
    holdback: [],
    log: { from: 1, entries: [entry] },
  };
  assertRejected(r, 1, [{
    type: "flush",
    view: 4,
    ts: 12,
    report: { ...report, holdback: [{ ...entry, view: 2 }] },
  }], /holds back an entry of view 2/);
  assertRejected(
    r,
    1,
    [{ type: "flush", view: 4, ts: 12, report: { ...report, delivered: 3 } }],
    /does not end at 3/,
  );
  // A valid install is taken.
  const out = r.step({ type: "peer", from: 1, msgs: [newview({ from: 1, entries: [entry] })] });
  assert.equal(rejects(out).length, 0);
  assert.equal(r.status().state, "installing");
});

Deno.test("replica: internal invariants still throw", () => {
  const r = replica(2);
  assert.throws(() => r.step({ type: "synced", upTo: 10_000 }), InvariantError);
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

Deno.test("replica: heartbeats report whom the replica hears", () => {
  const r = new Replica({ id: 1, replicas: [1, 2, 3], heartbeatTicks: 3 }, new KvStore());
  r.step({
    type: "peer",
    from: 3,
    msgs: [{ type: "ack", view: -1, promised: -1, ts: 1, acks: {} }],
  });
  const sent = sends([0, 1, 2].flatMap(() => r.step({ type: "tick" })))
    .filter((s) => s.msg.type === "ack");
  assert.deepEqual(sent.map((s) => s.to), [2, 3]);
  for (const s of sent) assert.deepEqual(s.msg.type === "ack" && s.msg.hears, [3]);
});

Deno.test("replica: a member heard from whose acks stay behind is left out of the next view", () => {
  const r = replica(1);
  r.step({ type: "request", id: 7, cmd: put("a", "1") });
  // 2 and 3 are heard every tick and hear everyone; 3 never acknowledges 1's write.
  const proposals: PeerMessage[] = [];
  for (let t = 0; t < 150 && proposals.length === 0; t++) {
    r.step({ type: "peer", from: 2, msgs: [ack(100 + t, { 1: 1 }, [1, 3])] });
    r.step({ type: "peer", from: 3, msgs: [ack(100 + t, { 1: 0 }, [1, 2])] });
    const out = r.step({ type: "tick" });
    proposals.push(...sends(out).map((s) => s.msg).filter((m) => m.type === "propose"));
  }
  assert.ok(proposals.length > 0, "no view change although 3 made no progress");
  assert.deepEqual(proposals[0].type === "propose" && proposals[0].members, [1, 2]);
});

Deno.test("replica: a healthy view ignores a proposal from outside it, not one from a member", () => {
  const cluster = new SyncCluster([1, 2, 3]);
  cluster.start();
  cluster.isolate(3);
  for (let t = 0; t < 400; t++) {
    cluster.tick();
    const s = cluster.replicas.get(1)!.status();
    if (s.state === "normal" && s.members.join() === "1,2") break;
  }
  const one = cluster.replicas.get(1)!;
  assert.deepEqual(one.status().members, [1, 2]);
  assert.equal(one.status().state, "normal");
  // Replica 3 (proposer of views 999k+2) proposes a view of 1 and 3: ignored.
  const outsider = propose(99_902, 1, [1, 3]);
  const ignored = cluster.step(1, { type: "peer", from: 3, msgs: [outsider] });
  assert.deepEqual(ignored.filter((a) => a.type === "reject" || a.type === "persist"), []);
  assert.equal(one.status().state, "normal");
  // Replica 2 (views 999k+1), a member, is followed.
  const member = propose(99_901, 2, [1, 2]);
  cluster.step(1, { type: "peer", from: 2, msgs: [member] });
  assert.equal(one.status().state, "changing");
});

/** Replica 2 of a 3-replica cluster restarted from what it persisted after `writes` writes. */
function restartedAfterWrites(
  writes: number,
  deliveryMarkEvery: number,
  tamper = false,
  logTwice = false,
) {
  const cluster = new SyncCluster([1, 2, 3], { deliveryMarkEvery, snapshotEvery: 0 });
  cluster.start();
  for (let i = 0; i < writes; i++) {
    assert.deepEqual(cluster.request(1, put(`k${i}`, `v${i}`)), { ok: true, result: { ok: "OK" } });
  }
  assert.equal(cluster.replicas.get(2)!.status().delivered, writes);
  let records = structuredClone(cluster.records.get(2)!);
  if (logTwice) {
    // Every entry logged a second time: right after itself, and again (reversed) at the end.
    const entries = records.filter((r) => r.r === "entry");
    records = [
      ...records.flatMap((r): PersistRecord[] => r.r === "entry" ? [r, r] : [r]),
      ...entries.reverse(),
    ];
  }
  const marks = records.filter((r) => r.r === "delivered");
  if (tamper) {
    const mark = marks.at(-1)!;
    if (mark.r === "delivered") mark.last = { ...mark.last, ts: mark.last.ts + 1 };
  }
  const store = new KvStore();
  const restarted = new Replica(
    { id: 2, replicas: [1, 2, 3], deliveryMarkEvery, recovered: { records } },
    store,
  );
  return { restarted, store, marks };
}

Deno.test("replica: recovery re-delivers what its last delivery mark covers", () => {
  const { restarted, store, marks } = restartedAfterWrites(10, 4);
  assert.deepEqual(marks.map((m) => m.r === "delivered" && m.index), [4, 8]);
  const status = restarted.status();
  assert.equal(status.state, "joining");
  assert.equal(status.delivered, 8, "delivered up to the last mark");
  assert.equal(status.holdback, 2, "what came after the mark waits for the next view change");
  assert.equal(store.apply(get("k7")), "v7");
  assert.equal(store.apply(get("k8")), null);
});

Deno.test("replica: without delivery marks recovery holds back every entry since the snapshot", () => {
  const { restarted, marks } = restartedAfterWrites(10, 0);
  assert.equal(marks.length, 0);
  assert.equal(restarted.status().delivered, 0);
  assert.equal(restarted.status().holdback, 10);
});

Deno.test("replica: recovery holds an entry logged more than once once", () => {
  const marked = restartedAfterWrites(10, 4, false, true);
  assert.equal(marked.restarted.status().delivered, 8);
  assert.equal(marked.restarted.status().holdback, 2);
  assert.equal(marked.store.apply(get("k7")), "v7");
  const unmarked = restartedAfterWrites(10, 0, false, true);
  assert.equal(unmarked.restarted.status().delivered, 0);
  assert.equal(unmarked.restarted.status().holdback, 10);
});

Deno.test("replica: a delivery mark naming another entry than the one at its index fails loudly", () => {
  assert.throws(() => restartedAfterWrites(10, 4, true), InvariantError);
});

/**
 * Replica 3 cut off while replica 1 writes `writes` keys, then healed; returns every (view,
 * members, learners) replica 1 was normal in from then on, until 3 is a member again.
 */
function readmitAfterWrites(
  ids: number[],
  cut: number[],
  writes: number,
  catchUpEntries: number,
  catchUpBytes?: number,
) {
  const cluster = new SyncCluster(ids, { catchUpEntries, catchUpBytes, snapshotEvery: 0 });
  cluster.start();
  for (const id of cut) cluster.isolate(id);
  const one = cluster.replicas.get(1)!;
  const rest = ids.filter((id) => !cut.includes(id));
  cluster.tickUntil(
    () => one.status().state === "normal" && one.status().members.join() === rest.join(),
    "a view without the cut replicas",
  );
  for (let i = 0; i < writes; i++) {
    assert.deepEqual(cluster.request(1, put(`k${i}`, `v${i}`)), { ok: true, result: { ok: "OK" } });
  }
  for (const id of cut) cluster.heal(id);
  const views: string[] = [];
  cluster.tickUntil(() => {
    const s = one.status();
    const view = `${s.members.join()}|${s.learners.join()}`;
    if (s.state === "normal" && views.at(-1) !== view) views.push(view);
    return s.state === "normal" && s.members.join() === ids.join();
  }, "every replica a member again");
  for (const id of ids) {
    assert.equal(cluster.replicas.get(id)!.status().digest, one.status().digest, `replica ${id}`);
  }
  return views;
}

Deno.test("replica: a voter far behind is taken in as a learner first, then as a member", () => {
  // 6 entries behind, more than catchUpEntries (2): the first view has it as a learner.
  assert.deepEqual(readmitAfterWrites([1, 2, 3], [3], 6, 2), ["1,2|", "1,2|3", "1,2,3|"]);
  // 6 entries behind, within catchUpEntries (10): taken in as a member at once.
  assert.deepEqual(readmitAfterWrites([1, 2, 3], [3], 6, 10), ["1,2|", "1,2,3|"]);
});

Deno.test("replica: a voter behind by more bytes than catchUpBytes is a learner first", () => {
  // 6 entries of SET k<i> v<i> (7 bytes of arguments each): 42 bytes, more than 30.
  assert.deepEqual(readmitAfterWrites([1, 2, 3], [3], 6, 10, 30), ["1,2|", "1,2|3", "1,2,3|"]);
  assert.deepEqual(readmitAfterWrites([1, 2, 3], [3], 6, 10, 42), ["1,2|", "1,2,3|"]);
});

Deno.test("replica: delivery marks also come after deliveryMarkBytes of entries", () => {
  // Entries of SET k<i> v<i>: 7 bytes each (k10 and up: 9). Marks every 1,000 deliveries or
  // 20 bytes: after 3 entries (21 bytes), 6, 9.
  const cluster = new SyncCluster([1, 2, 3], {
    deliveryMarkEvery: 1000,
    deliveryMarkBytes: 20,
    snapshotEvery: 0,
  });
  cluster.start();
  for (let i = 0; i < 10; i++) {
    assert.deepEqual(cluster.request(1, put(`k${i}`, `v${i}`)), { ok: true, result: { ok: "OK" } });
  }
  const marks = cluster.records.get(2)!.filter((r) => r.r === "delivered");
  assert.deepEqual(marks.map((m) => m.r === "delivered" && m.index), [3, 6, 9]);
  const store = new KvStore();
  const restarted = new Replica(
    {
      id: 2,
      replicas: [1, 2, 3],
      recovered: { records: structuredClone(cluster.records.get(2)!) },
    },
    store,
  );
  assert.equal(restarted.status().delivered, 9, "re-delivered up to the last mark");
  assert.equal(restarted.status().holdback, 1);
});

Deno.test("replica: voters behind stay members when the others are no majority without them", () => {
  // Of 5 voters, 3 and 4 are behind: 1,2,5 are a majority, so both join as learners first.
  assert.deepEqual(
    readmitAfterWrites([1, 2, 3, 4, 5], [3, 4], 6, 2),
    ["1,2,5|", "1,2,5|3,4", "1,2,3,4,5|"],
  );
  // Of 5 voters, 4 and 5 are behind and 3 is gone: 1,2 are no majority without them, so the view
  // takes them in as members (its commit waits for their installs, as before the rule).
  const cluster = new SyncCluster([1, 2, 3, 4, 5], { catchUpEntries: 2, snapshotEvery: 0 });
  cluster.start();
  cluster.isolate(4);
  cluster.isolate(5);
  const one = cluster.replicas.get(1)!;
  cluster.tickUntil(() => one.status().members.join() === "1,2,3", "a view of 1,2,3");
  for (let i = 0; i < 6; i++) cluster.request(1, put(`k${i}`, "v"));
  cluster.isolate(3);
  cluster.heal(4);
  cluster.heal(5);
  const views: string[] = [];
  cluster.tickUntil(() => {
    const s = one.status();
    const view = `${s.members.join()}|${s.learners.join()}`;
    if (s.state === "normal" && views.at(-1) !== view) views.push(view);
    return s.state === "normal" && s.members.join() === "1,2,4,5";
  }, "4 and 5 members");
  assert.deepEqual(views, ["1,2,3|", "1,2,4,5|"]);
  assert.equal(cluster.replicas.get(5)!.status().digest, one.status().digest);
});

Deno.test("replica: a write to a voter catching up as a learner waits for it to be a member", () => {
  const cluster = new SyncCluster([1, 2, 3], { catchUpEntries: 2, snapshotEvery: 0 });
  cluster.start();
  cluster.isolate(3);
  const one = cluster.replicas.get(1)!;
  const three = cluster.replicas.get(3)!;
  cluster.tickUntil(() => one.status().members.join() === "1,2", "a view of 1,2");
  for (let i = 0; i < 6; i++) cluster.request(1, put(`k${i}`, "v"));
  cluster.heal(3);
  cluster.tickUntil(
    () => three.status().state === "normal" && three.status().learners.includes(3),
    "replica 3 a learner of the view",
  );
  // Not READONLY: the write waits for the view that takes replica 3 in as a member.
  assert.deepEqual(cluster.request(3, put("during", "1")), { ok: true, result: { ok: "OK" } });
  assert.deepEqual(three.status().members, [1, 2, 3]);
  assert.equal(cluster.request(1, get("during"))?.ok, true);
});

Deno.test("replica: own entries are kept for resending until acked, and not at all when alone", () => {
  const set = (i: number): Command => ({
    op: { argv: ["SET", `k${i}`, "v"], time: 1_700_000_000_000 },
  });
  // Alone in its view no ack ever comes: before the fix every entry was kept for good.
  const alone = new SyncCluster([1]);
  alone.start();
  for (let i = 0; i < 50; i++) alone.step(1, { type: "request", id: i, cmd: set(i) });
  alone.step(1, { type: "flush" });
  alone.tick(5);
  assert.equal(alone.replies.get(1)!.size, 50);
  assert.equal(alone.replicas.get(1)!.status().unacked, 0);
  // With peers: kept until every other member acknowledged it, then dropped.
  const three = new SyncCluster([1, 2, 3]);
  three.start();
  for (let i = 0; i < 10; i++) three.step(1, { type: "request", id: i, cmd: set(i) });
  assert.equal(three.replicas.get(1)!.status().unacked, 10);
  three.step(1, { type: "flush" });
  three.settle();
  three.tick(20);
  assert.equal(three.replies.get(1)!.size, 10);
  assert.equal(three.replicas.get(1)!.status().unacked, 0);
});
