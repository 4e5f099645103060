// Live events (issue 34): how fast a change reaches the dashboards that watch an owner.
//
// - Fan-out: a 2,500-repository owner is built, then SUBSCRIBERS WebSocket clients subscribe to
//   its events (half anonymous, half with a read token). Signed deliveries follow one at a time:
//   pushes that change a public record (GitHub is asked again; the change goes out once it
//   answers) and privatizes (a narrowing fact, sent before the delivery is answered). For each
//   delivery and subscriber: the time from the delivery's answer to the subscriber's frame about
//   it (negative: the frame came first), p50 / p95 / max (goal p95 ≤ 1 s).
// - A cold 10,000-repository build with WAITERS subscribers: each one's `ready` after the
//   emulator answered the last page (goal ≤ 1 s).
//
//   node bench/events.mjs [--page-ms 1000] [--subscribers 1000]   (after scripts/build.sh)
import { createHmac, randomUUID } from "node:crypto";
import { Miniflare } from "miniflare";
import WebSocket from "ws";
import { startEmulator } from "../tests/emulator/server.mjs";
import { makeOwner } from "../tests/emulator/fixtures.mjs";
import { runAlone } from "./common.mjs";

const OWNER = "watched-org";
const COLD = "huge-watched";
const SECRET = "bench-events-secret";
const READ_SECRET = "bench-events-read-secret-0123456789";
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((s.length * p) / 100))] : NaN;
};
const stats = (xs) => ({ n: xs.length, p50: pct(xs, 50), p95: pct(xs, 95), max: xs.length ? Math.max(...xs) : NaN });

function readToken(orgs) {
  const b64 = (x) => Buffer.from(JSON.stringify(x)).toString("base64url");
  const input = `${b64({ alg: "HS256", typ: "JWT" })}.${b64({ exp: Math.floor(Date.now() / 1000) + 3600, orgs })}`;
  return `${input}.${createHmac("sha256", READ_SECRET).update(input).digest("base64url")}`;
}

async function deliver(url, event, payload) {
  const body = JSON.stringify(payload);
  const signature = "sha256=" + createHmac("sha256", SECRET).update(body).digest("hex");
  const res = await fetch(url, {
    method: "POST",
    body,
    headers: { "Content-Type": "application/json", "X-GitHub-Event": event, "X-GitHub-Delivery": randomUUID(), "X-Hub-Signature-256": signature },
  });
  await res.arrayBuffer();
  return { status: res.status, at: Date.now() };
}

/** `n` subscribers of `owner`; each records every frame with its arrival time. */
async function subscribers(base, owner, n, token) {
  const url = `${base.toString().replace(/^http/, "ws").replace(/\/$/, "")}/v1/orgs/${owner}/events?fields=name,visibility,description`;
  const subs = [];
  for (let i = 0; i < n; i += 50) {
    const batch = [];
    for (let j = i; j < Math.min(n, i + 50); j++) {
      const protocols = token && j % 2 === 1 ? ["forgelens.v1", `forgelens.token.${token}`] : ["forgelens.v1"];
      const ws = new WebSocket(url, protocols);
      const sub = { ws, frames: [], token: protocols.length > 1 };
      ws.on("message", (data) => sub.frames.push({ at: Date.now(), m: JSON.parse(data.toString()) }));
      batch.push(new Promise((resolve, reject) => {
        ws.once("open", resolve);
        ws.once("error", reject);
      }).then(() => subs.push(sub), () => {}));
    }
    await Promise.all(batch);
  }
  return subs;
}

