//! The search's rules on a two-cell plan, with the store's state written by hand.

use std::path::PathBuf;

use thaw_store::{Init, JobResultRow, RungRow, WorkStatus};
use thaw_train::{BackendKind, FineTuneSettings, Pooling};

use super::*;
use crate::jobspec::{DataSpec, JobSpec, ModelSpec};
use crate::keys::job_key;
use crate::spec::{Keep, SeedRace};
use crate::validate::Halving;

const LRS: [f64; 3] = [1e-4, 3e-4, 1e-3];

/// Two cells (freeze 0 and 6), three lrs, seeds 1..=4, 3 epochs.
fn plan() -> Plan {
    let model = ModelSpec {
        dir: PathBuf::from("/nowhere"),
        origin: "test".into(),
        identity: "m".into(),
        num_layers: 6,
    };
    let data = DataSpec {
        name: "d".into(),
        train: PathBuf::from("/nowhere/train.jsonl"),
        validation: None,
        test: None,
        task: Default::default(),
        metric: Default::default(),
        text_field: "text".into(),
        text_pair_field: None,
        label_field: "label".into(),
        tokens_field: "tokens".into(),
        tags_field: "tags".into(),
        labels_field: "labels".into(),
        holdout_fraction: 0.1,
        max_validation: None,
        max_test: None,
        subsample_seed: 0,
        max_length: 32,
        identity: "d".into(),
        snapshot: None,
    };
    let mut jobs = Vec::new();
    for freeze in [0, 6] {
        for lr in LRS {
            for seed in 1..=4 {
                let spec = JobSpec {
                    model: model.clone(),
                    data: data.clone(),
                    train_size: None,
                    init: Init::Pretrained,
                    intermediate: "none".into(),
                    stage_key: None,
                    freeze,
                    seed,
                    settings: FineTuneSettings { epochs: 3, lr, ..Default::default() },
                    prefix_cache_mb: 0,
                    keep_weights: false,
                    rung: None,
                    backend: BackendKind::Flex,
                    scratch_model: None,
                };
                jobs.push(JobPlan {
                    key: job_key(&spec),
                    spec,
                    mlm_freeze: None,
                    lr,
                    pooling: Pooling::Mean,
                    strategy: "plain".into(),
                });
            }
        }
    }
    Plan {
        sweep: "s".into(),
        model,
        data,
        stages: Vec::new(),
        jobs,
        notes: Vec::new(),
        setup: thaw_analysis::Setup::parse("{}").expect("an empty setup"),
        keep: Keep::None,
        search: None,
        backend: BackendKind::Flex,
    }
}

fn adaptive(budget_seconds: Option<f64>) -> SearchPlan {
    SearchPlan {
        halving: Some(Halving { rate: 3, rung_epochs: 1, seeds: 2 }),
        race: Some(SeedRace { min: 2, max: 4 }),
        budget_seconds,
        prior: false,
    }
}

fn rung_row(job: &JobPlan, status: WorkStatus, accuracy: f64) -> RungRow {
    RungRow {
        job_key: job.key.clone(),
        init: job.spec.init,
        intermediate: job.spec.intermediate.clone(),
        mlm_freeze: None,
        freeze: job.spec.freeze as i64,
        seed: job.spec.seed as i64,
        lr: job.lr,
        train_size: None,
        pooling: "mean".into(),
        strategy: "plain".into(),
        rung: job.spec.rung.unwrap() as i64,
        status,
        val_metric: (status == WorkStatus::Done).then_some(accuracy),
        val_loss: (status == WorkStatus::Done).then_some(1.0 - accuracy),
        val_macro_f1: (status == WorkStatus::Done).then_some(accuracy),
    }
}

fn result_row(job: &JobPlan, val_accuracy: f64) -> JobResultRow {
    JobResultRow {
        sweep: "s".into(),
        ord: 0,
        job_key: job.key.clone(),
        init: job.spec.init,
        intermediate: job.spec.intermediate.clone(),
        mlm_freeze: None,
        freeze: job.spec.freeze as i64,
        unfrozen_layers: 6 - job.spec.freeze as i64,
        num_layers: 6,
        seed: job.spec.seed as i64,
        lr: job.lr,
        train_size: None,
        pooling: "mean".into(),
        status: WorkStatus::Done,
        attempts: 1,
        error: None,
        best_epoch: Some(3),
        val_loss: Some(1.0 - val_accuracy),
        val_accuracy: Some(val_accuracy),
        val_macro_f1: Some(val_accuracy),
        test_loss: Some(0.5),
        test_accuracy: Some(0.5),
        test_macro_f1: Some(0.5),
        train_seconds: Some(10.0),
        eval_seconds: Some(1.0),
        prefix_seconds: Some(0.0),
        examples_per_second: Some(100.0),
        trainable_params: Some(1),
        total_params: Some(1),
        prefix_cache: Some("none".into()),
        backend: Some("flex".into()),
        device: None,
        strategy: "plain".into(),
        prefix_group: String::new(),
        val_correct: None,
        test_correct: None,
        metric: Some("accuracy".into()),
        val_metric: Some(val_accuracy),
        test_metric: Some(0.5),
        val_scores: None,
        test_scores: None,
        val_per_example: None,
        test_per_example: None,
    }
}

