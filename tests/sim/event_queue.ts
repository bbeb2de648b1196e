/**
 * The simulator's agenda: callbacks scheduled at simulated times, run in (time, insertion) order,
 * so a run depends on nothing but its seed.
 *
 * @module
 */

interface Scheduled {
  at: number;
  order: number;
  run: () => void;
}

/** A min-heap of scheduled callbacks. */
export class EventQueue {
  #heap: Scheduled[] = [];
  #order = 0;
  #now = 0;

  /** Current simulated time (ms). */
  get now(): number {
    return this.#now;
  }

  /** Number of callbacks waiting. */
  get size(): number {
    return this.#heap.length;
  }

  /** Runs `run` at simulated time `at` (not before now). */
  at(at: number, run: () => void): void {
    const item = { at: Math.max(at, this.#now), order: this.#order++, run };
    const heap = this.#heap;
    heap.push(item);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(item, heap[parent])) break;
      heap[i] = heap[parent];
      i = parent;
    }
    heap[i] = item;
  }

  /** Runs `run` after `delay` ms. */
  after(delay: number, run: () => void): void {
    this.at(this.#now + delay, run);
  }

  /** Runs the next callback; false when nothing is scheduled. */
  runNext(): boolean {
    const heap = this.#heap;
    const top = heap[0];
    if (top === undefined) return false;
    const last = heap.pop()!;
    if (heap.length > 0) {
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        if (left >= heap.length) break;
        const right = left + 1;
        const child = right < heap.length && before(heap[right], heap[left]) ? right : left;
        if (!before(heap[child], last)) break;
        heap[i] = heap[child];
        i = child;
      }
      heap[i] = last;
    }
    this.#now = top.at;
    top.run();
    return true;
  }
}

function before(a: Scheduled, b: Scheduled): boolean {
  return a.at !== b.at ? a.at < b.at : a.order < b.order;
}
