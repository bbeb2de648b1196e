/**
 * `deno task cluster <config> [options]`: runs every replica of a config file, each as
 * a child `deno run src/cli/node.ts <id> <config>` process, and prefixes each line of their output
 * with `[<id>] `. A child that exits is reported. SIGINT/SIGTERM sends SIGTERM to every child,
 * waits for them (SIGKILL after a deadline) and exits 0. Config errors are reported (exit 2)
 * before anything starts.
 *
 * @module
 */
import { type ClusterConfig, ConfigError, loadConfig } from "../config/config.ts";
import { describeStatus, nodeCommandArgs, Supervisor } from "../supervisor/supervisor.ts";
import { parseCommandLine } from "../config/command_line.ts";

/** The `--help` text. */
export const CLUSTER_USAGE = `Usage: deno task cluster <config> [options]
       ./lamportkv cluster <config> [options]

Starts one replica process per line of the config file <config> and prefixes every line they
print with [<id>]. Ctrl-C (SIGINT) or SIGTERM stops them all. Each replica keeps its data in
data/<id> beside the config file. A file with groups (group=<name>, a sharded cluster) starts
the replicas of every group; each group is a replica set of its own.

Options (passed to every replica; see deno task node --help):
  --fsync <always|batch|never>   when log writes reach the disk (default batch)
  --failure-timeout <ms>         suspect a silent peer after this long (default 1000)
  --snapshot-every <n>           snapshot and truncate the log every n deliveries
  --snapshot-log-percent <p>     from 100,000 keys on, snapshots also p% of the keys apart
  --log-format text|json         log lines as text (default) or JSON objects
  --log-level <level>            error, warn, info (default) or debug
  -v, --verbose                  log every delivered operation (--log-level debug)
  -h, --help                     show this help and exit`;

/** How long children get to stop after SIGTERM before they are killed. */
const STOP_DEADLINE_MS = 5000;

/** Node options the cluster passes through to every replica. */
const PASSED_OPTIONS = [
  "fsync",
  "failure-timeout",
  "snapshot-every",
  "snapshot-log-percent",
  "log-format",
  "log-level",
] as const;

/** Starts every replica and supervises them until a signal or until all have exited. */
export async function runCluster(config: ClusterConfig, nodeOptions: string[]): Promise<number> {
  const say = (line: string) => console.log(`[cluster] ${line}`);
  let stopping = false;
  const supervisor = new Supervisor({
    onLine: (id, line, stream) => {
      if (stream === "out") console.log(`[${id}] ${line}`);
      else console.error(`[${id}] ${line}`);
    },
    onExit: (id, s) => {
      if (!stopping) say(`replica ${id} ${describeStatus(s)}`);
    },
  });
  const children = config.replicas.map(({ id }) =>
    supervisor.spawn(id, nodeCommandArgs(id, config.path, nodeOptions))
  );
  const groups = (config.groups ?? []).map((g) =>
    `${g}: ${config.replicas.filter((r) => r.group === g).map((r) => r.id).join(",")}`
  );
  say(
    `started ${children.length} replicas from ${config.path}` +
      (groups.length === 0 ? "" : ` in ${groups.length} groups (${groups.join("; ")})`),
  );

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
  await supervisor.stopAll({
    signal: "SIGTERM",
    deadlineMs: STOP_DEADLINE_MS,
    onLate: (id) => say(`replica ${id} did not stop within ${STOP_DEADLINE_MS} ms, killing it`),
  });
  const statuses = await allExited;
  config.replicas.forEach(({ id }, i) => {
    const s = statuses[i];
    if (!s.success && s.signal === null) say(`replica ${id} ${describeStatus(s)}`);
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
      "snapshot-log-percent": { type: "string" },
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
