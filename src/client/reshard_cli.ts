/**
 * The command line of resharding (`reshard`, `rebalance` of the one-shot client): their help,
 * their arguments checked before anything is sent ({@link parseReshardArgs}), and their run over
 * one {@link LamportClient} per group ({@link runReshardCommand}) with progress lines.
 *
 * @module
 */
import { parseArgs } from "node:util";
import type { ByteString } from "../core/types.ts";
import type { ClusterConfig } from "../config/config.ts";
import type { LamportClient } from "./client.ts";
import type { ClientCommandSpec } from "./commands.ts";
import {
  DEFAULT_BATCH,
  formatRate,
  type GroupLink,
  MAX_BATCH,
  parseSlotRange,
  rangeText,
  rebalance,
  reshard,
  ReshardError,
  type ReshardProgress,
  type ReshardSummary,
  type ShardedCluster,
} from "./reshard.ts";

/** The resharding commands of the one-shot client. */
export const RESHARD_COMMANDS: readonly ClientCommandSpec[] = [
  {
    name: "reshard",
    arity: -1,
    maxArgs: 7,
    syntax: "--slots <start>-<end> --to <group> [--batch <n>]",
    summary: "Moves slots (and their keys) to a group, online (a sharded cluster).",
    details: [
      "The slots of the range that another group owns move to <group> with their keys, in",
      `batches of <n> keys (default ${DEFAULT_BATCH}), while clients go on. Stopped at any point`,
      "(Ctrl-C, a lost connection, a replica down), the same command run again resumes it.",
      "./lamportkv client config/sharded.txt reshard --slots 0-999 --to g2",
    ],
  },
  {
    name: "rebalance",
    arity: -1,
    maxArgs: 3,
    syntax: "[--batch <n>]",
    summary: "Evens out the groups' slot counts, moving the fewest slots (online).",
    details: [
      "Each group ends with 16384 / <groups> slots (a few one more). Run it again to resume",
      "after an interruption. ./lamportkv client config/sharded.txt rebalance",
    ],
  },
];

/** The names of the resharding commands. */
export const RESHARD_NAMES: ReadonlySet<string> = new Set(RESHARD_COMMANDS.map((c) => c.name));

/** A parsed `reshard` or `rebalance` command line. */
export type ReshardArgs =
  | { name: "reshard"; start: number; end: number; to: string; batch: number }
  | { name: "rebalance"; batch: number };

/** Bad arguments of a resharding command (the message says which). */
export class ReshardUsageError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "ReshardUsageError";
  }
}

/**
 * Parses `reshard --slots a-b --to g [--batch n]` or `rebalance [--batch n]` (`argv` with the
 * name; any case).
 *
 * @throws {ReshardUsageError} on unknown or missing options and bad values.
 */
export function parseReshardArgs(argv: readonly ByteString[]): ReshardArgs {
  const name = argv[0].toLowerCase();
  let values;
  try {
    values = parseArgs({
      args: argv.slice(1),
      options: {
        slots: { type: "string" },
        to: { type: "string" },
        batch: { type: "string" },
      },
      allowPositionals: false,
      strict: true,
    }).values;
  } catch (e) {
    throw new ReshardUsageError(`${name}: ${e instanceof Error ? e.message : String(e)}`);
  }
  let batch = DEFAULT_BATCH;
  if (values.batch !== undefined) {
    batch = /^\d{1,6}$/.test(values.batch) ? Number(values.batch) : NaN;
    if (!(batch >= 1 && batch <= MAX_BATCH)) {
      throw new ReshardUsageError(
        `${name}: --batch must be 1 to ${MAX_BATCH} keys, got '${values.batch}'`,
      );
    }
  }
  if (name === "rebalance") {
    const extra = values.slots !== undefined ? "--slots" : values.to !== undefined ? "--to" : null;
    if (extra !== null) throw new ReshardUsageError(`rebalance: ${extra} is for reshard`);
    return { name, batch };
  }
  if (values.slots === undefined || values.to === undefined) {
    throw new ReshardUsageError("reshard: --slots <start>-<end> and --to <group> are required");
  }
  let range;
  try {
    range = parseSlotRange(values.slots);
  } catch (e) {
    throw new ReshardUsageError(`reshard: ${(e as Error).message}`);
  }
  return { name: "reshard", ...range, to: values.to, batch };
}

