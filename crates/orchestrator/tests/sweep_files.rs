//! Sweep files: expansion counts, key stability, and bad files with their messages.
//! Uses a stand-in model folder (a real config.json; the weights are only hashed at plan time).

use std::path::{Path, PathBuf};

use thaw_orchestrator::plan::Plan;
use thaw_orchestrator::spec::Init;
use thaw_orchestrator::{build_plan, read};
use thaw_train::BackendKind;

struct Fixture {
    dir: tempfile::TempDir,
}

const CONFIG: &str = r#"{"vocab_size": 100, "hidden_size": 8, "num_hidden_layers": 6, "num_attention_heads": 2,
  "intermediate_size": 16, "max_position_embeddings": 128, "hidden_act": "gelu", "model_type": "bert"}"#;

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("model");
        std::fs::create_dir_all(&model).unwrap();
        std::fs::write(model.join("config.json"), CONFIG).unwrap();
        std::fs::write(model.join("tokenizer.json"), "{}").unwrap();
        std::fs::write(model.join("model.safetensors"), "weights").unwrap();
        let mut train = String::new();
        for i in 0..40 {
            train.push_str(&format!("{{\"text\": \"example {i}\", \"label\": \"{}\"}}\n", i % 2));
        }
        std::fs::write(dir.path().join("train.jsonl"), &train).unwrap();
        let test: String = train.lines().take(6).map(|l| format!("{l}\n")).collect();
        std::fs::write(dir.path().join("test.jsonl"), test).unwrap();
        std::fs::write(dir.path().join("domain.txt"), "some domain text\nmore of it\n").unwrap();
        Fixture { dir }
    }

    fn write(&self, name: &str, body: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, body).unwrap();
        path
    }

    fn plan(&self, body: &str) -> Result<Plan, String> {
        let path = self.write("sweep.toml", body);
        let (source, spec) = read(&path).map_err(|e| e.to_string())?;
        build_plan(&source, &spec, BackendKind::Flex).map_err(|e| e.to_string())
    }
}

const BASE: &str = r#"
[sweep]
name = "t"

[model]
path = "model"

[data]
train = "train.jsonl"
test = "test.jsonl"
max_length = 32

[train]
epochs = 1
batch_size = 8
lr = 5e-5

[intermediate.task]
steps = 10

[intermediate.domain]
corpus = "domain.txt"

[grid]
freeze = "all"
init = ["pretrained", "scratch"]
intermediate = ["none", "task"]
seeds = [1, 2]
"#;

fn keys(plan: &Plan) -> Vec<String> {
    plan.jobs.iter().map(|j| j.key.clone()).collect()
}

#[test]
fn expansion_counts_follow_the_grid_and_the_rules() {
    let f = Fixture::new();
    let plan = f.plan(BASE).unwrap();
    // pretrained: 7 depths x {none, task} x 2 seeds; scratch: k = 0, none only (rules), 2 seeds.
    assert_eq!(plan.jobs.len(), 7 * 2 * 2 + 2);
    assert_eq!(plan.stages.len(), 1, "one task-MLM checkpoint serves every job that needs it");
    assert_eq!(plan.jobs.iter().filter(|j| j.spec.stage_key.is_some()).count(), 14);
    assert!(
        plan.notes.iter().any(|n| n.contains("scratch-unfrozen") && n.contains("12 scratch jobs")),
        "{:?}",
        plan.notes
    );
    assert!(
        plan.notes.iter().any(|n| n.contains("scratch-no-mlm") && n.contains("14 scratch jobs")),
        "{:?}",
        plan.notes
    );
    assert!(
        plan.notes
            .iter()
            .any(|n| n.contains("[intermediate.domain] is defined but not in grid.intermediate"))
    );
    let mut unique = keys(&plan);
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), plan.jobs.len(), "keys are distinct");

    let with_rules_off = BASE.replace(
        "seeds = [1, 2]",
        "seeds = [1, 2]\nscratch_freeze = true\nscratch_intermediate = true",
    );
    let plan = f.plan(&with_rules_off).unwrap();
    assert_eq!(plan.jobs.len(), 7 * 2 * 2 * 2);
    assert_eq!(plan.stages.len(), 2);
    // Seeds share a frozen prefix only when they start from the same weights: pretrained yes,
    // scratch no (its random weights come from the seed).
    let group = |init: Init, seed: u64| {
        let job = plan.jobs.iter().find(|j| {
            j.spec.init == init
                && j.spec.intermediate == "none"
                && j.spec.freeze == 3
                && j.spec.seed == seed
        });
        thaw_orchestrator::keys::prefix_group(&job.expect("job").spec)
    };
    assert_eq!(group(Init::Pretrained, 1), group(Init::Pretrained, 2));
    assert_ne!(group(Init::Scratch, 1), group(Init::Scratch, 2));
    assert_ne!(group(Init::Pretrained, 1), group(Init::Scratch, 1));

    let lr_axis = BASE.replace(
        "seeds = [1, 2]",
        "seeds = [1, 2]\nlr = [1e-5, 3e-5, 1e-4]\ntrain_size = [10, 20]\nmlm_freeze = [0, 3]",
    );
    let plan = f.plan(&lr_axis).unwrap();
    assert_eq!(plan.jobs.len(), 2 * (7 * 3 * 2 + 7 * 2 * 3 * 2 + 3 * 2));
    assert_eq!(plan.stages.len(), 2, "the MLM stage does not depend on train_size");
    // The rule notes count every job left out, lrs and sizes included: 6 scratch depths (k > 0) x 3 lrs x 2 seeds x 2 sizes.
    assert!(
        plan.notes.iter().any(|n| n.contains("scratch-unfrozen: 72 scratch jobs")),
        "{:?}",
        plan.notes
    );
}

