/**
 * The write-ahead log under SIGKILL: a child process appends numbered records to a real log
 * (small segments, so it rolls over constantly, with snapshots that release old segments) and is
 * killed at a random moment, again and again on the same directory. Every reopen must find every
 * record the child had reported durable, in order and without gaps (the child checks the order,
 * the parent the count). One run per fsync mode, side by side.
 *
 * Environment: WAL_CRASH_SEED=<n> reruns one seed; a failure prints its seed.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { FsyncMode } from "../../src/storage/wal.ts";
import { Prng } from "../support/prng.ts";

const CHILD = new URL("../support/wal_crash_child.ts", import.meta.url).pathname;
const KILLS_PER_MODE = 12;
const fixedSeed = Deno.env.get("WAL_CRASH_SEED");

/** How long a child may take to open the log before the test gives up on it. */
const OPEN_DEADLINE_MS = 30_000;

/**
 * Runs one child on `dir` and SIGKILLs it `killAfterMs` after it opened the log; returns its
 * stdout lines and how it ended. The child is killed whatever happens.
 */
async function runUntilKilled(
  dir: string,
  mode: FsyncMode,
  seed: number,
  killAfterMs: number,
): Promise<{ lines: string[]; signal: Deno.Signal | null; stderr: string; opened: boolean }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-write", CHILD, dir, mode, String(seed)],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const kill = () => {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
  };
  const stderrText = new Response(child.stderr).text();
  const lines: string[] = [];
  let opened = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  // Nothing happens until the log is open: only then does the random countdown start.
  const deadline = setTimeout(kill, OPEN_DEADLINE_MS);
  try {
    let partial = "";
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      const parts = (partial + chunk).split("\n");
      partial = parts.pop()!;
      for (const line of parts) {
        lines.push(line);
        if (!opened && line.startsWith("open ")) {
          opened = true;
          clearTimeout(deadline);
          timer = setTimeout(kill, killAfterMs);
        }
      }
    }
    const status = await child.status;
    return { lines, signal: status.signal, stderr: await stderrText, opened };
  } finally {
    clearTimeout(deadline);
    clearTimeout(timer);
    kill();
  }
}

async function crashLoop(mode: FsyncMode, seed: number): Promise<{ synced: number }> {
  const random = new Prng(seed);
  const dir = await Deno.makeTempDir({ prefix: `lamportkv_walcrash_${mode}_` });
  let synced = 0;
  try {
    for (let kill = 0; kill < KILLS_PER_MODE; kill++) {
      const run = await runUntilKilled(dir, mode, seed + kill, random.int(20, 300));
      const context = `mode ${mode}, seed ${seed} (WAL_CRASH_SEED=${seed}), kill ${kill}`;
      for (const line of run.lines) {
        const [word, value] = line.split(" ");
        assert.notEqual(word, "ERROR", `${context}: ${line}`);
        if (word === "open") {
          assert.ok(
            Number(value) >= synced,
            `${context}: reopened with ${value} records, but ${synced} had been reported durable`,
          );
        }
        if (word === "synced") synced = Math.max(synced, Number(value));
      }
      assert.ok(run.opened, `${context}: the child never opened the log:\n${run.stderr}`);
      assert.equal(run.signal, "SIGKILL", `${context}: the child ended by itself:\n${run.stderr}`);
    }
    return { synced };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test({
  name: "wal under SIGKILL: every record reported durable is found again, in order",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const seed = fixedSeed !== undefined ? Number(fixedSeed) : Date.now() % 1_000_000;
    const modes: FsyncMode[] = ["batch", "always", "never"];
    // All three run to their end (and clean up) even when one fails.
    const results = await Promise.allSettled(
      modes.map((mode, i) => crashLoop(mode, seed + 1000 * i)),
    );
    for (const [i, result] of results.entries()) {
      if (result.status === "rejected") throw result.reason;
      assert.ok(result.value.synced > 0, `${modes[i]}: nothing was ever reported durable`);
    }
  },
});
