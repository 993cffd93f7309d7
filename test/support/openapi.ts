import Ajv2020 from 'ajv/dist/2020';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

// OpenAI's own OpenAPI description of the Files and Batches endpoints (a subset of openai/openai-openapi, MIT:
// see the LICENSE file beside it).
const specPath = path.join(__dirname, '..', 'fixtures', 'openapi', 'openai-files-batches.openapi.json');
const spec = JSON.parse(fs.readFileSync(specPath, 'utf8')) as {
  components: { schemas: Record<string, object> };
};

const ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: true });
ajv.addSchema({ $id: 'openai', components: spec.components });

type SchemaName = keyof typeof spec.components.schemas & string;

/**
 * The spec marks many optional fields as plain `integer`/`string`, while OpenAI (and BESH) send them as null
 * when unset; an optional key holding null is read as absent. Required keys are never relaxed.
 */
function dropNullOptionals(value: unknown, schema: Record<string, unknown> | undefined): unknown {
  if (!schema || typeof value !== 'object' || value === null) return value;
  const resolved =
    typeof schema.$ref === 'string' ? spec.components.schemas[schema.$ref.split('/').pop()!] : schema;
  const s = resolved as {
    properties?: Record<string, Record<string, unknown>>;
    required?: string[];
    items?: Record<string, unknown>;
  };
  if (Array.isArray(value)) return value.map((v) => dropNullOptionals(v, s.items));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (v === null && !(s.required ?? []).includes(k)) continue;
    out[k] = dropNullOptionals(v, s.properties?.[k]);
  }
  return out;
}

/** Fails the test when `value` does not match the named schema of OpenAI's spec. */
export function assertOpenApi(name: SchemaName, value: unknown): void {
  const validate = ajv.getSchema(`openai#/components/schemas/${name}`);
  assert.ok(validate, `no schema ${name}`);
  const ok = validate(dropNullOptionals(value, spec.components.schemas[name] as Record<string, unknown>));
  assert.ok(
    ok,
    `${name} does not match OpenAI's schema: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(value).slice(0, 500)}`,
  );
}
