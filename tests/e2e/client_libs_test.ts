/**
 * Client-library compatibility: `ioredis` and `redis` (node-redis v5), pinned in `deno.json`,
 * each run against (a) a real `redis-server` and (b) a 3-replica lamportkv cluster.
 *
 * Cases are keyed by {@link LibFamily}. Against Redis every family runs (which also proves the
 * cases themselves right); against lamportkv the families in {@link LAMPORTKV_LIB_FAMILIES} run
 * and must pass, and the others show up as ignored steps named `... (TODO: ...)` plus a printed
 * line, never silently. Enabling a family as lamportkv grows: move it from
 * {@link LAMPORTKV_LIB_TODO} to {@link LAMPORTKV_LIB_FAMILIES}.
 *
 * Connecting is always tested: both libraries send their handshake on connect (ioredis: `INFO`
 * for its ready check and `CLIENT SETINFO`; node-redis: `CLIENT SETINFO`; `SELECT`/`HELLO` only
 * when a database or RESP3 is configured, which these tests do not) and must tolerate the
 * commands lamportkv does not know yet.
 *
 * `failover`: against lamportkv, ioredis writes through replica 1, replica 1 is SIGKILLed, and
 * the same client reconnects (its `retryStrategy` points it at replica 2) and finds the data;
 * node-redis writes through replica 1 and reads the data back from every replica, then again from
 * replica 2 after replica 1 is killed. Against the single redis-server, both check that every
 * connection serves the same data.
 *
 * The redis-server tests are skipped (with a visible `SKIPPED:` line) when redis-server cannot be
 * run or installed; the lamportkv tests do not need it.
 *
 * Sanitizers: off (child processes, and the libraries' sockets and timers, outlive single ops).
 *
 * @module
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { Redis } from "ioredis";
import { createClient, RESP_TYPES } from "redis";
import { describeError, type TestCluster, waitFor, withCluster } from "../support/cluster.ts";
import {
  announceSkip,
  redisSkipReason,
  skipName,
  withRedisServer,
} from "../support/redis_server.ts";

/** The feature groups the cases are keyed by. */
export type LibFamily =
  | "basic"
  | "strings"
  | "counters"
  | "mset"
  | "hashes"
  | "lists"
  | "sets"
  | "streams"
  | "expiry"
  | "pipeline"
  | "multi"
  | "watch"
  | "failover";

/** Every family, in the order the cases run (`failover` last: it kills a replica). */
export const ALL_LIB_FAMILIES: readonly LibFamily[] = [
  "basic",
  "strings",
  "counters",
  "mset",
  "hashes",
  "lists",
  "sets",
  "streams",
  "expiry",
  "pipeline",
  "multi",
  "watch",
  "failover",
];

/** What lamportkv supports on this branch: these run against it and must pass. */
export const LAMPORTKV_LIB_FAMILIES: readonly LibFamily[] = [
  "basic",
  "strings",
  "counters",
  "mset",
  "hashes",
  "lists",
  "sets",
  "streams",
  "expiry",
  "pipeline",
  "multi",
  "watch",
  "failover",
];

/** Not yet supported by lamportkv: shown as ignored `TODO` steps. */
export const LAMPORTKV_LIB_TODO: readonly LibFamily[] = ALL_LIB_FAMILIES.filter(
  (f) => !LAMPORTKV_LIB_FAMILIES.includes(f),
);

/** The server a case runs against. */
interface Target {
  name: "redis-server" | "lamportkv";
  /** One port per replica (for redis-server: its one port, three times). */
  ports: number[];
  /** Kills the server behind `ports[0]` (lamportkv only). */
  killFirst?: () => Promise<void>;
  /** Waits until the servers behind `ports.slice(1)` serve again after `killFirst`. */
  waitServing?: () => Promise<void>;
}

type Case = (target: Target, prefix: string) => Promise<void>;

// ---------------------------------------------------------------------------------------------
// ioredis

/** An ioredis client on `port`, connected (ready). No automatic reconnects unless `retry`. */
async function ioConnect(
  port: number,
  retry?: (client: Redis, attempt: number) => number | null,
): Promise<Redis> {
  const client: Redis = new Redis({
    host: "127.0.0.1",
    port,
    lazyConnect: true,
    maxRetriesPerRequest: retry === undefined ? 0 : 50,
    connectTimeout: 2000,
    retryStrategy: retry === undefined ? () => null : (attempt: number) => retry(client, attempt),
  });
  client.on("error", () => {}); // errors surface through the commands
  await client.connect();
  assert.equal(client.status, "ready");
  return client;
}

