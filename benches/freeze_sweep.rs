//! What freezing buys, measured on the real MiniLM (or any model folder) and Rotten
//! Tomatoes snippets.
//!
//!   cargo bench --bench freeze_sweep -- [n_train] [seeds] [max_length] [batch] [backend]
//!       [--model DIR] [--depths 0,3] [--no-ops]
//!
//! (seeds = 0 prints table 1 only.)
//! Prints two tables: (1) per freeze depth k, training throughput and epoch time without
//! and with the frozen-prefix cache, then the k = 0 step's GFLOP/s and the evaluation
//! throughput (inference over the whole validation and test splits, at the batch size
//! thaw evaluates with), and what each of thaw's own CPU ops buys on Flex (each handed
//! back to burn in turn); (2) the wall time of a k = 0..L x seeds sweep run
//! naively (every job tokenizes and recomputes its frozen layers) against the same jobs
//! sharing tokenization and prefix activations. Ratios, not absolute speeds, are the point:
//! both sides run in this one process on this one machine.

use std::sync::Arc;
use std::time::Instant;

use thaw_train::data::{DataFiles, SplitOptions, load_splits, subsample};
use thaw_train::encode::{EncodedData, encode_splits};
use thaw_train::events::silently;
use thaw_train::finetune::{FineTuneOutcome, PrefixUse, fine_tune_returning_model};
use thaw_train::kernels::{OwnOp, use_burns};
use thaw_train::model::Classifier;
use thaw_train::outputs::split_outputs;
use thaw_train::prefix::PrefixCache;
use thaw_train::tokenize::TextTokenizer;
use thaw_train::*;

struct Setup {
    files: ModelFiles,
    config: ModelConfig,
    /// Parameters of the encoder's layers (the FLOPs of a step scale with them).
    layer_weights: usize,
    data_files: DataFiles,
    n_train: usize,
    max_length: usize,
    batch: usize,
    backend: BackendKind,
}

impl Setup {
    /// Load, split, subsample and tokenize: what a job without sharing does first.
    fn tokenize(&self) -> Arc<EncodedData> {
        let options = SplitOptions { train_size: Some(self.n_train), ..Default::default() };
        let mut splits = load_splits(&self.data_files, &options).unwrap();
        splits.validation = subsample(&splits.validation, 256, 0);
        splits.test = subsample(&splits.test, 256, 0);
        let tokenizer = TextTokenizer::from_file(&self.files.tokenizer, self.max_length).unwrap();
        encode_splits(&tokenizer, &splits, "bench".into()).unwrap()
    }

    fn job(&self, freeze: usize, seed: u64) -> FineTuneJob {
        FineTuneJob {
            start: Start::Pretrained,
            freeze,
            seed,
            settings: FineTuneSettings {
                epochs: 1,
                batch_size: self.batch,
                lr: 1e-4,
                ..Default::default()
            },
            backend: self.backend,
            start_identity: "pretrained".into(),
            stop_after_epochs: None,
            measure_gradient_ratios: false,
        }
    }

    fn run(
        &self,
        data: &EncodedData,
        freeze: usize,
        seed: u64,
        cache: Option<&mut PrefixCache>,
    ) -> FineTuneOutcome {
        silently(|o| fine_tune(&self.files, &self.config, data, &self.job(freeze, seed), cache, o))
            .unwrap()
    }

    /// A k = 0 epoch without the cache, and the model it trained.
    fn run_k0_keeping_model(&self, data: &EncodedData) -> (FineTuneOutcome, Classifier) {
        silently(|o| {
            fine_tune_returning_model(&self.files, &self.config, data, &self.job(0, 1), None, o)
        })
        .unwrap()
    }

    /// Inference over the whole validation and test splits (not the bench's training
    /// subsample) in thaw's evaluation batches, after one untimed pass over validation:
    /// (examples, tokens, seconds).
    fn evaluation(&self, model: Classifier) -> (usize, usize, f64) {
        let options = SplitOptions { train_size: Some(self.n_train), ..Default::default() };
        let splits = load_splits(&self.data_files, &options).unwrap();
        let tokenizer = TextTokenizer::from_file(&self.files.tokenizer, self.max_length).unwrap();
        let data = encode_splits(&tokenizer, &splits, "bench-eval".into()).unwrap();
        let device = self.backend.device().unwrap();
        let batch = self.backend.eval_batch_size(self.batch);
        let (model, _) = split_outputs(model, &data, &data.validation, batch, &device).unwrap();
        let started = Instant::now();
        let (model, _) = split_outputs(model, &data, &data.validation, batch, &device).unwrap();
        split_outputs(model, &data, &data.test, batch, &device).unwrap();
        let seconds = started.elapsed().as_secs_f64();
        let examples = data.validation.len() + data.test.len();
        (examples, data.validation.tokens() + data.test.tokens(), seconds)
    }
}

