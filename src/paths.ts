import fs from 'node:fs';
import path from 'node:path';

/** The checkout's root (the folder with package.json), whether running from sources or from dist/. */
export const projectRoot = (() => {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error('package.json not found above ' + __dirname);
    dir = up;
  }
  return dir;
})();
