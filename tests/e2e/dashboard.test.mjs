// Browser test of the bundled dashboard: Debian's Chromium driven by playwright-core against the
// real binary and a mock OpenAI-compatible upstream on loopback. It sets up the password with
// the one-time code, logs in, adds a key, makes and revokes a named client key, reorders the chain (keyboard and pointer) and saves,
// clears the cooldowns, adds a model on the Models page, fetches a provider's list and adds
// from it, switches a model off (it leaves /v1/models), syncs the catalog from the provider's
// changed listing (one model retired, one added), edits the model aliases (a bad route
// is refused, a good one saved),
// streams a playground reply, and sees the request counted on the analytics page. In Chinese:
// a browser that prefers zh-CN gets the setup, login and pages in Chinese, switches to English
// and keeps it over a reload; an English one switches to 中文 and sees no English left on any
// page. Before all that, the string tables are checked to have the same keys and placeholders.
// Screenshots of every page go to target/e2e/. Any page error or CSP violation fails the test.
//
//   node tests/e2e/dashboard.test.mjs [path/to/freellmapi]

import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const binary = path.resolve(process.argv[2] || path.join(root, 'target/debug/freellmapi'));
const shots = path.join(root, 'target/e2e');
mkdirSync(shots, { recursive: true });
const PASSWORD = 'pi-on-the-shelf-2026';
const PARTS = ['Hello', ' from', ' the', ' mock', ' upstream.'];

function fail(msg) {
  throw new Error(msg);
}

// ----- the string tables ----------------------------------------------------------------------

// Every table has English's keys, no more, and each string the same {placeholders}: a string
// added to one table only would fall back to English, or show a key, where nobody looks.
async function checkStringTables() {
  const dir = path.join(root, 'web/i18n');
  const load = async name => (await import('data:text/javascript,' + encodeURIComponent(readFileSync(path.join(dir, name), 'utf8')))).default;
  const en = await load('en.js');
  const holes = v => [...new Set([...(typeof v === 'string' ? [v] : Object.values(v)).join(' ').matchAll(/\{(\w+)\}/g)].map(m => m[1]))].sort().join(',');
  const problems = [];
  for (const [k, v] of Object.entries(en)) {
    if (typeof v !== 'string' && typeof v.other !== 'string') problems.push(`en.js ${k}: a plural without "other"`);
  }
  const tables = readdirSync(dir).filter(f => f !== 'en.js' && f !== 'index.js' && f.endsWith('.js'));
  if (!tables.length) problems.push('no table besides en.js');
  for (const name of tables) {
    const other = await load(name);
    for (const k of Object.keys(en)) if (!(k in other)) problems.push(`${name} lacks ${k}`);
    for (const k of Object.keys(other)) if (!(k in en)) problems.push(`${name} has ${k}, which en.js lacks`);
    for (const k of Object.keys(en)) {
      if (k in other && holes(en[k]) !== holes(other[k])) problems.push(`${name} ${k}: placeholders {${holes(other[k])}}, en.js {${holes(en[k])}}`);
    }
  }
  if (problems.length) fail(`string tables:\n${problems.join('\n')}`);
  return Object.keys(en).length;
}

const stringCount = await checkStringTables();

// English words left on a page shown in Chinese: the dashboard's own text (headings, buttons,
// labels, placeholders, titles, aria-labels), leaving out what the server or the catalog
// names (model and platform names, codes, table cells, provider notes).
async function englishLeft(page) {
  return page.evaluate(() => {
    const data = 'code, td, option, strong, h3, .note, .plat, .msg, #toast, .brand, #locale, noscript, datalist';
    const words = /\b[A-Za-z][a-z]+\s+[a-z]{2,}\b/;
    const found = [];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      const el = n.parentElement;
      if (!el || el.closest(data) || el.closest('[hidden], dialog:not([open])')) continue;
      if (words.test(n.textContent)) found.push(n.textContent.trim());
    }
    for (const el of document.querySelectorAll('[placeholder], [title], [aria-label]')) {
      if (el.closest('#locale, .brand, [hidden], dialog:not([open])')) continue;
      for (const a of ['placeholder', 'title', 'aria-label']) {
        const v = el.getAttribute(a);
        if (v && words.test(v)) found.push(`${a}="${v}"`);
      }
    }
    return found;
  });
}

// ----- the mock upstream --------------------------------------------------------------------

