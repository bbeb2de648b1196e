/**
 * Blocked stream reads (`src/net/stream_block.ts`) against a store with a fake connection: the
 * BLOCK option is found and removed, `$` is resolved once at the start, polls go through the
 * store until entries come, a timeout is answered only after a poll found nothing, and a closed
 * connection stops the polls. Timers are the test's own (a queue it runs), so nothing sleeps.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { ByteString, Reply } from "../../src/core/types.ts";
import { KvStore } from "../../src/kv/store.ts";
import { NIL_ARRAY } from "../../src/kv/reply.ts";
import { type BlockHost, blockingRead, runBlockingRead } from "../../src/net/stream_block.ts";

/** A store, a clock, a timer queue and a fake connection over them. */
function harness() {
  const kv = new KvStore();
  let now = 1_000_000;
  let open = true;
  const timers: { at: number; fn: () => void }[] = [];
  const sent: ByteString[][] = [];
  const host: BlockHost = {
    submit: (argv, reply) => {
      sent.push(argv);
      reply(kv.apply({ op: { argv, time: now } }));
    },
    open: () => open,
    now: () => now,
    later: (fn, ms) => timers.push({ at: now + ms, fn }),
  };
  const run = (...argv: string[]) => kv.apply({ op: { argv, time: now } });
  /** Runs the next timer (advancing the clock to it); false when none is left. */
  const tick = (): boolean => {
    timers.sort((a, b) => a.at - b.at);
    const t = timers.shift();
    if (t === undefined) return false;
    now = Math.max(now, t.at);
    t.fn();
    return true;
  };
  return { host, run, tick, sent, close: () => (open = false) };
}

Deno.test("stream block: BLOCK is found and removed, $ keys noted, invalid forms left alone", () => {
  assert.deepEqual(
    blockingRead(["XREAD", "COUNT", "2", "BLOCK", "100", "STREAMS", "a", "b", "$", "0"]),
    {
      timeoutMs: 100,
      argv: ["XREAD", "COUNT", "2", "STREAMS", "a", "b", "$", "0"],
      dollars: [{ id: 6, key: 4 }],
    },
  );
  assert.deepEqual(
    blockingRead(["xreadgroup", "GROUP", "g", "c", "block", "0", "STREAMS", "s", ">"])?.argv,
    ["xreadgroup", "GROUP", "g", "c", "STREAMS", "s", ">"],
  );
  assert.equal(blockingRead(["XREAD", "STREAMS", "a", "0"]), undefined); // no BLOCK
  assert.equal(blockingRead(["XREAD", "BLOCK", "-1", "STREAMS", "a", "0"]), undefined);
  assert.equal(blockingRead(["XREAD", "BLOCK", "x", "STREAMS", "a", "0"]), undefined);
  assert.equal(blockingRead(["XREAD", "BLOCK", "5", "STREAMS", "a"]), undefined); // unbalanced
  assert.equal(blockingRead(["XRANGE", "BLOCK", "5", "STREAMS"]), undefined);
});

Deno.test("stream block: XREAD $ waits for the next entry, polling in the order", () => {
  const { host, run, tick, sent } = harness();
  run("XADD", "s", "1-0", "f", "old");
  const replies: Reply[] = [];
  runBlockingRead(
    blockingRead(["XREAD", "BLOCK", "0", "STREAMS", "s", "$"])!,
    host,
    (r) => replies.push(r),
  );
  assert.deepEqual(sent[0], ["__xlastid", "s"]);
  assert.deepEqual(sent[1], ["XREAD", "STREAMS", "s", "1-0"]);
  for (let i = 0; i < 5; i++) assert.ok(tick());
  assert.deepEqual(replies, []);
  run("XADD", "s", "2-0", "f", "new");
  assert.ok(tick());
  assert.deepEqual(replies, [[["s", [["2-0", ["f", "new"]]]]]]);
  assert.equal(tick(), false); // no poll after the reply
});

Deno.test("stream block: a timeout answers nil after a poll that found nothing", () => {
  const { host, tick, sent } = harness();
  const replies: Reply[] = [];
  runBlockingRead(
    blockingRead(["XREAD", "BLOCK", "50", "STREAMS", "s", "0"])!,
    host,
    (r) => replies.push(r),
  );
  while (tick()) { /* polls until the deadline */ }
  assert.deepEqual(replies, [NIL_ARRAY]);
  assert.ok(sent.length >= 2);
});

Deno.test("stream block: XREADGROUP > hands a new entry to one blocked consumer once", () => {
  const { host, run, tick, sent } = harness();
  run("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM");
  const a: Reply[] = [];
  const b: Reply[] = [];
  const argv = (c: string) => ["XREADGROUP", "GROUP", "g", c, "BLOCK", "0", "STREAMS", "s", ">"];
  runBlockingRead(blockingRead(argv("a"))!, host, (r) => a.push(r));
  runBlockingRead(blockingRead(argv("b"))!, host, (r) => b.push(r));
  tick();
  run("XADD", "s", "5-0", "f", "v");
  tick();
  assert.equal(a.length + b.length, 1);
  // Idle polls were reads: the one XREADGROUP in the order is the one that was served.
  assert.equal(sent.filter((argv) => argv[0] === "XREADGROUP").length, 1);
  assert.ok(sent.filter((argv) => argv[0] === "__xreadgroup_ready").length >= 3);
  assert.deepEqual([...a, ...b][0], [["s", [["5-0", ["f", "v"]]]]]);
  assert.deepEqual(run("XPENDING", "s", "g"), [1, "5-0", "5-0", [[a.length ? "a" : "b", "1"]]]);
  // Errors end the wait at once.
  const c: Reply[] = [];
  runBlockingRead(
    blockingRead(["XREADGROUP", "GROUP", "nog", "x", "BLOCK", "0", "STREAMS", "s", ">"])!,
    host,
    (r) => c.push(r),
  );
  assert.match((c[0] as { err: string }).err, /^NOGROUP/);
  // A history read (ID 0) never waits, like Redis.
  const d: Reply[] = [];
  runBlockingRead(
    blockingRead(["XREADGROUP", "GROUP", "g", "zed", "BLOCK", "0", "STREAMS", "s", "0"])!,
    host,
    (r) => d.push(r),
  );
  assert.deepEqual(d, [[["s", []]]]);
});

Deno.test("stream block: a closed connection stops the polls without a reply", () => {
  const { host, tick, close } = harness();
  const replies: Reply[] = [];
  runBlockingRead(
    blockingRead(["XREAD", "BLOCK", "0", "STREAMS", "s", "0"])!,
    host,
    (r) => replies.push(r),
  );
  assert.ok(tick());
  close();
  while (tick()) { /* drains */ }
  assert.deepEqual(replies, []);
});
