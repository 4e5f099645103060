// Live events in the built worker (DESIGN.md, "Live events"), with a real WebSocket client (`ws`):
// every refusal before the upgrade, the messages of each scope (a private repository's activity
// reaches token subscribers and nothing, not even a gap in `seq`, reaches anonymous ones), a
// `remove` that arrives before its delivery's answer, resuming with `since`, `reset` on an owner
// purge, `progress` and `ready` for a cold owner, ping/pong and the 4001 close of an expired token.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import WebSocket from "ws";
import { startWorker, fixtureRepos, mintReadToken } from "./harness.mjs";

const SECRET = "e2e-events-secret";
const READ_SECRET = "e2e-events-read-secret-0123456789";
const ADMIN = "e2e-events-admin";
let w;
before(async () => {
  // Pages cost 200 ms per 100 repositories: a cold build of big-org (1,000) takes about 2 s.
  w = await startWorker(
    { GITHUB_WEBHOOK_SECRET: SECRET, READ_TOKEN_SECRET: READ_SECRET, ADMIN_TOKEN: ADMIN, ALLOWED_OWNERS: "octo-org,big-org,small-org,octocat" },
    { pageMs: 200 },
    { port: 0, host: "127.0.0.1" },
  );
});
after(async () => {
  await w.close();
});

const token = (orgs, expiresInS) => mintReadToken(READ_SECRET, orgs, expiresInS);

function deliver(event, payload, id = crypto.randomUUID()) {
  const body = JSON.stringify(payload);
  const signature = "sha256=" + createHmac("sha256", SECRET).update(body).digest("hex");
  const headers = { "X-GitHub-Event": event, "Content-Type": "application/json", "X-GitHub-Delivery": id, "X-Hub-Signature-256": signature };
  return w.get("/v1/webhooks/github", { method: "POST", headers, body });
}
const repoEvent = (action, full) => ({ action, repository: { full_name: full, default_branch: "main" } });
const push = (full, after) => ({ ref: "refs/heads/main", after, repository: { full_name: full, default_branch: "main" } });
const record = (owner, name) => w.emu.forge.owners.get(owner.toLowerCase()).repos.find((r) => r.name === name);

/** A subscriber: every frame it got, in order, and a wait for the next one matching `pred`. */
function subscribe(path, { protocols, headers } = {}) {
  const url = `${w.url.toString().replace(/^http/, "ws").replace(/\/$/, "")}${path}`;
  const ws = new WebSocket(url, protocols, { headers });
  const frames = [];
  const waiting = [];
  ws.on("message", (data) => {
    const frame = JSON.parse(data.toString());
    frame.at = Date.now();
    frames.push(frame);
    for (const wtr of [...waiting]) {
      if (wtr.pred(frame)) {
        waiting.splice(waiting.indexOf(wtr), 1);
        wtr.resolve(frame);
      }
    }
  });
  const opened = new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
    ws.once("unexpected-response", (_req, res) => reject(new Error(`refused: ${res.statusCode}`)));
  });
  return {
    ws,
    frames,
    opened,
    /** The first frame (already received or still to come) after `from` matching `pred`. */
    next(pred, { from = 0, ms = 5_000 } = {}) {
      const seen = frames.slice(from).find(pred);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const wtr = { pred, resolve };
        waiting.push(wtr);
        setTimeout(() => reject(new Error(`no frame in ${ms} ms; got ${JSON.stringify(frames.map((f) => f.type))}`)), ms).unref();
      });
    },
    close() {
      ws.terminate();
    },
  };
}
const type = (t) => (f) => f.type === t;

