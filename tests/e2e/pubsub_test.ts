/**
 * End to end: pub/sub in the total order, with real replica processes over loopback TCP.
 *
 * - Two subscribers on different replicas (`redis-cli SUBSCRIBE` on replica 1, `ioredis` on
 *   replica 2) and publishers on all three replicas: over three rounds (quiet; replica 3, which
 *   has no subscriber, SIGKILLed mid-round and restarted; replica 3 SIGSTOPped mid-round and
 *   resumed) at least 10,000 messages are acknowledged, and both subscribers receive exactly the
 *   same sequence, containing every acknowledged message.
 * - Keyspace notifications: `CONFIG SET notify-keyspace-events` on one replica changes what every
 *   replica publishes; subscribers on two replicas see the same events in the same order,
 *   expirations included.
 * - A subscriber that does not read is disconnected by `client-output-buffer-limit pubsub`, while
 *   a subscriber that reads keeps every message.
 *
 * `redis-cli` (Debian `redis-tools`) is installed with apt-get when missing; without it the
 * redis-cli test is skipped with a `SKIPPED:` line.
 *
 * Sanitizers: off (child processes and the library's sockets outlive single ops by design).
 *
 * @module
 */
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import {
  ConnectionClosedError,
  describeError,
  ReplyTimeoutError,
  RespTestClient,
  type TestCluster,
  waitFor,
  withCluster,
} from "../support/cluster.ts";
import { encodeCommand, RespError, type RespValue } from "../../src/net/resp.ts";
import { BAD_NOTIFY_FLAGS } from "../../src/kv/notify.ts";
import {
  announceSkip,
  redisSkipReason,
  skipName,
  succeeds,
  withRedisServer,
} from "../support/redis_server.ts";

const EXTRA_ARGS = ["--failure-timeout", "500"];
/** Messages each publisher sends per round (3 publishers, 3 rounds: >= 10,000 acknowledged). */
const PER_PUBLISHER = 1500;
/** PUBLISHes a publisher has in flight at once. */
const BATCH = 50;
const CHANNEL = "orders";

/** Undefined when redis-cli can be run (installed with apt-get when missing, as root). */
async function redisCliSkipReason(): Promise<string | undefined> {
  if (await succeeds("redis-cli", ["--version"])) return undefined;
  if (Deno.uid() === 0 && await succeeds("apt-get", ["--version"])) {
    console.log("redis-cli not found; trying apt-get install -y redis-tools (once)...");
    if (!await succeeds("apt-get", ["install", "-y", "-qq", "redis-tools"], 300_000)) {
      await succeeds("apt-get", ["update", "-qq"], 300_000);
      await succeeds("apt-get", ["install", "-y", "-qq", "redis-tools"], 300_000);
    }
    if (await succeeds("redis-cli", ["--version"])) return undefined;
  }
  return "redis-cli not installable (apt-get install redis-tools)";
}

const CLI_SKIP = await redisCliSkipReason();
const ORDER_TEST = "e2e pub/sub: subscribers on two replicas receive identical sequences";
announceSkip(ORDER_TEST, CLI_SKIP);

/** A `redis-cli SUBSCRIBE` child: the messages it printed so far, in order. */
class CliSubscriber {
  readonly messages: string[] = [];
  readonly #child: Deno.ChildProcess;
  readonly #done: Promise<void>;
  #lines: string[] = [];
  subscribed = false;

  constructor(port: number, channel: string) {
    this.#child = new Deno.Command("redis-cli", {
      args: ["-h", "127.0.0.1", "-p", String(port), "SUBSCRIBE", channel],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    this.#done = this.#read();
  }

  async #read(): Promise<void> {
    const decoder = new TextDecoder();
    let partial = "";
    for await (const chunk of this.#child.stdout) {
      const text = partial + decoder.decode(chunk, { stream: true });
      const lines = text.split("\n");
      partial = lines.pop()!;
      this.#lines.push(...lines);
      // Without a terminal redis-cli prints each element of a push on its own line.
      while (this.#lines.length >= 3) {
        const [kind, , payload] = this.#lines.splice(0, 3);
        if (kind === "subscribe") this.subscribed = true;
        else if (kind === "message") this.messages.push(payload);
      }
    }
  }

  async stop(): Promise<void> {
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // exited already
    }
    await this.#child.status;
    await this.#done;
  }
}

