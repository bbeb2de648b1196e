/**
 * End to end: durability on real replica processes and their real data directories.
 *
 * - **Snapshot catch-up.** With `--snapshot-every 50` a replica that was SIGKILLed while the
 *   others delivered hundreds of operations (far more than the 50..100 entries they keep in
 *   memory) is brought back by a snapshot in its NEWVIEW: its log holds the accepted install with
 *   a snapshot, it never delivers the missed operations one by one (`--verbose` would log each),
 *   and it serves every key written while it was down.
 * - **Log damage.** A replica's log segments, edited while it is down: a torn record after its
 *   last one (a write that was never synced, cut a few bytes short at the end of the file) and a
 *   record with a flipped bit there are truncated at start (logged, with the record's offset), the
 *   replica rejoins and serves every acknowledged write; a bit flip in a record in the middle of
 *   the log (before the point the log reported synced, `wal-synced.mark`) stops it with exit
 *   status 1 and a message naming the file and offset, before it listens, without changing the
 *   file.
 * - **Wrong data directory.** `--data-dir` of another replica, or a data directory of another
 *   cluster (another config file), is refused with exit status 2 and a message naming the owner;
 *   the directories are left untouched and still serve their own replicas afterwards.
 *
 * Record boundaries in the log segments come from the record framing of `src/storage/record_codec.ts`
 * ({@link scanRecords}), not from guessed offsets. The whole-cluster SIGKILL + restart case lives
 * in `faults_test.ts`.
 *
 * Sanitizers: off, because the replica child processes and their output pipes outlive single
 * async ops by design (the harness awaits them all in `stop()`).
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { clusterId, parseConfig } from "../../src/config/config.ts";
import type { DurableSnapshot, PersistRecord } from "../../src/core/types.ts";
import { RECORD_HEADER_BYTES, scanRecords } from "../../src/storage/record_codec.ts";
import { listSegments, segmentPath } from "../../src/storage/wal_segments.ts";
import { decodeRecordPayload } from "../../src/storage/wal.ts";
import { readSnapshotFile } from "../../src/storage/snapshot_file.ts";
import { joinGroups } from "../../src/storage/record_groups.ts";
import type { RecoveredRecord } from "../../src/storage/wal_recovery.ts";
import { checkLogRecord } from "../../src/runtime/disk_storage.ts";
import {
  configText,
  freePorts,
  NODE_PERMISSIONS,
  NODE_TS,
  RespTestClient,
  type TestCluster,
  withCluster,
} from "../support/cluster.ts";
import { readyLineId } from "../../src/log/format.ts";

/** Quick view changes, as in the other fault tests. */
const FAST_FAILOVER = ["--failure-timeout", "500"];
/** Per-request deadline: long enough for a view change to finish first. */
const CALL_TIMEOUT_MS = 10_000;

// ---------------------------------------------------------------------------------------------
// Helpers

/** Replica `id`'s data directory: the default `data/<id>` beside the cluster's config file. */
function dataDir(cluster: TestCluster, id: number): string {
  return join(cluster.dir, "data", String(id));
}

/** One record of a write-ahead log, located by the record framing. */
interface WalRecord {
  /** The segment file it is in. */
  file: string;
  /** Byte offset of the record's header in that file. */
  offset: number;
  /** Header + payload length in bytes (of a group's first record, for a large record). */
  size: number;
  /** The decoded payload. */
  record: PersistRecord;
  /** At or after the log position of the snapshot (what recovery reads). */
  live: boolean;
}