test("refusals come before any upgrade, as JSON errors", async () => {
  const up = { Upgrade: "websocket", Connection: "Upgrade" };
  const plain = await w.get("/v1/orgs/octo-org/events");
  assert.equal(plain.status, 426);
  assert.equal(plain.body.error.code, "upgrade_required");
  const cases = [
    ["/v1/orgs/octo-org/events?fields=name,secret", {}, 400, "invalid_fields"],
    ["/v1/orgs/octo-org/events?since=abc", {}, 400, "invalid_parameter"],
    ["/v1/orgs/octo-org/events?since=-1", {}, 400, "invalid_parameter"],
    ["/v1/orgs/-bad-/events", {}, 400, "invalid_name"],
    ["/v1/orgs/not-served/events", {}, 404, "not_found"],
    ["/v1/orgs/octo-org/events", { Authorization: "Bearer nope" }, 401, "unauthorized"],
    ["/v1/orgs/octo-org/events", { "Sec-WebSocket-Protocol": "forgelens.v1, forgelens.token.nope" }, 401, "unauthorized"],
    ["/v1/orgs/octo-org/events", { Authorization: `Bearer ${token(["octo-org"], -60)}` }, 401, "unauthorized"],
  ];
  for (const [path, headers, status, code] of cases) {
    const res = await w.get(path, { headers: { ...up, ...headers } });
    assert.equal(res.status, status, `${path} ${JSON.stringify(headers)}`);
    assert.equal(res.body.error.code, code, path);
  }
  // A refused socket never reached the object: nobody subscribes.
  const status = await w.get("/v1/orgs/octo-org/status", { headers: { Authorization: `Bearer ${ADMIN}` } });
  assert.deepEqual(status.body.subscribers, { all: 0, public: 0, redacted: 0 });
  // A real client sees the refusal as the HTTP status.
  await assert.rejects(subscribe("/v1/orgs/octo-org/events?since=x").opened, /refused: 400/);
});

test("hello, then a record's change projected for each scope; private activity leaves no gap for anonymous subscribers", async () => {
  assert.equal((await w.get("/v1/orgs/octo-org/repos")).status, 200);
  const anon = subscribe("/v1/orgs/octo-org/events?fields=name,visibility,pushed_at", { protocols: ["forgelens.v1"] });
  const owner = subscribe("/v1/orgs/octo-org/events?fields=name,visibility", { protocols: ["forgelens.v1", `forgelens.token.${token(["octo-org"])}`] });
  await Promise.all([anon.opened, owner.opened]);
  assert.equal(anon.ws.protocol, "forgelens.v1", "the 101 selects forgelens.v1");
  const [h1, h2] = await Promise.all([anon.next(type("hello")), owner.next(type("hello"))]);
  assert.equal(h1.listing, "ready");
  assert.match(h1.fetched_at, /^\d{4}-\d\d-\d\dT/);
  const status = await w.get("/v1/orgs/octo-org/status", { headers: { Authorization: `Bearer ${ADMIN}` } });
  assert.deepEqual(status.body.subscribers, { all: 1, public: 1, redacted: 0 });

  const repos = fixtureRepos(w.emu, "octo-org");
  const priv = repos.find((r) => r.visibility === "PRIVATE");
  const pub = repos.find((r) => r.visibility === "PUBLIC");
  // Activity on a private repository: the token subscriber hears it, the anonymous one nothing.
  record("octo-org", priv.name).pushedAt = "2026-12-01T10:00:00Z";
  assert.equal((await deliver("push", push(`octo-org/${priv.name}`, "a1"))).status, 200);
  const p = await owner.next((f) => f.type === "upsert" && f.repo.name === priv.name);
  assert.equal(p.seq, h2.seq + 1);
  assert.deepEqual(p.repo, { name: priv.name, visibility: "private" }, "projected with the URL's fields");
  // Then a public one: the anonymous subscriber's next number follows its hello's, no gap.
  record("octo-org", pub.name).pushedAt = "2026-12-01T11:00:00Z";
  assert.equal((await deliver("push", push(`octo-org/${pub.name}`, "a2"))).status, 200);
  const a = await anon.next((f) => f.type === "upsert");
  assert.equal(a.seq, h1.seq + 1, "no gap for the private activity");
  assert.deepEqual(a.repo, { name: pub.name, visibility: "public", pushed_at: "2026-12-01T11:00:00Z" });
  assert.ok(anon.frames.every((f) => f.repo?.name !== priv.name && f.name !== priv.name), "nothing of the private repository");
  const o = await owner.next((f) => f.type === "upsert" && f.repo.name === pub.name);
  assert.equal(o.seq, p.seq + 1);
  anon.close();
  owner.close();
});

test("a privatize reaches anonymous subscribers as a remove before its delivery is answered", async () => {
  const pub = fixtureRepos(w.emu, "octo-org").find((r) => r.visibility === "PUBLIC" && r.name !== "repo-000");
  const anon = subscribe("/v1/orgs/octo-org/events");
  const owner = subscribe("/v1/orgs/octo-org/events", { headers: { Authorization: `Bearer ${token(["*"])}` } });
  await Promise.all([anon.next(type("hello")), owner.next(type("hello"))]);
  // GitHub is down: only the delivery's narrowing fact can be applied.
  w.emu.faults.status = 502;
  const rec = record("octo-org", pub.name);
  rec.visibility = "PRIVATE";
  rec.isPrivate = true;
  try {
    const res = await deliver("repository", repoEvent("privatized", `octo-org/${pub.name}`));
    const answered = Date.now();
    assert.ok(res.status < 300, `delivery answered ${res.status}`);
    const removed = await anon.next(type("remove"));
    assert.equal(removed.name, pub.name);
    assert.ok(removed.at <= answered, `remove at ${removed.at}, answer at ${answered}`);
    const seen = await owner.next((f) => f.type === "upsert" && f.repo.name === pub.name);
    assert.equal(seen.repo.visibility, "private");
  } finally {
    w.emu.faults.status = 0;
    anon.close();
    owner.close();
  }
});

