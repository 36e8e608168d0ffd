// Headless Chromium (the Debian package) driven by playwright-core: no browser download. Every
// request the page makes is recorded, so a test can check that nothing leaves 127.0.0.1.
import { chromium } from "playwright-core";

export async function openBrowser() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
    // As root in a sandboxless container, and with no network beyond the loopback.
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const context = await browser.newContext();
  const requests = [];
  context.on("request", (r) => requests.push(r.url()));
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  return { browser, context, page, requests, errors, close: () => browser.close() };
}
