/**
 * Seeded whole-cluster simulations of the normal case: 3 and 5 replicas, random delays (FIFO per
 * link), link failures with reconnect and resend, random clients. Every seed is checked against
 * the invariants; a failing seed is printed with the command that reruns it alone.
 *
 * Environment: SIM_SEED=<n> runs that seed only; SIM_SEEDS=<n> sets how many seeds per case.
 */
import assert from "node:assert/strict";
import { DEFAULT_SIM, type SimOptions, simulate } from "./simulator.ts";
import { checkInvariants, type Expectations } from "./invariants.ts";

const only = Deno.env.get("SIM_SEED");
const count = Number(Deno.env.get("SIM_SEEDS") ?? "0");

function seeds(defaultCount: number, base: number): number[] {
  if (only !== undefined) return [Number(only)];
  const n = count > 0 ? count : defaultCount;
  return Array.from({ length: n }, (_, i) => base + i);
}

function runSeeds(
  name: string,
  overrides: Partial<SimOptions>,
  seedList: number[],
  expect: Expectations = { allSucceed: true },
): void {
  const failures: string[] = [];
  for (const seed of seedList) {
    const options: SimOptions = { ...DEFAULT_SIM, ...overrides, seed };
    const result = simulate(options);
    const violations = checkInvariants(result, expect);
    if (violations.length > 0) {
      const rerun = `SIM_SEED=${seed} deno test --allow-all tests/sim/ --filter "${name}"`;
      failures.push(`seed ${seed}: ${violations.slice(0, 5).join("\n  ")}\n  rerun: ${rerun}`);
      if (failures.length >= 3) break;
    }
  }
  assert.deepEqual(failures, [], `${name}: failing seeds:\n${failures.join("\n")}`);
}

Deno.test("sim: 3 replicas, delays and link failures", () => {
  runSeeds("sim: 3 replicas", { replicas: 3 }, seeds(400, 1));
});

Deno.test("sim: 5 replicas, delays and link failures", () => {
  runSeeds("sim: 5 replicas", { replicas: 5, clients: 7 }, seeds(200, 100_001));
});

Deno.test("sim: 3 replicas, heavy link churn and long delays", () => {
  runSeeds(
    "sim: 3 replicas, heavy",
    { replicas: 3, linkFailureRate: 0.3, maxDelayMs: 60, maxLinkDownMs: 800 },
    seeds(100, 200_001),
    // Links are down most of the time here: requests may time out (UNKNOWN), but safety,
    // exactly-once delivery and eventual quiescence must hold.
    { allSucceed: false },
  );
});

Deno.test("sim: a run is a function of its seed", () => {
  const a = simulate({ ...DEFAULT_SIM, seed: 42 });
  const b = simulate({ ...DEFAULT_SIM, seed: 42 });
  assert.equal(a.endedAt, b.endedAt);
  assert.deepEqual([...a.deliveries], [...b.deliveries]);
  assert.ok(a.requests.length > 0 && a.quiescent);
});
