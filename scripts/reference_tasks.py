#!/usr/bin/env python3
"""The PyTorch + transformers reference for thaw's task sweeps: trains the same model on the
same files (`--train-size` draws thaw's own subsample) with the same head, pooling, epochs,
batch size, lr and schedule (AdamW, weight decay 0.01, 10 % linear warmup then linear decay,
each parameter tensor's gradient norm clipped at 1.0 as thaw does, best epoch on validation)
and prints the test metric, so a thaw sweep's number can be set beside it.

    .venv-hf/bin/python scripts/reference_tasks.py tokens --data .cache/datasets/wnut_2016 \\
        --model .cache/hf/models--sentence-transformers--all-MiniLM-L6-v2/snapshots/<rev> \\
        --freeze 0 --lr 1e-4 --epochs 4 --seeds 1 2

Tasks: `tokens` (a linear layer on every token, labels on each word's first sub-token,
seqeval entity F1 in its default mode), `regression` (mean pooling, one output, MSE on
the standardized target, Spearman on the original scale) and `pairs` (mean pooling, one
logit per class, cross-entropy, accuracy) and `multilabel` (mean pooling, one logit per
label, binary cross-entropy, micro F1 at the threshold chosen on validation); pairs go
through the tokenizer's pair template. Freezing k keeps the embeddings and layers 0..k-1 fixed, as thaw does.
"""
import argparse
import hashlib
import json
import math
import random
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr
from seqeval.metrics import f1_score
from transformers import AutoModel, AutoTokenizer


