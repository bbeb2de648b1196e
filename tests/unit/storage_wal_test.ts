/**
 * Tests of the write-ahead log on real files in temporary directories: reopen, torn tails,
 * middle corruption, group commit, the three fsync modes, replace() and close().
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { CorruptionError, encodeRecord } from "../../src/storage/record_codec.ts";
import { type FsyncMode, WriteAheadLog } from "../../src/storage/wal.ts";

/** Runs `body` with a fresh temporary directory, removed afterwards. */
async function withTempDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "lamportkv_wal_" });
  try {
    await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function fileSize(path: string): number {
  return Deno.statSync(path).size;
}

const sampleRecords: unknown[] = [
  { type: "entry", index: 1, key: "k\u0000\u00ff\r\n", value: "v" },
  "a string",
  42,
  null,
  [1, [2, { three: true }]],
  { nested: { deep: { list: ["LKVR", "x".repeat(1000)] } } },
];

Deno.test("wal: append, sync, reopen returns the records in order", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "wal.log");
    for (const mode of ["batch", "always", "never"] as FsyncMode[]) {
      await Deno.remove(path).catch(() => {});
      const opened = await WriteAheadLog.open(path, { fsync: mode });
      assert.deepEqual(opened.records, []);
      assert.equal(opened.tornTail, null);
      const wal = opened.wal;
      assert.equal(wal.appended, 0);
      assert.equal(wal.synced, 0);
      const numbers = sampleRecords.map((r) => wal.append(r));
      assert.deepEqual(numbers, [1, 2, 3, 4, 5, 6]);
      assert.equal(wal.appended, 6);
      assert.equal(await wal.sync(), 6);
      assert.equal(wal.synced, 6);
      assert.equal(wal.sizeBytes, fileSize(path));
      await wal.close();

      const again = await WriteAheadLog.open(path, { fsync: mode });
      assert.deepEqual(again.records, sampleRecords, mode);
      assert.equal(again.tornTail, null);
      // Numbering counts from open.
      assert.equal(again.wal.append("more"), 1);
      assert.equal(again.wal.sizeBytes > fileSize(path), mode !== "always");
      await again.wal.close();
      const third = await WriteAheadLog.open(path, { fsync: mode });
      assert.deepEqual(third.records, [...sampleRecords, "more"]);
      await third.wal.close();
    }
  });
});

Deno.test("wal: a torn tail is reported, truncated on disk, and appending continues", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "wal.log");
    const { wal } = await WriteAheadLog.open(path, { fsync: "batch" });
    for (let i = 1; i <= 5; i++) wal.append({ i });
    await wal.close();
    const full = fileSize(path);
    const lastRecordBytes = encodeRecord(new TextEncoder().encode(JSON.stringify({ i: 5 }))).length;
    const goodPrefix = full - lastRecordBytes;
    // A crash in the middle of writing the last record.
    await Deno.truncate(path, full - 3);

    const first = await WriteAheadLog.open(path, { fsync: "batch" });
    assert.deepEqual(first.records, [{ i: 1 }, { i: 2 }, { i: 3 }, { i: 4 }]);
    assert.equal(first.tornTail?.offset, goodPrefix);
    assert.match(first.tornTail?.reason ?? "", /extends past the end of the file/);
    assert.equal(fileSize(path), goodPrefix, "torn tail truncated on disk");
    assert.equal(first.wal.sizeBytes, goodPrefix);
    assert.equal(first.wal.append({ i: 6 }), 1);
    await first.wal.close();

    const second = await WriteAheadLog.open(path, { fsync: "batch" });
    assert.equal(second.tornTail, null);
    assert.deepEqual(second.records, [{ i: 1 }, { i: 2 }, { i: 3 }, { i: 4 }, { i: 6 }]);
    await second.wal.close();
  });
});

