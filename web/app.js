// The dashboard shell: the login and setup screens, the hash router over the five pages, and
// the theme. Pages live in pages/, shared building blocks in ui.js. Native ES modules, no
// build step.
import { h, api, attempt, clearTimers, onLoginRequired } from './ui.js?v={{v}}';
import { keys } from './pages/keys.js?v={{v}}';
import { chain } from './pages/chain.js?v={{v}}';
import { models } from './pages/models.js?v={{v}}';
import { analytics } from './pages/analytics.js?v={{v}}';
import { playground } from './pages/playground.js?v={{v}}';

const Pages = { keys, chain, models, analytics, playground };
const main = document.getElementById('main');

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
onLoginRequired(boot);
document.addEventListener('DOMContentLoaded', boot);
