// GitHub App mode against the built worker (issue 13): the worker signs RS256 App JWTs with
// WebCrypto and the emulator verifies them with the App's public key; installations are looked up
// per owner and their tokens cached; batches go out once per installation; installation webhooks
// drop the owner's installation and listing; GITHUB_TOKEN is the fallback. Each test names the
// numbered behaviour of the issue it shows.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { createRequire } from "node:module";
import { startWorker, rateKey, mintReadToken } from "./harness.mjs";
import { generateAppKey } from "../emulator/app.mjs";

const APP_ID = "12345";
const WEBHOOK_SECRET = "e2e-webhook-secret";
const READ_SECRET = "read-token-secret-of-at-least-32-bytes!";
const INSTALLATIONS = { "octo-org": 1001, "small-org": 1002, "big-org": 1003 };
const key = generateAppKey();
const examples = createRequire(import.meta.url)("@octokit/webhooks-examples/api.github.com/index.json");
const example = (event, action) => structuredClone(examples.find((e) => e.name === event).examples.find((e) => e.action === action));

const appWorker = (bindings = {}, app = {}) =>
  startWorker(
    { GITHUB_APP_ID: APP_ID, GITHUB_APP_PRIVATE_KEY: key.privateKeyPkcs1Pem, ...bindings },
    { app: { id: Number(APP_ID), publicKeyPem: key.publicKeyPem, installations: { ...INSTALLATIONS }, ...app } },
  );

let w;
before(async () => {
  w = await appWorker({ GITHUB_WEBHOOK_SECRET: WEBHOOK_SECRET, READ_TOKEN_SECRET: READ_SECRET });
});
after(async () => {
  await w.close();
});

const graphql = (emu) => emu.stats.log.filter((e) => e.rest === undefined);
const nowS = () => Math.floor(Date.now() / 1000);
const readToken = (orgs) => mintReadToken(READ_SECRET, orgs);
/** Every token the emulator issued: none may appear in an answer. */
function assertNoToken(emu, text) {
  for (const token of emu.app.tokens.keys()) assert.ok(!text.includes(token), "an installation token leaked");
  assert.ok(!text.includes("PRIVATE KEY") && !text.includes("eyJhbGciOiJSUzI1NiI"), "key material or an App JWT leaked");
}
async function kvEntry(kv, name) {
  const { keys } = await kv.list({ prefix: name });
  const found = keys.find((k) => k.name === name);
  return found ? { value: await kv.get(name), expiration: found.expiration } : null;
}
const names = (list) => `/v1/repos?names=${encodeURIComponent(list.join(","))}&fields=full_name`;

test("(1) the App JWT is RS256 from the PKCS#1 key, verified by the emulator; (2) the listing uses the installation token", async () => {
  w.emu.reset();
  const res = await w.get("/v1/orgs/octo-org/repos?fields=name");
  assert.equal(res.status, 200);
  assert.ok(res.body.repos.length > 0);
  assert.equal(w.emu.stats.appAuthFailures, 0);
  assert.equal(w.emu.stats.installationLookups, 1);
  assert.equal(w.emu.stats.tokensIssued, 1);
  const lookup = w.emu.stats.log.find((e) => e.rest === "installation");
  assert.deepEqual([lookup.kind, lookup.id, lookup.status], ["org", 1001, 200]);
  const pages = graphql(w.emu);
  assert.ok(pages.length >= 1);
  assert.ok(pages.every((e) => e.auth === "installation:1001" && e.status === 200), JSON.stringify(pages.map((e) => e.auth)));
  assertNoToken(w.emu, res.text);
  const health = await w.get("/v1/health");
  assert.equal(health.body.config_error, null);
  assert.equal(health.body.config.GITHUB_APP_ID, true);
  assert.equal(health.body.config.GITHUB_APP_PRIVATE_KEY, true);
  assertNoToken(w.emu, health.text);
});

test("(2) installation cached 1 h and token cached until 5 min before it expires, in KV; never answered", async () => {
  w.emu.reset();
  const res = await w.get(names(["octo-org/not-there"]));
  assert.equal(res.status, 200);
  assert.deepEqual(res.body.errors, [{ name: "octo-org/not-there", code: "not_found" }]);
  // Answered from the installation and token cached by the listing: no REST call at all.
  assert.equal(w.emu.stats.installationLookups, 0);
  assert.equal(w.emu.stats.tokenRequests, 0);
  assert.deepEqual(graphql(w.emu).map((e) => e.auth), ["installation:1001"]);
  const installation = await kvEntry(w.kv, "v1:installation:octo-org");
  assert.equal(installation.value, "1001");
  assert.ok(Math.abs(installation.expiration - (nowS() + 3600)) < 30, `${installation.expiration}`);
  const token = await kvEntry(w.kv, "v1:token:1001");
  assert.ok(token, "the token is kept in KV");
  assert.ok(Math.abs(token.expiration - (nowS() + 3600 - 300)) < 30, `${token.expiration}`);
  assertNoToken(w.emu, res.text);
});

