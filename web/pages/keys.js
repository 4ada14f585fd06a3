// The Keys page: the client API key and named client keys, provider keys (add, check,
// enable, reveal, remove), key health, and backups.
import { h, api, toast, attempt, confirmBox, every, localTime, hhmm, card } from '../ui.js?v={{v}}';
import { t, tx } from '../i18n/index.js?v={{v}}';

const STATUSES = ['healthy', 'rate_limited', 'invalid', 'error', 'unknown'];
const statusText = s => (STATUSES.includes(s) ? t(`keys.status.${s}`) : s);

export function keys(root) {
  const tokenBox = h('div');
  const clientBox = h('div', { id: 'client-keys' });
  const addBox = h('div');
  const list = h('div', { id: 'key-list' });
  const checkAll = h('button', { type: 'button', id: 'check-all', onclick: async () => {
    const r = await attempt(() => api('POST', '/api/keys/check-all'));
    if (r) toast(t(r.started ? 'keys.checkAllStarted' : 'keys.checkAllRunning'));
    setTimeout(refresh, 3000);
  } }, t('keys.checkAll'));
  root.append(
    card(t('keys.clientKey'), tokenBox),
    card(t('keys.namedClientKeys'), clientBox),
    card(t('keys.backup'), renderBackup()),
    card(t('keys.addProviderKey'), addBox),
    h('section', { class: 'card' }, h('div', { class: 'row spread' }, h('h2', {}, t('keys.providerKeys')), checkAll), list));

  renderToken(tokenBox);
  renderClientKeys(clientBox);
  let platforms = [];
  api('GET', '/api/models').then(m => {
    platforms = m.platforms;
    renderAdd(addBox, platforms, refresh);
  }).catch(e => toast(e.message, 'error'));

  async function refresh(timed) {
    // A timed refresh never re-renders under someone typing a label.
    if (timed === true && document.activeElement && document.activeElement.classList.contains('label-edit')) return;
    const health = await attempt(() => api('GET', '/api/health'));
    if (health) renderKeys(list, health, refresh);
  }
  refresh();
  every(15000, () => refresh(true));
}

async function renderToken(box) {
  const data = await attempt(() => api('GET', '/api/settings/token'));
  if (!data) return;
  let shown = false;
  let token = data.token;
  const value = h('code', { id: 'token', class: 'token' });
  const show = () => { value.textContent = shown ? token : token.slice(0, 15) + '•'.repeat(24); };
  show();
  const base = `${location.origin}/v1`;
  box.replaceChildren(
    h('div', { class: 'row wrap' }, value,
      h('button', { type: 'button', class: 'ghost', onclick: e => { shown = !shown; show(); e.target.textContent = t(shown ? 'keys.hide' : 'keys.show'); } }, t('keys.show')),
      h('button', { type: 'button', class: 'ghost', onclick: async e => {
        try { await navigator.clipboard.writeText(token); e.target.textContent = t('keys.copied'); } catch (_) { toast(t('keys.copyFailed'), 'error'); }
        setTimeout(() => { e.target.textContent = t('keys.copy'); }, 1500);
      } }, t('keys.copy')),
      h('button', { type: 'button', class: 'danger ghost', onclick: async () => {
        if (!await confirmBox(t('keys.rotateConfirm'), { ok: t('keys.rotate'), danger: true })) return;
        const r = await attempt(() => api('POST', '/api/settings/token/rotate'));
        if (r) { token = r.token; shown = true; show(); toast(t('keys.rotated')); }
      } }, t('keys.rotate'))),
    h('p', { class: 'muted' }, tx('keys.baseUrl', { url: h('code', {}, base), auto: h('code', {}, 'auto') })));
}

