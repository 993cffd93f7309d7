import Router from '@koa/router';
import fs from 'node:fs';
import path from 'node:path';
import { BATCH_STATUSES, CANCELLABLE_STATUSES, TERMINAL_STATUSES } from '../../src/batches/lifecycle';
import { projectRoot } from '../../src/paths';

// The page only talks to this origin and runs no inline code, so user text that slipped into markup could not run.
const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'none'",
].join('; ');

interface Asset {
  type: string;
  body: Buffer;
}

/**
 * The lifecycle's status groups for the page, ahead of app.js in the same file: written once in
 * src/batches/lifecycle.ts, and still only the page's own two scripts (the CSP allows no inline code).
 */
const LIFECYCLE_SCRIPT = `window.BESH_LIFECYCLE = ${JSON.stringify({
  statuses: BATCH_STATUSES,
  cancellable: CANCELLABLE_STATUSES,
  terminal: TERMINAL_STATUSES,
})};\n`;

/**
 * The dashboard page and its static files, without auth: they hold no data, the page asks the /v1 API with the
 * key the operator types in. Read once at startup; tsc does not copy them, so they are found from the project
 * root whether running from sources or from dist/.
 */
export function pageRouter(): Router {
  const dir = path.join(projectRoot, 'api', 'dashboard');
  // chart.js's `exports` hide dist/chart.umd.js, but its main entry lives in the same folder.
  const chartDist = path.dirname(require.resolve('chart.js'));
  const read = (file: string, type: string): Asset => ({ type, body: fs.readFileSync(file) });
  const assets = new Map<string, Asset>([
    ['/', read(path.join(dir, 'index.html'), 'text/html; charset=utf-8')],
    [
      '/dashboard/app.js',
      {
        type: 'text/javascript; charset=utf-8',
        body: Buffer.concat([Buffer.from(LIFECYCLE_SCRIPT), fs.readFileSync(path.join(dir, 'app.js'))]),
      },
    ],
    ['/dashboard/app.css', read(path.join(dir, 'app.css'), 'text/css; charset=utf-8')],
    [
      '/dashboard/vendor/chart.umd.js',
      read(path.join(chartDist, 'chart.umd.js'), 'text/javascript; charset=utf-8'),
    ],
  ]);

  const router = new Router();
  for (const [route, asset] of assets) {
    router.get(route, (ctx) => {
      ctx.set({
        'Cache-Control': 'no-cache',
        'Content-Security-Policy': CSP,
        'X-Content-Type-Options': 'nosniff',
        'Referrer-Policy': 'no-referrer',
      });
      ctx.type = asset.type;
      ctx.body = asset.body;
    });
  }
  return router;
}