Deno.test("wal: garbage after the last record is a torn tail, removed on open", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "wal.log");
    const { wal } = await WriteAheadLog.open(path, { fsync: "always" });
    wal.append("a");
    await wal.close();
    const good = fileSize(path);
    const file = await Deno.open(path, { append: true });
    await file.write(new Uint8Array([0x4c, 0x4b, 0x56, 0x52, 0, 0, 0, 0, 9, 9, 9, 9, 1]));
    file.close();
    const opened = await WriteAheadLog.open(path, { fsync: "always" });
    assert.deepEqual(opened.records, ["a"]);
    assert.deepEqual(opened.tornTail?.offset, good);
    assert.match(opened.tornTail?.reason ?? "", /checksum mismatch/);
    assert.equal(fileSize(path), good);
    await opened.wal.close();
  });
});

Deno.test("wal: damage in the middle refuses to open and changes nothing on disk", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "wal.log");
    const { wal } = await WriteAheadLog.open(path, { fsync: "batch" });
    wal.append({ first: 1 });
    wal.append({ second: 2 });
    wal.append({ third: 3 });
    await wal.close();
    const bytes = Deno.readFileSync(path);
    bytes[14] ^= 0x01; // inside the first record's payload
    Deno.writeFileSync(path, bytes);
    await assert.rejects(WriteAheadLog.open(path, { fsync: "batch" }), (e: unknown) => {
      assert.ok(e instanceof CorruptionError);
      assert.ok(e.message.startsWith(`${path}: corrupt record at byte offset 0: checksum`));
      return true;
    });
    assert.deepEqual(Deno.readFileSync(path), bytes);
  });
});

Deno.test("wal: a record with a valid checksum that is not JSON is corruption", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "wal.log");
    Deno.writeFileSync(path, encodeRecord(new TextEncoder().encode("{not json")));
    await assert.rejects(
      WriteAheadLog.open(path, { fsync: "batch" }),
      (e: unknown) =>
        e instanceof CorruptionError &&
        e.message.startsWith(`${path}: record at byte offset 0 has a valid checksum but is not`),
    );
  });
});

Deno.test("wal: group commit shares one fdatasync among concurrent sync calls", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "wal.log");
    const { wal } = await WriteAheadLog.open(path, { fsync: "batch" });
    for (let i = 0; i < 50; i++) wal.append({ i });
    assert.equal(fileSize(path), 0, "appends are buffered");
    assert.equal(wal.synced, 0);
    const first = wal.sync(); // starts round 1 for records 1..50
    assert.equal(fileSize(path), wal.sizeBytes, "one write carries the whole buffer");
    const sameRound = wal.sync(); // nothing new: shares round 1
    for (let i = 50; i < 100; i++) wal.append({ i });
    const later: Promise<number>[] = [];
    for (let k = 0; k < 10; k++) {
      later.push(wal.sync()); // all share round 2, which starts when round 1 ends
      wal.append({ k });
    }
    const results = await Promise.all([first, sameRound, ...later]);
    assert.ok(results[0] >= 50 && results[1] >= 50);
    // Round 2 started when round 1 ended and took everything appended by then.
    for (const r of results.slice(2)) assert.equal(r, 110);
    assert.equal(wal.synced, 110);
    assert.deepEqual(wal.stats, { writes: 2, fsyncs: 2 });
    // Nothing new: no write, no fsync.
    assert.equal(await wal.sync(), 110);
    assert.deepEqual(wal.stats, { writes: 2, fsyncs: 2 });
    assert.equal(wal.sizeBytes, fileSize(path));
    assert.equal(wal.sizeBytes, fileSize(path));
    await wal.close();
    const again = await WriteAheadLog.open(path, { fsync: "batch" });
    assert.equal(again.records.length, 110);
    assert.deepEqual(again.records[99], { i: 99 });
    assert.deepEqual(again.records[109], { k: 9 });
    await again.wal.close();
  });
});

Deno.test("wal: many concurrent sync calls all resolve with synced == appended", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "wal.log");
    const { wal } = await WriteAheadLog.open(path, { fsync: "batch" });
    const pending: Promise<number>[] = [];
    for (let i = 1; i <= 200; i++) {
      const n = wal.append({ i });
      if (i % 7 === 0) pending.push(wal.sync().then((synced) => (assert.ok(synced >= n), synced)));
    }
    pending.push(wal.sync());
    await Promise.all(pending);
    assert.equal(wal.synced, 200);
    assert.equal(wal.appended, 200);
    // Never more fdatasyncs than one running plus one queued at each point: far fewer than calls.
    assert.ok(wal.stats.fsyncs <= 2, `${wal.stats.fsyncs} fsyncs`);
    await wal.close();
  });
});