/** Disconnects and waits until the socket is closed. */
async function ioClose(client: Redis): Promise<void> {
  if (client.status === "end") return;
  const ended = new Promise<void>((resolve) => client.once("end", () => resolve()));
  client.disconnect(false);
  await ended;
}

/** Runs `body` with a connected ioredis client on `port`; always closes it. */
async function withIo<T>(port: number, body: (c: Redis) => Promise<T>): Promise<T> {
  const c = await ioConnect(port);
  try {
    return await body(c);
  } finally {
    await ioClose(c);
  }
}

const IOREDIS: Record<LibFamily, Case> = {
  basic: (t, p) =>
    withIo(t.ports[0], async (c) => {
      assert.equal(await c.ping(), "PONG");
      assert.equal(await c.set(`${p}k`, "v1"), "OK");
      assert.equal(await c.get(`${p}k`), "v1");
      assert.equal(await c.exists(`${p}k`), 1);
      assert.equal(await c.get(`${p}missing`), null);
      assert.equal(await c.set(`${p}empty`, ""), "OK");
      assert.equal(await c.get(`${p}empty`), "");
      const bin = Buffer.from([0, 13, 10, 255, 128, 1]);
      assert.equal(await c.set(`${p}bin`, bin), "OK");
      assert.deepEqual(await c.getBuffer(`${p}bin`), bin);
      assert.equal(await c.del(`${p}k`), 1);
      assert.equal(await c.del(`${p}k`), 0);
      assert.equal(await c.exists(`${p}k`), 0);
      await assert.rejects(c.call("NOSUCHCOMMAND", "x"), /unknown command/);
    }),
  strings: (t, p) =>
    withIo(t.ports[0], async (c) => {
      assert.equal(await c.set(`${p}s`, "a", "PX", 100_000, "NX"), "OK");
      assert.equal(await c.set(`${p}s`, "b", "PX", 100_000, "NX"), null);
      assert.equal(await c.set(`${p}s`, "c", "XX"), "OK");
      assert.equal(await c.getset(`${p}s`, "hello"), "c");
      assert.equal(await c.append(`${p}s`, " world"), 11);
      assert.equal(await c.strlen(`${p}s`), 11);
      assert.equal(await c.getrange(`${p}s`, 0, 4), "hello");
      assert.equal(await c.setrange(`${p}s`, 6, "WORLD"), 11);
      assert.equal(await c.getdel(`${p}s`), "hello WORLD");
      assert.equal(await c.setnx(`${p}s`, "x"), 1);
      assert.equal(await c.setnx(`${p}s`, "y"), 0);
    }),
  counters: (t, p) =>
    withIo(t.ports[0], async (c) => {
      assert.equal(await c.incr(`${p}n`), 1);
      assert.equal(await c.incrby(`${p}n`, 41), 42);
      assert.equal(await c.decr(`${p}n`), 41);
      assert.equal(await c.decrby(`${p}n`, 50), -9);
      assert.equal(await c.incrbyfloat(`${p}n`, "0.5"), "-8.5");
      await c.set(`${p}text`, "abc");
      await assert.rejects(c.incr(`${p}text`), /not an integer/);
    }),
  mset: (t, p) =>
    withIo(t.ports[0], async (c) => {
      assert.equal(await c.mset(`${p}a`, "1", `${p}b`, "2"), "OK");
      assert.deepEqual(await c.mget(`${p}a`, `${p}b`, `${p}c`), ["1", "2", null]);
      assert.equal(await c.msetnx(`${p}b`, "x", `${p}c`, "3"), 0);
      assert.equal(await c.exists(`${p}a`, `${p}b`, `${p}c`), 2);
      assert.equal(await c.del(`${p}a`, `${p}b`, `${p}c`), 2);
    }),
  hashes: (t, p) =>
    withIo(t.ports[0], async (c) => {
      assert.equal(await c.hset(`${p}h`, { f1: "v1", f2: "v2" }), 2);
      assert.equal(await c.hget(`${p}h`, "f1"), "v1");
      assert.deepEqual(await c.hgetall(`${p}h`), { f1: "v1", f2: "v2" });
      assert.equal(await c.hincrby(`${p}h`, "n", 5), 5);
      assert.equal(await c.hlen(`${p}h`), 3);
      assert.deepEqual((await c.hkeys(`${p}h`)).sort(), ["f1", "f2", "n"]);
      assert.equal(await c.hdel(`${p}h`, "f1", "nope"), 1);
      assert.equal(await c.hexists(`${p}h`, "f1"), 0);
      await c.set(`${p}str`, "x");
      await assert.rejects(c.hget(`${p}str`, "f"), /WRONGTYPE/);
    }),
  lists: (t, p) =>
    withIo(t.ports[0], async (c) => {
      assert.equal(await c.rpush(`${p}l`, "a", "b", "c"), 3);
      assert.equal(await c.lpush(`${p}l`, "z"), 4);
      assert.deepEqual(await c.lrange(`${p}l`, 0, -1), ["z", "a", "b", "c"]);
      assert.equal(await c.lindex(`${p}l`, -1), "c");
      assert.deepEqual(await c.lpop(`${p}l`, 2), ["z", "a"]);
      assert.equal(await c.lmove(`${p}l`, `${p}l2`, "RIGHT", "LEFT"), "c");
      assert.equal(await c.llen(`${p}l`), 1);
      assert.deepEqual(await c.lrange(`${p}l2`, 0, -1), ["c"]);
    }),
  sets: (t, p) =>
    withIo(t.ports[0], async (c) => {
      assert.equal(await c.sadd(`${p}s1`, "a", "b", "c", "a"), 3);
      assert.equal(await c.sadd(`${p}s2`, "b", "c", "d"), 3);
      assert.deepEqual((await c.smembers(`${p}s1`)).sort(), ["a", "b", "c"]);
      assert.equal(await c.sismember(`${p}s1`, "a"), 1);
      assert.equal(await c.scard(`${p}s2`), 3);
      assert.deepEqual((await c.sinter(`${p}s1`, `${p}s2`)).sort(), ["b", "c"]);
      assert.equal(await c.srem(`${p}s1`, "a", "zz"), 1);
    }),
  streams: (t, p) =>
    withIo(t.ports[0], async (c) => {
      const k = `${p}x`;
      assert.equal(await c.xadd(k, "1-1", "f", "v1"), "1-1");
      assert.match((await c.xadd(k, "*", "f", "v2")) ?? "", /^[0-9]+-[0-9]+$/);
      assert.equal(await c.xlen(k), 2);
      assert.deepEqual(await c.xrange(k, "-", "+", "COUNT", 1), [["1-1", ["f", "v1"]]]);
      assert.equal(await c.xgroup("CREATE", k, "g", "0"), "OK");
      assert.deepEqual(
        await c.xreadgroup("GROUP", "g", "alice", "COUNT", 1, "STREAMS", k, ">"),
        [[k, [["1-1", ["f", "v1"]]]]],
      );
      assert.deepEqual(await c.xpending(k, "g"), [1, "1-1", "1-1", [["alice", "1"]]]);
      assert.equal(await c.xack(k, "g", "1-1"), 1);
      assert.equal(await c.xread("BLOCK", 20, "STREAMS", k, "$"), null);
    }),
  expiry: (t, p) =>
    withIo(t.ports[0], async (c) => {
      assert.equal(await c.set(`${p}e`, "v", "EX", 1000), "OK");
      const ttl = await c.ttl(`${p}e`);
      assert.ok(ttl > 990 && ttl <= 1000, `TTL ${ttl}`);
      assert.equal(await c.expire(`${p}e`, 5000), 1);
      const pttl = await c.pttl(`${p}e`);
      assert.ok(pttl > 4_990_000 && pttl <= 5_000_000, `PTTL ${pttl}`);
      assert.equal(await c.persist(`${p}e`), 1);
      assert.equal(await c.ttl(`${p}e`), -1);
      assert.equal(await c.ttl(`${p}none`), -2);
    }),
  pipeline: (t, p) =>
    withIo(t.ports[0], async (c) => {
      const pipe = c.pipeline();
      for (let i = 0; i < 100; i++) pipe.set(`${p}${i}`, `v${i}`).get(`${p}${i}`);
      pipe.del(`${p}0`).exists(`${p}0`);
      const results = await pipe.exec();
      assert.ok(results !== null);
      assert.equal(results.length, 202);
      for (let i = 0; i < 100; i++) {
        assert.deepEqual(results[2 * i], [null, "OK"]);
        assert.deepEqual(results[2 * i + 1], [null, `v${i}`]);
      }
      assert.deepEqual(results.slice(200), [[null, 1], [null, 0]]);
      // Auto-batched concurrent commands keep their order too.
      const values = await Promise.all(
        Array.from({ length: 50 }, (_, i) => c.get(`${p}${i + 1}`)),
      );
      assert.deepEqual(values, Array.from({ length: 50 }, (_, i) => `v${i + 1}`));
    }),
  multi: (t, p) =>
    withIo(t.ports[0], async (c) => {
      const results = await c.multi().set(`${p}m`, "1").incr(`${p}m`).get(`${p}m`).exec();
      assert.deepEqual(results, [[null, "OK"], [null, 2], [null, "2"]]);
      await assert.rejects(
        c.multi().set(`${p}m`, "x").call("NOSUCHCOMMAND").exec(),
        /EXECABORT/,
      );
      assert.equal(await c.get(`${p}m`), "2");
    }),
  watch: (t, p) =>
    withIo(t.ports[0], (c1) =>
      withIo(t.ports[1], async (c2) => {
        await c1.set(`${p}w`, "0");
        assert.equal(await c1.watch(`${p}w`), "OK");
        await c2.set(`${p}w`, "changed");
        assert.equal(await c1.multi().set(`${p}w`, "mine").exec(), null);
        assert.equal(await c1.get(`${p}w`), "changed");
        // Without a conflict the same transaction runs.
        assert.equal(await c1.watch(`${p}w`), "OK");
        assert.deepEqual(await c1.multi().set(`${p}w`, "mine").exec(), [[null, "OK"]]);
      })),
  failover: async (t, p) => {
    let next = 1;
    const client = await ioConnect(t.ports[0], (c, attempt) => {
      if (attempt > 100) return null;
      // Reconnect to the next replica: ioredis reads host and port from its options each time.
      c.options.port = t.ports[next];
      next = next % (t.ports.length - 1) + 1;
      return 50;
    });
    try {
      for (let i = 0; i < 20; i++) assert.equal(await client.set(`${p}${i}`, `v${i}`), "OK");
      for (const port of t.ports) {
        await withIo(port, async (c) => assert.equal(await c.get(`${p}19`), "v19"));
      }
      if (t.killFirst === undefined) return;
      await t.killFirst();
      await t.waitServing?.();
      await waitFor(async () => (await client.get(`${p}0`)) === "v0", {
        timeoutMs: 20_000,
        message: "ioredis to reconnect to another replica and read",
      });
      assert.notEqual(client.options.port, t.ports[0]);
      for (let i = 0; i < 20; i++) assert.equal(await client.get(`${p}${i}`), `v${i}`);
      assert.equal(await client.set(`${p}after`, "x"), "OK");
    } finally {
      await ioClose(client);
    }
  },
};

