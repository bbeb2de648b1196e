import assert from "node:assert/strict";
import { KvStore } from "../../src/kv/store.ts";
import { MapDigest } from "../../src/kv/digest.ts";
import { byteStringToUtf8, concatBytes, utf8ToByteString } from "../../src/kv/bytes.ts";

Deno.test("kv: put, get, has, delete", () => {
  const kv = new KvStore();
  assert.deepEqual(kv.apply({ op: { kind: "get", key: "a" } }), { kind: "value", value: null });
  assert.deepEqual(kv.apply({ op: { kind: "put", key: "a", value: "1" } }), { kind: "ok" });
  assert.deepEqual(kv.apply({ op: { kind: "get", key: "a" } }), { kind: "value", value: "1" });
  assert.deepEqual(kv.apply({ op: { kind: "has", key: "a" } }), { kind: "int", value: 1 });
  assert.deepEqual(kv.apply({ op: { kind: "delete", key: "a" } }), { kind: "int", value: 1 });
  assert.deepEqual(kv.apply({ op: { kind: "delete", key: "a" } }), { kind: "int", value: 0 });
  assert.deepEqual(kv.apply({ op: { kind: "has", key: "a" } }), { kind: "int", value: 0 });
  assert.equal(kv.size, 0);
});

Deno.test("kv: digest depends on contents, not on history", () => {
  const a = new KvStore();
  const b = new KvStore();
  const empty = a.digest();
  a.apply({ op: { kind: "put", key: "x", value: "1" } });
  a.apply({ op: { kind: "put", key: "y", value: "2" } });
  b.apply({ op: { kind: "put", key: "y", value: "old" } });
  b.apply({ op: { kind: "put", key: "x", value: "1" } });
  assert.notEqual(a.digest(), b.digest());
  b.apply({ op: { kind: "put", key: "y", value: "2" } });
  assert.equal(a.digest(), b.digest());
  a.apply({ op: { kind: "delete", key: "x" } });
  a.apply({ op: { kind: "delete", key: "y" } });
  assert.equal(a.digest(), empty);
});

Deno.test("kv: digest separates key from value", () => {
  const d1 = new MapDigest();
  const d2 = new MapDigest();
  d1.add("ab", "c");
  d2.add("a", "bc");
  assert.notEqual(d1.toString(), d2.toString());
});

Deno.test("kv: a retried tagged write is applied once and answered the same", () => {
  const kv = new KvStore();
  const tag = { client: "c1", seq: 1 };
  assert.deepEqual(kv.apply({ op: { kind: "delete", key: "k" }, tag: { client: "c0", seq: 1 } }), {
    kind: "int",
    value: 0,
  });
  kv.apply({ op: { kind: "put", key: "k", value: "v1" }, tag });
  kv.apply({ op: { kind: "put", key: "k", value: "v2" }, tag: { client: "c2", seq: 1 } });
  // The retry of c1's first put must not overwrite v2.
  assert.deepEqual(kv.apply({ op: { kind: "put", key: "k", value: "v1" }, tag }), { kind: "ok" });
  assert.equal(kv.peek("k"), "v2");
  // A retried delete returns its first answer even though the key is gone now.
  const del = { client: "c3", seq: 4 };
  assert.deepEqual(kv.apply({ op: { kind: "delete", key: "k" }, tag: del }), {
    kind: "int",
    value: 1,
  });
  assert.deepEqual(kv.apply({ op: { kind: "delete", key: "k" }, tag: del }), {
    kind: "int",
    value: 1,
  });
});

Deno.test("kv: the client table is bounded, least recently used forgotten", () => {
  const kv = new KvStore(2);
  const put = (client: string, value: string) =>
    kv.apply({ op: { kind: "put", key: "k", value }, tag: { client, seq: 1 } });
  put("a", "1");
  put("b", "2");
  put("c", "3"); // forgets a
  put("a", "4"); // a is new again: applied
  assert.equal(kv.peek("k"), "4");
  put("c", "5"); // c remembered: not applied
  assert.equal(kv.peek("k"), "4");
});

Deno.test("bytes: every byte value and UTF-8 survive the round trip", () => {
  const all = new Uint8Array(256).map((_, i) => i);
  const text = "héllo\r\n wörld ✓ 😀";
  assert.equal(byteStringToUtf8(utf8ToByteString(text)), text);
  const s = utf8ToByteString(text);
  for (let i = 0; i < s.length; i++) assert.ok(s.charCodeAt(i) < 256);
  assert.equal(
    [...new TextEncoder().encode(byteStringToUtf8(String.fromCharCode(...all.slice(0, 128))))]
      .length,
    128,
  );
});

Deno.test("bytes: concatBytes joins chunks into a new array", () => {
  const a = new Uint8Array([1, 2]);
  const joined = concatBytes([a, new Uint8Array(0), new Uint8Array([3])]);
  assert.deepEqual([...joined], [1, 2, 3]);
  assert.notEqual(concatBytes([a]), a, "a single chunk is copied, never aliased");
  assert.equal(concatBytes([]).length, 0);
});
