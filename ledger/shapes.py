"""What a secret looks like in text: the rules the scrubber applies, and where in a text each can start.

Three kinds of evidence, each a rule:
- a value's own shape: the prefixes providers give their keys (`ghp_`, `glpat-`, `sk_live_`, `AIza`, `npm_`,
  `hvs.`, Vault's legacy `s.`), JWTs, PEM and PGP private key blocks, Slack webhooks, bearer tokens;
- a URL's password: `scheme://user:password@host` keeps its user and loses its password;
- a name: a value written after a name that says it is a secret (`DB_PASSWORD=…`, `password: …`,
  `"api_key": "…"`, `Authorization: Basic …`). `secret_name` is the one test of a name, for JSON keys too.

Every rule can start matching only where one of its heads is: the scrubber finds heads with `str.find`
(a scan in C, far cheaper than a regex at every character) and tries the rules there alone, instead of trying
every rule at every character. `spans(text, everywhere(text))` is the slow scan the shortcut must agree with.
"""

import re
from collections.abc import Iterable, Sequence
from functools import lru_cache

__all__ = ["SHORTEST", "Span", "everywhere", "heads_in", "secret_name", "spans"]

Span = tuple[int, int]

# -- names ---------------------------------------------------------------------------------------------------

_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
"""The words of a name, however it is joined: `db_password`, `X-Api-Key`, `SecretAccessKey`, `APIKey`."""
_PASSWORD_WORDS = frozenset({"password", "passwords", "passwd", "passphrase", "pwd"})
_ANY_WORD = _PASSWORD_WORDS | {"secret", "secrets", "token", "credential", "credentials", "authorization", "apikey"}
"""A name with one of these words anywhere names a secret: `secret_id`, `github_token`, `password_hash`."""
_LAST_WORD = frozenset({"key", "auth", "dsn", "pass"})
"""Common words that name a secret only as a name's last word: `api_key`, `basic_auth`, `sentry_dsn`, `db_pass`,
`key`; not `key_id`, `keys`, `auth_method`, `pass_rate`."""
_GLUED = ("password", "passwd", "passphrase", "secret", "token", "apikey", "accesskey", "secretkey", "privatekey")
"""Names written as one word end in these: `PGPASSWORD`, `clientsecret`, `authtoken`."""
_CACHED_NAME = 64


def _name_kind(name: str) -> str | None:
    words = [word.lower() for word in _WORD.findall(name)]
    if not words:
        return None
    last = words[-1]
    if last in _PASSWORD_WORDS or last == "pass" or last.endswith(_GLUED[:3]):
        return "password"
    if last in _LAST_WORD or any(word in _ANY_WORD or word.endswith(_GLUED) for word in words):
        return "secret"
    return None


_cached_kind = lru_cache(maxsize=2048)(_name_kind)


def _kind(name: str) -> str | None:
    """None, "secret", or "password": the name of a value people choose, so a plain word may be one."""
    # Names repeat (an inventory's keys), so they are cached; a long one is the caller's text, not a name.
    return _cached_kind(name) if len(name) <= _CACHED_NAME else _name_kind(name)


def secret_name(name: str) -> bool:
    """Whether a value under this name (a JSON key, or a name in text followed by `=` or `:`) is a secret."""
    return _kind(name) is not None


# -- values written after a name -----------------------------------------------------------------------------

_IDENTIFIER = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")
_NAMED = re.compile(
    r"(?<![A-Za-z0-9_.-])(?P<name>[A-Za-z0-9_.-]++)(?P<close>\\?[\"']|\*{1,2})?"
    r"(?P<before>[ \t]*)(?::=|[:=])\*{0,2}(?P<after>[ \t]*)"
    r"(?:\"(?P<dq>[^\"\n]*)\"|'(?P<sq>[^'\n]*)'|\\\"(?P<eq>[^\"\\\n]*)\\\"|`(?P<bq>[^`\s]+)`"
    r"|(?i:basic|bearer|token|digest|negotiate|ntlm)[ \t]+(?P<credential>[^\s\"'`&;,}\]\\]{8,})"
    r"|(?P<bare>[^\s\"'`&;,}\]\\]+))"
)
"""A name, the separator, and the value: quoted (in JSON text quoted again, `\\"`), after an auth scheme, or
bare up to a space, a quote, a backslash (JSON's escapes), `&`, `;` or `,`."""
_PLACEHOLDER = re.compile(
    r"(?:\$\{|\{\{|<|\[REDACTED).*|\$[A-Z_][A-Z0-9_]*|%[A-Za-z_][A-Za-z0-9_]*%|\*+|\.\.\.|…|x{3,}|X{3,}"
    r"|(?i:null|none|nil|true|false|redacted)",
    re.S,
)
"""Values that stand for a secret without being one: a template, a variable, a mask, a null, or a value
scrubbed already. Those that begin a template (`${`, `{{`, `<`) or the marker count whole, as a value's end may
have cut them (at a `}` or a `]`)."""
_ALNUM = re.compile(r"[A-Za-z0-9]")
_NOT_PROSE = re.compile(r"[^A-Za-z./_:-]")
"""A digit or a symbol: what a word of prose does not hold and a token or a password nearly always does."""
_LINE_END = re.compile(r"[ \t]*(?:\r?\n|\Z)")
_PUNCTUATION = "()[]{}<>.,;:!?"


