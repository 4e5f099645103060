// Live listings under activity (issue 18): a 2,500-repository owner at a realistic page cost is
// built once, then receives signed repository-level deliveries at 1, 5 and 20 a second while 10
// dashboards poll its listing. Each delivery changes one record on the emulator first (its
// description becomes a unique token), so the time until the change is visible can be measured.
//
// Measured per rate:
// - polls answered 200 with the complete listing (goal 100 %), and listing pages asked meanwhile
//   (goal 0: no rebuild);
// - upstream GraphQL requests per delivery (goal ≤ 1, falling with the rate as rounds coalesce);
// - delivery → change visible: a watcher asks the listing back to back, and the first answer
//   holding a delivery's token dates it (goal p95 ≤ 1.5 s); also the delivery's own answer time;
// - KV writes of `v1:org:{owner}` per second: KV is read every 50 ms and each new
//   `revalidated_at` counts as one write (writes at most one a second can't hide between reads).
//
//   node bench/live.mjs [--page-ms 1000] [--seconds 60]   (after scripts/build.sh)
import { createHmac, randomUUID } from "node:crypto";
import { Miniflare } from "miniflare";
import { startEmulator } from "../tests/emulator/server.mjs";
import { makeOwner } from "../tests/emulator/fixtures.mjs";
import { request, runAlone } from "./common.mjs";

export const OWNER = "busy-org";
const REPOS = 2500;
const SECRET = "bench-live-secret";
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((s.length * p) / 100))] : NaN;
};

function signedDelivery(url, payload) {
  const body = JSON.stringify(payload);
  const signature = "sha256=" + createHmac("sha256", SECRET).update(body).digest("hex");
  return fetch(url, {
    method: "POST",
    body,
    headers: {
      "Content-Type": "application/json",
      "X-GitHub-Event": "push",
      "X-GitHub-Delivery": randomUUID(),
      "X-Hub-Signature-256": signature,
    },
  });
}

/** Builds the owner's listing, then runs each rate for `seconds`. */
export async function benchLive({ workerOpts, pageMs = 1000, seconds = 60, rates = [1, 5, 20], pollers = 10, log = () => {} }) {
  const emu = await startEmulator({ pageMs, latencyMs: 80 });
  const owner = makeOwner(OWNER, "Organization", REPOS);
  emu.forge.owners.set(OWNER, owner);
  const mf = new Miniflare(workerOpts({ GITHUB_WEBHOOK_SECRET: SECRET, FRESH_TTL_SECONDS: "3600" }, emu.url));
  const out = { owner: OWNER, repos: REPOS, page_ms: pageMs, seconds, pollers, rates: [] };
  try {
    const base = await mf.ready;
    const kv = await mf.getKVNamespace("CACHE");
    const listing = new URL(`/v1/orgs/${OWNER}/repos?fields=name,description`, base).href;
    const hook = new URL("/v1/webhooks/github", base).href;
    const visible = owner.repos.filter((r) => r.visibility === "PUBLIC").length;
    log(`${OWNER}: building ${REPOS} repositories at ${pageMs} ms per page`);
    const t0 = Date.now();
    for (;;) {
      const res = await request(listing);
      if (res.status === 200) break;
      await sleep(1000);
    }
    out.build_ms = Date.now() - t0;
    await sleep(1500); // the build's own KV write
    const publicRepos = owner.repos.filter((r) => r.visibility === "PUBLIC");
    for (const rate of rates) {
      log(`${OWNER}: ${rate} deliveries/s for ${seconds} s, ${pollers} dashboards polling`);
      emu.reset();
      const stop = Date.now() + seconds * 1000;
      const sent = new Map(); // token → send time
      const seen = new Map(); // token → first time a watcher saw it
      const answered = [];
      const polls = { total: 0, complete: 0, statuses: {} };
      const kvWrites = new Map(); // revalidated_at → when first seen in KV
      let seq = 0;
      const deliveries = (async () => {
        const jobs = [];
        for (let next = Date.now(); next < stop; next += 1000 / rate) {
          await sleep(Math.max(0, next - Date.now()));
          const repo = publicRepos[(seq * 97) % publicRepos.length];
          const token = `live-${rate}-${seq++}`;
          repo.description = token;
          const at = Date.now();
          sent.set(token, { at, name: repo.name });
          const branch = repo.defaultBranchRef?.name ?? "main";
          // `after` (the pushed commit) makes each body unique, as GitHub's are: the worker takes
          // a body it has already applied (within the hour) for a replay and changes nothing.
          const payload = { ref: `refs/heads/${branch}`, after: token, repository: { full_name: `${OWNER}/${repo.name}`, default_branch: branch } };
          jobs.push(signedDelivery(hook, payload).then(async (r) => {
            await r.text();
            answered.push({ ms: Date.now() - at, status: r.status });
          }));
        }
        await Promise.all(jobs);
      })();
      const poller = async (offset) => {
        await sleep(offset);
        while (Date.now() < stop) {
          const res = await request(listing);
          polls.total++;
          polls.statuses[res.status] = (polls.statuses[res.status] ?? 0) + 1;
          if (res.status === 200 && JSON.parse(res.text).repos.length === visible) polls.complete++;
          await sleep(1000);
        }
      };
      const watcher = async () => {
        while (Date.now() < stop + 3000) {
          const res = await request(listing);
          const now = Date.now();
          if (res.status !== 200) continue;
          for (const r of JSON.parse(res.text).repos) {
            if (r.description?.startsWith("live-") && sent.has(r.description) && !seen.has(r.description)) seen.set(r.description, now);
          }
          await sleep(20);
        }
      };
      const kvReader = async () => {
        while (Date.now() < stop + 3000) {
          const text = await kv.get(`v1:org:${OWNER}`);
          const at = text && /"revalidated_at":"([^"]+)"/.exec(text.slice(0, 300))?.[1];
          if (at && !kvWrites.has(at)) kvWrites.set(at, Date.now());
          await sleep(50);
        }
      };
      const ownerPagesBefore = emu.stats.ownerPages;
      await Promise.all([deliveries, watcher(), kvReader(), ...Array.from({ length: pollers }, (_, i) => poller((i * 1000) / pollers))]);
      const delays = [...sent.entries()].map(([token, s]) => (seen.has(token) ? seen.get(token) - s.at : Infinity));
      const missing = delays.filter((d) => d === Infinity).length;
      const finite = delays.filter((d) => d !== Infinity);
      out.rates.push({
        rate,
        deliveries: sent.size,
        delivery_statuses: answered.reduce((m, a) => ((m[a.status] = (m[a.status] ?? 0) + 1), m), {}),
        delivery_answer_ms: { p50: pct(answered.map((a) => a.ms), 50), p95: pct(answered.map((a) => a.ms), 95), max: Math.max(...answered.map((a) => a.ms)) },
        polls,
        complete_share: polls.total ? polls.complete / polls.total : 0,
        owner_pages: emu.stats.ownerPages - ownerPagesBefore,
        upstream_requests: emu.stats.batch,
        upstream_per_delivery: sent.size ? emu.stats.batch / sent.size : 0,
        visible_ms: { p50: pct(finite, 50), p95: missing ? Infinity : pct(finite, 95), max: missing ? Infinity : Math.max(...finite), never_seen: missing },
        kv_writes: kvWrites.size,
        // Over the whole observation (the deliveries' seconds and 3 s after), and the shortest
        // gap between two writes seen (50 ms resolution).
        kv_writes_per_s: kvWrites.size / (seconds + 3),
        kv_min_gap_ms: Math.min(...[...kvWrites.values()].sort((a, b) => a - b).map((t, i, a) => (i ? t - a[i - 1] : Infinity))),
      });
      await sleep(2000);
    }
  } finally {
    await mf.dispose();
    await emu.close();
  }
  return out;
}

