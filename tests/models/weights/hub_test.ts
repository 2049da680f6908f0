import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  findInCache,
  hfCacheDir,
  manualWeightsPath,
  repoCacheFolder,
  resolveWeights,
  timmRepoId,
  WeightsNotFoundError,
} from "../../../lib/models/weights/hub.ts";
import { readSafetensors } from "../../../lib/models/weights/safetensors.ts";

const FIXTURE = new URL("../../fixtures/weights/tiny_model.safetensors", import.meta.url).pathname;
const BYTES = Deno.readFileSync(FIXTURE);
const SHA = createHash("sha256").update(BYTES).digest("hex");
const COMMIT = "0123456789abcdef0123456789abcdef01234567";

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "hub_test_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Every file (not folder) under `dir`, relative, sorted; empty when `dir` is absent. */
function listFiles(dir: string, prefix = ""): string[] {
  const out: string[] = [];
  try {
    for (const e of Deno.readDirSync(`${dir}/${prefix}`)) {
      const rel = prefix ? `${prefix}/${e.name}` : e.name;
      if (e.isDirectory) out.push(...listFiles(dir, rel));
      else out.push(rel);
    }
  } catch {
    // absent
  }
  return out.sort();
}

/** A loopback hub: `/timm/<tag>/resolve/main/model.safetensors` routes, with a request counter. */
function startHub(routes: Record<string, (req: Request) => Response>) {
  let requests = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    requests++;
    const path = new URL(req.url).pathname;
    const route = routes[path];
    return route ? route(req) : new Response("Entry not found", { status: 404 });
  });
  const addr = server.addr as Deno.NetAddr;
  return {
    endpoint: `http://127.0.0.1:${addr.port}`,
    requests: () => requests,
    close: () => server.shutdown(),
  };
}

/** A raw TCP server that announces `announced` bytes but sends only `body`, then closes the connection. */
/** With `stall`, the connection stays open (silent) until the server is closed. */
function startShortServer(body: Uint8Array, announced: number, stall = false) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const open: Deno.Conn[] = [];
  const done = (async () => {
    for await (const conn of listener) {
      const buf = new Uint8Array(4096);
      await conn.read(buf);
      const head =
        `HTTP/1.1 200 OK\r\nContent-Length: ${announced}\r\nContent-Type: application/octet-stream\r\n\r\n`;
      await conn.write(new TextEncoder().encode(head));
      await conn.write(body);
      if (stall) open.push(conn);
      else conn.close();
    }
  })();
  return {
    endpoint: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    close: async () => {
      listener.close();
      for (const c of open) c.close();
      await done.catch(() => {});
    },
  };
}

Deno.test("cache folder follows HF_HUB_CACHE, HF_HOME, XDG_CACHE_HOME, then ~/.cache", () => {
  assert.equal(hfCacheDir({ HF_HUB_CACHE: "/a", HF_HOME: "/b", HOME: "/h" }), "/a");
  assert.equal(hfCacheDir({ HF_HOME: "/b", HOME: "/h" }), "/b/hub");
  assert.equal(hfCacheDir({ XDG_CACHE_HOME: "/x", HOME: "/h" }), "/x/huggingface/hub");
  assert.equal(hfCacheDir({ HOME: "/h" }), "/h/.cache/huggingface/hub");
  assert.equal(
    repoCacheFolder("/c", timmRepoId("convnext_tiny.fb_in22k")),
    "/c/models--timm--convnext_tiny.fb_in22k",
  );
  assert.equal(
    manualWeightsPath("/c", "timm/efficientnet_b3.ra2_in1k"),
    "/c/models--timm--efficientnet_b3.ra2_in1k/snapshots/manual/model.safetensors",
  );
  assert.throws(() => timmRepoId("../etc"), /invalid timm model tag/);
  assert.throws(() => timmRepoId("a/b"), /invalid timm model tag/);
});

