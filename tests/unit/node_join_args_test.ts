/**
 * The node command line of a joining replica: `--join` and the address flags, and where its
 * address comes from (its config line, else the flags, with clear errors when one is missing).
 *
 * @module
 */
import assert from "node:assert/strict";
import { ConfigError, parseConfig } from "../../src/config/config.ts";
import { NODE_USAGE, parseNodeArgs, replicaAddress, UsageError } from "../../src/cli/node.ts";

const CONFIG = parseConfig(
  "1 127.0.0.1 7001 7101\n2 127.0.0.1 7002 7102\n3 127.0.0.1 7003 7103 8003\n",
  "cluster.txt",
);

function args(argv: string[]) {
  const parsed = parseNodeArgs(argv);
  assert.ok(parsed !== "help");
  return parsed;
}

Deno.test("node --join: flags parsed, documented, and refused without --join", () => {
  for (const flag of ["--join", "--host", "--client-port", "--peer-port", "--http-port"]) {
    assert.ok(NODE_USAGE.includes(flag), `--help does not document ${flag}`);
  }
  assert.equal(args(["1", "c.txt"]).join, false);
  const joined = args([
    "4",
    "c.txt",
    "--join",
    "--host",
    "10.0.0.4",
    "--client-port",
    "7004",
    "--peer-port=7104",
    "--http-port",
    "8004",
  ]);
  assert.equal(joined.join, true);
  assert.deepEqual(joined.address, {
    host: "10.0.0.4",
    clientPort: 7004,
    peerPort: 7104,
    httpPort: 8004,
  });
  assert.throws(
    () => parseNodeArgs(["4", "c.txt", "--host", "10.0.0.4"]),
    (e: unknown) =>
      e instanceof UsageError && /--host is only for a joining replica/.test(e.message),
  );
  assert.throws(() => parseNodeArgs(["4", "c.txt", "--join", "--peer-port", "0"]), /1\.\.65535/);
  assert.throws(() => parseNodeArgs(["4", "c.txt", "--join", "--host", ""]), /--host must be/);
});

Deno.test("node --join: the replica's address comes from its line, else from the flags", () => {
  // In the file: its line, joining or not (address flags are then ignored, and said so).
  assert.deepEqual(replicaAddress(CONFIG, args(["3", "c.txt"])), {
    address: CONFIG.replicas[2],
    ignored: false,
  });
  assert.deepEqual(
    replicaAddress(CONFIG, args(["3", "c.txt", "--join", "--host", "10.0.0.9"])),
    { address: CONFIG.replicas[2], ignored: true },
  );
  // Not in the file: founding is a config error, joining takes the flags.
  assert.throws(
    () => replicaAddress(CONFIG, args(["4", "c.txt"])),
    (e: unknown) => e instanceof ConfigError && /no replica with id 4/.test(e.message),
  );
  const flags = ["--join", "--host", "127.0.0.1", "--client-port", "7004", "--peer-port", "7104"];
  assert.deepEqual(replicaAddress(CONFIG, args(["4", "c.txt", ...flags])), {
    address: { id: 4, host: "127.0.0.1", clientPort: 7004, peerPort: 7104 },
    ignored: false,
  });
  assert.deepEqual(
    replicaAddress(CONFIG, args(["4", "c.txt", ...flags, "--http-port", "8004"])).address,
    { id: 4, host: "127.0.0.1", clientPort: 7004, peerPort: 7104, httpPort: 8004 },
  );
  assert.throws(
    () => replicaAddress(CONFIG, args(["4", "c.txt", "--join", "--client-port", "7004"])),
    (e: unknown) =>
      e instanceof UsageError &&
      e.message === "replica 4 is not in cluster.txt: to join, give its address with --host, " +
          "--client-port and --peer-port (and optionally --http-port); missing --host, --peer-port",
  );
});