export function renderLive(l) {
  if (!l) return [];
  const mark = (ok) => (ok ? "met" : "**missed**");
  const pc = (x) => `${(x * 100).toFixed(1)} %`;
  const L = [];
  L.push("", `## Live listings: a busy ${l.repos.toLocaleString("en")}-repository owner`, "");
  L.push(`The emulator's \`${l.owner}\` at **${l.page_ms} ms per page** (80 ms per other request) is built once (${(l.build_ms / 1000).toFixed(1)} s), then receives`);
  L.push(`signed \`push\` deliveries for ${l.seconds} s at each rate while ${l.pollers} dashboards poll its listing once a second. Each delivery`);
  L.push("first changes one record's description on the emulator; a watcher asking the listing back to back dates when each change became");
  L.push("visible. KV writes of the listing's key are counted by reading it every 50 ms (each new `revalidated_at` is one write), over the");
  L.push("deliveries' seconds and the 3 s after them.", "");
  L.push("| deliveries/s | deliveries (answers) | polls complete (200, every record) | listing pages | upstream requests per delivery | delivery → visible p50 / p95 | delivery answered p50 / p95 | KV writes/s for the key (shortest gap) |");
  L.push("|---:|---|---:|---:|---:|---:|---:|---:|");
  for (const r of l.rates) {
    const st = Object.entries(r.delivery_statuses).map(([k, v]) => `${v}× ${k}`).join(", ");
    const vis = r.visible_ms.never_seen ? `${r.visible_ms.never_seen} never seen` : `${r.visible_ms.p50} / ${r.visible_ms.p95} ms`;
    L.push(`| ${r.rate} | ${r.deliveries} (${st}) | ${pc(r.complete_share)} of ${r.polls.total}: ${mark(r.complete_share === 1)} | ${r.owner_pages}: ${mark(r.owner_pages === 0)} | ${r.upstream_per_delivery.toFixed(2)}: ${mark(r.upstream_per_delivery <= 1)} | ${vis}: ${mark(r.visible_ms.p95 <= 1500)} | ${r.delivery_answer_ms.p50} / ${r.delivery_answer_ms.p95} ms | ${r.kv_writes_per_s.toFixed(2)} (${r.kv_min_gap_ms} ms): ${mark(r.kv_writes_per_s <= 1)} |`);
  }
  return L;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await runAlone(benchLive, renderLive, { pageMs: ["page-ms", 1000], seconds: ["seconds", 60] });
}
