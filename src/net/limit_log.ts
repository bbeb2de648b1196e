/**
 * Rate-limited log lines for connections closed by a limit: at most one line per source (the
 * remote address without its port) and limit within {@link LIMIT_LOG_INTERVAL_MS}; the next line
 * after a quiet period says how many were not logged. A flood of hostile connections therefore
 * costs a few log lines, not one per connection.
 *
 * @module
 */
import { LIMIT_LOG_INTERVAL_MS } from "../limits.ts";

/** Most sources remembered; older entries are forgotten first. */
const MAX_SOURCES = 1024;

/** One log line per (source, limit) per interval. */
export class LimitLog {
  readonly #log: (line: string) => void;
  readonly #intervalMs: number;
  readonly #now: () => number;
  /** Per `source limit`: when it was last logged, and how many were suppressed since. */
  readonly #last = new Map<string, { at: number; suppressed: number }>();

  /** Writes through `log`; `now` is injectable for tests. */
  constructor(
    log: (line: string) => void,
    intervalMs = LIMIT_LOG_INTERVAL_MS,
    now: () => number = () => performance.now(),
  ) {
    this.#log = log;
    this.#intervalMs = intervalMs;
    this.#now = now;
  }

  /** Logs `line` unless `limit` already logged for `source` within the interval. */
  note(source: string, limit: string, line: string): void {
    const key = `${source} ${limit}`;
    const now = this.#now();
    const seen = this.#last.get(key);
    if (seen !== undefined && now - seen.at < this.#intervalMs) {
      seen.suppressed += 1;
      return;
    }
    const more = seen !== undefined && seen.suppressed > 0
      ? ` (and ${seen.suppressed} more from ${source} not logged)`
      : "";
    this.#last.delete(key);
    this.#last.set(key, { at: now, suppressed: 0 });
    if (this.#last.size > MAX_SOURCES) {
      const oldest = this.#last.keys().next().value;
      if (oldest !== undefined) this.#last.delete(oldest);
    }
    this.#log(`${line}${more}`);
  }
}

/** The host part of `host:port` (the source a limit log line is counted for). */
export function sourceOf(addr: Deno.NetAddr): string {
  return addr.hostname;
}