// One key per device or app, each revocable alone; the key is shown once, when made.
async function renderClientKeys(box) {
  const keys = await attempt(() => api('GET', '/api/client-keys'));
  if (!keys) return;
  const label = h('input', { id: 'client-key-label', autocomplete: 'off', maxlength: 64, required: true, placeholder: t('keys.client.placeholder') });
  const made = h('div', { id: 'client-key-made' });
  const add = async e => {
    e.preventDefault();
    const r = await attempt(() => api('POST', '/api/client-keys', { label: label.value }));
    if (!r) return;
    await renderClientKeys(box);
    box.querySelector('#client-key-made').replaceChildren(h('div', { class: 'notice' },
      t('keys.client.made', { label: r.label }), h('code', { class: 'token', id: 'client-key-new' }, r.key)));
  };
  const rows = keys.map(k => h('li', { class: 'key', 'data-client-id': k.id },
    h('div', { class: 'key-main' },
      h('div', {}, h('code', {}, k.masked), ' ', h('strong', {}, k.label)),
      h('div', { class: 'muted small' }, t('keys.client.dates', {
        made: localTime(k.createdMs), used: k.lastUsedMs ? localTime(k.lastUsedMs) : t('common.never') }))),
    h('div', { class: 'key-actions' }, h('button', { type: 'button', class: 'danger ghost', onclick: async () => {
      if (!await confirmBox(t('keys.client.revokeConfirm', { label: k.label }), { ok: t('keys.client.revoke') })) return;
      if (await attempt(() => api('DELETE', `/api/client-keys/${k.id}`))) { toast(t('keys.client.revoked', { label: k.label })); renderClientKeys(box); }
    } }, t('keys.client.revoke')))));
  box.replaceChildren(
    h('p', { class: 'muted' }, t('keys.client.intro')),
    keys.length ? h('ul', { class: 'keys', id: 'client-key-list' }, rows) : h('p', { class: 'muted' }, t('keys.client.none')),
    made,
    h('form', { class: 'row wrap', onsubmit: add, id: 'client-key-form' },
      h('label', { for: 'client-key-label' }, t('keys.client.label')), label, h('button', { type: 'submit', class: 'primary' }, t('keys.client.make'))));
}

// The same sealed file as `freellmapi backup`: the store and the master key.
function renderBackup() {
  const password = h('input', { id: 'backup-password', type: 'password', autocomplete: 'current-password', required: true });
  const passphrase = h('input', { id: 'backup-passphrase', type: 'password', autocomplete: 'new-password', minlength: 12, required: true });
  const submit = async e => {
    e.preventDefault();
    const res = await fetch('/api/backup', { method: 'POST', credentials: 'same-origin', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ password: password.value, passphrase: passphrase.value }) });
    if (!res.ok) {
      let msg = t('keys.backup.failed', { status: res.status });
      try { msg = (await res.json()).error.message; } catch (_) { /* not JSON */ }
      toast(msg, 'error');
      return;
    }
    const blob = await res.blob();
    const name = (res.headers.get('Content-Disposition') || '').match(/filename="([^"]+)"/);
    const a = h('a', { href: URL.createObjectURL(blob), download: name ? name[1] : 'freellmapi.bak', id: 'backup-link' });
    document.body.append(a);
    a.click();
    setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
    password.value = ''; passphrase.value = '';
    toast(t('keys.backup.done', { size: (blob.size / 1048576).toFixed(1) }));
  };
  return h('form', { class: 'grid-form', id: 'backup-form', onsubmit: submit },
    h('p', { class: 'muted' }, tx('keys.backup.intro', { command: h('code', {}, 'freellmapi restore FILE --data-dir NEW_DIR') })),
    h('div', { class: 'field' }, h('label', { for: 'backup-password' }, t('common.password')), password),
    h('div', { class: 'field' }, h('label', { for: 'backup-passphrase' }, t('keys.backup.passphrase')), passphrase),
    h('button', { type: 'submit', class: 'primary' }, t('keys.backup.download')));
}

