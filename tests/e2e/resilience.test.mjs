// Resilience and access control against the built worker: stale-while-revalidate, stale-if-error,
// single flight, remembered rate limits and read tokens.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { startWorker, fixtureRepos, rateKey } from "./harness.mjs";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function until(check, ms = 3000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return true;
    await sleep(25);
  }
  return false;
}

test("a stale listing is answered at once and refreshed in the background, once", async () => {
  // Fresh for 3 s: long enough that the refresh, asked of a 1.5 s GitHub below, is still fresh
  // when it is read back.
  const w = await startWorker({ FRESH_TTL_SECONDS: "3" }, { latencyMs: 200 });
  try {
    await w.get("/v1/orgs/octocat/repos");
    const old = await w.stored("v1:org:octocat");
    await sleep(3100);
    w.emu.reset();
    // GitHub is slow now (1.5 s): answers that waited for it would take that long at least, so a
    // loose bound tells them apart even on a busy machine.
    w.emu.faults.latencyMs = 1500;
    const started = Date.now();
    const stale = await Promise.all([1, 2, 3].map(() => w.get("/v1/orgs/octocat/repos")));
    assert.ok(Date.now() - started < 1000, "nobody waited for GitHub");
    for (const r of stale) {
      assert.equal(r.status, 200);
      assert.equal(r.headers.get("x-cache"), "STALE");
      assert.equal(r.headers.get("cache-control"), "public, max-age=0, stale-while-revalidate=60");
    }
    assert.ok(await until(async () => w.emu.stats.requests >= 1), "the refresh reached GitHub");
    assert.ok(await until(async () => (await w.kv.get("v1:org:octocat")) !== old, 10_000), "the refresh was stored");
    assert.equal(w.emu.stats.requests, 1, "one refresh for three stale reads");
    const fresh = await w.get("/v1/orgs/octocat/repos");
    assert.equal(fresh.headers.get("x-cache"), "HIT");
  } finally {
    await w.close();
  }
});

// One worker per fault: an owner's directory remembers a failed build for 10 s (DESIGN.md), so a
// second fault right after the first would be answered from that memory without a new try.
for (const fault of [{ status: 502, body: "<html>down</html>" }, { status: 200, body: "{not json" }]) {
  test(`when GitHub fails (${fault.status} ${fault.body}), cached entries are served as STALE and kept`, async () => {
    const w = await startWorker({ FRESH_TTL_SECONDS: "1" });
    try {
      await w.get("/v1/orgs/octocat/repos");
      await w.get("/v1/repos/small-org/tool-0000");
      const before = await w.stored("v1:org:octocat");
      await sleep(1100);
      w.emu.reset();
      Object.assign(w.emu.faults, fault);
      const org = await w.get("/v1/orgs/octocat/repos");
      assert.deepEqual([org.status, org.headers.get("x-cache")], [200, "STALE"]);
      const one = await w.get("/v1/repos/small-org/tool-0000");
      assert.deepEqual([one.status, one.headers.get("x-cache")], [200, "STALE"]);
      assert.ok(await until(async () => w.emu.stats.requests >= 2), "the refreshes were tried");
      await sleep(100);
      assert.equal(await w.kv.get("v1:org:octocat"), before, "a failed refresh keeps the entry");
    } finally {
      await w.close();
    }
  });
}

test("50 concurrent cold requests for one org cost no more requests than its pages", async () => {
  const w = await startWorker({}, { latencyMs: 50 });
  try {
    const answers = await Promise.all(Array.from({ length: 50 }, () => w.get("/v1/orgs/octo-org/repos?fields=name")));
    assert.ok(answers.every((r) => r.status === 200));
    assert.ok(w.emu.stats.requests <= 3, `${w.emu.stats.requests} upstream requests for 3 pages`);
    assert.equal(new Set(answers.map((r) => r.text)).size, 1);
  } finally {
    await w.close();
  }
});

