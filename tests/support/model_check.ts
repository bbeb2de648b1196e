/**
 * A linearizability checker for histories of any lamportkv commands, with lamportkv's own state
 * machine ({@link KvStore}) as the sequential model: a history is linearizable if its operations
 * can be put in one order, consistent with real time (A before B whenever A returned before B was
 * called), in which applying them one by one to an empty store gives every recorded reply.
 * Operations without a reply (`ret: null`: timed out, connection lost, UNKNOWN) may have taken
 * effect at any point after their call, or not at all.
 *
 * The search is Wing and Gong's with Lowe's memo: depth first over the minimal operations, with
 * every (set of linearized operations, model state) pair visited once. It suits small histories
 * over few keys (a bank, a lock, counters, multi-key writes and transactions); for large
 * histories of single-key registers use the per-key checker in `linearizability.ts`.
 *
 * Multi-key commands (MSET, MGET) and transactions (`__EXEC` without watched keys, or modelled as
 * MSET when the client saw them commit) are atomic in the model, so the check covers isolation
 * too. Replies are compared in RESP form ({@link respKey}). Expiry is out of scope: every
 * operation is applied at time 0.
 *
 * @module
 */
import type { ByteString, Reply } from "../../src/core/types.ts";
import { KvStore } from "../../src/kv/store.ts";
import { decodeExec } from "../../src/kv/commands/tx.ts";
import { RespError, type RespValue } from "../../src/net/resp.ts";

/** One operation of a history. */
export interface ModelOp {
  client: number;
  argv: ByteString[];
  /** Invocation time. */
  call: number;
  /** Response time; null when the outcome is unknown. */
  ret: number | null;
  /** The reply, as the client decoded it (required when `ret` is not null). */
  reply?: RespValue;
}

/** The verdict. */
export type ModelCheckResult =
  | { ok: true; steps: number }
  | { ok: false; message: string; steps: number };

/** A reply in a canonical text form that both RESP values and state-machine replies map to. */
export function respKey(v: RespValue | Reply): string {
  if (v === null) return "nil";
  if (v instanceof RespError) return `-${v.message}`;
  if (typeof v === "string") return `$${v}`;
  if (typeof v === "number") return `:${v}`;
  if (Array.isArray(v)) return `[${v.map((e) => respKey(e as RespValue)).join(",")}]`;
  if ("ok" in v) return `$${v.ok}`; // simple strings decode as strings on the client side
  if ("err" in v) return `-${v.err}`;
  if ("int" in v) return `:${Number(v.int)}`;
  return "nil";
}

/** The model state's identity for the memo: keys, types, data (no versions, no clock). */
function stateKey(store: KvStore): string {
  const keys = Array.from(
    store.snapshot().keyspace.keys,
    ([k, t, exp, , data]) => [k, t, exp, data],
  );
  keys.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return JSON.stringify(keys);
}

/**
 * Checks `history`; `maxSteps` bounds the search (exceeding it fails with a message that says
 * so: not proven either way).
 */
export function checkModelLinearizable(
  history: readonly ModelOp[],
  maxSteps = 2_000_000,
): ModelCheckResult {
  for (const [i, op] of history.entries()) {
    if (op.ret !== null && op.reply === undefined) {
      throw new TypeError(`history[${i}] returned but has no reply`);
    }
    if (op.ret !== null && op.ret < op.call) throw new TypeError(`history[${i}]: ret < call`);
    if (op.argv[0]?.toUpperCase() === "__EXEC") {
      const tx = decodeExec(op.argv);
      if (tx === null || tx.watched.length > 0) {
        throw new TypeError(`history[${i}]: transactions with WATCH are not modelled`);
      }
    }
  }
  const ops = [...history].sort((a, b) => a.call - b.call);
  const n = ops.length;
  const ret = ops.map((o) => (o.ret === null ? Infinity : o.ret));
  const mustDo = ops.map((o) => o.ret !== null);
  const need = mustDo.filter(Boolean).length;
  const done = new Uint8Array(n);
  const seen = new Set<string>();
  let steps = 0;
  let best = 0;
  let bestTrace: number[] = [];
  const trace: number[] = [];

  const initial = new KvStore();
  // Depth-first search with an explicit stack of (state JSON, candidates to try, index).
  interface Frame {
    state: unknown;
    candidates: number[];
    next: number;
    took: number; // the op this frame linearized (-1 for the root)
    doneCount: number;
  }
  const candidatesOf = (): number[] => {
    let minRet = Infinity;
    for (let i = 0; i < n; i++) if (!done[i] && ret[i] < minRet) minRet = ret[i];
    const out: number[] = [];
    for (let i = 0; i < n && ops[i].call <= minRet; i++) if (!done[i]) out.push(i);
    return out;
  };
  const stack: Frame[] = [{
    state: initial.snapshot(),
    candidates: candidatesOf(),
    next: 0,
    took: -1,
    doneCount: 0,
  }];
  const model = new KvStore();
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    if (top.doneCount === need) return { ok: true, steps };
    if (top.next >= top.candidates.length) {
      stack.pop();
      if (top.took >= 0) {
        done[top.took] = 0;
        trace.pop();
      }
      continue;
    }
    const i = top.candidates[top.next++];
    if (++steps > maxSteps) {
      return {
        ok: false,
        steps,
        message: `search exceeded ${maxSteps} steps (not proven either way); ` +
          `longest prefix ${best} of ${need} completed operations`,
      };
    }
    model.restore(top.state);
    const got = model.apply({ op: { argv: ops[i].argv, time: 0 } });
    if (mustDo[i] && respKey(got) !== respKey(ops[i].reply!)) continue;
    done[i] = 1;
    const key = Array.from(done).join("") + stateKey(model);
    if (seen.has(key)) {
      done[i] = 0;
      continue;
    }
    seen.add(key);
    trace.push(i);
    const doneCount = top.doneCount + (mustDo[i] ? 1 : 0);
    if (doneCount > best) {
      best = doneCount;
      bestTrace = [...trace];
    }
    stack.push({
      state: model.snapshot(),
      candidates: candidatesOf(),
      next: 0,
      took: i,
      doneCount,
    });
  }
  const shown = bestTrace.slice(-8).map((i) => describe(ops[i])).join("\n  ");
  const pending = ops.filter((_, i) => mustDo[i] && !bestTrace.includes(i)).slice(0, 6)
    .map(describe).join("\n  ");
  return {
    ok: false,
    steps,
    message: `not linearizable: the longest linearizable prefix has ${best} of ${need} ` +
      `completed operations; it ends with\n  ${shown}\nand none of these fits next:\n  ${pending}`,
  };
}

function describe(op: ModelOp): string {
  const args = op.argv.map((a) => JSON.stringify(a.length > 40 ? a.slice(0, 40) + "..." : a));
  const reply = op.ret === null ? "?" : respKey(op.reply!);
  return `client ${op.client} [${op.call}, ${op.ret ?? "∞"}] ${args.join(" ")} -> ${reply}`;
}
