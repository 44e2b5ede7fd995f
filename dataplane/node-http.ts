/**
 * node:http's values, taken without its ES module namespace.
 *
 * `import … from 'node:http'` makes Node build the module's namespace, which
 * reads every export, and node:http's `WebSocket`, `CloseEvent` and
 * `MessageEvent` exports are getters that load Node's bundled undici with
 * what it needs (web streams, worker_threads, …): ~75 more built-in modules
 * and ~13 MiB more RSS in every dataplane process, which uses none of them
 * (docs/benchmarks.md, What limits, item 19). `process.getBuiltinModule`
 * returns the CommonJS exports without touching those getters. Type-only
 * imports from 'node:http' are erased at compile time and can stay.
 */
const http = process.getBuiltinModule('node:http');

export const { STATUS_CODES, createServer, request, maxHeaderSize } = http;
