// The five pages: Keys, Fallback chain, Models, Analytics and Playground. Each is a function that
// fills its root element and may register refresh timers through App.every.
'use strict';

const Pages = (() => {
  const { h, api, toast, attempt, confirmBox, every, localTime, hhmm } = App;

  const SURFACE_NAME = { chat: 'Chat completions', messages: 'Anthropic Messages', responses: 'Responses', completions: 'Completions', embeddings: 'Embeddings' };
  const STATUS_TEXT = { healthy: 'healthy', rate_limited: 'rate limited', invalid: 'invalid', error: 'error', unknown: 'unchecked' };
  const fmt = n => (n === null || n === undefined) ? '—' : Charts.fmtNum(n);
  const card = (title, ...body) => h('section', { class: 'card' }, title ? h('h2', {}, title) : null, ...body);

  // ----- Keys -----------------------------------------------------------------------------

  function keys(root) {
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

  // ----- Fallback chain -----------------------------------------------------------------

  function chain(root) {
    let entries = [];
    let dirty = false;
    const bar = h('div', { class: 'budget' });
    const listEl = h('ol', { class: 'chain', id: 'chain-list' });
    const hidden = h('details', { class: 'hidden-entries' });
    const save = h('button', { type: 'button', class: 'primary', id: 'chain-save', onclick: () => commit() }, 'Save order');
    const discard = h('button', { type: 'button', class: 'ghost', onclick: () => { dirty = false; load(); } }, 'Discard');
    const draftBar = h('div', { class: 'draft', hidden: true }, h('span', {}, 'Unsaved changes'), discard, save);
    // Ends cooldowns and penalties now (the usage windows stay), after a confirmation.
    async function clearCooldowns(filter, what) {
      if (!await confirmBox(`Clear the cooldowns of ${what}? Requests go to it again at once.`, 'Clear')) return;
      const r = await attempt(() => api('POST', '/api/cooldowns/clear', filter));
      if (r) { toast(`Cleared ${r.cleared} cooling model/key pair${r.cleared === 1 ? '' : 's'}`); load(); }
    }
    const clearAll = h('button', { type: 'button', class: 'ghost', id: 'clear-all-cooldowns', onclick: () => clearCooldowns({}, 'every model and key') }, 'Clear all cooldowns');
    const sorts = ['intelligence', 'speed', 'budget'].map(p => h('button', { type: 'button', class: 'ghost', onclick: async () => {
      if (!await confirmBox(`Replace the chain order with the ${p} preset? Switches stay as they are.`, 'Sort')) return;
      const r = await attempt(() => api('POST', `/api/fallback/sort/${p}`));
      if (r) { dirty = false; show(r); toast(`Sorted by ${p}`); }
    } }, `Sort by ${p}`));
    root.append(
      h('section', { class: 'card' },
        h('div', { class: 'row spread wrap' }, h('h2', {}, 'Fallback chain'), h('div', { class: 'row wrap' }, sorts, clearAll)),
        h('p', { class: 'muted small' }, 'Requests for ', h('code', {}, 'auto'), ' try these from the top. Drag a row by its handle, or focus the handle and use the arrow keys.'),
        bar, draftBar, listEl, hidden));

    const markDirty = () => { dirty = true; draftBar.hidden = false; };

    function show(data) {
      entries = data.entries;
      draftBar.hidden = !dirty;
      renderBudget(bar, data);
      const visible = entries.filter(e => e.keyCount > 0);
      const none = entries.filter(e => e.keyCount === 0);
      listEl.replaceChildren(...visible.map(e => row(e)));
      if (!visible.length) listEl.replaceChildren(h('li', { class: 'muted' }, 'No model has a key yet. ', h('a', { href: '#/keys' }, 'Add a provider key'), '.'));
      hidden.replaceChildren(h('summary', {}, `Hidden: ${none.length} models without keys`),
        h('p', { class: 'muted small' }, none.map(e => e.displayName + ' (' + e.platform + ')').join(', ')));
      hidden.hidden = !none.length;
      renumber();
    }

    function row(e) {
      const handle = h('button', { type: 'button', class: 'handle', 'aria-label': `Move ${e.displayName}`, title: 'Drag, or use the arrow keys' }, '⋮⋮');
      const li = h('li', { class: 'entry' + (e.enabled && e.modelEnabled ? '' : ' off'), 'data-id': e.id },
        handle,
        h('span', { class: 'pos' }),
        h('div', { class: 'entry-main' },
          h('div', {}, h('strong', {}, e.displayName), ' ', h('span', { class: `plat p-${e.platform}` }, e.platformName),
            e.penalty > 0 ? h('span', { class: 'badge warn' }, `−${e.penalty} penalty`) : null,
            e.coolingKeys > 0 ? h('span', { class: 'badge warn' }, e.readyInS ? `cooling · ready in ${e.readyInS}s` : `${e.coolingKeys}/${e.keyCount} keys cooling`) : null,
            e.coolingKeys > 0 || e.penalty > 0 ? h('button', { type: 'button', class: 'ghost small clear-cooldown', onclick: () => clearCooldowns({ platform: e.platform, model: e.modelId }, `${e.displayName}`) }, 'Clear') : null,
            !e.modelEnabled ? h('span', { class: 'badge' }, 'model disabled') : null,
            e.kind === 'embedding' ? h('span', { class: 'badge', title: 'Serves /v1/embeddings by name; never chosen for chat' }, 'embeddings') : null),
          h('div', { class: 'muted small' },
            `Intel #${e.intelligenceRank} · Speed #${e.speedRank} · ${fmt(e.rpm)} rpm · ${fmt(e.rpd)} rpd`,
            e.monthlyBudget ? ` · ${e.monthlyBudget} tok/mo` : '', ` · ${e.requests24h} req/24h · ${e.keyCount} key${e.keyCount === 1 ? '' : 's'}`)),
        h('label', { class: 'switch', title: 'In the chain' },
          h('input', { type: 'checkbox', checked: e.enabled, 'aria-label': `Use ${e.displayName} in the chain`, onchange: ev => {
            e.enabled = ev.target.checked; li.classList.toggle('off', !(e.enabled && e.modelEnabled)); markDirty();
          } }), h('span', {})));
      handle.addEventListener('keydown', ev => {
        const sib = ev.key === 'ArrowUp' ? li.previousElementSibling : ev.key === 'ArrowDown' ? li.nextElementSibling : null;
        if (!sib) return;
        ev.preventDefault();
        if (ev.key === 'ArrowUp') sib.before(li); else sib.after(li);
        handle.focus();
        renumber(); markDirty();
      });
      handle.addEventListener('pointerdown', ev => drag(ev, li));
      return li;
    }

    // Pointer drag. Listeners sit on the window, not the handle: moving the row re-inserts the
    // handle, which ends any pointer capture on it.
    function drag(ev, li) {
      ev.preventDefault();
      li.classList.add('dragging');
      const move = m => {
        const over = document.elementFromPoint(m.clientX, m.clientY);
        const target = over && over.closest('#chain-list > li.entry');
        if (!target || target === li) return;
        const r = target.getBoundingClientRect();
        if (m.clientY < r.top + r.height / 2) target.before(li); else target.after(li);
        renumber();
      };
      const up = () => {
        window.removeEventListener('pointermove', move);
        window.removeEventListener('pointerup', up);
        window.removeEventListener('pointercancel', up);
        li.classList.remove('dragging');
        markDirty();
      };
      window.addEventListener('pointermove', move);
      window.addEventListener('pointerup', up);
      window.addEventListener('pointercancel', up);
    }

    function renumber() {
      [...listEl.querySelectorAll('li.entry')].forEach((li, i) => { li.querySelector('.pos').textContent = i + 1; });
    }

    async function commit() {
      const byId = new Map(entries.map(e => [e.id, e]));
      const order = [...listEl.querySelectorAll('li.entry')].map(li => byId.get(li.dataset.id));
      const rest = entries.filter(e => e.keyCount === 0);
      const body = [...order, ...rest].map(e => ({ id: e.id, enabled: e.enabled }));
      const r = await attempt(() => api('PUT', '/api/fallback', body));
      if (r) { dirty = false; show(r); toast('Chain saved'); }
    }

    async function load() {
      const r = await attempt(() => api('GET', '/api/fallback'));
      if (r) show(r);
    }
    load();
    every(10000, () => { if (!dirty && !listEl.querySelector('.dragging')) load(); });
  }

  // How vendor model names (claude-* from Claude Code) route: edited here, stored as aliases.
  function aliasCard() {
    const list = h('div', { id: 'alias-list' });
    const box = card('Model aliases', h('p', { class: 'muted small' },
      'Clients built for Anthropic (Claude Code) send ', h('code', {}, 'claude-*'), ' model names. The first alias whose pattern is part of the name decides the route: ',
      h('code', {}, 'chain'), ', ', h('code', {}, 'intelligence'), ', ', h('code', {}, 'speed'), ' or a model id; ', h('code', {}, '*'), ' matches every name.'), list);
    let rows = [];
    const draw = (data) => {
      rows = data.aliases.map(a => ({ ...a }));
      const inputs = rows.map((a, i) => h('div', { class: 'row wrap alias' },
        h('input', { value: a.pattern, 'aria-label': `Alias ${i + 1} pattern`, class: 'alias-pattern', oninput: e => { a.pattern = e.target.value; } }),
        h('span', {}, '→'),
        h('input', { value: a.route, 'aria-label': `Alias ${i + 1} route`, class: 'alias-route', list: 'alias-routes', oninput: e => { a.route = e.target.value; } }),
        h('button', { type: 'button', class: 'ghost', onclick: () => { rows.splice(i, 1); draw({ aliases: rows, defaults: false }); } }, 'Remove')));
      list.replaceChildren(
        h('datalist', { id: 'alias-routes' }, ['chain', 'intelligence', 'speed'].map(o => h('option', { value: o }))),
        ...inputs,
        h('div', { class: 'row wrap' },
          h('button', { type: 'button', class: 'ghost', onclick: () => { rows.push({ pattern: '', route: 'chain' }); draw({ aliases: rows, defaults: false }); } }, 'Add alias'),
          h('button', { type: 'button', class: 'primary', id: 'alias-save', onclick: () => save(rows) }, 'Save aliases'),
          data.defaults ? h('span', { class: 'muted small' }, 'shipped defaults') :
            h('button', { type: 'button', class: 'ghost', onclick: () => save(null) }, 'Restore defaults')));
    };
    async function save(aliases) {
      const r = await attempt(() => api('PUT', '/api/aliases', { aliases }));
      if (r) { draw(r); toast('Aliases saved'); }
    }
    attempt(() => api('GET', '/api/aliases')).then(r => r && draw(r));
    return box;
  }

  function renderBudget(bar, data) {
    const { totalTokens, usedThisMonth } = data.budget;
    if (!totalTokens) { bar.replaceChildren(); return; }
    const used = Math.min(usedThisMonth, totalTokens);
    const withBudget = data.entries.filter(e => e.enabled && e.modelEnabled && e.keysBudgetTokens > 0);
    const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
    svg.setAttribute('viewBox', '0 0 1000 14');
    svg.setAttribute('preserveAspectRatio', 'none');
    svg.setAttribute('class', 'budget-bar');
    let x = 0;
    const seg = (w, cls, title) => {
      const r = document.createElementNS('http://www.w3.org/2000/svg', 'rect');
      r.setAttribute('x', x); r.setAttribute('y', 0); r.setAttribute('width', Math.max(w, 0)); r.setAttribute('height', 14);
      r.setAttribute('class', cls);
      const t = document.createElementNS('http://www.w3.org/2000/svg', 'title'); t.textContent = title; r.append(t);
      svg.append(r); x += w;
    };
    seg((used / totalTokens) * 1000, 'used', `used this month: ${fmt(usedThisMonth)}`);
    const scale = (1000 - x) / totalTokens;
    for (const e of withBudget) seg(e.keysBudgetTokens * scale, `p-${e.platform}`, `${e.displayName}: ${e.monthlyBudget} tokens/month × ${e.keyCount} key${e.keyCount === 1 ? '' : 's'}`);
    const pct = Math.round((100 * (totalTokens - used)) / totalTokens);
    bar.replaceChildren(h('div', { class: 'muted small' }, `Monthly free budget: ${fmt(totalTokens - used)} remaining · ${pct}% of ${fmt(totalTokens)}`), svg);
  }

  // ----- Models -------------------------------------------------------------------------

  // The catalog in effect: switch models, edit limits and context, add models (to a known
  // platform or a new custom-<name> one), fetch what a provider lists, and the model aliases.
  function models(root) {
    const filter = h('select', { id: 'models-platform', 'aria-label': 'Platform', onchange: () => draw() });
    const list = h('div', { id: 'model-list' });
    const addBox = h('div');
    const fetchBox = h('div', { id: 'discover' });
    const providerBox = h('div', { id: 'providers' });
    const syncOut = h('div', { id: 'sync-result' });
    const syncGo = h('button', { type: 'button', class: 'primary', id: 'sync-now', onclick: async () => {
      syncGo.disabled = true;
      const r = await attempt(() => api('POST', '/api/models/sync', {}));
      syncGo.disabled = false;
      if (!r) return;
      syncOut.replaceChildren(r.platforms.length ? h('ul', { class: 'plain' }, r.platforms.map(s => h('li', {}, h('b', {}, s.platform), ' ', syncText(s))))
        : h('p', { class: 'muted small' }, 'No platform has a key to read its model list with yet.'));
      toast('Sync done');
      load();
    } }, 'Sync now');
    root.append(
      h('section', { class: 'card' }, h('div', { class: 'row spread wrap' }, h('h2', {}, 'Models'), filter),
        h('p', { class: 'muted small' }, 'Switch a model off to keep it out of routing and /v1/models. Limits are per key; empty means not tracked. A retired model is one its provider no longer offers.'), list),
      h('section', { class: 'card' }, h('div', { class: 'row spread wrap' }, h('h2', {}, 'Providers'), syncGo),
        h('p', { class: 'muted small' }, 'Where each free tier stands and when that was checked. A sync reads each provider\'s model list with your key: it retires what is no longer listed, brings back what returns, and adds new models (switched on only where the list shows they are free). The server also syncs daily and when a key is added.'),
        syncOut, providerBox),
      card('Add a model', addBox),
      card('Fetch models from a provider', fetchBox),
      aliasCard());
    let data = null;

    async function load() {
      const r = await attempt(() => api('GET', '/api/models'));
      if (!r) return;
      const first = !data;
      data = r;
      if (first) {
        filter.replaceChildren(h('option', { value: '' }, 'All platforms'),
          ...data.platforms.map(p => h('option', { value: p.id }, p.name)));
        renderAdd();
        renderFetch();
      }
      draw();
      drawProviders();
    }

    const syncText = s => s.result === 'failed' ? `failed, nothing changed: ${s.error}`
      : `${s.listed} listed: ${s.added} new, ${s.retired} retired, ${s.returned} back${s.held_back ? ` (warning: ${s.held_back})` : ''}`;

    function drawProviders() {
      providerBox.replaceChildren(h('div', { class: 'scroll' }, h('table', { class: 'models' },
        h('thead', {}, h('tr', {}, ['Platform', 'Free tier', 'Checked', 'Last sync', 'Without a key'].map(c => h('th', {}, c)))),
        h('tbody', {}, data.platforms.filter(p => !p.custom).map(p => {
          const t = p.freeTier || {};
          return h('tr', { 'data-platform': p.id },
            h('td', {}, p.name),
            h('td', {}, h('span', { class: `badge tier-${t.status}` }, t.status), h('div', { class: 'muted small note' }, t.note)),
            h('td', { class: 'small' }, t.source ? h('a', { href: t.source, rel: 'noreferrer', target: '_blank' }, t.checked) : '—'),
            h('td', { class: 'small' }, p.lastSync ? h('div', { class: 'note' }, `${localTime(p.lastSync.at)}: ${syncText(p.lastSync)}`) : '—'),
            h('td', {}, p.keylessPossible ? h('label', { class: 'switch', title: 'Route without a key (its operator sees the prompts)' },
              h('input', { type: 'checkbox', checked: p.keylessOn, 'aria-label': `Use ${p.name} without a key`, onchange: async e => {
                const r = await attempt(() => api('PUT', '/api/models/keyless', { platform: p.id, enabled: e.target.checked }));
                if (r) { toast(`${p.name}: keyless use ${e.target.checked ? 'on' : 'off'}`); data = r; draw(); drawProviders(); }
              } }), h('span', {})) : null));
        })))));
    }

    const patch = async (m, body) => {
      const r = await attempt(() => api('PATCH', '/api/models', { id: m.id, ...body }));
      if (r) { toast(`${m.id} saved`); load(); }
    };
    const num = (m, key, label) => h('input', { type: 'number', min: 1, class: 'num', value: m[key] ?? '', 'aria-label': `${label} of ${m.id}`,
      onchange: e => patch(m, { [key]: e.target.value === '' ? null : Number(e.target.value) }) });

    function draw() {
      if (!data) return;
      const rows = data.models.filter(m => !filter.value || m.platform === filter.value);
      list.replaceChildren(h('div', { class: 'scroll' }, h('table', { class: 'models' },
        h('thead', {}, h('tr', {}, ['On', 'Model', 'Capabilities', 'Context', 'RPM', 'RPD', 'Keys', ''].map(c => h('th', {}, c)))),
        h('tbody', {}, rows.map(m => h('tr', { 'data-id': m.id, class: m.enabled && m.state !== 'retired' ? '' : 'off' },
          h('td', {}, h('label', { class: 'switch', title: m.enabled ? 'Enabled' : 'Disabled' },
            h('input', { type: 'checkbox', checked: m.enabled, 'aria-label': `Enable ${m.id}`, onchange: e => patch(m, { enabled: e.target.checked }) }), h('span', {}))),
          h('td', {}, h('div', {}, m.displayName, m.state === 'active' ? null : h('span', { class: `badge state-${m.state}` }, m.state)),
            h('div', { class: 'muted small' }, m.id, m.custom ? ' · added by you' : m.origin === 'discovered' ? ' · found by a sync' : m.edited ? ' · edited' : ''),
            m.retired ? h('div', { class: 'muted small note' }, m.retired) : null),
          h('td', { class: 'small' }, m.capabilities.join(', ')),
          h('td', {}, num(m, 'contextWindow', 'Context window')),
          h('td', {}, num(m, 'rpm', 'Requests a minute')),
          h('td', {}, num(m, 'rpd', 'Requests a day')),
          h('td', {}, String(m.keyCount)),
          h('td', {}, m.custom ? h('button', { type: 'button', class: 'ghost danger', onclick: async () => {
            if (!await confirmBox(`Remove ${m.id}?`, 'Remove')) return;
            if (await attempt(() => api('DELETE', `/api/models?id=${encodeURIComponent(m.id)}`))) { toast(`${m.id} removed`); load(); }
          } }, 'Remove') : null)))))));
    }

    function renderAdd() {
      const platform = h('select', { id: 'add-model-platform', 'aria-label': 'Platform' },
        ...data.platforms.map(p => h('option', { value: p.id }, p.name)), h('option', { value: '__new' }, 'New custom platform…'));
      const newId = h('input', { id: 'add-model-new-platform', placeholder: 'custom-name', 'aria-label': 'New platform id' });
      const baseUrl = h('input', { id: 'add-model-base-url', placeholder: 'http://192.168.1.10:11434/v1', 'aria-label': 'Base URL' });
      const keyless = h('input', { type: 'checkbox', 'aria-label': 'No key needed' });
      const custom = h('div', { class: 'row wrap', hidden: true }, newId, baseUrl, h('label', { class: 'row' }, keyless, ' no key needed'));
      platform.addEventListener('change', () => { custom.hidden = platform.value !== '__new'; });
      const modelId = h('input', { id: 'add-model-id', placeholder: 'model id, as the provider names it', 'aria-label': 'Model id' });
      const context = h('input', { type: 'number', min: 1, placeholder: 'context', 'aria-label': 'Context window', class: 'num' });
      const rpm = h('input', { type: 'number', min: 1, placeholder: 'rpm', 'aria-label': 'Requests a minute', class: 'num' });
      const caps = ['tools', 'json_schema', 'vision'].map(c => h('input', { type: 'checkbox', value: c, checked: c !== 'vision', 'aria-label': c }));
      const form = h('form', { class: 'stack', onsubmit: async e => {
        e.preventDefault();
        const body = { platform: platform.value === '__new' ? newId.value.trim() : platform.value, modelId: modelId.value.trim(),
          capabilities: caps.filter(c => c.checked).map(c => c.value) };
        if (platform.value === '__new') { body.baseUrl = baseUrl.value.trim(); body.keyless = keyless.checked; }
        if (context.value) body.contextWindow = Number(context.value);
        if (rpm.value) body.rpm = Number(rpm.value);
        const r = await attempt(() => api('POST', '/api/models', body));
        if (r) { toast(`Added ${r.id}`); modelId.value = ''; data = null; load(); }
      } },
      h('div', { class: 'row wrap' }, platform, modelId, context, rpm), custom,
      h('div', { class: 'row wrap' }, ...caps.map(c => h('label', { class: 'row' }, c, ' ', c.value)),
        h('button', { type: 'submit', class: 'primary', id: 'add-model' }, 'Add model')));
      addBox.replaceChildren(form);
    }

    function renderFetch() {
      const platform = h('select', { id: 'discover-platform', 'aria-label': 'Platform to ask' }, ...data.platforms.map(p => h('option', { value: p.id }, p.name)));
      const out = h('div', { id: 'discover-result' });
      const go = h('button', { type: 'button', class: 'primary', id: 'discover-go', onclick: async () => {
        go.disabled = true;
        const r = await attempt(() => api('POST', '/api/models/discover', { platform: platform.value }));
        go.disabled = false;
        if (!r) return;
        const missing = r.models.filter(m => !m.known);
        out.replaceChildren(h('p', { class: 'muted small' }, `${r.platform} lists ${r.models.length} models; ${missing.length} are not in the catalog.`),
          h('ul', { class: 'plain' }, missing.map(m => h('li', { class: 'row wrap' }, h('code', {}, m.modelId),
            m.contextWindow ? h('span', { class: 'muted small' }, `context ${Charts.fmtNum(m.contextWindow)}`) : null,
            h('button', { type: 'button', class: 'ghost', onclick: async e => {
              const body = { platform: r.platform, modelId: m.modelId };
              if (m.contextWindow) body.contextWindow = m.contextWindow;
              const added = await attempt(() => api('POST', '/api/models', body));
              if (added) { toast(`Added ${added.id}`); e.target.disabled = true; e.target.textContent = 'Added'; load(); }
            } }, 'Add')))));
      } }, 'Fetch models');
      fetchBox.replaceChildren(h('p', { class: 'muted small' }, 'Asks the provider for its model list with one of your keys for it.'),
        h('div', { class: 'row wrap' }, platform, go), out);
    }

    load();
  }

  // ----- Analytics ----------------------------------------------------------------------

  function analytics(root) {
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

  // ----- Playground ---------------------------------------------------------------------

  function playground(root) {
    const history = [];
    let controller = null;
    const model = h('select', { id: 'pg-model' }, h('option', { value: 'auto' }, 'Auto (fallback chain)'));
    const system = h('textarea', { id: 'pg-system', rows: 2, placeholder: 'System prompt (optional)' });
    const log = h('div', { class: 'chat', id: 'pg-log', 'aria-live': 'polite' });
    const input = h('textarea', { id: 'pg-input', rows: 3, placeholder: 'Message — Enter sends, Shift+Enter for a new line' });
    const send = h('button', { type: 'submit', class: 'primary', id: 'pg-send' }, 'Send');
    const stop = h('button', { type: 'button', class: 'ghost', hidden: true, onclick: () => controller && controller.abort() }, 'Stop');
    const clear = h('button', { type: 'button', class: 'ghost', onclick: () => { history.length = 0; log.replaceChildren(); } }, 'Clear');
    input.addEventListener('keydown', e => { if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); form.requestSubmit(); } });
    const form = h('form', { class: 'composer', onsubmit: e => { e.preventDefault(); ask(); } }, input, h('div', { class: 'row end' }, clear, stop, send));
    root.append(h('section', { class: 'card' },
      h('div', { class: 'row spread wrap' }, h('h2', {}, 'Playground'), h('label', { class: 'row' }, 'Model ', model)),
      system, log, form));

    api('GET', '/api/fallback').then(r => {
      for (const e of r.entries.filter(e => e.keyCount > 0 && e.enabled && e.modelEnabled && e.kind === 'chat')) {
        model.append(h('option', { value: e.id }, `${e.displayName} (${e.platformName})`));
      }
    }).catch(e => toast(e.message, 'error'));
    let token = null;

    async function ask() {
      const text = input.value.trim();
      if (!text || controller) return;
      if (!token) {
        const t = await attempt(() => api('GET', '/api/settings/token'));
        if (!t) return;
        token = t.token;
      }
      history.push({ role: 'user', content: text });
      log.append(h('div', { class: 'msg user' }, text));
      input.value = '';
      const out = h('div', { class: 'msg assistant' });
      const meta = h('div', { class: 'meta muted small' }, 'waiting…');
      log.append(out, meta);
      const messages = (system.value.trim() ? [{ role: 'system', content: system.value.trim() }] : []).concat(history);
      controller = new AbortController();
      stop.hidden = false; send.disabled = true;
      const t0 = performance.now();
      let first = null, reply = '', usage = null;
      try {
        const res = await fetch('/v1/chat/completions', {
          method: 'POST', signal: controller.signal,
          headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
          body: JSON.stringify({ model: model.value, messages, stream: true, stream_options: { include_usage: true } }),
        });
        const via = res.headers.get('x-routed-via');
        const attempts = res.headers.get('x-fallback-attempts');
        if (!res.ok) {
          const body = await res.json().catch(() => null);
          throw new Error((body && body.error && body.error.message) || `HTTP ${res.status}`);
        }
        const reader = res.body.getReader();
        const dec = new TextDecoder();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += dec.decode(value, { stream: true });
          let i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const frame = buf.slice(0, i); buf = buf.slice(i + 2);
            for (const line of frame.split('\n')) {
              if (!line.startsWith('data:')) continue;
              const data = line.slice(5).trim();
              if (data === '[DONE]') continue;
              let chunk;
              try { chunk = JSON.parse(data); } catch (_) { continue; }
              if (chunk.error) throw new Error(chunk.error.message || 'stream failed');
              if (chunk.usage) usage = chunk.usage;
              const delta = chunk.choices && chunk.choices[0] && chunk.choices[0].delta;
              if (delta && delta.content) {
                if (first === null) first = performance.now() - t0;
                reply += delta.content;
                out.textContent = reply;
                log.scrollTop = log.scrollHeight;
              }
            }
          }
        }
        history.push({ role: 'assistant', content: reply });
        const total = Math.round(performance.now() - t0);
        meta.textContent = [via ? `via ${decodeURIComponent(via)}` : null,
          attempts ? `${attempts} fallback${attempts === '1' ? '' : 's'}` : 'no fallback',
          first !== null ? `first token ${Math.round(first)} ms` : null, `${total} ms`,
          usage ? `${usage.prompt_tokens} in / ${usage.completion_tokens} out tokens` : null].filter(Boolean).join(' · ');
      } catch (e) {
        out.classList.add('failed');
        out.textContent = reply ? reply : '';
        meta.textContent = e.name === 'AbortError' ? 'stopped' : `Error: ${e.message}`;
        if (e.name !== 'AbortError') history.pop();
      } finally {
        controller = null; stop.hidden = true; send.disabled = false;
        input.focus();
      }
    }
    input.focus();
  }

  return { keys, chain, models, analytics, playground };
})();
