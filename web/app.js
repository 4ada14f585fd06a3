// The dashboard shell: the login and setup screens, the hash router over the five pages, the
// theme and the language switch. Pages live in pages/, shared building blocks in ui.js, the
// strings in i18n/. Native ES modules, no build step.
import { h, api, attempt, clearTimers, onLoginRequired } from './ui.js?v={{v}}';
import { t, tx, LOCALES, locale, preferred, useLocale, remember } from './i18n/index.js?v={{v}}';
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
    if (pw.value !== pw2.value) { err.textContent = t('setup.differ'); return; }
    try {
      await api('POST', '/api/setup', { code: code.value, password: pw.value });
      boot();
    } catch (x) { err.textContent = x.message; }
  };
  return h('form', { class: 'card narrow', onsubmit: submit },
    h('h1', {}, t('setup.title')),
    h('p', { class: 'muted' }, tx('setup.intro', { command: h('code', {}, 'journalctl -u freellmapi') })),
    h('label', { for: 'setup-code' }, t('setup.code')), code,
    h('label', { for: 'setup-password' }, t('setup.password')), pw,
    h('label', { for: 'setup-password2' }, t('setup.password2')), pw2,
    err,
    h('button', { type: 'submit', class: 'primary' }, t('setup.submit')));
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
    h('h1', {}, t('login.title')),
    h('label', { for: 'login-password' }, t('login.password')), pw,
    err,
    h('button', { type: 'submit', class: 'primary' }, t('login.submit')),
    h('p', { class: 'muted small' }, tx('login.forgot', {
      command: h('code', {}, 'sudo -u freellmapi freellmapi admin-password --data-dir /var/lib/freellmapi') })));
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
    main.replaceChildren(h('p', { class: 'error' }, t('app.noAnswer', { error: e.message })));
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

// ----- theme and language -------------------------------------------------------------

function applyTheme(theme) {
  document.documentElement.dataset.theme = theme;
  const b = document.getElementById('theme');
  b.textContent = t(theme === 'dark' ? 'theme.light' : 'theme.dark');
  b.setAttribute('aria-label', t(theme === 'dark' ? 'theme.toLight' : 'theme.toDark'));
}

// The header's own words; the switch names the other language in that language, so a reader
// of either can find it.
function applyLocale() {
  document.querySelectorAll('[data-i18n]').forEach(e => { e.textContent = t(e.dataset.i18n); });
  const other = Object.keys(LOCALES).find(l => l !== locale());
  const b = document.getElementById('locale');
  b.textContent = LOCALES[other];
  b.lang = other;
  applyTheme(document.documentElement.dataset.theme);
}

await useLocale(preferred());
document.documentElement.dataset.theme = localStorage.getItem('theme') || 'dark';
applyLocale();
document.getElementById('theme').addEventListener('click', () => {
  const theme = document.documentElement.dataset.theme === 'dark' ? 'light' : 'dark';
  localStorage.setItem('theme', theme);
  applyTheme(theme);
});
// The page is drawn again in the new language: whatever it shows is fetched again, unsaved
// edits (a chain being reordered) are dropped, as on leaving the page.
document.getElementById('locale').addEventListener('click', async () => {
  const next = Object.keys(LOCALES).find(l => l !== locale());
  await useLocale(next);
  remember(locale());
  applyLocale();
  if (authed) render(); else boot();
});
document.getElementById('logout').addEventListener('click', async () => {
  await attempt(() => api('POST', '/api/logout'));
  boot();
});
window.addEventListener('hashchange', () => { if (authed) render(); });
onLoginRequired(boot);
// A module script runs once the document is parsed; after the await above, DOMContentLoaded
// may already have fired.
boot();
