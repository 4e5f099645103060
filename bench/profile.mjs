// Where a warm request's CPU goes inside the worker's isolate: runs the release worker in
// Miniflare with the named wasm (function names kept), loads it with autocannon while the
// inspector samples the isolate, and prints self time per function in µs per request. Sampling
// slows everything down, so compare rows with each other, not with BENCHMARKS.md.
//
//   bash scripts/build.sh && node bench/profile.mjs [--path /v1/orgs/bench-100/repos] [--seconds 4]
import { Miniflare } from "miniflare";
import autocannon from "autocannon";
import WebSocket from "ws";
import { cpSync, mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import { fileURLToPath } from "node:url";
import { startEmulator } from "../tests/emulator/server.mjs";
import { demoForge, makeOwner } from "../tests/emulator/fixtures.mjs";
import { workerOptions } from "./common.mjs";

const root = fileURLToPath(new URL("..", import.meta.url));
const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const path = arg("path", "/v1/orgs/bench-100/repos");
const seconds = Number(arg("seconds", 4));
const INSPECTOR = 9339;

// The worker with the named wasm in place of the stripped one.
const dir = mkdtempSync(`${os.tmpdir()}/forgelens-profile-`);
cpSync(`${root}build`, dir, { recursive: true });
cpSync(`${root}target/index_bg.named.wasm`, `${dir}/index_bg.wasm`);

const forge = demoForge();
forge.owners.set("bench-100", makeOwner("bench-100", "Organization", 100));
const emu = await startEmulator({ forge, latencyMs: 0 });
// A view kept for the whole run, so every sampled request is the same kind of answer.
const mf = new Miniflare({
  ...workerOptions(dir, { GITHUB_GRAPHQL_URL: emu.url, MEMORY_TTL_MS: "10000", FRESH_TTL_SECONDS: "3600" }),
  inspectorPort: INSPECTOR,
});
const url = new URL(path, await mf.ready).href;
for (let i = 0; i < 2; i++) {
  const res = await fetch(url);
  console.log(`${res.status} ${res.headers.get("server-timing")} ${(await res.text()).length} bytes`);
}

// The user worker's isolate is the inspector target named "core:user:…".
const targets = await (await fetch(`http://127.0.0.1:${INSPECTOR}/json`)).json();
const target = targets.find((t) => /core:user/.test(t.title));
const ws = new WebSocket(target.webSocketDebuggerUrl);
await new Promise((r) => ws.once("open", r));
let lastId = 0;
const pending = new Map();
ws.on("message", (m) => {
  const d = JSON.parse(m);
  pending.get(d.id)?.(d.result);
  pending.delete(d.id);
});
const send = (method, params = {}) => new Promise((r) => {
  pending.set(++lastId, r);
  ws.send(JSON.stringify({ id: lastId, method, params }));
});
await send("Profiler.enable");
await send("Profiler.setSamplingInterval", { interval: 50 });
await send("Profiler.start");
const load = await new Promise((ok, no) => autocannon({ url, connections: 10, duration: seconds }, (e, r) => (e ? no(e) : ok(r))));
const { profile } = await send("Profiler.stop");
writeFileSync(`${dir}/last.cpuprofile`, JSON.stringify(profile));

const hits = new Map();
for (const s of profile.samples) hits.set(s, (hits.get(s) ?? 0) + 1);
const usPerSample = (profile.endTime - profile.startTime) / profile.samples.length / load.requests.total;
const self = new Map();
const groups = new Map();
for (const n of profile.nodes) {
  const h = hits.get(n.id) ?? 0;
  const { functionName: f, url: u } = n.callFrame;
  const name = (f || "(anonymous)").replace(/::h[0-9a-f]{16}$/, "");
  const where = u.includes("wasm") ? "wasm" : u ? "js" : /idle|program|garbage/.test(f) ? f : "runtime";
  self.set(`${where}\t${name}`, (self.get(`${where}\t${name}`) ?? 0) + h);
  groups.set(where, (groups.get(where) ?? 0) + h);
}
const us = (h) => (h * usPerSample).toFixed(1).padStart(7);
console.log(`\n${load.requests.total} requests in ${seconds} s under sampling; µs per request:`);
for (const [g, h] of [...groups].sort((a, b) => b[1] - a[1])) console.log(`${us(h)}  ${g}`);
console.log("\ntop self time:");
for (const [k, h] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 40)) console.log(`${us(h)}  ${k.slice(0, 140)}`);
console.log(`\nprofile: ${dir}/last.cpuprofile (open in Chrome DevTools)`);
ws.close();
await mf.dispose();
await emu.close();
process.exit(0);
