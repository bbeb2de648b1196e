import assert from "node:assert/strict";
import { OpStats, RECENT_SAMPLES, WINDOW_MS } from "../../src/runtime/op_stats.ts";

Deno.test("op stats: counts, errors, observers and quantiles over the recent window", () => {
  let t = 1000;
  const stats = new OpStats(() => t);
  assert.deepEqual(stats.recent(), { p50Ms: null, p99Ms: null, windowSeconds: WINDOW_MS / 1000 });
  const seen: [string, boolean, number][] = [];
  stats.observe((cmd, ok, s) => seen.push([cmd, ok, s]));
  for (let ms = 1; ms <= 100; ms++) {
    const start = t;
    t += ms;
    stats.record("set", ms !== 7, start);
  }
  assert.equal(stats.total, 100);
  assert.equal(stats.errors, 1);
  assert.deepEqual(seen[6], ["set", false, 0.007]);
  // Samples 1..100 ms, recorded over 5,050 ms: all in the window.
  assert.deepEqual(stats.recent(), { p50Ms: 50, p99Ms: 99, windowSeconds: 10 });
  // Past the window nothing recent is left.
  t += WINDOW_MS + 1;
  assert.deepEqual(stats.recent().p50Ms, null);
  assert.equal(stats.total, 100, "totals are not windowed");
});

Deno.test("op stats: the ring keeps the newest samples", () => {
  const t = 50_000;
  const stats = new OpStats(() => t);
  for (let i = 0; i < RECENT_SAMPLES + 10; i++) {
    // 5 ms each, except the first ten: 1 s.
    stats.record("get", true, t - (i >= 10 ? 5 : 1000));
  }
  // The first ten 1-second samples were overwritten: everything kept took 5 ms.
  assert.deepEqual(stats.recent(), { p50Ms: 5, p99Ms: 5, windowSeconds: 10 });
});
