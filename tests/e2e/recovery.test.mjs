// Delivery recovery in the built worker against the emulator's deliveries API: a hook is learned
// from a signed delivery, a privatize GitHub failed to deliver is found by the cron and sent again,
// the listing drops the repository, and `/v1/status` says so without a secret. A hook the token may
// not read is left alone beside one it may; with DELIVERY_RECOVERY=off nothing is read. In App mode the
// App's own hook is read with the App JWT.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startWorker, fixtureRepos, TOKEN } from "./harness.mjs";
import { generateAppKey } from "../emulator/app.mjs";

const SECRET = "org-hook-secret";
let w;

before(async () => {
  w = await startWorker({ GITHUB_WEBHOOK_SECRET: SECRET, ADMIN_TOKEN: "admin" }, { hookTimeoutMs: 3_000 });
  const url = new URL("/v1/webhooks/github", w.url).href;
  w.emu.hooks.add({ id: 42, target: "organization:octo-org", url, secret: SECRET });
  w.emu.hooks.add({ id: 77, target: "organization:small-org", url, secret: SECRET });
});

after(async () => {
  await w.emu.hooks.idle();
  await w.close();
});

const record = (owner, name) => w.emu.forge.owners.get(owner).repos.find((r) => r.name === name);
const listedNames = async (owner) =>
  (await w.get(`/v1/orgs/${owner}/repos?fields=name`)).body.repos.map((r) => r.name);
const cron = async () => {
  const worker = await w.mf.getWorker();
  await worker.scheduled({ cron: "*/5 * * * *", scheduledTime: new Date() });
};
const admin = { headers: { Authorization: "Bearer admin" } };

test("a privatize GitHub failed to deliver is redelivered by the cron and leaves the listing", async () => {
  const name = fixtureRepos(w.emu, "octo-org").find((r) => r.visibility === "PUBLIC").name;
  assert.ok((await listedNames("octo-org")).includes(name));
  // A delivery that arrives teaches the worker hook 42 (a push to another branch changes nothing).
  const ok = await w.emu.hooks.send(42, {
    event: "push",
    payload: { ref: "refs/heads/topic", repository: { full_name: `octo-org/${name}`, default_branch: "main" }, organization: { login: "octo-org" } },
  });
  assert.equal(ok.statusCode, 200);
  assert.equal(await w.kv.get("v1:hook:42"), "organization:octo-org");
  // GitHub makes it private; its delivery fails (the worker was unreachable).
  const rec = record("octo-org", name);
  rec.visibility = "PRIVATE";
  rec.isPrivate = true;
  w.emu.hooks.setFaults(w.emu.hooks.get(42), { failNext: 1 });
  const lost = await w.emu.hooks.send(42, {
    event: "repository",
    action: "privatized",
    payload: { action: "privatized", repository: { full_name: `octo-org/${name}`, default_branch: "main" }, organization: { login: "octo-org" } },
  });
  assert.equal(lost.statusCode, 0, "not delivered");
  assert.ok((await listedNames("octo-org")).includes(name), "the cache never heard");
  // The cron finds it and has it sent again; the redelivery arrives through the normal route.
  await cron();
  await w.emu.hooks.idle();
  const attempts = w.emu.hooks.get(42).deliveries.filter((d) => d.guid === lost.guid);
  assert.equal(attempts.length, 2, "redelivered once");
  assert.ok(attempts.at(-1).redelivery && attempts.at(-1).statusCode === 200);
  assert.ok(!(await listedNames("octo-org")).includes(name), "gone from the anonymous listing");
  // A second run finds nothing new and asks nothing again.
  await cron();
  await w.emu.hooks.idle();
  assert.equal(w.emu.hooks.get(42).deliveries.filter((d) => d.guid === lost.guid).length, 2);
  // The status route reports it, and never the token or a secret.
  const status = await w.get("/v1/status", admin);
  assert.equal(status.status, 200);
  assert.equal(status.headers.get("cache-control"), "no-store");
  for (const secret of [TOKEN, SECRET, "admin"]) assert.ok(!status.text.includes(secret), "no secret in the status");
  const hook = status.body.recovery.hooks.find((h) => h.hook_id === 42);
  assert.equal(status.body.recovery.enabled, true);
  assert.equal(hook.target, "organization:octo-org");
  assert.equal(hook.permitted, true);
  assert.equal(hook.failed_found, 0, "the last run's counts");
  assert.match(hook.checked_until, /^\d{4}-\d\d-\d\dT/);
  assert.equal((await w.get("/v1/status")).status, 401);
  assert.equal((await w.get("/v1/status", { headers: { Authorization: "Bearer wrong" } })).status, 401);
});

