/**
 * End to end: the command-line entry points as a user runs them. `src/cli/client.ts` one-shot
 * commands and the interactive client through piped stdin against a real cluster; exit codes
 * and messages for bad usage, bad config files and `--help` of every entry point; a replica
 * stopping on SIGTERM; `src/cli/cluster.ts` starting every replica with prefixed output, serving,
 * and stopping every child on SIGINT.
 *
 * Sanitizers: off in the tests that run a cluster, because the replica child processes and their
 * output pipes outlive single async ops by design (the harnesses await them all before the test
 * ends). The test without a cluster keeps them on.
 *
 * @module
 */
import assert from "node:assert/strict";
import { parseInfo } from "../../src/net/info.ts";
import { RespError } from "../../src/net/resp.ts";
import {
  CLIENT_TS,
  CLUSTER_TS,
  type CommandResult,
  configText,
  freePorts,
  NODE_PERMISSIONS,
  NODE_TS,
  portIsFree,
  respCall,
  RespTestClient,
  runCommand,
  type TestCluster,
  waitFor,
  withCluster,
} from "../support/cluster.ts";
import { readyLineId } from "../../src/log/format.ts";

/** Permissions of the `client` task. */
const CLIENT_PERMISSIONS = ["--allow-net", "--allow-read", "--allow-env"];

function deno(args: string[], stdin?: string): Promise<CommandResult> {
  return runCommand(Deno.execPath(), args, { stdin, timeoutMs: 30_000 });
}

/** Runs the client entry point with `args`. */
function client(args: string[], stdin?: string): Promise<CommandResult> {
  return deno(["run", ...CLIENT_PERMISSIONS, CLIENT_TS, ...args], stdin);
}

