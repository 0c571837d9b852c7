#!/usr/bin/env python3
"""Generate tiny random encoder checkpoints plus Hugging Face reference outputs, one folder per family.

thaw-train's encoder-family parity tests load each folder (config.json, model.safetensors,
tokenizer.json) and compare their own forward pass against expected.json, which holds what
Hugging Face transformers computes for the same weights: the token ids of a padded batch of
single sentences and of a padded batch of sentence pairs, the base encoder's last hidden state,
MLM logits at a few positions, and the per-layer hidden states at those positions.

Families: bert, roberta, xlm-roberta, distilbert, electra (ElectraForMaskedLM, the generator),
electra-discriminator (ElectraForPreTraining), deberta-v2 (v3-style, default legacy MLM head
`cls.predictions.*`), deberta-v2-lmhead (same encoder, `legacy=False`, so the MLM head is named
`lm_predictions.lm_head.*` as in the microsoft/deberta-v3-* hub files) and modernbert.

Every tokenizer is trained here with the `tokenizers` library on a few hundred lines of English
taken from Python standard-library docstrings (fixed module list, sorted attribute names), laid
out with the same normalizer / pre-tokenizer / decoder that the family's transformers tokenizer
class builds, then wrapped in that class via `tokenizer_object=` so that the saved tokenizer.json
carries the family's own post-processor (template) and special tokens:
  bert, distilbert, electra*  WordPiece (lowercase); the vocabulary comes from tokenizers'
                              BpeTrainer (see train_wordpiece: WordPieceTrainer is not reproducible)
  roberta, modernbert         byte-level BPE (BpeTrainer)
  xlm-roberta, deberta-v2*    Unigram with Metaspace (UnigramTrainer picks the pieces; their scores
                              are re-estimated deterministically, see rescore_unigram)
Model weights are drawn from fixed seeds with larger-than-default scales (matrices N(0, 0.2), norm
weights 1 + N(0, 0.1), biases N(0, 0.1)) so that attention is far from uniform and every tensor
matters.

Everything is deterministic (fixed seeds, one torch thread, no timestamps): rerunning writes
byte-identical files, provided the same Python (its docstrings are the training text), torch,
transformers and tokenizers versions are used (see scripts/requirements-hf.txt).

Usage (from the repository root):
    .venv-hf/bin/python scripts/make_family_fixtures.py
    .venv-hf/bin/python scripts/make_family_fixtures.py --out /tmp/families --only bert roberta
    .venv-hf/bin/python scripts/make_family_fixtures.py --check   # reload the folders, compare
"""
import argparse
import importlib
import inspect
import json
import math
import os
import random
import sys
import zlib
from pathlib import Path