/**
 * Why `args` cannot run against `config`: not a sharded config, or an unknown group; else null.
 */
export function reshardConfigError(config: ClusterConfig, args: ReshardArgs): string | null {
  const groups = config.groups;
  if (groups === undefined) {
    return `${config.path} is not a sharded config (no group= on its replica lines): ` +
      `there is nothing to ${args.name}`;
  }
  if (args.name === "reshard" && !groups.includes(args.to)) {
    return `unknown group '${args.to}' (the groups of ${config.path}: ${groups.join(", ")})`;
  }
  return null;
}

/**
 * The groups of a sharded `config` over one client per group: `connect(id)` makes a client
 * whose preferred replica is `id` (the group's first line); it fails over within that group.
 * {@link close} closes the clients made.
 */
export class ClientGroups implements ShardedCluster {
  readonly groups: readonly string[];
  readonly #clients = new Map<string, LamportClient>();
  readonly #config: ClusterConfig;
  readonly #connect: (preferredReplica: number) => LamportClient;

  constructor(config: ClusterConfig, connect: (preferredReplica: number) => LamportClient) {
    this.#config = config;
    this.groups = config.groups ?? [];
    this.#connect = connect;
  }

  /** The link to `group`: its client's `command`, error replies as values. */
  link(group: string): GroupLink {
    let client = this.#clients.get(group);
    if (client === undefined) {
      const first = this.#config.replicas.find((r) => r.group === group);
      if (first === undefined) throw new ReshardError(`unknown group '${group}'`);
      client = this.#connect(first.id);
      this.#clients.set(group, client);
    }
    const c = client;
    return { call: (argv) => c.command(argv) };
  }

  /** Closes every client made. */
  async close(): Promise<void> {
    await Promise.all([...this.#clients.values()].map((c) => c.close()));
  }
}

/** The line of one progress report (`move 1/2: g1 -> g2 slots 0-999: moved ...`). */
export function progressLine(p: ReshardProgress): string {
  const head = `move ${p.index}/${p.moves}: ${p.move.from} -> ${p.move.to} slots ${
    rangeText(p.move)
  }`;
  return `${head}${p.moveDone ? " done" : ""}: ${formatRate(p.keys, p.bytes, p.elapsedMs)}`;
}

/** The last line of a run. */
export function summaryLine(s: ReshardSummary): string {
  if (s.moves.length === 0) return `nothing to move (slot map epoch ${s.epoch})`;
  const slots = s.moves.reduce((n, m) => n + m.end - m.start + 1, 0);
  return `done: ${slots} slots in ${s.moves.length} moves, ${
    formatRate(s.keys, s.bytes, s.elapsedMs)
  }; slot map epoch ${s.epoch}`;
}

/**
 * Runs `args` over `cluster`, printing a progress line at most every `everyMs` (and at the end of
 * each move) and a summary line.
 *
 * @throws {ReshardError} on a refusal; whatever a client throws when a group cannot answer.
 */
export async function runReshardCommand(
  cluster: ShardedCluster,
  args: ReshardArgs,
  print: (line: string) => void,
  everyMs = 1000,
): Promise<ReshardSummary> {
  let last = -Infinity;
  const onProgress = (p: ReshardProgress) => {
    if (!p.moveDone && p.elapsedMs - last < everyMs) return;
    last = p.elapsedMs;
    print(progressLine(p));
  };
  const options = { batch: args.batch, onProgress };
  const summary = args.name === "reshard"
    ? await reshard(cluster, args, args.to, options)
    : await rebalance(cluster, options);
  print(summaryLine(summary));
  return summary;
}
