// Shared end-to-end setup: the built worker (build/index.js + wasm) in Miniflare, talking to the
// GitHub emulator on loopback. Each test file gets its own KV namespace and emulator.
import { Miniflare } from "miniflare";
import { createHash, createHmac } from "node:crypto";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { startEmulator } from "../emulator/server.mjs";

const root = fileURLToPath(new URL("../..", import.meta.url));

/**
 * The token the worker sends upstream unless a test says otherwise: GitHub (and the emulator)
 * answers 401 to GraphQL without one. In GitHub App mode (`emulatorOpts.app`) the App is the
 * credential and no token is set; a test passes `GITHUB_TOKEN: undefined` to run without one.
 */
export const TOKEN = "ghp_forgelens_e2e_token";
/** KV key of the rate-limit memory for a credential (a token, or `installation:<id>`): the first 8 hex of its SHA-256. */
export const rateKey = (token = TOKEN) => `v1:ratelimit:${createHash("sha256").update(token).digest("hex").slice(0, 8)}`;

/** Starts emulator + worker. `bindings` override the defaults below; an `undefined` one is unset. */
export async function startWorker(bindings = {}, emulatorOpts = {}, miniflareOpts = {}) {
  if (!existsSync(`${root}/build/index.js`)) {
    throw new Error("build/index.js is missing: run `npm run build` (npm test does it)");
  }
  const emu = await startEmulator(emulatorOpts);
  const mf = new Miniflare({
    modules: true,
    scriptPath: `${root}/build/index.js`,
    modulesRoot: `${root}/build`,
    modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"], fallthrough: true }],
    kvNamespaces: ["CACHE"],
    durableObjects: { OWNERS: { className: "OwnerDirectory", useSQLite: true } },
    // GITHUB_API_URL only matters in GitHub App mode (emulatorOpts.app): the REST base.
    bindings: Object.fromEntries(Object.entries({
      GITHUB_GRAPHQL_URL: emu.url,
      GITHUB_API_URL: emu.origin,
      UPSTREAM_TIMEOUT_MS: "5000",
      ...(emulatorOpts.app ? {} : { GITHUB_TOKEN: TOKEN }),
      ...bindings,
    }).filter(([, v]) => v !== undefined)),
    unsafeTriggerHandlers: true,
    ...miniflareOpts,
  });
  const url = await mf.ready;
  const kv = await mf.getKVNamespace("CACHE");
  return {
    mf,
    emu,
    kv,
    /** Where the worker listens on loopback (for a real browser). */
    url,
    /** GET (or another method) against the worker; returns { status, headers, body, text }. */
    async get(path, init = {}) {
      const res = await mf.dispatchFetch(`http://forgelens.test${path}`, init);
      const text = await res.text();
      let body = null;
      try {
        body = text ? JSON.parse(text) : null;
      } catch {
        body = undefined;
      }
      return { status: res.status, headers: res.headers, body, text };
    },
    /** A KV value once it is there: an owner's directory answers first and writes KV after. */
    async stored(key, limitMs = 2_000) {
      const end = Date.now() + limitMs;
      for (;;) {
        const value = await kv.get(key);
        if (value !== null || Date.now() > end) return value;
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    /** Stops both; fails (throws) when the emulator threw while answering this test's requests. */
    async close() {
      await mf.dispose();
      await emu.close();
      if (emu.thrown.length) {
        throw new Error(`the GitHub emulator threw ${emu.thrown.length} time(s): ${emu.thrown.map((e) => e?.stack ?? e).join("\n")}`);
      }
    },
  };
}

/** The demo forge's repositories of one owner, sorted by name as the worker sorts them. */
export function fixtureRepos(emu, owner) {
  const o = emu.forge.owners.get(owner.toLowerCase());
  return [...o.repos].sort((a, b) => a.name.toLowerCase().localeCompare(b.name.toLowerCase()));
}

export function names(repos) {
  return repos.map((r) => r.name);
}

/**
 * Waits, when needed, until the current window of Miniflare's rate limiter (fixed windows aligned
 * to multiples of `periodS` since the epoch) has at least `needMs` left, so a test that counts
 * admissions never sees its budget refilled halfway by a window boundary.
 */
export async function inOneLimiterWindow(periodS = 60, needMs = 20_000) {
  const left = periodS * 1000 - (Date.now() % (periodS * 1000));
  if (left < needMs) await new Promise((r) => setTimeout(r, left + 50));
}

/** A read token (HS256) for `orgs`, valid for `expiresInS` (five minutes), signed with `secret`. */
export function mintReadToken(secret, orgs, expiresInS = 300) {
  const b64 = (x) => Buffer.from(JSON.stringify(x)).toString("base64url");
  const input = `${b64({ alg: "HS256", typ: "JWT" })}.${b64({ exp: Math.floor(Date.now() / 1000) + expiresInS, orgs })}`;
  return `${input}.${createHmac("sha256", secret).update(input).digest("base64url")}`;
}
