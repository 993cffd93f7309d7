import fs from 'node:fs';
import path from 'node:path';
import type OpenAI from 'openai';
import { UPLOAD_PURPOSES, type UploadPurpose } from '../shared/openai';
import { choiceOption, parseCommand, takePositionals } from './args';
import { CONNECTION_HELP, CONNECTION_OPTIONS, createClient } from './client';

export const UPLOAD_USAGE = `usage: besh upload FILE [--purpose PURPOSE] [--json]

Uploads FILE (JSONL; .gz, .zip and .bz2 are decompressed by the server) and prints the new file id.
  --purpose PURPOSE   ${UPLOAD_PURPOSES.join(', ')} (default batch)
  --json              print the whole File object instead of the id
${CONNECTION_HELP}`;

/** Uploads a file from disk without reading it into memory: the file-backed Blob streams into the request. */
export async function uploadFile(
  client: OpenAI,
  file: string,
  purpose: UploadPurpose,
): Promise<OpenAI.FileObject> {
  let blob: Blob;
  try {
    if (!(await fs.promises.stat(file)).isFile()) throw new Error('not a regular file');
    blob = await fs.openAsBlob(file);
  } catch (err) {
    throw new Error(`cannot read ${file}: ${(err as Error).message}`);
  }
  return client.files.create({ file: new File([blob], path.basename(file)), purpose });
}

export async function upload(args: string[]): Promise<void> {
  const { values, positionals } = parseCommand(args, UPLOAD_USAGE, {
    ...CONNECTION_OPTIONS,
    purpose: { type: 'string' },
    json: { type: 'boolean' },
  });
  const [file] = takePositionals(positionals, ['FILE'], UPLOAD_USAGE);
  const purpose = choiceOption(values.purpose ?? 'batch', '--purpose', UPLOAD_PURPOSES);
  const created = await uploadFile(createClient(values), file, purpose);
  console.log(values.json ? JSON.stringify(created, null, 2) : created.id);
}
