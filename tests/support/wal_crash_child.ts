/**
 * Child process of `tests/e2e/wal_crash_test.ts`: opens the write-ahead log in a directory,
 * checks that the records it finds continue the numbering of the last snapshot without a gap,
 * then appends numbered records forever (random batch sizes and padding, syncs awaited or not,
 * now and then a "snapshot" that stores the log position and releases the segments before it)
 * until its parent kills it with SIGKILL.
 *
 * Protocol on stdout, one line each: `open <n>` (records known after opening: the snapshot's
 * count plus the records read), `synced <n>` (records 1..n are durable), `ERROR <text>`.
 *
 * Usage: deno run --allow-read --allow-write wal_crash_child.ts <dir> <mode> <seed>
 *
 * @module
 */
import { join } from "node:path";
import { type FsyncMode, WriteAheadLog } from "../../src/storage/wal.ts";
import { writeFileAtomically } from "../../src/storage/snapshot_file.ts";
import { Prng } from "./prng.ts";

const [dir, mode, seedText] = Deno.args;
const random = new Prng(Number(seedText));
const encoder = new TextEncoder();
const say = (line: string) => Deno.stdout.writeSync(encoder.encode(line + "\n"));
const snapPath = join(dir, "snap.json");

let snap: { from: { segment: number; offset: number }; count: number } | undefined;
try {
  snap = JSON.parse(Deno.readTextFileSync(snapPath));
} catch (e) {
  if (!(e instanceof Deno.errors.NotFound)) throw e;
}
const { wal, records } = await WriteAheadLog.open(dir, {
  fsync: mode as FsyncMode,
  segmentBytes: 4096,
  from: snap?.from,
});
const start = snap?.count ?? 0;
for (const [k, record] of [...records].entries()) {
  if ((record as { i?: number }).i !== start + 1 + k) {
    say(`ERROR record ${k} after the snapshot is ${JSON.stringify(record)}, not ${start + 1 + k}`);
    Deno.exit(3);
  }
}
let n = start + records.length;
const opened = n;
say(`open ${n}`);
const turn = () => new Promise((resolve) => setTimeout(resolve, 0));
// Bounded anyway: the parent kills it long before.
for (let round = 0; round < 100_000; round++) {
  for (let j = random.int(1, 8); j > 0; j--) {
    wal.append({ i: ++n, pad: "x".repeat(random.int(0, 700)) });
  }
  const synced = wal.sync().then((s) => say(`synced ${opened + s}`));
  if (random.chance(0.5)) await synced;
  if (random.chance(0.1)) {
    const from = wal.position;
    writeFileAtomically(snapPath, encoder.encode(JSON.stringify({ from, count: n })));
    if (random.chance(0.5)) await turn();
    wal.releaseBefore(from);
  }
  if (random.chance(0.3)) await turn();
}
