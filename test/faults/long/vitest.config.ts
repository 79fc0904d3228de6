/**
 * The configuration `npm run test:faults` runs: the project's own, with the
 * long fault campaigns (which the default run leaves out) as the only files.
 */
import { join } from 'node:path';
import { defineConfig } from 'vitest/config';
import base from '../../../vitest.config.ts';

export default defineConfig({
  ...base,
  root: join(import.meta.dirname, '..', '..', '..'),
  test: {
    ...base.test,
    include: ['test/faults/long/**/*.test.ts'],
    exclude: ['**/node_modules/**'],
  },
});
