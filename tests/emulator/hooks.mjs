// Webhooks for the GitHub emulator: hooks (the App's, organizations', repositories'), the deliveries
// they send, and GitHub's webhook deliveries REST API over them, so the worker's delivery recovery
// (DESIGN.md "Delivery recovery") can be tested end to end and shown in `npm run dev`.
//
// Hooks. `{ id, target, url, secret, events }`: `target` is "app" (the App's hook; App mode only),
// "organization:<login>" or "repository:<owner>/<repo>" (an owner or repository of the forge);
// `events` is ["*"] (everything) unless given. A hook without a secret sends no signature headers.
//
// Deliveries. Every delivery the emulator sends (or fails to send) is recorded per hook with GitHub's
// fields: `id` (unique per attempt across hooks, from 20,000,000,001 — past 32 bits, as GitHub's
// are — growing in the order records are made), `guid` (the event's;
// shared by every hook the event went to and by redeliveries), `delivered_at` (when it was sent,
// RFC 3339, whole seconds), `redelivery`, `duration` (seconds), `status` ("OK", "Invalid HTTP
// Response: 503", "timed out", "failed to connect to host"), `status_code` (0 without an answer),
// `event`, `action` (the payload's unless given), `installation_id` (the payload's
// `installation.id`), `repository_id` (the payload's `repository.id`, else the forge repository it
// names), `throttled_at` (null); single deliveries add `url`, `request` { headers, payload } and
// `response` { headers, payload (text) } (null without an answer). A delivery is POSTed with
// GitHub's headers (X-GitHub-Event, X-GitHub-Delivery = guid, X-GitHub-Hook-ID,
// X-GitHub-Hook-Installation-Target-Type = integration | organization | repository,
// X-GitHub-Hook-Installation-Target-ID = app id | organization id | repository id,
// X-Hub-Signature-256 and X-Hub-Signature over the raw body, Content-Type: application/json,
// User-Agent: GitHub-Hookshot/…), redirects not followed. An answer other than 2xx, no answer within
// `timeoutMs` (10 s, GitHub's) or a connection failure is a failed delivery; nothing is retried on
// its own. A payload sent to the App's hook without `installation` gets the installation of the
// owner it names (as GitHub's App payloads carry one). Ids of forge owners and repositories are
// stable within a run: owner id 10000 + its index in the forge (the installation account id),
// repository id 100000000 + 100000 × owner index + its index in the owner's repositories.
// Deliveries older than 3 days (`retentionMs`) are no longer listed, shown or redeliverable.
//
// REST (GitHub's paths and auth):
//   GET  /app/hook/deliveries[?per_page=N&cursor=C&status=success|failure&redelivery=true|false]
//   GET  /app/hook/deliveries/{delivery_id}
//   POST /app/hook/deliveries/{delivery_id}/attempts                  App JWT (Bearer), else 401
//   GET  /orgs/{org}/hooks/{hook_id}/deliveries[?…same…]
//   GET  /orgs/{org}/hooks/{hook_id}/deliveries/{delivery_id}
//   POST /orgs/{org}/hooks/{hook_id}/deliveries/{delivery_id}/attempts
//   GET  /repos/{owner}/{repo}/hooks/{hook_id}/deliveries[?…same…]
//   GET  /repos/{owner}/{repo}/hooks/{hook_id}/deliveries/{delivery_id}
//   POST /repos/{owner}/{repo}/hooks/{hook_id}/deliveries/{delivery_id}/attempts
//     `Authorization: Bearer|token <token>`: none → 401 "Requires authentication"; an unknown or
//     expired `ghs_` token → 401 "Bad credentials"; an App JWT or a valid installation token → 403
//     "Resource not accessible by integration" (the emulated App has no hook permission); any
//     other token is accepted.
//   Lists are newest first; `per_page` 1–100 (default 30; above 100 → 100); `cursor` opaque (one
//   the emulator did not make → 400); a `Link: <…?per_page=N&cursor=…>; rel="next"` header (absolute,
//   on the request's Host) when more follow. An unknown hook, a hook
//   under another owner's path or an unknown delivery → 404. `attempts` → 202 `{}`, then the stored
//   request is sent again to the hook's current URL (same body and guid, a new id,
//   `redelivery: true`, signed with the hook's current secret) and recorded like any delivery.
//   Order of checks: auth (401/403), the credential's REST budget (403 rate limit), the hook (404),
//   the hook's faults (rate limit, deny, injected 5xx). Answers carry `x-ratelimit-*` (resource
//   "core"; a budget of 5,000 an hour per credential, `hooks.restRates`, spent by every
//   authenticated call that is not refused for rate).
//
// Per-hook faults (`POST /_emulator/hooks/{id}/faults`; cleared by `emu.reset()`):
//   unreachable: true       every delivery fails without being sent ("failed to connect to host", 0)
//   failNext: N             the next N deliveries fail so (also `POST …/fail-next` {count})
//   deny: 403 | 404 | 401   every deliveries API call for the hook answers that ("not permitted")
//   failLists: N            the next N list calls answer `errorStatus` (default 502)
//   failAttempts: N         the next N attempts calls answer `errorStatus` and send nothing
//   rateLimitS: S           for S seconds, calls answer 403 with x-ratelimit-remaining: 0 and
//                           x-ratelimit-reset (GitHub's primary rate limit)
//   retryAfterS: S          for S seconds, calls answer 403 with retry-after: S (secondary limit)
import { createHmac, randomUUID } from "node:crypto";
import http from "node:http";
import https from "node:https";
import { verifyAppJwt, rfc3339 } from "./app.mjs";

