/**
 * The cluster id is created once and kept in the data directory (`src/runtime/cluster_identity.ts`
 * over `src/storage/data_dir.ts`): stable across edits of the config file, learned (and then
 * kept) by a joining replica, and a data directory of another cluster or replica is still refused.
 * Also the old data directory fixture (`tests/fixtures/v1-data`) keeps its id.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { clusterId, parseConfig } from "../../src/config/config.ts";
import { resolveClusterId } from "../../src/runtime/cluster_identity.ts";
import { DataDirError, openDataDir, readDataDirIdentity } from "../../src/storage/data_dir.ts";
import { withTempDir } from "../support/temp_dir.ts";

const FOUNDING = "1 127.0.0.1 7001 7101\n2 127.0.0.1 7002 7102\n3 127.0.0.1 7003 7103\n";
const FIXTURE = new URL("../fixtures/v1-data/", import.meta.url).pathname;

/** What a replica starting on `dir` with the config text `text` would do. */
async function start(dir: string, replica: number, text: string, join = false, learned = "") {
  const config = parseConfig(text, "cluster.txt");
  let asked = 0;
  const { cluster, source } = await resolveClusterId({
    dir,
    replica,
    join,
    founding: () => clusterId(config),
    learn: () => {
      asked++;
      return Promise.resolve(learned);
    },
  });
  openDataDir(dir, { cluster, replica });
  return { cluster, source, asked };
}

Deno.test("cluster id: founded once, then kept whatever the file says", async () => {
  await withTempDir("lamportkv-id-", async (root) => {
    const dir = join(root, "data", "2");
    assert.equal(readDataDirIdentity(dir), undefined, "nothing there yet");
    const first = await start(dir, 2, FOUNDING);
    const founded = clusterId(parseConfig(FOUNDING, "cluster.txt"));
    assert.deepEqual(first, { cluster: founded, source: "founding", asked: 0 });
    assert.deepEqual(readDataDirIdentity(dir), { cluster: founded, replica: 2 });

    // A replica line added, one re-addressed, one removed: the kept id is used each time.
    const edits = [
      FOUNDING + "4 127.0.0.1 7004 7104\n",
      FOUNDING.replace("7103", "7203"),
      "1 127.0.0.1 7001 7101\n2 127.0.0.1 7002 7102\n",
    ];
    for (const text of edits) {
      assert.notEqual(clusterId(parseConfig(text, "cluster.txt")), founded, "the file's id moved");
      assert.deepEqual(await start(dir, 2, text), { cluster: founded, source: "stored", asked: 0 });
    }
    // Joining does not matter once the directory has an identity: nobody is asked.
    assert.deepEqual(await start(dir, 2, FOUNDING, true, "feedfeedfeedfeed"), {
      cluster: founded,
      source: "stored",
      asked: 0,
    });
  });
});

Deno.test("cluster id: a joining replica adopts the learned id and keeps it", async () => {
  await withTempDir("lamportkv-id-", async (root) => {
    const dir = join(root, "data", "4");
    const learned = "0badc0de0badc0de";
    // Replica 4 is not in the file: its id is learned, not computed from the file.
    assert.deepEqual(await start(dir, 4, FOUNDING, true, learned), {
      cluster: learned,
      source: "learned",
      asked: 1,
    });
    assert.deepEqual(JSON.parse(Deno.readTextFileSync(join(dir, "IDENTITY"))), {
      format: 1,
      cluster: learned,
      replica: 4,
    });
    // Restarted (with --join again or not): the kept id, nobody asked.
    assert.deepEqual(await start(dir, 4, FOUNDING, true, "1111111111111111"), {
      cluster: learned,
      source: "stored",
      asked: 0,
    });
    assert.deepEqual(await start(dir, 4, FOUNDING + "4 127.0.0.1 7004 7104\n"), {
      cluster: learned,
      source: "stored",
      asked: 0,
    });
  });
});

Deno.test("cluster id: another cluster's or replica's data directory is refused", async () => {
  await withTempDir("lamportkv-id-", async (root) => {
    const dir = join(root, "d");
    openDataDir(dir, { cluster: "abcabcabcabcabca", replica: 1 });
    // Opened for another cluster (e.g. with an id learned from another cluster): refused.
    assert.throws(
      () => openDataDir(dir, { cluster: "0123456789abcdef", replica: 1 }),
      (e: unknown) =>
        e instanceof DataDirError &&
        e.message === `data directory ${dir} belongs to cluster abcabcabcabcabca, not ` +
            `0123456789abcdef: wrong --data-dir, or a data directory of another cluster`,
    );
    // Another replica's directory: refused before anything else happens.
    await assert.rejects(
      () => start(dir, 2, FOUNDING),
      (e: unknown) =>
        e instanceof DataDirError &&
        e.message === `data directory ${dir} belongs to replica 1, not 2`,
    );
    // An unreadable identity is an error, not "no identity".
    Deno.writeTextFileSync(join(dir, "IDENTITY"), "{not json");
    assert.throws(() => readDataDirIdentity(dir), DataDirError);
    await assert.rejects(() => start(dir, 1, FOUNDING), DataDirError);
  });
});

Deno.test("cluster id: the old data dir fixture keeps its id after a config edit", async () => {
  await withTempDir("lamportkv-id-", async (dir) => {
    await Deno.copyFile(FIXTURE + "IDENTITY", join(dir, "IDENTITY"));
    const text = await Deno.readTextFile(FIXTURE + "cluster.txt");
    const founded = clusterId(parseConfig(text, "cluster.txt"));
    assert.deepEqual(readDataDirIdentity(dir), { cluster: founded, replica: 1 });
    const edited = text + "\n9 127.0.0.1 7909 7919\n";
    assert.deepEqual(await start(dir, 1, edited), { cluster: founded, source: "stored", asked: 0 });
  });
});
