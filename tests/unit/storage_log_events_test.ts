/**
 * The log events of a data directory (`DiskStorage`): `snapshot.written` with its index and size,
 * `log.truncated` when segments before the snapshot are deleted, `wal.slow_fsync` (warn) when a
 * sync takes more than {@link SLOW_FSYNC_MS}, and `recovery.done` on reopen.
 */
import assert from "node:assert/strict";
import { DiskStorage } from "../../src/runtime/disk_storage.ts";
import type { DurableSnapshot, PersistRecord } from "../../src/core/types.ts";
import type { LogRecord } from "../../src/log/format.ts";
import { SLOW_FSYNC_MS } from "../../src/limits.ts";
import { logTo } from "../support/log_capture.ts";

const entry = (seq: number): PersistRecord => ({
  r: "entry",
  entry: {
    view: 3,
    ts: seq,
    origin: 1,
    seq,
    cmd: { op: { argv: ["SET", "k", "v".repeat(200)], time: 0 } },
  },
});

const snapshot: DurableSnapshot = {
  snapshot: { index: 40, last: null, state: { map: [["k", "v"]], clients: [] } },
  view: 3,
  members: [1, 2, 3],
  promised: 3,
  holdback: [],
};

Deno.test("disk storage log events: snapshot written, log truncated, slow sync, recovery", async () => {
  const dir = await Deno.makeTempDir();
  const records: LogRecord[] = [];
  const options = {
    dir,
    cluster: "c1",
    replica: 1,
    fsync: "batch" as const,
    segmentBytes: 4096,
    // Every event written (a loaded machine may have slow syncs of its own).
    log: logTo([], { records, rateLimit: { intervalMs: 0 } }),
  };
  const events = (name: string) => records.filter((r) => r.event === name);
  const proto = Deno.FsFile.prototype;
  const original = proto.syncData;
  try {
    const storage = await DiskStorage.open(options);
    for (let seq = 1; seq <= 40; seq++) storage.append(entry(seq));
    await storage.sync();

    storage.writeSnapshot(snapshot);
    await storage.snapshotIdle();
    const [written] = events("snapshot.written");
    assert.equal(written.level, "info");
    assert.equal(written.fields.index, 40);
    assert.ok((written.fields.bytes as number) > 0);
    const [truncated] = events("log.truncated");
    assert.equal(truncated.level, "info");
    assert.ok((truncated.fields.segments as number) >= 2, JSON.stringify(truncated));
    assert.equal(truncated.fields.index, 40);

    // A sync held up beyond the threshold is a warning.
    proto.syncData = function (this: Deno.FsFile) {
      return new Promise<void>((resolve) => setTimeout(resolve, SLOW_FSYNC_MS + 50))
        .then(() => original.call(this));
    };
    let mark = records.length;
    storage.append(entry(41));
    await storage.sync();
    proto.syncData = original;
    const [slow] = records.slice(mark).filter((r) => r.event === "wal.slow_fsync");
    assert.equal(slow.level, "warn");
    assert.ok((slow.fields.ms as number) > SLOW_FSYNC_MS, JSON.stringify(slow));
    await storage.close();

    const reopened = await DiskStorage.open(options);
    const [recovery] = events("recovery.done");
    assert.equal(recovery.fields.snapshotIndex, 40);
    assert.equal(recovery.fields.records, 1);
    await reopened.close();

    // With fsync always, the sync happens in append (synchronously).
    const always = await DiskStorage.open({ ...options, fsync: "always" });
    const syncSync = proto.syncDataSync;
    proto.syncDataSync = function (this: Deno.FsFile) {
      const until = performance.now() + SLOW_FSYNC_MS + 50;
      while (performance.now() < until) {
        // a disk that takes its time
      }
      syncSync.call(this);
    };
    mark = records.length;
    try {
      always.append(entry(42));
    } finally {
      proto.syncDataSync = syncSync;
    }
    assert.ok(records.slice(mark).some((r) => r.event === "wal.slow_fsync"));
    await always.close();
  } finally {
    proto.syncData = original;
    await Deno.remove(dir, { recursive: true });
  }
});