/** Every record of the log in data directory `dir`, in order, with the segment files' bytes. */
async function readWal(
  dir: string,
): Promise<{ files: Map<string, Uint8Array>; records: WalRecord[]; torn: boolean }> {
  const stored = readSnapshotFile(join(dir, "snapshot.bin")) as
    | { walFrom?: { segment: number; offset: number } }
    | undefined;
  const from = stored?.walFrom ?? { segment: 0, offset: 0 };
  const files = new Map<string, Uint8Array>();
  const records: WalRecord[] = [];
  let torn = false;
  const raw: RecoveredRecord[] = [];
  for (const n of listSegments(dir)) {
    const file = segmentPath(dir, n);
    const bytes = await Deno.readFile(file);
    files.set(file, bytes);
    const scan = scanRecords(bytes, file, { zeroPadding: true });
    let offset = 0;
    for (const payload of scan.payloads) {
      raw.push({ segment: n, offset, path: file, payload });
      offset += RECORD_HEADER_BYTES + payload.length;
    }
    assert.equal(offset, scan.validBytes, `${file}: record offsets do not add up`);
    torn ||= scan.tornTail !== null;
  }
  // A large record (an install with a snapshot) is a group of records: read back as one.
  const { values, unfinished } = joinGroups(raw);
  torn ||= unfinished !== undefined;
  for (const v of values) {
    const at = v.at;
    const size = RECORD_HEADER_BYTES + at.payload.length;
    // Checked and read as recovery reads it (an install logged as the peer frame it came in
    // stands for its accept record).
    const record = checkLogRecord(
      "value" in v ? v.value : decodeRecordPayload(at.payload, at.path, at.offset),
      records.length,
      dir,
    );
    const live = at.segment > from.segment ||
      (at.segment === from.segment && at.offset >= from.offset);
    records.push({ file: at.path, offset: at.offset, size, record, live });
  }
  return { files, records, torn };
}

/** `r` of every record, for messages. */
function kinds(records: WalRecord[]): string {
  return records.map((r) => r.record.r).join(",");
}

/** Sets every key of `pairs` through replica `id`, one after another; each must answer OK. */
async function writeAll(
  cluster: TestCluster,
  id: number,
  pairs: Iterable<[string, string]>,
): Promise<void> {
  const c = await RespTestClient.connect(cluster.clientPort(id));
  try {
    for (const [key, value] of pairs) {
      assert.equal(
        await c.call(["SET", key, value], CALL_TIMEOUT_MS),
        "OK",
        `SET ${key} via ${id}`,
      );
    }
  } finally {
    await c.close();
  }
}

/** Reads every key of `expected` from replica `id` itself and compares the values. */
async function readAll(
  cluster: TestCluster,
  id: number,
  expected: Map<string, string>,
): Promise<void> {
  const c = await RespTestClient.connect(cluster.clientPort(id));
  try {
    for (const [key, value] of expected) {
      assert.equal(await c.call(["GET", key], CALL_TIMEOUT_MS), value, `GET ${key} on ${id}`);
    }
  } finally {
    await c.close();
  }
}

/** `count` fresh key/value pairs named after `prefix`, added to `into` as well. */
function keys(prefix: string, count: number, into: Map<string, string>): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i < count; i++) out.set(`${prefix}-${i}`, `${prefix}-value-${i}`);
  for (const [k, v] of out) into.set(k, v);
  return out;
}

/** Output lines of replica `id` logged after position `from` of the cluster's log. */
function linesOf(cluster: TestCluster, id: number, from: number): string[] {
  return cluster.logs.slice(from).filter((l) => l.id === id).map((l) => l.text);
}

