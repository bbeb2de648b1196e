/**
 * The loading listeners (`src/runtime/loading_listeners.ts`) on real sockets: every command gets
 * `-LOADING` (pipelined ones one each), INFO `loading:1`, QUIT `+OK`, `/livez` 200 and the rest
 * 503; closing frees
 * the ports at once; ports in use make them report that they do not listen.
 */
import assert from "node:assert/strict";
import {
  LOADING_HTTP_REASON,
  LOADING_REPLY,
  loadingInfo,
  startLoadingListeners,
} from "../../src/runtime/loading_listeners.ts";
import { freePorts, portIsFree, waitFor } from "../support/cluster.ts";
import { closeQuietly } from "../support/raw_conn.ts";
import { concatBytes } from "../../src/kv/bytes.ts";

const HOST = "127.0.0.1";

/** Reads from `conn` until `want` bytes came (or EOF); the text read. */
async function readBytes(conn: Deno.Conn, want: number): Promise<string> {
  const chunks: Uint8Array[] = [];
  let got = 0;
  const buf = new Uint8Array(4096);
  while (got < want) {
    const n = await conn.read(buf);
    if (n === null) break;
    chunks.push(buf.slice(0, n));
    got += n;
  }
  return new TextDecoder().decode(concatBytes(chunks));
}

/** The `name:value` fields of INFO's text, by name. */
function infoFields(text: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of text.split("\r\n")) {
    const at = line.indexOf(":");
    if (at > 0 && !line.startsWith("#")) fields[line.slice(0, at)] = line.slice(at + 1);
  }
  return fields;
}

/** Sends INFO on `conn` and reads its bulk reply: the fields, by name. */
async function infoOf(conn: Deno.Conn): Promise<Record<string, string>> {
  await conn.write(new TextEncoder().encode("INFO\r\n"));
  const bytes: number[] = [];
  const one = new Uint8Array(1);
  // The header, "$<length>\r\n", a byte at a time; then the body and its CRLF.
  while (bytes.length < 2 || bytes.at(-1) !== 10) {
    if (await conn.read(one) !== 1) throw new Error("the connection ended in a reply");
    bytes.push(one[0]);
  }
  const header = new TextDecoder().decode(new Uint8Array(bytes));
  assert.match(header, /^\$[0-9]+\r\n$/);
  const length = Number(header.slice(1, -2));
  const body = await readBytes(conn, length + 2);
  assert.equal(body.length, length + 2);
  return infoFields(body);
}

/** Loading listeners on two free ports (client, HTTP), checked to be listening. */
async function listening() {
  const [clientPort, httpPort] = freePorts(2);
  const loading = await startLoadingListeners({
    id: 1,
    hostname: HOST,
    clientPort,
    httpPort,
    maxClients: 10,
  });
  assert.equal(loading.listening, true);
  return { clientPort, httpPort, loading };
}

Deno.test("loading listeners: LOADING to every command, QUIT, /livez and /readyz; close frees the ports", async () => {
  const { clientPort, httpPort, loading } = await listening();
  const conn = await Deno.connect({ hostname: HOST, port: clientPort });
  try {
    const line = `-${LOADING_REPLY}\r\n`;
    // Three pipelined commands (RESP and inline), then QUIT.
    await conn.write(
      new TextEncoder().encode("*1\r\n$4\r\nPING\r\nGET k\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"),
    );
    assert.equal(await readBytes(conn, 3 * line.length), line.repeat(3));
    const info = await infoOf(conn);
    assert.equal(info.loading, "1");
    assert.equal(info.tcp_port, String(clientPort));
    assert.equal(info.loading_total_bytes, "0", "nothing reported yet");
    assert.equal(info.loading_loaded_perc, "0.00");
    assert.equal(info.loading_eta_seconds, undefined, "no rate yet, no time to go");
    const started = Number(info.loading_start_time);
    assert.ok(Math.abs(started - Date.now() / 1000) < 600, `loading_start_time:${started}`);
    await conn.write(new TextEncoder().encode("QUIT\r\n"));
    assert.equal(
      await readBytes(conn, 100),
      "+OK\r\n",
      "QUIT is answered, then the connection ends",
    );
  } finally {
    closeQuietly(conn);
  }
  const livez = await fetch(`http://${HOST}:${httpPort}/livez`);
  assert.equal(livez.status, 200);
  assert.equal(await livez.text(), "ok\n");
  const readyz = await fetch(`http://${HOST}:${httpPort}/readyz`);
  assert.equal(readyz.status, 503);
  assert.equal(await readyz.text(), `not ready: ${LOADING_HTTP_REASON}\n`);
  const other = await fetch(`http://${HOST}:${httpPort}/metrics`);
  assert.equal(other.status, 503);
  await other.body?.cancel();
  const open = await Deno.connect({ hostname: HOST, port: clientPort });
  try {
    await loading.close();
    assert.ok(portIsFree(clientPort), "the client port is free once closed");
    assert.ok(portIsFree(httpPort), "the HTTP port is free once closed");
    // Closed: an end of stream, or a reset when the listener closed before it accepted this one
    // (the kernel resets what waits in a closed listener's backlog).
    const end = await open.read(new Uint8Array(16)).catch((err) => {
      if (err instanceof Deno.errors.ConnectionReset) return null;
      throw err;
    });
    assert.equal(end, null, "open connections are closed");
  } finally {
    closeQuietly(open);
  }
  await loading.close(); // idempotent
});

