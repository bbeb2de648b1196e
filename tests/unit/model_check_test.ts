/**
 * Unit tests of the model-based linearizability checker: histories that must pass and histories
 * that must fail, for counters, SET NX, multi-key writes and reads, and transactions.
 *
 * @module
 */
import assert from "node:assert/strict";
import { checkModelLinearizable, type ModelOp } from "../support/model_check.ts";
import { RespError } from "../../src/net/resp.ts";
import { encodeExec } from "../../src/kv/commands/tx.ts";

function op(
  client: number,
  call: number,
  ret: number | null,
  argv: string[],
  reply?: ModelOp["reply"],
): ModelOp {
  return { client, call, ret, argv, reply };
}

const ok = (h: ModelOp[]) => assert.equal(checkModelLinearizable(h).ok, true, JSON.stringify(h));
const bad = (h: ModelOp[]) => {
  const r = checkModelLinearizable(h);
  assert.equal(r.ok, false, JSON.stringify(h));
  return r;
};

Deno.test("model check: concurrent INCRs must see distinct values", () => {
  ok([op(1, 0, 10, ["INCR", "n"], 2), op(2, 1, 9, ["INCR", "n"], 1)]);
  bad([op(1, 0, 10, ["INCR", "n"], 1), op(2, 1, 9, ["INCR", "n"], 1)]);
  // Sequential: the second must see 2.
  bad([op(1, 0, 1, ["INCR", "n"], 2), op(2, 5, 6, ["INCR", "n"], 1)]);
});

Deno.test("model check: SET NX has one winner; a lost reply may or may not have applied", () => {
  ok([
    op(1, 0, 5, ["SET", "lock", "a", "NX"], "OK"),
    op(2, 1, 6, ["SET", "lock", "b", "NX"], null),
  ]);
  bad([
    op(1, 0, 5, ["SET", "lock", "a", "NX"], "OK"),
    op(2, 1, 6, ["SET", "lock", "b", "NX"], "OK"),
  ]);
  const unknown = op(1, 0, null, ["SET", "lock", "a", "NX"]);
  ok([unknown, op(2, 10, 11, ["GET", "lock"], "a")]);
  ok([unknown, op(2, 10, 11, ["GET", "lock"], null)]);
  bad([unknown, op(2, 10, 11, ["GET", "lock"], "b")]);
});

Deno.test("model check: MSET is atomic for MGET (no torn reads)", () => {
  const mset = op(1, 0, 10, ["MSET", "a", "1", "b", "1"], "OK");
  ok([mset, op(2, 2, 8, ["MGET", "a", "b"], [null, null])]);
  ok([mset, op(2, 2, 8, ["MGET", "a", "b"], ["1", "1"])]);
  bad([mset, op(2, 2, 8, ["MGET", "a", "b"], ["1", null])]);
});

Deno.test("model check: transactions are atomic; error replies are compared too", () => {
  const tx = encodeExec([], [["DECRBY", "a", "5"], ["INCRBY", "b", "5"]]);
  ok([op(1, 0, 10, tx, [-5, 5]), op(2, 1, 9, ["MGET", "a", "b"], ["-5", "5"])]);
  bad([op(1, 0, 10, tx, [-5, 5]), op(2, 1, 9, ["MGET", "a", "b"], ["-5", null])]);
  const wrongType = new RespError(
    "WRONGTYPE Operation against a key holding the wrong kind of value",
  );
  ok([op(1, 0, 1, ["HSET", "h", "f", "v"], 1), op(1, 2, 3, ["GET", "h"], wrongType)]);
  bad([op(1, 0, 1, ["HSET", "h", "f", "v"], 1), op(1, 2, 3, ["GET", "h"], null)]);
  assert.throws(
    () =>
      checkModelLinearizable([
        op(1, 0, 1, encodeExec([["a", { version: 1, time: 0 }]], [["INCR", "a"]]), [1]),
      ]),
    TypeError,
  );
});

Deno.test("model check: a failure names the operations that do not fit", () => {
  const r = bad([op(1, 0, 1, ["SET", "k", "1"], "OK"), op(2, 2, 3, ["GET", "k"], "2")]);
  assert.ok(!r.ok && r.message.includes('"GET" "k" -> $2'), !r.ok ? r.message : "");
});
