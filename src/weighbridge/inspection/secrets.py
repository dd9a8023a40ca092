"""Credentials and personal data left in a model's text artifacts and metadata.

Labs ship config, tokenizer and template files straight out of their training repositories, and
GGUF converters copy metadata verbatim; both are where an API token or an engineer's e-mail ends
up published with the weights. This scan reads those files (never the tensors) and string-typed
metadata values, and reports each hit with its location and a redacted excerpt.

Precision matters as much as recall: a tokenizer vocabulary holds tens of thousands of fragments
("@gmail", "sk-", digit runs), so every pattern demands a complete shape (a whole address, a key
with its fixed prefix and length, a Luhn- or mod-97-valid number) and findings are capped per kind
and file so one noisy file cannot bury the rest.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import json
import math
import re
import struct
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from weighbridge.domain import Finding, Severity

if TYPE_CHECKING:
    from weighbridge.inspection.metadata import ModelMetadata

MAX_BYTES_PER_FILE = 50 * 1024 * 1024  # a tokenizer.json is a few MB; 50 MB bounds a hostile "config"
MAX_FINDINGS_PER_KIND = 5  # per file (or per GGUF); the rest is summarised in one finding
BLOCK_BYTES = 1024 * 1024  # files are matched in blocks of whole lines; a longer line is split ...
_OVERLAP = 512  # ... into blocks that overlap, so a secret across the boundary is still seen whole
MAX_METADATA_ARRAY = 1024  # longer string arrays in GGUF metadata are vocabularies, not prose
MAX_SAFETENSORS_HEADER = 100_000_000

# Text artifacts worth scanning, by file name (case-insensitive glob).
TEXT_GLOBS: tuple[str, ...] = (
    "*.json",
    "*.md",
    "*.txt",
    "*.yaml",
    "*.yml",
    "*.jinja",
    "*.jinja2",
    "*.j2",
    "*.py",
    "*.cfg",
    "*.ini",
    "*.toml",
    "*.env",
    ".env",
    "*.model.txt",
    "chat_template*",
    "*template*",
    "readme*",
    "license*",
    "notice*",
)
# GGUF keys whose values are vocabularies: millions of fragments, never prose.
SKIPPED_GGUF_KEYS = frozenset(
    {"tokenizer.ggml.tokens", "tokenizer.ggml.merges", "tokenizer.ggml.token_type", "tokenizer.ggml.scores"}
)

Category = Literal["credential", "pii", "network"]


@dataclass(frozen=True)
class SecretPattern:
    """One thing to look for. `group` selects the secret inside a larger match (e.g. the value of `api_key=`)."""

    kind: str
    label: str
    regex: re.Pattern[str]
    severity: Severity
    category: Category
    validate: Callable[[str], bool] | None = None
    group: int = 0
    # Lower-case substrings at least one of which every match contains: a block without any of
    # them is skipped, which makes the credential patterns nearly free on a large vocabulary.
    hints: tuple[str, ...] = ()
    # A cheap regex without look-arounds for the same purpose (look-behinds defeat the regex
    # engine's fast scanning; the precise pattern runs only on blocks where this one matches).
    prefilter: re.Pattern[str] | None = None


def _luhn(text: str) -> bool:
    digits = [int(c) for c in text if c.isdigit()]
    if not 13 <= len(digits) <= 19 or len(set(digits)) == 1:
        return False
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _iban(text: str) -> bool:
    compact = text.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return False
    moved = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def _phone(text: str) -> bool:
    return 9 <= sum(c.isdigit() for c in text) <= 15


def _entropy(text: str) -> float:
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


_PLACEHOLDER_WORDS = (
    "your",
    "example_",
    "xxxx",
    "changeme",
    "placeholder",
    "<",
    "${",
    "{{",
    "dummy",
    "redacted",
    "***",
)


def _high_entropy_value(text: str) -> bool:
    """Assignments like `password = "hunter2"` in docs are usually placeholders; real keys look random."""
    lowered = text.lower()
    if any(w in lowered for w in _PLACEHOLDER_WORDS):
        return False
    return len(text) >= 12 and _entropy(text) >= 3.5 and any(c.isdigit() for c in text)


def _ipv4_interesting(text: str) -> bool:
    address = ipaddress.IPv4Address(text)
    if text.endswith(".0") or address.is_loopback or address.is_unspecified or address.is_multicast:
        return False  # network addresses, 127.0.0.1, 0.0.0.0: configuration, not a leak (and ".0" is often a version)
    return not (address.is_link_local or address.is_reserved)


_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"

PATTERNS: tuple[SecretPattern, ...] = (
    SecretPattern(
        "secret.private_key",
        "private key block",
        re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"),
        "critical",
        "credential",
        hints=("private key",),
    ),
    SecretPattern(
        "secret.aws_access_key",
        "AWS access key id",
        re.compile(r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b"),
        "high",
        "credential",
        hints=("akia", "asia", "abia", "acca"),
    ),
    SecretPattern(
        "secret.aws_secret_key",
        "AWS secret access key",
        re.compile(r"aws_secret_access_key[\"']?\s*[:=]\s*[\"']?([A-Za-z0-9/+=]{40})(?![A-Za-z0-9/+=])", re.I),
        "high",
        "credential",
        group=1,
        hints=("aws_secret_access_key",),
    ),
    SecretPattern(
        "secret.github_token",
        "GitHub token",
        re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{50,255})\b"),
        "high",
        "credential",
        hints=("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
    ),
    SecretPattern(
        "secret.gitlab_token",
        "GitLab token",
        re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}"),
        "high",
        "credential",
        hints=("glpat-",),
    ),
    SecretPattern(
        "secret.slack_token",
        "Slack token or webhook",
        re.compile(
            r"\bxox[abposr]-[A-Za-z0-9-]{10,}|https://hooks\.slack\.com/services/T[A-Z0-9]+/B[A-Z0-9]+/[A-Za-z0-9]{16,}"
        ),
        "high",
        "credential",
        hints=("xox", "hooks.slack.com"),
    ),
    SecretPattern(
        "secret.openai_key",
        "OpenAI/Anthropic-style API key",
        re.compile(r"\bsk-(?:proj-|svcacct-|admin-|ant-(?:api\d\d-)?)?[A-Za-z0-9_-]{32,}"),
        "high",
        "credential",
        hints=("sk-",),
    ),
    SecretPattern(
        "secret.hf_token",
        "Hugging Face token",
        re.compile(r"\bhf_[A-Za-z0-9]{30,40}\b"),
        "high",
        "credential",
        hints=("hf_",),
    ),
    SecretPattern(
        "secret.google_api_key",
        "Google API key",
        re.compile(r"\bAIza[0-9A-Za-z_-]{35}"),
        "high",
        "credential",
        hints=("aiza",),
    ),
    SecretPattern(
        "secret.jwt",
        "JSON Web Token",
        re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),
        "high",
        "credential",
        hints=("eyj",),
    ),
    SecretPattern(
        "secret.generic_assignment",
        "credential assignment",
        re.compile(
            r"\b(?:api[_-]?key|apikey|api[_-]?token|access[_-]?token|auth[_-]?token|secret[_-]?key|client[_-]?secret"
            r"|password|passwd|pwd)[\"']?\s*[:=]\s*[\"']?([^\s\"',;]{8,200})",
            re.I,
        ),
        "high",
        "credential",
        validate=_high_entropy_value,
        group=1,
        hints=("key", "token", "secret", "pass", "pwd"),
    ),
    SecretPattern(
        "pii.email",
        "e-mail address",
        re.compile(r"(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@(?:[A-Za-z0-9-]{1,63}\.)+[A-Za-z]{2,24}(?![\w-])"),
        "medium",
        "pii",
        validate=lambda s: not s.lower().startswith("git@"),
        hints=("@",),
    ),
    SecretPattern(
        "pii.phone",
        "phone number",
        re.compile(
            r"(?<![\w+.-])(?:\+\d{1,3}(?:[ .-]?\(?\d{1,4}\)?){2,5}|\(?\d{3}\)?[ .-]\d{3}[ .-]\d{4})(?![\w.-]?\d)(?!\w)"
        ),
        "medium",
        "pii",
        validate=_phone,
        prefilter=re.compile(r"[\d(+][\d ().+-]{7,}\d"),
    ),
    SecretPattern(
        "pii.iban",
        "IBAN",
        re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b"),
        "medium",
        "pii",
        validate=_iban,
        prefilter=re.compile(r"[A-Z]{2}\d{2} ?[A-Z0-9]{4}"),
    ),
    SecretPattern(
        "pii.credit_card",
        "payment card number",
        re.compile(r"(?<![\w-])[3-6]\d{3}(?:[ -]?\d){9,15}(?![\w-])"),
        "medium",
        "pii",
        validate=_luhn,
        prefilter=re.compile(r"[3-6]\d{3}(?:[ -]?\d){9,15}"),
    ),
    SecretPattern(
        "pii.ip_address",
        "IPv4 address",
        re.compile(rf"(?<![\w.]){_OCTET}(?:\.{_OCTET}){{3}}(?![\w]|\.\d)"),
        "low",
        "network",
        validate=_ipv4_interesting,
        prefilter=re.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}"),
    ),
)


@dataclass(frozen=True)
class _Hit:
    pattern: SecretPattern
    value: str
    location: str


def scan_secrets(root: Path, files: Sequence[Path], metadata: ModelMetadata | None) -> list[Finding]:
    """Scan a model's text artifacts and string metadata for credentials and personal data.

    Args:
        root: the submission's root; locations are reported relative to it.
        files: the submission's files (absolute, or relative to `root`). Text-like files are read as
            text, at most `MAX_BYTES_PER_FILE` bytes each; GGUF files contribute their string
            metadata; safetensors files their `__metadata__` strings. Weight bytes are never read.
        metadata: the parsed headers. For a GGUF model its `raw` strings and `chat_template` are
            scanned instead of re-reading the file; when it is None the GGUF is read with
            `gguf.GGUFReader` (memory-mapped; the vocabulary arrays are skipped).

    Severity: private key critical, other credentials high, personal data medium (e-mail and
    phone are low in markdown documentation, where a contact address is usually deliberate),
    public IP addresses low and private ones info.
    """
    findings: list[Finding] = []
    gguf_files: list[Path] = []
    for file in files:
        path = file if file.is_absolute() else root / file
        name = _relative(path, root)
        if not path.is_file():
            continue
        magic = _head(path, 8)
        if magic[:4] == b"GGUF":
            gguf_files.append(path)
        elif path.suffix.lower() == ".safetensors":
            findings.extend(_report(name, _safetensors_hits(path), docs=False))
        elif _is_text_like(path.name):
            hits, truncated = _file_hits(path)
            findings.extend(_report(name, hits, docs=path.suffix.lower() in (".md", ".rst")))
            if truncated:
                findings.append(
                    Finding(
                        kind="secret.scan_truncated",
                        severity="info",
                        message=(
                            f"Only the first {MAX_BYTES_PER_FILE // (1024 * 1024)} MB of {name} "
                            f"({path.stat().st_size:,} bytes) were scanned for secrets; a text file this large "
                            "is unusual. Inspect the rest by hand or ask why it is so large."
                        ),
                        file=name,
                        location=f"byte {MAX_BYTES_PER_FILE}",
                    )
                )
    for path in gguf_files:
        name = _relative(path, root)
        use_metadata = metadata is not None and metadata.format == "gguf" and len(gguf_files) == 1
        strings = _metadata_strings(metadata) if use_metadata and metadata is not None else None
        if strings is None:
            try:
                strings = list(_gguf_strings(path))
            except Exception as exc:  # a malformed header is the format checks' finding, not ours
                findings.append(
                    Finding(
                        kind="secret.scan_incomplete",
                        severity="low",
                        message=(
                            f"The GGUF metadata of {name} could not be read for the secrets scan "
                            f"({type(exc).__name__}); its string values were not checked. See the format findings."
                        ),
                        file=name,
                    )
                )
                continue
        hits = [hit for key, text in strings for hit in _text_hits(text, f"GGUF key {key}")]
        findings.extend(_report(name, hits, docs=False))
    return findings


def _metadata_strings(metadata: ModelMetadata) -> list[tuple[str, str]] | None:
    """String values of `metadata.raw` (and the chat template), or None when raw holds nothing to use."""
    if not metadata.raw and metadata.chat_template is None:
        return None
    strings = list(_strings_of(metadata.raw))
    if metadata.chat_template and not any(k == "tokenizer.chat_template" for k, _ in strings):
        strings.append(("tokenizer.chat_template", metadata.chat_template))
    return strings


def _strings_of(values: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    for key, value in values.items():
        if key in SKIPPED_GGUF_KEYS:
            continue
        if isinstance(value, bytes):
            value = value.decode("utf-8", errors="replace")
        if isinstance(value, str):
            yield key, value
        elif isinstance(value, list | tuple) and len(value) <= MAX_METADATA_ARRAY:
            for i, item in enumerate(value):
                if isinstance(item, str):
                    yield f"{key}[{i}]", item
        elif isinstance(value, Mapping):
            yield from ((f"{key}.{k}", v) for k, v in _strings_of({str(k): v for k, v in value.items()}))


def _gguf_strings(path: Path) -> Iterator[tuple[str, str]]:
    """String-typed KV values of a GGUF, read with gguf's memory-mapped reader."""
    from gguf import GGUFReader, GGUFValueType

    reader = GGUFReader(str(path))
    for key, field in reader.fields.items():
        if key in SKIPPED_GGUF_KEYS or not field.types:
            continue
        if field.types[0] == GGUFValueType.STRING:
            yield key, bytes(field.parts[field.data[0]]).decode("utf-8", errors="replace")
        elif (
            field.types[0] == GGUFValueType.ARRAY
            and field.types[-1] == GGUFValueType.STRING
            and len(field.data) <= MAX_METADATA_ARRAY
        ):
            for i, index in enumerate(field.data):
                yield f"{key}[{i}]", bytes(field.parts[index]).decode("utf-8", errors="replace")