/** How a replica process that was expected to refuse to start ended. */
interface RefusedRun {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs replica `id` of the cluster as its own process (not through the harness, which would wait
 * for a ready line) with the config and extra arguments given, until it exits. A replica that
 * starts instead of refusing (prints its ready line) is SIGKILLed at once, as is one still running
 * after 15 s; the call then fails with its output. The process is always awaited.
 */
async function runRefusedNode(
  cluster: TestCluster,
  id: number,
  configPath: string,
  extra: string[],
): Promise<RefusedRun> {
  const args = ["run", ...NODE_PERMISSIONS, NODE_TS, String(id), configPath, ...extra];
  const child = new Deno.Command(Deno.execPath(), {
    args,
    cwd: cluster.dir,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let why: string | undefined;
  const kill = (reason: string) => {
    why ??= reason;
    try {
      child.kill("SIGKILL");
    } catch {
      // exited meanwhile
    }
  };
  const timer = setTimeout(() => kill("still running after 15 s"), 15_000);
  let stdout = "";
  let stderr = "";
  const pump = async (stream: ReadableStream<Uint8Array>, onText: (text: string) => void) => {
    for await (const text of stream.pipeThrough(new TextDecoderStream())) onText(text);
  };
  let status: Deno.CommandStatus;
  try {
    await Promise.all([
      pump(child.stdout, (text) => {
        stdout += text;
        if (stdout.split("\n").some((l) => readyLineId(l) === id)) kill("it started serving");
      }),
      pump(child.stderr, (text) => (stderr += text)),
    ]);
  } catch (err) {
    kill(`reading its output failed: ${err}`);
  } finally {
    status = await child.status;
    clearTimeout(timer);
  }
  cluster.note(
    `ran replica ${id} ${extra.join(" ")}: exit ${status.code}\n${stdout}${stderr}`,
  );
  if (why !== undefined) {
    assert.fail(`replica ${id} was expected to refuse to start: ${why}\n${stdout}${stderr}`);
  }
  return { code: status.code, stdout, stderr };
}

/** Every file of `dir` with its bytes, to show that something left it untouched. */
async function filesOf(dir: string): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>();
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isFile) out.set(entry.name, await Deno.readFile(join(dir, entry.name)));
  }
  return out;
}

/** Flips the lowest bit of the byte at `at` of a copy of `bytes`. */
function flipBit(bytes: Uint8Array, at: number): Uint8Array {
  const out = bytes.slice();
  out[at] ^= 0x01;
  return out;
}

/** The payload byte in the middle of `rec`. */
function payloadMiddle(rec: WalRecord): number {
  return rec.offset + RECORD_HEADER_BYTES + Math.floor((rec.size - RECORD_HEADER_BYTES) / 2);
}

// ---------------------------------------------------------------------------------------------
// (b) Snapshot catch-up

