/**
 * Globs over slash-separated paths (config `security.protect`): `**` matches any run of
 * characters, slashes included; `*` any run within one segment; `?` one character but a slash.
 * Nothing else is special.
 */
export function pathGlobToRegExp(glob: string): RegExp {
  let body = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*' && glob[i + 1] === '*') {
      // `**/` also matches no folder at all: `files/**/key` matches `files/key`.
      if (glob[i + 2] === '/') {
        body += '(?:.*/)?';
        i += 2;
      } else {
        body += '.*';
        i++;
      }
    } else if (c === '*') body += '[^/]*';
    else if (c === '?') body += '[^/]';
    else body += c.replace(/[.+^${}()|\\[\]-]/g, '\\$&');
  }
  return new RegExp(`^${body}$`);
}

/** A matcher for many globs: true when `path` matches any of them. */
export function pathMatcher(globs: readonly string[]): (path: string) => boolean {
  const res = globs.map(pathGlobToRegExp);
  return (path) => res.some((re) => re.test(path));
}
