import * as proto from '@temporalio/proto';
import { patchProtobufRoot } from '@temporalio/proto/lib/patch-protobuf-root';
import { Worker } from '@temporalio/worker';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { installQuietRuntime } from './testbed';

const dir = path.join(__dirname, '..', 'fixtures', 'histories');

/**
 * The CLI's JSON history as a History message. Not historyFromJSON: npm installs @temporalio/common and
 * @temporalio/proto with a protobufjs copy each, and its JSON reader refuses the other copy's types; this uses
 * the JSON reader of the copy that built the types.
 */
function loadHistory(file: string): proto.temporal.api.history.v1.IHistory {
  const fromProto = { paths: [path.dirname(require.resolve('@temporalio/proto/package.json'))] };
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const protojson = require(require.resolve('protobufjs/ext/protojson', fromProto)) as {
    fromJson(type: unknown, json: unknown, opts: object): proto.temporal.api.history.v1.IHistory;
  };
  const root = patchProtobufRoot(proto) as unknown as { lookupType(name: string): unknown };
  const type = root.lookupType('temporal.api.history.v1.History');
  return protojson.fromJson(type, JSON.parse(fs.readFileSync(file, 'utf8')), { ignoreUnknownFields: true });
}

/**
 * Histories of real runs, recorded by `make record-histories`, replayed against today's workflow code: a change
 * that would break batches already running in production fails here (such a change needs `patched()`).
 */
describe('workflow replay over recorded histories', function () {
  this.timeout(120_000);

  it('replays every recorded history without a nondeterminism error', async () => {
    installQuietRuntime();
    const files = fs.readdirSync(dir).filter((f) => f.endsWith('.json'));
    assert.ok(files.length >= 5, 'histories are recorded');
    const histories = files.map((f) => ({
      workflowId: f,
      history: loadHistory(path.join(dir, f)),
    }));
    const failures: string[] = [];
    let replayed = 0;
    for await (const r of Worker.runReplayHistories(
      { workflowsPath: require.resolve('../../workflows'), replayName: 'besh-replay' },
      histories,
    )) {
      replayed++;
      if (r.error) failures.push(`${r.workflowId}: ${r.error.message}`);
    }
    assert.equal(replayed, files.length);
    assert.deepEqual(failures, []);
  });
});
