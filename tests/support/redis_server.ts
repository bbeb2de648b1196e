/**
 * A real Redis (the Debian `redis-server`) for differential and compatibility tests: started on a
 * free loopback port, without persistence (`--save "" --appendonly no`), in a temp dir, and
 * stopped (SIGKILL, awaited) with its temp dir removed.
 *
 * ```ts
 * const skip = await redisSkipReason();
 * Deno.test({ name: skipName("my test", skip), ignore: skip !== undefined, fn: async () => {
 *   await withRedisServer(async (redis) => { ... redis.port ... });
 * } });
 * announceSkip("my test", skip);
 * ```
 *
 * When `redis-server` is not on PATH, {@link redisSkipReason} tries `apt-get install -y
 * redis-server` once per process (only as root and when apt-get exists); if it is still missing
 * it returns the reason, which the test shows in its name (`... (SKIPPED: ...)`) and in a
 * `SKIPPED:` line on stdout ({@link announceSkip}) that `./run_tests.sh` repeats in its summary.
 *
 * @module
 */
import { describeError, freePorts, RespTestClient, waitFor } from "./cluster.ts";
import { removeAtUnload, SupervisedProcess } from "../../src/supervisor/process.ts";

const LOOPBACK = "127.0.0.1";

/**
 * The redis-server program: `$LAMPORTKV_REDIS_SERVER` when set (no apt-get install is tried
 * then; setting it to a missing path shows the skip path), else `redis-server` on PATH.
 */
export const REDIS_SERVER: string = Deno.env.get("LAMPORTKV_REDIS_SERVER") || "redis-server";
const OVERRIDDEN = REDIS_SERVER !== "redis-server";

/**
 * Runs `program args` quietly (killed after `timeoutMs`); true when it exits 0 (false when it
 * cannot be run at all). Also used to probe and apt-get install other test programs.
 */
export async function succeeds(
  program: string,
  args: string[],
  timeoutMs = 30_000,
): Promise<boolean> {
  try {
    const child = new Deno.Command(program, {
      args,
      stdin: "null",
      stdout: "null",
      stderr: "null",
      env: { DEBIAN_FRONTEND: "noninteractive" },
    }).spawn();
    const timer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch {
        // already gone
      }
    }, timeoutMs);
    try {
      return (await child.status).success;
    } finally {
      clearTimeout(timer);
    }
  } catch {
    return false;
  }
}

/**
 * Undefined when `program versionArgs` runs; otherwise why tests that need it are skipped. A
 * missing program is installed with `apt-get install -y <pkg>` (after an `apt-get update` if the
 * first try fails) when running as root with apt-get available; `overridden` (the program named
 * by an environment variable) disables the install. Callers cache the result per process.
 */
export async function debianProgramSkipReason(
  program: string,
  versionArgs: string[],
  pkg: string,
  options: { overridden?: string; installTimeoutMs?: number } = {},
): Promise<string | undefined> {
  if (await succeeds(program, versionArgs)) return undefined;
  if (options.overridden !== undefined) return `${program} (${options.overridden}) cannot be run`;
  const root = Deno.uid() === 0;
  const timeout = options.installTimeoutMs ?? 300_000;
  if (root && await succeeds("apt-get", ["--version"])) {
    console.log(`${program} not found; trying apt-get install -y ${pkg} (once)...`);
    if (!await succeeds("apt-get", ["install", "-y", "-qq", pkg], timeout)) {
      await succeeds("apt-get", ["update", "-qq"], 300_000);
      await succeeds("apt-get", ["install", "-y", "-qq", pkg], timeout);
    }
    if (await succeeds(program, versionArgs)) return undefined;
  }
  return root ? `${pkg} not installable` : `${program} not installed (not root)`;
}

let skipReason: Promise<string | undefined> | undefined;

/**
 * Undefined when `redis-server` can be run; otherwise why tests that need it are skipped. On the
 * first call, a missing `redis-server` is installed with `apt-get install -y redis-server` when
 * running as root with apt-get available (at most once per process; the result is cached).
 */
