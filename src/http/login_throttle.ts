/**
 * Rate limiting of HTTP logins per client host, on the schedule of a RESP connection
 * (`src/net/session.ts`: two failures at once, then delays doubling from 25 ms to 1 s). HTTP
 * requests arrive in parallel, so delaying the answers to failures would not slow a guesser down
 * (a right guess would still be answered at once); instead, once a host has two recent failures,
 * its login attempts are spaced: each is tried no sooner than the delay after the previous one,
 * and beyond {@link MAX_QUEUE_MS} of waiting attempts a new one is refused without being tried.
 * Successes do not reset the count (as on a connection); a minute without failures forgets the
 * host. Pure: the caller passes the clock.
 *
 * @module
 */

/** Failed logins after which attempts are spaced. */
const FAILURES_UNDELAYED = 2;
/** The first spacing; it doubles with each further failure. */
const FAILURE_DELAY_MS = 25;
/** Most spacing between two attempts. */
const MAX_FAILURE_DELAY_MS = 1000;
/** Attempts waiting longer than this are refused (429) without being tried. */
export const MAX_QUEUE_MS = 10_000;
/** A host without failures this long starts over. */
const FORGET_AFTER_MS = 60_000;
/** Most hosts remembered (the least recently failed are forgotten first). */
const MAX_HOSTS = 10_000;

interface HostFailures {
  count: number;
  /** When the next attempt may be tried (ms). */
  nextAt: number;
  /** When the last failure happened (ms). */
  last: number;
}

/** Login failures and attempt spacing per host. */
export class LoginThrottle {
  readonly #hosts = new Map<string, HostFailures>();

  #recent(host: string, now: number): HostFailures | undefined {
    const f = this.#hosts.get(host);
    if (f !== undefined && now - f.last > FORGET_AFTER_MS) {
      this.#hosts.delete(host);
      return undefined;
    }
    return f;
  }

  /**
   * Admits a login attempt from `host` at `now` (ms): the ms to wait before trying it (0: at once),
   * or null when attempts from this host already wait more than {@link MAX_QUEUE_MS}.
   */
  admit(host: string, now: number): number | null {
    const f = this.#recent(host, now);
    if (f === undefined || f.count < FAILURES_UNDELAYED) return 0;
    const at = Math.max(now, f.nextAt);
    if (at - now > MAX_QUEUE_MS) return null;
    const delayed = f.count - FAILURES_UNDELAYED + 1;
    f.nextAt = at + Math.min(FAILURE_DELAY_MS * 2 ** (delayed - 1), MAX_FAILURE_DELAY_MS);
    return at - now;
  }

  /** Notes a failed login from `host` at `now` (ms). */
  failed(host: string, now: number): void {
    const f = this.#recent(host, now) ?? { count: 0, nextAt: 0, last: now };
    this.#hosts.delete(host); // re-inserted last: the map stays ordered by last failure
    f.count++;
    f.last = now;
    this.#hosts.set(host, f);
    while (this.#hosts.size > MAX_HOSTS) this.#hosts.delete(this.#hosts.keys().next().value!);
  }

  /** Hosts remembered (tests). */
  get size(): number {
    return this.#hosts.size;
  }
}
