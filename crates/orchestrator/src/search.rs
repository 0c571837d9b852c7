//! Adaptive search (`[search]`): successive halving over each cell's learning rates, and
//! seeds raced between cells, so compute goes where the answer is still open.
//!
//! [`next`] is a pure function of the plan and of what the store holds: which jobs the sweep
//! has, their statuses and their validation numbers. `thaw run` calls it, registers the jobs
//! it asks for, runs them, and calls it again until it adds nothing. A re-run after an
//! interruption calls it on the same stored state and so continues where the search stopped;
//! decisions carry an identity, so one made again is stored once.
//!
//! - **Halving.** Every lr of a cell trains a rung (the first `rung_epochs` epochs, on the full
//!   schedule) on the cell's first `rung_seeds` seeds. Ranked on the rung's mean validation accuracy, the
//!   best ⌈L / rate⌉ go on to full jobs; the rest are pruned at the rung.
//! - **Racing.** Every cell starts with `min` seeds. Once all their jobs are done, the leader
//!   (best validation mean at its selected lr) is compared with every other cell by
//!   [`separates`]; the leader and each cell it cannot yet be told apart from get one more
//!   seed, up to `max`. The search stops when the leader is told apart from every cell, when
//!   every tied cell has `max` seeds, or when the worker-time budget is spent.
//!
//! Decisions read validation numbers only; the test split never steers the search.

use std::collections::HashMap;

use thaw_report::aggregate::{self, Cell, CellKey, LrCandidate, Metric, format_lr};
use thaw_report::labels::init_and_mlm;
use thaw_report::stats::separates;
use thaw_store::{JobResultRow, NewDecision, RungRow, SearchAction, Store, WorkStatus};

use crate::plan::{JobPlan, Plan};
use crate::spec::SeedRace;

/// The `[search]` section, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchPlan {
    pub halving: Option<Halving>,
    pub race: Option<SeedRace>,
    /// Racing adds no seed once the sweep's done jobs have used this much worker time.
    pub budget_seconds: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Halving {
    /// Keep the best ⌈L / rate⌉ learning rates of a cell.
    pub rate: usize,
    /// Epochs of the rung the learning rates are ranked on.
    pub rung_epochs: usize,
    /// Seeds (the cell's first) each learning rate's rung runs on.
    pub seeds: usize,
}

impl Halving {
    /// How many of `lrs` learning rates go on from the rung.
    pub fn kept(&self, lrs: usize) -> usize {
        lrs.div_ceil(self.rate).max(1)
    }
}

/// What the store holds for the sweep, as the search reads it.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// The sweep's jobs (rungs and full jobs) by key, with their statuses.
    pub status: HashMap<String, WorkStatus>,
    pub rungs: Vec<RungRow>,
    /// The full jobs' rows (the report's rows).
    pub results: Vec<JobResultRow>,
    /// Worker time the sweep's done jobs used, summed, in seconds.
    pub seconds_spent: f64,
}

/// Reads what the search needs from the store (empty for a sweep not registered yet).
pub async fn observe(store: &Store, sweep: &str) -> thaw_store::Result<Observed> {
    let results = store.job_results(sweep).await?;
    let rungs = store.rung_results(sweep).await?;
    let status = results
        .iter()
        .map(|r| (r.job_key.clone(), r.status))
        .chain(rungs.iter().map(|r| (r.job_key.clone(), r.status)))
        .collect();
    let seconds_spent = store.job_seconds(sweep).await?;
    Ok(Observed { status, rungs, results, seconds_spent })
}

impl Observed {
    fn settled(&self, key: &str) -> bool {
        matches!(self.status.get(key), Some(WorkStatus::Done | WorkStatus::Failed))
    }

    fn has(&self, key: &str) -> bool {
        self.status.contains_key(key)
    }
}

/// The jobs the sweep should hold now and the decisions that led to them.
#[derive(Debug, Clone, Default)]
pub struct Next {
    /// Every job the sweep holds after this step (a superset of what it held), plan order,
    /// each cell's rungs before its full jobs.
    pub jobs: Vec<JobPlan>,
    pub decisions: Vec<NewDecision>,
    /// The search has settled: no job will be added without a change to the sweep file.
    pub finished: bool,
}

/// One cell of the plan: its learning rates and seeds, in plan order.
struct PlanCell<'a> {
    key: CellKey,
    lrs: Vec<f64>,
    seeds: Vec<u64>,
    jobs: Vec<&'a JobPlan>,
}

