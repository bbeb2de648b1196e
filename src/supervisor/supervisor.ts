/**
 * A {@link Supervisor} runs replica processes by replica id: spawns one (`deno run ...
 * src/cli/node.ts <id> <config> [flags]`, see {@link nodeCommandArgs}), knows when it is ready
 * (it printed its `node.ready` line for its id), restarts it after it exited, and stops them all
 * (a signal, SIGKILL after a deadline). Each process is a {@link SupervisedProcess}: kill -9,
 * SIGSTOP/SIGCONT and single stops are done on it directly.
 *
 * Used by the `deno task cluster` launcher, by `deno task bench --spawn` and by the end-to-end
 * test harness.
 *
 * @module
 */
import { readyLineId } from "../log/format.ts";
import { type OutputStream, SupervisedProcess } from "./process.ts";

export { type OutputStream, SupervisedProcess } from "./process.ts";
export { removeAtUnload, type StopOptions, type StopResult } from "./process.ts";
export { describeStatus, NODE_ENTRY, NODE_PERMISSIONS, nodeCommandArgs } from "./node_command.ts";
export { forEachLine } from "./lines.ts";

/** Options of a {@link Supervisor}. */
export interface SupervisorOptions {
  /** Working directory of every process (default: this process's). */
  cwd?: string;
  /** The program (default: this `deno`). */
  program?: string;
  /** Called with every output line of replica `id`. */
  onLine?: (id: number, line: string, stream: OutputStream) => void;
  /** Called when replica `id` was spawned. */
  onSpawn?: (id: number, process: SupervisedProcess) => void;
  /** Called when replica `id` has exited (before its `status` resolves). */
  onExit?: (id: number, status: Deno.CommandStatus, process: SupervisedProcess) => void;
  /**
   * True for the stdout line of replica `id` that says it is ready (default: its `node.ready`
   * log line, text or JSON).
   */
  isReadyLine?: (id: number, line: string) => boolean;
}

/** Replica processes by id; each id has at most one process at a time. */
export class Supervisor {
  readonly #options: SupervisorOptions;
  readonly #processes = new Map<number, SupervisedProcess>();

  /** A supervisor with no process yet. */
  constructor(options: SupervisorOptions = {}) {
    this.#options = options;
  }

  /**
   * Spawns replica `id` with `args` (the program's arguments, e.g. from
   * {@link nodeCommandArgs}). Does not wait for it to be ready.
   *
   * @throws {Error} when replica `id` is running, or the process cannot be started.
   */
  spawn(id: number, args: readonly string[]): SupervisedProcess {
    if (this.running(id)) throw new Error(`replica ${id} is already running`);
    const o = this.#options;
    const isReadyLine = o.isReadyLine ?? ((rid: number, line: string) => readyLineId(line) === rid);
    const onLine = o.onLine;
    const onExit = o.onExit;
    const process: SupervisedProcess = SupervisedProcess.spawn({
      ...(o.program === undefined ? {} : { program: o.program }),
      args,
      ...(o.cwd === undefined ? {} : { cwd: o.cwd }),
      isReadyLine: (line) => isReadyLine(id, line),
      ...(onLine === undefined ? {} : { onLine: (line, stream) => onLine(id, line, stream) }),
      ...(onExit === undefined ? {} : { onExit: (s) => onExit(id, s, process) }),
    });
    this.#processes.set(id, process);
    o.onSpawn?.(id, process);
    return process;
  }

  /**
   * Spawns replica `id` again with `args` once its last process has exited and its output has
   * been read, and waits until it is ready.
   *
   * @throws {Error} when it is still running, it exits before being ready, or after `timeoutMs`.
   */
  async restart(
    id: number,
    args: readonly string[],
    timeoutMs: number,
  ): Promise<SupervisedProcess> {
    const old = this.#processes.get(id);
    if (old !== undefined && old.running) {
      throw new Error(`replica ${id} is still running; kill it before restart`);
    }
    if (old !== undefined) await old.output;
    const process = this.spawn(id, args);
    await process.waitReady(timeoutMs, `replica ${id}`);
    return process;
  }

  /** The current (or last) process of replica `id`. */
  get(id: number): SupervisedProcess | undefined {
    return this.#processes.get(id);
  }

  /**
   * The current (or last) process of replica `id`.
   *
   * @throws {Error} when replica `id` was never started.
   */
  process(id: number): SupervisedProcess {
    const p = this.#processes.get(id);
    if (p === undefined) throw new Error(`replica ${id} was never started`);
    return p;
  }

  /** Whether replica `id` has a process that has not exited. */
  running(id: number): boolean {
    return this.#processes.get(id)?.running ?? false;
  }

  /** The current (or last) process of every replica ever started, by id, in start order. */
  entries(): [number, SupervisedProcess][] {
    return [...this.#processes];
  }

  /**
   * Waits until replica `id` is ready (see {@link SupervisedProcess.waitReady}).
   *
   * @throws {Error} when it was never started, it exits first, or after `timeoutMs`.
   */
  async waitReady(id: number, timeoutMs: number): Promise<void> {
    await this.process(id).waitReady(timeoutMs, `replica ${id}`);
  }

  /**
   * Stops every running process: with `SIGKILL` at once; with a gentle signal, SIGKILL after
   * `deadlineMs` (`onLate(id)` is called just before). Resolves once every process has exited
   * and its output has been read. Never throws.
   */
  async stopAll(
    options: { signal: "SIGKILL" } | {
      signal: "SIGTERM" | "SIGINT";
      deadlineMs: number;
      onLate?: (id: number) => void;
    },
  ): Promise<void> {
    const all = [...this.#processes];
    await Promise.all(all.map(([id, p]) => {
      if (options.signal === "SIGKILL") return p.kill();
      const onLate = options.onLate;
      return p.stop({
        signal: options.signal,
        deadlineMs: options.deadlineMs,
        ...(onLate === undefined ? {} : { onLate: () => onLate(id) }),
      });
    }));
    await Promise.all(all.map(([, p]) => p.output));
  }
}
