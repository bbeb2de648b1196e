/**
 * The fuzzers in CI (see `tests/fuzz/`): every saved input of `tests/fuzz/corpus/` is replayed
 * (each once failed: a crash, a hang or a wrong error), then every in-process target runs its CI
 * count of fresh inputs (100,000 for most; the slower ones say why they run fewer) with the
 * per-input guard (1 s, 64 MiB of heap) and the watchdog. Two targets run at a time, in
 * workers. Set `LAMPORTKV_SEED` to replay a run; `deno task fuzz` runs the same, longer.
 *
 * @module
 */
import assert from "node:assert/strict";
import { corpusFiles, replay, runTarget, type TargetRun } from "../fuzz/runner.ts";
import { TARGETS } from "../fuzz/targets.ts";
import { workloadSeed } from "../support/history.ts";

Deno.test("fuzz: every input in tests/fuzz/corpus/ (once a failure) passes now", async () => {
  const files = corpusFiles();
  assert.ok(files.length > 0, "the corpus is empty");
  for (const [target, path] of files) {
    const reason = await replay(path);
    assert.equal(reason, null, `${target}: ${path} fails again: ${reason}`);
  }
});

Deno.test({
  name: "fuzz: every in-process target, its CI count of inputs, no failure",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const seed = workloadSeed();
    console.log(
      `fuzz seed ${seed} (replay with LAMPORTKV_SEED=${seed} or deno task fuzz --seed ${seed})`,
    );
    const queue = [...TARGETS];
    const runs: TargetRun[] = [];
    const t0 = performance.now();
    const lane = async () => {
      for (let t = queue.shift(); t !== undefined; t = queue.shift()) {
        const run = await runTarget(t.name, { seed, count: t.ciCount, log: console.log });
        console.log(
          `${t.name.padEnd(15)} ${run.inputs.toLocaleString("en-US").padStart(8)} inputs ` +
            `${(run.ms / 1000).toFixed(1).padStart(5)} s` +
            (t.ciCount < 100_000 ? `  (fewer than 100,000: ${t.ciNote})` : ""),
        );
        runs.push(run);
      }
    };
    await Promise.all([lane(), lane()]);
    console.log(`all targets: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    for (const run of runs) {
      const t = TARGETS.find((x) => x.name === run.target)!;
      assert.equal(run.inputs, t.ciCount, `${run.target} ran ${run.inputs} inputs`);
      assert.deepEqual(
        run.findings.map((f) => `${f.file}: ${f.reason.split("\n")[0]}`),
        [],
        `${run.target} found failing inputs (seed ${seed})`,
      );
    }
  },
});
