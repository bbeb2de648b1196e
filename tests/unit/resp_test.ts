/**
 * Unit tests of the RESP codec: the incremental request parser (every split point, byte by byte,
 * inline quoting, binary payloads, protocol errors, limits), the reply parser and the encoders.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Prng } from "../support/prng.ts";
import {
  DEFAULT_RESP_LIMITS,
  encodeArray,
  encodeBulk,
  encodeCommand,
  encodeEmptyArray,
  encodeError,
  encodeInteger,
  encodeNullArray,
  encodeSimple,
  type RequestItem,
  RespError,
  type RespLimits,
  RespProtocolError,
  RespReplyParser,
  RespRequestParser,
  RespStatus,
  type RespValue,
  splitInlineArgs,
} from "../../src/net/resp.ts";

/** A latin1 string (one char per byte) to bytes. */
function b(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    assert.ok(s.charCodeAt(i) <= 0xff, "test input must be a ByteString");
    out[i] = s.charCodeAt(i);
  }
  return out;
}

/** Bytes to a latin1 string. */
function str(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 4096) {
    s += String.fromCharCode(...bytes.subarray(i, i + 4096));
  }
  return s;
}

/** Every byte 0..255 once, then again in reverse: a payload with \r\n, NULs and high bytes. */
const ALL_BYTES = (() => {
  let s = "";
  for (let i = 0; i < 256; i++) s += String.fromCharCode(i);
  for (let i = 255; i >= 0; i--) s += String.fromCharCode(i);
  return s + "\r\n\r\n";
})();

/** Drains a request parser (bounded). */
function drain(p: RespRequestParser): RequestItem[] {
  const out: RequestItem[] = [];
  for (let i = 0; i < 100_000; i++) {
    const item = p.next();
    if (item === null) return out;
    out.push(item);
  }
  throw new Error("parser did not stop");
}

/** Parses `chunks` in order, draining after every push. */
function parseChunks(chunks: Uint8Array[], limits?: RespLimits): RequestItem[] {
  const p = new RespRequestParser(limits);
  const out: RequestItem[] = [];
  for (const c of chunks) {
    p.push(c);
    out.push(...drain(p));
  }
  return out;
}

/**
 * Asserts that `input` parses to `expected` in one chunk, split in two at every point, and
 * byte by byte.
 */
function assertAllSplits(input: string, expected: RequestItem[], limits?: RespLimits): void {
  const bytes = b(input);
  assert.deepEqual(parseChunks([bytes], limits), expected, "whole input");
  for (let i = 1; i < bytes.length; i++) {
    assert.deepEqual(
      parseChunks([bytes.subarray(0, i), bytes.subarray(i)], limits),
      expected,
      `split at ${i}`,
    );
  }
  const single: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; i++) single.push(bytes.subarray(i, i + 1));
  assert.deepEqual(parseChunks(single, limits), expected, "byte by byte");
}

function argv(...args: string[]): RequestItem {
  return { argv: args };
}

function fatal(message: string): RequestItem {
  return { error: `ERR ${message}`, fatal: true };
}

Deno.test("request: RESP array at every split point", () => {
  assertAllSplits("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", [argv("GET", "k")]);
  assertAllSplits("*3\r\n$3\r\nSET\r\n$0\r\n\r\n$5\r\nhello\r\n", [argv("SET", "", "hello")]);
});

Deno.test("request: pipelined arrays and inline commands", () => {
  const input = "*1\r\n$4\r\nPING\r\nGET a\r\n*2\r\n$3\r\nDEL\r\n$1\r\nb\r\nEXISTS c\n";
  assertAllSplits(input, [argv("PING"), argv("GET", "a"), argv("DEL", "b"), argv("EXISTS", "c")]);
});

Deno.test("request: binary-safe bulk payloads (all bytes, embedded CRLF)", () => {
  const input = `*3\r\n$3\r\nSET\r\n$4\r\n\r\n\r\n\r\n$${ALL_BYTES.length}\r\n${ALL_BYTES}\r\n`;
  assertAllSplits(input, [argv("SET", "\r\n\r\n", ALL_BYTES)]);
  const round = parseChunks([encodeCommand(["SET", "\x00\xff", ALL_BYTES])]);
  assert.deepEqual(round, [argv("SET", "\x00\xff", ALL_BYTES)]);
});

Deno.test("request: *0 and *-1 yield nothing", () => {
  assertAllSplits("*0\r\n*-1\r\n*-5\r\n*1\r\n$4\r\nPING\r\n", [argv("PING")]);
});

