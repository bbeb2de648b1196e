/**
 * The command line of `deno task bench`: {@link parseBenchArgs} turns arguments into
 * {@link BenchOptions} (or throws {@link BenchUsageError}), with the helpers
 * {@link parseClientLevels} and {@link parseMixes} for the list-valued options.
 *
 * Every level is bounded: by `--seconds` (default 5) or `--ops`, and in both cases by
 * {@link HARD_CAP_SECONDS} of measuring.
 *
 * @module
 */
import { DEFAULT_RESP_LIMITS } from "../net/resp.ts";
import { MAX_FAILURE_TIMEOUT_MS, MIN_FAILURE_TIMEOUT_MS } from "../limits.ts";
import {
  fsyncOption,
  integerInRange,
  intOption as integerOption,
  parseCommandLine,
} from "../config/command_line.ts";
import type { FsyncMode } from "../storage/wal.ts";
import { findOp, OP_NAMES, type OpName, OPS } from "./ops.ts";

/** One line per operation of {@link OPS} for `--help`. */
const OPS_HELP = OPS.map((k) =>
  `                              ${[k.name, ...k.aliases].join(", ").padEnd(10)} ${k.help}`
).join("\n");

/** The `--help` text. */
export const BENCH_USAGE = `Usage: deno task bench [options] <config>
       ./lamportkv bench [options] <config>

Measures throughput and latency of a lamportkv cluster with plain RESP requests (SET, GET,
INCR, MSET, MULTI/EXEC; like redis-benchmark). Without --spawn it targets the replicas of
<config>, which must be running; with --spawn it starts one replica per line of <config> on the
config's addresses, each with a fresh temporary data directory, and stops them and removes the
directories at the end.

A sharded <config> (lines with group=<name>): every client has one connection to each group
(to its replicas round-robin) and sends each request to the group that owns its key's hash slot,
by the slot map of CLUSTER SLOTS (or, if no replica answers it, the one derived from <config>);
a -MOVED reply is followed (and the map corrected) and counted. The mixes must have one key per
operation (PUT, GET, INCR: MSET10's and MULTI3's keys would span slots). A table per group
follows the main one: its ops/s, its replicas' CPU and their CPU microseconds per operation.

Every level of --clients runs each --mix in turn: a warmup (not counted), then --seconds of
load (or --ops operations), then it waits for the replies still in flight. The table goes to
stdout, progress to stderr.

Options:
  --spawn                   start (and afterwards stop) the replicas of <config>
  --fsync <mode>            with --spawn: always, batch or never (default batch)
  --clients <n,n,...>       a level per value; each client is one TCP connection, spread
                            round-robin over the replicas (default 1,16,64,256)
  --seconds <s>             measured seconds per level and mix (default 5; max 300)
  --ops <n>                 measured operations per level and mix instead of --seconds
                            (still stopped after 300 s)
  --mix <mix,...>           request mixes, run in turn (default 1:0,0:1); a mix is PUT:GET
                            weights, e.g. 1:0 (PUT only), 1:1, 0:1 (GET only), or operations
                            by name, each with an optional weight, joined by +, e.g. incr,
                            mset10, multi3, incr=1+get=3. Operations (each counts as one):
${OPS_HELP}
  --value-size <bytes>      value size of PUT, MSET10 and MULTI3 (default 100)
  --keys <n>                key space (and as many INCR counters); every key is written
                            before the first mix that reads (GET, MULTI3) (default 10000)
  --pipeline <n>            operations in flight per connection; 1 = closed loop (default 1)
  --warmup <s>              unmeasured seconds before each level and mix (default 1)
  --publish                 publish mode instead of --mix: one subscriber per replica, each
                            client a publisher (PUBLISH of --value-size bytes, --pipeline in
                            flight); reports publish/s, PUBLISH reply latency and
                            publish-to-receive latency (p50, p99) over every subscriber
  --catchup                 catch-up mode instead of --mix: the replicas of <config> but the
                            last found a cluster (started by the benchmark, as with --spawn),
                            --keys keys of --value-size bytes are loaded (pipelined SETs,
                            --clients connections (first value), --pipeline in flight, default
                            16 and 32), then the last replica starts with --join and is added
                            (REPLICASET ADD); reports the time from the ADD until it is a voter
                            in the view, and with an HTTP port in its line the peer MB it
                            received (MB/s) and its CPU seconds meanwhile
  --misroute                sharded <config> only: send every request first to the group after
                            its owner, and follow its MOVED (measures what a redirection costs)
  --json <file>             also write every figure as JSON to <file>
  --failure-timeout <ms>    with --spawn or --catchup: the replicas' --failure-timeout
                            (${MIN_FAILURE_TIMEOUT_MS}..${MAX_FAILURE_TIMEOUT_MS}; default theirs, 1000)
  --cpu-prof <dir>          with --spawn or --catchup: every replica the benchmark starts writes
                            a V8 CPU profile when it stops, into <dir>/replica-<id>/ (deno run
                            --cpu-prof; open it in Chrome DevTools; a replica killed with
                            SIGKILL writes none)
  --scrape <ms>             fetch every replica's GET /metrics every <ms> ms (10..60000) during
                            the run, to measure what metrics cost; needs HTTP ports in <config>
  -h, --help                show this help and exit

An operation of several commands (MULTI3) is sent at once and counts once: its latency runs
from sending MULTI to the reply of EXEC, and it fails when any of its replies is an error.

Columns: ops/s; p50, p99 and p99.9 latency in ms; errors (error replies such as -NOQUORUM or
-UNKNOWN, lost connections, requests without a reply); with --spawn, each replica's CPU time as
% of one core and the largest peak RSS (VmHWM) of the replicas; the benchmark's own CPU as % of
one core. Exit status: 0 when every level ran (even with errors), 1 when the cluster cannot be
reached or started, 2 for bad usage or config, 130 when interrupted.`;