# Determinism knobs that must be set before torch / tokenizers spin up their thread pools.
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from safetensors import safe_open  # noqa: E402
from tokenizers import (  # noqa: E402
    AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = "crates/train/tests/fixtures/families"

# ---------------------------------------------------------------------------------------------
# Training text: standard-library docstrings.
# ---------------------------------------------------------------------------------------------
CORPUS_MODULES = [
    "argparse", "base64", "bisect", "collections", "copy", "csv", "dataclasses", "datetime",
    "difflib", "enum", "fractions", "functools", "gzip", "heapq", "html", "itertools", "json",
    "logging", "os", "pathlib", "pprint", "random", "shutil", "statistics", "string", "tempfile",
    "textwrap", "typing", "zipfile",
]
CORPUS_MAX_LINES = 700

# Test inputs. "{mask}" is replaced by the family's mask token. Lengths run from ~3 tokens to
# ~30 tokens (the longest must exceed 2 * ModernBERT's local window of 8).
SENTENCES = [
    "Hi.",
    "Return a new list of items.",
    "The {mask} is written to the file before the function returns.",
    "If the argument is given, the object is converted to a string and written to the file.",
]
PAIRS = [
    ["How do I read a file?", "Open it with the built-in function and read the data."],
    ["Is it sorted?", "Yes."],
]

HIDDEN = 32
LAYERS = 2
HEADS = 4
INTERMEDIATE = 64
MAX_POSITIONS = 64  # usable sequence length for every family
VOCAB = 640  # trained BPE / Unigram vocabulary size (added special tokens come on top)
WORDPIECE_BPE_VOCAB = 430  # BPE size behind the WordPiece vocabulary (which ends up near VOCAB)
MAX_TEST_LEN = 40  # the script fails if a test input tokenizes longer than this

# Independent seed per folder, so regenerating one family never depends on the others.
SEEDS = {
    "bert": 101,
    "roberta": 102,
    "xlm-roberta": 103,
    "distilbert": 104,
    "electra": 105,
    "electra-discriminator": 106,
    "deberta-v2": 107,
    "deberta-v2-lmhead": 107,  # same seed: identical encoder weights, different MLM head layout
    "modernbert": 108,
}
FAMILIES = list(SEEDS)


def corpus_lines():
    """A deterministic list of English lines from standard-library docstrings."""
    seen, lines = set(), []

    def add(doc):
        if not doc:
            return
        for raw in doc.splitlines():
            line = " ".join(raw.split())
            if len(line) < 20 or len(line.split()) < 4 or not line.isascii() or line.startswith(">>>"):
                continue
            if line not in seen:
                seen.add(line)
                lines.append(line)

    for name in CORPUS_MODULES:
        module = importlib.import_module(name)
        add(inspect.getdoc(module))
        for attr in sorted(vars(module)):
            if attr.startswith("_"):
                continue
            obj = vars(module)[attr]
            if inspect.isfunction(obj) or inspect.isclass(obj) or inspect.isbuiltin(obj):
                add(inspect.getdoc(obj))
    if len(lines) < 300:
        raise SystemExit(f"only {len(lines)} corpus lines; expected a few hundred")
    return lines[:CORPUS_MAX_LINES]


# ---------------------------------------------------------------------------------------------
# Tokenizers. Each backend mirrors the pipeline the transformers 5 class builds in its __init__
# (which is also what AutoTokenizer rebuilds on load), so tokenizer.json and the reloaded
# tokenizer agree.
# ---------------------------------------------------------------------------------------------
def train_wordpiece(lines, bpe_merges_vocab=WORDPIECE_BPE_VOCAB):
    """A BERT WordPiece vocabulary (lowercase), learned with the `tokenizers` BPE trainer.

    tokenizers' WordPieceTrainer is not reproducible: it creates the "##x" continuation symbols
    in hash-map order, and ties between equally frequent merges are broken by those random ids,
    so the learned token set changes from process to process. Its BpeTrainer without a
    continuation prefix is reproducible (the alphabet ids are sorted). So: learn BPE merges over
    the BERT-normalized, BERT-pre-tokenized text, segment every training word with them, and keep
    each piece as it is used: the first piece of a word as "piece", the others as "##piece"
    (the same construction WordPieceTrainer performs internally), plus every character in both
    forms. Ids: special tokens first, then sorted by (continuation?, length, text)."""
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True)
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    bpe = Tokenizer(models.BPE())
    bpe.normalizer, bpe.pre_tokenizer = normalizer, pre_tokenizer
    bpe.train_from_iterator(lines, trainer=trainers.BpeTrainer(vocab_size=bpe_merges_vocab, show_progress=False))
    pieces = set()
    for line in lines:
        for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(line)):
            for i, token in enumerate(bpe.model.tokenize(word)):
                pieces.add(token.value if i == 0 else "##" + token.value)
            pieces.update(word)
            pieces.update("##" + c for c in word)
    rest = sorted(pieces - set(specials), key=lambda t: (t.startswith("##"), len(t), t))
    tok = Tokenizer(models.WordPiece({t: i for i, t in enumerate(specials + rest)}, unk_token="[UNK]"))
    tok.normalizer, tok.pre_tokenizer = normalizer, pre_tokenizer
    tok.decoder = decoders.WordPiece(prefix="##")
    tok.add_special_tokens(specials)
    return tok


def viterbi(word, scores, max_len):
    """Best segmentation of `word` under unigram log-probabilities (None if a character is unknown)."""
    best = [0.0] + [None] * len(word)
    back = [0] * (len(word) + 1)
    for end in range(1, len(word) + 1):
        for start in range(max(0, end - max_len), end):
            score = scores.get(word[start:end])
            if score is None or best[start] is None:
                continue
            if best[end] is None or best[start] + score > best[end]:
                best[end], back[end] = best[start] + score, start
    if best[-1] is None:
        return None
    pieces, end = [], len(word)
    while end > 0:
        pieces.append(word[back[end]:end])
        end = back[end]
    return pieces[::-1]


