/**
 * The logger (`src/log/`): both line formats, level filtering, rate limiting with an injected
 * clock (first events, then one per interval, suppressed counts), secrets redacted, and the ready
 * line the test harness waits for.
 */
import assert from "node:assert/strict";
import { Logger, SUPPRESSED_EVENT } from "../../src/log/logger.ts";
import { formatRecord, type LogRecord, readyLineId } from "../../src/log/format.ts";
import { RateLimiter } from "../../src/log/rate_limit.ts";
import { REDACTED } from "../../src/log/redact.ts";
import { describeSettings, resolveSettings } from "../../src/config/settings.ts";

const T0 = Date.UTC(2026, 11, 5, 6, 0, 0, 123);

/** A logger at `level` whose records land in the returned array; its clock is `clock.now`. */
function capture(level: "error" | "warn" | "info" | "debug" = "debug", intervalMs = 1000) {
  const records: LogRecord[] = [];
  const clock = { now: 0 };
  const log = new Logger({
    id: 3,
    level,
    sink: (r) => records.push(r),
    now: () => T0 + clock.now,
    rateLimit: { burst: 5, intervalMs, now: () => clock.now },
  });
  return { log, records, clock };
}

Deno.test("logger: text and JSON lines carry time, level, id, event, message and fields", () => {
  const { log, records } = capture();
  log.info("view.installed", "serving in view 4", {
    view: 4,
    members: [1, 2, 3],
    cause: "replica 2 joined",
    settings: { maxclients: 10, dir: "data/1" },
    empty: "",
    gone: undefined,
  });
  const [r] = records;
  assert.equal(
    formatRecord(r, "text"),
    "2026-12-05T06:00:00.123Z INFO  replica 3 view.installed: serving in view 4 view=4 " +
      'members=1,2,3 cause="replica 2 joined" settings.maxclients=10 settings.dir=data/1 empty=""',
  );
  const json = JSON.parse(formatRecord(r, "json"));
  assert.deepEqual(json, {
    time: "2026-12-05T06:00:00.123Z",
    level: "info",
    id: 3,
    event: "view.installed",
    msg: "serving in view 4",
    view: 4,
    members: [1, 2, 3],
    cause: "replica 2 joined",
    settings: { maxclients: 10, dir: "data/1" },
    empty: "",
  });
  // One event, one line, whatever the message holds.
  log.error("http.error", "http: /x: Error: boom\n    at f (a.ts:1:1)");
  const stack = records.pop()!;
  assert.ok(
    formatRecord(stack, "text").endsWith("http.error: http: /x: Error: boom\\n    at f (a.ts:1:1)"),
  );
  assert.equal(
    JSON.parse(formatRecord(stack, "json")).msg,
    "http: /x: Error: boom\n    at f (a.ts:1:1)",
  );
  // Fields cannot overwrite the common keys.
  log.warn("x.y", "m", { level: "debug", id: 9, event: "other", quote: 'a "b"\nc' });
  const j2 = JSON.parse(formatRecord(records[1], "json"));
  assert.equal(j2.level, "warn");
  assert.equal(j2.id, 3);
  assert.equal(j2.event, "x.y");
  assert.ok(
    formatRecord(records[1], "text").endsWith(' WARN  replica 3 x.y: m quote="a \\"b\\"\\nc"'),
  );
});

Deno.test("logger: levels below the configured one are not written", () => {
  for (
    const [level, expected] of [
      ["error", ["error"]],
      ["warn", ["error", "warn"]],
      ["info", ["error", "warn", "info"]],
      ["debug", ["error", "warn", "info", "debug", "debug"]],
    ] as const
  ) {
    const { log, records } = capture(level);
    log.debug("e.debug", "d");
    log.info("e.info", "i");
    log.warn("e.warn", "w");
    log.error("e.error", "e");
    log.limited("debug", "e.limited", "h", "l");
    assert.deepEqual(records.map((r) => r.level).sort(), [...expected].sort(), level);
    assert.equal(log.enabled("debug"), level === "debug");
    assert.equal(log.enabled("error"), true);
  }
});

