// The benchmark: builds nothing itself (scripts/bench.sh does), runs the release worker in
// Miniflare against the GitHub emulator with a simulated upstream latency, measures side by side
// in one run, and writes BENCHMARKS.md and bench/results.json.
//
//   node bench/run.mjs [--latency 80] [--page-ms 1000] [--quick]
//   node bench/run.mjs --render-only   # rewrite BENCHMARKS.md from bench/results.json (after editing notes.md)
//
// --page-ms is the cost of one 100-repository owner page in the large-owner section
// (bench/owners.mjs; default 1000 ms, 100 ms with --quick): that section takes ~100 pages × page cost.
import { Miniflare } from "miniflare";
import autocannon from "autocannon";
import { readFileSync, writeFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { execFileSync } from "node:child_process";
import os from "node:os";
import { fileURLToPath } from "node:url";
import { startEmulator } from "../tests/emulator/server.mjs";
import { demoForge, makeOwner } from "../tests/emulator/fixtures.mjs";
import { benchOwners, renderOwners } from "./owners.mjs";

const root = fileURLToPath(new URL("..", import.meta.url));
const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const LATENCY = Number(arg("latency", process.env.BENCH_LATENCY_MS ?? 80));
const QUICK = process.argv.includes("--quick");
const PAGE_MS = Number(arg("page-ms", process.env.BENCH_PAGE_MS ?? (QUICK ? 100 : 1000)));
if (!Number.isFinite(LATENCY) || LATENCY < 0 || !Number.isFinite(PAGE_MS) || PAGE_MS <= 0) {
  throw new Error("--latency must be a number >= 0 and --page-ms a number > 0");
}
const SIZES = [10, 100, 1000];
const SIZE_BUDGET = 250 * 1024;
const log = (...a) => console.error("bench:", ...a);
// Hand-written reading of the numbers (what was missed and why), kept beside the script.
const NOTES = readFileSync(new URL("notes.md", import.meta.url), "utf8").trim();
if (process.argv.includes("--render-only")) {
  writeFileSync(`${root}BENCHMARKS.md`, render(JSON.parse(readFileSync(`${root}bench/results.json`, "utf8"))));
  log("rewrote BENCHMARKS.md from bench/results.json");
  process.exit(0);
}

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((s.length * p) / 100))];
};
const summary = (xs) => ({ p50: pct(xs, 50), p95: pct(xs, 95), runs: xs.length });
async function timed(fn) {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}
async function samples(runs, before, fn) {
  const out = [];
  for (let i = 0; i < runs; i++) {
    if (before) await before();
    out.push(await timed(fn));
  }
  return out;
}

