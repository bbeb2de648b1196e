/**
 * Temporary directories for tests: created fresh, removed afterwards however the body ends.
 *
 * @module
 */

/** Runs `body` with a fresh temporary directory (name starting with `prefix`), removed after. */
export async function withTempDir(
  prefix: string,
  body: (dir: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix });
  try {
    await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** {@link withTempDir} for a synchronous body. */
export function withTempDirSync(prefix: string, body: (dir: string) => void): void {
  const dir = Deno.makeTempDirSync({ prefix });
  try {
    body(dir);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}
