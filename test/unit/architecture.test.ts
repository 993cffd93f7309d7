// The layering of the code, read from its imports: main/ → api/, temporal/ → workflows/, activities/ → src/.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { projectRoot } from '../../src/paths';

type Layer = 'main' | 'api' | 'temporal' | 'workflows' | 'activities' | 'src';

/** What each layer may import besides itself; a workflow may import activities only as `import type`. */
const MAY_IMPORT: Record<Layer, Layer[]> = {
  main: ['api', 'temporal', 'workflows', 'activities', 'src'],
  api: ['src'],
  temporal: ['workflows', 'activities', 'src'],
  workflows: ['src'],
  activities: ['src'],
  src: [],
};
const TYPE_ONLY_ALLOWED: Partial<Record<Layer, Layer[]>> = { workflows: ['activities'] };
const LAYERS = Object.keys(MAY_IMPORT) as Layer[];

interface Edge {
  from: string;
  to: string;
  /** Every import of `to` in `from` is `import type`, a `type` specifier or an `import('…')` type. */
  typeOnly: boolean;
}

const layerOf = (file: string) => LAYERS.find((l) => file.startsWith(`${l}/`));
const show = (e: Edge) => `${e.from} → ${e.to}${e.typeOnly ? ' (type)' : ''}`;

function tsFiles(dir: string): string[] {
  return fs.readdirSync(path.join(projectRoot, dir), { withFileTypes: true }).flatMap((d) => {
    const rel = `${dir}/${d.name}`;
    if (d.isDirectory()) return tsFiles(rel);
    return d.name.endsWith('.ts') ? [rel] : [];
  });
}

/** The module specifiers `source` imports for their values (everything but type-only forms). */
function valueSpecifiers(source: ts.SourceFile): Set<string> {
  const out = new Set<string>();
  const literal = (n: ts.Node | undefined) => (n && ts.isStringLiteral(n) ? n.text : undefined);
  const visit = (node: ts.Node): void => {
    let spec: string | undefined;
    if (ts.isImportDeclaration(node)) {
      const clause = node.importClause;
      const bindings = clause?.namedBindings;
      const allTypes =
        clause !== undefined &&
        (clause.isTypeOnly ||
          (!clause.name &&
            bindings !== undefined &&
            ts.isNamedImports(bindings) &&
            bindings.elements.length > 0 &&
            bindings.elements.every((e) => e.isTypeOnly)));
      if (!allTypes) spec = literal(node.moduleSpecifier);
    } else if (ts.isExportDeclaration(node)) {
      const named = node.exportClause;
      const allTypes =
        node.isTypeOnly ||
        (named !== undefined &&
          ts.isNamedExports(named) &&
          named.elements.length > 0 &&
          named.elements.every((e) => e.isTypeOnly));
      if (!allTypes) spec = literal(node.moduleSpecifier);
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      if (!node.isTypeOnly) spec = literal(node.moduleReference.expression);
    } else if (
      ts.isCallExpression(node) &&
      (node.expression.kind === ts.SyntaxKind.ImportKeyword ||
        (ts.isIdentifier(node.expression) && node.expression.text === 'require'))
    ) {
      spec = literal(node.arguments[0]);
    }
    if (spec !== undefined) out.add(spec);
    ts.forEachChild(node, visit);
  };
  visit(source);
  return out;
}

/** The file a relative specifier names, as a path from the project root; undefined for packages. */
function resolve(from: string, spec: string): string | undefined {
  if (!spec.startsWith('.')) return undefined;
  const base = path.posix.normalize(path.posix.join(path.posix.dirname(from), spec));
  const found = [base, `${base}.ts`, `${base}/index.ts`].find((f) =>
    fs.statSync(path.join(projectRoot, f), { throwIfNoEntry: false })?.isFile(),
  );
  assert.ok(found, `${from} imports ${spec}, which is not a file`);
  return found;
}

/** One edge per (importing file, imported file) among the layers' files; value wins over type. */
function importEdges(): Edge[] {
  const edges = new Map<string, Edge>();
  for (const from of LAYERS.flatMap(tsFiles)) {
    const text = fs.readFileSync(path.join(projectRoot, from), 'utf8');
    const values = valueSpecifiers(ts.createSourceFile(from, text, ts.ScriptTarget.Latest, true));
    for (const { fileName: spec } of ts.preProcessFile(text, true, true).importedFiles) {
      const to = resolve(from, spec);
      if (to === undefined || !layerOf(to)) continue;
      const key = `${from}\n${to}`;
      const typeOnly = !values.has(spec) && (edges.get(key)?.typeOnly ?? true);
      edges.set(key, { from, to, typeOnly });
    }
  }
  return [...edges.values()];
}

/** Tarjan's strongly connected components with more than one file, or a file importing itself. */
function cycles(edges: Edge[]): string[][] {
  const next = new Map<string, string[]>();
  for (const e of edges) next.set(e.from, [...(next.get(e.from) ?? []), e.to]);
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const connect = (v: string) => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const w of next.get(v) ?? []) {
      if (!index.has(w)) {
        connect(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      component.push(w);
    } while (w !== v);
    if (component.length > 1 || next.get(v)?.includes(v)) out.push(component.sort());
  };
  for (const v of next.keys()) if (!index.has(v)) connect(v);
  return out;
}

/** A cycle's files and the imports among them, one per line. */
function describeCycle(component: string[], edges: Edge[]): string {
  const inside = edges.filter((e) => component.includes(e.from) && component.includes(e.to));
  return [component.join(', '), ...inside.map((e) => `  ${show(e)}`)].map((l) => `        ${l}`).join('\n');
}

describe('architecture', () => {
  const edges = importEdges();

  it('reads the imports of every layer', () => {
    for (const layer of LAYERS)
      assert.ok(
        edges.some((e) => layerOf(e.from) === layer),
        `no import read from ${layer}/`,
      );
  });

  it('imports only downward: main → api, temporal → workflows, activities → src', () => {
    const upward = edges.filter((e) => {
      const from = layerOf(e.from)!;
      const to = layerOf(e.to)!;
      if (from === to || MAY_IMPORT[from].includes(to)) return false;
      return !(e.typeOnly && TYPE_ONLY_ALLOWED[from]?.includes(to));
    });
    assert.deepEqual(upward.map(show), [], 'imports against the layering');
  });

  it('has no import cycle, not even one closed by a type import', () => {
    const found = cycles(edges);
    assert.deepEqual(found, [], `import cycles:\n${found.map((c) => describeCycle(c, edges)).join('\n')}`);
  });
});