/// Seconds a sweep's jobs spent per phase.
#[derive(Default)]
struct Parts {
    train: f64,
    prefix: f64,
    eval: f64,
    load: f64,
}

impl Parts {
    fn add(&mut self, outcome: &FineTuneOutcome) {
        self.train += outcome.train_seconds;
        self.prefix += outcome.prefix_seconds;
        self.eval += outcome.eval_seconds;
        self.load += outcome.load_seconds;
    }

    /// The phases, and what is left of `wall` (tokenizing, batching, bookkeeping).
    fn row(&self, wall: f64) -> String {
        let rest = wall - self.train - self.prefix - self.eval - self.load;
        format!(
            "{:.1} | {:.1} | {:.1} | {:.1} | {rest:.1}",
            self.train, self.prefix, self.eval, self.load
        )
    }
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Options that take a value (`--model DIR`, `--depths 0,3`).
const NAMED: [&str; 2] = ["--model", "--depths"];

/// The value after `name` on the command line, if given.
fn named<'a>(args: &'a [String], name: &str) -> Option<&'a String> {
    args.iter().position(|a| a == name).map(|i| args.get(i + 1).expect("the option takes a value"))
}

fn main() {
    let all: Vec<String> = std::env::args().skip(1).collect();
    // `--model DIR`: a model folder of any family; MiniLM from the asset route by default.
    let model = match named(&all, "--model") {
        Some(dir) => std::path::PathBuf::from(dir),
        None => thaw_assets::resolve_hub_model(thaw_assets::MINILM, None).unwrap().dir,
    };
    let args: Vec<String> = all
        .iter()
        .enumerate()
        .filter(|(i, a)| !a.starts_with("--") && (*i == 0 || !NAMED.contains(&all[i - 1].as_str())))
        .map(|(_, a)| a.clone())
        .collect();
    let arg = |i: usize, default: &str| args.get(i).cloned().unwrap_or_else(|| default.to_string());
    let files = ModelFiles::in_dir(&model).unwrap();
    let dir = thaw_assets::dataset_dir("rotten_tomatoes").unwrap();
    let config = ModelConfig::from_file(&files.config).unwrap();
    let encoder = thaw_train::load::load_encoder(
        &files,
        &config,
        &Start::Pretrained,
        &BackendKind::Flex.device().unwrap(),
    )
    .unwrap();
    let setup = Setup {
        layer_weights: encoder.layer_weights(),
        config,
        files,
        data_files: DataFiles {
            train: dir.join("train.jsonl"),
            validation: Some(dir.join("validation.jsonl")),
            test: Some(dir.join("test.jsonl")),
            fields: thaw_train::data::Fields::default(),
        },
        n_train: arg(0, "384").parse().unwrap(),
        max_length: arg(2, "64").parse().unwrap(),
        batch: arg(3, "32").parse().unwrap(),
        backend: arg(4, "flex").parse().unwrap(),
    };
    let seeds: u64 = arg(1, "3").parse().unwrap();
    let layers = setup.config.num_layers();
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!(
        "{} ({}) on Rotten Tomatoes, CPU {}: {} training examples, max_length {}, batch {}, backend {}, {} CPU threads",
        model.file_name().map_or("model".into(), |n| n.to_string_lossy()),
        setup.config.model_type(),
        thaw_train::backend::cpu_model(),
        setup.n_train,
        setup.max_length,
        setup.batch,
        setup.backend,
        threads
    );

    let tokenize_started = Instant::now();
    let data = setup.tokenize();
    let tokenize_seconds = tokenize_started.elapsed().as_secs_f64();
    println!("tokenize once: {tokenize_seconds:.2}s ({} train tokens)\n", data.train.tokens());

    // Untimed, as bench_pytorch.py's warm-up steps: the first job in a process pays one-off
    // costs (the allocator's arenas and their page faults, thread pools; on a GPU shader
    // compilation and autotuning, cached on disk) that are not a cost of depth 0.
    let warm_up = Instant::now();
    setup.run(&data, 0, 1, None);
    println!("warm-up, one untimed k = 0 epoch: {:.1}s\n", warm_up.elapsed().as_secs_f64());

    // Table 1: per depth, one epoch without the cache; then with it (seed 1 builds it, seed 2 reuses it).
    println!(
        "| k | trainable params | no cache: ex/s | no cache: epoch s | prefix once s | cache: ex/s | cache: epoch s | cache epoch / k=0 epoch |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let mut k0_epoch = f64::NAN;
    let mut k0_examples_per_second = f64::NAN;
    let mut trained = None;
    // `--depths 0,3`: table 1 at these depths only (k = 0 always runs: evaluation uses it).
    let depths: Vec<usize> = match named(&all, "--depths") {
        Some(list) => list.split(',').map(|k| k.trim().parse().expect("a depth")).collect(),
        None => (0..=layers).collect(),
    };
    for k in (0..=layers).filter(|k| *k == 0 || depths.contains(k)) {
        let plain = if k == 0 {
            let (outcome, model) = setup.run_k0_keeping_model(&data);
            trained = Some(model);
            outcome
        } else {
            setup.run(&data, k, 1, None)
        };
        let mut cache = PrefixCache::new(8 << 30);
        let built = setup.run(&data, k, 1, Some(&mut cache));
        let reused = setup.run(&data, k, 2, Some(&mut cache));
        assert!(
            k == 0
                || (built.prefix_cache == PrefixUse::Computed
                    && reused.prefix_cache == PrefixUse::Reused)
        );
        if k == 0 {
            k0_epoch = plain.train_seconds;
            k0_examples_per_second = plain.train_examples_per_second;
        }
        println!(
            "| {k} | {} | {:.1} | {:.2} | {:.2} | {:.1} | {:.2} | {:.3} |",
            plain.trainable_params,
            plain.train_examples_per_second,
            plain.train_seconds,
            built.prefix_seconds,
            reused.train_examples_per_second,
            reused.train_seconds,
            reused.train_seconds / k0_epoch
        );
    }

    let tokens_per_example = data.train.tokens() as f64 / data.train.len().max(1) as f64;
    println!("\n{}", achieved_flops(&setup, tokens_per_example, k0_examples_per_second, threads));
    let (examples, tokens, seconds) = setup.evaluation(trained.expect("k = 0 ran"));
    println!(
        "evaluation (inference, dropout off) over the whole validation and test splits: {examples} examples, {tokens} tokens, batch {}, {seconds:.2}s = {:.1} ex/s",
        setup.backend.eval_batch_size(setup.batch),
        examples as f64 / seconds
    );

    // `--no-ops` skips the table of what each of thaw's own ops buys (seven more epochs).
    if setup.backend == BackendKind::Flex && !all.iter().any(|a| a == "--no-ops") {
        own_ops_table(&setup, &data);
    }

    if seeds == 0 {
        println!("\n(table 2, the whole sweep naive against shared, skipped: seeds = 0)");
        return;
    }
    // Table 2: the whole k-sweep x seeds, naive against shared, with where the time went.
    let naive_started = Instant::now();
    let mut naive_parts = Parts::default();
    for k in 0..=layers {
        for seed in 1..=seeds {
            let own = setup.tokenize();
            naive_parts.add(&setup.run(&own, k, seed, None));
        }
    }
    let naive = naive_started.elapsed().as_secs_f64();
    let shared_started = Instant::now();
    let mut shared_parts = Parts::default();
    let shared_data = setup.tokenize();
    let mut cache = PrefixCache::new(8 << 30);
    for k in 0..=layers {
        for seed in 1..=seeds {
            shared_parts.add(&setup.run(&shared_data, k, seed, Some(&mut cache)));
        }
    }
    let shared = shared_started.elapsed().as_secs_f64();
    println!(
        "\n| sweep k = 0..{layers} x {seeds} seeds, 1 epoch each | wall s | ratio | train s | frozen prefix s | evaluation s | loading s | rest s |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    println!(
        "| naive: every job tokenizes, frozen layers run every step | {naive:.1} | 1.000 | {} |",
        naive_parts.row(naive)
    );
    println!(
        "| shared: tokenize once, frozen-prefix cache across seeds and depths | {shared:.1} | {:.3} | {} |",
        shared / naive,
        shared_parts.row(shared)
    );
    println!(
        "\npeak resident memory of this process: {:.0} MiB (prefix cache held at the end: {:.0} MiB)",
        peak_rss_mib(),
        cache.used_bytes() as f64 / (1 << 20) as f64
    );
}

/// What thaw's own CPU ops buy: a k = 0 epoch and the evaluation pass with burn's ops only,
/// with thaw's, and with all of thaw's but one (that one burn's), in this one process.
fn own_ops_table(setup: &Setup, data: &EncodedData) {
    let mut variants: Vec<(String, Vec<OwnOp>)> =
        vec![("burn's ops only".into(), OwnOp::ALL.to_vec()), ("all of thaw's".into(), vec![])];
    variants.extend(OwnOp::ALL.map(|op| (format!("all of thaw's but {op:?}"), vec![op])));
    println!(
        "\n| ops on Flex | k = 0 training ex/s | × burn's | evaluation ex/s | × burn's |\n|---|---|---|---|---|"
    );
    let mut baseline = None;
    for (name, burns) in variants {
        for op in OwnOp::ALL {
            use_burns(op, burns.contains(&op));
        }
        let (outcome, model) = setup.run_k0_keeping_model(data);
        let (examples, _, seconds) = setup.evaluation(model);
        let (train, eval) = (outcome.train_examples_per_second, examples as f64 / seconds);
        let (train_base, eval_base) = *baseline.get_or_insert((train, eval));
        println!(
            "| {name} | {train:.1} | {:.2} | {eval:.1} | {:.2} |",
            train / train_base,
            eval / eval_base
        );
    }
    for op in OwnOp::ALL {
        use_burns(op, false);
    }
}

/// The k = 0 training step's achieved GFLOP/s against this CPU's fp32 peak. FLOPs per token:
/// 6 × the weights outside the embedding tables (forward 2, backward 4) plus attention's
/// two sequence-length products (QKᵀ and softmax·V, 2·len·hidden each forward, ×3 with
/// backward), at the data's mean length; real tokens only (padding not counted).
fn achieved_flops(
    setup: &Setup,
    tokens_per_example: f64,
    examples_per_second: f64,
    threads: usize,
) -> String {
    let (h, l) = (setup.config.hidden_size() as f64, setup.config.num_layers() as f64);
    let weights = setup.layer_weights as f64 + 2.0 * h + 2.0;
    let attention = l * 3.0 * 2.0 * 2.0 * tokens_per_example * h;
    let flops_per_token = 6.0 * weights + attention;
    let achieved = flops_per_token * tokens_per_example * examples_per_second / 1e9;
    let (ghz, lanes, avx512) = cpu_clock_and_vector();
    // Two FMA units per core, each lanes × 2 FLOPs per cycle: an assumption (some CPUs have one).
    let peak = threads as f64 * ghz * 2.0 * lanes * 2.0;
    format!(
        "k = 0 step: {:.1} MFLOP per token (6 × {:.2}M weights outside the embeddings + attention at {:.1} tokens per example) × {:.0} tokens/s = {achieved:.1} GFLOP/s; \
         fp32 peak ≈ {peak:.0} GFLOP/s, assumed: {threads} threads × {ghz:.2} GHz × 2 FMA units × {lanes} lanes ({}) × 2; CPUs with one FMA unit or double-pumped AVX-512 have half: {:.1} % of it",
        flops_per_token / 1e6,
        weights / 1e6,
        tokens_per_example,
        tokens_per_example * examples_per_second,
        if avx512 { "AVX-512" } else { "AVX2" },
        100.0 * achieved / peak
    )
}

/// The CPU's clock (GHz, as /proc/cpuinfo reports it) and fp32 lanes per vector (16 with
/// AVX-512, else 8).
fn cpu_clock_and_vector() -> (f64, f64, bool) {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let mhz = info
        .lines()
        .find(|l| l.starts_with("cpu MHz"))
        .and_then(|l| l.split(':').nth(1))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or(f64::NAN);
    let avx512 = info.lines().any(|l| l.starts_with("flags") && l.contains(" avx512f"));
    (mhz / 1000.0, if avx512 { 16.0 } else { 8.0 }, avx512)
}
