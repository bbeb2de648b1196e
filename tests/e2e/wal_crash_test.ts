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

async function crashLoop(
  mode: FsyncMode,
  seed: number,
): Promise<{ synced: number; opens: number }> {
  const random = new Prng(seed);
  const dir = await Deno.makeTempDir({ prefix: `lamportkv_walcrash_${mode}_` });
  let synced = 0;
  let opens = 0;
  try {
    for (let kill = 0; kill < KILLS_PER_MODE; kill++) {
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "--allow-read", "--allow-write", CHILD, dir, mode, String(seed + kill)],
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      // Kill it after a random delay; it never exits by itself (bounded only by this).
      const timer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch {
          // Already gone (it failed): the output says why.
        }
      }, random.int(150, 450));
      const out = await child.output();
      clearTimeout(timer);
      const stdout = new TextDecoder().decode(out.stdout);
      const stderr = new TextDecoder().decode(out.stderr);
      const context = `mode ${mode}, seed ${seed} (WAL_CRASH_SEED=${seed}), kill ${kill}`;
      for (const line of stdout.split("\n")) {
        const [word, value] = line.split(" ");
        assert.notEqual(word, "ERROR", `${context}: ${line}`);
        if (word === "open") {
          opens++;
          assert.ok(
            Number(value) >= synced,
            `${context}: reopened with ${value} records, but ${synced} had been reported durable`,
          );
        }
        if (word === "synced") synced = Math.max(synced, Number(value));
      }
      assert.equal(out.signal, "SIGKILL", `${context}: the child ended by itself:\n${stderr}`);
    }
    return { synced, opens };
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
    const results = await Promise.all(modes.map((mode, i) => crashLoop(mode, seed + 1000 * i)));
    for (const [i, { synced, opens }] of results.entries()) {
      assert.equal(opens, KILLS_PER_MODE, `${modes[i]}: not every child got as far as opening`);
      assert.ok(synced > 0, `${modes[i]}: nothing was ever reported durable`);
    }
  },
});
