// Views of large owners in the built worker: listing parameters validated before any I/O,
// filters applied after visibility, total/page/per_page and the Link header, the summary in every
// visibility mode, and no filter, count, order or page that tells an anonymous caller anything of
// a record it may not see.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startWorker, fixtureRepos, mintReadToken } from "./harness.mjs";

const READ_SECRET = "e2e-views-read-token-secret-0123456789";
let hide;
let redact;
before(async () => {
  hide = await startWorker({ READ_TOKEN_SECRET: READ_SECRET });
  redact = await startWorker({ READ_TOKEN_SECRET: READ_SECRET, PRIVATE_REPOS_ANONYMOUS: "redact" });
});
after(async () => {
  await hide.close();
  await redact.close();
});

const readToken = (orgs) => mintReadToken(READ_SECRET, orgs);
const ciOf = (r) => r.defaultBranchRef?.target?.statusCheckRollup?.state?.toLowerCase() ?? "none";
const visible = (owner, all = false) => fixtureRepos(hide.emu, owner).filter((r) => all || r.visibility === "PUBLIC");

test("a bad parameter is 400 invalid_parameter naming it and what it takes, before any I/O", async () => {
  hide.emu.reset();
  const cases = [
    ["ci=red", "ci", "failure"],
    ["visibility=secret", "visibility", "internal"],
    ["archived=yes", "archived", "true"],
    ["sort=stars", "sort", "pushed_at"],
    ["direction=up", "direction", "desc"],
    ["per_page=0", "per_page", "1000"],
    ["per_page=1001", "per_page", "1000"],
    ["per_page=10&page=0", "page", ""],
    ["page=0", "page", "100"],
    ["page=4294967296", "page", "4294967295"],
    ["language=" + "x".repeat(101), "language", "100"],
    ["q=" + "x".repeat(101), "q", "100"],
    ["ci=failure&ci=error", "ci", ""],
    ["fork=", "fork", "false"],
  ];
  for (const [query, param, allowed] of cases) {
    const res = await hide.get(`/v1/orgs/octo-org/repos?${query}`);
    assert.equal(res.status, 400, query);
    assert.equal(res.body.error.code, "invalid_parameter", query);
    assert.match(res.body.error.message, new RegExp(param), query);
    assert.ok(res.body.error.message.includes(allowed), `${query}: ${res.body.error.message}`);
    assert.equal(res.headers.get("cache-control"), "no-store");
  }
  const summary = await hide.get("/v1/orgs/octo-org/summary?ci=failure");
  assert.equal(summary.status, 400);
  assert.equal(summary.body.error.code, "invalid_parameter");
  assert.equal(hide.emu.stats.requests, 0, "nothing reached GitHub");
  assert.equal(await hide.kv.get("v1:org:octo-org"), null, "nothing was built");
});

test("filters, order and pages: total, page, per_page and a Link header exposed by CORS", async () => {
  const want = visible("octo-org").filter((r) => ["failure", "error"].includes(ciOf(r)) && !r.isArchived);
  const res = await hide.get("/v1/orgs/octo-org/repos?ci=failure,error&archived=false&per_page=10&page=2&fields=name,ci", {
    headers: { Origin: "https://dash.example" },
  });
  assert.equal(res.status, 200);
  assert.equal(res.body.total, want.length);
  assert.equal(res.body.page, 2);
  assert.equal(res.body.per_page, 10);
  assert.deepEqual(res.body.repos.map((r) => r.name), want.slice(10, 20).map((r) => r.name));
  assert.ok(res.body.repos.every((r) => ["failure", "error"].includes(r.ci.state)));
  const link = res.headers.get("link");
  const last = Math.ceil(want.length / 10);
  for (const [rel, page] of [["first", 1], ["prev", 1], ["next", 3], ["last", last]]) {
    const m = new RegExp(`<([^>]*)>; rel="${rel}"`).exec(link);
    assert.ok(m, `${rel} in ${link}`);
    const url = new URL(m[1], "http://x");
    assert.equal(url.pathname, "/v1/orgs/octo-org/repos");
    assert.equal(url.searchParams.get("page"), String(page), rel);
    assert.equal(url.searchParams.get("ci"), "failure,error", `${rel} keeps the filters`);
    assert.equal(url.searchParams.get("fields"), "name,ci", `${rel} keeps the fields`);
    // Following the link answers the page it names.
    const followed = await hide.get(m[1] + "");
    assert.equal(followed.body.page, page);
  }
  assert.match(res.headers.get("access-control-expose-headers"), /\bLink\b/);

  // Newest push first, empty repositories (no push) last.
  const sorted = await hide.get("/v1/orgs/octo-org/repos?sort=pushed_at&fields=name,pushed_at");
  const pushed = sorted.body.repos.map((r) => r.pushed_at);
  const dated = pushed.filter((p) => p !== null);
  assert.deepEqual(dated, [...dated].sort().reverse());
  assert.ok(pushed.indexOf(null) === -1 || pushed.slice(pushed.indexOf(null)).every((p) => p === null), "nulls last");
  assert.equal(sorted.body.total, visible("octo-org").length);

  // Without parameters the body is the plain listing.
  const plain = await hide.get("/v1/orgs/octo-org/repos?fields=name");
  assert.equal(plain.body.total, undefined);
  assert.equal(plain.headers.get("link"), null);
  assert.equal(plain.body.repos.length, visible("octo-org").length);
});

