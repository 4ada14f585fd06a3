// The Analytics page: requests over time, by provider, model, client API and client key,
// and recent errors.
import { h, api, attempt, every, localTime, fmt, card } from '../ui.js?v={{v}}';
import * as Charts from '../charts.js?v={{v}}';
import { t, locale } from '../i18n/index.js?v={{v}}';

const SURFACES = ['chat', 'messages', 'responses', 'completions', 'embeddings', 'ollama_chat', 'ollama_generate', 'gemini', 'transcriptions'];
const surfaceName = s => (SURFACES.includes(s) ? t(`analytics.surface.${s}`) : s);
const pct = v => (v === null ? '—' : `${v}%`);
const ms = v => (v === null ? '—' : `${v} ms`);

export function analytics(root) {
  let range = '24h';
  const tabs = h('div', { class: 'tabs', role: 'tablist' });
  const body = h('div', { id: 'analytics-body' });
  root.append(h('section', { class: 'card' }, h('div', { class: 'row spread wrap' }, h('h2', {}, t('analytics.title')), tabs)), body);
  const drawTabs = () => tabs.replaceChildren(...['24h', '7d', '30d'].map(r =>
    h('button', { type: 'button', role: 'tab', 'aria-selected': String(r === range), class: r === range ? 'tab on' : 'tab', 'data-range': r,
      onclick: () => { range = r; drawTabs(); load(); } }, t(`analytics.range.${r}`))));
  drawTabs();

  async function load() {
    const q = `?range=${range}`;
    const got = await attempt(() => Promise.all(['summary', 'timeline', 'by-platform', 'by-model', 'errors', 'by-surface', 'by-client']
      .map(r => api('GET', `/api/analytics/${r}${q}`))));
    if (!got) return;
    const [s, timeline, platforms, models, errors, surfaces, clients] = got;
    const tile = (label, value, id) => h('div', { class: 'tile', id }, h('div', { class: 'tile-value' }, value), h('div', { class: 'muted small' }, label));
    const tsFmt = range === '24h' ? ts => new Date(ts).toLocaleTimeString(locale(), { hour: '2-digit', minute: '2-digit' })
      : ts => new Date(ts).toLocaleDateString(locale(), { month: 'short', day: 'numeric' });
    const usd = new Intl.NumberFormat(locale(), { style: 'currency', currency: 'USD' });
    body.replaceChildren(
      h('div', { class: 'tiles' },
        tile(t('analytics.requests'), fmt(s.totalRequests), 'tile-requests'),
        tile(t('analytics.successRate'), pct(s.successRate)),
        tile(s.estimatedTokenRequests ? t('analytics.inputTokensEstimated', { n: s.estimatedTokenRequests }) : t('analytics.inputTokens'), fmt(s.inputTokens)),
        tile(t('analytics.outputTokens'), fmt(s.outputTokens)),
        tile(t('analytics.avgLatency'), ms(s.avgLatencyMs)),
        tile(t('analytics.fallbacks'), fmt(s.fallbacks)),
        tile(t('analytics.toolRescues'), fmt(s.toolRescues)),
        tile(t('analytics.savings'), usd.format(s.estimatedSavingsUsd))),
      card(t('analytics.overTime'), Charts.line(timeline,
        [{ key: 'succeeded', label: t('analytics.succeeded'), cls: 'ok' }, { key: 'failed', label: t('analytics.failed'), cls: 'bad' }], tsFmt),
        h('p', { class: 'legend small' }, h('span', { class: 'key ok' }), ` ${t('analytics.succeeded')} `, h('span', { class: 'key bad' }), ` ${t('analytics.failed')}`)),
      card(t('analytics.byProvider'), platforms.length ? Charts.bars(platforms.map(p => ({ label: p.platform, value: p.requests, cls: `p-${p.platform}`,
        note: t('analytics.attemptsNote', { attempts: p.attempts, failed: p.failedAttempts }) }))) : h('p', { class: 'muted' }, t('analytics.noRequests'))),
      card(t('analytics.latencyByProvider'), platforms.some(p => p.avgLatencyMs !== null)
        ? Charts.bars(platforms.filter(p => p.avgLatencyMs !== null).map(p => ({ label: p.platform, value: p.avgLatencyMs, cls: `p-${p.platform}` })), ' ms')
        : h('p', { class: 'muted' }, t('analytics.noSuccesses'))),
      card(t('analytics.byApi'), table(['api', 'requests', 'success', 'rejected', 'latency', 'in', 'out'],
        surfaces.filter(x => x.requests > 0).map(x => [surfaceName(x.surface), x.requests, pct(x.successRate), x.rejected,
          ms(x.avgLatencyMs), fmt(x.inputTokens), fmt(x.outputTokens)]))),
      h('section', { class: 'card', id: 'by-client' }, h('h2', {}, t('analytics.byClientKey')), table(['clientKey', 'requests', 'succeeded', 'failed', 'rejected', 'in', 'out'],
        clients.filter(x => x.requests > 0).map(x => [x.client, x.requests, x.succeeded, x.failed, x.rejected, fmt(x.inputTokens), fmt(x.outputTokens)]))),
      card(t('analytics.perModel'), table(['model', 'provider', 'requests', 'success', 'latency', 'in', 'out', 'attempts'],
        models.map(m => [m.modelId, m.platform, m.requests, pct(m.successRate), ms(m.avgLatencyMs), fmt(m.inputTokens), fmt(m.outputTokens),
          t('analytics.attempts', { n: m.attempts, failed: m.failedAttempts })]))),
      card(t('analytics.recentErrors'), table(['when', 'status', 'error', 'model', 'attempts'],
        errors.map(e => [localTime(e.ts), e.status, e.error || e.outcome, e.platform ? `${e.platform}/${e.modelId}` : (e.requestedModel || '—'),
          e.attempts.map(a => `${a.platform}: ${a.outcome}${a.status ? ' ' + a.status : ''}`).join(', ') || '—']))));
  }
  load();
  every(30000, load);
}

// `head` names the columns by their key under analytics.col.
function table(head, rows) {
  if (!rows.length) return h('p', { class: 'muted' }, t('analytics.nothing'));
  return h('div', { class: 'scroll' }, h('table', {},
    h('thead', {}, h('tr', {}, head.map(c => h('th', {}, t(`analytics.col.${c}`))))),
    h('tbody', {}, rows.map(r => h('tr', {}, r.map(c => h('td', {}, c)))))));
}
