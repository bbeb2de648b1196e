/**
 * Invariant assertions for the protocol core. A failed invariant means a bug or a corrupted peer:
 * the core stops loudly instead of serving a possibly wrong answer.
 *
 * @module
 */

/** Thrown when a protocol invariant does not hold. */
export class InvariantError extends Error {
  override name = "InvariantError";
}

/** Throws {@link InvariantError} with `message` unless `condition` holds. */
export function invariant(condition: unknown, message: string | (() => string)): asserts condition {
  if (!condition) {
    throw new InvariantError(typeof message === "string" ? message : message());
  }
}