test("(2) an owner without an installation is 404 not_found, remembered 60 s, with no GraphQL call", async () => {
  w.emu.reset();
  const res = await w.get("/v1/orgs/octocat/repos");
  assert.equal(res.status, 404);
  assert.equal(res.body.error.code, "not_found");
  assert.deepEqual(w.emu.stats.log.filter((e) => e.rest === "installation").map((e) => [e.kind, e.status]), [["org", 404], ["user", 404]]);
  assert.equal(graphql(w.emu).length, 0);
  assert.equal(w.emu.stats.tokenRequests, 0);
  const none = await kvEntry(w.kv, "v1:installation:octocat");
  assert.equal(none.value, "none");
  assert.ok(Math.abs(none.expiration - (nowS() + 60)) < 15, `${none.expiration}`);
  const single = await w.get("/v1/repos/octocat/project-0001");
  assert.equal(single.status, 404);
  assert.equal(w.emu.stats.installationLookups, 2);
  assert.equal(graphql(w.emu).length, 0);
});

test("(3) a batch goes out once per installation, each with its own token; the rate-limit memory is per installation", async () => {
  w.emu.reset();
  const res = await w.get(names(["big-org/repo-0001", "small-org/tool-0001", "big-org/repo-0002", "octocat/project-0001"]));
  assert.equal(res.status, 200);
  assert.deepEqual(res.body.repos.map((r) => r.full_name).sort(), ["Small-Org/tool-0001", "big-org/repo-0001", "big-org/repo-0002"]);
  assert.deepEqual(res.body.errors, [{ name: "octocat/project-0001", code: "not_found" }]);
  const calls = graphql(w.emu);
  assert.equal(calls.length, 2);
  const byAuth = Object.fromEntries(calls.map((e) => [e.auth, e.variables]));
  assert.deepEqual(byAuth["installation:1003"], { o0: "big-org", n0: "repo-0001", o1: "big-org", n1: "repo-0002" });
  assert.deepEqual(byAuth["installation:1002"], { o0: "small-org", n0: "tool-0001" });
  assert.equal(w.emu.stats.tokensIssued, 2);
  assertNoToken(w.emu, res.text);

  // big-org's installation spends its last point; small-org's budget is untouched.
  w.emu.app.rates.get(1003).remaining = 1;
  const spent = await w.get(names(["big-org/repo-0003"]));
  assert.equal(spent.status, 200);
  assert.ok(await w.kv.get(rateKey("installation:1003")), "the limit is remembered under the installation");
  w.emu.reset();
  const limited = await w.get(names(["big-org/repo-0004"]));
  // Every name failed the same way, so the whole answer is that failure.
  assert.equal(limited.status, 429);
  assert.equal(limited.body.error.code, "rate_limited");
  assert.equal(graphql(w.emu).length, 0);
  const other = await w.get(names(["small-org/tool-0002"]));
  assert.deepEqual(other.body.repos.map((r) => r.full_name), ["Small-Org/tool-0002"]);
  assert.deepEqual(graphql(w.emu).map((e) => e.auth), ["installation:1002"]);
});

test("(6) the installation token reads its owner's private repositories for an authorized caller", async () => {
  // An owner-level change drops the owner's listing, so the listing below is read from GitHub
  // (an answer from the cache would leave nothing to check the token of).
  const drop = example("installation_repositories", "removed");
  drop.installation.account.login = "Small-Org";
  drop.repositories_removed = [];
  assert.equal((await deliver("installation_repositories", drop)).status, 200);
  w.emu.reset();
  const privateOnes = [...w.emu.forge.owners.get("small-org").repos].filter((r) => r.isPrivate).map((r) => r.name);
  assert.ok(privateOnes.length > 0);
  const auth = { headers: { Authorization: `Bearer ${readToken(["small-org"])}` } };
  const res = await w.get("/v1/orgs/small-org/repos?fields=name", auth);
  assert.equal(res.status, 200);
  for (const name of privateOnes) assert.ok(res.body.repos.some((r) => r.name === name), name);
  const calls = graphql(w.emu);
  assert.ok(calls.length > 0, "the listing was read from GitHub");
  assert.ok(calls.every((e) => e.auth === "installation:1002"), JSON.stringify(calls.map((e) => e.auth)));
});

