// Two builds side by side on the paths a dashboard hits most: warm views from memory and from
// KV, and cold listings, requests interleaved so the machine's load hits both alike. For "did
// this change regress anything beyond noise" (a whole `npm run bench` run varies more between
// runs than the change under test). Builds nothing: copy a build/ aside to compare it.
//
//   node bench/compare.mjs [--n 100] [--rounds 1000] OLD_DIR NEW_DIR
import { Miniflare } from "miniflare";
import { startEmulator } from "../tests/emulator/server.mjs";
import { demoForge, makeOwner } from "../tests/emulator/fixtures.mjs";
import { buildArgs, request, workerOptions } from "./common.mjs";

const { opts, dirs } = buildArgs(process.argv.slice(2));
if (dirs.length !== 2) throw new Error("usage: node bench/compare.mjs [--n 100] [--rounds 1000] OLD_DIR NEW_DIR");
const N = Number(opts.n ?? 100);
const ROUNDS = Number(opts.rounds ?? 1000);
const COLD = Number(opts.cold ?? 15);
const forge = demoForge();
forge.owners.set(`bench-${N}`, makeOwner(`bench-${N}`, "Organization", N));
const emu = await startEmulator({ forge, latencyMs: 80 });
const ADMIN = "bench-admin-token";
const start = async (dir, extra = {}) => {
  const mf = new Miniflare(workerOptions(dir, { GITHUB_GRAPHQL_URL: emu.url, UPSTREAM_TIMEOUT_MS: "30000", ADMIN_TOKEN: ADMIN, ...extra }));
  return { mf, base: await mf.ready };
};
const builds = [];
for (const dir of dirs) builds.push({ dir, mem: await start(dir), kv: await start(dir, { MEMORY_TTL_MS: "0" }), x: { mem: [], kv: [], cold: [] } });
const view = (w) => new URL(`/v1/orgs/bench-${N}/repos`, w.base).href;
const timed = async (url) => {
  const t = performance.now();
  const res = await request(url);
  if (res.status !== 200) throw new Error(`${url}: ${res.status}`);
  return performance.now() - t;
};
for (const b of builds) { await timed(view(b.mem)); await timed(view(b.kv)); }
for (let i = 0; i < ROUNDS + 50; i++) {
  for (const b of i % 2 ? builds : [...builds].reverse()) {
    const m = await timed(view(b.mem));
    const k = await timed(view(b.kv));
    if (i >= 50) { b.x.mem.push(m); b.x.kv.push(k); }
  }
}
for (let i = 0; i < COLD + 2; i++) {
  for (const b of i % 2 ? builds : [...builds].reverse()) {
    const res = await request(new URL(`/v1/cache/orgs/bench-${N}`, b.mem.base).href, "DELETE", { Authorization: `Bearer ${ADMIN}` });
    if (res.status !== 200) throw new Error(`purge: ${res.status}`);
    const c = await timed(view(b.mem));
    if (i >= 2) b.x.cold.push(c);
    await new Promise((r) => setTimeout(r, 300));
  }
}
const pct = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))];
console.log(`${N} repositories, ${ROUNDS} warm rounds and ${COLD} cold ones, interleaved (ms, p50 / p95):`);
console.log("| build | HIT (memory) | HIT (KV) | cold |\n|---|---:|---:|---:|");
for (const b of builds) {
  const c = (xs) => `${pct(xs, 50).toFixed(2)} / ${pct(xs, 95).toFixed(2)}`;
  console.log(`| ${b.dir} | ${c(b.x.mem)} | ${c(b.x.kv)} | ${c(b.x.cold)} |`);
}
for (const b of builds) { await b.mem.mf.dispose(); await b.kv.mf.dispose(); }
await emu.close();
