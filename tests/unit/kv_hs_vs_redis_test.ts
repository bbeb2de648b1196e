/**
 * Differential test of the hash and set commands: a few hundred seeded random commands over a
 * small key space (so types collide) are sent both to a {@link KvStore} and to a real
 * `redis-server` started here, and the replies are compared (as sets where Redis's order is
 * unspecified, by count only where they are random). Skipped when redis-server is not on PATH.
 *
 * Random pops diverge by design: after each SPOP the popped key is copied from Redis into the
 * store, so the two stay equal. Float increments use binary fractions only (lamportkv computes in
 * double precision, Redis in long double).
 */
import assert from "node:assert/strict";
import {
  announceSkip,
  redisSkipReason,
  skipName,
  withRedisServer,
} from "../support/redis_server.ts";
import { KvStore } from "../../src/kv/store.ts";
import { encodeReply } from "../../src/net/resp.ts";
import { encodeCommand, RespError, RespReplyParser, type RespValue } from "../../src/net/resp.ts";
import { Prng } from "../support/prng.ts";

/** A minimal RESP client: one request at a time. */
class MiniClient {
  readonly #conn: Deno.TcpConn;
  readonly #parser = new RespReplyParser();
  readonly #buf = new Uint8Array(64 * 1024);

  constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
  }

  async call(argv: string[]): Promise<RespValue> {
    const bytes = encodeCommand(argv);
    for (let at = 0; at < bytes.length;) at += await this.#conn.write(bytes.subarray(at));
    for (;;) {
      const v = this.#parser.next();
      if (v !== undefined) return v;
      const n = await this.#conn.read(this.#buf);
      if (n === null) throw new Error("redis-server closed the connection");
      this.#parser.push(this.#buf.subarray(0, n));
    }
  }

  close(): void {
    this.#conn.close();
  }
}

/** Runs a command on the store and returns its reply as the client would decode it. */
function kvCall(kv: KvStore, argv: string[], time: number): RespValue {
  const parser = new RespReplyParser();
  parser.push(encodeReply(kv.apply({ op: { argv, time } })));
  const v = parser.next();
  assert.notEqual(v, undefined);
  return v as RespValue;
}

/** A JSON-comparable form: errors become `{err}`. */
function norm(v: RespValue): unknown {
  if (v instanceof RespError) return { err: v.message };
  if (Array.isArray(v)) return v.map(norm);
  return v;
}

type Mode = "exact" | "set" | "pairs" | "count" | "hscan" | "sscan";

function sorted(a: unknown[]): unknown[] {
  return [...a].map((x) => JSON.stringify(x)).sort();
}

function pairs(a: unknown[]): unknown[] {
  const out: unknown[] = [];
  for (let i = 0; i + 1 < a.length; i += 2) out.push([a[i], a[i + 1]]);
  return sorted(out);
}

/** The comparable view of a reply under a mode. */
function view(mode: Mode, v: unknown): unknown {
  if (!Array.isArray(v)) {
    if (mode === "count" && typeof v === "string") return "<member>";
    return v;
  }
  switch (mode) {
    case "set":
      return sorted(v);
    case "pairs":
      return pairs(v);
    case "count":
      return { count: v.length };
    default:
      return v;
  }
}

type Caller = (argv: string[]) => Promise<unknown>;

/** Iterates a whole HSCAN/SSCAN; the deduplicated items, or the first error reply. */
async function scanAll(call: Caller, argv: string[], hash: boolean): Promise<unknown> {
  const [name, key, , ...opts] = argv;
  let cursor = "0";
  const seen = new Set<string>();
  for (let i = 0; i < 10_000; i++) {
    const r = await call([name, key, cursor, ...opts]);
    if (!Array.isArray(r)) return r;
    const [next, items] = r as [string, string[]];
    if (hash) { for (let j = 0; j < items.length; j += 2) seen.add(`${items[j]}=${items[j + 1]}`); }
    else for (const m of items) seen.add(m);
    cursor = next;
    if (cursor === "0") return [...seen].sort();
  }
  throw new Error(`scan did not finish: ${argv.join(" ")}`);
}

const KEYS = ["k0", "k1", "k2", "k3"];
const FIELDS = ["f0", "f1", "f2", "f3", "f4"];
const VALUES = ["1", "-3", "10", "x", "1.5", "", "007", "0"];
const MEMBERS = ["a", "b", "c", "d", "1", "2", "3"];