function startMock() {
  const seen = [];
  // What the mock's model listing answers; the sync step changes it.
  const listing = ['e2e-listed-model', 'openai/gpt-oss-20b'];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', c => { body += c; });
    req.on('end', async () => {
      seen.push(`${req.method} ${req.url}`);
      if (req.method === 'GET') { // key probes and model discovery
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ object: 'list', data: listing.map(id => id === 'e2e-listed-model' ? { id, context_window: 65536 } : { id }) }));
        return;
      }
      const request = JSON.parse(body || '{}');
      const id = 'chatcmpl-e2e';
      if (!request.stream) {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ id, object: 'chat.completion', created: 1, model: request.model,
          choices: [{ index: 0, message: { role: 'assistant', content: PARTS.join('') }, finish_reason: 'stop' }],
          usage: { prompt_tokens: 5, completion_tokens: 5, total_tokens: 10 } }));
        return;
      }
      res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
      const frame = obj => res.write(`data: ${JSON.stringify(obj)}\n\n`);
      for (const [i, p] of PARTS.entries()) {
        frame({ id, object: 'chat.completion.chunk', created: 1, model: request.model,
          choices: [{ index: 0, delta: i === 0 ? { role: 'assistant', content: p } : { content: p }, finish_reason: null }] });
        await new Promise(r => setTimeout(r, 250));
      }
      frame({ id, object: 'chat.completion.chunk', created: 1, model: request.model, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] });
      frame({ id, object: 'chat.completion.chunk', created: 1, model: request.model, choices: [], usage: { prompt_tokens: 5, completion_tokens: 5, total_tokens: 10 } });
      res.end('data: [DONE]\n\n');
    });
  });
  return new Promise(resolve => server.listen(0, '127.0.0.1', () => resolve({ server, seen, listing, port: server.address().port })));
}

// ----- the proxy ------------------------------------------------------------------------------

function startProxy(mockPort, dataDir) {
  const child = spawn(binary, ['--listen', '127.0.0.1:0', '--data-dir', dataDir], {
    env: { ...process.env, FREELLMAPI_LOG: 'info', FREELLMAPI_UPSTREAM_GROQ: `http://127.0.0.1:${mockPort}` },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '', err = '';
  child.stdout.on('data', d => { out += d; });
  child.stderr.on('data', d => { err += d; });
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const poll = setInterval(() => {
      const addr = /listening on http:\/\/(\S+)/.exec(err);
      const code = /^\s*([A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4})\s*$/m.exec(out);
      if (addr && code) {
        clearInterval(poll);
        resolve({ child, addr: addr[1], code: code[1], log: () => err });
      } else if (Date.now() - started > 20000) {
        clearInterval(poll);
        child.kill();
        reject(new Error(`the server did not start:\n${err}\n${out}`));
      }
    }, 50);
  });
}

// ----- the test -------------------------------------------------------------------------------

