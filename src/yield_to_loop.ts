/**
 * Letting the event loop run inside a long piece of work (encoding a large state piece by piece):
 * timers, socket reads and writes that became ready meanwhile run before the work goes on.
 *
 * @module
 */

/** Resolves after the event loop ran its other ready work (timers, I/O). */
export function yieldToLoop(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}
