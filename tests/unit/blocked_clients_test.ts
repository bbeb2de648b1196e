/**
 * Unit tests of a replica's blocked clients (`src/runtime/blocked_clients.ts`) over a state machine
 * that applies every submitted operation at once (a one-replica order): served, timed out,
 * cancelled by a closed connection, and the drops of dead owners and earlier incarnations.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { Command, Outcome, Reply } from "../../src/core/types.ts";
import { KvStore } from "../../src/kv/store.ts";
import { BlockedClients } from "../../src/runtime/blocked_clients.ts";
import { waitFor } from "../support/cluster.ts";

/** A replica `id` whose order applies each operation when submitted; `members` of its view. */
function replica(id: number, members = [1, 2, 3]) {
  const kv = new KvStore();
  const submitted: string[][] = [];
  const apply = (argv: string[]): Reply => {
    submitted.push(argv);
    const result = kv.apply({ op: { argv, time: 1_000 } });
    blocked.afterStep();
    return result;
  };
  const blocked: BlockedClients = new BlockedClients({
    id,
    submit: (cmd: Command, respond: (o: Outcome) => void) => {
      const result = apply(cmd.op.argv);
      queueMicrotask(() => respond({ ok: true, result }));
    },
    now: () => 1_000,
    waiters: () => kv.waiters,
    members: () => members,
    leads: () => Math.min(...members) === id,
  });
  /** A client's blocking command: its reply, when it comes. */
  const call = (argv: string[], gone?: AbortSignal) =>
    new Promise<Reply>((resolve) => {
      const cmd = { op: { argv, time: 1_000 } };
      assert.ok(BlockedClients.isBlocking(cmd));
      blocked.submit(cmd, (o) => resolve(o.ok ? o.result : { err: o.message }), gone);
    });
  return { kv, blocked, apply, call, submitted };
}

/** Resolves once `check()` holds (checked every millisecond; 2 s at most). */
function until(check: () => boolean): Promise<void> {
  return waitFor(check, { timeoutMs: 2000, intervalMs: 1, message: "the condition" });
}

Deno.test("blocked clients: a push serves the waiting client through a finish", async () => {
  const r = replica(1);
  assert.equal(BlockedClients.isBlocking({ op: { argv: ["lpop", "k"], time: 0 } }), false);
  const reply = r.call(["BLPOP", "k", "0"]);
  await until(() => r.blocked.size === 1 && r.kv.waiters.size === 1);
  r.apply(["RPUSH", "k", "x", "y"]);
  assert.deepEqual(await reply, ["k", "x"]);
  assert.equal(r.submitted.filter((a) => a[0] === "__BFINISH").length, 1);
  assert.deepEqual(r.apply(["LRANGE", "k", "0", "-1"]), ["y"]);
  assert.equal(r.blocked.size, 0);
  assert.equal(r.kv.waiters.size, 0);
  assert.deepEqual(await r.call(["BLPOP", "k", "0"]), ["k", "y"], "served at once");
  r.blocked.stop();
});

Deno.test("blocked clients: a timeout answers a null array; later pushes stay", async () => {
  const r = replica(1);
  assert.deepEqual(await r.call(["BRPOP", "k", "0.02"]), { nil: "array" });
  assert.equal(r.kv.waiters.size, 0);
  r.apply(["RPUSH", "k", "x"]);
  assert.deepEqual(r.apply(["LRANGE", "k", "0", "-1"]), ["x"]);
  assert.deepEqual(await r.call(["BLPOP", "k", "-1"]), { err: "ERR timeout is negative" });
  r.blocked.stop();
});

Deno.test("blocked clients: a closed connection cancels, and the element goes on", async () => {
  const r = replica(1);
  const gone = new AbortController();
  const first = r.call(["BLPOP", "k", "0"], gone.signal);
  await until(() => r.kv.waiters.size === 1);
  const second = r.call(["BLPOP", "k", "0"]);
  await until(() => r.kv.waiters.size === 2);
  gone.abort();
  assert.deepEqual(await first, { nil: "array" }, "its slot is freed");
  await until(() => r.submitted.some((a) => a[0] === "__BCANCEL"));
  r.apply(["RPUSH", "k", "x"]);
  assert.deepEqual(await second, ["k", "x"]);
  r.blocked.stop();
});

Deno.test("blocked clients: the leader drops waiters of replicas outside the view", async () => {
  const leader = replica(1, [1, 2]);
  leader.apply(["__BLOCK", "3.dead/1", "BLPOP", "k", "0"]);
  leader.apply(["__BLOCK", "2.alive/1", "BLPOP", "k", "0"]);
  leader.apply(["__BLOCK", "1.before/1", "BLPOP", "k", "0"]);
  leader.apply(["RPUSH", "k", "x"]);
  assert.deepEqual(leader.kv.waiters.get("3.dead/1")?.handed?.items, ["x"]);
  leader.blocked.reconcile();
  await until(() => leader.kv.waiters.size === 1);
  assert.deepEqual(
    leader.submitted.filter((a) => a[0] === "__BDROP").map((a) => a[1]).sort(),
    ["1.before", "3.dead"],
    "the dead replica's and this replica's earlier process's",
  );
  assert.deepEqual(leader.kv.waiters.get("2.alive/1")?.handed?.items, ["x"], "handed on");
  leader.blocked.stop();

  const other = replica(2, [1, 2]);
  other.apply(["__BLOCK", "3.dead/1", "BLPOP", "k", "0"]);
  other.apply(["__BLOCK", "2.mine/1", "BLPOP", "k", "0"]);
  other.blocked.reconcile();
  await until(() => other.submitted.some((a) => a[0] !== "__BLOCK"));
  assert.deepEqual(
    other.submitted.filter((a) => a[0] === "__BDROP" || a[0] === "__BCANCEL"),
    [["__BDROP", "2.mine"]],
    "not the leader: only its own earlier process's waiters",
  );
  other.blocked.stop();
});

Deno.test("blocked clients: a timeout beyond a timer's range does not fire early", async () => {
  const r = replica(1);
  const reply = r.call(["BLPOP", "k", "3000000"]); // 3e9 ms: more than 2^31 - 1
  await until(() => r.kv.waiters.size === 1);
  // A timer of 2^31 ms or more would fire after 1 ms: one of 5 ms is ordered after it.
  await new Promise((resolve) => setTimeout(resolve, 5));
  assert.equal(r.kv.waiters.size, 1, "still waiting");
  r.apply(["RPUSH", "k", "x"]);
  assert.deepEqual(await reply, ["k", "x"]);
  r.blocked.stop();
});