Deno.test("request: inline commands, line ends and empty lines", () => {
  assertAllSplits("PING\r\n", [argv("PING")]);
  assertAllSplits("SET a b\n", [argv("SET", "a", "b")]);
  assertAllSplits("\r\n\n   \r\n\t\nGET  \t x \r\n", [argv("GET", "x")]);
  assertAllSplits("GET caf\xc3\xa9\r\n", [argv("GET", "caf\xc3\xa9")]);
  // A "\r" that is not followed by "\n" separates words, like Redis.
  assertAllSplits("GET a\rb\r\n", [argv("GET", "a", "b")]);
  // Nothing until the line is complete.
  assert.deepEqual(parseChunks([b("GET a")]), []);
});

Deno.test("request: inline quoting like sdssplitargs", () => {
  const cases: [string, string[]][] = [
    [`SET "a b" 'c d'`, ["SET", "a b", "c d"]],
    [`SET k "x\\ny\\rz\\t\\\\q\\"e"`, ["SET", "k", 'x\ny\rz\t\\q"e']],
    [`SET k "\\x41\\x00\\xff\\xFf"`, ["SET", "k", "A\x00\xff\xff"]],
    [`SET k "\\xZZ\\b\\a\\q"`, ["SET", "k", "xZZ\x08\x07q"]],
    [`SET k 'it\\'s' 'a\\nb'`, ["SET", "k", "it's", "a\\nb"]],
    [`SET "" ''`, ["SET", "", ""]],
    [`SET a"b c"`, ["SET", "ab c"]],
    [`SET k "v"\t'w'`, ["SET", "k", "v", "w"]],
  ];
  for (const [line, expected] of cases) {
    assertAllSplits(`${line}\r\n`, [argv(...expected)]);
    const bytes = b(line);
    assert.deepEqual(splitInlineArgs(bytes, 0, bytes.length), expected, line);
  }
});

Deno.test("request: unbalanced quotes are a fatal protocol error", () => {
  for (const line of [`GET "abc`, `GET 'abc`, `GET "a"b`, `GET 'a'b`, `GET "abc\\"`]) {
    assertAllSplits(`${line}\r\nPING\r\n`, [fatal("Protocol error: unbalanced quotes in request")]);
  }
  // Requests before the bad one are still delivered.
  assertAllSplits(`PING\r\nGET "x\r\n`, [
    argv("PING"),
    fatal("Protocol error: unbalanced quotes in request"),
  ]);
});

Deno.test("request: malformed arrays give Redis's protocol errors", () => {
  const cases: [string, string][] = [
    ["*abc\r\n", "Protocol error: invalid multibulk length"],
    ["*\r\n", "Protocol error: invalid multibulk length"],
    ["*+1\r\n", "Protocol error: invalid multibulk length"],
    ["*01\r\n", "Protocol error: invalid multibulk length"],
    ["*-0\r\n", "Protocol error: invalid multibulk length"],
    ["*1 \r\n", "Protocol error: invalid multibulk length"],
    ["*1\rx", "Protocol error: invalid multibulk length"],
    ["*65537\r\n", "Protocol error: invalid multibulk length"],
    ["*99999999999999999999\r\n", "Protocol error: invalid multibulk length"],
    [`*${"1".repeat(40)}`, "Protocol error: too big mbulk count string"],
    ["*1\r\nx", "Protocol error: expected '$', got 'x'"],
    ["*1\r\n:5\r\n", "Protocol error: expected '$', got ':'"],
    ["*2\r\n$3\r\nGET\r\n*1\r\n", "Protocol error: expected '$', got '*'"],
    ["*1\r\n$-1\r\n", "Protocol error: invalid bulk length"],
    ["*1\r\n$abc\r\n", "Protocol error: invalid bulk length"],
    ["*1\r\n$\r\n", "Protocol error: invalid bulk length"],
    ["*1\r\n$3\rx", "Protocol error: invalid bulk length"],
    [`*1\r\n$${"9".repeat(40)}`, "Protocol error: too big bulk count string"],
    ["*1\r\n$3\r\nabcXY", "Protocol error: bulk string of 3 bytes not followed by CRLF"],
    ["*1\r\n$3\r\nabc\rX", "Protocol error: bulk string of 3 bytes not followed by CRLF"],
  ];
  for (const [input, message] of cases) assertAllSplits(input, [fatal(message)]);
});

