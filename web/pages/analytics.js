// The Analytics page: requests over time, by provider, model, client API and client key,
// and recent errors.
import { h, api, attempt, every, localTime, fmt, card } from '../ui.js?v={{v}}';
import * as Charts from '../charts.js?v={{v}}';

const SURFACE_NAME = { chat: 'Chat completions', messages: 'Anthropic Messages', responses: 'Responses', completions: 'Completions', embeddings: 'Embeddings' };

export function analytics(root) {
  let range = '24h';
  const tabs = h('div', { class: 'tabs', role: 'tablist' });
  const body = h('div', { id: 'analytics-body' });
  root.append(h('section', { class: 'card' }, h('div', { class: 'row spread wrap' }, h('h2', {}, 'Analytics'), tabs)), body);
  const drawTabs = () => tabs.replaceChildren(...['24h', '7d', '30d'].map(r =>
    h('button', { type: 'button', role: 'tab', 'aria-selected': String(r === range), class: r === range ? 'tab on' : 'tab', onclick: () => { range = r; drawTabs(); load(); } }, r)));
  drawTabs();

  async function load() {
    const q = `?range=${range}`;
    const got = await attempt(() => Promise.all(['summary', 'timeline', 'by-platform', 'by-model', 'errors', 'by-surface', 'by-client']
      .map(r => api('GET', `/api/analytics/${r}${q}`))));
    if (!got) return;
    const [s, timeline, platforms, models, errors, surfaces, clients] = got;
    const tile = (label, value, id) => h('div', { class: 'tile', id }, h('div', { class: 'tile-value' }, value), h('div', { class: 'muted small' }, label));
    const tsFmt = range === '24h' ? ts => new Date(ts).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })
      : ts => new Date(ts).toLocaleDateString([], { month: 'short', day: 'numeric' });
    body.replaceChildren(
      h('div', { class: 'tiles' },
        tile('Requests', fmt(s.totalRequests), 'tile-requests'),
        tile('Success rate', s.successRate === null ? '—' : `${s.successRate}%`),
        tile(s.estimatedTokenRequests ? `Input tokens (${s.estimatedTokenRequests} requests estimated)` : 'Input tokens', fmt(s.inputTokens)),
        tile('Output tokens', fmt(s.outputTokens)),
        tile('Avg latency', s.avgLatencyMs === null ? '—' : `${s.avgLatencyMs} ms`),
        tile('Fallbacks', fmt(s.fallbacks)),
        tile('Est. savings', `$${s.estimatedSavingsUsd.toFixed(2)}`)),
      card('Requests over time', Charts.line(timeline,
        [{ key: 'succeeded', label: 'succeeded', cls: 'ok' }, { key: 'failed', label: 'failed', cls: 'bad' }], tsFmt),
        h('p', { class: 'legend small' }, h('span', { class: 'key ok' }), ' succeeded ', h('span', { class: 'key bad' }), ' failed')),
      card('Requests by provider', platforms.length ? Charts.bars(platforms.map(p => ({ label: p.platform, value: p.requests, cls: `p-${p.platform}`, note: `${p.attempts} attempts, ${p.failedAttempts} failed` }))) : h('p', { class: 'muted' }, 'No requests in this range.')),
      card('Average latency by provider', platforms.some(p => p.avgLatencyMs !== null) ? Charts.bars(platforms.filter(p => p.avgLatencyMs !== null).map(p => ({ label: p.platform, value: p.avgLatencyMs, cls: `p-${p.platform}` })), ' ms') : h('p', { class: 'muted' }, 'No successful requests in this range.')),
      card('By client API', table(['API', 'Requests', 'Success', 'Rejected', 'Latency', 'In', 'Out'],
        surfaces.filter(x => x.requests > 0).map(x => [SURFACE_NAME[x.surface] || x.surface, x.requests, x.successRate === null ? '—' : `${x.successRate}%`, x.rejected,
          x.avgLatencyMs === null ? '—' : `${x.avgLatencyMs} ms`, fmt(x.inputTokens), fmt(x.outputTokens)]))),
      h('section', { class: 'card', id: 'by-client' }, h('h2', {}, 'By client key'), table(['Client key', 'Requests', 'Succeeded', 'Failed', 'Rejected', 'In', 'Out'],
        clients.filter(x => x.requests > 0).map(x => [x.client, x.requests, x.succeeded, x.failed, x.rejected, fmt(x.inputTokens), fmt(x.outputTokens)]))),
      card('Per model', table(['Model', 'Provider', 'Requests', 'Success', 'Latency', 'In', 'Out', 'Attempts'],
        models.map(m => [m.modelId, m.platform, m.requests, m.successRate === null ? '—' : `${m.successRate}%`, m.avgLatencyMs === null ? '—' : `${m.avgLatencyMs} ms`, fmt(m.inputTokens), fmt(m.outputTokens), `${m.attempts} (${m.failedAttempts} failed)`]))),
      card('Recent errors', table(['When', 'Status', 'Error', 'Model', 'Attempts'],
        errors.map(e => [localTime(e.ts), e.status, e.error || e.outcome, e.platform ? `${e.platform}/${e.modelId}` : (e.requestedModel || '—'),
          e.attempts.map(a => `${a.platform}: ${a.outcome}${a.status ? ' ' + a.status : ''}`).join(', ') || '—']))));
  }
  load();
  every(30000, load);
}

function table(head, rows) {
  if (!rows.length) return h('p', { class: 'muted' }, 'Nothing in this range.');
  return h('div', { class: 'scroll' }, h('table', {},
    h('thead', {}, h('tr', {}, head.map(c => h('th', {}, c)))),
    h('tbody', {}, rows.map(r => h('tr', {}, r.map(c => h('td', {}, c)))))));
}
