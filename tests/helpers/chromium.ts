/** Headless Chromium for the browser tests (Debian's `chromium`, driven by puppeteer-core). */
import puppeteer, { type Browser } from "puppeteer-core";

/**
 * Launches headless Chromium at `executablePath` with a fresh profile in `profile`, no sandbox, GPU or
 * background traffic, and `args` added (e.g. a fake camera).
 */
export function launchChromium(
  executablePath: string,
  profile: string,
  args: string[] = [],
): Promise<Browser> {
  return puppeteer.launch({
    executablePath,
    headless: true,
    userDataDir: profile,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      ...args,
    ],
  });
}
