// The Keys page: the client API key and named client keys, provider keys (add, check,
// enable, reveal, remove), key health, and backups.
import { h, api, toast, attempt, confirmBox, every, localTime, hhmm, card } from '../ui.js?v={{v}}';

const STATUS_TEXT = { healthy: 'healthy', rate_limited: 'rate limited', invalid: 'invalid', error: 'error', unknown: 'unchecked' };

export function keys(root) {
  const tokenBox = h('div');
  const clientBox = h('div', { id: 'client-keys' });
  const addBox = h('div');
  const list = h('div', { id: 'key-list' });
  const checkAll = h('button', { type: 'button', id: 'check-all', onclick: async () => {
    const r = await attempt(() => api('POST', '/api/keys/check-all'));
    if (r) toast(r.started ? 'Checking every key in the background…' : 'A check is already running.');
    setTimeout(refresh, 3000);
  } }, 'Check all');
  root.append(
    card('Client API key', tokenBox),
    card('Named client keys', clientBox),
    card('Backup', renderBackup()),
    card('Add a provider key', addBox),
    h('section', { class: 'card' }, h('div', { class: 'row spread' }, h('h2', {}, 'Provider keys'), checkAll), list));

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
      h('button', { type: 'button', class: 'ghost', onclick: e => { shown = !shown; show(); e.target.textContent = shown ? 'Hide' : 'Show'; } }, 'Show'),
      h('button', { type: 'button', class: 'ghost', onclick: async e => {
        try { await navigator.clipboard.writeText(token); e.target.textContent = 'Copied'; } catch (_) { toast('Copy failed: select the key and copy it by hand', 'error'); }
        setTimeout(() => { e.target.textContent = 'Copy'; }, 1500);
      } }, 'Copy'),
      h('button', { type: 'button', class: 'danger ghost', onclick: async () => {
        if (!await confirmBox('Rotate the client API key? Every client using the current key stops working at once.', 'Rotate')) return;
        const r = await attempt(() => api('POST', '/api/settings/token/rotate'));
        if (r) { token = r.token; shown = true; show(); toast('New key in effect. Update your clients.'); }
      } }, 'Rotate')),
    h('p', { class: 'muted' }, 'Base URL for OpenAI clients: ', h('code', {}, base),
      ' — model ', h('code', {}, 'auto'), ' routes through the fallback chain.'));
}

// One key per device or app, each revocable alone; the key is shown once, when made.
async function renderClientKeys(box) {
  const keys = await attempt(() => api('GET', '/api/client-keys'));
  if (!keys) return;
  const label = h('input', { id: 'client-key-label', autocomplete: 'off', maxlength: 64, required: true, placeholder: 'e.g. laptop, Home Assistant' });
  const made = h('div', { id: 'client-key-made' });
  const add = async e => {
    e.preventDefault();
    const r = await attempt(() => api('POST', '/api/client-keys', { label: label.value }));
    if (!r) return;
    await renderClientKeys(box);
    box.querySelector('#client-key-made').replaceChildren(h('div', { class: 'notice' },
      `Key for ${r.label} — shown only now, copy it: `, h('code', { class: 'token', id: 'client-key-new' }, r.key)));
  };
  const rows = keys.map(k => h('li', { class: 'key', 'data-client-id': k.id },
    h('div', { class: 'key-main' },
      h('div', {}, h('code', {}, k.masked), ' ', h('strong', {}, k.label)),
      h('div', { class: 'muted small' }, `made ${localTime(k.createdMs)} · last used ${k.lastUsedMs ? localTime(k.lastUsedMs) : 'never'}`)),
    h('div', { class: 'key-actions' }, h('button', { type: 'button', class: 'danger ghost', onclick: async () => {
      if (!await confirmBox(`Revoke the key for ${k.label}? Its next request is refused.`, 'Revoke')) return;
      if (await attempt(() => api('DELETE', `/api/client-keys/${k.id}`))) { toast(`Revoked the key for ${k.label}`); renderClientKeys(box); }
    } }, 'Revoke'))));
  box.replaceChildren(
    h('p', { class: 'muted' }, 'Keys for one device or app each, used like the key above on every API; Analytics shows who used what.'),
    keys.length ? h('ul', { class: 'keys', id: 'client-key-list' }, rows) : h('p', { class: 'muted' }, 'None yet.'),
    made,
    h('form', { class: 'row wrap', onsubmit: add, id: 'client-key-form' },
      h('label', { for: 'client-key-label' }, 'Label'), label, h('button', { type: 'submit', class: 'primary' }, 'Make a key')));
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
      let msg = `backup failed (${res.status})`;
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
    toast(`Backup downloaded (${(blob.size / 1048576).toFixed(1)} MiB). Keep the passphrase apart from the file.`);
  };
  return h('form', { class: 'grid-form', id: 'backup-form', onsubmit: submit },
    h('p', { class: 'muted' }, 'Keys, client keys, settings and the master key in one file sealed with a passphrase; restore it with ',
      h('code', {}, 'freellmapi restore FILE --data-dir NEW_DIR'), '.'),
    h('div', { class: 'field' }, h('label', { for: 'backup-password' }, 'Dashboard password'), password),
    h('div', { class: 'field' }, h('label', { for: 'backup-passphrase' }, 'Backup passphrase (12+ characters)'), passphrase),
    h('button', { type: 'submit', class: 'primary' }, 'Download backup'));
}

