import assert from "node:assert/strict";
import type { ByteString } from "../../src/core/types.ts";
import { byteStringToBytes } from "../../src/kv/bytes.ts";
import {
  deadPort,
  type FakeHandler,
  FakeRespServer,
  lamportLikeHandler,
} from "../support/fake_resp_server.ts";
import { checkOneShot, oneShotOutput, parseInvocation } from "../../src/cli/client.ts";
import { UsageError } from "../../src/client/repl.ts";
import { RespError, RespStatus } from "../../src/net/resp.ts";

const CLI = new URL("../../src/cli/client.ts", import.meta.url).pathname;
const decoder = new TextDecoder();

/** A fake replica holding `map`. */
function kv(map: Map<ByteString, ByteString>): FakeHandler {
  return lamportLikeHandler(
    map,
    "# lamportkv\r\nid:1\r\nview:1\r\ndelivered:4\r\ndigest:abcd\r\n",
  );
}

async function writeConfig(ports: number[]): Promise<string> {
  const path = await Deno.makeTempFile({ prefix: "lamportkv-client-", suffix: ".conf" });
  const lines = ports.map((port, i) => `${i + 1} 127.0.0.1 ${port} ${42000 + i}`);
  await Deno.writeTextFile(path, "# test cluster\n" + lines.join("\n") + "\n");
  return path;
}

interface Run {
  code: number;
  stdout: Uint8Array;
  out: string;
  err: string;
}

async function run(args: string[], stdin: string | Uint8Array = ""): Promise<Run> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", "--allow-read", "--allow-env", CLI, ...args],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = killAfter(child, 30_000);
  try {
    const writer = child.stdin.getWriter();
    // A client that exits before reading all of stdin makes these fail; its output says why.
    const bytes = typeof stdin === "string" ? new TextEncoder().encode(stdin) : stdin;
    await writer.write(bytes).catch(() => {});
    await writer.close().catch(() => {});
    const { code, stdout, stderr } = await child.output();
    return { code, stdout, out: decoder.decode(stdout), err: decoder.decode(stderr) };
  } finally {
    clearTimeout(timer);
  }
}

/** SIGKILLs `child` after `ms` unless the returned timer is cleared first. */
function killAfter(child: Deno.ChildProcess, ms: number): ReturnType<typeof setTimeout> {
  return setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch {
      // already exited
    }
  }, ms);
}

async function withCluster(
  ports: (map: Map<ByteString, ByteString>, live: number[]) => number[],
  body: (config: string, map: Map<ByteString, ByteString>) => Promise<void>,
  liveCount = 1,
): Promise<void> {
  const map = new Map<ByteString, ByteString>();
  const servers = Array.from({ length: liveCount }, () => FakeRespServer.start(kv(map)));
  const config = await writeConfig(ports(map, servers.map((s) => s.port)));
  try {
    await body(config, map);
  } finally {
    await Deno.remove(config);
    for (const s of servers) await s.close();
  }
}

Deno.test("cli: one-shot commands print script-friendly output", async () => {
  await withCluster((_, live) => live, async (config, map) => {
    let r = await run([config, "PUT", "greeting", "héllo"]);
    assert.deepEqual([r.code, r.out, r.err], [0, "OK\n", ""]);
    assert.equal(map.get("greeting"), "h\xc3\xa9llo");

    map.set("bin", "a\x00b\xff\n");
    r = await run([config, "get", "bin"]);
    assert.equal(r.code, 0);
    assert.deepEqual(r.stdout, byteStringToBytes("a\x00b\xff\n\n")); // raw bytes + newline

    r = await run([config, "get", "missing"]);
    assert.deepEqual([r.code, r.out], [0, "(nil)\n"]);
    r = await run([config, "exists", "greeting"]);
    assert.deepEqual([r.code, r.out], [0, "1\n"]);
    r = await run([config, "del", "greeting"]);
    assert.deepEqual([r.code, r.out], [0, "1\n"]);
    r = await run([config, "delete", "greeting"]);
    assert.deepEqual([r.code, r.out], [0, "0\n"]);
    r = await run([config, "has", "greeting"]);
    assert.deepEqual([r.code, r.out], [0, "0\n"]);
    r = await run([config, "set", "neg", "-1"]);
    assert.equal(r.code, 0);
    assert.equal(map.get("neg"), "-1");
    r = await run([config, "status"]);
    assert.equal(r.code, 0);
    assert.match(r.out, /^id\s+address\s+reachable/);
    assert.match(r.out, /\n1\s+127\.0\.0\.1:\d+\s+yes\s+1\s+-\s+-\s+-\s+-\s+4\s+-\s+-\s+abcd\n$/);
  });
});

