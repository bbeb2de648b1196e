/**
 * Runs fuzz targets in a worker with a watchdog, saves failing inputs to the corpus, and replays
 * the corpus.
 *
 * Input `i` of a run is made from `(seed, i)` alone, so a run is reproducible from its seed and
 * any single input from its index. A failing input is written to
 * `tests/fuzz/corpus/<target>/<hash>.bin` (the first 16 hex digits of its SHA-256) and the runner
 * prints how to replay it; every file there is replayed by `tests/unit/fuzz_test.ts`.
 *
 * Hangs: the worker copies each input into a shared buffer before running it. When the index in
 * that buffer does not move for {@link WATCHDOG_MS} while the process uses as much CPU time (the
 * worker spins), or for {@link WATCHDOG_WALL_MS} (it waits for something that never comes), the
 * runner terminates the worker, saves the input as a failure (`hang`), and starts a new worker
 * after it. CPU time, as in the per-input guard: on a loaded machine the wall time of the same
 * work grows several times. (Deno's `terminate` was seen not to stop a worker spinning in a
 * loop: after a real hang its thread keeps using a core, and the CPU rule then trips after the
 * same wall time as it did before it counted CPU time.)
 *
 * @module
 */
import { join } from "node:path";
import { fileURLToPath as fromFileUrl } from "node:url";
import { createHash } from "node:crypto";
import process from "node:process";
import { guardedRun } from "./guard.ts";
import { targetNamed } from "./targets.ts";
import { SHARED_HEADER, type WorkerJob, type WorkerReport } from "./worker.ts";

/** The corpus of inputs that once failed, one folder per target. */
export const CORPUS_DIR: string = fromFileUrl(new URL("./corpus/", import.meta.url));

/**
 * An input (or its generation) that uses this much CPU time, and as much wall time, without
 * finishing is a hang (the guard's 1 s limit catches slower ones that end).
 */
export const WATCHDOG_MS = 5000;
/** An input that does not finish within this much wall time is a hang, CPU time or not. */
export const WATCHDOG_WALL_MS = 60_000;

/** CPU time (user + system) this process used, in ms: the worker's and the runner's. */
function cpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

/** Largest input kept whole in the shared buffer (inputs are far smaller). */
const SHARED_INPUT_BYTES = 8 * 1024 * 1024;

/** One failing input. */
export interface FuzzFinding {
  target: string;
  index: number;
  reason: string;
  /** Where it was saved. */
  file: string;
}

/** The outcome of running one target. */
export interface TargetRun {
  target: string;
  seed: number;
  inputs: number;
  ms: number;
  findings: FuzzFinding[];
}

/** Options of {@link runTarget}. */
export interface RunOptions {
  seed: number;
  /** Index of the first input (default 0). */
  start?: number;
  /** Stop before this input index (default: unbounded, then `seconds` must be given). */
  count?: number;
  /** Wall-clock budget in seconds. */
  seconds?: number;
  /** Where progress lines go (default console.log). */
  log?: (line: string) => void;
  /** Save failing inputs to the corpus (default true). */
  save?: boolean;
}

function hashOf(input: Uint8Array): string {
  return createHash("sha256").update(input).digest("hex").slice(0, 16);
}

/** The path of `input` in the corpus of `target`, relative to the repository. */
export function corpusPath(target: string, input: Uint8Array): string {
  return join(CORPUS_DIR, target, `${hashOf(input)}.bin`);
}

function save(target: string, input: Uint8Array, reason: string): string {
  const path = corpusPath(target, input);
  Deno.mkdirSync(join(CORPUS_DIR, target), { recursive: true });
  Deno.writeFileSync(path, input);
  Deno.writeTextFileSync(
    path.replace(/\.bin$/, ".txt"),
    reason.split("\n").slice(0, 12).join("\n") + "\n",
  );
  return path;
}

function relative(path: string): string {
  const root = fromFileUrl(new URL("../../", import.meta.url));
  return path.startsWith(root) ? path.slice(root.length) : path;
}