Deno.test({
  name: "e2e durability: a replica down for hundreds of deliveries catches up by snapshot",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const extraArgs = ["--snapshot-every", "50", "--verbose", ...FAST_FAILOVER];
    await withCluster({ replicas: 3, extraArgs }, async (cluster) => {
      const acked = new Map<string, string>();
      await writeAll(cluster, 3, keys("before", 20, acked));
      const { delivered: before } = await cluster.waitForAgreement({ minDelivered: 20 });

      assert.equal((await cluster.kill(3)).signal, "SIGKILL");
      await cluster.waitForView({ ids: [1, 2] });
      const down = new Map<string, string>();
      const batch = [...keys("down", 300, down)];
      for (const [k, v] of down) acked.set(k, v);
      // Two writers at once, one through each surviving replica.
      await Promise.all([
        writeAll(cluster, 1, batch.filter((_, i) => i % 2 === 0)),
        writeAll(cluster, 2, batch.filter((_, i) => i % 2 === 1)),
      ]);
      const { delivered: whileDown } = await cluster.waitForAgreement({
        ids: [1, 2],
        minDelivered: before + 300,
      });
      cluster.note(`delivered ${before} when replica 3 died, ${whileDown} before it returns`);
      assert.ok(whileDown - before > 100, `only ${whileDown - before} deliveries while down`);

      // Replica 1 snapshotted and truncated its log meanwhile.
      const snap = readSnapshotFile(join(dataDir(cluster, 1), "snapshot.bin")) as
        | DurableSnapshot
        | undefined;
      assert.ok(snap !== undefined, "replica 1 has no snapshot.bin");
      assert.ok(
        snap.snapshot.index > before + 50 && snap.snapshot.index <= whileDown,
        `replica 1's snapshot is at index ${snap.snapshot.index} (delivered ${before}..${whileDown})`,
      );
      const wal1 = await readWal(dataDir(cluster, 1));
      const entries1 = wal1.records.filter((r) => r.live && r.record.r === "entry").length;
      assert.ok(entries1 < 100, `replica 1's log still holds ${entries1} entries after snapshots`);

      const mark = cluster.logs.length;
      await cluster.restart(3);
      await cluster.waitForView({ ids: [1, 2, 3] });
      const agreed = await cluster.waitForAgreement({ ids: [1, 2, 3], minDelivered: whileDown });
      assert.equal(agreed.delivered, whileDown, "nothing was delivered after the writes");
      // How replica 3 caught up: its log holds the install it accepted, with a snapshot that
      // covers everything it missed (an install by log suffix would carry entries and no
      // snapshot, and the others no longer hold those entries anyway). Checked before anything
      // else is delivered: 50 more deliveries and replica 3 snapshots and empties its log.
      const wal3 = await readWal(dataDir(cluster, 3));
      const installs = wal3.records.flatMap((r) => r.record.r === "accept" ? [r.record] : []);
      const bySnapshot = installs.filter((a) => a.install.snapshot !== undefined);
      cluster.note(
        `replica 3's log: ${kinds(wal3.records)}; snapshot installs at ${
          bySnapshot.map((a) => a.install.snapshot!.index).join(",")
        }`,
      );
      assert.ok(
        bySnapshot.some((a) => a.install.snapshot!.index >= before + 300),
        `replica 3 accepted no install with a snapshot past index ${before + 300} ` +
          `(log records: ${kinds(wal3.records)})`,
      );
      // And it never delivered the missed operations one by one (--verbose logs each delivery).
      const deliverLine = / DEBUG replica 3 deliver: deliver #(\d+) /;
      const seen = () =>
        linesOf(cluster, 3, mark).flatMap((line) => {
          const m = deliverLine.exec(line);
          return m === null ? [] : [Number(m[1])];
        });
      const missed = seen().filter((i) => i > before && i <= whileDown);
      assert.deepEqual(missed, [], "replica 3 delivered missed operations one by one");

      // Every key written while it was down, read from replica 3 itself.
      await readAll(cluster, 3, acked);
      // The absence above means something only because replica 3 does log its own deliveries:
      // a few writes through it now are logged one by one, in order.
      const after = 5;
      await writeAll(cluster, 3, keys("after", after, acked));
      await cluster.waitFor(() => seen().includes(whileDown + after), {
        timeoutMs: 5000,
        message: `replica 3 to log the delivery of #${whileDown + after} (its last SET)`,
      });
      assert.deepEqual(
        seen().filter((i) => i > whileDown),
        Array.from({ length: after }, (_, i) => whileDown + 1 + i),
        "replica 3 logged its deliveries after the catch-up out of order or with gaps",
      );
      await cluster.waitForAgreement({ minDelivered: whileDown + after });
    });
  },
});

// ---------------------------------------------------------------------------------------------
// (c) Log damage

/**
 * Kills replica 2 after writes through replicas 1 and 3, checks its log has several records of
 * more than one kind, and returns the log.
 */
async function stopReplica2(
  cluster: TestCluster,
  acked: Map<string, string>,
  prefix: string,
): Promise<Awaited<ReturnType<typeof readWal>>> {
  await writeAll(cluster, 1, keys(`${prefix}-a`, 5, acked));
  await writeAll(cluster, 3, keys(`${prefix}-b`, 5, acked));
  await cluster.waitForAgreement({ ids: [1, 2, 3] });
  assert.equal((await cluster.kill(2)).signal, "SIGKILL");
  const wal = await readWal(dataDir(cluster, 2));
  cluster.note(`replica 2's log (${wal.files.size} segments): ${kinds(wal.records)}`);
  assert.equal(wal.torn, false, "replica 2's log already ends with a torn record");
  assert.ok(wal.records.length >= 10, `only ${wal.records.length} records in replica 2's log`);
  assert.ok(wal.records.some((r) => r.record.r === "entry"), "no entry record");
  assert.ok(wal.records.some((r) => r.record.r !== "entry"), "no view-change record");
  return wal;
}

/**
 * Restarts replica 2 on its damaged log and checks that it logged the truncation of the record
 * at `offset`, kept the log before it, rejoins, converges and serves every acknowledged write
 * (including some written while it was down).
 */