/** Result of one publisher's round: the messages whose PUBLISH answered an integer. */
interface Published {
  acked: string[];
  /** Sent, but answered with an error or not at all (the connection broke). */
  unknown: string[];
}

/**
 * Publishes `count` messages `<tag>-<i>` on `port`, {@link BATCH} in flight at a time; `onHalf`
 * is called once half were sent (it starts the fault of the round). Stops at the first broken
 * connection or unanswered request.
 */
async function publisher(
  port: number,
  tag: string,
  count: number,
  onHalf?: () => void,
): Promise<Published> {
  const out: Published = { acked: [], unknown: [] };
  let c: RespTestClient;
  try {
    c = await RespTestClient.connect(port);
  } catch {
    return out;
  }
  try {
    for (let i = 0; i < count; i += BATCH) {
      if (onHalf !== undefined && i >= count / 2) {
        onHalf();
        onHalf = undefined;
      }
      const batch = Array.from({ length: Math.min(BATCH, count - i) }, (_, j) => `${tag}-${i + j}`);
      try {
        await c.write(batch.map((m) => encodeCommand(["PUBLISH", CHANNEL, m])).reduce(concat));
      } catch {
        out.unknown.push(...batch);
        break;
      }
      let broken = false;
      for (const m of batch) {
        if (broken) {
          out.unknown.push(m);
          continue;
        }
        try {
          const r = await c.next(30_000);
          (typeof r === "number" ? out.acked : out.unknown).push(m);
        } catch (err) {
          if (!(err instanceof ConnectionClosedError || err instanceof ReplyTimeoutError)) {
            throw err;
          }
          broken = true;
          out.unknown.push(m);
        }
      }
      if (broken) break;
    }
  } finally {
    await c.close();
  }
  return out;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** Waits until every subscriber list holds `marker`. */
async function waitForMarker(lists: string[][], marker: string, what: string): Promise<void> {
  await waitFor(() => lists.every((l) => l.includes(marker)), {
    timeoutMs: 60_000,
    message: `${what}: every subscriber received ${marker}`,
  });
}

/** Publishes `marker` on replica 1 until it is acknowledged (a view change may refuse it). */
async function publishMarker(cluster: TestCluster, marker: string): Promise<void> {
  await waitFor(async () => {
    const c = await RespTestClient.connect(cluster.clientPort(1));
    try {
      return typeof await c.call(["PUBLISH", CHANNEL, marker], 10_000) === "number";
    } finally {
      await c.close();
    }
  }, { timeoutMs: 60_000, message: `PUBLISH ${marker} acknowledged` });
}

Deno.test({
  name: ORDER_TEST,
  ignore: CLI_SKIP !== undefined,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    await withCluster({ replicas: 3, extraArgs: EXTRA_ARGS }, async (cluster) => {
      const cli = new CliSubscriber(cluster.clientPort(1), CHANNEL);
      const lib = new Redis({ host: "127.0.0.1", port: cluster.clientPort(2), lazyConnect: true });
      const libMessages: string[] = [];
      try {
        lib.on("message", (_ch: string, m: string) => libMessages.push(m));
        lib.on("error", () => {});
        await lib.connect();
        await lib.subscribe(CHANNEL);
        await waitFor(() => cli.subscribed, { message: "redis-cli subscribed" });
        // Both are subscribed from here: a first marker starts the compared stretch.
        await publishMarker(cluster, "start");
        await waitForMarker([cli.messages, libMessages], "start", "start");

        let acked = 0;
        /** One round; `fault` starts when publisher 1 is half done and runs alongside. */
        const round = async (
          name: string,
          fault?: () => Promise<void>,
        ) => {
          await t.step({
            name,
            sanitizeOps: false,
            sanitizeResources: false,
            fn: async () => {
              let faultDone: Promise<void> = Promise.resolve();
              const start = fault === undefined ? undefined : () => {
                faultDone = fault();
              };
              const results = await Promise.all([1, 2, 3].map((id) =>
                publisher(
                  cluster.clientPort(id),
                  `${name}/p${id}`,
                  PER_PUBLISHER,
                  id === 1 ? start : undefined,
                )
              ));
              await faultDone;
              const marker = `end ${name}`;
              await publishMarker(cluster, marker);
              await waitForMarker([cli.messages, libMessages], marker, name);
              const a = cli.messages.slice(0, cli.messages.indexOf(marker) + 1);
              const b = libMessages.slice(0, libMessages.indexOf(marker) + 1);
              assert.equal(a.length, b.length, `${name}: both subscribers received as many`);
              assert.deepEqual(a, b, `${name}: identical sequences on replicas 1 and 2`);
              const got = new Set(a);
              for (const r of results) {
                for (const m of r.acked) assert.ok(got.has(m), `${name}: acknowledged ${m} lost`);
                acked += r.acked.length;
              }
              // Each publisher's own messages arrive in the order it sent them.
              for (const id of [1, 2, 3]) {
                const mine = a.filter((m) => m.startsWith(`${name}/p${id}-`));
                const nums = mine.map((m) => Number(m.slice(m.lastIndexOf("-") + 1)));
                assert.deepEqual(nums, [...nums].sort((x, y) => x - y), `${name}: p${id} order`);
              }
            },
          });
        };

        await round("quiet");
        const withoutThree = () =>
          cluster.waitFor(async () => {
            const info = await cluster.info(1);
            return info.state === "normal" && info.members === "1,2";
          }, { timeoutMs: 30_000, message: "replicas 1 and 2 in a view without 3" });
        await round("kill -9 of replica 3", async () => {
          await cluster.kill(3, "SIGKILL");
          await withoutThree();
          await cluster.restart(3);
        });
        await round("SIGSTOP of replica 3", async () => {
          cluster.pause(3);
          // Replicas 1 and 2 go on without it once they suspect it.
          await withoutThree();
          cluster.resume(3);
        });
        assert.ok(acked >= 10_000, `only ${acked} messages acknowledged`);
        cluster.note(`${acked} messages acknowledged, identical on both subscribers`);
      } finally {
        lib.disconnect();
        await cli.stop();
      }
    });
  },
});

