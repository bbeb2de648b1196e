/**
 * Structured logs of real replica processes (`--log-format json`): every line a replica writes
 * parses as a JSON object with time, level, id, event and msg; the events an operator needs
 * appear (start with its settings, view installed with members and cause, snapshot written, log
 * truncated, auth failure, a client limit hit, peer down and the new view after a kill -9); no password is ever
 * written; and a flood of bad peer connections costs a bounded number of lines, the rest counted
 * by a `log.suppressed` summary. Snapshot events also show that `--snapshot-log-percent` reaches
 * the core.
 */
import assert from "node:assert/strict";
import {
  type LogLine,
  respCall,
  RespTestClient,
  type TestCluster,
  withCluster,
} from "../support/cluster.ts";
import { RespError } from "../../src/net/resp.ts";
import { LOG_LEVELS } from "../../src/log/format.ts";
import { LOG_BURST } from "../../src/limits.ts";

const PASSWORD = "s3cret-logs-pw";
const WRONG_PASSWORD = "wrong-logs-pw";
const MAX_CLIENTS = 8;

/** A parsed JSON log line. */
interface Event {
  time: string;
  level: string;
  id: number;
  event: string;
  msg: string;
  [field: string]: unknown;
}

/** Parses every line replica processes wrote; fails on any line that is not a log event. */
function events(cluster: TestCluster, from = 0): (Event & { line: LogLine })[] {
  return cluster.logs.slice(from).filter((l) => l.id !== 0).map((line) => {
    let e: Event;
    try {
      e = JSON.parse(line.text);
    } catch {
      throw new Error(`replica ${line.id} wrote a line that is not JSON: ${line.text}`);
    }
    assert.ok(e !== null && typeof e === "object", line.text);
    assert.match(e.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, line.text);
    assert.ok(!Number.isNaN(Date.parse(e.time)), line.text);
    assert.ok((LOG_LEVELS as readonly string[]).includes(e.level), line.text);
    assert.equal(e.id, line.id, line.text);
    assert.match(e.event, /^[a-z_]+(\.[a-z_]+)+$|^deliver$/, line.text);
    assert.equal(typeof e.msg, "string", line.text);
    // Errors go to stderr, everything else to stdout.
    assert.equal(line.stream, e.level === "error" ? "err" : "out", line.text);
    return { ...e, line };
  });
}

/** Waits until replica `id` logged an event `name` (from log position `from`) matching `ok`. */
async function waitEvent(
  cluster: TestCluster,
  id: number,
  name: string,
  ok: (e: Event) => boolean = () => true,
  from = 0,
): Promise<Event> {
  let found: Event | undefined;
  await cluster.waitFor(() => {
    found = events(cluster, from).find((e) => e.id === id && e.event === name && ok(e));
    return found !== undefined;
  }, { timeoutMs: 15_000, message: `replica ${id} to log ${name}` });
  return found!;
}

/** Opens `count` connections to `port` (`parallel` at a time), each sending `bytes`; waits for each to be closed by the server. */
async function flood(port: number, bytes: Uint8Array, count: number, parallel: number) {
  let next = 0;
  let closedByServer = 0;
  const one = async () => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    try {
      await conn.write(bytes);
      const buf = new Uint8Array(64);
      const timer = setTimeout(() => conn.close(), 5000);
      try {
        while ((await conn.read(buf)) !== null);
        closedByServer++;
      } catch {
        // closed by the timer: counted as not closed by the server
      } finally {
        clearTimeout(timer);
      }
    } finally {
      try {
        conn.close();
      } catch {
        // already closed
      }
    }
  };
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < count) {
        next++;
        await one();
      }
    }),
  );
  return closedByServer;
}