def _safetensors_hits(path: Path) -> list[_Hit]:
    """Strings in a safetensors header's `__metadata__` (free-form, copied by conversion scripts)."""
    try:
        with path.open("rb") as fh:
            (length,) = struct.unpack("<Q", fh.read(8))
            if length > MAX_SAFETENSORS_HEADER:
                return []
            header = json.loads(fh.read(length))
    except (OSError, struct.error, ValueError):
        return []  # a broken header is the format checks' finding
    extra = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(extra, dict):
        return []
    return [
        hit
        for key, text in _strings_of({str(k): v for k, v in extra.items()})
        for hit in _text_hits(text, f"__metadata__.{key}")
    ]


def _file_hits(path: Path) -> tuple[list[_Hit], bool]:
    """All hits in a text file, read in blocks of whole lines up to the byte cap. Returns (hits, truncated).

    Each regex runs over a block (~1 MB) rather than line by line: a pretty-printed tokenizer.json
    has 100k+ lines and per-line matching costs seconds. Line numbers are counted only for hits.
    """
    hits: list[_Hit] = []
    read = 0
    line_no = 1
    carry = ""
    with path.open("rb") as fh:
        while read < MAX_BYTES_PER_FILE:
            budget = MAX_BYTES_PER_FILE - read
            chunk = fh.read(min(BLOCK_BYTES, budget))
            if not chunk:
                return hits, False
            if not chunk.endswith(b"\n"):
                chunk += fh.readline(min(BLOCK_BYTES, budget - len(chunk)))  # finish the line if it is short
            read += len(chunk)
            text = carry + chunk.decode("utf-8", errors="replace")
            first_line = line_no - carry.count("\n")
            for hit, offset in _block_hits(text, skip_before=len(carry)):
                hits.append(_Hit(hit.pattern, hit.value, f"line {first_line + text.count(chr(10), 0, offset)}"))
            line_no += chunk.count(b"\n")
            # A line longer than a block continues in the next one: keep its tail so a secret that
            # straddles the boundary is matched whole there.
            carry = "" if chunk.endswith(b"\n") else text[-_OVERLAP:]
        return hits, bool(fh.read(1))


