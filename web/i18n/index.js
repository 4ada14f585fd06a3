// The dashboard's language: which locale is in use (the remembered choice, else the first the
// browser prefers that has a table), its string table, and t()/tx() to read it. English is
// always loaded, as the fallback for a key another table lacks; any other table is fetched
// only when chosen.
import en from './en.js?v={{v}}';

/** Every locale with a table, by its name in its own language (what the switch shows). */
export const LOCALES = { en: 'English', 'zh-CN': '中文' };

const LOADERS = { 'zh-CN': () => import('./zh-CN.js?v={{v}}') };
const REMEMBERED = 'locale';

let current = 'en';
let table = en;
let plurals = new Intl.PluralRules('en');

const language = tag => tag.toLowerCase().split('-')[0];

/**
 * The remembered choice, else the first of navigator.languages (the list the browser sends as
 * Accept-Language) whose language has a table. The region and script are not compared: zh-TW
 * and zh-HK get the Simplified table too, the only Chinese one and closer for them than English.
 */
export function preferred() {
  const saved = localStorage.getItem(REMEMBERED);
  if (saved && Object.hasOwn(LOCALES, saved)) return saved;
  for (const tag of navigator.languages || [navigator.language]) {
    const match = Object.keys(LOCALES).find(l => language(l) === language(tag));
    if (match) return match;
  }
  return 'en';
}

/** Makes `tag` (a key of LOCALES) the locale in use; a table that fails to load leaves English. */
export async function useLocale(tag) {
  let next = en;
  if (LOADERS[tag]) {
    try { next = (await LOADERS[tag]()).default; } catch (e) {
      console.warn(`the ${tag} strings did not load: ${e.message}`);
      tag = 'en';
    }
  } else tag = 'en';
  current = tag;
  table = next;
  plurals = new Intl.PluralRules(tag);
  document.documentElement.lang = tag;
}

/** Keeps `tag` for the next visits (in this browser). */
export function remember(tag) {
  localStorage.setItem(REMEMBERED, tag);
}

/** The locale in use, for Intl and toLocale*String. */
export const locale = () => current;

function lookup(key, vars) {
  let s = Object.hasOwn(table, key) ? table[key] : en[key];
  if (s === undefined) {
    // A console error fails the browser test, so a forgotten English string cannot ship.
    console.error(`no string for ${key}`);
    return key;
  }
  if (typeof s === 'object') s = s[plurals.select(Number(vars && vars.n))] ?? s.other;
  return s;
}

/** The string for `key` with each `{name}` replaced by `vars.name`. */
export function t(key, vars) {
  return lookup(key, vars).replace(/\{(\w+)\}/g, (m, name) => (vars && name in vars ? String(vars[name]) : m));
}

/**
 * The string for `key` as a list for h(), where `vars` may hold elements (a `<code>` in the
 * middle of a sentence: where it goes is the translation's business).
 */
export function tx(key, vars) {
  return lookup(key, vars).split(/\{(\w+)\}/).map((part, i) => {
    if (i % 2 === 0) return part;
    return vars && part in vars ? vars[part] : `{${part}}`;
  });
}
