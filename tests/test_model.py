"""The DocumentAttentionClassifier: padding-invariant, equal to the homework formula, heads trained."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from clf.data.batching import count_words
from clf.data.cache import TokenizedSplit
from clf.model import DocumentAttentionClassifier, WordBags, distinct_ids
from clf.optim import LazyAdamW

V, D, H = 50, 8, 3


def make_model(hidden_layers: int = 0, positional: bool = False, sparse: bool = False, max_len: int = 512,
               seed: int = 0) -> DocumentAttentionClassifier:
    torch.manual_seed(seed)
    model = DocumentAttentionClassifier(V, D, H, hidden_layers=hidden_layers, hidden_size=6, dropout=0.5,
                                        positional=positional, max_len=max_len, sparse=sparse)
    with torch.no_grad():  # make the output layer matter as much as the rest
        model.output.weight.normal_()
        model.output.bias.normal_()
        if model.positions is not None:
            model.positions.weight.normal_(std=0.5)
    return model.eval()


def random_docs(n: int = 12, seed: int = 1, max_len: int = 15) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    lengths = [0, 1, max_len] + torch.randint(1, max_len + 1, (n - 3,), generator=g).tolist()
    return [torch.randint(0, V, (n_tokens,), generator=g) for n_tokens in lengths]


def pad(docs: list[torch.Tensor], pad_id: int, extra: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(max(len(d) for d in docs), 1) + extra
    ids = torch.full((len(docs), width), pad_id, dtype=torch.long)
    mask = torch.zeros(len(docs), width, dtype=torch.bool)
    for i, doc in enumerate(docs):
        ids[i, : len(doc)] = doc
        mask[i, : len(doc)] = True
    return ids, mask


def reference(model: DocumentAttentionClassifier, doc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The homework's formula, one document at a time, written the straightforward way."""
    E = model.embeddings.weight[doc]                                   # [T, D]
    if model.positions is not None:
        positions = torch.arange(len(doc)).clamp(max=model.max_len - 1)
        E = E + model.positions.weight[positions]
    if len(doc) == 0:
        a = torch.zeros(0, H)
        summaries = torch.zeros(H, D)
    else:
        a = torch.softmax(E @ model.heads, dim=0)                      # [T, H], over tokens
        summaries = torch.stack([a[:, h] @ E for h in range(H)])       # [H, D]: a^T E per head
    x = summaries.reshape(-1)                                          # concat of the H summaries
    for layer in model.hidden:
        x = layer(x)
    logit = model.output.weight[0] @ x + model.output.bias[0]
    return logit, a


CASES = list(itertools.product([0, 1], [False, True]))  # (hidden_layers, positional)


@pytest.mark.parametrize("hidden_layers,positional", CASES)
def test_padding_does_not_change_results(hidden_layers, positional):
    model = make_model(hidden_layers, positional)
    docs = random_docs()
    with torch.no_grad():
        batch_logits, batch_attention = model(*pad(docs, model.pad_id, extra=4))
        for i, doc in enumerate(docs):
            logits, attention = model(*pad([doc], model.pad_id))
            torch.testing.assert_close(torch.sigmoid(batch_logits[i]), torch.sigmoid(logits[0]), atol=1e-6, rtol=0)
            torch.testing.assert_close(batch_attention[i, : len(doc)], attention[0, : len(doc)], atol=1e-6, rtol=0)
            assert (batch_attention[i, len(doc):] == 0).all()
        # a different companion set changes nothing either
        shuffled = list(reversed(docs))
        other_logits, _ = model(*pad(shuffled, model.pad_id))
        torch.testing.assert_close(other_logits.flip(0), batch_logits, atol=1e-6, rtol=0)


@pytest.mark.parametrize("hidden_layers,positional", CASES)
def test_equals_reference_formula(hidden_layers, positional):
    model = make_model(hidden_layers, positional, max_len=10)  # docs up to 15 tokens: clamped positions
    docs = random_docs()
    with torch.no_grad():
        logits, attention = model(*pad(docs, model.pad_id, extra=2))
        for i, doc in enumerate(docs):
            want_logit, want_attention = reference(model, doc)
            torch.testing.assert_close(logits[i], want_logit, atol=1e-5, rtol=0)
            torch.testing.assert_close(attention[i, : len(doc)], want_attention, atol=1e-5, rtol=0)