/** Longest measured time of one level and mix, whatever `--seconds` / `--ops` say. */
export const HARD_CAP_SECONDS = 300;
/** Most connections in one level. */
export const MAX_CLIENTS = 4096;
/** Most levels in `--clients`. */
export const MAX_LEVELS = 64;
/** Largest `--ops`. */
export const MAX_OPS = 1_000_000_000;
/** Largest `--keys`. */
export const MAX_KEYS = 10_000_000;
/** Largest `--pipeline`. */
export const MAX_PIPELINE = 1024;
/** Longest `--warmup`, seconds. */
export const MAX_WARMUP_SECONDS = 60;
/** Bounds of `--scrape`, ms. */
export const MIN_SCRAPE_MS = 10;
export const MAX_SCRAPE_MS = 60_000;
/** Largest weight in a `--mix` (and most mixes). */
export const MAX_MIX_WEIGHT = 1000;

/** fsync modes of a replica (`--fsync`). */
export type FsyncChoice = FsyncMode;

/**
 * A request mix: relative weights of operations (rows of {@link OPS}; not all 0). A missing
 * operation has weight 0. `put:get` on the command line gives exactly `{put, get}`, e.g.
 * `{put: 1, get: 0}`; names give their operations only, e.g. `incr` gives `{incr: 1}`.
 */
export type Mix = { [op in OpName]?: number };

/** The weight of operation `op` in `mix` (0 when absent). */
export function mixWeight(mix: Mix, op: OpName): number {
  return mix[op] ?? 0;
}

/** The operations of `mix` with a non-zero weight, in table order. */
export function mixOps(mix: Mix): OpName[] {
  return OP_NAMES.filter((op) => mixWeight(mix, op) > 0);
}

/** When a level stops sending: after a number of requests or after a time. */
export type StopRule = { kind: "ops"; ops: number } | { kind: "seconds"; seconds: number };

/** The parsed command line. */
export interface BenchOptions {
  /** The cluster config file. */
  configPath: string;
  /** Start the replicas (and stop them afterwards). */
  spawn: boolean;
  /** fsync mode of spawned replicas. */
  fsync: FsyncChoice;
  /** Connections per level, in order. */
  clients: number[];
  /** When each level and mix stops. */
  stop: StopRule;
  /** Mixes run at every level, in order. */
  mixes: Mix[];
  /** PUT value size in bytes. */
  valueSize: number;
  /** Size of the key space. */
  keys: number;
  /** Requests in flight per connection. */
  pipeline: number;
  /** Unmeasured seconds before each level and mix. */
  warmupSeconds: number;
  /** Where to write the JSON report, if anywhere. */
  jsonPath?: string;
  /** Scrape every replica's `/metrics` this often (ms) during the run; absent: no scraping. */
  scrapeMs?: number;
  /** Publish mode (`--publish`): pub/sub throughput and latency instead of the mixes. */
  publish: boolean;
  /** Catch-up mode (`--catchup`): the time a joining replica takes to become a voter. */
  catchup: boolean;
  /** Sharded cluster: send every request to a wrong group first (`--misroute`). */
  misroute: boolean;
  /** With spawned replicas: write their CPU profiles under this directory (`--cpu-prof`). */
  cpuProfDir?: string;
  /** With spawned replicas: their `--failure-timeout` in ms (absent: the node's default). */
  failureTimeoutMs?: number;
}