def _named_value(text: str, start: int) -> tuple[int, Span] | None:
    """A value after a secret's name at `start`: quoted, after an auth scheme, or bare when it is not prose."""
    match = _NAMED.match(text, start)
    if match is None or (kind := _kind(match["name"])) is None:
        return None
    for group in ("dq", "sq", "eq"):
        if (value := match[group]) is not None:
            return (match.end(), match.span(group)) if value and not _PLACEHOLDER.fullmatch(value) else None
    if (match["close"] or "*")[-1] != "*":  # `"token": 12` in JSON: a secret there is a string, and is quoted
        return None
    if (value := match["credential"]) is not None:
        return None if _PLACEHOLDER.fullmatch(value) else (match.end(), match.span("credential"))
    group = "bq" if match["bq"] is not None else "bare"
    value, core = match[group], match[group].strip(_PUNCTUATION)
    if not _ALNUM.search(value) or _PLACEHOLDER.fullmatch(value) or _PLACEHOLDER.fullmatch(core):
        return None
    tight = not match["before"] and not match["after"]  # `name=value`: never prose
    # A plain word after `password:` is a password when nothing follows it on its line (`password: changeme`),
    # and prose otherwise (`password: see Vault`); a token or key is never a plain word.
    alone = kind == "password" and core == value and _LINE_END.match(text, match.end()) is not None
    if tight or _NOT_PROSE.search(core) or alone:
        return match.end(), match.span(group)
    return None


# -- values by their own shape ---------------------------------------------------------------------------------


class _Rule:
    """A pattern tried at a start; group 1, when the pattern has it, is the secret, else the whole match is."""

    def __init__(self, heads: Sequence[str], shortest: int, pattern: str, *, flags: int = 0) -> None:
        self.heads = tuple(heads)
        self.shortest = shortest
        """The fewest characters a match has: shorter text is not searched for this rule's heads."""
        self.pattern = re.compile(pattern, flags)

    def at(self, text: str, start: int) -> tuple[int, Span] | None:
        match = self.pattern.match(text, start)
        if match is None:
            return None
        if match.lastindex is None:
            return match.end(), match.span()
        if _PLACEHOLDER.fullmatch(match[1]):
            return None
        return match.end(), match.span(1)


_NAME_HEADS = ("pass", "pwd", "secret", "token", "credential", "key", "auth", "dsn")
"""A secret's name holds one of these (any case): the name rule is tried where the name holding one starts."""