function deliver(event, payload) {
  const body = JSON.stringify(payload);
  const headers = {
    "X-GitHub-Event": event,
    "Content-Type": "application/json",
    "X-GitHub-Delivery": crypto.randomUUID(),
    "X-Hub-Signature-256": "sha256=" + createHmac("sha256", WEBHOOK_SECRET).update(body).digest("hex"),
  };
  return w.get("/v1/webhooks/github", { method: "POST", headers, body });
}

test("(4) installation_repositories drops the owner's installation entry and listing", async () => {
  await w.get("/v1/orgs/small-org/repos");
  assert.equal(await w.kv.get("v1:installation:small-org"), "1002");
  const payload = example("installation_repositories", "removed");
  payload.installation.account.login = "Small-Org";
  payload.repositories_removed = [{ ...payload.repositories_removed[0], full_name: "Small-Org/tool-0003", name: "tool-0003" }];
  const res = await deliver("installation_repositories", payload);
  assert.equal(res.status, 200);
  assert.deepEqual(res.body.invalidated, ["v1:repo:small-org/tool-0003", "v1:org:small-org", "v1:installation:small-org"]);
  assert.equal(await w.kv.get("v1:installation:small-org"), null);
  assert.equal(await w.kv.get("v1:org:small-org"), null);
});

test("(4) installation deleted: the owner's installation and listing go, and the owner is not found", async () => {
  await w.get("/v1/orgs/small-org/repos");
  assert.ok(await w.stored("v1:org:small-org"));
  w.emu.app.installations.delete("small-org");
  const payload = example("installation", "deleted");
  payload.installation.account.login = "Small-Org";
  const res = await deliver("installation", payload);
  assert.equal(res.status, 200);
  assert.equal(res.body.event, "installation");
  assert.equal(res.body.action, "deleted");
  assert.deepEqual(res.body.invalidated, ["v1:org:small-org", "v1:installation:small-org"]);
  w.emu.reset();
  const gone = await w.get("/v1/orgs/small-org/repos");
  assert.equal(gone.status, 404);
  assert.equal(graphql(w.emu).length, 0);
  for (const action of ["created", "suspend", "unsuspend", "new_permissions_accepted"]) {
    const p = example("installation", action);
    p.installation.account.login = "octo-org";
    const r = await deliver("installation", p);
    assert.deepEqual(r.body.invalidated, ["v1:org:octo-org", "v1:installation:octo-org"], action);
  }
});

test("(5) with GITHUB_TOKEN too, owners without an installation are read with it", async () => {
  const both = await appWorker({ GITHUB_TOKEN: "ghp_fallback_token" });
  try {
    const res = await both.get("/v1/orgs/octocat/repos?fields=name");
    assert.equal(res.status, 200);
    assert.ok(res.body.repos.length > 0);
    assert.deepEqual(graphql(both.emu).map((e) => e.auth), ["token"]);
    const installed = await both.get(names(["octo-org/repo-0001"]));
    assert.equal(installed.status, 200);
    assert.deepEqual(graphql(both.emu).map((e) => e.auth), ["token", "installation:1001"]);
    assert.ok(!res.text.includes("ghp_fallback_token"));
  } finally {
    await both.close();
  }
});

test("(6) an App uninstalled without a delivery: its refused token is forgotten and the owner is read with GITHUB_TOKEN", async () => {
  const both = await appWorker({ GITHUB_TOKEN: "ghp_fallback_token" });
  try {
    assert.equal((await both.get(names(["octo-org/repo-0001"]))).status, 200);
    assert.deepEqual(graphql(both.emu).map((e) => e.auth), ["installation:1001"]);
    // GitHub now refuses the installation's token (401) and would answer its mint 404.
    both.emu.app.installations.delete("octo-org");
    const refused = await both.get(names(["octo-org/repo-0002"]));
    // The refused read fails once (502, as any unusable answer); nothing is cached from it.
    assert.deepEqual([refused.status, refused.body.error.code], [502, "upstream_error"]);
    assert.equal(await both.kv.get("v1:installation:octo-org"), "none", "taken as not installed");
    assert.equal(await both.kv.get("v1:token:1001"), null, "the refused token is forgotten");
    const fallback = await both.get(names(["octo-org/repo-0004"]));
    assert.equal(fallback.status, 200);
    assert.deepEqual(fallback.body.repos.map((r) => r.full_name), ["octo-org/repo-0004"]);
    assert.equal(graphql(both.emu).at(-1).auth, "token", "read with GITHUB_TOKEN");
    const lookups = both.emu.stats.log.filter((e) => e.rest).length;
    assert.equal((await both.get(names(["octo-org/repo-0006"]))).body.repos.length, 1);
    assert.equal(both.emu.stats.log.filter((e) => e.rest).length, lookups, "no installation lookup for a minute");
    assertNoToken(both.emu, refused.text + fallback.text);
  } finally {
    await both.close();
  }
});