test("page alone pages by 100, exactly as per_page=100 would (body, ETag, Link)", async () => {
  const want = visible("octo-org").map((r) => r.name);
  assert.ok(want.length > 100, "more than one page of 100");
  const last = Math.ceil(want.length / 100);
  for (const page of [1, 2, last + 1]) {
    const alone = await hide.get(`/v1/orgs/octo-org/repos?page=${page}&fields=name`);
    assert.equal(alone.status, 200);
    assert.equal(alone.body.total, want.length);
    assert.equal(alone.body.page, page);
    assert.equal(alone.body.per_page, 100);
    assert.deepEqual(alone.body.repos.map((r) => r.name), want.slice((page - 1) * 100, page * 100));
    const explicit = await hide.get(`/v1/orgs/octo-org/repos?fields=name&per_page=100&page=${page}`);
    assert.deepEqual(alone.body, explicit.body);
    assert.equal(alone.headers.get("etag"), explicit.headers.get("etag"));
    const link = alone.headers.get("link");
    assert.equal(link, explicit.headers.get("link"));
    assert.ok(link.includes(`</v1/orgs/octo-org/repos?fields=name&per_page=100&page=${last}>; rel="last"`), link);
  }
});

test("the summary counts what the caller may see: public only anonymously (hide), everything with a token", async () => {
  const count = (repos) => ({
    total: repos.length,
    visibility: {
      public: repos.filter((r) => r.visibility === "PUBLIC").length,
      private: repos.filter((r) => r.visibility === "PRIVATE").length,
      internal: repos.filter((r) => r.visibility === "INTERNAL").length,
    },
    archived: repos.filter((r) => r.isArchived).length,
    forks: repos.filter((r) => r.isFork).length,
    failure: repos.filter((r) => ciOf(r) === "failure").length,
  });
  const anon = await hide.get("/v1/orgs/octo-org/summary");
  assert.equal(anon.status, 200);
  const pub = count(visible("octo-org"));
  assert.equal(anon.body.org, "octo-org");
  assert.equal(anon.body.total, pub.total);
  assert.deepEqual(anon.body.visibility, { public: pub.total, private: 0, internal: 0 });
  assert.equal(anon.body.archived, pub.archived);
  assert.equal(anon.body.forks, pub.forks);
  assert.equal(anon.body.ci.failure, pub.failure);
  assert.match(anon.body.fetched_at, /^\d{4}-/);
  assert.ok("revalidated_at" in anon.body);
  const etag = anon.headers.get("etag");
  assert.ok(etag);
  const again = await hide.get("/v1/orgs/octo-org/summary", { headers: { "If-None-Match": etag } });
  assert.equal(again.status, 304);

  const all = count(visible("octo-org", true));
  const withToken = await hide.get("/v1/orgs/octo-org/summary", { headers: { Authorization: `Bearer ${readToken(["octo-org"])}` } });
  assert.equal(withToken.status, 200);
  assert.equal(withToken.body.total, all.total);
  assert.deepEqual(withToken.body.visibility, all.visibility);
  assert.equal(withToken.body.archived, all.archived);
  assert.equal(withToken.headers.get("cache-control"), "private, no-store");
});

