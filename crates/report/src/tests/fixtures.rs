//! Test sweeps written through the real store API (register, claim, finish), so the report
//! is tested on exactly what a run leaves behind.

use std::path::PathBuf;

use Init::{Pretrained, Scratch};
use tempfile::TempDir;
use thaw_analysis::Setup;
use thaw_analysis::setup::{GridSetup, Hardware, TrainerSetup};
use thaw_store::{EpochRow, Init, NewJob, NewStage, NewSweep, ResultRow, StageOutcomeRow, Store};

/// One planned job as the scenario sees it.
#[derive(Debug, Clone)]
pub struct Plan {
    pub init: Init,
    pub intermediate: &'static str,
    pub mlm_freeze: Option<i64>,
    pub freeze: i64,
    pub num_layers: i64,
    pub seed: i64,
    pub lr: f64,
    pub train_size: Option<i64>,
    pub strategy: &'static str,
}

impl Plan {
    pub fn unfrozen(&self) -> i64 {
        self.num_layers - self.freeze
    }

    fn key(&self) -> String {
        format!(
            "{}-{}-{:?}-f{}-n{:?}-lr{:e}-s{}{}",
            self.init,
            self.intermediate,
            self.mlm_freeze,
            self.freeze,
            self.train_size,
            self.lr,
            self.seed,
            // Plain keys stay as they were: the scenarios' noise is drawn from them.
            if self.strategy == "plain" { String::new() } else { format!("-{}", self.strategy) }
        )
    }

    fn stage_key(&self) -> Option<String> {
        (self.intermediate != "none").then(|| {
            format!("stage-{}-{}-{}", self.init, self.intermediate, self.mlm_freeze.unwrap_or(0))
        })
    }

    /// A repeatable number in [-1, 1] for this job, standing in for seed-to-seed noise.
    pub fn noise(&self, salt: u64) -> f64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ salt;
        for b in self.key().bytes() {
            h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
        // splitmix64 finaliser spreads the bits.
        h ^= h >> 30;
        h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h ^= h >> 27;
        h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
        h ^= h >> 31;
        (h >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }
}

/// What happened to a job.
#[derive(Debug, Clone, Copy)]
pub enum Fate {
    Done { val_accuracy: f64, test_accuracy: f64, train_seconds: f64 },
    Failed,
    Pending,
}

pub struct Scenario {
    pub name: &'static str,
    pub num_layers: i64,
    /// (init, intermediate, mlm_freeze)
    pub series: Vec<(Init, &'static str, Option<i64>)>,
    pub freezes: Vec<i64>,
    pub lrs: Vec<f64>,
    pub seeds: Vec<i64>,
    pub train_sizes: Vec<Option<i64>>,
    /// Strategy names crossed with everything else ("plain" only in most scenarios).
    pub strategies: Vec<&'static str>,
    pub fate: fn(&Plan) -> Fate,
    /// Perplexity (before, after) of an intermediate stage, by (intermediate, init).
    pub perplexity: fn(&str, Init) -> (f64, f64),
    pub setup_json: String,
}

pub struct Fixture {
    _dir: TempDir,
    pub store: Store,
    pub sweep: String,
    pub out_dir: PathBuf,
}

pub fn default_setup() -> String {
    Setup {
        model: Some("bert-base-uncased@86b5e0934494bd15c9632b12f734a8a67f723594".into()),
        dataset: Some("glue/sst2".into()),
        train_examples: Some(2000),
        validation_examples: Some(500),
        test_examples: Some(872),
        baseline: None,
        task: Default::default(),
        metric: Default::default(),
        max_length: Some(128),
        grid: Some(GridSetup {
            freeze: vec![0, 2, 4],
            init: vec!["pretrained".into(), "scratch".into()],
            intermediate: vec!["none".into(), "task".into()],
            seeds: vec![1, 2, 3],
            train_size: vec![None],
            pooling: vec!["cls".into()],
            strategy: vec!["plain".into()],
        }),
        scratch_model: None,
        trainer: Some(TrainerSetup {
            epochs: 4,
            batch_size: 32,
            weight_decay: 0.01,
            warmup_ratio: 0.1,
            max_grad_norm: 1.0,
            keep: "none".into(),
        }),
        description: None,
        rules: None,
        search: None,
        hardware: Some(Hardware {
            cpu: "NVIDIA H100 80GB".into(),
            cores: 8,
            backend: "wgpu".into(),
        }),
        backend: Some("wgpu".into()),
    }
    .to_json()
}

impl Scenario {
    fn plans(&self) -> Vec<Plan> {
        let mut plans = Vec::new();
        for &(init, intermediate, mlm_freeze) in &self.series {
            for &train_size in &self.train_sizes {
                for &freeze in &self.freezes {
                    for &strategy in &self.strategies {
                        for &lr in &self.lrs {
                            for &seed in &self.seeds {
                                plans.push(Plan {
                                    init,
                                    intermediate,
                                    mlm_freeze,
                                    freeze,
                                    num_layers: self.num_layers,
                                    seed,
                                    lr,
                                    train_size,
                                    strategy,
                                });
                            }
                        }
                    }
                }
            }
        }
        plans
    }

