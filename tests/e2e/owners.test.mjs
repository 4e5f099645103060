// Owners of any size, end to end: the OwnerDirectory Durable Object in the local runtime builds
// listings page by page. Concurrent cold callers share one build; a caller whose budget ends gets
// 202 and the build goes on by alarm; timeouts shrink pages; a failed build resumes from its
// checkpoint; an invalidation restarts a build in progress.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startWorker } from "./harness.mjs";

const ADMIN = "e2e-admin-token";
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Owner pages the emulator answered (or failed), in order. */
const ownerPages = (emu, owner) => emu.stats.log.filter((e) => !e.rest && e.owner?.toLowerCase() === owner);

/** Which page a log entry asked: its part (or the whole listing), its end and its place there. */
const pageId = (e) => `${JSON.stringify(e.part)} ${e.back} ${e.offset}`;

/** The pages a partitioned build of `owner` asks at least: the first, and each part's pages. */
function partPages(emu, owner) {
  const parts = new Map();
  for (const r of emu.forge.owners.get(owner).repos) {
    const k = `${r.visibility} ${r.isArchived} ${r.isFork}`;
    parts.set(k, (parts.get(k) ?? 0) + 1);
  }
  return 1 + [...parts.values()].reduce((n, c) => n + Math.ceil(c / 100), 0);
}

/** Polls the listing until it is no longer 202, as the dashboard does. */
async function untilBuilt(w, path, limitMs = 30_000) {
  const end = Date.now() + limitMs;
  for (;;) {
    const r = await w.get(path);
    if (r.status !== 202 || Date.now() > end) return r;
    await sleep(100);
  }
}

test("50 concurrent cold callers cost exactly one request per page", async () => {
  const w = await startWorker({}, { pageMs: 20 });
  try {
    const answers = await Promise.all(Array.from({ length: 50 }, () => w.get("/v1/orgs/big-org/repos?fields=name")));
    assert.deepEqual([...new Set(answers.map((a) => a.status))], [200]);
    assert.equal(new Set(answers.map((a) => a.text)).size, 1, "one listing for everyone");
    // 1,000 repositories in twelve parts, four pages in flight: 20 pages, each asked once.
    const pages = ownerPages(w.emu, "big-org");
    assert.equal(pages.length, partPages(w.emu, "big-org"));
    assert.equal(new Set(pages.map(pageId)).size, pages.length, "no page asked twice");
    assert.equal(w.emu.stats.ownerPages, pages.length);
    const health = await w.get("/v1/health");
    assert.equal(health.body.config.OWNERS, true);
  } finally {
    await w.close();
  }
});

test("a cold single-page listing is one upstream call, answered before it is written to KV", async () => {
  const w = await startWorker({}, { latencyMs: 30 });
  try {
    const answers = await Promise.all(Array.from({ length: 20 }, () => w.get("/v1/orgs/small-org/repos?fields=name")));
    assert.deepEqual([...new Set(answers.map((a) => a.status))], [200]);
    assert.equal(new Set(answers.map((a) => a.text)).size, 1, "one listing for everyone");
    assert.equal(ownerPages(w.emu, "small-org").length, 1, "one page, asked once");
    // The request that started the build sent the page itself; the object answers from memory
    // and writes KV once the answer is out.
    const one = await w.get("/v1/orgs/octocat/repos?fields=name");
    const answeredAt = Date.now();
    assert.equal(one.status, 200);
    const early = await w.kv.get("v1:org:octocat");
    // The write comes 100 ms after the answer: a KV read that itself took longer than that on a
    // busy machine proves nothing either way, so only a prompt read is held to it.
    if (Date.now() - answeredAt < 80) assert.equal(early, null, "answered before it was written");
    const entry = JSON.parse(await w.stored("v1:org:octocat"));
    assert.equal(entry.data.repos.length, w.emu.forge.owners.get("octocat").repos.length, "and written just after");
    assert.equal(ownerPages(w.emu, "octocat").length, 1);
  } finally {
    await w.close();
  }
});

