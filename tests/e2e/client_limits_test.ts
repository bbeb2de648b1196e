/**
 * End to end: the client-port limits of real replicas (settings from the config file and from
 * the command line). A client that pipelines reads of a large value and never reads the replies
 * is closed before the replica's memory grows; extra connections beyond `maxclients` are refused;
 * idle clients (`timeout`) and slow senders (`client-request-timeout`) are closed; a bulk string
 * above `proto-max-bulk-len` is a protocol error.
 *
 * Sanitizers: off, because the replica child processes and their output pipes outlive single
 * async ops by design (the harness awaits them all in `stop()`).
 *
 * @module
 */
import assert from "node:assert/strict";
import { closeQuietly } from "../support/raw_conn.ts";
import { encodeCommand, RespError } from "../../src/net/resp.ts";
import {
  ConnectionClosedError,
  respCall,
  RespTestClient,
  type TestCluster,
  waitFor,
  withCluster,
} from "../support/cluster.ts";
import { memoryOf } from "../support/memory.ts";
import { bytesToByteString } from "../../src/kv/bytes.ts";
import type { ByteString } from "../../src/core/types.ts";

const LOOPBACK = "127.0.0.1";
const MB = 1024 * 1024;

/**
 * Opens `connections` connections to `port` that pipeline `GET key` without ever reading, until
 * the replica closes each of them (a write fails) or `timeoutMs` passes. Returns how many were
 * closed.
 */
async function pipelineWithoutReading(
  port: number,
  key: string,
  connections: number,
  timeoutMs: number,
): Promise<number> {
  const batch = new Uint8Array(
    Array.from({ length: 2000 }, () => [...encodeCommand(["GET", key])]).flat(),
  );
  const deadline = performance.now() + timeoutMs;
  const closed = await Promise.all(Array.from({ length: connections }, async () => {
    const conn = await Deno.connect({ hostname: LOOPBACK, port });
    try {
      while (performance.now() < deadline) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        const late = new Promise<"late">((resolve) => {
          timer = setTimeout(() => resolve("late"), Math.max(0, deadline - performance.now()));
        });
        const write = (async () => {
          let off = 0;
          while (off < batch.length) off += await conn.write(batch.subarray(off));
          return "ok" as const;
        })().catch(() => "closed" as const);
        const outcome = await Promise.race([write, late]);
        clearTimeout(timer);
        if (outcome === "closed") return true;
        if (outcome === "late") return false;
      }
      return false;
    } finally {
      closeQuietly(conn);
    }
  }));
  return closed.filter((c) => c).length;
}

/** Stores a value of `bytes` bytes under `key` through replica 1. */
async function storeBig(cluster: TestCluster, key: string, bytes: number): Promise<void> {
  assert.equal(
    await respCall(cluster.clientPort(1), ["SET", key, "x".repeat(bytes)], 20_000),
    "OK",
  );
}

Deno.test({
  name: "e2e: with default settings clients pipelining GETs of 1 MB without reading are bounded",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await withCluster({ replicas: 3 }, async (cluster) => {
      await storeBig(cluster, "big", MB);
      const pid = cluster.pid(1);
      const before = await memoryOf(pid);
      // Today's code held 1.9 GB for one such client and 6.7 GB for four.
      const closed = await pipelineWithoutReading(cluster.clientPort(1), "big", 4, 20_000);
      const after = await memoryOf(pid);
      cluster.note(
        `replica 1 RSS ${(before.rss / MB).toFixed(0)} MB before, ` +
          `${(after.rss / MB).toFixed(0)} MB after, peak ${(after.peak / MB).toFixed(0)} MB`,
      );
      // The biggest are closed while all clients together buffer more than maxmemory-clients;
      // one whose replies were counted below it may stay, paused: large replies are shared, so
      // its real memory is one copy of the value (the peak bound below).
      assert.ok(closed >= 1, "no pipelining connection was closed");
      // Replica log lines reach the harness asynchronously: wait for it, with a deadline.
      await waitFor(() => cluster.logged(1, /maxmemory-clients/), {
        timeoutMs: 5000,
        message: `replica 1 to log /maxmemory-clients/`,
      });
      assert.ok(after.peak < before.rss + 400 * MB, `replica 1 peaked at ${after.peak} bytes`);
      assert.equal(
        (await respCall(cluster.clientPort(1), ["GET", "big"], 10_000) as string).length,
        MB,
      );
    });
  },
});

