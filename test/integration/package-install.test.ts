// A user's first day, from the packed tarball: it installs from the registry like any package, and
// the same publish/consume round trip runs from an ESM file, a CommonJS require(), and TypeScript
// projects on the newest TypeScript (nodenext and bundler resolution) and on the oldest TypeScript
// lapinmq supports. Each TypeScript project also fails to compile a misuse, so its types are real
// and not `any`. Needs `dist/` (npm test builds it first) and the npm registry.
import assert from 'node:assert/strict'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { brokerUrl, closeAdmin, deleteQueue, uniqueName } from '../helpers/broker.ts'
import { packTarball, run } from '../helpers/package.ts'

/** The oldest TypeScript that compiles a user project against lapinmq's declarations (docs/installing.md). */
const minimumTypeScript = '4.7'
/** The newest @types/node 20 that TypeScript 4.7 can read itself; later ones need 4.8. */
const minimumTypesNode = '20.16.0'
const COUNT = 20

/** The round trip as a user writes it: a Consumer declares the queue, a sync Publisher sends COUNT messages. */
const roundTripTs = `import { Consumer, type Message, MessageStatus, Publisher } from 'lapinmq'

const queueName = process.env.QUEUE ?? ''
const count = Number(process.env.COUNT)
const received: string[] = []
let allReceived: () => void = () => {}
const done = new Promise<void>((resolve) => {
  allReceived = resolve
})
const consumer = new Consumer({
  queueName,
  taskFunction: (message: Message) => {
    const body: Buffer = message.body
    received.push(body.toString())
    if (received.length === count) allReceived()
    return MessageStatus.SUCCESS
  },
})
await consumer.start()
const publisher = new Publisher({ kind: 'sync' })
await publisher.start()
for (let i = 0; i < count; i++) await publisher.sendMessageToQueue(queueName, \`message \${i}\`)
await done
await publisher.stop()
await consumer.stop()
console.log(JSON.stringify(received))
`

/** The same round trip with the types taken out. */
const roundTripJs = roundTripTs
  .replace('type Message, ', '')
  .replace('const received: string[] = []', 'const received = []')
  .replace('let allReceived: () => void = () => {}', 'let allReceived = () => {}')
  .replace('new Promise<void>(', 'new Promise(')
  .replace('(message: Message)', '(message)')
  .replace('const body: Buffer', 'const body')

/** CommonJS: require() of the ESM package, and no top-level await. */
const roundTripCjs = `const { Consumer, MessageStatus, Publisher } = require('lapinmq')

async function main() {
${roundTripJs
  .split('\n')
  .slice(2)
  .filter((line) => line !== '')
  .map((line) => `  ${line}`)
  .join('\n')}
}
main().catch((error) => {
  console.error(error)
  process.exitCode = 1
})
`

/** A misuse that only compiles when lapinmq's types are `any`. */
const misuse = `import { Publisher } from 'lapinmq'
new Publisher({ kind: 'fast' })
`
const misuseDiagnostic = /TS2322: Type '"fast"' is not assignable to type '"async" \| "sync"'/

let work = ''
/** Where the tarball is installed with the newest TypeScript; the ESM, CommonJS and TS projects share it. */
let app = ''
/** The tarball again, with the minimum TypeScript and an @types/node it can read. */
let oldest = ''
const queues: string[] = []

async function install(dir: string, specs: string[]): Promise<void> {
  await mkdir(dir, { recursive: true })
  await writeFile(
    join(dir, 'package.json'),
    JSON.stringify({ name: 'user-app', private: true, type: 'module' }),
  )
  await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', ...specs], {
    cwd: dir,
    timeout: 120_000,
  })
}

/** Runs one file with node; the round trip's queue is fresh and deleted after the file. */
async function roundTrip(cwd: string, file: string): Promise<void> {
  const queue = uniqueName('package-install')
  queues.push(queue)
  const { stdout } = await run(process.execPath, [file], {
    cwd,
    env: { ...process.env, RABBITMQ_URL: brokerUrl, QUEUE: queue, COUNT: String(COUNT) },
    timeout: 30_000,
  })
  const received = JSON.parse(stdout.trim().split('\n').at(-1) as string) as string[]
  assert.deepEqual(received.sort(), Array.from({ length: COUNT }, (_, i) => `message ${i}`).sort())
}

