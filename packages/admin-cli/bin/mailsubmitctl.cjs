#!/usr/bin/env node
// Launcher: the command is bundled by `npm run build` into dist/.
'use strict';
try {
  require('../dist/mailsubmitctl.cjs');
} catch (err) {
  if (err && err.code === 'MODULE_NOT_FOUND' && /mailsubmitctl\.cjs/.test(String(err.message))) {
    process.stderr.write('mailsubmitctl: not built yet: run `npm run build` in the source tree\n');
    process.exit(78);
  }
  throw err;
}
