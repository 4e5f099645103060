// GitHub App support for the emulator: App key pairs, App JWTs (RS256) and their verification the
// way GitHub checks them, and installation access tokens (`ghs_…`).
//
// - `generateAppKey()` makes a key pair shaped like the one GitHub hands out (PKCS#1 private key).
// - `signAppJwt(...)` signs an App JWT (for tests that call the emulator's App endpoints directly).
// - `verifyAppJwt(authorization, app)` checks an `Authorization: Bearer <JWT>` header: alg RS256,
//   signature, `iss`, `iat`, `exp` and its 10-minute bound (`exp` ≤ now + 10 min).
import { generateKeyPairSync, createPublicKey, randomInt, sign, verify } from "node:crypto";

/** The App id the emulator uses when none is given (the CLI's App mode uses it too). */
export const DEFAULT_APP_ID = 12345;

/** Permissions every emulated installation (and its tokens) has. */
export const APP_PERMISSIONS = Object.freeze({ metadata: "read", statuses: "read", checks: "read" });

/** Leeway for `iat` in the future (clock skew between the worker and GitHub), seconds. */
export const IAT_SKEW_S = 60;
/** How far in the future GitHub accepts an App JWT's `exp`: no more than 10 minutes from now. */
export const MAX_JWT_AHEAD_S = 600;

const REST_DOCS = "https://docs.github.com/rest";

/**
 * A fresh RSA-2048 App key pair: `privateKeyPkcs1Pem` (`BEGIN RSA PRIVATE KEY`, what GitHub hands
 * out), the same key as `privateKeyPkcs8Pem` (`BEGIN PRIVATE KEY`) and `publicKeyPem` (SPKI,
 * `BEGIN PUBLIC KEY`, what the emulator verifies with).
 */
export function generateAppKey() {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  return {
    privateKeyPkcs1Pem: privateKey.export({ type: "pkcs1", format: "pem" }),
    privateKeyPkcs8Pem: privateKey.export({ type: "pkcs8", format: "pem" }),
    publicKeyPem: publicKey.export({ type: "spki", format: "pem" }),
  };
}

const b64url = (v) => Buffer.from(typeof v === "string" ? v : JSON.stringify(v)).toString("base64url");

/**
 * Signs an App JWT with RS256 (RSASSA-PKCS1-v1_5 SHA-256), the way a GitHub App client does.
 * Defaults: `iat` = now − 60 s, `exp` = now + 9 min, `iss` = appId. `header` and `claims` are
 * merged over the defaults (e.g. `{ alg: "HS256" }` to make a token the emulator must refuse).
 */
export function signAppJwt({ appId = DEFAULT_APP_ID, privateKeyPem, now = Math.floor(Date.now() / 1000), header = {}, claims = {} }) {
  const h = { alg: "RS256", typ: "JWT", ...header };
  const c = { iat: now - 60, exp: now + 540, iss: appId, ...claims };
  const input = `${b64url(h)}.${b64url(c)}`;
  const sig = sign("sha256", Buffer.from(input), privateKeyPem);
  return `${input}.${sig.toString("base64url")}`;
}

/** GitHub's 401 answers for App JWTs that do not pass (the wording GitHub uses). */
export const JWT_ERRORS = {
  undecodable: "A JSON web token could not be decoded",
  expired: "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires",
  tooLong: "'Expiration time' claim ('exp') is too far in the future",
  iatFuture: "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued",
  issuer: "'Issuer' claim ('iss') must be an Integer",
};

function decodePart(part) {
  if (!/^[A-Za-z0-9_-]+$/.test(part)) return null;
  try {
    const v = JSON.parse(Buffer.from(part, "base64url").toString("utf8"));
    return v && typeof v === "object" && !Array.isArray(v) ? v : null;
  } catch {
    return null;
  }
}

/**
 * Checks an `Authorization` header carrying an App JWT against the App `{ id, publicKey }`.
 * Returns `{ ok: true, claims }` or `{ ok: false, reason, body }` where `reason` is a short code
 * for the test log ("missing", "malformed", "alg", "signature", "issuer", "iat", "expired",
 * "too_long") and `body` is GitHub's 401 body. Never returns or logs the token itself.
 */
