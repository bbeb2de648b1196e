/**
 * Bounds on what a replica's HTTP port holds at once, so that the port cannot grow the replica's
 * memory without limit: a count of requests in flight ({@link HttpLimits.enter}) and a budget of
 * request-body bytes buffered over all requests, each body read within a deadline
 * ({@link HttpLimits.readBody}). Deno's server owns the connections themselves; idle ones cost
 * little, and README tells operators to keep the port on a monitoring network.
 *
 * @module
 */
import {
  HTTP_BODY_DEADLINE_MS,
  MAX_HTTP_BODY_BYTES_IN_FLIGHT,
  MAX_HTTP_IN_FLIGHT,
} from "../limits.ts";
import { concatBytes } from "../kv/bytes.ts";

/** Why a body was not read: the HTTP status and a short reason. */
export interface BodyRefusal {
  status: 400 | 408 | 413 | 503;
  reason: string;
}

/** Options of {@link HttpLimits}; the defaults come from `src/limits.ts`. */
export interface HttpLimitsOptions {
  maxInFlight?: number;
  maxBodyBytesInFlight?: number;
  bodyDeadlineMs?: number;
}

/** The limits of one HTTP port. */
export class HttpLimits {
  readonly maxInFlight: number;
  readonly maxBodyBytesInFlight: number;
  readonly bodyDeadlineMs: number;
  #inFlight = 0;
  #bodyBytes = 0;

  /** Limits with the given bounds (tests use small ones). */
  constructor(options: HttpLimitsOptions = {}) {
    this.maxInFlight = options.maxInFlight ?? MAX_HTTP_IN_FLIGHT;
    this.maxBodyBytesInFlight = options.maxBodyBytesInFlight ?? MAX_HTTP_BODY_BYTES_IN_FLIGHT;
    this.bodyDeadlineMs = options.bodyDeadlineMs ?? HTTP_BODY_DEADLINE_MS;
  }

  /** Requests being handled now. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Body bytes buffered now. */
  get bodyBytes(): number {
    return this.#bodyBytes;
  }

  /** Admits one more request, or returns false when {@link maxInFlight} are in flight. */
  enter(): boolean {
    if (this.#inFlight >= this.maxInFlight) return false;
    this.#inFlight++;
    return true;
  }

  /** Ends a request admitted by {@link enter}. */
  leave(): void {
    if (this.#inFlight <= 0) throw new Error("HttpLimits.leave without enter");
    this.#inFlight--;
  }

  /**
   * The body of `req`, at most `max` bytes (413 beyond, judged on Content-Length first), taken
   * from the shared budget while it is in use (503 when it does not fit) and arrived within the
   * deadline (408 otherwise). `use` runs with the bytes, `refuse` with the reason it was not
   * read; the budget is given back after either.
   */
  async withBody<T>(
    req: Request,
    max: number,
    use: (body: Uint8Array) => T | Promise<T>,
    refuse: (refusal: BodyRefusal) => T,
  ): Promise<T> {
    const length = req.headers.get("content-length");
    let declared: number | undefined;
    if (length !== null) {
      if (!/^[0-9]{1,16}$/.test(length)) {
        return refuse({ status: 400, reason: "bad Content-Length" });
      }
      declared = Number(length);
      if (declared > max) return refuse(tooLarge(max));
    }
    let held = 0;
    const take = (n: number): boolean => {
      if (this.#bodyBytes + n > this.maxBodyBytesInFlight) return false;
      this.#bodyBytes += n;
      held += n;
      return true;
    };
    try {
      if (declared !== undefined && !take(declared)) return refuse(busy());
      const body = await this.#read(req, max, declared === undefined ? take : () => true);
      return body instanceof Uint8Array ? await use(body) : refuse(body);
    } finally {
      this.#bodyBytes -= held;
    }
  }

  async #read(
    req: Request,
    max: number,
    take: (n: number) => boolean,
  ): Promise<Uint8Array | BodyRefusal> {
    if (req.body === null) return new Uint8Array(0);
    const reader = req.body.getReader();
    const chunks: Uint8Array[] = [];
    let total = 0;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<"expired">((resolve) => {
      timer = setTimeout(() => resolve("expired"), this.bodyDeadlineMs);
    });
    try {
      for (;;) {
        const next = await Promise.race([reader.read(), expired]);
        if (next === "expired") {
          return {
            status: 408,
            reason: `the body did not arrive within ${this.bodyDeadlineMs} ms`,
          };
        }
        if (next.done) break;
        total += next.value.length;
        if (total > max) return tooLarge(max);
        if (!take(next.value.length)) return busy();
        chunks.push(next.value);
      }
    } finally {
      clearTimeout(timer);
      reader.cancel().catch(() => {});
    }
    return concatBytes(chunks);
  }
}

function tooLarge(max: number): BodyRefusal {
  return { status: 413, reason: `the value is larger than proto-max-bulk-len (${max} bytes)` };
}

function busy(): BodyRefusal {
  return { status: 503, reason: "too many request bodies in flight; retry" };
}