    pub async fn build(&self) -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("sweep.db")).await.expect("open store");
        let plans = self.plans();
        store
            .register_plan(
                &self.sweep_row(),
                &self.stages(&plans),
                &plans.iter().map(new_job).collect::<Vec<_>>(),
            )
            .await
            .expect("register");
        self.finish_stages(&store).await;
        for plan in &plans {
            self.settle(&store, plan).await;
        }
        let out_dir = dir.path().join("report");
        Fixture { _dir: dir, store, sweep: self.name.to_string(), out_dir }
    }

    fn sweep_row(&self) -> NewSweep {
        NewSweep {
            name: self.name.into(),
            spec_path: "sweep.toml".into(),
            spec_toml: String::new(),
            model: "bert-base-uncased@86b5e0934494bd15c9632b12f734a8a67f723594".into(),
            dataset: "glue/sst2".into(),
            setup_json: self.setup_json.clone(),
        }
    }

    fn stages(&self, plans: &[Plan]) -> Vec<NewStage> {
        let mut stages: Vec<NewStage> = Vec::new();
        for p in plans {
            if let Some(key) = p.stage_key()
                && !stages.iter().any(|s| s.key == key)
            {
                stages.push(NewStage {
                    key,
                    name: p.intermediate.into(),
                    init: p.init,
                    mlm_freeze: p.mlm_freeze.unwrap_or(0),
                    spec_json: "{}".into(),
                    backend: "flex".into(),
                });
            }
        }
        stages
    }

    async fn finish_stages(&self, store: &Store) {
        let stages = self.stages(&self.plans());
        while let Some(claimed) =
            store.claim_stage(self.name, "fixture", "flex").await.expect("claim stage")
        {
            let stage = stages.iter().find(|s| s.key == claimed.key).expect("a registered stage");
            let (before, after) = (self.perplexity)(&stage.name, stage.init);
            let outcome = StageOutcomeRow {
                checkpoint_path: format!("/tmp/{}", claimed.key),
                checkpoint_sha256: None,
                loss_before: before.ln(),
                perplexity_before: before,
                loss_after: after.ln(),
                perplexity_after: after,
                train_docs: 1000,
                heldout_docs: 100,
                trainable_params: 100,
                train_seconds: 30.0,
                backend: "wgpu".into(),
                head_warmup_steps: None,
                heldout_chars_per_token: 4.3,
            };
            store.finish_stage(&claimed.key, "fixture", &outcome).await.expect("finish stage");
        }
    }

    async fn settle(&self, store: &Store, plan: &Plan) {
        let fate = (self.fate)(plan);
        if matches!(fate, Fate::Pending) {
            return;
        }
        let key = plan.key();
        // Each job has its own prefix group, so preferring it claims exactly this job.
        let claimed = store
            .claim_job(self.name, "fixture", "flex", Some(&key))
            .await
            .expect("claim")
            .expect("a runnable job");
        assert_eq!(claimed.key, key, "claimed the intended job");
        match fate {
            Fate::Done { val_accuracy, test_accuracy, train_seconds } => {
                let result = result_row(val_accuracy, test_accuracy, train_seconds);
                store
                    .finish_job(&key, "fixture", &epochs(&key, val_accuracy), &result)
                    .await
                    .expect("finish");
            }
            Fate::Failed => store.fail_job(&key, "fixture", "out of memory").await.expect("fail"),
            Fate::Pending => unreachable!(),
        }
    }
}