/// Every rung of the step done, lr 3e-4 best at the rung (freeze 6: 1e-3 best).
fn rungs_done(step: &Next, seen: &mut Observed) {
    for job in step.jobs.iter().filter(|j| j.spec.rung.is_some()) {
        let best = if job.spec.freeze == 0 { 3e-4 } else { 1e-3 };
        let accuracy = if job.lr == best { 0.8 } else { 0.6 } + 0.01 * job.spec.seed as f64;
        seen.status.insert(job.key.clone(), WorkStatus::Done);
        seen.rungs.push(rung_row(job, WorkStatus::Done, accuracy));
    }
}

/// The step's full jobs not done yet finish with `accuracy(freeze, seed)`.
fn full_jobs_done(step: &Next, seen: &mut Observed, accuracy: impl Fn(usize, u64) -> f64) {
    for job in step.jobs.iter().filter(|j| j.spec.rung.is_none()) {
        if seen.status.insert(job.key.clone(), WorkStatus::Done).is_none() {
            seen.results.push(result_row(job, accuracy(job.spec.freeze, job.spec.seed)));
            seen.seconds_spent += 60.0;
        }
    }
}

fn actions(step: &Next, action: SearchAction) -> Vec<&NewDecision> {
    step.decisions.iter().filter(|d| d.action == action).collect()
}

#[test]
fn halving_trains_rungs_first_then_keeps_the_best_third_on_validation() {
    let plan = plan();
    let mut seen = Observed::default();
    let first = next(&plan, &adaptive(None), &seen);
    // Rungs only: 2 cells x 3 lrs x the first 2 seeds, cut after 1 of 3 epochs.
    assert_eq!(first.jobs.len(), 12);
    assert!(first.jobs.iter().all(|j| j.spec.rung == Some(1) && j.spec.seed <= 2));
    assert!(first.jobs.iter().all(|j| j.spec.settings.epochs == 3), "the full schedule");
    assert!(first.decisions.is_empty() && !first.finished);

    rungs_done(&first, &mut seen);
    let second = next(&plan, &adaptive(None), &seen);
    let promoted = actions(&second, SearchAction::Promote);
    let pruned = actions(&second, SearchAction::Prune);
    assert_eq!((promoted.len(), pruned.len()), (2, 4), "⌈3/3⌉ = 1 lr kept per cell");
    let kept: Vec<(i64, f64)> = second
        .jobs
        .iter()
        .filter(|j| j.spec.rung.is_none())
        .map(|j| (j.spec.freeze as i64, j.lr))
        .collect();
    assert_eq!(kept, vec![(0, 3e-4), (0, 3e-4), (6, 1e-3), (6, 1e-3)]);
    assert!(promoted[0].reason.contains("81.5 %"), "{}", promoted[0].reason);
    assert!(pruned[0].reason.contains("stopped at the rung"), "{}", pruned[0].reason);
    // The rungs stay in the sweep (their numbers are the pruning's evidence).
    assert_eq!(second.jobs.iter().filter(|j| j.spec.rung.is_some()).count(), 12);
    assert!(!second.finished, "the full jobs have not run");
}

#[test]
fn a_failed_rung_seed_ranks_its_lr_last() {
    let plan = plan();
    let mut seen = Observed::default();
    let first = next(&plan, &adaptive(None), &seen);
    rungs_done(&first, &mut seen);
    // The best lr of freeze 0 diverged on seed 2.
    let diverged =
        first.jobs.iter().find(|j| j.spec.freeze == 0 && j.lr == 3e-4 && j.spec.seed == 2).unwrap();
    seen.status.insert(diverged.key.clone(), WorkStatus::Failed);
    seen.rungs.retain(|r| r.job_key != diverged.key);
    seen.rungs.push(rung_row(diverged, WorkStatus::Failed, 0.0));
    let second = next(&plan, &adaptive(None), &seen);
    let pruned: Vec<f64> = actions(&second, SearchAction::Prune)
        .iter()
        .filter(|d| d.cell.contains("\"freeze\":0"))
        .filter_map(|d| d.lr)
        .collect();
    assert!(pruned.contains(&3e-4), "{:?}", second.decisions);
}

