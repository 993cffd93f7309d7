import { Context } from '@temporalio/activity';
import type { ChunkResult, ProcessChunkInput } from '../src/contract/batch-workflow';
import { ChunkRunner } from './chunk-runner';
import type { ActivityDeps } from './deps';

/** Sends one chunk's requests upstream and writes their answers; see ChunkRunner. */
export function processChunkActivity(deps: ActivityDeps) {
  return async function processChunk(input: ProcessChunkInput): Promise<ChunkResult> {
    const runner = await ChunkRunner.resume(deps, input, Context.current());
    return runner.run();
  };
}
