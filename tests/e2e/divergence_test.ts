/**
 * A replica whose state has gone wrong stops serving and says so: its snapshot is altered while
 * it is down (validly framed and checksummed, as a bug or a damaged disk that passes its
 * checksums would leave it), it rejoins, and at the next checkpoint its digest differs from the
 * majority's. It must log DIVERGED and exit; the other two keep serving and agree.
 *
 * @module
 */
import assert from "node:assert/strict";
import { withCluster } from "../support/cluster.ts";
import { readSnapshotFile, writeSnapshotFile } from "../../src/storage/snapshot_file.ts";
import { RespConnection } from "../../src/client/connection.ts";

Deno.test("e2e: a replica whose state diverged stops loudly; the majority serves on", async () => {
  await withCluster({
    replicas: 3,
    extraArgs: ["--snapshot-every", "10", "--checkpoint-every", "10"],
  }, async (cluster) => {
    const conn = await RespConnection.connect("127.0.0.1", cluster.clientPort(1));
    try {
      for (let i = 0; i < 25; i++) assert.equal(await conn.send(["SET", `k${i}`, "v"]), "OK");
      await cluster.waitForAgreement();
      await cluster.kill(3);
      // Alter replica 3's latest snapshot: one key more than the others hold.
      const path = `${cluster.dir}/data/3/snapshot.bin`;
      const stored = readSnapshotFile(path) as {
        snapshot: { state: { keyspace: { keys: unknown[] } } };
      };
      assert.ok(stored, "replica 3 wrote a snapshot");
      stored.snapshot.state.keyspace.keys.push(["damage", "string", 0, 0, "x"]);
      writeSnapshotFile(path, stored);
      await cluster.restart(3);
      await cluster.waitForView();
      // Writes carry every replica past the next checkpoints; replica 3's digest differs there.
      for (let i = 0; i < 30 && cluster.running(3); i++) {
        assert.equal(await conn.send(["SET", `after${i}`, "v"]), "OK");
      }
      await cluster.waitFor(() => !cluster.running(3), {
        timeoutMs: 15_000,
        message: "replica 3 stops",
      });
      assert.equal(cluster.exitStatus(3)?.code, 1, "a diverged replica exits with status 1");
      assert.ok(
        cluster.logs.some((l) => l.id === 3 && /DIVERGED: at delivered index \d+/.test(l.text)),
        "replica 3 says why it stopped",
      );
      assert.equal(await conn.send(["SET", "still", "served"]), "OK");
      await cluster.waitForAgreement({ ids: [1, 2] });
    } finally {
      await conn.close();
    }
  });
});
