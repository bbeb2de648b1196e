/**
 * Unit tests of the `reshard` and `rebalance` command lines (`src/client/reshard_cli.ts`): their
 * arguments and the errors for bad ones, the progress and summary lines, and the client run as a
 * process against fake replicas (two groups, each an in-memory group of
 * `tests/support/fake_sharded_cluster.ts` behind a RESP server): the keys move, a second run has
 * nothing to do, and a config without groups, an unknown group or a bad range exit with status 2
 * before anything is sent.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  parseReshardArgs,
  progressLine,
  reshardConfigError,
  ReshardUsageError,
  runReshardCommand,
} from "../../src/client/reshard_cli.ts";
import { checkOneShot } from "../../src/cli/client.ts";
import { UsageError } from "../../src/client/repl.ts";
import { parseConfig } from "../../src/config/config.ts";
import { initialSlotMap } from "../../src/kv/slot_map.ts";
import { keySlot } from "../../src/kv/slots.ts";
import {
  encodeArray,
  encodeBulk,
  encodeError,
  encodeInteger,
  encodeSimple,
  RespError,
  type RespValue,
} from "../../src/net/resp.ts";
import { FakeShardedCluster } from "../support/fake_sharded_cluster.ts";
import { FakeRespServer } from "../support/fake_resp_server.ts";

const CLI = new URL("../../src/cli/client.ts", import.meta.url).pathname;

Deno.test("reshard cli: arguments", () => {
  assert.deepEqual(parseReshardArgs(["reshard", "--slots", "0-99", "--to", "g2"]), {
    name: "reshard",
    start: 0,
    end: 99,
    to: "g2",
    batch: 500,
  });
  assert.deepEqual(parseReshardArgs(["RESHARD", "--to=g1", "--slots=7", "--batch", "9"]), {
    name: "reshard",
    start: 7,
    end: 7,
    to: "g1",
    batch: 9,
  });
  assert.deepEqual(parseReshardArgs(["rebalance"]), { name: "rebalance", batch: 500 });
  const bad: [string[], RegExp][] = [
    [["reshard", "--to", "g2"], /--slots <start>-<end> and --to <group> are required/],
    [["reshard", "--slots", "0-1"], /are required/],
    [["reshard", "--slots", "9-1", "--to", "g"], /bad slot range '9-1'/],
    [["reshard", "--slots", "0-16384", "--to", "g"], /bad slot range/],
    [["reshard", "--slots", "0-1", "--to", "g", "--batch", "0"], /--batch must be 1 to 32000/],
    [["reshard", "--slots", "0-1", "--to", "g", "--batch", "x"], /--batch must be/],
    [["reshard", "--slotz", "0-1"], /Unknown option '--slotz'/],
    [["reshard", "g2"], /reshard: /],
    [["rebalance", "--to", "g2"], /rebalance: --to is for reshard/],
  ];
  for (const [argv, message] of bad) {
    assert.throws(() => parseReshardArgs(argv), (e: Error) => {
      assert.ok(e instanceof ReshardUsageError, String(e));
      assert.match(e.message, message);
      return true;
    });
    // The one-shot client refuses it before connecting.
    assert.throws(() => checkOneShot(argv), UsageError);
  }
  assert.match(checkOneShot(["reshard", "--help"])!, /--slots <start>-<end> --to <group>/);
  assert.match(checkOneShot(["help"])!, /REBALANCE \[--batch <n>\]/);

  const plain = parseConfig("1 127.0.0.1 7001 8001\n", "plain.txt");
  assert.match(
    reshardConfigError(plain, { name: "rebalance", batch: 1 })!,
    /^plain\.txt is not a sharded config \(no group= on its replica lines\)/,
  );
  const sharded = parseConfig(
    "1 127.0.0.1 7001 8001 group=a\n2 127.0.0.1 7002 8002 group=b\n",
    "s",
  );
  const to = (group: string) => parseReshardArgs(["reshard", "--slots", "0-1", "--to", group]);
  assert.equal(reshardConfigError(sharded, to("c")), "unknown group 'c' (the groups of s: a, b)");
  assert.equal(reshardConfigError(sharded, to("b")), null);
});

Deno.test("reshard cli: progress lines and the summary", async () => {
  const cluster = new FakeShardedCluster(initialSlotMap(["g1", "g2"]));
  for (let i = 0; i < 50; i++) cluster.put(`k${i}`, "x".repeat(100));
  const before = cluster.group("g2").keys.size;
  const lines: string[] = [];
  const args = parseReshardArgs(["reshard", "--slots", "0-8191", "--to", "g2", "--batch", "10"]);
  const summary = await runReshardCommand(cluster, args, (l) => lines.push(l), 0);
  assert.equal(summary.keys, cluster.group("g2").keys.size - before);
  assert.ok(lines.length >= 3, lines.join("\n"));
  assert.match(
    lines[0],
    /^move 1\/1: g1 -> g2 slots 0-8191: moved 10 keys \(0\.00 MB\) in \d+\.\d s: \d+ keys\/s, /,
  );
  assert.match(lines.at(-2)!, /^move 1\/1: g1 -> g2 slots 0-8191 done: moved \d+ keys/);
  assert.match(
    lines.at(-1)!,
    new RegExp(`^done: 8192 slots in 1 moves, moved ${summary.keys} keys .*; slot map epoch 1$`),
  );
  const again: string[] = [];
  await runReshardCommand(cluster, args, (l) => again.push(l));
  assert.deepEqual(again, ["nothing to move (slot map epoch 1)"]);
  assert.equal(
    progressLine({
      move: { from: "a", to: "b", start: 5, end: 5 },
      index: 2,
      moves: 3,
      keys: 1000,
      bytes: 2_000_000,
      elapsedMs: 2000,
      moveDone: false,
    }),
    "move 2/3: a -> b slots 5: moved 1000 keys (2.00 MB) in 2.0 s: 500 keys/s, 1.00 MB/s",
  );
});

/** The RESP bytes of a reply of the fake groups. */
function encode(value: RespValue): Uint8Array {
  if (value instanceof RespError) return encodeError(value.message);
  if (typeof value === "number") return encodeInteger(value);
  if (Array.isArray(value)) return encodeArray(value.map(encode));
  if (value === "OK") return encodeSimple("OK");
  return encodeBulk(value);
}

