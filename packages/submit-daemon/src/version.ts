/** mailsubmitd's version, from its package.json (bundled in at build time), for status replies and logs. */
import packageJson from '../package.json' with { type: 'json' };

export const VERSION: string = packageJson.version;