fn new_job(p: &Plan) -> NewJob {
    NewJob {
        key: p.key(),
        stage_key: p.stage_key(),
        init: p.init,
        intermediate: p.intermediate.into(),
        mlm_freeze: p.mlm_freeze,
        freeze: p.freeze,
        num_layers: p.num_layers,
        seed: p.seed,
        lr: p.lr,
        train_size: p.train_size,
        pooling: "cls".into(),
        prefix_group: p.key(),
        spec_json: "{}".into(),
        rung: None,
        backend: "flex".into(),
        strategy: p.strategy.into(),
    }
}

fn result_row(val_accuracy: f64, test_accuracy: f64, train_seconds: f64) -> ResultRow {
    ResultRow {
        best_epoch: 4,
        metric: "accuracy".into(),
        val_metric: val_accuracy,
        test_metric: test_accuracy,
        val_scores: String::new(),
        test_scores: String::new(),
        val_predictions: String::new(),
        test_predictions: String::new(),
        val_per_example: String::new(),
        test_per_example: String::new(),
        val_loss: 1.0 - val_accuracy,
        val_accuracy: Some(val_accuracy),
        val_macro_f1: Some(val_accuracy - 0.01),
        test_loss: 1.0 - test_accuracy,
        test_accuracy: Some(test_accuracy),
        test_macro_f1: Some(test_accuracy - 0.01),
        train_seconds,
        eval_seconds: 2.0,
        prefix_seconds: 0.0,
        load_seconds: 1.0,
        examples_per_second: 2000.0 / train_seconds,
        trainable_params: 1000,
        total_params: 110_000_000,
        prefix_cache: "none".into(),
        backend: "wgpu".into(),
        device: "NVIDIA H100 80GB HBM3".into(),
        val_correct: examples_right(val_accuracy, 200),
        test_correct: examples_right(test_accuracy, 500),
    }
}

/// `n` examples, the first round(accuracy * n) predicted right.
fn examples_right(accuracy: f64, n: usize) -> String {
    let right = (accuracy * n as f64).round() as usize;
    "1".repeat(right.min(n)) + &"0".repeat(n - right.min(n))
}

/// Four epochs rising towards the final validation accuracy.
fn epochs(key: &str, final_accuracy: f64) -> Vec<EpochRow> {
    (1..=4)
        .map(|epoch| {
            let gap = [0.12, 0.05, 0.015, 0.0][epoch as usize - 1];
            EpochRow {
                job_key: key.into(),
                epoch,
                train_loss: 0.6 - 0.1 * epoch as f64,
                val_loss: 1.0 - final_accuracy + gap,
                val_metric: final_accuracy - gap,
                val_accuracy: Some(final_accuracy - gap),
                val_macro_f1: Some(final_accuracy - gap - 0.01),
                seconds: 5.0,
            }
        })
        .collect()
}

// ---- scenarios ------------------------------------------------------------------------

/// Distance (in steps of the lr grid) from the lr that suits this many unfrozen layers:
/// deep fine-tuning wants small lrs, head-only wants large ones.
fn lr_penalty(plan: &Plan) -> f64 {
    let grid = [1e-5, 3e-5, 1e-4];
    let best = match plan.unfrozen() {
        u if u >= 3 => 0,
        2 => 1,
        _ => 2,
    };
    let at = grid.iter().position(|&g| (g - plan.lr).abs() < 1e-12).unwrap_or(1) as i64;
    0.03 * (at - best).abs() as f64
}