Deno.test("request: huge declared lengths are rejected at the header, before any payload", () => {
  const p = new RespRequestParser();
  p.push(b("*2\r\n$3\r\nGET\r\n$999999999999\r\n"));
  assert.deepEqual(
    p.next(),
    fatal("Protocol error: invalid bulk length (999999999999 > max 8388608 bytes)"),
  );
  assert.equal(p.failed, true);
  assert.equal(p.bufferedBytes, 0);
  assert.equal(p.next(), null);
  // Input after a fatal error is discarded, not buffered.
  p.push(new Uint8Array(1024));
  assert.equal(p.bufferedBytes, 0);
  assert.equal(p.next(), null);

  assert.deepEqual(
    parseChunks([b("*2147483648\r\n")]),
    [fatal("Protocol error: invalid multibulk length")],
  );
  // Just above the limit: rejected; at the limit the header is accepted and the parser waits.
  const limit = DEFAULT_RESP_LIMITS.maxBulkBytes;
  assert.deepEqual(parseChunks([b(`*1\r\n$${limit + 1}\r\n`)]), [
    fatal(`Protocol error: invalid bulk length (${limit + 1} > max ${limit} bytes)`),
  ]);
  const waiting = new RespRequestParser();
  waiting.push(b(`*1\r\n$${limit}\r\n`));
  assert.equal(waiting.next(), null);
  assert.equal(waiting.failed, false);
  assert.equal(waiting.bufferedBytes, 0);
});

Deno.test("request: a maximal value arriving in 64 KiB chunks", () => {
  const size = DEFAULT_RESP_LIMITS.maxBulkBytes;
  const value = new Uint8Array(size);
  for (let i = 0; i < size; i++) value[i] = (i * 31 + 7) & 0xff;
  const head = b(`*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$${size}\r\n`);
  const all = new Uint8Array(head.length + size + "\r\nPING\n".length);
  all.set(head);
  all.set(value, head.length);
  all.set(b("\r\nPING\n"), head.length + size);
  const p = new RespRequestParser();
  const items: RequestItem[] = [];
  for (let i = 0; i < all.length; i += 65536) {
    p.push(all.subarray(i, i + 65536));
    items.push(...drain(p));
    assert.ok(p.bufferedBytes <= size + 65536, "buffers at most one request plus a chunk");
  }
  assert.equal(items.length, 2);
  const first = items[0];
  assert.ok("argv" in first);
  assert.equal(first.argv[0], "SET");
  assert.equal(first.argv[2].length, size);
  assert.equal(first.argv[2], str(value));
  assert.deepEqual(items[1], argv("PING"));
  assert.equal(p.bufferedBytes, 0);
});

Deno.test("request: custom limits (bulk, args, request size, inline)", () => {
  const limits: RespLimits = { maxBulkBytes: 4, maxArgs: 3, maxInlineBytes: 8 };
  assertAllSplits("*3\r\n$1\r\na\r\n$4\r\nbbbb\r\n$1\r\nc\r\n", [argv("a", "bbbb", "c")], limits);
  assertAllSplits(
    "*1\r\n$5\r\n",
    [fatal("Protocol error: invalid bulk length (5 > max 4 bytes)")],
    limits,
  );
  assertAllSplits("*4\r\n", [fatal("Protocol error: invalid multibulk length")], limits);
  assertAllSplits("a b c d\r\n", [fatal("Protocol error: too many arguments (max 3)")], limits);
  // Exactly maxInlineBytes of content is fine, with either line end.
  assertAllSplits("12345678\r\n12345678\n", [argv("12345678"), argv("12345678")], limits);
  assertAllSplits("123456789\r\n", [fatal("Protocol error: too big inline request")], limits);
  assertAllSplits("123456789\n", [fatal("Protocol error: too big inline request")], limits);
  // Without any line end the error comes as soon as too many bytes are buffered.
  const p = new RespRequestParser(limits);
  p.push(b("12345678"));
  assert.equal(p.next(), null, "might still end with \\r\\n");
  p.push(b("9"));
  assert.deepEqual(p.next(), fatal("Protocol error: too big inline request"));
  const q = new RespRequestParser(limits);
  q.push(b("12345678\r"));
  assert.equal(q.next(), null);
  q.push(b("\n"));
  assert.deepEqual(q.next(), argv("12345678"));

  const small: RespLimits = { maxBulkBytes: 4, maxArgs: 10, maxInlineBytes: 8, maxRequestBytes: 6 };
  assertAllSplits("*2\r\n$3\r\nabc\r\n$3\r\ndef\r\n", [argv("abc", "def")], small);
  assertAllSplits(
    "*3\r\n$3\r\nabc\r\n$3\r\ndef\r\n$1\r\n",
    [fatal("Protocol error: request too large (max 6 bytes)")],
    small,
  );
});