test("a build longer than the caller's budget answers 202, goes on by alarm and never fetches a page twice", async () => {
  const w = await startWorker({ UPSTREAM_TIMEOUT_MS: "300" }, { pageMs: 150 });
  try {
    const first = await w.get("/v1/orgs/Big-Org/repos");
    assert.equal(first.status, 202);
    assert.equal(first.body.status, "building");
    assert.equal(first.body.owner, "Big-Org");
    assert.equal(first.body.repos_total === null || first.body.repos_total === 1000, true, "the parts' counts sum to the listing");
    assert.ok(first.body.repos_fetched < 1000);
    assert.ok(!Number.isNaN(Date.parse(first.body.started_at)));
    assert.equal(first.headers.get("cache-control"), "no-store");
    assert.equal(first.headers.get("x-cache"), "MISS");
    const retry = Number(first.headers.get("retry-after"));
    assert.ok(retry >= 1 && retry <= 10, `Retry-After ${retry}`);
    assert.equal(await w.kv.get("v1:org:big-org"), null, "nothing partial is stored");

    // Nobody waits now: the object's alarm carries the build on.
    await sleep(2500);
    const done = await untilBuilt(w, "/v1/orgs/big-org/repos?fields=name");
    assert.equal(done.status, 200);
    assert.equal(done.body.org, "big-org");
    const pages = ownerPages(w.emu, "big-org").map(pageId);
    assert.equal(pages.length, partPages(w.emu, "big-org"));
    assert.equal(new Set(pages).size, pages.length, "no page twice");
    assert.ok(await w.stored("v1:org:big-org"), "one KV write when complete");
  } finally {
    await w.close();
  }
});

test("pages that time out are asked again at half the size, and the build keeps that size", async () => {
  const w = await startWorker();
  try {
    w.emu.faults.maxPageSize = 30;
    w.emu.faults.maxPageSizeMode = "timeout-error";
    const r = await w.get("/v1/orgs/octo-org/repos?fields=name");
    assert.equal(r.status, 200);
    const firsts = ownerPages(w.emu, "octo-org").map((e) => e.first);
    assert.deepEqual(firsts.slice(0, 3), [100, 50, 25]);
    assert.ok(firsts.slice(2).every((f) => f === 25), firsts.join());
    assert.equal(firsts.length, 2 + Math.ceil(250 / 25));
  } finally {
    await w.close();
  }
});

test("a failed build is remembered for 10 s, then resumes from its checkpoint", async () => {
  const w = await startWorker();
  try {
    w.emu.faults.failOwnerPage = { index: 1, status: 500, times: 1 };
    const failed = await w.get("/v1/orgs/octo-org/repos");
    assert.equal(failed.status, 502);
    assert.equal(failed.body.error.code, "upstream_error");
    const asked = ownerPages(w.emu, "octo-org").length;
    const again = await w.get("/v1/orgs/octo-org/repos");
    assert.equal(again.status, 502);
    assert.equal(ownerPages(w.emu, "octo-org").length, asked, "no hammering while remembered");
    await sleep(10_200);
    const done = await w.get("/v1/orgs/octo-org/repos?fields=name");
    assert.equal(done.status, 200);
    const offsets = ownerPages(w.emu, "octo-org").map((e) => e.offset);
    assert.deepEqual(offsets, [0, 100, 100, 200], "the first page was not fetched again");
  } finally {
    await w.close();
  }
});

