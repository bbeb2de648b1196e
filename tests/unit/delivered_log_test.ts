import assert from "node:assert/strict";
import { DeliveredLog } from "../../src/core/delivered_log.ts";
import { FailureDetector } from "../../src/core/failure_detector.ts";
import type { Entry } from "../../src/core/types.ts";

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
