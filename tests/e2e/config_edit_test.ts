/**
 * End to end: the cluster id is kept in the data directories, so the config file may be edited.
 *
 * A 3-replica cluster is started, written to and stopped; a fourth replica line is added to its
 * config file (nothing else changes) and the three are restarted: they start with the id kept in
 * their data directories (logged as such), form a view and serve the old and new data. Then a
 * fifth replica that is in no config file starts with `--join` and its address flags, with an
 * empty data directory: it learns the cluster id from the replicas of the file, keeps it in its
 * IDENTITY, and the others accept its peer connections (their peer servers take any replica id
 * with the right cluster id; what the core does with its messages is not tested here).
 *
 * Sanitizers: off, because the replica child processes and their output pipes outlive single
 * async ops by design (the harness awaits them all in `stop()`).
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { clusterId } from "../../src/config/config.ts";
import { freePorts, respCall, withCluster } from "../support/cluster.ts";

Deno.test({
  name: "e2e config edit: restarted after a replica line was added, the replicas start and serve",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await withCluster({ replicas: 3 }, async (cluster) => {
      const founded = clusterId(cluster.config);
      assert.equal(await respCall(cluster.clientPort(1), ["SET", "before", "1"]), "OK");
      await cluster.waitForAgreement({ minDelivered: 1 });
      await Promise.all(cluster.ids.map((id) => cluster.kill(id, "SIGTERM")));
      for (const id of cluster.ids) {
        const identity = JSON.parse(
          await Deno.readTextFile(join(cluster.dir, "data", String(id), "IDENTITY")),
        );
        // The founding replicas are kept too: the replica set starts from them, whatever the
        // file says later.
        const founding = cluster.config.replicas.map(({ id, host, clientPort, peerPort }) => ({
          id,
          host,
          clientPort,
          peerPort,
        }));
        assert.deepEqual(identity, { format: 1, cluster: founded, replica: id, founding });
      }

      // A fourth replica line (it never runs); the file's fingerprint changes, the id does not.
      const [client4, peer4, client5, peer5] = freePorts(4);
      await Deno.writeTextFile(cluster.configPath, `4 127.0.0.1 ${client4} ${peer4}\n`, {
        append: true,
      });
      for (const id of cluster.ids) await cluster.restart(id);
      for (const id of cluster.ids) {
        assert.ok(
          cluster.logged(id, new RegExp(`cluster id ${founded} \\(kept in the data directory\\)`)),
          `replica ${id} did not use the kept cluster id`,
        );
      }
      await cluster.waitForView({ ids: [1, 2, 3] });
      assert.equal(await respCall(cluster.clientPort(2), ["SET", "after", "2"]), "OK");
      await cluster.waitForAgreement({ ids: [1, 2, 3] });
      assert.equal(await respCall(cluster.clientPort(3), ["GET", "before"]), "1");
      assert.equal(await respCall(cluster.clientPort(1), ["GET", "after"]), "2");
      // The edited file does not change the replica set in force: only the order does.
      const info = String(await respCall(cluster.clientPort(1), ["INFO", "lamportkv"]));
      assert.match(info, /\r\nvoters:1,2,3\r\n/);

      // Replica 5, in no config file, joins with an empty data directory.
      cluster.addReplica({ id: 5, host: "127.0.0.1", clientPort: client5, peerPort: peer5 });
      cluster.setArgs(5, [
        "--join",
        "--host",
        "127.0.0.1",
        "--client-port",
        String(client5),
        "--peer-port",
        String(peer5),
      ]);
      await cluster.restart(5);
      assert.ok(
        cluster.logged(5, new RegExp(`learned cluster id ${founded} from replica [123]`)),
        "replica 5 did not learn the cluster id",
      );
      assert.ok(
        cluster.logged(5, new RegExp(`cluster id ${founded} \\(learned from the cluster\\)`)),
      );
      const identity5 = JSON.parse(
        await Deno.readTextFile(join(cluster.dir, "data", "5", "IDENTITY")),
      );
      assert.deepEqual(identity5, { format: 1, cluster: founded, replica: 5 });
      await cluster.waitFor(
        () => cluster.ids.some((id) => cluster.logged(id, /peer 5 connected from/)),
        { message: "a replica of the file to accept replica 5's peer connection" },
      );
      await cluster.kill(5, "SIGTERM");
      // Restarted, it keeps the id without asking.
      await cluster.restart(5);
      const kept = cluster.logs.filter((l) =>
        l.id === 5 && l.text.includes(`cluster id ${founded} (kept in the data directory)`)
      );
      assert.equal(kept.length, 1, "replica 5 did not use its kept cluster id on restart");
    });
  },
});