#[test]
fn per_strategy_learning_rates_and_defaults() {
    let f = Fixture::new();
    let by_strategy = BASE.replace(
        "seeds = [1, 2]",
        "seeds = [1]\nlr = { full = [1e-5, 2e-5], head_only = [1e-3, 1e-2, 3e-2] }",
    );
    let plan = f.plan(&by_strategy).unwrap();
    let lrs = |k: usize| -> Vec<f64> {
        let mut v: Vec<f64> = plan
            .jobs
            .iter()
            .filter(|j| {
                j.spec.freeze == k
                    && j.spec.intermediate == "none"
                    && j.spec.init == Init::Pretrained
            })
            .map(|j| j.lr)
            .collect();
        v.dedup();
        v
    };
    assert_eq!(lrs(0), vec![1e-5, 2e-5]);
    assert_eq!(lrs(3), vec![1e-5, 2e-5], "partial falls back to full");
    assert_eq!(lrs(6), vec![1e-3, 1e-2, 3e-2]);
    let defaults = BASE.replace("lr = 5e-5\n", "");
    let plan = f.plan(&defaults).unwrap();
    let head: Vec<f64> = plan
        .jobs
        .iter()
        .filter(|j| j.spec.freeze == 6 && j.spec.seed == 1 && j.spec.intermediate == "none")
        .map(|j| j.lr)
        .collect();
    assert_eq!(head, vec![1e-3, 3e-3, 1e-2], "head-only gets the larger default range");
}

#[test]
fn keys_do_not_change_with_unrelated_edits() {
    let f = Fixture::new();
    let before = f.plan(BASE).unwrap();
    let edited = BASE
        .replace("name = \"t\"", "name = \"renamed\"\ndescription = \"a comment-like edit\"")
        .replace("seeds = [1, 2]", "seeds = [2, 1, 3]")
        .replace(
            "[intermediate.domain]\ncorpus = \"domain.txt\"",
            "[intermediate.domain]\ncorpus = \"domain.txt\"\nsteps = 99",
        )
        .replace("[cache]", "")
        + "\n[cache]\nprefix_mb = 10\n";
    let after = f.plan(&edited).unwrap();
    let old = keys(&before);
    let new = keys(&after);
    assert!(old.iter().all(|k| new.contains(k)), "every old job keeps its key");
    assert_eq!(new.len(), old.len() + 7 * 2 + 1, "only the seed-3 jobs are new");
    assert_eq!(before.stages[0].key, after.stages[0].key);

    // Moving the data file (same content) keeps keys; changing its content changes them.
    std::fs::create_dir_all(f.dir.path().join("moved")).unwrap();
    std::fs::copy(f.dir.path().join("train.jsonl"), f.dir.path().join("moved/train.jsonl"))
        .unwrap();
    let moved =
        f.plan(&BASE.replace("train = \"train.jsonl\"", "train = \"moved/train.jsonl\"")).unwrap();
    assert_eq!(keys(&moved), old);
    let fewer: String = std::fs::read_to_string(f.dir.path().join("train.jsonl"))
        .unwrap()
        .lines()
        .skip(2)
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(f.dir.path().join("moved/train.jsonl"), fewer).unwrap();
    let changed =
        f.plan(&BASE.replace("train = \"train.jsonl\"", "train = \"moved/train.jsonl\"")).unwrap();
    assert!(keys(&changed).iter().all(|k| !old.contains(k)));

    // A trainer setting is part of every key.
    let more_epochs = f.plan(&BASE.replace("epochs = 1", "epochs = 2")).unwrap();
    assert!(keys(&more_epochs).iter().all(|k| !old.contains(k)));
}

