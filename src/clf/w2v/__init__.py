"""``clf w2v``: word2vec pre-training (gensim skip-gram, negative sampling) and imports of
published vectors, both written as the homework's artifacts (``word2vec.pt`` + index files).

Modules: ``config`` (schema of conf/w2v.yaml and its checks), ``corpus`` (token ids of the
chosen splits through the classifier's tokenizer and token cache), ``sentences`` (those ids as
the word lists gensim reads), ``train`` (gensim), ``output`` (the output directory, written
atomically), ``report`` (nearest neighbours of probe words), ``importers`` (word2vec text and
binary, GloVe), ``stage`` and ``convert`` (the two jobs, start to finish).
"""
