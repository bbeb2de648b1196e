/**
 * Unit tests of the long double emulation behind INCRBYFLOAT: parsing as `strtold`, addition
 * rounded to a 64-bit significand, and `%.17Lf` printing, against results taken from
 * redis-server 7.0 (the differential test compares thousands more against a live one).
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  addLongDouble,
  formatLongDouble,
  type LongDouble,
  parseLongDouble,
} from "../../src/kv/long_double.ts";

function sum(...terms: string[]): string {
  let acc: LongDouble = { neg: false, m: 0n, e: 0 };
  for (const t of terms) {
    const x = parseLongDouble(t);
    assert.ok(x !== null, `parse ${t}`);
    acc = addLongDouble(acc, x);
  }
  return formatLongDouble(acc);
}

Deno.test("long double: sums print as redis-server prints them", () => {
  assert.equal(sum("0.1", "0.2"), "0.3");
  assert.equal(sum("10.5", "0.1"), "10.6");
  assert.equal(sum("3.0", "1.5", "1e3", "-0.5"), "1004");
  assert.equal(sum("1.23456789012345678"), "1.23456789012345678");
  assert.equal(sum("5.0e3"), "5000");
  assert.equal(sum("0x10", "0x1.8p1"), "19");
  assert.equal(sum("-1", "1"), "0");
  assert.equal(sum("-0.5"), "-0.5");
  assert.equal(sum("1e20"), "100000000000000000000");
  assert.equal(sum("1.5e-4950", "231"), "231");
  assert.match(sum("1e308", "1e308"), /^199999999999999999993371759311691291321\d{270}$/);
});

Deno.test("long double: what strtold refuses, Redis refuses", () => {
  for (const bad of ["", " 1", "1 ", "abc", "1e", "nan", "1e5000", "1e-5000", "--1", "0x"]) {
    assert.equal(parseLongDouble(bad), null, JSON.stringify(bad));
  }
  assert.deepEqual(parseLongDouble("inf"), { inf: 1 });
  assert.deepEqual(parseLongDouble("-Infinity"), { inf: -1 });
  assert.ok(parseLongDouble("+.5") !== null);
});

Deno.test("long double: printing then parsing is stable", () => {
  let x: LongDouble = { neg: false, m: 0n, e: 0 };
  for (let i = 1; i < 300; i++) {
    x = addLongDouble(x, parseLongDouble(`${(i * 7919) % 1000}.${i}e${(i % 9) - 4}`)!);
    const text = formatLongDouble(x);
    assert.equal(formatLongDouble(parseLongDouble(text)!), text);
  }
});
