/**
 * Power losses under the real write-ahead log: `WriteAheadLog` runs on an in-memory file system
 * (`tests/support/power_loss_fs.ts`) whose fdatasyncs complete only when the test says so. Each
 * seed appends records of random sizes (4 KiB segments, so they roll over, and some records fill
 * a segment alone), calls `sync()` and completes in-flight syncs in a random interleaving, then
 * cuts the power: every file keeps what was durable plus a random subset of its later writes, in
 * 512-byte sectors, in a random order, the last one possibly torn. The log is then recovered with
 * the real `WriteAheadLog.open`, and for up to three power losses in a row:
 *
 * - recovery succeeds (a torn or reordered tail after the synced point is never refused);
 * - every record the log reported synced before the power loss is recovered, in order, and what
 *   is recovered is a prefix of what was appended (nothing damaged is accepted);
 * - the sync mark read back is at least where the log started and at most the synced point;
 * - one byte flipped in a record before the sync mark (data that may have been acknowledged)
 *   makes recovery refuse with a `CorruptionError`.
 *
 * Environment: `WAL_POWER_LOSS_SEED=<n>` reruns one seed (a failure prints its seed);
 * `WAL_POWER_LOSS_SEEDS=<n>` sets how many seeds run (default 500).
 *
 * @module
 */

import assert from "node:assert/strict";
import { CorruptionError, scanRecordPrefix } from "../../src/storage/record_codec.ts";
import { type FsyncMode, type WalPosition, WriteAheadLog } from "../../src/storage/wal.ts";
import { decodeMark, SYNC_MARK_FILE } from "../../src/storage/wal_mark.ts";
import { planRecovery } from "../../src/storage/wal_recovery.ts";
import { listSegments, segmentPath } from "../../src/storage/wal_segments.ts";
import { PowerLossFs } from "../support/power_loss_fs.ts";
import { Prng } from "../support/prng.ts";
import { seedsFromEnv } from "../support/seeds.ts";

const DIR = "/wal";
const SEGMENT_BYTES = 4096;
const { seeds, one: oneSeed } = seedsFromEnv("WAL_POWER_LOSS", 500);

/** What the seeds exercised, so that the test can tell it covered the interesting cases. */
interface Tally {
  powerLosses: number;
  syncedRecords: number;
  tornTails: number;
  /** Torn tails with a valid record after the damage in the same segment: reordered writes. */
  reordered: number;
  damageRefused: number;
  /** Power losses where no record lay before the mark, so no damage could be injected there. */
  nothingBeforeMark: number;
  /** Power losses where the mark read back was behind the synced point (stale: safe, checks less). */
  markBehind: number;
}

