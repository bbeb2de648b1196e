import assert from "node:assert/strict";
import { planView, ReportConflict } from "../../src/core/view_change.ts";
import type { Entry, FlushReport, Snapshot } from "../../src/core/types.ts";
import { SyncCluster } from "../support/sync_cluster.ts";

function e(view: number, ts: number, origin: number, seq: number): Entry {
  return { view, ts, origin, seq, cmd: { op: { argv: ["SET", "k", `${ts}`], time: 0 } } };
}

function report(over: Partial<FlushReport>): FlushReport {
  return {
    normalView: 3,
    delivered: 0,
    last: null,
    holdback: [],
    log: { from: 1, entries: [] },
    ...over,
  };
}

const coordinator = (delivered: number, entries: Entry[] = [], snap?: Snapshot) => ({
  delivered,
  entry: (i: number) => entries[i - 1],
  snapshot: () => snap ?? { index: delivered, last: null, state: "coordinator-state" },
});

const ids = (install: { entries: Entry[] }) =>
  install.entries.map((x) => `${x.view}:${x.origin}:${x.seq}`);

Deno.test("plan: the longest log of the newest view, then the union in (ts, origin) order", () => {
  const log = [e(3, 1, 1, 1), e(3, 2, 2, 1)];
  const plan = planView(
    new Map([
      [1, report({ delivered: 0, holdback: [e(3, 1, 1, 1), e(3, 9, 1, 2)] })],
      [
        2,
        report({
          delivered: 2,
          last: { view: 3, ts: 2, origin: 2 },
          log: { from: 1, entries: log },
          holdback: [e(3, 5, 3, 1), e(3, 5, 2, 2)],
        }),
      ],
      // Replica 3 was last normal in an older view: its holdback is stale and dropped.
      [3, report({ normalView: 0, delivered: 0, holdback: [e(0, 1, 3, 7)] })],
    ]),
    coordinator(0),
  );
  assert.equal(plan.end, 5);
  // e(3,1,1,1) sorts before the base's last delivered entry: it was delivered, not re-added.
  assert.deepEqual(ids(plan.installs.get(1)!), ["3:1:1", "3:2:1", "3:2:2", "3:3:1", "3:1:2"]);
  assert.deepEqual(ids(plan.installs.get(2)!), ["3:2:2", "3:3:1", "3:1:2"]);
  assert.equal(plan.installs.get(2)!.from, 3);
  assert.equal(plan.installs.get(3)!.from, 1);
});

Deno.test("plan: an accepted install of a newer view wins and nothing is added to it", () => {
  const accepted = { view: 7, install: { from: 1, entries: [e(3, 1, 1, 1), e(3, 4, 2, 1)] } };
  const plan = planView(
    new Map([
      [1, report({ holdback: [e(3, 1, 1, 1), e(3, 4, 2, 1), e(3, 6, 1, 2)] })],
      [2, report({ accepted })],
    ]),
    coordinator(0),
  );
  assert.equal(plan.end, 2, "the holdback entry outside the accepted install is dropped");
  assert.deepEqual(ids(plan.installs.get(1)!), ["3:1:1", "3:2:1"]);
});

Deno.test("plan: a member behind the retained log gets a snapshot", () => {
  const snapshot: Snapshot = { index: 10, last: { view: 3, ts: 40, origin: 1 }, state: "s10" };
  const plan = planView(
    new Map([
      [1, report({ delivered: 10, last: snapshot.last, holdback: [e(3, 50, 2, 4)] })],
      [2, report({ normalView: 1, delivered: 2 })],
    ]),
    coordinator(10, [], snapshot),
  );
  const lagging = plan.installs.get(2)!;
  assert.equal(lagging.snapshot?.state, "s10");
  assert.equal(lagging.from, 11);
  assert.deepEqual(ids(lagging), ["3:2:4"]);
  assert.equal(plan.installs.get(1)!.snapshot, undefined);
});

Deno.test("plan: logs that disagree at an index are a ReportConflict", () => {
  assert.throws(
    () =>
      planView(
        new Map([
          [1, report({ delivered: 1, log: { from: 1, entries: [e(3, 1, 1, 1)] } })],
          [2, report({ delivered: 1, log: { from: 1, entries: [e(3, 1, 2, 1)] } })],
        ]),
        coordinator(0),
      ),
    ReportConflict,
  );
});

const put = (key: string, value: string) => ({ op: { argv: ["SET", key, value], time: 0 } });

