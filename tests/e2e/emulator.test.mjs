// The GitHub emulator refuses what GitHub refuses, so the worker's tests meet what production
// meets: GraphQL without a token, a spent budget, an App JWT whose `exp` is too far ahead. And an
// exception inside the emulator fails the test instead of passing for a GitHub 5xx.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startWorker, TOKEN } from "./harness.mjs";
import { startEmulator } from "../emulator/server.mjs";
import { generateAppKey, signAppJwt, DEFAULT_APP_ID } from "../emulator/app.mjs";

const QUERY = "query($login: String!) { rateLimit { remaining } repositoryOwner(login: $login) { login } }";
const key = generateAppKey();
let emu;
before(async () => {
  emu = await startEmulator({ app: { id: DEFAULT_APP_ID, publicKeyPem: key.publicKeyPem } });
});
after(async () => {
  await emu.close();
  assert.deepEqual(emu.thrown, []);
});

const ask = (authorization) => fetch(emu.url, {
  method: "POST",
  headers: { "content-type": "application/json", ...(authorization ? { authorization } : {}) },
  body: JSON.stringify({ query: QUERY, variables: { login: "octo-org" } }),
});

test("GraphQL without a token is 401, as on GitHub, and runs nothing", async () => {
  emu.reset();
  const res = await ask(null);
  assert.equal(res.status, 401);
  assert.match((await res.json()).message, /requires you to be authenticated/);
  assert.equal(emu.stats.owner, 0, "the query never ran");
  assert.equal(emu.stats.log[0].authError, "anonymous");
});

test("a served query costs 1 point and says so in x-ratelimit-* headers and rateLimit", async () => {
  emu.reset();
  emu.rate.remaining = 10;
  const res = await ask(`bearer ${TOKEN}`);
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.equal(body.data.repositoryOwner.login, "octo-org");
  assert.equal(body.data.rateLimit.remaining, 9, "what is left after this query");
  assert.equal(res.headers.get("x-ratelimit-remaining"), "9");
  assert.equal(res.headers.get("x-ratelimit-limit"), "5000");
  assert.equal(res.headers.get("x-ratelimit-used"), "4991");
  assert.equal(res.headers.get("x-ratelimit-resource"), "graphql");
  assert.equal(Number(res.headers.get("x-ratelimit-reset")), Math.floor(Date.parse(emu.rate.resetAt) / 1000));
  assert.equal(emu.rate.remaining, 9);
});

test("a spent budget is refused (RATE_LIMITED, remaining 0) until its reset, then refilled", async () => {
  emu.reset();
  emu.rate.remaining = 0;
  const refused = await ask(`bearer ${TOKEN}`);
  assert.equal(refused.status, 200);
  const body = await refused.json();
  assert.equal(body.data, undefined, "no data: the query never ran");
  assert.equal(body.errors[0].type, "RATE_LIMITED");
  assert.equal(refused.headers.get("x-ratelimit-remaining"), "0");
  assert.equal(emu.stats.owner, 0);
  assert.equal(emu.stats.rateLimited, 1);
  assert.equal(emu.rate.remaining, 0, "a refusal costs nothing");

  emu.rate.resetAt = new Date(Date.now() - 1000).toISOString();
  const served = await ask(`bearer ${TOKEN}`);
  assert.equal(served.status, 200);
  assert.equal((await served.json()).data.rateLimit.remaining, 4999, "refilled at the reset");
  assert.ok(Date.parse(emu.rate.resetAt) > Date.now() + 3500_000, "the next window starts");
});

test("an App JWT may end no later than 10 minutes from now, whatever its iat", async () => {
  emu.reset();
  const lookup = (jwt) => fetch(`${emu.origin}/orgs/octo-org/installation`, { headers: { authorization: `Bearer ${jwt}` } });
  const now = Math.floor(Date.now() / 1000);
  // GitHub's own advice: iat 60 s in the past, exp 10 min ahead (an 11-minute lifetime).
  const advised = signAppJwt({ privateKeyPem: key.privateKeyPkcs1Pem, claims: { iat: now - 60, exp: now + 600 } });
  assert.equal((await lookup(advised)).status, 200);
  const tooFar = signAppJwt({ privateKeyPem: key.privateKeyPkcs1Pem, claims: { iat: now - 60, exp: now + 660 } });
  const refused = await lookup(tooFar);
  assert.equal(refused.status, 401);
  assert.match((await refused.json()).message, /too far in the future/);
});

