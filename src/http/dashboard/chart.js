/**
 * A small SVG line chart: time on x (the last `windowMs` up to `now`), values on y from 0 to a
 * round maximum, one polyline per series; a null value breaks the line. Redrawn whole on every
 * update (a few hundred points at most).
 *
 * @module
 */
import { formatAgo, formatNumber, niceCeiling } from "./model.js";

const SVG = "http://www.w3.org/2000/svg";
const PAD = { left: 44, right: 8, top: 8, bottom: 22 };

/**
 * @param {string} name
 * @param {Record<string, string | number>} attrs
 * @returns {SVGElement}
 */
function el(name, attrs) {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

/**
 * Draws `series` into `svg` (its previous content is replaced), sized to the element's width.
 *
 * @param {SVGSVGElement} svg
 * @param {{ label: string, color: string, dashed?: boolean,
 *   points: { t: number, v: number | null }[] }[]} series
 * @param {{ now: number, windowMs: number, height?: number, floor?: number }} opts
 */
export function drawChart(svg, series, opts) {
  const width = Math.max(200, Math.round(svg.clientWidth || svg.parentElement?.clientWidth || 300));
  const height = opts.height ?? 170;
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("height", String(height));
  svg.replaceChildren();
  const from = opts.now - opts.windowMs;
  let max = 0;
  for (const s of series) {
    for (const p of s.points) if (p.t >= from && p.v !== null && p.v > max) max = p.v;
  }
  const top = niceCeiling(max, opts.floor ?? 1);
  const w = width - PAD.left - PAD.right;
  const h = height - PAD.top - PAD.bottom;
  const x = (/** @type {number} */ t) => PAD.left + ((t - from) / opts.windowMs) * w;
  const y = (/** @type {number} */ v) => PAD.top + h - (v / top) * h;
  for (let i = 0; i <= 4; i++) {
    const v = (top * i) / 4;
    svg.append(
      el("line", { x1: PAD.left, x2: width - PAD.right, y1: y(v), y2: y(v), class: "grid" }),
    );
    const label = el("text", { x: PAD.left - 6, y: y(v) + 4, class: "axis", "text-anchor": "end" });
    label.textContent = formatNumber(v);
    svg.append(label);
  }
  const step = opts.windowMs <= 60_000 ? 10_000 : opts.windowMs <= 120_000 ? 30_000 : 60_000;
  for (let ago = 0; ago <= opts.windowMs; ago += step) {
    const label = el("text", {
      x: x(opts.now - ago),
      y: height - 6,
      class: "axis",
      "text-anchor": ago === 0 ? "end" : ago === opts.windowMs ? "start" : "middle",
    });
    label.textContent = formatAgo(ago);
    svg.append(label);
  }
  for (const s of series) {
    /** @type {string[]} */
    let run = [];
    const flush = () => {
      if (run.length > 1) {
        svg.append(el("polyline", {
          points: run.join(" "),
          fill: "none",
          stroke: s.color,
          "stroke-width": 2,
          "stroke-linejoin": "round",
          ...(s.dashed ? { "stroke-dasharray": "5 4" } : {}),
        }));
      } else if (run.length === 1) {
        const [cx, cy] = run[0].split(",");
        svg.append(el("circle", { cx, cy, r: 2, fill: s.color }));
      }
      run = [];
    };
    for (const p of s.points) {
      if (p.t < from || p.v === null) {
        flush();
        continue;
      }
      run.push(`${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`);
    }
    flush();
  }
}