test("rate limits: GraphQL RATE_LIMITED and a spent budget stop calls; stale is still served", async () => {
  const w = await startWorker();
  try {
    await w.get("/v1/orgs/octocat/repos");
    w.emu.faults.status = 200;
    w.emu.faults.body = { data: null, errors: [{ type: "RATE_LIMITED", message: "API rate limit exceeded for user ID 1." }] };
    const limited = await w.get("/v1/orgs/small-org/repos");
    assert.deepEqual([limited.status, limited.body.error.code, limited.headers.get("retry-after")], [429, "rate_limited", "60"]);
    w.emu.reset();
    const again = await w.get("/v1/repos/big-org/repo-0000");
    assert.equal(again.status, 429);
    assert.equal(w.emu.stats.requests, 0, "no upstream call until the reset");
    const cached = await w.get("/v1/orgs/octocat/repos");
    assert.equal(cached.status, 200, "cached data is still served");

    // A reply that spends the last point is used, and then no call is made until resetAt.
    await w.kv.delete(rateKey());
    w.emu.rate.remaining = 1;
    // small-org's directory waits for the GraphQL limit's reset; another (one-page) owner asks.
    const last = await w.get("/v1/orgs/empty-org/repos");
    assert.equal(last.status, 200);
    const next = await w.get("/v1/orgs/big-org/repos");
    assert.equal(next.status, 429);
    const wait = Number(next.headers.get("retry-after"));
    assert.ok(wait > 3000 && wait <= 3600, `Retry-After ${wait} follows resetAt`);
  } finally {
    await w.close();
  }
});

const SECRET = "read-token-secret-of-at-least-32-bytes!";
const b64 = (x) => Buffer.from(typeof x === "string" ? x : JSON.stringify(x)).toString("base64url");
function jwt(claims, { alg = "HS256", secret = SECRET } = {}) {
  const head = b64({ alg, typ: "JWT" });
  const body = b64(claims);
  const sig = alg === "none" ? "" : createHmac("sha256", secret).update(`${head}.${body}`).digest("base64url");
  return `${head}.${body}.${sig}`;
}
const now = () => Math.floor(Date.now() / 1000);

test("read tokens unlock private repositories of their orgs, privately", async () => {
  const w = await startWorker({ READ_TOKEN_SECRET: SECRET });
  try {
    const privateOnes = fixtureRepos(w.emu, "small-org").filter((r) => r.visibility !== "PUBLIC");
    const auth = (t) => ({ headers: { Authorization: `Bearer ${t}` } });
    const anon = await w.get("/v1/orgs/small-org/repos?fields=name");
    const token = jwt({ exp: now() + 300, orgs: ["small-org"] });
    const mine = await w.get("/v1/orgs/small-org/repos?fields=name", auth(token));
    assert.equal(mine.status, 200);
    assert.equal(mine.body.repos.length, anon.body.repos.length + privateOnes.length);
    assert.equal(mine.headers.get("cache-control"), "private, no-store");
    assert.equal(mine.headers.get("vary"), "Authorization, Origin");
    const single = await w.get("/v1/repos/small-org/secret-plans?fields=name,private", auth(token));
    assert.deepEqual(single.body, { name: "secret-plans", private: true });
    const all = await w.get("/v1/repos/small-org/secret-plans", auth(jwt({ exp: now() + 300, orgs: ["*"] })));
    assert.equal(all.status, 200);
    const other = await w.get("/v1/repos/small-org/secret-plans", auth(jwt({ exp: now() + 300, orgs: ["octo-org"] })));
    assert.equal(other.status, 404, "a token for another org unlocks nothing here");
    const noOrgs = await w.get("/v1/repos/small-org/secret-plans", auth(jwt({ exp: now() + 300 })));
    assert.equal(noOrgs.status, 404);

    w.emu.reset();
    const bad = [
      jwt({ exp: now() - 120, orgs: ["*"] }),
      jwt({ orgs: ["*"] }),
      jwt({ exp: now() + 300, nbf: now() + 120, orgs: ["*"] }),
      jwt({ exp: now() + 300, orgs: ["*"] }, { secret: "another-secret-another-secret-another!" }),
      jwt({ exp: now() + 300, orgs: ["*"] }, { alg: "none" }),
      jwt({ exp: now() + 300, orgs: ["*"] }, { alg: "HS512" }),
      token.replace(/\.[^.]+\./, `.${b64({ exp: now() + 300, orgs: ["*"] })}.`),
      "garbage",
    ];
    for (const t of bad) {
      const res = await w.get("/v1/orgs/small-org/repos", auth(t));
      assert.equal(res.status, 401, t);
      assert.equal(res.body.error.code, "unauthorized");
      assert.equal(res.headers.get("cache-control"), "no-store");
    }
    assert.equal(w.emu.stats.requests, 0);
  } finally {
    await w.close();
  }
});
