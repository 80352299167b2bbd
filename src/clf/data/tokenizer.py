"""The homework's tokenizer, ``nltk.tokenize.RegexpTokenizer(r'\\w+')``, without nltk.

nltk's ``tokenize`` is ``re.findall`` with flags UNICODE | MULTILINE | DOTALL; calling the
compiled pattern directly gives the same tokens and skips a method call per document.
``ngrams=2`` adds bigram tokens after a document's words; which pairs depends on the
vocabulary, so they are added to token ids (``clf.data.ngrams``): calling a tokenizer gives words.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, replace

NLTK_FLAGS = re.UNICODE | re.MULTILINE | re.DOTALL
_HTML_TAG = re.compile(r"<[^>]{0,200}>")


@dataclass(frozen=True)
class Tokenizer:
    pattern: str = r"\w+"
    lowercase: bool = False
    strip_html: bool = False
    ngrams: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "_regexp", re.compile(self.pattern, NLTK_FLAGS))

    @classmethod
    def from_config(cls, cfg) -> "Tokenizer":
        return cls(pattern=cfg.pattern, lowercase=cfg.lowercase, strip_html=cfg.strip_html, ngrams=cfg.ngrams)

    def preprocess(self, text: str) -> str:
        """Text as the pattern sees it (HTML tags replaced by spaces if ``strip_html``)."""
        return _HTML_TAG.sub(" ", text) if self.strip_html else text

    def without_preprocessing(self) -> "Tokenizer":
        return replace(self, strip_html=False)

    def words_only(self) -> "Tokenizer":
        """The same tokenizer without bigrams (what word vectors and the word vocabulary see)."""
        return replace(self, ngrams=1)

    def __call__(self, text: str) -> list[str]:
        text = self.preprocess(text)
        if self.lowercase:
            text = text.lower()
        return self._regexp.findall(text)  # type: ignore[attr-defined]

    def fingerprint(self) -> str:
        """Identifies the token stream this tokenizer produces (for cache keys)."""
        spec = {"pattern": self.pattern, "lowercase": self.lowercase, "strip_html": self.strip_html,
                "html": _HTML_TAG.pattern, "flags": NLTK_FLAGS, "v": 1}
        if self.ngrams != 1:   # keys of word-only caches stay what they were
            spec["ngrams"] = self.ngrams
        return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]
