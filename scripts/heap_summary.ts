/**
 * What a running replica's heap holds: connects to its V8 inspector (a replica started with
 * `deno run -A --inspect=127.0.0.1:9229 src/cli/node.ts ...`), has it collect garbage and take a
 * heap snapshot, and prints the live total, the largest kinds of object by size and count, the
 * most common string sizes, and the chain of retainers of a few objects of `--retained` kind (what
 * keeps them alive). The snapshot's JSON must fit one string (about 500 MB: a heap of a few
 * hundred thousand keys).
 *
 * ```sh
 * deno run -A scripts/heap_summary.ts --port 9229 --retained "object:Array"
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    port: { type: "string", default: "9229" },
    retained: { type: "string", default: "object:Array" },
    top: { type: "string", default: "25" },
  },
});

interface HeapSnapshot {
  snapshot: {
    meta: {
      node_fields: string[];
      node_types: [string[]];
      edge_fields: string[];
      edge_types: [string[]];
    };
  };
  nodes: number[];
  edges: number[];
  strings: string[];
}

/** Takes a heap snapshot over the inspector protocol, after a full garbage collection. */
async function takeSnapshot(port: string): Promise<HeapSnapshot> {
  const targets = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
  const ws = new WebSocket(targets[0].webSocketDebuggerUrl);
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = reject;
  });
  const chunks: string[] = [];
  const waiting = new Map<number, () => void>();
  ws.onmessage = (e) => {
    const m = JSON.parse(e.data);
    if (m.method === "HeapProfiler.addHeapSnapshotChunk") chunks.push(m.params.chunk);
    else if (m.id !== undefined) waiting.get(m.id)?.();
  };
  let next = 0;
  const call = (method: string, params = {}) =>
    new Promise<void>((resolve) => {
      const id = ++next;
      waiting.set(id, resolve);
      ws.send(JSON.stringify({ id, method, params }));
    });
  await call("HeapProfiler.enable");
  await call("HeapProfiler.collectGarbage");
  await call("HeapProfiler.takeHeapSnapshot", { reportProgress: false });
  ws.close();
  return JSON.parse(chunks.join(""));
}

const snap = await takeSnapshot(values.port);
const meta = snap.snapshot.meta;
const nf = meta.node_fields.length;
const [iType, iName, iSize, iEdges] = ["type", "name", "self_size", "edge_count"].map((f) =>
  meta.node_fields.indexOf(f)
);
const types = meta.node_types[0];
const { nodes, edges, strings } = snap;
const nodeCount = nodes.length / nf;
const STRING_TYPES = new Set(["string", "concatenated string", "sliced string"]);

/** A node's kind: its type and, but for strings (whose name is their text), its name. */
function kind(n: number): string {
  const type = types[nodes[n * nf + iType]];
  return STRING_TYPES.has(type) ? `${type}:` : `${type}:${strings[nodes[n * nf + iName]]}`;
}

const byKind = new Map<string, { bytes: number; count: number }>();
const stringSizes = new Map<number, number>();
let total = 0;
for (let n = 0; n < nodeCount; n++) {
  const size = nodes[n * nf + iSize];
  const k = kind(n).slice(0, 70);
  const e = byKind.get(k) ?? { bytes: 0, count: 0 };
  e.bytes += size;
  e.count++;
  byKind.set(k, e);
  total += size;
  if (types[nodes[n * nf + iType]] === "string") {
    stringSizes.set(size, (stringSizes.get(size) ?? 0) + 1);
  }
}
const mb = (b: number) => (b / 1e6).toFixed(1).padStart(8) + " MB";
console.log(`live: ${mb(total)} in ${nodeCount} objects`);
for (const [k, e] of [...byKind].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, +values.top)) {
  console.log(`${mb(e.bytes)} ${String(e.count).padStart(9)}  ${k}`);
}
const common = [...stringSizes].sort((a, b) => b[1] - a[1]).slice(0, 12);
console.log(`string sizes (bytes x count): ${common.map(([s, c]) => `${s}x${c}`).join(" ")}`);

// The first strong retainer of every object, to walk back from a few of the wanted kind.
const ef = meta.edge_fields;
const enf = ef.length;
const [eType, eName, eTo] = ["type", "name_or_index", "to_node"].map((f) => ef.indexOf(f));
const edgeTypes = meta.edge_types[0];
const retainer = new Int32Array(nodeCount).fill(-1);
const viaEdge = new Int32Array(nodeCount).fill(-1);
for (let n = 0, e = 0; n < nodeCount; n++) {
  const end = e + nodes[n * nf + iEdges] * enf;
  for (; e < end; e += enf) {
    const t = edgeTypes[edges[e + eType]];
    if (t === "weak" || t === "shortcut") continue;
    const to = edges[e + eTo] / nf;
    if (retainer[to] === -1) {
      retainer[to] = n;
      viaEdge[to] = e;
    }
  }
}
function edgeName(e: number): string {
  const t = edgeTypes[edges[e + eType]];
  return t === "element" || t === "hidden"
    ? `[${edges[e + eName]}]`
    : `.${strings[edges[e + eName]]}`;
}
const wanted: number[] = [];
for (let n = 0; n < nodeCount; n++) if (kind(n).startsWith(values.retained)) wanted.push(n);
const step = Math.max(1, Math.floor(wanted.length / 4));
for (let i = 0; i < wanted.length && i < 4 * step; i += step) {
  const chain: string[] = [];
  for (let m = wanted[i], depth = 0; m !== -1 && depth < 12; depth++, m = retainer[m]) {
    chain.push(kind(m).slice(0, 60) + (viaEdge[m] >= 0 ? `  <-${edgeName(viaEdge[m])}` : ""));
  }
  console.log(`retained (${wanted.length} of kind ${values.retained}):\n  ${chain.join("\n  ")}`);
}
