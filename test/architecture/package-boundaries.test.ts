/**
 * Every TypeScript and JavaScript file in the repository keeps to the
 * package boundaries (package-boundaries.ts says which), and every
 * package's exports point at files that exist.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { boundaryProblems, importsOf, type Manifest, type Repository, type SourceFile } from './package-boundaries.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SOURCE = /\.(ts|mts|cts|js|mjs|cjs)$/;
/** Build products and installed packages: not written here. */
const NOT_SOURCE = new Set(['node_modules', 'dist', 'build', 'coverage']);

function manifest(dir: string): Manifest {
  return { ...(JSON.parse(readFileSync(join(ROOT, dir, 'package.json'), 'utf8')) as Manifest), dir };
}

function repository(): Repository {
  const packages = readdirSync(join(ROOT, 'packages'))
    .filter((name) => existsSync(join(ROOT, 'packages', name, 'package.json')))
    .map((name) => manifest(`packages/${name}`));
  return { root: manifest(''), packages };
}

function sourceFile(path: string): SourceFile {
  return { path, text: readFileSync(join(ROOT, path), 'utf8') };
}

function sourceFiles(dir: string): SourceFile[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((entry) => {
    const path = `${dir}/${entry.name}`;
    if (entry.name.startsWith('.') || NOT_SOURCE.has(entry.name)) return [];
    if (entry.isDirectory()) return sourceFiles(path);
    return SOURCE.test(entry.name) ? [sourceFile(path)] : [];
  });
}

/** The repository's code: the packages, tests, benches, fuzzer and scripts, and the files at the top (vitest.config.ts). */
function repositoryFiles(): SourceFile[] {
  const topLevel = readdirSync(ROOT, { withFileTypes: true }).filter((entry) => entry.isFile() && SOURCE.test(entry.name));
  return [...['packages', 'test', 'bench', 'fuzz', 'scripts'].flatMap(sourceFiles), ...topLevel.map((entry) => sourceFile(entry.name))];
}

const PACKAGES: Repository = {
  root: { dir: '', name: 'mailsubmit', devDependencies: { vitest: '^4' }, workspaces: ['packages/shared', 'packages/submit-daemon'] },
  packages: [
    { dir: 'packages/shared', name: '@mailsubmit/shared', version: '0.1.0', exports: { '.': './src/index.ts' } },
    {
      dir: 'packages/submit-daemon',
      name: '@mailsubmit/submit-daemon',
      version: '0.1.0',
      exports: { './admin': './src/admin-surface.ts' },
      dependencies: { '@mailsubmit/shared': '0.1.0', pino: '^10' },
    },
  ],
};

/** The problems the rules find in one made-up file. */
function problemsOf(path: string, text: string, repository: Repository = PACKAGES): string[] {
  return boundaryProblems(repository, [{ path, text }]);
}

