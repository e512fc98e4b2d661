#!/usr/bin/env node
// Entry point: runs the compiled CLI (built by `npm run build`, which `npm ci` runs via `prepare`).
import('../dist/src/cli/main.js').then((m) => m.main(process.argv.slice(2))).catch((err) => {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND') {
    process.stderr.write('ota-sim: not built yet; run `npm run build` (npm ci does it)\n');
    process.exit(3);
  }
  throw err;
});
