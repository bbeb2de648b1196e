/**
 * End to end: the real `redis-cli` and `redis-benchmark` against a 3-replica cluster. Skipped
 * (ignored, with a visible `SKIPPED:` line) when `redis-cli` is not installed; the benchmark step
 * is skipped the same way when only `redis-benchmark` is missing.
 *
 * Sanitizers: off, because the replica child processes and their output pipes outlive single
 * async ops by design (the harness awaits them all in `stop()`).
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  type CommandResult,
  runCommand,
  type TestCluster,
  withCluster,
} from "../support/cluster.ts";

/** Whether `program` can be run (`<program> --version` succeeds). */
async function hasProgram(program: string): Promise<boolean> {
  try {
    const out = await new Deno.Command(program, {
      args: ["--version"],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).output();
    return out.success;
  } catch {
    return false;
  }
}

const HAVE_REDIS_CLI = await hasProgram("redis-cli");
const HAVE_REDIS_BENCHMARK = HAVE_REDIS_CLI && await hasProgram("redis-benchmark");
if (!HAVE_REDIS_CLI) {
  console.log("SKIPPED: redis-cli not installed (apt-get install redis-tools)");
} else if (!HAVE_REDIS_BENCHMARK) {
  console.log("SKIPPED: redis-benchmark step: redis-benchmark not installed");
}

/** Runs `redis-cli -h 127.0.0.1 -p <port> <args>`; fails on a non-zero exit. */
async function redisCli(
  port: number,
  args: string[],
  stdin?: string,
): Promise<CommandResult> {
  const result = await runCommand("redis-cli", ["-h", "127.0.0.1", "-p", String(port), ...args], {
    stdin,
    timeoutMs: 15_000,
  });
  assert.equal(
    result.code,
    0,
    `redis-cli ${args.join(" ")} exited ${result.code}\nstdout: ${result.stdout}\n` +
      `stderr: ${result.stderr}`,
  );
  return result;
}

/** The output of a one-command `redis-cli` call, without its final newline. */
async function cli(cluster: TestCluster, replica: number, ...args: string[]): Promise<string> {
  const { stdout } = await redisCli(cluster.clientPort(replica), args);
  return stdout.replace(/\n$/, "");
}

Deno.test({
  name: "e2e: redis-cli and redis-benchmark work against a 3-replica cluster",
  ignore: !HAVE_REDIS_CLI,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    await withCluster({ replicas: 3 }, async (cluster) => {
      const step = (name: string, fn: () => Promise<void>) =>
        t.step({ name, fn, sanitizeOps: false, sanitizeResources: false });

      await step("SET on one replica, GET on another", async () => {
        assert.equal(await cli(cluster, 1, "SET", "k", "v"), "OK");
        assert.equal(await cli(cluster, 2, "GET", "k"), "v");
        assert.equal(await cli(cluster, 3, "GET", "k"), "v");
      });

      await step("EXISTS, DEL, missing key", async () => {
        assert.equal(await cli(cluster, 3, "EXISTS", "k"), "1");
        assert.equal(await cli(cluster, 2, "DEL", "k"), "1");
        assert.equal(await cli(cluster, 1, "EXISTS", "k"), "0");
        assert.equal(await cli(cluster, 1, "DEL", "k"), "0");
        // Raw mode prints nil and "" alike; --no-raw tells them apart.
        assert.equal(await cli(cluster, 3, "--no-raw", "GET", "k"), "(nil)");
      });

      await step("PING and INFO", async () => {
        assert.equal(await cli(cluster, 1, "PING"), "PONG");
        assert.equal(await cli(cluster, 2, "PING", "hello there"), "hello there");
        const info = await cli(cluster, 3, "INFO");
        assert.match(info, /^digest:/m, `INFO output:\n${info}`);
        assert.match(info, /^delivered:\d+/m, `INFO output:\n${info}`);
      });

      await step("a value with spaces and newlines survives", async () => {
        const value = "a b\nc  d\r\n\tend ";
        assert.equal(await cli(cluster, 1, "SET", "key with spaces", value), "OK");
        const { stdout } = await redisCli(cluster.clientPort(2), ["GET", "key with spaces"]);
        assert.equal(stdout, value + "\n");
        // -x: the last argument from stdin, byte for byte (redis-cli keeps the final newline)
        await redisCli(cluster.clientPort(3), ["-x", "SET", "from-stdin"], "line 1\nline 2\n");
        const got = await redisCli(cluster.clientPort(1), ["GET", "from-stdin"]);
        assert.equal(got.stdout, "line 1\nline 2\n\n");
      });

      await step("an unknown command is an error; the connection keeps working", async () => {
        const { stdout } = await redisCli(
          cluster.clientPort(2),
          [],
          "NOSUCHCOMMAND x y\nSET after-error yes\nGET after-error\nPING\n",
        );
        const lines = stdout.split("\n").filter((l) => l !== "");
        assert.match(lines[0] ?? "", /^ERR unknown command 'NOSUCHCOMMAND'/, stdout);
        assert.deepEqual(lines.slice(1), ["OK", "yes", "PONG"], stdout);
      });

      await t.step({
        name: "redis-benchmark -t set,get finishes and the replicas agree",
        ignore: !HAVE_REDIS_BENCHMARK,
        sanitizeOps: false,
        sanitizeResources: false,
        async fn() {
          const before = await cluster.waitForAgreement();
          const n = 2000;
          const port = String(cluster.clientPort(1));
          const result = await runCommand(
            "redis-benchmark",
            ["-h", "127.0.0.1", "-p", port, "-t", "set,get", "-n", String(n), "-c", "8", "-q"],
            { timeoutMs: 60_000 },
          );
          console.log(`redis-benchmark:\n${result.stdout.trim()}`);
          assert.equal(result.code, 0, `redis-benchmark failed:\n${result.stdout}${result.stderr}`);
          assert.match(result.stdout, /^SET: /m, result.stdout);
          assert.match(result.stdout, /^GET: /m, result.stdout);
          // Every SET went through the order (GETs are answered without a log index).
          await cluster.waitForAgreement({ minDelivered: before.delivered + n });
        },
      });
    });
  },
});
