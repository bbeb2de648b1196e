/**
 * Tests of snapshot files: round trips, atomic replacement, leftover temporary files, and that
 * any damage is a CorruptionError naming the file.
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { CorruptionError, encodeRecord } from "../../src/storage/record_codec.ts";
import {
  readSnapshotFile,
  writeFileAtomically,
  writeSnapshotFile,
} from "../../src/storage/snapshot_file.ts";
import { withTempDirSync } from "../support/temp_dir.ts";

function withTempDir(body: (dir: string) => void): void {
  withTempDirSync("lamportkv_snap_", body);
}

const state = {
  index: 1234,
  last: { view: 3, ts: 99, origin: 2 },
  state: {
    map: [["k\u0000\u00ff", "v\r\n"], ["LKVR", "x".repeat(10_000)]],
    clients: { c1: { seq: 5, result: { kind: "ok" } } },
  },
};

function names(dir: string): string[] {
  return [...Deno.readDirSync(dir)].map((e) => e.name).sort();
}

Deno.test("snapshot: absent file reads as undefined", () => {
  withTempDir((dir) => {
    assert.equal(readSnapshotFile(join(dir, "snapshot.bin")), undefined);
  });
});

Deno.test("snapshot: write/read round trip and overwrite leave no temp file", () => {
  withTempDir((dir) => {
    const path = join(dir, "snapshot.bin");
    writeSnapshotFile(path, state);
    assert.deepEqual(readSnapshotFile(path), state);
    writeSnapshotFile(path, { replaced: true });
    assert.deepEqual(readSnapshotFile(path), { replaced: true });
    writeSnapshotFile(path, null);
    assert.equal(readSnapshotFile(path), null);
    assert.deepEqual(names(dir), ["snapshot.bin"]);
  });
});

Deno.test("snapshot: a value without a JSON form is refused and the old snapshot stays", () => {
  withTempDir((dir) => {
    const path = join(dir, "snapshot.bin");
    writeSnapshotFile(path, "old");
    assert.throws(() => writeSnapshotFile(path, undefined), TypeError);
    assert.throws(() => writeSnapshotFile(path, { n: 1n }), TypeError);
    assert.equal(readSnapshotFile(path), "old");
    assert.deepEqual(names(dir), ["snapshot.bin"]);
  });
});

Deno.test("snapshot: a leftover temp file from a crash mid-write is ignored, then replaced", () => {
  withTempDir((dir) => {
    const path = join(dir, "snapshot.bin");
    writeSnapshotFile(path, "complete");
    // A crash while writing the next snapshot: a half-written temp file, never renamed.
    const next = encodeRecord(new TextEncoder().encode('"next"'));
    Deno.writeFileSync(path + ".tmp", next.subarray(0, next.length - 2));
    assert.equal(readSnapshotFile(path), "complete");
    writeSnapshotFile(path, "next");
    assert.equal(readSnapshotFile(path), "next");
    assert.deepEqual(names(dir), ["snapshot.bin"]);
    // Also when the crash happened before the very first snapshot.
    Deno.removeSync(path);
    Deno.writeFileSync(path + ".tmp", new Uint8Array([1, 2, 3]));
    assert.equal(readSnapshotFile(path), undefined);
  });
});

Deno.test("snapshot: any damage is a CorruptionError naming the file", () => {
  withTempDir((dir) => {
    const path = join(dir, "snapshot.bin");
    writeSnapshotFile(path, state);
    const good = Deno.readFileSync(path);
    const damages: [string, Uint8Array][] = [
      ["empty", new Uint8Array(0)],
      ["truncated header", good.slice(0, 7)],
      ["truncated payload", good.slice(0, good.length - 1)],
      ["trailing bytes", new Uint8Array([...good, 0])],
      ["two records", new Uint8Array([...good, ...good])],
      ["not json", encodeRecord(new TextEncoder().encode("{oops"))],
    ];
    for (const at of [0, 5, 9, 12, 100, good.length - 1]) {
      const flipped = good.slice();
      flipped[at] ^= 0x04;
      damages.push([`bit flip at ${at}`, flipped]);
    }
    for (const [what, bytes] of damages) {
      Deno.writeFileSync(path, bytes);
      assert.throws(() => readSnapshotFile(path), (e: unknown) => {
        assert.ok(e instanceof CorruptionError, `${what}: ${e}`);
        assert.ok(e.message.startsWith(`${path}: `), `${what}: ${e.message}`);
        assert.equal(e.file, path);
        return true;
      });
    }
  });
});

Deno.test("writeFileAtomically replaces a file and leaves no temp file behind", () => {
  withTempDir((dir) => {
    const path = join(dir, "f");
    writeFileAtomically(path, new Uint8Array([1, 2]));
    writeFileAtomically(path, new Uint8Array([3]));
    assert.deepEqual(Deno.readFileSync(path), new Uint8Array([3]));
    assert.deepEqual(names(dir), ["f"]);
    // A failing write (missing directory) throws and creates nothing.
    assert.throws(() => writeFileAtomically(join(dir, "missing", "f"), new Uint8Array(1)));
    assert.deepEqual(names(dir), ["f"]);
  });
});
