import assert from "node:assert/strict";
import { DeliveredLog } from "../../src/core/delivered_log.ts";
import { FailureDetector } from "../../src/core/failure_detector.ts";
import type { Command, Entry, Install, ReplicaId } from "../../src/core/types.ts";
import { SyncCluster } from "../support/sync_cluster.ts";

const entry = (seq: number): Entry => ({
  view: 0,
  ts: seq,
  origin: 1,
  seq,
  cmd: { op: { argv: ["GET", "k"], time: 0 } },
});

Deno.test("delivered log: keeps at least the last `retain` entries, by index", () => {
  const log = new DeliveredLog(3);
  assert.equal(log.end, 0);
  for (let i = 1; i <= 10; i++) log.append(entry(i));
  assert.equal(log.end, 10);
  assert.ok(log.start <= 8);
  assert.equal(log.get(10)?.seq, 10);
  assert.equal(log.get(log.start - 1), undefined);
  assert.deepEqual(log.slice(8, 10)?.map((e) => e.seq), [8, 9, 10]);
  assert.equal(log.slice(1, 10), undefined, "dropped entries cannot be sliced");
  assert.deepEqual(log.slice(11, 10), []);
  log.resetTo(42);
  assert.equal(log.end, 42);
  log.append(entry(43));
  assert.equal(log.get(43)?.seq, 43);
});

/** An entry whose one argument has `bytes` bytes. */
const sized = (seq: number, bytes: number): Entry => ({
  ...entry(seq),
  cmd: { op: { argv: ["x".repeat(bytes)], time: 0 } },
});
const argBytes = (e: Entry) => e.cmd.op.argv.reduce((n, a) => n + a.length, 0);

Deno.test("delivered log: also bounded by bytes, down to them once twice them are held", () => {
  const log = new DeliveredLog(1000, 100, argBytes);
  for (let i = 1; i <= 19; i++) log.append(sized(i, 10));
  // 190 bytes: under twice the bound, nothing dropped yet.
  assert.equal(log.start, 1);
  assert.equal(log.bytes, 190);
  log.append(sized(20, 10));
  // 200 bytes reached: the oldest go until 100 bytes are left, the last ten entries.
  assert.equal(log.start, 11);
  assert.equal(log.end, 20);
  assert.equal(log.bytes, 100);
  assert.deepEqual(log.slice(11, 20)?.map((e) => e.seq), [11, 12, 13, 14, 15, 16, 17, 18, 19, 20]);
  // An entry larger than the bound alone: it is kept, everything before it goes.
  log.append(sized(21, 500));
  assert.equal(log.start, 21);
  assert.equal(log.bytes, 500);
  assert.equal(log.get(21)?.seq, 21);
  log.append(sized(22, 1));
  assert.equal(log.start, 22);
  assert.equal(log.bytes, 1);
  // The count bound still applies with the bytes bound far off.
  const counted = new DeliveredLog(3, 1 << 20, argBytes);
  for (let i = 1; i <= 6; i++) counted.append(sized(i, 1));
  assert.equal(counted.start, 4);
  assert.equal(counted.bytes, 3);
  counted.resetTo(10);
  assert.equal(counted.bytes, 0);
  assert.equal(counted.end, 10);
});

Deno.test("failure detector: alive within the timeout, views remembered", () => {
  const fd = new FailureDetector(2, [1, 2, 3], 10);
  assert.deepEqual(fd.alive(0), [2]);
  fd.heard(1, 5, 4);
  fd.heard(3, 8);
  assert.deepEqual(fd.alive(15), [1, 2, 3]);
  assert.deepEqual(fd.alive(16), [2, 3]);
  assert.equal(fd.reportedView(1), 4);
  assert.equal(fd.reportedView(3), -1);
});

/**
 * Replica 3 is cut off while 1 and 2 deliver `writes` SETs of 100-byte values, then healed; the
 * install the coordinator sends it back in: a snapshot, or the entries it missed.
 */
function rejoinInstall(retainBytes: number | undefined, writes: number) {
  const c = new SyncCluster([1, 2, 3], retainBytes === undefined ? {} : { retainBytes });
  c.start();
  const installs: Install[] = [];
  const step = c.step.bind(c);
  c.step = (id, event) => {
    const out = step(id, event);
    for (const a of out) {
      if (a.type === "send" && a.to === 3 && a.msg.type === "newview") installs.push(a.msg.install);
    }
    return out;
  };
  c.isolate(3);
  const status = (id: ReplicaId) => c.replicas.get(id)!.status();
  c.tickUntil(() => status(1).state === "normal" && status(1).members.join() === "1,2", "1,2");
  const value = "v".repeat(100);
  for (let i = 0; i < writes; i++) {
    const cmd: Command = { op: { argv: ["SET", `k${i}`, value], time: 0 } };
    assert.deepEqual(c.request(1 + (i % 2), cmd), { ok: true, result: { ok: "OK" } });
  }
  installs.length = 0;
  c.heal(3);
  c.tickUntil(() => status(3).state === "normal" && status(3).members.includes(3), "3 back");
  return installs;
}

Deno.test("delivered log: a member that missed more bytes than are kept gets a snapshot", () => {
  // 60 SETs of about 105 bytes each: over twice 2,000 bytes, so the entries it missed are gone.
  const bounded = rejoinInstall(2_000, 60);
  assert.ok(bounded.length > 0 && bounded.some((i) => i.snapshot !== undefined), "a snapshot");
  // The default bound (64 MiB) keeps them: the entries it missed, no snapshot.
  const kept = rejoinInstall(undefined, 60);
  assert.ok(kept.length > 0 && kept.every((i) => i.snapshot === undefined), "entries only");
  assert.ok(kept.some((i) => i.entries.length >= 60), "the missed entries");
});
