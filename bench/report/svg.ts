/**
 * The chart in docs/benchmarks.md: throughput and p99 latency per server for
 * each HTTP/1.1 scenario, as grouped bars. Plain SVG text, no dependencies.
 */
import type { HttpRow, HttpScenario } from '../lib/types.ts';

const COLORS = ['#3b6fd8', '#2f9e44', '#e8590c', '#9c36b5', '#868e96', '#0c8599'];
const SCENARIOS: HttpScenario[] = ['proxy-13B', 'proxy-16KiB', 'direct', 'not-found'];

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function niceMax(v: number): number {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function fmt(v: number): string {
  if (v >= 1000) return `${Math.round(v / 100) / 10}k`;
  if (v >= 10) return String(Math.round(v));
  return String(Math.round(v * 10) / 10);
}

interface Panel {
  title: string;
  value: (r: Extract<HttpRow, { available: true }>) => number;
}

export function renderChart(rows: readonly HttpRow[], subtitle: string): string {
  const servers = [...new Set(rows.filter((r) => r.available).map((r) => r.server))];
  const scenarios = SCENARIOS.filter((s) => rows.some((r) => r.available && r.scenario === s));
  const panels: Panel[] = [
    { title: 'Throughput (requests/s, higher is better)', value: (r) => r.reqPerSec },
    { title: 'p99 latency (ms, lower is better)', value: (r) => r.latencyMs.p99 },
  ];
  const panelW = 470;
  const panelH = 300;
  const top = 70;
  const left = 60;
  const width = left + panels.length * (panelW + 40) + 10;
  const legendY = top + panelH + 50;
  const height = legendY + 20 * Math.ceil(servers.length / 3) + 20;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="12">`);
  out.push(`<rect width="${width}" height="${height}" fill="#fff"/>`);
  out.push(`<text x="${left}" y="24" font-size="16" font-weight="bold">PyServe vs nginx, HAProxy, Caddy — HTTP/1.1 keep-alive</text>`);
  out.push(`<text x="${left}" y="44" fill="#555">${esc(subtitle)}</text>`);
  panels.forEach((panel, pi) => {
    const x0 = left + pi * (panelW + 40);
    const values = rows.filter((r) => r.available).map((r) => panel.value(r as Extract<HttpRow, { available: true }>));
    const max = niceMax(Math.max(0, ...values));
    out.push(`<text x="${x0}" y="${top - 8}" font-weight="bold">${esc(panel.title)}</text>`);
    for (let t = 0; t <= 4; t++) {
      const y = top + panelH - (panelH * t) / 4;
      out.push(`<line x1="${x0}" y1="${y}" x2="${x0 + panelW}" y2="${y}" stroke="#e5e5e5"/>`);
      out.push(`<text x="${x0 - 6}" y="${y + 4}" text-anchor="end" fill="#666">${fmt((max * t) / 4)}</text>`);
    }
    const groupW = panelW / Math.max(1, scenarios.length);
    const barW = Math.min(28, (groupW - 16) / Math.max(1, servers.length));
    scenarios.forEach((scenario, si) => {
      const gx = x0 + si * groupW + (groupW - barW * servers.length) / 2;
      servers.forEach((server, k) => {
        const row = rows.find((r) => r.server === server && r.scenario === scenario);
        if (row === undefined || !row.available) return;
        const v = panel.value(row);
        const h = (v / max) * panelH;
        const x = gx + k * barW;
        out.push(`<rect x="${x.toFixed(1)}" y="${(top + panelH - h).toFixed(1)}" width="${(barW - 2).toFixed(1)}" height="${h.toFixed(1)}" fill="${COLORS[k % COLORS.length]}"><title>${esc(`${server} ${scenario}: ${fmt(v)}`)}</title></rect>`);
        out.push(`<text x="${(x + barW / 2 - 1).toFixed(1)}" y="${(top + panelH - h - 4).toFixed(1)}" text-anchor="middle" font-size="9" fill="#333">${fmt(v)}</text>`);
      });
      out.push(`<text x="${(x0 + si * groupW + groupW / 2).toFixed(1)}" y="${top + panelH + 18}" text-anchor="middle">${esc(scenario)}</text>`);
    });
    out.push(`<line x1="${x0}" y1="${top + panelH}" x2="${x0 + panelW}" y2="${top + panelH}" stroke="#333"/>`);
  });
  servers.forEach((server, k) => {
    const x = left + (k % 3) * 300;
    const y = legendY + Math.floor(k / 3) * 20;
    out.push(`<rect x="${x}" y="${y - 10}" width="12" height="12" fill="${COLORS[k % COLORS.length]}"/>`);
    out.push(`<text x="${x + 18}" y="${y}">${esc(server)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