function describe(r: CommandResult): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`;
}

/** Asserts a successful run whose stdout is exactly `stdout`. */
function assertPrints(r: CommandResult, stdout: string, what: string): void {
  assert.equal(r.code, 0, `${what}: ${describe(r)}`);
  assert.equal(r.stdout, stdout, `${what}: ${describe(r)}`);
}

Deno.test({
  name: "e2e cli: one-shot client commands, bad usage, interactive client, replica SIGTERM",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    await withCluster({ replicas: 3 }, async (cluster: TestCluster) => {
      const config = cluster.configPath;
      const step = (name: string, fn: () => Promise<void>) =>
        t.step({ name, fn, sanitizeOps: false, sanitizeResources: false });

      await step("put, get, has, delete, missing key", async () => {
        assertPrints(await client([config, "put", "k", "v"]), "OK\n", "put k v");
        assertPrints(await client([config, "--replica", "2", "get", "k"]), "v\n", "get k");
        assertPrints(await client([config, "-r", "3", "has", "k"]), "1\n", "has k");
        assertPrints(await client([config, "delete", "k"]), "1\n", "delete k");
        assertPrints(await client([config, "get", "k"]), "(nil)\n", "get deleted k");
        assertPrints(await client([config, "has", "k"]), "0\n", "has deleted k");
        assertPrints(await client([config, "delete", "k"]), "0\n", "delete deleted k");
        assertPrints(await client([config, "get", "never-set"]), "(nil)\n", "get missing key");
        assertPrints(await client([config, "put", "s p", "a b\nc"]), "OK\n", "put with spaces");
        assertPrints(await client([config, "-r", "3", "get", "s p"]), "a b\nc\n", "get spaces");
        assertPrints(await client([config, "put", "neg", "-1"]), "OK\n", "put k -1");
        assertPrints(await client([config, "get", "neg"]), "-1\n", "get k -1");
      });

      await step("-x: a 1 MB value from stdin (too long for an argument list)", async () => {
        // 1 MiB of printable text: `put big "$(cat 1mb)"` fails with "Argument list too long".
        const value = Array.from({ length: 1 << 20 }, (_, i) => String.fromCharCode(33 + i % 90))
          .join("");
        const path = await Deno.makeTempFile({ prefix: "lamportkv-1mb-" });
        try {
          await Deno.writeTextFile(path, value);
          // Through a shell redirect, as a user would run it.
          const put = await runCommand("bash", [
            "-c",
            `"$0" run ${CLIENT_PERMISSIONS.join(" ")} "$1" "$2" -x put big < "$3"`,
            Deno.execPath(),
            CLIENT_TS,
            config,
            path,
          ], { timeoutMs: 30_000 });
          assertPrints(put, "OK\n", "-x put big < 1mb");
        } finally {
          await Deno.remove(path);
        }
        assertPrints(await client([config, "-r", "2", "strlen", "big"]), `${1 << 20}\n`, "strlen");
        const got = await client([config, "-r", "3", "get", "big"]);
        assert.equal(got.code, 0, describe(got));
        assert.ok(got.stdout === value + "\n", "get big returns the 1 MB value as it was");
        // --stdin is the long name; the trailing newline of stdin is kept, as in redis-cli.
        assertPrints(await client(["--stdin", config, "set", "line"], "x\n"), "OK\n", "--stdin");
        assertPrints(await client([config, "strlen", "line"]), "2\n", "strlen line");
      });

      await step("bad usage exits 2", async () => {
        for (
          const args of [
            [],
            [config, "put", "only-key"],
            [config, "get"],
            [config, "--timeout", "abc", "get", "k"],
            [config, "--replica", "0", "get", "k"],
            [config, "--no-such-option", "get", "k"],
          ]
        ) {
          const r = await client(args);
          assert.equal(r.code, 2, `client ${args.join(" ")}: ${describe(r)}`);
          assert.notEqual(r.stderr.trim(), "", `client ${args.join(" ")}: no message`);
          assert.equal(r.stdout, "", `client ${args.join(" ")}: ${describe(r)}`);
        }
        const r = await client([config, "--replica", "9", "get", "k"]);
        assert.equal(r.code, 2, `--replica 9: ${describe(r)}`);
        assert.ok(r.stderr.includes(config), `--replica 9 should name the file: ${describe(r)}`);
      });

      await step("any command passes through; redis-cli's output to a pipe", async () => {
        assertPrints(await client([config, "INCR", "n"]), "1\n", "INCR n");
        assertPrints(await client([config, "-r", "2", "incr", "n"]), "2\n", "incr n");
        assertPrints(await client([config, "MSET", "a", "1", "b", "2"]), "OK\n", "MSET");
        assertPrints(await client([config, "MGET", "a", "nope", "b"]), "1\n\n2\n", "MGET");
        assertPrints(
          await client([config, "SET", "t", "v", "NX", "PX", "60000"]),
          "OK\n",
          "SET NX",
        );
        assertPrints(await client([config, "SET", "t", "w", "NX", "PX", "60000"]), "(nil)\n", "NX");
        const pttl = await client([config, "PTTL", "t"]);
        assert.equal(pttl.code, 0, describe(pttl));
        const ms = Number(pttl.stdout.trim());
        assert.ok(ms > 0 && ms <= 60_000, `PTTL t: ${describe(pttl)}`);
        assertPrints(await client([config, "EXPIRE", "a", "100"]), "1\n", "EXPIRE a 100");
        const ttl = await client([config, "TTL", "a"]);
        assert.match(ttl.stdout, /^(99|100)\n$/, `TTL a: ${describe(ttl)}`);
        assertPrints(await client([config, "ping"]), "PONG\n", "ping");

        // Error replies: "(error) ..." on stderr, exit status 1.
        for (
          const [args, error] of [
            [["incr", "t"], "ERR value is not an integer or out of range"],
            [
              ["frobnicate", "k"],
              "ERR unknown command 'frobnicate', with args beginning with: 'k' ",
            ],
          ] as [string[], string][]
        ) {
          const r = await client([config, ...args]);
          assert.equal(r.code, 1, `${args.join(" ")}: ${describe(r)}`);
          assert.equal(r.stdout, "", `${args.join(" ")}: ${describe(r)}`);
          assert.equal(r.stderr, `(error) ${error}\n`, `${args.join(" ")}: ${describe(r)}`);
        }

        // -x: the last argument is all of stdin.
        const text = "line 1\nline 2 \u00e9\n";
        assertPrints(await client([config, "-x", "put", "from-stdin"], text), "OK\n", "-x put");
        assertPrints(await client([config, "get", "from-stdin"]), text + "\n", "get from-stdin");
        assertPrints(await client([config, "-x", "strlen"], "from-stdin"), "17\n", "-x strlen");
      });

      await step("interactive client: any command, redis-cli replies, MULTI/EXEC", async () => {
        const r = await client(
          [config],
          [
            "set x 10",
            "multi",
            "incr x",
            "set y v",
            "mget x y nope",
            "exec",
            "multi",
            "get",
            "exec",
            "get",
            "incr y",
            "mget x y",
            "quit",
          ].join("\n") + "\n",
        );
        assert.equal(r.code, 0, describe(r));
        assert.equal(
          r.stdout,
          [
            "OK",
            "OK",
            "QUEUED",
            "QUEUED",
            "QUEUED",
            "1) (integer) 11",
            "2) OK",
            '3) 1) "11"',
            '   2) "v"',
            "   3) (nil)",
            "OK",
            // Inside MULTI the wrong arity goes to the server, which aborts EXEC as Redis does.
            "(error) ERR wrong number of arguments for 'get' command",
            "(error) EXECABORT Transaction discarded because of previous errors.",
            "(error) ERR wrong number of arguments for 'get' command",
            "(error) ERR value is not an integer or out of range",
            '1) "11"',
            '2) "v"',
            "",
          ].join("\n"),
          describe(r),
        );
      });

      await step("interactive client through piped stdin", async () => {
        const r = await client([config], "put a 1\nget a\nnosuch\nstatus\nquit\nget a\n");
        assert.equal(r.code, 0, describe(r));
        const lines = r.stdout.split("\n");
        assert.equal(lines[0], "OK", describe(r));
        assert.equal(lines[1], '"1"', describe(r));
        assert.match(lines[2], /^\(error\) .*nosuch/, describe(r));
        assert.match(lines[3], /^id\s+address\s+reachable\b.*\bdigest$/, describe(r));
        for (const id of cluster.ids) {
          const row = lines.find((l) => l.startsWith(`${id} `));
          assert.ok(row, `no status row for replica ${id}: ${describe(r)}`);
          assert.ok(row.includes(`127.0.0.1:${cluster.clientPort(id)}`), row);
          assert.match(row, /\byes\b/, row);
        }
        // Nothing after quit ran: the last "get a" printed nothing.
        assert.equal(lines.filter((l) => l === '"1"').length, 1, describe(r));
      });

      await step("membership commands: members, status roles, refusals, bad input", async () => {
        const m = await client([config, "-r", "2", "members"]);
        assert.equal(m.code, 0, describe(m));
        const lines = m.stdout.trimEnd().split("\n");
        assert.match(lines[0], /^id\s+address\s+client\s+peer\s+http\s+role\s+state$/, describe(m));
        for (const id of cluster.ids) {
          const row = lines.find((l) => l.startsWith(`${id} `));
          assert.ok(row, `no members row for replica ${id}: ${describe(m)}`);
          assert.match(
            row,
            new RegExp(`\\s${cluster.clientPort(id)}\\s.*\\bvoter\\s+in-view$`),
            row,
          );
        }
        assert.equal(
          lines.at(-1),
          `voters: ${cluster.ids.join(",")}  learners: none  (as replica 2 sees it)`,
          describe(m),
        );
        const s = await client([config, "status"]);
        assert.equal(s.code, 0, describe(s));
        assert.match(s.stdout, /^id\s+address\s+reachable\s+view\s+state\s+role\b/, describe(s));
        for (const id of cluster.ids) {
          const row = s.stdout.split("\n").find((l) => l.startsWith(`${id} `));
          assert.match(row ?? "", /\bnormal\s+voter\b/, describe(s));
        }
        assert.ok(
          s.stdout.includes(`configuration: voters ${cluster.ids.join(",")}; learners none`),
          describe(s),
        );
        const p = await client([config, "promote", "1"]);
        assert.equal(p.code, 1, describe(p));
        assert.equal(p.stderr, "(error) ERR replica 1 is already a voter\n", describe(p));
        const bad = await client([config, "add", "4", "127.0.0.1", "0", "1"]);
        assert.equal(bad.code, 2, describe(bad));
        assert.match(
          bad.stderr,
          /invalid port '0' \(1\.\.65535\)\nusage: ADD <id> <host>/,
          describe(bad),
        );
      });

      await step("a replica stops cleanly on SIGTERM (exit 0)", async () => {
        const status = await cluster.kill(3, "SIGTERM");
        assert.equal(status.code, 0, `replica 3 exit status ${JSON.stringify(status)}`);
        await waitFor(
          () => portIsFree(cluster.clientPort(3)) && portIsFree(cluster.peerPort(3)),
          { timeoutMs: 5000, message: "replica 3's ports to be free" },
        );
      });

      await step("a replica that serves no data says LOADING, as Redis while loading", async () => {
        // With 2 and 3 gone, replica 1 has no majority: it serves nothing.
        await cluster.kill(2, "SIGKILL");
        const port = cluster.clientPort(1);
        await waitFor(async () => (await cluster.info(1)).loading === "1", {
          timeoutMs: 10_000,
          message: "replica 1 to report loading:1",
        });
        const ping = await respCall(port, ["PING"]);
        assert.ok(ping instanceof RespError && ping.code === "LOADING", String(ping));
        // Back in a view with 2: serving again.
        await cluster.restart(2);
        await cluster.waitForView({ ids: [1, 2] });
        assert.equal((await cluster.info(1)).loading, "0");
        assert.equal(await respCall(port, ["PING"]), "PONG");
      });
    });
  },
});

Deno.test("e2e cli: --help, bad config files, unknown replica id", async () => {
  const dir = await Deno.makeTempDir({ prefix: "lamportkv-e2e-cli-" });
  try {
    const nodeRun = ["run", ...NODE_PERMISSIONS, NODE_TS];
    const clusterRun = ["run", ...NODE_PERMISSIONS, "--allow-run", CLUSTER_TS];
    const clientRun = ["run", ...CLIENT_PERMISSIONS, CLIENT_TS];

    for (const [name, run] of [["node", nodeRun], ["cluster", clusterRun], ["client", clientRun]]) {
      for (const flag of ["--help", "-h"]) {
        const r = await deno([...run, flag]);
        assert.equal(r.code, 0, `${name} ${flag}: ${describe(r)}`);
        assert.match(r.stdout, /Usage/, `${name} ${flag}: ${describe(r)}`);
      }
    }

    const [c1, p1, c2, p2] = freePorts(4);
    const bad = `${dir}/bad.txt`;
    await Deno.writeTextFile(
      bad,
      `# a config with an error on line 3\n1 127.0.0.1 ${c1} ${p1}\n2 127.0.0.1 ${c2}\n`,
    );
    for (
      const [name, args] of [
        ["node", [...nodeRun, "1", bad]],
        ["cluster", [...clusterRun, bad]],
        ["client", [...clientRun, bad, "get", "k"]],
        ["client (interactive)", [...clientRun, bad]],
      ] as const
    ) {
      const r = await deno([...args], "");
      assert.equal(r.code, 2, `${name} with a bad config: ${describe(r)}`);
      assert.ok(
        r.stderr.includes(`${bad}:3:`),
        `${name}: expected "${bad}:3:" in stderr:\n${describe(r)}`,
      );
    }

    const missing = `${dir}/does-not-exist.txt`;
    for (
      const [name, args] of [
        ["node", [...nodeRun, "1", missing]],
        ["cluster", [...clusterRun, missing]],
        ["client", [...clientRun, missing, "get", "k"]],
      ] as const
    ) {
      const r = await deno([...args]);
      assert.equal(r.code, 2, `${name} with a missing config: ${describe(r)}`);
      assert.ok(r.stderr.includes(missing), `${name}: should name ${missing}: ${describe(r)}`);
    }

    const good = `${dir}/good.txt`;
    await Deno.writeTextFile(
      good,
      configText([{ id: 1, clientPort: c1, peerPort: p1 }, {
        id: 2,
        clientPort: c2,
        peerPort: p2,
      }]),
    );
    const r = await deno([...nodeRun, "9", good]);
    assert.equal(r.code, 2, `node with unknown id 9: ${describe(r)}`);
    assert.ok(r.stderr.includes(good), `node 9 should name ${good}: ${describe(r)}`);

    for (const args of [[...nodeRun], [...nodeRun, "x", good], [...nodeRun, "1", good, "extra"]]) {
      const r = await deno(args);
      assert.equal(r.code, 2, `${args.slice(-3).join(" ")}: ${describe(r)}`);
    }
    for (const args of [[...clusterRun], [...clusterRun, good, "extra"]]) {
      const r = await deno(args);
      assert.equal(r.code, 2, `${args.slice(-2).join(" ")}: ${describe(r)}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** A process's start time (field 22 of /proc/<pid>/stat), or null if there is no such process. */
async function startTime(pid: number): Promise<string | null> {
  try {
    const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? null;
  } catch {
    return null;
  }
}

/** Direct children of `pid`, with their start times (Linux /proc). */
async function childrenOf(pid: number): Promise<{ pid: number; start: string }[]> {
  const out: { pid: number; start: string }[] = [];
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^[0-9]+$/.test(entry.name)) continue;
    try {
      const stat = await Deno.readTextFile(`/proc/${entry.name}/stat`);
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(fields[1]) === pid) out.push({ pid: Number(entry.name), start: fields[19] });
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

Deno.test({
  name: "e2e cli: cluster.ts starts every replica, serves, and stops them all on SIGINT",
  ignore: Deno.build.os !== "linux",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "lamportkv-e2e-cluster-" });
    const ports = freePorts(6);
    const replicas = [1, 2, 3].map((id) => ({
      id,
      clientPort: ports[2 * id - 2],
      peerPort: ports[2 * id - 1],
    }));
    const configPath = `${dir}/cluster.txt`;
    await Deno.writeTextFile(configPath, configText(replicas));

    const proc = new Deno.Command(Deno.execPath(), {
      args: ["run", ...NODE_PERMISSIONS, "--allow-run", CLUSTER_TS, configPath],
      cwd: dir, // anything the replicas write relative to their working directory lands here
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const lines: string[] = [];
    const pump = async (stream: ReadableStream<Uint8Array>, tag: string) => {
      let rest = "";
      for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
        rest += chunk;
        let nl: number;
        while ((nl = rest.indexOf("\n")) !== -1) {
          lines.push(`${tag}${rest.slice(0, nl)}`);
          rest = rest.slice(nl + 1);
        }
      }
      if (rest !== "") lines.push(`${tag}${rest}`);
    };
    const output = Promise.all([pump(proc.stdout, ""), pump(proc.stderr, "")]);
    let exited: Deno.CommandStatus | null = null;
    const status = proc.status.then((s) => (exited = s));
    let children: { pid: number; start: string }[] = [];
    try {
      await waitFor(
        () =>
          replicas.every(({ id }) =>
            lines.some((l) =>
              l.startsWith(`[${id}] `) && readyLineId(l.slice(`[${id}] `.length)) === id
            )
          ),
        { timeoutMs: 30_000, message: "every replica's prefixed ready line" },
      );
      children = await childrenOf(proc.pid);
      assert.equal(children.length, 3, `cluster.ts should have 3 children: ${children.length}`);
      // Requests during the first view change may get UNKNOWN; this test is about the CLI.
      await waitFor(async () => {
        const infos = await Promise.all(
          replicas.map(async (r) =>
            parseInfo(String(await respCall(r.clientPort, ["INFO"], 2000)))
          ),
        );
        return infos.every((i) => i.state === "normal" && i.members === "1,2,3");
      }, { timeoutMs: 15_000, message: "the replicas to form a view of all three" });

      const c1 = await RespTestClient.connect(replicas[0].clientPort);
      const c3 = await RespTestClient.connect(replicas[2].clientPort);
      try {
        assert.equal(await c1.call(["PUT", "via-cluster", "yes"], 10_000), "OK");
        assert.equal(await c3.call(["GET", "via-cluster"], 10_000), "yes");
      } finally {
        await c1.close();
        await c3.close();
      }

      proc.kill("SIGINT");
      await waitFor(() => exited !== null, {
        timeoutMs: 15_000,
        message: "cluster.ts to exit after SIGINT",
      });
      await output;
      assert.equal(exited!.code, 0, `cluster.ts exit status ${JSON.stringify(exited)}`);
      for (const line of lines) {
        assert.match(line, /^\[(1|2|3|cluster)\] /, `line without an id prefix: ${line}`);
      }
      for (const child of children) {
        assert.notEqual(await startTime(child.pid), child.start, `child ${child.pid} still runs`);
      }
      await waitFor(() => ports.every(portIsFree), {
        timeoutMs: 5000,
        message: "every port of the cluster to be free",
      });
    } catch (err) {
      console.error(`----- cluster.ts output -----\n${lines.join("\n")}\n-----`);
      throw err;
    } finally {
      // Never leave a process behind: the replicas first (they would outlive their supervisor).
      if (exited === null) children = [...children, ...await childrenOf(proc.pid)];
      for (const child of children) {
        if (await startTime(child.pid) === child.start) {
          try {
            Deno.kill(child.pid, "SIGKILL");
          } catch {
            // exited meanwhile
          }
        }
      }
      if (exited === null) {
        try {
          proc.kill("SIGKILL");
        } catch {
          // exited meanwhile
        }
      }
      await status;
      await output;
      await Deno.remove(dir, { recursive: true });
    }
  },
});