Deno.test("cli: any command passes through; replies printed as redis-cli prints to a pipe", async () => {
  await withCluster((_, live) => live, async (config, map) => {
    let r = await run([config, "INCR", "n"]);
    assert.deepEqual([r.code, r.out, r.err], [0, "1\n", ""]);
    r = await run([config, "mget", "n", "nope", "n"]);
    assert.deepEqual([r.code, r.out], [0, "1\n\n1\n"]); // nil inside an array: empty line
    map.set("a", "x y");
    r = await run([config, "scan", "0"]);
    assert.deepEqual([r.code, r.out], [0, "0\na\nn\n"]); // nested arrays flattened
    r = await run([config, "keys", "*"]);
    assert.deepEqual([r.code, r.out], [0, "\n"]); // empty array
    r = await run([config, "ping"]);
    assert.deepEqual([r.code, r.out], [0, "PONG\n"]);
    // An error reply: on stderr, exit status 1.
    r = await run([config, "lpush", "n", "x"]);
    assert.deepEqual([r.code, r.out, r.err], [
      1,
      "",
      "(error) WRONGTYPE Operation against a key holding the wrong kind of value\n",
    ]);
    r = await run([config, "frob", "x"]);
    assert.deepEqual([r.code, r.out], [1, ""]);
    assert.equal(r.err, "(error) ERR unknown command 'frob', with args beginning with: 'x' \n");
  });
});

Deno.test("cli: -x reads the last argument from stdin, bytes as they are", async () => {
  await withCluster((_, live) => live, async (config, map) => {
    const value = new Uint8Array(300_000).map((_, i) => (i * 7) % 256);
    let r = await run([config, "-x", "put", "big"], value);
    assert.deepEqual([r.code, r.out, r.err], [0, "OK\n", ""]);
    assert.deepEqual(byteStringToBytes(map.get("big")!), value);
    r = await run(["--stdin", config, "SET", "line"], "hello\n");
    assert.equal(r.code, 0);
    assert.equal(map.get("line"), "hello\n"); // the trailing newline is kept, as in redis-cli
    r = await run([config, "-x", "get"], "line");
    assert.deepEqual([r.code, r.out], [0, "hello\n\n"]);
    r = await run([config, "-x"], "v");
    assert.equal(r.code, 2);
    assert.match(r.err, /-x needs a command/);
  });
});

Deno.test("cli: failover is announced on stderr; no replica gives exit 1", async () => {
  await withCluster((_, live) => [deadPort(), ...live], async (config, map) => {
    const r = await run([config, "put", "k", "v"]);
    assert.equal(r.code, 0);
    assert.equal(r.out, "OK\n");
    assert.match(
      r.err,
      /^replica 1 \(127\.0\.0\.1:\d+\) is unreachable; switched to replica 2 \(127\.0\.0\.1:\d+\)\n$/,
    );
    assert.equal(map.get("k"), "v");
  });
  await withCluster(() => [deadPort(), deadPort()], async (config) => {
    // Every replica refuses the connection: a definite answer, so it fails at once (not at the
    // 60 s deadline), naming each replica and why.
    const started = performance.now();
    const r = await run(["--timeout", "60000", config, "get", "k"]);
    assert.ok(performance.now() - started < 20_000, "failed at once");
    assert.equal(r.code, 1);
    assert.equal(r.out, "");
    assert.match(
      r.err,
      /UNAVAILABLE: get: no replica can be reached: replica 1 \(127\.0\.0\.1:\d+\): cannot connect .*; replica 2 \(127\.0\.0\.1:\d+\): cannot connect .* \(it was not applied\)\n$/,
    );
    const status = await run([config, "status"]);
    assert.equal(status.code, 1);
    assert.match(status.out, /no/);
  }, 0);
});

Deno.test("cli: bad usage and bad config exit 2; --help exits 0", async () => {
  await withCluster((_, live) => live, async (config) => {
    let r = await run([config, "get"]);
    assert.deepEqual([r.code, r.out], [2, ""]);
    assert.equal(
      r.err,
      "(error) ERR wrong number of arguments for 'get' command\nusage: GET key\n",
    );
    r = await run([config, "status", "x"]);
    assert.equal(r.code, 2);
    r = await run([config, "help", "nosuch"]);
    assert.equal(r.code, 2);
    assert.match(r.err, /no help for 'nosuch'/);
    r = await run(["--timeout", "x", config, "get", "k"]);
    assert.equal(r.code, 2);
    r = await run(["--replica", "7", config, "get", "k"]);
    assert.equal(r.code, 2);
    assert.match(r.err, /no replica with id 7/);
  });
  let r = await run([]);
  assert.equal(r.code, 2);
  assert.match(r.err, /missing <config>/);
  r = await run(["/nonexistent/lamportkv.conf", "get", "k"]);
  assert.equal(r.code, 2);
  assert.match(r.err, /\/nonexistent\/lamportkv\.conf: cannot read/);
  r = await run(["--help"]);
  assert.equal(r.code, 0);
  assert.match(r.out, /^Usage: deno task client <config>/);
  assert.match(r.out, /Exit status: 0 success, 1 .*, 2 bad\s+usage/);
  assert.match(r.out, /-x, --stdin/);
});

