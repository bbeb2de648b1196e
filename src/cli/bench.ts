/**
 * `deno task bench [options] <config>`: throughput and latency of a lamportkv cluster under plain
 * RESP `SET`/`GET` load, per number of clients, with the replicas' CPU and memory when the
 * benchmark starts them itself (`--spawn`). See {@link BENCH_USAGE} for every option.
 *
 * Exit status: 0 when every level ran (levels with errors included), 1 when the cluster cannot be
 * reached or started (or the JSON file cannot be written), 2 for bad usage or config, 130 when
 * interrupted by SIGINT/SIGTERM (the replicas it started are stopped and their data removed in
 * every case).
 *
 * @module
 */
import { type BenchOptions, BenchUsageError, mixOps, parseBenchArgs } from "../bench/args.ts";
import { BENCH_USAGE } from "../bench/args.ts";
import { ClusterError, probeCluster, SpawnedCluster, targetsOf } from "../bench/cluster.ts";
import { machineInfo } from "../bench/proc.ts";
import { type BenchReport, formatReport } from "../bench/report.ts";
import { runBench, type RunContext } from "../bench/runner.ts";
import { fetchSlotOwners, shardsOf } from "../bench/shards.ts";
import { opCode, OPS } from "../bench/ops.ts";
import { describeScrapes, MetricsScraper, type ScrapeFigures } from "../bench/scraper.ts";
import { type ClusterConfig, ConfigError, loadConfig } from "../config/config.ts";
import { formatPublishTable, type PublishRow, runPublishLevel } from "../bench/publish.ts";
import type { Target } from "../bench/load.ts";
import { formatCatchup, runCatchup } from "../bench/catchup.ts";

export { BENCH_USAGE };

/** Where {@link main} writes (the table to `out`, progress and errors to `err`). */
export interface BenchIo {
  /** stdout lines. */
  out: (text: string) => void;
  /** stderr lines. */
  err: (text: string) => void;
}

const consoleIo: BenchIo = {
  out: (text) => console.log(text),
  err: (text) => console.error(text),
};

/** Runs the bench entry point with `args`; returns the exit code. */
export async function main(args: string[], io: BenchIo = consoleIo): Promise<number> {
  let options: BenchOptions | "help";
  try {
    options = parseBenchArgs(args);
  } catch (err) {
    if (!(err instanceof BenchUsageError)) throw err;
    io.err(`error: ${err.message}\n\n${BENCH_USAGE}`);
    return 2;
  }
  if (options === "help") {
    io.out(BENCH_USAGE);
    return 0;
  }
  let config: ClusterConfig;
  try {
    config = await loadConfig(options.configPath);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    io.err(`error: ${err.message}`);
    return 2;
  }
  const sharded = config.groups !== undefined;
  const problem = sharded
    ? shardedProblem(options)
    : options.misroute
    ? `--misroute needs a sharded config (replica lines with group=<name>)`
    : null;
  if (problem !== null) {
    io.err(`error: ${options.configPath}: ${problem}`);
    return 2;
  }
  const metricsUrls = config.replicas.filter((r) => r.httpPort !== undefined)
    .map((r) => `http://${r.host.includes(":") ? `[${r.host}]` : r.host}:${r.httpPort}/metrics`);
  if (options.scrapeMs !== undefined && metricsUrls.length === 0) {
    io.err(`error: --scrape needs HTTP ports in ${options.configPath} (a fifth field per replica)`);
    return 2;
  }

  const abort = new AbortController();
  const onSignal = () => {
    if (!abort.signal.aborted) io.err("bench: interrupted, stopping...");
    abort.abort();
  };
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
  for (const s of signals) Deno.addSignalListener(s, onSignal);
  let spawned: SpawnedCluster | null = null;
  try {
    if (options.catchup) return await catchupMode(options, config, abort.signal, io);
    let view: string | null = null;
    if (options.spawn) {
      spawned = await SpawnedCluster.start(config, {
        fsync: options.fsync,
        cpuProfDir: options.cpuProfDir,
        failureTimeoutMs: options.failureTimeoutMs,
        log: (line) => io.err(`bench: ${line}`),
      });
      view = await spawned.waitNormal(30_000, abort.signal);
      io.err(`bench: every replica is normal in view ${view}`);
    } else {
      const infos = await probeCluster(config);
      const views = new Set([...infos.values()].map((i) => `${i.view} (${i.state})`));
      view = [...views].join(", ");
    }
    const cluster = spawned;
    let routing: RunContext["sharded"];
    if (sharded) {
      const shards = shardsOf(config);
      const problems: string[] = [];
      const owners = await fetchSlotOwners(shards, 3000, problems);
      if (owners.source === "config") {
        io.err(`bench: no CLUSTER SLOTS (${problems.join("; ")}); slot map from the config file`);
      }
      io.err(`bench: ${shards.length} groups, slot map from ${owners.source}`);
      routing = { shards, owners, misroute: options.misroute };
    }
    if (options.publish) return await publishMode(options, targetsOf(config), abort.signal, io);
    const scraper = options.scrapeMs === undefined
      ? undefined
      : new MetricsScraper(metricsUrls, options.scrapeMs);
    scraper?.start();
    let scrapes: ScrapeFigures | undefined;
    let report: BenchReport;
    try {
      report = await runBench(options, {
        configPath: config.path,
        targets: targetsOf(config),
        pids: cluster === null ? null : cluster.pids(),
        fsync: cluster === null ? null : options.fsync,
        view,
        machine: await machineInfo(),
        signal: abort.signal,
        progress: (line) => io.err(`bench: ${line}`),
        exitedReplicas: cluster === null ? undefined : () => cluster.exited(),
        ...(routing === undefined ? {} : { sharded: routing }),
      });
    } finally {
      scrapes = await scraper?.stop();
    }
    if (scrapes !== undefined) {
      report.scrape = scrapes;
      report.notes.push(describeScrapes(scrapes));
    }
    io.out(formatReport(report));
    if (options.jsonPath !== undefined) {
      try {
        await Deno.writeTextFile(options.jsonPath, JSON.stringify(report, null, 2) + "\n");
      } catch (err) {
        io.err(`error: cannot write ${options.jsonPath}: ${(err as Error).message}`);
        return 1;
      }
    }
    return report.interrupted ? 130 : 0;
  } catch (err) {
    if (err instanceof ClusterError) {
      io.err(`error: ${err.message}`);
      return abort.signal.aborted ? 130 : 1;
    }
    throw err;
  } finally {
    if (spawned !== null) {
      io.err("bench: stopping the replicas");
      await spawned.stop();
    }
    for (const s of signals) Deno.removeSignalListener(s, onSignal);
  }
}

