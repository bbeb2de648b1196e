/**
 * What blocked clients did, read from the replicas' verbose logs (`deliver` lines), and one-off
 * commands on a replica: shared by the blocking-command e2e tests.
 *
 * @module
 */
import type { RespValue } from "../../src/net/resp.ts";
import { RespTestClient, type TestCluster } from "./cluster.ts";

/** The hand-offs a replica delivered, from its verbose log: `#index waiter -> reply`, in order. */
export function finishes(cluster: TestCluster, id: number): string[] {
  const out: string[] = [];
  for (const l of cluster.logs) {
    if (l.id !== id) continue;
    const m = /deliver #(\d+) "__BFINISH" "([^"]+)" -> (.*) \(view/.exec(l.text);
    if (m !== null) out.push(`#${m[1]} ${m[2]} -> ${m[3]}`);
  }
  return out;
}

/**
 * How many `__BLOCK`s replica `id` delivered that registered a waiter (answered blocked) and
 * whose delivery line matches `line` (the waiter's owner, the command, ...).
 */
export function blockedCount(cluster: TestCluster, id: number, line: RegExp): number {
  let n = 0;
  for (const l of cluster.logs) {
    if (l.id !== id || !l.text.includes('"__BLOCK" ') || !l.text.includes("__BLOCKED")) continue;
    if (line.test(l.text)) n++;
  }
  return n;
}

/** One command on a fresh connection to replica `id`. */
export async function respOn(
  cluster: TestCluster,
  id: number,
  argv: string[],
): Promise<RespValue> {
  const c = await RespTestClient.connect(cluster.clientPort(id));
  try {
    return await c.call(argv, 10_000);
  } finally {
    await c.close();
  }
}
