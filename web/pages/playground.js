// The Playground: streams a reply from auto or a chosen model, with where it was routed,
// the fallbacks, time to first token and the token counts.
import { h, api, toast, attempt } from '../ui.js?v={{v}}';
import { t } from '../i18n/index.js?v={{v}}';

export function playground(root) {
  const history = [];
  let controller = null;
  const model = h('select', { id: 'pg-model' }, h('option', { value: 'auto' }, t('pg.auto')));
  const system = h('textarea', { id: 'pg-system', rows: 2, placeholder: t('pg.system') });
  const log = h('div', { class: 'chat', id: 'pg-log', 'aria-live': 'polite' });
  const input = h('textarea', { id: 'pg-input', rows: 3, placeholder: t('pg.input') });
  const send = h('button', { type: 'submit', class: 'primary', id: 'pg-send' }, t('pg.send'));
  const stop = h('button', { type: 'button', class: 'ghost', hidden: true, onclick: () => controller && controller.abort() }, t('pg.stop'));
  const clear = h('button', { type: 'button', class: 'ghost', onclick: () => { history.length = 0; log.replaceChildren(); } }, t('pg.clear'));
  input.addEventListener('keydown', e => { if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); form.requestSubmit(); } });
  const form = h('form', { class: 'composer', onsubmit: e => { e.preventDefault(); ask(); } }, input, h('div', { class: 'row end' }, clear, stop, send));
  root.append(h('section', { class: 'card' },
    h('div', { class: 'row spread wrap' }, h('h2', {}, t('pg.title')), h('label', { class: 'row' }, t('pg.model'), ' ', model)),
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
      const got = await attempt(() => api('GET', '/api/settings/token'));
      if (!got) return;
      token = got.token;
    }
    history.push({ role: 'user', content: text });
    log.append(h('div', { class: 'msg user' }, text));
    input.value = '';
    const out = h('div', { class: 'msg assistant' });
    const meta = h('div', { class: 'meta muted small' }, t('pg.waiting'));
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
            if (chunk.error) throw new Error(chunk.error.message || t('pg.streamFailed'));
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
      meta.textContent = [via ? t('pg.via', { route: decodeURIComponent(via) }) : null,
        attempts ? t('pg.fallbacks', { n: Number(attempts) }) : t('pg.noFallback'),
        first !== null ? t('pg.firstToken', { ms: Math.round(first) }) : null, `${total} ms`,
        usage ? t('pg.tokens', { in: usage.prompt_tokens, out: usage.completion_tokens }) : null].filter(Boolean).join(' · ');
    } catch (e) {
      out.classList.add('failed');
      out.textContent = reply ? reply : '';
      meta.textContent = e.name === 'AbortError' ? t('pg.stopped') : t('pg.error', { message: e.message });
      if (e.name !== 'AbortError') history.pop();
    } finally {
      controller = null; stop.hidden = true; send.disabled = false;
      input.focus();
    }
  }
  input.focus();
}