async function restartAfterTornTail(
  cluster: TestCluster,
  acked: Map<string, string>,
  prefix: string,
  path: string,
  original: Uint8Array,
  offset: number,
  reason: RegExp,
): Promise<void> {
  await cluster.waitForView({ ids: [1, 3] });
  await writeAll(cluster, 1, keys(`${prefix}-down`, 5, acked));
  const mark = cluster.logs.length;
  await cluster.restart(2);
  const truncated = linesOf(cluster, 2, mark).find((l) =>
    l.includes(`recovery: cut off a torn record at byte ${offset} of ${path}`)
  );
  assert.ok(
    truncated !== undefined,
    `replica 2 did not log the truncation at byte ${offset}:\n${
      linesOf(cluster, 2, mark).join("\n")
    }`,
  );
  assert.match(truncated, reason);
  await cluster.waitForView({ ids: [1, 2, 3] });
  await cluster.waitForAgreement({ ids: [1, 2, 3] });
  await readAll(cluster, 2, acked);
  // Only the torn record went: what came before it is still the start of the log.
  const now = await Deno.readFile(path);
  assert.ok(now.length >= offset, "the log is shorter than its valid prefix");
  assert.deepEqual(now.subarray(0, offset), original.subarray(0, offset));
}

Deno.test({
  name: "e2e durability: a restarted replica re-delivers its log up to its last delivery mark",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    // No snapshot while the test writes: everything is in the log, as a long tail would be.
    const extraArgs = ["--snapshot-every", "100000", ...FAST_FAILOVER];
    await withCluster({ replicas: 3, extraArgs }, async (cluster) => {
      const acked = new Map<string, string>();
      const batch = [...keys("marked", 2_600, acked)];
      // Two writers at once, through two replicas.
      await Promise.all([
        writeAll(cluster, 1, batch.filter((_, i) => i % 2 === 0)),
        writeAll(cluster, 2, batch.filter((_, i) => i % 2 === 1)),
      ]);
      const { delivered } = await cluster.waitForAgreement({ minDelivered: 2_600 });
      // Replicas 1 and 2 stop answering (SIGSTOP): replica 3 restarts alone, with no view to join,
      // so INFO shows what its recovery delivered from its own log.
      cluster.pause(1);
      cluster.pause(2);
      assert.equal((await cluster.kill(3)).signal, "SIGKILL");
      const wal = await readWal(dataDir(cluster, 3));
      const marks = wal.records.flatMap((r) => r.record.r === "delivered" ? [r.record] : []);
      cluster.note(`replica 3's delivery marks: ${marks.map((m) => m.index).join(",")}`);
      assert.ok(marks.length >= 2, `${marks.length} delivery marks for ${delivered} deliveries`);
      const last = marks[marks.length - 1].index;
      assert.ok(last > delivered - 1_000 - 100, `last mark at ${last} of ${delivered}`);
      await cluster.restart(3);
      const info = await cluster.info(3);
      assert.equal(info.state, "joining");
      assert.equal(Number(info.delivered), last, "recovery re-delivered up to the last mark");
      assert.equal(Number(info.holdback), delivered - last, "the rest waits in the holdback");

      cluster.resume(1);
      cluster.resume(2);
      await cluster.waitForView({ ids: [1, 2, 3] });
      await cluster.waitForAgreement({ ids: [1, 2, 3], minDelivered: delivered });
      await readAll(cluster, 3, acked);
    });
  },
});