// ---------------------------------------------------------------------------------------------
// node-redis

type NodeRedis = ReturnType<typeof createClient>;

/** A node-redis client on `port`, connected, without automatic reconnects. */
async function nrConnect(port: number): Promise<NodeRedis> {
  const client = createClient({
    socket: { host: "127.0.0.1", port, reconnectStrategy: false, connectTimeout: 2000 },
  });
  client.on("error", () => {}); // errors surface through the commands
  await client.connect();
  assert.ok(client.isReady);
  return client;
}

/** Runs `body` with a connected node-redis client on `port`; always closes it. */
async function withNr<T>(port: number, body: (c: NodeRedis) => Promise<T>): Promise<T> {
  const c = await nrConnect(port);
  try {
    return await body(c);
  } finally {
    if (c.isOpen) c.destroy();
  }
}

const NODE_REDIS: Record<LibFamily, Case> = {
  basic: (t, p) =>
    withNr(t.ports[0], async (c) => {
      assert.equal(await c.ping(), "PONG");
      assert.equal(await c.set(`${p}k`, "v1"), "OK");
      assert.equal(await c.get(`${p}k`), "v1");
      assert.equal(await c.exists(`${p}k`), 1);
      assert.equal(await c.get(`${p}missing`), null);
      assert.equal(await c.set(`${p}empty`, ""), "OK");
      assert.equal(await c.get(`${p}empty`), "");
      const bin = Buffer.from([0, 13, 10, 255, 128, 1]);
      assert.equal(await c.set(`${p}bin`, bin), "OK");
      const buffers = c.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer });
      assert.deepEqual(await buffers.get(`${p}bin`), bin);
      assert.equal(await c.del(`${p}k`), 1);
      assert.equal(await c.del(`${p}k`), 0);
      assert.equal(await c.exists(`${p}k`), 0);
      await assert.rejects(c.sendCommand(["NOSUCHCOMMAND", "x"]), /unknown command/);
    }),
  strings: (t, p) =>
    withNr(t.ports[0], async (c) => {
      const nxPx = { condition: "NX", expiration: { type: "PX", value: 100_000 } } as const;
      assert.equal(await c.set(`${p}s`, "a", nxPx), "OK");
      assert.equal(await c.set(`${p}s`, "b", nxPx), null);
      assert.equal(await c.set(`${p}s`, "c", { condition: "XX" }), "OK");
      assert.equal(await c.getSet(`${p}s`, "hello"), "c");
      assert.equal(await c.append(`${p}s`, " world"), 11);
      assert.equal(await c.strLen(`${p}s`), 11);
      assert.equal(await c.getRange(`${p}s`, 0, 4), "hello");
      assert.equal(await c.setRange(`${p}s`, 6, "WORLD"), 11);
      assert.equal(await c.getDel(`${p}s`), "hello WORLD");
      assert.equal(await c.setNX(`${p}s`, "x"), 1);
      assert.equal(await c.setNX(`${p}s`, "y"), 0);
    }),
  counters: (t, p) =>
    withNr(t.ports[0], async (c) => {
      assert.equal(await c.incr(`${p}n`), 1);
      assert.equal(await c.incrBy(`${p}n`, 41), 42);
      assert.equal(await c.decr(`${p}n`), 41);
      assert.equal(await c.decrBy(`${p}n`, 50), -9);
      assert.equal(await c.incrByFloat(`${p}n`, 0.5), "-8.5");
      await c.set(`${p}text`, "abc");
      await assert.rejects(c.incr(`${p}text`), /not an integer/);
    }),
  mset: (t, p) =>
    withNr(t.ports[0], async (c) => {
      assert.equal(await c.mSet({ [`${p}a`]: "1", [`${p}b`]: "2" }), "OK");
      assert.deepEqual(await c.mGet([`${p}a`, `${p}b`, `${p}c`]), ["1", "2", null]);
      assert.equal(await c.mSetNX({ [`${p}b`]: "x", [`${p}c`]: "3" }), 0);
      assert.equal(await c.exists([`${p}a`, `${p}b`, `${p}c`]), 2);
      assert.equal(await c.del([`${p}a`, `${p}b`, `${p}c`]), 2);
    }),
  hashes: (t, p) =>
    withNr(t.ports[0], async (c) => {
      assert.equal(await c.hSet(`${p}h`, { f1: "v1", f2: "v2" }), 2);
      assert.equal(await c.hGet(`${p}h`, "f1"), "v1");
      assert.deepEqual({ ...(await c.hGetAll(`${p}h`)) }, { f1: "v1", f2: "v2" });
      assert.equal(await c.hIncrBy(`${p}h`, "n", 5), 5);
      assert.equal(await c.hLen(`${p}h`), 3);
      assert.deepEqual((await c.hKeys(`${p}h`)).sort(), ["f1", "f2", "n"]);
      assert.equal(await c.hDel(`${p}h`, ["f1", "nope"]), 1);
      assert.equal(await c.hExists(`${p}h`, "f1"), 0);
      await c.set(`${p}str`, "x");
      await assert.rejects(c.hGet(`${p}str`, "f"), /WRONGTYPE/);
    }),
  lists: (t, p) =>
    withNr(t.ports[0], async (c) => {
      assert.equal(await c.rPush(`${p}l`, ["a", "b", "c"]), 3);
      assert.equal(await c.lPush(`${p}l`, "z"), 4);
      assert.deepEqual(await c.lRange(`${p}l`, 0, -1), ["z", "a", "b", "c"]);
      assert.equal(await c.lIndex(`${p}l`, -1), "c");
      assert.deepEqual(await c.lPopCount(`${p}l`, 2), ["z", "a"]);
      assert.equal(await c.lMove(`${p}l`, `${p}l2`, "RIGHT", "LEFT"), "c");
      assert.equal(await c.lLen(`${p}l`), 1);
      assert.deepEqual(await c.lRange(`${p}l2`, 0, -1), ["c"]);
    }),
  sets: (t, p) =>
    withNr(t.ports[0], async (c) => {
      assert.equal(await c.sAdd(`${p}s1`, ["a", "b", "c", "a"]), 3);
      assert.equal(await c.sAdd(`${p}s2`, ["b", "c", "d"]), 3);
      assert.deepEqual((await c.sMembers(`${p}s1`)).sort(), ["a", "b", "c"]);
      assert.equal(await c.sIsMember(`${p}s1`, "a"), 1);
      assert.equal(await c.sCard(`${p}s2`), 3);
      assert.deepEqual((await c.sInter([`${p}s1`, `${p}s2`])).sort(), ["b", "c"]);
      assert.equal(await c.sRem(`${p}s1`, ["a", "zz"]), 1);
    }),
  streams: (t, p) =>
    withNr(t.ports[0], async (c) => {
      const k = `${p}x`;
      const plain = (v: unknown) => JSON.parse(JSON.stringify(v));
      assert.equal(await c.xAdd(k, "1-1", { f: "v1" }), "1-1");
      assert.match(await c.xAdd(k, "*", { f: "v2" }), /^[0-9]+-[0-9]+$/);
      assert.equal(await c.xLen(k), 2);
      assert.deepEqual(plain(await c.xRange(k, "-", "+", { COUNT: 1 })), [
        { id: "1-1", message: { f: "v1" } },
      ]);
      assert.equal(await c.xGroupCreate(k, "g", "0"), "OK");
      assert.deepEqual(
        plain(await c.xReadGroup("g", "alice", { key: k, id: ">" }, { COUNT: 1 })),
        [{ name: k, messages: [{ id: "1-1", message: { f: "v1" } }] }],
      );
      assert.equal(await c.xAck(k, "g", "1-1"), 1);
      assert.equal(await c.xRead({ key: k, id: "$" }, { BLOCK: 20 }), null);
    }),
  expiry: (t, p) =>
    withNr(t.ports[0], async (c) => {
      assert.equal(await c.set(`${p}e`, "v", { expiration: { type: "EX", value: 1000 } }), "OK");
      const ttl = await c.ttl(`${p}e`);
      assert.ok(ttl > 990 && ttl <= 1000, `TTL ${ttl}`);
      assert.equal(await c.expire(`${p}e`, 5000), 1);
      const pttl = await c.pTTL(`${p}e`);
      assert.ok(pttl > 4_990_000 && pttl <= 5_000_000, `PTTL ${pttl}`);
      assert.equal(await c.persist(`${p}e`), 1);
      assert.equal(await c.ttl(`${p}e`), -1);
      assert.equal(await c.ttl(`${p}none`), -2);
    }),
  pipeline: (t, p) =>
    withNr(t.ports[0], async (c) => {
      // Commands issued in one tick go out as one pipeline; replies keep their order.
      const sets = await Promise.all(
        Array.from({ length: 100 }, (_, i) => c.set(`${p}${i}`, `v${i}`)),
      );
      assert.deepEqual(sets, Array(100).fill("OK"));
      const gets = await Promise.all(Array.from({ length: 100 }, (_, i) => c.get(`${p}${i}`)));
      assert.deepEqual(gets, Array.from({ length: 100 }, (_, i) => `v${i}`));
      // An explicit pipeline (no MULTI/EXEC around it).
      const results = await c.multi().set(`${p}x`, "1").get(`${p}x`).del(`${p}x`)
        .exists(`${p}x`).execAsPipeline();
      assert.deepEqual(results, ["OK", "1", 1, 0]);
    }),
  multi: (t, p) =>
    withNr(t.ports[0], async (c) => {
      const results = await c.multi().set(`${p}m`, "1").incr(`${p}m`).get(`${p}m`).exec();
      assert.deepEqual(results, ["OK", 2, "2"]);
      // A queue-time error aborts the transaction (EXECABORT); node-redis reports the error of
      // the command that caused it.
      await assert.rejects(
        c.multi().set(`${p}m`, "x").addCommand(["NOSUCHCOMMAND"]).exec(),
        /EXECABORT|unknown command/,
      );
      assert.equal(await c.get(`${p}m`), "2");
    }),
  watch: (t, p) =>
    withNr(t.ports[0], (c1) =>
      withNr(t.ports[1], async (c2) => {
        await c1.set(`${p}w`, "0");
        assert.equal(await c1.watch(`${p}w`), "OK");
        await c2.set(`${p}w`, "changed");
        // node-redis turns EXEC's null reply (watched key modified) into a WatchError.
        await assert.rejects(
          c1.multi().set(`${p}w`, "mine").exec(),
          /watched keys has been changed/,
        );
        assert.equal(await c1.get(`${p}w`), "changed");
        assert.equal(await c1.watch(`${p}w`), "OK");
        assert.deepEqual(await c1.multi().set(`${p}w`, "mine").exec(), ["OK"]);
      })),
  failover: async (t, p) => {
    await withNr(t.ports[0], async (c) => {
      for (let i = 0; i < 20; i++) assert.equal(await c.set(`${p}${i}`, `v${i}`), "OK");
    });
    for (const port of t.ports) {
      await withNr(port, async (c) => assert.equal(await c.get(`${p}19`), "v19"));
    }
    if (t.killFirst === undefined) return;
    await t.killFirst();
    await t.waitServing?.();
    await withNr(t.ports[1], async (c) => {
      for (let i = 0; i < 20; i++) assert.equal(await c.get(`${p}${i}`), `v${i}`);
      assert.equal(await c.set(`${p}after`, "x"), "OK");
    });
  },
};