export function verifyAppJwt(authorization, app, nowS = Date.now() / 1000) {
  const fail = (reason, message = JWT_ERRORS.undecodable) => ({ ok: false, reason, body: { message, documentation_url: REST_DOCS } });
  const m = /^bearer\s+(\S+)\s*$/i.exec(authorization ?? "");
  if (!m) return fail(authorization ? "malformed" : "missing");
  const parts = m[1].split(".");
  if (parts.length !== 3) return fail("malformed");
  const [h, p, s] = parts;
  const header = decodePart(h);
  const claims = decodePart(p);
  if (!header || !claims || !/^[A-Za-z0-9_-]+$/.test(s)) return fail("malformed");
  if (header.alg !== "RS256") return fail("alg");
  let good = false;
  try {
    good = verify("sha256", Buffer.from(`${h}.${p}`), app.publicKey, Buffer.from(s, "base64url"));
  } catch {
    good = false;
  }
  if (!good) return fail("signature");
  const iss = claims.iss;
  const issOk = (typeof iss === "number" || (typeof iss === "string" && /^\d+$/.test(iss))) && String(iss) === String(app.id);
  if (!issOk) return fail("issuer", iss == null || !/^\d+$/.test(String(iss)) ? JWT_ERRORS.issuer : JWT_ERRORS.undecodable);
  const { iat, exp } = claims;
  if (!Number.isFinite(iat) || iat > nowS + IAT_SKEW_S) return fail("iat", JWT_ERRORS.iatFuture);
  if (!Number.isFinite(exp) || exp <= nowS) return fail("expired", JWT_ERRORS.expired);
  // GitHub bounds `exp` by its own clock, not by `iat`: a backdated `iat` with `exp` now + 10 min is fine.
  if (exp > Math.floor(nowS) + MAX_JWT_AHEAD_S) return fail("too_long", JWT_ERRORS.tooLong);
  return { ok: true, claims };
}

const TOKEN_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/** A new installation access token: `ghs_` + 36 random alphanumerics, like GitHub's. */
export function newInstallationToken() {
  let t = "ghs_";
  for (let i = 0; i < 36; i++) t += TOKEN_ALPHABET[randomInt(TOKEN_ALPHABET.length)];
  return t;
}

/** RFC 3339 UTC without milliseconds, as GitHub writes timestamps. */
export const rfc3339 = (ms) => new Date(ms).toISOString().replace(/\.\d+Z$/, "Z");

/**
 * Normalizes `opts.app` for the emulator: `{ id, publicKeyPem, installations?, tokenTtlS? }`.
 * `installations` (plain object or Map, login → installation id) defaults to every owner of the
 * forge except the user `octocat`, numbered 1000 + the owner's index in the forge.
 */
export function appState(opts, forge) {
  if (!opts || opts.publicKeyPem == null) throw new Error("opts.app needs publicKeyPem (an SPKI 'BEGIN PUBLIC KEY' PEM)");
  const publicKey = createPublicKey(opts.publicKeyPem);
  if (publicKey.asymmetricKeyType !== "rsa") throw new Error("opts.app.publicKeyPem must be an RSA public key");
  const installations = new Map();
  if (opts.installations != null) {
    const entries = opts.installations instanceof Map ? opts.installations.entries() : Object.entries(opts.installations);
    for (const [login, id] of entries) installations.set(String(login).toLowerCase(), Number(id));
  } else {
    [...forge.owners.keys()].forEach((login, i) => {
      if (login !== "octocat") installations.set(login, 1000 + i);
    });
  }
  return {
    id: opts.id ?? DEFAULT_APP_ID,
    publicKey,
    installations,
    tokenTtlS: opts.tokenTtlS ?? 3600,
    permissions: { ...APP_PERMISSIONS },
    tokens: new Map(),
    rates: new Map(),
  };
}
