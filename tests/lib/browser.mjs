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
  // `wrangler dev`'s static-asset server now and then holds a request for 30 s (seen once in
  // ~120 stack logs: two of /portal/'s scripts answered after 30,392 ms; the worker is not on
  // that path). A navigation that does not load within 15 s is made once more, and says so.
  const goto = page.goto.bind(page);
  page.goto = async (url, options = {}) => {
    try {
      return await goto(url, { timeout: 15_000, ...options });
    } catch (e) {
      if (e?.name !== "TimeoutError") throw e;
      console.log(`# ${url} did not load within 15 s (the local asset server): loaded again`);
      return goto(url, options);
    }
  };
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