def rescore_unigram(tok, specials, unk_token, lines, iterations=4):
    """The trained Unigram's pieces with scores re-estimated deterministically.

    The Unigram trainer picks the same pieces on every run, but its EM sums floats in hash-map
    order, so a few scores move by ~1e-4 from process to process and the id order (by score)
    changes. Keeping the trainer's piece set, the scores are re-estimated here by hard (Viterbi)
    EM over the same pre-tokenized text, starting from length-weighted substring counts as
    SentencePiece seeds do; pieces are then ordered by score (specials first, score 0.0, as the
    trainer writes them)."""
    model = json.loads(tok.to_str())["model"]
    pieces = sorted(p for p, _ in model["vocab"] if p not in specials)
    words = {}
    for line in lines:
        text = tok.normalizer.normalize_str(line) if tok.normalizer is not None else line
        for word, _ in tok.pre_tokenizer.pre_tokenize_str(text):
            words[word] = words.get(word, 0) + 1
    max_len = max(len(p) for p in pieces)
    counts = dict.fromkeys(pieces, 0)
    for word, n in sorted(words.items()):
        for i in range(len(word)):
            for j in range(i + 1, min(len(word), i + max_len) + 1):
                if word[i:j] in counts:
                    counts[word[i:j]] += n * (j - i)
    for _ in range(iterations + 1):
        total = sum(counts.values())
        floor = math.log(min(c for c in counts.values() if c) / total) - 1.0
        scores = {p: (math.log(c / total) if c else floor) for p, c in counts.items()}
        counts = dict.fromkeys(pieces, 0)
        for word, n in sorted(words.items()):
            for piece in viterbi(word, scores, max_len) or []:
                counts[piece] += n
    vocab = [(t, 0.0) for t in specials] + sorted(((p, round(s, 6)) for p, s in scores.items()), key=lambda x: (-x[1], x[0]))
    out = Tokenizer(models.Unigram(vocab, unk_id=list(specials).index(unk_token), byte_fallback=False))
    out.normalizer, out.pre_tokenizer, out.decoder = tok.normalizer, tok.pre_tokenizer, tok.decoder
    out.add_special_tokens(list(specials))
    return out


def train_byte_bpe(lines, special_tokens, vocab_size=VOCAB, normalizer=None):
    tok = Tokenizer(models.BPE(dropout=None, continuing_subword_prefix="", end_of_word_suffix="", fuse_unk=False))
    if normalizer is not None:
        tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=special_tokens,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        continuing_subword_prefix="",  # as RobertaTokenizer builds it (the trainer default would be null)
        end_of_word_suffix="",
        show_progress=False,
    )
    tok.train_from_iterator(lines, trainer=trainer)
    return tok


def train_unigram(lines, special_tokens, unk_token, pre_tokenizer, normalizer, decoder, vocab_size=VOCAB):
    tok = Tokenizer(models.Unigram())
    if normalizer is not None:
        tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizer
    tok.decoder = decoder
    trainer = trainers.UnigramTrainer(
        vocab_size=vocab_size,
        special_tokens=special_tokens,
        unk_token=unk_token,
        shrinking_factor=0.75,
        max_piece_length=16,
        n_sub_iterations=2,
        show_progress=False,
    )
    tok.train_from_iterator(lines, trainer=trainer)
    return rescore_unigram(tok, special_tokens, unk_token, lines)