fn done(plan: &Plan, accuracy: f64, noise: f64) -> Fate {
    let accuracy = accuracy - lr_penalty(plan);
    Fate::Done {
        val_accuracy: accuracy + 0.01 + noise * plan.noise(1),
        test_accuracy: accuracy + noise * plan.noise(2),
        train_seconds: 10.0 + 8.0 * plan.unfrozen() as f64 + plan.noise(3),
    }
}

fn close_perplexity(_intermediate: &str, init: Init) -> (f64, f64) {
    if init.is_scratch() { (28000.0, 310.0) } else { (7.5, 5.2) }
}

/// Pretrained with the bottom 2 of 4 layers frozen is clearly best; one failed seed and one
/// pending job along the way.
pub fn partial_freezing_wins() -> Scenario {
    Scenario {
        name: "partial",
        num_layers: 4,
        series: vec![
            (Pretrained, "none", None),
            (Pretrained, "task", Some(0)),
            (Scratch, "none", None),
        ],
        freezes: vec![0, 1, 2, 3, 4],
        lrs: vec![1e-5, 3e-5, 1e-4],
        seeds: vec![1, 2, 3],
        train_sizes: vec![None],
        strategies: vec!["plain"],
        fate: |p| {
            if p.init == Pretrained
                && p.intermediate == "none"
                && p.freeze == 4
                && p.lr == 1e-4
                && p.seed == 3
            {
                return Fate::Failed;
            }
            if p.init == Scratch && p.freeze == 0 && p.lr == 1e-5 && p.seed == 3 {
                return Fate::Pending;
            }
            let by_unfrozen = [0.70, 0.80, 0.91, 0.85, 0.84][p.unfrozen() as usize];
            let accuracy = match (p.init, p.intermediate) {
                (Pretrained, "none") => by_unfrozen,
                (Pretrained, _) => by_unfrozen - 0.04,
                _ => 0.55 + 0.03 * p.unfrozen() as f64,
            };
            done(p, accuracy, 0.003)
        },
        perplexity: close_perplexity,
        setup_json: default_setup(),
    }
}

/// Plain freezing, LLRD and gradual unfreezing at freeze 0 and 2 of 4: gradual unfreezing down
/// to depth 0 is clearly best.
pub fn strategies_compared() -> Scenario {
    Scenario {
        name: "strategies",
        num_layers: 4,
        series: vec![(Pretrained, "none", None)],
        freezes: vec![0, 2],
        lrs: vec![3e-5],
        seeds: vec![1, 2, 3],
        train_sizes: vec![None],
        strategies: vec!["plain", "llrd", "gradual"],
        fate: |p| {
            let accuracy = match (p.strategy, p.freeze) {
                ("gradual", 0) => 0.88,
                ("llrd", 0) => 0.85,
                (_, 0) => 0.84,
                ("gradual", _) => 0.84,
                _ => 0.83,
            };
            done(p, accuracy, 0.003)
        },
        perplexity: close_perplexity,
        setup_json: default_setup(),
    }
}

/// Task MLM with 0, 2 or 4 of 4 layers frozen, crossed with downstream freeze 0, 2 and 4:
/// half-frozen MLM then head only (MLM freeze 2, freeze 4) beats head only without MLM, head
/// only after full MLM, and (by a point) full fine-tuning without MLM.
pub fn mlm_freeze_grid() -> Scenario {
    Scenario {
        name: "mlmgrid",
        num_layers: 4,
        series: vec![
            (Pretrained, "none", None),
            (Pretrained, "task", Some(0)),
            (Pretrained, "task", Some(2)),
            (Pretrained, "task", Some(4)),
        ],
        freezes: vec![0, 2, 4],
        lrs: vec![1e-4],
        seeds: vec![1, 2, 3],
        train_sizes: vec![None],
        strategies: vec!["plain"],
        fate: |p| {
            let by_freeze = [0.86, 0.84, 0.76][p.freeze as usize / 2];
            let mlm_gain = match (p.mlm_freeze, p.freeze) {
                (None, _) | (Some(4), _) => 0.0,
                (Some(2), 4) => 0.05,
                (Some(0), 4) => 0.01,
                (Some(_), _) => 0.005,
            };
            done(p, by_freeze + mlm_gain, 0.002)
        },
        perplexity: close_perplexity,
        setup_json: default_setup(),
    }
}