def read(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def stable_hash(*parts):
    """thaw's `stable_hash`: sha256 over each part's length (u64, little-endian) and bytes."""
    h = hashlib.sha256()
    for part in parts:
        h.update(len(part).to_bytes(8, "little"))
        h.update(part)
    return int.from_bytes(h.digest()[:8], "little")


def input_key(row):
    if "tokens" in row:
        return " ".join(row["tokens"])
    if "text_pair" in row:
        return row["text"] + "\x1f" + row["text_pair"]
    return row["text"]


def thaw_subsample(rows, n, seed=0, stratify=False):
    """The subsample thaw's jobs use (`train_size`, `max_validation`, `max_test`): one stratum
    for scores and tags; per class for classification, each class keeping its share (largest
    remainders take the examples left over), as thaw's `subsample` does."""
    if n is None or n >= len(rows):
        return rows
    seed_bytes = seed.to_bytes(8, "little")
    strata = {}
    for r in rows:
        strata.setdefault(r["label"] if stratify else "", []).append(r)
    quotas = []
    for label in sorted(strata):
        exact = n * len(strata[label]) / len(rows)
        quotas.append([label, math.floor(exact), exact - math.floor(exact)])
    short = n - sum(q[1] for q in quotas)
    for i in sorted(range(len(quotas)), key=lambda i: (-quotas[i][2], i))[:short]:
        quotas[i][1] += 1
    picked = []
    for label, quota, _ in quotas:
        group = sorted(strata[label], key=lambda r: stable_hash(seed_bytes, input_key(r).encode()))
        picked.extend(group[:quota])
    return sorted(picked, key=lambda r: stable_hash(seed_bytes, b"order", input_key(r).encode()))


def schedule(optimizer, total, warmup_ratio=0.1):
    warmup = int(total * warmup_ratio)

    def factor(step):
        if warmup > 0 and step < warmup:
            return step / warmup
        return max(0.0, (total - step) / max(1, total - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


class Head(torch.nn.Module):
    def __init__(self, encoder, outputs, per_token):
        super().__init__()
        self.encoder, self.per_token = encoder, per_token
        self.dropout = torch.nn.Dropout(encoder.config.hidden_dropout_prob)
        self.classifier = torch.nn.Linear(encoder.config.hidden_size, outputs)
        torch.nn.init.normal_(self.classifier.weight, std=encoder.config.initializer_range)
        torch.nn.init.zeros_(self.classifier.bias)

    def forward(self, batch):
        hidden = self.encoder(**batch).last_hidden_state
        if not self.per_token:
            mask = batch["attention_mask"].unsqueeze(-1).float()
            hidden = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return self.classifier(self.dropout(hidden))


def freeze(encoder, k):
    for p in encoder.embeddings.parameters():
        p.requires_grad = k == 0
    for i, layer in enumerate(encoder.encoder.layer):
        for p in layer.parameters():
            p.requires_grad = i >= k


def token_batches(tokenizer, rows, tag_ids, max_length):
    encoded = tokenizer([r["tokens"] for r in rows], is_split_into_words=True, truncation=True,
                        max_length=max_length, padding=True, return_tensors="pt")
    labels = torch.full(encoded["input_ids"].shape, -100)
    for b, row in enumerate(rows):
        seen = set()
        for position, word in enumerate(encoded.word_ids(b)):
            if word is not None and word not in seen:
                seen.add(word)
                labels[b, position] = tag_ids[row["tags"][word]]
    return dict(encoded), labels


def run_tokens(args, seed):
    data = Path(args.data)
    train, val, test = (read(data / f"{s}.jsonl") for s in ("train", "validation", "test"))
    train = thaw_subsample(train, args.train_size)
    val, test = thaw_subsample(val, args.max_validation), thaw_subsample(test, args.max_test)
    tags = sorted({t for r in train for t in r["tags"]})
    tag_ids = {t: i for i, t in enumerate(tags)}
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    torch.manual_seed(seed)
    random.seed(seed)
    encoder = AutoModel.from_pretrained(args.model, add_pooling_layer=False)
    model = Head(encoder, len(tags), per_token=True)
    freeze(encoder, args.freeze)

    def predict(rows):
        model.eval()
        out = []
        with torch.no_grad():
            for i in range(0, len(rows), 64):
                chunk = rows[i : i + 64]
                batch, labels = token_batches(tokenizer, chunk, tag_ids, args.max_length)
                predicted = model(batch).argmax(-1)
                for b, row in enumerate(chunk):
                    words = ["O"] * len(row["tokens"])
                    seen = set()
                    for position, word in enumerate(batch_word_ids(tokenizer, chunk, b, args)):
                        if word is not None and word not in seen:
                            seen.add(word)
                            words[word] = tags[predicted[b, position]]
                    out.append(words)
        return f1_score([r["tags"] for r in rows], out)

    def loss_of(batch_rows):
        batch, labels = token_batches(tokenizer, batch_rows, tag_ids, args.max_length)
        logits = model(batch)
        return torch.nn.functional.cross_entropy(logits.reshape(-1, len(tags)), labels.reshape(-1))

    return train_loop(args, model, train, loss_of, lambda: predict(val), lambda: predict(test))


def batch_word_ids(tokenizer, rows, b, args):
    encoded = tokenizer([rows[b]["tokens"]], is_split_into_words=True, truncation=True,
                        max_length=args.max_length)
    return encoded.word_ids(0)


def thresholds():
    """thaw's candidates, 0.05 ... 0.95."""
    return [i / 20 for i in range(1, 20)]


def choose_threshold(probabilities, truth):
    """thaw's rule: the candidate with the best validation micro F1; of ties, nearest 0.5."""
    best = (-math.inf, 0.5)
    for t in thresholds():
        micro = f1_score_multilabel(truth, probabilities >= t)
        if micro > best[0] + 1e-12 or (abs(micro - best[0]) <= 1e-12 and abs(t - 0.5) < abs(best[1] - 0.5)):
            best = (micro, t)
    return best[1]


def f1_score_multilabel(truth, predicted):
    from sklearn.metrics import f1_score as sk_f1
    return sk_f1(truth, predicted, average="micro", zero_division=0)


def run_multilabel(args, seed):
    """Multi-label: mean pooling, one logit per label, binary cross-entropy; the threshold is
    chosen on validation and applied to test, scored by micro F1 (scikit-learn)."""
    data = Path(args.data)
    train, val, test = (read(data / f"{s}.jsonl") for s in ("train", "validation", "test"))
    train = thaw_subsample(train, args.train_size)
    val = thaw_subsample(val, args.max_validation)
    test = thaw_subsample(test, args.max_test)
    labels = sorted({label for r in train for label in r["labels"]})
    target_of = lambda r: [float(label in r["labels"]) for label in labels]  # noqa: E731
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    torch.manual_seed(seed)
    random.seed(seed)
    encoder = AutoModel.from_pretrained(args.model, add_pooling_layer=False)
    model = Head(encoder, len(labels), per_token=False)
    freeze(encoder, args.freeze)
    chosen = {}

    def encode(rows):
        return dict(tokenizer([r["text"] for r in rows], truncation=True,
                              max_length=args.max_length, padding=True, return_tensors="pt"))

    def probabilities(rows):
        model.eval()
        with torch.no_grad():
            return np.concatenate([torch.sigmoid(model(encode(rows[i : i + 64]))).numpy()
                                   for i in range(0, len(rows), 64)])

    def validate():
        truth = np.array([target_of(r) for r in val]).astype(bool)
        p = probabilities(val)
        chosen["threshold"] = choose_threshold(p, truth)
        return f1_score_multilabel(truth, p >= chosen["threshold"])

    def score_test():
        truth = np.array([target_of(r) for r in test]).astype(bool)
        return f1_score_multilabel(truth, probabilities(test) >= chosen["threshold"])

    def loss_of(batch_rows):
        output = model(encode(batch_rows))
        return torch.nn.functional.binary_cross_entropy_with_logits(
            output, torch.tensor([target_of(r) for r in batch_rows]))

    return train_loop(args, model, train, loss_of, validate, score_test)


def run_pooled(args, seed):
    """Pairs (or single texts) with a pooled head: regression on the standardized score, or
    classification (task "pairs") scored by accuracy."""
    data = Path(args.data)
    train, val, test = (read(data / f"{s}.jsonl") for s in ("train", "validation", "test"))
    classify = args.task == "pairs"
    train = thaw_subsample(train, args.train_size, stratify=classify)
    val = thaw_subsample(val, args.max_validation, stratify=classify)
    test = thaw_subsample(test, args.max_test, stratify=classify)
    if classify:
        classes = sorted({r["label"] for r in train})
        target_of = lambda r: classes.index(r["label"])  # noqa: E731
    else:
        scores = np.array([float(r["label"]) for r in train])
        mean, sd = scores.mean(), scores.std()
        target_of = lambda r: (float(r["label"]) - mean) / sd  # noqa: E731
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    torch.manual_seed(seed)
    random.seed(seed)
    encoder = AutoModel.from_pretrained(args.model, add_pooling_layer=False)
    model = Head(encoder, len(classes) if classify else 1, per_token=False)
    freeze(encoder, args.freeze)

    def encode(rows):
        pairs = [r["text_pair"] for r in rows] if "text_pair" in rows[0] else None
        return dict(tokenizer([r["text"] for r in rows], pairs, truncation=True,
                              max_length=args.max_length, padding=True, return_tensors="pt"))

    def predict(rows):
        model.eval()
        out = []
        with torch.no_grad():
            for i in range(0, len(rows), 64):
                output = model(encode(rows[i : i + 64]))
                out.extend((output.argmax(-1) if classify else output.squeeze(-1) * sd + mean).tolist())
        if classify:
            return float(np.mean([p == target_of(r) for p, r in zip(out, rows)]))
        return spearmanr(out, [float(r["label"]) for r in rows]).statistic

    def loss_of(batch_rows):
        output = model(encode(batch_rows))
        if classify:
            return torch.nn.functional.cross_entropy(output, torch.tensor([target_of(r) for r in batch_rows]))
        return torch.nn.functional.mse_loss(output.squeeze(-1), torch.tensor([target_of(r) for r in batch_rows]))

    return train_loop(args, model, train, loss_of, lambda: predict(val), lambda: predict(test))


def train_loop(args, model, train, loss_of, validate, test):
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() > 1]
    no_decay = [p for p in params if p.dim() <= 1]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=args.lr)
    steps_per_epoch = math.ceil(len(train) / args.batch_size)
    scheduler = schedule(optimizer, steps_per_epoch * args.epochs)
    best = (-math.inf, None)
    for epoch in range(1, args.epochs + 1):
        model.train()
        order = list(range(len(train)))
        random.shuffle(order)
        losses = []
        for i in range(0, len(order), args.batch_size):
            loss = loss_of([train[j] for j in order[i : i + args.batch_size]])
            losses.append(loss.item())
            optimizer.zero_grad()
            loss.backward()
            if args.clip == "global":
                torch.nn.utils.clip_grad_norm_(params, 1.0)
            else:
                for p in params:
                    torch.nn.utils.clip_grad_norm_([p], 1.0)
            optimizer.step()
            scheduler.step()
        score = validate()
        print(f"  epoch {epoch}: train loss {np.mean(losses):.4f}, validation {score:.4f}", flush=True)
        if score > best[0]:
            best = (score, test())
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("task", choices=["tokens", "regression", "pairs", "multilabel"])
    parser.add_argument("--data", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--freeze", type=int, default=0)
    parser.add_argument("--lr", type=float, required=True)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--train-size", type=int)
    parser.add_argument("--max-validation", type=int, help="as the sweep's data.max_validation")
    parser.add_argument("--max-test", type=int, help="as the sweep's data.max_test")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--clip", choices=["per-tensor", "global"], default="per-tensor",
                        help="thaw clips each parameter tensor's gradient norm at 1.0 (burn's rule); "
                        "transformers' Trainer clips the global norm")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    run = {"tokens": run_tokens, "multilabel": run_multilabel}.get(args.task, run_pooled)
    results = []
    for seed in args.seeds:
        val, test = run(args, seed)
        print(f"seed {seed}: validation {val:.4f}, test {test:.4f}", flush=True)
        results.append(test)
    print(f"test mean over {len(results)} seeds: {np.mean(results):.4f}")


if __name__ == "__main__":
    main()
