// The dashboard shell: API calls, a tiny DOM builder, the hash router, the login and setup
// screens, toasts, confirmations and the theme. Pages live in pages.js. No framework, no
// build step; every piece of user or server text is set with textContent, never parsed as HTML.
'use strict';

const App = (() => {
  const main = document.getElementById('main');
  let timers = [];

  // h('div', {class: 'x', onclick: f}, 'text', child, [children]) -> Element
  function h(tag, attrs, ...kids) {
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

  async function api(method, path, body) {
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
      if (res.status === 401 && err.code === 'login_required') {
        boot();
      }
      throw err;
    }
    return data;
  }

  function toast(message, kind) {
    const t = document.getElementById('toast');
    const item = h('div', { class: `toast ${kind || ''}` }, message);
    t.append(item);
    setTimeout(() => item.remove(), kind === 'error' ? 6000 : 2500);
  }

  // Runs an async action, showing its error as a toast; returns its result or undefined.
  async function attempt(fn) {
    try { return await fn(); } catch (e) { toast(e.message, 'error'); return undefined; }
  }

  // A modal confirmation (or a prompt when `input` names an input type). Resolves to
  // false/null when cancelled.
  function confirmBox(text, okLabel, input) {
    return new Promise(resolve => {
      const d = document.getElementById('dialog');
      const field = input ? h('input', { type: input, autocomplete: input === 'password' ? 'current-password' : 'off', required: true, 'aria-label': text }) : null;
      const done = v => { d.close(); resolve(v); };
      const form = h('form', { method: 'dialog', onsubmit: e => { e.preventDefault(); done(field ? field.value : true); } },
        h('p', {}, text),
        field,
        h('div', { class: 'row end' },
          h('button', { type: 'button', class: 'ghost', onclick: () => done(field ? null : false) }, 'Cancel'),
          h('button', { type: 'submit', class: okLabel === 'Remove' || okLabel === 'Rotate' ? 'danger' : 'primary' }, okLabel || 'OK')));
      d.replaceChildren(form);
      d.onclose = () => resolve(field ? null : false);
      d.showModal();
      (field || form.querySelector('button[type=submit]')).focus();
    });
  }

  function every(ms, fn) {
    timers.push(setInterval(() => { if (!document.hidden) fn(); }, ms));
  }

  function clearTimers() {
    timers.forEach(clearInterval);
    timers = [];
  }

  const localTime = ts => new Date(ts).toLocaleString([], { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
  const hhmm = iso => iso ? new Date(iso).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) : 'never';

  // ----- screens before the app: setup and login ----------------------------------------

  function setupScreen() {
    const code = h('input', { id: 'setup-code', autocomplete: 'one-time-code', required: true, placeholder: 'XXXX-XXXX-XXXX' });
    const pw = h('input', { id: 'setup-password', type: 'password', autocomplete: 'new-password', required: true, minlength: 8 });
    const pw2 = h('input', { id: 'setup-password2', type: 'password', autocomplete: 'new-password', required: true, minlength: 8 });
    const err = h('p', { class: 'error', role: 'alert' });
    const submit = async e => {
      e.preventDefault();
      err.textContent = '';
      if (pw.value !== pw2.value) { err.textContent = 'The passwords differ.'; return; }
      try {
        await api('POST', '/api/setup', { code: code.value, password: pw.value });
        boot();
      } catch (x) { err.textContent = x.message; }
    };
    return h('form', { class: 'card narrow', onsubmit: submit },
      h('h1', {}, 'Set up the dashboard'),
      h('p', { class: 'muted' }, 'The server printed a one-time setup code when it started (',
        h('code', {}, 'journalctl -u freellmapi'), '). Enter it and choose the dashboard password.'),
      h('label', { for: 'setup-code' }, 'Setup code'), code,
      h('label', { for: 'setup-password' }, 'Password (at least 8 characters)'), pw,
      h('label', { for: 'setup-password2' }, 'Password again'), pw2,
      err,
      h('button', { type: 'submit', class: 'primary' }, 'Set password'));
  }

  function loginScreen() {
    const pw = h('input', { id: 'login-password', type: 'password', autocomplete: 'current-password', required: true });
    const err = h('p', { class: 'error', role: 'alert' });
    const submit = async e => {
      e.preventDefault();
      err.textContent = '';
      try {
        await api('POST', '/api/login', { password: pw.value });
        boot();
      } catch (x) { err.textContent = x.message; pw.select(); }
    };
    return h('form', { class: 'card narrow', onsubmit: submit },
      h('h1', {}, 'Log in'),
      h('label', { for: 'login-password' }, 'Dashboard password'), pw,
      err,
      h('button', { type: 'submit', class: 'primary' }, 'Log in'),
      h('p', { class: 'muted small' }, 'Forgot it? On the server run ',
        h('code', {}, 'sudo -u freellmapi freellmapi admin-password --data-dir /var/lib/freellmapi'), '.'));
  }

  // ----- routing ------------------------------------------------------------------------

  let authed = false;

  function render() {
    clearTimers();
    const name = (location.hash.replace(/^#\/?/, '') || 'keys').split('?')[0];
    const page = Pages[name] || Pages.keys;
    document.querySelectorAll('#nav a').forEach(a => {
      if (a.dataset.page === name) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    });
    const root = h('div', { class: 'page', id: `page-${name}` });
    main.replaceChildren(root);
    page(root);
  }

  async function boot() {
    clearTimers();
    let state;
    try { state = await api('GET', '/api/session'); } catch (e) {
      main.replaceChildren(h('p', { class: 'error' }, `The server did not answer: ${e.message}`));
      return;
    }
    authed = state.authenticated;
    document.getElementById('nav').hidden = !authed;
    document.getElementById('logout').hidden = !authed;
    document.getElementById('version').textContent = `v${state.version}`;
    if (authed) render();
    else main.replaceChildren(state.setupRequired ? setupScreen() : loginScreen());
    const first = main.querySelector('input');
    if (first && !authed) first.focus();
  }

  // ----- theme --------------------------------------------------------------------------

  function applyTheme(t) {
    document.documentElement.dataset.theme = t;
    const b = document.getElementById('theme');
    b.textContent = t === 'dark' ? 'Light' : 'Dark';
    b.setAttribute('aria-label', `Switch to ${t === 'dark' ? 'light' : 'dark'} theme`);
  }

  applyTheme(localStorage.getItem('theme') || 'dark');
  document.getElementById('theme').addEventListener('click', () => {
    const t = document.documentElement.dataset.theme === 'dark' ? 'light' : 'dark';
    localStorage.setItem('theme', t);
    applyTheme(t);
  });
  document.getElementById('logout').addEventListener('click', async () => {
    await attempt(() => api('POST', '/api/logout'));
    boot();
  });
  window.addEventListener('hashchange', () => { if (authed) render(); });
  document.addEventListener('DOMContentLoaded', boot);

  return { h, api, toast, attempt, confirmBox, every, localTime, hhmm, render };
})();
