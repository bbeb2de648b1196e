/**
 * `deno task cluster <config> [options]`: runs every replica of a config file, each as
 * a child `deno run src/cli/node.ts <id> <config>` process, and prefixes each line of their output
 * with `[<id>] `. A child that exits is reported. SIGINT/SIGTERM sends SIGTERM to every child,
 * waits for them (SIGKILL after a deadline) and exits 0. Config errors are reported (exit 2)
 * before anything starts.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { type ClusterConfig, ConfigError, loadConfig } from "../config/config.ts";
import { parseCommandLine } from "./options.ts";

/** The `--help` text. */
export const CLUSTER_USAGE = `Usage: deno task cluster <config> [options]
       ./lamportkv cluster <config> [options]

Starts one replica process per line of the config file <config> and prefixes every line they
print with [<id>]. Ctrl-C (SIGINT) or SIGTERM stops them all. Each replica keeps its data in
data/<id> beside the config file.

Options (passed to every replica; see deno task node --help):
  --fsync <always|batch|never>   when log writes reach the disk (default batch)
  --failure-timeout <ms>         suspect a silent peer after this long (default 1000)
  --snapshot-every <n>           snapshot and truncate the log every n deliveries
  --log-format text|json         log lines as text (default) or JSON objects
  --log-level <level>            error, warn, info (default) or debug
  -v, --verbose                  log every delivered operation (--log-level debug)
  -h, --help                     show this help and exit`;

/** Permissions of the children: the same as the `node` task in deno.json. */
export const NODE_PERMISSIONS: readonly string[] = [
  "--allow-net",
  "--allow-read",
  "--allow-write",
  "--allow-env",
];

/** How long children get to stop after SIGTERM before they are killed. */
const STOP_DEADLINE_MS = 5000;

/** Path of the node entry point, next to this file. */
export const NODE_ENTRY: string = fileURLToPath(new URL("./node.ts", import.meta.url));

/** The `deno` arguments that start replica `id` of `configPath` with node `options`. */
export function nodeCommandArgs(id: number, configPath: string, options: string[]): string[] {
  return ["run", ...NODE_PERMISSIONS, NODE_ENTRY, String(id), configPath, ...options];
}

/** Node options the cluster passes through to every replica. */
const PASSED_OPTIONS = [
  "fsync",
  "failure-timeout",
  "snapshot-every",
  "log-format",
  "log-level",
] as const;

/**
 * Calls `onLine` for each line of `stream` (without its line end) until the stream ends or breaks;
 * a line longer than 64 KiB is cut to its last 64 KiB.
 */
export async function forEachLine(
  stream: ReadableStream<Uint8Array>,
  onLine: (line: string) => void,
): Promise<void> {
  let rest = "";
  try {
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
      rest += text;
      let nl: number;
      while ((nl = rest.indexOf("\n")) !== -1) {
        onLine(rest.slice(0, nl).replace(/\r$/, ""));
        rest = rest.slice(nl + 1);
      }
      if (rest.length > 64 * 1024) rest = rest.slice(-64 * 1024);
    }
  } catch {
    // the pipe broke: the child is gone
  }
  if (rest !== "") onLine(rest);
}

interface RunningChild {
  id: number;
  process: Deno.ChildProcess;
  status: Promise<Deno.CommandStatus>;
  output: Promise<void>;
  exited: boolean;
}

/** How a child process ended, for a log line: "exited with code 1", "was killed by SIGKILL". */
export function describeStatus(s: Deno.CommandStatus): string {
  return s.signal !== null ? `was killed by ${s.signal}` : `exited with code ${s.code}`;
}

/** Starts every replica and supervises them until a signal or until all have exited. */
export async function runCluster(config: ClusterConfig, nodeOptions: string[]): Promise<number> {
  const say = (line: string) => console.log(`[cluster] ${line}`);
  let stopping = false;
  const children: RunningChild[] = [];
  for (const { id } of config.replicas) {
    const process = new Deno.Command(Deno.execPath(), {
      args: nodeCommandArgs(id, config.path, nodeOptions),
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const child: RunningChild = {
      id,
      process,
      status: process.status,
      output: Promise.all([
        forEachLine(process.stdout, (line) => console.log(`[${id}] ${line}`)),
        forEachLine(process.stderr, (line) => console.error(`[${id}] ${line}`)),
      ]).then(() => {}),
      exited: false,
    };
    child.status.then((s) => {
      child.exited = true;
      if (!stopping) say(`replica ${id} ${describeStatus(s)}`);
    });
    children.push(child);
  }
  say(`started ${children.length} replicas from ${config.path}`);

  const stopSignal = new Promise<Deno.Signal>((resolve) => {
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
      try {
        Deno.addSignalListener(signal, () => resolve(signal));
      } catch {
        // SIGTERM cannot be listened for on Windows.
      }
    }
  });
  const allExited = Promise.all(children.map((c) => c.status));
  const first = await Promise.race([stopSignal, allExited.then(() => null)]);

  if (first === null) {
    await Promise.all(children.map((c) => c.output));
    say("every replica has exited");
    const statuses = await allExited;
    return statuses.every((s) => s.success) ? 0 : 1;
  }

  stopping = true;
  say(`${first}: stopping every replica`);
  for (const c of children) {
    if (c.exited) continue;
    try {
      c.process.kill("SIGTERM");
    } catch {
      // already gone
    }
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), STOP_DEADLINE_MS);
  });
  if (await Promise.race([allExited.then(() => "done" as const), deadline]) === "timeout") {
    for (const c of children) {
      if (c.exited) continue;
      say(`replica ${c.id} did not stop within ${STOP_DEADLINE_MS} ms, killing it`);
      try {
        c.process.kill("SIGKILL");
      } catch {
        // already gone
      }
    }
  }
  clearTimeout(timer);
  const statuses = await allExited;
  await Promise.all(children.map((c) => c.output));
  children.forEach((c, i) => {
    const s = statuses[i];
    if (!s.success && s.signal === null) say(`replica ${c.id} ${describeStatus(s)}`);
  });
  say("stopped");
  return 0;
}

/** Runs the cluster entry point with `args`; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseCommandLine(args, {
      verbose: { type: "boolean", short: "v" },
      help: { type: "boolean", short: "h" },
      fsync: { type: "string" },
      "failure-timeout": { type: "string" },
      "snapshot-every": { type: "string" },
      "log-format": { type: "string" },
      "log-level": { type: "string" },
    }, Error);
  } catch (err) {
    console.error(`error: ${(err as Error).message}\n\n${CLUSTER_USAGE}`);
    return 2;
  }
  if (parsed.values.help) {
    console.log(CLUSTER_USAGE);
    return 0;
  }
  if (parsed.positionals.length !== 1) {
    const problem = parsed.positionals.length === 0
      ? "expected a config file"
      : `unexpected argument "${parsed.positionals[1]}"`;
    console.error(`error: ${problem}\n\n${CLUSTER_USAGE}`);
    return 2;
  }
  let config: ClusterConfig;
  try {
    config = await loadConfig(parsed.positionals[0]);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`error: ${err.message}`);
      return 2;
    }
    throw err;
  }
  const nodeOptions = parsed.values.verbose ? ["--verbose"] : [];
  for (const name of PASSED_OPTIONS) {
    const value = parsed.values[name];
    if (value !== undefined) nodeOptions.push(`--${name}`, value);
  }
  return await runCluster(config, nodeOptions);
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