Deno.test("request: the default limits are the documented ones", () => {
  assert.deepEqual({ ...DEFAULT_RESP_LIMITS }, {
    maxBulkBytes: 8 * 1024 * 1024,
    maxArgs: 65_536,
    maxInlineBytes: 64 * 1024,
  });
  const argvMax = Array.from({ length: 65_536 }, (_, i) => String(i));
  assert.deepEqual(parseChunks([encodeCommand(argvMax)]), [{ argv: argvMax }]);
});

Deno.test("request: a long inline line fed byte by byte", () => {
  const line = "SET k " + "v".repeat(60_000);
  const p = new RespRequestParser();
  const bytes = b(line + "\r\n");
  const out: RequestItem[] = [];
  for (let i = 0; i < bytes.length; i++) {
    p.push(bytes.subarray(i, i + 1));
    out.push(...drain(p));
  }
  assert.deepEqual(out, [argv("SET", "k", "v".repeat(60_000))]);
});

// ---------------------------------------------------------------------------------------------
// Replies

function drainReplies(p: RespReplyParser): RespValue[] {
  const out: RespValue[] = [];
  for (let i = 0; i < 100_000; i++) {
    const v = p.next();
    if (v === undefined) return out;
    out.push(v);
  }
  throw new Error("reply parser did not stop");
}

function assertRepliesAllSplits(input: Uint8Array, expected: RespValue[]): void {
  const whole = new RespReplyParser();
  whole.push(input);
  assert.deepEqual(drainReplies(whole), expected, "whole input");
  for (let i = 1; i < input.length; i++) {
    const p = new RespReplyParser();
    p.push(input.subarray(0, i));
    const got = drainReplies(p);
    p.push(input.subarray(i));
    got.push(...drainReplies(p));
    assert.deepEqual(got, expected, `split at ${i}`);
  }
  const p = new RespReplyParser();
  const got: RespValue[] = [];
  for (let i = 0; i < input.length; i++) {
    p.push(input.subarray(i, i + 1));
    got.push(...drainReplies(p));
  }
  assert.deepEqual(got, expected, "byte by byte");
}

Deno.test("reply: every RESP2 type at every split point", () => {
  const input = "+OK\r\n-ERR bad thing\r\n:42\r\n:-7\r\n$-1\r\n$0\r\n\r\n$5\r\nhe\r\no\r\n" +
    "*-1\r\n*0\r\n*3\r\n:1\r\n*2\r\n$1\r\na\r\n*0\r\n+x\r\n+\r\n";
  assertRepliesAllSplits(b(input), [
    "OK",
    new RespError("ERR bad thing"),
    42,
    -7,
    null,
    "",
    "he\r\no",
    null,
    [],
    [1, ["a", []], "x"],
    "",
  ]);
});

Deno.test("reply: round trips through the encoders", () => {
  const parts = [
    encodeSimple("PONG"),
    encodeError("NOQUORUM replica 2 cannot reach a majority"),
    encodeInteger(0),
    encodeInteger(-123456789012),
    encodeBulk(null),
    encodeBulk(""),
    encodeBulk(ALL_BYTES),
    encodeEmptyArray(),
    encodeNullArray(),
    encodeArray([encodeBulk("a"), encodeArray([encodeInteger(1)]), encodeBulk(null)]),
    encodeCommand(["SET", "k", "v\r\n"]),
  ];
  const total = parts.reduce((n, p) => n + p.length, 0);
  const all = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    all.set(part, offset);
    offset += part.length;
  }
  assertRepliesAllSplits(all, [
    "PONG",
    new RespError("NOQUORUM replica 2 cannot reach a majority"),
    0,
    -123456789012,
    null,
    "",
    ALL_BYTES,
    [],
    null,
    ["a", [1], null],
    ["SET", "k", "v\r\n"],
  ]);
  assert.equal(new RespError("NOQUORUM x y").code, "NOQUORUM");
  assert.equal(new RespError("ERR").code, "ERR");
});

