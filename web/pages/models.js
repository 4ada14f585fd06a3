// The Models page: the catalog in effect (switch models, edit limits and context), the
// providers' free tiers with Sync now, adding and fetching models, and the model aliases.
import { h, api, toast, attempt, confirmBox, every, localTime, card } from '../ui.js?v={{v}}';
import * as Charts from '../charts.js?v={{v}}';
import { t, tx } from '../i18n/index.js?v={{v}}';

// Enumerations the server sends as words: shown in the chosen language where known.
const word = (prefix, known, value) => (known.includes(value) ? t(`${prefix}.${value}`) : value);
const tierText = s => word('models.tier', ['free', 'credits', 'paid', 'retired'], s);
const stateText = s => word('models.state', ['retired', 'discovered', 'disabled'], s);

// OpenAI embedding names (LangChain's and LlamaIndex's defaults) and which embedding model
// answers them. Vectors of different models do not mix, so the default is chosen here.
function embeddingAliasCard() {
  const box = h('div', { id: 'embedding-aliases' });
  const draw = data => {
    let rows = data.aliases.map(a => ({ ...a }));
    const routeSelect = (value, label, onchange) => h('select', { 'aria-label': label, onchange },
      ['default', ...data.models].map(m => h('option', { value: m, selected: m === value }, m === 'default' ? t('models.embed.defaultModel') : m)));
    const def = h('select', { id: 'embedding-default', 'aria-label': t('models.embed.default') },
      h('option', { value: '' }, data.defaultNow && !data.default ? t('models.embed.noneNow', { model: data.defaultNow }) : t('models.embed.none')),
      data.models.map(m => h('option', { value: m, selected: m === data.default }, m)));
    const list = h('div', {}, rows.map((a, i) => h('div', { class: 'row wrap alias' },
      h('input', { value: a.name, class: 'embedding-alias-name', 'aria-label': t('models.embed.aliasName', { n: i + 1 }), oninput: e => { a.name = e.target.value; } }),
      h('span', {}, '→'),
      routeSelect(a.route, t('models.embed.aliasRoute', { n: i + 1 }), e => { a.route = e.target.value; }),
      h('button', { type: 'button', class: 'ghost', onclick: () => { rows.splice(i, 1); draw({ ...data, aliases: rows }); } }, t('common.remove')))));
    const save = async body => {
      const r = await attempt(() => api('PUT', '/api/embedding-aliases', body));
      if (r) { draw(r); toast(t('models.embed.saved')); }
    };
    box.replaceChildren(
      h('div', { class: 'row wrap' }, h('label', { for: 'embedding-default' }, t('models.embed.default')), def),
      list,
      h('div', { class: 'row wrap' },
        h('button', { type: 'button', class: 'ghost', onclick: () => { rows.push({ name: '', route: 'default' }); draw({ ...data, aliases: rows }); } }, t('common.addAlias')),
        h('button', { type: 'button', class: 'primary', id: 'embedding-alias-save', onclick: () => save({ default: def.value || null, aliases: rows }) }, t('common.save')),
        h('button', { type: 'button', class: 'ghost', onclick: () => save(null) }, t('common.restoreDefaults'))));
  };
  attempt(() => api('GET', '/api/embedding-aliases')).then(r => r && draw(r));
  return card(t('models.embed.title'), h('p', { class: 'muted small' },
    tx('models.embed.intro', { name: h('code', {}, 'text-embedding-3-small') })), box);
}

