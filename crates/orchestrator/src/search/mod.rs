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

mod cells;
mod halving;
mod observed;
mod racing;
#[cfg(test)]
mod tests;

use thaw_analysis::advice::predicted_far_below;
use thaw_store::{NewDecision, SearchAction};

use crate::plan::{JobPlan, Plan};
use crate::validate::SearchPlan;
use cells::{PlanCell, plan_cells};
use halving::halve;
use racing::race_step;

pub use observed::{Observed, observe};

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

/// The next step of the search. See the module note for the rules.
pub fn next(plan: &Plan, search: &SearchPlan, seen: &Observed) -> Next {
    let cells = plan_cells(plan);
    let mut next = Next::default();
    let mut settled = true;
    // Per cell: its promoted lrs (None while its rungs run) and how many seeds it runs.
    let mut state: Vec<(Option<Vec<f64>>, usize)> = Vec::new();
    for cell in &cells {
        let mut min = search.race.map_or(cell.seeds.len(), |r| r.min.min(cell.seeds.len()));
        let mut prior_lr = None;
        if let Some((decision, lr)) = prior_trim(search, seen, cell, min) {
            next.decisions.push(decision);
            min = 1;
            prior_lr = lr;
        }
        let promoted = match search.halving {
            _ if prior_lr.is_some() => prior_lr.map(|lr| vec![lr]),
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

/// `prior = "advise"`: a cell the forecast puts more than twice its tolerance below the
/// best starts racing with one seed instead of `min`, and under halving trains only the
/// learning rate its probe found best (no rungs: the probe already compared its lrs on
/// validation); the decision says so (as a prune of its other starting seeds and lrs).
/// Racing still adds seeds when its results tie with the leader. Returns the decision and
/// the learning rate it keeps under halving.
fn prior_trim(
    search: &SearchPlan,
    seen: &Observed,
    cell: &PlanCell,
    min: usize,
) -> Option<(NewDecision, Option<f64>)> {
    let forecast = seen.forecast.as_ref().filter(|_| search.prior && min > 1)?;
    let margin = 2.0 * forecast.tolerance;
    if !predicted_far_below(forecast, &cell.key, margin) {
        return None;
    }
    let (best, own) = (&forecast.cells[0], forecast.cells.iter().find(|c| c.cell == cell.key)?);
    let lr = (search.halving.is_some() && cell.lrs.len() > 1)
        .then_some(own.probe_lr)
        .filter(|lr| cell.lrs.contains(lr));
    let lrs = match lr {
        Some(lr) => format!(
            " and trains only lr {} (its probe's best; no halving rungs for its other {})",
            thaw_analysis::cells::format_lr(lr),
            cell.lrs.len() - 1
        ),
        None => String::new(),
    };
    let decision = NewDecision {
        decision: format!("prior|{}", cell.json()),
        action: SearchAction::Prune,
        cell: cell.json(),
        lr: None,
        seed: None,
        reason: format!(
            "prior (thaw advise): predicted {:.1} % against the best cell's {:.1} %, more than {:.1} points below; starts with 1 seed instead of {min}{lrs}, saving {:.0} s of training per learning rate unless its results tie with the leader",
            100.0 * own.predicted,
            100.0 * best.predicted,
            100.0 * margin,
            own.job_seconds * (min - 1) as f64
        ),
    };
    Some((decision, lr))
}

fn plan_epochs(plan: &Plan) -> usize {
    plan.jobs.first().map_or(0, |j| j.spec.settings.epochs)
}