test("redact mode: private records count in total and visibility only, and match only visibility and q on the name", async () => {
  const all = fixtureRepos(redact.emu, "octo-org");
  const pub = all.filter((r) => r.visibility === "PUBLIC");
  const summary = await redact.get("/v1/orgs/octo-org/summary");
  assert.equal(summary.body.total, all.length);
  assert.equal(summary.body.visibility.private, all.filter((r) => r.visibility === "PRIVATE").length);
  assert.equal(summary.body.archived, pub.filter((r) => r.isArchived).length, "archived counts public records only");
  assert.equal(summary.body.forks, pub.filter((r) => r.isFork).length);
  const ciTotal = Object.values(summary.body.ci).reduce((a, b) => a + b, 0);
  assert.equal(ciTotal, pub.length, "CI states of public records only");

  const priv = await redact.get("/v1/orgs/octo-org/repos?visibility=private&fields=name,visibility,archived");
  assert.equal(priv.body.total, all.filter((r) => r.visibility === "PRIVATE").length);
  assert.ok(priv.body.repos.every((r) => Object.keys(r).sort().join() === "full_name,name,visibility"), "redacted records hold names and visibility only");
  const archived = await redact.get("/v1/orgs/octo-org/repos?archived=true&fields=name,visibility");
  assert.ok(archived.body.repos.every((r) => r.visibility === "public"), "a redacted record never matches a state filter");
  assert.equal(archived.body.total, pub.filter((r) => r.isArchived).length);
});

test("no filter, count, order or page tells an anonymous caller anything of a hidden record", async () => {
  // Two worlds that differ only in the private and internal records' states: every anonymous
  // answer (bodies, totals, orders, pages, Link) is the same.
  const views = [
    "/v1/orgs/octo-org/summary",
    "/v1/orgs/octo-org/repos?ci=failure&per_page=7&page=2",
    "/v1/orgs/octo-org/repos?archived=true",
    "/v1/orgs/octo-org/repos?language=rust&sort=pushed_at&per_page=5",
    "/v1/orgs/octo-org/repos?visibility=private,internal",
    "/v1/orgs/octo-org/repos?q=demo&sort=updated_at&direction=asc&per_page=1000",
  ];
  const answers = async (w) => {
    const out = [];
    for (const v of views) {
      const r = await w.get(v);
      const body = { ...r.body };
      delete body.fetched_at;
      delete body.revalidated_at;
      out.push([v, r.status, JSON.stringify(body), r.headers.get("link")]);
    }
    return out;
  };
  const original = await answers(hide);
  const hidden = await hide.get("/v1/orgs/octo-org/repos?visibility=private,internal");
  assert.equal(hidden.body.total, 0, "hidden records are never counted");
  assert.deepEqual(hidden.body.repos, []);
  const other = await startWorker({ READ_TOKEN_SECRET: READ_SECRET });
  try {
    let changed = 0;
    for (const r of other.emu.forge.owners.get("octo-org").repos) {
      if (r.visibility === "PUBLIC") continue;
      changed++;
      r.isArchived = !r.isArchived;
      r.isFork = !r.isFork;
      r.primaryLanguage = { name: "Rust" };
      r.description = "demo secret";
      r.pushedAt = "2030-01-01T00:00:00Z";
      r.updatedAt = "1990-01-01T00:00:00Z";
      if (r.defaultBranchRef) r.defaultBranchRef.target.statusCheckRollup = { state: "FAILURE" };
    }
    assert.ok(changed > 30);
    assert.deepEqual(await answers(other), original);
    // With a token the same views do see them.
    const auth = { headers: { Authorization: `Bearer ${readToken(["octo-org"])}` } };
    const seen = await other.get("/v1/orgs/octo-org/repos?language=rust&sort=pushed_at&per_page=5&fields=name,visibility", auth);
    assert.ok(seen.body.repos.some((r) => r.visibility !== "public"));
  } finally {
    await other.close();
  }
});

test("two spellings of one view share one memory entry; scopes never do", async () => {
  const a = await hide.get("/v1/orgs/octo-org/repos?ci=failure,error&per_page=10&fields=name");
  assert.equal(a.status, 200);
  const b = await hide.get("/v1/orgs/octo-org/repos?fields=name&per_page=10&page=1&direction=asc&ci=error,failure");
  assert.equal(b.text, a.text);
  assert.equal(b.headers.get("server-timing"), "mem;dur=0", "answered from the memory entry of the first spelling");
  const token = await hide.get("/v1/orgs/octo-org/repos?ci=failure,error&per_page=10&fields=name", {
    headers: { Authorization: `Bearer ${readToken(["octo-org"])}` },
  });
  assert.notEqual(token.body.total, a.body.total, "a token's view is its own");
});