/** Runs one target in a worker; resolves when its count or time is used up. */
export async function runTarget(name: string, options: RunOptions): Promise<TargetRun> {
  const target = targetNamed(name);
  const log = options.log ?? console.log;
  const count = options.count ?? Number.MAX_SAFE_INTEGER;
  if (options.count === undefined && options.seconds === undefined) {
    throw new Error("give a count or seconds");
  }
  const t0 = performance.now();
  const deadline = options.seconds === undefined
    ? Number.MAX_SAFE_INTEGER
    : Date.now() + options.seconds * 1000;
  const findings: FuzzFinding[] = [];
  const found = (index: number, input: Uint8Array, reason: string) => {
    const file = options.save === false
      ? "(not saved)"
      : relative(save(target.name, input, reason));
    findings.push({ target: target.name, index, reason, file });
    log(`FAIL ${target.name} input ${index} (seed ${options.seed}): ${reason.split("\n")[0]}`);
    log(`  saved to ${file}; replay: deno task fuzz --replay ${file}`);
    log(
      `  or: deno task fuzz --target ${target.name} --seed ${options.seed} --start ${index} --count 1`,
    );
  };
  let next = options.start ?? 0;
  let done = 0;
  while (next < count && Date.now() < deadline) {
    const shared = new SharedArrayBuffer(SHARED_HEADER + SHARED_INPUT_BYTES);
    const meta = new Int32Array(shared, 0, 4);
    Atomics.store(meta, 0, -1);
    const worker = new Worker(new URL("./worker.ts", import.meta.url), { type: "module" });
    const job: WorkerJob = {
      target: target.name,
      seed: options.seed,
      start: next,
      end: count,
      deadline,
      shared,
    };
    const outcome = await new Promise<
      { next: number } | { hang: number; input: Uint8Array; took: string } | { error: string }
    >(
      (resolve) => {
        let lastIndex = -2;
        let lastDone = -1;
        let since = performance.now();
        let sinceCpu = cpuMs();
        const timer = setInterval(() => {
          const index = Atomics.load(meta, 0);
          const d = Atomics.load(meta, 2);
          if (index !== lastIndex || d !== lastDone) {
            lastIndex = index;
            lastDone = d;
            since = performance.now();
            sinceCpu = cpuMs();
            return;
          }
          const cpu = cpuMs() - sinceCpu;
          const wall = performance.now() - since;
          if (
            index >= 0 && ((cpu > WATCHDOG_MS && wall > WATCHDOG_MS) || wall > WATCHDOG_WALL_MS)
          ) {
            clearInterval(timer);
            const took = `${Math.round(cpu)} ms of CPU time in ${Math.round(wall)} ms`;
            if (Atomics.load(meta, 3) === 1) {
              worker.terminate();
              resolve({ error: `generating input ${index} did not finish: ${took}` });
              return;
            }
            const len = Math.min(Atomics.load(meta, 1), SHARED_INPUT_BYTES);
            const input = new Uint8Array(shared, SHARED_HEADER, len).slice();
            worker.terminate();
            resolve({ hang: index, input, took });
          }
        }, 250);
        worker.onmessage = (e: MessageEvent<WorkerReport>) => {
          const r = e.data;
          if (r.type === "failure") found(r.index, r.input, r.reason);
          else if (r.type === "done") {
            clearInterval(timer);
            worker.terminate();
            resolve({ next: r.next });
          } else {
            clearInterval(timer);
            worker.terminate();
            resolve({ error: r.message });
          }
        };
        worker.onerror = (e) => {
          e.preventDefault();
          clearInterval(timer);
          worker.terminate();
          resolve({ error: e.message });
        };
        worker.postMessage(job);
      },
    );
    done += Atomics.load(meta, 2);
    if ("next" in outcome) {
      next = outcome.next;
      break;
    }
    if ("error" in outcome) {
      // The worker died (an uncaught error, e.g. an unhandled rejection): blame the input it ran.
      const index = Atomics.load(meta, 0);
      const len = Math.min(Atomics.load(meta, 1), SHARED_INPUT_BYTES);
      if (index < 0 || Atomics.load(meta, 3) === 1) {
        throw new Error(`fuzz worker for ${target.name} failed (a harness bug): ${outcome.error}`);
      }
      found(
        index,
        new Uint8Array(shared, SHARED_HEADER, len).slice(),
        `the worker died: ${outcome.error}`,
      );
      next = index + 1;
      continue;
    }
    found(outcome.hang, outcome.input, `hang: no result after ${outcome.took}`);
    next = outcome.hang + 1;
  }
  return {
    target: target.name,
    seed: options.seed,
    inputs: done,
    ms: performance.now() - t0,
    findings,
  };
}

/** The corpus files of `target` (or of every target), as [target, path] pairs. */
export function corpusFiles(target?: string): [string, string][] {
  const out: [string, string][] = [];
  let dirs: string[];
  try {
    dirs = [...Deno.readDirSync(CORPUS_DIR)].filter((e) => e.isDirectory).map((e) => e.name);
  } catch {
    return out;
  }
  for (const dir of dirs.sort()) {
    if (target !== undefined && dir !== target) continue;
    for (const f of [...Deno.readDirSync(join(CORPUS_DIR, dir))].map((e) => e.name).sort()) {
      if (f.endsWith(".bin")) out.push([dir, join(CORPUS_DIR, dir, f)]);
    }
  }
  return out;
}

/** Replays one saved input (its folder names the target): null when it passes now. */
export async function replay(path: string): Promise<string | null> {
  const target = targetNamed(path.split(/[\\/]/).at(-2) ?? "");
  await target.setup?.();
  try {
    return await guardedRun(target, Deno.readFileSync(path));
  } finally {
    await target.teardown?.();
  }
}