// ---------------------------------------------------------------------------------------------
// The tests

const SKIP = await redisSkipReason();

const LIBRARIES: { name: string; cases: Record<LibFamily, Case> }[] = [
  { name: "ioredis", cases: IOREDIS },
  { name: "node-redis", cases: NODE_REDIS },
];

/**
 * Runs `families` of `cases` as steps against `target`; the rest as ignored TODO steps. Throws
 * after the last step when any failed (so that `withCluster` prints the replicas' logs).
 */
async function runFamilies(
  t: Deno.TestContext,
  lib: string,
  cases: Record<LibFamily, Case>,
  target: Target,
  families: readonly LibFamily[],
): Promise<void> {
  const failed: LibFamily[] = [];
  const todo = ALL_LIB_FAMILIES.filter((f) => !families.includes(f));
  if (todo.length > 0) {
    console.log(`${lib} vs ${target.name}: TODO, not run: ${todo.join(", ")}`);
  }
  for (const family of ALL_LIB_FAMILIES) {
    const run = families.includes(family);
    const ok = await t.step({
      name: run ? `${target.name}: ${family}` : `${target.name}: ${family} (TODO: not supported)`,
      ignore: !run,
      sanitizeOps: false,
      sanitizeResources: false,
      fn: async () => {
        try {
          await cases[family](target, `${lib}:${family}:`);
        } catch (err) {
          throw new Error(`${lib} vs ${target.name}, family ${family}: ${describeError(err)}`, {
            cause: err,
          });
        }
      },
    });
    if (run && !ok) failed.push(family);
  }
  if (failed.length > 0) {
    throw new Error(`${lib} vs ${target.name}: failed families: ${failed.join(", ")}`);
  }
}

