/**
 * When a replica refuses writes that may add data: Redis's `maxmemory` with its `noeviction`
 * policy, and a guard of lamportkv's own against V8's heap limit.
 *
 * Redis may use all of the machine's memory (`maxmemory 0`). A replica's data lives in V8's
 * heap, whose limit is fixed when the process starts (about 4 GiB by default, or
 * `--max-old-space-size`): past it the process dies, and restoring the same state at a restart
 * would die again. So writes are refused once used memory passes {@link HEAP_GUARD_FRACTION} of
 * the smaller of that limit and the machine's memory, whatever `maxmemory` says; with
 * `maxmemory`, from the smaller of the two.
 *
 * The refusal happens where a client's command is read, before the command is ordered (see
 * `src/net/session.ts`), as in Redis: which commands a replica orders is its own choice, so the
 * replicas still apply the same operations whatever each one's memory. "Used memory" is V8's heap
 * in use plus its external memory (INFO's `used_memory`); it includes garbage not yet collected.
 *
 * @module
 */
import { getHeapStatistics } from "node:v8";
import { HEAP_GUARD_FRACTION, MEMORY_READ_INTERVAL_MS } from "../limits.ts";

/** One reading of the process's memory, in bytes. */
export interface MemoryReading {
  /** Heap in use plus external memory. */
  used: number;
  /** V8's heap limit. */
  heapLimit: number;
}

/** Reads this process's memory from V8. */
export function readMemory(): MemoryReading {
  const h = getHeapStatistics();
  return { used: h.used_heap_size + h.external_memory, heapLimit: h.heap_size_limit };
}

/**
 * The machine's memory in bytes from Linux's `/proc/meminfo` (0 when it cannot be read).
 * `Deno.systemMemoryInfo` would need a permission a replica is not given, and asks for it on a
 * terminal.
 */
export function machineMemory(): number {
  try {
    const m = /^MemTotal:\s+(\d+) kB$/m.exec(Deno.readTextFileSync("/proc/meminfo"));
    return m === null ? 0 : Number(m[1]) * 1024;
  } catch {
    return 0;
  }
}

/** Options of a {@link MemoryGuard} (tests replace the readings and the clock). */
export interface MemoryGuardOptions {
  /** The `maxmemory` setting in bytes (0: none). */
  maxmemory: number;
  /** Reads used memory and the heap limit (default: {@link readMemory}). */
  read?: () => MemoryReading;
  /** The machine's memory in bytes (default: the operating system's; 0: unknown). */
  machine?: number;
  /** A monotonic clock in ms (default: `performance.now`). */
  now?: () => number;
}

/** Decides whether used memory is over the limit for writes (see the module's documentation). */
export class MemoryGuard {
  /** The `maxmemory` setting (0: none). */
  readonly maxmemory: number;
  /** V8's heap limit in bytes, as read at construction. */
  readonly heapLimit: number;
  /** The used memory above which writes are refused. */
  readonly limit: number;
  readonly #read: () => MemoryReading;
  readonly #now: () => number;
  #readAt = -Infinity;
  #used = 0;

  constructor(options: MemoryGuardOptions) {
    if (!Number.isSafeInteger(options.maxmemory) || options.maxmemory < 0) {
      throw new RangeError(`maxmemory must be a byte count, got ${options.maxmemory}`);
    }
    this.maxmemory = options.maxmemory;
    this.#read = options.read ?? readMemory;
    this.#now = options.now ?? (() => performance.now());
    const first = this.#read();
    this.heapLimit = first.heapLimit;
    const machine = options.machine ?? machineMemory();
    const room = machine > 0 ? Math.min(first.heapLimit, machine) : first.heapLimit;
    const guard = Math.floor(HEAP_GUARD_FRACTION * room);
    this.limit = this.maxmemory > 0 ? Math.min(this.maxmemory, guard) : guard;
  }

  /** True when `maxmemory` was set above what the heap guard admits (worth a warning). */
  get cappedByHeap(): boolean {
    return this.maxmemory > this.limit;
  }

  /** Used memory as last read (read again when older than {@link MEMORY_READ_INTERVAL_MS}). */
  used(): number {
    const now = this.#now();
    if (now - this.#readAt >= MEMORY_READ_INTERVAL_MS) {
      this.#used = this.#read().used;
      this.#readAt = now;
    }
    return this.#used;
  }

  /** True when writes that may add data must be refused now. */
  outOfMemory(): boolean {
    return this.used() > this.limit;
  }
}
