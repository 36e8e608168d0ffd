// Headless Chromium (the Debian package) driven by playwright-core: no browser download. Every
// request the page makes is recorded, so a test can check that nothing leaves 127.0.0.1.
import { after, before } from "node:test";
import { chromium } from "playwright-core";
import { client, getStack, releaseStack } from "./stack-client.mjs";

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

/**
 * A browser page beside the lane's stack for a whole test file: `set({ stack, c, b })` is called
 * before the first test (a 1280×900 viewport, what the layout checks judge); the browser is closed
 * and the stack released after the last.
 */
export function useBrowserPage(set, { width = 1280, height = 900 } = {}) {
  let b;
  before(async () => {
    const stack = await getStack();
    b = await openBrowser();
    await b.page.setViewportSize({ width, height });
    set({ stack, c: client(stack), b });
  });
  after(async () => {
    await b?.close();
    await releaseStack();
  });
}
