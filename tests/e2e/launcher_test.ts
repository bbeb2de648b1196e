/**
 * End to end: the `./lamportkv` launcher at the repository root. Its help and exit codes, that it
 * passes arguments through unchanged (bad usage of an entry point stays exit 2), and a cluster
 * started with it that serves the client started with it (no command line echoed, a 1 MB value
 * through `-x`) and stops on SIGINT.
 *
 * The launcher finds deno on PATH first: the children get this test's deno first on PATH, so
 * nothing is installed.
 *
 * @module
 */
import assert from "node:assert/strict";
import { dirname } from "node:path";
import { configText, freePorts, waitFor } from "../support/cluster.ts";
import { readyLineId } from "../../src/log/format.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const LAUNCHER = `${ROOT}lamportkv`;
const ENV = { PATH: `${dirname(Deno.execPath())}:${Deno.env.get("PATH") ?? ""}` };

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the launcher with `args` (stdin: `stdin`, else nothing) to completion. */
async function launch(args: string[], stdin?: string, cwd = ROOT): Promise<Result> {
  const child = new Deno.Command(LAUNCHER, {
    args,
    cwd,
    env: ENV,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  try {
    if (stdin !== undefined) {
      const writer = child.stdin.getWriter();
      await writer.write(new TextEncoder().encode(stdin));
      await writer.close();
    }
    const out = await child.output();
    const text = new TextDecoder();
    return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
  } finally {
    clearTimeout(timer);
  }
}

function describe(r: Result): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout.slice(0, 2000)}--- stderr\n${r.stderr}`;
}

Deno.test("e2e launcher: --help, help of every command, bad usage exits 2", async () => {
  const mode = (await Deno.stat(LAUNCHER)).mode ?? 0;
  assert.equal(mode & 0o111, 0o111, "./lamportkv is executable");
  for (const args of [["--help"], ["-h"], ["help"]]) {
    const r = await launch(args);
    assert.equal(r.code, 0, describe(r));
    assert.match(r.stdout, /^Usage: \.\/lamportkv/, describe(r));
  }
  for (const command of ["client", "cluster", "node", "bench", "keygen"]) {
    const r = await launch([command, "--help"]);
    assert.equal(r.code, 0, `${command} --help: ${describe(r)}`);
    assert.match(r.stdout, /Usage/, `${command} --help: ${describe(r)}`);
    assert.doesNotMatch(r.stderr, /Task|deno run/, `${command}: the command line is not echoed`);
  }
  for (
    const args of [
      ["node", "0", "config/cluster.txt"],
      ["node", "x"],
      ["node"],
      ["cluster", "no/such/config.txt"],
      ["frobnicate"],
    ]
  ) {
    const r = await launch(args);
    assert.equal(r.code, 2, `${args.join(" ")}: ${describe(r)}`);
    assert.notEqual(r.stderr, "", `${args.join(" ")}: says why`);
  }
});

Deno.test({
  name: "e2e launcher: ./lamportkv cluster serves ./lamportkv client and stops on SIGINT",
  ignore: Deno.build.os !== "linux",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "lamportkv-e2e-launcher-" });
    const ports = freePorts(6);
    const replicas = [1, 2, 3].map((id) => ({
      id,
      clientPort: ports[2 * id - 2],
      peerPort: ports[2 * id - 1],
    }));
    const config = `${dir}/cluster.txt`;
    await Deno.writeTextFile(config, configText(replicas));
    const proc = new Deno.Command(LAUNCHER, {
      args: ["cluster", config],
      cwd: dir,
      env: ENV,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    let log = "";
    const pump = async (stream: ReadableStream<Uint8Array>) => {
      for await (const chunk of stream.pipeThrough(new TextDecoderStream())) log += chunk;
    };
    const output = Promise.all([pump(proc.stdout), pump(proc.stderr)]);
    let stopped = false;
    try {
      // Where to look: each replica's client address, the data directory, how to connect.
      const ready = (id: number) =>
        log.split("\n").some((l) =>
          l.startsWith(`[${id}] `) && readyLineId(l.slice(`[${id}] `.length)) === id
        );
      await waitFor(() => replicas.every(({ id }) => ready(id)), {
        timeoutMs: 30_000,
        message: "every replica's ready line",
      });
      for (const { id, clientPort } of replicas) {
        assert.ok(log.includes(`replica ${id}: clients on 127.0.0.1:${clientPort}`), log);
      }
      assert.ok(log.includes(`data in ${dir}/data/<id>`), log);
      assert.ok(log.includes(`connect with: ./lamportkv client ${config}`), log);

      // The first view may take a moment: retry the first write until it is answered.
      let put: Result | undefined;
      await waitFor(async () => {
        put = await launch(["client", config, "put", "greeting", "hello world"]);
        return put.code === 0;
      }, { timeoutMs: 20_000, message: "a put through ./lamportkv client" });
      assert.equal(put!.stdout, "OK\n", describe(put!));
      // Nothing but the reply: no command line (with its value) echoed to stderr.
      assert.equal(put!.stderr, "", describe(put!));

      const value = "v".repeat(1 << 20);
      const big = await launch(["client", config, "-x", "put", "big"], value);
      assert.equal(big.code, 0, describe(big));
      const strlen = await launch(["client", config, "-r", "3", "strlen", "big"]);
      assert.equal(strlen.stdout, `${1 << 20}\n`, describe(strlen));
      const got = await launch(["client", config, "--replica", "2", "get", "greeting"]);
      assert.equal(got.stdout, "hello world\n", describe(got));

      // The launcher execs the supervisor: SIGINT to it stops every replica, exit 0.
      proc.kill("SIGINT");
      const status = await proc.status;
      stopped = true;
      assert.equal(status.code, 0, log);
    } finally {
      if (!stopped) {
        try {
          proc.kill("SIGKILL");
        } catch {
          // gone
        }
        await proc.status;
      }
      await output;
      await Deno.remove(dir, { recursive: true });
    }
  },
});
