// The Fallback chain page: reorder (pointer or keyboard), switch entries off, sort presets,
// penalties and cooldowns, and this month's free budget.
import { h, api, toast, attempt, confirmBox, every, fmt, card } from '../ui.js?v={{v}}';

export function chain(root) {
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