const mock = await startMock();
const dataDir = mkdtempSync(path.join(os.tmpdir(), 'freellmapi-e2e-'));
const proxy = await startProxy(mock.port, dataDir);
const base = `http://${proxy.addr}`;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
});
const problems = [];
let step = 'start';
let page = null;
try {
  // Playwright's locale sets both navigator.languages and Accept-Language.
  const open = async locale => {
    const context = await browser.newContext({ viewport: { width: 1200, height: 900 }, colorScheme: 'dark', locale });
    const p = await context.newPage();
    p.on('pageerror', e => problems.push(`page error (${locale}): ${e.message}`));
    p.on('console', m => {
      if (m.type() === 'error' && !/status of 4\d\d/.test(m.text())) problems.push(`console (${locale}): ${m.text()}`);
    });
    p.setDefaultTimeout(15000);
    return p;
  };
  page = await open('en-US');
  const zhPage = await open('zh-CN');
  // Screenshots without the transient toasts, so a reviewer sees the page itself.
  const shot = async (name, full) => {
    await page.evaluate(() => document.getElementById('toast').replaceChildren());
    await page.screenshot({ path: path.join(shots, name), fullPage: !!full });
  };

  step = 'a browser that prefers Chinese gets the setup screen in Chinese';
  await zhPage.goto(base + '/');
  await zhPage.waitForSelector('html[lang="zh-CN"]');
  await zhPage.waitForSelector('h1:has-text("初始化控制台")');
  await zhPage.waitForSelector('label[for=setup-code]:has-text("初始化码")');
  await zhPage.waitForSelector('button[type=submit]:has-text("设置密码")');
  await zhPage.waitForSelector('#locale:has-text("English")');
  const zhLeft = await englishLeft(zhPage);
  if (zhLeft.length) fail(`English on the Chinese setup screen: ${zhLeft.join(' | ')}`);
  // Traditional Chinese readers get the one Chinese table; a language without one gets English.
  for (const [locale, lang] of [['zh-TW', 'zh-CN'], ['fr-FR', 'en']]) {
    const other = await open(locale);
    await other.goto(base + '/');
    await other.waitForSelector(`html[lang="${lang}"] #setup-code`);
    await other.context().close();
  }

  step = 'setup';
  await page.goto(base + '/');
  await page.waitForSelector('html[lang="en"] h1:has-text("Set up the dashboard")');
  await page.fill('#setup-code', proxy.code);
  await page.fill('#setup-password', PASSWORD);
  await page.fill('#setup-password2', PASSWORD);
  await page.click('button[type=submit]');
  await page.waitForSelector('#nav:not([hidden])');

  step = 'logout and log in again';
  await page.click('#logout');
  await page.waitForSelector('#login-password');
  await page.fill('#login-password', 'not the password');
  await page.click('button[type=submit]');
  await page.waitForSelector('form .error:has-text("wrong password")');
  await page.fill('#login-password', PASSWORD);
  await page.click('button[type=submit]');
  await page.waitForSelector('#page-keys');

  step = 'add a key';
  await page.waitForSelector('#token');
  await page.selectOption('#add-platform', 'groq');
  await page.fill('#add-key', 'gsk_e2ebrowserkey000000000042');
  await page.fill('#add-label', 'from the browser');
  await page.click('#add-key-form button[type=submit]');
  await page.waitForSelector('#key-list li.key code:has-text("gsk_...0042")');
  await page.click('#key-list li.key button:has-text("Check")');
  await page.waitForSelector('#key-list li.key .status-dot.healthy');

  step = 'give the key a proxy of its own (shown without its password), then take it away';
  await page.click('#key-list li.key button:has-text("Proxy")');
  await page.waitForSelector('#dialog[open]');
  await page.fill('#dialog input', 'socks5h://me:e2e-proxy-pw@10.9.8.7:1080');
  await page.click('#dialog button:has-text("Save")');
  await page.waitForSelector('#key-list li.key .key-proxy:has-text("socks5h://***@10.9.8.7:1080")');
  if ((await page.content()).includes('e2e-proxy-pw')) fail('the proxy password is on the page');
  await page.click('#key-list li.key button:has-text("Proxy")');
  await page.waitForSelector('#dialog[open]');
  await page.fill('#dialog input', 'none');
  await page.click('#dialog button:has-text("Save")');
  await page.waitForSelector('#key-list li.key .key-proxy', { state: 'detached' });

  step = 'make a named client key, see it once, revoke it after confirming';
  await page.fill('#client-key-label', 'tablet');
  await page.click('#client-key-form button[type=submit]');
  const made = await (await page.waitForSelector('#client-key-new')).textContent();
  if (!/^freellmapi-[0-9a-f]{48}$/.test(made)) fail(`the new client key reads ${made}`);
  await page.waitForSelector('#client-key-list li:has-text("tablet")');
  await shot('keys.png', true);
  await page.click('#client-key-list li:has-text("tablet") button:has-text("Revoke")');
  await page.waitForSelector('#dialog[open]');
  await page.click('#dialog button:has-text("Revoke")');
  await page.waitForSelector('#client-keys p:has-text("None yet.")');

  step = 'reorder the chain';
  await page.click('#nav a[data-page=chain]');
  await page.waitForSelector('#chain-list li.entry');
  const ids = () => page.$$eval('#chain-list li.entry', lis => lis.map(li => li.dataset.id));
  const before = await ids();
  if (before.length < 3) fail(`expected several groq models in the chain, got ${before}`);
  // Keyboard: the second row moves up one.
  await page.focus('#chain-list li.entry:nth-child(2) .handle');
  await page.keyboard.press('ArrowUp');
  // Pointer: the last row is dragged above the first.
  const handle = await page.$('#chain-list li.entry:last-child .handle');
  const first = await page.$('#chain-list li.entry:first-child');
  const hb = await handle.boundingBox();
  const fb = await first.boundingBox();
  await page.mouse.move(hb.x + hb.width / 2, hb.y + hb.height / 2);
  await page.mouse.down();
  await page.mouse.move(hb.x + hb.width / 2, fb.y + 4, { steps: 12 });
  await page.mouse.up();
  const after = await ids();
  const expected = [before[before.length - 1], before[1], before[0], ...before.slice(2, -1)];
  if (JSON.stringify(after) !== JSON.stringify(expected)) fail(`drag order ${after} != ${expected} (before: ${before}; handle ${JSON.stringify(hb)}, first ${JSON.stringify(fb)})`);
  // Switch the (new) second entry off, then save.
  await page.click('#chain-list li.entry:nth-child(2) .switch input');
  await page.click('#chain-save');
  await page.waitForSelector('.toast:has-text("Chain saved")');
  const saved = await page.evaluate(async () => (await (await fetch('/api/fallback')).json()).entries);
  const savedIds = saved.filter(e => e.keyCount > 0).map(e => e.id);
  if (JSON.stringify(savedIds) !== JSON.stringify(expected)) fail(`saved order ${savedIds} != ${expected}`);
  if (saved[1].enabled !== false) fail('the switched-off entry was saved enabled');
  await shot('chain.png', true);

  step = 'clear all cooldowns after confirming';
  await page.click('#clear-all-cooldowns');
  await page.waitForSelector('#dialog[open]');
  await page.click('#dialog button:has-text("Clear")');
  await page.waitForSelector('.toast:has-text("Cleared 0 cooling model/key pairs")');

  step = 'models page: add a model, fetch a provider\'s list, switch one off';
  await page.click('#nav a[data-page=models]');
  await page.waitForSelector('#model-list tr[data-id="groq/openai/gpt-oss-20b"]');
  await page.selectOption('#add-model-platform', 'groq');
  await page.fill('#add-model-id', 'e2e-custom');
  await page.click('#add-model');
  await page.waitForSelector('.toast:has-text("Added groq/e2e-custom")');
  await page.waitForSelector('#model-list tr[data-id="groq/e2e-custom"]');
  await page.selectOption('#discover-platform', 'groq');
  await page.click('#discover-go');
  await page.waitForSelector('#discover-result li:has-text("e2e-listed-model")');
  await page.click('#discover-result li:has-text("e2e-listed-model") button');
  await page.waitForSelector('.toast:has-text("Added groq/e2e-listed-model")');
  await page.click('#model-list tr[data-id="groq/e2e-custom"] .switch input');
  await page.waitForSelector('.toast:has-text("groq/e2e-custom saved")');
  const listed = await page.evaluate(async () => {
    const { token } = await (await fetch('/api/settings/token')).json();
    const r = await fetch('/v1/models', { headers: { Authorization: `Bearer ${token}` } });
    return (await r.json()).data.map(m => m.id);
  });
  if (listed.includes('e2e-custom')) fail('a switched-off model is still in /v1/models');
  if (!listed.includes('e2e-listed-model')) fail(`the fetched model is not in /v1/models: ${listed}`);
  await shot('models.png', true);

  step = 'models page: sync now retires what the listing dropped and adds what is new';
  // The sync that followed the new key saw four of Groq's five models (three chat, two
  // Whisper) missing and held back; wait for it to be on record, so it cannot land after the
  // one below.
  await page.waitForFunction(async () => {
    const r = await (await fetch('/api/models')).json();
    return r.platforms.find(p => p.id === 'groq').lastSync;
  }, null, { polling: 250, timeout: 15000 });
  mock.listing.splice(0, mock.listing.length, 'openai/gpt-oss-120b', 'openai/gpt-oss-20b', 'whisper-large-v3-turbo',
    'whisper-large-v3', 'e2e-listed-model', 'e2e-new-free');
  await page.click('#sync-now');
  await page.waitForSelector('#sync-result li:has-text("1 new, 1 retired")');
  await page.waitForSelector('#model-list tr[data-id="groq/qwen/qwen3.8-27b"] .badge.state-retired');
  await page.waitForSelector('#model-list tr[data-id="groq/e2e-new-free"]');
  await page.waitForSelector('#providers tr[data-platform="groq"] td:has-text("1 retired")');
  const synced = await page.evaluate(async () => {
    const { token } = await (await fetch('/api/settings/token')).json();
    const r = await fetch('/v1/models', { headers: { Authorization: `Bearer ${token}` } });
    return (await r.json()).data.map(m => m.id);
  });
  if (synced.includes('qwen/qwen3.8-27b')) fail('a retired model is still in /v1/models');
  if (!synced.includes('e2e-new-free')) fail(`the synced model is not in /v1/models: ${synced}`);
  await shot('models-synced.png', true);

  step = 'edit a model alias';
  await page.waitForSelector('#alias-list .alias-route');
  await page.fill('#alias-list .alias:nth-of-type(1) .alias-route', 'speed');
  await page.fill('#alias-list .alias:nth-of-type(2) .alias-route', 'no-such-model');
  await page.click('#alias-save');
  await page.waitForSelector('.toast:has-text("no-such-model")');
  await page.fill('#alias-list .alias:nth-of-type(2) .alias-route', 'intelligence');
  await page.click('#alias-save');
  await page.waitForSelector('.toast:has-text("Aliases saved")');
  const aliases = await page.evaluate(async () => (await (await fetch('/api/aliases')).json()));
  if (aliases.defaults || aliases.aliases[0].route !== 'speed' || aliases.aliases[1].route !== 'intelligence') fail(`saved aliases ${JSON.stringify(aliases)}`);

  step = 'playground streams';
  await page.click('#nav a[data-page=playground]');
  await page.waitForSelector('#pg-input');
  await page.fill('#pg-input', 'Say hello, please.');
  await page.keyboard.press('Enter');
  // Tokens show up while the stream is still running (the mock sends one every 250 ms).
  await page.waitForFunction(() => {
    const m = document.querySelector('.msg.assistant');
    return m && m.textContent.startsWith('Hello') && !m.textContent.endsWith('upstream.');
  }, null, { polling: 20 });
  await page.waitForSelector('.msg.assistant:has-text("Hello from the mock upstream.")');
  await page.waitForSelector('.meta:has-text("via groq/")');
  const meta = await page.textContent('.meta');
  if (!/first token \d+ ms/.test(meta) || !/5 in \/ 5 out tokens/.test(meta)) fail(`meta line: ${meta}`);
  await shot('playground.png', true);

  step = 'analytics counts the request';
  await page.click('#nav a[data-page=analytics]');
  // The request log is written in batches; re-select the range until the record is in.
  const counted = async () => page.$eval('#tile-requests .tile-value', t => t.textContent).catch(() => '');
  for (let i = 0; i < 40 && (await counted()) !== '1'; i++) {
    await new Promise(r => setTimeout(r, 250));
    await page.click('.tabs button:has-text("24h")');
  }
  if ((await counted()) !== '1') fail(`the analytics page shows ${await counted()} requests, not 1`);
  await page.waitForSelector('#analytics-body svg.chart');
  await page.waitForSelector('#analytics-body td:has-text("groq")');
  await page.waitForSelector('#analytics-body td:has-text("Chat completions")');
  await shot('analytics.png', true);

  step = 'Chinese: the login and the pages, then English, kept over a reload';
  await zhPage.reload();
  await zhPage.waitForSelector('h1:has-text("登录")');
  await zhPage.waitForSelector('label[for=login-password]:has-text("控制台密码")');
  await zhPage.fill('#login-password', PASSWORD);
  await zhPage.click('button[type=submit]:has-text("登录")');
  await zhPage.waitForSelector('#nav:not([hidden]) a[data-page=keys]:has-text("密钥")');
  for (const [name, text] of [['chain', '回退链'], ['models', '模型'], ['analytics', '统计分析'], ['playground', '调试台']]) {
    await zhPage.waitForSelector(`#nav a[data-page=${name}]:has-text("${text}")`);
  }
  await zhPage.waitForSelector('#logout:has-text("退出登录")');
  await zhPage.waitForSelector('#page-keys h2:has-text("服务商密钥")');
  await zhPage.waitForSelector('#key-list li.key button:has-text("检查")');
  await zhPage.waitForSelector('#key-list li.key .muted:has-text("正常")');
  await zhPage.click('#locale');
  await zhPage.waitForSelector('html[lang="en"]');
  await zhPage.waitForSelector('#nav a[data-page=keys]:text-is("Keys")');
  await zhPage.waitForSelector('#page-keys h2:has-text("Provider keys")');
  await zhPage.waitForSelector('#locale:has-text("中文")');
  await zhPage.reload();
  await zhPage.waitForSelector('#page-keys h2:has-text("Provider keys")');
  await zhPage.waitForSelector('#nav a[data-page=chain]:text-is("Fallback chain")');
  if (await zhPage.getAttribute('html', 'lang') !== 'en') fail('English was not kept over a reload');

  step = 'an English browser switches to 中文: every page, no English left';
  await page.click('#nav a[data-page=keys]');
  await page.waitForSelector('#key-list li.key');
  await page.click('#locale:has-text("中文")');
  await page.waitForSelector('html[lang="zh-CN"]');
  await page.waitForSelector('#page-keys h2:has-text("客户端 API 密钥")');
  await page.waitForSelector('#page-keys button:has-text("全部检查")');
  await page.waitForSelector('#key-list li.key button:has-text("删除")');
  await page.waitForSelector('#client-keys p:has-text("暂无。")');
  await page.waitForSelector('#key-list li.key');
  const left = {};
  left.keys = await englishLeft(page);
  await shot('keys-zh.png', true);
  await page.click('#nav a[data-page=models]');
  await page.waitForSelector('#page-models h2:has-text("模型")');
  await page.waitForSelector('#page-models h2:has-text("服务商")');
  await page.waitForSelector('#model-list th:has-text("能力")');
  await page.waitForSelector('#sync-now:has-text("立即同步")');
  await page.waitForSelector('#add-model:has-text("添加模型")');
  await page.waitForSelector('#model-list .badge.state-retired:has-text("已下线")');
  await page.waitForSelector('#alias-list .alias-route');
  await page.waitForSelector('#embedding-aliases select');
  left.models = await englishLeft(page);
  await shot('models-zh.png', true);
  await page.click('#nav a[data-page=chain]');
  await page.waitForSelector('#chain-list li.entry');
  await page.waitForSelector('#page-chain h2:has-text("回退链")');
  left.chain = await englishLeft(page);
  await page.click('#nav a[data-page=analytics]');
  await page.waitForSelector('#analytics-body td:has-text("Chat Completions")');
  await page.waitForSelector('.tabs button:has-text("24 小时")');
  left.analytics = await englishLeft(page);
  await page.click('#nav a[data-page=playground]');
  await page.waitForSelector('#pg-send:has-text("发送")');
  left.playground = await englishLeft(page);
  for (const [name, found] of Object.entries(left)) {
    if (found.length) fail(`English on the Chinese ${name} page: ${found.join(' | ')}`);
  }
  await page.reload();
  await page.waitForSelector('#pg-send:has-text("发送")');
  await page.click('#locale:has-text("English")');
  await page.waitForSelector('#pg-send:has-text("Send")');

  step = 'light theme and a phone-sized screen';
  await page.click('#theme');
  await page.setViewportSize({ width: 360, height: 740 });
  await page.click('#nav a[data-page=keys]');
  await page.waitForSelector('#key-list li.key');
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  if (overflow > 0) fail(`the Keys page scrolls sideways by ${overflow}px at 360px`);
  await shot('keys-360px-light.png', true);
  await page.click('#nav a[data-page=chain]');
  await page.waitForSelector('#chain-list li.entry');
  const chainOverflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  if (chainOverflow > 0) fail(`the chain page scrolls sideways by ${chainOverflow}px at 360px`);

  step = 'remove the key after confirming';
  await page.click('#nav a[data-page=keys]');
  await page.click('#key-list li.key button:has-text("Remove")');
  await page.waitForSelector('#dialog[open]');
  await shot('confirm-remove.png');
  await page.click('#dialog button:has-text("Remove")');
  await page.waitForSelector('#key-list p:has-text("No provider keys yet")');

  if (problems.length) fail(problems.join('\n'));
  if (proxy.log().includes('gsk_e2ebrowserkey')) fail('the provider key reached the server log');
  console.log(`dashboard e2e: ok (${stringCount} strings in each language; ${mock.seen.length} upstream requests; screenshots in ${path.relative(root, shots)}/)`);
} catch (e) {
  console.error(`dashboard e2e failed at "${step}": ${e.message}`);
  if (page) await page.screenshot({ path: path.join(shots, 'failure.png'), fullPage: true }).catch(() => {});
  if (problems.length) console.error(problems.join('\n'));
  console.error('server log:\n' + proxy.log().split('\n').slice(-30).join('\n'));
  process.exitCode = 1;
} finally {
  await browser.close();
  proxy.child.kill('SIGTERM');
  mock.server.close();
  rmSync(dataDir, { recursive: true, force: true });
}
