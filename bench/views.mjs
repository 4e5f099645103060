// Views of large owners (issue 19): a 10,000-repository owner answered as a filtered page of 100
// and as a summary, against the 100-repository view and the whole 10,000-repository listing, from
// the memory tier and from KV; and the bytes the dashboard's first screen of a large owner costs
// before (the whole listing) and after (summary + one server page).
//
// Two workers side by side over one emulator: the default one (memory tier on) and one with
// `MEMORY_TTL_MS` "0", whose every warm answer is a KV HIT. Requests take turns, one each per
// round, so a busy moment on the shared machine lands on all of them alike.
import { gzipSync } from "node:zlib";
import { Miniflare } from "miniflare";
import { startEmulator } from "../tests/emulator/server.mjs";
import { makeOwner } from "../tests/emulator/fixtures.mjs";
import { request } from "./common.mjs";

const BIG = "views-10000";
const SMALL = "views-100";
// What the dashboard asks for (src/dashboard/index.html FIELDS).
const DASH_FIELDS = "name,url,description,visibility,archived,fork,default_branch,pushed_at,language,ci";

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((s.length * p) / 100))];
};
const summary = (xs) => ({ p50: pct(xs, 50), p95: pct(xs, 95), runs: xs.length });

export async function benchViews({ workerOpts, runs = 200, log = () => {} }) {
  // Pages cost nothing here: the builds are setup, not what is measured.
  const emu = await startEmulator({ pageMs: 1, latencyMs: 0 });
  emu.forge.owners.set(BIG, makeOwner(BIG, "Organization", 10_000));
  emu.forge.owners.set(SMALL, makeOwner(SMALL, "Organization", 100));
  const mem = new Miniflare(workerOpts({ UPSTREAM_TIMEOUT_MS: "30000" }, emu.url));
  const kvOnly = new Miniflare(workerOpts({ UPSTREAM_TIMEOUT_MS: "30000", MEMORY_TTL_MS: "0" }, emu.url));
  try {
    const [memBase, kvBase] = [await mem.ready, await kvOnly.ready];
    const at = (base, path) => new URL(path, base).href;
    const ready = async (url) => {
      for (let i = 0; i < 600; i++) {
        const res = await request(url);
        if (res.status === 200) return res;
        await new Promise((r) => setTimeout(r, 500));
      }
      throw new Error(`${url} never answered 200`);
    };
    log(`views: building ${BIG} and ${SMALL} in both workers`);
    for (const base of [memBase, kvBase]) {
      await ready(at(base, `/v1/orgs/${BIG}/repos?fields=name`));
      await ready(at(base, `/v1/orgs/${SMALL}/repos`));
    }
    const paths = {
      page_of_10000: `/v1/orgs/${BIG}/repos?ci=failure&sort=pushed_at&per_page=100`,
      view_of_100: `/v1/orgs/${SMALL}/repos`,
      whole_10000: `/v1/orgs/${BIG}/repos`,
      summary_10000: `/v1/orgs/${BIG}/summary`,
    };
    const targets = {};
    for (const [k, p] of Object.entries(paths)) {
      targets[`${k}_mem`] = at(memBase, p);
      targets[`${k}_kv`] = at(kvBase, p);
    }
    const times = Object.fromEntries(Object.keys(targets).map((k) => [k, []]));
    const tiers = Object.fromEntries(Object.keys(targets).map((k) => [k, {}]));
    for (const url of Object.values(targets)) await ready(url);
    log(`views: ${runs} rounds over ${Object.keys(targets).length} targets`);
    for (let i = 0; i < runs; i++) {
      for (const [k, url] of Object.entries(targets)) {
        const t = performance.now();
        const res = await request(url);
        times[k].push(performance.now() - t);
        if (res.status !== 200) throw new Error(`${k}: ${res.status}`);
        const timing = String(res.headers["server-timing"] ?? "");
        const tier = /\bmem;dur=0\b/.test(timing) && !/\bkv;/.test(timing) ? "mem" : /\bkv;/.test(timing) ? "kv" : "other";
        tiers[k][tier] = (tiers[k][tier] ?? 0) + 1;
      }
    }
    // The dashboard's first screen of a large owner: before, the whole listing with its fields;
    // after, the summary and the first server page.
    const bytes = async (path) => {
      const res = await request(at(memBase, path));
      return { raw: Buffer.byteLength(res.text), gzip: gzipSync(res.text).length };
    };
    const before = await bytes(`/v1/orgs/${BIG}/repos?fields=${DASH_FIELDS}`);
    const sum = await bytes(`/v1/orgs/${BIG}/summary`);
    const page = await bytes(`/v1/orgs/${BIG}/repos?fields=${DASH_FIELDS}&per_page=100&page=1`);
    return {
      owner_repos: 10_000,
      latency: Object.fromEntries(Object.entries(times).map(([k, xs]) => [k, summary(xs)])),
      tiers,
      first_screen: { before, after: { raw: sum.raw + page.raw, gzip: sum.gzip + page.gzip, summary: sum, page } },
    };
  } finally {
    await mem.dispose();
    await kvOnly.dispose();
    await emu.close();
  }
}

