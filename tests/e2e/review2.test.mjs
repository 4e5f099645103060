// The second adversarial review (issue 17), end to end in the built worker: polls of a build cost
// the client budget nothing, ALLOWED_OWNERS keeps the worker from crawling anyone else, and an
// installation_repositories delivery naming thousands of repositories is applied in time.
// (Hidden == missing is in hardening.test.mjs, the budget reserve in owners.test.mjs, the App's
// fallback in app.test.mjs.)
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { inOneLimiterWindow, startWorker } from "./harness.mjs";

const SECRET = "e2e-webhook-secret";
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const from = (ip) => ({ headers: { "CF-Connecting-IP": ip } });

function deliver(w, event, payload) {
  const body = JSON.stringify(payload);
  const headers = {
    "X-GitHub-Event": event,
    "Content-Type": "application/json",
    "X-GitHub-Delivery": crypto.randomUUID(),
    "X-Hub-Signature-256": "sha256=" + createHmac("sha256", SECRET).update(body).digest("hex"),
  };
  return w.get("/v1/webhooks/github", { method: "POST", headers, body });
}

test("polling a build in progress never spends the client's budget; starting one spends it once", async () => {
  // Pages in order (BUILD_CONCURRENCY=1): a build long enough to be polled several times.
  const w = await startWorker(
    { UPSTREAM_TIMEOUT_MS: "300", BUILD_CONCURRENCY: "1" },
    { pageMs: 150 },
    { ratelimits: { UPSTREAM_LIMITER: { simple: { limit: 2, period: 60 } } } },
  );
  try {
    await inOneLimiterWindow();
    const me = from("203.0.113.50");
    const statuses = [];
    for (let i = 0; i < 40; i++) {
      const r = await w.get("/v1/orgs/big-org/repos?fields=name", me);
      statuses.push(r.status);
      if (r.status === 200) break;
      await sleep(100);
    }
    assert.ok(!statuses.includes(429), `polls were refused: ${statuses.join(" ")}`);
    assert.equal(statuses.at(-1), 200, `the build completed: ${statuses.join(" ")}`);
    assert.ok(statuses.filter((s) => s === 202).length >= 3, "the caller polled a build in progress");
    // Reading the complete listing is free as well.
    for (let i = 0; i < 5; i++) assert.equal((await w.get("/v1/orgs/big-org/repos?fields=name", me)).status, 200);
    // One admission was spent (the start): one more start goes through, the next is refused.
    assert.notEqual((await w.get("/v1/orgs/small-org/repos?fields=name", me)).status, 429);
    const before = w.emu.stats.requests;
    const refused = await w.get("/v1/orgs/octo-org/repos?fields=name", me);
    assert.equal(refused.status, 429);
    assert.equal(refused.body.error.code, "rate_limited");
    assert.equal(w.emu.stats.requests, before, "a refused start sends nothing");
  } finally {
    await w.close();
  }
});

test("ALLOWED_OWNERS: other owners are 404 not_found with no upstream call, and /v1/health lists the setting", async () => {
  const w = await startWorker({ ALLOWED_OWNERS: "small-org, Octo-Org" });
  try {
    const health = await w.get("/v1/health");
    assert.equal(health.status, 200);
    assert.equal(health.body.config.ALLOWED_OWNERS, true, "set (health names no values)");

    assert.equal((await w.get("/v1/orgs/Small-Org/repos?fields=name")).status, 200);
    const before = w.emu.stats.requests;
    for (const path of ["/v1/orgs/big-org/repos", "/v1/repos/big-org/repo-0001", "/v1/orgs/octocat/repos?fields=name"]) {
      const r = await w.get(path);
      assert.equal(r.status, 404, path);
      assert.equal(r.body.error.code, "not_found", path);
    }
    const batch = await w.get("/v1/repos?names=big-org/repo-0001,octo-org/repo-0001&fields=full_name");
    assert.equal(batch.status, 200);
    assert.deepEqual(batch.body.repos.map((r) => r.full_name), ["octo-org/repo-0001"]);
    assert.deepEqual(batch.body.errors, [{ name: "big-org/repo-0001", code: "not_found" }]);
    // Only the allowed owner's repository went upstream.
    const asked = JSON.stringify(w.emu.stats.log.slice(-(w.emu.stats.requests - before)).map((e) => e.variables)).toLowerCase();
    assert.equal(w.emu.stats.requests - before, 1, "one batch call, for octo-org");
    assert.ok(!asked.includes("big-org") && !asked.includes("octocat"), asked);
    const keys = (await w.kv.list()).keys.map((k) => k.name);
    assert.ok(!keys.some((k) => k.includes("big-org") || k.includes("octocat")), "nothing is cached for them either");
  } finally {
    await w.close();
  }
  const bad = await startWorker({ ALLOWED_OWNERS: "small-org,not an owner!" });
  try {
    const r = await bad.get("/v1/orgs/small-org/repos");
    assert.equal(r.status, 500);
    assert.equal(r.body.error.code, "config_invalid");
    assert.match(r.body.error.message, /ALLOWED_OWNERS/);
    assert.equal(bad.emu.stats.requests, 0);
  } finally {
    await bad.close();
  }
});

test("an installation_repositories delivery naming 3,000 repositories drops every key, owner-level ones first, within 10 s", async () => {
  const w = await startWorker({ GITHUB_WEBHOOK_SECRET: SECRET });
  try {
    assert.equal((await w.get("/v1/orgs/small-org/repos?fields=name")).status, 200);
    assert.ok(await w.stored("v1:org:small-org"));
    const names = Array.from({ length: 3000 }, (_, i) => `tool-${String(i).padStart(4, "0")}`);
    // Some are cached: early ones (dropped by the request) and late ones (dropped by the directory).
    const cached = ["tool-0000", "tool-0003", "tool-1500", "tool-2999"];
    const entry = JSON.stringify({ fetched_at: new Date().toISOString(), data: null });
    for (const n of cached) await w.kv.put(`v1:repo:small-org/${n}`, entry, { expirationTtl: 3600 });

    const payload = {
      action: "removed",
      installation: { id: 1002, account: { login: "Small-Org", type: "Organization" } },
      repository_selection: "selected",
      repositories_added: [],
      repositories_removed: names.map((name, i) => ({ id: 10_000 + i, name, full_name: `Small-Org/${name}`, private: false })),
      sender: { login: "octocat", type: "User" },
    };
    const started = Date.now();
    const res = await deliver(w, "installation_repositories", payload);
    const tookMs = Date.now() - started;
    assert.equal(res.status, 200, res.text.slice(0, 200));
    assert.ok(tookMs < 10_000, `answered in ${tookMs} ms`);
    assert.ok(res.body.invalidated.includes("v1:org:small-org"));
    assert.ok(res.body.invalidated.includes("v1:repo:small-org/tool-2999"));
    assert.equal(await w.kv.get("v1:org:small-org"), null, "the listing is gone");
    for (const n of cached) assert.equal(await w.kv.get(`v1:repo:small-org/${n}`), null, n);
  } finally {
    await w.close();
  }
});
