/**
 * The SIGKILL scenario of the blocking-command e2e tests (list pops, stream reads): clients
 * blocked at one replica, first in line; clients blocked at the others; the one replica killed;
 * writes pipelined to a survivor until ordered; the dead replica's waiters dropped by the order.
 * Each test brings its commands and what it checks; the log readers are in `blocked_log.ts`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { encodeCommand, RespError, type RespValue } from "../../src/net/resp.ts";
import { ConnectionClosedError, RespTestClient, type TestCluster, waitFor } from "./cluster.ts";
import { blockedCount } from "./blocked_log.ts";

/** How long survivors keep reading at the most. */
const SURVIVORS_MS = 40_000;

/** How long {@link pipelineUntilOrdered} keeps resending refused commands at the most. */
const ORDER_MS = 60_000;

/**
 * Sends each of `commands` on its own connection to replica `id` without waiting for a reply,
 * and waits until replica 1 delivered as many `__BLOCK`s that registered a waiter matching
 * `blocked` (the waiter's owner, the command). The connections, blocked.
 */
export async function blockAt(
  cluster: TestCluster,
  id: number,
  commands: string[][],
  blocked: RegExp,
): Promise<RespTestClient[]> {
  const clients = await Promise.all(
    commands.map(() => RespTestClient.connect(cluster.clientPort(id))),
  );
  for (const [i, c] of clients.entries()) await c.write(encodeCommand(commands[i]));
  await waitFor(() => blockedCount(cluster, 1, blocked) === commands.length, {
    message: `replica ${id}'s ${commands.length} clients to block`,
  });
  return clients;
}

/**
 * `n` clients on replicas 1 and 2 in turn, each sending `command(i)` again and again while
 * `going()` (and for {@link SURVIVORS_MS} at the most); `got` hears every reply that is not an
 * error (errors: NOQUORUM/UNKNOWN during the view change). Resolves when all have stopped.
 */
export function survivors(
  cluster: TestCluster,
  n: number,
  command: (i: number) => string[],
  going: () => boolean,
  got: (reply: RespValue) => void,
): Promise<void> {
  const end = performance.now() + SURVIVORS_MS;
  return Promise.all(Array.from({ length: n }, async (_, i) => {
    const c = await RespTestClient.connect(cluster.clientPort(1 + (i % 2)));
    try {
      while (going() && performance.now() < end) {
        const reply = await c.call(command(i), 15_000);
        if (!(reply instanceof RespError)) got(reply);
      }
    } finally {
      await c.close();
    }
  })).then(() => {});
}

/** SIGKILLs replica `id` and checks that each of its `clients` sees its connection close. */
export async function killWithClients(
  cluster: TestCluster,
  id: number,
  clients: RespTestClient[],
): Promise<void> {
  await cluster.kill(id, "SIGKILL");
  for (const c of clients) {
    await assert.rejects(c.next(5000), ConnectionClosedError);
    await c.close();
  }
}

/**
 * Sends the commands of `items` pipelined on one connection to replica `id`, then again those
 * refused with NOQUORUM (not ordered), until none is (for {@link ORDER_MS} at the most, then it
 * throws); `answered` hears every other reply.
 */
export async function pipelineUntilOrdered<T>(
  cluster: TestCluster,
  id: number,
  items: T[],
  command: (item: T) => string[],
  answered: (item: T, reply: RespValue) => void,
): Promise<void> {
  const conn = await RespTestClient.connect(cluster.clientPort(id));
  try {
    const end = performance.now() + ORDER_MS;
    let todo = items;
    while (todo.length > 0) {
      if (performance.now() > end) {
        throw new Error(`${todo.length} commands still refused with NOQUORUM after ${ORDER_MS} ms`);
      }
      for (const item of todo) await conn.write(encodeCommand(command(item)));
      const refused: T[] = [];
      for (const item of todo) {
        const reply = await conn.next(15_000);
        if (reply instanceof RespError && reply.code === "NOQUORUM") refused.push(item);
        else answered(item, reply);
      }
      todo = refused;
    }
  } finally {
    await conn.close();
  }
}

/** Waits until replica 1 delivered the `__BDROP` of replica `id`'s `count` waiters. */
export async function waitDropped(cluster: TestCluster, id: number, count: number): Promise<void> {
  const line = new RegExp(`deliver #\\d+ "__BDROP" "${id}\\.[^"]+" -> "${count}" `);
  await waitFor(() => cluster.logged(1, line), {
    message: `replica ${id}'s ${count} waiters to be dropped`,
  });
}
