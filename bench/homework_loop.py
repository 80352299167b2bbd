"""The homework's training loop, as its notebook writes it, for a side-by-side baseline.

Batch size 1 through a DataLoader, ``BCELoss`` on a sigmoid, ``torch.optim.AdamW`` (lr 5e-5)
over every parameter (so the whole 55k x 50 embedding matrix is updated densely each step).
Its one bug is fixed the way our model fixes it: the head matrix is a trained parameter.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader


class HomeworkClassifier(nn.Module):
    def __init__(self, vectors: torch.Tensor, num_heads: int = 4) -> None:
        super().__init__()
        vocab_size, dim = vectors.shape
        self.embedding_size, self.num_heads = dim, num_heads
        self.target_embeddings = nn.Embedding(vocab_size, dim)
        self.context_embeddings = nn.Embedding(vocab_size, dim)
        with torch.no_grad():
            self.target_embeddings.weight.copy_(vectors)
        self.head_matrix = nn.Parameter(torch.rand(dim, num_heads) - 0.5)
        self.softmax = nn.Softmax(1)
        self.linear = nn.Linear(num_heads * dim, 1)

    def forward(self, word_ids: torch.Tensor):
        word_embeddings = self.target_embeddings(word_ids)
        attention_matrix = self.softmax(word_embeddings @ self.head_matrix)
        weighted = torch.bmm(attention_matrix.transpose(1, 2), word_embeddings)
        result = self.linear(weighted.view(-1, self.num_heads * self.embedding_size))
        return torch.sigmoid(result).view(-1), attention_matrix


def homework_lists(ids: np.ndarray, offsets: np.ndarray, labels: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """The notebook's ``train_list``: (np.array(word ids), np.array(label)) per document."""
    return [(np.asarray(ids[offsets[i]:offsets[i + 1]], dtype=np.int64), np.array(labels[i]))
            for i in range(len(offsets) - 1)]


def run_homework_loop(vectors: torch.Tensor, train_list, steps: int, seed: int = 0) -> tuple[HomeworkClassifier, float]:
    """Train ``steps`` steps the homework's way; returns the model and seconds per step."""
    torch.manual_seed(seed)
    model = HomeworkClassifier(vectors)
    loader = DataLoader(dataset=train_list, batch_size=1, shuffle=True)
    criterion = nn.BCELoss()
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5)
    start = time.perf_counter()
    done = 0
    while done < steps:
        for word_ids, label in loader:
            if len(word_ids[0]) == 0:  # the notebook's softmax would produce NaN here
                continue
            optimizer.zero_grad()
            prediction, _ = model(word_ids)
            loss = criterion(prediction, label.to(torch.float32))
            loss.backward()
            optimizer.step()
            done += 1
            if done >= steps:
                break
    return model, (time.perf_counter() - start) / steps


@torch.no_grad()
def homework_predict(model: HomeworkClassifier, ids: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """The notebook's evaluation: one document at a time."""
    out = np.zeros(len(offsets) - 1, dtype=np.float32)
    for i in range(len(out)):
        doc = torch.as_tensor(np.asarray(ids[offsets[i]:offsets[i + 1]], dtype=np.int64)).unsqueeze(0)
        out[i] = model(doc)[0].item() if doc.shape[1] else 0.5
    return out
