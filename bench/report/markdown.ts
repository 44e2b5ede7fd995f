/**
 * The generated part of docs/benchmarks.md, between two markers: everything
 * outside them (analysis, what limits PyServe) is written by hand and kept.
 */
import type { BenchResult, HttpRow, HttpScenario } from '../lib/types.ts';

export const BEGIN = '<!-- BEGIN GENERATED: npm run bench rewrites this section -->';
export const END = '<!-- END GENERATED -->';

const SCENARIO_TITLES: Record<HttpScenario, string> = {
  'proxy-13B': 'Proxy, 13-byte response',
  'proxy-16KiB': 'Proxy, 16 KiB response',
  direct: 'Direct response (no upstream)',
  'not-found': '404, no route (no upstream)',
};

const x = (v: number | undefined): string => (v === undefined ? '—' : `${v.toFixed(2)}×`);
const n = (v: number): string => v.toLocaleString('en-US');

function table(head: string[], rows: string[][]): string {
  return [`| ${head.join(' | ')} |`, `|${head.map((h, i) => (i === 0 ? '---' : '---:')).join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

function httpTable(rows: HttpRow[]): string {
  return table(
    ['Server', 'req/s', '× nginx', 'p50 ms', 'p99 ms', 'p99.9 ms', 'p99 × nginx', 'CPU %', 'RSS MiB', 'errors'],
    rows.map((r) => r.available
      ? [r.server, n(r.reqPerSec), x(r.vsNginx?.throughput), String(r.latencyMs.p50), String(r.latencyMs.p99), String(r.latencyMs.p999), x(r.vsNginx?.p99), String(r.cpuPercent), String(r.rssMiB), String(r.socketErrors + (r.scenario === 'not-found' ? 0 : r.errorStatuses))]
      : [r.server, `not available: ${r.reason}`, '', '', '', '', '', '', '', '']),
  );
}

export function renderMarkdown(r: BenchResult, chartPath: string): string {
  const m = r.meta;
  const out: string[] = [BEGIN, ''];
  out.push(`Run of ${m.date}${m.smoke ? ' (smoke mode: seconds-long runs, numbers not meaningful)' : ''}.`, '');
  out.push(`- Machine: ${m.machine.cpu}, ${m.machine.cores} cores, ${m.machine.memGiB} GiB, Linux ${m.machine.kernel}; load average ${m.machine.loadAvgBefore} before, ${m.machine.loadAvgAfter} after.`);
  out.push(`- Versions: ${Object.entries(m.versions).map(([k, v]) => `${k} ${v}`).join('; ')}.`);
  out.push(`- Pinning: server under test on CPU ${m.settings.serverCpus}; wrk, h2load, WebSocket clients and the backends on CPU ${m.settings.loadCpus}.`);
  out.push(m.settings.rounds !== undefined && m.settings.roundS !== undefined
    ? `- Load: ${m.settings.connections} keep-alive connections. HTTP/1.1 rows: ${m.settings.rounds} rounds in which every server takes its turn, each turn a ${m.settings.warmupS} s warm-up then ${m.settings.roundS} s measured; each row gives the medians of its rounds (peak RSS: the highest). Other rows: ${m.settings.warmupS} s warm-up then ${m.settings.durationS} s measured.`
    : `- Load: ${m.settings.connections} keep-alive connections, ${m.settings.warmupS} s warm-up then ${m.settings.durationS} s measured per row.`);
  for (const note of m.notes) out.push(`- ${note}`);
  out.push('', `![Throughput and p99 per server](${chartPath})`, '');

  out.push('### HTTP/1.1', '');
  const scenarios = [...new Set(r.http.map((h) => h.scenario))];
  for (const s of scenarios) {
    out.push(`#### ${SCENARIO_TITLES[s]}`, '', httpTable(r.http.filter((h) => h.scenario === s)), '');
  }
  out.push('CPU is the server process tree\'s, in percent of one core; RSS is its peak during the row; errors are socket errors plus statuses ≥ 400 (404s are the expected answer in the 404 rows and not counted).', '');

  out.push('### TLS + HTTP/2 (h2load, proxied 13-byte response)', '');
  out.push(table(['Server', 'req/s', '× nginx', 'p50 ms', 'p99 ms', 'p99.9 ms', 'CPU %', 'RSS MiB', 'failed'],
    r.h2.map((h) => h.available
      ? [h.server, n(h.reqPerSec), x(h.vsNginx?.throughput), String(h.latencyMs.p50), String(h.latencyMs.p99), String(h.latencyMs.p999), String(h.cpuPercent), String(h.rssMiB), String(h.failed)]
      : [h.server, `not available: ${h.reason}`, '', '', '', '', '', '', ''])), '');

  out.push('### WebSocket', '');
  out.push(table(['Server', 'idle connections', 'RSS before → after MiB', 'MiB per 10k', 'dropped', 'echo msg/s', 'echo p99 ms', 'echo CPU %'],
    r.websocket.idle.map((i) => {
      const e = r.websocket.echo.find((w) => w.server === i.server);
      if (!i.available) return [i.server, `not available: ${i.reason}`, '', '', '', '', '', ''];
      return [i.server, n(i.opened), `${i.rssBeforeMiB} → ${i.rssAfterMiB}`, String(i.mibPer10k), String(i.dropped),
        e?.available ? n(e.messagesPerSec) : '—', e?.available ? String(e.latencyMs.p99) : '—', e?.available ? String(e.cpuPercent) : '—'];
    })), '');

  out.push('### Control plane', '');
  out.push('Translate (controller/translate, pure function, one process per size; each Ingress has one host, two paths, a Service and an EndpointSlice of three endpoints):', '');
  out.push(table(['Ingresses', 'routes', 'first translate ms', 'median ms', 'RSS MiB', 'heap used MiB', 'snapshot bytes'],
    r.controlPlane.translate.map((t) => [n(t.ingresses), n(t.routes), String(t.firstMs), String(t.medianMs), String(t.rssMiB), String(t.heapUsedMiB), n(t.snapshotBytes)])), '');
  out.push('Dataplane snapshot apply (`PUT /v1/snapshot` round trip on a fresh dataplane; then one endpoint changed, the whole body sent; then another, sent as the pusher sends it to a dataplane that serves the routing, the routing section as just its hash; RSS after all three):', '');
  out.push(table(['Ingresses', 'snapshot bytes', 'full apply ms', 'endpoints-only apply ms', 'routing as its hash ms', 'dataplane RSS MiB'],
    r.controlPlane.apply.map((a) => [n(a.ingresses), n(a.snapshotBytes), String(a.fullApplyMs), String(a.endpointsOnlyApplyMs), String(a.routingAsHashApplyMs), String(a.rssMiB)])), '');
  const p = r.controlPlane.propagation;
  if (p.available) {
    const stats = (v: number[]): string => {
      const s = [...v].sort((a, b) => a - b);
      return `median ${s[Math.floor(s.length / 2)] ?? '—'} ms, max ${s.at(-1) ?? '—'} ms (${v.length} samples: ${v.join(', ')})`;
    };
    out.push(`Propagation on a real API server with ${n(p.background)} other Ingresses present, from issuing the write to the first response that reflects it:`, '');
    out.push(`- Ingress created → served: ${stats(p.ingressToTrafficMs)}`);
    out.push(`- EndpointSlice replaced → traffic on the new endpoint: ${stats(p.endpointsToTrafficMs)}`, '');
  } else {
    out.push(`Propagation: not available: ${p.reason}`, '');
  }

  const c = r.changeUnderLoad;
  out.push('### Change under load (PyServe)', '');
  out.push(`${c.routeEdits} route edits and ${c.endpointChanges} endpoint changes pushed during ${c.durationS} s of load. **Failures: ${c.totalFailures}** (non-2xx responses + socket errors, must be 0).`, '');
  out.push(table(['Stream', 'requests', 'req/s', 'non-2xx', 'socket errors', 'p99 ms', 'max ms'],
    [c.edited, c.unrelated].map((s) => [s.target, n(s.requests), n(s.reqPerSec), `${s.non2xx}${s.non2xxStatuses ? ` (${s.non2xxStatuses})` : ''}`, String(s.socketErrors), String(s.latencyMs.p99), String(s.latencyMs.max)])), '');
  out.push(c.websockets.available
    ? `WebSockets across ${c.websockets.configChanges} config changes: ${c.websockets.connections} open, **${c.websockets.dropped} dropped**.`
    : `WebSockets across config changes: not available: ${c.websockets.reason}.`, '');
  out.push(END);
  return out.join('\n');
}

/** Replace the generated section of `doc`, or append one when it has none. */
export function spliceGenerated(doc: string, generated: string): string {
  const a = doc.indexOf(BEGIN);
  const b = doc.indexOf(END);
  if (a >= 0 && b > a) return doc.slice(0, a) + generated + doc.slice(b + END.length);
  return `${doc.trimEnd()}\n\n## Results\n\n${generated}\n`;
}
