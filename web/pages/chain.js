// The Fallback chain page: reorder (pointer or keyboard), switch entries off, sort presets,
// penalties and cooldowns, and this month's free budget.
import { h, api, toast, attempt, confirmBox, every, fmt } from '../ui.js?v={{v}}';
import { t, tx } from '../i18n/index.js?v={{v}}';

export function chain(root) {
  let entries = [];
  let dirty = false;
  const bar = h('div', { class: 'budget' });
  const listEl = h('ol', { class: 'chain', id: 'chain-list' });
  const hidden = h('details', { class: 'hidden-entries' });
  const save = h('button', { type: 'button', class: 'primary', id: 'chain-save', onclick: () => commit() }, t('chain.save'));
  const discard = h('button', { type: 'button', class: 'ghost', onclick: () => { dirty = false; load(); } }, t('chain.discard'));
  const draftBar = h('div', { class: 'draft', hidden: true }, h('span', {}, t('chain.unsaved')), discard, save);
  // Ends cooldowns and penalties now (the usage windows stay), after a confirmation.
  async function clearCooldowns(filter, question) {
    if (!await confirmBox(question, { ok: t('chain.clear') })) return;
    const r = await attempt(() => api('POST', '/api/cooldowns/clear', filter));
    if (r) { toast(t('chain.cleared', { n: r.cleared })); load(); }
  }
  const clearAll = h('button', { type: 'button', class: 'ghost', id: 'clear-all-cooldowns', onclick: () => clearCooldowns({}, t('chain.clearConfirmAll')) }, t('chain.clearAll'));
  const sorts = ['intelligence', 'speed', 'budget'].map(p => h('button', { type: 'button', class: 'ghost', onclick: async () => {
    const preset = t(`chain.preset.${p}`);
    if (!await confirmBox(t('chain.sortConfirm', { preset }), { ok: t('chain.sort') })) return;
    const r = await attempt(() => api('POST', `/api/fallback/sort/${p}`));
    if (r) { dirty = false; show(r); toast(t('chain.sorted', { preset })); }
  } }, t('chain.sortBy', { preset: t(`chain.preset.${p}`) })));
  root.append(
    h('section', { class: 'card' },
      h('div', { class: 'row spread wrap' }, h('h2', {}, t('chain.title')), h('div', { class: 'row wrap' }, sorts, clearAll)),
      h('p', { class: 'muted small' }, tx('chain.intro', { auto: h('code', {}, 'auto') })),
      bar, draftBar, listEl, hidden));

  const markDirty = () => { dirty = true; draftBar.hidden = false; };

  function show(data) {
    entries = data.entries;
    draftBar.hidden = !dirty;
    renderBudget(bar, data);
    const visible = entries.filter(e => e.keyCount > 0);
    const none = entries.filter(e => e.keyCount === 0);
    listEl.replaceChildren(...visible.map(e => row(e)));
    if (!visible.length) listEl.replaceChildren(h('li', { class: 'muted' }, tx('chain.noKeys', { link: h('a', { href: '#/keys' }, t('chain.addKey')) })));
    hidden.replaceChildren(h('summary', {}, t('chain.hidden', { n: none.length })),
      h('p', { class: 'muted small' }, none.map(e => e.displayName + ' (' + e.platform + ')').join(', ')));
    hidden.hidden = !none.length;
    renumber();
  }

  function row(e) {
    const handle = h('button', { type: 'button', class: 'handle', 'aria-label': t('chain.move', { name: e.displayName }), title: t('chain.handle') }, '⋮⋮');
    const li = h('li', { class: 'entry' + (e.enabled && e.modelEnabled ? '' : ' off'), 'data-id': e.id },
      handle,
      h('span', { class: 'pos' }),
      h('div', { class: 'entry-main' },
        h('div', {}, h('strong', {}, e.displayName), ' ', h('span', { class: `plat p-${e.platform}` }, e.platformName),
          e.penalty > 0 ? h('span', { class: 'badge warn' }, t('chain.penalty', { n: e.penalty })) : null,
          e.coolingKeys > 0 ? h('span', { class: 'badge warn' }, e.readyInS ? t('chain.readyIn', { s: e.readyInS })
            : t('chain.keysCooling', { cooling: e.coolingKeys, total: e.keyCount })) : null,
          e.coolingKeys > 0 || e.penalty > 0 ? h('button', { type: 'button', class: 'ghost small clear-cooldown',
            onclick: () => clearCooldowns({ platform: e.platform, model: e.modelId }, t('chain.clearConfirmOne', { name: e.displayName })) }, t('chain.clear')) : null,
          !e.modelEnabled ? h('span', { class: 'badge' }, t('chain.modelDisabled')) : null,
          e.kind === 'embedding' ? h('span', { class: 'badge', title: t('chain.embeddingsTitle') }, t('chain.embeddings')) : null),
        h('div', { class: 'muted small' },
          t('chain.ranks', { intel: e.intelligenceRank, speed: e.speedRank, rpm: fmt(e.rpm), rpd: fmt(e.rpd) }),
          e.monthlyBudget ? t('chain.monthly', { budget: e.monthlyBudget }) : '', t('chain.usage', { requests: e.requests24h, n: e.keyCount }))),
      h('label', { class: 'switch', title: t('chain.inChain') },
        h('input', { type: 'checkbox', checked: e.enabled, 'aria-label': t('chain.use', { name: e.displayName }), onchange: ev => {
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
    if (r) { dirty = false; show(r); toast(t('chain.saved')); }
  }

  async function load() {
    const r = await attempt(() => api('GET', '/api/fallback'));
    if (r) show(r);
  }
  load();
  every(10000, () => { if (!dirty && !listEl.querySelector('.dragging')) load(); });
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
    const tip = document.createElementNS('http://www.w3.org/2000/svg', 'title'); tip.textContent = title; r.append(tip);
    svg.append(r); x += w;
  };
  seg((used / totalTokens) * 1000, 'used', t('chain.budget.used', { tokens: fmt(usedThisMonth) }));
  const scale = (1000 - x) / totalTokens;
  for (const e of withBudget) {
    seg(e.keysBudgetTokens * scale, `p-${e.platform}`, t('chain.budget.entry', { name: e.displayName, budget: e.monthlyBudget, n: e.keyCount }));
  }
  const pct = Math.round((100 * (totalTokens - used)) / totalTokens);
  bar.replaceChildren(h('div', { class: 'muted small' }, t('chain.budget.summary', { left: fmt(totalTokens - used), pct, total: fmt(totalTokens) })), svg);
}