test("since= replays what a subscriber missed, or resets when it cannot", async () => {
  const first = subscribe("/v1/orgs/octo-org/events");
  const hello = await first.next(type("hello"));
  first.close();
  const pub = fixtureRepos(w.emu, "octo-org").filter((r) => r.visibility === "PUBLIC").slice(3, 5);
  for (const [i, r] of pub.entries()) {
    record("octo-org", r.name).pushedAt = `2026-12-02T0${i}:00:00Z`;
    assert.equal((await deliver("push", push(`octo-org/${r.name}`, `b${i}`))).status, 200);
  }
  const back = subscribe(`/v1/orgs/octo-org/events?since=${hello.seq}`);
  const again = await back.next(type("hello"));
  assert.equal(again.seq, hello.seq + 2);
  const replayed = await back.next((f) => f.type === "upsert" && f.seq === hello.seq + 2);
  assert.deepEqual(back.frames.slice(1, 3).map((f) => [f.type, f.seq, f.repo.name]), [
    ["upsert", hello.seq + 1, pub[0].name],
    ["upsert", hello.seq + 2, pub[1].name],
  ]);
  assert.ok(replayed);
  back.close();
  // A number the scope never reached: a reset carrying the current one, after hello.
  const ahead = subscribe(`/v1/orgs/octo-org/events?since=${hello.seq + 1000}`);
  const reset = await ahead.next(type("reset"));
  assert.equal(reset.seq, hello.seq + 2);
  assert.deepEqual(ahead.frames.map((f) => f.type), ["hello", "reset"]);
  ahead.close();
});

test("ping is answered pong; other frames are ignored", async () => {
  const s = subscribe("/v1/orgs/octo-org/events");
  await s.next(type("hello"));
  s.ws.send("hello?");
  s.ws.send("ping");
  await s.next(type("pong"));
  assert.deepEqual(s.frames.map((f) => f.type), ["hello", "pong"]);
  s.close();
});

test("a cold owner: hello says building, progress follows the pages, then ready", async () => {
  const s = subscribe("/v1/orgs/big-org/events");
  const hello = await s.next(type("hello"));
  assert.equal(hello.listing, "building");
  assert.equal(hello.fetched_at, null);
  const progress = await s.next(type("progress"));
  assert.equal(progress.repos_total, 1000);
  assert.ok(progress.repos_fetched > 0 && progress.repos_fetched < 1000);
  const ready = await s.next(type("ready"), { ms: 15_000 });
  assert.equal(ready.seq, hello.seq + 1);
  assert.ok(w.emu.stats.ownerPages >= 10);
  const listing = await w.get("/v1/orgs/big-org/repos?fields=name");
  assert.equal(listing.status, 200, "ready means the listing can be read");
  s.close();
});

test("an owner purge sends reset at once, then ready once the rebuild completes", async () => {
  assert.equal((await w.get("/v1/orgs/small-org/repos")).status, 200);
  const s = subscribe("/v1/orgs/small-org/events");
  const hello = await s.next(type("hello"));
  assert.equal(hello.listing, "ready");
  const asked = Date.now();
  const purge = await w.get("/v1/cache/orgs/small-org", { method: "DELETE", headers: { Authorization: `Bearer ${ADMIN}` } });
  assert.equal(purge.status, 200);
  const reset = await s.next(type("reset"));
  assert.equal(reset.seq, hello.seq + 1);
  assert.ok(reset.at - asked < 1_000, `reset ${reset.at - asked} ms after the purge`);
  const ready = await s.next(type("ready"), { ms: 10_000 });
  assert.equal(ready.seq, hello.seq + 2);
  s.close();
});

