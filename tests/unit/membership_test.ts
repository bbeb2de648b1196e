/**
 * The core's membership changes, step by step in a synchronous in-memory cluster (the seeded
 * simulator attacks them under faults: `sim: membership changes`).
 */
import assert from "node:assert/strict";
import type { Action, Command, ReplicaId } from "../../src/core/types.ts";
import { address, SyncCluster } from "../support/sync_cluster.ts";
import { holdsMajority, nextViewOf, proposerOf, VIEW_ROUND } from "../../src/core/membership.ts";

const op = (...argv: string[]): Command => ({ op: { argv, time: 0 } });
/** Sends `cmd` to `id` and returns its reply (undefined: none within 100 ticks). */
const request = (c: SyncCluster, id: ReplicaId, cmd: Command) => c.request(id, cmd);

function add(c: SyncCluster, at: ReplicaId, id: ReplicaId, ...flags: string[]) {
  const a = address(id);
  return request(
    c,
    at,
    op("__REPLICASET", "ADD", `${id}`, a.host, `${a.clientPort}`, `${a.peerPort}`, ...flags),
  );
}

const status = (c: SyncCluster, id: ReplicaId) => c.replicas.get(id)!.status();

Deno.test("membership: view numbers are unique per proposer and name it", () => {
  for (const id of [1, 2, 7, 999]) {
    for (const above of [-1, 0, 5, 998, 999, 12_345]) {
      const v = nextViewOf(id, above);
      assert.ok(v > above, `${v} > ${above}`);
      assert.equal(proposerOf(v), id);
      assert.ok(v - above <= 2 * VIEW_ROUND);
    }
  }
  assert.equal(nextViewOf(1, -1), 0);
  assert.equal(holdsMajority([1, 2], { voters: [1, 2, 3, 4], learners: [] }), false);
  assert.equal(holdsMajority([1, 2, 5], { voters: [1, 2, 3], learners: [] }), true);
});

Deno.test("membership: a joiner waits outside, is added, gets a snapshot, is promoted", () => {
  const c = new SyncCluster([1, 2, 3, 4], {}, [1, 2, 3]);
  c.start();
  assert.equal(status(c, 4).role, "none");
  assert.equal(status(c, 4).state, "joining");
  // Its heartbeats reach the config file's replicas: they list it as waiting to join.
  c.tick(20);
  assert.deepEqual(c.replicas.get(1)!.waitingToJoin(), [4]);
  assert.deepEqual(request(c, 1, op("SET", "k", "v")), { ok: true, result: { ok: "OK" } });

  // Added: the next view takes it in as a learner, from a snapshot (it holds no state at all).
  const newviews: Action[] = [];
  const step = c.step.bind(c);
  c.step = (id, event) => {
    const out = step(id, event);
    for (const a of out) {
      if (a.type === "send" && a.to === 4 && a.msg.type === "newview") {
        newviews.push(a);
      }
    }
    return out;
  };
  assert.deepEqual(add(c, 1, 4), { ok: true, result: { ok: "OK" } });
  c.tickUntil(() => status(c, 4).state === "normal", "replica 4 in a view");
  assert.equal(status(c, 4).role, "learner");
  assert.ok(
    newviews.some((a) => a.type === "send" && a.msg.type === "newview" && a.msg.install.snapshot),
    "the blank joiner's install carries a snapshot",
  );
  assert.equal(c.stores.get(4)!.peek("k"), "v");
  // The leader sees it follow the view, steadily for a failure timeout (not at once: a joiner
  // that just restored a large state may still be busy); promoted, it becomes a voter of the
  // next view.
  const leader = [1, 2, 3].find((id) => c.replicas.get(id)!.leads)!;
  const lead = c.replicas.get(leader)!;
  assert.deepEqual(lead.caughtUpLearners(), [], "not at once");
  c.tickUntil(() => lead.caughtUpLearners().includes(4), "the leader sees 4 caught up");
  // Silent for longer than two heartbeats (busy, or cut off), it is not caught up.
  c.isolate(4);
  c.tick(30);
  assert.deepEqual(lead.caughtUpLearners(), []);
  c.heal(4);
  c.tickUntil(() => lead.caughtUpLearners().includes(4), "caught up again");
  assert.deepEqual(request(c, leader, op("__REPLICASET", "PROMOTE", "4")), {
    ok: true,
    result: { ok: "OK" },
  });
  c.tickUntil(() => status(c, 1).members.join() === "1,2,3,4", "a view of 1,2,3,4");
  assert.equal(status(c, 4).role, "voter");
  assert.deepEqual(status(c, 2).voters, [1, 2, 3, 4]);
  assert.deepEqual(request(c, 4, op("SET", "k", "w")), { ok: true, result: { ok: "OK" } });
  for (const id of [1, 2, 3, 4]) assert.equal(c.stores.get(id)!.peek("k"), "w");
});

