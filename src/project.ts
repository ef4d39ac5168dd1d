import { existsSync } from 'node:fs';
import path from 'node:path';

/** The repository root (where glue/ lives), found from this file whether it runs from src/ or dist/src/. */
export function projectRoot(): string {
  let dir = __dirname;
  for (;;) {
    if (existsSync(path.join(dir, 'package.json')) && existsSync(path.join(dir, 'glue'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir)
      throw new Error(`cannot find the project root (a folder with package.json and glue/) above ${__dirname}`);
    dir = parent;
  }
}

export const glueDir = (): string => path.join(projectRoot(), 'glue');
