//! Racing seeds between cells: the leader and the cells it cannot yet be told apart from get
//! one more seed each, until it is told apart, seeds run out or the budget is spent.

use std::collections::HashMap;

use thaw_analysis::Split;
use thaw_analysis::cells::{self, Cell, CellKey};
use thaw_analysis::labels::cell_label;
use thaw_analysis::stats::separates;
use thaw_store::{NewDecision, SearchAction};

use super::cells::{PlanCell, cells_text};
use super::observed::Observed;
use crate::spec::SeedRace;
use crate::validate::SearchPlan;

/// One racing step, once every job so far is done: the cells (index, seed) that get a seed,
/// or a stop decision.
pub(super) fn race_step(
    cells: &[PlanCell],
    state: &[(Option<Vec<f64>>, usize)],
    race: SeedRace,
    search: &SearchPlan,
    seen: &Observed,
) -> (Vec<(usize, u64)>, Vec<NewDecision>) {
    let all = cells::cells(&seen.results, Split::Validation);
    let measured: HashMap<&CellKey, &Cell> = all.iter().map(|c| (&c.key, c)).collect();
    // (plan index, measured cell), best validation mean first; cells without a result wait out.
    let mut ranked: Vec<(usize, &Cell, f64)> = cells
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            let cell = measured.get(&c.key)?;
            let mean = cell.selected_lr()?.val_metric?.mean;
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
                    leader_seeds.metric.len()
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
                by_seed(cell).metric.len(),
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