/** Lets every pending continuation run (all I/O is in memory, so this is deterministic). */
function settle(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

function before(a: WalPosition, b: WalPosition): boolean {
  return a.segment < b.segment || (a.segment === b.segment && a.offset < b.offset);
}

function show(p: WalPosition): string {
  return `(${p.segment}, ${p.offset})`;
}

function open(io: PowerLossFs, fsync: FsyncMode) {
  return WriteAheadLog.open(DIR, { fsync, segmentBytes: SEGMENT_BYTES, io, markSyncIntervalMs: 0 });
}

async function runSeed(seed: number, tally: Tally): Promise<void> {
  const rng = new Prng(seed);
  const mode: FsyncMode = rng.pick(["batch", "always"] as const);
  let fs = new PowerLossFs();
  let log: unknown[] = [];
  const losses = rng.int(1, 3);
  for (let loss = 0; loss < losses; loss++) {
    const context: string = `seed ${seed} (WAL_POWER_LOSS_SEED=${seed}), ${mode}, power loss ${
      loss + 1
    }`;
    const opened = await open(fs, mode);
    assert.deepEqual([...opened.records], log, `${context}: reopening the recovered log`);
    assert.equal(opened.tornTail, null, `${context}: a recovered log has no torn tail`);
    const wal = opened.wal;
    const start = wal.position;
    fs.manual = true;
    const appended: unknown[] = [];
    const ends: WalPosition[] = [];
    const steps = rng.int(1, 80);
    for (let step = 0; step < steps; step++) {
      const choice = rng.next();
      if (choice < 0.5) {
        const size = rng.chance(0.04) ? rng.int(4000, 9000) : rng.int(0, 700);
        const record = { loss, i: appended.length, pad: "x".repeat(size) };
        wal.append(record);
        appended.push(record);
        ends.push(wal.position);
      } else if (choice < 0.7) {
        wal.sync().catch(() => {});
      } else if (choice < 0.92) {
        if (fs.pendingSyncs > 0) fs.completeSync(rng.int(0, fs.pendingSyncs - 1));
      } else {
        await settle();
      }
    }
    await settle();
    const synced = wal.synced;
    const syncedEnd = synced > 0 ? ends[synced - 1] : start;

    // The power goes: the log object is abandoned with whatever was in flight.
    const crashed = fs.powerLoss(rng);
    const image = crashed.clone();
    tally.powerLosses++;
    tally.syncedRecords += synced;
    const markBytes = image.content(`${DIR}/${SYNC_MARK_FILE}`);
    const mark = decodeMark(markBytes);
    assert.ok(mark !== null, `${context}: no valid sync mark`);
    assert.ok(
      !before(mark, start),
      `${context}: mark ${show(mark)} before the start ${show(start)}`,
    );
    assert.ok(
      !before(syncedEnd, mark),
      `${context}: mark ${show(mark)} after the synced point ${show(syncedEnd)}`,
    );

    if (before(mark, syncedEnd)) tally.markBehind++;
    let recovered;
    try {
      recovered = await open(crashed, mode);
    } catch (e) {
      throw new Error(`${context}: recovery failed after a power loss: ${e}`, { cause: e });
    }
    const expected = [...log, ...appended];
    const records = [...recovered.records];
    assert.ok(
      records.length >= log.length + synced,
      `${context}: ${records.length} records recovered, ${log.length + synced} were synced`,
    );
    assert.deepEqual(records, expected.slice(0, records.length), `${context}: recovered records`);
    if (recovered.tornTail !== null) {
      tally.tornTails++;
      const scan = scanRecordPrefix(image.content(recovered.tornTail.file), { zeroPadding: true });
      if ((scan.damage?.nextValid ?? -1) >= 0) tally.reordered++;
    }
    await recovered.wal.close();

    await checkDamageRefused(image, mark, rng, context, tally, mode);
    fs = crashed;
    log = records;
  }
}

/** Flips one byte of a record before `mark` in `image`: recovery must refuse it. */
async function checkDamageRefused(
  image: PowerLossFs,
  mark: WalPosition,
  rng: Prng,
  context: string,
  tally: Tally,
  mode: FsyncMode,
): Promise<void> {
  const segments = listSegments(DIR, image).map((n) => ({
    number: n,
    path: segmentPath(DIR, n),
    bytes: image.content(segmentPath(DIR, n)),
  }));
  const { records } = planRecovery(segments, mark, 0);
  const protectedRecords = records.filter((r) => {
    const end = { segment: r.segment, offset: r.offset + 12 + r.payload.length };
    return !before(mark, end);
  });
  if (protectedRecords.length === 0) {
    tally.nothingBeforeMark++;
    return;
  }
  const victim = rng.pick(protectedRecords);
  const bytes = image.content(victim.path);
  const at = victim.offset + rng.int(0, 12 + victim.payload.length - 1);
  bytes[at] ^= 1 << rng.int(0, 7);
  image.overwrite(victim.path, bytes);
  await assert.rejects(open(image, mode), (e: unknown) => {
    assert.ok(
      e instanceof CorruptionError,
      `${context}: damage at byte ${at} of ${victim.path} (record at ${victim.offset}, before ` +
        `the mark ${show(mark)}): expected a CorruptionError, got ${e}`,
    );
    return true;
  }, `${context}: damage at byte ${at} of ${victim.path} before the mark was accepted`);
  tally.damageRefused++;
}

Deno.test("wal power loss: synced records survive, torn and reordered tails are cut, damage before the mark is refused", async () => {
  const tally: Tally = {
    powerLosses: 0,
    syncedRecords: 0,
    tornTails: 0,
    reordered: 0,
    damageRefused: 0,
    nothingBeforeMark: 0,
    markBehind: 0,
  };
  for (const seed of seeds) await runSeed(seed, tally);
  console.log(`seeds ${seeds[0]}..${seeds.at(-1)}: ${JSON.stringify(tally)}`);
  if (!oneSeed) {
    // The run must have reached the cases it is about, or it proves nothing.
    assert.ok(tally.reordered > 0, "no power loss left a reordered tail");
    assert.ok(tally.tornTails > tally.reordered, "no power loss left a plain torn tail");
    assert.ok(tally.damageRefused >= tally.powerLosses / 4, "too few damage injections");
    assert.ok(tally.syncedRecords > 0, "nothing was ever synced");
  }
});
