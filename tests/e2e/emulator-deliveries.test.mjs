// The GitHub emulator's webhooks: every delivery it sends is recorded per hook with GitHub's
// fields, and GitHub's deliveries API lists (newest first, Link cursors), shows and redelivers them
// under GitHub's auth rules, so the worker's delivery recovery can be tested end to end. A tiny
// local receiver stands in for the worker: it answers 200, 503, or not at all.
import { test, before, after, beforeEach } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { fileURLToPath } from "node:url";
import { startEmulator } from "../emulator/server.mjs";
import { generateAppKey, signAppJwt, DEFAULT_APP_ID } from "../emulator/app.mjs";

const TIMEOUT_MS = 300;
const key = generateAppKey();
const jwt = (claims = {}) => `Bearer ${signAppJwt({ privateKeyPem: key.privateKeyPkcs1Pem, claims })}`;
const TOKEN = "token ghp_deliveries_test";

// The stand-in worker: `mode` is 200, 503 or "hang" (never answers).
const receiver = { mode: 200, received: [], server: null, url: null };
let emu;
let appHook, orgHook, repoHook;

before(async () => {
  receiver.server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      receiver.received.push({ headers: req.headers, body: Buffer.concat(chunks).toString(), url: req.url });
      if (receiver.mode === "hang") return;
      res.writeHead(receiver.mode, { "content-type": "application/json" });
      res.end(receiver.mode === 200 ? '{"invalidated":[]}' : '{"error":"unavailable"}');
    });
  });
  await new Promise((r) => receiver.server.listen(0, "127.0.0.1", r));
  receiver.url = `http://127.0.0.1:${receiver.server.address().port}/v1/webhooks/github`;
  emu = await startEmulator({
    app: { id: DEFAULT_APP_ID, publicKeyPem: key.publicKeyPem },
    hookTimeoutMs: TIMEOUT_MS,
    hooks: [
      { target: "app", url: receiver.url, secret: "app-secret" },
      { id: 42, target: "organization:octo-org", url: receiver.url, secret: "org-secret" },
      { id: 43, target: "repository:Small-Org/tool-0001", url: receiver.url, secret: "repo-secret" },
    ],
  });
  appHook = emu.hooks.appHook();
  orgHook = emu.hooks.get(42);
  repoHook = emu.hooks.get(43);
});

after(async () => {
  await emu.close();
  receiver.server.closeAllConnections();
  await new Promise((r) => receiver.server.close(r));
  assert.deepEqual(emu.thrown, []);
});

beforeEach(async () => {
  await emu.hooks.idle();
  emu.reset();
  emu.hooks.clear();
  receiver.mode = 200;
  receiver.received = [];
});

