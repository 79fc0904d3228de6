/**
 * The rules that keep the packages apart, as a function of the manifests
 * and the source text (so a test can hand it a made-up file as well as the
 * repository's own).
 *
 * A package is used by others only through what its package.json exports,
 * and imports only what its package.json declares. esbuild bundles a
 * relative path into another package's src/ without complaint, and npm
 * hoists every dependency to the root node_modules, where any package can
 * reach it: neither the build nor the tests notice a boundary crossed, so
 * this does.
 *
 *   - No relative import leaves its package, except that tests (anything
 *     outside a package's src/) may use the repository's test/ harness, and
 *     the repository's own tests, benches and scripts may use a package's
 *     test/ helpers. Nothing reaches into another package's src/ by path.
 *   - A workspace package is imported by its name and an exported subpath.
 *   - A package's src/ imports only its `dependencies`; its tests may also
 *     use its `devDependencies` and the root's. Files outside packages/ may
 *     use the root's dependencies and the workspace packages.
 *   - A dependency on a workspace package names that package's version, so
 *     npm links the workspace rather than looking for it in the registry.
 */
import { builtinModules } from 'node:module';
import { posix } from 'node:path';
import ts from 'typescript';

export interface Manifest {
  /** The package's directory, relative to the repository root ('' for the root). */
  readonly dir: string;
  readonly name: string;
  readonly version?: string;
  readonly dependencies?: Readonly<Record<string, string>>;
  readonly devDependencies?: Readonly<Record<string, string>>;
  readonly peerDependencies?: Readonly<Record<string, string>>;
  readonly optionalDependencies?: Readonly<Record<string, string>>;
  readonly exports?: string | Readonly<Record<string, string>>;
  readonly workspaces?: readonly string[];
}

export interface SourceFile {
  /** Relative to the repository root, with forward slashes. */
  readonly path: string;
  readonly text: string;
}

export interface Repository {
  readonly root: Manifest;
  /** Every package under packages/, workspace or not. */
  readonly packages: readonly Manifest[];
}

/** Every module a file names: static and dynamic imports, re-exports, require(). */
export function importsOf(file: SourceFile): string[] {
  return ts.preProcessFile(file.text, true, true).importedFiles.map((imported) => imported.fileName);
}

/** One line per import that crosses a boundary, naming the file and the rule. */
export function boundaryProblems(repository: Repository, files: readonly SourceFile[]): string[] {
  const problems = [...manifestProblems(repository)];
  for (const file of files) {
    for (const specifier of importsOf(file)) {
      const problem = specifier.startsWith('.') ? pathProblem(repository, file.path, specifier) : nameProblem(repository, file.path, specifier);
      if (problem !== undefined) problems.push(`${file.path}: '${specifier}': ${problem}`);
    }
  }
  return problems;
}

function manifestProblems({ packages }: Repository): string[] {
  const problems: string[] = [];
  for (const manifest of packages) {
    for (const [name, range] of Object.entries({ ...manifest.dependencies, ...manifest.devDependencies })) {
      const workspace = packages.find((p) => p.name === name);
      if (workspace !== undefined && range !== workspace.version) {
        problems.push(`${manifest.dir}/package.json: ${name} is declared as "${range}", but the workspace is version ${workspace.version}`);
      }
    }
  }
  return problems;
}

function pathProblem({ packages }: Repository, from: string, specifier: string): string | undefined {
  const target = posix.normalize(posix.join(posix.dirname(from), specifier));
  const source = packageOf(packages, from);
  const destination = packageOf(packages, target);
  if (source !== undefined && destination === source) return undefined;
  if (destination !== undefined && isUnder(target, `${destination.dir}/src`)) {
    return `reaches into ${destination.name}'s src/ by path: import it as '${destination.name}' (or a subpath it exports)`;
  }
  if (source !== undefined && isUnder(from, `${source.dir}/src`)) {
    return `${source.name}'s src/ reaches out of its package by path`;
  }
  // The repository's own tests, benches and scripts among themselves; the test harness; a package's test helpers.
  if (source === undefined && destination === undefined) return undefined;
  if (destination === undefined && isUnder(target, 'test')) return undefined;
  if (source === undefined && destination !== undefined && isUnder(target, `${destination.dir}/test`)) return undefined;
  return `reaches into ${destination?.dir ?? target} by path`;
}

function nameProblem(repository: Repository, from: string, specifier: string): string | undefined {
  if (specifier.startsWith('node:') || builtinModules.includes(specifier)) return undefined;
  const name = packageName(specifier);
  const subpath = `.${specifier.slice(name.length)}`;
  const workspace = repository.packages.find((p) => p.name === name);
  if (workspace !== undefined && !exportsSubpath(workspace, subpath)) {
    return `${name} does not export '${subpath}' (its package.json "exports" says what others may use)`;
  }
  const source = packageOf(repository.packages, from);
  if (source?.name === name) return undefined;
  const allowed = declaredFor(repository, source, from);
  if (allowed.has(name)) return undefined;
  return source === undefined
    ? `${name} is neither a dependency of the repository nor one of its workspaces`
    : `${name} is not declared in ${source.dir}/package.json${isUnder(from, `${source.dir}/src`) ? ' "dependencies"' : ''}`;
}

function declaredFor({ root, packages }: Repository, source: Manifest | undefined, from: string): Set<string> {
  const names = (manifest: Manifest, ...fields: ('dependencies' | 'devDependencies' | 'peerDependencies' | 'optionalDependencies')[]): string[] =>
    fields.flatMap((field) => Object.keys(manifest[field] ?? {}));
  if (source === undefined) {
    const workspaces = packages.filter((p) => root.workspaces?.includes(p.dir)).map((p) => p.name);
    return new Set([...names(root, 'dependencies', 'devDependencies'), ...workspaces]);
  }
  const shipped = names(source, 'dependencies', 'peerDependencies', 'optionalDependencies');
  if (isUnder(from, `${source.dir}/src`)) return new Set(shipped);
  return new Set([...shipped, ...names(source, 'devDependencies'), ...names(root, 'dependencies', 'devDependencies')]);
}

function exportsSubpath(manifest: Manifest, subpath: string): boolean {
  const { exports } = manifest;
  if (exports === undefined) return false;
  if (typeof exports === 'string') return subpath === '.';
  return Object.keys(exports).some((key) => {
    const star = key.indexOf('*');
    return star === -1 ? key === subpath : subpath.startsWith(key.slice(0, star)) && subpath.endsWith(key.slice(star + 1));
  });
}

/** '@scope/name/sub' -> '@scope/name'; 'name/sub' -> 'name'. */
function packageName(specifier: string): string {
  const parts = specifier.split('/');
  return (specifier.startsWith('@') ? parts.slice(0, 2) : parts.slice(0, 1)).join('/');
}

function packageOf(packages: readonly Manifest[], path: string): Manifest | undefined {
  return packages.find((p) => isUnder(path, p.dir));
}

function isUnder(path: string, dir: string): boolean {
  return path === dir || path.startsWith(`${dir}/`);
}
