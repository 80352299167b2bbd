"""``clf.data.tokenizer.Tokenizer`` gives exactly the homework's ``RegexpTokenizer(r'\\w+')`` tokens.

The homework ran nltk's ``RegexpTokenizer(r'\\w+')``, which up to nltk 3.9 is
``re.findall(r'\\w+', text, re.UNICODE | re.MULTILINE | re.DOTALL)``. nltk 3.10 compiles the
pattern with the third-party ``regex`` engine instead, whose ``\\w`` differs on combining marks,
superscript digits, join controls and a few symbols; pyproject pins nltk below 3.10, so every
comparison here is with the installed nltk itself, the homework's version.
"""

from __future__ import annotations

import random

import nltk
import pytest
from nltk.tokenize import RegexpTokenizer

from clf.data.tokenizer import Tokenizer

NLTK = RegexpTokenizer(r"\w+")
TEXTS = [
    "naïve café Ünïcödé 東京 Straße",
    "I loved it!!! 10/10, would_watch again... don't won't can't 'quoted' ‘curly’ “double”",
    "Great movie.<br /><br />The plot was thin, but the acting<br/>was superb",
    "emoji 😀👍 between😀words and 🎬film🍿",
    "tabs\tand\nnewlines\r\nand\u00a0nbsp\u2003em-space\x0bvt\x0cff",
    "digits 12345 3.14 1,000 ٣٤٥ and under_scores __init__ _ a_b_",
    "Ελληνικά Русский العربية 한국어 ไทย עברית",
    "punctuation-only: !!! ... ??? --- *** «» — – …",
    "",
    "   ",
    "a",
    "x" * 40 + " " + "y" * 17 + "-" + "z" * 16 + "/" + "w" * 8 + "." + "v" * 9,
    "ﬁ ligature, ß, ǅ titlecase, Ⅻ roman, ª º µ",
    "<p class='x'>html <b>bold</b> &amp; entities &lt;3</p>",
]
# text on which nltk >= 3.10 (the regex engine) would differ: combining marks, superscripts, joiners
MARK_TEXTS = [
    "combining e\u0301 and a\u0308 marks; decomposed cafe\u0301 and \u0301leading",
    "superscripts x² y³ ½ ①",
    "mixed\u200bzero\u200cwidth\u200djoiners",
    "हिन्दी देवनागरी",
    "emoji skin tone 👍🏽 and ❤️ variation selector",
    "İstanbul and undertie a‿b Ⓐ",
]


def test_nltk_is_the_homeworks_version():
    major, minor = (int(part) for part in nltk.__version__.split(".")[:2])
    assert (major, minor) < (3, 10), "pyproject pins nltk<3.10; this comparison needs the re engine"


@pytest.mark.parametrize("text", TEXTS + MARK_TEXTS)
def test_same_tokens_as_nltk(text):
    assert Tokenizer()(text) == NLTK.tokenize(text)


def test_combining_marks_split_tokens_as_in_the_homework():
    assert Tokenizer()("cafe\u0301 ok") == ["cafe", "ok"]
    assert Tokenizer()("x²") == ["x²"]


POOL_COMMON = ("abcXYZ019_ " * 3) + "éüßÅ東京çñ😀\t\n\r.,;:!?'\"<>/-–—…«»()[]{}@#$%^&*+=|\\~`\u00a0\u2028٣ǅ"
POOL_MARKS = "\u0301\u0308\u200c\u200d²½\u203f\u24b6\u0903"


def random_texts(pool: str, n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(pool) for _ in range(rng.randint(0, 80))) for _ in range(n)]


@pytest.mark.parametrize("pool,seed", [(POOL_COMMON, 630), (POOL_COMMON + POOL_MARKS * 2, 631)])
def test_same_tokens_as_nltk_on_random_text(pool, seed):
    for text in random_texts(pool, 2000, seed):
        assert Tokenizer()(text) == NLTK.tokenize(text), repr(text)


def test_lowercase_option():
    text = "Naïve CAFÉ Straße ÜBER <BR /> ΣΊΣΥΦΟΣ"
    assert Tokenizer(lowercase=True)(text) == NLTK.tokenize(text.lower())
    assert Tokenizer(lowercase=True)(text) == ["naïve", "café", "straße", "über", "br", "σίσυφος"]
    assert Tokenizer(lowercase=False)(text) == NLTK.tokenize(text)


def test_strip_html_option():
    text = "Great movie.<br /><br />The plot<br/>was <b>thin</b>, a<i>b</i>c &amp; <a href='x'>link</a>"
    tokens = Tokenizer(strip_html=True)(text)
    assert tokens == ["Great", "movie", "The", "plot", "was", "thin", "a", "b", "c", "amp", "link"]
    # without the option, the homework's tokens (br included) are kept
    assert Tokenizer()(text).count("br") == 3
    assert Tokenizer(strip_html=True, lowercase=True)("<BR />Hello<P>World") == ["hello", "world"]


def test_fingerprint_depends_on_options():
    prints = {Tokenizer().fingerprint(), Tokenizer(lowercase=True).fingerprint(),
              Tokenizer(strip_html=True).fingerprint(), Tokenizer(pattern=r"[a-z]+").fingerprint()}
    assert len(prints) == 4
    assert Tokenizer().fingerprint() == Tokenizer().fingerprint()
