# A small Lua 5.4 lexer for nomade's lint scripts (scripts/layers,
# scripts/funclen): names, keywords and strings with their line numbers,
# comments and numbers dropped. It is no parser; it only needs to know
# where code is, so that a "require" or an "end" inside a string or a
# comment is never taken for one.
import re

_LONG_OPEN = re.compile(r"\[(=*)\[")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"0[xX][0-9a-fA-F.]*(?:[pP][+-]?\d+)?|\d*\.?\d+(?:[eE][+-]?\d+)?")


def _long_bracket(src, i, line):
    """At a '[' that opens a long bracket: (its text, index after it, lines in it); else None."""
    m = _LONG_OPEN.match(src, i)
    if not m:
        return None
    close = "]" + m.group(1) + "]"
    end = src.find(close, m.end())
    if end < 0:
        raise SyntaxError("line %d: unfinished long bracket" % line)
    body = src[m.end():end]
    return body, end + len(close), body.count("\n")


def tokens(src):
    """Yields (kind, value, line) with kind "name" or "string"; punctuation as kind "op"."""
    i, line, n = 0, 1, len(src)
    while i < n:
        c = src[i]
        if c == "\n":
            line += 1
            i += 1
        elif c in " \t\r\f\v":
            i += 1
        elif src.startswith("--", i):
            lb = _long_bracket(src, i + 2, line) if src.startswith("[", i + 2) else None
            if lb:
                i, line = lb[1], line + lb[2]
            else:
                j = src.find("\n", i)
                i = n if j < 0 else j
        elif c == "[" and _LONG_OPEN.match(src, i):
            body, i2, lines = _long_bracket(src, i, line)
            yield "string", body, line
            i, line = i2, line + lines
        elif c in "\"'":
            j, start = i + 1, line
            out = []
            while j < n and src[j] != c:
                if src[j] == "\\":
                    if src[j + 1] == "\n":
                        line += 1
                    out.append(src[j:j + 2])
                    j += 2
                    continue
                if src[j] == "\n":
                    raise SyntaxError("line %d: unfinished string" % line)
                out.append(src[j])
                j += 1
            yield "string", "".join(out), start
            i = j + 1
        elif c.isalpha() or c == "_":
            m = _NAME.match(src, i)
            yield "name", m.group(0), line
            i = m.end()
        elif c.isdigit() or (c == "." and i + 1 < n and src[i + 1].isdigit()):
            i = _NUMBER.match(src, i).end() or i + 1
        else:
            yield "op", c, line
            i += 1