Deno.test({
  name: "e2e: maxclients, timeout, client-request-timeout, proto-max-bulk-len, output limit",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await withCluster({
      replicas: 3,
      settings: [
        "maxclients 20",
        "timeout 2",
        "proto-max-bulk-len 1mb",
        "client-request-timeout 1",
      ],
      extraArgs: ["--client-output-buffer-limit", "normal 16mb 0 0"],
    }, async (cluster) => {
      const port = cluster.clientPort(1);

      // client-output-buffer-limit: the hard limit closes a client that never reads.
      await storeBig(cluster, "big", MB);
      const pid = cluster.pid(1);
      const before = await memoryOf(pid);
      assert.equal(await pipelineWithoutReading(port, "big", 2, 20_000), 2);
      const after = await memoryOf(pid);
      // Replica log lines reach the harness asynchronously: wait for it, with a deadline.
      await waitFor(() => cluster.logged(1, /hard client-output-buffer-limit \(16777216\)/), {
        timeoutMs: 5000,
        message: `replica 1 to log /hard client-output-buffer-limit \(16777216\)/`,
      });
      assert.ok(after.peak < before.rss + 300 * MB, `replica 1 peaked at ${after.peak} bytes`);

      // proto-max-bulk-len 1mb: a value of 1 MiB + 1 byte is a protocol error.
      {
        const c = await RespTestClient.connect(port);
        try {
          await c.tryWrite(encodeCommand(["SET", "k", "y".repeat(MB + 1)]));
          const reply = await c.next(5000);
          assert.ok(reply instanceof RespError, `expected an error, got ${reply}`);
          assert.match(reply.message, /invalid bulk length/);
        } finally {
          await c.close();
        }
      }

      // client-request-timeout 1: a request sent a byte at a time is cut off.
      {
        const c = await RespTestClient.connect(port);
        try {
          const bytes = encodeCommand(["SET", "slow", "z".repeat(100)]);
          for (let i = 0; i < bytes.length && !c.eof; i++) {
            await c.tryWrite(bytes.subarray(i, i + 1));
            await new Promise((resolve) => setTimeout(resolve, 200));
          }
          assert.ok(c.eof, "the slow sender is still connected");
        } finally {
          await c.close();
        }
        // Replica log lines reach the harness asynchronously: wait for it, with a deadline.
        await waitFor(() => cluster.logged(1, /request not complete within 1 s/), {
          timeoutMs: 5000,
          message: `replica 1 to log /request not complete within 1 s/`,
        });
      }

      // timeout 2: an idle client is closed.
      {
        const c = await RespTestClient.connect(port);
        try {
          assert.equal(await c.call(["PING"]), "PONG");
          await waitFor(() => c.eof, {
            timeoutMs: 10_000,
            message: "the idle client to be closed",
          });
        } finally {
          await c.close();
        }
        // Replica log lines reach the harness asynchronously: wait for it, with a deadline.
        await waitFor(() => cluster.logged(1, /idle for 2 s \(timeout\)/), {
          timeoutMs: 5000,
          message: `replica 1 to log /idle for 2 s \(timeout\)/`,
        });
      }

      // maxclients 20: connections beyond it get the error and are closed.
      const clients = await Promise.all(
        Array.from({ length: 25 }, () => RespTestClient.connect(port)),
      );
      try {
        const answers = await Promise.all(clients.map(async (c) => {
          await c.tryWrite(encodeCommand(["PING"]));
          try {
            const reply = await c.next(5000);
            return reply instanceof RespError ? reply.message : String(reply);
          } catch (err) {
            if (err instanceof ConnectionClosedError) return "closed";
            throw err;
          }
        }));
        const refused = answers.filter((a) => a === "ERR max number of clients reached");
        assert.ok(refused.length >= 5, `answers: ${answers.join(", ")}`);
        assert.ok(answers.filter((a) => a === "PONG").length <= 20);
        await waitFor(() => clients.every((c, i) => answers[i] === "PONG" || c.eof), {
          timeoutMs: 5000,
          message: "refused clients to be closed",
        });
      } finally {
        await Promise.all(clients.map((c) => c.close()));
      }
      // Replica log lines reach the harness asynchronously: wait for it, with a deadline.
      await waitFor(() => cluster.logged(1, /maxclients/), {
        timeoutMs: 5000,
        message: `replica 1 to log /maxclients/`,
      });

      // The replica still serves, and all agree.
      await waitFor(async () => (await respCall(port, ["SET", "after", "1"], 5000)) === "OK", {
        timeoutMs: 10_000,
      });
      await cluster.waitForAgreement();
    });
  },
});