Deno.test("loading listeners: a port in use is reported, nothing listens, and close is harmless", async () => {
  const taken = Deno.listen({ hostname: HOST, port: 0 });
  try {
    const loading = await startLoadingListeners({
      id: 1,
      hostname: HOST,
      clientPort: taken.addr.port,
      maxClients: 10,
    });
    assert.equal(loading.listening, false);
    assert.match(loading.failure ?? "", /in use|AddrInUse/i);
    await loading.close();
  } finally {
    taken.close();
  }
});

Deno.test("loading listeners: connections past maxclients are closed at once", async () => {
  const [clientPort] = freePorts(1);
  const loading = await startLoadingListeners({ id: 1, hostname: HOST, clientPort, maxClients: 2 });
  const conns: Deno.Conn[] = [];
  try {
    const line = `-${LOADING_REPLY}\r\n`;
    for (let i = 0; i < 2; i++) {
      const c = await Deno.connect({ hostname: HOST, port: clientPort });
      conns.push(c);
      await c.write(new TextEncoder().encode("PING\r\n"));
      assert.equal(await readBytes(c, line.length), line, `connection ${i + 1} is served`);
    }
    const third = await Deno.connect({ hostname: HOST, port: clientPort });
    conns.push(third);
    await third.write(new TextEncoder().encode("PING\r\n")).catch(() => 0);
    assert.equal(await readBytes(third, 1).catch(() => ""), "", "the third is closed unanswered");
  } finally {
    for (const c of conns) closeQuietly(c);
    await loading.close();
  }
});

Deno.test("loading listeners: once closed, their ports can be bound at once, every time", async () => {
  // The replica binds the same ports right after close. (A listener's socket lingered until its
  // pending accept had ended: about one node start in five found its client port in use. That
  // race does not show in this process; the e2e tests, which start many replicas, showed it.)
  for (let i = 0; i < 5; i++) {
    const { clientPort, httpPort, loading } = await listening();
    await loading.close();
    Deno.listen({ hostname: HOST, port: clientPort }).close();
    Deno.listen({ hostname: HOST, port: httpPort }).close();
  }
});

Deno.test("loading listeners: INFO tells how far loading has come, as Redis's loading fields", async () => {
  const { clientPort, loading } = await listening();
  const conn = await Deno.connect({ hostname: HOST, port: clientPort });
  try {
    /** INFO until `done` holds of it (the progress message reaches the worker's thread first). */
    const infoWhen = async (done: (info: Record<string, string>) => boolean) => {
      let info: Record<string, string> = {};
      await waitFor(async () => done(info = await infoOf(conn)), {
        message: "INFO to show the progress reported",
        intervalMs: 5,
      });
      return info;
    };
    loading.progress(0, 1000);
    const read = await infoWhen((i) => i.loading_total_bytes === "1000");
    assert.deepEqual([read.loading_loaded_bytes, read.loading_loaded_perc], ["0", "0.00"]);
    assert.equal(read.loading_eta_seconds, undefined);
    loading.progress(250, 1000);
    const quarter = await infoWhen((i) => i.loading_loaded_bytes === "250");
    assert.equal(quarter.loading_loaded_perc, "25.00");
    assert.match(quarter.loading_eta_seconds ?? "", /^[0-9]+$/);
    assert.equal(quarter.loading, "1");
  } finally {
    closeQuietly(conn);
  }
  await loading.close();
  loading.progress(500, 1000); // after close: nothing to tell, and no error
});

Deno.test("loadingInfo: bytes, percentage with two decimals, and the time to go at the rate so far", () => {
  const at = infoFields(
    loadingInfo(7001, {
      startedMs: 1_000_000,
      totalBytes: 1000,
      loadedBytes: 250,
      nowMs: 1_010_000,
    }),
  );
  assert.equal(at.loading, "1");
  assert.equal(at.loading_start_time, "1000");
  assert.equal(at.loading_total_bytes, "1000");
  assert.equal(at.loading_loaded_bytes, "250");
  assert.equal(at.loading_loaded_perc, "25.00");
  assert.equal(at.loading_eta_seconds, "30", "10 s for a quarter: 30 s for the rest");
  const none = infoFields(
    loadingInfo(7001, { startedMs: 0, totalBytes: 0, loadedBytes: 0, nowMs: 5 }),
  );
  assert.equal(none.loading_loaded_perc, "0.00");
  assert.equal(none.loading_eta_seconds, undefined);
  const third = infoFields(
    loadingInfo(7001, { startedMs: 0, totalBytes: 3, loadedBytes: 1, nowMs: 1000 }),
  );
  assert.equal(third.loading_loaded_perc, "33.33");
});