test("an invalidation during a build restarts it, and the older build never writes KV", async () => {
  const w = await startWorker({ UPSTREAM_TIMEOUT_MS: "200", ADMIN_TOKEN: ADMIN }, { pageMs: 150 });
  try {
    assert.equal((await w.get("/v1/orgs/big-org/repos")).status, 202);
    await sleep(400);
    const purgedAt = Date.now();
    const purge = await w.get("/v1/cache/orgs/big-org", { method: "DELETE", headers: { Authorization: `Bearer ${ADMIN}` } });
    assert.equal(purge.status, 200);
    const done = await untilBuilt(w, "/v1/orgs/big-org/repos?fields=name");
    assert.equal(done.status, 200);
    const pages = ownerPages(w.emu, "big-org");
    // The first page of a build is the whole listing's (with every part's count).
    const restart = pages.findLastIndex((e) => e.part === null && e.offset === 0);
    assert.ok(restart > 0, "the build started over from the first page");
    const after = pages.slice(restart).map(pageId);
    assert.equal(after.length, partPages(w.emu, "big-org"), "and then fetched every page once");
    assert.equal(new Set(after).size, after.length);
    const entry = JSON.parse(await w.stored("v1:org:big-org"));
    assert.ok(Date.parse(entry.fetched_at) >= purgedAt - 5, `${entry.fetched_at} is after the purge`);
  } finally {
    await w.close();
  }
});

test("a spent rate limit pauses the build until the reset, then it resumes by alarm", async () => {
  // No reserve: the budget is spent by the page, not held back before it (see hardening tests).
  const w = await startWorker({ GITHUB_BUDGET_RESERVE: "0" });
  try {
    // The second page will say the budget is spent (its reply leaves 0); it resets in 4 s.
    w.emu.rate.remaining = 2;
    w.emu.rate.resetAt = new Date(Date.now() + 4000).toISOString().replace(/\.\d+Z$/, "Z");
    const limited = await w.get("/v1/orgs/octo-org/repos?fields=name");
    assert.equal(limited.status, 429);
    const retry = Number(limited.headers.get("retry-after"));
    assert.ok(retry >= 1 && retry <= 5, `Retry-After ${retry} follows resetAt`);
    assert.equal(ownerPages(w.emu, "octo-org").length, 2, "no page asked past the spent budget");
    w.emu.rate.remaining = 5000;
    await sleep((retry + 1.5) * 1000);
    const done = await w.get("/v1/orgs/octo-org/repos?fields=name");
    assert.equal(done.status, 200, "the alarm set for the reset finished the build");
    assert.equal(done.headers.get("x-cache"), "HIT");
    assert.deepEqual(ownerPages(w.emu, "octo-org").map((e) => e.offset), [0, 100, 200]);
  } finally {
    await w.close();
  }
});

test("below GITHUB_BUDGET_RESERVE a build of an owner not pinned waits for the reset; a pinned one goes on", async () => {
  const w = await startWorker({ PINNED_ORGS: "small-org" });
  try {
    // 900 of 5,000 left: under the default 20 % reserve once the first page says so.
    w.emu.rate.remaining = 900;
    w.emu.rate.resetAt = new Date(Date.now() + 60_000).toISOString().replace(/\.\d+Z$/, "Z");
    const held = await w.get("/v1/orgs/octo-org/repos?fields=name");
    assert.equal(held.status, 429);
    assert.equal(held.body.error.code, "rate_limited");
    const retry = Number(held.headers.get("retry-after"));
    assert.ok(retry >= 50 && retry <= 61, `Retry-After ${retry} is the time to the reset`);
    assert.equal(ownerPages(w.emu, "octo-org").length, 1, "no page asked below the reserve");
    const pinned = await w.get("/v1/orgs/small-org/repos?fields=name");
    assert.equal(pinned.status, 200, "a pinned owner is work that keeps the cache right");
  } finally {
    await w.close();
  }
});

test("without the OWNERS binding, owner listings are 500 config_invalid naming it", async () => {
  const w = await startWorker({}, {}, { durableObjects: {} });
  try {
    const r = await w.get("/v1/orgs/octocat/repos");
    assert.equal(r.status, 500);
    assert.equal(r.body.error.code, "config_invalid");
    assert.match(r.body.error.message, /OWNERS/);
    const health = await w.get("/v1/health");
    assert.deepEqual([health.body.config.OWNERS, health.body.config_error], [false, "OWNERS"]);
  } finally {
    await w.close();
  }
});
