/**
 * A minimal static file responder for the demo server and tests: serves files under a root folder with their
 * content type, refuses paths that leave the root. (Deno's std file server is on JSR, which this project does not
 * use; these 30 lines are all the demo needs.)
 */
import { extname, join, normalize, sep } from "node:path";

/** Content types of the files the demo serves. */
export const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".bin": "application/octet-stream",
  ".wasm": "application/wasm",
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".svg": "image/svg+xml",
};

/** The response for `urlPath` (e.g. "/model.json") from folder `root`: the file, or 404. */
export async function serveFile(urlPath: string, root: string): Promise<Response> {
  const rel = normalize(decodeURIComponent(urlPath)).replace(/^([/\\\\])+/, "");
  const path = join(root, rel);
  if (rel.startsWith("..") || !(path + sep).startsWith(normalize(root + sep))) {
    return new Response("forbidden", { status: 403 });
  }
  try {
    const stat = await Deno.stat(path);
    if (!stat.isFile) return new Response("not found", { status: 404 });
    const type = CONTENT_TYPES[extname(path).toLowerCase()] ?? "application/octet-stream";
    return new Response(await Deno.readFile(path), {
      headers: { "content-type": type, "cache-control": "no-cache" },
    });
  } catch {
    return new Response("not found", { status: 404 });
  }
}

/** {@link serveFile} for a request's URL path. */
export function serveDir(req: Request, root: string): Promise<Response> {
  return serveFile(new URL(req.url).pathname, root);
}