/** A command line that cannot be run (exit status 2). */
export class BenchUsageError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "BenchUsageError";
  }
}

const DECIMAL = /^[0-9]+(\.[0-9]+)?$/;

/** A strict decimal integer option in `[min, max]`. */
function intOption(name: string, text: string, min: number, max: number): number {
  return integerOption(name, text, min, max, BenchUsageError);
}

/** A non-negative decimal number of seconds in `[min, max]` (min exclusive when `positive`). */
function secondsOption(name: string, text: string, positive: boolean, max: number): number {
  const n = DECIMAL.test(text) ? Number(text) : NaN;
  if (!Number.isFinite(n) || n > max || (positive ? n <= 0 : n < 0)) {
    const range = positive ? `more than 0 and at most ${max}` : `0..${max}`;
    throw new BenchUsageError(`--${name} must be a number of seconds, ${range}, got "${text}"`);
  }
  return n;
}

/**
 * Parses `--clients`: comma-separated connection counts, each 1..{@link MAX_CLIENTS}.
 *
 * @throws {BenchUsageError} on an empty list, a bad number or too many levels.
 */
export function parseClientLevels(text: string): number[] {
  const parts = text.split(",").map((p) => p.trim());
  if (parts.length > MAX_LEVELS) {
    throw new BenchUsageError(`--clients takes at most ${MAX_LEVELS} levels`);
  }
  return parts.map((p) => {
    const n = integerInRange(p, 1, MAX_CLIENTS);
    if (n === null) {
      throw new BenchUsageError(
        `--clients takes comma-separated integers in 1..${MAX_CLIENTS}, got "${p}" in "${text}"`,
      );
    }
    return n;
  });
}

/** Describes the valid forms of a mix, for errors. */
function mixForms(): string {
  return `put:get weights (integers 0..${MAX_MIX_WEIGHT}) such as 1:0, 1:1 or 0:1, or ` +
    `operations ${OP_NAMES.join(", ")} joined by +, each with an optional =weight`;
}

/** Parses one mix: `put:get` or `name[=weight]+...`. */
function parseMix(p: string): Mix {
  const m = /^([0-9]+):([0-9]+)$/.exec(p);
  if (m) {
    const put = Number(m[1]);
    const get = Number(m[2]);
    if (!(put <= MAX_MIX_WEIGHT) || !(get <= MAX_MIX_WEIGHT)) {
      throw new BenchUsageError(`--mix takes ${mixForms()}, got "${p}"`);
    }
    if (put === 0 && get === 0) throw new BenchUsageError(`--mix "${p}": weights are both 0`);
    return { put, get };
  }
  const mix: Mix = {};
  for (const term of p.split("+")) {
    const t = /^([A-Za-z][A-Za-z0-9]*)(?:=([0-9]+))?$/.exec(term.trim());
    const kind = t ? findOp(t[1]) : undefined;
    const weight = t?.[2] === undefined ? 1 : Number(t[2]);
    if (!t || !(weight <= MAX_MIX_WEIGHT)) {
      throw new BenchUsageError(`--mix takes ${mixForms()}, got "${p}"`);
    }
    if (kind === undefined) {
      throw new BenchUsageError(
        `--mix "${p}": unknown operation "${t[1]}" (known: ${OP_NAMES.join(", ")})`,
      );
    }
    if (mix[kind.name] !== undefined) {
      throw new BenchUsageError(`--mix "${p}": ${kind.name} given twice`);
    }
    mix[kind.name] = weight;
  }
  if (mixOps(mix).length === 0) throw new BenchUsageError(`--mix "${p}": weights are all 0`);
  return mix;
}

/**
 * Parses `--mix`: comma-separated mixes, each `put:get` weights (e.g. `1:0,1:1,0:1`; each weight
 * an integer 0..{@link MAX_MIX_WEIGHT}, not both 0) or operations of {@link OPS} by name joined
 * by `+`, each with an optional `=weight` (default 1), e.g. `incr`, `mset10`, `incr=1+get=3`.
 *
 * @throws {BenchUsageError} on a malformed mix.
 */
export function parseMixes(text: string): Mix[] {
  const parts = text.split(",").map((p) => p.trim());
  if (parts.length > MAX_LEVELS) throw new BenchUsageError(`--mix takes at most ${MAX_LEVELS}`);
  return parts.map(parseMix);
}

/**
 * Parses the bench command line; `"help"` when help was asked for.
 *
 * @throws {BenchUsageError} on unknown options, a missing or extra config argument, values out
 *   of range, `--ops` together with `--seconds`, or `--fsync` without `--spawn`.
 */
