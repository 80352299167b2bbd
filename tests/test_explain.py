"""clf explain on a tiny trained model: the heatmap, and the per-head analysis of a split."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from clf.analysis.heads import analyze_split
from clf.analysis.heatmap import attention_figure
from clf.api import load_run
from clf.cli import main as clf_main


@pytest.fixture(scope="module")
def run(tiny_run):
    return load_run(tiny_run)


@pytest.fixture(scope="module")
def dev(run) -> pd.DataFrame:
    return pd.read_csv(run.config.data.dev)


def test_heatmap_draws_like_visualize_attention(run):
    tokens, weights, _ = run.attention("the plot was excellent and the actors were great")
    fig = attention_figure(tokens, weights)
    ax, colorbar_ax = fig.axes
    (image,) = ax.get_images()
    assert np.asarray(image.get_array()) == pytest.approx(weights.T)
    assert [t.get_text() for t in ax.get_xticklabels()] == tokens
    assert all(t.get_rotation() == 45 and t.get_ha() == "right" and t.get_fontsize() == 16
               for t in ax.get_xticklabels())
    assert ax.get_yticks().tolist() == list(range(run.num_heads))
    assert ax.get_ylabel() == "Attention Head" and colorbar_ax.get_ylabel() == "Probability"
    assert tuple(fig.get_size_inches()) == (len(tokens), 4)


def test_cli_text_prints_label_and_writes_the_heatmap(run, tiny_run, tmp_path, capsys):
    text = "this movie was great and the actors loved it"
    out = tmp_path / "figs" / "att.png"
    assert clf_main(["explain", str(tiny_run), text, "--out", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    probability = float(run.predict(text)[0])
    assert printed[0].startswith(f"label {int(probability >= 0.5)}  P(label=1) = {probability:.4f}")
    assert sum(line.startswith("| ") for line in printed) == 1 + run.num_heads  # header + one row per head
    image = imread(out)
    assert image.shape == (400, 9 * 100, 4)  # 9 tokens: 9 x 4 inches at 100 dpi


def test_cli_text_caps_the_heatmap_width(tiny_run, tmp_path, capsys):
    out = tmp_path / "long.png"
    assert clf_main(["explain", str(tiny_run), " ".join(["good movie"] * 30), "--out", str(out),
                     "--max-words", "12"]) == 0
    assert "the first 12 of 60 tokens" in capsys.readouterr().err
    assert imread(out).shape[1] == 1200


def independent_mass(run, texts: list[str]) -> np.ndarray:
    """Per head and word, attention mass summed over texts, one text at a time."""
    mass = {}
    for text in texts:
        tokens, weights, _ = run.attention(text)
        for position, token in enumerate(tokens):
            word = token if token in run.vocab.index else "<UNK>"
            mass.setdefault(word, np.zeros(run.num_heads))
            mass[word] += weights[position]
    return mass


def test_split_analysis_matches_per_text_computation(run, dev):
    report = analyze_split(run, run.split("dev"), top=5, documents=3)
    assert report.documents == len(dev)
    mass = independent_mass(run, dev["text"].tolist())
    for h, top in enumerate(report.top):
        expected = sorted(mass, key=lambda w: -mass[w][h])[:5]
        assert [t.word for t in top] == expected
        assert [t.share for t in top] == pytest.approx([mass[w][h] / len(dev) for w in expected], abs=1e-5)
    scores = []
    for text in dev["text"]:
        _, weights, _ = run.attention(text)
        pairs = list(combinations(range(run.num_heads), 2))
        scores.append(np.mean([0.5 * np.abs(weights[:, a] - weights[:, b]).sum() for a, b in pairs]))
    expected_docs = dev["inst_id"].to_numpy()[np.argsort(-np.array(scores), kind="stable")[:3]].tolist()
    assert [d.inst_id for d in report.disagreements] == expected_docs
    first = report.disagreements[0]
    assert first.score == pytest.approx(max(scores), abs=1e-5)
    assert first.label == int(dev.set_index("inst_id").loc[first.inst_id, "label"])
    assert len(first.heads) == run.num_heads and all(len(h) == 3 for h in first.heads)


def test_cli_split_prints_and_writes_tables(tiny_run, tmp_path, capsys):
    out = tmp_path / "heads.md"
    assert clf_main(["explain", str(tiny_run), "--split", "dev", "--top", "4", "--docs", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert out.read_text().strip() == printed.strip()
    mass_header = next(line for line in printed.splitlines() if line.startswith("| rank"))
    assert [c.strip() for c in mass_header.split("|")[1:-1]] == ["rank", "head 0", "head 1", "head 2", "head 3"]
    assert sum(line.startswith("| ") and line.split("|")[1].strip().isdigit() for line in printed.splitlines()) == 4 + 2


@pytest.mark.parametrize("args", [[], ["some text", "--split", "dev"], ["text", "--top", "0"]])
def test_cli_usage_errors_exit_2(tiny_run, capsys, args):
    with pytest.raises(SystemExit) as exit_info:
        clf_main(["explain", str(tiny_run), *args])
    assert exit_info.value.code == 2
    assert "clf explain: error:" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [(["--split", "unlabeled"], "no 'unlabeled' split"), (["?!"], "no tokens"),
                                           (["text", "--checkpoint", "nope.pt"], "nope.pt: no such file")])
def test_cli_bad_input_is_one_line_exit_2(tiny_run, capsys, args, message):
    assert clf_main(["explain", str(tiny_run), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("clf explain: error:") and message in err[0]


def test_cli_missing_run_dir_exits_2(tmp_path, capsys):
    assert clf_main(["explain", str(tmp_path / "nope"), "text"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no such run directory" in err[0]
