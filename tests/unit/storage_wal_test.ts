/**
 * Tests of the segmented write-ahead log on real files in temporary directories: reopen, torn
 * tails, middle corruption and holes, segment rolling and preallocation, positions and release,
 * group commit, the three fsync modes, the older single-file format and JSON records, binary
 * records that do not decode, close(), and the sync mark (damage before it refused, a reordered
 * tail after it cut, a torn slot). Power losses are in `wal_power_loss_test.ts`.
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  CorruptionError,
  encodeRecord,
  RECORD_HEADER_BYTES,
  scanRecordPrefix,
} from "../../src/storage/record_codec.ts";
import { decodeValue, encodeValue } from "../../src/codec/binary_value.ts";
import {
  BINARY_RECORD_TAG,
  type FsyncMode,
  READ_REPORT_EVERY,
  WriteAheadLog,
} from "../../src/storage/wal.ts";
import { DENO_WAL_IO, type WalFile, type WalIo } from "../../src/storage/wal_io.ts";
import {
  decodeMark,
  encodeMarkSlot,
  MARK_SLOT_BYTES,
  SYNC_MARK_FILE,
} from "../../src/storage/wal_mark.ts";
import {
  listSegments,
  PREPARED_SEGMENT_FILE,
  segmentPath,
} from "../../src/storage/wal_segments.ts";
import { withTempDir as withTempDirIn } from "../support/temp_dir.ts";
import { groupRecords } from "../../src/storage/record_groups.ts";
import { concatBytes } from "../../src/kv/bytes.ts";

/** Runs `body` with a fresh temporary directory, removed afterwards. */
function withTempDir(body: (dir: string) => Promise<void>): Promise<void> {
  return withTempDirIn("lamportkv_wal_", body);
}

/** Small segments keep the files small and make rolling easy to reach. */
const SMALL = 4096;

function open(dir: string, fsync: FsyncMode = "batch", extra: object = {}) {
  return WriteAheadLog.open(dir, { fsync, segmentBytes: SMALL, ...extra });
}

function fileSize(path: string): number {
  return Deno.statSync(path).size;
}

/** `record` framed as the log writes it: {@link BINARY_RECORD_TAG}, then its binary value. */
function binaryFrame(record: unknown): Uint8Array {
  return encodeRecord(encodeValue(record, BINARY_RECORD_TAG));
}

/** `record` framed as an older release wrote it: its UTF-8 JSON. */
function jsonFrame(record: unknown): Uint8Array {
  return encodeRecord(new TextEncoder().encode(JSON.stringify(record)));
}

/** Bytes the log takes for `record` (header and binary payload). */
function frameBytes(record: unknown): number {
  return binaryFrame(record).length;
}

/** Writes `records` to a new log in `dir` and closes it; the path of its (first) segment. */
async function writeLog(dir: string, records: unknown[], fsync?: FsyncMode): Promise<string> {
  const { wal } = await open(dir, fsync);
  for (const record of records) wal.append(record);
  await wal.close();
  return segmentPath(dir, 0);
}

/**
 * Asserts that opening the log in `dir` and reading its records fails with a
 * {@link CorruptionError} that `check` likes: damaged framing fails the open, a record whose
 * checksum holds but whose content does not fails when it is read (the log is closed then).
 */
async function assertCorrupt(dir: string, check: (e: CorruptionError) => void): Promise<void> {
  const openAndRead = async () => {
    const { wal, records } = await open(dir);
    try {
      for (const _ of records) { /* decoded and checked as read */ }
    } finally {
      await wal.close();
    }
  };
  await assert.rejects(openAndRead(), (e: unknown) => {
    assert.ok(e instanceof CorruptionError, `expected a CorruptionError, got ${e}`);
    check(e);
    return true;
  });
}

/** The real file system, with `hooks` around opening files and fdatasyncing segments. */
function hookedIo(hooks: {
  open?: (path: string) => void;
  segmentSyncData?: (original: () => Promise<void>) => Promise<void>;
}): WalIo {
  return {
    ...DENO_WAL_IO,
    open(path, how) {
      hooks.open?.(path);
      const file = DENO_WAL_IO.open(path, how);
      if (hooks.segmentSyncData === undefined || !/wal-\d+\.log$|wal-next\.tmp$/.test(path)) {
        return file;
      }
      const syncData = hooks.segmentSyncData;
      const wrapped: WalFile = {
        writeAt: (bytes, offset) => file.writeAt(bytes, offset),
        syncData: () => syncData(() => file.syncData()),
        syncDataSync: () => file.syncDataSync(),
        sync: () => file.sync(),
        setSize: (bytes) => file.setSize(bytes),
        close: () => file.close(),
      };
      return wrapped;
    },
  };
}

/** Whether `path` exists (as the log itself checks). */
const exists = (path: string): boolean => DENO_WAL_IO.exists(path);

const sampleRecords: unknown[] = [
  { type: "entry", index: 1, key: "k\u0000\u00ff\r\n", value: "v" },
  "a string",
  42,
  null,
  [1, [2, { three: true }]],
  { nested: { deep: { list: ["LKVR", "x".repeat(1000)] } } },
];

