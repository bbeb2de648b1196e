import assert from "node:assert/strict";
import { ProgressMonitor } from "../../src/core/progress_monitor.ts";

const SUSPECT = 100;

/** A monitor of members 2 and 3 with settable ack vectors. */
function monitor() {
  const m = new ProgressMonitor(SUSPECT);
  const acks = new Map<number, Map<number, number>>([[2, new Map()], [3, new Map()]]);
  const ack = (member: number, origin: number, seq: number) => acks.get(member)!.set(origin, seq);
  const update = (now: number, held: Record<number, number>) =>
    m.update(
      now,
      [2, 3],
      new Map(Object.entries(held).map(([o, s]) => [Number(o), s])),
      (member, origin) => acks.get(member)!.get(origin) ?? 0,
    );
  return { m, ack, update };
}

Deno.test("progress monitor: nothing to acknowledge, nobody stalls", () => {
  const { m, update } = monitor();
  for (let t = 0; t <= 5 * SUSPECT; t++) update(t, {});
  assert.equal(m.stalled(2, 5 * SUSPECT), false);
});

Deno.test("progress monitor: acks behind for longer than the timeout stall that member only", () => {
  const { m, ack, update } = monitor();
  for (let t = 0; t <= SUSPECT + 1; t++) {
    update(t, { 1: 1 + t, 2: 4 });
    // 3 keeps up with everything; 2 never acknowledges origin 1.
    ack(3, 1, 1 + t);
    ack(3, 2, 4);
    ack(2, 2, 4);
  }
  assert.equal(m.stalled(2, SUSPECT), false, "not longer than the timeout yet");
  assert.equal(m.stalled(2, SUSPECT + 1), true);
  assert.equal(m.stalled(3, SUSPECT + 1), false);
  m.reset();
  assert.equal(m.stalled(2, SUSPECT + 1), false, "a new view starts afresh");
});

Deno.test("progress monitor: a member always a little behind under load is not stalled", () => {
  const { m, ack, update } = monitor();
  for (let t = 0; t <= 10 * SUSPECT; t++) {
    update(t, { 1: 10 + t });
    // Acknowledges what was held 5 ticks ago: never caught up, always progressing.
    ack(2, 1, 5 + t);
    ack(3, 1, 10 + t);
    assert.equal(m.stalled(2, t), false, `tick ${t}`);
  }
});
