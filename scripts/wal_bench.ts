/**
 * Write-ahead log micro-benchmark: appends `--records` records of `--bytes` bytes of JSON in
 * batches of `--batch`, one `sync()` (fdatasync, `--fsync batch`) per batch, into a fresh log
 * with 16 MiB segments in a temporary directory, and prints the time taken, the fdatasyncs, and
 * the bytes this process sent to the disk (`write_bytes` of /proc/self/io, Linux only: data
 * written back later by the kernel on the process's behalf is counted too once it happens, so
 * the log is closed and its directory fsynced before reading it).
 *
 * ```sh
 * deno run -A scripts/wal_bench.ts --records 4000 --bytes 10240 --batch 8 --runs 3
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { WriteAheadLog } from "../src/storage/wal.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    records: { type: "string", default: "4000" },
    bytes: { type: "string", default: "10240" },
    batch: { type: "string", default: "8" },
    runs: { type: "string", default: "3" },
  },
});
const records = Number(values.records);
const bytes = Number(values.bytes);
const batch = Number(values.batch);
const runs = Number(values.runs);

/** Bytes this process caused to be written to storage so far (0 where /proc is missing). */
function diskWrites(): number {
  try {
    const text = Deno.readTextFileSync("/proc/self/io");
    return Number(/^write_bytes: (\d+)$/m.exec(text)?.[1] ?? 0);
  } catch {
    return 0;
  }
}

const value = "x".repeat(bytes);
for (let run = 1; run <= runs; run++) {
  const dir = Deno.makeTempDirSync({ prefix: "lamportkv_walbench_" });
  try {
    const writtenBefore = diskWrites();
    const started = performance.now();
    const { wal } = await WriteAheadLog.open(dir, { fsync: "batch" });
    for (let i = 0; i < records; i++) {
      wal.append({ i, value });
      if ((i + 1) % batch === 0) await wal.sync();
    }
    await wal.close();
    const ms = performance.now() - started;
    const written = diskWrites() - writtenBefore;
    const payload = records * bytes;
    console.log(
      `run ${run}: ${records} records of ${bytes} B, ${Math.ceil(records / batch)} syncs: ` +
        `${ms.toFixed(0)} ms (${(records / (ms / 1000)).toFixed(0)} records/s), ` +
        `${wal.stats.fsyncs} fdatasyncs, ${wal.stats.segments} segments ` +
        `(${wal.stats.unprepared} unprepared), disk writes ${(written / 2 ** 20).toFixed(1)} MiB ` +
        `for ${(payload / 2 ** 20).toFixed(1)} MiB of values`,
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}