impl PlanCell<'_> {
    fn job(&self, lr: f64, seed: u64) -> &JobPlan {
        self.jobs
            .iter()
            .find(|j| j.lr == lr && j.spec.seed == seed)
            .expect("the plan has every (lr, seed) of a cell")
    }

    fn json(&self) -> String {
        serde_json::to_string(&self.key).expect("json")
    }
}

pub fn cell_key(job: &JobPlan) -> CellKey {
    CellKey {
        init: job.spec.init,
        intermediate: job.spec.intermediate.clone(),
        mlm_freeze: job.mlm_freeze.map(|k| k as i64),
        pooling: job.pooling.as_str().to_string(),
        freeze: job.spec.freeze as i64,
        train_size: job.spec.train_size.map(|n| n as i64),
        strategy: job.strategy.clone(),
    }
}

/// "pretrained, no MLM, freeze 3" or "pretrained + task MLM (MLM freeze 2), freeze 0, n=500",
/// as the report names series; pooling when it is not mean.
pub fn cell_label(key: &CellKey) -> String {
    let mut out = init_and_mlm(&key.series());
    if let Some(k) = key.mlm_freeze.filter(|&k| k > 0) {
        out += &format!(" (MLM freeze {k})");
    }
    out += &format!(", freeze {}", key.freeze);
    if key.pooling != "mean" {
        out += &format!(", {} pooling", key.pooling);
    }
    if let Some(n) = key.train_size {
        out += &format!(", n={n}");
    }
    if !key.is_plain() {
        out += &format!(", {}", key.strategy);
    }
    out
}

/// "1 cell", "3 cells".
fn cells_text(n: usize) -> String {
    format!("{n} cell{}", if n == 1 { "" } else { "s" })
}

fn plan_cells(plan: &Plan) -> Vec<PlanCell<'_>> {
    let mut out: Vec<PlanCell> = Vec::new();
    for job in &plan.jobs {
        let key = cell_key(job);
        let index = match out.iter().position(|c| c.key == key) {
            Some(i) => i,
            None => {
                out.push(PlanCell { key, lrs: Vec::new(), seeds: Vec::new(), jobs: Vec::new() });
                out.len() - 1
            }
        };
        let cell = &mut out[index];
        if !cell.lrs.contains(&job.lr) {
            cell.lrs.push(job.lr);
        }
        if !cell.seeds.contains(&job.spec.seed) {
            cell.seeds.push(job.spec.seed);
        }
        cell.jobs.push(job);
    }
    out
}

/// The next step of the search. See the module note for the rules.
pub fn next(plan: &Plan, search: &SearchPlan, seen: &Observed) -> Next {
    let cells = plan_cells(plan);
    let mut next = Next::default();
    let mut settled = true;
    // Per cell: its promoted lrs (None while its rungs run) and how many seeds it runs.
    let mut state: Vec<(Option<Vec<f64>>, usize)> = Vec::new();
    for cell in &cells {
        let min = search.race.map_or(cell.seeds.len(), |r| r.min.min(cell.seeds.len()));
        let promoted = match search.halving {
            Some(h) if cell.lrs.len() > 1 => {
                let rungs: Vec<JobPlan> = cell
                    .lrs
                    .iter()
                    .flat_map(|&lr| {
                        cell.seeds[..h.seeds.min(cell.seeds.len())].iter().map(move |&s| (lr, s))
                    })
                    .map(|(lr, seed)| cell.job(lr, seed).rung(h.rung_epochs))
                    .collect();
                let ready = rungs.iter().all(|r| seen.settled(&r.key));
                let keys: Vec<String> = rungs.iter().map(|r| r.key.clone()).collect();
                next.jobs.extend(rungs);
                if ready {
                    let (kept, decisions) = halve(cell, h, &keys, seen, plan_epochs(plan));
                    next.decisions.extend(decisions);
                    Some(kept)
                } else {
                    settled = false;
                    None
                }
            }
            _ => Some(cell.lrs.clone()),
        };
        // Seeds the cell runs: its first `min`, plus any racing gave it earlier.
        let mut seeds = min;
        if let Some(lrs) = &promoted {
            while seeds < cell.seeds.len()
                && lrs.iter().any(|&lr| seen.has(&cell.job(lr, cell.seeds[seeds]).key))
            {
                seeds += 1;
            }
            for &lr in lrs {
                for &seed in &cell.seeds[..seeds] {
                    let job = cell.job(lr, seed);
                    settled &= seen.settled(&job.key);
                    next.jobs.push(job.clone());
                }
            }
        }
        state.push((promoted, seeds));
    }
    match search.race {
        Some(race) if settled => {
            let (grow, decisions) = race_step(&cells, &state, race, search, seen);
            next.decisions.extend(decisions);
            for (i, seed) in grow {
                let lrs = state[i].0.as_ref().expect("settled cells have promoted lrs");
                for &lr in lrs {
                    next.jobs.push(cells[i].job(lr, seed).clone());
                }
            }
            next.finished = next.decisions.iter().any(|d| d.action == SearchAction::Stop);
        }
        Some(_) => {}
        None => next.finished = settled,
    }
    next
}