const api = (path, init = {}) => fetch(`${emu.origin}${path}`, init);
const get = async (path, authorization = TOKEN) => {
  const res = await api(path, { headers: authorization ? { authorization } : {} });
  return { status: res.status, headers: res.headers, body: await res.json() };
};
const control = async (path, body, method = "POST") => {
  const res = await api(path, { method, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
};
const sign = (secret, body) => "sha256=" + createHmac("sha256", secret).update(body).digest("hex");
const privatized = (repo = "repo-0003", owner = "octo-org") => ({
  event: "repository",
  payload: { action: "privatized", repository: { full_name: `${owner}/${repo}`, name: repo, owner: { login: owner } } },
});
const ORG_LIST = "/orgs/octo-org/hooks/42/deliveries";

test("a delivery carries GitHub's headers and signature; the list and the single delivery show it", async () => {
  const sent = await control("/_emulator/hooks/42/send", privatized());
  assert.equal(sent.status, 200);
  assert.equal(receiver.received.length, 1);
  const { headers, body } = receiver.received[0];
  assert.equal(headers["x-github-event"], "repository");
  assert.equal(headers["x-github-delivery"], sent.body.guid);
  assert.equal(headers["x-github-hook-id"], "42");
  assert.equal(headers["x-github-hook-installation-target-type"], "organization");
  assert.equal(headers["x-github-hook-installation-target-id"], String(emu.hooks.forgeIds.ownerId("octo-org")));
  assert.equal(headers["x-hub-signature-256"], sign("org-secret", body));
  assert.equal(headers["content-type"], "application/json");
  assert.match(headers["user-agent"], /^GitHub-Hookshot\/\w+$/);
  assert.deepEqual(JSON.parse(body), privatized().payload);

  const list = await get(ORG_LIST);
  assert.equal(list.status, 200);
  assert.equal(list.headers.get("link"), null, "one page");
  assert.equal(list.headers.get("x-ratelimit-resource"), "core");
  assert.equal(list.body.length, 1);
  const item = list.body[0];
  assert.deepEqual(Object.keys(item), ["id", "guid", "delivered_at", "redelivery", "duration", "status", "status_code",
    "event", "action", "installation_id", "repository_id", "throttled_at"]);
  assert.equal(typeof item.id, "number");
  assert.equal(item.guid, sent.body.guid);
  assert.match(item.delivered_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assert.ok(Math.abs(Date.parse(item.delivered_at) - Date.now()) < 5000);
  assert.equal(item.redelivery, false);
  assert.equal(typeof item.duration, "number");
  assert.equal(item.status, "OK");
  assert.equal(item.status_code, 200);
  assert.equal(item.event, "repository");
  assert.equal(item.action, "privatized");
  assert.equal(item.installation_id, null, "an organization hook's payload names no installation");
  assert.equal(item.repository_id, emu.hooks.forgeIds.repoId(emu.hooks.forgeIds.repo("octo-org/repo-0003")));
  assert.equal(item.throttled_at, null);

  const one = await get(`${ORG_LIST}/${item.id}`);
  assert.equal(one.status, 200);
  assert.deepEqual(Object.keys(one.body), [...Object.keys(item), "url", "request", "response"]);
  assert.deepEqual({ ...one.body, url: undefined, request: undefined, response: undefined }, { ...item, url: undefined, request: undefined, response: undefined });
  assert.equal(one.body.url, receiver.url);
  assert.deepEqual(one.body.request.payload, privatized().payload);
  assert.equal(one.body.request.headers["X-GitHub-Delivery"], item.guid);
  assert.equal(one.body.request.headers["X-Hub-Signature-256"], sign("org-secret", body));
  assert.equal(one.body.response.payload, '{"invalidated":[]}');
  assert.equal(one.body.response.headers["content-type"], "application/json");
  assert.deepEqual(sent.body, { hook_id: 42, ...one.body }, "the control route answers the same record");
});

test("lists are newest first and paginated with Link cursors (205 deliveries)", async () => {
  for (let i = 0; i < 205; i++) await emu.hooks.send(42, { event: "push", payload: { ref: `refs/heads/b${i}`, repository: { full_name: "octo-org/repo-0001" } } });
  const seen = [];
  const sizes = [];
  let next = `${emu.origin}${ORG_LIST}?per_page=100`;
  while (next) {
    const res = await fetch(next, { headers: { authorization: TOKEN } });
    assert.equal(res.status, 200);
    const page = await res.json();
    sizes.push(page.length);
    seen.push(...page);
    const link = res.headers.get("link");
    if (link == null) break;
    const m = /^<([^>]+)>; rel="next"$/.exec(link);
    assert.ok(m, link);
    assert.match(m[1], /[?&]per_page=100(&|$)/);
    assert.match(m[1], /[?&]cursor=[^&]+/);
    next = m[1];
  }
  assert.deepEqual(sizes, [100, 100, 5]);
  const ids = seen.map((d) => d.id);
  assert.equal(new Set(ids).size, 205, "every delivery once");
  assert.ok(ids.every((id, i) => i === 0 || id < ids[i - 1]), "newest first");
  assert.equal(seen[0].guid, emu.hooks.get(42).deliveries.at(-1).guid, "the last sent comes first");
  assert.equal(JSON.parse(emu.hooks.get(42).deliveries[0].body).ref, "refs/heads/b0");

  const dflt = await get(ORG_LIST);
  assert.equal(dflt.body.length, 30, "per_page defaults to 30");
  assert.match(dflt.headers.get("link"), /per_page=30/);
  assert.equal((await get(`${ORG_LIST}?per_page=1000`)).body.length, 100, "per_page is at most 100");
  const single = await get(`${ORG_LIST}?per_page=1`);
  assert.deepEqual(single.body.map((d) => d.id), [ids[0]]);
  assert.equal((await get(`${ORG_LIST}?cursor=nonsense`)).status, 400);
});

test("failed deliveries are recorded: an answer other than 2xx, no answer in time, no connection; none is retried", async () => {
  receiver.mode = 503;
  const a = await emu.hooks.send(42, privatized());
  receiver.mode = "hang";
  const b = await emu.hooks.send(42, privatized("repo-0010"));
  receiver.mode = 200;
  assert.equal((await control("/_emulator/hooks/42/fail-next", {})).status, 200);
  const c = await emu.hooks.send(42, privatized("repo-0017"));
  assert.equal(receiver.received.length, 2, "the failed-to-connect delivery never reached the receiver");
  const d = await emu.hooks.send(42, privatized("repo-0024"));
  assert.equal(receiver.received.length, 3, "fail-next fails one delivery only");
  // A hook whose URL nobody listens on.
  const closed = http.createServer();
  await new Promise((r) => closed.listen(0, "127.0.0.1", r));
  const deadUrl = `http://127.0.0.1:${closed.address().port}/`;
  await new Promise((r) => closed.close(r));
  const dead = emu.hooks.add({ target: "repository:octo-org/repo-0002", url: deadUrl, secret: "x" });
  const e = await emu.hooks.send(dead.id, { event: "ping", payload: { zen: "z" } });

  const list = (await get(ORG_LIST)).body;
  assert.deepEqual(list.map((x) => x.id), [d.id, c.id, b.id, a.id]);
  const [ld, lc, lb, la] = list;
  assert.deepEqual([la.status, la.status_code], ["Invalid HTTP Response: 503", 503]);
  assert.deepEqual([lb.status, lb.status_code], ["timed out", 0]);
  assert.ok(lb.duration >= TIMEOUT_MS / 1000 - 0.01 && lb.duration < 5, `timed out after ${lb.duration} s`);
  assert.deepEqual([lc.status, lc.status_code], ["failed to connect to host", 0]);
  assert.deepEqual([ld.status, ld.status_code], ["OK", 200]);
  assert.deepEqual([e.status, e.statusCode], ["failed to connect to host", 0]);
  const shown = (await get(`${ORG_LIST}/${lb.id}`)).body;
  assert.deepEqual(shown.response, { headers: null, payload: null }, "no answer");
  assert.equal(shown.request.payload.repository.full_name, "octo-org/repo-0010", "the request is kept");
  const five = (await get(`${ORG_LIST}/${la.id}`)).body;
  assert.equal(five.response.payload, '{"error":"unavailable"}');
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(emu.hooks.get(42).deliveries.length, 4, "GitHub never retries on its own");
  assert.equal(receiver.received.length, 3);
  // `unreachable` fails every delivery until cleared.
  await control("/_emulator/hooks/42/faults", { unreachable: true });
  assert.equal((await emu.hooks.send(42, privatized())).statusCode, 0);
  assert.equal((await emu.hooks.send(42, privatized())).statusCode, 0);
  assert.equal((await control("/_emulator/hooks/42/faults", undefined, "DELETE")).body.faults.unreachable, false);
  assert.equal((await emu.hooks.send(42, privatized())).statusCode, 200);
  assert.equal((await get(`${ORG_LIST}?status=failure`)).body.length, 5);
  assert.equal((await get(`${ORG_LIST}?status=success`)).body.length, 2);
});

test("POST …/attempts answers 202 {} and sends the stored request again: same guid and body, new id, signed with the current secret", async () => {
  receiver.mode = 503;
  const failed = await emu.hooks.send(42, privatized());
  receiver.mode = 200;
  // The hook's secret changes (rotated) before the redelivery.
  const updated = await control("/_emulator/hooks", { id: 42, target: "organization:octo-org", url: receiver.url, secret: "rotated" });
  assert.equal(updated.status, 200);
  assert.equal(updated.body.has_secret, true);
  const res = await api(`${ORG_LIST}/${failed.id}/attempts`, { method: "POST", headers: { authorization: TOKEN } });
  assert.equal(res.status, 202);
  assert.deepEqual(await res.json(), {});
  await emu.hooks.idle();
  assert.equal(receiver.received.length, 2);
  const [first, again] = receiver.received;
  assert.equal(again.body, first.body, "the stored body, byte for byte");
  assert.equal(again.headers["x-github-delivery"], failed.guid);
  assert.equal(again.headers["x-hub-signature-256"], sign("rotated", again.body));
  assert.equal(first.headers["x-hub-signature-256"], sign("org-secret", first.body));
  const [newest, old] = (await get(ORG_LIST)).body;
  assert.equal(old.id, failed.id);
  assert.ok(newest.id > failed.id);
  assert.equal(newest.guid, failed.guid);
  assert.equal(newest.redelivery, true);
  assert.deepEqual([newest.status, newest.status_code], ["OK", 200]);
  assert.equal(newest.action, "privatized");
  assert.equal(newest.repository_id, old.repository_id);
  assert.equal((await get(`${ORG_LIST}?redelivery=true`)).body.length, 1);
  // A redelivery of a redelivery still carries the event's guid; one that fails is recorded so.
  receiver.mode = 503;
  assert.equal((await api(`${ORG_LIST}/${newest.id}/attempts`, { method: "POST", headers: { authorization: TOKEN } })).status, 202);
  await emu.hooks.idle();
  const third = (await get(ORG_LIST)).body[0];
  assert.deepEqual([third.guid, third.redelivery, third.status_code], [failed.guid, true, 503]);
  assert.equal(emu.stats.redeliveryRequests, 2);
  // An unknown delivery, or one of another hook, is 404; so is GET on the attempts route.
  assert.equal((await api(`${ORG_LIST}/1/attempts`, { method: "POST", headers: { authorization: TOKEN } })).status, 404);
  const other = await emu.hooks.send(43, privatized("tool-0001", "Small-Org"));
  assert.equal((await api(`${ORG_LIST}/${other.id}/attempts`, { method: "POST", headers: { authorization: TOKEN } })).status, 404);
  assert.equal((await get(`${ORG_LIST}/${other.id}`)).status, 404);
  assert.equal((await get(`${ORG_LIST}/${failed.id}/attempts`)).status, 404);
  // The hook's secret back as it was, for the other tests.
  emu.hooks.add({ id: 42, target: "organization:octo-org", url: receiver.url, secret: "org-secret" });
});

test("organization and repository hooks take a token: 401 without, 403 for App credentials or a denied hook, 404 for an unknown hook", async () => {
  await emu.hooks.send(42, privatized());
  await emu.hooks.send(43, privatized("tool-0001", "Small-Org"));
  const noAuth = await get(ORG_LIST, null);
  assert.equal(noAuth.status, 401);
  assert.equal(noAuth.body.message, "Requires authentication");
  assert.equal((await get(ORG_LIST, "Basic abc")).status, 401);
  assert.equal((await get(ORG_LIST, "token ghs_neverissued000000000000000000000000")).status, 401);
  assert.equal((await get(ORG_LIST, "bearer ghp_any")).status, 200);
  assert.equal((await get(ORG_LIST, "token ghp_any")).status, 200);
  const asApp = await get(ORG_LIST, jwt());
  assert.equal(asApp.status, 403);
  assert.equal(asApp.body.message, "Resource not accessible by integration");
  // An installation token the emulator issued has no hook permission either.
  const tokenRes = await api("/app/installations/1000/access_tokens", { method: "POST", headers: { authorization: jwt() } });
  const { token } = await tokenRes.json();
  assert.equal((await get(ORG_LIST, `token ${token}`)).status, 403);

  assert.equal((await get("/orgs/octo-org/hooks/999/deliveries")).status, 404, "unknown hook");
  assert.equal((await get("/orgs/big-org/hooks/42/deliveries")).status, 404, "another organization's hook");
  assert.equal((await get("/orgs/OCTO-ORG/hooks/42/deliveries")).status, 200, "logins are case-insensitive");
  assert.equal((await get("/orgs/small-org/hooks/43/deliveries")).status, 404, "a repository hook is not an organization's");
  assert.equal((await get("/repos/small-org/tool-0001/hooks/43/deliveries")).body.length, 1);
  assert.equal((await get("/repos/small-org/tool-0002/hooks/43/deliveries")).status, 404);
  assert.equal((await get(`${ORG_LIST}/123`)).status, 404, "unknown delivery");

  // "Not permitted": the hook's calls answer 403 (or 404/401) until cleared.
  assert.equal((await control("/_emulator/hooks/42/faults", { deny: 403 })).status, 200);
  const denied = await get(ORG_LIST);
  assert.equal(denied.status, 403);
  assert.equal(denied.body.message, "Must be an organization owner.");
  assert.equal((await get("/repos/small-org/tool-0001/hooks/43/deliveries")).status, 200, "other hooks go on");
  await control("/_emulator/hooks/43/faults", { deny: 404 });
  assert.equal((await get("/repos/small-org/tool-0001/hooks/43/deliveries")).status, 404);
  emu.reset();
  assert.equal((await get(ORG_LIST)).status, 200, "reset() clears the hooks' faults");
  assert.equal((await control("/_emulator/hooks/42/faults", { deny: 500 })).status, 422);
  assert.equal((await control("/_emulator/hooks/42/faults", { nonsense: 1 })).status, 422);
});

test("the App's hook: its list takes an App JWT, its deliveries name the installation and the App as target", async () => {
  const sent = await control(`/_emulator/hooks/${appHook.id}/send`, privatized());
  assert.equal(sent.status, 200);
  const { headers } = receiver.received[0];
  assert.equal(headers["x-github-hook-id"], String(appHook.id));
  assert.equal(headers["x-github-hook-installation-target-type"], "integration");
  assert.equal(headers["x-github-hook-installation-target-id"], String(DEFAULT_APP_ID));
  assert.equal(headers["x-hub-signature-256"], sign("app-secret", receiver.received[0].body));
  const installation = emu.app.installations.get("octo-org");
  assert.equal(JSON.parse(receiver.received[0].body).installation.id, installation, "App payloads carry the installation");

  assert.equal((await get("/app/hook/deliveries", null)).status, 401);
  assert.equal((await get("/app/hook/deliveries", TOKEN)).status, 401, "a token is not an App JWT");
  const now = Math.floor(Date.now() / 1000);
  assert.equal((await get("/app/hook/deliveries", jwt({ iat: now - 700, exp: now - 60 }))).status, 401, "expired");
  const wrongKey = `Bearer ${signAppJwt({ privateKeyPem: generateAppKey().privateKeyPkcs1Pem })}`;
  assert.equal((await get("/app/hook/deliveries", wrongKey)).status, 401, "another key");
  const list = await get("/app/hook/deliveries", jwt());
  assert.equal(list.status, 200);
  assert.equal(list.body.length, 1);
  assert.equal(list.body[0].installation_id, installation);
  assert.equal(list.body[0].guid, sent.body.guid);
  assert.equal((await get(`/app/hook/deliveries/${list.body[0].id}`, jwt())).body.request.payload.installation.id, installation);
  assert.equal((await get(`/app/hook/deliveries/${list.body[0].id}`, TOKEN)).status, 401);
  assert.equal((await api(`/app/hook/deliveries/${list.body[0].id}/attempts`, { method: "POST", headers: { authorization: TOKEN } })).status, 401);
  assert.equal((await api(`/app/hook/deliveries/${list.body[0].id}/attempts`, { method: "POST", headers: { authorization: jwt() } })).status, 202);
  await emu.hooks.idle();
  assert.equal((await get("/app/hook/deliveries", jwt())).body[0].redelivery, true);
  assert.ok(emu.stats.appAuthFailures >= 6);
  // The App-wide fault answers the App's REST routes, this one included, before the JWT is read.
  emu.faults.appStatus = 503;
  assert.equal((await get("/app/hook/deliveries", jwt())).status, 503);
});

test("rate limits: a hook's calls answer 403 with x-ratelimit-remaining 0 and the reset, or retry-after; a spent budget too", async () => {
  await emu.hooks.send(42, privatized());
  const ok = await get(ORG_LIST, "token ghp_budget");
  assert.equal(ok.headers.get("x-ratelimit-limit"), "5000");
  assert.equal(ok.headers.get("x-ratelimit-remaining"), "4999");

  await control("/_emulator/hooks/42/faults", { rateLimitS: 60 });
  const limited = await get(ORG_LIST);
  assert.equal(limited.status, 403);
  assert.match(limited.body.message, /rate limit/);
  assert.equal(limited.headers.get("x-ratelimit-remaining"), "0");
  const reset = Number(limited.headers.get("x-ratelimit-reset"));
  assert.ok(reset >= Date.now() / 1000 + 55 && reset <= Date.now() / 1000 + 61, String(reset));
  const id = emu.hooks.get(42).deliveries[0].id;
  assert.equal((await api(`${ORG_LIST}/${id}/attempts`, { method: "POST", headers: { authorization: TOKEN } })).status, 403);
  assert.equal((await get("/repos/small-org/tool-0001/hooks/43/deliveries")).status, 200, "other hooks are not limited");

  await control("/_emulator/hooks/42/faults", { rateLimitS: null, retryAfterS: 30 });
  const secondary = await get(ORG_LIST);
  assert.equal(secondary.status, 403);
  assert.equal(secondary.headers.get("retry-after"), "30");
  assert.match(secondary.body.message, /secondary rate limit/);
  await control("/_emulator/hooks/42/faults", { retryAfterS: null });
  assert.equal((await get(ORG_LIST)).status, 200);

  // A credential's REST budget: a spent one is refused, whatever the hook; others go on.
  emu.hooks.restRates.get("ghp_budget").remaining = 0;
  const spent = await get("/repos/small-org/tool-0001/hooks/43/deliveries", "token ghp_budget");
  assert.equal(spent.status, 403);
  assert.equal(spent.headers.get("x-ratelimit-remaining"), "0");
  assert.equal((await get(ORG_LIST)).status, 200);
  assert.equal((await get("/app/hook/deliveries", jwt())).headers.get("x-ratelimit-resource"), "core");
});

test("injected 5xx: the next N list calls, or attempts calls (which then send nothing)", async () => {
  const d = await emu.hooks.send(42, privatized());
  await control("/_emulator/hooks/42/faults", { failLists: 2, failAttempts: 1, errorStatus: 503 });
  assert.equal((await get(ORG_LIST)).status, 503);
  assert.equal((await get(`${ORG_LIST}/${d.id}`)).status, 200, "a single delivery is not a list call");
  assert.equal((await get(ORG_LIST)).status, 503);
  assert.equal((await get(ORG_LIST)).status, 200);
  const attempt = () => api(`${ORG_LIST}/${d.id}/attempts`, { method: "POST", headers: { authorization: TOKEN } });
  assert.equal((await attempt()).status, 503);
  await emu.hooks.idle();
  assert.equal(receiver.received.length, 1, "a refused attempt sends nothing");
  assert.equal((await attempt()).status, 202);
  await emu.hooks.idle();
  assert.equal(receiver.received.length, 2);
  emu.reset();
  await control("/_emulator/hooks/42/faults", { failLists: 1 });
  assert.equal((await get(ORG_LIST)).status, 502, "502 unless errorStatus says otherwise");
});

test("calls are counted per endpoint and per hook (emu.stats, GET /_emulator/stats); reset() zeroes them, deliveries stay", async () => {
  const d = await emu.hooks.send(42, privatized());
  await get(ORG_LIST);
  await get(`${ORG_LIST}?per_page=5`);
  await get(ORG_LIST, null); // refused: counted, not for the hook
  await get(`${ORG_LIST}/${d.id}`);
  await api(`${ORG_LIST}/${d.id}/attempts`, { method: "POST", headers: { authorization: TOKEN } });
  await emu.hooks.idle();
  await get("/app/hook/deliveries", jwt());
  assert.equal(emu.stats.deliveryLists, 4);
  assert.equal(emu.stats.deliveryGets, 1);
  assert.equal(emu.stats.redeliveryRequests, 1);
  assert.equal(emu.stats.deliveriesSent, 2);
  assert.deepEqual(emu.hooks.get(42).calls, { list: 2, get: 1, attempts: 1 });
  assert.deepEqual(appHook.calls, { list: 1, get: 0, attempts: 0 });
  const lists = emu.stats.log.filter((e) => e.rest === "hook_deliveries");
  assert.deepEqual(lists.map((e) => [e.kind, e.status, e.auth]), [
    ["organization", 200, "token"], ["organization", 200, "token"], ["organization", 401, "none"], ["app", 200, "app-jwt"],
  ]);
  assert.equal(lists[1].per_page, 5);
  const stats = await control("/_emulator/stats", undefined, "GET");
  assert.equal(stats.body.deliveryLists, 4);
  assert.equal(stats.body.log, undefined);
  assert.deepEqual(stats.body.hooks.find((h) => h.id === 42), { id: 42, target: "organization:octo-org", deliveries: 2, calls: { list: 2, get: 1, attempts: 1 } });
  emu.reset();
  assert.equal(emu.stats.deliveryLists, 0);
  assert.deepEqual(emu.hooks.get(42).calls, { list: 0, get: 0, attempts: 0 });
  assert.equal((await get(ORG_LIST)).body.length, 2, "deliveries are kept");
});

test("POST /_emulator/events sends one event to every hook it concerns, under one guid", async () => {
  const res = await control("/_emulator/events", privatized());
  assert.equal(res.status, 200);
  const { guid, deliveries } = res.body;
  assert.deepEqual(deliveries.map((d) => d.hook_id).sort(), [42, appHook.id].sort(), "the App's and octo-org's, not Small-Org's repository hook");
  assert.ok(deliveries.every((d) => d.guid === guid && d.status_code === 200));
  assert.notEqual(deliveries[0].id, deliveries[1].id);
  const app = deliveries.find((d) => d.hook_id === appHook.id);
  const org = deliveries.find((d) => d.hook_id === 42);
  assert.equal(app.installation_id, emu.app.installations.get("octo-org"));
  assert.equal(org.installation_id, null);
  assert.equal(receiver.received.length, 2);
  const toRepo = await control("/_emulator/events", privatized("tool-0001", "Small-Org"));
  assert.deepEqual(toRepo.body.deliveries.map((d) => d.hook_id).sort(), [43, appHook.id].sort());
  const octocat = await control("/_emulator/events", privatized("project-0001", "octocat"));
  assert.deepEqual(octocat.body.deliveries, [], "octocat has no App installation and no hook");
  assert.equal((await control("/_emulator/events", { event: "push" })).status, 422, "a payload is needed");
  assert.equal((await control("/_emulator/hooks/42/send", { payload: {} })).status, 422, "an event is needed");
  assert.equal((await control("/_emulator/hooks/999/send", privatized())).status, 404);
  assert.equal((await control("/_emulator/hooks", { target: "organization:nobody", url: receiver.url })).status, 422);
  assert.equal((await control("/_emulator/hooks", { target: "app", url: receiver.url })).status, 422, "the App has one hook");
  const added = await control("/_emulator/hooks", { target: "repository:octo-org/repo-0003", url: receiver.url, secret: "s" });
  assert.equal(added.status, 201);
  assert.equal(added.body.target_type, "repository");
  const three = await control("/_emulator/events", privatized());
  assert.equal(three.body.deliveries.length, 3);
  assert.equal((await control(`/_emulator/hooks/${added.body.id}`, undefined, "DELETE")).status, 200);
  assert.equal(emu.hooks.get(added.body.id), null);
});

test("deliveries older than GitHub's 3 days are gone: not listed, not shown, not redeliverable", async () => {
  const old = await emu.hooks.send(42, privatized());
  emu.hooks.backdate(42, 3 * 24 * 3600 + 10);
  const fresh = await emu.hooks.send(42, privatized());
  assert.deepEqual((await get(ORG_LIST)).body.map((d) => d.id), [fresh.id]);
  assert.equal((await get(`${ORG_LIST}/${old.id}`)).status, 404);
  assert.equal((await api(`${ORG_LIST}/${old.id}/attempts`, { method: "POST", headers: { authorization: TOKEN } })).status, 404);
  emu.hooks.backdate(42, 3600);
  assert.match((await get(ORG_LIST)).body[0].delivered_at, /Z$/);
  assert.ok(Date.parse((await get(ORG_LIST)).body[0].delivered_at) < Date.now() - 3500_000, "backdated by an hour");
});

test("standalone (npm run dev): --deliver-to with --deliver-hook and the live demo; fail-next over HTTP", async () => {
  const server = fileURLToPath(new URL("../emulator/server.mjs", import.meta.url));
  const help = await run(["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.out, /\/_emulator\/hooks\/\{id\}\/fail-next/);
  assert.match(help.out, /--deliver-hook/);
  const bad = await run(["--port", "0", "--deliver-to", receiver.url, "--deliver-secret", "s", "--deliver-hook", "org:octo-org"]);
  assert.equal(bad.code, 2);
  const noUrl = await run(["--port", "0", "--deliver-hook", "organization:octo-org"]);
  assert.equal(noUrl.code, 2);

  const child = spawn(process.execPath, [server, "--port", "0", "--page-ms", "0", "--deliver-to", receiver.url, "--deliver-secret", "dev-secret",
    "--deliver-every", "150", "--deliver-hook", "organization:octo-org@77", "--hook-timeout-ms", "500"], { stdio: ["ignore", "pipe", "pipe"] });
  try {
    let out = "";
    child.stdout.on("data", (c) => { out += c; });
    child.stderr.on("data", (c) => { out += c; });
    const origin = await until(() => /listening on (http:\/\/127\.0\.0\.1:\d+)\/graphql/.exec(out)?.[1], () => out);
    await until(() => out.includes("fail-next"), () => out);
    assert.match(out, /webhook 77 \(organization:octo-org\) delivers to/);
    await until(() => receiver.received.some((r) => r.headers["x-github-hook-id"] === "77"), () => out);
    const live = receiver.received.find((r) => r.headers["x-github-hook-id"] === "77");
    assert.equal(live.headers["x-github-event"], "check_suite");
    assert.equal(live.headers["x-hub-signature-256"], sign("dev-secret", live.body));
    assert.equal(JSON.parse(live.body).repository.owner.login, "octo-org");

    const failNext = await fetch(`${origin}/_emulator/hooks/77/fail-next`, { method: "POST" });
    assert.equal(failNext.status, 200);
    const list = async () => (await fetch(`${origin}/orgs/octo-org/hooks/77/deliveries?per_page=100`, { headers: { authorization: TOKEN } })).json();
    await until(async () => (await list()).some((d) => d.status_code === 0), () => out);
    const deliveries = await list();
    const failed = deliveries.find((d) => d.status_code === 0);
    assert.equal(failed.status, "failed to connect to host");
    assert.equal(failed.event, "check_suite");
    assert.equal(typeof failed.repository_id, "number");
    const attempt = await fetch(`${origin}/orgs/octo-org/hooks/77/deliveries/${failed.id}/attempts`, { method: "POST", headers: { authorization: TOKEN } });
    assert.equal(attempt.status, 202);
    await until(() => receiver.received.some((r) => r.headers["x-github-delivery"] === failed.guid), () => out);
  } finally {
    child.kill();
    await new Promise((r) => (child.exitCode != null ? r() : child.once("exit", r)));
  }

  function run(args) {
    return new Promise((resolve) => {
      const p = spawn(process.execPath, [server, ...args], { stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      p.stdout.on("data", (c) => { out += c; });
      p.stderr.on("data", (c) => { out += c; });
      p.on("exit", (code) => resolve({ code, out }));
    });
  }
});

/** Polls `fn` until it returns something truthy (10 s at most). */
async function until(fn, describe, limitMs = 10_000) {
  const end = Date.now() + limitMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`gave up waiting; output:\n${describe()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
