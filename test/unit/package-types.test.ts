// What a TypeScript user of the published package can name: the public API, and nothing of
// lapinmq's channel layer or of amqplib. A project is compiled against the packed tarball (built
// declarations, `exports` map and all), once with code that must compile and once per internal it
// must not reach. Needs `dist/` (npm test builds it first).
import assert from 'node:assert/strict'
import { existsSync, readFileSync } from 'node:fs'
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join, relative } from 'node:path'
import { after, before, test } from 'node:test'
import { packTarball, root, run } from '../helpers/package.ts'

const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')
let project = ''
let installed = ''

before(async () => {
  project = await mkdtemp(join(tmpdir(), 'lapinmq-types-'))
  const tarball = await packTarball(project)
  installed = join(project, 'node_modules', 'lapinmq')
  await mkdir(installed, { recursive: true })
  await run('tar', ['-xzf', tarball, '-C', installed, '--strip-components=1'])
  // The package's own dependencies, as an install would provide them.
  for (const dep of ['amqplib', 'commander', '@types']) {
    await mkdir(dirname(join(project, 'node_modules', dep)), { recursive: true })
    await symlink(join(root, 'node_modules', dep), join(project, 'node_modules', dep))
  }
  await writeFile(
    join(project, 'package.json'),
    JSON.stringify({ name: 'user-project', type: 'module', private: true }),
  )
  await writeFile(
    join(project, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2023',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        strict: true,
        noEmit: true,
        skipLibCheck: false,
        types: ['node'],
      },
    }),
  )
})

after(async () => {
  if (project) await rm(project, { recursive: true, force: true })
})

/** Compiles one file of the user project; returns tsc's diagnostics ('' when it compiles). */
async function compile(name: string, code: string): Promise<string> {
  await writeFile(join(project, name), code)
  try {
    await run(process.execPath, [tsc, '--noEmit', '-p', '.'], { cwd: project })
    return ''
  } catch (err) {
    return String((err as { stdout?: string }).stdout ?? err)
  } finally {
    await rm(join(project, name))
  }
}

test('a user project compiles against the packed package with every public name', async () => {
  const out = await compile(
    'ok.ts',
    `import {
  Connection, Consumer, Message, MessageStatus, Publisher, LapinError, UnroutableError,
  type ConnectionOptions, type FastPath, type LapinErrorCode, type MessageProperties,
  type PublisherEvents, type RecoveryOptions, type BackoffOptions, type SendOptions,
  type SendDefaults, type StandardSchemaV1, type InvalidMessageInfo,
} from 'lapinmq'
const options: ConnectionOptions = { fastPath: false, recovery: { maxRetries: 3, initialDelay: 50 } satisfies RecoveryOptions }
const backoff: BackoffOptions = { factor: 3 }
const connection = new Connection(options)
const fast: FastPath = connection.fastPath
const publisher = new Publisher({ kind: 'async', connection })
publisher.on('error', (error: LapinError) => { const code: LapinErrorCode = error.code; void code })
publisher.on('state', (state) => { const s: PublisherEvents['state'][0] = state; void s })
const send: SendOptions = { headers: { a: 1 } }
const consumer = new Consumer({
  queueName: 'q', connection,
  taskFunction: (message: Message) => {
    const properties: MessageProperties = message.properties
    const id: string | undefined = properties.messageId
    void id
    return MessageStatus.SUCCESS
  },
})
const isUnroutable = (e: unknown) => e instanceof UnroutableError && e.code === 'UNROUTABLE'
const events = new Publisher({ kind: 'async', defaults: { mandatory: false, headers: { app: 'x' } } satisfies SendDefaults })
void events.sendJson('events', 'a.b', { id: 1 }, { messageId: 'm' })
const idSchema: StandardSchemaV1<unknown, { id: number }> = {
  '~standard': { version: 1, vendor: 'hand', validate: (v) => (typeof v === 'number' ? { value: { id: v } } : { issues: [{ message: 'not a number' }] }) },
}
const typed = new Consumer({
  queueName: 'q',
  schema: idSchema,
  taskFunction: (message) => {
    const id: number = message.data.id
    const raw: unknown = message.json()
    void [id, raw]
    return MessageStatus.SUCCESS
  },
})
typed.on('invalidMessage', (info: InvalidMessageInfo) => { const path: readonly PropertyKey[] | undefined = info.issues[0]?.path; void path })
const all: Consumer[] = [consumer, typed]
void [fast, send, consumer, backoff, isUnroutable, all]
`,
  )
  assert.equal(out, '')
})

for (const [what, code, expected] of [
  [
    'ChannelSession by name',
    "import type { ChannelSession } from 'lapinmq'\n",
    /has no exported member 'ChannelSession'/,
  ],
  [
    'settleDelivery on a Consumer',
    "import type { Consumer } from 'lapinmq'\ndeclare const c: Consumer\nc.settleDelivery\n",
    /Property 'settleDelivery' does not exist/,
  ],
  [
    'the channel a Connection opens',
    "import type { Connection } from 'lapinmq'\ndeclare const c: Connection\nvoid c.openSession\nvoid c.openChannel\n",
    /Property 'openSession' does not exist[\s\S]*Property 'openChannel' does not exist/,
  ],
  [
    'a deep import of the channel layer',
    "import { ChannelSession } from 'lapinmq/dist/amqp/channel-session.js'\nvoid ChannelSession\n",
    /Cannot find module 'lapinmq\/dist\/amqp\/channel-session\.js'|is not exported/,
  ],
  [
    'a Message built by hand',
    "import { Message } from 'lapinmq'\nconst m = new Message()\nvoid m\n",
    /Constructor of class 'Message(<T>)?' is private/,
  ],
] as const) {
  test(`a user project cannot reach ${what}`, async () => {
    const out = await compile('bad.ts', code)
    assert.match(out, expected)
  })
}

test('no declaration file reachable from the package entry names amqplib or the channel layer', async () => {
  const dist = join(installed, 'dist')
  const seen = new Set<string>()
  const todo = [join(dist, 'index.d.ts')]
  const external = new Set<string>()
  while (todo.length > 0) {
    const file = todo.pop() as string
    if (seen.has(file)) continue
    seen.add(file)
    const text = await readFile(file, 'utf8')
    for (const m of text.matchAll(/(?:from|import\()\s*['"]([^'"]+)['"]/g)) {
      const spec = m[1] as string
      if (!spec.startsWith('.')) {
        external.add(spec)
        continue
      }
      todo.push(join(dirname(file), spec).replace(/\.(ts|js)$/, '.d.ts'))
    }
  }
  const reached = [...seen].map((f) => relative(dist, f)).sort()
  assert.ok(
    reached.includes('publisher/publisher.d.ts') && reached.includes('consumer/message.d.ts'),
    reached.join(', '),
  )
  assert.deepEqual(
    reached.filter((f) => f.startsWith('amqp/')),
    [],
  )
  assert.deepEqual(
    [...external].filter((spec) => !spec.startsWith('node:')),
    [],
  )
  // The channel layer is in the tarball (the library runs on it), just not in its types' reach.
  assert.ok((await readdir(join(dist, 'amqp'))).includes('channel-session.js'))
})

test('the package ships its license and changelog beside the README', () => {
  for (const file of ['LICENSE', 'CHANGELOG.md', 'README.md']) {
    assert.ok(existsSync(join(installed, file)), `${file} is in the packed package`)
  }
  assert.match(readFileSync(join(installed, 'LICENSE'), 'utf8'), /^MIT License/)
})