fn plan_epochs(plan: &Plan) -> usize {
    plan.jobs.first().map_or(0, |j| j.spec.settings.epochs)
}

/// Ranks a cell's learning rates on their rungs; returns the kept ones (best first) and a
/// decision per learning rate.
fn halve(
    cell: &PlanCell,
    h: Halving,
    rung_keys: &[String],
    seen: &Observed,
    epochs: usize,
) -> (Vec<f64>, Vec<NewDecision>) {
    struct Ranked {
        candidate: LrCandidate,
        done: usize,
    }
    let mut ranked: Vec<Ranked> = cell
        .lrs
        .iter()
        .map(|&lr| {
            let rows: Vec<&RungRow> = seen
                .rungs
                .iter()
                .filter(|r| r.lr == lr && rung_keys.contains(&r.job_key))
                .collect();
            let done: Vec<&&RungRow> =
                rows.iter().filter(|r| r.status == WorkStatus::Done).collect();
            let mean = |f: &dyn Fn(&RungRow) -> Option<f64>| {
                let values: Vec<f64> = done.iter().filter_map(|r| f(r)).collect();
                (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
            };
            Ranked {
                candidate: LrCandidate {
                    lr,
                    failed: rows.len() - done.len(),
                    val_accuracy: mean(&|r| r.val_accuracy),
                    val_macro_f1: mean(&|r| r.val_macro_f1),
                    val_loss: mean(&|r| r.val_loss),
                },
                done: done.len(),
            }
        })
        .collect();
    // Best first, in the order the report selects an lr.
    ranked.sort_by(|a, b| b.candidate.selection_order(&a.candidate));
    let keep = h.kept(cell.lrs.len());
    let accuracy = |r: &Ranked| r.candidate.val_accuracy.unwrap_or(f64::NAN);
    let best = ranked.first().map_or(f64::NAN, accuracy);
    let mut kept = Vec::new();
    let mut decisions = Vec::new();
    for (rank, r) in ranked.iter().enumerate() {
        let (lr, failed) = (r.candidate.lr, r.candidate.failed);
        let measured = if failed > 0 {
            format!("{failed} of its {} rung seeds failed", failed + r.done)
        } else {
            format!(
                "validation accuracy {:.1} % after {} of {epochs} epochs, {}",
                100.0 * accuracy(r),
                h.rung_epochs,
                if r.done == 1 {
                    "1 seed".to_string()
                } else {
                    format!("mean of {} seeds", r.done)
                }
            )
        };
        let (action, reason) = if rank < keep {
            kept.push(lr);
            (
                SearchAction::Promote,
                format!(
                    "rank {} of {} at the rung ({measured}): goes on to all epochs (halving keeps the top {keep})",
                    rank + 1,
                    ranked.len()
                ),
            )
        } else {
            (
                SearchAction::Prune,
                format!(
                    "rank {} of {} at the rung ({measured}; the top had {:.1} %): stopped at the rung (halving keeps the top {keep})",
                    rank + 1,
                    ranked.len(),
                    100.0 * best
                ),
            )
        };
        decisions.push(NewDecision {
            decision: format!("{}|{}|lr={}", action_name(action), cell.json(), format_lr(lr)),
            action,
            cell: cell.json(),
            lr: Some(lr),
            seed: None,
            reason,
        });
    }
    (kept, decisions)
}

fn action_name(action: SearchAction) -> &'static str {
    match action {
        SearchAction::Promote => "promote",
        SearchAction::Prune => "prune",
        SearchAction::AddSeed => "add_seed",
        SearchAction::Stop => "stop",
    }
}

