import assert from "node:assert/strict";
import type { ByteString } from "../../src/core/types.ts";
import { byteStringToBytes } from "../../src/kv/bytes.ts";
import {
  deadPort,
  type FakeHandler,
  FakeRespServer,
  kvHandler,
} from "../support/fake_resp_server.ts";

const CLI = new URL("../../src/cli/client.ts", import.meta.url).pathname;
const decoder = new TextDecoder();

/** A fake replica holding `map`. */
function kv(map: Map<ByteString, ByteString>): FakeHandler {
  return kvHandler(map, "# lamportkv\r\nid:1\r\nview:1\r\ndelivered:4\r\ndigest:abcd\r\n");
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

async function run(args: string[], stdin = ""): Promise<Run> {
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
    await writer.write(new TextEncoder().encode(stdin)).catch(() => {});
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
    assert.match(r.out, /\n1\s+127\.0\.0\.1:\d+\s+yes\s+1\s+-\s+-\s+-\s+4\s+-\s+-\s+abcd\n$/);
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
    const r = await run(["--timeout", "200", config, "get", "k"]);
    assert.equal(r.code, 1);
    assert.equal(r.out, "");
    assert.match(r.err, /UNAVAILABLE: GET failed within 200 ms/);
    const status = await run([config, "status"]);
    assert.equal(status.code, 1);
    assert.match(status.out, /no/);
  }, 0);
});

Deno.test("cli: bad usage and bad config exit 2; --help exits 0", async () => {
  await withCluster((_, live) => live, async (config) => {
    let r = await run([config, "frob", "x"]);
    assert.equal(r.code, 2);
    assert.match(r.err, /unknown command 'frob'/);
    r = await run([config, "get"]);
    assert.equal(r.code, 2);
    assert.match(r.err, /wrong number of arguments for 'get'/);
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
  assert.match(r.out, /Exit status: 0 success, 1 .*, 2 bad usage/);
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