#[test]
fn bad_sweep_files_are_located_and_explained() {
    let f = Fixture::new();
    let cases: Vec<(String, &str)> = vec![
        (
            BASE.replace("max_length = 32", "max_lenght = 32"),
            "sweep.toml:11:1: unknown field `max_lenght`, expected one of",
        ),
        (
            BASE.replace("epochs = 1", "epochs = \"one\""),
            "sweep.toml:14:10: invalid type: string \"one\", expected usize",
        ),
        (
            BASE.replace("freeze = \"all\"", "freeze = [0, 3, 8]"),
            "sweep.toml:25:10: freeze depth 8 is larger than the model's 6 encoder layers; valid depths are 0..=6",
        ),
        (
            BASE.replace("freeze = \"all\"", "freeze = \"most\""),
            "freeze must be \"all\" or a list of depths such as [0, 3, 6], found \"most\"",
        ),
        (
            BASE.replace("train = \"train.jsonl\"", "train = \"missing.jsonl\""),
            "sweep.toml:9:9: data.train 'missing.jsonl' not found",
        ),
        (
            BASE.replace(
                "intermediate = [\"none\", \"task\"]",
                "intermediate = [\"none\", \"wiki\"]",
            ),
            "intermediate 'wiki' is not defined; valid: none, task, domain",
        ),
        (
            BASE.replace(
                "init = [\"pretrained\", \"scratch\"]",
                "init = [\"pretrained\", \"random\"]",
            ),
            "unknown variant `random`, expected one of `pretrained`, `scratch`, `scratch-own-vocab`",
        ),
        (
            BASE.replace("seeds = [1, 2]", "seeds = [1, 1]"),
            "seeds must be a non-empty list of distinct integers",
        ),
        (
            BASE.replace("seeds = [1, 2]", "seeds = [1, 2]\nlr = [5e-5, -1.0]"),
            "learning rate -1 must be a number in (0, 1)",
        ),
        (
            BASE.replace("[sweep]\nname = \"t\"", "[sweep]\nname = \"my sweep\""),
            "sweep.name must be non-empty and use only letters",
        ),
        (BASE.replace("path = \"model\"", "path = \"nowhere\""), "nowhere: missing config.json"),
        (
            BASE.replace("corpus = \"domain.txt\"", "corpus = \"gone.txt\"")
                .replace("[\"none\", \"task\"]", "[\"none\", \"domain\"]"),
            "corpus 'gone.txt' not found",
        ),
        (
            BASE.replace("seeds = [1, 2]", "seeds = [1, 2]\nmlm_freeze = [7]"),
            "mlm_freeze 7 is larger than the model's 6 layers",
        ),
        (
            BASE.replace("max_length = 32", "max_length = 4096"),
            "max_length 4096 must be between 8 and the model's 128 positions",
        ),
        (BASE.replace("[grid]", "[grid]\ntrain_size = [1]"), "train_size must be at least 2"),
        (
            BASE.replace("[grid]", "[grid]\ntrain_size = [500]"),
            "grid.train_size 500 is larger than the 36 training examples of train.jsonl",
        ),
        (
            BASE.replace(
                "[intermediate.task]\nsteps = 10",
                "[intermediate.task]\nsteps = 10\ncorpus = \"domain.txt\"",
            ),
            "[intermediate.task] trains on the training text",
        ),
        (BASE.replace("[model]\npath = \"model\"", "[model]"), "[model] needs hub = \"org/name\""),
        (BASE.replace("lr = 5e-5", "lr = 5e-5\nlr = 1e-4"), "duplicate key"),
        (
            BASE.replace(
                "seeds = [1, 2]",
                "seeds = [1, 2]\nlr = { full = [1e-5], frozen = [1e-3] }",
            ),
            "unknown field `frozen`, expected one of `full`, `partial`, `head_only`, `scratch`",
        ),
        ("[sweep\nname = 1".to_string(), "sweep.toml:1:"),
        (
            BASE.replace("seeds = [1, 2]", "seeds = [1, 2]\nlr = [1e-5, 3e-5, 1e-5]"),
            "learning rate 0.00001 is listed twice",
        ),
        (
            BASE.replace("seeds = [1, 2]", "seeds = [1, 2]\nmlm_freeze = [0, 2, 0]"),
            "sweep.toml:29:21: mlm_freeze 0 is listed twice",
        ),
        (BASE.replace("[grid]", "[grid]\ntrain_size = [10, 10]"), "train_size 10 is listed twice"),
        (
            BASE.replace(
                "init = [\"pretrained\", \"scratch\"]",
                "init = [\"pretrained\", \"pretrained\"]",
            ),
            "grid.init lists \"pretrained\" twice",
        ),
        (
            BASE.replace("steps = 10", "steps = 10\nbatch_size = 0"),
            "sweep.toml:18:1: [intermediate.task] batch_size must be at least 1",
        ),
        (
            BASE.replace("steps = 10", "steps = 10\nmask_prob = 1.5"),
            "[intermediate.task] mask_prob = 1.5 must be in (0, 1)",
        ),
        (
            BASE.replace("steps = 10", "steps = 10\nmax_length = 4096"),
            "[intermediate.task] max_length = 4096 must be in 3..=128",
        ),
        (
            BASE.replace("batch_size = 8", "batch_size = 8\nwarmup_ratio = 2.0"),
            "[train] warmup_ratio = 2 must be in [0, 1]",
        ),
        (
            BASE.replace(
                "corpus = \"domain.txt\"",
                "corpus = \"domain.txt\"\n[intermediate.domain2]\ncorpus = \"domain.txt\"",
            )
            .replace("[\"none\", \"task\"]", "[\"none\", \"domain\", \"domain2\"]"),
            "[intermediate.domain] and [intermediate.domain2] describe the same stage",
        ),
    ];
    assert!(cases.len() >= 10);
    let mut wrong = Vec::new();
    for (body, want) in cases {
        match f.plan(&body) {
            Ok(_) => wrong.push(format!("accepted, wanted: {want}")),
            Err(got) if !(got.contains(want) && got.contains("sweep.toml")) => {
                wrong.push(format!("want: {want}\n  got: {got}"))
            }
            Err(_) => {}
        }
    }
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
    let missing = read(Path::new("/no/such/sweep.toml")).map(|_| ()).unwrap_err().to_string();
    assert!(missing.contains("/no/such/sweep.toml: cannot read the sweep file"), "{missing}");
}