Deno.test("membership: a view does not wait for a slow joiner; its early updates are kept", () => {
  const c = new SyncCluster([1, 2, 3, 4], {}, [1, 2, 3]);
  c.start();
  // The install for the joiner (a snapshot, large in real life) is slow to arrive: its link is
  // held from that message on, while the other members' links to it flow.
  c.holdFrom((_from, to, msg) => to === 4 && msg.type === "newview");
  assert.deepEqual(add(c, 1, 4, "LEARNER"), { ok: true, result: { ok: "OK" } });
  c.tickUntil(() => status(c, 1).learners.includes(4), "a view with learner 4");
  const view = status(c, 1).view;
  assert.ok(c.heldCount > 0, "the joiner's install is held");
  assert.notEqual(status(c, 4).state, "normal");
  // The view is committed without the joiner, and writes go on (from every member, so that
  // updates reach the joiner on the links that flow, ahead of its install).
  for (const id of [1, 2, 3]) {
    assert.deepEqual(request(c, id, op("INCR", "n")), { ok: true, result: id });
  }
  assert.notEqual(status(c, 4).state, "normal", "the joiner still waits for its install");
  c.releaseHeld();
  c.tickUntil(
    () => status(c, 4).state === "normal" && status(c, 4).delivered === status(c, 1).delivered,
    "the joiner caught up",
  );
  assert.equal(c.stores.get(4)!.peek("n"), "3");
  assert.equal(c.stores.get(4)!.digest(), c.stores.get(1)!.digest());
  assert.equal(c.diverged.size, 0);
  // In that view: the updates that arrived before the install were kept and delivered after
  // it, not lost and made up for by a later view change.
  for (const id of [1, 2, 3, 4]) assert.equal(status(c, id).view, view, `replica ${id}'s view`);
});

Deno.test("membership: a removed replica learns its removal and leaves the view", () => {
  const c = new SyncCluster([1, 2, 3], {}, [1, 2, 3]);
  c.start();
  // Two voter changes in one view: the second is refused (the first takes effect with the next
  // view, and consecutive configurations may differ by one voter only).
  c.step(2, { type: "request", id: 9001, cmd: op("__REPLICASET", "REMOVE", "3") });
  c.step(1, { type: "request", id: 9002, cmd: op("__REPLICASET", "REMOVE", "2") });
  for (const id of [1, 2]) c.step(id, { type: "flush" });
  c.settle();
  const view = status(c, 1).view;
  assert.equal(status(c, 1).state, "normal");
  const outcomes = [c.replies.get(2)!.get(9001)?.outcome, c.replies.get(1)!.get(9002)?.outcome]
    .map((o) => JSON.stringify(o));
  const ok = JSON.stringify({ ok: true, result: { ok: "OK" } });
  const refused = JSON.stringify({
    ok: true,
    result: {
      err: "ERR a membership change is already in progress: wait until the next view puts it " +
        "in force",
    },
  });
  assert.deepEqual([...outcomes].sort(), [ok, refused].sort(), "one applied, one refused");
  const removed = outcomes[0] === ok ? 3 : 2;
  const kept = removed === 3 ? "1,2" : "1,3";
  c.tickUntil(() => status(c, 1).members.join() === kept, `a view of ${kept}`);
  assert.ok(status(c, 1).view > view);
  assert.equal(status(c, removed).role, "none", "the removed replica delivered its removal");
  assert.notEqual(status(c, removed).state, "normal");
  // It keeps running and heartbeating: 1 talks back to it (a contact, outside its
  // configuration) while it does, and forgets it once it is silent for the failure timeout.
  const peersOf1 = () => c.replicas.get(1)!.peers;
  c.tickUntil(() => peersOf1().includes(removed), "the removed replica, a contact of 1");
  c.isolate(removed);
  c.tickUntil(() => !peersOf1().includes(removed), "the silent contact forgotten");
  assert.deepEqual(peersOf1(), kept.split(",").map(Number).filter((id) => id !== 1));
  c.heal(removed);
  // In the next view, the next change is taken.
  assert.deepEqual(request(c, 1, op("__REPLICASET", "REMOVE", kept.split(",")[1])), {
    ok: true,
    result: { ok: "OK" },
  });
  c.tickUntil(() => status(c, 1).members.join() === "1", "a view of 1 alone");
  assert.deepEqual(request(c, 1, op("__REPLICASET", "REMOVE", "1")), {
    ok: true,
    result: { err: "ERR cannot remove the last voter" },
  });
  assert.deepEqual(request(c, 1, op("INCR", "n")), { ok: true, result: 1 });
});

