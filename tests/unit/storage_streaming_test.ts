import assert from "node:assert/strict";
import { join } from "node:path";
import { LoadProgress } from "../../src/runtime/load_progress.ts";
import { concatBytes } from "../../src/kv/bytes.ts";
import {
  readSnapshotFile,
  writeSnapshotFile,
  writeSnapshotFileStreaming,
} from "../../src/storage/snapshot_file.ts";
import { groupRecords } from "../../src/storage/record_groups.ts";
import { CorruptionError, encodeRecord } from "../../src/storage/record_codec.ts";
import {
  checkLogRecord,
  DiskStorage,
  type DiskStorageOptions,
} from "../../src/runtime/disk_storage.ts";
import { frameFromWire, msgsToWire } from "../../src/net/peer_codec.ts";
import { PieceAssembler, streamFrames } from "../../src/net/peer_stream.ts";
import { acceptRecordOf } from "../../src/core/replica.ts";
import type { DurableSnapshot, Install, PeerMessage, PersistRecord } from "../../src/core/types.ts";
import { SILENT } from "../../src/log/logger.ts";
import { logTo } from "../support/log_capture.ts";
import type { LogRecord } from "../../src/log/format.ts";
import { MiB, SLOW_FSYNC_MS, SNAPSHOT_LOG_MIN_BYTES } from "../../src/limits.ts";

/** A data directory's options for these tests: replica 1 of cluster c1, fsync batch, silent. */
function diskOptions(dir: string, more: Partial<DiskStorageOptions> = {}): DiskStorageOptions {
  return { dir, cluster: "c1", replica: 1, fsync: "batch", log: SILENT, ...more };
}