/** Runs the client CLI with `args`; its exit status and output. */
async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", "--allow-read", "--allow-env", CLI, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
  try {
    const { code, stdout, stderr } = await child.output();
    const text = new TextDecoder();
    return { code, out: text.decode(stdout), err: text.decode(stderr) };
  } finally {
    clearTimeout(timer);
  }
}

Deno.test({
  name: "reshard cli: the client moves slots between fake groups, and refuses bad input",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const cluster = new FakeShardedCluster(initialSlotMap(["g1", "g2"]));
    const data = new Map(Array.from({ length: 100 }, (_, i) => [`key:${i}`, `value ${i}`]));
    for (const [k, v] of data) cluster.put(k, v);
    const servers = ["g1", "g2"].map((g) =>
      FakeRespServer.start((argv) => encode(cluster.group(g).handle(argv)))
    );
    const dir = await Deno.makeTempDir({ prefix: "lamportkv-reshard-cli-" });
    try {
      const config = `${dir}/sharded.txt`;
      await Deno.writeTextFile(
        config,
        servers.map((s, i) => `${i + 1} 127.0.0.1 ${s.port} ${43000 + i} group=g${i + 1}\n`)
          .join(""),
      );
      const moved = await cli([config, "reshard", "--slots", "100-9000", "--to", "g2"]);
      assert.equal(moved.code, 0, JSON.stringify(moved));
      assert.match(moved.out, /^done: 8092 slots in 1 moves, moved \d+ keys/m);
      assert.deepEqual(cluster.problems(data), []);
      const there = [...data.keys()].filter((k) => keySlot(k) >= 100).length;
      assert.equal(cluster.group("g2").keys.size, there);
      const balanced = await cli([config, "rebalance", "--batch", "7"]);
      assert.equal(balanced.code, 0, JSON.stringify(balanced));
      assert.deepEqual(cluster.problems(data), []);
      assert.deepEqual([cluster.map().count("g1"), cluster.map().count("g2")], [8192, 8192]);
      const sent = servers.map((s) => s.requests.length);

      const plain = `${dir}/plain.txt`;
      await Deno.writeTextFile(plain, `1 127.0.0.1 ${servers[0].port} 43000\n`);
      for (
        const [args, message] of [
          [[plain, "rebalance"], /plain\.txt is not a sharded config/],
          [[config, "reshard", "--slots", "0-1", "--to", "g3"], /unknown group 'g3'/],
          [[config, "reshard", "--slots", "1-0", "--to", "g2"], /bad slot range '1-0'/],
          [[config, "reshard", "--to", "g2"], /are required/],
        ] as const
      ) {
        const r = await cli([...args]);
        assert.equal(r.code, 2, JSON.stringify(r));
        assert.match(r.err, message);
      }
      assert.deepEqual(servers.map((s) => s.requests.length), sent, "nothing sent");
      const help = await cli([config, "reshard", "--help"]);
      assert.equal(help.code, 0);
      assert.match(help.out, /the same command run again resumes it/);
    } finally {
      for (const s of servers) await s.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