test("a hook the token may not read is left alone beside one it may", async () => {
  const ping = { event: "push", payload: { ref: "refs/heads/x", repository: { full_name: "small-org/tool-0001", default_branch: "main" }, organization: { login: "small-org" } } };
  assert.equal((await w.emu.hooks.send(77, ping)).statusCode, 200);
  w.emu.hooks.setFaults(w.emu.hooks.get(77), { deny: 403 });
  await cron();
  const status = await w.get("/v1/status", admin);
  const denied = status.body.recovery.hooks.find((h) => h.hook_id === 77);
  const fine = status.body.recovery.hooks.find((h) => h.hook_id === 42);
  assert.equal(denied.permitted, false);
  assert.equal(fine.permitted, true);
  // Within the hour it is not asked again: its last run stays the one that was refused.
  await cron();
  const again = (await w.get("/v1/status", admin)).body.recovery.hooks.find((h) => h.hook_id === 77);
  assert.equal(again.last_run_at, denied.last_run_at);
});

test("with DELIVERY_RECOVERY=off the cron reads no deliveries", async () => {
  const off = await startWorker({ GITHUB_WEBHOOK_SECRET: SECRET, ADMIN_TOKEN: "admin", DELIVERY_RECOVERY: "off" }, { hookTimeoutMs: 3_000 });
  try {
    const url = new URL("/v1/webhooks/github", off.url).href;
    off.emu.hooks.add({ id: 42, target: "organization:octo-org", url, secret: SECRET });
    const lost = await (async () => {
      off.emu.hooks.setFaults(off.emu.hooks.get(42), { failNext: 1 });
      return off.emu.hooks.send(42, { event: "public", payload: { repository: { full_name: "octo-org/repo-0001" }, organization: { login: "octo-org" } } });
    })();
    assert.equal((await off.emu.hooks.send(42, { event: "push", payload: { ref: "refs/heads/y", repository: { full_name: "octo-org/repo-0001", default_branch: "main" }, organization: { login: "octo-org" } } })).statusCode, 200);
    const worker = await off.mf.getWorker();
    await worker.scheduled({ cron: "*/5 * * * *", scheduledTime: new Date() });
    await off.emu.hooks.idle();
    assert.equal(off.emu.hooks.get(42).deliveries.filter((d) => d.guid === lost.guid).length, 1, "not redelivered");
    const status = await off.get("/v1/status", admin);
    assert.equal(status.body.recovery.enabled, false);
  } finally {
    await off.close();
  }
});

