/**
 * The demo server behind `deno task serve`: bundles web/app.ts for the browser (`deno bundle`, from the npm
 * packages already installed: no CDN, works offline) and serves the page, the exported model and BlazeFace's
 * model files from @vladmandic/human's package, on localhost.
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { NODE_MODULES } from "../faces/files.ts";
import { serveFile } from "./static.ts";

const WEB = fileURLToPath(new URL("../../web/", import.meta.url));

/** Bundles web/app.ts into `outDir/app.js` (throws with deno's message on failure). */
export async function bundleApp(outDir: string): Promise<string> {
  const out = join(outDir, "app.js");
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["bundle", "--quiet", "--platform", "browser", "--format", "esm", "-o", out, join(WEB, "app.ts")],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!r.success) throw new Error(`deno bundle web/app.ts failed:\n${new TextDecoder().decode(r.stderr)}`);
  return out;
}

/** Options of {@link startServer}. */
export interface ServeOptions {
  /** Folder of an exported model (model.json + shards; lib/models/export.ts). */
  modelDir: string;
  hostname?: string;
  /** 0 picks a free port. */
  port?: number;
}

/** A running demo server. */
export interface DemoServer {
  url: string;
  shutdown(): Promise<void>;
}

/** Bundles the app and serves the demo; resolves once it listens. */
export async function startServer(o: ServeOptions): Promise<DemoServer> {
  const build = await Deno.makeTempDir({ prefix: "fer-web-" });
  await bundleApp(build);
  const detectorDir = join(NODE_MODULES, "@vladmandic", "human", "models");
  const hostname = o.hostname ?? "127.0.0.1";
  const server = Deno.serve({ hostname, port: o.port ?? 8080, onListen: () => {} }, (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/" || path === "/index.html") return serveFile("index.html", WEB);
    if (path === "/app.js") return serveFile("app.js", build);
    if (path === "/favicon.ico") return Promise.resolve(new Response(null, { status: 204 }));
    if (path.startsWith("/model/")) return serveFile(path.slice("/model/".length), o.modelDir);
    if (/^\/detector\/blazeface\.(json|bin)$/.test(path)) {
      return serveFile(path.slice("/detector/".length), detectorDir);
    }
    return Promise.resolve(new Response("not found", { status: 404 }));
  });
  return {
    url: `http://${hostname}:${server.addr.port}/`,
    shutdown: async () => {
      await server.shutdown();
      await Deno.remove(build, { recursive: true }).catch(() => {});
    },
  };
}
