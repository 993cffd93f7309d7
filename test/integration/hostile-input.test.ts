import assert from 'node:assert/strict';
import { deflateRawSync, gzipSync } from 'node:zlib';
import { BatchEntity, FileEntity } from '../../src/db/entities';
import { startSimulator, type Simulator } from '../../src/simulator/server';
import { batchLines, createBatch, downloadLines, toJsonl, waitForBatch } from '../support/batches';
import { startStack, type Stack } from '../support/stack';

interface Case {
  name: string;
  send: (s: Stack) => Promise<Response>;
  status: number;
  message: RegExp;
}

const MB = 1024 * 1024;
const line = toJsonl(batchLines(1)).trim();

function multipart(file: Buffer, filename = 'x.jsonl', purpose = 'batch') {
  const form = new FormData();
  form.append('purpose', purpose);
  form.append('file', new Blob([file]), filename);
  return form;
}

/** A zip whose single entry is `size` bytes of spaces, stored deflated (a zip bomb when size is large). */
function zipOf(name: string, size: number): Buffer {
  const data = deflateRawSync(Buffer.alloc(size, 0x20));
  const fname = Buffer.from(name);
  const local = Buffer.alloc(30);
  local.writeUInt32LE(0x04034b50, 0);
  local.writeUInt16LE(20, 4);
  local.writeUInt16LE(8, 8);
  local.writeUInt32LE(0, 14); // crc is not checked before the size cap
  local.writeUInt32LE(data.length, 18);
  local.writeUInt32LE(size, 22);
  local.writeUInt16LE(fname.length, 26);
  const central = Buffer.alloc(46);
  central.writeUInt32LE(0x02014b50, 0);
  central.writeUInt16LE(20, 4);
  central.writeUInt16LE(20, 6);
  central.writeUInt16LE(8, 10);
  central.writeUInt32LE(data.length, 20);
  central.writeUInt32LE(size, 24);
  central.writeUInt16LE(fname.length, 28);
  const end = Buffer.alloc(22);
  const cdOffset = local.length + fname.length + data.length;
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(1, 8);
  end.writeUInt16LE(1, 10);
  end.writeUInt32LE(central.length + fname.length, 12);
  end.writeUInt32LE(cdOffset, 16);
  return Buffer.concat([local, fname, data, central, fname, end]);
}