test("in App mode the App's hook is read with the App JWT and its failed delivery sent again", async () => {
  const key = generateAppKey();
  const app = await startWorker(
    { GITHUB_APP_ID: "12345", GITHUB_APP_PRIVATE_KEY: key.privateKeyPkcs1Pem, GITHUB_WEBHOOK_SECRET: SECRET, ADMIN_TOKEN: "admin" },
    { app: { id: 12345, publicKeyPem: key.publicKeyPem, installations: { "octo-org": 1001 } }, hookTimeoutMs: 3_000 },
  );
  try {
    const url = new URL("/v1/webhooks/github", app.url).href;
    const hook = app.emu.hooks.add({ target: "app", url, secret: SECRET });
    const name = fixtureRepos(app.emu, "octo-org").find((r) => r.visibility === "PUBLIC").name;
    const names = async () => (await app.get("/v1/orgs/octo-org/repos?fields=name")).body.repos.map((r) => r.name);
    assert.ok((await names()).includes(name));
    const rec = app.emu.forge.owners.get("octo-org").repos.find((r) => r.name === name);
    rec.visibility = "PRIVATE";
    rec.isPrivate = true;
    app.emu.hooks.setFaults(hook, { failNext: 1 });
    const lost = await app.emu.hooks.send(hook.id, {
      event: "repository",
      action: "privatized",
      payload: { action: "privatized", repository: { full_name: `octo-org/${name}`, default_branch: "main" } },
    });
    assert.equal(lost.statusCode, 0);
    const worker = await app.mf.getWorker();
    await worker.scheduled({ cron: "*/5 * * * *", scheduledTime: new Date() });
    await app.emu.hooks.idle();
    const attempts = hook.deliveries.filter((d) => d.guid === lost.guid);
    assert.equal(attempts.length, 2, "redelivered once");
    assert.equal(attempts.at(-1).statusCode, 200);
    assert.ok(!(await names()).includes(name));
    const status = (await app.get("/v1/status", { headers: { Authorization: "Bearer admin" } })).body;
    const appHook = status.recovery.hooks.find((h) => h.target === "app");
    assert.equal(appHook.permitted, true);
    assert.equal(appHook.redelivered, 1);
    assert.equal(appHook.failed_found, 1);
    assert.ok(!JSON.stringify(status).includes("PRIVATE KEY"));
  } finally {
    await app.close();
  }
});

test("bounds over several runs: 10 list pages and 20 redeliveries a run, and the next run goes on where the last stopped", async () => {
  const url = new URL("/v1/webhooks/github", w.url).href;
  const hook = w.emu.hooks.add({ id: 91, target: "organization:octo-org", url, secret: SECRET });
  const push = (ref) => ({
    event: "push",
    payload: { ref, repository: { full_name: "octo-org/repo-0001", default_branch: "main" }, organization: { login: "octo-org" } },
  });
  assert.equal((await w.emu.hooks.send(91, push("refs/heads/learn"))).statusCode, 200, "the hook is learned");
  // The worker is unreachable for a while: 25 pushes it acts on fail, then 1,000 stars it does not.
  w.emu.hooks.setFaults(hook, { unreachable: true });
  const lost = [];
  for (let i = 0; i < 25; i++) lost.push((await w.emu.hooks.send(91, push(`refs/heads/topic-${i}`))).guid);
  for (let i = 0; i < 1000; i++) {
    await w.emu.hooks.send(91, { event: "star", payload: { action: "created", repository: { full_name: "octo-org/repo-0001" }, organization: { login: "octo-org" } } });
  }
  w.emu.hooks.setFaults(hook, { unreachable: false });
  const sentAgain = () => new Set(hook.deliveries.filter((d) => d.redelivery).map((d) => d.guid));
  const run = async () => {
    const before = { ...hook.calls };
    await cron();
    await w.emu.hooks.idle();
    return { lists: hook.calls.list - before.list, attempts: hook.calls.attempts - before.attempts };
  };
  // Run 1 reads its 10 pages of stars, stops at the cap, and redelivers nothing.
  assert.deepEqual(await run(), { lists: 10, attempts: 0 });
  // Run 2 goes on below where run 1 stopped, finds the 25 pushes, and redelivers 20 of them.
  const second = await run();
  assert.equal(second.attempts, 20);
  assert.ok(second.lists <= 10);
  assert.equal(sentAgain().size, 20);
  // Run 3 redelivers the other 5; each lost push has then been sent again exactly once.
  assert.equal((await run()).attempts, 5);
  assert.deepEqual([...sentAgain()].sort(), [...lost].sort());
  for (const guid of lost) assert.equal(hook.deliveries.filter((d) => d.guid === guid).length, 2);
  // Run 4 has nothing to do: only what arrived since (the redeliveries, all answered 200) is read.
  const fourth = await run();
  assert.equal(fourth.attempts, 0);
  assert.ok(fourth.lists <= 1, `read ${fourth.lists} pages`);
  const status = (await w.get("/v1/status", admin)).body.recovery.hooks.find((h) => h.hook_id === 91);
  assert.equal(status.permitted, true);
  assert.equal(status.redelivered, 0, "the last run's counts");
});