#[test]
fn keeping_weights_changes_no_key_and_bad_values_name_their_line() {
    let f = Fixture::new();
    let keys = |plan: &Plan| plan.jobs.iter().map(|j| j.key.clone()).collect::<Vec<_>>();
    let plain = f.plan(BASE).unwrap();
    assert!(plain.jobs.iter().all(|j| !j.spec.keep_weights));
    let kept = f.plan(&BASE.replace("[train]\n", "[train]\nkeep = \"best-per-cell\"\n")).unwrap();
    assert!(kept.jobs.iter().all(|j| j.spec.keep_weights));
    assert_eq!(keys(&kept), keys(&plain), "keeping weights does not change what a job computes");
    let err = f.plan(&BASE.replace("[train]\n", "[train]\nkeep = \"best\"\n")).unwrap_err();
    assert!(
        err.contains("sweep.toml:")
            && err
                .contains("unknown variant `best`, expected one of `none`, `best-per-cell`, `all`"),
        "{err}"
    );
    // The majority-class baselines of validation and test are recorded for the report.
    let baseline = plain.setup.baseline.as_ref().expect("baselines are recorded");
    assert_eq!(baseline.test.examples, 6);
    assert_eq!(
        baseline.test.label, "0",
        "labels 0 and 1 alternate from 0: 3 of 6 each, the first wins"
    );
    assert_eq!(baseline.test.metric_value, 0.5);
}

