/**
 * The per-input guard: an input fails when its target throws (a {@link FuzzFailure} or anything
 * else), takes more than {@link MAX_INPUT_MS} of CPU time, or grows the heap (plus array buffers)
 * by more than {@link MAX_INPUT_HEAP_BYTES}. CPU time, not wall time: on a loaded machine (other
 * test processes on two cores) an input's wall time can triple while its work does not. A slow
 * input is run once more before it counts, so that a pause (GC) is not reported as a hang.
 *
 * Inputs that never return are caught by the runner's watchdog (see `runner.ts`).
 *
 * @module
 */
import process from "node:process";
import type { Target } from "./targets.ts";

/** Most CPU time (ms, this process's user + system) an input may take. */
export const MAX_INPUT_MS = 1000;
/** Most an input may grow the heap by. */
export const MAX_INPUT_HEAP_BYTES = 64 * 1024 * 1024;

/** The heap in use plus array buffers, in bytes. */
export function heapBytes(): number {
  const m = Deno.memoryUsage();
  return m.heapUsed + m.external;
}

async function once(
  target: Target,
  input: Uint8Array,
  memory: boolean,
): Promise<{ reason: string | null; ms: number; grew: number }> {
  const before = memory ? heapBytes() : 0;
  const t0 = process.cpuUsage();
  let reason: string | null = null;
  try {
    await target.run(input);
  } catch (err) {
    reason = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    if (err instanceof Error && err.name !== "FuzzFailure" && err.stack) reason += `\n${err.stack}`;
  }
  const used = process.cpuUsage(t0);
  const ms = (used.user + used.system) / 1000;
  return { reason, ms, grew: memory ? heapBytes() - before : 0 };
}

/**
 * Runs `input` on `target` under the guard: null when it passed, else why it failed. With
 * `memory: false` the heap is not measured (the caller measures a batch of inputs at once and
 * reruns them one by one with the full guard when the batch grew too much: measuring costs
 * about 25 µs, more than most inputs).
 */
export async function guardedRun(
  target: Target,
  input: Uint8Array,
  options: { memory?: boolean } = {},
): Promise<string | null> {
  const memory = options.memory ?? true;
  let r = await once(target, input, memory);
  if (r.reason !== null) return r.reason;
  if (r.ms > MAX_INPUT_MS || r.grew > MAX_INPUT_HEAP_BYTES) r = await once(target, input, memory);
  if (r.reason !== null) return r.reason;
  if (r.ms > MAX_INPUT_MS) {
    return `took ${Math.round(r.ms)} ms of CPU (limit ${MAX_INPUT_MS} ms), twice`;
  }
  if (r.grew > MAX_INPUT_HEAP_BYTES) {
    return `grew the heap by ${(r.grew / 2 ** 20).toFixed(1)} MiB (limit ${
      MAX_INPUT_HEAP_BYTES / 2 ** 20
    } MiB), twice`;
  }
  return null;
}
