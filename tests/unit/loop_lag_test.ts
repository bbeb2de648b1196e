/**
 * Unit tests of the event-loop lag monitor: a turn that holds the loop shows up as lag, and a
 * lag past the stall threshold is reported (the replica logs it as `node.stalled`).
 *
 * @module
 */
import assert from "node:assert/strict";
import { LOOP_LAG_INTERVAL_MS, LoopLagMonitor } from "../../src/runtime/loop_lag.ts";
import { waitFor } from "../support/cluster.ts";

/** Holds the event loop for `ms` (what a long garbage collection does to a replica). */
function holdLoop(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) { /* busy */ }
}

Deno.test("loop lag: a held loop is measured, and past the threshold reported as a stall", async () => {
  const stalls: number[] = [];
  const monitor = new LoopLagMonitor({ stallMs: 200, onStall: (ms) => stalls.push(ms) });
  try {
    monitor.start();
    await waitFor(() => monitor.lagSeconds.count > 0, { message: "a first measurement" });
    assert.equal(stalls.length, 0, "no stall while the loop is free");
    // Hold the loop from just after a measurement: the next one is late by about the hold.
    const seen = monitor.lagSeconds.count;
    await waitFor(() => monitor.lagSeconds.count > seen, {
      intervalMs: 5,
      message: "a measurement",
    });
    holdLoop(LOOP_LAG_INTERVAL_MS + 400);
    await waitFor(() => stalls.length > 0, { message: "the stall to be reported" });
    assert.ok(stalls[0] >= 200 && stalls[0] < 5000, `stall of ${stalls[0]} ms`);
    assert.ok(monitor.last >= 0.2, `last lag ${monitor.last} s`);
  } finally {
    monitor.stop();
  }
});

Deno.test("loop lag: without a threshold nothing is reported", async () => {
  let reported = 0;
  const monitor = new LoopLagMonitor({ onStall: () => reported++ });
  try {
    monitor.start();
    await waitFor(() => monitor.lagSeconds.count > 0, { message: "a first measurement" });
    holdLoop(LOOP_LAG_INTERVAL_MS + 200);
    const seen = monitor.lagSeconds.count;
    await waitFor(() => monitor.lagSeconds.count > seen, { message: "the late measurement" });
    assert.ok(monitor.last > 0.1, `last lag ${monitor.last} s`);
    assert.equal(reported, 0);
  } finally {
    monitor.stop();
  }
});