Deno.test("cli: help and help <command> are answered without the cluster", async () => {
  const config = await writeConfig([deadPort()]);
  try {
    let r = await run([config, "help"]);
    assert.equal(r.code, 0);
    assert.match(r.out, /^ {2}STATUS /m);
    assert.match(r.out, /^@string:\n/m);
    assert.match(r.out, /^ {2}INCR key$/m);
    assert.doesNotMatch(r.out, /^ {2}EXIT/m); // a REPL command only
    r = await run([config, "HELP", "incr"]);
    assert.equal(r.code, 0);
    assert.match(
      r.out,
      /^\n {2}INCR key\n {2}summary: .*\n {2}since: 1\.0\.0\n {2}group: string\n\n$/,
    );
  } finally {
    await Deno.remove(config);
  }
});

Deno.test("oneShotOutput and checkOneShot: output rules and usage errors", () => {
  assert.equal(oneShotOutput(new RespStatus("OK")), "OK\n");
  assert.equal(oneShotOutput("a\x00\xff"), "a\x00\xff\n");
  assert.equal(oneShotOutput(""), "\n");
  assert.equal(oneShotOutput(null), "(nil)\n"); // only on its own
  assert.equal(oneShotOutput(["1", null]), "1\n\n");
  assert.equal(oneShotOutput(7), "7\n");
  assert.equal(oneShotOutput([new RespError("ERR x"), "1"]), "ERR x\n\n1\n");
  assert.equal(checkOneShot(["get", "k"]), null);
  assert.equal(checkOneShot(["frob"]), null); // the server answers unknown commands
  assert.throws(
    () => checkOneShot(["SET", "k"]),
    (e: unknown) =>
      e instanceof UsageError &&
      e.message ===
        "(error) ERR wrong number of arguments for 'set' command\nusage: SET key value [NX | XX] " +
          "[GET] [EX seconds | PX milliseconds | EXAT unix-time-seconds | " +
          "PXAT unix-time-milliseconds | KEEPTTL]",
  );
  assert.throws(() => checkOneShot(["status", "x"]), /usage: STATUS$/);
  assert.throws(() => checkOneShot(["help", "a", "b"]), /usage: HELP \[command \| @group\]$/);
  assert.match(checkOneShot(["help"])!, /^Commands go to the cluster/);
  assert.match(checkOneShot(["help", "@lamportkv"])!, /PUT key value/);
  // QUIT and EXIT are the REPL's: one-shot, QUIT goes to the server.
  assert.equal(checkOneShot(["quit"]), null);
});

Deno.test("parseInvocation: -x / --stdin before the command", () => {
  assert.equal(parseInvocation(["-x", "c.conf", "put", "k"]).lastFromStdin, true);
  assert.equal(parseInvocation(["c.conf", "--stdin", "put", "k"]).lastFromStdin, true);
  const literal = parseInvocation(["c.conf", "put", "k", "-x"]);
  assert.deepEqual([literal.lastFromStdin, literal.command], [false, ["put", "k", "-x"]]);
  assert.throws(() => parseInvocation(["-x", "c.conf"]), /-x needs a command/);
  assert.equal(parseInvocation(["-x", "--help"]).help, true);
});

Deno.test("cli: the REPL reads piped commands and exits 0 at end of input", async () => {
  await withCluster((_, live) => live, async (config) => {
    const r = await run(
      ["--replica", "1", config],
      'put "a key" "two words"\nget "a key"\nhas nope\n',
    );
    assert.equal(r.code, 0);
    assert.equal(r.out, 'OK\n"two words"\n(integer) 0\n');
  });
});

Deno.test("cli: SIGINT ends the REPL with exit 0", async () => {
  await withCluster((_, live) => live, async (config) => {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-net", "--allow-read", "--allow-env", CLI, config],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const writer = child.stdin.getWriter();
    const reader = child.stdout.getReader();
    // A blocked read or exit ends when the child is killed at the deadline.
    const timer = killAfter(child, 20_000);
    try {
      await writer.write(new TextEncoder().encode("put k v\n"));
      let seen = "";
      while (!seen.includes("OK\n")) {
        const { value, done } = await reader.read();
        if (done) break;
        seen += decoder.decode(value);
      }
      assert.equal(seen, "OK\n", "no OK from the REPL within 20 s");
      child.kill("SIGINT");
      const status = await child.status;
      assert.equal(status.code, 0);
    } finally {
      reader.releaseLock();
      await writer.close().catch(() => {});
      await child.stdout.cancel().catch(() => {});
      await child.stderr.cancel().catch(() => {});
      try {
        child.kill();
      } catch {
        // already exited
      }
      await child.status;
      clearTimeout(timer);
    }
  });
});