def _block_hits(text: str, skip_before: int = 0) -> Iterator[tuple[_Hit, int]]:
    lowered = text.lower()
    for pattern in PATTERNS:
        if pattern.hints and not any(h in lowered for h in pattern.hints):
            continue
        if pattern.prefilter is not None and pattern.prefilter.search(text) is None:
            continue
        for match in pattern.regex.finditer(text):
            if match.end() <= skip_before:
                continue  # already seen at the end of the previous block
            value = match.group(pattern.group)
            if pattern.validate is not None and not pattern.validate(value):
                continue
            yield _Hit(pattern, value, ""), match.start()


def _text_hits(text: str, where: str) -> list[_Hit]:
    """Hits in an in-memory string (a metadata value); multi-line values add the line to `where`."""
    lines = text.splitlines() or [text]
    hits: list[_Hit] = []
    for number, line in enumerate(lines, start=1):
        hits.extend(_line_hits(line, where if len(lines) == 1 else f"{where}, line {number}"))
    return hits


def _line_hits(text: str, location: str) -> Iterator[_Hit]:
    for hit, _ in _block_hits(text):
        yield _Hit(hit.pattern, hit.value, location)


def _report(name: str, hits: Iterable[_Hit], *, docs: bool) -> list[Finding]:
    """One finding per distinct value, at most `MAX_FINDINGS_PER_KIND` per kind, then one summary."""
    by_kind: dict[str, list[_Hit]] = {}
    seen: set[tuple[str, str]] = set()
    repeats: Counter[tuple[str, str]] = Counter()
    for hit in hits:
        key = (hit.pattern.kind, hit.value)
        repeats[key] += 1
        if key not in seen:
            seen.add(key)
            by_kind.setdefault(hit.pattern.kind, []).append(hit)
    findings: list[Finding] = []
    for kind, kind_hits in by_kind.items():
        pattern = kind_hits[0].pattern
        severity = _severity(pattern, kind_hits[0].value, docs)
        for hit in kind_hits[:MAX_FINDINGS_PER_KIND]:
            again = repeats[(kind, hit.value)] - 1
            findings.append(
                Finding(
                    kind=kind,
                    severity=_severity(pattern, hit.value, docs),
                    message=_message(pattern, name, hit, again, docs),
                    file=name,
                    location=hit.location,
                    evidence=redact(hit.value) if pattern.kind != "secret.private_key" else hit.value,
                )
            )
        rest = kind_hits[MAX_FINDINGS_PER_KIND:]
        if rest:
            findings.append(
                Finding(
                    kind=kind,
                    severity=severity,
                    message=(
                        f"{len(rest)} more distinct {_plural(pattern.label)} in {name} are not listed one by one "
                        f"(first {MAX_FINDINGS_PER_KIND} shown). Review the whole file: this many suggests "
                        "scraped or leaked data."
                    ),
                    file=name,
                    location=f"{rest[0].location} and {len(rest) - 1} more" if len(rest) > 1 else rest[0].location,
                    evidence=f"{len(rest)} more",
                )
            )
    return findings


