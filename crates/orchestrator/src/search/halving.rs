//! Successive halving within a cell: every learning rate trains a rung, the best go on.

use thaw_analysis::cells::format_lr;
use thaw_analysis::lr_choice::LrCandidate;
use thaw_store::{NewDecision, RungRow, SearchAction, WorkStatus};

use super::cells::PlanCell;
use super::observed::Observed;
use crate::validate::Halving;

/// Ranks a cell's learning rates on their rungs; returns the kept ones (best first) and a
/// decision per learning rate.
pub(super) fn halve(
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
                    val_metric: mean(&|r| r.val_metric),
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
    let accuracy = |r: &Ranked| r.candidate.val_metric.unwrap_or(f64::NAN);
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