export function parseBenchArgs(args: string[]): BenchOptions | "help" {
  const parsed = parseCommandLine(args, {
    help: { type: "boolean", short: "h" },
    spawn: { type: "boolean" },
    fsync: { type: "string" },
    clients: { type: "string" },
    seconds: { type: "string" },
    ops: { type: "string" },
    mix: { type: "string" },
    "value-size": { type: "string" },
    keys: { type: "string" },
    pipeline: { type: "string" },
    warmup: { type: "string" },
    json: { type: "string" },
    scrape: { type: "string" },
    publish: { type: "boolean" },
    catchup: { type: "boolean" },
    misroute: { type: "boolean" },
    "cpu-prof": { type: "string" },
    "failure-timeout": { type: "string" },
  }, BenchUsageError);
  const v = parsed.values;
  if (v.help) return "help";
  const [configPath, ...extra] = parsed.positionals;
  if (configPath === undefined) throw new BenchUsageError("expected a config file");
  if (extra.length > 0) throw new BenchUsageError(`unexpected argument "${extra[0]}"`);

  let fsync: FsyncChoice = "batch";
  if (v.fsync !== undefined) {
    if (!v.spawn && !v.catchup) {
      throw new BenchUsageError("--fsync needs --spawn (a running cluster keeps its own mode)");
    }
    fsync = fsyncOption(v.fsync, BenchUsageError);
  }
  if (v.ops !== undefined && v.seconds !== undefined) {
    throw new BenchUsageError("give --ops or --seconds, not both");
  }
  const stop: StopRule = v.ops !== undefined
    ? { kind: "ops", ops: intOption("ops", v.ops, 1, MAX_OPS) }
    : {
      kind: "seconds",
      seconds: v.seconds === undefined
        ? 5
        : secondsOption("seconds", v.seconds, true, HARD_CAP_SECONDS),
    };
  if (v.json === "") throw new BenchUsageError("--json needs a file name");
  if (v.publish && v.mix !== undefined) {
    throw new BenchUsageError("give --publish or --mix, not both");
  }
  if (v.catchup && (v.publish || v.mix !== undefined || v.scrape !== undefined)) {
    throw new BenchUsageError("--catchup takes no --publish, --mix or --scrape");
  }
  if (v.misroute && (v.catchup || v.publish)) {
    throw new BenchUsageError("--misroute takes no --catchup or --publish");
  }
  if (v["cpu-prof"] !== undefined && !v.spawn && !v.catchup) {
    throw new BenchUsageError("--cpu-prof needs --spawn or --catchup (replicas the bench starts)");
  }
  if (v["cpu-prof"] === "") throw new BenchUsageError("--cpu-prof needs a directory");
  if (v["failure-timeout"] !== undefined && !v.spawn && !v.catchup) {
    throw new BenchUsageError("--failure-timeout needs --spawn or --catchup");
  }
  if (v.catchup && v.spawn) {
    throw new BenchUsageError("--catchup starts its own replicas: drop --spawn");
  }

  return {
    configPath,
    spawn: v.spawn ?? false,
    fsync,
    clients: parseClientLevels(v.clients ?? (v.catchup ? "16" : "1,16,64,256")),
    stop,
    mixes: parseMixes(v.mix ?? "1:0,0:1"),
    valueSize: v["value-size"] === undefined
      ? 100
      : intOption("value-size", v["value-size"], 0, DEFAULT_RESP_LIMITS.maxBulkBytes),
    keys: v.keys === undefined ? 10_000 : intOption("keys", v.keys, 1, MAX_KEYS),
    pipeline: v.pipeline === undefined
      ? (v.catchup ? 32 : 1)
      : intOption("pipeline", v.pipeline, 1, MAX_PIPELINE),
    warmupSeconds: v.warmup === undefined
      ? 1
      : secondsOption("warmup", v.warmup, false, MAX_WARMUP_SECONDS),
    jsonPath: v.json,
    ...(v.scrape === undefined
      ? {}
      : { scrapeMs: intOption("scrape", v.scrape, MIN_SCRAPE_MS, MAX_SCRAPE_MS) }),
    publish: v.publish ?? false,
    catchup: v.catchup ?? false,
    misroute: v.misroute ?? false,
    ...(v["cpu-prof"] === undefined ? {} : { cpuProfDir: v["cpu-prof"] }),
    ...(v["failure-timeout"] === undefined ? {} : {
      failureTimeoutMs: intOption(
        "failure-timeout",
        v["failure-timeout"],
        MIN_FAILURE_TIMEOUT_MS,
        MAX_FAILURE_TIMEOUT_MS,
      ),
    }),
  };
}