Deno.test({
  name: "e2e durability: a damaged last log record is truncated; damage in the middle stops it",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await withCluster({ replicas: 3, extraArgs: FAST_FAILOVER }, async (cluster) => {
      const acked = new Map<string, string>();

      // 1. A torn record after the last one (a crash while writing a record that was never
      //    synced): a copy of the last record, and the segment ends 3 bytes short of its end.
      {
        const wal = await stopReplica2(cluster, acked, "torn");
        const last = wal.records.at(-1)!;
        const bytes = wal.files.get(last.file)!;
        const end = last.offset + last.size;
        const cut = end + last.size - 3;
        const torn = new Uint8Array(cut);
        torn.set(bytes.subarray(0, end));
        torn.set(bytes.subarray(last.offset, end - 3), end);
        await Deno.writeFile(last.file, torn);
        cluster.note(`wrote a torn record at ${end} of ${last.file}, cut it to ${cut} bytes`);
        await restartAfterTornTail(
          cluster,
          acked,
          "torn",
          last.file,
          bytes,
          end,
          /extends past the end of the file/,
        );
      }

      // 2. A record with a bit flipped in its payload after the last one (never synced).
      {
        const wal = await stopReplica2(cluster, acked, "flip-last");
        const last = wal.records.at(-1)!;
        const bytes = wal.files.get(last.file)!;
        const end = last.offset + last.size;
        const damaged = new Uint8Array(Math.max(bytes.length, end + last.size));
        damaged.set(bytes);
        damaged.set(bytes.subarray(last.offset, end), end);
        const flipped = flipBit(damaged, end + (payloadMiddle(last) - last.offset));
        await Deno.writeFile(last.file, flipped);
        cluster.note(`wrote a record with a flipped bit at ${end} of ${last.file}`);
        await restartAfterTornTail(
          cluster,
          acked,
          "flip-last",
          last.file,
          bytes,
          end,
          /checksum mismatch/,
        );
      }

      // 3. A bit flip inside a record in the middle: refuse to start, change nothing.
      {
        const wal = await stopReplica2(cluster, acked, "flip-middle");
        // The middle record of the last segment (several records: this start's view change and
        // ten writes), so that a valid record follows it in the same file.
        const lastFile = wal.records.at(-1)!.file;
        const inLast = wal.records.filter((r) => r.file === lastFile);
        const victimIndex = Math.floor(inLast.length / 2);
        const victim = inLast[victimIndex];
        const next = inLast[victimIndex + 1];
        assert.ok(next !== undefined, "the damaged record must not be the last");
        const path = lastFile;
        const original = wal.files.get(path)!;
        const damaged = flipBit(original, payloadMiddle(victim));
        await Deno.writeFile(path, damaged);
        cluster.note(
          `flipped a bit at byte ${payloadMiddle(victim)} of replica 2's record ${victimIndex} ` +
            `(${victim.record.r} at ${victim.offset}) of ${inLast.length} in ${path}`,
        );
        const before = await filesOf(dataDir(cluster, 2));
        const run = await runRefusedNode(cluster, 2, cluster.configPath, [...cluster.extraArgs]);
        assert.equal(run.code, 1, `exit status ${run.code}\n${run.stdout}${run.stderr}`);
        assert.ok(
          run.stderr.includes(
            `replica 2 node.cannot_start: cannot start: ${path}: corrupt record at byte offset ${victim.offset}: ` +
              `checksum mismatch`,
          ),
          `stderr does not name the file and offset:\n${run.stderr}`,
        );
        assert.match(run.stderr, new RegExp(`valid record follows at byte offset ${next.offset}`));
        assert.match(run.stderr, /damaged before its last record/);
        assert.doesNotMatch(run.stdout, /ready|listening/, "it started serving");
        assert.deepEqual(await filesOf(dataDir(cluster, 2)), before, "the refusal changed files");

        // Put the undamaged log back: the replica starts and holds every acknowledged write.
        await Deno.writeFile(path, original);
        await cluster.waitForView({ ids: [1, 3] });
        await writeAll(cluster, 3, keys("flip-middle-down", 5, acked));
        await cluster.restart(2);
        await cluster.waitForView({ ids: [1, 2, 3] });
        await cluster.waitForAgreement({ ids: [1, 2, 3] });
        await readAll(cluster, 2, acked);
      }
    });
  },
});

// ---------------------------------------------------------------------------------------------
// (d) Wrong data directory