/** Reads pushes from `c` into `into` until the connection closes. */
function collect(c: RespTestClient, into: RespValue[]): Promise<void> {
  return (async () => {
    for (;;) {
      try {
        into.push(await c.next(600_000));
      } catch {
        return;
      }
    }
  })();
}

Deno.test({
  name: "e2e keyspace notifications: CONFIG SET in the order, the same events on every replica",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await withCluster(
      { replicas: 3, extraArgs: EXTRA_ARGS, settings: ["notify-keyspace-events Kg"] },
      async (cluster) => {
        // The config file's value is in force until a CONFIG SET is applied.
        const r3 = await RespTestClient.connect(cluster.clientPort(3));
        const subs = await Promise.all(
          [2, 3].map((id) => RespTestClient.connect(cluster.clientPort(id))),
        );
        const got: RespValue[][] = [[], []];
        try {
          assert.deepEqual(await r3.call(["CONFIG", "GET", "notify-keyspace-events"]), [
            "notify-keyspace-events",
            "gK",
          ]);
          for (const s of subs) {
            assert.deepEqual(await s.call(["PSUBSCRIBE", "__key*__:*"]), [
              "psubscribe",
              "__key*__:*",
              1,
            ]);
          }
          const loops = subs.map((s, i) => collect(s, got[i]));
          const r1 = await RespTestClient.connect(cluster.clientPort(1));
          try {
            assert.deepEqual(
              await r1.call(["CONFIG", "SET", "notify-keyspace-events", "xyz"]),
              new RespError(BAD_NOTIFY_FLAGS),
            );
            assert.equal(
              String(await r1.call(["CONFIG", "SET", "notify-keyspace-events", "KEA"])),
              "OK",
            );
            // Every replica applied it at the same place: replica 3 reports it too.
            assert.deepEqual(await r3.call(["CONFIG", "GET", "notify-keyspace-events"]), [
              "notify-keyspace-events",
              "AKE",
            ]);
            const writes: [number, string[]][] = [
              [1, ["SET", "k", "v"]],
              [2, ["APPEND", "k", "w"]],
              [3, ["LPUSH", "l", "a", "b"]],
              [1, ["RPOP", "l", "2"]],
              [2, ["HSET", "h", "f", "1"]],
              [3, ["SADD", "s", "m"]],
              [1, ["RENAME", "k", "k2"]],
              [2, ["EXPIRE", "k2", "100"]],
              [3, ["DEL", "k2", "nothing"]],
              [1, ["SET", "gone", "x", "PX", "50"]],
            ];
            for (const [id, argv] of writes) {
              const c = id === 1
                ? r1
                : id === 3
                ? r3
                : await RespTestClient.connect(cluster.clientPort(2));
              try {
                await c.call(argv);
              } finally {
                if (id === 2) await c.close();
              }
            }
            const expired = ["pmessage", "__key*__:*", "__keyevent@0__:expired", "gone"];
            await waitFor(
              () => got.every((g) => g.some((m) => JSON.stringify(m) === JSON.stringify(expired))),
              { timeoutMs: 30_000, message: "the expiry of 'gone' notified on both replicas" },
            );
            assert.deepEqual(got[0], got[1], "the same events in the same order on replicas 2, 3");
            const events = got[0].map((m) => (m as string[]).slice(2).join(" "));
            assert.deepEqual(events, [
              "__keyspace@0__:k set",
              "__keyevent@0__:set k",
              "__keyspace@0__:k append",
              "__keyevent@0__:append k",
              "__keyspace@0__:l lpush",
              "__keyevent@0__:lpush l",
              "__keyspace@0__:l rpop",
              "__keyevent@0__:rpop l",
              "__keyspace@0__:l del",
              "__keyevent@0__:del l",
              "__keyspace@0__:h hset",
              "__keyevent@0__:hset h",
              "__keyspace@0__:s sadd",
              "__keyevent@0__:sadd s",
              "__keyspace@0__:k rename_from",
              "__keyevent@0__:rename_from k",
              "__keyspace@0__:k2 rename_to",
              "__keyevent@0__:rename_to k2",
              "__keyspace@0__:k2 expire",
              "__keyevent@0__:expire k2",
              "__keyspace@0__:k2 del",
              "__keyevent@0__:del k2",
              "__keyspace@0__:gone set",
              "__keyevent@0__:set gone",
              "__keyspace@0__:gone expire",
              "__keyevent@0__:expire gone",
              "__keyspace@0__:gone expired",
              "__keyevent@0__:expired gone",
            ]);
          } finally {
            await r1.close();
          }
          for (const s of subs) await s.close();
          await Promise.all(loops);
        } finally {
          await r3.close();
          for (const s of subs) await s.close();
        }
      },
    );
  },
});

