/**
 * Differential test of the list commands: a few hundred seeded random commands (a small key
 * space, some keys holding strings so WRONGTYPE happens, bad arguments so the error paths are
 * taken) are applied to a {@link KvStore} and sent to a real `redis-server` started here; every
 * reply must be byte-for-byte the same RESP2 as Redis's. Skipped (with a printed reason) when
 * `redis-server` is not on PATH.
 *
 * The client is a minimal one on purpose: replies are compared as raw RESP frames, which keeps
 * the differences a decoded value would hide (a status `+OK` vs a bulk `OK`, `$-1` vs `*-1`).
 */
import assert from "node:assert/strict";
import {
  announceSkip,
  redisSkipReason,
  skipName,
  withRedisServer,
} from "../support/redis_server.ts";
import type { ByteString } from "../../src/core/types.ts";
import { KvStore } from "../../src/kv/store.ts";
import { encodeReply } from "../../src/net/resp.ts";
import { Prng } from "../support/prng.ts";

function latin1(bytes: Uint8Array): ByteString {
  let s = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    s += String.fromCharCode(...bytes.subarray(i, i + 8192));
  }
  return s;
}

function toBytes(s: ByteString): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

function command(argv: ByteString[]): Uint8Array {
  let s = `*${argv.length}\r\n`;
  for (const a of argv) s += `$${a.length}\r\n${a}\r\n`;
  return toBytes(s);
}

/** End (exclusive) of the RESP2 reply starting at `at` in `buf`, or -1 when incomplete. */
function frameEnd(buf: ByteString, at: number): number {
  const cr = buf.indexOf("\r\n", at);
  if (cr < 0) return -1;
  const type = buf[at];
  const n = Number(buf.slice(at + 1, cr));
  const next = cr + 2;
  if (type === "+" || type === "-" || type === ":") return next;
  if (type === "$") {
    if (n < 0) return next;
    return buf.length >= next + n + 2 ? next + n + 2 : -1;
  }
  if (type === "*") {
    let p = next;
    for (let i = 0; i < n; i++) {
      p = frameEnd(buf, p);
      if (p < 0) return -1;
    }
    return p;
  }
  throw new Error(`unexpected reply byte ${JSON.stringify(type)}`);
}

/** A minimal RESP2 client answering each command with its raw reply frame. */
class RawClient {
  #conn: Deno.TcpConn;
  #buf = "";
  #chunk = new Uint8Array(64 * 1024);

