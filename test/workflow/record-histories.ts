// Records histories of real batch runs into test/fixtures/histories/ for the replay test.
// Run with `make record-histories` (mocha with the integration config: it needs the whole stack) whenever the
// workflow changes on purpose; keep the old files: batches that started under an older workflow may still be
// running in production.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { BatchCreateParams } from 'openai/resources/batches';
import { webhookWorkflowIdFor } from '../../src/contract/webhook-workflow';
import { eventOf } from '../../src/webhooks/events';
import { temporalCliPath } from '../../temporal/dev-server';
import { batchLines, createBatch, toJsonl, uploadBatchFile, waitForBatch } from '../support/batches';
import { until } from '../support/processes';
import { startStack, type Stack } from '../support/stack';

const outDir = path.join(__dirname, '..', 'fixtures', 'histories');
const tag = process.env.HISTORY_TAG ?? new Date().toISOString().slice(0, 10);

async function save(s: Stack, name: string, workflowId: string) {
  // The batch row is final a moment before its run closes: record the whole history.
  await s.temporal.workflow
    .getHandle(workflowId)
    .result()
    .catch(() => undefined);
  // The CLI's JSON is what the Web UI downloads and what historyFromJSON reads.
  const json = execFileSync(
    temporalCliPath(),
    ['workflow', 'show', '-w', workflowId, '--address', s.config.temporalAddress, '-o', 'json'],
    {
      maxBuffer: 64 * 1024 * 1024,
    },
  );
  fs.mkdirSync(outDir, { recursive: true });
  const file = path.join(outDir, `${tag}-${name}.json`);
  fs.writeFileSync(file, json);
  console.log(`recorded ${file} (${JSON.parse(json.toString()).events.length} events)`);
}

describe('record workflow histories', function () {
  this.timeout(180_000);
  let s: Stack;
  before(async () => {
    s = await startStack({
      env: {
        COMPLETION_WINDOW_MIN_SECONDS: '1',
        MAX_CONCURRENT_BATCHES: '1',
        MAX_WORKERS: '8',
        WEBHOOK_ALLOW_PRIVATE: 'true',
      },
      simulator: { capacity: 4, baseLatencyMs: 20 },
    });
  });
  after(async () => s?.close());

  it('completed', async () => {
    const b = await createBatch(s.openai, toJsonl(batchLines(120)));
    await waitForBatch(s.openai, b.id);
    await save(s, 'completed', b.id);
  });

  it('validation failed', async () => {
    const b = await createBatch(
      s.openai,
      toJsonl([{ custom_id: 'x', method: 'GET', url: '/v1/x', body: {} }]),
    );
    await waitForBatch(s.openai, b.id);
    await save(s, 'validation-failed', b.id);
  });

  it('cancelled mid-run, and another cancelled while queued behind it', async () => {
    const running = await createBatch(s.openai, toJsonl(batchLines(400)));
    await waitForBatch(s.openai, running.id, { until: (x) => x.request_counts!.completed >= 20 });
    const queued = await createBatch(s.openai, toJsonl(batchLines(10)));
    await until('the second batch to be validated and queued', async () => {
      const d = await s.temporal.workflow.getHandle(queued.id).fetchHistory();
      return (d.events ?? []).some(
        (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'admitBatch',
      );
    });
    await s.openai.batches.cancel(queued.id);
    await waitForBatch(s.openai, queued.id);
    await save(s, 'cancelled-while-queued', queued.id);
    await s.openai.batches.cancel(running.id);
    await waitForBatch(s.openai, running.id);
    await save(s, 'cancelled-mid-run', running.id);
  });

  it('cancelled from outside (the Temporal Web UI)', async () => {
    const b = await createBatch(s.openai, toJsonl(batchLines(400)));
    await waitForBatch(s.openai, b.id, { until: (x) => x.request_counts!.completed >= 20 });
    await s.temporal.workflow.getHandle(b.id).cancel();
    await waitForBatch(s.openai, b.id);
    await save(s, 'cancelled-from-outside', b.id);
  });

  it('expired mid-run', async () => {
    const b = await createBatch(s.openai, toJsonl(batchLines(400)), { window: '2s' });
    await waitForBatch(s.openai, b.id);
    await save(s, 'expired-mid-run', b.id);
  });

  it('a high-priority batch, and the delivery of its batch.completed event', async () => {
    const receiver = http.createServer((req, res) => req.resume().on('end', () => res.end()));
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
      await s.openai.post('/webhook_endpoints', { body: { url, events: ['batch.completed'] } });
      const file = await uploadBatchFile(s.openai, toJsonl(batchLines(120)));
      const b = await s.openai.batches.create({
        input_file_id: file.id,
        endpoint: '/v1/chat/completions',
        completion_window: '24h',
        priority: 'high',
      } as BatchCreateParams);
      await waitForBatch(s.openai, b.id);
      await save(s, 'priority-high-completed', b.id);
      const event = eventOf({ batchId: b.id, owner: '', status: 'completed', at: 0 })!;
      await save(s, 'webhook-delivered', webhookWorkflowIdFor(event.id));
    } finally {
      receiver.close();
    }
  });
});
