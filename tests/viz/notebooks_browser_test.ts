/// <reference lib="dom" />
/**
 * Opens every committed notebook the way a new user does — a real Jupyter Notebook server (Debian's
 * `jupyter-notebook`, classic Notebook 6) on a loopback port with a fresh config, so every notebook is
 * "Not Trusted" — in headless Chromium driven by puppeteer-core, and checks that every chart stored in the
 * notebook is visible on the page: one rendered PNG `<img>` per stored chart, decoded and with a nonzero size.
 *
 * Needs `chromium` and `jupyter-notebook` (Debian packages; `.ci/run` installs both). Where either is missing
 * the test is skipped with a message — except under FER_REQUIRE_BROWSER=1 (set by CI once both installed),
 * where that is a failure; where Chromium is installed but cannot start, it is skipped with the reason. FER_SCREENSHOT_DIR=<dir> saves a full-page screenshot per notebook (to look at,
 * not to commit).
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Browser } from "puppeteer-core";
import { launchChromium } from "../helpers/chromium.ts";
import { PROJECT_ROOT } from "../../lib/data/dataset.ts";
import { type NotebookJson, storedCharts } from "../../lib/viz/notebook_check.ts";

const REQUIRED = Deno.env.get("FER_REQUIRE_BROWSER") === "1";
/** The notebooks to open: the committed ones, or FER_NOTEBOOKS_DIR (e.g. the executed copies of `--smoke`). */
const NOTEBOOKS = Deno.env.get("FER_NOTEBOOKS_DIR") ?? join(PROJECT_ROOT, "notebooks");

/** The first existing executable among the usual names, or undefined. */
function findExecutable(names: string[]): string | undefined {
  const dirs = (Deno.env.get("PATH") ?? "/usr/bin:/bin").split(":");
  for (const n of names) {
    if (n.startsWith("/") && existsSync(n)) return n;
    for (const d of dirs) if (existsSync(join(d, n))) return join(d, n);
  }
  return undefined;
}

const chromium = Deno.env.get("CHROMIUM") ??
  findExecutable(["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"]);
const notebookServer = findExecutable(["jupyter-notebook"]);
const missing = [
  ...(chromium ? [] : ["Chromium (apt install chromium)"]),
  ...(notebookServer ? [] : ["jupyter-notebook (apt install jupyter-notebook)"]),
];
if (missing.length && !REQUIRED) {
  console.warn(`notebooks_browser_test: skipped, ${missing.join(" and ")} not installed`);
}