/** `PUBSUB NUMSUB channel` on `port`: the subscribers of `channel` on that replica. */
async function numsub(port: number, channel: string): Promise<number> {
  const c = await RespTestClient.connect(port);
  try {
    const r = await c.call(["PUBSUB", "NUMSUB", channel]);
    return Array.isArray(r) && r[0] === channel ? Number(r[1]) : -1;
  } finally {
    await c.close();
  }
}

/** The resident set size of process `pid` in bytes (Linux), or undefined. */
function rssOf(pid: number): number | undefined {
  try {
    const m = Deno.readTextFileSync(`/proc/${pid}/status`).match(/VmRSS:\s+(\d+) kB/);
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

Deno.test({
  name: "e2e slow subscriber: disconnected by client-output-buffer-limit pubsub, memory bounded",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await withCluster(
      {
        replicas: 3,
        extraArgs: EXTRA_ARGS,
        settings: ["client-output-buffer-limit pubsub 2mb 1mb 1"],
      },
      async (cluster) => {
        const port = cluster.clientPort(1);
        // The slow one subscribes, then never reads again.
        const slow = await Deno.connect({ hostname: "127.0.0.1", port });
        const reader = await RespTestClient.connect(port);
        const pub = await RespTestClient.connect(cluster.clientPort(2));
        const received: RespValue[] = [];
        try {
          await slow.write(encodeCommand(["SUBSCRIBE", "flood"]));
          assert.deepEqual(await reader.call(["SUBSCRIBE", "flood"]), ["subscribe", "flood", 1]);
          await waitFor(async () => await numsub(port, "flood") === 2, {
            message: "two subscribers of flood on replica 1",
          });
          const loop = collect(reader, received);
          const payload = "x".repeat(64 * 1024);
          // Bounded: 400 messages of 64 KiB (25 MiB), far beyond socket buffers and the limit,
          // in bursts of 256 KiB (well below the limit: a reading subscriber keeps up).
          const total = 400;
          for (let i = 0; i < total; i += 4) {
            const batch = Array.from({ length: 4 }, (_, j) => `${i + j}:${payload}`);
            await pub.write(
              batch.map((m) => encodeCommand(["PUBLISH", "flood", m])).reduce(concat),
            );
            for (let j = 0; j < batch.length; j++) {
              assert.equal(typeof await pub.next(30_000), "number");
            }
          }
          await waitFor(async () => await numsub(port, "flood") === 1, {
            timeoutMs: 30_000,
            message: "the slow subscriber disconnected",
          });
          assert.ok(
            cluster.logged(1, /client-output-buffer-limit pubsub/),
            "the closure is logged with the limit's name",
          );
          await waitFor(() => received.length >= total, {
            timeoutMs: 60_000,
            message: `the reading subscriber got all ${total} messages`,
          });
          const nums = received.map((m) => Number(String((m as string[])[2]).split(":")[0]));
          assert.deepEqual(nums, Array.from({ length: total }, (_, i) => i));
          const rss = rssOf(cluster.pid(1));
          if (rss !== undefined) assert.ok(rss < 400 * 1024 * 1024, `replica 1 RSS ${rss} bytes`);
          await reader.close();
          await loop;
        } catch (err) {
          cluster.note(`slow subscriber test: ${describeError(err)}`);
          throw err;
        } finally {
          try {
            slow.close();
          } catch {
            // closed by the server
          }
          await reader.close();
          await pub.close();
        }
      },
    );
  },
});

/**
 * One scripted pub/sub session: a subscriber and a publisher on `port`; returns every reply and
 * push the subscriber and publisher saw, in order (the same script runs against redis-server).
 */
async function pubsubTranscript(port: number): Promise<RespValue[]> {
  const sub = await RespTestClient.connect(port);
  const pub = await RespTestClient.connect(port);
  const out: RespValue[] = [];
  const subCall = async (argv: string[], replies = 1) => {
    await sub.write(encodeCommand(argv));
    for (let i = 0; i < replies; i++) out.push(await sub.next());
  };
  const pubCall = async (argv: string[]) => out.push(await pub.call(argv));
  try {
    await subCall(["SUBSCRIBE", "a", "b", "a"], 3);
    await subCall(["PSUBSCRIBE", "a*"]);
    await subCall(["PING"]);
    await subCall(["PING", "x"]);
    await subCall(["GET", "k"]);
    await subCall(["SET", "k"]);
    await pubCall(["PUBLISH", "a", "hi"]);
    out.push(await sub.next(), await sub.next());
    await pubCall(["PUBLISH", "ab", "ho"]);
    out.push(await sub.next());
    await pubCall(["PUBLISH", "zz", "none"]);
    const channels = await pub.call(["PUBSUB", "CHANNELS"]);
    out.push((channels as string[]).sort());
    await pubCall(["PUBSUB", "CHANNELS", "b*"]);
    await pubCall(["PUBSUB", "NUMSUB", "a", "b", "zz"]);
    await pubCall(["PUBSUB", "NUMPAT"]);
    await pubCall(["PUBSUB", "NUMPAT", "x"]);
    await subCall(["UNSUBSCRIBE", "b", "nope"], 2);
    await subCall(["PUNSUBSCRIBE"]);
    await subCall(["UNSUBSCRIBE"]);
    await subCall(["UNSUBSCRIBE"]);
    await subCall(["PUNSUBSCRIBE"]);
    await subCall(["PING"]);
    // Channel rules: a user limited to &news.*.
    await pubCall(["ACL", "SETUSER", "news", "on", "nopass", "+@all", "&news.*"]);
    const limited = await RespTestClient.connect(port);
    try {
      out.push(await limited.call(["AUTH", "news", "x"]));
      out.push(await limited.call(["PUBLISH", "weather", "x"]));
      out.push(await limited.call(["PUBLISH", "news.a", "x"]));
      out.push(await limited.call(["PSUBSCRIBE", "news.s*"]));
      out.push(await limited.call(["SUBSCRIBE", "weather"]));
      out.push(await limited.call(["SUBSCRIBE", "news.b"]));
    } finally {
      await limited.close();
    }
    await pubCall(["ACL", "DRYRUN", "news", "PUBLISH", "weather", "x"]);
    await pubCall(["CONFIG", "SET", "notify-keyspace-events", "xyz"]);
    await pubCall(["CONFIG", "SET", "notify-keyspace-events", "KEA"]);
    await pubCall(["CONFIG", "GET", "notify-keyspace-events"]);
    await pubCall(["CONFIG", "SET", "notify-keyspace-events", "Elg$n"]);
    await pubCall(["CONFIG", "GET", "notify-keyspace-events"]);
    await pubCall(["CONFIG", "SET", "notify-keyspace-events", "KEA"]);
    await subCall(["PSUBSCRIBE", "__key*__:*"]);
    await subCall(["SUBSCRIBE", "done"]);
    const writes = [
      ["SET", "k", "v"],
      ["SET", "k", "v", "EX", "100"],
      ["APPEND", "k", "x"],
      ["SETRANGE", "k", "1", "yy"],
      ["INCR", "n"],
      ["INCRBYFLOAT", "n", "1.5"],
      ["MSET", "m1", "1", "m2", "2"],
      ["DEL", "m1", "m2", "m3"],
      ["GETDEL", "k"],
      ["RPUSH", "l", "1", "2", "3"],
      ["LPUSH", "l", "0"],
      ["LSET", "l", "0", "z"],
      ["LINSERT", "l", "BEFORE", "z", "y"],
      ["LREM", "l", "1", "y"],
      ["LTRIM", "l", "0", "2"],
      ["LMOVE", "l", "l2", "LEFT", "RIGHT"],
      ["RPOPLPUSH", "l", "l2"],
      ["LPOP", "l", "5"],
      ["HSET", "h", "f", "1", "g", "2"],
      ["HINCRBY", "h", "f", "2"],
      ["HINCRBYFLOAT", "h", "f", "0.5"],
      ["HDEL", "h", "f", "g"],
      ["SADD", "s", "a", "b"],
      ["SREM", "s", "a"],
      ["SMOVE", "s", "t", "b"],
      ["SADD", "s2", "b"],
      ["SINTERSTORE", "s3", "t", "s2"],
      ["SUNIONSTORE", "s4", "t", "s2"],
      ["SPOP", "s4"],
      ["RENAME", "t", "u"],
      ["EXPIRE", "u", "100"],
      ["PERSIST", "u"],
      ["EXPIRE", "u", "-1"],
      ["SET", "gone", "1", "PX", "1"],
    ];
    for (const w of writes) await pubCall(w);
    // `gone` expires by time: a write that meets it removes it (lamportkv's sweep or this SET).
    await waitFor(async () => (await pub.call(["EXISTS", "gone"])) === 0, {
      message: "gone expired",
    });
    await pubCall(["SET", "gone", "2"]);
    await pubCall(["PUBLISH", "done", "."]);
    for (;;) {
      const m = await sub.next();
      out.push(m);
      if (Array.isArray(m) && m[0] === "message" && m[1] === "done") break;
    }
    return out;
  } finally {
    await sub.close();
    await pub.close();
  }
}

const DIFF_NAME = "e2e pub/sub differential: the same replies and pushes as redis-server";
const REDIS_SKIP = await redisSkipReason();
announceSkip(DIFF_NAME, REDIS_SKIP);

Deno.test({
  name: skipName(DIFF_NAME, REDIS_SKIP),
  ignore: REDIS_SKIP !== undefined,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const expected = await withRedisServer((redis) => pubsubTranscript(redis.port));
    const got = await withCluster(
      { replicas: 3, extraArgs: EXTRA_ARGS },
      (cluster) => pubsubTranscript(cluster.clientPort(1)),
    );
    const show = (v: RespValue[]) => v.map((x) => JSON.stringify(x));
    assert.deepEqual(show(got), show(expected));
  },
});