export function renderViews(v, cpu) {
  if (!v) return [];
  const L = v.latency;
  const ms = (x) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
  const c = (s) => `${ms(s.p50)} / ${ms(s.p95)}`;
  const mark = (ok) => (ok ? "met" : "**missed**");
  const ratio = (a, b) => a.p50 / b.p50;
  const kib = (b) => `${(b / 1024).toFixed(1)} KiB`;
  const out = ["", "## Views of a large owner: filtered pages and the summary", ""];
  out.push(`A ${v.owner_repos.toLocaleString("en")}-repository owner, its listing cached. Two workers side by side, requests taking turns: memory tier on`);
  out.push("(default) and `MEMORY_TTL_MS` \"0\" (every answer a KV HIT: read, decode, filter, project, serialize). ms, p50 / p95.", "");
  out.push("| answer | memory tier | KV | against | goal |", "|---|---:|---:|---|---|");
  const pageMem = ratio(L.page_of_10000_mem, L.view_of_100_mem);
  out.push(`| page of 100 (\`ci=failure&sort=pushed_at&per_page=100\`) | ${c(L.page_of_10000_mem)} | ${c(L.page_of_10000_kv)} | memory: ${pageMem.toFixed(2)}× the 100-repository view's memory HIT | ≤ 1.5×: ${mark(pageMem <= 1.5)} |`);
  out.push(`| the 100-repository view | ${c(L.view_of_100_mem)} | ${c(L.view_of_100_kv)} | | |`);
  out.push(`| the whole 10,000-repository listing | ${c(L.whole_10000_mem)} | ${c(L.whole_10000_kv)} | KV: the page is ${(ratio(L.page_of_10000_kv, L.whole_10000_kv)).toFixed(2)}× the whole listing's KV HIT | |`);
  out.push(`| summary | ${c(L.summary_10000_mem)} | ${c(L.summary_10000_kv)} | | |`);
  const fs = v.first_screen;
  out.push("", "Bytes on the wire for the dashboard's first screen of this owner (its fields; gzip as the edge would send them):", "");
  out.push("| | raw | gzip |", "|---|---:|---:|");
  out.push(`| before: the whole listing | ${kib(fs.before.raw)} | ${kib(fs.before.gzip)} |`);
  out.push(`| after: summary + first page of 100 | ${kib(fs.after.raw)} | ${kib(fs.after.gzip)} |`);
  out.push(`| after / before | ${(fs.after.raw / fs.before.raw * 100).toFixed(1)} % | ${(fs.after.gzip / fs.before.gzip * 100).toFixed(1)} % |`);
  if (cpu?.view_filter_sort_page_us) {
    const u = (s) => `${s.p50.toFixed(0)} µs (min ${s.min.toFixed(0)})`;
    out.push("", `Native CPU over ${cpu.repos.toLocaleString("en")} records (\`cargo bench --bench cpu\`, p50): filter + sort + page ${u(cpu.view_filter_sort_page_us)} (goal ≤ 1 ms: ${mark(cpu.view_filter_sort_page_us.p50 <= 1000)}); the same with the page's body ${u(cpu.view_page_body_us)}; the summary and its body ${u(cpu.summary_body_us)}.`);
  }
  return out;
}