export async function benchEvents({ workerOpts, pageMs = 1000, subscribers: wanted = 1000, waiters = 50, deliveries = 20, log = () => {} }) {
  const emu = await startEmulator({ pageMs, latencyMs: 80 });
  const owner = makeOwner(OWNER, "Organization", 2500);
  emu.forge.owners.set(OWNER, owner);
  emu.forge.owners.set(COLD, makeOwner(COLD, "Organization", 10_000));
  const mf = new Miniflare(workerOpts({ GITHUB_WEBHOOK_SECRET: SECRET, READ_TOKEN_SECRET: READ_SECRET, FRESH_TTL_SECONDS: "3600" }, emu.url));
  const out = { owner: OWNER, repos: owner.repos.length, page_ms: pageMs };
  const open = [];
  try {
    const base = await mf.ready;
    const hook = new URL("/v1/webhooks/github", base).href;
    log(`${OWNER}: building ${owner.repos.length} repositories`);
    for (;;) {
      const res = await fetch(new URL(`/v1/orgs/${OWNER}/repos?fields=name`, base));
      await res.arrayBuffer();
      if (res.status === 200) break;
      await sleep(500);
    }
    log(`${OWNER}: ${wanted} subscribers`);
    const subs = await subscribers(base, OWNER, wanted, readToken([OWNER]));
    open.push(...subs);
    out.subscribers = subs.length;
    out.subscribers_asked = wanted;
    await sleep(1000);
    const publics = owner.repos.filter((r) => r.visibility === "PUBLIC");
    const lat = { push: [], privatize: [] };
    let missing = 0;
    for (let i = 0; i < deliveries; i++) {
      const privatize = i % 2 === 1;
      const repo = publics[(i * 97) % publics.length];
      const kind = privatize ? "privatize" : "push";
      const since = subs.map((s) => s.frames.length);
      let answer;
      if (privatize) {
        repo.visibility = "PRIVATE";
        repo.isPrivate = true;
        answer = await deliver(hook, "repository", { action: "privatized", repository: { full_name: `${OWNER}/${repo.name}`, default_branch: "main" } });
      } else {
        repo.description = `bench ${randomUUID()}`;
        answer = await deliver(hook, "push", { ref: "refs/heads/main", after: randomUUID(), repository: { full_name: `${OWNER}/${repo.name}`, default_branch: "main" } });
      }
      await sleep(1500);
      subs.forEach((s, k) => {
        const f = s.frames.slice(since[k]).find(({ m }) => m.repo?.name === repo.name || m.name === repo.name);
        if (f) lat[kind].push(f.at - answer.at);
        else missing++;
      });
    }
    out.fanout = { deliveries, push_ms: stats(lat.push), privatize_ms: stats(lat.privatize), missing };
    for (const s of subs) s.ws.terminate();
    open.length = 0;

    log(`${COLD}: ${waiters} subscribers wait for a cold build of 10,000 repositories at ${pageMs} ms per page`);
    const first = emu.stats.log.length;
    const t0 = Date.now();
    const waiting = await subscribers(base, COLD, waiters, null);
    open.push(...waiting);
    const deadline = Date.now() + 100 * pageMs * 3 + 60_000;
    while (Date.now() < deadline && !waiting.every((s) => s.frames.some(({ m }) => m.type === "ready"))) await sleep(100);
    const pages = emu.stats.log.slice(first).filter((e) => e.kind === "owner" && e.answeredAt);
    const lastPage = Math.max(...pages.map((e) => e.answeredAt));
    const ready = waiting.map((s) => s.frames.find(({ m }) => m.type === "ready")?.at).filter(Boolean);
    const progress = waiting.map((s) => s.frames.filter(({ m }) => m.type === "progress").length);
    out.cold = {
      repos: 10_000,
      subscribers: waiting.length,
      pages: pages.length,
      build_ms: lastPage - t0,
      ready_after_last_page_ms: stats(ready.map((t) => t - lastPage)),
      never_ready: waiting.length - ready.length,
      progress_frames_p50: pct(progress, 50),
    };
  } finally {
    for (const s of open) s.ws.terminate();
    await mf.dispose();
    await emu.close();
  }
  return out;
}

export function renderEvents(e) {
  if (!e) return [];
  const mark = (ok) => (ok ? "met" : "**missed**");
  const ms = (s) => `${s.p50} / ${s.p95} / ${s.max} ms`;
  const L = [];
  L.push("", "## Live events: fan-out to subscribers", "");
  L.push(`The emulator's \`${e.owner}\` (${e.repos.toLocaleString("en")} repositories, ${e.page_ms} ms per page, 80 ms per other request) is built, then`);
  L.push(`**${e.subscribers.toLocaleString("en")} WebSocket subscribers** (of ${e.subscribers_asked.toLocaleString("en")} asked; half anonymous, half with a read token) watch it from one node`);
  L.push(`process on the same 2 cores as the worker. ${e.fanout.deliveries} signed deliveries follow, 1.5 s apart: pushes that change a public record's`);
  L.push("description (sent once GitHub answered the round) and privatizes (narrowing facts, sent before the delivery is answered: negative times).");
  L.push("Time from the delivery's answer to each subscriber's frame about it:", "");
  L.push("| delivery | frames | p50 / p95 / max | goal p95 ≤ 1 s |", "|---|---:|---:|---|");
  L.push(`| push (upsert) | ${e.fanout.push_ms.n} | ${ms(e.fanout.push_ms)} | ${mark(e.fanout.push_ms.p95 <= 1000)} |`);
  L.push(`| privatize (remove / upsert) | ${e.fanout.privatize_ms.n} | ${ms(e.fanout.privatize_ms)} | ${mark(e.fanout.privatize_ms.p95 <= 1000)} |`);
  L.push("", `Frames a subscriber should have had and did not: ${e.fanout.missing}.`, "");
  const c = e.cold;
  L.push(`A cold build of ${c.repos.toLocaleString("en")} repositories (${c.pages} pages, ${(c.build_ms / 1000).toFixed(1)} s) with ${c.subscribers} subscribers waiting: each one's \`ready\``);
  L.push(`after the emulator answered the last page: ${ms(c.ready_after_last_page_ms)} (goal ≤ 1 s: ${mark(c.ready_after_last_page_ms.max <= 1000)}); never ready: ${c.never_ready};`);
  L.push(`\`progress\` frames per subscriber (p50): ${c.progress_frames_p50}.`);
  if (e.cpu_native) {
    const u = e.cpu_native.per_change_us;
    L.push("", `The object's CPU per change, natively (\`cargo bench --bench cpu -- events\`): a public record's change numbered, kept and rendered for`);
    L.push(`each of the three scopes with the default fields: ${u.p50.toFixed(2)} µs p50 (${u.p95.toFixed(2)} µs p95), ${e.cpu_native.per_scope_us_p50.toFixed(2)} µs per scope; sending it`);
    L.push("to each socket is the runtime's work (one `send` per socket, one render per distinct `fields=` set).");
  }
  if (e.date) L.push("", `\`node bench/run.mjs --events-only\`, ${e.date.slice(0, 10)}, ${e.machine}.`);
  return L;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await runAlone(benchEvents, renderEvents, { pageMs: ["page-ms", 1000], subscribers: ["subscribers", 1000] });
}