export function redisSkipReason(): Promise<string | undefined> {
  skipReason ??= debianProgramSkipReason(REDIS_SERVER, ["--version"], "redis-server", {
    overridden: OVERRIDDEN ? "LAMPORTKV_REDIS_SERVER" : undefined,
  });
  return skipReason;
}

/** `name` with ` (SKIPPED: reason)` appended when `reason` is given. */
export function skipName(name: string, reason: string | undefined): string {
  return reason === undefined ? name : `${name} (SKIPPED: ${reason})`;
}

/**
 * Prints `SKIPPED: <name>: <reason>` when `reason` is given (call it at module level next to the
 * `Deno.test({ ignore })`). `./run_tests.sh` collects these lines into its final summary.
 */
export function announceSkip(name: string, reason: string | undefined): void {
  if (reason !== undefined) console.log(`SKIPPED: ${name}: ${reason}`);
}

/** A running redis-server. */
export interface RedisServer {
  /** Its port on 127.0.0.1. */
  readonly port: number;
  /** Its temp working dir (removed by {@link stop}). */
  readonly dir: string;
  /** Its stdout+stderr so far (the Redis log). */
  log(): string;
  /** SIGKILLs it, waits for it to exit, removes the temp dir. Idempotent; never throws. */
  stop(): Promise<void>;
}

/** Options of {@link startRedisServer}. */
export interface RedisServerOptions {
  /** Deadline for the server to answer PING (default 10 000 ms). */
  startTimeoutMs?: number;
  /** Extra `--option value` arguments. */
  extraArgs?: string[];
}

/**
 * Starts `redis-server` on a free loopback port (no persistence, temp dir) and waits until it
 * answers PING. A port taken by someone else between choosing and binding is retried with a new
 * port (3 attempts). Throws with the server's log when it does not come up.
 */
export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServer> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(options);
    } catch (err) {
      lastError = err;
      if (!/Address already in use/i.test(describeError(err))) throw err;
    }
  }
  throw lastError;
}

async function startOnce(options: RedisServerOptions): Promise<RedisServer> {
  const [port] = freePorts(1);
  const dir = await Deno.makeTempDir({ prefix: "lamportkv-redis-" });
  const forgetDir = removeAtUnload(dir);
  let output = "";
  let child: SupervisedProcess;
  try {
    child = SupervisedProcess.spawn({
      program: REDIS_SERVER,
      args: [
        "--port",
        String(port),
        "--bind",
        LOOPBACK,
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        dir,
        "--daemonize",
        "no",
        "--logfile",
        "",
        ...(options.extraArgs ?? []),
      ],
      cwd: dir,
      onLine: (line) => (output += `${line}\n`),
    });
  } catch (err) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    forgetDir();
    throw err;
  }
  let stopping: Promise<void> | undefined;
  const server: RedisServer = {
    port,
    dir,
    log: () => output,
    stop: () => {
      stopping ??= (async () => {
        await child.kill();
        await child.output;
        try {
          await Deno.remove(dir, { recursive: true });
        } catch {
          // already removed
        }
        forgetDir();
      })();
      return stopping;
    },
  };
  try {
    await waitFor(async () => {
      const c = await RespTestClient.connect(port);
      try {
        return (await c.call(["PING"], 1000)) === "PONG";
      } finally {
        await c.close();
      }
    }, {
      timeoutMs: options.startTimeoutMs ?? 10_000,
      message: `redis-server on port ${port} to answer PING`,
      giveUpIf: () => {
        const s = child.exited;
        return s === null ? undefined : `redis-server exited (code ${s.code}, signal ${s.signal})`;
      },
    });
  } catch (err) {
    await server.stop();
    throw new Error(`${describeError(err)}\n--- redis-server log ---\n${output}`);
  }
  return server;
}

/** Runs `body` with a fresh redis-server; always stops it (printing its log if `body` throws). */
export async function withRedisServer<T>(
  body: (server: RedisServer) => Promise<T>,
  options: RedisServerOptions = {},
): Promise<T> {
  const server = await startRedisServer(options);
  try {
    return await body(server);
  } catch (err) {
    console.error(`--- redis-server (port ${server.port}) log ---\n${server.log()}`);
    throw err;
  } finally {
    await server.stop();
  }
}
