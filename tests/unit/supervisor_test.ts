/**
 * The process supervisor (`src/supervisor/`) with real child processes: a tiny deno script
 * (`tests/support/supervised_child.ts`) stands in for a replica. Spawning and output lines,
 * readiness (its `node.ready` line; exit or deadline first), kill -9, SIGSTOP/SIGCONT (seen in
 * `/proc/<pid>/stat`), graceful stop and SIGKILL after the deadline, restart, stopping everything,
 * and the unload handler that kills children and removes directories a program left behind.
 *
 * @module
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import {
  describeStatus,
  forEachLine,
  NODE_ENTRY,
  nodeCommandArgs,
  type OutputStream,
  SupervisedProcess,
  Supervisor,
} from "../../src/supervisor/supervisor.ts";
import { runCommand, waitFor } from "../support/cluster.ts";

const CHILD = fileURLToPath(new URL("../support/supervised_child.ts", import.meta.url));
const PARENT = fileURLToPath(new URL("../support/supervisor_parent.ts", import.meta.url));

/** The `deno` arguments that run the test child with `flags`. */
function childArgs(...flags: string[]): string[] {
  return ["run", CHILD, ...flags];
}

/** Every output line of every replica, in arrival order. */
interface Seen {
  id: number;
  line: string;
  stream: OutputStream;
}

/** A supervisor that records every line, spawn and exit; stops everything in `finally`. */
async function withSupervisor(
  body: (
    supervisor: Supervisor,
    seen: Seen[],
    exits: Map<number, Deno.CommandStatus>,
  ) => Promise<void>,
): Promise<void> {
  const seen: Seen[] = [];
  const exits = new Map<number, Deno.CommandStatus>();
  const supervisor = new Supervisor({
    onLine: (id, line, stream) => seen.push({ id, line, stream }),
    onExit: (id, status) => exits.set(id, status),
  });
  try {
    await body(supervisor, seen, exits);
  } finally {
    await supervisor.stopAll({ signal: "SIGKILL" });
  }
}

/** The state letter of `/proc/<pid>/stat` (R, S, T, Z, ...), or null when the process is gone. */
function procState(pid: number): string | null {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
  } catch {
    return null;
  }
}

function ticks(seen: Seen[], id: number): number {
  return seen.filter((s) => s.id === id && s.line.startsWith("tick ")).length;
}

Deno.test("supervisor: forEachLine splits chunks into lines (CRLF, split chunks, last line)", async () => {
  const bytes = (s: string) => new TextEncoder().encode(s);
  const lines: string[] = [];
  await forEachLine(
    ReadableStream.from([bytes("one\r\ntw"), bytes("o\n\nthr"), bytes("ee")]),
    (l) => lines.push(l),
  );
  assert.deepEqual(lines, ["one", "two", "", "three"]);
  const long: string[] = [];
  await forEachLine(
    ReadableStream.from([bytes("x".repeat(70_000)), bytes("end\n")]),
    (l) => long.push(l),
  );
  assert.equal(long.length, 1);
  assert.ok(
    long[0].length <= 64 * 1024 + 3 && long[0].endsWith("xend"),
    "a long line keeps its tail",
  );
});

Deno.test("supervisor: replica command line and status wording", () => {
  const args = nodeCommandArgs(3, "/c/cluster.txt", ["--fsync", "never"]);
  assert.equal(args[0], "run");
  assert.deepEqual(args.slice(-5), [NODE_ENTRY, "3", "/c/cluster.txt", "--fsync", "never"]);
  assert.ok(NODE_ENTRY.endsWith("/src/cli/node.ts"));
  assert.equal(describeStatus({ success: false, code: 2, signal: null }), "exited with code 2");
  assert.equal(
    describeStatus({ success: false, code: 137, signal: "SIGKILL" }),
    "was killed by SIGKILL",
  );
});

Deno.test("supervisor: spawn, output lines by stream, readiness, kill -9", async () => {
  await withSupervisor(async (supervisor, seen, exits) => {
    const p = supervisor.spawn(4, childArgs("--id", "4"));
    assert.ok(supervisor.running(4));
    assert.throws(() => supervisor.spawn(4, childArgs()), /replica 4 is already running/);
    await supervisor.waitReady(4, 20_000);
    assert.ok(p.ready);
    assert.ok(seen.some((s) => s.id === 4 && s.stream === "out" && s.line.includes(`${p.pid}`)));
    // stderr is another pipe: its line may arrive after the ready line on stdout.
    await waitFor(
      () => seen.some((s) => s.id === 4 && s.stream === "err" && s.line === "a line on stderr"),
      { message: "the child's line on stderr" },
    );
    await waitFor(() => ticks(seen, 4) > 0, { message: "a tick line after the ready line" });
    const status = await p.kill();
    assert.equal(status.signal, "SIGKILL");
    assert.equal(p.exited, status);
    assert.equal(exits.get(4), status, "onExit saw the status");
    assert.equal(supervisor.running(4), false);
    await p.output; // both streams end once it is gone
  });
});

Deno.test("supervisor: a ready line for another replica id does not count", async () => {
  await withSupervisor(async (supervisor) => {
    const p = supervisor.spawn(2, childArgs("--id", "5"));
    await assert.rejects(p.waitReady(300, "replica 2"), /timed out after 300 ms.*replica 2/);
    assert.equal(p.ready, false);
    assert.ok(p.running);
  });
});