Deno.test("views: a majority excludes a silent member and keeps serving; it refuses", () => {
  const c = new SyncCluster([1, 2, 3]);
  c.start();
  c.step(1, { type: "request", id: 1, cmd: put("a", "1") });
  c.settle();
  assert.equal(c.replies.get(1)!.get(1)?.outcome.ok, true);
  c.isolate(3);
  c.tick(150); // past the 1 s failure timeout
  for (const id of [1, 2]) {
    const s = c.replicas.get(id)!.status();
    assert.equal(s.state, "normal");
    assert.deepEqual(s.members, [1, 2]);
  }
  c.step(2, { type: "request", id: 2, cmd: put("a", "2") });
  c.settle();
  assert.equal(c.replies.get(2)!.get(2)?.outcome.ok, true);
  // The cut-off replica never answers from its own state.
  c.step(3, { type: "request", id: 3, cmd: { op: { argv: ["GET", "a"], time: 0 } } });
  const refused = c.replies.get(3)!.get(3)?.outcome;
  assert.ok(refused && !refused.ok && refused.code === "NOQUORUM", JSON.stringify(refused));
});

Deno.test("views: a healed member is taken back and catches up", () => {
  const c = new SyncCluster([1, 2, 3]);
  c.start();
  c.isolate(3);
  c.tick(150);
  for (let i = 0; i < 5; i++) c.step(1, { type: "request", id: i, cmd: put(`k${i}`, "v") });
  c.settle();
  c.heal(3);
  c.tick(60);
  const statuses = [1, 2, 3].map((id) => c.replicas.get(id)!.status());
  for (const s of statuses) {
    assert.equal(s.state, "normal");
    assert.deepEqual(s.members, [1, 2, 3]);
    assert.equal(s.delivered, statuses[0].delivered);
    assert.equal(s.digest, statuses[0].digest);
  }
  assert.equal(statuses[2].keys, 5);
});

Deno.test("views: with two of three gone, the survivor answers NOQUORUM, never a value", () => {
  const c = new SyncCluster([1, 2, 3]);
  c.start();
  c.step(1, { type: "request", id: 1, cmd: put("a", "1") });
  c.settle();
  c.isolate(2);
  c.isolate(3);
  c.step(1, { type: "request", id: 2, cmd: { op: { argv: ["GET", "a"], time: 0 } } });
  let answer;
  for (let t = 0; t < 250 && !answer; t++) {
    c.tick();
    answer = c.replies.get(1)!.get(2)?.outcome;
  }
  assert.ok(answer && !answer.ok, `a minority answered ${JSON.stringify(answer)}`);
  c.step(1, { type: "request", id: 3, cmd: { op: { argv: ["GET", "a"], time: 0 } } });
  const next = c.replies.get(1)!.get(3)?.outcome;
  assert.ok(next && !next.ok && next.code === "NOQUORUM");
});

/** Runs GET `key` at replica `id` until it is answered; its value (null: no such key). */
function read(c: SyncCluster, id: number, key: string, requestId: number): unknown {
  c.step(id, { type: "request", id: requestId, cmd: { op: { argv: ["GET", key], time: 0 } } });
  for (let t = 0; t < 100; t++) {
    const reply = c.replies.get(id)!.get(requestId);
    if (reply) {
      assert.ok(reply.outcome.ok, JSON.stringify(reply.outcome));
      return reply.outcome.result;
    }
    c.tick();
  }
  throw new Error("GET never answered");
}

Deno.test("views: a write multicast before its view broke is answered UNKNOWN, and may be applied", () => {
  const c = new SyncCluster([1, 2, 3]);
  c.start();
  // 3 is cut off first, so the write cannot be delivered in this view; 2 receives it.
  c.isolate(3);
  c.step(1, { type: "request", id: 1, cmd: put("a", "1") });
  c.settle();
  c.isolate(1);
  let outcome;
  for (let t = 0; t < 300 && !outcome; t++) {
    c.tick();
    outcome = c.replies.get(1)!.get(1)?.outcome;
  }
  assert.ok(outcome && !outcome.ok, JSON.stringify(outcome));
  assert.equal(outcome.code, "UNKNOWN", "it was multicast: the outcome is not known");
  assert.doesNotMatch(outcome.message, /not applied/);
  // 2 and 3 form the next view; 2 held the write, so the view applies it. UNKNOWN was honest.
  c.heal(3);
  c.tick(100);
  assert.equal(read(c, 2, "a", 2), "1");
});

Deno.test("views: NOQUORUM only for a request this replica never put into the order", () => {
  const c = new SyncCluster([1, 2, 3]);
  c.start();
  c.isolate(1);
  c.tick(150); // 1 has heard from nobody for a whole failure timeout
  c.step(1, { type: "request", id: 1, cmd: put("b", "1") });
  const refused = c.replies.get(1)!.get(1)?.outcome;
  assert.ok(refused && !refused.ok && refused.code === "NOQUORUM", JSON.stringify(refused));
  assert.match(refused.message, /it was not put into the order/);
  c.heal(1);
  c.tick(100);
  for (const id of [1, 2, 3]) {
    assert.equal(c.replicas.get(id)!.status().state, "normal");
    assert.equal(read(c, id, "b", 10 + id), null, `replica ${id} applied a refused write`);
  }
});