Deno.test("findInCache honours refs/main, falls back to any snapshot, ignores dangling links", async () => {
  await withTempDir(async (cache) => {
    const repo = `${cache}/models--timm--x.y`;
    assert.equal(await findInCache(cache, "timm/x.y"), null);
    await Deno.mkdir(`${repo}/snapshots/old`, { recursive: true });
    await Deno.mkdir(`${repo}/snapshots/new`, { recursive: true });
    await Deno.mkdir(`${repo}/refs`, { recursive: true });
    await Deno.writeFile(`${repo}/snapshots/old/model.safetensors`, BYTES);
    await Deno.writeFile(`${repo}/snapshots/new/model.safetensors`, BYTES);
    await Deno.utime(`${repo}/snapshots/old/model.safetensors`, 1000, 1000);
    // No ref: newest snapshot.
    assert.equal(await findInCache(cache, "timm/x.y"), `${repo}/snapshots/new/model.safetensors`);
    // The ref wins even when older.
    await Deno.writeTextFile(`${repo}/refs/main`, "old\n");
    assert.equal(await findInCache(cache, "timm/x.y"), `${repo}/snapshots/old/model.safetensors`);
    // A ref to a snapshot without the file: fall back to scanning.
    await Deno.writeTextFile(`${repo}/refs/main`, "gone");
    assert.equal(await findInCache(cache, "timm/x.y"), `${repo}/snapshots/new/model.safetensors`);
    // A dangling symlink (blob deleted) is not a file.
    await Deno.remove(`${repo}/snapshots/new/model.safetensors`);
    await Deno.remove(`${repo}/snapshots/old/model.safetensors`);
    await Deno.symlink("../../blobs/deadbeef", `${repo}/snapshots/new/model.safetensors`);
    assert.equal(await findInCache(cache, "timm/x.y"), null);
  });
});

Deno.test("resolveWeights: explicit path, then cache; offline says where to put the file and writes nothing", async () => {
  await withTempDir(async (cache) => {
    const r1 = await resolveWeights("x.y", { path: FIXTURE, cacheDir: cache });
    assert.deepEqual(r1, { path: FIXTURE, source: "path", repoId: "timm/x.y" });

    await assert.rejects(
      () => resolveWeights("x.y", { env: { HF_HUB_CACHE: cache, HF_HUB_OFFLINE: "1" } }),
      (e: unknown) => {
        assert.ok(e instanceof WeightsNotFoundError);
        assert.equal(e.offline, true);
        assert.match(
          e.message,
          /Pretrained weights for x\.y are not in the Hugging Face cache .* HF_HUB_OFFLINE is set/,
        );
        assert.ok(
          e.message.includes("https://huggingface.co/timm/x.y/resolve/main/model.safetensors"),
          e.message,
        );
        assert.ok(
          e.message.includes(`${cache}/models--timm--x.y/snapshots/manual/model.safetensors`),
          e.message,
        );
        return true;
      },
    );
    assert.deepEqual(listFiles(cache), []);

    // Putting the file exactly where the message says makes it resolve.
    const manual = manualWeightsPath(cache, "timm/x.y");
    await Deno.mkdir(manual.replace(/\/[^/]+$/, ""), { recursive: true });
    await Deno.copyFile(FIXTURE, manual);
    const r2 = await resolveWeights("x.y", { env: { HF_HUB_CACHE: cache, HF_HUB_OFFLINE: "1" } });
    assert.deepEqual(r2, { path: manual, source: "cache", repoId: "timm/x.y" });
  });
});

Deno.test("download: redirect to a CDN, caches blob + snapshot symlink + ref like huggingface_hub, then hits the cache", async () => {
  const hub = startHub({
    "/timm/good.model/resolve/main/model.safetensors": () =>
      new Response(null, {
        status: 302,
        headers: { location: "/cdn/blob?sig=1", "x-repo-commit": COMMIT, "x-linked-etag": `"${SHA}"` },
      }),
    "/cdn/blob": () => new Response(BYTES, { headers: { "content-length": String(BYTES.length) } }),
  });
  try {
    await withTempDir(async (cache) => {
      const seen: [number, number | null][] = [];
      const r = await resolveWeights("good.model", {
        cacheDir: cache,
        endpoint: hub.endpoint,
        progress: (d, t) => seen.push([d, t]),
      });
      const repo = `${cache}/models--timm--good.model`;
      assert.equal(r.source, "download");
      assert.equal(r.path, `${repo}/snapshots/${COMMIT}/model.safetensors`);
      assert.equal(await Deno.readLink(r.path), `../../blobs/${SHA}`);
      assert.equal((await Deno.readTextFile(`${repo}/refs/main`)).trim(), COMMIT);
      assert.deepEqual(listFiles(repo), [
        "blobs/" + SHA,
        "refs/main",
        `snapshots/${COMMIT}/model.safetensors`,
      ]);
      assert.deepEqual(await Deno.readFile(r.path), BYTES);
      assert.equal((await readSafetensors(r.path)).tensors.size, 10);
      assert.deepEqual(seen.at(-1), [BYTES.length, BYTES.length]);
      assert.equal(hub.requests(), 2);
      // Second time: from the cache, no request.
      const again = await resolveWeights("good.model", {
        cacheDir: cache,
        endpoint: hub.endpoint,
        progress: false,
      });
      assert.deepEqual(again, { ...r, source: "cache" });
      assert.equal(hub.requests(), 2);
    });
  } finally {
    await hub.close();
  }
});