def make_tokenizer(family, lines):
    """The family's transformers tokenizer around a freshly trained backend."""
    common = {"model_max_length": MAX_POSITIONS}
    if family in ("bert", "distilbert", "electra", "electra-discriminator"):
        backend = train_wordpiece(lines)
        cls = {
            "bert": transformers.BertTokenizer,
            "distilbert": transformers.DistilBertTokenizer,
        }.get(family, transformers.ElectraTokenizerFast)  # ElectraTokenizerFast is BertTokenizer in v5
        return cls(tokenizer_object=backend, do_lower_case=True, **common)
    if family == "roberta":
        backend = train_byte_bpe(lines, ["<s>", "<pad>", "</s>", "<unk>"])
        # As in roberta-base: <mask> is the last id and strips the space on its left.
        backend.add_special_tokens([AddedToken("<mask>", lstrip=True, rstrip=False, normalized=False, special=True)])
        return transformers.RobertaTokenizer(
            tokenizer_object=backend,
            mask_token=AddedToken("<mask>", lstrip=True, rstrip=False, normalized=False, special=True),
            add_prefix_space=False,
            trim_offsets=True,
            **common,
        )
    if family == "xlm-roberta":
        metaspace = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
        backend = train_unigram(
            lines,
            ["<s>", "<pad>", "</s>", "<unk>"],
            "<unk>",
            pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), metaspace]),
            None,
            decoders.Metaspace(replacement="\u2581", prepend_scheme="always"),
        )
        # As in xlm-roberta-base: <mask> is the last id and strips the space on its left.
        backend.add_special_tokens([AddedToken("<mask>", lstrip=True, rstrip=False, normalized=False, special=True)])
        return transformers.XLMRobertaTokenizer(
            tokenizer_object=backend,
            mask_token=AddedToken("<mask>", lstrip=True, rstrip=False, normalized=False, special=True),
            add_prefix_space=True,
            **common,
        )
    if family in ("deberta-v2", "deberta-v2-lmhead"):
        backend = train_unigram(
            lines,
            ["[PAD]", "[CLS]", "[SEP]", "[UNK]"],  # ids 0..3 as in deberta-v3-base
            "[UNK]",
            pre_tokenizers.Sequence([pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")]),
            normalizers.Sequence(
                [
                    normalizers.Replace(Regex(r"\s{2,}|[\n\r\t]"), " "),
                    normalizers.NFC(),
                    normalizers.Strip(left=False, right=True),
                ]
            ),
            decoders.Metaspace(replacement="\u2581", prepend_scheme="always"),
        )
        # As in deberta-v3-base: [MASK] is an added token after the sentencepiece vocabulary.
        backend.add_special_tokens([AddedToken("[MASK]", lstrip=False, rstrip=False, normalized=False, special=True)])
        return transformers.DebertaV2Tokenizer(
            tokenizer_object=backend,
            do_lower_case=False,
            split_by_punct=False,
            add_prefix_space=True,
            **common,
        )
    if family == "modernbert":
        # GPT-NeoX style byte-level BPE (NFC normalizer), BERT-style specials appended at the end
        # as in answerdotai/ModernBERT-base (<|padding|>, <|endoftext|> inside the BPE vocab).
        backend = train_byte_bpe(lines, ["<|endoftext|>", "<|padding|>"], normalizer=normalizers.NFC())
        backend.add_special_tokens(
            [
                AddedToken("[UNK]", normalized=False, special=True),
                AddedToken("[CLS]", normalized=False, special=True),
                AddedToken("[SEP]", normalized=False, special=True),
                AddedToken("[PAD]", normalized=False, special=True),
                AddedToken("[MASK]", lstrip=True, normalized=False, special=True),
            ]
        )
        cls_id, sep_id = backend.token_to_id("[CLS]"), backend.token_to_id("[SEP]")
        backend.post_processor = processors.TemplateProcessing(
            single="[CLS]:0 $A:0 [SEP]:0",
            pair="[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1",
            special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
        )
        return transformers.PreTrainedTokenizerFast(
            tokenizer_object=backend,
            unk_token="[UNK]",
            cls_token="[CLS]",
            sep_token="[SEP]",
            pad_token="[PAD]",
            mask_token=AddedToken("[MASK]", lstrip=True, normalized=False, special=True),
            model_input_names=["input_ids", "attention_mask"],
            clean_up_tokenization_spaces=True,
            **common,
        )
    raise ValueError(family)


# ---------------------------------------------------------------------------------------------
# Models.
# ---------------------------------------------------------------------------------------------
def round_up(n, multiple):
    return (n + multiple - 1) // multiple * multiple


def make_model(family, tok):
    """(model, model_class_name) with the family's tiny config; weights are randomized later."""
    n_tok = len(tok)
    if family == "bert":
        config = transformers.BertConfig(
            vocab_size=n_tok, hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
            intermediate_size=INTERMEDIATE, max_position_embeddings=MAX_POSITIONS, type_vocab_size=2,
            pad_token_id=tok.pad_token_id,
        )
        return transformers.BertForMaskedLM(config)
    if family == "roberta":
        config = transformers.RobertaConfig(
            vocab_size=n_tok, hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
            intermediate_size=INTERMEDIATE,
            # position ids run from pad_token_id + 1, so MAX_POSITIONS usable positions need + 2
            max_position_embeddings=MAX_POSITIONS + tok.pad_token_id + 1, type_vocab_size=1, layer_norm_eps=1e-5,
            pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
        )
        return transformers.RobertaForMaskedLM(config)
    if family == "xlm-roberta":
        config = transformers.XLMRobertaConfig(
            vocab_size=n_tok, hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
            intermediate_size=INTERMEDIATE, max_position_embeddings=MAX_POSITIONS + tok.pad_token_id + 1,
            type_vocab_size=1, layer_norm_eps=1e-5, pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
        )
        return transformers.XLMRobertaForMaskedLM(config)
    if family == "distilbert":
        config = transformers.DistilBertConfig(
            vocab_size=n_tok, dim=HIDDEN, n_layers=LAYERS, n_heads=HEADS, hidden_dim=INTERMEDIATE,
            max_position_embeddings=MAX_POSITIONS, sinusoidal_pos_embds=False, pad_token_id=tok.pad_token_id,
        )
        return transformers.DistilBertForMaskedLM(config)
    if family in ("electra", "electra-discriminator"):
        config = transformers.ElectraConfig(
            vocab_size=n_tok, embedding_size=16, hidden_size=HIDDEN, num_hidden_layers=LAYERS,
            num_attention_heads=HEADS, intermediate_size=INTERMEDIATE, max_position_embeddings=MAX_POSITIONS,
            type_vocab_size=2, pad_token_id=tok.pad_token_id,
        )
        if family == "electra":
            return transformers.ElectraForMaskedLM(config)
        return transformers.ElectraForPreTraining(config)
    if family in ("deberta-v2", "deberta-v2-lmhead"):
        config = transformers.DebertaV2Config(
            # like deberta-v3 (128100 model rows for 128001 tokens), the embedding has spare rows
            vocab_size=round_up(n_tok, 64), hidden_size=HIDDEN, num_hidden_layers=LAYERS,
            num_attention_heads=HEADS, intermediate_size=INTERMEDIATE, max_position_embeddings=MAX_POSITIONS,
            relative_attention=True, position_buckets=8, max_relative_positions=-1,
            pos_att_type=["p2c", "c2p"], share_att_key=True, norm_rel_ebd="layer_norm",
            position_biased_input=False, type_vocab_size=0, layer_norm_eps=1e-7, hidden_act="gelu",
            pad_token_id=tok.pad_token_id, legacy=(family == "deberta-v2"),
        )
        return transformers.DebertaV2ForMaskedLM(config)
    if family == "modernbert":
        config = transformers.ModernBertConfig(
            # like ModernBERT-base (50368 model rows for 50285 tokens), the embedding has spare rows
            vocab_size=round_up(n_tok, 64), hidden_size=HIDDEN, intermediate_size=48, num_hidden_layers=3,
            num_attention_heads=HEADS, max_position_embeddings=MAX_POSITIONS,
            global_attn_every_n_layers=2, local_attention=8,
            global_rope_theta=160000.0, local_rope_theta=10000.0,
            norm_bias=False, norm_eps=1e-5, attention_bias=False, mlp_bias=False, decoder_bias=True,
            classifier_pooling="cls", hidden_activation="gelu",
            pad_token_id=tok.pad_token_id, cls_token_id=tok.cls_token_id, sep_token_id=tok.sep_token_id,
            bos_token_id=tok.cls_token_id, eos_token_id=tok.sep_token_id,
            attn_implementation="eager",
        )
        return transformers.ModernBertForMaskedLM(config)
    raise ValueError(family)


@torch.no_grad()
def randomize(model, seed):
    """Redraw every parameter (tied ones once) from a seeded generator, at scales that keep
    attention patterns and LayerNorm affine parameters far from their trivial defaults."""
    for name, param in model.named_parameters():
        # one generator per tensor, keyed by its name: the draw does not depend on which other
        # tensors exist (deberta-v2 and deberta-v2-lmhead share their encoder weights)
        gen = torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(name.encode()))
        noise = torch.randn(param.shape, generator=gen, dtype=torch.float32)
        if param.ndim >= 2:
            param.copy_(noise * 0.2)
        elif name.endswith("weight"):  # LayerNorm gains
            param.copy_(1.0 + 0.1 * noise)
        else:  # biases
            param.copy_(0.1 * noise)


# ---------------------------------------------------------------------------------------------
# Reference outputs.
# ---------------------------------------------------------------------------------------------
def r7(x):
    """Nested lists of floats rounded to 7 significant digits."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 0:
        return float(f"{float(arr):.7g}")
    return [r7(v) for v in arr]


def special_ids(tok):
    out = {"mask_token": str(tok.mask_token), "mask_token_id": tok.mask_token_id, "pad_token_id": tok.pad_token_id}
    for name in ("cls", "sep", "bos", "eos", "unk"):
        token = getattr(tok, f"{name}_token", None)
        if token is not None:
            out[f"{name}_token"] = str(token)
            out[f"{name}_token_id"] = getattr(tok, f"{name}_token_id")
    return out


def encode(tok, batch, pairs):
    if pairs:
        enc = tok([a for a, _ in batch], [b for _, b in batch], padding=True, return_tensors="pt")
    else:
        enc = tok(batch, padding=True, return_tensors="pt")
    if enc["input_ids"].shape[1] > MAX_TEST_LEN:
        raise SystemExit(f"test input tokenizes to {enc['input_ids'].shape[1]} > {MAX_TEST_LEN} tokens")
    return enc


def pick_positions(enc, pairs, mask_id):
    """About six (batch, position) pairs on real tokens: first / last / middle tokens, the mask
    token, the first token of the second segment of a pair, a token far from the start."""
    lengths = enc["attention_mask"].sum(1).tolist()
    ids = enc["input_ids"]
    if not pairs:
        mask_pos = (ids[2] == mask_id).nonzero()[0, 0].item()
        picks = [(0, 0), (0, lengths[0] - 1), (1, lengths[1] // 2), (2, mask_pos),
                 (3, lengths[3] // 2), (3, lengths[3] - 1)]
    else:
        second = [enc.sequence_ids(b).index(1) for b in range(len(lengths))]
        picks = [(0, 0), (0, second[0] - 1), (0, second[0]), (0, lengths[0] - 1),
                 (1, second[1]), (1, lengths[1] - 1)]
    assert all(0 <= t < lengths[b] for b, t in picks)
    return [[b, t] for b, t in picks]


def model_inputs(enc):
    return {k: v for k, v in enc.items()}


def batch_record(enc, base_out, positions, head_logits, head_key):
    rec = {k: enc[k].tolist() for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc}
    rec["last_hidden_state"] = r7(base_out.last_hidden_state)
    rows = [head_logits[b, t] for b, t in positions]
    if head_key == "mlm":
        rec["mlm"] = {"positions": positions, "logits": r7(torch.stack(rows))}
    else:
        rec["discriminator_logits"] = {"positions": positions, "logits": r7(torch.stack(rows))}
    return rec


def padding_check(tok, base, sentences, enc, base_out):
    """Max |padded-batch - sentence-alone| over real tokens of the single batch."""
    worst = 0.0
    for b, text in enumerate(sentences):
        alone = tok(text, return_tensors="pt")
        out = base(**model_inputs(alone)).last_hidden_state[0]
        n = out.shape[0]
        assert enc["attention_mask"][b].sum().item() == n
        worst = max(worst, (out - base_out.last_hidden_state[b, :n]).abs().max().item())
    return worst


def tensor_table(path):
    with safe_open(str(path), framework="pt") as f:
        names = sorted(f.keys())
        shapes = {k: list(f.get_slice(k).get_shape()) for k in names}
    return names, shapes


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, separators=(",", ":"), ensure_ascii=False)
        f.write("\n")


def build_family(family, out_dir, lines):
    seed = SEEDS[family]
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)

    tok = make_tokenizer(family, lines)
    sentences = [s.replace("{mask}", str(tok.mask_token)) for s in SENTENCES]

    torch.manual_seed(seed)
    model = make_model(family, tok)
    randomize(model, seed)
    model.eval()
    base = model.base_model  # bert / roberta / distilbert / electra / deberta / model (ModernBERT)

    folder = out_dir / family
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.iterdir():
        if stale.is_file():
            stale.unlink()
    model.save_pretrained(folder, safe_serialization=True)
    tok.save_pretrained(folder)
    names, shapes = tensor_table(folder / "model.safetensors")

    head_key = "discriminator" if family == "electra-discriminator" else "mlm"
    expected = {
        "family": family,
        "model_class": type(model).__name__,
        "base_model_attr": model.base_model_prefix,
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__.split("+")[0],
        "attn_implementation": model.config._attn_implementation,
        "seed": seed,
        "tokenizer_class": type(tok).__name__,
        **special_ids(tok),
        "tokenizer_len": len(tok),
        "config_vocab_size": model.config.vocab_size,
        "tensor_names": names,
        "tensor_shapes": shapes,
        "sentences": sentences,
        "pairs": PAIRS,
    }

    with torch.no_grad():
        for key, batch, pairs in (("single", sentences, False), ("pair", PAIRS, True)):
            enc = encode(tok, batch, pairs)
            positions = pick_positions(enc, pairs, tok.mask_token_id)
            base_out = base(**model_inputs(enc), output_hidden_states=not pairs)
            head_logits = model(**model_inputs(enc)).logits
            expected[key] = batch_record(enc, base_out, positions, head_logits, head_key)
            if not pairs:
                layers = base_out.hidden_states
                last_tied = bool(torch.equal(layers[-1], base_out.last_hidden_state))
                expected["hidden_states_per_layer"] = {
                    "positions": positions,
                    "num_entries": len(layers),
                    "note": "entry 0 = embeddings output (after any embedding projection), entry i = output of "
                    "encoder layer i (1-based); the last entry is the model's last_hidden_state",
                    "last_entry_equals_last_hidden_state": last_tied,
                    "values": [r7(torch.stack([h[b, t] for b, t in positions])) for h in layers],
                }
                if family == "modernbert":
                    # the last layer's raw output, before ModernBertModel.final_norm
                    captured = {}
                    hook = base.layers[-1].register_forward_hook(lambda m, i, o: captured.setdefault("h", o))
                    base(**model_inputs(enc))
                    hook.remove()
                    h = captured["h"][0] if isinstance(captured["h"], tuple) else captured["h"]
                    expected["hidden_states_per_layer"]["last_layer_before_final_norm"] = r7(
                        torch.stack([h[b, t] for b, t in positions])
                    )
                diff = padding_check(tok, base, sentences, enc, base_out)
                print(f"  {family}: padded batch vs each sentence alone, max |diff| at real tokens = {diff:.3g}")

    write_json(folder / "expected.json", expected)
    sizes = {p.name: p.stat().st_size for p in sorted(folder.iterdir()) if p.is_file()}
    print(f"  {family}: {len(tok)} tokens, config vocab {model.config.vocab_size}, files {sizes}")


# ---------------------------------------------------------------------------------------------
# --check: reload every folder the way a user would and compare with expected.json.
# ---------------------------------------------------------------------------------------------
def raw_tokenizer_batch(path, batch, pairs, pad_id):
    """Encode with the bare `tokenizers` library from tokenizer.json (what a Rust port reads),
    padding on the right by hand."""
    raw = Tokenizer.from_file(str(path))
    encs = raw.encode_batch([tuple(p) for p in batch] if pairs else batch)
    width = max(len(e.ids) for e in encs)
    pad = lambda xs, v: xs + [v] * (width - len(xs))  # noqa: E731
    return {
        "input_ids": [pad(e.ids, pad_id) for e in encs],
        "attention_mask": [pad(e.attention_mask, 0) for e in encs],
        "token_type_ids": [pad(e.type_ids, 0) for e in encs],
    }


def max_diff(a, b):
    return float(np.max(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))))


def check_family(folder, tol):
    exp = json.loads((folder / "expected.json").read_text())
    family = exp["family"]
    print(f"== {family}")
    problems = []

    tok = transformers.AutoTokenizer.from_pretrained(folder)
    saved = json.loads((folder / "tokenizer.json").read_text())
    rebuilt = json.loads(tok.backend_tokenizer.to_str())
    differing = sorted(k for k in saved if saved.get(k) != rebuilt.get(k))
    print(f"  AutoTokenizer -> {type(tok).__name__}; tokenizer.json sections that differ after reload: {differing or 'none'}")
    if differing:
        problems.append(f"reloaded tokenizer differs from tokenizer.json in {differing}")

    kwargs = {"attn_implementation": "eager"} if family == "modernbert" else {}
    head_auto = transformers.AutoModelForPreTraining if family == "electra-discriminator" else transformers.AutoModelForMaskedLM
    model, info = head_auto.from_pretrained(folder, output_loading_info=True, **kwargs)
    info = {k: sorted(v) if isinstance(v, (list, set)) else v for k, v in info.items()}
    print(f"  {head_auto.__name__} -> {type(model).__name__}: {info}")
    if any(info.get(k) for k in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs")):
        problems.append(f"head model loading info {info}")
    base, base_info = transformers.AutoModel.from_pretrained(folder, output_loading_info=True, **kwargs)
    base_info = {k: sorted(v) if isinstance(v, (list, set)) else v for k, v in base_info.items()}
    print(f"  AutoModel -> {type(base).__name__}: {base_info}")
    # Expected for a bare encoder: the MLM / discriminator head is "unexpected", and BERT-like
    # *Model classes add a pooler that no *ForMaskedLM checkpoint has.
    prefix = model.base_model_prefix + "."
    head_names = {n for n in exp["tensor_names"] if not n.startswith(prefix)}
    if (
        any(not k.startswith("pooler.") for k in base_info.get("missing_keys", []))
        or set(base_info.get("unexpected_keys", [])) - head_names
        or base_info.get("mismatched_keys")
        or base_info.get("error_msgs")
    ):
        problems.append(f"base model loading info {base_info}")
    model.eval()
    base.eval()

    with torch.no_grad():
        for key, batch, pairs in (("single", exp["sentences"], False), ("pair", exp["pairs"], True)):
            rec = exp[key]
            enc = encode(tok, batch, pairs)
            for name in ("input_ids", "attention_mask", "token_type_ids"):
                if (name in rec) != (name in enc) or (name in rec and enc[name].tolist() != rec[name]):
                    problems.append(f"{key}: AutoTokenizer {name} differ from expected.json")
            raw = raw_tokenizer_batch(folder / "tokenizer.json", batch, pairs, exp["pad_token_id"])
            for name in ("input_ids", "attention_mask", "token_type_ids"):
                if name in rec and raw[name] != rec[name]:
                    problems.append(f"{key}: tokenizers.Tokenizer.from_file {name} differ from expected.json")
            inputs = model_inputs(enc)
            out = base(**inputs, output_hidden_states=not pairs)
            d_base = max_diff(out.last_hidden_state, rec["last_hidden_state"])
            d_inner = max_diff(model.base_model(**inputs).last_hidden_state, rec["last_hidden_state"])
            logits = model(**inputs).logits
            head = rec.get("mlm") or rec.get("discriminator_logits")
            d_head = max_diff(torch.stack([logits[b, t] for b, t in head["positions"]]), head["logits"])
            line = f"  {key}: |AutoModel - expected| {d_base:.2e}, |head model's base - expected| {d_inner:.2e}, |head logits - expected| {d_head:.2e}"
            worst = max(d_base, d_inner, d_head)
            if not pairs:
                hs = exp["hidden_states_per_layer"]
                d_layers = max(
                    max_diff(torch.stack([h[b, t] for b, t in hs["positions"]]), v)
                    for h, v in zip(out.hidden_states, hs["values"])
                )
                line += f", |per-layer - expected| {d_layers:.2e} ({len(out.hidden_states)} entries)"
                worst = max(worst, d_layers)
                if len(out.hidden_states) != hs["num_entries"]:
                    problems.append("number of hidden-state entries differs")
            print(line)
            if worst > tol:
                problems.append(f"{key}: reloaded outputs differ from expected.json by {worst:.2e} > {tol}")
            if family == "modernbert":
                sdpa = transformers.AutoModel.from_pretrained(folder, attn_implementation="sdpa").eval()
                d_sdpa = max_diff(
                    sdpa(**inputs).last_hidden_state[inputs["attention_mask"].bool()],
                    out.last_hidden_state[inputs["attention_mask"].bool()],
                )
                print(f"  {key}: ModernBERT sdpa vs eager, max |diff| at real tokens {d_sdpa:.2e}")
    for p in problems:
        print(f"  PROBLEM: {p}")
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"output folder (relative to the repo root; default {DEFAULT_OUT})")
    parser.add_argument("--only", nargs="*", choices=FAMILIES, help="build only these families")
    parser.add_argument(
        "--check", action="store_true",
        help="do not build: reload the folders under --out with Auto* classes and compare with expected.json",
    )
    parser.add_argument("--tol", type=float, default=1e-5, help="--check: max abs difference allowed (default 1e-5)")
    args = parser.parse_args()

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    out_dir = Path(args.out)
    if not out_dir.is_absolute():
        out_dir = REPO_ROOT / out_dir
    out_dir.mkdir(parents=True, exist_ok=True)

    if args.check:
        problems = [p for family in args.only or FAMILIES for p in check_family(out_dir / family, args.tol)]
        print("check: all folders reload and reproduce expected.json" if not problems else f"check: {len(problems)} problem(s)")
        raise SystemExit(1 if problems else 0)

    lines = corpus_lines()
    print(f"training text: {len(lines)} docstring lines from {len(CORPUS_MODULES)} modules "
          f"(Python {sys.version.split()[0]}), transformers {transformers.__version__}, torch {torch.__version__}")
    for family in args.only or FAMILIES:
        build_family(family, out_dir, lines)


if __name__ == "__main__":
    main()