/** One random command and how to compare its replies. */
function randomCommand(p: Prng): { argv: string[]; mode: Mode } {
  // Hash commands mostly meet k0/k1, set commands k2/k3; sometimes any key (WRONGTYPE).
  const any = () => p.pick(KEYS);
  const hk = () => p.chance(0.85) ? p.pick(["k0", "k1"]) : any();
  const sk = () => p.chance(0.85) ? p.pick(["k2", "k3"]) : any();
  const f = () => p.pick(FIELDS);
  const m = () => p.pick(MEMBERS);
  const some = (g: () => string, min: number, max: number) =>
    Array.from({ length: p.int(min, max) }, g);
  const fv = () => {
    const out = some(() => "", 1, 3).flatMap(() => [f(), p.pick(VALUES)]);
    if (p.chance(0.1)) out.pop(); // an odd field/value count
    return out;
  };
  const count = () => p.pick(["-3", "-1", "0", "1", "2", "5", "10", "x"]);
  const w = p.int(0, 99);
  if (w < 6) return { argv: ["HSET", hk(), ...fv()], mode: "exact" };
  if (w < 8) return { argv: ["HMSET", hk(), ...fv()], mode: "exact" };
  if (w < 10) return { argv: ["HSETNX", hk(), f(), p.pick(VALUES)], mode: "exact" };
  if (w < 13) return { argv: ["HGET", hk(), f()], mode: "exact" };
  if (w < 15) return { argv: ["HMGET", hk(), ...some(f, 1, 3)], mode: "exact" };
  if (w < 18) return { argv: ["HDEL", hk(), ...some(f, 1, 3)], mode: "exact" };
  if (w < 20) return { argv: ["HGETALL", hk()], mode: "pairs" };
  if (w < 21) return { argv: ["HEXISTS", hk(), f()], mode: "exact" };
  if (w < 22) return { argv: ["HLEN", hk()], mode: "exact" };
  if (w < 23) return { argv: ["HSTRLEN", hk(), f()], mode: "exact" };
  if (w < 26) {
    const by = p.pick(["1", "-5", "100", "x", "0", "1.5"]);
    return { argv: ["HINCRBY", hk(), f(), by], mode: "exact" };
  }
  if (w < 29) {
    const by = p.pick(["0.5", "-1.25", "3", "abc", "inf", "1e3", "-0.75"]);
    return { argv: ["HINCRBYFLOAT", hk(), f(), by], mode: "exact" };
  }
  if (w < 30) return { argv: ["HKEYS", hk()], mode: "set" };
  if (w < 31) return { argv: ["HVALS", hk()], mode: "set" };
  if (w < 33) {
    const opts = p.chance(0.5) ? ["MATCH", "f[0-2]"] : [];
    if (p.chance(0.5)) opts.push("COUNT", p.pick(["1", "2", "0", "x"]));
    return { argv: ["HSCAN", hk(), "0", ...opts], mode: "hscan" };
  }
  if (w < 35) {
    const args = p.chance(0.3) ? [] : [count()];
    if (args.length && p.chance(0.4)) args.push(p.pick(["WITHVALUES", "withvalues", "bogus"]));
    return { argv: ["HRANDFIELD", hk(), ...args], mode: "count" };
  }
  if (w < 43) return { argv: ["SADD", sk(), ...some(m, 1, 3)], mode: "exact" };
  if (w < 47) return { argv: ["SREM", sk(), ...some(m, 1, 3)], mode: "exact" };
  if (w < 49) return { argv: ["SMEMBERS", sk()], mode: "set" };
  if (w < 51) return { argv: ["SISMEMBER", sk(), m()], mode: "exact" };
  if (w < 52) return { argv: ["SMISMEMBER", sk(), ...some(m, 1, 3)], mode: "exact" };
  if (w < 54) return { argv: ["SCARD", sk()], mode: "exact" };
  if (w < 57) {
    const args = p.chance(0.4) ? [] : [p.pick(["0", "1", "2", "10", "-1", "x"])];
    return { argv: ["SPOP", sk(), ...args], mode: "count" };
  }
  if (w < 60) {
    const args = p.chance(0.3) ? [] : [count()];
    return { argv: ["SRANDMEMBER", sk(), ...args], mode: "count" };
  }
  if (w < 63) return { argv: ["SINTER", ...some(sk, 1, 3)], mode: "set" };
  if (w < 66) return { argv: ["SUNION", ...some(sk, 1, 3)], mode: "set" };
  if (w < 69) return { argv: ["SDIFF", ...some(sk, 1, 3)], mode: "set" };
  if (w < 72) return { argv: ["SINTERSTORE", sk(), ...some(sk, 1, 3)], mode: "exact" };
  if (w < 75) return { argv: ["SUNIONSTORE", sk(), ...some(sk, 1, 3)], mode: "exact" };
  if (w < 78) return { argv: ["SDIFFSTORE", sk(), ...some(sk, 1, 3)], mode: "exact" };
  if (w < 81) {
    const keys = some(sk, 1, 3);
    const n = p.chance(0.1) ? p.pick(["0", "x", "9"]) : String(keys.length);
    const opts = p.chance(0.4) ? ["LIMIT", p.pick(["0", "1", "2", "-1"])] : [];
    return { argv: ["SINTERCARD", n, ...keys, ...opts], mode: "exact" };
  }
  if (w < 85) return { argv: ["SMOVE", sk(), sk(), m()], mode: "exact" };
  if (w < 87) {
    const opts = p.chance(0.5) ? ["MATCH", "[a-c]"] : [];
    if (p.chance(0.5)) opts.push("COUNT", p.pick(["1", "3"]));
    return { argv: ["SSCAN", sk(), "0", ...opts], mode: "sscan" };
  }
  if (w < 88) return { argv: ["SET", any(), p.pick(VALUES)], mode: "exact" };
  if (w < 93) return { argv: ["DEL", any()], mode: "exact" };
  if (w < 96) return { argv: ["TYPE", any()], mode: "exact" };
  // Wrong arity, checked before anything else.
  return {
    argv: p.pick([["HGET", any()], ["SADD", any()], ["HSET", any(), f()], ["SINTERCARD", "1"]]),
    mode: "exact",
  };
}

