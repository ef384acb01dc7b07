// Serves one worker on bare workerd through Miniflare's API: no wrangler dev, so no dev proxy
// in front of the worker. The latency bench starts it with the pinned Node 22 (BENCHMARKS.md):
//
//   node benches/serve.mjs <wrangler.toml> <persist dir> <bindings.json>
//
// The worker is what <wrangler.toml> describes, read by wrangler's own config reader: `main` as an
// ES module plus every .wasm file beside it as a CompiledWasm module, `[vars]`, SQLite Durable
// Object bindings and the compatibility date. <bindings.json> ({"NAME": "value", ...}) holds the
// test secrets and var overrides, as `wrangler dev --var`/`--env-file` would pass them. Durable
// Object state is persisted under <persist dir>. Listens on 127.0.0.1 on a free port and prints
// `ready on http://127.0.0.1:PORT` once it answers; stops on SIGINT/SIGTERM.

import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { Log, LogLevel, Miniflare, convertV4MiniflareOptions } from "miniflare";
import { unstable_readConfig } from "wrangler";

const [configPath, persistDir, bindingsPath] = process.argv.slice(2);
if (!bindingsPath) {
  console.error("usage: serve.mjs <wrangler.toml> <persist dir> <bindings.json>");
  process.exit(2);
}

const config = unstable_readConfig({ config: configPath });
// Only what our workers use is translated; anything else must not be silently dropped.
for (const kind of ["kv_namespaces", "r2_buckets", "d1_databases", "services", "queues.producers"]) {
  const list = kind.split(".").reduce((value, key) => value?.[key], config);
  if (list?.length) throw new Error(`serve.mjs does not handle ${kind} bindings yet`);
}
const sqliteClasses = new Set(config.migrations.flatMap((m) => m.new_sqlite_classes ?? []));
const durableObjects = Object.fromEntries(
  config.durable_objects.bindings.map((b) => {
    if (!sqliteClasses.has(b.class_name)) throw new Error(`${b.class_name}: only SQLite Durable Objects`);
    return [b.name, { className: b.class_name, useSQLite: true }];
  }),
);
const mainDir = dirname(config.main);
const modules = [
  { type: "ESModule", path: config.main },
  ...readdirSync(mainDir)
    .filter((file) => file.endsWith(".wasm"))
    .map((file) => ({ type: "CompiledWasm", path: join(mainDir, file) })),
];
const bindings = { ...config.vars, ...JSON.parse(readFileSync(bindingsPath, "utf8")) };
const readMs = performance.now();

const startStarted = performance.now();
const miniflare = new Miniflare(
  convertV4MiniflareOptions({
    host: "127.0.0.1",
    port: 0,
    // The default placeholder `request.cf`, without fetching a real one from Cloudflare.
    cf: false,
    log: new Log(LogLevel.WARN),
    resourcePersistencePath: persistDir,
    workers: [
      {
        name: config.name,
        compatibilityDate: config.compatibility_date,
        compatibilityFlags: config.compatibility_flags,
        modulesRoot: mainDir,
        modules,
        bindings,
        durableObjects,
      },
    ],
  }),
);
const url = await miniflare.ready;
const startMs = performance.now() - startStarted;
// performance.now() counts from the start of this node process.
console.log(
  `ready on ${url.origin} (node start → config read ${readMs.toFixed(0)} ms, ` +
    `Miniflare start ${startMs.toFixed(0)} ms)`,
);

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await miniflare.dispose();
  process.exit(0);
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