  private constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
  }

  static async connect(port: number): Promise<RawClient> {
    return new RawClient(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  async send(argv: ByteString[]): Promise<ByteString> {
    const bytes = command(argv);
    for (let off = 0; off < bytes.length;) off += await this.#conn.write(bytes.subarray(off));
    for (;;) {
      const end = this.#buf.length > 0 ? frameEnd(this.#buf, 0) : -1;
      if (end >= 0) {
        const frame = this.#buf.slice(0, end);
        this.#buf = this.#buf.slice(end);
        return frame;
      }
      const n = await this.#conn.read(this.#chunk);
      if (n === null) throw new Error("redis-server closed the connection");
      this.#buf += latin1(this.#chunk.subarray(0, n));
    }
  }

  close(): void {
    this.#conn.close();
  }
}

// ---- the workload -----------------------------------------------------------------------------

const KEYS = ["l1", "l2", "l3", "l4", "s"];
const ELEMENTS = ["a", "b", "c", "d", "\xff\x00e"];
const ENDS = ["LEFT", "RIGHT", "left", "Right", "up"];

function index(p: Prng): ByteString {
  if (p.chance(0.04)) return p.pick(["x", "01", "9223372036854775807", "-9223372036854775808"]);
  return String(p.int(-7, 7));
}

function count(p: Prng): ByteString {
  if (p.chance(0.05)) return p.pick(["-1", "x", "9223372036854775807", "0"]);
  return String(p.int(0, 4));
}

function elements(p: Prng): ByteString[] {
  const n = p.chance(0.05) ? p.int(10, 30) : p.int(1, 3);
  return Array.from({ length: n }, () => p.pick(ELEMENTS));
}

function randomCommand(p: Prng): ByteString[] {
  const k = () => p.pick(KEYS);
  const e = () => p.pick(ELEMENTS);
  switch (p.int(0, 22)) {
    case 0:
    case 1:
      return ["LPUSH", k(), ...elements(p)];
    case 2:
    case 3:
      return ["RPUSH", k(), ...elements(p)];
    case 4:
      return [p.pick(["LPUSHX", "RPUSHX"]), k(), ...elements(p)];
    case 5: {
      const name = p.pick(["LPOP", "RPOP"]);
      if (p.chance(0.4)) return [name, k()];
      if (p.chance(0.05)) return [name, k(), "1", "2"];
      return [name, k(), count(p)];
    }
    case 6:
      return ["LLEN", k()];
    case 7:
    case 8:
      return ["LRANGE", k(), index(p), index(p)];
    case 9:
      return ["LINDEX", k(), index(p)];
    case 10:
      return ["LSET", k(), index(p), e()];
    case 11:
      return ["LREM", k(), p.chance(0.05) ? "x" : String(p.int(-3, 3)), e()];
    case 12:
      return ["LTRIM", k(), index(p), index(p)];
    case 13:
      return ["LINSERT", k(), p.pick(["BEFORE", "after", "middle"]), e(), e()];
    case 14:
      return ["LMOVE", k(), k(), p.pick(ENDS), p.pick(ENDS)];
    case 15:
      return ["RPOPLPUSH", k(), k()];
    case 16:
    case 17: {
      const argv = ["LPOS", k(), e()];
      const opts = p.int(0, 3);
      for (let i = 0; i < opts; i++) {
        const opt = p.pick(["RANK", "COUNT", "MAXLEN", "rank", "bogus"]);
        argv.push(opt);
        if (p.chance(0.95)) {
          argv.push(
            opt.toUpperCase() === "RANK"
              ? p.pick(["1", "2", "-1", "-2", "3", "0", "-9223372036854775808", "x"])
              : count(p),
          );
        }
      }
      return argv;
    }
    case 18:
    case 19: {
      const n = p.chance(0.08) ? p.pick(["0", "-1", "x", "9"]) : String(p.int(1, 3));
      const keys = Array.from({ length: Math.max(1, Number(n) || 1) }, k);
      const argv = ["LMPOP", n, ...keys, p.pick(ENDS)];
      if (p.chance(0.5)) argv.push("COUNT", count(p));
      if (p.chance(0.05)) argv.push(p.pick(["COUNT", "bogus"]));
      return argv;
    }
    case 20:
      return p.chance(0.3) ? ["SET", p.pick(KEYS), "v"] : ["DEL", k()];
    case 21:
      return ["TYPE", k()];
    default:
      return ["EXISTS", k()];
  }
}

const LISTS_NAME = "lists vs redis-server: seeded random commands give identical replies";
const LISTS_SKIP = await redisSkipReason();
announceSkip(LISTS_NAME, LISTS_SKIP);

Deno.test(
  { name: skipName(LISTS_NAME, LISTS_SKIP), ignore: LISTS_SKIP !== undefined },
  () =>
    withRedisServer(async (server) => {
      const client = await RawClient.connect(server.port);
      try {
        assert.equal(await client.send(["FLUSHALL"]), "+OK\r\n");
        const kv = new KvStore();
        let time = 1_000_000;
        for (const seed of [1, 2, 3]) {
          const p = new Prng(seed);
          const setup = [["DEL", ...KEYS], ["SET", "s", "str"]];
          const cmds = [...setup, ...Array.from({ length: 200 }, () => randomCommand(p))];
          for (const [i, argv] of cmds.entries()) {
            const expected = await client.send(argv);
            const got = latin1(encodeReply(kv.apply({ op: { argv, time: time++ } })));
            assert.equal(
              got,
              expected,
              `seed ${seed} command ${i}: ${JSON.stringify(argv)}\nlamportkv: ${
                JSON.stringify(got)
              }\nredis:     ${JSON.stringify(expected)}`,
            );
          }
          // The final contents agree too.
          for (const key of KEYS) {
            for (const argv of [["TYPE", key], ["LRANGE", key, "0", "-1"]]) {
              const got = latin1(encodeReply(kv.apply({ op: { argv, time } })));
              assert.equal(got, await client.send(argv), `seed ${seed} final ${argv.join(" ")}`);
            }
          }
        }
      } finally {
        client.close();
      }
    }),
);