function renderAdd(box, platforms, refresh) {
  const keyed = platforms.filter(p => !p.keyless);
  const platform = h('select', { id: 'add-platform', required: true },
    keyed.map(p => h('option', { value: p.id }, p.name)));
  const account = h('input', { id: 'add-account', autocomplete: 'off', placeholder: t('keys.add.accountPlaceholder') });
  const accountRow = h('div', { class: 'field' }, h('label', { for: 'add-account' }, t('keys.add.account')), account);
  const key = h('input', { id: 'add-key', type: 'password', autocomplete: 'off', required: true });
  const label = h('input', { id: 'add-label', autocomplete: 'off', maxlength: 100, placeholder: t('keys.add.optional') });
  const unlimited = h('input', { id: 'add-unlimited', type: 'checkbox' });
  const proxy = h('input', { id: 'add-proxy', autocomplete: 'off', placeholder: t('keys.add.proxyPlaceholder') });
  const sync = () => {
    const p = keyed.find(x => x.id === platform.value);
    accountRow.hidden = !(p && p.accountToken);
    account.required = !accountRow.hidden;
  };
  platform.addEventListener('change', sync);
  sync();
  const submit = async e => {
    e.preventDefault();
    const body = { platform: platform.value, key: key.value, label: label.value, unlimited: unlimited.checked };
    if (!accountRow.hidden) body.accountId = account.value;
    if (proxy.value.trim()) body.proxy = proxy.value.trim();
    const r = await attempt(() => api('POST', '/api/keys', body));
    if (r) {
      const note = r.warning || r.noFreeTier;
      toast(note ? t('keys.add.addedWarning', { key: r.maskedKey, note }) : t('keys.add.added', { key: r.maskedKey, platform: r.platformName }),
        note ? 'error' : undefined);
      key.value = ''; label.value = ''; account.value = ''; proxy.value = ''; unlimited.checked = false;
      refresh();
    }
  };
  const envText = h('textarea', { id: 'import-env', rows: 3, placeholder: 'GROQ_API_KEY=gsk_…\nGEMINI_API_KEY=…' });
  const importEnv = async e => {
    e.preventDefault();
    const r = await attempt(() => api('POST', '/api/keys/import', { text: envText.value }));
    if (!r) return;
    envText.value = '';
    const summary = t('keys.env.imported', { n: r.added, skipped: r.skipped });
    toast(r.notes.length ? t('keys.env.importNotes', { summary, notes: r.notes.join('; ') }) : summary, r.skipped ? 'error' : undefined);
    refresh();
  };
  const exportPassword = h('input', { id: 'export-password', type: 'password', autocomplete: 'current-password', required: true });
  const exportEnv = async e => {
    e.preventDefault();
    const res = await fetch('/api/keys/export', { method: 'POST', credentials: 'same-origin', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ password: exportPassword.value }) });
    if (!res.ok) {
      let msg = t('keys.env.exportFailed', { status: res.status });
      try { msg = (await res.json()).error.message; } catch (_) { /* not JSON */ }
      toast(msg, 'error');
      return;
    }
    const a = h('a', { href: URL.createObjectURL(await res.blob()), download: 'freellmapi-keys.env' });
    document.body.append(a);
    a.click();
    setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
    exportPassword.value = '';
    toast(t('keys.env.exported'));
  };
  const envTools = h('details', { class: 'env-tools' }, h('summary', {}, t('keys.env.tools')),
    h('form', { id: 'import-env-form', onsubmit: importEnv },
      h('label', { for: 'import-env' }, t('keys.env.paste')), envText,
      h('button', { type: 'submit' }, t('keys.env.import'))),
    h('form', { class: 'row wrap', id: 'export-env-form', onsubmit: exportEnv },
      h('label', { for: 'export-password' }, t('common.password')), exportPassword,
      h('button', { type: 'submit' }, t('keys.env.export'))));
  box.replaceChildren(envTools, h('form', { class: 'grid-form', onsubmit: submit, id: 'add-key-form' },
    h('div', { class: 'field' }, h('label', { for: 'add-platform' }, t('common.platform')), platform),
    accountRow,
    h('div', { class: 'field' }, h('label', { for: 'add-key' }, t('keys.add.key')), key),
    h('div', { class: 'field' }, h('label', { for: 'add-label' }, t('keys.add.label')), label),
    h('div', { class: 'field' }, h('label', { for: 'add-proxy' }, t('keys.add.proxy')), proxy),
    h('label', { class: 'check' }, unlimited, ' ', t('keys.add.paid')),
    h('button', { type: 'submit', class: 'primary' }, t('keys.add.submit'))));
}

function renderKeys(list, health, refresh) {
  // The proxies set in the server's environment; a key's own is on its row and wins.
  const proxies = (health.proxies || []).length ? h('p', { class: 'muted small', id: 'configured-proxies' }, t('keys.proxies'),
    health.proxies.map((p, i) => [i ? '; ' : '', p.platform ? tx('keys.proxies.platform', { platform: p.platform, url: h('code', {}, p.url) })
      : tx('keys.proxies.all', { url: h('code', {}, p.url) })])) : null;
  if (!health.keys.length) {
    list.replaceChildren(h('p', { class: 'muted' }, t('keys.none')), proxies || '');
    return;
  }
  const groups = new Map();
  for (const k of health.keys) {
    if (!groups.has(k.platform)) groups.set(k.platform, []);
    groups.get(k.platform).push(k);
  }
  const out = [];
  for (const [, ks] of groups) {
    out.push(h('h3', {}, ks[0].platformName, h('span', { class: 'count' }, ` ${ks.length}`)));
    out.push(h('ul', { class: 'keys' }, ks.map(k => keyRow(k, refresh))));
  }
  if (proxies) out.unshift(proxies);
  list.replaceChildren(...out);
}

