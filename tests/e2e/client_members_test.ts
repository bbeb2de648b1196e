/**
 * End to end: the command-line client follows the configuration in force of a real cluster.
 * After `remove 3` through the client, a config file that lists only replica 3 still reaches
 * the cluster: replica 3 reports the members and refuses data (`-NOTMEMBER`), and the client
 * resends to a member; `members` and `status` show the configuration in force.
 */
import assert from "node:assert/strict";
import {
  type CommandResult,
  runClient,
  type TestCluster,
  withCluster,
} from "../support/cluster.ts";
import { withTempDir } from "../support/temp_dir.ts";

function describe(r: CommandResult): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`;
}

Deno.test({
  name: "e2e client members: a config listing only a removed replica reaches the members",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await withCluster({ replicas: 3 }, async (cluster: TestCluster) => {
      const config = cluster.configPath;
      const put = await runClient([config, "put", "k", "v"]);
      assert.equal(put.code, 0, describe(put));
      const removed = await runClient([config, "-r", "1", "remove", "3"]);
      assert.equal(removed.code, 0, describe(removed));
      assert.equal(removed.stdout, "OK\n", describe(removed));

      // A config file with replica 3's line only (settings kept).
      const text = await Deno.readTextFile(config);
      const only3 = text.split("\n").filter((line) => !/^\s*[12]\s/.test(line)).join("\n");
      await withTempDir("lamportkv-members-", async (dir) => {
        const path = `${dir}/only3.conf`;
        await Deno.writeTextFile(path, only3);

        const get = await runClient([path, "get", "k"]);
        assert.equal(get.code, 0, describe(get));
        assert.equal(get.stdout, "v\n", describe(get));
        assert.match(
          get.stderr,
          /^replica 3 \(127\.0\.0\.1:\d+\) is not a member of the cluster; switched to replica [12] /,
          describe(get),
        );

        const members = await runClient([path, "members"]);
        assert.equal(members.code, 0, describe(members));
        assert.match(
          members.stdout,
          /\nvoters: 1,2 {2}learners: none {2}\(as replica \d sees it\)\n$/,
        );
        assert.doesNotMatch(members.stdout, /\n3 /, describe(members));

        const status = await runClient([path, "status"]);
        assert.equal(status.code, 0, describe(status));
        const row = (id: number) => status.stdout.split("\n").find((l) => l.startsWith(`${id} `));
        assert.match(row(1) ?? "", /\bvoter\b/, describe(status));
        assert.match(row(2) ?? "", /\bvoter\b/, describe(status));
        assert.match(row(3) ?? "", /\bnone\b/, describe(status));
        assert.ok(
          status.stdout.includes("configuration: voters 1,2; learners none"),
          describe(status),
        );
        assert.doesNotMatch(
          status.stdout,
          /^3 .* !/m,
          "a removed replica is not marked as lagging",
        );
      });
    });
  },
});
