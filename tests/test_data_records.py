"""``read_records``: every problem in an input CSV is one line naming the file, row and problem."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from clf.data.records import read_records
from clf.errors import ClfError

HEADER = b"inst_id,text,label\n"

# name -> (file name, content, words the message must contain)
BAD_FILES = {
    "missing column": ("a.csv", b"inst_id,text\n1,hello\n", ["missing column 'label'", "inst_id, text"]),
    "missing text column": ("a.csv", b"inst_id,review,label\n1,hello,1\n", ["missing column 'text'"]),
    "empty text": ("a.csv", HEADER + b"1,hello,1\n2,,0\n", ["row 2", "inst_id=2", "empty"]),
    "blank text": ("a.csv", HEADER + b"1,hello,1\n2,hi,0\n3,  \t ,0\n", ["row 3", "inst_id=3", "empty"]),
    "short row (NaN text)": ("a.csv", HEADER + b"1,hello,1\n2\n", ["row 2", "empty"]),
    "label 2": ("a.csv", HEADER + b"1,hello,1\n2,x,2\n", ["row 2", "inst_id=2", "label '2'", "not 0 or 1"]),
    "label word": ("a.csv", HEADER + b"1,hello,pos\n", ["row 1", "label 'pos'"]),
    "label missing": ("a.csv", HEADER + b"1,hello,1\n2,x,\n", ["row 2", "label ''"]),
    "label 0.5": ("a.csv", HEADER + b"1,hello,0.5\n", ["row 1", "label '0.5'"]),
    "duplicate inst_id": ("a.csv", HEADER + b"7,hello,1\n8,x,0\n7,y,0\n", ["duplicate inst_id 7", "rows 1 and 3"]),
    "duplicate string inst_id": ("a.csv", HEADER + b"a1,hello,1\nb2,x,0\nb2,y,0\n",
                                 ["duplicate inst_id 'b2'", "rows 2 and 3"]),
    "empty inst_id": ("a.csv", HEADER + b"1,hello,1\n,x,0\n", ["row 2", "empty inst_id"]),
    "undecodable byte": ("a.csv", HEADER + b"1,hello,1\n2,caf\xff,0\n", ["line 3", "0xff", "utf-8"]),
    "empty file": ("a.csv", b"", ["empty"]),
    "whitespace file": ("a.csv", b"\n\n  \n", ["empty"]),
    "header only": ("a.csv", HEADER, ["no data rows"]),
    "unterminated quote": ("a.csv", HEADER + b'1,"unterminated,1\n2,x,0\n', ["malformed CSV"]),
    "extra field in a later row": ("a.csv", HEADER + b"1,a,1\n2,b,0,extra\n", ["malformed CSV", "line 3"]),
    "extra fields in every row": ("a.csv", HEADER + b"1,a,1,x\n2,b,0,y\n", ["malformed CSV", "row 1"]),
    "extra fields in the first row": ("a.csv", HEADER + b"1,a,1,x,y\n2,b,0\n", ["malformed CSV", "row 1"]),
    "not gzip": ("a.csv.gz", HEADER + b"1,a,1\n", ["not a valid gzip file"]),
    "truncated gzip": ("a.csv.gz", gzip.compress(HEADER + b"1,a,1\n" * 50)[:30], ["not a valid gzip file"]),
}


def read(path: Path, **kwargs):
    options = dict(id_column="inst_id", text_column="text", label_column="label")
    options.update(kwargs)
    return read_records(path, **options)


@pytest.mark.parametrize("name", BAD_FILES)
def test_bad_file_is_one_line_error_naming_file_row_and_problem(tmp_path, name):
    file_name, content, needles = BAD_FILES[name]
    path = tmp_path / file_name
    path.write_bytes(content)
    with pytest.raises(ClfError) as info:
        read(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    for needle in needles:
        assert needle in message, message
    assert "np." not in message  # no numpy reprs (np.int64(7)) in user-facing text


def test_missing_file(tmp_path):
    with pytest.raises(ClfError, match="no such file"):
        read(tmp_path / "nope.csv")


def test_good_file(tmp_path):
    path = tmp_path / "a.csv"
    path.write_bytes(HEADER + b'10,"Hello, world",1\n11,"multi\nline ""quoted""",0\n12,NaN,1.0\n13, x ,0.0\n')
    records = read(path)
    assert records.inst_ids.tolist() == [10, 11, 12, 13]
    assert records.inst_ids.dtype == np.int64
    assert records.texts == ["Hello, world", 'multi\nline "quoted"', "NaN", " x "]
    assert records.labels.tolist() == [1, 0, 1, 0]
    assert len(records) == 4


def test_string_ids_are_kept(tmp_path):
    path = tmp_path / "a.csv"
    path.write_bytes(HEADER + b"a1,x,1\nb2,y,0\n")
    assert read(path).inst_ids.tolist() == ["a1", "b2"]


def test_csv_gz_is_read(tmp_path):
    path = tmp_path / "a.csv.gz"
    path.write_bytes(gzip.compress(HEADER + "1,naïve café,1\n2,b,0\n".encode()))
    records = read(path)
    assert records.texts == ["naïve café", "b"]
    assert records.labels.tolist() == [1, 0]


def test_other_encoding(tmp_path):
    path = tmp_path / "a.csv"
    path.write_bytes(HEADER + "1,café,1\n".encode("latin-1"))
    with pytest.raises(ClfError, match="0xe9"):
        read(path)
    assert read(path, encoding="latin-1").texts == ["café"]
    with pytest.raises(ClfError, match="unknown encoding"):
        read(path, encoding="no-such-codec")


def test_test_file_without_label_column(tmp_path):
    path = tmp_path / "test.csv"
    path.write_bytes(b"inst_id,text\n1,hello\n2,world\n")
    records = read(path, require_labels=False)
    assert records.labels is None
    assert records.texts == ["hello", "world"]
    with pytest.raises(ClfError, match="missing column 'label'"):
        read(path, require_labels=True)


def test_test_file_with_empty_label_column(tmp_path):
    path = tmp_path / "test.csv"
    path.write_bytes(HEADER + b"1,hello,\n2,world,\n")
    assert read(path, require_labels=False).labels is None
    path.write_bytes(HEADER + b"1,hello,1\n2,world,7\n")
    with pytest.raises(ClfError, match="row 2"):
        read(path, require_labels=False)


def test_configurable_column_names(tmp_path):
    path = tmp_path / "a.csv"
    path.write_bytes(b"id,review,sentiment,extra\n1,good,1,z\n2,bad,0,z\n")
    records = read(path, id_column="id", text_column="review", label_column="sentiment")
    assert records.inst_ids.tolist() == [1, 2]
    assert records.texts == ["good", "bad"]
    assert records.labels.tolist() == [1, 0]
    with pytest.raises(ClfError, match="missing column 'inst_id'"):
        read(path)
