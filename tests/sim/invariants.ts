/**
 * The invariants of DESIGN.md, checked on the outcome of one simulated run. Each check returns a
 * human-readable violation, so a failing seed says what broke.
 *
 * @module
 */
import { checkLinearizable } from "../support/linearizability.ts";
import { requestTag, type SimResult, toHistory } from "./simulator.ts";

/** What a run may be expected to achieve beyond safety. */
export interface Expectations {
  /** Every request completes successfully (no UNKNOWN): all replicas alive, links heal. */
  allSucceed: boolean;
}

/** All violations of the invariants in `result` (empty when it is correct). */
export function checkInvariants(result: SimResult, expect: Expectations): string[] {
  const violations: string[] = [];
  if (result.crash) violations.push(`core invariant failed: ${result.crash}`);
  violations.push(...checkTotalOrder(result));
  violations.push(...checkReplies(result, expect));
  violations.push(...checkExactlyOnce(result));
  const lin = checkLinearizable(toHistory(result.requests));
  if (!lin.ok) violations.push(`history not linearizable (key ${lin.key}): ${lin.message}`);
  return violations;
}

/** Delivered sequences are prefixes of one another, with equal results at equal indexes. */
function checkTotalOrder(result: SimResult): string[] {
  const out: string[] = [];
  const seqs = [...result.deliveries];
  for (const [id, seq] of seqs) {
    seq.forEach((d, i) => {
      if (d.index !== i + 1) out.push(`replica ${id}: delivery ${i} has index ${d.index}`);
    });
  }
  for (let a = 0; a < seqs.length; a++) {
    for (let b = a + 1; b < seqs.length; b++) {
      const [ia, sa] = seqs[a];
      const [ib, sb] = seqs[b];
      const n = Math.min(sa.length, sb.length);
      for (let i = 0; i < n; i++) {
        if (sa[i].id !== sb[i].id) {
          out.push(`order differs at index ${i + 1}: replica ${ia} ${sa[i].id}, ${ib} ${sb[i].id}`);
          break;
        }
        if (sa[i].result !== sb[i].result) {
          out.push(`result differs at index ${i + 1}: ${sa[i].result} vs ${sb[i].result}`);
          break;
        }
      }
    }
  }
  if (result.quiescent) {
    const digests = new Set(result.digests.values());
    if (digests.size !== 1) out.push(`digests differ at quiescence: ${[...result.digests]}`);
  }
  return out;
}

/** Every request is answered exactly once; with `allSucceed`, successfully and in time. */
function checkReplies(result: SimResult, expect: Expectations): string[] {
  const out: string[] = [];
  if (!result.quiescent) {
    const open = result.requests.filter((r) => r.replies === 0).length;
    out.push(`no progress: not quiescent after ${result.endedAt} ms (${open} requests unanswered)`);
  }
  result.requests.forEach((r, i) => {
    if (r.replies > 1) out.push(`request ${i} answered ${r.replies} times`);
    if (expect.allSucceed && result.quiescent && r.outcome?.ok !== true) {
      out.push(
        `request ${i} (${r.op.kind} at replica ${r.replica}) failed: ${JSON.stringify(r.outcome)}`,
      );
    }
  });
  return out;
}

/** At quiescence every request was delivered exactly once at every replica. */
function checkExactlyOnce(result: SimResult): string[] {
  if (!result.quiescent) return [];
  const out: string[] = [];
  const expected = new Set<string>();
  const perClient = new Map<number, number>();
  for (const r of result.requests) {
    const n = perClient.get(r.client) ?? 0;
    perClient.set(r.client, n + 1);
    const tag = requestTag(r.client, n);
    expected.add(`${tag.client}:${tag.seq}`);
  }
  for (const [id, seq] of result.deliveries) {
    const seen = new Set<string>();
    for (const d of seq) {
      if (seen.has(d.tag)) out.push(`replica ${id} delivered ${d.tag} twice`);
      seen.add(d.tag);
      if (!expected.has(d.tag)) out.push(`replica ${id} delivered unknown request ${d.tag}`);
    }
    for (const tag of expected) {
      if (!seen.has(tag)) out.push(`replica ${id} never delivered ${tag}`);
    }
  }
  return out;
}