/** A byte string of `bytes` bytes holding every byte value (from `seed` on, cycling). */
function binaryValue(bytes: number, seed: number): ByteString {
  const raw = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) raw[i] = (i * 131 + seed) & 0xff;
  return bytesToByteString(raw);
}

/** True when `GET key` on replica `id` answers exactly `value` (false while it cannot answer). */
async function holds(
  cluster: TestCluster,
  id: number,
  key: string,
  value: ByteString,
): Promise<boolean> {
  try {
    return await respCall(cluster.clientPort(id), ["GET", key], 20_000) === value;
  } catch (e) {
    if (e instanceof RespError || e instanceof ConnectionClosedError) return false;
    throw e;
  }
}

Deno.test({
  name:
    "e2e: proto-max-bulk-len 32mb: values over 8 MiB are replicated, logged, snapshotted, caught up",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await withCluster({
      replicas: 3,
      settings: ["proto-max-bulk-len 32mb", "client-query-buffer-limit 40mb"],
    }, async (cluster) => {
      const port = cluster.clientPort(1);
      const values = [0, 1, 2].map((i) => binaryValue(24 * MB, i));
      // Replica 3 misses the writes: it catches up when it comes back.
      await cluster.kill(3, "SIGKILL");
      await cluster.waitForView({ ids: [1, 2], timeoutMs: 30_000 });
      for (const [i, value] of values.entries()) {
        assert.equal(await respCall(port, ["SET", `big${i}`, value], 30_000), "OK");
      }
      // 72 MiB of log: a snapshot is due by the log's bytes, and it holds the three values.
      await waitFor(() => cluster.logged(2, /snapshot\.written/), {
        timeoutMs: 30_000,
        message: "replica 2 to write a snapshot",
      });
      assert.ok(await holds(cluster, 2, "big1", values[1]), "replica 2 holds big1");

      await cluster.restart(3, 60_000);
      await waitFor(() => holds(cluster, 3, "big2", values[2]), {
        timeoutMs: 60_000,
        message: "replica 3 to catch up on big2",
      });
      // Restarted from its snapshot (and what its log holds after it).
      await cluster.kill(2, "SIGKILL");
      await cluster.restart(2, 60_000);
      await waitFor(() => holds(cluster, 2, "big0", values[0]), {
        timeoutMs: 60_000,
        message: "replica 2 to serve big0 again after its restart",
      });
      assert.ok(cluster.logged(2, /recovery: snapshot at index/), "replica 2 read its snapshot");

      // The limits still hold: the string APPEND would build passes the largest value (32 MiB),
      // and a bulk string over the setting is a protocol error.
      const tooLong = await respCall(port, ["APPEND", "big0", "z".repeat(9 * MB)], 30_000);
      assert.ok(tooLong instanceof RespError, `expected an error, got a ${typeof tooLong}`);
      assert.match(tooLong.message, /string exceeds maximum allowed size/);
      const c = await RespTestClient.connect(port);
      try {
        await c.tryWrite(encodeCommand(["SET", "k", "y".repeat(32 * MB + 1)]));
        const reply = await c.next(30_000);
        assert.ok(reply instanceof RespError, `expected an error, got ${typeof reply}`);
        assert.match(reply.message, /invalid bulk length/);
      } finally {
        await c.close();
      }
    });
  },
});
