/**
 * Raw-socket helpers for tests that play a hostile or broken peer or client: write without
 * failing the test when the replica closes first, wait for the replica to close, close quietly.
 *
 * @module
 */
import { writeAll } from "./fault_proxy.ts";

/** Writes all of `bytes`; false when the other side closed first (which hostile tests expect). */
export async function tryWriteAll(conn: Deno.Conn, bytes: Uint8Array): Promise<boolean> {
  try {
    await writeAll(conn, bytes);
    return true;
  } catch {
    return false;
  }
}

/** Resolves true once the other side closed `conn` (EOF or reset), false after `timeoutMs`. */
export async function closedWithin(conn: Deno.Conn, timeoutMs: number): Promise<boolean> {
  const buf = new Uint8Array(64 * 1024);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<"late">((resolve) => timer = setTimeout(resolve, timeoutMs, "late"));
  try {
    for (;;) {
      const n = await Promise.race([conn.read(buf).catch(() => null), late]);
      if (n === "late") return false;
      if (n === null) return true;
    }
  } finally {
    clearTimeout(timer);
  }
}

/** Closes `conn`, ignoring that it may be closed already. */
export function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}