@pytest.mark.parametrize("hidden_layers,positional", CASES)
@pytest.mark.parametrize("sparse", [False, True])
def test_gradients_equal_reference(hidden_layers, positional, sparse):
    model = make_model(hidden_layers, positional, sparse=sparse)
    model.hidden.eval()
    docs = random_docs(seed=3)
    target = torch.tensor([i % 2 for i in range(len(docs))], dtype=torch.float32)
    logits, _ = model(*pad(docs, model.pad_id, extra=1))
    torch.nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="sum").backward()
    got = {name: (p.grad.to_dense() if p.grad.is_sparse else p.grad).clone() for name, p in model.named_parameters()}
    if sparse:
        grad = model.embeddings.weight.grad
        assert grad.is_sparse
        present = sorted(set(torch.cat(docs).tolist()))
        rows = grad.coalesce().indices()[0].tolist()
        assert [r for r in rows if r != model.pad_id] == present  # only the batch's rows (and padding's)
        if model.pad_id in rows:
            assert (grad.to_dense()[model.pad_id] == 0).all()
    model.zero_grad(set_to_none=True)
    want = torch.stack([reference(model, doc)[0] for doc in docs])
    torch.nn.functional.binary_cross_entropy_with_logits(want, target, reduction="sum").backward()
    for name, p in model.named_parameters():
        torch.testing.assert_close(got[name], p.grad, atol=1e-5, rtol=1e-4, msg=name)


def test_attention_sums_to_one_over_real_tokens():
    for hidden_layers, positional in CASES:
        model = make_model(hidden_layers, positional)
        docs = random_docs()
        with torch.no_grad():
            _, attention = model(*pad(docs, model.pad_id, extra=3))
        for i, doc in enumerate(docs):
            sums = attention[i].sum(dim=0)
            expected = torch.ones(H) if len(doc) else torch.zeros(H)
            torch.testing.assert_close(sums, expected, atol=1e-6, rtol=0)
            assert (attention[i] >= 0).all()


def test_zero_token_document_gives_finite_output():
    for hidden_layers, positional in CASES:
        model = make_model(hidden_layers, positional).train()
        ids, mask = pad([torch.tensor([], dtype=torch.long)] * 2, model.pad_id)
        logits, attention = model(ids, mask)
        assert torch.isfinite(logits).all()
        assert (attention == 0).all()
        logits.sum().backward()
        for name, p in model.named_parameters():
            if p.grad is not None:
                grad = p.grad.to_dense() if p.grad.is_sparse else p.grad
                assert torch.isfinite(grad).all(), name


@pytest.mark.parametrize("sparse", [False, True])
def test_head_matrix_is_trained(sparse):
    model = make_model(sparse=sparse).train()
    names = dict(model.named_parameters())
    assert "heads" in names and names["heads"].shape == (D, H) and names["heads"].requires_grad
    assert any(p is model.heads for p in model.parameters())
    before = model.heads.detach().clone()
    embeddings_before = model.embeddings.weight.detach().clone()
    optimizer = LazyAdamW(model.parameters(), lr=0.1)
    docs = random_docs()
    logits, _ = model(*pad(docs, model.pad_id))
    torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.ones(len(docs))).backward()
    assert model.heads.grad is not None and model.heads.grad.abs().sum() > 0
    optimizer.step()
    assert not torch.equal(model.heads.detach(), before)
    assert not torch.equal(model.embeddings.weight.detach(), embeddings_before)
    assert torch.equal(model.embeddings.weight[model.pad_id].detach(), torch.zeros(D))


def test_head_init_range_and_vectors():
    vectors = torch.randn(V, D)
    model = DocumentAttentionClassifier(V, D, H, head_init=0.25, vectors=vectors, freeze=True)
    assert model.heads.abs().max() <= 0.25
    assert torch.equal(model.embeddings.weight[:V].detach(), vectors)
    assert not model.embeddings.weight.requires_grad
    assert model.pad_id == V