/** GitHub's `x-ratelimit-*` headers for a credential's budget `r` of API `resource` (`core`
 * for REST, `graphql`). */
export function rateHeaders(r, resource) {
  return {
    "x-ratelimit-limit": String(r.limit),
    "x-ratelimit-remaining": String(r.remaining),
    "x-ratelimit-used": String(r.limit - r.remaining),
    "x-ratelimit-reset": String(Math.floor(Date.parse(r.resetAt) / 1000)),
    "x-ratelimit-resource": resource,
  };
}

/** GitHub's delivery timeout: no answer within 10 s is a failed delivery. */
export const DEFAULT_HOOK_TIMEOUT_MS = 10_000;
/** How long GitHub keeps deliveries (and lets them be redelivered). */
export const RETENTION_MS = 3 * 24 * 3600_000;
/** The delivering agent, as GitHub names it (a build hash follows the slash). */
export const HOOKSHOT_USER_AGENT = "GitHub-Hookshot/e3b0c44";

const REST_DOCS = "https://docs.github.com/rest/webhooks/repo-deliveries";
const TARGET_TYPE = { app: "integration", organization: "organization", repository: "repository" };
/** A path segment decoded; a malformed escape is kept as written (it then names no hook). */
const decode = (v) => {
  try {
    return decodeURIComponent(v);
  } catch {
    return v;
  }
};
const TAIL = "/deliveries(?:/(\\d+)(/attempts)?)?$";
const APP_ROUTE = new RegExp(`^/app/hook${TAIL}`);
const ORG_ROUTE = new RegExp(`^/orgs/([^/]+)/hooks/(\\d+)${TAIL}`);
const REPO_ROUTE = new RegExp(`^/repos/([^/]+)/([^/]+)/hooks/(\\d+)${TAIL}`);

/** `sha256=…` and `sha1=…` signatures of a raw body, as GitHub computes them. */
export function signatures(secret, body) {
  return {
    sha256: "sha256=" + createHmac("sha256", secret).update(body).digest("hex"),
    sha1: "sha1=" + createHmac("sha1", secret).update(body).digest("hex"),
  };
}

/**
 * POSTs exactly these headers and body (no redirect followed, as GitHub does); resolves to
 * { status, headers, text } once the whole answer is read, rejects on a connection failure or abort.
 */