Deno.test("logger: repeated events from one source: first 5, then one per interval, counted", () => {
  const { log, records, clock } = capture("info", 1000);
  const flood = (n: number, source: string) => {
    for (let i = 0; i < n; i++) log.limited("warn", "peer.malformed", source, `bad frame ${i}`);
  };
  flood(2000, "10.0.0.9");
  assert.deepEqual(records.map((r) => r.msg), [0, 1, 2, 3, 4].map((i) => `bad frame ${i}`));
  assert.ok(records.every((r) => r.fields.source === "10.0.0.9"));
  // Another source, or another event from the same source, has a budget of its own.
  flood(1, "10.0.0.10");
  log.limited("warn", "peer.bad_hello", "10.0.0.9", "bad hello");
  assert.equal(records.length, 7);

  // Half an interval later: still nothing; a whole one later: one line, after the summary.
  clock.now = 500;
  flood(10, "10.0.0.9");
  assert.equal(records.length, 7);
  clock.now = 1000;
  flood(3, "10.0.0.9");
  const [summary, next] = records.slice(7);
  assert.equal(records.length, 9);
  assert.equal(summary.event, SUPPRESSED_EVENT);
  assert.equal(summary.level, "warn");
  assert.deepEqual(summary.fields, {
    of: "peer.malformed",
    source: "10.0.0.9",
    suppressed: 1995 + 10,
  });
  assert.match(summary.msg, /^2005 more peer\.malformed from 10\.0\.0\.9 not logged$/);
  assert.equal(next.msg, "bad frame 0");

  // The flood stops: the two held back since are reported by a flush once an interval passed.
  log.flushSuppressed();
  assert.equal(records.length, 9, "not before an interval");
  clock.now = 2500;
  log.flushSuppressed();
  assert.equal(records.length, 10);
  assert.equal(records[9].fields.suppressed, 2);
  log.flushSuppressed();
  assert.equal(records.length, 10, "counted once");

  // A source quiet for long gets its whole burst back.
  clock.now = 60_000;
  flood(7, "10.0.0.9");
  assert.equal(records.length, 15);
});

Deno.test("rate limiter: remembers a bounded number of sources, the least recent forgotten", () => {
  let now = 0;
  const limiter = new RateLimiter({ burst: 1, intervalMs: 1000, maxKeys: 2, now: () => now });
  assert.deepEqual(limiter.take("a"), { write: true, suppressed: 0 });
  assert.deepEqual(limiter.take("a"), { write: false });
  assert.deepEqual(limiter.take("b"), { write: true, suppressed: 0 });
  assert.deepEqual(limiter.take("c"), { write: true, suppressed: 0 }); // forgets "a"
  assert.deepEqual(limiter.take("a"), { write: true, suppressed: 0 });
  now = 1000;
  assert.deepEqual(limiter.take("c"), { write: true, suppressed: 0 });
  // An interval of 0 writes everything.
  const open = new RateLimiter({ intervalMs: 0 });
  for (let i = 0; i < 100; i++) assert.equal(open.take("k").write, true);
});

Deno.test("logger: passwords, tokens and keys are never written", () => {
  const { log, records } = capture();
  log.addSecret("hunter22");
  log.info("node.start", "starting with hunter22 as the password", {
    settings: describeSettings(resolveSettings([
      { name: "requirepass", value: "hunter22", where: "--requirepass" },
      { name: "maxclients", value: "5", where: "--maxclients" },
    ])),
    password: "other-secret",
    token: "abc",
    key: "user:42",
    user: "app",
    note: "sent hunter22 twice: hunter22",
    nested: { authorization: "Basic eA==", list: ["hunter22"] },
  });
  const [r] = records;
  for (const line of [formatRecord(r, "text"), formatRecord(r, "json")]) {
    for (const secret of ["hunter22", "other-secret", "abc", "user:42", "eA=="]) {
      assert.ok(!line.includes(secret), `${secret} in ${line}`);
    }
  }
  const j = JSON.parse(formatRecord(r, "json"));
  assert.equal(j.msg, `starting with ${REDACTED} as the password`);
  assert.equal(j.settings.requirepass, REDACTED);
  assert.equal(j.settings.maxclients, 5);
  assert.equal(j.password, REDACTED);
  assert.equal(j.key, REDACTED);
  assert.equal(j.user, "app");
  assert.equal(j.note, `sent ${REDACTED} twice: ${REDACTED}`);
  assert.deepEqual(j.nested, { authorization: REDACTED, list: [REDACTED] });
});

Deno.test("logger: the ready line is recognised in both formats, and only it", () => {
  const { log, records } = capture();
  log.info("node.ready", "ready: clients 127.0.0.1:7001, peers 127.0.0.1:7101");
  log.info("node.start", "ready: not this one");
  const [ready, other] = records;
  assert.equal(readyLineId(formatRecord(ready, "text")), 3);
  assert.equal(readyLineId(formatRecord(ready, "json")), 3);
  assert.equal(readyLineId(formatRecord(other, "text")), undefined);
  assert.equal(readyLineId(formatRecord(other, "json")), undefined);
  assert.equal(readyLineId("replica 3 ready: clients"), undefined);
  assert.equal(readyLineId("{not json"), undefined);
});