describe('package boundaries', () => {
  it('hold in every file of the repository', () => {
    const files = repositoryFiles();
    expect(files.map((file) => file.path)).toEqual(expect.arrayContaining(['vitest.config.ts', 'scripts/build.mjs', 'packages/admin-cli/src/main.ts']));
    expect(boundaryProblems(repository(), files)).toEqual([]);
  });

  it('every export of every package names a file that exists', () => {
    const targets = repository().packages.flatMap(({ dir, exports }) =>
      (typeof exports === 'string' ? [exports] : Object.values(exports ?? {})).map((target) => join(dir, target)),
    );
    expect(targets.length).toBeGreaterThan(3);
    expect(targets.filter((target) => !existsSync(join(ROOT, target)))).toEqual([]);
  });

  describe('the rules find', () => {
    it('a relative path into another package\'s src/, from a package or from the repository\'s tests', () => {
      expect(problemsOf('packages/submit-daemon/src/a.ts', "import { x } from '../../shared/src/errors.ts';")).toEqual([
        "packages/submit-daemon/src/a.ts: '../../shared/src/errors.ts': reaches into @mailsubmit/shared's src/ by path: import it as '@mailsubmit/shared' (or a subpath it exports)",
      ]);
      expect(problemsOf('test/e2e/a.test.ts', "export { x } from '../../packages/submit-daemon/src/config/load-config.ts';")).toHaveLength(1);
      expect(problemsOf('test/e2e/a.test.ts', "const m = await import('../../packages/shared/src/limits.ts');")).toHaveLength(1);
    });

    it("a package's src/ reaching out of its package", () => {
      expect(problemsOf('packages/shared/src/a.ts', "import { x } from '../../../test/support/private-postfix.ts';")).toHaveLength(1);
    });

    it('a subpath a package does not export', () => {
      expect(problemsOf('packages/submit-daemon/src/a.ts', "import { x } from '@mailsubmit/shared/src/errors.ts';")[0]).toMatch(/does not export '\.\/src\/errors\.ts'/);
      expect(problemsOf('test/a.test.ts', "import { x } from '@mailsubmit/submit-daemon';")[0]).toMatch(/does not export '\.'/);
    });

    it('a package, workspace or third-party, that the importer does not declare', () => {
      expect(problemsOf('packages/shared/src/a.ts', "import pino from 'pino';")[0]).toMatch(/pino is not declared in packages\/shared\/package\.json "dependencies"/);
      expect(problemsOf('packages/shared/src/a.ts', "import { parseConfig } from '@mailsubmit/submit-daemon/admin';")).toHaveLength(1);
      expect(problemsOf('test/a.test.ts', "import { x } from 'left-pad';")).toHaveLength(1);
    });

    it("the root's devDependencies used by a package's src/ (they are for tests only)", () => {
      expect(problemsOf('packages/shared/src/a.ts', "import { it } from 'vitest';")).toHaveLength(1);
      expect(problemsOf('packages/shared/test/a.test.ts', "import { it } from 'vitest';")).toEqual([]);
    });

    it('a workspace dependency declared with another version than the workspace has', () => {
      const stale: Repository = {
        ...PACKAGES,
        packages: PACKAGES.packages.map((p) => (p.dependencies ? { ...p, dependencies: { ...p.dependencies, '@mailsubmit/shared': '^0.0.9' } } : p)),
      };
      expect(problemsOf('packages/submit-daemon/src/a.ts', '', stale)).toEqual([
        'packages/submit-daemon/package.json: @mailsubmit/shared is declared as "^0.0.9", but the workspace is version 0.1.0',
      ]);
    });
  });

  describe('the rules allow', () => {
    it('what is declared and exported, node: modules, paths inside the package, and the test harness from tests', () => {
      const text = [
        "import { readFileSync } from 'node:fs';",
        "import { EventEmitter } from 'events';",
        "import pino from 'pino';",
        "import { x } from '@mailsubmit/shared';",
        "import { y } from '../config/load-config.ts';",
        "import packageJson from '../../package.json' with { type: 'json' };",
      ].join('\n');
      expect(problemsOf('packages/submit-daemon/src/logging/a.ts', text)).toEqual([]);
      expect(problemsOf('packages/submit-daemon/test/a.test.ts', "import { PrivatePostfix } from '../../../test/support/private-postfix.ts';")).toEqual([]);
      expect(problemsOf('test/docs/a.test.ts', "import { parseConfig } from '@mailsubmit/submit-daemon/admin';")).toEqual([]);
    });

    it("the repository's tests using a package's test helpers, but not one package's tests another's", () => {
      expect(problemsOf('test/e2e/a.test.ts', "import { ctl } from '../../packages/submit-daemon/test/run.ts';")).toEqual([]);
      expect(problemsOf('packages/shared/test/a.test.ts', "import { ctl } from '../../submit-daemon/test/run.ts';")).toHaveLength(1);
    });
  });

  it('reads multi-line, type-only and dynamic imports, re-exports and require()', () => {
    const text = "import {\n  a,\n  type B,\n} from 'one';\nimport type { C } from 'two';\nexport * from './three.ts';\nconst d = await import('four');\nconst e = require('five');\n";
    expect(importsOf({ path: 'x.ts', text })).toEqual(['one', 'two', './three.ts', 'four', 'five']);
  });
});
