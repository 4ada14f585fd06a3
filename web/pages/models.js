// The Models page: the catalog in effect (switch models, edit limits and context), the
// providers' free tiers with Sync now, adding and fetching models, and the model aliases.
import { h, api, toast, attempt, confirmBox, every, localTime, card } from '../ui.js?v={{v}}';
import * as Charts from '../charts.js?v={{v}}';

// OpenAI embedding names (LangChain's and LlamaIndex's defaults) and which embedding model
// answers them. Vectors of different models do not mix, so the default is chosen here.
function embeddingAliasCard() {
  const box = h('div', { id: 'embedding-aliases' });
  const draw = data => {
    let rows = data.aliases.map(a => ({ ...a }));
    const routeSelect = (value, label, onchange) => h('select', { 'aria-label': label, onchange },
      ['default', ...data.models].map(m => h('option', { value: m, selected: m === value }, m === 'default' ? 'the default model' : m)));
    const def = h('select', { id: 'embedding-default', 'aria-label': 'Default embedding model' },
      h('option', { value: '' }, data.defaultNow && !data.default ? `none chosen (now: ${data.defaultNow})` : 'none chosen'),
      data.models.map(m => h('option', { value: m, selected: m === data.default }, m)));
    const list = h('div', {}, rows.map((a, i) => h('div', { class: 'row wrap alias' },
      h('input', { value: a.name, class: 'embedding-alias-name', 'aria-label': `Embedding alias ${i + 1} name`, oninput: e => { a.name = e.target.value; } }),
      h('span', {}, '→'),
      routeSelect(a.route, `Embedding alias ${i + 1} route`, e => { a.route = e.target.value; }),
      h('button', { type: 'button', class: 'ghost', onclick: () => { rows.splice(i, 1); draw({ ...data, aliases: rows }); } }, 'Remove'))));
    const save = async body => {
      const r = await attempt(() => api('PUT', '/api/embedding-aliases', body));
      if (r) { draw(r); toast('Embedding aliases saved'); }
    };
    box.replaceChildren(
      h('div', { class: 'row wrap' }, h('label', { for: 'embedding-default' }, 'Default embedding model'), def),
      list,
      h('div', { class: 'row wrap' },
        h('button', { type: 'button', class: 'ghost', onclick: () => { rows.push({ name: '', route: 'default' }); draw({ ...data, aliases: rows }); } }, 'Add alias'),
        h('button', { type: 'button', class: 'primary', id: 'embedding-alias-save', onclick: () => save({ default: def.value || null, aliases: rows }) }, 'Save'),
        h('button', { type: 'button', class: 'ghost', onclick: () => save(null) }, 'Restore defaults')));
  };
  attempt(() => api('GET', '/api/embedding-aliases')).then(r => r && draw(r));
  return card('Embedding aliases', h('p', { class: 'muted small' },
    'Clients built for OpenAI send ', h('code', {}, 'text-embedding-3-small'), ' and its kin. They go to the model named here, or to the default. Vectors of different models cannot be mixed: choose the default once and keep it.'), box);
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

// The catalog in effect: switch models, edit limits and context, add models (to a known
// platform or a new custom-<name> one), fetch what a provider lists, and the model aliases.
export function models(root) {
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
    aliasCard(),
    embeddingAliasCard());
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
