import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { projectRoot } from '../../src/project';

// Every relative link in README.md and docs/*.md leads to a file of the repository, and a link to a
// heading of a Markdown page (`page.md#anchor`, `#anchor`) to a heading that page has, so the docs stay
// whole when a page is split, renamed or a heading reworded.

/** GitHub's anchor for a heading (github-slugger): lower case, punctuation dropped, each space a hyphen. */
function anchorOf(heading: string): string {
  return heading
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
    .replace(/ /g, '-');
}

/** The lines of a Markdown text outside fenced code blocks, with their 1-based numbers. */
function proseLines(text: string): { line: string; number: number }[] {
  const lines: { line: string; number: number }[] = [];
  let fenced = false;
  text.split('\n').forEach((line, index) => {
    if (/^\s*```/.test(line)) fenced = !fenced;
    else if (!fenced) lines.push({ line, number: index + 1 });
  });
  return lines;
}

function anchorsOf(text: string): Set<string> {
  const anchors = new Set<string>();
  for (const { line } of proseLines(text)) {
    const heading = /^#{1,6} (.*)$/.exec(line);
    if (!heading?.[1]) continue;
    const base = anchorOf(heading[1]);
    let anchor = base;
    for (let n = 1; anchors.has(anchor); n += 1) anchor = `${base}-${n}`;
    anchors.add(anchor);
  }
  return anchors;
}

/** The relative links of one Markdown file that lead nowhere, as `file:line: target (why)`. */
function brokenLinks(file: string, root: string): string[] {
  const text = readFileSync(file, 'utf8');
  const broken: string[] = [];
  for (const { line, number } of proseLines(text)) {
    // Code spans hold no links, but a link's text may be one: keep the brackets, drop the code.
    const prose = line.replace(/`[^`]*`/g, 'code');
    for (const match of prose.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
      const target = match[1] ?? '';
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:
      const [pathPart = '', anchor] = target.split('#', 2);
      const resolved = pathPart ? path.resolve(path.dirname(file), decodeURIComponent(pathPart)) : file;
      const where = `${path.relative(root, file)}:${number}: ${target}`;
      if (!resolved.startsWith(root + path.sep) && resolved !== root) broken.push(`${where} (outside the repository)`);
      else if (!existsSync(resolved)) broken.push(`${where} (no such file)`);
      else if (anchor && resolved.endsWith('.md') && statSync(resolved).isFile()) {
        if (!anchorsOf(readFileSync(resolved, 'utf8')).has(anchor)) broken.push(`${where} (no such heading)`);
      }
    }
  }
  return broken;
}

describe('links in README.md and docs/', () => {
  const root = projectRoot();
  const docs = path.join(root, 'docs');
  const pages = [
    path.join(root, 'README.md'),
    ...readdirSync(docs)
      .filter((name) => name.endsWith('.md'))
      .map((name) => path.join(docs, name)),
  ];

  it('finds the pages', () => {
    expect(pages.length).toBeGreaterThan(5);
  });

  it.each(pages.map((page) => [path.relative(root, page), page]))('%s: every relative link resolves', (_, page) => {
    expect(brokenLinks(page, root)).toEqual([]);
  });

  it('reports a missing file, a missing heading and a link out of the repository, but not code or URLs', () => {
    // A made-up page: good links of every kind, then one broken link of each kind.
    const fixture = path.join(root, 'tests', 'fixtures', 'docs-links', 'page.md');
    expect(brokenLinks(fixture, root).map((line) => line.replace(/^.*?:\d+: /, ''))).toEqual([
      'missing.md (no such file)',
      '../../../docs/architecture.md#no-such-heading (no such heading)',
      '#nowhere (no such heading)',
      '../../../../outside.md (outside the repository)',
    ]);
  });
});
