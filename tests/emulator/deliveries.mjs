// A delivery sender for `LIVE=1 npm run dev`: every few seconds it changes one repository of an
// owner on the emulator (its CI state turns, as a CI run would) and sends the worker the signed
// `check_suite` delivery GitHub would, so a newcomer can watch a listing stay live: the dashboard's
// "updated … ago" moves while "built … ago" does not, and no listing page is asked again.
import { createHmac, randomUUID } from "node:crypto";
import { forgeIds } from "./hooks.mjs";

const STATES = ["SUCCESS", "FAILURE", "PENDING", "SUCCESS", "ERROR"];

/**
 * Starts sending. Either `emit` (the emulator's `hooks.emit`: the event goes to every hook it
 * concerns, with GitHub's headers, and each attempt is recorded in the hook's deliveries), or `url`
 * (the worker's webhook route) and `secret` (its GITHUB_WEBHOOK_SECRET) to POST it there directly,
 * outside any hook. `forge` is the emulator's data. Returns a function that stops it.
 */
export function sendDeliveries({ forge, url, secret, emit, owner = "octo-org", everyMs = 5000, log = console.log }) {
  let n = 0;
  const ids = emit ? forgeIds(forge) : null;
  const tick = async () => {
    const o = forge.owners.get(owner.toLowerCase());
    const withCi = o?.repos.filter((r) => r.defaultBranchRef) ?? [];
    if (withCi.length === 0) return;
    const repo = withCi[(n * 37) % withCi.length];
    const state = STATES[n % STATES.length];
    n++;
    repo.defaultBranchRef.target.statusCheckRollup = { state };
    const branch = repo.defaultBranchRef.name;
    const payload = {
      action: "completed",
      // Ids and times make every delivery's body unique, as GitHub's are: the worker takes a
      // body it has already applied for a replay.
      check_suite: { id: randomUUID(), head_branch: branch, conclusion: state.toLowerCase(), updated_at: new Date().toISOString() },
      repository: { full_name: `${o.login}/${repo.name}`, default_branch: branch },
    };
    if (emit) {
      // Through the emulator's hooks: the ids GitHub's payloads carry, so the hook's deliveries
      // list names the repository (and, for the App's hook, the installation).
      Object.assign(payload.repository, {
        id: ids.repoId(repo), name: repo.name, private: repo.isPrivate,
        owner: { login: o.login, id: ids.ownerId(o.login), type: o.__typename },
      });
      if (o.__typename === "Organization") payload.organization = { login: o.login, id: ids.ownerId(o.login) };
      try {
        const { deliveries } = await emit({ event: "check_suite", payload });
        if (deliveries.length === 0) log(`delivery: ${o.login}/${repo.name} CI ${state.toLowerCase()}: no hook concerns ${o.login}`);
        for (const d of deliveries) {
          log(`delivery: ${o.login}/${repo.name} CI ${state.toLowerCase()} → hook ${d.hook_id}: ${d.status_code || d.status} (delivery ${d.id})`);
        }
      } catch (e) {
        log(`delivery: could not send (${e.message})`);
      }
      return;
    }
    const body = JSON.stringify(payload);
    const signature = "sha256=" + createHmac("sha256", secret).update(body).digest("hex");
    try {
      const res = await fetch(url, {
        method: "POST",
        body,
        headers: { "Content-Type": "application/json", "X-GitHub-Event": "check_suite", "X-GitHub-Delivery": randomUUID(), "X-Hub-Signature-256": signature },
      });
      log(`delivery: ${o.login}/${repo.name} CI ${state.toLowerCase()} → ${res.status}`);
    } catch (e) {
      log(`delivery: the worker at ${url} is not answering yet (${e.cause?.code ?? e.message})`);
    }
  };
  const timer = setInterval(tick, everyMs);
  return () => clearInterval(timer);
}