Deno.test({
  name: "logs: JSON lines, operator events, no secrets, bounded lines under a peer-port flood",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    withCluster({
      replicas: 3,
      extraArgs: ["--log-format", "json", "--snapshot-every", "20"],
      settings: [`requirepass ${PASSWORD}`, `maxclients ${MAX_CLIENTS}`],
      auth: [PASSWORD],
    }, async (cluster) => {
      // Start: the settings in force, the password hidden; then ready and the first view.
      for (const id of cluster.ids) {
        const start = await waitEvent(cluster, id, "node.start");
        const settings = start.settings as Record<string, unknown>;
        assert.equal(settings.requirepass, "[redacted]");
        assert.equal(settings["log-format"], "json");
        assert.equal(start.snapshotEvery, 20);
        await waitEvent(cluster, id, "node.ready");
        const view = await waitEvent(
          cluster,
          id,
          "view.installed",
          (e) => JSON.stringify(e.members) === "[1,2,3]",
        );
        assert.equal(typeof view.view, "number");
        assert.equal(typeof view.cause, "string");
      }

      // Writes: every replica writes a snapshot.
      await writes(cluster, "a", 30);
      for (const id of cluster.ids) {
        const snap = await waitEvent(cluster, id, "snapshot.written");
        assert.ok((snap.index as number) >= 20, JSON.stringify(snap));
        assert.ok((snap.bytes as number) > 0, JSON.stringify(snap));
      }

      // A failed login is logged with the client's address, never with a password.
      const refused = await respCall(cluster.clientPort(2), ["AUTH", WRONG_PASSWORD]);
      assert.ok(refused instanceof RespError && /^WRONGPASS/.test(refused.message), `${refused}`);
      const denied = await waitEvent(cluster, 2, "client.auth_failed");
      assert.equal(denied.level, "warn");
      assert.equal(denied.user, "default");
      assert.match(denied.remote as string, /^127\.0\.0\.1:\d+$/);

      // A client beyond maxclients is refused, and that is logged with the limit's name.
      const held: RespTestClient[] = [];
      try {
        for (let i = 0; i < MAX_CLIENTS; i++) {
          const c = await RespTestClient.connect(cluster.clientPort(2));
          assert.equal(await c.call(["AUTH", PASSWORD]), "OK");
          held.push(c);
        }
        const extra = await respCall(cluster.clientPort(2), ["PING"]);
        assert.ok(extra instanceof RespError && /max number of clients/.test(extra.message));
      } finally {
        await Promise.all(held.map((c) => c.close()));
      }
      const limit = await waitEvent(cluster, 2, "client.limit", (e) => e.limit === "maxclients");
      assert.equal(limit.level, "warn");

      // A restarted replica appends to a new log segment: its next snapshot truncates the log.
      await cluster.kill(1, "SIGKILL");
      const mark = cluster.logs.length;
      await cluster.restart(1);
      await cluster.waitForView({ ids: [1, 2, 3] });
      await writes(cluster, "b", 60);
      const truncated = await waitEvent(cluster, 1, "log.truncated", () => true, mark);
      assert.ok((truncated.segments as number) >= 1, JSON.stringify(truncated));

      // kill -9: the others log the peer down and a view without it, with the cause. A link is
      // reported down only once it was reported up, and one that came up after failed attempts
      // (replica 2's, dialled before 3 listened) is reported up after it stayed up a second: wait
      // for both reports (replica 1's since its restart) before the kill.
      for (const [id, since] of [[1, mark], [2, 0]]) {
        await waitEvent(cluster, id, "peer.up", (e) => e.peer === 3, since);
      }
      const killMark = cluster.logs.length;
      await cluster.kill(3, "SIGKILL");
      for (const id of [1, 2]) {
        const down = await waitEvent(cluster, id, "peer.down", (e) => e.peer === 3, killMark);
        assert.equal(down.level, "info");
        const view = await waitEvent(
          cluster,
          id,
          "view.installed",
          (e) => JSON.stringify(e.members) === "[1,2]",
          killMark,
        );
        assert.deepEqual(view.left, [3]);
        assert.match(view.cause as string, /replica 3 left/);
      }

      // A flood of bad peer connections: a few lines, the rest counted in a summary.
      const floodMark = cluster.logs.length;
      const connections = 1000;
      const garbage = new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
      const closed = await flood(cluster.peerPort(1), garbage, connections, 20);
      assert.equal(closed, connections, "every bad connection is closed by the replica");
      // Each is refused as malformed, or closed unread as the oldest of too many connections
      // without a hello: every refusal is either written or counted in a summary (which comes
      // within an interval or two).
      const kinds = ["peer.malformed", "peer.unauthenticated"];
      const during = () => events(cluster, floodMark).filter((e) => e.id === 1);
      const written = () => during().filter((e) => kinds.includes(e.event));
      const counted = () =>
        during().filter((e) => e.event === "log.suppressed" && kinds.includes(e.of as string))
          .reduce((n, e) => n + (e.suppressed as number), 0);
      await cluster.waitFor(() => written().length + counted() === connections, {
        timeoutMs: 30_000,
        message: "the suppressed counts to cover every refusal",
      });
      const malformed = written().filter((e) => e.event === "peer.malformed");
      assert.ok(malformed.length >= 1, "the refusals are logged");
      assert.match(malformed[0].msg, /malformed frame, closing the connection/);
      assert.equal(malformed[0].source, "127.0.0.1");
      // At most the burst, plus one per interval, per kind; and a summary per kind.
      assert.ok(
        written().length <= kinds.length * (LOG_BURST + 2),
        `${written().length} lines for ${connections} bad connections`,
      );
      assert.ok(during().length <= kinds.length * (LOG_BURST + 4), `${during().length} lines`);
      cluster.note(
        `flood of ${connections}: ${written().length} lines, ${counted()} counted in summaries`,
      );

      // Nothing anywhere holds a password (the right one or the wrong one).
      events(cluster); // every line parses
      for (const l of cluster.logs.filter((l) => l.id !== 0)) {
        assert.ok(!l.text.includes(PASSWORD), `password in: ${l.text}`);
        assert.ok(!l.text.includes(WRONG_PASSWORD), `wrong password in: ${l.text}`);
      }
    }),
});