/**
 * Why `options` cannot run against a sharded cluster (null: they can): publish and catch-up
 * modes are per replica set, and an operation with several keys would span slots.
 */
function shardedProblem(options: BenchOptions): string | null {
  if (options.publish || options.catchup) {
    return "--publish and --catchup take one replica set, not a sharded config (group= lines); " +
      "give them one group's replica lines";
  }
  const multiKey = options.mixes.flatMap(mixOps).filter((op) => OPS[opCode(op)].keySlots > 1);
  if (multiKey.length > 0) {
    return `a sharded cluster takes one-key operations (put, get, incr): ` +
      `${[...new Set(multiKey)].join(", ")} would send keys of several slots (CROSSSLOT)`;
  }
  return null;
}

/** `--publish`: one publish level per `--clients` value; the table, and JSON with `--json`. */
async function publishMode(
  options: BenchOptions,
  targets: Target[],
  signal: AbortSignal,
  io: BenchIo,
): Promise<number> {
  const rows: PublishRow[] = [];
  for (const clients of options.clients) {
    if (signal.aborted) break;
    io.err(`bench: publish, ${clients} publishers, ${targets.length} subscribers: running...`);
    const row = await runPublishLevel({
      targets,
      connections: clients,
      pipeline: options.pipeline,
      valueSize: options.valueSize,
      warmupMs: options.warmupSeconds * 1000,
      stop: options.stop,
      signal,
    });
    rows.push(row);
    io.err(`bench: ${row.published} published (${Math.round(row.publishPerSec)}/s)`);
  }
  io.out(
    `publish mode: one subscriber per replica (${targets.length}), ${options.valueSize}-byte ` +
      `payloads, pipeline ${options.pipeline}\n\n${formatPublishTable(rows)}`,
  );
  if (options.jsonPath !== undefined) {
    try {
      await Deno.writeTextFile(options.jsonPath, JSON.stringify({ publish: rows }, null, 2) + "\n");
    } catch (err) {
      io.err(`error: cannot write ${options.jsonPath}: ${(err as Error).message}`);
      return 1;
    }
  }
  return signal.aborted ? 130 : 0;
}

/** Longest wait for the joining replica of `--catchup` to be a voter. */
const CATCHUP_TIMEOUT_MS = 600_000;

/** `--catchup`: one catch-up measurement; the figures, and JSON with `--json`. */
async function catchupMode(
  options: BenchOptions,
  config: ClusterConfig,
  signal: AbortSignal,
  io: BenchIo,
): Promise<number> {
  const result = await runCatchup({
    config,
    keys: options.keys,
    valueSize: options.valueSize,
    fsync: options.fsync,
    connections: options.clients[0],
    pipeline: options.pipeline,
    joinTimeoutMs: CATCHUP_TIMEOUT_MS,
    cpuProfDir: options.cpuProfDir,
    failureTimeoutMs: options.failureTimeoutMs,
    signal,
    log: (line) => io.err(`bench: ${line}`),
  });
  io.out(formatCatchup(result));
  if (options.jsonPath !== undefined) {
    try {
      await Deno.writeTextFile(
        options.jsonPath,
        JSON.stringify({ catchup: result }, null, 2) + "\n",
      );
    } catch (err) {
      io.err(`error: cannot write ${options.jsonPath}: ${(err as Error).message}`);
      return 1;
    }
  }
  return signal.aborted ? 130 : 0;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