#[test]
fn racing_adds_seeds_to_the_leader_and_tied_cells_and_stops_at_max_seeds() {
    let plan = plan();
    let mut seen = Observed::default();
    let first = next(&plan, &adaptive(None), &seen);
    rungs_done(&first, &mut seen);
    let second = next(&plan, &adaptive(None), &seen);
    // Two seeds each: freeze 0 leads (0.80, 0.82) but freeze 6 (0.79, 0.83) is not told apart.
    full_jobs_done(&second, &mut seen, |freeze, seed| match (freeze, seed) {
        (0, s) => 0.78 + 0.02 * s as f64,
        (_, 1) => 0.79,
        (_, 2) => 0.83,
        (_, s) => 0.70 + 0.001 * s as f64,
    });
    let third = next(&plan, &adaptive(None), &seen);
    let added = actions(&third, SearchAction::AddSeed);
    assert_eq!(added.len(), 2, "{:?}", third.decisions);
    assert!(added.iter().all(|d| d.seed == Some(3)));
    assert!(added[0].reason.contains("leads"), "{}", added[0].reason);
    assert!(!third.finished);
    assert_eq!(third.jobs.iter().filter(|j| j.spec.seed == 3).count(), 2);

    // Seed 3: freeze 0 gets 0.84, freeze 6 0.703: the paired difference now excludes zero?
    // 0.80-0.79, 0.82-0.83, 0.84-0.703 -> no (the differences disagree in sign): a fourth seed.
    let later_seeds = |freeze: usize, seed: u64| match freeze {
        0 => 0.78 + 0.02 * seed as f64,
        _ => 0.70 + 0.001 * seed as f64,
    };
    full_jobs_done(&third, &mut seen, later_seeds);
    let fourth = next(&plan, &adaptive(None), &seen);
    assert_eq!(actions(&fourth, SearchAction::AddSeed).len(), 2, "{:?}", fourth.decisions);

    // At max (4) seeds and still tied: the search stops and says why.
    full_jobs_done(&fourth, &mut seen, later_seeds);
    let fifth = next(&plan, &adaptive(None), &seen);
    let stop = actions(&fifth, SearchAction::Stop);
    assert!(fifth.finished);
    assert!(stop[0].reason.contains("has run its 4 seeds"), "{}", stop[0].reason);
    assert_eq!(fifth.jobs.len(), fourth.jobs.len(), "nothing added after the stop");
}

#[test]
fn racing_stops_when_the_leader_separates_or_the_budget_is_spent() {
    let plan = plan();
    let mut seen = Observed::default();
    let first = next(&plan, &adaptive(None), &seen);
    rungs_done(&first, &mut seen);
    let second = next(&plan, &adaptive(None), &seen);
    // Consistently 10 points apart on both seeds: told apart at two seeds.
    full_jobs_done(&second, &mut seen, |freeze, seed| {
        (if freeze == 0 { 0.80 } else { 0.70 }) + 0.01 * seed as f64
    });
    let third = next(&plan, &adaptive(None), &seen);
    assert!(third.finished);
    assert!(actions(&third, SearchAction::AddSeed).is_empty());
    let stop = actions(&third, SearchAction::Stop);
    assert!(stop[0].reason.contains("told apart from every other cell"), "{}", stop[0].reason);

    // Tied, but the jobs have used 4 x 60 s of a 3-minute budget: no more seeds.
    let mut tied = Observed::default();
    rungs_done(&first, &mut tied);
    full_jobs_done(&second, &mut tied, |_, seed| if seed == 1 { 0.8 } else { 0.7 });
    let spent = next(&plan, &adaptive(Some(180.0)), &tied);
    let stop = actions(&spent, SearchAction::Stop);
    assert!(spent.finished && stop.len() == 1, "{:?}", spent.decisions);
    assert!(stop[0].reason.contains("budget spent"), "{}", stop[0].reason);
    // The same state read again makes the same decisions (a re-run continues, it does not fork).
    let again = next(&plan, &adaptive(Some(180.0)), &tied);
    let ids = |n: &Next| n.decisions.iter().map(|d| d.decision.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&spent), ids(&again));
}

