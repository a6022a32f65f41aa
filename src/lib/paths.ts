import path from 'node:path';

/** `file` is `folder` itself or lies below it (both absolute and normalised, e.g. by realpath). */
export function isInside(file: string, folder: string): boolean {
  const rel = path.relative(folder, file);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel));
}