// --- setup -------------------------------------------------------------------------------
const forge = demoForge();
for (const n of SIZES) forge.owners.set(`bench-${n}`, makeOwner(`bench-${n}`, "Organization", n));
const emu = await startEmulator({ forge, latencyMs: LATENCY });
const workerOpts = (bindings, graphqlUrl = emu.url) => ({
  modules: true,
  scriptPath: `${root}build/index.js`,
  modulesRoot: `${root}build`,
  modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"], fallthrough: true }],
  kvNamespaces: ["CACHE"],
  durableObjects: { OWNERS: { className: "OwnerDirectory", useSQLite: true } },
  bindings: { GITHUB_GRAPHQL_URL: graphqlUrl, UPSTREAM_TIMEOUT_MS: "30000", ...bindings },
  host: "127.0.0.1",
  port: 0,
});
// The admin purge is how the benchmark makes a listing cold again: deleting the KV key is not
// enough, the owner's Durable Object keeps a completed listing in memory while it is fresh.
const ADMIN = "bench-admin-token";
const mf = new Miniflare(workerOpts({ ADMIN_TOKEN: ADMIN }));
const base = await mf.ready;
const kv = await mf.getKVNamespace("CACHE");
const view = (n) => new URL(`/v1/orgs/bench-${n}/repos`, base).href;
const purge = async (n) => {
  const res = await fetch(new URL(`/v1/cache/orgs/bench-${n}`, base), { method: "DELETE", headers: { Authorization: `Bearer ${ADMIN}` } });
  await res.text();
  if (res.status !== 200) throw new Error(`purge bench-${n}: ${res.status}`);
};
const get = async (url) => {
  const res = await fetch(url);
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${url}: ${res.status} ${text.slice(0, 200)}`);
  return { res, text };
};

// The per-repository approach: one REST call per repository, `limit` at a time.
async function baselineView(n, limit) {
  const names = forge.owners.get(`bench-${n}`).repos.map((r) => r.name);
  let next = 0;
  const worker = async () => {
    while (next < names.length) {
      const name = names[next++];
      const res = await fetch(`${emu.url.replace("/graphql", "")}/repos/bench-${n}/${name}`);
      await res.json();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, names.length) }, worker));
}

const results = { latency_ms: LATENCY, machine: `${os.cpus().length} × ${os.cpus()[0].model}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, node ${process.version}`, date: new Date().toISOString(), views: [] };

// --- 1 + 2: upstream calls and latency per view ------------------------------------------
for (const n of SIZES) {
  log(`view of ${n} repositories`);
  const row = { n };
  const calls = async (fn) => {
    const before = emu.stats.requests + emu.stats.rest;
    await fn();
    return emu.stats.requests + emu.stats.rest - before;
  };
  const cold = () => purge(n);
  row.calls = {
    baseline: await calls(() => baselineView(n, 6)),
    cold: await (async () => { await cold(); return calls(() => get(view(n))); })(),
    warm: await calls(() => get(view(n))),
  };
  const runs = (small, big) => (QUICK ? 2 : n >= 1000 ? big : small);
  row.latency = {
    baseline_6: summary(await samples(runs(10, 2), null, () => baselineView(n, 6))),
    baseline_unbounded: summary(await samples(runs(10, 3), null, () => baselineView(n, Infinity))),
    cold: summary(await samples(runs(10, 5), cold, () => get(view(n)))),
    warm: summary(await samples(runs(100, 50), null, () => get(view(n)))),
  };
  // STALE: the entry is backdated past FRESH_TTL_SECONDS before each read; the refresh it
  // triggers runs after the response.
  const { text: fresh } = await get(view(n));
  const stored = await kv.get(`v1:org:bench-${n}`);
  const backdated = stored.replace(/"fetched_at":"[^"]+"/, `"fetched_at":"${new Date(Date.now() - 3600_000).toISOString()}"`);
  // Before each sample, let the previous sample's background refresh land, then backdate again.
  const settle = async () => {
    const end = Date.now() + 10_000;
    while (Date.now() < end && (await kv.get(`v1:org:bench-${n}`)) === backdated) await new Promise((r) => setTimeout(r, 20));
  };
  // The purge makes the owner's object forget its last build, or it would not rebuild so soon.
  row.latency.stale = summary(await samples(runs(50, 20), async () => { await settle(); await purge(n); await kv.put(`v1:org:bench-${n}`, backdated); }, async () => {
    const { res } = await get(view(n));
    if (res.headers.get("x-cache") !== "STALE") throw new Error("expected STALE");
  }));
  await settle();
  row.body_bytes = fresh.length;
  results.views.push(row);
}

// --- 3: the hit path against the runtime floor -------------------------------------------
log("hit path vs floor");
const { text: body100 } = await get(view(100));
const floor = new Miniflare({
  modules: true,
  script: `const BODY = ${JSON.stringify(body100)};
export default { fetch() { return new Response(BODY, { headers: { "content-type": "application/json; charset=utf-8" } }); } };`,
  host: "127.0.0.1",
  port: 0,
});
const floorUrl = (await floor.ready).href;
// A second, fairer floor: the same work in plain JavaScript (one KV read of the same stored
// entry, JSON.parse, project the default fields, JSON.stringify).
const storedEntry = await kv.get("v1:org:bench-100");
const kvFloor = new Miniflare({
  modules: true,
  kvNamespaces: ["CACHE"],
  script: `export default { async fetch(req, env) {
    const e = JSON.parse(await env.CACHE.get("entry"));
    const repos = e.data.repos.filter((r) => r.visibility === "public").map((r) => ({ name: r.name, full_name: r.full_name,
      visibility: r.visibility, archived: r.archived, pushed_at: r.pushed_at, ci: r.ci }));
    return new Response(JSON.stringify({ org: e.data.login, repos, fetched_at: e.fetched_at }), { headers: { "content-type": "application/json" } });
  } };`,
  host: "127.0.0.1",
  port: 0,
});
const kvFloorUrl = (await kvFloor.ready).href;
await (await kvFloor.getKVNamespace("CACHE")).put("entry", storedEntry);
const seq = async (url) => summary(await samples(QUICK ? 50 : 300, null, () => get(url)));
const hitSeq = await seq(view(100));
const floorSeq = await seq(floorUrl);
const kvFloorSeq = await seq(kvFloorUrl);
const cannon = (url) => new Promise((resolve, reject) => {
  autocannon({ url, connections: 10, duration: QUICK ? 2 : 5 }, (err, r) => (err ? reject(err) : resolve(r)));
});
const hitLoad = await cannon(view(100));
const floorLoad = await cannon(floorUrl);
const kvFloorLoad = await cannon(kvFloorUrl);
results.floor = {
  body_bytes: body100.length,
  sequential: { hit: hitSeq, floor: floorSeq, kv_floor: kvFloorSeq },
  load: {
    hit: { rps: hitLoad.requests.average, p50: hitLoad.latency.p50, p97_5: hitLoad.latency.p97_5, errors: hitLoad.errors + hitLoad.non2xx },
    floor: { rps: floorLoad.requests.average, p50: floorLoad.latency.p50, p97_5: floorLoad.latency.p97_5, errors: floorLoad.errors + floorLoad.non2xx },
    kv_floor: { rps: kvFloorLoad.requests.average, p50: kvFloorLoad.latency.p50, p97_5: kvFloorLoad.latency.p97_5, errors: kvFloorLoad.errors + kvFloorLoad.non2xx },
  },
};
await floor.dispose();
await kvFloor.dispose();
await mf.dispose();
await emu.close();

// --- 4: owners of any size (its own emulator with a page cost, and its own worker) -------
log("large owner");
results.owners = await benchOwners({ workerOpts, pageMs: PAGE_MS, log });

// --- 5: CPU, natively --------------------------------------------------------------------
log("native CPU (cargo bench)");
const cpuOut = execFileSync("cargo", ["bench", "--quiet", "--bench", "cpu"], { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
const cpuNative = JSON.parse(cpuOut.trim().split("\n").pop());
results.cpu = cpuNative.cpu;
results.owners.cpu_native = cpuNative.owner_build;

// --- 6: size -----------------------------------------------------------------------------
const wasm = readFileSync(`${root}build/index_bg.wasm`);
results.size = { raw: wasm.length, gzip: gzipSync(wasm, { level: 9 }).length, budget_gzip: SIZE_BUDGET };

writeFileSync(`${root}bench/results.json`, JSON.stringify(results, null, 2) + "\n");
writeFileSync(`${root}BENCHMARKS.md`, render(results));
log("wrote BENCHMARKS.md and bench/results.json");

function render(r) {
  const ms = (x) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
  const ratio = (a, b) => `${(a / b).toFixed(a / b >= 10 ? 0 : 1)}×`;
  const mark = (ok) => (ok ? "met" : "**missed**");
  const lines = [];
  lines.push("# Benchmarks", "");
  lines.push(`Generated by \`npm run bench\` on ${r.date.slice(0, 10)} (${r.machine}). Everything runs on this one machine: the release`);
  lines.push(`worker in Miniflare (the local workerd runtime the tests use), the GitHub emulator with **${r.latency_ms} ms` + " simulated latency per upstream request**, and the");
  lines.push("clients. Absolute numbers are loopback numbers; the ratios are the point. Raw data: `bench/results.json`.", "");
  lines.push("## Upstream calls per dashboard view", "");
  lines.push("| repositories | per-repository baseline | forgelens cold | forgelens warm | target |", "|---:|---:|---:|---:|---|");
  for (const v of r.views) {
    const ok = v.calls.cold === Math.ceil(v.n / 100) && v.calls.warm === 0;
    lines.push(`| ${v.n} | ${v.calls.baseline} | ${v.calls.cold} | ${v.calls.warm} | ceil(N/100) cold, 0 warm: ${mark(ok)} |`);
  }
  lines.push("", "## Latency per dashboard view (ms, p50 / p95)", "");
  lines.push("Baseline: one REST call per repository, 6 at a time (the Workers connection limit) or all at once.");
  lines.push("forgelens: one `GET /v1/orgs/{owner}/repos`; cold = nothing cached, warm = HIT, STALE = served from an old entry while it refreshes.", "");
  lines.push("| repositories | baseline ×6 | baseline unbounded | cold | warm (HIT) | STALE | baseline ×6 / warm | cold / warm |", "|---:|---:|---:|---:|---:|---:|---:|---:|");
  for (const v of r.views) {
    const L = v.latency;
    const c = (s) => `${ms(s.p50)} / ${ms(s.p95)}`;
    lines.push(`| ${v.n} | ${c(L.baseline_6)} | ${c(L.baseline_unbounded)} | ${c(L.cold)} | ${c(L.warm)} | ${c(L.stale)} | ${ratio(L.baseline_6.p50, L.warm.p50)} | ${ratio(L.cold.p50, L.warm.p50)} |`);
  }
  const f = r.floor;
  const seqRatio = f.sequential.hit.p50 / f.sequential.floor.p50;
  lines.push("", "## Hit path against the runtime floor", "");
  lines.push(`The floor is a minimal worker in the same runtime returning a static JSON body of the same size (${f.body_bytes} bytes, the 100-repository view).`);
  lines.push("The KV floor is a plain JavaScript worker doing the same work as a HIT: one KV read of the same stored entry, `JSON.parse`, projection, `JSON.stringify`.", "");
  const kvRatio = f.sequential.hit.p50 / f.sequential.kv_floor.p50;
  lines.push("| | forgelens HIT | static floor | KV floor (JS) | HIT / static | HIT / KV floor | target |", "|---|---:|---:|---:|---:|---:|---|");
  lines.push(`| sequential p50 (ms) | ${ms(f.sequential.hit.p50)} | ${ms(f.sequential.floor.p50)} | ${ms(f.sequential.kv_floor.p50)} | ${seqRatio.toFixed(2)}× | ${kvRatio.toFixed(2)}× | HIT ≤ 1.5× static: ${mark(seqRatio <= 1.5)} |`);
  lines.push(`| sequential p95 (ms) | ${ms(f.sequential.hit.p95)} | ${ms(f.sequential.floor.p95)} | ${ms(f.sequential.kv_floor.p95)} | ${(f.sequential.hit.p95 / f.sequential.floor.p95).toFixed(2)}× | ${(f.sequential.hit.p95 / f.sequential.kv_floor.p95).toFixed(2)}× | |`);
  lines.push(`| autocannon, 10 connections, requests/s | ${f.load.hit.rps.toFixed(0)} | ${f.load.floor.rps.toFixed(0)} | ${f.load.kv_floor.rps.toFixed(0)} | ${(f.load.hit.rps / f.load.floor.rps).toFixed(2)}× | ${(f.load.hit.rps / f.load.kv_floor.rps).toFixed(2)}× | |`);
  lines.push(`| autocannon p50 / p97.5 (ms) | ${f.load.hit.p50} / ${f.load.hit.p97_5} | ${f.load.floor.p50} / ${f.load.floor.p97_5} | ${f.load.kv_floor.p50} / ${f.load.kv_floor.p97_5} | | | |`);
  lines.push("", "## CPU per request, native (µs, p50 / p95)", "");
  lines.push("`cargo bench --bench cpu`, release profile as shipped (`opt-level = 2` for this crate, `\"z\"` for dependencies). MISS = parse every GitHub page + project + serialize; HIT = decode the KV envelope + project + serialize.", "");
  lines.push("| repositories | MISS p50 / p95 (min) | HIT p50 / p95 (min) | stored entry | target |", "|---:|---:|---:|---:|---|");
  for (const c of r.cpu) {
    const m = c.miss_parse_project_serialize_us;
    const h = c.hit_decode_project_serialize_us;
    const target = c.repos === 1000 ? `parse+project p50 < 2000 µs: ${mark(m.p50 < 2000)}` : "";
    lines.push(`| ${c.repos} | ${ms(m.p50)} / ${ms(m.p95)} (${ms(m.min)}) | ${ms(h.p50)} / ${ms(h.p95)} (${ms(h.min)}) | ${(c.stored_bytes / 1024).toFixed(0)} KiB | ${target} |`);
  }
  lines.push(...renderOwners(r.owners, r.owners?.cpu_native));
  lines.push("", "## Size", "");
  lines.push("| wasm raw | wasm gzip | budget (gzip) | |", "|---:|---:|---:|---|");
  lines.push(`| ${(r.size.raw / 1024).toFixed(0)} KiB | ${(r.size.gzip / 1024).toFixed(0)} KiB | ${(r.size.budget_gzip / 1024).toFixed(0)} KiB | ${r.size.gzip <= r.size.budget_gzip ? "within budget" : "**OVER BUDGET**"} |`);
  lines.push("", "## Notes", "");
  lines.push(NOTES);
  return lines.join("\n") + "\n";
}