#[test]
fn search_sections_are_checked_and_planned() {
    let f = Fixture::new();
    let adaptive = BASE
        .replace("epochs = 1", "epochs = 3")
        .replace("seeds = [1, 2]\n", "lr = [1e-5, 3e-5, 1e-4]\n")
        + "\n[search]\nlr = \"halving\"\nseeds = { min = 2, max = 5 }\nbudget_minutes = 30\n";
    let plan = f.plan(&adaptive).unwrap();
    let search = plan.search.clone().expect("a search");
    assert_eq!(search.halving.map(|h| (h.rate, h.rung_epochs, h.seeds)), Some((3, 1, 1)));
    assert_eq!(search.budget_seconds, Some(1800.0));
    assert!(!search.prior);
    let with_prior = f.plan(&(adaptive.clone() + "prior = \"advise\"\n")).unwrap();
    assert!(with_prior.search.expect("a search").prior);
    // The plan holds the universe: every lr with seeds 1..=max.
    let seeds: std::collections::BTreeSet<u64> = plan.jobs.iter().map(|j| j.spec.seed).collect();
    assert_eq!(seeds.into_iter().collect::<Vec<_>>(), vec![1, 2, 3, 4, 5]);
    let described = plan.describe(false);
    assert!(
        described.contains("seeds raced from 2 to 5 per cell within 30 minutes"),
        "{described}"
    );
    // Rung jobs are other jobs (other keys); the full jobs keep the keys a grid gives them.
    let rung = plan.jobs[0].rung(1);
    assert_ne!(rung.key, plan.jobs[0].key);
    let grid = f
        .plan(
            &BASE
                .replace("epochs = 1", "epochs = 3")
                .replace("seeds = [1, 2]\n", "seeds = [1, 2, 3, 4, 5]\nlr = [1e-5, 3e-5, 1e-4]\n"),
        )
        .unwrap();
    assert_eq!(keys(&grid), keys(&plan), "a search's full jobs are the grid's jobs");
    assert!(grid.search.is_none());

    let cases: Vec<(String, &str)> = vec![
        (
            BASE.to_string() + "\n[search]\nseeds = { min = 2, max = 4 }\n",
            "seeds are given twice: [grid] seeds lists fixed seeds, [search] seeds races them",
        ),
        (BASE.replace("seeds = [1, 2]\n", ""), "[grid] seeds is missing: give fixed seeds"),
        (adaptive.replace("min = 2", "min = 1"), "racing needs 2 <= min <= max"),
        (
            adaptive.replace("lr = \"halving\"", "lr = \"halving\"\nrung_epochs = 3"),
            "rung_epochs = 3 must be at least 1 and below [train] epochs = 3",
        ),
        (
            adaptive.replace("lr = \"halving\"", "lr = \"halving\"\nhalving_rate = 1"),
            "halving_rate = 1 must be at least 2",
        ),
        (
            adaptive.replace("lr = \"halving\"", "lr = \"halving\"\nrung_seeds = 3"),
            "rung_seeds = 3 must be in 1..=2 (the seeds every cell starts with)",
        ),
        (
            adaptive.replace("lr = \"halving\"", "lr = \"halfing\""),
            "unknown variant `halfing`, expected `grid` or `halving`",
        ),
        (
            adaptive.replace("budget_minutes = 30", "budget_minutes = 0"),
            "budget_minutes = 0 must be a positive number of minutes",
        ),
        (adaptive.replace("seeds = { min = 2, max = 5 }", "seed = 3"), "unknown field `seed`"),
        (
            adaptive
                .replace("seeds = { min = 2, max = 5 }\nbudget_minutes = 30", "prior = \"advise\"")
                .replace("lr = [1e-5", "seeds = [1, 2]\nlr = [1e-5"),
            "prior = \"advise\" trims the seeds racing starts with; give [search] seeds",
        ),
        (adaptive.clone() + "prior = \"guess\"\n", "unknown variant `guess`, expected `advise`"),
    ];
    for (body, expected) in cases {
        let err = f.plan(&body).map(|_| ()).unwrap_err();
        assert!(err.contains(expected), "expected '{expected}' in: {err}");
        assert!(
            err.starts_with(&format!("{}", f.dir.path().join("sweep.toml").display())),
            "{err}"
        );
    }
}