test("(1) a PKCS#8 key works too; a key the App does not have is refused by the emulator's RS256 check", async () => {
  const pkcs8 = await appWorker({ GITHUB_APP_PRIVATE_KEY: key.privateKeyPkcs8Pem });
  try {
    const res = await pkcs8.get("/v1/orgs/octo-org/repos");
    assert.equal(res.status, 200);
    assert.equal(pkcs8.emu.stats.appAuthFailures, 0);
  } finally {
    await pkcs8.close();
  }
  const stranger = await appWorker({ GITHUB_APP_PRIVATE_KEY: generateAppKey().privateKeyPkcs1Pem });
  try {
    const res = await stranger.get("/v1/orgs/octo-org/repos");
    assert.ok(res.status >= 500, `${res.status}`);
    assert.equal(stranger.emu.stats.appAuthFailures, 1);
    assert.equal(stranger.emu.stats.log.find((e) => e.rest)?.jwtError, "signature");
    assert.equal(graphql(stranger.emu).length, 0);
    assert.ok(!res.text.includes("PRIVATE KEY"));
  } finally {
    await stranger.close();
  }
});

test("(1) a malformed key, or an id without a key, is 500 config_invalid naming GITHUB_APP_PRIVATE_KEY, also in /v1/health", async () => {
  const cases = [
    { GITHUB_APP_ID: APP_ID, GITHUB_APP_PRIVATE_KEY: "-----BEGIN RSA PRIVATE KEY-----\nnot base64!\n-----END RSA PRIVATE KEY-----" },
    { GITHUB_APP_ID: APP_ID, GITHUB_APP_PRIVATE_KEY: "" },
    { GITHUB_APP_ID: "", GITHUB_APP_PRIVATE_KEY: key.privateKeyPkcs1Pem },
  ];
  for (const bindings of cases) {
    const bad = await startWorker(bindings);
    try {
      const res = await bad.get("/v1/orgs/octo-org/repos");
      assert.equal(res.status, 500);
      assert.equal(res.body.error.code, "config_invalid");
      assert.ok(res.body.error.message.includes("GITHUB_APP_PRIVATE_KEY"), res.body.error.message);
      assert.ok(!res.text.includes("MII") && !res.text.includes("not base64"));
      const health = await bad.get("/v1/health");
      assert.equal(health.status, 200);
      assert.equal(health.body.config_error, "GITHUB_APP_PRIVATE_KEY");
      assert.equal(bad.emu.stats.requests, 0);
    } finally {
      await bad.close();
    }
  }
});

test("no key material, App JWT or installation token reaches the worker's log", async () => {
  const lines = [];
  const collect = (stream) => stream.on("data", (chunk) => lines.push(String(chunk)));
  const logged = await startWorker(
    { GITHUB_APP_ID: APP_ID, GITHUB_APP_PRIVATE_KEY: key.privateKeyPkcs1Pem, PINNED_ORGS: "octo-org,octocat", FRESH_TTL_SECONDS: "0" },
    { app: { id: Number(APP_ID), publicKeyPem: key.publicKeyPem, installations: { ...INSTALLATIONS } } },
    { handleRuntimeStdio: (stdout, stderr) => { collect(stdout); collect(stderr); } },
  );
  try {
    assert.equal((await logged.get("/v1/orgs/octo-org/repos")).status, 200);
    assert.equal((await logged.get(names(["big-org/repo-0001", "octocat/project-0001"]))).status, 200);
    // Stale at once (FRESH_TTL_SECONDS=0): background refreshes run under wait_until.
    await logged.get(names(["big-org/repo-0001"]));
    const worker = await logged.mf.getWorker();
    await worker.scheduled({ cron: "*/5 * * * *", scheduledTime: new Date() });
    await new Promise((r) => setTimeout(r, 500));
    assert.ok(logged.emu.stats.tokensIssued >= 2);
    const text = lines.join("");
    assert.ok(text.includes("cron asked"), "the log was captured");
    for (const token of logged.emu.app.tokens.keys()) assert.ok(!text.includes(token), "an installation token was logged");
    assert.ok(!/PRIVATE KEY|MII[A-Za-z0-9+/]{20}|eyJhbGciOiJSUzI1NiI/.test(text), "key material or an App JWT was logged");
  } finally {
    await logged.close();
  }
});