Deno.test("wal: 'always' writes and fdatasyncs inside append", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "wal.log");
    const { wal } = await WriteAheadLog.open(path, { fsync: "always" });
    for (let i = 1; i <= 5; i++) {
      assert.equal(wal.append({ i }), i);
      assert.equal(wal.synced, i);
      assert.equal(fileSize(path), wal.sizeBytes);
    }
    assert.deepEqual(wal.stats, { writes: 5, fsyncs: 5 });
    assert.equal(await wal.sync(), 5);
    await wal.close();
    assert.deepEqual(wal.stats, { writes: 5, fsyncs: 5 });
  });
});

Deno.test("wal: 'never' writes on sync without fdatasync", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "wal.log");
    const { wal } = await WriteAheadLog.open(path, { fsync: "never" });
    wal.append("a");
    wal.append("b");
    assert.equal(fileSize(path), 0);
    assert.equal(wal.synced, 0);
    assert.equal(await wal.sync(), 2);
    assert.equal(fileSize(path), wal.sizeBytes);
    wal.append("c");
    await wal.close(); // flushes
    assert.deepEqual(wal.stats, { writes: 2, fsyncs: 0 });
    const again = await WriteAheadLog.open(path, { fsync: "never" });
    assert.deepEqual(again.records, ["a", "b", "c"]);
    await again.wal.close();
  });
});

Deno.test("wal: close flushes buffered records with an fdatasync in batch mode", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "wal.log");
    const { wal } = await WriteAheadLog.open(path, { fsync: "batch" });
    wal.append(1);
    const inFlight = wal.sync();
    wal.append(2);
    wal.append(3);
    const closing = wal.close();
    assert.equal(wal.close(), closing, "close is idempotent");
    await closing;
    assert.equal(await inFlight, 1);
    assert.equal(wal.synced, 3);
    assert.equal(await wal.sync(), 3, "sync after close resolves");
    assert.throws(() => wal.append(4), /write-ahead log .* is closed/);
    assert.throws(() => wal.replace([]), /is closed/);
    const again = await WriteAheadLog.open(path, { fsync: "batch" });
    assert.deepEqual(again.records, [1, 2, 3]);
    await again.wal.close();
  });
});

Deno.test("wal: replace() swaps the log atomically and numbering continues", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "wal.log");
    const { wal } = await WriteAheadLog.open(path, { fsync: "batch" });
    for (let i = 1; i <= 20; i++) wal.append({ old: i });
    await wal.sync();
    wal.append({ buffered: true }); // superseded by the replacement: discarded
    wal.replace([{ snapshotAt: 21 }, "tail"]);
    assert.equal(wal.appended, 21);
    assert.equal(wal.synced, 21);
    assert.equal(wal.sizeBytes, fileSize(path));
    assert.equal(wal.append({ after: 1 }), 22);
    assert.equal(await wal.sync(), 22);
    await wal.close();
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["wal.log"]);

    const again = await WriteAheadLog.open(path, { fsync: "batch" });
    assert.deepEqual(again.records, [{ snapshotAt: 21 }, "tail", { after: 1 }]);
    again.wal.replace([]);
    await again.wal.close();
    const empty = await WriteAheadLog.open(path, { fsync: "batch" });
    assert.deepEqual(empty.records, []);
    assert.equal(fileSize(path), 0);
    await empty.wal.close();
  });
});

Deno.test("wal: replace() while an fdatasync is running", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "wal.log");
    const { wal } = await WriteAheadLog.open(path, { fsync: "batch" });
    wal.append("x");
    const running = wal.sync();
    wal.append("y");
    const queued = wal.sync();
    wal.replace(["new"]);
    wal.append("z");
    assert.equal(await running, 2);
    assert.ok((await queued) >= 2);
    assert.equal(await wal.sync(), 3);
    await wal.close();
    const again = await WriteAheadLog.open(path, { fsync: "batch" });
    assert.deepEqual(again.records, ["new", "z"]);
    await again.wal.close();
  });
});