/// Scratch init beats pretrained by a wide margin; two training-set sizes.
pub fn scratch_wins() -> Scenario {
    Scenario {
        name: "scratch",
        num_layers: 4,
        series: vec![(Pretrained, "none", None), (Scratch, "none", None)],
        freezes: vec![0, 2, 4],
        lrs: vec![1e-5, 3e-5, 1e-4],
        seeds: vec![1, 2, 3],
        train_sizes: vec![Some(500), None],
        strategies: vec!["plain"],
        fate: |p| {
            let size_penalty = if p.train_size.is_some() { 0.06 } else { 0.0 };
            let accuracy = match p.init {
                Scratch => 0.70 + 0.06 * p.unfrozen() as f64,
                _ => 0.60 + 0.04 * p.unfrozen() as f64,
            };
            done(p, accuracy - size_penalty, 0.004)
        },
        perplexity: close_perplexity,
        setup_json: default_setup(),
    }
}

/// Every cell within noise of the others, two seeds each: nothing can be separated.
pub fn overlapping() -> Scenario {
    Scenario {
        name: "overlap",
        num_layers: 2,
        series: vec![(Pretrained, "none", None), (Pretrained, "wiki", Some(0))],
        freezes: vec![0, 1, 2],
        lrs: vec![1e-5, 3e-5],
        seeds: vec![1, 2],
        train_sizes: vec![None],
        strategies: vec!["plain"],
        fate: |p| {
            let accuracy =
                0.85 + if p.intermediate == "wiki" { 0.005 } else { 0.0 } + 0.002 * p.freeze as f64;
            Fate::Done {
                val_accuracy: accuracy + 0.03 * p.noise(1) - if p.lr == 3e-5 { 0.05 } else { 0.0 },
                test_accuracy: accuracy + 0.03 * p.noise(2),
                train_seconds: 20.0 + 10.0 * p.unfrozen() as f64 + p.noise(3),
            }
        },
        perplexity: |_, _| (64.0, 21.0),
        // An older run that recorded little: the report must cope.
        setup_json: serde_json::json!({"dataset": "imdb"}).to_string(),
    }
}

/// A BERT-base-sized grid with many series, one of them with a long corpus name, to check
/// that charts stay readable at full size.
pub fn wide_grid() -> Scenario {
    Scenario {
        name: "wide",
        num_layers: 12,
        series: vec![
            (Pretrained, "none", None),
            (Pretrained, "task", Some(0)),
            (Pretrained, "task", Some(6)),
            (Pretrained, "pubmed-abstracts-2023-cardiology", Some(0)),
            (Scratch, "none", None),
            (Scratch, "task", Some(0)),
        ],
        freezes: (0..=12).collect(),
        lrs: vec![2e-5],
        seeds: vec![1, 2],
        train_sizes: vec![None],
        strategies: vec!["plain"],
        fate: |p| {
            let u = p.unfrozen() as f64;
            let shape = 0.75 + 0.15 * (1.0 - ((u - 8.0) / 8.0).powi(2));
            let accuracy = match (p.init, p.intermediate) {
                (Pretrained, "none") => shape,
                (Pretrained, "task") => shape + 0.005 * p.mlm_freeze.unwrap_or(0) as f64 / 6.0,
                (Pretrained, _) => shape + 0.01,
                (_, "none") => 0.55 + 0.01 * u,
                _ => 0.57 + 0.01 * u,
            };
            Fate::Done {
                val_accuracy: accuracy + 0.01 + 0.004 * p.noise(1),
                test_accuracy: accuracy + 0.004 * p.noise(2),
                train_seconds: 30.0 + 25.0 * u + 2.0 * p.noise(3),
            }
        },
        perplexity: |name, init| match (name, init) {
            (_, Scratch) => (30000.0, 400.0),
            ("task", _) => (12.0, 6.0),
            _ => (85.0, 14.0),
        },
        setup_json: default_setup(),
    }
}
