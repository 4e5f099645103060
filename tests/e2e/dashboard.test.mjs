// The dashboard in a real browser (Debian's Chromium driven by playwright-core) against the
// worker and the emulator: table contents match the fixtures, filters work, errors are clear.
// Saves docs/dashboard.png (desktop) and docs/dashboard-phone.png.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { startWorker, fixtureRepos } from "./harness.mjs";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const docs = fileURLToPath(new URL("../../docs/", import.meta.url));
const skip = existsSync(CHROMIUM) ? false : `Chromium not found at ${CHROMIUM}; install Debian's chromium`;
if (skip) console.error(`\n!!! SKIPPING THE BROWSER TEST: ${skip} !!!\n`);

let w;
let browser;
before(async () => {
  if (skip) return;
  w = await startWorker({ PINNED_ORGS: "Small-Org" }, {}, { port: 0, host: "127.0.0.1" });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
});
after(async () => {
  await browser?.close();
  await w?.close();
});

const rowNames = (page) => page.$$eval("#rows tr[data-repo]", (rows) => rows.map((r) => r.dataset.repo));

test("the dashboard opens on the pinned owner and shows its public repositories", { skip }, async () => {
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  await page.goto(w.url.href);
  await page.waitForSelector("#rows tr[data-repo]");
  const expected = fixtureRepos(w.emu, "small-org").filter((r) => r.visibility === "PUBLIC");
  assert.deepEqual(await rowNames(page), expected.map((r) => r.name));
  const hello = page.locator('#rows tr[data-repo="Hello-World"]');
  assert.match(await hello.innerText(), /public/);
  assert.match(await hello.innerText(), /success/);
  assert.match(await page.locator("#meta").innerText(), /Small-Org: \d+ repositories · cache (MISS|HIT)/);
  assert.equal(await page.locator('#rows tr[data-repo="secret-plans"]').count(), 0, "private repositories stay hidden");

  await page.fill("#q", "tool-000");
  assert.deepEqual(await rowNames(page), expected.filter((r) => r.name.toLowerCase().includes("tool-000")).map((r) => r.name));
  await page.fill("#q", "");
  await page.click('button[data-state="archived"]');
  assert.deepEqual(await rowNames(page), expected.filter((r) => r.isArchived).map((r) => r.name));
  const chip = await page.locator('button[data-state="archived"]').innerText();
  assert.equal(chip, `archived ${expected.filter((r) => r.isArchived).length}`);
  await page.click('button[data-state="all"]');
  await page.screenshot({ path: `${docs}dashboard.png`, fullPage: false });
  await page.close();
});

test("it explains API errors and works on a phone-sized screen", { skip }, async () => {
  const page = await browser.newPage({ viewport: { width: 390, height: 844 }, isMobile: true });
  await page.goto(w.url.href);
  await page.waitForSelector("#rows tr[data-repo]");
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 390, `no horizontal scrolling (${width}px)`);
  await page.screenshot({ path: `${docs}dashboard-phone.png` });
  await page.fill("input[name=owner]", "no-such-owner");
  await page.click("#load button");
  await page.waitForSelector("#error:not([hidden])");
  assert.match(await page.locator("#error").innerText(), /no such repository or owner \(not_found, HTTP 404\)/);
  await page.fill("input[name=owner]", "octo-org");
  await page.fill("input[name=token]", "not-a-token");
  await page.click("#load button");
  await page.waitForFunction(() => /unauthorized/.test(document.querySelector("#error").textContent));
  assert.ok(!page.url().includes("not-a-token"), "the token never goes into the URL");
  await page.close();
});