describe('Hostile and malformed input: the right status, a clear OpenAI-shaped message, nothing written', function () {
  this.timeout(120_000);
  let s: Stack;
  before(async () => {
    s = await startStack({
      worker: false,
      env: {
        MAX_UPLOAD_BYTES: String(4 * MB),
        MAX_LINE_BYTES: String(64 * 1024),
        MAX_UPLOAD_LINES: '100000',
        MAX_EXPANSION_RATIO: '100',
      },
    });
  });
  after(async () => s?.close());

  const auth = (s: Stack) => ({ authorization: `Bearer ${s.keyA}` });
  const upload =
    (body: FormData | string, headers: Record<string, string> = {}) =>
    (s: Stack) =>
      fetch(`${s.baseURL}/files`, { method: 'POST', body, headers: { ...auth(s), ...headers } });
  const createRaw =
    (body: string, contentType = 'application/json') =>
    (s: Stack) =>
      fetch(`${s.baseURL}/batches`, {
        method: 'POST',
        body,
        headers: { ...auth(s), 'content-type': contentType },
      });
  const get = (path: string) => (s: Stack) => fetch(`${s.baseURL}${path}`, { headers: auth(s) });

  const deep = (n: number) => '['.repeat(n) + ']'.repeat(n);
  const cases: Case[] = [
    {
      name: 'an upload over the size limit',
      send: upload(multipart(Buffer.alloc(5 * MB, 0x20))),
      status: 413,
      message: /maximum upload size of 4 MB/,
    },
    {
      name: 'a gzip bomb',
      // Blank lines of 100 spaces: few enough lines, and more than 4 MB before the expansion ratio is reached.
      send: upload(multipart(gzipSync(Buffer.alloc(64 * MB, `${' '.repeat(100)}\n`)))),
      status: 413,
      message: /maximum size of 4 MB after decompression/,
    },
    {
      name: 'a gzip of newlines',
      send: upload(multipart(gzipSync(Buffer.alloc(64 * MB, 0x0a)))),
      status: 400,
      message: /^File has more than 100000 lines \(blank lines included\)$/,
    },
    {
      name: 'a small gzip that decompresses past the expansion ratio',
      send: upload(multipart(gzipSync(Buffer.alloc(2 * MB, `${' '.repeat(100)}\n`)))),
      status: 413,
      message: /^File decompresses to more than 100 times its size$/,
    },
    {
      name: 'a zip bomb',
      send: upload(multipart(zipOf('a.jsonl', 64 * MB))),
      status: 413,
      message: /maximum size/,
    },
    {
      name: 'a line over the line-length limit',
      send: upload(multipart(Buffer.from(`{"a":"${'x'.repeat(70_000)}"}\n`))),
      status: 400,
      message: /Line 1 exceeds the maximum line length/,
    },
    {
      name: 'deeply nested JSON in a file',
      send: upload(multipart(Buffer.from(`{"a":${deep(20_000)}}\n`))),
      status: 400,
      message: /Line 1 nests JSON deeper than 128 levels/,
    },
    {
      name: 'non-UTF-8 bytes',
      send: upload(multipart(Buffer.from([0x7b, 0xc3, 0x28, 0x7d, 0x0a]))),
      status: 400,
      message: /not valid UTF-8/,
    },
    {
      name: 'a NUL byte',
      send: upload(multipart(Buffer.from(`${line}\n{"a":"\u0000"}\n`))),
      status: 400,
      message: /NUL byte \(line 2\)/,
    },
    {
      name: 'an unknown purpose',
      send: upload(multipart(Buffer.from(line), 'x.jsonl', 'rm -rf /')),
      status: 400,
      message: /Invalid value for 'purpose'/,
    },
    {
      name: 'a JSON body to the upload endpoint',
      send: upload('{}', { 'content-type': 'application/json' }),
      status: 400,
      message: /multipart\/form-data/,
    },
    {
      name: 'a broken multipart body',
      send: upload('--x\r\nnot a part', { 'content-type': 'multipart/form-data; boundary=x' }),
      status: 400,
      message: /Missing required parameter: 'file'|Malformed/,
    },
    {
      name: 'a create body that is not JSON',
      send: createRaw('{"input_file_id": '),
      status: 400,
      message: /JSON|invalid/i,
    },
    {
      name: 'a create body as text/plain',
      send: createRaw('{}', 'text/plain'),
      status: 400,
      message: /must be JSON/,
    },
    {
      name: 'a create body over 1 MB',
      send: createRaw(JSON.stringify({ metadata: { a: 'x'.repeat(2 * MB) } })),
      status: 413,
      message: /too large/i,
    },
    {
      name: 'deeply nested JSON in a create body',
      send: createRaw(`{"metadata":${deep(50_000)}}`),
      status: 400,
      message: /./,
    },
    {
      name: 'metadata with 17 keys',
      send: createRaw(
        JSON.stringify({
          input_file_id: 'file-x',
          endpoint: '/v1/chat/completions',
          completion_window: '24h',
          metadata: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 'v'])),
        }),
      ),
      status: 400,
      message: /at most 16 keys/,
    },
    {
      name: 'an unknown field that tries to set the upstream',
      send: createRaw(
        JSON.stringify({
          input_file_id: 'file-x',
          endpoint: '/v1/chat/completions',
          completion_window: '24h',
          base_url: 'http://169.254.169.254/',
        }),
      ),
      status: 400,
      message: /Unrecognized request argument supplied: base_url/,
    },
    {
      name: 'a batch id shaped like a path',
      send: get('/batches/..%2F..%2Fetc%2Fpasswd'),
      status: 404,
      message: /No such Batch object/,
    },
    {
      name: 'a batch id shaped like SQL',
      send: get(`/batches/${encodeURIComponent("batch_x' OR '1'='1")}`),
      status: 404,
      message: /No such Batch object/,
    },
    {
      name: 'a file id shaped like a path',
      send: get('/files/..%2F..%2Fbesh.sqlite/content'),
      status: 404,
      message: /No such File object/,
    },
    {
      name: 'a limit that is not a number',
      send: get('/batches?limit=1;DROP TABLE batches'),
      status: 400,
      message: /Invalid 'limit'/,
    },
    {
      name: 'a cursor shaped like SQL',
      send: get(`/files?after=${encodeURIComponent("file-x' OR 1=1 --")}`),
      status: 400,
      message: /No such File object for 'after'/,
    },
  ];

  for (const c of cases) {
    it(c.name, async () => {
      const before = [
        await s.db.getRepository(FileEntity).count(),
        await s.db.getRepository(BatchEntity).count(),
      ];
      const res = await c.send(s);
      const text = await res.text();
      assert.equal(res.status, c.status, text.slice(0, 300));
      const body = JSON.parse(text) as { error: Record<string, unknown> };
      assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message', 'param', 'type']);
      assert.match(String(body.error.message), c.message);
      assert.doesNotMatch(
        text,
        /\/tmp\/|\/work\/|node_modules|at [\w.]+ \(|SELECT |QueryFailedError/,
        'nothing internal leaks',
      );
      assert.deepEqual(
        [await s.db.getRepository(FileEntity).count(), await s.db.getRepository(BatchEntity).count()],
        before,
      );
    });
  }

  it('escapes a hostile file name in the download headers and keeps it as data', async () => {
    const name = '"><script>alert(1)</script>\r\nX-Evil: 1.jsonl';
    const res = await upload(multipart(Buffer.from(line + '\n'), name))(s);
    assert.equal(res.status, 200);
    const file = (await res.json()) as { id: string; filename: string };
    const dl = await get(`/files/${file.id}/content`)(s);
    assert.equal(dl.status, 200);
    assert.equal(dl.headers.get('x-evil'), null, 'no header injection');
    assert.equal(await dl.text(), line + '\n');
  });
});

describe('A request line cannot choose the upstream URL, headers or credentials', function () {
  this.timeout(60_000);
  let s: Stack;
  let attacker: Simulator;
  before(async () => {
    attacker = await startSimulator({});
    s = await startStack({
      env: { VLLM_API_KEY: 'sk-upstream-secret-0001' },
      simulator: { apiKey: 'sk-upstream-secret-0001' },
    });
  });
  after(async () => {
    await s?.close();
    await attacker?.close();
  });

  it('forwards only the body to BESH’s own upstream, with BESH’s own key', async () => {
    const input = batchLines(5).map((l) => ({
      ...l,
      headers: { authorization: 'Bearer stolen' },
      body: {
        ...l.body,
        api_base: attacker.url,
        base_url: attacker.url,
        api_key: 'x',
        extra_headers: { 'x-evil': '1' },
      },
    }));
    const created = await createBatch(s.openai, toJsonl(input));
    const done = await waitForBatch(s.openai, created.id);
    assert.equal(done.status, 'completed');
    assert.equal(attacker.stats().received, 0, 'nothing reached the address a line named');
    assert.equal(
      s.sim.stats().received,
      5,
      'the configured upstream, which requires BESH’s key, answered all',
    );
    const out = await downloadLines(s.openai, done.output_file_id);
    assert.equal(out.length, 5);
  });
});
