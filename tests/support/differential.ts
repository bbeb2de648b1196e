/**
 * The differential driver: sends one seeded command sequence ({@link CommandGenerator}) to two
 * servers and compares every reply ({@link compareReplies}); stops at the first difference with
 * everything needed to reproduce it.
 *
 * Each side is a list of connections (a lamportkv cluster: one per replica; a redis-server: as
 * many to the one server). Commands go out in batches: a batch is pipelined on connection
 * `batchNumber % connections` of both sides at once, and the next batch starts when both sides
 * answered the whole batch. So every command runs after every earlier command has completed on
 * its side, and a linearizable server must give the same replies as Redis. A transaction unit
 * (`MULTI ... EXEC`) is never split across batches; a scan unit runs alone (one call per
 * round trip, on the batch's connection).
 *
 * @module
 */
import type { ByteString } from "../../src/core/types.ts";
import {
  type Check,
  CommandGenerator,
  type CompareOptions,
  compareReplies,
  type Family,
  type GenCommand,
  KEYS,
  runScan,
  scanCheck,
} from "./command_gen.ts";
import { Prng } from "./prng.ts";
import { PipelineConnection, renderCommand, renderReply, type TaggedReply } from "./tagged_resp.ts";

/** One server under comparison. */
export interface Side {
  /** For messages, e.g. "redis" or "lamportkv". */
  name: string;
  /** Its connections (at least one; both sides need the same number). */
  conns: PipelineConnection[];
}

/** Connects `connections` times to each of `ports` in turn: one {@link Side}. */
export async function connectSide(name: string, ports: number[]): Promise<Side> {
  const conns: PipelineConnection[] = [];
  try {
    for (const port of ports) conns.push(await PipelineConnection.connect(port));
  } catch (err) {
    await Promise.all(conns.map((c) => c.close()));
    throw err;
  }
  return { name, conns };
}

/** Closes every connection of `side`. */
export async function closeSide(side: Side): Promise<void> {
  await Promise.all(side.conns.map((c) => c.close()));
}

/** Options of {@link runDifferential}. */
export interface DifferentialOptions {
  seed: number;
  /** Stop after at least this many commands. */
  count: number;
  families: readonly Family[];
  a: Side;
  b: Side;
  /** Most commands per pipelined batch (default 48). */
  maxBatch?: number;
  /** See `GeneratorOptions.binaryInErrors` (default true). */
  binaryInErrors?: boolean;
  /** How errors are compared (default exact). */
  compare?: CompareOptions;
  /** The test file, for the rerun hint of a failure. */
  testFile?: string;
}

/** Result of a clean run. */
export interface DifferentialResult {
  commands: number;
  batches: number;
  ms: number;
}

/** A difference between the two sides. */
export class DifferenceError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "DifferenceError";
  }
}

interface Sent {
  index: number;
  argv: ByteString[];
  check: Check;
}

/**
 * Deletes every key of the generator's key space on both sides with single-key DELs (which every
 * lamportkv version supports), so each seed starts from an empty key space.
 */
export async function resetKeys(side: Side): Promise<void> {
  const replies = await side.conns[0].pipeline(KEYS.map((k) => ["DEL", k]));
  const bad = replies.find((r) => r.type !== "int");
  if (bad !== undefined) throw new Error(`${side.name}: DEL failed: ${renderReply(bad)}`);
}

/**
 * Runs `count` commands of `seed` against both sides; throws a {@link DifferenceError} at the
 * first difference (with the seed, the command's index, the command, both replies and the
 * commands before it on the way there).
 */
export async function runDifferential(options: DifferentialOptions): Promise<DifferentialResult> {
  const { a, b, seed } = options;
  if (a.conns.length !== b.conns.length || a.conns.length === 0) {
    throw new Error("both sides need the same, non-zero number of connections");
  }
  const gen = new CommandGenerator({
    seed,
    families: options.families,
    binaryInErrors: options.binaryInErrors,
  });
  const batching = new Prng(seed ^ 0x5bd1e995);
  const maxBatch = options.maxBatch ?? 48;
  const history: string[] = [];
  const started = performance.now();
  let batches = 0;
  let index = 0;

  const fail = (sent: Sent, conn: number, ra: TaggedReply, rb: TaggedReply, why: string) => {
    const rerun = `DIFF_SEED=${seed} DIFF_COUNT=${sent.index + 1} ` +
      `DIFF_FAMILIES=${options.families.join(",")} ` +
      `deno test -A ${options.testFile ?? "tests/e2e/differential_test.ts"} ` +
      `--filter differential`;
    throw new DifferenceError(
      `replies differ: seed ${seed}, command #${sent.index} (connection ${conn}, ` +
        `check ${sent.check.kind})\n` +
        `  command:   ${renderCommand(sent.argv)}\n` +
        `  ${a.name.padEnd(9)}: ${renderReply(ra)}\n` +
        `  ${b.name.padEnd(9)}: ${renderReply(rb)}\n` +
        `  why:       ${why}\n` +
        `  families:  ${options.families.join(",")}\n` +
        `  rerun:     ${rerun}\n` +
        `  the last commands before it (#index @connection):\n${history.slice(-25).join("\n")}`,
    );
  };
  const remember = (s: Sent, conn: number, ra: TaggedReply) => {
    history.push(`    #${s.index} @${conn} ${renderCommand(s.argv)} -> ${renderReply(ra)}`);
    if (history.length > 200) history.splice(0, 100);
  };

  while (gen.commandCount < options.count) {
    const conn = batches % a.conns.length;
    batches++;
    const limit = batching.int(1, maxBatch);
    const batch: Sent[] = [];
    while (batch.length < limit && gen.commandCount < options.count) {
      const unit = gen.next();
      if (unit.kind === "scan") {
        await flush(batch, conn);
        batch.length = 0;
        const s: Sent = { index: index++, argv: unit.argv, check: scanCheck(unit) };
        const [ra, rb] = await Promise.all([
          runScan(unit, async (argv) => (await a.conns[conn].pipeline([argv]))[0]),
          runScan(unit, async (argv) => (await b.conns[conn].pipeline([argv]))[0]),
        ]);
        const why = compareReplies(s.check, ra, rb, options.compare);
        if (why !== undefined) fail(s, conn, ra, rb, why);
        remember(s, conn, ra);
        break;
      }
      for (const c of unit.commands as GenCommand[]) {
        batch.push({ index: index++, argv: c.argv, check: c.check });
      }
    }
    await flush(batch, conn);
  }
  return { commands: index, batches, ms: performance.now() - started };

  async function flush(batch: Sent[], conn: number): Promise<void> {
    if (batch.length === 0) return;
    const argvs = batch.map((s) => s.argv);
    const [ra, rb] = await Promise.all([
      a.conns[conn].pipeline(argvs).catch((err) => {
        throw new Error(`${a.name}: ${err instanceof Error ? err.message : err} (seed ${seed})`);
      }),
      b.conns[conn].pipeline(argvs).catch((err) => {
        throw new Error(`${b.name}: ${err instanceof Error ? err.message : err} (seed ${seed})`);
      }),
    ]);
    for (let i = 0; i < batch.length; i++) {
      const why = compareReplies(batch[i].check, ra[i], rb[i], options.compare);
      if (why !== undefined) fail(batch[i], conn, ra[i], rb[i], why);
      remember(batch[i], conn, ra[i]);
    }
  }
}