/** Compiles a project with the given tsc; returns its diagnostics ('' when it compiles). */
async function compile(tsc: string, project: string): Promise<string> {
  try {
    await run(process.execPath, [tsc, '-p', project], { timeout: 60_000 })
    return ''
  } catch (err) {
    return String((err as { stdout?: string }).stdout ?? err)
  }
}

/** A TypeScript project in `dir` (a folder of an install): the round trip, and a tsconfig for the misuse. */
async function tsProject(dir: string, compilerOptions: Record<string, unknown>): Promise<void> {
  await mkdir(dir, { recursive: true })
  await writeFile(join(dir, 'main.ts'), roundTripTs)
  await writeFile(join(dir, 'misuse.ts'), misuse)
  const options = { target: 'ES2022', strict: true, skipLibCheck: false, types: ['node'], ...compilerOptions }
  await writeFile(
    join(dir, 'tsconfig.json'),
    JSON.stringify({ compilerOptions: { ...options, outDir: 'out' }, files: ['main.ts'] }),
  )
  await writeFile(
    join(dir, 'tsconfig.misuse.json'),
    JSON.stringify({ compilerOptions: { ...options, noEmit: true }, files: ['misuse.ts'] }),
  )
}

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'lapinmq-install-'))
  const tarball = await packTarball(work)
  app = join(work, 'app')
  oldest = join(work, 'oldest')
  // The two installs run side by side; npm's cache serves what earlier runs fetched.
  await Promise.all([
    install(app, [tarball, '@types/node@20', 'typescript@latest']),
    install(oldest, [tarball, `@types/node@${minimumTypesNode}`, `typescript@${minimumTypeScript}`]),
  ])
})

after(async () => {
  for (const queue of queues) await deleteQueue(queue).catch(() => undefined)
  await closeAdmin()
  if (work) await rm(work, { recursive: true, force: true })
})

test('an ESM file imports lapinmq and does a round trip', async () => {
  await writeFile(join(app, 'round-trip.mjs'), roundTripJs)
  await roundTrip(app, 'round-trip.mjs')
})

test('a CommonJS file require()s lapinmq and does a round trip', async () => {
  await writeFile(join(app, 'round-trip.cjs'), roundTripCjs)
  await roundTrip(app, 'round-trip.cjs')
})

async function versionOf(dir: string): Promise<string> {
  const pkg = JSON.parse(await readFile(join(dir, 'node_modules', 'typescript', 'package.json'), 'utf8'))
  return pkg.version as string
}

for (const [name, folder, compilerOptions] of [
  ['newest TypeScript, module nodenext', 'nodenext', { module: 'nodenext', moduleResolution: 'nodenext' }],
  [
    'newest TypeScript, moduleResolution bundler',
    'bundler',
    { module: 'esnext', moduleResolution: 'bundler' },
  ],
  ['minimum TypeScript, module nodenext', 'minimum', { module: 'nodenext', moduleResolution: 'nodenext' }],
] as const) {
  describe(name, () => {
    const install = () => (folder === 'minimum' ? oldest : app)
    const dir = () => join(install(), folder)
    const tsc = () => join(install(), 'node_modules', 'typescript', 'bin', 'tsc')

    before(() => tsProject(dir(), compilerOptions))

    test('the round trip compiles with skipLibCheck off and runs', async (t) => {
      t.diagnostic(`TypeScript ${await versionOf(install())}`)
      assert.equal(await compile(tsc(), join(dir(), 'tsconfig.json')), '')
      await roundTrip(dir(), join('out', 'main.js'))
    })

    test('a misuse fails to compile: the types are real, not any', async () => {
      assert.match(await compile(tsc(), join(dir(), 'tsconfig.misuse.json')), misuseDiagnostic)
    })
  })
}