Deno.test("wal: a leftover temp file of an interrupted replace is removed on open", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "wal.log");
    const { wal } = await WriteAheadLog.open(path, { fsync: "always" });
    wal.append("kept");
    await wal.close();
    Deno.writeFileSync(path + ".tmp", encodeRecord(new TextEncoder().encode('"half-done"')));
    const again = await WriteAheadLog.open(path, { fsync: "always" });
    assert.deepEqual(again.records, ["kept"]);
    assert.throws(() => Deno.statSync(path + ".tmp"), Deno.errors.NotFound);
    await again.wal.close();
  });
});

Deno.test("wal: records without a JSON form are refused and nothing is appended", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "wal.log");
    const { wal } = await WriteAheadLog.open(path, { fsync: "batch" });
    assert.throws(() => wal.append(undefined), TypeError);
    assert.throws(() => wal.append(10n), TypeError);
    assert.throws(() => wal.replace(["ok", () => 1]), TypeError);
    assert.equal(wal.appended, 0);
    assert.equal(wal.sizeBytes, 0);
    wal.append("fine");
    await wal.close();
    const again = await WriteAheadLog.open(path, { fsync: "batch" });
    assert.deepEqual(again.records, ["fine"]);
    await again.wal.close();
  });
});

Deno.test("wal: an unknown fsync mode is refused", async () => {
  await withTempDir(async (dir) => {
    await assert.rejects(
      WriteAheadLog.open(join(dir, "wal.log"), { fsync: "sometimes" as FsyncMode }),
      TypeError,
    );
  });
});

/** Replaces `Deno.FsFile.prototype.syncData` while `body` runs. */
async function withPatchedSyncData(
  patched: (original: () => Promise<void>) => Promise<void>,
  body: () => Promise<void>,
): Promise<void> {
  const proto = Deno.FsFile.prototype;
  const original = proto.syncData;
  proto.syncData = function (this: Deno.FsFile) {
    return patched(() => original.call(this));
  };
  try {
    await body();
  } finally {
    proto.syncData = original;
  }
}

Deno.test("wal: never two fdatasyncs at once, across many event-loop turns", async () => {
  await withTempDir(async (dir) => {
    let running = 0;
    let maxRunning = 0;
    let calls = 0;
    await withPatchedSyncData(async (original) => {
      calls++;
      running++;
      maxRunning = Math.max(maxRunning, running);
      try {
        await original();
      } finally {
        running--;
      }
    }, async () => {
      const { wal } = await WriteAheadLog.open(join(dir, "wal.log"), { fsync: "batch" });
      const pending: Promise<number>[] = [];
      for (let turn = 0; turn < 40; turn++) {
        for (let i = 0; i < 5; i++) {
          const n = wal.append({ turn, i });
          pending.push(
            wal.sync().then((synced) => {
              assert.ok(synced >= n, `record ${n} durable when its sync resolved`);
              return synced;
            }),
          );
        }
        if (turn % 3 === 0) await new Promise((resolve) => setTimeout(resolve, 0));
      }
      await Promise.all(pending);
      assert.equal(wal.synced, 200);
      await wal.close();
      assert.equal(wal.stats.fsyncs, calls);
    });
    assert.equal(maxRunning, 1);
    assert.ok(calls >= 1 && calls < 200, `${calls} fdatasyncs`);
  });
});

Deno.test("wal: after a failed fdatasync the log refuses everything and close reports it", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "wal.log");
    const { wal } = await WriteAheadLog.open(path, { fsync: "batch" });
    await withPatchedSyncData(() => Promise.reject(new Error("simulated EIO")), async () => {
      wal.append("lost?");
      await assert.rejects(wal.sync(), /write-ahead log .* failed: simulated EIO/);
    });
    assert.throws(() => wal.append("more"), /failed: simulated EIO/);
    await assert.rejects(wal.sync(), /failed: simulated EIO/);
    await assert.rejects(wal.close(), /failed: simulated EIO/);
    assert.equal(wal.synced, 0);
  });
});
