import assert from "node:assert/strict";
import { integerInRange } from "../../src/config/command_line.ts";

Deno.test("integerInRange: strict decimal integers within the bounds, null otherwise", () => {
  assert.equal(integerInRange("7", 1), 7);
  assert.equal(integerInRange("007", 1), 7);
  assert.equal(integerInRange("100", 100, 100), 100);
  for (const bad of ["", " 7", "7 ", "+7", "-7", "7.0", "1e3", "0x10", "seven"]) {
    assert.equal(integerInRange(bad, 0), null, JSON.stringify(bad));
  }
  assert.equal(integerInRange("0", 1), null);
  assert.equal(integerInRange("101", 1, 100), null);
  assert.equal(integerInRange("99999999999999999999", 1), null, "beyond safe integers");
});