/// One racing step, once every job so far is done: the cells (index, seed) that get a seed,
/// or a stop decision.
fn race_step(
    cells: &[PlanCell],
    state: &[(Option<Vec<f64>>, usize)],
    race: SeedRace,
    search: &SearchPlan,
    seen: &Observed,
) -> (Vec<(usize, u64)>, Vec<NewDecision>) {
    let all = aggregate::cells(&seen.results, Metric::Validation);
    let measured: HashMap<&CellKey, &Cell> = all.iter().map(|c| (&c.key, c)).collect();
    // (plan index, measured cell), best validation mean first; cells without a result wait out.
    let mut ranked: Vec<(usize, &Cell, f64)> = cells
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            let cell = measured.get(&c.key)?;
            let mean = cell.selected_lr()?.val_accuracy?.mean;
            Some((i, *cell, mean))
        })
        .collect();
    ranked.sort_by(|a, b| b.2.total_cmp(&a.2).then(a.0.cmp(&b.0)));
    let jobs_now: usize =
        state.iter().map(|(lrs, n)| lrs.as_ref().map_or(0, |l| l.len()) * n).sum();
    let stop = |kind: &str, reason: String| NewDecision {
        decision: format!("stop|{kind}|full jobs={jobs_now}"),
        action: SearchAction::Stop,
        cell: String::new(),
        lr: None,
        seed: None,
        reason,
    };
    let Some(&(leader_index, leader, leader_mean)) = ranked.first() else {
        return (Vec::new(), vec![stop("no-results", "no cell has a finished job".into())]);
    };
    let by_seed =
        |c: &Cell| c.selected_lr().map(|l| l.validation_scores.clone()).unwrap_or_default();
    let leader_seeds = by_seed(leader);
    let tied: Vec<(usize, &Cell, f64)> = ranked[1..]
        .iter()
        .filter(|(_, c, _)| !separates(&leader_seeds, &by_seed(c)))
        .copied()
        .collect();
    let leader_label = cell_label(&cells[leader_index].key);
    if tied.is_empty() {
        return (
            Vec::new(),
            vec![stop(
                "separated",
                format!(
                    "the leader, {leader_label} ({:.1} % validation over {} seeds), is told apart from every other cell (95%)",
                    100.0 * leader_mean,
                    leader_seeds.accuracy.len()
                ),
            )],
        );
    }
    if let Some(budget) = search.budget_seconds.filter(|&b| seen.seconds_spent >= b) {
        return (
            Vec::new(),
            vec![stop(
                "budget",
                format!(
                    "budget spent: the jobs used {:.1} of {:.1} minutes of worker time; {} still tied with the leader, {leader_label}",
                    seen.seconds_spent / 60.0,
                    budget / 60.0,
                    cells_text(tied.len())
                ),
            )],
        );
    }
    let mut grow = Vec::new();
    let mut decisions = Vec::new();
    let contenders =
        std::iter::once((leader_index, leader, leader_mean)).chain(tied.iter().copied());
    for (i, cell, mean) in contenders {
        let seeds = state[i].1;
        if seeds >= race.max.min(cells[i].seeds.len()) {
            continue;
        }
        let seed = cells[i].seeds[seeds];
        let reason = if i == leader_index {
            format!(
                "leads on validation ({:.1} % over {seeds} seeds) but is not yet told apart from {}",
                100.0 * mean,
                cells_text(tied.len())
            )
        } else {
            format!(
                "validation {:.1} % over {} seeds, not yet told apart from the leader, {leader_label} ({:.1} %)",
                100.0 * mean,
                by_seed(cell).accuracy.len(),
                100.0 * leader_mean
            )
        };
        decisions.push(NewDecision {
            decision: format!("add_seed|{}|seed={seed}", cells[i].json()),
            action: SearchAction::AddSeed,
            cell: cells[i].json(),
            lr: None,
            seed: Some(seed as i64),
            reason,
        });
        grow.push((i, seed));
    }
    if grow.is_empty() {
        decisions.push(stop(
            "max-seeds",
            format!(
                "every cell still tied with the leader, {leader_label}, has run its {} seeds ({} tied)",
                race.max,
                cells_text(tied.len())
            ),
        ));
    }
    (grow, decisions)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use thaw_store::Init;
    use thaw_train::{BackendKind, FineTuneSettings, Pooling};

    use super::*;
    use crate::jobspec::{DataSpec, JobSpec, ModelSpec};
    use crate::keys::job_key;
    use crate::spec::Keep;

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
            text_field: "text".into(),
            label_field: "label".into(),
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
            setup: serde_json::Value::Null,
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
            val_accuracy: (status == WorkStatus::Done).then_some(accuracy),
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
        let diverged = first
            .jobs
            .iter()
            .find(|j| j.spec.freeze == 0 && j.lr == 3e-4 && j.spec.seed == 2)
            .unwrap();
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
}