function lamportkvTarget(cluster: TestCluster): Target {
  const ids = cluster.ids;
  return {
    name: "lamportkv",
    ports: ids.map((id) => cluster.clientPort(id)),
    killFirst: async () => {
      await cluster.kill(ids[0]);
    },
    waitServing: async () => {
      await cluster.waitForView({ ids: ids.slice(1), timeoutMs: 20_000 });
    },
  };
}

for (const lib of LIBRARIES) {
  const redisName = `e2e: client libs: ${lib.name} against redis-server, every family`;
  announceSkip(redisName, SKIP);
  Deno.test({
    name: skipName(redisName, SKIP),
    ignore: SKIP !== undefined,
    sanitizeOps: false,
    sanitizeResources: false,
    async fn(t) {
      await withRedisServer(async (redis) => {
        const target: Target = {
          name: "redis-server",
          ports: [redis.port, redis.port, redis.port],
        };
        await runFamilies(t, lib.name, lib.cases, target, ALL_LIB_FAMILIES);
      });
    },
  });

  Deno.test({
    name: `e2e: client libs: ${lib.name} against a 3-replica lamportkv cluster`,
    sanitizeOps: false,
    sanitizeResources: false,
    async fn(t) {
      await withCluster({ replicas: 3 }, async (cluster) => {
        await runFamilies(t, lib.name, lib.cases, lamportkvTarget(cluster), LAMPORTKV_LIB_FAMILIES);
      });
    },
  });
}
