// Owner listings: bulk paging, cache hits, visibility, projection, conditional requests.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startWorker, fixtureRepos, names } from "./harness.mjs";

let w;
before(async () => {
  w = await startWorker();
});
after(async () => {
  await w.close();
});

test("a cold 250-repository listing takes 3 upstream requests, a warm one none", async () => {
  w.emu.reset();
  const cold = await w.get("/v1/orgs/octo-org/repos");
  assert.equal(cold.status, 200);
  assert.equal(w.emu.stats.requests, 3, "ceil(250/100) pages");
  assert.equal(w.emu.stats.invalid, 0, "every query passed schema validation");
  assert.equal(cold.headers.get("x-cache"), "MISS");
  const publicRepos = fixtureRepos(w.emu, "octo-org").filter((r) => r.visibility === "PUBLIC");
  assert.deepEqual(names(cold.body.repos), names(publicRepos));
  assert.equal(cold.body.org, "octo-org");
  assert.match(cold.body.fetched_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);

  const warm = await w.get("/v1/orgs/OCTO-ORG/repos");
  assert.equal(w.emu.stats.requests, 3, "served from KV");
  assert.equal(warm.headers.get("x-cache"), "HIT");
  assert.deepEqual(warm.body, cold.body);
  assert.equal(warm.headers.get("etag"), cold.headers.get("etag"));
});

test("a 1000-repository listing takes one request per page of its parts, each asked once", async () => {
  w.emu.reset();
  const res = await w.get("/v1/orgs/big-org/repos?fields=name");
  assert.equal(res.status, 200);
  // The first page with every part's count, then big-org's twelve parts: 19 pages of 100.
  assert.equal(w.emu.stats.requests, 20);
  const pages = w.emu.stats.log.map((e) => `${JSON.stringify(e.part)} ${e.back} ${e.offset}`);
  assert.equal(new Set(pages).size, 20);
  const all = fixtureRepos(w.emu, "big-org");
  assert.equal(res.body.repos.length, all.filter((r) => r.visibility === "PUBLIC").length);
});

test("private and internal repositories never reach anonymous callers", async () => {
  const res = await w.get(`/v1/orgs/octo-org/repos?fields=${encodeURIComponent("name,visibility,private")}`);
  assert.equal(res.status, 200);
  const hidden = fixtureRepos(w.emu, "octo-org").filter((r) => r.visibility !== "PUBLIC");
  assert.ok(hidden.length > 30, "the fixture has private and internal repositories");
  for (const r of hidden) assert.ok(!res.text.includes(`"${r.name}"`), `${r.name} must not appear`);
  assert.ok(res.body.repos.every((r) => r.visibility === "public" && r.private === false));
});

test("fields= projects in allow-list order and the default set is as documented", async () => {
  const def = await w.get("/v1/orgs/octocat/repos");
  assert.deepEqual(Object.keys(def.body.repos[0]), ["name", "full_name", "visibility", "archived", "pushed_at", "ci"]);
  const picked = await w.get("/v1/orgs/octocat/repos?fields=ci,owner,name,name");
  assert.deepEqual(Object.keys(picked.body.repos[0]), ["name", "owner", "ci"]);
  assert.equal(picked.body.repos[0].owner, "octocat");
  assert.deepEqual(picked.body.repos[1].ci, { state: "failure", sha: "9e3779b1".repeat(5) });
});

test("an empty repository has a null default branch and null CI", async () => {
  const res = await w.get("/v1/orgs/octo-org/repos?fields=name,default_branch,ci,pushed_at");
  const empty = res.body.repos.find((r) => r.name === "repo-0032");
  assert.deepEqual(empty, { name: "repo-0032", default_branch: null, ci: null, pushed_at: null });
});

test("If-None-Match answers 304 with the same validators", async () => {
  const first = await w.get("/v1/orgs/octocat/repos");
  const etag = first.headers.get("etag");
  assert.match(etag, /^"[0-9a-f]{32}"$/);
  const again = await w.get("/v1/orgs/octocat/repos", { headers: { "If-None-Match": etag } });
  assert.equal(again.status, 304);
  assert.equal(again.text, "");
  assert.equal(again.headers.get("etag"), etag);
  const other = await w.get("/v1/orgs/octocat/repos", { headers: { "If-None-Match": '"nope"' } });
  assert.equal(other.status, 200);
});

test("anonymous views are publicly cacheable for at most 60 s", async () => {
  const res = await w.get("/v1/orgs/octocat/repos");
  assert.match(res.headers.get("cache-control"), /^public, max-age=(\d+), stale-while-revalidate=60$/);
  const maxAge = Number(/max-age=(\d+)/.exec(res.headers.get("cache-control"))[1]);
  assert.ok(maxAge > 0 && maxAge <= 60, `max-age ${maxAge}`);
  assert.equal(res.headers.get("vary"), "Authorization, Origin");
});

test("an unknown owner is 404 and the answer is cached for 60 s", async () => {
  w.emu.reset();
  const first = await w.get("/v1/orgs/no-such-owner/repos");
  assert.equal(first.status, 404);
  assert.equal(first.body.error.code, "not_found");
  assert.equal(first.headers.get("cache-control"), "no-store");
  const second = await w.get("/v1/orgs/No-Such-Owner/repos");
  assert.equal(second.status, 404);
  assert.equal(w.emu.stats.requests, 1, "the second typo did not reach GitHub");
  const stored = JSON.parse(await w.stored("v1:org:no-such-owner"));
  assert.equal(stored.data, null);
});

test("an owner with no repositories lists none", async () => {
  const res = await w.get("/v1/orgs/empty-org/repos");
  assert.equal(res.status, 200);
  assert.deepEqual(res.body.repos, []);
});

test("the cache entry is the documented envelope, private records included", async () => {
  await w.get("/v1/orgs/Small-Org/repos");
  const raw = JSON.parse(await w.stored("v1:org:small-org"));
  assert.ok(raw.fetched_at && raw.data);
  assert.ok(JSON.stringify(raw).includes("secret-plans"), "stored data holds private records; views filter them");
});

test("HEAD answers like GET without a body", async () => {
  const res = await w.get("/v1/orgs/octocat/repos", { method: "HEAD" });
  assert.equal(res.status, 200);
  assert.equal(res.text, "");
  assert.ok(res.headers.get("etag"));
});

test("the token and User-Agent go upstream as documented", async () => {
  const t = await startWorker({ GITHUB_TOKEN: "ghp_emulatortoken" });
  try {
    const res = await t.get("/v1/orgs/octocat/repos");
    assert.equal(res.status, 200);
    assert.equal(t.emu.stats.log[0].authorization, "bearer ghp_emulatortoken");
    assert.match(t.emu.stats.log[0].userAgent, /^forgelens\/\d+\.\d+\.\d+$/);
    assert.ok(!res.text.includes("ghp_emulatortoken"));
    const health = await t.get("/v1/health");
    assert.equal(health.body.config.GITHUB_TOKEN, true);
    assert.ok(!health.text.includes("ghp_emulatortoken"));
  } finally {
    await t.close();
  }
});