const HS_NAME = "kv hashes/sets: replies match a real redis-server on seeded random commands";
const HS_SKIP = await redisSkipReason();
announceSkip(HS_NAME, HS_SKIP);

Deno.test(
  { name: skipName(HS_NAME, HS_SKIP), ignore: HS_SKIP !== undefined },
  () =>
    withRedisServer(async (server) => {
      const client = new MiniClient(
        await Deno.connect({ hostname: "127.0.0.1", port: server.port }),
      );
      try {
        const redis = client;
        const kv = new KvStore();
        let time = 1_700_000_000_000;
        const onKv: Caller = (argv) => Promise.resolve(norm(kvCall(kv, argv, ++time)));
        const onRedis: Caller = async (argv) => norm(await redis.call(argv));

        /** Makes the store's copy of `key` equal to Redis's (after a random pop). */
        const resync = async (key: string) => {
          const t = await onRedis(["TYPE", key]);
          if (t !== "set" && t !== "none") return; // SPOP failed: nothing changed
          await onKv(["DEL", key]);
          if (t === "set") {
            const members = (await onRedis(["SMEMBERS", key])) as string[];
            await onKv(["SADD", key, ...members]);
          }
        };

        /** Every key's type and content on both sides. */
        const compareAll = async (step: number) => {
          for (const key of KEYS) {
            const t = await onRedis(["TYPE", key]);
            assert.deepEqual(await onKv(["TYPE", key]), t, `step ${step}: TYPE ${key}`);
            let argv: string[] | undefined;
            let mode: Mode = "exact";
            if (t === "hash") [argv, mode] = [["HGETALL", key], "pairs"];
            else if (t === "set") [argv, mode] = [["SMEMBERS", key], "set"];
            else if (t === "string") argv = ["GET", key];
            if (argv === undefined) continue;
            assert.deepEqual(
              view(mode, await onKv(argv)),
              view(mode, await onRedis(argv)),
              `step ${step}: ${argv.join(" ")}`,
            );
          }
        };

        const seed = 20240611;
        const p = new Prng(seed);
        const steps = 800;
        for (let step = 0; step < steps; step++) {
          const { argv, mode } = randomCommand(p);
          const label = `seed ${seed} step ${step}: ${JSON.stringify(argv)}`;
          let mine: unknown, theirs: unknown;
          if (mode === "hscan" || mode === "sscan") {
            mine = await scanAll(onKv, argv, mode === "hscan");
            theirs = await scanAll(onRedis, argv, mode === "hscan");
          } else {
            mine = view(mode, await onKv(argv));
            theirs = view(mode, await onRedis(argv));
          }
          assert.deepEqual(mine, theirs, label);
          if (argv[0] === "SPOP") await resync(argv[1]);
          if (step % 50 === 49) await compareAll(step);
        }
        await compareAll(steps);
      } finally {
        client.close();
      }
    }),
);
