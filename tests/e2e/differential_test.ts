/**
 * Differential test: the same seeded command sequence against a real `redis-server` and a
 * 3-replica lamportkv cluster, every reply compared (see `tests/support/differential.ts` for how
 * commands are batched over the replicas, and `tests/support/command_gen.ts` for the generator
 * and the documented differences the comparison tolerates).
 *
 * Enabling more of the Redis data model: add the family to {@link LAMPORTKV_FAMILIES} (and
 * remove it from {@link LAMPORTKV_TODO}). Environment knobs:
 *
 * - `DIFF_SEED=123` runs that one seed (default: the {@link DEFAULT_SEEDS});
 * - `DIFF_COUNT=500` commands per seed (default {@link DEFAULT_COUNT});
 * - `DIFF_FAMILIES=basic,strings` overrides the enabled families of the lamportkv test;
 * - `DIFF_ERRORS=code` compares error replies by their code only (`ERR`, `WRONGTYPE`, ...).
 *
 * ```sh
 * DIFF_SEED=123 DIFF_COUNT=500 deno test -A tests/e2e/differential_test.ts --filter differential
 * ```
 *
 * A second test runs the generator with every family against two redis-servers and requires
 * zero differences: it proves the generator and the normalizer are deterministic and sound.
 *
 * Skipped (with a visible `SKIPPED:` line) when redis-server cannot be run or installed.
 *
 * Sanitizers: off, because the server child processes and their output pipes outlive single
 * async ops by design (the harnesses await them all when stopping).
 *
 * @module
 */
import { ALL_FAMILIES, type Family } from "../support/command_gen.ts";
import { withCluster } from "../support/cluster.ts";
import {
  closeSide,
  connectSide,
  type DifferentialResult,
  resetKeys,
  runDifferential,
  type Side,
} from "../support/differential.ts";
import {
  announceSkip,
  redisSkipReason,
  skipName,
  startRedisServer,
  withRedisServer,
} from "../support/redis_server.ts";

/**
 * The families lamportkv supports on this branch, compared against Redis. Add a family here as
 * soon as the server implements it.
 */
export const LAMPORTKV_FAMILIES: readonly Family[] = [
  "basic",
  "strings",
  "keys",
  "expiry",
  "hashes",
  "lists",
  "sets",
  "streams",
  "tx",
];

/** The families not yet supported by lamportkv (printed by the test, so nothing is silent). */
export const LAMPORTKV_TODO: readonly Family[] = ALL_FAMILIES.filter(
  (f) => !LAMPORTKV_FAMILIES.includes(f),
);

/**
 * Whether lamportkv echoes binary arguments in error messages like Redis (which cuts them at the
 * first NUL and sends other bytes raw; lamportkv sends the whole argument as UTF-8 with U+FFFD
 * for invalid bytes). While false, unknown commands get printable arguments only, and the test
 * prints a TODO line saying so.
 */
export const LAMPORTKV_BINARY_IN_ERRORS = false;

/** Seeds run by default; together they make {@link DEFAULT_COUNT} x 4 = 10 000 commands. */
const DEFAULT_SEEDS = [1001, 2002, 3003, 4004];
/** Commands per seed by default. */
const DEFAULT_COUNT = 2500;
/** Commands per seed of the redis-vs-redis self-test (every family). */
const SELF_TEST_COUNT = 3000;

function envInt(name: string): number | undefined {
  const text = Deno.env.get(name);
  if (text === undefined || text === "") return undefined;
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new Error(`${name} must be an integer, got ${text}`);
  return n;
}

const SEEDS = envInt("DIFF_SEED") === undefined ? DEFAULT_SEEDS : [envInt("DIFF_SEED")!];
const COUNT = envInt("DIFF_COUNT");
const COMPARE = Deno.env.get("DIFF_ERRORS") === "code" ? { errors: "code" as const } : {};

function familiesFromEnv(): readonly Family[] | undefined {
  const text = Deno.env.get("DIFF_FAMILIES");
  if (text === undefined || text === "") return undefined;
  const names = text.split(",").map((s) => s.trim()).filter((s) => s !== "");
  for (const n of names) {
    if (!ALL_FAMILIES.includes(n as Family)) {
      throw new Error(`DIFF_FAMILIES: unknown family ${n} (known: ${ALL_FAMILIES.join(", ")})`);
    }
  }
  return names as Family[];
}

const TEST_FILE = "tests/e2e/differential_test.ts";
const SKIP = await redisSkipReason();

/** Runs every seed on fresh key spaces of `a` and `b`; prints one line per seed. */
async function runSeeds(
  label: string,
  a: Side,
  b: Side,
  families: readonly Family[],
  count: number,
  binaryInErrors = true,
): Promise<void> {
  let total = 0;
  const started = performance.now();
  for (const seed of SEEDS) {
    await Promise.all([resetKeys(a), resetKeys(b)]);
    const r: DifferentialResult = await runDifferential({
      seed,
      count,
      families,
      a,
      b,
      compare: COMPARE,
      binaryInErrors,
      testFile: TEST_FILE,
    });
    total += r.commands;
    console.log(
      `${label}: seed ${seed}: ${r.commands} commands in ${r.batches} batches, ` +
        `${(r.ms / 1000).toFixed(1)} s, no difference`,
    );
  }
  console.log(
    `${label}: ${total} commands, families ${families.join(",")}, ` +
      `${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
}

const MAIN_NAME = "e2e: differential: redis-server vs a 3-replica lamportkv cluster";
announceSkip(MAIN_NAME, SKIP);

Deno.test({
  name: skipName(MAIN_NAME, SKIP),
  ignore: SKIP !== undefined,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const families = familiesFromEnv() ?? LAMPORTKV_FAMILIES;
    const todo = ALL_FAMILIES.filter((f) => !families.includes(f));
    if (todo.length > 0) {
      console.log(`differential: TODO, not run against lamportkv: ${todo.join(", ")}`);
    }
    if (!LAMPORTKV_BINARY_IN_ERRORS) {
      console.log(
        "differential: TODO, not compared against lamportkv: binary bytes echoed in error " +
          "messages (unknown commands get printable arguments only)",
      );
    }
    await withRedisServer(async (redis) => {
      await withCluster({ replicas: 3 }, async (cluster) => {
        const ids = cluster.ids;
        const a = await connectSide("redis", ids.map(() => redis.port));
        try {
          const b = await connectSide("lamportkv", ids.map((id) => cluster.clientPort(id)));
          try {
            await runSeeds(
              "differential",
              a,
              b,
              families,
              COUNT ?? DEFAULT_COUNT,
              LAMPORTKV_BINARY_IN_ERRORS,
            );
          } finally {
            await closeSide(b);
          }
        } finally {
          await closeSide(a);
        }
        await cluster.waitForAgreement();
      });
    });
  },
});

const SELF_NAME = "e2e: differential self-test: redis-server vs redis-server, every family";
announceSkip(SELF_NAME, SKIP);

Deno.test({
  name: skipName(SELF_NAME, SKIP),
  ignore: SKIP !== undefined,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const one = await startRedisServer();
    try {
      await withRedisServer(async (two) => {
        const a = await connectSide("redis-1", [one.port, one.port, one.port]);
        try {
          const b = await connectSide("redis-2", [two.port, two.port, two.port]);
          try {
            await runSeeds("differential self-test", a, b, ALL_FAMILIES, COUNT ?? SELF_TEST_COUNT);
          } finally {
            await closeSide(b);
          }
        } finally {
          await closeSide(a);
        }
      });
    } finally {
      await one.stop();
    }
  },
});