Deno.test("reply: simple strings and errors are UTF-8 text", () => {
  const p = new RespReplyParser();
  p.push(encodeError("ERR caf\u00e9 \u2014 \u{1F600}"));
  p.push(encodeSimple("\u00fcber"));
  const err = p.next();
  assert.ok(err instanceof RespError);
  assert.equal(err.message, "ERR caf\u00e9 \u2014 \u{1F600}");
  assert.equal(p.next(), "\u00fcber");
});

Deno.test("reply: nextTagged keeps simple strings apart from bulk strings, at any depth", () => {
  const p = new RespReplyParser();
  const reply = encodeArray([
    encodeSimple("OK"),
    encodeBulk("OK"),
    encodeArray([encodeSimple("é")]),
  ]);
  // Split inside the nested array: the reply is finished by a later nextTagged call.
  p.push(reply.subarray(0, reply.length - 3));
  assert.equal(p.nextTagged(), undefined);
  p.push(reply.subarray(reply.length - 3));
  p.push(encodeSimple("PONG"));
  p.push(encodeSimple("PONG"));
  assert.deepEqual(p.nextTagged(), [new RespStatus("OK"), "OK", [new RespStatus("é")]]);
  assert.deepEqual(p.nextTagged(), new RespStatus("PONG"));
  assert.equal(p.next(), "PONG"); // untagged again for the next reply
});

Deno.test("reply: malformed input throws RespProtocolError, and keeps throwing", () => {
  const bad = [
    "?what\r\n",
    "$-2\r\n",
    "$abc\r\n",
    "*-2\r\n",
    "*x\r\n",
    ":\r\n",
    ":12a\r\n",
    "+OK\rX",
    "$3\r\nabcXY",
  ];
  for (const input of bad) {
    const p = new RespReplyParser();
    p.push(b(input));
    assert.throws(() => drainReplies(p), RespProtocolError, input);
    assert.throws(() => p.next(), RespProtocolError, `${input} (again)`);
  }
});

Deno.test("reply: limits", () => {
  const p = new RespReplyParser({ maxBulkBytes: 10 });
  p.push(b("$999999999999\r\n"));
  assert.throws(() => p.next(), /bulk length 999999999999 exceeds the limit of 10/);

  const q = new RespReplyParser({ maxArrayLength: 2 });
  q.push(b("*3\r\n"));
  assert.throws(() => q.next(), /array length 3 exceeds/);

  const deep = new RespReplyParser({ maxDepth: 3 });
  deep.push(b("*1\r\n*1\r\n*1\r\n*1\r\n"));
  assert.throws(() => deep.next(), /nested deeper than 3/);

  const long = new RespReplyParser({ maxLineBytes: 8 });
  long.push(b("+12345678\r\n"));
  assert.deepEqual(long.next(), "12345678");
  long.push(b("+123456789"));
  assert.throws(() => long.next(), /line longer than 8 bytes/);
});

// ---------------------------------------------------------------------------------------------
// Encoders

Deno.test("encoders: exact bytes", () => {
  assert.equal(str(encodeSimple("OK")), "+OK\r\n");
  assert.equal(str(encodeError("ERR unknown command")), "-ERR unknown command\r\n");
  assert.equal(str(encodeError("ERR a\r\nb\nc")), "-ERR a  b c\r\n");
  assert.equal(str(encodeSimple("x\ry")), "+x y\r\n");
  assert.equal(str(encodeError("ERR \u2014\u00e9")), "-ERR \xe2\x80\x94\xc3\xa9\r\n", "UTF-8");
  assert.equal(str(encodeSimple("\u00fc")), "+\xc3\xbc\r\n");
  assert.equal(str(encodeInteger(12)), ":12\r\n");
  assert.equal(str(encodeInteger(-1)), ":-1\r\n");
  assert.equal(str(encodeBulk("ab")), "$2\r\nab\r\n");
  assert.equal(str(encodeBulk("")), "$0\r\n\r\n");
  assert.equal(str(encodeBulk(null)), "$-1\r\n");
  assert.equal(str(encodeBulk("\r\n\x00\xff")), "$4\r\n\r\n\x00\xff\r\n");
  assert.equal(str(encodeEmptyArray()), "*0\r\n");
  assert.equal(str(encodeNullArray()), "*-1\r\n");
  assert.equal(str(encodeArray([encodeInteger(1), encodeBulk("a")])), "*2\r\n:1\r\n$1\r\na\r\n");
  assert.equal(str(encodeCommand(["GET", "k"])), "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
  assert.equal(str(encodeCommand([])), "*0\r\n");
  assert.equal(str(encodeCommand(["", "\xff"])), "*2\r\n$0\r\n\r\n$1\r\n\xff\r\n");
});

Deno.test("encoders: shared constants are not aliased", () => {
  const a = encodeBulk(null);
  a[0] = 0;
  assert.equal(str(encodeBulk(null)), "$-1\r\n");
  const e = encodeEmptyArray();
  e[0] = 0;
  assert.equal(str(encodeEmptyArray()), "*0\r\n");
});

Deno.test("encoders: reject non-ByteStrings and non-integers", () => {
  assert.throws(() => encodeBulk("\u0100"), TypeError);
  assert.throws(() => encodeCommand(["SET", "k", "\u20ac"]), TypeError);
  assert.throws(() => encodeInteger(1.5), RangeError);
  assert.throws(() => encodeInteger(Number.NaN), RangeError);
  assert.throws(() => encodeInteger(2 ** 60), RangeError);
});

Deno.test("encoders: large binary bulk", () => {
  const size = 8 * 1024 * 1024;
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 131) & 0xff;
  const value = str(bytes);
  const encoded = encodeBulk(value);
  const header = `$${size}\r\n`;
  assert.equal(encoded.length, header.length + size + 2);
  assert.equal(str(encoded.subarray(0, header.length)), header);
  assert.deepEqual(encoded.subarray(header.length, header.length + size), bytes);
  assert.equal(str(encoded.subarray(encoded.length - 2)), "\r\n");
});