/** A free loopback port (bound then released). */
function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Starts a classic Notebook server on a loopback port with temp config/data/runtime dirs (nothing trusted). */
async function startServer(root: string): Promise<{ url: string; token: string; stop: () => Promise<void> }> {
  const dirs = Object.fromEntries(
    ["config", "data", "runtime", "ipython"].map((d) => [d, join(root, d)]),
  );
  for (const d of Object.values(dirs)) Deno.mkdirSync(d, { recursive: true });
  const port = freePort();
  const token = crypto.randomUUID().replaceAll("-", "");
  const proc = new Deno.Command(notebookServer!, {
    args: [
      "--no-browser",
      "--ip=127.0.0.1",
      `--port=${port}`,
      "--port-retries=0",
      `--NotebookApp.token=${token}`,
      `--NotebookApp.notebook_dir=${join(root, "notebooks")}`,
      // No kernel may start: the test looks at stored outputs only (a kernel per notebook would only cost time).
      "--KernelSpecManager.allowed_kernelspecs=none",
      ...(Deno.uid() === 0 ? ["--allow-root"] : []), // CI containers run as root
    ],
    env: {
      JUPYTER_CONFIG_DIR: dirs.config,
      JUPYTER_DATA_DIR: dirs.data, // the trust database lives here: fresh, so every notebook is untrusted
      JUPYTER_RUNTIME_DIR: dirs.runtime,
      IPYTHONDIR: dirs.ipython,
    },
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const errText = proc.stderr.pipeThrough(new TextDecoderStream());
  let log = "";
  const drained = (async () => {
    for await (const chunk of errText) log += chunk;
  })();
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    try {
      proc.kill("SIGTERM");
    } catch {
      // already gone
    }
    await proc.status;
    await drained;
  };
  let exited = false;
  proc.status.then(() => exited = true);
  for (let i = 0; i < 150 && !exited; i++) {
    try {
      const res = await fetch(`${url}/api/status?token=${token}`);
      await res.body?.cancel();
      if (res.ok) return { url, token, stop };
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  await stop();
  throw new Error(
    `jupyter-notebook did not start on ${url}${exited ? " (it exited)" : " within 30 s"}:\n${
      log.slice(-2000)
    }`,
  );
}

/** What the page shows of a notebook's outputs. */
interface PageOutputs {
  trusted: string;
  cells: number;
  pngs: { loaded: boolean; naturalWidth: number; width: number; height: number }[];
}

Deno.test({
  name: "notebooks: every stored chart is visible when the notebook is opened fresh (untrusted) in Jupyter",
  ignore: missing.length > 0 && !REQUIRED,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    assert.deepEqual(missing, [], `FER_REQUIRE_BROWSER=1 but missing: ${missing.join(", ")}`);
    const root = await Deno.makeTempDir({ prefix: "fer-nb-browser-" });
    const names = readdirSync(NOTEBOOKS).filter((f) => f.endsWith(".ipynb")).sort();
    assert.ok(names.length >= 5, `notebooks found: ${names.join(", ")}`);
    Deno.mkdirSync(join(root, "notebooks"));
    for (const n of names) Deno.copyFileSync(join(NOTEBOOKS, n), join(root, "notebooks", n));
    const server = await startServer(root);
    let browser: Browser | undefined;
    try {
      try {
        browser = await launchChromium(chromium!, join(root, "chromium")); // the test is ignored without it
      } catch (e) {
        console.warn(`notebooks_browser_test: skipped, Chromium could not start: ${(e as Error).message}`);
        return;
      }
      const shots = Deno.env.get("FER_SCREENSHOT_DIR");
      let total = 0;
      for (const name of names) {
        const nb = JSON.parse(readFileSync(join(NOTEBOOKS, name), "utf8")) as NotebookJson;
        const stored = storedCharts(nb);
        const svgs = nb.cells.flatMap((c) => c.outputs ?? []).filter((o) =>
          o.data && "image/svg+xml" in o.data
        );
        assert.equal(svgs.length, stored, `${name}: every stored chart has a PNG beside its SVG`);
        const page = await browser.newPage();
        await page.setViewport({ width: 1200, height: 900 });
        await page.goto(`${server.url}/notebooks/${encodeURIComponent(name)}?token=${server.token}`, {
          waitUntil: "load",
        });
        await page.waitForSelector("#notebook-container .cell", { timeout: 30_000 });
        // Outputs are rendered once the notebook JSON is loaded; then wait for the images to decode.
        await page.waitForFunction(
          (n: number) => {
            const imgs = [...document.querySelectorAll(".output_png img")] as HTMLImageElement[];
            return imgs.length >= n && imgs.every((i) => i.complete);
          },
          { timeout: 30_000 },
          stored,
        );
        const seen = await page.evaluate((): PageOutputs => {
          const imgs = [...document.querySelectorAll(".output_png img")] as HTMLImageElement[];
          return {
            trusted: document.querySelector("#notification_trusted")?.textContent ?? "",
            cells: document.querySelectorAll("#notebook-container .cell").length,
            pngs: imgs.map((i) => {
              const r = i.getBoundingClientRect();
              return { loaded: i.complete, naturalWidth: i.naturalWidth, width: r.width, height: r.height };
            }),
          };
        });
        if (shots) {
          Deno.mkdirSync(shots, { recursive: true });
          // The notebook scrolls inside #site: make the window as tall as the notebook to capture all of it.
          const height = await page.evaluate(() => document.querySelector("#notebook")?.scrollHeight ?? 900);
          await page.setViewport({ width: 1200, height: Math.min(20000, height + 200) });
          await page.screenshot({
            path: join(shots, `${name.replace(".ipynb", "")}.png`) as `${string}.png`,
            fullPage: true,
          });
        }
        await page.close();
        assert.equal(seen.cells, nb.cells.length, `${name}: cells on the page`);
        assert.match(seen.trusted, /Not Trusted/, `${name}: opened as a fresh clone (untrusted)`);
        assert.equal(seen.pngs.length, stored, `${name}: ${stored} charts stored, ${seen.pngs.length} shown`);
        for (const [k, p] of seen.pngs.entries()) {
          assert.ok(p.loaded && p.naturalWidth > 0, `${name}: chart ${k + 1} did not decode`);
          assert.ok(p.width > 100 && p.height > 50, `${name}: chart ${k + 1} is ${p.width}×${p.height} px`);
        }
        total += stored;
      }
      assert.ok(total > 0, "the committed notebooks store at least one chart");
    } finally {
      await browser?.close();
      await server.stop();
      await Deno.remove(root, { recursive: true }).catch(() => {});
    }
  },
});
