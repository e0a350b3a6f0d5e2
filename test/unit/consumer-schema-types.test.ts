// A consumer's `schema` types its messages: with a zod or valibot schema, `message.data` in the
// task has the schema's output type, and a use that the type does not allow fails to compile.
// Snippets are compiled against the source with the TypeScript API, as a user would write them.
import assert from 'node:assert/strict'
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import ts from 'typescript'
import { repoRoot } from '../helpers/markdown.ts'

/** Compiles each snippet as a module of its own; returns the diagnostics of each, '' when it compiles. */
function compile(snippets: readonly string[]): string[] {
  const dir = join(repoRoot, 'node_modules/.cache/lapinmq-schema-types')
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir, { recursive: true })
  const files = snippets.map((code, i) => {
    const file = join(dir, `snippet-${i}.ts`)
    writeFileSync(file, `${code}\nexport {}\n`)
    return file
  })
  const options: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2022,
    lib: ['lib.es2023.d.ts'],
    module: ts.ModuleKind.Preserve,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    types: ['node'],
    strict: true,
    exactOptionalPropertyTypes: true,
    noEmit: true,
    allowImportingTsExtensions: true,
    skipLibCheck: true,
    paths: { lapinmq: [join(repoRoot, 'src/index.ts')] },
  }
  const program = ts.createProgram(files, options)
  const diagnostics = ts.getPreEmitDiagnostics(program)
  return files.map((file) =>
    diagnostics
      .filter((d) => d.file?.fileName === file)
      .map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'))
      .join('\n'),
  )
}

const zodSchema = `import { z } from 'zod'
import { Consumer, type Message, MessageStatus } from 'lapinmq'
const Order = z.object({ id: z.string(), amount: z.number(), tags: z.array(z.string()).default([]) })
`
const valibotSchema = `import * as v from 'valibot'
import { Consumer, MessageStatus } from 'lapinmq'
const Order = v.object({ id: v.string(), amount: v.pipe(v.string(), v.transform(Number)) })
`

const cases: readonly { what: string; code: string; expected: RegExp | '' }[] = [
  {
    what: 'zod: data has the output type (a default applied: tags is string[], never undefined)',
    code: `${zodSchema}
const consumer = new Consumer({
  queueName: 'orders',
  schema: Order,
  taskFunction: (message) => {
    const id: string = message.data.id
    const amount: number = message.data.amount
    const tags: string[] = message.data.tags
    void [id, amount, tags]
    return MessageStatus.SUCCESS
  },
})
const typed: Consumer<z.output<typeof Order>> = consumer
const task = (message: Message<z.output<typeof Order>>) => (message.data.amount > 0 ? MessageStatus.SUCCESS : MessageStatus.FAIL_DO_NOT_RETRY)
void [typed, new Consumer({ queueName: 'orders', schema: Order, taskFunction: task })]`,
    expected: '',
  },
  {
    what: 'zod: a field used as another type does not compile',
    code: `${zodSchema}
new Consumer({
  queueName: 'orders',
  schema: Order,
  taskFunction: (message) => {
    const amount: string = message.data.amount
    void amount
    return MessageStatus.SUCCESS
  },
})`,
    expected: /Type 'number' is not assignable to type 'string'/,
  },
  {
    what: 'zod: a field the schema does not have does not compile',
    code: `${zodSchema}
new Consumer({
  queueName: 'orders',
  schema: Order,
  taskFunction: (message) => {
    void message.data.customer
    return MessageStatus.SUCCESS
  },
})`,
    expected: /Property 'customer' does not exist/,
  },
  {
    what: 'valibot: data has the output type (a transform: amount is a number)',
    code: `${valibotSchema}
new Consumer({
  queueName: 'orders',
  schema: Order,
  taskFunction: (message) => {
    const amount: number = message.data.amount
    void amount
    return MessageStatus.SUCCESS
  },
})`,
    expected: '',
  },
  {
    what: 'valibot: the input type of a transformed field is not the output',
    code: `${valibotSchema}
new Consumer({
  queueName: 'orders',
  schema: Order,
  taskFunction: (message) => {
    const amount: string = message.data.amount
    void amount
    return MessageStatus.SUCCESS
  },
})`,
    expected: /Type 'number' is not assignable to type 'string'/,
  },
  {
    what: 'without a schema: code as before compiles, and data is unknown',
    code: `import { Consumer, type Message, MessageStatus } from 'lapinmq'
new Consumer({ queueName: 'q', taskFunction: (message: Message) => (message.body.length > 0 ? MessageStatus.SUCCESS : MessageStatus.FAIL_RETRY_LATER) })
new Consumer({
  queueName: 'q',
  taskFunction: (message) => {
    const order = message.json<{ id: string }>()
    const id: string = order.id
    void id
    return MessageStatus.SUCCESS
  },
})`,
    expected: '',
  },
  {
    what: 'without a schema: data is unknown, so using it as a type does not compile',
    code: `import { Consumer, MessageStatus } from 'lapinmq'
new Consumer({
  queueName: 'q',
  taskFunction: (message) => {
    void message.data.id
    return MessageStatus.SUCCESS
  },
})`,
    expected: /'message\.data' is of type 'unknown'/,
  },
  {
    what: 'without a schema, a task typed Message<Order> does not compile: data would be undefined',
    code: `import { Consumer, type Message, MessageStatus } from 'lapinmq'
interface Order { id: string }
new Consumer({ queueName: 'q', taskFunction: (message: Message<Order>) => (message.data.id ? MessageStatus.SUCCESS : MessageStatus.FAIL_RETRY_LATER) })`,
    expected: /not assignable/,
  },
  {
    what: 'a schema that is not a Standard Schema does not compile',
    code: `import { Consumer, MessageStatus } from 'lapinmq'
new Consumer({ queueName: 'q', schema: { parse: (v: unknown) => v }, taskFunction: () => MessageStatus.SUCCESS })`,
    expected: /StandardSchemaV1/,
  },
]

test('Consumer<T> and Message<T> carry the schema output type into the task', () => {
  const results = compile(cases.map((c) => c.code))
  for (const [i, c] of cases.entries()) {
    const out = results[i] as string
    if (c.expected === '') assert.equal(out, '', `${c.what}: should compile`)
    else assert.match(out, c.expected, `${c.what}: should fail to compile`)
  }
})