Deno.test("supervisor: waitReady fails at once when the process exits first", async () => {
  await withSupervisor(async (supervisor, seen) => {
    supervisor.spawn(1, childArgs("--exit-before-ready", "7"));
    await assert.rejects(
      supervisor.waitReady(1, 60_000),
      /gave up waiting for replica 1 to print its ready line: replica 1 exited \(code 7/,
    );
    await supervisor.process(1).output;
    assert.ok(seen.some((s) => s.stream === "err" && s.line === "failing before ready"));
  });
});

Deno.test("supervisor: SIGSTOP pauses and SIGCONT resumes the process", async () => {
  await withSupervisor(async (supervisor, seen) => {
    const p = supervisor.spawn(1, childArgs());
    await p.waitReady(20_000);
    p.pause();
    await waitFor(() => procState(p.pid) === "T", { message: "the child to be stopped (T)" });
    const before = ticks(seen, 1);
    p.resume();
    await waitFor(() => procState(p.pid) !== "T", { message: "the child to run again" });
    await waitFor(() => ticks(seen, 1) > before, { message: "a tick after SIGCONT" });
    assert.ok(p.running);
  });
});

Deno.test("supervisor: stop sends SIGTERM (and SIGCONT to a paused child), SIGKILL after the deadline", async () => {
  await withSupervisor(async (supervisor, seen) => {
    const polite = supervisor.spawn(1, childArgs("--id", "1", "--on-term", "3"));
    const stubborn = supervisor.spawn(2, childArgs("--id", "2", "--on-term", "ignore"));
    const plain = supervisor.spawn(3, childArgs("--id", "3"));
    await Promise.all([1, 2, 3].map((id) => supervisor.waitReady(id, 20_000)));
    polite.pause();
    await waitFor(() => procState(polite.pid) === "T", { message: "child 1 to be stopped" });
    const late: string[] = [];
    const r1 = await polite.stop({ deadlineMs: 20_000, onLate: () => late.push("1") });
    assert.deepEqual([r1.status.code, r1.killed], [3, false], "the paused child handled SIGTERM");
    const r3 = await plain.stop({ deadlineMs: 20_000 });
    assert.deepEqual([r3.status.signal, r3.killed], ["SIGTERM", false]);
    const r2 = await stubborn.stop({ deadlineMs: 500, onLate: () => late.push("2") });
    assert.deepEqual([r2.status.signal, r2.killed], ["SIGKILL", true]);
    assert.deepEqual(late, ["2"]);
    await stubborn.output;
    assert.ok(seen.some((s) => s.id === 2 && s.line === "ignoring SIGTERM"));
    assert.deepEqual(await polite.stop({ deadlineMs: 1 }), { status: r1.status, killed: false });
  });
});

Deno.test("supervisor: restart refuses a running replica, then starts a new process", async () => {
  await withSupervisor(async (supervisor) => {
    const first = supervisor.spawn(1, childArgs());
    await first.waitReady(20_000);
    await assert.rejects(
      supervisor.restart(1, childArgs(), 20_000),
      /replica 1 is still running; kill it before restart/,
    );
    await first.kill();
    const second = await supervisor.restart(1, childArgs(), 20_000);
    assert.notEqual(second.pid, first.pid);
    assert.ok(second.ready && second.running);
    assert.equal(supervisor.get(1), second);
    assert.equal(first.running, false);
  });
  await assert.rejects(
    new Supervisor().waitReady(9, 10),
    /replica 9 was never started/,
  );
});

Deno.test("supervisor: stopAll with SIGTERM kills the late ones and waits for everything", async () => {
  const late: number[] = [];
  const supervisor = new Supervisor();
  try {
    supervisor.spawn(1, childArgs("--id", "1"));
    supervisor.spawn(2, childArgs("--id", "2", "--on-term", "ignore"));
    await Promise.all([1, 2].map((id) => supervisor.waitReady(id, 20_000)));
    await supervisor.stopAll({ signal: "SIGTERM", deadlineMs: 500, onLate: (id) => late.push(id) });
    assert.deepEqual(late, [2]);
    assert.equal(supervisor.process(1).exited?.signal, "SIGTERM");
    assert.equal(supervisor.process(2).exited?.signal, "SIGKILL");
  } finally {
    await supervisor.stopAll({ signal: "SIGKILL" });
  }
});

Deno.test("supervisor: a program that exits without stopping its children has them killed", async () => {
  const dir = await Deno.makeTempDir({ prefix: "lamportkv-supervisor-test-" });
  let pid: number | undefined;
  try {
    const r = await runCommand(Deno.execPath(), ["run", "-A", PARENT, dir], { timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr);
    const m = /^child (\d+)$/m.exec(r.stdout);
    assert.ok(m, `the parent names its child: ${r.stdout}`);
    pid = Number(m[1]);
    await waitFor(() => {
      const state = procState(pid!);
      return state === null || state === "Z";
    }, { message: `child ${pid} to be gone` });
    await assert.rejects(Deno.stat(dir), Deno.errors.NotFound, "the registered dir was removed");
  } finally {
    if (pid !== undefined && procState(pid) !== null) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch {
        // gone
      }
    }
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("supervisor: a program that cannot be started throws from spawn", () => {
  assert.throws(() =>
    SupervisedProcess.spawn({ program: "/nonexistent/lamportkv-no-such-program", args: [] })
  );
});