Deno.test("wal: append, sync, reopen returns the records in order; each open starts a segment", async () => {
  for (const mode of ["batch", "always", "never"] as FsyncMode[]) {
    await withTempDir(async (dir) => {
      const opened = await open(dir, mode);
      assert.deepEqual([...opened.records], []);
      assert.equal(opened.tornTail, null);
      const wal = opened.wal;
      assert.equal(wal.appended, 0);
      assert.equal(wal.synced, 0);
      assert.ok(exists(join(dir, PREPARED_SEGMENT_FILE)), "the first segment is zero-filled");
      assert.equal(fileSize(join(dir, PREPARED_SEGMENT_FILE)), SMALL);
      const numbers = sampleRecords.map((r) => wal.append(r));
      assert.deepEqual(numbers, [1, 2, 3, 4, 5, 6]);
      assert.equal(wal.appended, 6);
      assert.equal(await wal.sync(), 6);
      assert.equal(wal.synced, 6);
      assert.deepEqual(listSegments(dir), [0]);
      assert.equal(fileSize(segmentPath(dir, 0)), SMALL, `${mode}: written in place, no growth`);
      await wal.close();

      const again = await open(dir, mode);
      assert.deepEqual([...again.records], sampleRecords, mode);
      assert.equal(again.tornTail, null);
      // Numbering counts from open; the records go into a new segment.
      assert.equal(again.wal.append("more"), 1);
      await again.wal.close();
      assert.deepEqual(listSegments(dir), [0, 1]);
      const third = await open(dir, mode);
      assert.deepEqual([...third.records], [...sampleRecords, "more"]);
      await third.wal.close();
    });
  }
});

Deno.test("wal: records roll over into new segments; a large one fills a segment alone", async () => {
  await withTempDir(async (dir) => {
    const { wal } = await open(dir);
    const records: unknown[] = [];
    for (let i = 0; i < 60; i++) records.push({ i, pad: "p".repeat(200) });
    records.push({ big: "B".repeat(3 * SMALL) });
    records.push({ after: true });
    for (const r of records) wal.append(r);
    assert.equal(await wal.sync(), records.length);
    const segments = listSegments(dir);
    assert.ok(segments.length >= 4, `segments ${segments}`);
    assert.deepEqual(segments, wal.segments);
    // One fdatasync per segment written: each is durable before the next one gets records.
    assert.equal(wal.stats.fsyncs, segments.length);
    assert.equal(wal.stats.segments, segments.length);
    const bigSegment = segments.find((n) => fileSize(segmentPath(dir, n)) > SMALL);
    assert.notEqual(bigSegment, undefined, "the large record grew its own segment");
    assert.equal(fileSize(segmentPath(dir, bigSegment!)), frameBytes(records.at(-2)));
    await wal.close();
    const again = await open(dir);
    assert.deepEqual([...again.records], records);
    await again.wal.close();
  });
});

Deno.test("wal: a segment needed when no preallocated one is ready is created on the spot", async () => {
  await withTempDir(async (dir) => {
    let failing = false;
    const io = hookedIo({
      open(path) {
        if (failing && path.endsWith(PREPARED_SEGMENT_FILE)) throw new Error("simulated ENOSPC");
      },
    });
    const { wal } = await open(dir, "batch", { io }); // preallocates the first segment
    // From now on preallocating fails, so every later segment has to be created on the spot.
    failing = true;
    for (let i = 0; i < 40; i++) {
      wal.append({ i, pad: "q".repeat(500) });
    }
    await wal.sync();
    const { segments, unprepared } = wal.stats;
    assert.ok(segments >= 3, JSON.stringify(wal.stats));
    assert.equal(unprepared, segments - 1, "all but the first were created on the spot");
    await wal.close();
    const again = await open(dir);
    assert.equal(again.records.length, 40);
    assert.deepEqual(again.records.at(39), { i: 39, pad: "q".repeat(500) });
    await again.wal.close();
  });
});

Deno.test("wal: a torn tail is reported, cut off on disk, and appending continues", async () => {
  await withTempDir(async (dir) => {
    const path = await writeLog(dir, [1, 2, 3, 4].map((i) => ({ i })));
    const goodPrefix = [1, 2, 3, 4].reduce((n, i) => n + frameBytes({ i }), 0);
    // A crash in the middle of writing a fifth record, before it was synced: its end never
    // reached the disk.
    const torn = binaryFrame({ i: 5 });
    torn.fill(0, torn.length - 3);
    const bytes = Deno.readFileSync(path);
    bytes.set(torn, goodPrefix);
    Deno.writeFileSync(path, bytes);

    const first = await open(dir);
    assert.deepEqual([...first.records], [{ i: 1 }, { i: 2 }, { i: 3 }, { i: 4 }]);
    assert.equal(first.tornTail?.file, path);
    assert.equal(first.tornTail?.offset, goodPrefix);
    assert.match(first.tornTail?.reason ?? "", /checksum mismatch/);
    assert.equal(fileSize(path), goodPrefix, "torn tail cut off on disk");
    assert.equal(first.wal.append({ i: 6 }), 1);
    await first.wal.close();

    const second = await open(dir);
    assert.equal(second.tornTail, null);
    assert.deepEqual([...second.records], [{ i: 1 }, { i: 2 }, { i: 3 }, { i: 4 }, { i: 6 }]);
    await second.wal.close();
  });
});