Deno.test("download: HF_ENDPOINT from the environment; without commit headers the snapshot is named by sha256", async () => {
  const hub = startHub({
    "/timm/plain.model/resolve/main/model.safetensors": () => new Response(BYTES),
  });
  try {
    await withTempDir(async (cache) => {
      const r = await resolveWeights("plain.model", {
        env: { HF_HUB_CACHE: cache, HF_ENDPOINT: hub.endpoint },
        progress: false,
      });
      assert.equal(
        r.path,
        `${cache}/models--timm--plain.model/snapshots/${SHA.slice(0, 40)}/model.safetensors`,
      );
      assert.deepEqual(listFiles(`${cache}/models--timm--plain.model`), [
        `blobs/${SHA}`,
        `snapshots/${SHA.slice(0, 40)}/model.safetensors`,
      ]);
    });
  } finally {
    await hub.close();
  }
});

/** Asserts a WeightsNotFoundError matching `pattern` that names the manual path, and nothing left in the cache. */
async function failsCleanly(
  cache: string,
  run: () => Promise<unknown>,
  pattern: RegExp,
  tag: string,
  offline = false,
) {
  await assert.rejects(run, (e: unknown) => {
    assert.ok(e instanceof WeightsNotFoundError, `expected WeightsNotFoundError, got ${e}`);
    assert.equal(e.offline, offline, "offline flag");
    assert.match(e.message, pattern);
    assert.match(
      e.message,
      new RegExp(`Could not download pretrained weights for timm/${tag.replace(".", "\\.")}`),
    );
    assert.ok(e.message.includes(manualWeightsPath(cache, `timm/${tag}`)), e.message);
    return true;
  });
  assert.deepEqual(listFiles(cache), [], "nothing half-written");
}

Deno.test("download failures: 404, truncated body, invalid file, checksum mismatch leave nothing behind", async () => {
  const junk = new TextEncoder().encode("<html>not weights</html>");
  const hub = startHub({
    "/timm/junk.model/resolve/main/model.safetensors": () => new Response(junk),
    "/timm/badsum.model/resolve/main/model.safetensors": () =>
      new Response(BYTES, { headers: { "x-linked-etag": "a".repeat(64) } }),
  });
  const short = startShortServer(BYTES.slice(0, 1000), BYTES.length);
  try {
    await withTempDir(async (cache) => {
      const opts = { cacheDir: cache, endpoint: hub.endpoint, progress: false as const };
      await failsCleanly(
        cache,
        () => resolveWeights("missing.model", opts),
        /not found \(404\): check the model tag/,
        "missing.model",
      );
      await failsCleanly(
        cache,
        () => resolveWeights("junk.model", opts),
        /not valid safetensors/,
        "junk.model",
      );
      await failsCleanly(
        cache,
        () => resolveWeights("badsum.model", opts),
        /checksum mismatch: sha256 [0-9a-f]{64}, server announced a{64}/,
        "badsum.model",
      );
      await failsCleanly(
        cache,
        () => resolveWeights("short.model", { ...opts, endpoint: short.endpoint }),
        new RegExp(`connection lost after 1000 of ${BYTES.length} bytes .*Nothing was saved`),
        "short.model",
      );
    });
  } finally {
    await hub.close();
    await short.close();
  }
});

Deno.test("download: connection refused gives the offline message and writes nothing", async () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close(); // nothing listens here now
  await withTempDir(async (cache) => {
    await failsCleanly(
      cache,
      () =>
        resolveWeights("convnext_tiny.fb_in22k", { cacheDir: cache, endpoint: `http://127.0.0.1:${port}` }),
      new RegExp(
        `from http://127\\.0\\.0\\.1:${port}/timm/convnext_tiny\\.fb_in22k/resolve/main/model\\.safetensors: .*` +
          `The network seems unreachable \\(offline\\?\\)\\. Download .* by hand and put it at `,
      ),
      "convnext_tiny.fb_in22k",
      true,
    );
  });
});

Deno.test("download: a stalled connection is aborted after the idle timeout, leaving nothing", async () => {
  const stalled = startShortServer(BYTES.slice(0, 100), BYTES.length, true);
  try {
    await withTempDir(async (cache) => {
      const t0 = Date.now();
      await failsCleanly(
        cache,
        () =>
          resolveWeights("slow.model", {
            cacheDir: cache,
            endpoint: stalled.endpoint,
            progress: false,
            idleTimeoutMs: 300,
          }),
        /connection lost after 100 of \d+ bytes \(no data for 300 ms\)/,
        "slow.model",
      );
      assert.ok(Date.now() - t0 < 5000);
    });
  } finally {
    await stalled.close();
  }
});