Deno.test({
  name:
    "e2e durability: a data directory in use, of another replica or of another cluster is refused",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await withCluster({ replicas: 3, extraArgs: FAST_FAILOVER }, async (cluster) => {
      const acked = new Map<string, string>();
      await writeAll(cluster, 1, keys("mine", 5, acked));
      await cluster.waitForAgreement({ minDelivered: 5 });
      // Replica 3, running, started a second time: its data directory is in use. Refused
      // before it reads or repairs anything there, and the running one keeps serving.
      const files3 = await filesOf(dataDir(cluster, 3));
      const twice = await runRefusedNode(cluster, 3, cluster.configPath, [...cluster.extraArgs]);
      assert.equal(twice.code, 2, `exit status ${twice.code}`);
      assert.match(twice.stderr, /data directory .* is in use by another process/);
      assert.doesNotMatch(twice.stdout, /ready|listening|recovery/);
      assert.deepEqual([...(await filesOf(dataDir(cluster, 3))).keys()], [...files3.keys()]);
      await writeAll(cluster, 3, keys("after-twice", 2, acked));

      // Nobody uses the directories (or replica 1's ports) while the wrong starts are tried.
      await Promise.all([cluster.kill(1), cluster.kill(2)]);
      const dir1 = dataDir(cluster, 1);
      const dir2 = dataDir(cluster, 2);
      const files1 = await filesOf(dir1);
      const files2 = await filesOf(dir2);
      assert.ok(files1.has("IDENTITY") && files2.has("IDENTITY"), "no IDENTITY files");

      // Replica 1 pointed at replica 2's directory.
      const wrongReplica = await runRefusedNode(cluster, 1, cluster.configPath, [
        ...cluster.extraArgs,
        "--data-dir",
        dir2,
      ]);
      assert.equal(wrongReplica.code, 2, `exit status ${wrongReplica.code}`);
      assert.ok(
        wrongReplica.stderr.includes(`error: data directory ${dir2} belongs to replica 2, not 1`),
        `stderr does not name replica 2:\n${wrongReplica.stderr}`,
      );
      assert.doesNotMatch(wrongReplica.stdout, /ready|listening/);

      // A data directory of another cluster (another config file; its IDENTITY as the founding
      // replica 1 of that cluster wrote it) given to this cluster's replica 1. The cluster id is
      // the directory's, whatever the config file says (so that the file may be edited): the
      // replica starts, but this cluster's replicas refuse its hello, and it never joins a view.
      const ports = freePorts(6);
      const otherText = configText(
        [1, 2, 3].map((id, i) => ({ id, clientPort: ports[2 * i], peerPort: ports[2 * i + 1] })),
      );
      const ours = clusterId(cluster.config);
      const theirs = clusterId(parseConfig(otherText, join(cluster.dir, "other-cluster.txt")));
      assert.notEqual(ours, theirs);
      const otherDir = join(cluster.dir, "other-cluster-data-1");
      await Deno.mkdir(otherDir);
      await Deno.writeTextFile(
        join(otherDir, "IDENTITY"),
        JSON.stringify({ format: 1, cluster: theirs, replica: 1 }) + "\n",
      );
      cluster.setArgs(1, ["--data-dir", otherDir]);
      await cluster.restart(1);
      assert.ok(
        cluster.logged(1, new RegExp(`cluster id ${theirs} \\(kept in the data directory\\)`)),
      );
      const refusedHello = new RegExp(
        `bad hello.*cluster ${theirs} differs from ours \\(${ours}\\)`,
      );
      // Replica 3 is the one running (1 and 2 were stopped above).
      await cluster.waitFor(() => cluster.logged(3, refusedHello), {
        message: "replica 3 to refuse the hello of replica 1 with another cluster's id",
      });
      assert.notEqual((await cluster.info(1)).state, "normal", "replica 1 joined a view");
      await cluster.kill(1);
      cluster.setArgs(1, []);

      // Both directories are untouched and still serve their own replicas.
      assert.deepEqual(await filesOf(dir1), files1, "replica 1's directory changed");
      assert.deepEqual(await filesOf(dir2), files2, "replica 2's directory changed");
      await cluster.restart(1);
      await cluster.restart(2);
      await cluster.waitForView({ ids: [1, 2, 3] });
      await cluster.waitForAgreement({ ids: [1, 2, 3], minDelivered: 5 });
      await readAll(cluster, 1, acked);
      await readAll(cluster, 2, acked);
    });
  },
});
