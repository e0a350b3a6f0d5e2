// The layout holds: amqplib lives in src/amqp/ only, and imports only run down the layers, so each
// line of the library has one room and no room depends on one above it.
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'

const src = resolve(dirname(fileURLToPath(import.meta.url)), '../../src')

/**
 * Every room of src/ and its layer: a room imports only rooms of lower layers (and itself). Rooms
 * of one layer are siblings and do not import each other. A new room is added here on purpose.
 */
const layers: Record<string, number> = {
  'errors.ts': 0,
  'properties.ts': 0,
  'signals.ts': 0,
  'util/': 1,
  'config.ts': 2,
  'amqp/': 3,
  'telemetry/': 3,
  'topology/': 4,
  'connection/': 5,
  'publisher/': 6,
  'retry/': 7,
  'rpc/': 8,
  'consumer/': 9,
  'index.ts': 10,
  'cli/': 11,
}

/** Private fields and methods of amqplib's connection and channel that only src/amqp/ may name. */
const amqplibPrivates = [
  'sentSinceLastCheck',
  'pushConfirmCallback',
  '_readIncoming',
  'muxer',
  'sendImmediately',
  'sendOrEnqueue',
  'freshChannel',
  'releaseChannel',
  'expectSocketClose',
  'handleConfirm',
  'acceptMessageFrame',
]

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return sourceFiles(path)
    return entry.name.endsWith('.ts') ? [path] : []
  })
}

/** The room of a file: its first folder under src/ (with a slash), or the file itself. */
function roomOf(file: string): string {
  const rel = relative(src, file).split('\\').join('/')
  const slash = rel.indexOf('/')
  return slash === -1 ? rel : rel.slice(0, slash + 1)
}

/** The specifiers a module imports or re-exports, static and dynamic (string literals only). */
function importsOf(text: string): string[] {
  const found: string[] = []
  const patterns = [
    /^\s*(?:import|export)\b[^'"]*?\bfrom\s*['"]([^'"]+)['"]/gm,
    /^\s*import\s*['"]([^'"]+)['"]/gm,
    /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g,
    /\brequire\(\s*['"]([^'"]+)['"]\s*\)/g,
  ]
  for (const pattern of patterns) for (const m of text.matchAll(pattern)) found.push(m[1] as string)
  return found
}

/** Everything that breaks the layout, one line each. */
function violations(files: readonly string[], read: (file: string) => string): string[] {
  const out: string[] = []
  for (const file of files) {
    const room = roomOf(file)
    const layer = layers[room]
    const name = relative(src, file)
    if (layer === undefined) {
      out.push(`${name}: room '${room}' has no layer (add it to the layers of this test)`)
      continue
    }
    const text = read(file)
    for (const spec of importsOf(text)) {
      // The built declarations keep these specifiers: TypeScript before 5.0 cannot read a '.ts' one.
      if (spec.startsWith('.') && !spec.endsWith('.js'))
        out.push(`${name}: imports '${spec}' (a relative import names the built file: '.js')`)
      if (spec === 'amqplib' || spec.startsWith('amqplib/')) {
        if (room !== 'amqp/') out.push(`${name}: imports amqplib outside src/amqp/`)
        continue
      }
      if (!spec.startsWith('.')) continue
      const target = roomOf(resolve(dirname(file), spec.replace(/\.js$/, '.ts')))
      if (target === room) continue
      const targetLayer = layers[target]
      if (targetLayer === undefined) out.push(`${name}: imports '${spec}', outside the known rooms`)
      else if (targetLayer >= layer)
        out.push(`${name}: imports '${spec}' (${target}), a room not below ${room}`)
    }
    if (room !== 'amqp/') {
      for (const field of amqplibPrivates) {
        if (new RegExp(`\\b${field}\\b`).test(text)) out.push(`${name}: names amqplib's private '${field}'`)
      }
    }
  }
  return out
}

const files = sourceFiles(src)
const readSource = (file: string): string => readFileSync(file, 'utf8')

test('amqplib is imported only in src/amqp/, and its private fields are named nowhere else', () => {
  const found = violations(files, readSource).filter((v) => v.includes('amqplib'))
  assert.deepEqual(found, [])
})

test('every import of src/ runs down the layers: no module imports a room above or beside its own', () => {
  assert.ok(files.length > 30, `${files.length} source files found`)
  const found = violations(files, readSource).filter((v) => !v.includes('amqplib'))
  assert.deepEqual(found, [])
})

test('the check itself catches an upward import, a .ts specifier, an amqplib import and a private field outside src/amqp/', () => {
  const planted: Record<string, string> = {
    [join(src, 'util/planted.ts')]: "import { Publisher } from '../publisher/publisher.js'\n",
    [join(src, 'consumer/planted.ts')]:
      "import type { Channel } from 'amqplib'\nimport { x } from '../cli/program.js'\n",
    [join(src, 'publisher/planted.ts')]:
      "connection.sentSinceLastCheck = true\nimport { y } from './options.ts'\n",
    [join(src, 'amqp/planted.ts')]: "import { Connection } from '../connection/connection.js'\n",
    [join(src, 'unplanned/planted.ts')]: '',
  }
  const found = violations(Object.keys(planted), (file) => planted[file] as string)
  assert.deepEqual(found, [
    "util/planted.ts: imports '../publisher/publisher.js' (publisher/), a room not below util/",
    'consumer/planted.ts: imports amqplib outside src/amqp/',
    "consumer/planted.ts: imports '../cli/program.js' (cli/), a room not below consumer/",
    "publisher/planted.ts: imports './options.ts' (a relative import names the built file: '.js')",
    "publisher/planted.ts: names amqplib's private 'sentSinceLastCheck'",
    "amqp/planted.ts: imports '../connection/connection.js' (connection/), a room not below amqp/",
    "unplanned/planted.ts: room 'unplanned/' has no layer (add it to the layers of this test)",
  ])
})
