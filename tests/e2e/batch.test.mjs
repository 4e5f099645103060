// Named lookups: one upstream request per batch, only the misses fetched, order kept.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startWorker, fixtureRepos } from "./harness.mjs";

let w;
before(async () => {
  w = await startWorker();
});
after(async () => {
  await w.close();
});

const q = (list, extra = "") => `/v1/repos?names=${encodeURIComponent(list.join(","))}${extra}`;

test("100 names take exactly one upstream request and keep their order", async () => {
  w.emu.reset();
  const wanted = fixtureRepos(w.emu, "big-org").filter((r) => r.visibility === "PUBLIC").slice(0, 100).reverse();
  const res = await w.get(q(wanted.map((r) => r.nameWithOwner), "&fields=full_name"));
  assert.equal(res.status, 200);
  assert.equal(w.emu.stats.requests, 1);
  assert.equal(w.emu.stats.batch, 1);
  assert.equal(w.emu.stats.invalid, 0);
  assert.deepEqual(res.body.repos.map((r) => r.full_name), wanted.map((r) => r.nameWithOwner));
  assert.deepEqual(res.body.errors, []);
  assert.equal(res.headers.get("x-cache"), "MISS");
});

test("names travel as variables, never in the query text", async () => {
  w.emu.reset();
  await w.get(q(["octo-org/repo-0200", "octocat/project-0004"]));
  const entry = w.emu.stats.log[0];
  assert.ok(!entry.query.includes("repo-0200") && !entry.query.includes("octocat"));
  assert.deepEqual(entry.variables, { o0: "octo-org", n0: "repo-0200", o1: "octocat", n1: "project-0004" });
});

test("an overlapping batch fetches only the names it does not have", async () => {
  w.emu.reset();
  const first = ["octo-org/repo-0100", "octo-org/repo-0102", "octo-org/repo-0103"];
  await w.get(q(first));
  assert.equal(w.emu.stats.requests, 1);
  const second = ["octo-org/repo-0102", "octo-org/repo-0105", "octo-org/repo-0103", "octo-org/repo-0106"];
  const res = await w.get(q(second, "&fields=name"));
  assert.equal(w.emu.stats.requests, 2);
  assert.deepEqual(w.emu.stats.log[1].variables, { o0: "octo-org", n0: "repo-0105", o1: "octo-org", n1: "repo-0106" });
  assert.deepEqual(res.body.repos.map((r) => r.name), ["repo-0102", "repo-0105", "repo-0103", "repo-0106"]);
  assert.equal(res.headers.get("x-cache"), "MISS");
  const warm = await w.get(q(second, "&fields=name"));
  assert.equal(w.emu.stats.requests, 2);
  assert.equal(warm.headers.get("x-cache"), "HIT");
});

test("missing and private names are reported alike, in the caller's spelling", async () => {
  const res = await w.get(q(["Small-Org/Hello-World", "small-org/secret-plans", "small-org/nope", "SMALL-ORG/tool-0000"]));
  assert.equal(res.status, 200);
  assert.deepEqual(res.body.repos.map((r) => r.full_name), ["Small-Org/Hello-World", "Small-Org/tool-0000"]);
  assert.deepEqual(res.body.errors, [
    { name: "small-org/secret-plans", code: "not_found" },
    { name: "small-org/nope", code: "not_found" },
  ]);
  assert.ok(!JSON.stringify(res.body.repos).includes("secret"));
});

test("duplicates are answered once, first spelling kept", async () => {
  w.emu.reset();
  const res = await w.get(q(["octocat/project-0001", "OctoCat/Project-0001", "octocat/project-0002"], "&fields=name"));
  assert.deepEqual(res.body.repos.map((r) => r.name), ["project-0001", "project-0002"]);
});

test("101 distinct names are refused before anything is fetched", async () => {
  w.emu.reset();
  const list = Array.from({ length: 101 }, (_, i) => `big-org/repo-${String(i).padStart(4, "0")}`);
  const res = await w.get(q(list));
  assert.equal(res.status, 400);
  assert.equal(res.body.error.code, "too_many_names");
  // 100 distinct plus duplicates is fine.
  const ok = await w.get(q([...list.slice(0, 100), list[0].toUpperCase()], "&fields=name"));
  assert.equal(ok.status, 200);
  assert.equal(ok.body.repos.length + ok.body.errors.length, 100);
  assert.equal(w.emu.stats.requests, 1);
});

test("a single repository: public 200, private and missing 404, not-found cached", async () => {
  const pub = await w.get("/v1/repos/Small-Org/Hello-World?fields=name,url,private,language");
  assert.equal(pub.status, 200);
  assert.deepEqual(pub.body, { name: "Hello-World", url: "https://github.com/Small-Org/Hello-World", private: false, language: "Rust" });
  for (const path of ["/v1/repos/small-org/secret-plans", "/v1/repos/small-org/does-not-exist"]) {
    const res = await w.get(path);
    assert.equal(res.status, 404, path);
    assert.deepEqual(Object.keys(res.body.error), ["code", "message"]);
    assert.equal(res.body.error.code, "not_found");
  }
  // The private repository's 404 says nothing that a missing one would not.
  const a = await w.get("/v1/repos/small-org/secret-plans");
  const b = await w.get("/v1/repos/small-org/does-not-exist");
  assert.equal(a.text, b.text);
  w.emu.reset();
  await w.get("/v1/repos/small-org/does-not-exist");
  assert.equal(w.emu.stats.requests, 0, "not-found answer served from the negative cache");
});

test("a single lookup is filled from a fresh owner listing without asking GitHub", async () => {
  await w.get("/v1/orgs/octocat/repos");
  w.emu.reset();
  const res = await w.get("/v1/repos/octocat/project-0004");
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("x-cache"), "HIT");
  assert.equal(w.emu.stats.requests, 0);
});

test("a renamed repository answers under its new name, cached under that name only", async () => {
  const res = await w.get("/v1/repos/small-org/old-tool?fields=full_name");
  assert.equal(res.status, 200);
  assert.deepEqual(res.body, { full_name: "Small-Org/tool-0001" });
  assert.ok(await w.kv.get("v1:repo:small-org/tool-0001"));
  assert.equal(await w.kv.get("v1:repo:small-org/old-tool"), null, "an alias a webhook could not find");
});

test("redact policy lists private repositories with names and visibility only", async () => {
  const r = await startWorker({ PRIVATE_REPOS_ANONYMOUS: "redact" });
  try {
    const one = await r.get("/v1/repos/small-org/secret-plans?fields=name,full_name,visibility,url,ci");
    assert.equal(one.status, 200);
    assert.deepEqual(one.body, { name: "secret-plans", full_name: "Small-Org/secret-plans", visibility: "private" });
    const list = await r.get("/v1/orgs/small-org/repos?fields=url");
    const secret = list.body.repos.find((x) => x.name === "secret-plans");
    assert.deepEqual(secret, { name: "secret-plans", full_name: "Small-Org/secret-plans" });
    // Public repositories carry exactly the requested fields.
    assert.ok(list.body.repos.some((x) => JSON.stringify(x) === '{"url":"https://github.com/Small-Org/Hello-World"}'));
  } finally {
    await r.close();
  }
});