#[test]
fn the_backend_is_in_every_key_but_flex_keys_are_unchanged() {
    let f = Fixture::new();
    let path = f.write("sweep.toml", BASE);
    let (source, spec) = read(&path).unwrap();
    let flex = build_plan(&source, &spec, BackendKind::Flex).unwrap();
    let ndarray = build_plan(&source, &spec, BackendKind::Ndarray).unwrap();
    assert_eq!(flex.jobs.len(), ndarray.jobs.len());
    assert!(keys(&flex).iter().all(|k| !keys(&ndarray).contains(k)), "other backend, other jobs");
    assert!(flex.stages.iter().all(|s| ndarray.stages.iter().all(|o| o.key != s.key)));
    assert!(ndarray.jobs.iter().all(|j| j.spec.backend == BackendKind::Ndarray));
    // A flex job's key is the one thaw gave before backends were part of keys: the spec with
    // the backend field removed (as stored by earlier versions) hashes the same.
    let job = &flex.jobs[0];
    let mut old = serde_json::to_value(&job.spec).unwrap();
    old.as_object_mut().unwrap().remove("backend");
    let old: thaw_orchestrator::jobspec::JobSpec = serde_json::from_value(old).unwrap();
    assert_eq!(thaw_orchestrator::keys::job_key(&old), job.key);
}

const STRATEGIES: &str = r#"
[strategy.llrd]
llrd_decay = 0.8

[strategy.gradual]
unfreeze = "gradual"
unfreeze_every = 4

[strategy.lp-ft]
unfreeze = "lp-ft"
head_epochs = 1
head_lr = 3e-3

[strategy.reinit]
reinit_top = 2
"#;

/// The base file with strategies defined, two epochs (LP-FT needs one left for fine-tuning)
/// and `grid_extra` appended to `[grid]`.
fn with_strategies(grid_extra: &str) -> String {
    BASE.replace("epochs = 1", "epochs = 2").replace("[grid]", &format!("{STRATEGIES}\n[grid]"))
        + grid_extra
}

#[test]
fn strategies_expand_by_their_rules_and_keep_plain_keys() {
    let f = Fixture::new();
    let plain = f.plan(&BASE.replace("epochs = 1", "epochs = 2")).unwrap();
    let plan = f
        .plan(&with_strategies(
            "strategy = [\"plain\", \"llrd\", \"gradual\", \"lp-ft\", \"reinit\"]\n",
        ))
        .unwrap();
    // Plain jobs are the jobs of a file without strategies, keys and all.
    let plain_keys: Vec<String> =
        plan.jobs.iter().filter(|j| j.strategy == "plain").map(|j| j.key.clone()).collect();
    assert_eq!(plain_keys, keys(&plain));
    // Pretrained, 2 intermediates: depths 0..=5 take every strategy, depth 6 (head only) plain
    // only; reinit 2 needs 2 trainable layers (depths 0..=4).
    let of = |name: &str| plan.jobs.iter().filter(|j| j.strategy == name).count();
    assert_eq!((of("llrd"), of("gradual"), of("lp-ft"), of("reinit")), (24, 24, 24, 20));
    let notes = plan.notes.join("\n");
    assert!(notes.contains("rule strategy-below-head-only: 16 head-only jobs"), "{notes}");
    assert!(notes.contains("rule reinit-trainable: 4 jobs"), "{notes}");
    assert!(notes.contains("rule strategy-pretrained: 8 scratch jobs"), "{notes}");
    // Every strategy has keys of its own, and `thaw plan --jobs` names it.
    let all = keys(&plan);
    let distinct: std::collections::BTreeSet<&String> = all.iter().collect();
    assert_eq!(distinct.len(), all.len());
    let listing = plan.describe(true);
    for name in [
        "llrd (llrd 0.8)",
        "gradual (gradual/4 steps)",
        "lp-ft (lp-ft 1 ep @ 3e-3)",
        "reinit (reinit 2)",
    ] {
        assert!(listing.contains(&format!("strategy={name}")), "{name} in {listing}");
    }
    assert!(listing.contains("k=3 strategy=gradual lr=5e-5"), "{listing}");

    // The decay axis crosses every strategy and names what it adds.
    let decays = f
        .plan(&with_strategies("strategy = [\"plain\", \"gradual\"]\nllrd_decay = [1.0, 0.9]\n"))
        .unwrap();
    let names: std::collections::BTreeSet<&str> =
        decays.jobs.iter().map(|j| j.strategy.as_str()).collect();
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        ["gradual", "gradual+llrd-0.9", "llrd-0.9", "plain"]
    );

    // Halving whose rung ends inside LP-FT's probe would rank lrs on the probe alone: said.
    let halving = "\n[search]\nlr = \"halving\"\nrung_epochs = 1\n";
    let body = with_strategies("strategy = [\"plain\", \"lp-ft\"]\nlr = [5e-5, 1e-4]\n")
        .replace("epochs = 2", "epochs = 3")
        + halving;
    let notes = f.plan(&body).unwrap().notes.join("\n");
    assert!(notes.contains("caveat lp-ft-rung: [strategy.lp-ft]"), "{notes}");
    let longer = f.plan(&body.replace("rung_epochs = 1", "rung_epochs = 2")).unwrap();
    assert!(!longer.notes.join("\n").contains("lp-ft-rung"));
}