function renderAdd(box, platforms, refresh) {
  const keyed = platforms.filter(p => !p.keyless);
  const platform = h('select', { id: 'add-platform', required: true },
    keyed.map(p => h('option', { value: p.id }, p.name)));
  const account = h('input', { id: 'add-account', autocomplete: 'off', placeholder: '32-hex account id' });
  const accountRow = h('div', { class: 'field' }, h('label', { for: 'add-account' }, 'Cloudflare account ID'), account);
  const key = h('input', { id: 'add-key', type: 'password', autocomplete: 'off', required: true });
  const label = h('input', { id: 'add-label', autocomplete: 'off', maxlength: 100, placeholder: 'optional' });
  const unlimited = h('input', { id: 'add-unlimited', type: 'checkbox' });
  const proxy = h('input', { id: 'add-proxy', autocomplete: 'off', placeholder: 'optional: socks5h://user:pass@host:1080' });
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
      toast(note ? `Added ${r.maskedKey}, but ${note}` : `Added ${r.maskedKey} for ${r.platformName}`, note ? 'error' : undefined);
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
    toast(`Imported ${r.added} keys, skipped ${r.skipped}${r.notes.length ? ': ' + r.notes.join('; ') : ''}`, r.skipped ? 'error' : undefined);
    refresh();
  };
  const exportPassword = h('input', { id: 'export-password', type: 'password', autocomplete: 'current-password', required: true });
  const exportEnv = async e => {
    e.preventDefault();
    const res = await fetch('/api/keys/export', { method: 'POST', credentials: 'same-origin', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ password: exportPassword.value }) });
    if (!res.ok) {
      let msg = `export failed (${res.status})`;
      try { msg = (await res.json()).error.message; } catch (_) { /* not JSON */ }
      toast(msg, 'error');
      return;
    }
    const a = h('a', { href: URL.createObjectURL(await res.blob()), download: 'freellmapi-keys.env' });
    document.body.append(a);
    a.click();
    setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
    exportPassword.value = '';
    toast('Keys exported as .env lines (plaintext: keep the file private).');
  };
  const envTools = h('details', { class: 'env-tools' }, h('summary', {}, '.env import / export'),
    h('form', { id: 'import-env-form', onsubmit: importEnv },
      h('label', { for: 'import-env' }, 'Paste GROQ_API_KEY=… lines (the names of the provider docs)'), envText,
      h('button', { type: 'submit' }, 'Import')),
    h('form', { class: 'row wrap', id: 'export-env-form', onsubmit: exportEnv },
      h('label', { for: 'export-password' }, 'Dashboard password'), exportPassword,
      h('button', { type: 'submit' }, 'Export .env')));
  box.replaceChildren(envTools, h('form', { class: 'grid-form', onsubmit: submit, id: 'add-key-form' },
    h('div', { class: 'field' }, h('label', { for: 'add-platform' }, 'Platform'), platform),
    accountRow,
    h('div', { class: 'field' }, h('label', { for: 'add-key' }, 'API key'), key),
    h('div', { class: 'field' }, h('label', { for: 'add-label' }, 'Label'), label),
    h('div', { class: 'field' }, h('label', { for: 'add-proxy' }, 'Proxy for this key'), proxy),
    h('label', { class: 'check' }, unlimited, ' Paid key (ignore free-tier limits)'),
    h('button', { type: 'submit', class: 'primary' }, 'Add key')));
}