Deno.test("wal: zero padding is the end of the records; garbage after them is a torn tail", async () => {
  await withTempDir(async (dir) => {
    const path = await writeLog(dir, ["a"], "always");
    const good = frameBytes("a");
    const padded = Deno.readFileSync(path);
    await withTempDir(async (other) => {
      await writeLog(other, ["a"], "always");
      const clean = await open(other, "always");
      assert.deepEqual([...clean.records], ["a"]);
      assert.equal(clean.tornTail, null);
      await clean.wal.close();
    });

    // Garbage after the last synced record (never written by the log: a write that was not
    // synced yet, say) is a torn tail.
    const bytes = padded;
    bytes.set([0x4c, 0x4b, 0x56, 0x52, 0, 0, 0, 0, 9, 9, 9, 9, 1], good);
    Deno.writeFileSync(path, bytes);
    const opened = await open(dir, "always");
    assert.deepEqual([...opened.records], ["a"]);
    assert.equal(opened.tornTail?.offset, good);
    assert.match(opened.tornTail?.reason ?? "", /checksum mismatch/);
    assert.equal(fileSize(path), good);
    await opened.wal.close();
  });
});

Deno.test("wal: damage in the middle refuses to open and changes nothing on disk", async () => {
  await withTempDir(async (dir) => {
    const path = await writeLog(dir, [{ first: 1 }, { second: 2 }, { third: 3 }]);
    const bytes = Deno.readFileSync(path);
    bytes[14] ^= 0x01; // inside the first record's payload
    Deno.writeFileSync(path, bytes);
    const names = () => [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    const before = names();
    assert.ok(before.includes(PREPARED_SEGMENT_FILE));
    await assertCorrupt(dir, (e) => {
      assert.ok(e.message.startsWith(`${path}: corrupt record at byte offset 0: checksum`));
    });
    assert.deepEqual(Deno.readFileSync(path), bytes);
    assert.deepEqual(names(), before, "not even a leftover file was removed");
  });
});

Deno.test("wal: a torn record before a segment with records, or a missing segment, is corruption", async () => {
  await withTempDir(async (dir) => {
    for (let round = 0; round < 3; round++) {
      const { wal } = await open(dir);
      wal.append({ round });
      await wal.close();
    }
    assert.deepEqual(listSegments(dir), [0, 1, 2]);
    const first = segmentPath(dir, 0);
    const bytes = Deno.readFileSync(first);
    const original = bytes.slice();
    bytes[frameBytes({ round: 0 }) - 1] ^= 0x40;
    Deno.writeFileSync(first, bytes);
    await assertCorrupt(dir, (e) => {
      assert.equal(e.file, first);
      assert.match(e.message, /a later segment .* holds records/);
    });
    assert.deepEqual(Deno.readFileSync(first), bytes, "nothing cut");

    Deno.writeFileSync(first, original);
    Deno.removeSync(segmentPath(dir, 1));
    await assertCorrupt(dir, (e) => {
      assert.match(e.message, /wal-0000000000000001\.log is missing: the log has a hole/);
    });
  });
});

Deno.test("wal: a record with a valid checksum that is not JSON is corruption", async () => {
  await withTempDir(async (dir) => {
    const path = segmentPath(dir, 0);
    Deno.writeFileSync(path, encodeRecord(new TextEncoder().encode("{not json")));
    await assertCorrupt(dir, (e) => {
      assert.ok(
        e.message.startsWith(`${path}: record at byte offset 0 has a valid checksum but is not`),
      );
    });
  });
});

Deno.test("wal: segments of JSON records (an older release) are read; new records go after them in binary", async () => {
  for (const withMark of [false, true]) {
    await withTempDir(async (dir) => {
      // Segment 0 as an older release left it: UTF-8 JSON payloads (starting with `{`, `"`, a
      // digit, `n` and `[`: none with the binary tag), then the zero padding of preallocation,
      // and a sync mark at the end of the records (or no mark: older still).
      const json = concatBytes(sampleRecords.map(jsonFrame));
      const segment = new Uint8Array(SMALL);
      segment.set(json);
      const path = segmentPath(dir, 0);
      Deno.writeFileSync(path, segment);
      if (withMark) {
        const mark = new Uint8Array(2 * MARK_SLOT_BYTES);
        mark.set(encodeMarkSlot(1, { segment: 0, offset: json.length }), MARK_SLOT_BYTES);
        Deno.writeFileSync(join(dir, SYNC_MARK_FILE), mark);
      }
      const first = await open(dir);
      assert.deepEqual([...first.records], sampleRecords, `mark: ${withMark}`);
      assert.equal(first.tornTail, null);
      const fresh = [{ type: "entry", index: 7, key: "k\u00ff", value: "new" }, "new string", 43];
      for (const record of fresh) first.wal.append(record);
      await first.wal.close();
      assert.deepEqual(listSegments(dir), [0, 1]);
      assert.deepEqual(Deno.readFileSync(path), segment, "the JSON records are left as they were");

      // The new records are in the binary format, in a segment of their own.
      const written = Deno.readFileSync(segmentPath(dir, 1));
      const binary = concatBytes(fresh.map(binaryFrame));
      assert.deepEqual(written.subarray(0, binary.length), binary);
      const { payloads, damage } = scanRecordPrefix(written, { zeroPadding: true });
      assert.equal(damage, null);
      assert.deepEqual(payloads.map((p) => p[0]), fresh.map(() => BINARY_RECORD_TAG));
      assert.deepEqual(payloads.map((p) => decodeValue(p, 1)), fresh);

      const again = await open(dir);
      assert.deepEqual([...again.records], [...sampleRecords, ...fresh], `mark: ${withMark}`);
      assert.equal(again.tornTail, null);
      await again.wal.close();
    });
  }
});

Deno.test("wal: a record with a valid checksum that is not one binary value is corruption", async () => {
  const value = encodeValue({ i: 5 }, BINARY_RECORD_TAG);
  const bad: [string, Uint8Array, RegExp][] = [
    ["an unknown tag", new Uint8Array([BINARY_RECORD_TAG, 0xff]), /unknown tag 0xff$/],
    ["a truncated value", value.subarray(0, value.length - 1), /the value ends early$/],
    [
      "bytes after the value",
      concatBytes([value, new Uint8Array([0])]),
      /1 bytes after the value$/,
    ],
    ["the tag alone", new Uint8Array([BINARY_RECORD_TAG]), /the value ends early$/],
  ];
  for (const [what, payload, reason] of bad) {
    await withTempDir(async (dir) => {
      // In the second segment, after a good record, before another: neither a torn tail nor at
      // the start of the log.
      Deno.writeFileSync(segmentPath(dir, 0), binaryFrame("a"));
      const path = segmentPath(dir, 1);
      const at = frameBytes("b");
      const bytes = concatBytes([binaryFrame("b"), encodeRecord(payload), binaryFrame("c")]);
      Deno.writeFileSync(path, bytes);
      await assertCorrupt(dir, (e) => {
        assert.equal(e.file, path, what);
        assert.equal(e.offset, at, what);
        assert.ok(
          e.message.startsWith(
            `${path}: record at byte offset ${at} has a valid checksum but is not a binary record: `,
          ),
          `${what}: ${e.message}`,
        );
        assert.match(e.message, reason, what);
      });
      // Its checksum holds, so it is no torn tail: nothing is cut (open checks every record's
      // framing before it changes anything; the content is checked as it is read).
      assert.deepEqual(Deno.readFileSync(path), bytes, `${what}: nothing cut`);
      assert.deepEqual(Deno.readFileSync(segmentPath(dir, 0)), binaryFrame("a"), what);
    });
  }
});

Deno.test("wal: position and releaseBefore; reopening from a position skips what is before it", async () => {
  await withTempDir(async (dir) => {
    const { wal } = await open(dir);
    for (let i = 0; i < 30; i++) wal.append({ old: i, pad: "o".repeat(300) });
    const at = wal.position;
    for (let i = 0; i < 30; i++) wal.append({ young: i, pad: "y".repeat(300) });
    await wal.sync();
    const before = listSegments(dir);
    assert.ok(before[0] < at.segment, `${before} / ${JSON.stringify(at)}`);
    await wal.close();

    // A crash before the release: the position alone makes the old records disappear.
    const reopened = await open(dir, "batch", { from: at });
    assert.deepEqual([...reopened.records].map((r) => Object.keys(r as object)[0]), [
      ...Array(30).fill("young"),
    ]);
    assert.equal(listSegments(dir)[0], at.segment, "segments before the position deleted");
    // Appending never goes where the position points, even when that segment has room.
    reopened.wal.append({ later: true });
    await reopened.wal.sync();
    assert.ok(reopened.wal.segments.at(-1)! > at.segment);
    const next = reopened.wal.position;
    reopened.wal.releaseBefore(next);
    assert.deepEqual(listSegments(dir), [next.segment]);
    await reopened.wal.close();
    const last = await open(dir, "batch", { from: next });
    assert.deepEqual([...last.records], []);
    await last.wal.close();
  });
});

Deno.test("wal: a position in the same segment skips only the records before its offset", async () => {
  await withTempDir(async (dir) => {
    const { wal } = await WriteAheadLog.open(dir, { fsync: "batch" }); // the default size
    wal.append("a");
    wal.append("b");
    const at = wal.position;
    wal.append("c");
    await wal.close();
    assert.equal(at.segment, 0);
    assert.equal(at.offset, frameBytes("a") + frameBytes("b"));
    const again = await WriteAheadLog.open(dir, { fsync: "batch", from: at });
    assert.deepEqual([...again.records], ["c"]);
    await again.wal.close();
  });
});

Deno.test("wal: group commit shares one fdatasync among concurrent sync calls", async () => {
  await withTempDir(async (dir) => {
    const { wal } = await WriteAheadLog.open(dir, { fsync: "batch" });
    for (let i = 0; i < 50; i++) wal.append({ i });
    assert.deepEqual(listSegments(dir), [], "appends are buffered");
    assert.equal(wal.synced, 0);
    const first = wal.sync(); // starts round 1 for records 1..50
    assert.deepEqual(listSegments(dir), [0], "round 1 wrote at once");
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
    assert.deepEqual(wal.stats, { writes: 2, fsyncs: 2, segments: 1, unprepared: 0 });
    // Nothing new: no write, no fsync.
    assert.equal(await wal.sync(), 110);
    assert.deepEqual(wal.stats, { writes: 2, fsyncs: 2, segments: 1, unprepared: 0 });
    await wal.close();
    const again = await WriteAheadLog.open(dir, { fsync: "batch" });
    assert.equal(again.records.length, 110);
    assert.deepEqual(again.records.at(99), { i: 99 });
    assert.deepEqual(again.records.at(109), { k: 9 });
    await again.wal.close();
  });
});

Deno.test("wal: many concurrent sync calls all resolve with synced == appended", async () => {
  await withTempDir(async (dir) => {
    const { wal } = await open(dir);
    const pending: Promise<number>[] = [];
    for (let i = 1; i <= 200; i++) {
      const n = wal.append({ i });
      if (i % 7 === 0) pending.push(wal.sync().then((synced) => (assert.ok(synced >= n), synced)));
    }
    pending.push(wal.sync());
    await Promise.all(pending);
    assert.equal(wal.synced, 200);
    assert.equal(wal.appended, 200);
    // One running round plus one queued, each with one fdatasync per segment it wrote.
    assert.ok(wal.stats.fsyncs <= wal.stats.segments + 1, JSON.stringify(wal.stats));
    await wal.close();
  });
});

Deno.test("wal: 'always' writes and fdatasyncs inside append", async () => {
  await withTempDir(async (dir) => {
    const { wal } = await open(dir, "always");
    for (let i = 1; i <= 5; i++) {
      assert.equal(wal.append({ i }), i);
      assert.equal(wal.synced, i);
    }
    assert.deepEqual(wal.stats, { writes: 5, fsyncs: 5, segments: 1, unprepared: 0 });
    assert.equal(await wal.sync(), 5);
    await wal.close();
    assert.deepEqual(wal.stats, { writes: 5, fsyncs: 5, segments: 1, unprepared: 0 });
    const again = await open(dir, "always");
    assert.equal(again.records.length, 5);
    await again.wal.close();
  });
});

Deno.test("wal: 'never' writes on sync without fdatasync", async () => {
  await withTempDir(async (dir) => {
    const { wal } = await open(dir, "never");
    wal.append("a");
    wal.append("b");
    assert.deepEqual(listSegments(dir), []);
    assert.equal(wal.synced, 0);
    assert.equal(await wal.sync(), 2);
    assert.deepEqual(listSegments(dir), [0]);
    wal.append("c");
    await wal.close(); // flushes
    assert.deepEqual(wal.stats, { writes: 2, fsyncs: 0, segments: 1, unprepared: 0 });
    const again = await open(dir, "never");
    assert.deepEqual([...again.records], ["a", "b", "c"]);
    await again.wal.close();
  });
});

Deno.test("wal: close flushes buffered records with an fdatasync in batch mode", async () => {
  await withTempDir(async (dir) => {
    const { wal } = await open(dir);
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
    wal.releaseBefore({ segment: 99, offset: 0 }); // closing: a no-op
    assert.deepEqual(listSegments(dir), [0]);
    const again = await open(dir);
    assert.deepEqual([...again.records], [1, 2, 3]);
    await again.wal.close();
  });
});

Deno.test("wal: a single-file log of the older format becomes segment 0", async () => {
  await withTempDir(async (dir) => {
    const legacy = join(dir, "wal.log");
    Deno.writeFileSync(
      legacy,
      new Uint8Array([
        ...encodeRecord(new TextEncoder().encode('"old-1"')),
        ...encodeRecord(new TextEncoder().encode('"old-2"')),
      ]),
    );
    Deno.writeTextFileSync(legacy + ".tmp", "leftover of an interrupted compaction");
    const { wal, records } = await open(dir);
    assert.deepEqual([...records], ["old-1", "old-2"]);
    assert.equal(exists(legacy), false);
    assert.equal(exists(legacy + ".tmp"), false);
    wal.append("new");
    await wal.close();
    const again = await open(dir);
    assert.deepEqual([...again.records], ["old-1", "old-2", "new"]);
    await again.wal.close();

    Deno.writeTextFileSync(legacy, "");
    await assert.rejects(open(dir), /both wal\.log and log segments are present/);
  });
});

Deno.test("wal: a leftover next segment from a crash is removed and redone", async () => {
  await withTempDir(async (dir) => {
    const { wal } = await open(dir, "always");
    wal.append("kept");
    await wal.close();
    const prepared = join(dir, PREPARED_SEGMENT_FILE);
    Deno.writeFileSync(prepared, encodeRecord(new TextEncoder().encode('"half-done"')));
    const again = await open(dir, "always");
    assert.deepEqual([...again.records], ["kept"]);
    assert.equal(fileSize(prepared), SMALL);
    assert.ok(Deno.readFileSync(prepared).every((b) => b === 0), "zero-filled again");
    await again.wal.close();
  });
});

Deno.test("wal: records without a JSON form are refused and nothing is appended", async () => {
  await withTempDir(async (dir) => {
    const { wal } = await open(dir);
    assert.throws(() => wal.append(undefined), TypeError);
    assert.throws(() => wal.append(10n), TypeError);
    assert.equal(wal.appended, 0);
    assert.deepEqual(wal.position, { segment: 0, offset: 0 });
    wal.append("fine");
    await wal.close();
    const again = await open(dir);
    assert.deepEqual([...again.records], ["fine"]);
    await again.wal.close();
  });
});

Deno.test("wal: an unknown fsync mode or a tiny segment size is refused", async () => {
  await withTempDir(async (dir) => {
    await assert.rejects(
      WriteAheadLog.open(dir, { fsync: "sometimes" as FsyncMode }),
      TypeError,
    );
    await assert.rejects(
      WriteAheadLog.open(dir, { fsync: "batch", segmentBytes: 100 }),
      RangeError,
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

Deno.test("wal: never two fdatasyncs of segments at once, across many event-loop turns", async () => {
  await withTempDir(async (dir) => {
    let running = 0;
    let maxRunning = 0;
    let calls = 0;
    const io = hookedIo({
      async segmentSyncData(original) {
        calls++;
        running++;
        maxRunning = Math.max(maxRunning, running);
        try {
          await original();
        } finally {
          running--;
        }
      },
    });
    {
      const { wal } = await open(dir, "batch", { io });
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
      assert.ok(wal.stats.segments > 1, "rolled over while syncing");
    }
    assert.equal(maxRunning, 1);
    assert.ok(calls >= 1 && calls < 200, `${calls} fdatasyncs`);
  });
});

Deno.test("wal: after a failed fdatasync the log refuses everything and close reports it", async () => {
  await withTempDir(async (dir) => {
    const { wal } = await open(dir);
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

Deno.test("wal: 'always': a failed directory fsync for a new segment fails the log", async () => {
  await withTempDir(async (dir) => {
    const { wal } = await open(dir, "always");
    const proto = Deno.FsFile.prototype;
    const original = proto.syncSync;
    proto.syncSync = () => {
      throw new Error("simulated EIO");
    };
    try {
      assert.throws(() => wal.append("first"), /failed: simulated EIO/);
    } finally {
      proto.syncSync = original;
    }
    assert.equal(wal.appended, 0, "a record that was not written is not counted");
    assert.equal(wal.synced, 0);
    assert.throws(() => wal.append("second"), /failed: simulated EIO/);
    await wal.close(); // nothing counted as appended was lost: the failure was reported already
  });
});

Deno.test("wal: a record refused by the check is refused when read, on every open, and never cut", async () => {
  await withTempDir(async (dir) => {
    const path = await writeLog(dir, [{ ok: 1 }, "not a record of ours"], "always");
    const end = frameBytes({ ok: 1 }) + frameBytes("not a record of ours");
    const bytes = Deno.readFileSync(path);
    bytes.set([1, 2, 3], end); // a torn tail, after the sync mark: never acknowledged
    Deno.writeFileSync(path, bytes);
    const check = (record: unknown) => {
      if (typeof record !== "object") throw new Error("not a record of ours");
    };
    for (const time of ["first", "second"]) {
      const { wal, records } = await open(dir, "always", { check });
      try {
        assert.deepEqual(records.at(0), { ok: 1 }, time);
        assert.throws(() => [...records], /not a record of ours/, time);
      } finally {
        await wal.close();
      }
      // Its checksum holds: it is what was written, kept for whoever looks into it.
      assert.deepEqual(Deno.readFileSync(path).subarray(0, end), bytes.subarray(0, end), time);
    }
  });
});

Deno.test("wal: what the check returns is kept instead of the record; undefined keeps it", async () => {
  await withTempDir(async (dir) => {
    await writeLog(dir, [{ i: 1 }, { i: 2 }, { i: 3 }], "always");
    const seen: number[] = [];
    const check = (record: unknown, index: number) => {
      seen.push(index);
      const i = (record as { i: number }).i;
      return i === 2 ? undefined : { checked: i };
    };
    const { wal, records } = await open(dir, "always", { check });
    assert.deepEqual(seen, [], "records are checked as they are read");
    assert.deepEqual([...records], [{ checked: 1 }, { i: 2 }, { checked: 3 }]);
    assert.deepEqual(seen, [0, 1, 2]);
    await wal.close();
  });
});

Deno.test("wal: damage to the last synced record is refused: the sync mark says it was durable", async () => {
  await withTempDir(async (dir) => {
    const path = await writeLog(dir, [{ i: 1 }, { i: 2 }, { i: 3 }]);
    const lastAt = frameBytes({ i: 1 }) + frameBytes({ i: 2 });
    const bytes = Deno.readFileSync(path);
    bytes[lastAt + RECORD_HEADER_BYTES + 2] ^= 0x04;
    Deno.writeFileSync(path, bytes);
    await assertCorrupt(dir, (e) => {
      assert.equal(e.offset, lastAt);
      assert.match(e.message, /reported durable up to byte \d+ \(wal-synced\.mark\)/);
    });
    assert.deepEqual(Deno.readFileSync(path), bytes, "nothing cut");
  });
});

Deno.test("wal: a reordered tail after the sync mark is cut although a valid record follows", async () => {
  await withTempDir(async (dir) => {
    const path = await writeLog(dir, ["a", "b"]);
    const end = frameBytes("a") + frameBytes("b");
    // A power loss wrote the page holding a later record but not the one before it.
    const bytes = Deno.readFileSync(path);
    bytes.set(binaryFrame("d"), end + 64);
    Deno.writeFileSync(path, bytes);

    // Without the mark (a log of the older format) that is refused: it might be damage.
    const markPath = join(dir, SYNC_MARK_FILE);
    const mark = Deno.readFileSync(markPath);
    Deno.removeSync(markPath);
    await assert.rejects(open(dir), /a valid record follows at byte offset/);
    Deno.writeFileSync(markPath, mark);

    const opened = await open(dir);
    assert.deepEqual([...opened.records], ["a", "b"]);
    assert.equal(opened.tornTail?.offset, end);
    assert.match(opened.tornTail?.reason ?? "", /bad magic number 0x00000000/);
    assert.equal(fileSize(path), end, "cut at the first bad record");
    await opened.wal.close();
  });
});

Deno.test("wal: a segment shorter than the sync mark is refused", async () => {
  await withTempDir(async (dir) => {
    const path = await writeLog(dir, ["a", "b"]);
    Deno.truncateSync(path, frameBytes("a"));
    await assertCorrupt(dir, (e) => assert.match(e.message, /acknowledged records are missing/));
    Deno.removeSync(path);
    await assert.rejects(open(dir), /log segment 0 is missing, but the log was reported durable/);
  });
});

Deno.test("wal mark: the valid slot with the highest update wins; a torn slot falls back", () => {
  const bytes = new Uint8Array(2 * MARK_SLOT_BYTES);
  assert.equal(decodeMark(bytes), null, "never written");
  bytes.set(encodeMarkSlot(4, { segment: 2, offset: 100 }), 0);
  bytes.set(encodeMarkSlot(5, { segment: 2, offset: 300 }), MARK_SLOT_BYTES);
  assert.deepEqual(decodeMark(bytes), { segment: 2, offset: 300 });
  bytes.set(encodeMarkSlot(6, { segment: 3, offset: 0 }), 0);
  assert.deepEqual(decodeMark(bytes), { segment: 3, offset: 0 });
  bytes[10] ^= 0x10; // update 6 torn: back to update 5
  assert.deepEqual(decodeMark(bytes), { segment: 2, offset: 300 });
  bytes[MARK_SLOT_BYTES + 20] ^= 0x10;
  assert.equal(decodeMark(bytes), null, "no valid slot: no mark");
});

/** A record larger than a segment many times over, as a replica's install with a snapshot is. */
function largeRecord(n: number): unknown {
  return { r: "accept", state: Array.from({ length: n }, (_, i) => [`key-${i}`, "v".repeat(100)]) };
}

Deno.test("wal: a large record goes as a group of records and is read back as one", async () => {
  await withTempDir(async (dir) => {
    const big = largeRecord(20_000);
    const { wal } = await open(dir);
    assert.equal(wal.append({ i: 1 }), 1);
    assert.equal(wal.appendLarge(big), 2);
    assert.equal(wal.append({ i: 3 }), 3);
    await wal.close();
    // More than one record of the group: the state is not one string on disk either.
    const frames = [...groupRecords(big)].map((parts) => concatBytes(parts));
    assert.ok(frames.length >= 3, `${frames.length} records`);
    const again = await open(dir);
    assert.deepEqual([...again.records], [{ i: 1 }, big, { i: 3 }]);
    assert.equal(again.tornTail, null);
    await again.wal.close();
  });
});

Deno.test("wal: a large record's group encoded ahead is appended as that record", async () => {
  for (const mode of ["batch", "always"] as const) {
    await withTempDir(async (dir) => {
      const big = largeRecord(20_000);
      const { wal } = await open(dir, mode);
      wal.append({ i: 1 });
      assert.equal(wal.appendGroup([...groupRecords(big)]), 2);
      wal.append({ i: 3 });
      if (mode === "always") assert.equal(wal.synced, 3, "written and synced at once");
      await wal.close();
      const again = await open(dir, mode);
      assert.deepEqual([...again.records], [{ i: 1 }, big, { i: 3 }], mode);
      assert.equal(again.tornTail, null);
      await again.wal.close();
    });
  }
});

Deno.test("wal: a large record with no encoding appends nothing, not a group cut short", async () => {
  await withTempDir(async (dir) => {
    const { wal } = await open(dir);
    wal.append({ i: 1 });
    assert.throws(() => wal.appendLarge({ r: "accept", state: [1n] }), TypeError);
    assert.equal(wal.append({ i: 2 }), 2, "numbered as if the refused record never came");
    await wal.close();
    const again = await open(dir);
    assert.deepEqual([...again.records], [{ i: 1 }, { i: 2 }]);
    assert.equal(again.tornTail, null);
    await again.wal.close();
  });
});

Deno.test("wal: one sync of many records is written in joined runs, in order", async () => {
  await withTempDir(async (dir) => {
    const MiB = 1024 * 1024;
    const { wal } = await open(dir, "batch", { segmentBytes: MiB });
    const small = (i: number) => ({ i, pad: "p".repeat(200) });
    const expected: unknown[] = [];
    for (let i = 0; i < 3000; i++) expected.push(small(i));
    expected.push(largeRecord(20_000));
    for (let i = 3000; i < 6000; i++) expected.push(small(i));
    for (const [n, record] of expected.entries()) {
      if (n === 3000) wal.appendLarge(record);
      else wal.append(record);
    }
    await wal.sync();
    // About 1.3 MB of small records and a 2.3 MB group across segments of 1 MiB: more than one
    // write, far fewer than one per record.
    const { writes, segments } = wal.stats;
    assert.ok(writes > segments && writes < 100, `${writes} writes, ${segments} segments`);
    await wal.close();
    const again = await open(dir, "batch", { segmentBytes: MiB });
    assert.deepEqual([...again.records], expected);
    assert.equal(again.tornTail, null);
    await again.wal.close();
  });
});

Deno.test("wal: a group cut short after the sync mark is a torn tail, cut off on disk", async () => {
  await withTempDir(async (dir) => {
    await writeLog(dir, [{ i: 1 }]);
    // The process died while writing a large record into the next segment: its last record of
    // the group never reached the disk (and nothing of it was synced: the mark is before it).
    const frames = [...groupRecords(largeRecord(20_000), 64 * 1024)].map((parts) =>
      concatBytes(parts)
    );
    assert.ok(frames.length > 3);
    const next = segmentPath(dir, listSegments(dir, DENO_WAL_IO).at(-1)! + 1);
    Deno.writeFileSync(next, concatBytes(frames.slice(0, -1)));
    const first = await open(dir);
    assert.deepEqual([...first.records], [{ i: 1 }]);
    assert.equal(first.tornTail?.file, next);
    assert.equal(first.tornTail?.offset, 0);
    assert.match(first.tornTail?.reason ?? "", /cut short/);
    assert.equal(fileSize(next), 0, "the unfinished group is cut off");
    first.wal.append({ i: 2 });
    await first.wal.close();
    const second = await open(dir);
    assert.equal(second.tornTail, null);
    assert.deepEqual([...second.records], [{ i: 1 }, { i: 2 }]);
    await second.wal.close();
  });
});

Deno.test("wal: a group with a record that is no piece of it is corruption", async () => {
  await withTempDir(async (dir) => {
    const { wal } = await open(dir);
    wal.appendLarge(largeRecord(20_000));
    await wal.close();
    const segments = listSegments(dir, DENO_WAL_IO).filter((n) =>
      fileSize(segmentPath(dir, n)) > 0
    );
    // Replace the group's last document (in the last segment holding records) by another record.
    const last = segmentPath(dir, segments.at(-1)!);
    const bytes = Deno.readFileSync(last);
    const length = new DataView(bytes.buffer).getUint32(4);
    assert.ok(RECORD_HEADER_BYTES + length <= bytes.length);
    // Of the same length (the sync mark covers the whole group), with a valid checksum.
    const stranger = encodeRecord(new TextEncoder().encode('{"i":1}'.padEnd(length, " ")));
    Deno.writeFileSync(last, concatBytes([stranger, bytes.subarray(RECORD_HEADER_BYTES + length)]));
    await assertCorrupt(
      dir,
      (e) => assert.match(e.message, /not a valid piece of the group of records/),
    );
  });
});

Deno.test("wal: reading the records in order reports the bytes read, now and then and at the end", async () => {
  await withTempDir(async (dir) => {
    const n = 2 * READ_REPORT_EVERY + 100;
    const records = Array.from({ length: n }, (_, i) => ({ i }));
    const big = { big: "b".repeat(3 * SMALL) }; // a group of records (one large record)
    const { wal } = await open(dir, "never", { segmentBytes: 64 * 1024 });
    records.forEach((r, i) => i === 7 ? wal.appendLarge(big) : wal.append(r));
    await wal.close();
    const reports: number[] = [];
    const opened = await open(dir, "never", {
      segmentBytes: 64 * 1024,
      onRead: (bytes: number) => reports.push(bytes),
    });
    try {
      // Every byte of the segments' records: their valid prefixes, back to back.
      const segments = listSegments(dir, DENO_WAL_IO).map((k) =>
        Deno.readFileSync(segmentPath(dir, k))
      );
      const valid = segments.reduce(
        (sum, b) => sum + scanRecordPrefix(b, { zeroPadding: true }).validBytes,
        0,
      );
      assert.equal(opened.bytes, valid);
      assert.deepEqual(reports, [], "nothing read yet");
      assert.deepEqual(opened.records.at(7), big);
      assert.deepEqual(reports, [], "an out-of-order read reports nothing");
      const read = [...opened.records];
      assert.equal(read.length, n);
      assert.equal(reports.length, 3, JSON.stringify(reports));
      assert.ok(reports[0] < reports[1] && reports[1] < reports[2], JSON.stringify(reports));
      assert.equal(reports[2], opened.bytes, "the last report is every byte");
      [...opened.records];
      assert.equal(reports.length, 3, "a second reading reports nothing more");
    } finally {
      await opened.wal.close();
    }
  });
});
