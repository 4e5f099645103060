// Regenerates the webhook payload fixtures in this folder from @octokit/webhooks-examples (real
// payloads GitHub documents). The package has no repository deleted/archived/unarchived examples;
// those are derived from the `publicized` one, where only `action` differs.
// Run: node tests/data/webhooks/update.mjs
import { writeFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const examples = require("@octokit/webhooks-examples/api.github.com/index.json");
const by = Object.fromEntries(examples.map((e) => [e.name, e.examples]));
const out = new URL(".", import.meta.url);
const write = (name, payload) => writeFileSync(new URL(`${name}.json`, out), JSON.stringify(payload, null, 2) + "\n");

const firstWith = (list, pred) => {
  const found = list.find(pred);
  if (!found) throw new Error("example missing");
  return found;
};
for (const action of ["created", "edited", "privatized", "publicized", "renamed", "transferred"]) {
  write(`repository.${action}`, firstWith(by.repository, (e) => e.action === action));
}
const base = firstWith(by.repository, (e) => e.action === "publicized");
for (const action of ["deleted", "archived", "unarchived"]) write(`repository.${action}`, { ...base, action });
write("public", by.public[0]);
write("push.default-branch", firstWith(by.push, (e) => e.ref === `refs/heads/${e.repository.default_branch}`));
write("push.tag", firstWith(by.push, (e) => e.ref.startsWith("refs/tags/")));
write("status.default-branch", firstWith(by.status, (e) => e.branches.some((b) => b.name === e.repository.default_branch)));
write("check_suite.completed-default", firstWith(by.check_suite, (e) => e.action === "completed" && e.check_suite.head_branch === e.repository.default_branch));
write("check_suite.completed-other", firstWith(by.check_suite, (e) => e.action === "completed" && e.check_suite.head_branch !== e.repository.default_branch));
write("check_suite.requested", firstWith(by.check_suite, (e) => e.action === "requested"));
write("workflow_run.completed-default", firstWith(by.workflow_run, (e) => e.action === "completed" && e.workflow_run.head_branch === e.repository.default_branch));
write("workflow_run.requested", firstWith(by.workflow_run, (e) => e.action === "requested"));
write("ping", by.ping[0]);
console.log("webhook fixtures written");
