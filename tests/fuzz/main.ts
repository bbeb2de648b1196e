/**
 * `deno task fuzz`: the in-process fuzzers, then the live run against a 3-replica cluster.
 *
 * ```text
 * deno task fuzz                          every target (its CI count, >= 100,000 for most),
 *                                         then 100,000 malformed frames per port, live
 * deno task fuzz --seconds 600            each target for 600 s, then a live run of 600 s
 * deno task fuzz --target resp-request    one target (comma-separated list allowed)
 * deno task fuzz --seed 1234              replay a run (the seed is printed at the start)
 * deno task fuzz --count 5000             inputs per target
 * deno task fuzz --start 41 --count 1     from input 41 of the seed's sequence
 * deno task fuzz --replay <file.bin> ...  replay saved inputs (tests/fuzz/corpus/<target>/)
 * deno task fuzz --live-frames 20000      malformed frames per port in the live run
 * deno task fuzz --no-live | --only-live  skip one of the two parts
 * deno task fuzz --list                   the targets and what they cover
 * ```
 *
 * Exit status 0 when nothing failed, 1 when an input failed (it is saved to the corpus), 2 on
 * bad usage.
 *
 * @module
 */
import { runLive } from "./live.ts";
import { corpusFiles, replay, runTarget, type TargetRun } from "./runner.ts";
import { TARGETS } from "./targets.ts";

const USAGE = `usage: deno task fuzz [--seconds N] [--target a,b] [--seed S] [--count N] [--start I]
                      [--replay file...] [--live-frames N] [--no-live | --only-live] [--list]`;

interface Args {
  seconds?: number;
  targets: string[];
  seed: number;
  count?: number;
  start: number;
  replay: string[];
  liveFrames?: number;
  live: boolean;
  inProcess: boolean;
  list: boolean;
}

function parseArgs(argv: string[]): Args {
  const a: Args = {
    targets: TARGETS.map((t) => t.name),
    seed: (Math.random() * 2 ** 32) >>> 0,
    start: 0,
    replay: [],
    live: true,
    inProcess: true,
    list: false,
  };
  const num = (v: string | undefined, name: string) => {
    if (v === undefined || !/^[0-9]+$/.test(v)) {
      throw new Error(`${name} needs a non-negative integer`);
    }
    return Number(v);
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    switch (arg) {
      case "--seconds":
        a.seconds = num(argv[++i], arg);
        break;
      case "--target": {
        const names = (argv[++i] ?? "").split(",").filter((s) => s !== "");
        for (const n of names) {
          if (!TARGETS.some((t) => t.name === n)) throw new Error(`unknown target ${n}`);
        }
        a.targets = names;
        a.live = false;
        break;
      }
      case "--seed":
        a.seed = num(argv[++i], arg) >>> 0;
        break;
      case "--count":
        a.count = num(argv[++i], arg);
        break;
      case "--start":
        a.start = num(argv[++i], arg);
        break;
      case "--replay":
        while (i + 1 < argv.length && !argv[i + 1].startsWith("--")) a.replay.push(argv[++i]);
        break;
      case "--live-frames":
        a.liveFrames = num(argv[++i], arg);
        break;
      case "--no-live":
        a.live = false;
        break;
      case "--only-live":
        a.inProcess = false;
        break;
      case "--list":
        a.list = true;
        break;
      case "--help":
      case "-h":
        console.log(USAGE);
        Deno.exit(0);
        break;
      default:
        throw new Error(`unknown argument ${arg}`);
    }
  }
  return a;
}

async function main(): Promise<number> {
  let args: Args;
  try {
    args = parseArgs(Deno.args);
  } catch (err) {
    console.error(`${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (args.list) {
    for (const t of TARGETS) {
      console.log(`${t.name.padEnd(15)} ${t.covers}`);
      console.log(
        `${"".padEnd(15)} CI: ${t.ciCount.toLocaleString("en-US")} inputs${
          t.ciNote ? ` (${t.ciNote})` : ""
        }`,
      );
    }
    return 0;
  }
  if (args.replay.length > 0) {
    let failed = 0;
    const files = args.replay.flatMap((f) => (f === "all" ? corpusFiles().map(([, p]) => p) : [f]));
    for (const file of files) {
      const reason = await replay(file);
      console.log(
        `${reason === null ? "pass" : "FAIL"} ${file}${reason === null ? "" : `: ${reason}`}`,
      );
      if (reason !== null) failed++;
    }
    return failed === 0 ? 0 : 1;
  }
  let failed = 0;
  if (args.inProcess) {
    console.log(`fuzz seed ${args.seed} (replay with --seed ${args.seed})`);
    const runs: TargetRun[] = [];
    for (const name of args.targets) {
      const target = TARGETS.find((t) => t.name === name)!;
      const count = args.count ?? (args.seconds === undefined ? target.ciCount : undefined);
      const run = await runTarget(name, {
        seed: args.seed,
        start: args.start,
        count: count === undefined ? undefined : args.start + count,
        seconds: args.seconds,
      });
      runs.push(run);
      console.log(
        `${name.padEnd(15)} ${run.inputs.toLocaleString("en-US").padStart(11)} inputs ` +
          `${(run.ms / 1000).toFixed(1).padStart(7)} s ` +
          `${Math.round(run.inputs / (run.ms / 1000)).toLocaleString("en-US").padStart(8)}/s ` +
          `${run.findings.length === 0 ? "ok" : `${run.findings.length} FAILED`}`,
      );
      failed += run.findings.length;
    }
  }
  if (args.live) {
    const result = await runLive({
      framesPerPort: args.liveFrames ?? 100_000,
      seconds: args.seconds,
      seed: args.seed,
      log: console.log,
    });
    if (!result.ok) failed++;
  }
  return failed === 0 ? 0 : 1;
}

if (import.meta.main) Deno.exit(await main());