#[test]
fn without_halving_or_racing_every_grid_job_runs_at_once() {
    let plan = plan();
    let race_only = SearchPlan { halving: None, ..adaptive(None) };
    let first = next(&plan, &race_only, &Observed::default());
    assert_eq!(first.jobs.len(), 2 * 3 * 2, "every lr, the first two seeds");
    let one_rung_seed = SearchPlan {
        halving: Some(Halving { rate: 3, rung_epochs: 1, seeds: 1 }),
        ..adaptive(None)
    };
    let first = next(&plan, &one_rung_seed, &Observed::default());
    assert_eq!(first.jobs.len(), 2 * 3, "one rung per lr, on seed 1");
    assert!(first.jobs.iter().all(|j| j.spec.seed == 1 && j.spec.rung == Some(1)));
}

/// A forecast putting freeze 0 at 80 % and freeze 6 at `head_only` (tolerance 2 points).
fn forecast_of(plan: &Plan, head_only: f64) -> thaw_analysis::advice::Forecast {
    use thaw_analysis::advice::{CellForecast, Evidence, Forecast};
    let cell = |freeze: usize, predicted: f64| CellForecast {
        cell: plan.jobs.iter().find(|j| j.spec.freeze == freeze).unwrap().cell_key(),
        num_layers: 6,
        predicted,
        predicted_loss: None,
        evidence: Evidence::Probe,
        job_seconds: 10.0,
        probe_lr: 1e-4,
        probe_examples: 100,
        gradient_ratios: Vec::new(),
    };
    Forecast {
        sweep: "s".into(),
        metric: thaw_metrics::Metric::Accuracy,
        cells: vec![cell(0, 0.80), cell(6, head_only)],
        pick: 0,
        tolerance: 0.02,
        reason: String::new(),
        advisor_seconds: 1.0,
        grid_seconds: 100.0,
        probe_fraction: 0.2,
        probe_epochs: 1,
        frozen: Vec::new(),
        mlm: Vec::new(),
    }
}

#[test]
fn the_advise_prior_starts_a_cell_predicted_far_below_with_one_seed() {
    let plan = plan();
    let race_only = SearchPlan { halving: None, prior: true, ..adaptive(None) };
    let seeds_of = |step: &Next, freeze: usize| -> Vec<u64> {
        let mut s: Vec<u64> =
            step.jobs.iter().filter(|j| j.spec.freeze == freeze).map(|j| j.spec.seed).collect();
        s.sort();
        s.dedup();
        s
    };
    // 80 % against 60 %: more than twice the 2-point tolerance below.
    let seen = Observed { forecast: Some(forecast_of(&plan, 0.60)), ..Observed::default() };
    let first = next(&plan, &race_only, &seen);
    assert_eq!(seeds_of(&first, 0), [1, 2]);
    assert_eq!(seeds_of(&first, 6), [1], "predicted far below: one seed");
    let pruned = actions(&first, SearchAction::Prune);
    assert_eq!(pruned.len(), 1);
    assert!(
        pruned[0].reason.starts_with("prior (thaw advise): predicted 60.0 %"),
        "{}",
        pruned[0].reason
    );

    // 77 %: within twice the tolerance, so the prior leaves it alone.
    let close = Observed { forecast: Some(forecast_of(&plan, 0.77)), ..Observed::default() };
    assert_eq!(seeds_of(&next(&plan, &race_only, &close), 6), [1, 2]);
    // Without prior = "advise" a stored forecast changes nothing.
    let no_prior = SearchPlan { prior: false, ..race_only };
    assert_eq!(seeds_of(&next(&plan, &no_prior, &seen), 6), [1, 2]);
}

#[test]
fn under_halving_the_advise_prior_trains_only_the_probes_learning_rate_without_rungs() {
    let plan = plan();
    let primed = SearchPlan { prior: true, ..adaptive(None) };
    let seen = Observed { forecast: Some(forecast_of(&plan, 0.60)), ..Observed::default() };
    let first = next(&plan, &primed, &seen);
    let of = |freeze: usize| -> Vec<(f64, u64, bool)> {
        first
            .jobs
            .iter()
            .filter(|j| j.spec.freeze == freeze)
            .map(|j| (j.lr, j.spec.seed, j.spec.rung.is_some()))
            .collect()
    };
    assert_eq!(of(6), [(1e-4, 1, false)], "one full job: the probe's lr, one seed, no rung");
    assert_eq!(of(0).len(), 6, "the leader halves as usual: 3 lrs x 2 rung seeds");
    assert!(of(0).iter().all(|&(_, _, rung)| rung));
    let pruned = actions(&first, SearchAction::Prune);
    assert!(
        pruned[0]
            .reason
            .contains("trains only lr 1e-4 (its probe's best; no halving rungs for its other 2)"),
        "{}",
        pruned[0].reason
    );
}
