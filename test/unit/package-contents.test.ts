// What users download: the tarball holds the built library and its four documents, nothing of the
// development tree, and stays small; and loading the library loads amqplib and Node's own modules
// only (the CLI's commander is in the package but only the `lapinmq` command loads it). Needs
// `dist/` (npm test builds it first).
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { test } from 'node:test'
import { packListing, root } from '../helpers/package.ts'

/** Generous bounds, two to three times today's: growth past them is bloat to explain. */
const bounds = { size: 300 * 1024, unpackedSize: 1024 * 1024, entryCount: 200 }

/** The paths a published package may hold; everything else is a mistake in `files` or the build. */
function unexpected(files: readonly string[]): string[] {
  const documents = new Set(['README.md', 'CHANGELOG.md', 'LICENSE', 'package.json'])
  return files.filter(
    (f) =>
      !documents.has(f) &&
      !(/^dist\/[\w/-]+\.(js|d\.ts)$/.test(f) && !/(^|\/)(test|tests|bench|examples)\//.test(f)),
  )
}

test('the tarball holds dist/ (JavaScript and declarations), README, CHANGELOG, LICENSE and package.json only', async (t) => {
  const listing = await packListing()
  t.diagnostic(
    `packed ${(listing.size / 1024).toFixed(1)} KiB, unpacked ${(listing.unpackedSize / 1024).toFixed(1)} KiB, ${listing.entryCount} files`,
  )
  assert.deepEqual(unexpected(listing.files), [])
  for (const file of [
    'README.md',
    'CHANGELOG.md',
    'LICENSE',
    'package.json',
    'dist/index.js',
    'dist/index.d.ts',
  ]) {
    assert.ok(listing.files.includes(file), `${file} is packed`)
  }
  // The worker entry is loaded by path at run time, and the CLI is the package's bin.
  assert.ok(listing.files.includes('dist/consumer/workers/entry.js'))
  assert.ok(listing.files.includes('dist/cli/lapinmq.js'))
  assert.ok(listing.size <= bounds.size, `packed ${listing.size} bytes, bound ${bounds.size}`)
  assert.ok(
    listing.unpackedSize <= bounds.unpackedSize,
    `unpacked ${listing.unpackedSize} bytes, bound ${bounds.unpackedSize}`,
  )
  assert.ok(
    listing.entryCount <= bounds.entryCount,
    `${listing.entryCount} files, bound ${bounds.entryCount}`,
  )
})

test('the check itself names source maps, build info, sources and tests', () => {
  const unwanted = [
    'dist/index.js.map',
    'dist/index.d.ts.map',
    'dist/tsconfig.build.tsbuildinfo',
    'src/index.ts',
    'dist/test/unit/x.js',
    'bench/run.ts',
  ]
  assert.deepEqual(unexpected(['dist/index.js', ...unwanted, 'README.md']), unwanted)
})

/** The specifiers a built module loads when it is loaded, and those it may load later by `import()`. */
function importsOf(text: string): { loaded: string[]; later: string[] } {
  const loaded = [
    ...text.matchAll(/^\s*(?:import|export)\b[^'"]*?\bfrom\s*['"]([^'"]+)['"]/gm),
    ...text.matchAll(/^\s*import\s*['"]([^'"]+)['"]/gm),
  ].map((m) => m[1] as string)
  const later = [...text.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)].map((m) => m[1] as string)
  for (const m of text.matchAll(/\brequire\(\s*['"]([^'"]+)['"]\s*\)/g)) loaded.push(m[1] as string)
  return { loaded, later }
}

/**
 * Walks the built modules from `entry` through relative imports, static and dynamic. Returns the
 * files reached and the packages they name: `loaded` when the entry's static graph loads them,
 * `later` when only an `import()` does.
 */
function walk(entry: string, read: (file: string) => string) {
  const files = new Set<string>()
  const loaded = new Set<string>()
  const later = new Set<string>()
  const todo: { file: string; static: boolean }[] = [{ file: entry, static: true }]
  const staticFiles = new Set<string>()
  while (todo.length > 0) {
    const { file, static: isStatic } = todo.pop() as { file: string; static: boolean }
    if (isStatic ? staticFiles.has(file) : files.has(file)) continue
    files.add(file)
    if (isStatic) staticFiles.add(file)
    const imports = importsOf(read(file))
    for (const [specs, viaStatic] of [
      [imports.loaded, isStatic],
      [imports.later, false],
    ] as const) {
      for (const spec of specs) {
        if (spec.startsWith('.')) todo.push({ file: join(dirname(file), spec), static: viaStatic })
        else (viaStatic ? loaded : later).add(spec)
      }
    }
  }
  for (const spec of loaded) later.delete(spec)
  return { files: [...files], loaded: [...loaded].sort(), later: [...later].sort() }
}

const dist = join(root, 'dist')
const readBuilt = (file: string): string => readFileSync(file, 'utf8')
/** A bare specifier's package: `node:events` stays whole, `a/b` is `a`, `@s/a/b` is `@s/a`. */
const packageOf = (spec: string): string =>
  spec.startsWith('node:')
    ? spec
    : spec
        .split('/')
        .slice(0, spec.startsWith('@') ? 2 : 1)
        .join('/')

test('loading lapinmq loads amqplib and node: modules only; piscina and @opentelemetry/api only through import(), commander never', (t) => {
  const graph = walk(join(dist, 'index.js'), readBuilt)
  const reached = graph.files.map((f) => relative(dist, f))
  t.diagnostic(
    `${reached.length} modules reached; loaded: ${graph.loaded.join(', ')}; later: ${graph.later.join(', ')}`,
  )
  assert.ok(reached.includes('publisher/publisher.js') && reached.includes('consumer/workers/pool.js'))
  assert.deepEqual(
    reached.filter((f) => f.startsWith('cli/')),
    [],
  )
  assert.deepEqual(
    [...new Set(graph.loaded.map(packageOf))].filter((p) => !p.startsWith('node:')),
    ['amqplib'],
  )
  assert.deepEqual([...new Set(graph.later.map(packageOf))].sort(), ['@opentelemetry/api', 'piscina'])
  // The CLI, by contrast, does load commander: the walk sees it.
  const cli = walk(join(dist, 'cli', 'lapinmq.js'), readBuilt)
  assert.ok(cli.loaded.includes('commander'), cli.loaded.join(', '))
})

test('the walk itself finds a package loaded two relative imports away, and one only imported later', () => {
  const planted: Record<string, string> = {
    '/p/index.js': "export { a } from './a.js'\nconst lazy = () => import('./lazy.js')\n",
    '/p/a.js': "import './b.js'\nexport const a = 1\n",
    '/p/b.js': "import { Command } from 'commander'\nimport { x } from 'node:util'\n",
    '/p/lazy.js': "import { Piscina } from 'piscina'\n",
  }
  const graph = walk('/p/index.js', (file) => planted[file] as string)
  assert.deepEqual(graph.loaded, ['commander', 'node:util'])
  assert.deepEqual(graph.later, ['piscina'])
})

test("every relative import in the declarations names a '.js' file, which TypeScript before 5.0 can read", () => {
  const declarations = readdirSync(dist, { recursive: true, encoding: 'utf8' }).filter((f) =>
    f.endsWith('.d.ts'),
  )
  assert.ok(declarations.includes('index.d.ts'), declarations.join(', '))
  const wrong = declarations.flatMap((file) =>
    [...readFileSync(join(dist, file), 'utf8').matchAll(/(?:from|import\()\s*['"](\.[^'"]*)['"]/g)]
      .map((m) => m[1] as string)
      .filter((spec) => !spec.endsWith('.js'))
      .map((spec) => `${file}: '${spec}'`),
  )
  assert.deepEqual(wrong, [])
})