/** `n` SETs through replica 2, logged in. */
async function writes(cluster: TestCluster, prefix: string, n: number): Promise<void> {
  const c = await RespTestClient.connect(cluster.clientPort(2));
  try {
    assert.equal(await c.call(["AUTH", PASSWORD]), "OK");
    for (let i = 0; i < n; i++) assert.equal(await c.call(["SET", `${prefix}${i}`, "v"]), "OK");
  } finally {
    await c.close();
  }
}

Deno.test({
  name: "logs: --snapshot-log-percent 0 keeps snapshots --snapshot-every apart past 100,000 keys",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    withCluster({
      replicas: 3,
      extraArgs: ["--log-format", "json", "--snapshot-every", "20", "--snapshot-log-percent", "0"],
    }, async (cluster) => {
      const start = await waitEvent(cluster, 1, "node.start");
      assert.equal(start.snapshotLogPercent, 0);
      await cluster.waitForView({ ids: [1, 2, 3] });
      // 100,000 keys in 100 deliveries: past them, the default (50) would wait 50,000 deliveries.
      const client = await RespTestClient.connect(cluster.clientPort(1));
      try {
        for (let batch = 0; batch < 100; batch++) {
          const pairs = Array.from({ length: 1000 }, (_, i) => [`k${batch * 1000 + i}`, "v"]);
          assert.equal(await client.call(["MSET", ...pairs.flat()]), "OK");
        }
        assert.equal(await client.call(["DBSIZE"]), 100_000);
        const written = () =>
          events(cluster).filter((e) => e.id === 1 && e.event === "snapshot.written").length;
        const loaded = written();
        for (let i = 0; i < 60; i++) assert.equal(await client.call(["INCR", "n"]), i + 1);
        // Every 20 deliveries still: two snapshots at least after the keys were in.
        await waitEvent(cluster, 1, "snapshot.written", (e) => (e.index as number) >= 140);
        assert.ok(written() >= loaded + 2, `${loaded} snapshots, then ${written()}`);
      } finally {
        await client.close();
      }
    }),
});

Deno.test({
  name: "logs: large values make a snapshot due by the log's bytes, long before the count",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    withCluster({
      replicas: 3,
      // By the count alone the first snapshot would come after 100,000 deliveries.
      extraArgs: ["--log-format", "json", "--snapshot-every", "100000"],
    }, async (cluster) => {
      await cluster.waitForView({ ids: [1, 2, 3] });
      const client = await RespTestClient.connect(cluster.clientPort(1));
      try {
        // 80 SETs of 1 MiB values over 4 keys: over 64 MiB of log on every replica.
        const value = "x".repeat(1 << 20);
        for (let i = 0; i < 80; i++) {
          assert.equal(await client.call(["SET", `k${i % 4}`, value]), "OK");
        }
      } finally {
        await client.close();
      }
      for (const id of cluster.ids) {
        const snap = await waitEvent(cluster, id, "snapshot.written");
        assert.ok((snap.index as number) < 100, JSON.stringify(snap));
        await waitEvent(cluster, id, "log.truncated");
      }
    }),
});
