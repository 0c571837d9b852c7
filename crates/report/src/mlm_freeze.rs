//! Freeze the same layers in intermediate MLM as downstream, or not? For sweeps whose grid
//! crosses `mlm_freeze` with the downstream freeze depth, the report reads that grid in
//! words: per corpus, which MLM freeze depth is best at each downstream depth, how
//! "half-frozen MLM, then head only" compares with its neighbours and with full
//! fine-tuning, and what each costs in time with the MLM stage included.

use std::collections::BTreeSet;
use std::fmt::Write;

use thaw_store::{Init, StageRow};

use crate::recommend::{difference_text, percent};
use thaw_analysis::Split;
use thaw_analysis::cells::Cell;
use thaw_analysis::labels::unfrozen_text;

/// The (corpus, MLM freeze depths) the grid crosses with two or more downstream depths.
pub fn crossed_corpora(cells: &[Cell]) -> Vec<(String, Vec<i64>)> {
    let corpora: BTreeSet<&str> = cells
        .iter()
        .filter(|c| c.key.init == Init::Pretrained && c.key.intermediate != "none")
        .map(|c| c.key.intermediate.as_str())
        .collect();
    corpora
        .into_iter()
        .filter_map(|corpus| {
            let of = |f: fn(&Cell) -> Option<i64>| -> BTreeSet<i64> {
                cells
                    .iter()
                    .filter(|c| c.key.init == Init::Pretrained && c.key.intermediate == corpus)
                    .filter_map(f)
                    .collect()
            };
            let mlm: BTreeSet<i64> = of(|c| c.key.mlm_freeze);
            let downstream: BTreeSet<i64> = of(|c| Some(c.key.freeze));
            (mlm.len() > 1 && downstream.len() > 1)
                .then(|| (corpus.to_string(), mlm.into_iter().collect()))
        })
        .collect()
}

/// The pretrained cell of `corpus` ("none" for no MLM) at `mlm_freeze` and downstream `freeze`.
pub fn find<'a>(
    cells: &'a [Cell],
    corpus: &str,
    mlm_freeze: Option<i64>,
    freeze: i64,
) -> Option<&'a Cell> {
    cells.iter().find(|c| {
        c.key.init == Init::Pretrained
            && c.key.intermediate == corpus
            && (corpus == "none" || c.key.mlm_freeze == mlm_freeze)
            && c.key.freeze == freeze
            && c.selected_lr().is_some()
    })
}

/// Seconds of the MLM stage a cell starts from (0 for no MLM; None when not recorded).
fn stage_seconds(stages: &[StageRow], corpus: &str, mlm_freeze: i64) -> Option<f64> {
    stages
        .iter()
        .find(|s| s.init == Init::Pretrained && s.name == corpus && s.mlm_freeze == mlm_freeze)
        .and_then(|s| s.train_seconds)
}

/// "75.2 ± 1.5 % in 1.8 s per job (+ 62 s MLM stage, shared)".
fn cost_text(cell: &Cell, stages: &[StageRow]) -> String {
    let train = cell.train_seconds().map_or("time not recorded".to_string(), |t| {
        format!("{:.1} s of training per job", t.mean)
    });
    let stage = match cell.key.mlm_freeze {
        Some(k) if cell.key.intermediate != "none" => {
            match stage_seconds(stages, &cell.key.intermediate, k) {
                Some(s) => {
                    format!(" + {s:.0} s for its MLM stage (once, shared by every job on it)")
                }
                None => String::new(),
            }
        }
        _ => String::new(),
    };
    format!("{train}{stage}")
}

fn shown(cell: &Cell) -> String {
    cell.metric().map_or("no result".to_string(), |e| percent(&e))
}

/// The section, empty when the sweep does not cross MLM freeze with downstream freeze.
pub fn section(cells: &[Cell], stages: &[StageRow], split: Split) -> String {
    let corpora = crossed_corpora(cells);
    if corpora.is_empty() {
        return String::new();
    }
    let num_layers = cells.iter().map(|c| c.num_layers).max().unwrap_or(0);
    let depths: BTreeSet<i64> = cells.iter().map(|c| c.key.freeze).collect();
    let mut md = String::from("## MLM freeze × downstream freeze\n\n");
    let _ = writeln!(
        md,
        "Does it matter which layers intermediate MLM trains, and should they match the layers fine-tuning trains? \
         Every number is {split} accuracy at the cell's selected lr (chosen on validation), with its 95% interval over seeds; \
         differences are paired over shared seeds. MLM freeze {num_layers} trains only the MLM head, so its encoder is the pretrained one.\n"
    );
    for (corpus, mlm_depths) in &corpora {
        let _ = writeln!(md, "**{corpus} MLM.**");
        // Which MLM depth is best (on validation) at each downstream depth.
        for &k in &depths {
            let candidates: Vec<&Cell> =
                mlm_depths.iter().filter_map(|&m| find(cells, corpus, Some(m), k)).collect();
            let best = candidates.iter().max_by(|a, b| {
                let v = |c: &Cell| {
                    c.selected_lr().and_then(|l| l.val_metric).map_or(f64::MIN, |e| e.mean)
                };
                v(a).total_cmp(&v(b))
            });
            let Some(best) = best else { continue };
            let matched = find(cells, corpus, Some(k), k);
            let mut line = format!(
                "- Downstream freeze {k}, {}: best on validation with MLM freeze {} ({})",
                unfrozen_text(best.unfrozen_layers(), best.num_layers),
                best.key.mlm_freeze.unwrap_or(0),
                shown(best)
            );
            match matched {
                Some(m) if m.key == best.key => line += "; that is the matching depth.",
                Some(m) => {
                    let (diff, _) = difference_text(best, m);
                    line += &format!(
                        "; the matching depth (MLM freeze {k}) scores {}: difference {diff}.",
                        shown(m)
                    );
                }
                None => line += ".",
            }
            if let Some(plain) = find(cells, "none", None, k) {
                let (diff, _) = difference_text(best, plain);
                line += &format!(" Against no MLM at the same depth ({}): {diff}.", shown(plain));
            }
            let _ = writeln!(md, "{line}");
        }
        md.push_str(&half_then_head_only(cells, stages, corpus, mlm_depths, num_layers));
        md.push('\n');
    }
    md
}

/// The question's own suggestion: MLM on the top half, then only the head downstream,
/// against no MLM + head only, full MLM + head only, and full fine-tuning without MLM.
fn half_then_head_only(
    cells: &[Cell],
    stages: &[StageRow],
    corpus: &str,
    mlm_depths: &[i64],
    num_layers: i64,
) -> String {
    let half = num_layers / 2;
    let Some(suggested) =
        mlm_depths.contains(&half).then(|| find(cells, corpus, Some(half), num_layers)).flatten()
    else {
        return String::new();
    };
    let mut out = format!(
        "- *Half-frozen MLM (freeze {half}), then head only*: {}, {}.",
        shown(suggested),
        cost_text(suggested, stages)
    );
    let others = [
        ("no MLM, head only", find(cells, "none", None, num_layers)),
        ("full MLM (freeze 0), head only", find(cells, corpus, Some(0), num_layers)),
        ("full fine-tuning without MLM", find(cells, "none", None, 0)),
    ];
    for (what, other) in others {
        if let Some(other) = other {
            let (diff, _) = difference_text(suggested, other);
            out += &format!(
                " Against {what} ({}, {}): {diff}.",
                shown(other),
                cost_text(other, stages)
            );
        }
    }
    out + "\n"
}
