/**
 * A data directory written by the release before the command registry (operations stored as
 * `{kind: "put", key, value}`, snapshots as a plain string map) still loads: `tests/fixtures/
 * v1-data` was written by that release (replica 1 of `cluster.txt` beside it; 25 SETs, a DEL, a
 * binary value and a tagged write, snapshots every 10 deliveries; the log segment's zero padding
 * cut off). The test opens a copy, recovers three replicas from it, forms a view and reads
 * every key back through the order.
 *
 * @module
 */
import assert from "node:assert/strict";
import { DiskStorage } from "../../src/runtime/disk_storage.ts";
import { decodePeerFrame, encodePeerFrame } from "../../src/net/peer_codec.ts";
import type { PeerMessage } from "../../src/core/types.ts";
import { SyncCluster } from "../support/sync_cluster.ts";
import { withTempDir } from "../support/temp_dir.ts";
import { SILENT } from "../../src/log/logger.ts";

const FIXTURE = new URL("../fixtures/v1-data/", import.meta.url).pathname;

Deno.test("upgrade: a data directory of the release before typed values still loads", async () => {
  await withTempDir("lamportkv-upgrade-", async (dir) => {
    for (const name of ["IDENTITY", "snapshot.bin", "wal-0000000000000000.log"]) {
      await Deno.copyFile(FIXTURE + name, `${dir}/${name}`);
    }
    const identity = JSON.parse(await Deno.readTextFile(`${dir}/IDENTITY`));
    const storage = await DiskStorage.open({
      dir,
      cluster: identity.cluster,
      replica: 1,
      fsync: "never",
      log: SILENT,
    });
    try {
      const recovered = storage.takeRecovered();
      assert.ok(recovered.snapshot, "the old snapshot was read");
      // Old operations come out of recovery in today's form, so they can travel to peers.
      const records = [...recovered.records];
      const entries = records.flatMap((r) => r.r === "entry" ? [r.entry] : []);
      assert.ok(entries.length > 0, "the old log holds entries");
      const msgs: PeerMessage[] = entries.map((entry) => ({ type: "update", entry }));
      assert.deepEqual(decodePeerFrame(encodePeerFrame({ kind: "msgs", msgs })), {
        kind: "msgs",
        msgs,
      });
      const c = new SyncCluster([1, 2, 3], { recovered: { ...recovered, records } });
      c.start();
      let id = 1;
      const get = (key: string) => {
        c.step(1, { type: "request", id, cmd: { op: { argv: ["GET", key], time: 0 } } });
        c.step(1, { type: "flush" });
        c.settle();
        const reply = c.replies.get(1)!.get(id++);
        assert.ok(reply?.outcome.ok, `GET ${key} answered`);
        return reply.outcome.result;
      };
      for (let k = 1; k <= 25; k++) {
        assert.equal(get(`key:${k}`), k === 3 ? null : `value-${k}`, `key:${k}`);
      }
      assert.equal(get("bin"), "a\x01b");
      assert.equal(get("tagged"), "v5");
      // The old exactly-once table survives: a retry of the tagged write is not applied again.
      c.step(1, {
        type: "request",
        id: 999,
        cmd: {
          op: { argv: ["SET", "tagged", "again"], time: 0 },
          tag: { client: "client-x", seq: 5 },
        },
      });
      c.settle();
      c.tick(2);
      assert.equal(get("tagged"), "v5");
      const digests = new Set([1, 2, 3].map((r) => c.stores.get(r)!.digest()));
      assert.equal(digests.size, 1, "every replica computed the same state");
    } finally {
      await storage.close();
    }
  });
});
