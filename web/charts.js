// Inline SVG charts without a library: a two-series line chart over time and horizontal bars.
// Everything is built with createElementNS and attributes (no inline styles: the page's CSP
// forbids them); colours come from CSS classes. Numbers and labels follow the chosen language.
import { t, locale } from './i18n/index.js?v={{v}}';

const NS = 'http://www.w3.org/2000/svg';

function el(tag, attrs, text) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

function niceMax(v) {
  if (v <= 4) return 4;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

// points: [{ts, ...}], series: [{key, label, cls}], fmt: ts -> label
export function line(points, series, fmt) {
  const W = 640, H = 220, L = 36, R = 8, T = 10, B = 26;
  const svg = el('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img' });
  const max = niceMax(Math.max(0, ...points.flatMap(p => series.map(s => p[s.key]))));
  const n = Math.max(points.length - 1, 1);
  const x = i => L + (i * (W - L - R)) / n;
  const y = v => T + (H - T - B) * (1 - v / max);
  for (let g = 0; g <= 4; g++) {
    const v = (max * g) / 4;
    svg.append(el('line', { x1: L, x2: W - R, y1: y(v), y2: y(v), class: 'grid' }));
    svg.append(el('text', { x: L - 4, y: y(v) + 4, class: 'axis', 'text-anchor': 'end' }, fmtNum(v)));
  }
  const step = Math.max(1, Math.ceil(points.length / 6));
  points.forEach((p, i) => {
    if (i % step === 0) svg.append(el('text', { x: x(i), y: H - 8, class: 'axis', 'text-anchor': 'middle' }, fmt(p.ts)));
  });
  for (const s of series) {
    const d = points.map((p, i) => `${i ? 'L' : 'M'}${x(i).toFixed(1)},${y(p[s.key]).toFixed(1)}`).join('');
    svg.append(el('path', { d, class: `series ${s.cls}` }));
    points.forEach((p, i) => {
      if (p[s.key] > 0) {
        const c = el('circle', { cx: x(i), cy: y(p[s.key]), r: 2.5, class: `dot ${s.cls}` });
        c.append(el('title', {}, t('chart.point', { when: fmt(p.ts), value: p[s.key], label: s.label })));
        svg.append(c);
      }
    });
  }
  svg.setAttribute('aria-label', t('chart.overTime', { series: series.map(s => s.label).join(t('chart.and')) }));
  return svg;
}

// items: [{label, value, cls?, note?}]
export function bars(items, unit) {
  const rowH = 26, W = 640, labelW = 150, H = Math.max(items.length, 1) * rowH + 4;
  const svg = el('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart bars', role: 'img' });
  const max = Math.max(1, ...items.map(i => i.value));
  items.forEach((it, i) => {
    const yy = i * rowH + 4;
    svg.append(el('text', { x: labelW - 6, y: yy + 15, class: 'axis', 'text-anchor': 'end' }, it.label));
    const w = ((W - labelW - 70) * it.value) / max;
    const r = el('rect', { x: labelW, y: yy + 3, width: Math.max(w, 1), height: rowH - 10, rx: 3, class: `bar ${it.cls || ''}` });
    r.append(el('title', {}, t('chart.bar', { label: it.label, value: `${it.value}${unit || ''}` }) + (it.note ? ' · ' + it.note : '')));
    svg.append(r);
    svg.append(el('text', { x: labelW + w + 6, y: yy + 15, class: 'value' }, fmtNum(it.value) + (unit || '')));
  });
  svg.setAttribute('aria-label', t('chart.bars'));
  return svg;
}

// Short forms from 10 000 up, in the locale's own units (12.3K, 1.2万).
export function fmtNum(v) {
  const opts = v >= 1e4 ? { notation: 'compact', maximumFractionDigits: 1 } : { maximumFractionDigits: 1 };
  return new Intl.NumberFormat(locale(), opts).format(v);
}
