// The adversarial review's findings, end to end in the built worker: headers that must not tell a
// hidden repository from a missing one, a rename alias that must not outlive a privatization, the
// per-client UPSTREAM_LIMITER, hostile query strings, and the headers every answer carries.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { readFileSync } from "node:fs";
import { inOneLimiterWindow, startWorker } from "./harness.mjs";

const SECRET = "e2e-webhook-secret";
const fixtures = new URL("../data/webhooks/", import.meta.url);

let w;
before(async () => {
  w = await startWorker({ GITHUB_WEBHOOK_SECRET: SECRET });
});
after(async () => {
  await w.close();
});

/** What a caller learns from an answer besides its body. */
const seen = (r) => [r.status, r.headers.get("x-cache"), r.headers.get("cache-control")];

/** Moves a cached entry's fetched_at into the past, as if it had been stored `ageS` ago. */
async function age(key, ageS) {
  const text = await w.kv.get(key);
  assert.ok(text, `${key} is cached`);
  const entry = JSON.parse(text);
  entry.fetched_at = new Date(Date.now() - ageS * 1000).toISOString();
  await w.kv.put(key, JSON.stringify(entry), { expirationTtl: 3600 });
}

test("a stale hidden repository does not make a batch STALE or max-age=0", async () => {
  // Small-Org/tool-0003 is private: anonymous callers must not learn that it exists.
  const hidden = await w.get("/v1/repos?names=Small-Org/tool-0003");
  const missing = await w.get("/v1/repos?names=Small-Org/no-such-tool");
  assert.deepEqual(seen(hidden), seen(missing));
  assert.deepEqual(hidden.body.errors, [{ name: "Small-Org/tool-0003", code: "not_found" }]);

  await age("v1:repo:small-org/tool-0003", 600);
  const before = w.emu.stats.requests;
  const stale = await w.get("/v1/repos?names=Small-Org/tool-0003");
  // Exactly what a missing name shows: no X-Cache of its own, so an answer of only such names is a MISS.
  assert.deepEqual(seen(stale), [200, "MISS", "public, max-age=60, stale-while-revalidate=60"]);
  assert.deepEqual(seen(stale), seen(await w.get("/v1/repos?names=Small-Org/no-such-tool-2")));
  assert.equal(w.emu.stats.requests - before <= 1, true, "at most the background refresh");

  const single = await w.get("/v1/repos/Small-Org/tool-0003");
  const none = await w.get("/v1/repos/Small-Org/no-such-tool");
  assert.deepEqual([single.status, single.text, single.headers.get("x-cache")], [none.status, none.text, none.headers.get("x-cache")]);
});

test("an old name is not cached, so a privatized delivery reaches it", async () => {
  const old = await w.get("/v1/repos/Small-Org/old-tool?fields=full_name,visibility");
  assert.equal(old.status, 200);
  assert.deepEqual(old.body, { full_name: "Small-Org/tool-0001", visibility: "public" });
  const keys = (await w.kv.list()).keys.map((k) => k.name);
  assert.ok(keys.includes("v1:repo:small-org/tool-0001"), keys.join());
  assert.ok(!keys.includes("v1:repo:small-org/old-tool"), "stored under its real name only");

  // GitHub makes it private and delivers `privatized` for the real name.
  const repo = w.emu.forge.owners.get("small-org").repos.find((r) => r.name === "tool-0001");
  Object.assign(repo, { visibility: "PRIVATE", isPrivate: true });
  const payload = JSON.parse(readFileSync(new URL("repository.privatized.json", fixtures), "utf8"));
  payload.repository = { ...payload.repository, name: "tool-0001", full_name: "Small-Org/tool-0001", owner: { ...payload.repository.owner, login: "Small-Org" } };
  const body = JSON.stringify(payload);
  const sig = "sha256=" + createHmac("sha256", SECRET).update(body).digest("hex");
  const res = await w.get("/v1/webhooks/github", {
    method: "POST",
    headers: { "X-GitHub-Event": "repository", "X-Hub-Signature-256": sig, "Content-Type": "application/json" },
    body,
  });
  assert.equal(res.status, 200);
  assert.equal((await w.get("/v1/repos/Small-Org/old-tool")).status, 404, "the old name shows nothing");
  assert.equal((await w.get("/v1/repos/Small-Org/tool-0001")).status, 404);
  const batch = await w.get("/v1/repos?names=small-org/old-tool");
  assert.deepEqual(batch.body, { repos: [], errors: [{ name: "small-org/old-tool", code: "not_found" }] });
});