#[test]
fn bad_strategies_are_located_and_explained() {
    let f = Fixture::new();
    let cases: Vec<(String, &str)> = vec![
        (
            with_strategies("strategy = [\"plain\", \"warmup\"]\n"),
            "strategy 'warmup' is not defined; valid: plain, gradual, llrd, lp-ft, reinit",
        ),
        (
            with_strategies("strategy = [\"lp-ft\"]\n")
                .replace("head_epochs = 1", "head_epochs = 2"),
            "[strategy.lp-ft] head_epochs = 2 must be at least 1 and below epochs = 2",
        ),
        (
            with_strategies("strategy = [\"llrd\"]\n")
                .replace("llrd_decay = 0.8", "llrd_decay = 1.5"),
            "[strategy.llrd] llrd_decay = 1.5 must be in (0, 1]",
        ),
        (
            with_strategies("strategy = [\"reinit\"]\n")
                .replace("reinit_top = 2", "reinit_top = 7"),
            "reinit_top = 7 is more than the model's 6 layers",
        ),
        (
            with_strategies("strategy = [\"llrd\"]\n")
                .replace("llrd_decay = 0.8", "llrd_decay = 0.8\nhead_lr = 1e-3"),
            "[strategy.llrd] head_lr applies to unfreeze = \"lp-ft\" only",
        ),
        (
            with_strategies("strategy = [\"gradual\"]\n")
                .replace("unfreeze = \"gradual\"", "unfreeze = \"sometimes\""),
            "unknown variant `sometimes`, expected one of `fixed`, `gradual`, `lp-ft`",
        ),
        (
            with_strategies("strategy = [\"llrd\"]\nllrd_decay = [0.9]\n"),
            "[strategy.llrd] sets llrd_decay itself and grid.llrd_decay crosses every strategy",
        ),
        (
            with_strategies("strategy = [\"plain\"]\n")
                .replace("[strategy.reinit]\nreinit_top = 2", "[strategy.nothing]"),
            "[strategy.nothing] changes nothing",
        ),
        (
            BASE.replace("init = [\"pretrained\", \"scratch\"]", "init = [\"scratch-own-vocab\"]")
                + "\n[scratch]\nhidden = 100\nheads = 3\n",
            "[scratch] hidden = 100 must be a multiple of heads = 3",
        ),
    ];
    for (body, expected) in cases {
        let err = f.plan(&body).err().unwrap_or_else(|| panic!("no error for {expected}"));
        assert!(err.contains(expected), "expected {expected:?} in {err:?}");
        assert!(err.contains("sweep.toml"), "{err}");
    }
    // Errors inside a [strategy] section point at it.
    let err = f
        .plan(
            &with_strategies("strategy = [\"llrd\"]\n")
                .replace("llrd_decay = 0.8", "llrd_decay = 1.5"),
        )
        .unwrap_err();
    let line = body_line(&with_strategies(""), "[strategy.llrd]");
    assert!(
        err.starts_with(&format!("{}:{line}:", f.dir.path().join("sweep.toml").display())),
        "{err} at line {line}"
    );
}

/// The 1-based line of the first line starting with `start`.
fn body_line(body: &str, start: &str) -> usize {
    body.lines().position(|l| l.starts_with(start)).expect("the line") + 1
}