test("a token subscriber is closed with 4001 when its token expires", async () => {
  const s = subscribe("/v1/orgs/octo-org/events", { protocols: ["forgelens.v1", `forgelens.token.${token(["octo-org"], 2)}`] });
  await s.next(type("hello"));
  // workerd keeps the TCP connection open after its close frame: the frame itself is timed.
  const started = Date.now();
  const code = await new Promise((resolve, reject) => {
    const timer = setInterval(() => {
      if (s.ws._closeFrameReceived) {
        clearInterval(timer);
        resolve(s.ws._closeCode);
      } else if (Date.now() - started > 10_000) {
        clearInterval(timer);
        reject(new Error("no close frame in 10 s"));
      }
    }, 50);
  });
  assert.equal(code, 4001);
  s.close();
});

test("redact mode: an anonymous subscriber sees a privatized record as name, full name and visibility, and nothing of its activity", async () => {
  const r = await startWorker(
    { GITHUB_WEBHOOK_SECRET: SECRET, PRIVATE_REPOS_ANONYMOUS: "redact" },
    { pageMs: 0 },
    { port: 0, host: "127.0.0.1" },
  );
  const sign = (event, payload) => {
    const body = JSON.stringify(payload);
    const signature = "sha256=" + createHmac("sha256", SECRET).update(body).digest("hex");
    return r.get("/v1/webhooks/github", { method: "POST", body, headers: { "X-GitHub-Event": event, "Content-Type": "application/json", "X-GitHub-Delivery": crypto.randomUUID(), "X-Hub-Signature-256": signature } });
  };
  const wsUrl = `${r.url.toString().replace(/^http/, "ws").replace(/\/$/, "")}/v1/orgs/octo-org/events?fields=name,full_name,visibility,pushed_at`;
  const ws = new WebSocket(wsUrl);
  const opened = new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  const frames = [];
  ws.on("message", (d) => frames.push(JSON.parse(d.toString())));
  try {
    await opened;
    assert.equal((await r.get("/v1/orgs/octo-org/repos")).status, 200);
    const until = async (pred) => {
      for (let i = 0; i < 100 && !frames.some(pred); i++) await new Promise((s) => setTimeout(s, 50));
      return frames.find(pred);
    };
    // Subscribed before the first read: the build it started ends with `ready`.
    const hello = await until((f) => f.type === "hello");
    assert.notEqual(hello.listing, "ready");
    const ready = await until((f) => f.type === "ready");
    assert.equal(ready.seq, hello.seq + 1);
    const repos = fixtureRepos(r.emu, "octo-org");
    const priv = repos.find((x) => x.visibility === "PRIVATE");
    const pub = repos.find((x) => x.visibility === "PUBLIC");
    // A push to a private repository changes nothing its redacted view shows.
    r.emu.forge.owners.get("octo-org").repos.find((x) => x.name === priv.name).pushedAt = "2026-12-03T10:00:00Z";
    assert.equal((await sign("push", push(`octo-org/${priv.name}`, "c1"))).status, 200);
    const rec = r.emu.forge.owners.get("octo-org").repos.find((x) => x.name === pub.name);
    rec.visibility = "PRIVATE";
    rec.isPrivate = true;
    assert.equal((await sign("repository", repoEvent("privatized", `octo-org/${pub.name}`))).status, 200);
    const up = await until((f) => f.type === "upsert");
    assert.equal(up.seq, ready.seq + 1, "the private push used no number");
    assert.deepEqual(up.repo, { name: pub.name, full_name: `octo-org/${pub.name}`, visibility: "private" });
    assert.ok(frames.every((f) => f.repo?.name !== priv.name));
  } finally {
    ws.terminate();
    await r.close();
  }
});

test("beyond 5,000 sockets per owner, a subscriber is refused 429 before the upgrade", async () => {
  const url = `${w.url.toString().replace(/^http/, "ws").replace(/\/$/, "")}/v1/orgs/octocat/events`;
  const open = [];
  try {
    for (let i = 0; i < 5_000; i += 250) {
      const batch = Array.from({ length: 250 }, () => new Promise((resolve, reject) => {
        const ws = new WebSocket(url);
        open.push(ws);
        ws.once("open", resolve);
        ws.once("error", reject);
      }));
      await Promise.all(batch);
    }
    const status = await w.get("/v1/orgs/octocat/status", { headers: { Authorization: `Bearer ${ADMIN}` } });
    assert.equal(status.body.subscribers.public, 5_000);
    const refused = await w.get("/v1/orgs/octocat/events", { headers: { Upgrade: "websocket", Connection: "Upgrade" } });
    assert.equal(refused.status, 429);
    assert.equal(refused.body.error.code, "rate_limited");
    assert.equal(refused.headers.get("retry-after"), "60");
  } finally {
    for (const ws of open) ws.terminate();
  }
});