// How vendor model names (claude-* from Claude Code) route: edited here, stored as aliases.
function aliasCard() {
  const list = h('div', { id: 'alias-list' });
  const box = card(t('models.alias.title'), h('p', { class: 'muted small' }, tx('models.alias.intro', {
    claude: h('code', {}, 'claude-*'), chain: h('code', {}, 'chain'), intelligence: h('code', {}, 'intelligence'),
    speed: h('code', {}, 'speed'), star: h('code', {}, '*') })), list);
  let rows = [];
  const draw = (data) => {
    rows = data.aliases.map(a => ({ ...a }));
    const inputs = rows.map((a, i) => h('div', { class: 'row wrap alias' },
      h('input', { value: a.pattern, 'aria-label': t('models.alias.pattern', { n: i + 1 }), class: 'alias-pattern', oninput: e => { a.pattern = e.target.value; } }),
      h('span', {}, '→'),
      h('input', { value: a.route, 'aria-label': t('models.alias.route', { n: i + 1 }), class: 'alias-route', list: 'alias-routes', oninput: e => { a.route = e.target.value; } }),
      h('button', { type: 'button', class: 'ghost', onclick: () => { rows.splice(i, 1); draw({ aliases: rows, defaults: false }); } }, t('common.remove'))));
    list.replaceChildren(
      h('datalist', { id: 'alias-routes' }, ['chain', 'intelligence', 'speed'].map(o => h('option', { value: o }))),
      ...inputs,
      h('div', { class: 'row wrap' },
        h('button', { type: 'button', class: 'ghost', onclick: () => { rows.push({ pattern: '', route: 'chain' }); draw({ aliases: rows, defaults: false }); } }, t('common.addAlias')),
        h('button', { type: 'button', class: 'primary', id: 'alias-save', onclick: () => save(rows) }, t('models.alias.save')),
        data.defaults ? h('span', { class: 'muted small' }, t('models.alias.shipped')) :
          h('button', { type: 'button', class: 'ghost', onclick: () => save(null) }, t('common.restoreDefaults'))));
  };
  async function save(aliases) {
    const r = await attempt(() => api('PUT', '/api/aliases', { aliases }));
    if (r) { draw(r); toast(t('models.alias.saved')); }
  }
  attempt(() => api('GET', '/api/aliases')).then(r => r && draw(r));
  return box;
}

