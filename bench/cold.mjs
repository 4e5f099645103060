// Cold owner-listing latency alone, as bench/run.mjs measures it (admin purge, then one timed
// view, over kept-alive connections), for one or more builds side by side: samples are
// interleaved so the machine's load hits every build alike. Prints p50/p95 and, from the
// emulator's log, the medians before the owner page reached it and after it answered. Builds
// nothing: copy a build/ (index.js + index_bg.wasm) aside to compare it with another.
//
//   node bench/cold.mjs [--latency 80] [--runs 15] [--n 100] [--gap ms] [--page-ms 0] [dir ...]   (default: build/)
//
// --page-ms turns on the per-node cost model (bench/run.mjs's "two cost models"): an owner page of
// 100 repositories costs that much on top of the latency, a smaller page in proportion.
// --gap waits between samples; without it one build's write after its answer (100 ms later) may
// land during the next build's timed view.
import { Miniflare } from "miniflare";
import { fileURLToPath } from "node:url";
import { startEmulator } from "../tests/emulator/server.mjs";
import { demoForge, makeOwner } from "../tests/emulator/fixtures.mjs";
import { buildArgs, request, workerOptions } from "./common.mjs";

const root = fileURLToPath(new URL("..", import.meta.url));
const { opts, dirs } = buildArgs(process.argv.slice(2));
if (!dirs.length) dirs.push(`${root}build`);
const LATENCY = Number(opts.latency ?? 80);
const RUNS = Number(opts.runs ?? 15);
const N = Number(opts.n ?? 100);
const forge = demoForge();
forge.owners.set(`bench-${N}`, makeOwner(`bench-${N}`, "Organization", N));
const PAGE_MS = Number(opts["page-ms"] ?? 0);
const emu = await startEmulator({ forge, latencyMs: LATENCY, pageMs: PAGE_MS, restMs: PAGE_MS / 100 });
const ADMIN = "bench-admin-token";
const variants = [];
for (const dir of dirs) {
  const mf = new Miniflare(workerOptions(dir, { GITHUB_GRAPHQL_URL: emu.url, UPSTREAM_TIMEOUT_MS: "30000", ADMIN_TOKEN: ADMIN }));
  variants.push({ dir, mf, base: await mf.ready, xs: [], calls: [], pre: [], emu: [], post: [] });
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const GAP = Number(opts.gap ?? 0);
// The first two rounds warm the isolates up and are not counted.
for (let i = 0; i < RUNS + 2; i++) {
  for (const v of variants) {
    const res0 = await request(new URL(`/v1/cache/orgs/bench-${N}`, v.base), "DELETE", { Authorization: `Bearer ${ADMIN}` });
    if (res0.status !== 200) throw new Error(`purge: ${res0.status}`);
    const before = emu.stats.requests;
    const logAt = emu.stats.log.length;
    const t0 = Date.now();
    const t = performance.now();
    const res = await request(new URL(`/v1/orgs/bench-${N}/repos`, v.base));
    const dt = performance.now() - t;
    if (res.status !== 200) throw new Error(`view: ${res.status}`);
    const t1 = Date.now();
    const page = emu.stats.log.slice(logAt).find((e) => e.kind === "owner");
    if (i >= 2) {
      v.xs.push(dt);
      if (page) { v.pre.push(page.at - t0); v.emu.push(page.answeredAt - page.at); v.post.push(t1 - page.answeredAt); }
      v.calls.push(emu.stats.requests - before);
    }
    if (GAP) await sleep(GAP);
  }
}
for (const v of variants) {
  const s = [...v.xs].sort((a, b) => a - b);
  const at = (p) => s[Math.min(s.length - 1, Math.floor((s.length * p) / 100))].toFixed(1);
  const med = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  console.log(`  before the page ${med(v.pre)} ms, emulator ${med(v.emu)} ms, after the page ${med(v.post)} ms (medians, Date.now)`);
  console.log(`${v.dir}: latency ${LATENCY} ms, page ${PAGE_MS} ms, n ${N}, runs ${s.length}: p50 ${at(50)} ms, p95 ${at(95)}, min ${s[0].toFixed(1)}; upstream calls per view ${[...new Set(v.calls)].join("/")}`);
  await v.mf.dispose();
}
await emu.close();