function post(url, headers, body, signal) {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const lib = u.protocol === "https:" ? https : http;
    const req = lib.request(u, { method: "POST", headers: { ...headers, "Content-Length": Buffer.byteLength(body) }, signal }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode, headers: { ...res.headers }, text: Buffer.concat(chunks).toString() }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** Stable numeric ids for the forge's owners and repositories (see the header). */
export function forgeIds(forge) {
  const repoIds = new WeakMap();
  const ownerIndex = (login) => [...forge.owners.keys()].indexOf(String(login).toLowerCase());
  return {
    ownerId(login) {
      const i = ownerIndex(login);
      return i < 0 ? null : 10000 + i;
    },
    repo(fullName) {
      if (typeof fullName !== "string" || !fullName.includes("/")) return null;
      let key = fullName.toLowerCase();
      key = forge.renames.get(key) ?? key;
      const [o, n] = key.split("/");
      return forge.owners.get(o)?.repos.find((r) => r.name.toLowerCase() === n) ?? null;
    },
    repoId(repo) {
      if (!repo) return null;
      let id = repoIds.get(repo);
      if (id == null) {
        const i = ownerIndex(repo.owner.login);
        const j = forge.owners.get(repo.owner.login.toLowerCase())?.repos.indexOf(repo) ?? -1;
        if (i < 0 || j < 0) return null;
        repoIds.set(repo, (id = 100_000_000 + 100_000 * i + j));
      }
      return id;
    },
  };
}

const freshHookFaults = () => ({
  unreachable: false, failNext: 0, deny: null, failLists: 0, failAttempts: 0, errorStatus: 502,
  rateLimitedUntilMs: null, retryAfterUntilMs: null,
});

/**
 * The webhook side of an emulator. `ctx`: { forge, app (App state or null), stats, faults (for
 * latencyMs), thrown, timeoutMs, retentionMs }. See the header for what it serves.
 */
export function createHooks(ctx) {
  const { forge, app, stats, thrown } = ctx;
  const ids = forgeIds(forge);
  const hooks = new Map();
  const inflight = new Set();
  const aborts = new Set();
  let nextHookId = 7001;
  let nextDeliveryId = 20_000_000_001;
  const notFound = { message: "Not Found", documentation_url: REST_DOCS };

  const api = {
    /** Hooks by id. */
    hooks,
    /** No answer within this many ms is a failed delivery (GitHub: 10 s). */
    timeoutMs: ctx.timeoutMs ?? DEFAULT_HOOK_TIMEOUT_MS,
    /** Deliveries older than this are gone (GitHub: 3 days). */
    retentionMs: ctx.retentionMs ?? RETENTION_MS,
    /** REST budgets by credential ("app" for App JWTs, else the token): { limit, remaining, resetAt }. */
    restRates: new Map(),
    forgeIds: ids,

    /** Adds (or, for a known id, updates) a hook: { id?, target, url, secret?, events? }. Returns it. */
    add(spec) {
      const target = parseTarget(spec.target);
      const id = spec.id == null ? nextHookId++ : Number(spec.id);
      if (!Number.isSafeInteger(id) || id < 1) throw new HookError(422, `hook id must be a positive integer, got ${spec.id}`);
      if (typeof spec.url !== "string" || !/^https?:\/\//.test(spec.url)) throw new HookError(422, "url must be an http(s) URL");
      const old = hooks.get(id);
      if (old && old.target !== target.target) throw new HookError(422, `hook ${id} already exists for ${old.target}`);
      if (target.type === "app") {
        for (const h of hooks.values()) if (h.type === "app" && h.id !== id) throw new HookError(422, `the App already has hook ${h.id}`);
      }
      if (id >= nextHookId) nextHookId = id + 1;
      const hook = old ?? { id, ...target, deliveries: [], faults: freshHookFaults(), calls: { list: 0, get: 0, attempts: 0 } };
      hook.url = spec.url;
      hook.secret = spec.secret == null || spec.secret === "" ? null : String(spec.secret);
      hook.events = Array.isArray(spec.events) && spec.events.length ? spec.events.map(String) : (old?.events ?? ["*"]);
      hooks.set(id, hook);
      return hook;
    },
    remove(id) {
      return hooks.delete(Number(id));
    },
    get(id) {
      return hooks.get(Number(id)) ?? null;
    },
    /** The App's hook, or null. */
    appHook() {
      for (const h of hooks.values()) if (h.type === "app") return h;
      return null;
    },
    /** Sends one event to one hook now; resolves to the delivery record (see `full`). */
    send(hookId, { event, action, payload, guid } = {}) {
      const hook = api.get(hookId);
      if (!hook) throw new HookError(404, `no hook ${hookId}`);
      return track(deliver(hook, prepare(hook, { event, action, payload, guid: guid ?? randomUUID() }), false));
    },
    /**
     * Sends one event to every hook it concerns (one guid for all, as GitHub does): the App's hook
     * for an owner with the App installed (installation events always), an organization's hook for
     * that organization's events, a repository's hook for that repository's. Resolves to
     * `{ guid, deliveries: [{ hook_id, …record }] }`.
     */
    async emit({ event, action, payload, guid } = {}) {
      validate(event, payload);
      const g = guid ?? randomUUID();
      const matching = [...hooks.values()].filter((h) => concerns(h, event, payload ?? {}));
      const records = await Promise.all(matching.map((h) => track(deliver(h, prepare(h, { event, action, payload, guid: g }), false))));
      return { guid: g, deliveries: records.map((r, i) => ({ hook_id: matching[i].id, ...full(r) })) };
    },
    /** Sends a recorded delivery again (what `POST …/attempts` does). Resolves to the new record. */
    redeliver(hook, record) {
      return track(deliver(hook, { event: record.event, action: record.action, guid: record.guid, body: record.body, installationId: record.installationId, repositoryId: record.repositoryId }, true));
    },
    /** Resolves once no delivery is being sent (a redelivery answers 202 before it is sent). */
    async idle() {
      while (inflight.size) await Promise.allSettled([...inflight]);
    },
    /** Moves every delivery of a hook (all hooks without an id) `seconds` into the past. */
    backdate(hookId, seconds) {
      const list = hookId == null ? [...hooks.values()] : [api.get(hookId)].filter(Boolean);
      for (const h of list) for (const d of h.deliveries) d.deliveredMs -= seconds * 1000;
    },
    /** Forgets every recorded delivery (hooks stay). */
    clear() {
      for (const h of hooks.values()) h.deliveries.length = 0;
    },
    /** Per-hook faults and call counts back to none (emu.reset() calls this). */
    resetFaults() {
      for (const h of hooks.values()) {
        h.faults = freshHookFaults();
        h.calls = { list: 0, get: 0, attempts: 0 };
      }
    },
    /** Applies a faults body (see the header) to a hook. */
    setFaults(hook, body) {
      const f = hook.faults;
      const count = (k, v) => {
        const n = v == null ? 0 : Number(v);
        if (!Number.isInteger(n) || n < 0) throw new HookError(422, `${k} must be an integer >= 0`);
        return n;
      };
      for (const [k, v] of Object.entries(body ?? {})) {
        if (k === "unreachable") f.unreachable = Boolean(v);
        else if (k === "failNext" || k === "failLists" || k === "failAttempts") f[k] = count(k, v);
        else if (k === "deny") {
          if (v != null && ![401, 403, 404].includes(Number(v))) throw new HookError(422, "deny must be 401, 403, 404 or null");
          f.deny = v == null ? null : Number(v);
        } else if (k === "errorStatus") {
          const n = Number(v ?? 502);
          if (!Number.isInteger(n) || n < 500 || n > 599) throw new HookError(422, "errorStatus must be a 5xx status");
          f.errorStatus = n;
        } else if (k === "rateLimitS") f.rateLimitedUntilMs = v == null ? null : Date.now() + Number(v) * 1000;
        else if (k === "retryAfterS") f.retryAfterUntilMs = v == null ? null : Date.now() + Number(v) * 1000;
        else throw new HookError(422, `unknown fault ${k}`);
      }
    },
    /** A hook as the control routes show it (never its secret). */
    view(hook) {
      const f = hook.faults;
      return {
        id: hook.id, target: hook.target, url: hook.url, events: hook.events, has_secret: hook.secret != null,
        target_type: TARGET_TYPE[hook.type], target_id: targetId(hook), deliveries: hook.deliveries.length,
        calls: { ...hook.calls },
        faults: {
          unreachable: f.unreachable, failNext: f.failNext, deny: f.deny, failLists: f.failLists, failAttempts: f.failAttempts,
          errorStatus: f.errorStatus,
          rateLimitedUntil: f.rateLimitedUntilMs && f.rateLimitedUntilMs > Date.now() ? rfc3339(f.rateLimitedUntilMs) : null,
          retryAfterUntil: f.retryAfterUntilMs && f.retryAfterUntilMs > Date.now() ? rfc3339(f.retryAfterUntilMs) : null,
        },
      };
    },
    item,
    full,
    /** Aborts deliveries under way and waits for them (the emulator's close). */
    async close() {
      for (const a of aborts) a.abort();
      await api.idle();
    },
    handle,
  };

  function parseTarget(target) {
    const t = String(target ?? "");
    if (t === "app") {
      if (!app) throw new HookError(422, "the App's hook needs App mode (opts.app / --app-key-out)");
      return { type: "app", target: "app" };
    }
    let m = /^organization:([^/\s]+)$/.exec(t);
    if (m) {
      const o = forge.owners.get(m[1].toLowerCase());
      if (!o || o.__typename !== "Organization") throw new HookError(422, `no organization ${m[1]} in the forge`);
      return { type: "organization", target: `organization:${o.login}`, org: o.login };
    }
    m = /^repository:([^/\s]+)\/([^/\s]+)$/.exec(t);
    if (m) {
      const r = ids.repo(`${m[1]}/${m[2]}`);
      if (!r) throw new HookError(422, `no repository ${m[1]}/${m[2]} in the forge`);
      return { type: "repository", target: `repository:${r.nameWithOwner}`, owner: r.owner.login, repo: r.name, repoRecord: r };
    }
    throw new HookError(422, `target must be "app", "organization:<login>" or "repository:<owner>/<repo>", got ${JSON.stringify(target)}`);
  }

  function targetId(hook) {
    if (hook.type === "app") return app.id;
    if (hook.type === "organization") return ids.ownerId(hook.org);
    return ids.repoId(hook.repoRecord);
  }

  /** The owner login an event payload names, or null. */
  function payloadOwner(p) {
    return p.organization?.login ?? p.repository?.owner?.login ?? p.repository?.full_name?.split("/")[0]
      ?? p.installation?.account?.login ?? null;
  }

  function concerns(hook, event, payload) {
    if (!hook.events.includes("*") && !hook.events.includes(event)) return false;
    const owner = payloadOwner(payload);
    if (hook.type === "app") {
      if (/^installation/.test(String(event)) || payload.installation?.id != null) return true;
      return owner != null && app.installations.has(owner.toLowerCase());
    }
    if (hook.type === "organization") return owner != null && owner.toLowerCase() === hook.org.toLowerCase();
    const full = payload.repository?.full_name;
    return typeof full === "string" && full.toLowerCase() === `${hook.owner}/${hook.repo}`.toLowerCase();
  }

  /** What a first delivery of an event to a hook carries: body text and the record's ids. */
  function validate(event, payload) {
    if (typeof event !== "string" || !/^[a-z_]+$/.test(event)) throw new HookError(422, "event must be an event name such as check_suite");
    if (payload == null || typeof payload !== "object" || Array.isArray(payload)) throw new HookError(422, "payload must be a JSON object");
  }

  function prepare(hook, { event, action, payload, guid }) {
    validate(event, payload);
    let p = payload;
    if (hook.type === "app" && p.installation == null) {
      const owner = payloadOwner(p);
      const iid = owner == null ? undefined : app.installations.get(owner.toLowerCase());
      if (iid != null) p = { ...p, installation: { id: iid, node_id: Buffer.from(`023:IntegrationInstallation${iid}`).toString("base64") } };
    }
    const full = p.repository?.full_name ?? (p.repository?.name && p.repository?.owner?.login ? `${p.repository.owner.login}/${p.repository.name}` : null);
    const repositoryId = Number.isSafeInteger(p.repository?.id) ? p.repository.id : ids.repoId(ids.repo(full));
    return {
      event,
      action: action !== undefined ? action : typeof p.action === "string" ? p.action : null,
      guid: String(guid),
      body: JSON.stringify(p),
      installationId: Number.isSafeInteger(p.installation?.id) ? p.installation.id : null,
      repositoryId: repositoryId ?? null,
    };
  }

  function track(promise) {
    inflight.add(promise);
    const done = () => inflight.delete(promise);
    promise.then(done, done);
    return promise;
  }

  /** Sends (or fails to send) one delivery to a hook and records it. */
  async function deliver(hook, d, redelivery) {
    const headers = {
      Accept: "*/*",
      "Content-Type": "application/json",
      "User-Agent": HOOKSHOT_USER_AGENT,
      "X-GitHub-Delivery": d.guid,
      "X-GitHub-Event": d.event,
      "X-GitHub-Hook-ID": String(hook.id),
      "X-GitHub-Hook-Installation-Target-ID": String(targetId(hook)),
      "X-GitHub-Hook-Installation-Target-Type": TARGET_TYPE[hook.type],
    };
    if (hook.secret != null) {
      const sig = signatures(hook.secret, d.body);
      headers["X-Hub-Signature"] = sig.sha1;
      headers["X-Hub-Signature-256"] = sig.sha256;
    }
    const url = hook.url;
    const startedMs = Date.now();
    const t0 = performance.now();
    let statusCode = 0;
    let status;
    let response = { headers: null, payload: null };
    const f = hook.faults;
    if (f.unreachable || f.failNext > 0) {
      if (!f.unreachable) f.failNext--;
      status = "failed to connect to host";
    } else {
      const abort = new AbortController();
      aborts.add(abort);
      const timer = setTimeout(() => abort.abort(new Error("timed out")), api.timeoutMs);
      try {
        const res = await post(url, headers, d.body, abort.signal);
        statusCode = res.status;
        status = res.status >= 200 && res.status < 300 ? "OK" : `Invalid HTTP Response: ${res.status}`;
        response = { headers: res.headers, payload: res.text };
      } catch (e) {
        statusCode = 0;
        response = { headers: null, payload: null };
        status = abort.signal.aborted ? "timed out" : "failed to connect to host";
        if (!abort.signal.aborted && typeof e?.code !== "string") thrown.push(e);
      } finally {
        clearTimeout(timer);
        aborts.delete(abort);
      }
    }
    const record = {
      id: nextDeliveryId++,
      guid: d.guid,
      deliveredMs: startedMs,
      redelivery,
      duration: Math.round(performance.now() - t0) / 1000,
      status,
      statusCode,
      event: d.event,
      action: d.action,
      installationId: d.installationId,
      repositoryId: d.repositoryId,
      url,
      requestHeaders: headers,
      body: d.body,
      response,
    };
    hook.deliveries.push(record);
    stats.deliveriesSent++;
    return record;
  }

  /** A delivery as GitHub lists it. */
  function item(r) {
    return {
      id: r.id,
      guid: r.guid,
      delivered_at: rfc3339(r.deliveredMs),
      redelivery: r.redelivery,
      duration: r.duration,
      status: r.status,
      status_code: r.statusCode,
      event: r.event,
      action: r.action,
      installation_id: r.installationId,
      repository_id: r.repositoryId,
      throttled_at: null,
    };
  }

  /** A delivery as GitHub shows one: the list fields, url, request and response. */
  function full(r) {
    return {
      ...item(r),
      url: r.url,
      request: { headers: { ...r.requestHeaders }, payload: JSON.parse(r.body) },
      response: { headers: r.response.headers, payload: r.response.payload },
    };
  }

  function live(hook) {
    const oldest = Date.now() - api.retentionMs;
    return hook.deliveries.filter((d) => d.deliveredMs >= oldest);
  }

  function answer(res, status, body, headers = {}) {
    res.writeHead(status, { "content-type": "application/json; charset=utf-8", ...headers });
    res.end(typeof body === "string" ? body : JSON.stringify(body));
  }

  function budgetOf(key) {
    let r = api.restRates.get(key);
    if (!r) api.restRates.set(key, (r = { limit: 5000, remaining: 5000, resetAt: rfc3339(Date.now() + 3600_000) }));
    if (Date.now() >= Date.parse(r.resetAt)) {
      r.remaining = r.limit;
      r.resetAt = rfc3339(Date.now() + 3600_000);
    }
    return r;
  }


  /** Who a deliveries API call is: { auth, key, error: [status, body] | null }. */
  function restAuth(kind, authorization) {
    if (kind === "app") {
      const jwt = verifyAppJwt(authorization, app);
      if (!jwt.ok) {
        stats.appAuthFailures++;
        return { auth: authorization ? "invalid-jwt" : "none", key: null, jwtError: jwt.reason, error: [401, jwt.body] };
      }
      return { auth: "app-jwt", key: "app", error: null };
    }
    if (authorization == null || authorization === "") {
      return { auth: "none", key: null, error: [401, { message: "Requires authentication", documentation_url: REST_DOCS }] };
    }
    const value = /^(?:bearer|token)\s+(\S+)\s*$/i.exec(authorization)?.[1];
    const bad = [401, { message: "Bad credentials", documentation_url: "https://docs.github.com/rest" }];
    if (!value) return { auth: "malformed", key: null, error: bad };
    const integration = [403, { message: "Resource not accessible by integration", documentation_url: REST_DOCS }];
    if (value.startsWith("ghs_")) {
      const t = app?.tokens.get(value);
      if (!t) return { auth: "installation:unknown", key: null, error: bad };
      const auth = `installation:${t.id}`;
      if (Date.now() >= t.expiresMs) return { auth, key: null, error: bad };
      return { auth, key: auth, error: integration };
    }
    if (/^eyJ[\w-]*\.[\w-]+\.[\w-]+$/.test(value)) return { auth: "app-jwt", key: "app", error: integration };
    return { auth: "token", key: value, error: null };
  }

  /** The hook a REST path names, or null (unknown, or under another owner's path). */
  function hookOf(route) {
    if (route.kind === "app") return api.appHook();
    const h = api.get(route.hookId);
    if (!h) return null;
    if (route.kind === "organization") return h.type === "organization" && h.org.toLowerCase() === route.org.toLowerCase() ? h : null;
    return h.type === "repository" && `${h.owner}/${h.repo}`.toLowerCase() === `${route.owner}/${route.repo}`.toLowerCase() ? h : null;
  }

  function parseRoute(method, path) {
    if (!/\/deliveries(?:\/|$)/.test(path)) return null;
    let m;
    let route = null;
    if ((m = APP_ROUTE.exec(path))) route = { kind: "app", delivery: m[1], attempts: !!m[2] };
    else if ((m = ORG_ROUTE.exec(path))) {
      route = { kind: "organization", org: decode(m[1]), hookId: Number(m[2]), delivery: m[3], attempts: !!m[4] };
    } else if ((m = REPO_ROUTE.exec(path))) {
      route = { kind: "repository", owner: decode(m[1]), repo: decode(m[2]), hookId: Number(m[3]), delivery: m[4], attempts: !!m[5] };
    }
    if (!route) return null;
    route.op = route.attempts ? "attempts" : route.delivery ? "get" : "list";
    route.method = route.op === "attempts" ? "POST" : "GET";
    if (route.kind === "app" && !app) return null;
    return route.method === method ? route : { ...route, wrongMethod: true };
  }

  /** Handles the deliveries REST API and the control routes; false when `path` is neither. */
  async function handle(req, res, path, rawBody) {
    if (path.startsWith("/_emulator/")) return control(req, res, path, rawBody);
    const route = parseRoute(req.method, path);
    if (!route) return false;
    if (route.wrongMethod) {
      answer(res, 404, notFound);
      return true;
    }
    const counter = { list: "deliveryLists", get: "deliveryGets", attempts: "redeliveryRequests" }[route.op];
    stats[counter]++;
    const entry = { rest: { list: "hook_deliveries", get: "hook_delivery", attempts: "hook_attempts" }[route.op], kind: route.kind };
    if (route.kind !== "app") entry.hook = route.hookId;
    if (route.delivery) entry.delivery = Number(route.delivery);
    stats.log.push(entry);
    const reply = (status, body, headers) => {
      entry.status = status;
      answer(res, status, body, headers);
      return true;
    };
    if (ctx.faults.latencyMs) await new Promise((r) => setTimeout(r, ctx.faults.latencyMs));
    if (route.kind === "app" && (ctx.faults.appStatus || ctx.faults.appBody != null)) {
      entry.fault = true;
      return reply(ctx.faults.appStatus ?? 500, ctx.faults.appBody ?? { message: "injected fault" });
    }
    const who = restAuth(route.kind, req.headers.authorization);
    entry.auth = who.auth;
    if (who.jwtError) entry.jwtError = who.jwtError;
    if (who.error) return reply(who.error[0], who.error[1]);
    const budget = budgetOf(who.key);
    if (budget.remaining <= 0) {
      entry.rateLimited = true;
      return reply(403, { message: "API rate limit exceeded for this credential.", documentation_url: "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api" }, rateHeaders(budget, "core"));
    }
    budget.remaining--;
    const hook = hookOf(route);
    if (!hook) return reply(404, notFound, rateHeaders(budget, "core"));
    entry.hook = hook.id;
    hook.calls[route.op]++;
    const f = hook.faults;
    const now = Date.now();
    if (f.rateLimitedUntilMs != null && now < f.rateLimitedUntilMs) {
      entry.rateLimited = true;
      return reply(403, { message: "API rate limit exceeded for this credential.", documentation_url: "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api" }, {
        ...rateHeaders(budget, "core"),
        "x-ratelimit-remaining": "0",
        "x-ratelimit-used": String(budget.limit),
        "x-ratelimit-reset": String(Math.ceil(f.rateLimitedUntilMs / 1000)),
      });
    }
    if (f.retryAfterUntilMs != null && now < f.retryAfterUntilMs) {
      entry.rateLimited = true;
      return reply(403, { message: "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.", documentation_url: "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits" }, {
        ...rateHeaders(budget, "core"),
        "retry-after": String(Math.ceil((f.retryAfterUntilMs - now) / 1000)),
      });
    }
    if (f.deny != null) {
      entry.fault = "deny";
      const message = f.deny === 404 ? "Not Found" : f.deny === 401 ? "Bad credentials"
        : hook.type === "repository" ? "Must have admin rights to Repository." : hook.type === "organization" ? "Must be an organization owner." : "Resource not accessible by integration";
      return reply(f.deny, { message, documentation_url: REST_DOCS }, rateHeaders(budget, "core"));
    }
    if ((route.op === "list" && f.failLists > 0) || (route.op === "attempts" && f.failAttempts > 0)) {
      if (route.op === "list") f.failLists--;
      else f.failAttempts--;
      entry.fault = String(f.errorStatus);
      return reply(f.errorStatus, { message: "Server Error" });
    }
    if (route.op === "list") return list(req, hook, budget, entry, reply);
    const record = live(hook).find((d) => d.id === Number(route.delivery));
    if (!record) return reply(404, notFound, rateHeaders(budget, "core"));
    if (route.op === "get") return reply(200, full(record), rateHeaders(budget, "core"));
    api.redeliver(hook, record).catch((e) => thrown.push(e));
    return reply(202, {}, rateHeaders(budget, "core"));
  }

  function list(req, hook, budget, entry, reply) {
    const url = new URL(req.url, "http://emulator");
    const q = url.searchParams;
    let perPage = Number(q.get("per_page") ?? 30);
    if (!Number.isInteger(perPage) || perPage < 1) perPage = 30;
    if (perPage > 100) perPage = 100;
    entry.per_page = perPage;
    entry.cursor = q.get("cursor");
    let below = Infinity;
    if (q.has("cursor")) {
      const m = /^v1_(\d+)$/.exec(q.get("cursor"));
      if (!m) return reply(400, { message: "Invalid cursor", documentation_url: REST_DOCS }, rateHeaders(budget, "core"));
      below = Number(m[1]);
    }
    let all = live(hook).filter((d) => d.id < below).sort((a, b) => b.id - a.id);
    const st = q.get("status");
    if (st === "success") all = all.filter((d) => d.statusCode >= 200 && d.statusCode < 300);
    else if (st === "failure") all = all.filter((d) => !(d.statusCode >= 200 && d.statusCode < 300));
    const rd = q.get("redelivery");
    if (rd === "true" || rd === "false") all = all.filter((d) => d.redelivery === (rd === "true"));
    const page = all.slice(0, perPage);
    const headers = rateHeaders(budget, "core");
    if (all.length > perPage) {
      const next = new URLSearchParams(q);
      next.set("per_page", String(perPage));
      next.set("cursor", `v1_${page[page.length - 1].id}`);
      const origin = `http://${req.headers.host ?? "127.0.0.1"}`;
      headers.link = `<${origin}${url.pathname}?${next}>; rel="next"`;
    }
    entry.count = page.length;
    return reply(200, page.map(item), headers);
  }

  /** `/_emulator/…` control routes (see server.mjs's usage). */
  async function control(req, res, path, rawBody) {
    const send = (status, body) => {
      answer(res, status, body);
      return true;
    };
    let body = {};
    if (rawBody?.length) {
      try {
        body = JSON.parse(rawBody.toString());
      } catch {
        return send(400, { message: "Problems parsing JSON" });
      }
    }
    try {
      if (path === "/_emulator/stats" && req.method === "GET") {
        const { log, ...counts } = stats;
        return send(200, { ...counts, hooks: [...hooks.values()].map((h) => ({ id: h.id, target: h.target, deliveries: h.deliveries.length, calls: { ...h.calls } })) });
      }
      if (path === "/_emulator/hooks") {
        if (req.method === "GET") return send(200, { hooks: [...hooks.values()].map(api.view) });
        if (req.method === "POST") {
          const existed = body.id != null && hooks.has(Number(body.id));
          return send(existed ? 200 : 201, api.view(api.add(body)));
        }
      }
      if (path === "/_emulator/events" && req.method === "POST") return send(200, await api.emit(body));
      const m = /^\/_emulator\/hooks\/(\d+)(\/send|\/fail-next|\/faults|\/deliveries)?$/.exec(path);
      if (m) {
        const hook = api.get(m[1]);
        if (!hook) return send(404, { message: `no hook ${m[1]}` });
        const op = `${req.method} ${m[2] ?? ""}`;
        if (op === "GET ") return send(200, api.view(hook));
        if (op === "DELETE ") {
          api.remove(hook.id);
          return send(200, { deleted: hook.id });
        }
        if (op === "POST /send") return send(200, { hook_id: hook.id, ...full(await api.send(hook.id, body)) });
        if (op === "POST /fail-next") {
          api.setFaults(hook, { failNext: hook.faults.failNext + (body.count == null ? 1 : Number(body.count)) });
          return send(200, api.view(hook));
        }
        if (op === "POST /faults") {
          api.setFaults(hook, body);
          return send(200, api.view(hook));
        }
        if (op === "DELETE /faults") {
          hook.faults = freshHookFaults();
          return send(200, api.view(hook));
        }
        if (op === "GET /deliveries") return send(200, [...hook.deliveries].sort((a, b) => b.id - a.id).map((r) => ({ hook_id: hook.id, ...full(r) })));
      }
    } catch (e) {
      if (e instanceof HookError) return send(e.status, { message: e.message });
      throw e;
    }
    return send(404, { message: `no control route ${req.method} ${path}` });
  }

  return api;
}

export class HookError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}