@pytest.mark.parametrize("hidden_layers,positional", CASES)
def test_table_values_and_distinct_ids_found_earlier_give_each_batch_its_own_result(hidden_layers, positional):
    """``predict`` makes the whole table's values once per split, and a run finds dev's distinct
    ids once. A batch that takes the whole table computes bit for bit the same given either or
    both; a small one (alone: a product over its own rows only) the same up to rounding."""
    model = make_model(hidden_layers, positional)
    with torch.inference_mode():
        table = model.table_values()
        for docs, whole in ((random_docs(seed=2), True), (random_docs(n=3, seed=3, max_len=4), False)):
            ids, mask = pad(docs, model.pad_id)
            found = distinct_ids(ids, V + 1)
            assert model.takes_whole_table(ids) is whole
            alone = model(ids, mask)
            for given in (dict(table_values=table), dict(table_values=table, distinct=found), dict(distinct=found)):
                logits, attention = model(ids, mask, **given)
                if whole or "table_values" not in given:
                    assert torch.equal(alone[0], logits) and torch.equal(alone[1], attention), given.keys()
                else:
                    torch.testing.assert_close(logits, alone[0], rtol=0, atol=1e-6)
                    torch.testing.assert_close(attention, alone[1], rtol=0, atol=1e-6)


def as_bags(docs: list[torch.Tensor], max_tokens: int | None = None) -> WordBags:
    """``docs`` as word bags, made as a run makes dev's (``count_words``, ``distinct_ids``)."""
    lengths = [len(d) for d in docs]
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    ids = torch.cat(docs).numpy().astype(np.int32)
    split = TokenizedSplit("dev", ids, offsets, None, np.arange(len(docs)))
    word_ids, starts, counts = count_words(split, np.arange(len(docs)), max_tokens)
    rows, words = distinct_ids(word_ids, V + 1)
    return WordBags(torch.arange(len(docs)), rows, words, starts, counts.float())


@pytest.mark.parametrize("max_tokens", [None, 4])
def test_word_bags_score_as_tokens_do(max_tokens):
    """A document as word counts (an empty one, repeated words, truncated ones) gets the logit
    ``forward`` gives its tokens, up to float32 rounding."""
    model = make_model()
    docs = random_docs(n=40, seed=4)
    bags = as_bags(docs, max_tokens)
    assert bags.counts.max() > 1 and len(bags.rows) < sum(len(d) for d in docs)  # repeats were counted
    with torch.inference_mode():
        ids, mask = pad([d[:max_tokens] for d in docs], model.pad_id)
        tokens, _ = model(ids, mask)
        torch.testing.assert_close(model.bag_logits(bags), tokens, rtol=0, atol=1e-5)
    assert len(docs[0]) == 0 and torch.equal(model.bag_logits(bags)[0], model.output.bias[0])


def test_a_word_bag_whose_words_all_score_far_below_the_top_is_not_trusted():
    """Bags subtract each head's largest score over all their words: a document whose words all
    score 200 below it would sum float32 zeros, and gets NaN (its caller scores it token by
    token), while documents holding the top word score as their tokens do."""
    model = make_model()
    with torch.no_grad():
        model.embeddings.weight[7] = torch.linalg.pinv(model.heads.T) @ torch.full((H,), 200.0)  # scores 200
    assert bool((model.embeddings.weight[7] @ model.heads > 199).all())
    docs = [torch.tensor([7, 3, 3]), torch.tensor([1, 2, 3]), torch.tensor([], dtype=torch.long)]
    with torch.inference_mode():
        logits = model.bag_logits(as_bags(docs))
        tokens, _ = model(*pad(docs, model.pad_id))
    assert logits[1].isnan() and not logits[[0, 2]].isnan().any()
    torch.testing.assert_close(logits[[0, 2]], tokens[[0, 2]], rtol=0, atol=1e-5)


@pytest.mark.parametrize("hidden_layers,positional", [(1, False), (0, True)])
def test_only_a_model_of_word_counts_scores_bags(hidden_layers, positional):
    model = make_model(hidden_layers, positional)
    assert not model.scores_word_bags
    with pytest.raises(ValueError, match="positions and hidden layers"):
        model.bag_logits(as_bags(random_docs()))
    assert make_model().scores_word_bags
