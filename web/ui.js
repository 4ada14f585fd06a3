// What every page builds with: a tiny DOM builder, API calls, toasts, confirmations, refresh
// timers and formatting (in the chosen language). No framework; every piece of user or server
// text is set with textContent, never parsed as HTML.
import { fmtNum } from './charts.js?v={{v}}';
import { t, locale } from './i18n/index.js?v={{v}}';

let timers = [];
let loginRequired = () => {};

/** What to do when the server says the session is gone (the shell shows the login). */
export function onLoginRequired(fn) {
  loginRequired = fn;
}

// h('div', {class: 'x', onclick: f}, 'text', child, [children]) -> Element
export function h(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'value') e.value = v;
    else if (k === 'checked') e.checked = !!v;
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const k of kids.flat(Infinity)) {
    if (k === undefined || k === null || k === false) continue;
    e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  }
  return e;
}

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error && body.error.message) || `HTTP ${status}`);
    this.status = status;
    this.code = body && body.error && body.error.code;
  }
}

export async function api(method, path, body) {
  const opts = { method, headers: {}, credentials: 'same-origin' };
  if (body !== undefined) {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  const res = await fetch(path, opts);
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
  if (!res.ok) {
    const err = new ApiError(res.status, data);
    if (res.status === 401 && err.code === 'login_required') loginRequired();
    throw err;
  }
  return data;
}

export function toast(message, kind) {
  const box = document.getElementById('toast');
  const item = h('div', { class: `toast ${kind || ''}` }, message);
  box.append(item);
  setTimeout(() => item.remove(), kind === 'error' ? 6000 : 2500);
}

// Runs an async action, showing its error as a toast; returns its result or undefined.
export async function attempt(fn) {
  try { return await fn(); } catch (e) { toast(e.message, 'error'); return undefined; }
}

// A modal confirmation (or a prompt when `input` names an input type); `danger` marks an
// action that cannot be taken back. Resolves to false/null when cancelled.
export function confirmBox(text, { ok, input, danger } = {}) {
  return new Promise(resolve => {
    const d = document.getElementById('dialog');
    const field = input ? h('input', { type: input, autocomplete: input === 'password' ? 'current-password' : 'off', required: true, 'aria-label': text }) : null;
    const done = v => { d.close(); resolve(v); };
    const form = h('form', { method: 'dialog', onsubmit: e => { e.preventDefault(); done(field ? field.value : true); } },
      h('p', {}, text),
      field,
      h('div', { class: 'row end' },
        h('button', { type: 'button', class: 'ghost', onclick: () => done(field ? null : false) }, t('common.cancel')),
        h('button', { type: 'submit', class: danger ? 'danger' : 'primary' }, ok || t('common.ok'))));
    d.replaceChildren(form);
    d.onclose = () => resolve(field ? null : false);
    d.showModal();
    (field || form.querySelector('button[type=submit]')).focus();
  });
}

export function every(ms, fn) {
  timers.push(setInterval(() => { if (!document.hidden) fn(); }, ms));
}

export function clearTimers() {
  timers.forEach(clearInterval);
  timers = [];
}

export const localTime = ts => new Date(ts).toLocaleString(locale(), { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
export const hhmm = iso => iso ? new Date(iso).toLocaleTimeString(locale(), { hour: '2-digit', minute: '2-digit' }) : t('common.never');

export const fmt = n => (n === null || n === undefined) ? '—' : fmtNum(n);
export const card = (title, ...body) => h('section', { class: 'card' }, title ? h('h2', {}, title) : null, ...body);