test("the worker without GITHUB_TOKEN meets GitHub's 401: 502 upstream_error, nothing cached, no private data", async () => {
  const w = await startWorker({ GITHUB_TOKEN: undefined });
  try {
    const res = await w.get("/v1/orgs/octo-org/repos");
    assert.equal(res.status, 502);
    assert.equal(res.body.error.code, "upstream_error");
    assert.ok(!res.text.includes("authenticated"), "GitHub's text is not relayed");
    assert.ok(w.emu.stats.log.length >= 1);
    assert.ok(w.emu.stats.log.every((e) => e.status === 401 && e.auth === "none"));
    assert.equal(await w.kv.get("v1:org:octo-org"), null, "errors are never stored");
  } finally {
    await w.close();
  }
});

test("an exception inside the emulator fails the test that met it", async () => {
  const w = await startWorker();
  // An owner-page failure mode the emulator does not know makes it throw while answering.
  w.emu.faults.failOwnerPage = { index: 0, status: "no-such-mode" };
  await w.get("/v1/orgs/small-org/repos");
  await assert.rejects(w.close(), /the GitHub emulator threw \d+ time\(s\): Error: unknown owner-page failure mode no-such-mode/);
});

test("repositories page as GitHub's: a part by visibility, archived and fork, read from both ends until they meet", async () => {
  const q = `query($login: String!, $v: RepositoryVisibility, $a: Boolean, $f: Boolean, $first: Int, $after: String, $last: Int, $before: String) {
    repositoryOwner(login: $login) { repositories(visibility: $v, isArchived: $a, isFork: $f, first: $first, after: $after, last: $last, before: $before,
      orderBy: {field: NAME, direction: ASC}, ownerAffiliations: [OWNER]) { totalCount nodes { name visibility isArchived isFork }
      pageInfo { startCursor endCursor hasNextPage hasPreviousPage } } } }`;
  const page = async (variables) => {
    const res = await fetch(emu.url, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `bearer ${TOKEN}` },
      body: JSON.stringify({ query: q, variables: { login: "big-org", ...variables } }),
    });
    const body = await res.json();
    assert.equal(body.errors, undefined, JSON.stringify(body.errors));
    return body.data.repositoryOwner.repositories;
  };
  const part = { v: "PUBLIC", a: false, f: false };
  const all = emu.forge.owners.get("big-org").repos
    .filter((r) => r.visibility === "PUBLIC" && !r.isArchived && !r.isFork)
    .map((r) => r.name).sort((x, y) => x.toLowerCase().localeCompare(y.toLowerCase()));
  assert.ok(all.length > 200, "a part of more than two pages");
  // From the front and from the back, 100 at a time, until the two ends meet.
  const front = [];
  const back = [];
  let after = null;
  let before = null;
  for (;;) {
    const f = await page({ ...part, first: 100, after });
    assert.equal(f.totalCount, all.length);
    assert.ok(f.nodes.every((r) => r.visibility === "PUBLIC" && !r.isArchived && !r.isFork));
    front.push(...f.nodes.map((r) => r.name));
    after = f.pageInfo.endCursor;
    const b = await page({ ...part, last: 100, before });
    back.unshift(...b.nodes.map((r) => r.name));
    before = b.pageInfo.startCursor;
    const low = (s) => s.toLowerCase();
    if (low(front.at(-1)) >= low(back[0]) || !f.pageInfo.hasNextPage || !b.pageInfo.hasPreviousPage) break;
  }
  const met = [...new Set([...front, ...back])].sort((x, y) => x.toLowerCase().localeCompare(y.toLowerCase()));
  assert.deepEqual(met, all, "the two ends cover the part, each name once after merging");
  // Neither first nor last, or both: GitHub's error.
  const res = await fetch(emu.url, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `bearer ${TOKEN}` },
    body: JSON.stringify({ query: q, variables: { login: "big-org", ...part } }),
  });
  assert.match(JSON.stringify(await res.json()), /must provide a `first` or `last` value/);
});
