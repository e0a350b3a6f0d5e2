// The package as npm would publish it: the tarball `npm pack` makes from the built dist/, and the
// list of files it holds. The tests that look at the published package share these, so they all
// look at the same thing.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

export const run = promisify(execFile)

/** The repository root. */
export const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..')

/** What `npm pack --dry-run --json` tells about the tarball. */
export interface PackListing {
  /** Bytes of the gzipped tarball. */
  size: number
  /** Bytes of every file, unpacked. */
  unpackedSize: number
  entryCount: number
  /** Paths inside the package, sorted. */
  files: string[]
}

// The tests pack what `npm run build` left in dist/ (npm test builds first), so prepack's build is
// skipped: a second build per test file would cost seconds and change nothing.
const packArgs = ['pack', '--ignore-scripts']

function assertBuilt(): void {
  assert.ok(existsSync(join(root, 'dist', 'index.d.ts')), 'dist/ is built (npm run build)')
}

/** Packs the project into `destination`; returns the tarball's path. */
export async function packTarball(destination: string): Promise<string> {
  assertBuilt()
  const { stdout } = await run('npm', [...packArgs, '--silent', '--pack-destination', destination], {
    cwd: root,
  })
  return join(destination, stdout.trim().split('\n').at(-1) as string)
}

/** The files and sizes of the tarball `packTarball` would make, without making it. */
export async function packListing(): Promise<PackListing> {
  assertBuilt()
  const { stdout } = await run('npm', [...packArgs, '--dry-run', '--json', '--loglevel=error'], {
    cwd: root,
  })
  const [info] = JSON.parse(stdout) as [
    { size: number; unpackedSize: number; entryCount: number; files: { path: string }[] },
  ]
  return {
    size: info.size,
    unpackedSize: info.unpackedSize,
    entryCount: info.entryCount,
    files: info.files.map((f) => f.path).sort(),
  }
}