// ---------------------------------------------------------------------------------------------
// Seeded random inputs

/** Seeded random numbers in [0, 1) from the project's PRNG. */
function prng(seed: number): () => number {
  const prng = new Prng(seed);
  return () => prng.next();
}

/** Splits `bytes` into random chunks of 1..max bytes. */
function randomChunks(bytes: Uint8Array, rand: () => number, max: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < bytes.length;) {
    const n = 1 + Math.floor(rand() * max);
    out.push(bytes.subarray(i, i + n));
    i += n;
  }
  return out;
}

Deno.test("request: random pipelines of random binary commands, randomly split", () => {
  const rand = prng(42);
  for (let round = 0; round < 200; round++) {
    const commands: string[][] = [];
    const parts: Uint8Array[] = [];
    const count = 1 + Math.floor(rand() * 8);
    for (let c = 0; c < count; c++) {
      const args: string[] = [];
      const argc = 1 + Math.floor(rand() * 4);
      for (let a = 0; a < argc; a++) {
        let s = "";
        const len = Math.floor(rand() * 40);
        for (let k = 0; k < len; k++) s += String.fromCharCode(Math.floor(rand() * 256));
        args.push(s);
      }
      commands.push(args);
      parts.push(encodeCommand(args));
    }
    const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let offset = 0;
    for (const p of parts) {
      all.set(p, offset);
      offset += p.length;
    }
    const got = parseChunks(randomChunks(all, rand, 1 + Math.floor(rand() * 64)));
    assert.deepEqual(got, commands.map((args) => ({ argv: args })), `round ${round}`);
  }
});

Deno.test("request and reply parsers never throw unexpectedly on garbage", () => {
  const rand = prng(7);
  const alphabet = b("*$+-:0123456789\r\n\r\n \"'\\xaZ");
  for (let round = 0; round < 500; round++) {
    const len = Math.floor(rand() * 200);
    const bytes = new Uint8Array(len);
    for (let i = 0; i < len; i++) {
      bytes[i] = rand() < 0.8 ? alphabet[Math.floor(rand() * alphabet.length)] : rand() * 256;
    }
    const chunks = randomChunks(bytes, rand, 16);
    const requests = parseChunks(chunks, { maxBulkBytes: 64, maxArgs: 8, maxInlineBytes: 64 });
    for (const item of requests) {
      if ("error" in item) {
        assert.ok(item.error.startsWith("ERR Protocol error: "), item.error);
        assert.equal(item.fatal, true);
        assert.equal(item, requests[requests.length - 1], "an error is the last item");
      } else {
        assert.ok(item.argv.length > 0 && item.argv.length <= 8);
      }
    }
    const replies = new RespReplyParser({ maxBulkBytes: 64, maxLineBytes: 64 });
    try {
      for (const c of chunks) {
        replies.push(c);
        drainReplies(replies);
      }
    } catch (e) {
      assert.ok(e instanceof RespProtocolError, String(e));
    }
  }
});
