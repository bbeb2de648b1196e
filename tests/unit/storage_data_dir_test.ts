/**
 * Tests of data directory identity: creation on first use, reopening, and the refusals (other
 * replica, other cluster, foreign directory, unknown format, unreadable identity file).
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { DataDirError, openDataDir } from "../../src/storage/data_dir.ts";
import { withTempDirSync } from "../support/temp_dir.ts";

function withTempDir(body: (dir: string) => void): void {
  withTempDirSync("lamportkv_dir_", body);
}

function refused(fn: () => unknown, message: string | RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof DataDirError, String(e));
    assert.equal(e.name, "DataDirError");
    if (typeof message === "string") assert.equal(e.message, message);
    else assert.match(e.message, message);
    return true;
  });
}

const me = { cluster: "c0ffee12", replica: 3 };

Deno.test("data dir: first open creates the directory and the identity file", () => {
  withTempDir((root) => {
    const dir = join(root, "a", "b", "replica3");
    const paths = openDataDir(dir, me);
    assert.deepEqual(paths, { dir, snapshot: join(dir, "snapshot.bin") });
    assert.ok(Deno.statSync(dir).isDirectory);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["IDENTITY"]);
    const identity = JSON.parse(Deno.readTextFileSync(join(dir, "IDENTITY")));
    assert.deepEqual(identity, { format: 1, cluster: "c0ffee12", replica: 3 });
  });
});

Deno.test("data dir: an existing empty directory is adopted, and reopening works", () => {
  withTempDir((root) => {
    const paths = openDataDir(root, me);
    Deno.writeTextFileSync(join(root, "wal-0000000000000000.log"), "");
    assert.deepEqual(openDataDir(root, me), paths);
    assert.deepEqual(openDataDir(root, { ...me }), paths);
  });
});

Deno.test("data dir: another replica's directory is refused", () => {
  withTempDir((root) => {
    const dir = join(root, "d");
    openDataDir(dir, { cluster: "c0ffee12", replica: 2 });
    refused(() => openDataDir(dir, me), `data directory ${dir} belongs to replica 2, not 3`);
  });
});

Deno.test("data dir: another cluster's directory is refused", () => {
  withTempDir((root) => {
    const dir = join(root, "d");
    openDataDir(dir, { cluster: "abc123", replica: 3 });
    refused(
      () => openDataDir(dir, me),
      `data directory ${dir} belongs to cluster abc123, not c0ffee12: ` +
        `wrong --data-dir, or a data directory of another cluster`,
    );
    // Both differ: the cluster is reported (the more likely mistake).
    refused(() => openDataDir(dir, { cluster: "zzz", replica: 1 }), /belongs to cluster abc123/);
  });
});

Deno.test("data dir: a non-empty directory without an identity file is refused", () => {
  withTempDir((root) => {
    Deno.writeTextFileSync(join(root, "notes.txt"), "mine");
    Deno.mkdirSync(join(root, "photos"));
    refused(
      () => openDataDir(root, me),
      `data directory ${root} is not empty (notes.txt, photos) and has no IDENTITY file: ` +
        `not a lamportkv data directory; use an empty or new directory`,
    );
    assert.throws(() => Deno.statSync(join(root, "IDENTITY")), Deno.errors.NotFound);
  });
});

Deno.test("data dir: a leftover IDENTITY.tmp from a crash during the first open is not foreign", () => {
  withTempDir((root) => {
    Deno.writeTextFileSync(join(root, "IDENTITY.tmp"), '{"format":1,"clu');
    openDataDir(root, me);
    assert.deepEqual([...Deno.readDirSync(root)].map((e) => e.name), ["IDENTITY"]);
    openDataDir(root, me);
  });
});

Deno.test("data dir: unknown format version and unreadable identity files are refused", () => {
  withTempDir((root) => {
    const identity = join(root, "IDENTITY");
    Deno.writeTextFileSync(
      identity,
      JSON.stringify({ format: 2, cluster: "c0ffee12", replica: 3 }),
    );
    refused(
      () => openDataDir(root, me),
      `data directory ${root}: identity file ${identity} has unknown format version 2 ` +
        `(this lamportkv understands version 1)`,
    );
    for (
      const [text, why] of [
        ["", /is unreadable: .*JSON/],
        ["{not json", /is unreadable: /],
        ["[1]", /is unreadable: not a JSON object/],
        ['{"format":1,"replica":3}', /is unreadable: no cluster id/],
        ['{"format":1,"cluster":"c0ffee12","replica":0}', /is unreadable: no valid replica id/],
      ] as const
    ) {
      Deno.writeTextFileSync(identity, text);
      refused(() => openDataDir(root, me), why);
    }
    Deno.writeFileSync(identity, new Uint8Array([0xff, 0xfe]));
    refused(() => openDataDir(root, me), /identity file .* is unreadable/);
  });
});

Deno.test("data dir: a path that is a file is refused; a bad identity is a TypeError", () => {
  withTempDir((root) => {
    const file = join(root, "file");
    Deno.writeTextFileSync(file, "x");
    refused(() => openDataDir(file, me), `data directory ${file} is not a directory`);
    assert.throws(() => openDataDir(join(root, "x"), { cluster: "", replica: 1 }), TypeError);
    assert.throws(() => openDataDir(join(root, "x"), { cluster: "c", replica: 0 }), TypeError);
    assert.throws(() => openDataDir(join(root, "x"), { cluster: "c", replica: 1.5 }), TypeError);
  });
});