Deno.test("streaming snapshot: same file as the one-shot writer, read back intact", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const value = {
      a: [1, 2, 3],
      s: "x".repeat(50_000),
      m: Array.from({ length: 20_000 }, (_, i) => [`key-${i}`, "\xff\x00".repeat(i % 7)]),
    };
    const streamed = join(dir, "streamed.bin");
    const direct = join(dir, "direct.bin");
    await writeSnapshotFileStreaming(streamed, value);
    writeSnapshotFile(direct, value);
    assert.deepEqual(await Deno.readFile(streamed), await Deno.readFile(direct));
    assert.deepEqual(readSnapshotFile(streamed), value);
    const bytes = await Deno.readFile(streamed);
    bytes[bytes.length - 10] ^= 1;
    await Deno.writeFile(streamed, bytes);
    assert.throws(() => readSnapshotFile(streamed), CorruptionError);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("snapshot file: many records, none larger than a piece; damage of any kind refused", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const value = { keys: Array.from({ length: 5000 }, (_, i) => [`k${i}`, "v".repeat(100)]) };
    const records = [...groupRecords(value, 4096)].map((parts) => concatBytes(parts));
    assert.ok(records.length > 100, `only ${records.length} records`);
    assert.ok(records.every((r) => r.length < 4096 + 512), "a record far over the piece size");
    const path = join(dir, "snapshot.bin");
    const write = (rs: Uint8Array[]) => Deno.writeFileSync(path, concatBytes(rs));
    write(records);
    assert.deepEqual(readSnapshotFile(path), value);
    // The last record missing: the value is incomplete.
    write(records.slice(0, -1));
    assert.throws(() => readSnapshotFile(path), /ends before its value is complete/);
    // A record more after the end.
    write([...records, records[records.length - 1]]);
    assert.throws(() => readSnapshotFile(path), /after the end of the snapshot/);
    // Records swapped: a batch for a hole before it was announced, or an overfilled hole.
    write([records[0], records[2], records[1], ...records.slice(3)]);
    assert.throws(() => readSnapshotFile(path), CorruptionError);
    // A valid record whose payload is not a piece.
    write([records[0], encodeRecord(new TextEncoder().encode('{"nope":1}'))]);
    assert.throws(() => readSnapshotFile(path), /not a valid piece/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("snapshot file: an older release's single-record file is still read", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const value = { map: [["k", "v"]], clients: [] };
    const path = join(dir, "snapshot.bin");
    Deno.writeFileSync(path, encodeRecord(new TextEncoder().encode(JSON.stringify(value))));
    assert.deepEqual(readSnapshotFile(path), value);
    // Two records without the group header are damage.
    const one = encodeRecord(new TextEncoder().encode(JSON.stringify(value)));
    Deno.writeFileSync(path, concatBytes([one, one]));
    assert.throws(() => readSnapshotFile(path), /no group header/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("disk storage: records appended while a snapshot is written survive the log swap", async () => {
  const dir = await Deno.makeTempDir();
  const options = diskOptions(dir);
  const entry = (seq: number): PersistRecord => ({
    r: "entry",
    entry: { view: 3, ts: seq, origin: 1, seq, cmd: { op: { argv: ["SET", "k", "v"], time: 0 } } },
  });
  const snapshot: DurableSnapshot = {
    snapshot: { index: 2, last: null, state: { map: [["k", "v"]], clients: [] } },
    view: 3,
    members: [1, 2, 3],
    promised: 3,
    holdback: [],
  };
  try {
    const storage = await DiskStorage.open(options);
    storage.append(entry(1));
    storage.append(entry(2));
    await storage.sync();
    storage.writeSnapshot(snapshot);
    storage.append(entry(3)); // while the snapshot is being written
    storage.writeSnapshot(snapshot); // skipped: one is in progress
    await storage.snapshotIdle();
    storage.append(entry(4));
    await storage.sync();
    await storage.close();
    const reports: [number, number][] = [];
    const progress = new LoadProgress((loaded, total) => reports.push([loaded, total]));
    const reopened = await DiskStorage.open({ ...options, progress });
    const recovered = reopened.takeRecovered();
    assert.deepEqual(recovered.snapshot, snapshot);
    // Loading progress: nothing yet, of the snapshot file (known before it is read); half of it
    // once read, record by record; then of the log's records too.
    const snapshotFile = Deno.statSync(join(dir, "snapshot.bin")).size;
    const half = Math.floor(snapshotFile / 2);
    assert.deepEqual(reports[0], [0, snapshotFile]);
    const reads = reports.slice(1, -1);
    assert.ok(reads.length >= 1, "the read of the snapshot file is reported");
    assert.ok(reads.every(([, t]) => t === snapshotFile));
    assert.deepEqual(reads.map(([l]) => l), reads.map(([l]) => l).sort((a, b) => a - b));
    assert.deepEqual(reads.at(-1), [half, snapshotFile], "half of it once read");
    const [loaded, total] = reports.at(-1)!;
    assert.equal(loaded, half, "no key restored yet");
    assert.ok(total > snapshotFile, `${total} bytes to load, the snapshot file ${snapshotFile}`);
    // Restoring the snapshot: that share of the other half of its bytes.
    progress.restored(1, 2);
    assert.deepEqual(reports.at(-1), [half + Math.floor((snapshotFile - half) / 2), total]);
    assert.deepEqual(
      [...recovered.records].map((r) => r.r === "entry" ? r.entry.seq : -1),
      [3, 4],
      "the log holds exactly what came after the snapshot",
    );
    assert.deepEqual(reports.at(-1), [total, total], "all of it once the records are read");
    await reopened.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * A state of 20,000 keys of `value` that counts how often it is serialized (`JSON.stringify`
 * calls its marker's `toJSON` each time; the marker reads back as "marker").
 */
function countedState(value: string): { state: Record<string, unknown>; serialized: () => number } {
  let serialized = 0;
  const marker = { toJSON: () => (serialized++, "marker") };
  const state = { map: Array.from({ length: 20_000 }, (_, i) => [`key-${i}`, value]), marker };
  return { state, serialized: () => serialized };
}

Deno.test("disk storage: an install encoded ahead, a piece at a time, is what its append writes", async () => {
  const dir = await Deno.makeTempDir();
  const options = diskOptions(dir);
  const { state, serialized } = countedState("v".repeat(100));
  const accept = (view: number, install: Install): PersistRecord => ({
    r: "accept",
    view,
    members: [1, 2, 3],
    learners: [],
    install,
  });
  const install: Install = { snapshot: { index: 7, last: null, state }, from: 8, entries: [] };
  const other: Install = { snapshot: { index: 7, last: null, state }, from: 8, entries: [] };
  try {
    const storage = await DiskStorage.open(options);
    const entry: PersistRecord = {
      r: "entry",
      entry: {
        view: 3,
        ts: 1,
        origin: 1,
        seq: 1,
        cmd: { op: { argv: ["SET", "k", "v"], time: 0 } },
      },
    };
    assert.deepEqual([...storage.encodingAhead(entry)], [], "nothing to encode ahead");
    const steps = [...storage.encodingAhead(accept(5, install))].length;
    assert.ok(steps >= 3, `${steps} steps: the 2.3 MB state is encoded a piece at a time`);
    assert.equal(serialized(), 1);
    storage.append(accept(5, install));
    assert.equal(serialized(), 1, "the append wrote the bytes encoded ahead");
    // Encoded ahead for another record (view 5, not 6; another install object): encoded again.
    for (const _ of storage.encodingAhead(accept(5, other)));
    storage.append(accept(6, other));
    assert.equal(serialized(), 3);
    storage.append(accept(7, install));
    assert.equal(serialized(), 4, "bytes encoded ahead are used once");
    // A state without an encoding: encoding it ahead stops without a throw and keeps nothing, so
    // its append encodes it again and refuses it.
    const bad: Install = {
      snapshot: { index: 7, last: null, state: { n: 1n } },
      from: 8,
      entries: [],
    };
    assert.doesNotThrow(() => [...storage.encodingAhead(accept(8, bad))]);
    assert.throws(() => storage.append(accept(8, bad)), TypeError);
    await storage.sync();
    await storage.close();
    const reopened = await DiskStorage.open(options);
    const read = { ...state, marker: "marker" };
    assert.deepEqual([...reopened.takeRecovered().records], [
      accept(5, { ...install, snapshot: { index: 7, last: null, state: read } }),
      accept(6, { ...other, snapshot: { index: 7, last: null, state: read } }),
      accept(7, { ...install, snapshot: { index: 7, last: null, state: read } }),
    ]);
    await reopened.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

type NewView = Extract<PeerMessage, { type: "newview" }>;

/** `msgs` streamed in pieces of 64 KiB and joined again: the messages and their documents. */
function streamed(msgs: PeerMessage[]): { msgs: PeerMessage[]; documents: Uint8Array[] } {
  const assembler = new PieceAssembler();
  let whole: unknown;
  for (const piece of streamFrames(msgsToWire(msgs), 64 * 1024)) whole = assembler.push(piece);
  const frame = frameFromWire(whole);
  assert.equal(frame.kind, "msgs");
  return { msgs: frame.msgs, documents: assembler.takeDocuments()! };
}

Deno.test("disk storage: an install that came streamed is logged as the documents it came in", async () => {
  const dir = await Deno.makeTempDir();
  const options = diskOptions(dir);
  const { state, serialized } = countedState("v\xff\x00".repeat(40));
  const sent: NewView = {
    type: "newview",
    view: 9,
    ts: 4,
    members: [1, 2, 3],
    learners: [4],
    install: {
      from: 2,
      entries: [{
        view: 8,
        ts: 3,
        origin: 2,
        seq: 1,
        cmd: { op: { argv: ["SET", "a", "b"], time: 5 } },
      }],
      snapshot: { index: 7, last: { view: 8, ts: 2, origin: 1 }, state },
    },
  };
  try {
    const { msgs: [received], documents } = streamed([sent]);
    assert.equal(serialized(), 1, "the sender serialized the state");
    assert.ok(documents.length >= 3, `${documents.length} documents`);
    const record = acceptRecordOf(received as NewView);
    const storage = await DiskStorage.open(options);
    const steps = [...storage.encodingAhead(record, documents)].length;
    assert.ok(steps >= 3, `${steps} steps: a record at a time`);
    storage.append(record);
    await storage.sync();
    await storage.close();
    assert.equal(serialized(), 1, "the receiver logged the documents, not the state encoded again");
    // The log holds the documents as they came, each the payload of a record.
    let logged = 0;
    for (const entry of Deno.readDirSync(dir)) {
      if (!entry.name.startsWith("wal-")) continue;
      const bytes = Deno.readFileSync(join(dir, entry.name));
      const text = new TextDecoder("latin1").decode(bytes);
      for (const doc of documents) {
        if (text.includes(new TextDecoder("latin1").decode(doc))) logged++;
      }
    }
    assert.equal(logged, documents.length, "every document is in the log byte for byte");
    const reopened = await DiskStorage.open(options);
    assert.deepEqual([...reopened.takeRecovered().records], [record]);
    assert.equal(serialized(), 1);
    await reopened.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("disk storage: a logged peer frame must hold exactly one NEWVIEW carrying a state", () => {
  const install = (snapshot: boolean): Install => ({
    from: 1,
    entries: [],
    ...(snapshot ? { snapshot: { index: 3, last: null, state: { keys: [1, 2] } } } : {}),
  });
  const newview = (snapshot = true): NewView => ({
    type: "newview",
    view: 5,
    ts: 1,
    members: [1, 2],
    install: install(snapshot),
  });
  const probe: PeerMessage = { type: "probe", view: 5, ts: 1, round: 1 };
  assert.deepEqual(
    checkLogRecord(msgsToWire([newview()]), 0, "dir"),
    { r: "accept", view: 5, members: [1, 2], learners: [], install: install(true) },
  );
  const refused: [unknown, RegExp][] = [
    [msgsToWire([newview(), newview()]), /exactly one NEWVIEW message carrying a state/],
    [msgsToWire([probe]), /exactly one NEWVIEW message carrying a state/],
    [msgsToWire([newview(false)]), /exactly one NEWVIEW message carrying a state/],
    [msgsToWire([]), /exactly one NEWVIEW message carrying a state/],
    [{ kind: "msgs", msgs: "x" }, /msgs/],
    [{ kind: "hello", from: 1, cluster: "c" }, /exactly one NEWVIEW/],
    [{ kind: "nonsense" }, /kind/],
  ];
  for (const [value, message] of refused) {
    assert.throws(() => checkLogRecord(value, 6, "dir"), (err: unknown) => {
      assert.ok(err instanceof CorruptionError, `${JSON.stringify(value)}: ${err}`);
      assert.match(err.message, /^dir: log record 7: /);
      assert.match(err.message, message);
      return true;
    });
  }
});

/** A log entry of about 250 bytes (a few fill a 4 KiB segment). */
const bigEntry = (seq: number): PersistRecord => ({
  r: "entry",
  entry: {
    view: 3,
    ts: seq,
    origin: 1,
    seq,
    cmd: { op: { argv: ["SET", "k", "v".repeat(200)], time: 0 } },
  },
});

/** A durable snapshot of `state` at `index`, in view 3 of replicas 1 to 3. */
const durableAt = (index: number, state: unknown): DurableSnapshot => ({
  snapshot: { index, last: null, state },
  view: 3,
  members: [1, 2, 3],
  promised: 3,
  holdback: [],
});

/** A snapshot at index 40 (after 40 {@link bigEntry}s). */
const snapshotAt40 = durableAt(40, { map: [["k", "v"]], clients: [] });

Deno.test("disk storage: a durable snapshot releases the segments before its log position", async () => {
  const dir = await Deno.makeTempDir();
  const options = diskOptions(dir, { segmentBytes: 4096 });
  const entry = bigEntry;
  const snapshot = snapshotAt40;
  const segments = () => [...Deno.readDirSync(dir)].filter((e) => /^wal-\d+\.log$/.test(e.name));
  try {
    const storage = await DiskStorage.open(options);
    for (let seq = 1; seq <= 40; seq++) storage.append(entry(seq));
    await storage.sync();
    const before = segments().length;
    assert.ok(before >= 3, `${before} segments`);
    storage.writeSnapshot(snapshot);
    await storage.snapshotIdle();
    assert.equal(segments().length, 1, "only the segment being written is left");
    storage.append(entry(41));
    await storage.sync();
    const closing = storage.close();
    assert.equal(storage.close(), closing, "close is idempotent");
    await closing;
    const reopened = await DiskStorage.open(options);
    const recovered = reopened.takeRecovered();
    assert.deepEqual(recovered.snapshot, snapshot, "the log position is not part of it");
    assert.deepEqual(
      [...recovered.records].map((r) => r.r === "entry" ? r.entry.seq : -1),
      [41],
    );
    await reopened.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("disk storage: a data directory of the single-file format is read whole", async () => {
  const dir = await Deno.makeTempDir();
  const options = diskOptions(dir);
  const record: PersistRecord = { r: "promise", view: 9 };
  const snapshot: DurableSnapshot = {
    snapshot: { index: 5, last: null, state: { map: [], clients: [] } },
    view: 4,
    members: [1, 2],
    promised: 4,
    holdback: [],
  };
  try {
    // What the format before segments left: a snapshot without a log position, and wal.log.
    await (await DiskStorage.open(options)).close();
    writeSnapshotFile(join(dir, "snapshot.bin"), snapshot);
    Deno.writeFileSync(
      join(dir, "wal.log"),
      encodeRecord(new TextEncoder().encode(JSON.stringify(record))),
    );
    const storage = await DiskStorage.open(options);
    const recovered = storage.takeRecovered();
    assert.deepEqual(recovered.snapshot, snapshot);
    assert.deepEqual([...recovered.records], [record]);
    assert.throws(() => storage.takeRecovered(), /taken already/, "handed over once");
    await storage.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("disk storage: a snapshot after the log failed is harmless and close still unlocks", async () => {
  const dir = await Deno.makeTempDir();
  const lines: string[] = [];
  const options = diskOptions(dir, { log: logTo(lines) });
  const snapshot: DurableSnapshot = {
    snapshot: { index: 1, last: null, state: { map: [], clients: [] } },
    view: 1,
    members: [1],
    promised: 1,
    holdback: [],
  };
  const proto = Deno.FsFile.prototype;
  const original = proto.syncData;
  try {
    const storage = await DiskStorage.open(options);
    proto.syncData = () => Promise.reject(new Error("simulated EIO"));
    storage.append({ r: "promise", view: 1 });
    await assert.rejects(storage.sync(), /simulated EIO/);
    proto.syncData = original;
    storage.writeSnapshot(snapshot); // its release step meets the failed log
    await storage.snapshotIdle();
    await assert.rejects(storage.close(), /simulated EIO/);
    const again = await DiskStorage.open(options); // the lock was released
    assert.deepEqual(again.takeRecovered().snapshot, snapshot);
    await again.close();
  } finally {
    proto.syncData = original;
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("disk storage: a log record that is not ours is refused when recovery reads it, on every open", async () => {
  const dir = await Deno.makeTempDir();
  const options = diskOptions(dir);
  try {
    await (await DiskStorage.open(options)).close();
    const segment = join(dir, "wal-0000000000000000.log");
    const foreign = encodeRecord(new TextEncoder().encode('{"hello":1}'));
    Deno.writeFileSync(segment, new Uint8Array([...foreign, 9, 9, 9]));
    for (const time of ["first", "second"]) {
      const storage = await DiskStorage.open(options);
      try {
        const { records } = storage.takeRecovered();
        assert.throws(() => [...records], /log record 1: record: missing field "r"/, time);
      } finally {
        await storage.close();
      }
      // Its checksum holds: it is what was written, never cut (only the torn tail after it).
      const kept = Deno.readFileSync(segment).subarray(0, foreign.length);
      assert.deepEqual(kept, foreign, time);
    }
    // And the directory is not left locked.
    Deno.writeFileSync(segment, new Uint8Array(0));
    await (await DiskStorage.open(options)).close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/*
 * The log events of a data directory: `snapshot.written` with its index and size,
 * `log.truncated` when segments before the snapshot are deleted, `wal.slow_fsync` (warn) when a
 * sync takes more than SLOW_FSYNC_MS, and `recovery.done` on reopen.
 */
Deno.test("disk storage log events: snapshot written, log truncated, slow sync, recovery", async () => {
  const dir = await Deno.makeTempDir();
  const records: LogRecord[] = [];
  const options = diskOptions(dir, {
    segmentBytes: 4096,
    // Every event written (a loaded machine may have slow syncs of its own).
    log: logTo([], { records, rateLimit: { intervalMs: 0 } }),
  });
  const events = (name: string) => records.filter((r) => r.event === name);
  const proto = Deno.FsFile.prototype;
  const original = proto.syncData;
  try {
    const storage = await DiskStorage.open(options);
    for (let seq = 1; seq <= 40; seq++) storage.append(bigEntry(seq));
    await storage.sync();

    storage.writeSnapshot(snapshotAt40);
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
    storage.append(bigEntry(41));
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
      always.append(bigEntry(42));
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

Deno.test("disk storage: a log record is checked field by field when the log is read", async () => {
  const entry = (seq: number, key = "k"): PersistRecord => ({
    r: "entry",
    entry: { view: 3, ts: seq, origin: 1, seq, cmd: { op: { argv: ["SET", key, "v"], time: 0 } } },
  });
  const mark: PersistRecord = {
    r: "delivered",
    view: 3,
    index: 1,
    last: { view: 3, ts: 1, origin: 1 },
  };
  /** Opens a fresh data directory, logs `records`, and opens it again. */
  const reopen = async (records: unknown[]) => {
    const dir = await Deno.makeTempDir();
    const options = diskOptions(dir);
    try {
      const storage = await DiskStorage.open(options);
      for (const r of records) storage.append(r as PersistRecord);
      await storage.sync();
      await storage.close();
      const reopened = await DiskStorage.open(options);
      const recovered = [...reopened.takeRecovered().records];
      await reopened.close();
      return recovered;
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  };
  assert.deepEqual(await reopen([entry(1), mark]), [entry(1), mark]);
  // Records that pass their checksum but not the checks the wire's messages get: a sequence
  // number out of range, a key that is not a byte string, a mark without a stamp, a stray field.
  const refused: [unknown, RegExp][] = [
    [entry(0), /log record 3: record\.entry\.seq: expected an integer >= 1, got 0/],
    [entry(2, "\u0100"), /log record 3: record\.entry\.cmd\.op\.argv\[1\]: expected a byte/],
    [{ ...mark, last: null }, /log record 3: record\.last: expected a stamp, got null/],
    [{ r: "commit", view: 3, extra: 1 }, /log record 3: record: unknown field "extra"/],
    [{ r: "vote", view: 3 }, /log record 3: record\.r: expected a record kind, got "vote"/],
  ];
  for (const [bad, message] of refused) {
    await assert.rejects(() => reopen([entry(1), mark, bad]), CorruptionError);
    await assert.rejects(() => reopen([entry(1), mark, bad]), message);
  }
});

Deno.test("disk storage: a snapshot is due once the log after the last one takes 64 MiB and its size", async () => {
  const dir = await Deno.makeTempDir();
  const options = diskOptions(dir, { fsync: "never", segmentBytes: 16 * MiB });
  const value = "v".repeat(MiB);
  let seq = 0;
  const entry = (): PersistRecord => ({
    r: "entry",
    entry: {
      view: 3,
      ts: ++seq,
      origin: 1,
      seq,
      cmd: { op: { argv: ["SET", "k", value], time: 0 } },
    },
  });
  /** Appends 1 MiB records until the storage says a snapshot is due; how many it took. */
  const untilDue = (storage: DiskStorage, most: number) => {
    for (let n = 1; n <= most; n++) {
      storage.append(entry());
      if (storage.snapshotDue()) return n;
    }
    return Infinity;
  };
  try {
    const storage = await DiskStorage.open(options);
    assert.equal(storage.snapshotDue(), false);
    // No snapshot yet: due at 64 MiB of log. Segments count whole (a 16 MiB one holds fifteen of
    // these records and its unused end): 56 to 64 records.
    const first = untilDue(storage, 80);
    assert.ok(first >= SNAPSHOT_LOG_MIN_BYTES / MiB - 8 && first <= 64, `due after ${first}`);
    // Not due while one is written, nor after it: the log after it is empty.
    storage.writeSnapshot(durableAt(seq, { big: "x".repeat(100 * MiB) }));
    assert.equal(storage.snapshotDue(), false);
    await storage.snapshotIdle();
    assert.equal(storage.snapshotDue(), false);
    // This snapshot's file is 100 MiB: due once the log after it takes as much.
    const second = untilDue(storage, 130);
    assert.ok(second >= 90 && second <= 104, `due after ${second}`);
    await storage.sync();
    await storage.close();
    // Reopened, the log after the snapshot on disk still counts.
    const reopened = await DiskStorage.open(options);
    reopened.takeRecovered();
    assert.equal(reopened.snapshotDue(), true);
    await reopened.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
