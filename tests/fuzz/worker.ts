/**
 * The fuzz worker: runs one target's inputs `start, start + 1, ...` and reports to the runner
 * (`runner.ts`). Before each input it copies the input and its index into a shared buffer, so
 * that when an input hangs the runner can terminate this worker and still save the input.
 *
 * @module
 */
import { inputRng } from "./corpus_gen.ts";
import { guardedRun, heapBytes, MAX_INPUT_HEAP_BYTES } from "./guard.ts";
import { targetNamed } from "./targets.ts";

/** What the runner asks a worker to do. */
export interface WorkerJob {
  target: string;
  seed: number;
  start: number;
  /** Stop after this input index (exclusive). */
  end: number;
  /** Stop at this time (ms since the epoch), whichever comes first. */
  deadline: number;
  /**
   * [0] = index of the input running, [1] = its length, [2] = inputs done, [3] = 1 while the
   * input is being generated; the input's bytes from {@link SHARED_HEADER} on.
   */
  shared: SharedArrayBuffer;
}

/** What a worker reports. */
export type WorkerReport =
  | { type: "failure"; index: number; input: Uint8Array; reason: string }
  | { type: "done"; next: number }
  | { type: "error"; message: string };

/** Inputs are cut to this size: a slow input then means a slow decoder, not a big input. */
export const MAX_INPUT_BYTES = 1024 * 1024;

/** The heap is measured once per this many inputs (see `guardedRun`). */
const MEMORY_BATCH = 16;

/** Bytes of the shared buffer before the input. */
export const SHARED_HEADER = 16;

const self = globalThis as unknown as {
  onmessage: ((e: MessageEvent<WorkerJob>) => void) | null;
  postMessage(m: WorkerReport): void;
};

self.onmessage = async (e: MessageEvent<WorkerJob>) => {
  const job = e.data;
  try {
    const target = targetNamed(job.target);
    await target.setup?.();
    const meta = new Int32Array(job.shared, 0, 4);
    const bytes = new Uint8Array(job.shared, SHARED_HEADER);
    let i = job.start;
    const batch: { index: number; input: Uint8Array }[] = [];
    let batchStart = heapBytes();
    for (; i < job.end && (i % 64 !== 0 || Date.now() < job.deadline); i++) {
      Atomics.store(meta, 3, 1); // generating: a hang here is the harness's, not an input's
      Atomics.store(meta, 0, i);
      const input = target.input(inputRng(job.seed, i)).subarray(0, MAX_INPUT_BYTES);
      Atomics.store(meta, 3, 0);
      const n = Math.min(input.length, bytes.length);
      bytes.set(input.subarray(0, n));
      Atomics.store(meta, 1, input.length);
      const reason = await guardedRun(target, input, { memory: false });
      if (reason !== null) self.postMessage({ type: "failure", index: i, input, reason });
      batch.push({ index: i, input });
      if (batch.length === MEMORY_BATCH) {
        if (heapBytes() - batchStart > MAX_INPUT_HEAP_BYTES) {
          // Find the input that grew the heap: each one again, measured alone.
          for (const b of batch) {
            const r = await guardedRun(target, b.input);
            if (r !== null) {
              self.postMessage({ type: "failure", index: b.index, input: b.input, reason: r });
            }
          }
        }
        batch.length = 0;
        batchStart = heapBytes();
      }
      Atomics.add(meta, 2, 1);
    }
    await target.teardown?.();
    self.postMessage({ type: "done", next: i });
  } catch (err) {
    self.postMessage({
      type: "error",
      message: err instanceof Error ? err.stack ?? err.message : String(err),
    });
  }
};
