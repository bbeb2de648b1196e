/**
 * Unit tests of the memory guard: where writes are refused (maxmemory, the heap guard, the
 * smaller of both) and how often used memory is read.
 *
 * @module
 */
import assert from "node:assert/strict";
import { machineMemory, MemoryGuard, readMemory } from "../../src/runtime/memory_guard.ts";
import { HEAP_GUARD_FRACTION, MEMORY_READ_INTERVAL_MS } from "../../src/limits.ts";

const GiB = 2 ** 30;

/** A guard over fake readings: `used` is what the next reading returns; `reads` counts them. */
function fake(maxmemory: number, heapLimit = 4 * GiB, machine = 64 * GiB) {
  const state = { used: 0, reads: 0, now: 0 };
  const guard = new MemoryGuard({
    maxmemory,
    machine,
    now: () => state.now,
    read: () => {
      state.reads++;
      return { used: state.used, heapLimit };
    },
  });
  return { guard, state };
}

Deno.test("memory guard: without maxmemory, writes stop at a fraction of the heap limit", () => {
  const { guard, state } = fake(0);
  assert.equal(guard.limit, Math.floor(HEAP_GUARD_FRACTION * 4 * GiB));
  assert.equal(guard.cappedByHeap, false);
  state.used = guard.limit;
  assert.equal(guard.outOfMemory(), false, "at the limit is not over it");
  state.now += MEMORY_READ_INTERVAL_MS;
  state.used = guard.limit + 1;
  assert.equal(guard.outOfMemory(), true);
});

Deno.test("memory guard: maxmemory below the heap guard is the limit; above it, capped", () => {
  assert.equal(fake(100 * 2 ** 20).guard.limit, 100 * 2 ** 20);
  const capped = fake(10 * GiB).guard;
  assert.equal(capped.limit, Math.floor(HEAP_GUARD_FRACTION * 4 * GiB));
  assert.equal(capped.cappedByHeap, true);
  assert.equal(capped.maxmemory, 10 * GiB);
});

Deno.test("memory guard: a machine smaller than the heap limit lowers the guard", () => {
  const { guard } = fake(0, 16 * GiB, 8 * GiB);
  assert.equal(guard.limit, Math.floor(HEAP_GUARD_FRACTION * 8 * GiB));
  assert.equal(fake(0, 16 * GiB, 0).guard.limit, Math.floor(HEAP_GUARD_FRACTION * 16 * GiB));
});

Deno.test("memory guard: used memory is read at most once per interval", () => {
  const { guard, state } = fake(1000);
  const atStart = state.reads; // the constructor reads the heap limit
  state.used = 2000;
  assert.equal(guard.outOfMemory(), true);
  state.used = 10;
  state.now += MEMORY_READ_INTERVAL_MS - 1;
  assert.equal(guard.outOfMemory(), true, "the reading is reused within the interval");
  assert.equal(state.reads, atStart + 1);
  state.now += 1;
  assert.equal(guard.outOfMemory(), false, "read again once the interval passed");
  assert.equal(state.reads, atStart + 2);
});

Deno.test("memory guard: a negative or fractional maxmemory is refused", () => {
  assert.throws(() => new MemoryGuard({ maxmemory: -1 }), RangeError);
  assert.throws(() => new MemoryGuard({ maxmemory: 1.5 }), RangeError);
});

Deno.test("memory guard: the real readings are plausible", () => {
  const m = readMemory();
  assert.ok(m.used > 0 && m.used < m.heapLimit, `used ${m.used} of ${m.heapLimit}`);
  const machine = machineMemory();
  if (Deno.build.os === "linux") assert.ok(machine > 2 ** 27, `machine memory ${machine}`);
  const guard = new MemoryGuard({ maxmemory: 0 });
  assert.equal(guard.outOfMemory(), false, "a test process is far below the guard");
});