test("every answer says nosniff; data answers say where their time went", async () => {
  for (const path of ["/", "/v1/health", "/v1/openapi.json", "/v1/nope", "/v1/repos?names=a/b,,c/d"]) {
    const r = await w.get(path);
    assert.equal(r.headers.get("x-content-type-options"), "nosniff", path);
  }
  const miss = await w.get("/v1/orgs/octocat/repos");
  assert.match(miss.headers.get("server-timing"), /^kv;dur=\d+, owner;dur=\d+$/, "the owner's directory paged GitHub");
  const hit = await w.get("/v1/orgs/octocat/repos");
  assert.equal(hit.headers.get("server-timing"), "mem;dur=0", "a HIT moments later comes from memory");
  const single = await w.get("/v1/repos/Small-Org/tool-0007");
  assert.match(single.headers.get("server-timing"), /^kv;dur=\d+, upstream;dur=\d+$/);
});

test("hostile query strings are refused at once and never reach GitHub", async () => {
  const before = w.emu.stats.requests;
  const many = Array.from({ length: 3000 }, (_, i) => `o/r${i}`).join(",");
  const big = await w.get(`/v1/repos?names=${many}`);
  assert.equal(big.status, 400);
  assert.equal(big.body.error.code, "invalid_name", "over 8 KiB of query string");
  const names = Array.from({ length: 101 }, (_, i) => `o/r${i}`).join(",");
  const tooMany = await w.get(`/v1/repos?names=${names}`);
  assert.deepEqual([tooMany.status, tooMany.body.error.code], [400, "too_many_names"]);
  assert.equal(w.emu.stats.requests, before);
});

test("the per-client UPSTREAM_LIMITER spends only on answers that need GitHub", async () => {
  const l = await startWorker({}, {}, { ratelimits: { UPSTREAM_LIMITER: { simple: { limit: 2, period: 60 } } } });
  try {
    await inOneLimiterWindow();
    const health = await l.get("/v1/health");
    assert.equal(health.body.config.UPSTREAM_LIMITER, true);
    const a = { headers: { "CF-Connecting-IP": "203.0.113.7" } };
    assert.equal((await l.get("/v1/repos/Small-Org/tool-0000", a)).status, 200);
    assert.equal((await l.get("/v1/repos/Small-Org/tool-0002", a)).status, 200);
    const before = l.emu.stats.requests;
    const limited = await l.get("/v1/repos/Small-Org/tool-0004", a);
    assert.equal(limited.status, 429);
    assert.equal(limited.body.error.code, "rate_limited");
    assert.equal(limited.headers.get("retry-after"), "60");
    assert.equal(limited.headers.get("cache-control"), "no-store");
    assert.equal(l.emu.stats.requests, before, "nothing was sent to GitHub");
    // Cached answers are never limited; other clients have their own budget.
    assert.equal((await l.get("/v1/repos/Small-Org/tool-0000", a)).status, 200);
    const b = { headers: { "CF-Connecting-IP": "198.51.100.9" } };
    assert.equal((await l.get("/v1/repos/Small-Org/tool-0004", b)).status, 200);
  } finally {
    await l.close();
  }
  assert.equal((await w.get("/v1/health")).body.config.UPSTREAM_LIMITER, false, "unbound here");
});

test("/ and the OpenAPI document vary on Origin when CORS depends on it", async () => {
  assert.equal((await w.get("/")).headers.get("vary"), null, "ALLOWED_ORIGINS is *");
  const r = await startWorker({ ALLOWED_ORIGINS: "https://dash.example" });
  try {
    for (const path of ["/", "/v1/openapi.json"]) {
      const res = await r.get(path, { headers: { Origin: "https://dash.example" } });
      assert.equal(res.headers.get("vary"), "Origin", path);
      assert.equal(res.headers.get("access-control-allow-origin"), "https://dash.example");
    }
  } finally {
    await r.close();
  }
});
