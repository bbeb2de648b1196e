/**
 * One supervised child process ({@link SupervisedProcess}): spawned with its output read line by
 * line, its readiness seen in a ready line, its exit recorded, and stopped, killed, paused or
 * resumed by signals. Every process still running when this program unloads is SIGKILLed, and
 * directories registered with {@link removeAtUnload} are removed then (a last resort for a
 * program that forgot to stop its children; nothing helps when it is itself SIGKILLed).
 *
 * @module
 */
import { forEachLine } from "./lines.ts";

/** Which output stream a line came from. */
export type OutputStream = "out" | "err";

/** Options of {@link SupervisedProcess.spawn}. */
export interface ProcessOptions {
  /** The program (default: this `deno`, `Deno.execPath()`). */
  program?: string;
  /** Its arguments. */
  args: readonly string[];
  /** Its working directory (default: this process's). */
  cwd?: string;
  /** Called with every line of its stdout and stderr (without the line end), in order per stream. */
  onLine?: (line: string, stream: OutputStream) => void;
  /**
   * True for the stdout line that says the process is ready (see
   * {@link SupervisedProcess.waitReady}); without it the process is never ready.
   */
  isReadyLine?: (line: string) => boolean;
  /** Called once when the process has exited, before {@link SupervisedProcess.status} resolves. */
  onExit?: (status: Deno.CommandStatus) => void;
}

/** A gentle stop request: the signal, and what to do when it is not obeyed in time. */
export interface StopOptions {
  /** The signal asking the process to exit (default SIGTERM). */
  signal?: "SIGTERM" | "SIGINT";
  /** SIGKILL the process when it has not exited this many ms after the signal. */
  deadlineMs: number;
  /** Called just before that SIGKILL. */
  onLate?: () => void;
}

/** How {@link SupervisedProcess.stop} ended. */
export interface StopResult {
  /** The exit status. */
  status: Deno.CommandStatus;
  /** Whether the deadline passed and the process was SIGKILLed. */
  killed: boolean;
}

/** Processes spawned by this program that have not exited, for the unload handler. */
const live = new Set<Deno.ChildProcess>();
/** Directories to remove at unload. */
const liveDirs = new Set<string>();
let unloadInstalled = false;

function installUnloadHandler(): void {
  if (unloadInstalled) return;
  unloadInstalled = true;
  globalThis.addEventListener("unload", () => {
    for (const child of live) {
      try {
        child.kill("SIGKILL");
      } catch {
        // already gone
      }
    }
    for (const dir of liveDirs) {
      try {
        Deno.removeSync(dir, { recursive: true });
      } catch {
        // already removed
      }
    }
  });
}

/**
 * Removes `dir` (recursively) when this program unloads without having called the returned
 * function, which forgets `dir` again (call it once the directory was removed normally).
 */
export function removeAtUnload(dir: string): () => void {
  installUnloadHandler();
  liveDirs.add(dir);
  return () => {
    liveDirs.delete(dir);
  };
}

/** A child process, its output read line by line and its exit recorded. */
export class SupervisedProcess {
  /** Its process id. */
  readonly pid: number;
  /** Resolves with its exit status (after {@link exited} is set and `onExit` has run). */
  readonly status: Promise<Deno.CommandStatus>;
  /** Resolves when its stdout and stderr have both been read to their end. */
  readonly output: Promise<void>;
  readonly #process: Deno.ChildProcess;
  #exited: Deno.CommandStatus | null = null;
  #ready = false;
  #onReady: (() => void) | undefined;
  readonly #readyLine: Promise<void>;

  private constructor(options: ProcessOptions) {
    installUnloadHandler();
    this.#process = new Deno.Command(options.program ?? Deno.execPath(), {
      args: [...options.args],
      ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const process = this.#process;
    this.pid = process.pid;
    live.add(process);
    this.#readyLine = new Promise((resolve) => (this.#onReady = resolve));
    const isReady = options.isReadyLine;
    const onLine = options.onLine;
    this.output = Promise.all([
      forEachLine(process.stdout, (line) => {
        onLine?.(line, "out");
        if (!this.#ready && isReady?.(line)) {
          this.#ready = true;
          this.#onReady?.();
        }
      }),
      forEachLine(process.stderr, (line) => onLine?.(line, "err")),
    ]).then(() => {});
    this.status = process.status.then((s) => {
      this.#exited = s;
      live.delete(process);
      options.onExit?.(s);
      return s;
    });
  }

  /**
   * Starts a process (stdin `/dev/null`, stdout and stderr read line by line).
   *
   * @throws {Error} when it cannot be started (e.g. the program does not exist).
   */
  static spawn(options: ProcessOptions): SupervisedProcess {
    return new SupervisedProcess(options);
  }

  /** Its exit status, or null while it runs. */
  get exited(): Deno.CommandStatus | null {
    return this.#exited;
  }

  /** Whether it has not exited yet. */
  get running(): boolean {
    return this.#exited === null;
  }

  /** Whether it printed its ready line. */
  get ready(): boolean {
    return this.#ready;
  }

  /** Sends `signal`; false when the process is already gone. */
  signal(signal: Deno.Signal): boolean {
    if (this.#exited !== null) return false;
    try {
      this.#process.kill(signal);
      return true;
    } catch {
      return false; // exited meanwhile
    }
  }

  /** Freezes it (SIGSTOP): its sockets stay open but it runs no code. */
  pause(): void {
    this.signal("SIGSTOP");
  }

  /** Thaws it (SIGCONT). */
  resume(): void {
    this.signal("SIGCONT");
  }

  /** SIGKILLs it (kill -9) and resolves with its exit status. */
  kill(): Promise<Deno.CommandStatus> {
    this.signal("SIGKILL");
    return this.status;
  }

  /**
   * Asks it to exit with `options.signal` (SIGCONT too, so a paused process can act on it) and
   * waits; SIGKILLs it when it has not exited after `options.deadlineMs`. Resolves once it has
   * exited.
   */
  async stop(options: StopOptions): Promise<StopResult> {
    if (this.#exited !== null) return { status: this.#exited, killed: false };
    this.signal(options.signal ?? "SIGTERM");
    this.signal("SIGCONT");
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<"late">((resolve) => {
      timer = setTimeout(resolve, options.deadlineMs, "late");
    });
    const first = await Promise.race([this.status, late]);
    clearTimeout(timer);
    if (first !== "late") return { status: first, killed: false };
    if (this.#exited === null) options.onLate?.();
    return { status: await this.kill(), killed: true };
  }

  /**
   * Waits until it prints its ready line (see {@link ProcessOptions.isReadyLine}).
   *
   * @param name how error messages call it (default `process <pid>`).
   * @throws {Error} when it exits first, or after `timeoutMs`.
   */
  async waitReady(timeoutMs: number, name = `process ${this.pid}`): Promise<void> {
    const what = `${name} to print its ready line`;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<"late">((resolve) => {
      timer = setTimeout(resolve, timeoutMs, "late");
    });
    const first = await Promise.race([
      this.#readyLine.then(() => "ready" as const),
      this.status.then(() => "exited" as const),
      late,
    ]);
    clearTimeout(timer);
    if (this.#ready) return;
    if (first === "exited" || this.#exited !== null) {
      const s = this.#exited!;
      throw new Error(
        `gave up waiting for ${what}: ${name} exited (code ${s.code}, signal ${s.signal})`,
      );
    }
    throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
  }
}