function keyRow(k, refresh) {
  const patch = async body => { if (await attempt(() => api('PATCH', `/api/keys/${k.id}`, body))) refresh(); };
  const label = h('input', { class: 'label-edit', value: k.label, placeholder: t('keys.row.labelPlaceholder'), 'aria-label': t('keys.row.labelOf', { key: k.maskedKey }), maxlength: 100,
    onchange: e => patch({ label: e.target.value }) });
  const detail = [k.lastDetail, k.disabledReason].filter(Boolean).join(' · ');
  return h('li', { class: 'key', 'data-id': k.id },
    h('span', { class: `status-dot ${k.status}`, title: statusText(k.status) }),
    h('div', { class: 'key-main' },
      h('div', {}, h('code', {}, k.maskedKey), ' ', label, k.unlimited ? h('span', { class: 'badge' }, t('keys.row.paid')) : null),
      h('div', { class: 'muted small' }, statusText(k.status),
        k.lastCheckedAt ? t('keys.row.checked', { time: hhmm(k.lastCheckedAt) }) : t('keys.row.neverChecked'), detail ? ` · ${detail}` : '',
        k.rateLimitedUntil ? t('keys.row.until', { time: hhmm(k.rateLimitedUntil) }) : '',
        k.proxy ? tx('keys.row.through', { proxy: h('code', { class: 'key-proxy' }, k.proxy) }) : ''),
      k.warning ? h('div', { class: 'small warn-text' }, t('keys.row.routesNothing', { warning: k.warning })) : null),
    h('div', { class: 'key-actions' },
      h('label', { class: 'switch', title: t(k.enabled ? 'common.enabled' : 'common.disabled') },
        h('input', { type: 'checkbox', checked: k.enabled, 'aria-label': t('keys.row.enable', { key: k.maskedKey }), onchange: e => patch({ enabled: e.target.checked }) }),
        h('span', {})),
      h('button', { type: 'button', class: 'ghost', onclick: async e => {
        e.target.disabled = true;
        const r = await attempt(() => api('POST', `/api/keys/${k.id}/check`));
        if (r) {
          const result = t('keys.row.checkResult', { key: r.maskedKey, status: statusText(r.status) });
          toast(r.lastDetail ? t('keys.row.checkDetail', { result, detail: r.lastDetail }) : result);
        }
        refresh();
      } }, t('keys.row.check')),
      h('button', { type: 'button', class: 'ghost', onclick: async () => {
        const url = await confirmBox(t('keys.row.proxyPrompt', { key: k.maskedKey }), { ok: t('common.save'), input: 'text' });
        if (!url) return;
        const none = url.trim().toLowerCase() === 'none';
        if (await attempt(() => api('PATCH', `/api/keys/${k.id}`, { proxy: none ? null : url.trim() }))) {
          toast(t(none ? 'keys.row.proxyRemoved' : 'keys.row.proxySet', { key: k.maskedKey }));
          refresh();
        }
      } }, t('keys.row.proxy')),
      h('button', { type: 'button', class: 'ghost', onclick: async () => {
        const pw = await confirmBox(t('keys.row.revealPrompt', { key: k.maskedKey }), { ok: t('keys.row.reveal'), input: 'password' });
        if (!pw) return;
        const r = await attempt(() => api('POST', `/api/keys/${k.id}/reveal`, { password: pw }));
        if (r) await confirmBox(t('keys.row.revealed', { id: k.id, key: r.key }), { ok: t('keys.row.done') });
      } }, t('keys.row.reveal')),
      h('button', { type: 'button', class: 'ghost danger', onclick: async () => {
        if (!await confirmBox(t('keys.row.removeConfirm', { key: k.maskedKey, platform: k.platformName }), { ok: t('common.remove'), danger: true })) return;
        if (await attempt(() => api('DELETE', `/api/keys/${k.id}`))) { toast(t('keys.row.removed')); refresh(); }
      } }, t('common.remove'))));
}