#[test]
fn scratch_with_its_own_vocabulary_is_planned_alone_and_sized() {
    let f = Fixture::new();
    let body = BASE.replace(
        "init = [\"pretrained\", \"scratch\"]",
        "init = [\"pretrained\", \"scratch-own-vocab\"]",
    ) + "\n[scratch]\nvocab_size = 500\nlayers = 2\nhidden = 64\nheads = 2\n";
    let plan = f.plan(&body).unwrap();
    let own: Vec<_> = plan.jobs.iter().filter(|j| j.spec.init == Init::ScratchOwnVocab).collect();
    // Unfrozen, no intermediate MLM: one cell of 2 seeds.
    assert_eq!(own.len(), 2);
    assert!(own.iter().all(|j| j.spec.freeze == 0 && j.spec.stage_key.is_none()));
    let model = own[0].spec.scratch_model.as_ref().expect("its size travels with the job");
    assert_eq!((model.vocab_size, model.layers, model.hidden, model.heads), (500, 2, 64, 2));
    assert!(
        plan.notes.iter().any(|n| n.contains("rule own-vocab-alone: 26 scratch-own-vocab jobs")),
        "{:?}",
        plan.notes
    );
    assert!(plan.describe(false).contains("scratch-own-vocab: 2 layers, hidden 64, 2 heads"));
    // Its size is part of its key; pretrained keys do not move.
    let bigger = f.plan(&body.replace("hidden = 64", "hidden = 128")).unwrap();
    let own_keys = |p: &Plan| -> Vec<String> {
        p.jobs
            .iter()
            .filter(|j| j.spec.init == Init::ScratchOwnVocab)
            .map(|j| j.key.clone())
            .collect()
    };
    assert!(own_keys(&bigger).iter().all(|k| !own_keys(&plan).contains(k)));
    let pretrained = |p: &Plan| -> Vec<String> {
        p.jobs.iter().filter(|j| j.spec.init == Init::Pretrained).map(|j| j.key.clone()).collect()
    };
    assert_eq!(pretrained(&bigger), pretrained(&plan));
}

#[test]
fn tasks_and_metrics_are_checked_and_their_baselines_recorded() {
    let f = Fixture::new();
    let mut scores = String::new();
    let mut tags = String::new();
    for i in 0..30 {
        scores.push_str(&format!(
            "{{\"text\": \"a {i}\", \"text_pair\": \"b {i}\", \"label\": {}}}\n",
            i % 5
        ));
        let tag = if i % 3 == 0 { "B-PER" } else { "O" };
        tags.push_str(&format!(
            "{{\"tokens\": [\"w{i}\", \"x\"], \"tags\": [\"{tag}\", \"O\"]}}\n"
        ));
    }
    f.write("scores.jsonl", &scores);
    let flat: String =
        (0..30).map(|i| format!("{{\"text\": \"a {i}\", \"label\": 2.5}}\n")).collect();
    f.write("flat.jsonl", &flat);
    f.write("tags.jsonl", &tags);
    let with_data =
        |data: &str| BASE.replace("train = \"train.jsonl\"\ntest = \"test.jsonl\"", data);
    let regression = with_data(
        "train = \"scores.jsonl\"\ntask = \"regression\"\ntext_pair_field = \"text_pair\"",
    );
    let plan = f.plan(&regression).unwrap();
    let baseline = plan.setup.baseline.as_ref().unwrap();
    assert_eq!(plan.setup.metric, thaw_train::data::Metric::Spearman, "regression's default");
    assert_eq!(baseline.test.metric_value, 0.0, "the training mean has no correlation");
    assert!(baseline.test.rmse.is_some_and(|r| r > 0.0));
    let tokens = with_data("train = \"tags.jsonl\"\ntask = \"tokens\"");
    let plan = f.plan(&tokens).unwrap();
    let baseline = plan.setup.baseline.as_ref().unwrap();
    assert_eq!(plan.setup.metric, thaw_train::data::Metric::EntityF1);
    assert_eq!(baseline.test.label, "O");
    assert_eq!(baseline.test.metric_value, 0.0, "all-O finds no entity");
    assert_ne!(keys(&plan), keys(&f.plan(&regression).unwrap()));

    let cases = [
        (
            with_data("train = \"tags.jsonl\"\ntask = \"tokens\"\nmetric = \"spearman\""),
            "sweep.toml:11:10: metric 'spearman' does not score a tokens task; use one of: entity_f1, token_accuracy",
        ),
        (
            with_data("train = \"tags.jsonl\"\ntask = \"words\""),
            "unknown variant `words`, expected one of `classification`, `regression`, `tokens`",
        ),
        (
            with_data(
                "train = \"scores.jsonl\"\ntask = \"regression\"\ntext_pair_field = \"second\"",
            ),
            "missing field 'second'",
        ),
        (
            with_data("train = \"flat.jsonl\"\ntask = \"regression\""),
            "needs at least two different labels",
        ),
    ];
    for (body, want) in cases {
        let err = f.plan(&body).map(|_| ()).unwrap_err();
        assert!(err.contains(want) && err.contains("sweep.toml"), "want {want:?} in {err:?}");
    }
}