_CONTACT_KINDS = frozenset({"pii.email", "pii.phone"})


def _severity(pattern: SecretPattern, value: str, docs: bool) -> Severity:
    if pattern.kind == "pii.ip_address":
        return "info" if ipaddress.IPv4Address(value).is_private else "low"
    if pattern.kind in _CONTACT_KINDS and docs:
        return "low"
    return pattern.severity


def _message(pattern: SecretPattern, name: str, hit: _Hit, again: int, docs: bool) -> str:
    times = f" (and {again} more time{'s' if again > 1 else ''})" if again else ""
    where = f"{name}, {hit.location}{times}"
    if pattern.category == "credential":
        return (
            f"A {pattern.label} appears in {where}. Anyone who downloads the model gets it: the submitter must "
            "revoke it now and remove it from the artifact before release (rotating is not enough once published)."
        )
    if pattern.kind == "pii.ip_address":
        return (
            f"An IPv4 address appears in {where}; it may reveal internal infrastructure. "
            "Ask the submitter to remove it unless it is deliberately public."
        )
    docs_note = (
        " Contact details in documentation are often deliberate; confirm with the submitter."
        if docs and pattern.kind in _CONTACT_KINDS
        else ""
    )
    return (
        f"A {pattern.label} (personal data) appears in {where}. Ask the submitter to remove it or confirm "
        f"consent before release.{docs_note}"
    )


def _plural(label: str) -> str:
    return label + ("es" if label.endswith("s") else "s")


def redact(value: str) -> str:
    """Keep only the first and last 4 characters, so evidence identifies a secret without re-leaking it."""
    if len(value) <= 10:
        return value[:2] + "…" + f"({len(value)} chars)"
    return f"{value[:4]}…{value[-4:]} ({len(value)} chars)"


def _is_text_like(name: str) -> bool:
    lowered = name.lower()
    return any(fnmatch.fnmatchcase(lowered, glob) for glob in TEXT_GLOBS)


def _head(path: Path, size: int) -> bytes:
    with path.open("rb") as fh:
        return fh.read(size)


def _relative(path: Path, root: Path) -> str:
    try:
        relative = path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.name
    return path.name if relative == "." else relative
