/**
 * The replica's side of blocked clients: it owns the connections of its clients' blocking
 * commands and drives their waiters (replicated in the state machine, `src/kv/waiters.ts`)
 * through operations in the order.
 *
 * - A client's blocking command (outside MULTI) is sent as `__BLOCK <id> <command>`, `id` being
 *   `<replica>.<incarnation>/<n>` (the incarnation is new with every process, so a restarted
 *   replica knows which waiters were its previous life's). Served at once, its reply goes back;
 *   otherwise the client waits.
 * - When its waiter is handed elements (or removed by a drop), or its timeout passes on this
 *   replica's clock, the replica sends `__BFINISH <id>`; the client gets that operation's result
 *   (the elements, or a null array when nothing was handed first).
 * - When the client's connection closes, `__BCANCEL <id>`: what was handed goes back.
 * - Every 100 ms: its own waiters that no client holds any more are cancelled, its previous
 *   incarnations' are dropped (`__BDROP`), and the view's leader drops those of replicas that are
 *   not members of the view.
 *
 * @module
 */
import type { Command, Outcome, ReplicaId } from "../core/types.ts";
import { COMMANDS, isBlockingCommand } from "../kv/commands/index.ts";
import { MAX_TIMER_MS } from "../limits.ts";
import { BLOCKED_STATUS, ownerReplica, type Waiters } from "../kv/waiters.ts";
import { NIL_ARRAY } from "../kv/reply.ts";

/** What the blocked clients need from their replica. */
export interface BlockedClientsHost {
  /** This replica's id. */
  id: ReplicaId;
  /** Submits an operation into the order. */
  submit(cmd: Command, respond: (outcome: Outcome) => void): void;
  /** Wall-clock ms stamped on operations. */
  now(): number;
  /** The replicated waiter queue (read only). */
  waiters(): Waiters;
  /** The members of the view when this replica is normal in one, else null. */
  members(): ReplicaId[] | null;
  /** This replica leads its view. */
  leads(): boolean;
}

/** One client blocked at this replica. */
interface Local {
  argv: string[];
  respond: (outcome: Outcome) => void;
  /** blocking: `__BLOCK` in the order; waiting: its waiter is registered; resolving: ended. */
  state: "blocking" | "waiting" | "resolving";
  timer?: ReturnType<typeof setTimeout>;
  gone?: AbortSignal;
  onGone?: () => void;
}

/** A fresh incarnation name for this process. */
function incarnation(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(6));
  return [...bytes].map((b) => b.toString(36).padStart(2, "0")).join("");
}

/** The blocked clients of one replica. */
export class BlockedClients {
  readonly #host: BlockedClientsHost;
  /** This process's owner name, `<replica>.<incarnation>`. */
  readonly owner: string;
  #next = 1;
  readonly #local = new Map<string, Local>();
  /** Waiters with a `__BFINISH` or `__BCANCEL` in the order, owners with a `__BDROP` in it. */
  readonly #resolving = new Set<string>();
  readonly #dropping = new Set<string>();
  #lookScheduled = false;
  #changed: string[] = [];
  #stopped = false;

  /** Blocked clients of the replica `host`. */
  constructor(host: BlockedClientsHost) {
    this.#host = host;
    this.owner = `${host.id}.${incarnation()}`;
  }

  /** Clients blocked here now. */
  get size(): number {
    return this.#local.size;
  }

  /** True when `cmd` is a blocking command this module must carry. */
  static isBlocking(cmd: Command): boolean {
    return isBlockingCommand(cmd.op.argv);
  }