Deno.test("membership: a learner serves reads, refuses writes, never counts for a majority", () => {
  const c = new SyncCluster([1, 2, 3], {}, [1, 2]);
  c.start();
  assert.deepEqual(add(c, 1, 3, "LEARNER"), { ok: true, result: { ok: "OK" } });
  c.tickUntil(() => status(c, 3).state === "normal", "learner 3 in a view");
  assert.deepEqual(status(c, 3).members, [1, 2]);
  assert.deepEqual(status(c, 3).learners, [3]);
  assert.deepEqual(request(c, 1, op("SET", "k", "1")), { ok: true, result: { ok: "OK" } });
  assert.deepEqual(request(c, 3, op("GET", "k")), { ok: true, result: "1" });
  const write = request(c, 3, op("SET", "k", "2"));
  assert.equal(write?.ok, false);
  assert.equal(!write?.ok && write?.code, "READONLY");
  // With voter 2 gone, 1 and the learner are no majority of the voters {1, 2}.
  c.isolate(2);
  c.tickUntil(() => status(c, 1).state !== "normal", "replica 1 stops serving");
  const refused = request(c, 1, op("SET", "k", "3"));
  assert.equal(refused?.ok === false && refused.code, "NOQUORUM");
  // While no view serves, the learner still refuses writes as READONLY (a learner, not a lack
  // of quorum), at once.
  c.tickUntil(() => status(c, 3).state !== "normal", "learner 3 stops serving");
  const early = c.step(3, { type: "request", id: 99, cmd: op("SET", "k", "4") });
  assert.deepEqual(early.flatMap((a) => a.type === "reply" ? [a.outcome] : []), [{
    ok: false,
    code: "READONLY",
    message: "You can't write against a read only replica.",
  }]);
});

Deno.test("membership: ADD and REMOVE errors change nothing", () => {
  const c = new SyncCluster([1, 2, 3], {}, [1, 2, 3]);
  c.start();
  const err = (o: unknown) => (o as { result: { err: string } }).result.err;
  assert.match(err(add(c, 1, 2)), /replica id 2 is already a member/);
  assert.match(
    err(request(c, 1, op("__REPLICASET", "ADD", "4", "mem", "7001", "9004"))),
    /address mem:7001 is already used by replica 1/,
  );
  assert.match(err(request(c, 1, op("__REPLICASET", "REMOVE", "9"))), /no such replica '9'/);
  assert.deepEqual(add(c, 1, 4), { ok: true, result: { ok: "OK" } });
  // Replica 4 never started: it stays catching up, and no other change may start meanwhile.
  assert.match(
    err(request(c, 2, op("__REPLICASET", "REMOVE", "3"))),
    /in progress: replica 4 is catching up/,
  );
  // Removing the replica that catches up cancels the join.
  assert.deepEqual(request(c, 2, op("__REPLICASET", "REMOVE", "4")), {
    ok: true,
    result: { ok: "OK" },
  });
  assert.deepEqual(status(c, 3).voters, [1, 2, 3]);
});
