// What a person sees on a page, judged from the browser's boxes rather than from the DOM's text:
// no heading or paragraph squeezed narrower than a few words, and a screenshot of each page
// under .stack/screenshots/ for a person to look at after the run.
import fs from "node:fs";
import path from "node:path";
import { ROOT } from "./procs.mjs";

/** The narrowest a heading or paragraph of more than a couple of words may be: about three
 *  words of body text. The broken reference was one letter (≈ 20 px) wide. */
export const FEW_WORDS_PX = 150;

/** The page's visible headings and paragraphs of at least `minChars` characters, and those of
 *  them squeezed: narrower than `minWidth` pixels while their text, on one line in their own
 *  font, would need more (a short title that fits on one line is not squeezed). */
export async function textBoxes(page, { minWidth = FEW_WORDS_PX, minChars = 12 } = {}) {
  return page.evaluate(({ minWidth, minChars }) => {
    const measure = document.createElement("canvas").getContext("2d");
    const boxes = [...document.querySelectorAll("h1, h2, h3, h4, h5, h6, p")]
      .filter((e) => e.getClientRects().length > 0 && getComputedStyle(e).visibility !== "hidden")
      .map((e) => {
        const text = e.textContent.trim().replace(/\s+/g, " ");
        measure.font = getComputedStyle(e).font;
        return { tag: e.tagName.toLowerCase(), width: Math.round(e.getBoundingClientRect().width), oneLine: Math.round(measure.measureText(text).width), text: text.slice(0, 60) };
      })
      .filter((b) => b.text.length >= minChars);
    return { checked: boxes.length, squeezed: boxes.filter((b) => b.width < Math.min(minWidth, b.oneLine - 2)) };
  }, { minWidth, minChars });
}

/** Saves what the page shows as .stack/screenshots/<name>.png and returns the path. */
export async function screenshot(page, name, options = {}) {
  const dir = path.join(ROOT, ".stack", "screenshots");
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}.png`);
  await page.screenshot({ path: file, ...options });
  return file;
}
