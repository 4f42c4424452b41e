/**
 * The relative links of the markdown pages a package ships, checked against what it ships: each link must
 * name a file of the package, and its `#anchor` (if any) a heading of that page, slugged as GitHub and
 * npm's site do. Fenced code and inline code are not prose: links there are ignored.
 */
import { readFile } from 'node:fs/promises'
import { join, posix } from 'node:path'

/** `[label](target)` and `![alt](target)` (an optional "title" after the target). */
const LINK = /\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g
const ABSOLUTE = /^[a-z][a-z0-9+.-]*:/i

function prose(markdown: string): string {
  return markdown.replace(/^```[\s\S]*?^```/gm, '').replace(/`[^`\n]*`/g, '')
}

/** The anchors of a page's headings: lower case, punctuation dropped, spaces as '-', repeats numbered. */
export function headingAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>()
  const seen = new Map<string, number>()
  for (const [, heading] of markdown
    .replace(/^```[\s\S]*?^```/gm, '')
    .matchAll(/^#{1,6}\s+(.+?)\s*#*$/gm)) {
    const slug = heading!
      .toLowerCase()
      .replace(/[^\p{L}\p{N}_\- ]/gu, '')
      .replaceAll(' ', '-')
    const n = seen.get(slug) ?? 0
    seen.set(slug, n + 1)
    anchors.add(n ? `${slug}-${n}` : slug)
  }
  return anchors
}

/**
 * Every broken relative link of the `.md` files among `files` (paths relative to `dir`, '/'-separated,
 * as `npm pack --json` lists them), as `page: target (why)`. Empty when all resolve.
 */
export async function brokenLinks(dir: string, files: readonly string[]): Promise<string[]> {
  const shipped = new Set(files)
  const text = new Map<string, string>()
  const read = async (path: string): Promise<string> => {
    if (!text.has(path)) text.set(path, await readFile(join(dir, path), 'utf8'))
    return text.get(path)!
  }
  const broken: string[] = []
  for (const page of files.filter((f) => f.endsWith('.md'))) {
    for (const [, target] of prose(await read(page)).matchAll(LINK)) {
      if (ABSOLUTE.test(target!)) continue
      const [path, anchor] = target!.split('#', 2) as [string, string | undefined]
      const file = path ? posix.normalize(posix.join(posix.dirname(page), path)) : page
      if (!shipped.has(file)) broken.push(`${page}: ${target} (${file} is not in the package)`)
      else if (anchor && file.endsWith('.md') && !headingAnchors(await read(file)).has(anchor))
        broken.push(`${page}: ${target} (no heading #${anchor} in ${file})`)
    }
  }
  return broken
}