// The catalog in effect: switch models, edit limits and context, add models (to a known
// platform or a new custom-<name> one), fetch what a provider lists, and the model aliases.
export function models(root) {
  const filter = h('select', { id: 'models-platform', 'aria-label': t('common.platform'), onchange: () => draw() });
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
      : h('p', { class: 'muted small' }, t('models.syncNoKey')));
    toast(t('models.syncDone'));
    load();
  } }, t('models.syncNow'));
  root.append(
    h('section', { class: 'card' }, h('div', { class: 'row spread wrap' }, h('h2', {}, t('models.title')), filter),
      h('p', { class: 'muted small' }, t('models.intro')), list),
    h('section', { class: 'card' }, h('div', { class: 'row spread wrap' }, h('h2', {}, t('models.providers')), syncGo),
      h('p', { class: 'muted small' }, t('models.providersIntro')),
      syncOut, providerBox),
    card(t('models.addModel'), addBox),
    card(t('models.fetchTitle'), fetchBox),
    aliasCard(),
    embeddingAliasCard());
  let data = null;

  async function load() {
    const r = await attempt(() => api('GET', '/api/models'));
    if (!r) return;
    const first = !data;
    data = r;
    if (first) {
      filter.replaceChildren(h('option', { value: '' }, t('models.allPlatforms')),
        ...data.platforms.map(p => h('option', { value: p.id }, p.name)));
      renderAdd();
      renderFetch();
    }
    draw();
    drawProviders();
  }

  const syncText = s => {
    if (s.result === 'failed') return t('models.sync.failed', { error: s.error });
    const summary = t('models.sync.summary', { listed: s.listed, added: s.added, retired: s.retired, returned: s.returned });
    return s.held_back ? t('models.sync.warning', { summary, warning: s.held_back }) : summary;
  };

  function drawProviders() {
    providerBox.replaceChildren(h('div', { class: 'scroll' }, h('table', { class: 'models' },
      h('thead', {}, h('tr', {}, ['platform', 'freeTier', 'checked', 'lastSync', 'keyless'].map(c => h('th', {}, t(`models.col.${c}`))))),
      h('tbody', {}, data.platforms.filter(p => !p.custom).map(p => {
        const tier = p.freeTier || {};
        return h('tr', { 'data-platform': p.id },
          h('td', {}, p.name),
          h('td', {}, h('span', { class: `badge tier-${tier.status}` }, tierText(tier.status)), h('div', { class: 'muted small note' }, tier.note)),
          h('td', { class: 'small' }, tier.source ? h('a', { href: tier.source, rel: 'noreferrer', target: '_blank' }, tier.checked) : '—'),
          h('td', { class: 'small' }, p.lastSync ? h('div', { class: 'note' }, `${localTime(p.lastSync.at)}: ${syncText(p.lastSync)}`) : '—'),
          h('td', {}, p.keylessPossible ? h('label', { class: 'switch', title: t('models.keylessTitle') },
            h('input', { type: 'checkbox', checked: p.keylessOn, 'aria-label': t('models.keylessUse', { name: p.name }), onchange: async e => {
              const r = await attempt(() => api('PUT', '/api/models/keyless', { platform: p.id, enabled: e.target.checked }));
              if (r) { toast(t(e.target.checked ? 'models.keylessOn' : 'models.keylessOff', { name: p.name })); data = r; draw(); drawProviders(); }
            } }), h('span', {})) : null));
      })))));
  }

  const patch = async (m, body) => {
    const r = await attempt(() => api('PATCH', '/api/models', { id: m.id, ...body }));
    if (r) { toast(t('models.saved', { id: m.id })); load(); }
  };
  const num = (m, key, label) => h('input', { type: 'number', min: 1, class: 'num', value: m[key] ?? '', 'aria-label': t('models.limitOf', { label, id: m.id }),
    onchange: e => patch(m, { [key]: e.target.value === '' ? null : Number(e.target.value) }) });

  function draw() {
    if (!data) return;
    const rows = data.models.filter(m => !filter.value || m.platform === filter.value);
    list.replaceChildren(h('div', { class: 'scroll' }, h('table', { class: 'models' },
      h('thead', {}, h('tr', {}, [t('models.col.on'), t('models.col.model'), t('models.col.capabilities'), t('models.col.context'), 'RPM', 'RPD',
        t('models.col.keys'), ''].map(c => h('th', {}, c)))),
      h('tbody', {}, rows.map(m => h('tr', { 'data-id': m.id, class: m.enabled && m.state !== 'retired' ? '' : 'off' },
        h('td', {}, h('label', { class: 'switch', title: t(m.enabled ? 'common.enabled' : 'common.disabled') },
          h('input', { type: 'checkbox', checked: m.enabled, 'aria-label': t('models.enable', { id: m.id }), onchange: e => patch(m, { enabled: e.target.checked }) }), h('span', {}))),
        h('td', {}, h('div', {}, m.displayName, m.state === 'active' ? null : h('span', { class: `badge state-${m.state}` }, stateText(m.state))),
          h('div', { class: 'muted small' }, m.id,
            m.custom ? t('models.addedByYou') : m.origin === 'discovered' ? t('models.foundBySync') : m.edited ? t('models.edited') : ''),
          m.retired ? h('div', { class: 'muted small note' }, m.retired) : null),
        h('td', { class: 'small' }, m.capabilities.join(', ')),
        h('td', {}, num(m, 'contextWindow', t('models.contextWindow'))),
        h('td', {}, num(m, 'rpm', t('models.perMinute'))),
        h('td', {}, num(m, 'rpd', t('models.perDay'))),
        h('td', {}, String(m.keyCount)),
        h('td', {}, m.custom ? h('button', { type: 'button', class: 'ghost danger', onclick: async () => {
          if (!await confirmBox(t('models.removeConfirm', { id: m.id }), { ok: t('common.remove'), danger: true })) return;
          if (await attempt(() => api('DELETE', `/api/models?id=${encodeURIComponent(m.id)}`))) { toast(t('models.removed', { id: m.id })); load(); }
        } }, t('common.remove')) : null)))))));
  }

  function renderAdd() {
    const platform = h('select', { id: 'add-model-platform', 'aria-label': t('common.platform') },
      ...data.platforms.map(p => h('option', { value: p.id }, p.name)), h('option', { value: '__new' }, t('models.add.newPlatform')));
    const newId = h('input', { id: 'add-model-new-platform', placeholder: 'custom-name', 'aria-label': t('models.add.newPlatformId') });
    const baseUrl = h('input', { id: 'add-model-base-url', placeholder: 'http://192.168.1.10:11434/v1', 'aria-label': t('models.add.baseUrl') });
    const keyless = h('input', { type: 'checkbox', 'aria-label': t('models.add.keyless') });
    const custom = h('div', { class: 'row wrap', hidden: true }, newId, baseUrl, h('label', { class: 'row' }, keyless, ' ', t('models.add.keylessLabel')));
    platform.addEventListener('change', () => { custom.hidden = platform.value !== '__new'; });
    const modelId = h('input', { id: 'add-model-id', placeholder: t('models.add.modelIdPlaceholder'), 'aria-label': t('models.add.modelId') });
    const context = h('input', { type: 'number', min: 1, placeholder: t('models.add.contextPlaceholder'), 'aria-label': t('models.contextWindow'), class: 'num' });
    const rpm = h('input', { type: 'number', min: 1, placeholder: 'RPM', 'aria-label': t('models.perMinute'), class: 'num' });
    const caps = ['tools', 'json_schema', 'vision'].map(c => h('input', { type: 'checkbox', value: c, checked: c !== 'vision', 'aria-label': c }));
    const form = h('form', { class: 'stack', onsubmit: async e => {
      e.preventDefault();
      const body = { platform: platform.value === '__new' ? newId.value.trim() : platform.value, modelId: modelId.value.trim(),
        capabilities: caps.filter(c => c.checked).map(c => c.value) };
      if (platform.value === '__new') { body.baseUrl = baseUrl.value.trim(); body.keyless = keyless.checked; }
      if (context.value) body.contextWindow = Number(context.value);
      if (rpm.value) body.rpm = Number(rpm.value);
      const r = await attempt(() => api('POST', '/api/models', body));
      if (r) { toast(t('models.add.added', { id: r.id })); modelId.value = ''; data = null; load(); }
    } },
    h('div', { class: 'row wrap' }, platform, modelId, context, rpm), custom,
    h('div', { class: 'row wrap' }, ...caps.map(c => h('label', { class: 'row' }, c, ' ', c.value)),
      h('button', { type: 'submit', class: 'primary', id: 'add-model' }, t('models.add.submit'))));
    addBox.replaceChildren(form);
  }

  function renderFetch() {
    const platform = h('select', { id: 'discover-platform', 'aria-label': t('models.fetch.platform') }, ...data.platforms.map(p => h('option', { value: p.id }, p.name)));
    const out = h('div', { id: 'discover-result' });
    const go = h('button', { type: 'button', class: 'primary', id: 'discover-go', onclick: async () => {
      go.disabled = true;
      const r = await attempt(() => api('POST', '/api/models/discover', { platform: platform.value }));
      go.disabled = false;
      if (!r) return;
      const missing = r.models.filter(m => !m.known);
      out.replaceChildren(h('p', { class: 'muted small' }, t('models.fetch.result', { platform: r.platform, n: r.models.length, missing: missing.length })),
        h('ul', { class: 'plain' }, missing.map(m => h('li', { class: 'row wrap' }, h('code', {}, m.modelId),
          m.contextWindow ? h('span', { class: 'muted small' }, t('models.fetch.context', { n: Charts.fmtNum(m.contextWindow) })) : null,
          h('button', { type: 'button', class: 'ghost', onclick: async e => {
            const body = { platform: r.platform, modelId: m.modelId };
            if (m.contextWindow) body.contextWindow = m.contextWindow;
            const added = await attempt(() => api('POST', '/api/models', body));
            if (added) { toast(t('models.add.added', { id: added.id })); e.target.disabled = true; e.target.textContent = t('models.fetch.added'); load(); }
          } }, t('models.fetch.add'))))));
    } }, t('models.fetch.go'));
    fetchBox.replaceChildren(h('p', { class: 'muted small' }, t('models.fetch.intro')),
      h('div', { class: 'row wrap' }, platform, go), out);
  }

  load();
}
