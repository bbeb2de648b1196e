/**
 * The four-operation model the linearizability checker and the simulator reason about (put, get,
 * delete, has of one key), and its translation to and from lamportkv command lines and replies.
 *
 * @module
 */
import type { Op, Reply } from "../../src/core/types.ts";
import type { HistoryOp } from "./linearizability.ts";

/** A model operation. */
export type ModelOp = HistoryOp["op"];
/** A model result. */
export type ModelResult = NonNullable<HistoryOp["result"]>;

/** The command line of a model operation, as an operation stamped with `time`. */
export function kvOp(op: ModelOp, time = 0): Op {
  switch (op.kind) {
    case "put":
      return { argv: ["SET", op.key, op.value ?? ""], time };
    case "get":
      return { argv: ["GET", op.key], time };
    case "delete":
      return { argv: ["DEL", op.key], time };
    case "has":
      return { argv: ["EXISTS", op.key], time };
  }
}

/** The model operation of a command line built by {@link kvOp} (null for any other). */
export function modelOp(op: Op): ModelOp | null {
  const [name, key, value] = op.argv;
  switch (name) {
    case "SET":
      return { kind: "put", key, value };
    case "GET":
      return { kind: "get", key };
    case "DEL":
      return { kind: "delete", key };
    case "EXISTS":
      return { kind: "has", key };
    default:
      return null;
  }
}

/** A state machine reply in the model's form, for an operation of kind `kind`. */
export function modelResult(kind: ModelOp["kind"], reply: Reply): ModelResult {
  if (kind === "put") {
    return reply !== null && typeof reply === "object" && "ok" in reply
      ? { kind: "ok" }
      : { kind: "value", value: JSON.stringify(reply) };
  }
  if (kind === "get") {
    return typeof reply === "string" || reply === null
      ? { kind: "value", value: reply }
      : { kind: "int", value: -1 };
  }
  return typeof reply === "number" ? { kind: "int", value: reply } : { kind: "int", value: -1 };
}