  /** Carries a client's blocking command; `respond` gets its reply once it is served or ends. */
  submit(cmd: Command, respond: (outcome: Outcome) => void, gone?: AbortSignal): void {
    const id = `${this.owner}/${this.#next++}`;
    const argv = cmd.op.argv;
    const local: Local = { argv, respond, state: "blocking", gone };
    this.#local.set(id, local);
    // Untagged: a retry after a lost connection is a new blocking command (its waiter, if any,
    // was cancelled when the connection closed).
    this.#host.submit({ op: { argv: ["__BLOCK", id, ...argv], time: cmd.op.time } }, (out) => {
      if (!out.ok || !isBlocked(out.result)) {
        this.#local.delete(id);
        respond(out);
        return;
      }
      local.state = "waiting";
      if (gone?.aborted) return this.#cancel(id, local);
      local.onGone = () => this.#cancel(id, local);
      gone?.addEventListener("abort", local.onGone, { once: true });
      const spec = COMMANDS.get(argv[0])!.block!.parse(argv);
      const ms = "timeoutMs" in spec ? spec.timeoutMs : 0;
      if (ms > 0) this.#arm(id, local, ms);
    });
  }

  /** Finishes `id` after `ms` (in steps a timer can take: longer ones would fire at once). */
  #arm(id: string, local: Local, ms: number): void {
    const step = Math.min(ms, MAX_TIMER_MS);
    local.timer = setTimeout(() => {
      if (ms > step) this.#arm(id, local, ms - step);
      else this.#finish(id);
    }, step);
  }

  /** After every step of the core: looks at the waiters that changed (soon, not re-entrantly). */
  afterStep(): void {
    const changed = this.#host.waiters().takeChanged();
    if (changed.length === 0) return;
    this.#changed.push(...changed);
    if (this.#lookScheduled) return;
    this.#lookScheduled = true;
    queueMicrotask(() => {
      this.#lookScheduled = false;
      const ids = this.#changed;
      this.#changed = [];
      for (const id of ids) this.#look(id);
    });
  }

  /** Every 100 ms: catches up with changes not seen one by one, cancels and drops orphans. */
  reconcile(): void {
    if (this.#stopped || (this.#local.size === 0 && this.#host.waiters().size === 0)) return;
    const members = this.#host.members();
    if (members === null) return;
    for (const id of this.#local.keys()) this.#look(id);
    const leads = this.#host.leads();
    const drop = new Set<string>();
    for (const w of this.#host.waiters().all()) {
      if (w.owner === this.owner) {
        if (!this.#local.has(w.id) && !this.#resolving.has(w.id)) this.#orphan(w.id);
      } else if (ownerReplica(w.owner) === this.#host.id) {
        drop.add(w.owner);
      } else if (leads && !members.includes(ownerReplica(w.owner))) {
        drop.add(w.owner);
      }
    }
    for (const owner of drop) {
      if (this.#dropping.has(owner)) continue;
      this.#dropping.add(owner);
      this.#send(["__BDROP", owner], () => this.#dropping.delete(owner));
    }
  }

  /** Stops the timers; clients still blocked get no answer (their connections are closing). */
  stop(): void {
    this.#stopped = true;
    for (const l of this.#local.values()) {
      clearTimeout(l.timer);
      if (l.onGone) l.gone?.removeEventListener("abort", l.onGone);
    }
    this.#local.clear();
  }

  /** A waiting client whose waiter was handed something or is gone: finish it. */
  #look(id: string): void {
    const local = this.#local.get(id);
    if (local?.state !== "waiting") return;
    const w = this.#host.waiters().get(id);
    if (w === undefined || w.handed !== undefined) this.#finish(id);
  }

  /** `__BFINISH`: the client gets what its waiter holds (a null array when nothing). */
  #finish(id: string): void {
    const local = this.#local.get(id);
    if (local?.state !== "waiting" || this.#stopped) return;
    this.#end(id, local);
    this.#resolving.add(id);
    this.#send(["__BFINISH", id], (outcome) => {
      this.#resolving.delete(id);
      local.respond(outcome);
    });
  }

  /** The client is gone: `__BCANCEL` gives back what its waiter holds. */
  #cancel(id: string, local: Local): void {
    if (local.state !== "waiting" || this.#stopped) return;
    this.#end(id, local);
    // The slot of the request is freed with a null array nobody reads.
    local.respond({ ok: true, result: NIL_ARRAY });
    this.#orphan(id);
  }

  /** Cancels waiter `id`, held by no client here (once at a time). */
  #orphan(id: string): void {
    if (this.#resolving.has(id)) return;
    this.#resolving.add(id);
    this.#send(["__BCANCEL", id], () => this.#resolving.delete(id));
  }

  #end(id: string, local: Local): void {
    local.state = "resolving";
    clearTimeout(local.timer);
    if (local.onGone) local.gone?.removeEventListener("abort", local.onGone);
    this.#local.delete(id);
  }

  #send(argv: string[], respond: (outcome: Outcome) => void): void {
    this.#host.submit({ op: { argv, time: this.#host.now() } }, respond);
  }
}

/** True for `__BLOCK`'s answer that the client now waits. */
function isBlocked(r: unknown): boolean {
  return r !== null && typeof r === "object" && (r as { ok?: unknown }).ok === BLOCKED_STATUS;
}