_RULES = (
    _Rule(["-----BEGIN"], 27,
          r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\Z)",
          flags=re.S),
    _Rule(["sk-"], 19, r"\bsk-[A-Za-z0-9_-]{16,}"),
    _Rule(["sk_live_", "rk_live_", "sk_test_", "rk_test_"], 24, r"\b[sr]k_(?:live|test)_[A-Za-z0-9]{16,}"),
    _Rule(["hv"], 24, r"\bhv[sbr]\.[A-Za-z0-9_-]{20,}"),
    _Rule(["s."], 26, r"(?<![\w.-])s\.[A-Za-z0-9]{24}(?![\w.-])"),
    _Rule(["ghp_", "gho_", "ghu_", "ghs_", "ghr_"], 24, r"\bgh[pousr]_[A-Za-z0-9]{20,}"),
    _Rule(["github_pat_"], 33, r"\bgithub_pat_[A-Za-z0-9_]{22,}"),
    _Rule(["glpat-", "gldt-", "glrt-", "glptt-"], 25, r"\bgl(?:pat|dt|rt|ptt)-[A-Za-z0-9_-]{20,}"),
    _Rule(["xox"], 15, r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
    _Rule(["hooks.slack.com/"], 45,
          r"hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/+-]{20,}"),
    _Rule(["npm_"], 40, r"\bnpm_[A-Za-z0-9]{36}(?![A-Za-z0-9])"),
    _Rule(["AIza"], 39, r"\bAIza[0-9A-Za-z_-]{35}"),
    _Rule(["AKIA", "ASIA"], 20, r"\bA[KS]IA[0-9A-Z]{16}\b"),
    _Rule(["eyJ"], 29, r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    _Rule(["://"], 6, r"://[^\s/?#@:\"'`<>]*:([^\s/?#\"'`<>]+)@"),
    # Heads in any case, looked for in the lowered text.
    _Rule(["bearer"], 19, r"(?i:bearer)\s+[A-Za-z0-9._~+/=-]{12,}"),
    # `aws configure` asks "AWS Secret Access Key [None]: …"; credentials files and env say it with a name.
    _Rule(["aws"], 47,
          r"(?<![A-Za-z])(?i:aws)[\w .-]{0,30}?(?i:secret|key)[\w .\[\]-]{0,30}?[\"']?[ \t]*[:=][ \t]*"
          r"[\"']?([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])", flags=re.ASCII),
)  # fmt: skip
"""Every rule but the name rule, in the order they are tried at one start."""

_ANY_CASE_HEADS = {"bearer": len(_RULES) - 2, "aws": len(_RULES) - 1}
_NAME_RULE = len(_RULES)
_CASED = sorted(
    ((index, rule) for index, rule in enumerate(_RULES) if index not in _ANY_CASE_HEADS.values()),
    key=lambda pair: pair[1].shortest,
)
"""Shortest first, so a short text stops looking once no other rule can match it."""
_ANY_CASE_SHORTEST = min(_RULES[index].shortest for index in _ANY_CASE_HEADS.values())
_UNNAMED_SHORTEST = min(rule.shortest for rule in _RULES if not any(":" in head for head in rule.heads))
"""The shortest match of a rule that needs no `:` or `=`: the name rule needs one, and so does a rule whose
head holds a `:` (the URL's `://`)."""
_ANY_CASE = re.compile("(?=(" + "|".join([*_NAME_HEADS, *_ANY_CASE_HEADS]) + "))", re.I | re.A)
"""Every place any of those heads starts, overlapping ones too (`awsecret`)."""

SHORTEST = 5
"""No rule matches fewer characters than this (`pwd=x`)."""


def heads_in(text: str) -> list[tuple[int, int]]:
    """Where a rule may start, and which (its index in `_RULES`; the name rule is `len(_RULES)`), in order."""
    find, size = text.find, len(text)
    # Most short strings (a call's action, an inventory's values) hold no separator, and no other rule fits.
    named = find(":") >= 0 or find("=") >= 0
    if not named and size < _UNNAMED_SHORTEST:
        return []
    found: set[tuple[int, int]] = set()
    for index, rule in _CASED:
        if rule.shortest > size:
            break
        for head in rule.heads:
            at = find(head)
            while at >= 0:
                found.add((at, index))
                at = find(head, at + 1)
    if named or size >= _ANY_CASE_SHORTEST:
        found.update(_any_case_heads(text, named))
    return sorted(found)


def _any_case_heads(text: str, named: bool) -> Iterable[tuple[int, int]]:
    lowered, size = text.lower(), len(text)
    heads = [*(_NAME_HEADS if named else ()), *_ANY_CASE_HEADS]
    if len(lowered) == size:
        places = [(at, head) for head in heads for at in _places(lowered, head)]
    else:  # a character whose lower case is longer (`İ`) shifts every place after it
        places = [(m.start(), m[1].lower()) for m in _ANY_CASE.finditer(text)]
    for at, head in places:
        if (index := _ANY_CASE_HEADS.get(head)) is not None:
            if _RULES[index].shortest <= size:
                yield at, index
        elif named:
            while at > 0 and text[at - 1] in _IDENTIFIER:  # the name holding the head starts here
                at -= 1
            yield at, _NAME_RULE


def _places(text: str, head: str) -> Iterable[int]:
    at = text.find(head)
    while at >= 0:
        yield at
        at = text.find(head, at + 1)


def everywhere(text: str) -> list[tuple[int, int]]:
    """Every rule at every character: what `heads_in` must agree with, found the slow way."""
    return [(at, index) for at in range(len(text)) for index in range(_NAME_RULE + 1)]


def spans(text: str, starts: Iterable[tuple[int, int]]) -> list[Span]:
    """The secrets in `text`, left to right: at each start in order, the first rule that matches there. A start
    inside an earlier match is skipped, as a regular expression's scan would skip it."""
    found: list[Span] = []
    done = 0
    for at, index in starts:
        if at < done:
            continue
        match = _named_value(text, at) if index == _NAME_RULE else _RULES[index].at(text, at)
        if match is not None:
            done, secret = match
            found.append(secret)
    return found