function renderKeys(list, health, refresh) {
  // The proxies set in the server's environment; a key's own is on its row and wins.
  const proxies = (health.proxies || []).length ? h('p', { class: 'muted small', id: 'configured-proxies' }, 'Outbound proxies: ',
    health.proxies.map((p, i) => [i ? '; ' : '', p.platform ? `${p.platform} through ` : 'every platform through ', h('code', {}, p.url)])) : null;
  if (!health.keys.length) {
    list.replaceChildren(h('p', { class: 'muted' }, 'No provider keys yet. Add one above; the free tiers need only a sign-up.'), proxies || '');
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
  const label = h('input', { class: 'label-edit', value: k.label, placeholder: 'label', 'aria-label': `Label of key ${k.maskedKey}`, maxlength: 100,
    onchange: e => patch({ label: e.target.value }) });
  const detail = [k.lastDetail, k.disabledReason].filter(Boolean).join(' · ');
  return h('li', { class: 'key', 'data-id': k.id },
    h('span', { class: `status-dot ${k.status}`, title: STATUS_TEXT[k.status] || k.status }),
    h('div', { class: 'key-main' },
      h('div', {}, h('code', {}, k.maskedKey), ' ', label, k.unlimited ? h('span', { class: 'badge' }, 'paid') : null),
      h('div', { class: 'muted small' }, STATUS_TEXT[k.status] || k.status,
        ` · checked ${hhmm(k.lastCheckedAt)}`, detail ? ` · ${detail}` : '',
        k.rateLimitedUntil ? ` · until ${hhmm(k.rateLimitedUntil)}` : '',
        k.proxy ? [' · through ', h('code', { class: 'key-proxy' }, k.proxy)] : ''),
      k.warning ? h('div', { class: 'small warn-text' }, `Routes nothing: ${k.warning}`) : null),
    h('div', { class: 'key-actions' },
      h('label', { class: 'switch', title: k.enabled ? 'Enabled' : 'Disabled' },
        h('input', { type: 'checkbox', checked: k.enabled, 'aria-label': `Enable key ${k.maskedKey}`, onchange: e => patch({ enabled: e.target.checked }) }),
        h('span', {})),
      h('button', { type: 'button', class: 'ghost', onclick: async e => {
        e.target.disabled = true;
        const r = await attempt(() => api('POST', `/api/keys/${k.id}/check`));
        if (r) toast(`${r.maskedKey}: ${STATUS_TEXT[r.status]}${r.lastDetail ? ' (' + r.lastDetail + ')' : ''}`);
        refresh();
      } }, 'Check'),
      h('button', { type: 'button', class: 'ghost', onclick: async () => {
        const url = await confirmBox(`Proxy for ${k.maskedKey}'s calls (http://, socks5:// or socks5h://, optional user:pass@). Type none to remove it.`, 'Save', 'text');
        if (!url) return;
        const none = url.trim().toLowerCase() === 'none';
        if (await attempt(() => api('PATCH', `/api/keys/${k.id}`, { proxy: none ? null : url.trim() }))) {
          toast(none ? `${k.maskedKey} has no proxy of its own now` : `${k.maskedKey} now goes through its proxy`);
          refresh();
        }
      } }, 'Proxy'),
      h('button', { type: 'button', class: 'ghost', onclick: async () => {
        const pw = await confirmBox(`Enter the dashboard password to reveal ${k.maskedKey}.`, 'Reveal', 'password');
        if (!pw) return;
        const r = await attempt(() => api('POST', `/api/keys/${k.id}/reveal`, { password: pw }));
        if (r) await confirmBox(`Key ${k.id}: ${r.key}`, 'Done');
      } }, 'Reveal'),
      h('button', { type: 'button', class: 'ghost danger', onclick: async () => {
        if (!await confirmBox(`Remove key ${k.maskedKey} (${k.platformName})? This cannot be undone.`, 'Remove')) return;
        if (await attempt(() => api('DELETE', `/api/keys/${k.id}`))) { toast('Key removed'); refresh(); }
      } }, 'Remove')));
}
