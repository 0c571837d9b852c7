//! From the probes (and the frozen readings) to the forecast: each cell's predicted
//! validation metric, the cheapest cell within the validation split's sampling error of the
//! best, the reason in words, and the grid's cost estimated from the probes' speed (and the
//! MLM reading's, for the stages).

use thaw_advise::signals::Signals;
use thaw_analysis::CellKey;
use thaw_analysis::advice::{
    CellForecast, DepthReading, Evidence, Forecast, MlmReading, rank_and_pick, tolerance,
};
use thaw_analysis::labels::cell_with_depth;
use thaw_store::Init;

use super::probes::{Probe, ProbeBudget};
use crate::plan::Plan;

/// What the forecast is made from.
pub struct Inputs<'a> {
    pub plan: &'a Plan,
    pub probes: &'a [Probe],
    /// Per depth, on classification; None for the other tasks.
    pub readings: Option<&'a [Signals]>,
    /// One per intermediate-MLM corpus.
    pub mlm: &'a [MlmReading],
    pub validation_examples: usize,
    pub train_examples: usize,
    pub probe_budget: ProbeBudget,
    pub advisor_seconds: f64,
}

/// The probe standing in for `cell`: its own, or (an MLM cell) its counterpart's without MLM.
fn stand_in<'a>(probes: &'a [Probe], cell: &CellKey) -> Option<(&'a Probe, Evidence)> {
    if let Some(own) = probes.iter().find(|p| &p.cell == cell) {
        return Some((own, Evidence::Probe));
    }
    let plain = CellKey { intermediate: "none".into(), mlm_freeze: None, ..cell.clone() };
    probes.iter().find(|p| p.cell == plain).map(|p| (p, Evidence::AsWithoutMlm))
}

pub fn forecast(inputs: &Inputs) -> Forecast {
    let plan = inputs.plan;
    let mut cells: Vec<CellForecast> = Vec::new();
    let mut grid_seconds = 0.0;
    for job in plan.jobs.iter().filter(|j| j.spec.rung.is_none()) {
        let key = job.cell_key();
        let Some((probe, evidence)) = stand_in(inputs.probes, &key) else { continue };
        let job_seconds = probe.job_seconds(&job.spec, inputs.train_examples);
        grid_seconds += job_seconds;
        if cells.iter().all(|c| c.cell != key) {
            cells.push(CellForecast {
                cell: key,
                num_layers: job.spec.num_layers() as i64,
                predicted: probe.metric,
                predicted_loss: Some(probe.loss),
                evidence,
                job_seconds,
                probe_lr: probe.lr,
                probe_examples: probe.examples,
                gradient_ratios: match evidence {
                    Evidence::Probe => probe.gradient_ratios.clone(),
                    Evidence::AsWithoutMlm => Vec::new(),
                },
            });
        }
    }
    grid_seconds += stage_seconds(plan, inputs.mlm);
    let best = cells.iter().map(|c| c.predicted).fold(f64::NEG_INFINITY, f64::max);
    let tolerance = tolerance(best, inputs.validation_examples);
    let pick = rank_and_pick(&mut cells, tolerance);
    let mut forecast = Forecast {
        sweep: plan.sweep.clone(),
        metric: plan.data.metric,
        cells,
        pick,
        tolerance,
        reason: String::new(),
        advisor_seconds: inputs.advisor_seconds,
        grid_seconds,
        probe_fraction: inputs.probe_budget.fraction,
        probe_epochs: inputs.probe_budget.epochs,
        frozen: inputs.readings.map_or(Vec::new(), stored_readings),
        mlm: inputs.mlm.to_vec(),
    };
    forecast.reason = reason(&forecast, inputs);
    forecast
}

/// The grid's MLM stages priced at their corpus's reading speed per step (a lower bound: the
/// reading's steps train the head only).
fn stage_seconds(plan: &Plan, readings: &[MlmReading]) -> f64 {
    plan.stages
        .iter()
        .filter_map(|stage| {
            let reading = readings.iter().find(|r| r.corpus == stage.spec.name)?;
            let steps = stage.spec.settings.steps + stage.spec.settings.head_warmup_steps;
            Some(steps as f64 * reading.step_seconds?)
        })
        .sum()
}

fn percent(v: f64) -> String {
    format!("{:.1} %", 100.0 * v)
}

/// Why the pick, in words: what the probes measured, what counts as equal, what it saves,
/// and what the frozen features say.
fn reason(forecast: &Forecast, inputs: &Inputs) -> String {
    let (best, pick) = (&forecast.cells[0], forecast.picked());
    let label = |c: &CellForecast| cell_with_depth(&c.cell, c.num_layers);
    let listed: Vec<String> = forecast
        .cells
        .iter()
        .filter(|c| c.evidence == Evidence::Probe)
        .map(|c| {
            let lr = thaw_analysis::cells::format_lr(c.probe_lr);
            format!(
                "{} {} (lr {lr}, {} examples)",
                label(c),
                percent(c.predicted),
                c.probe_examples
            )
        })
        .collect();
    let epochs = match forecast.probe_epochs {
        1 => "one epoch".to_string(),
        n => format!("{n} epochs (at most the cell's own)"),
    };
    let mut out = format!(
        "Short probes ({epochs} on {:.0} % of each cell's training examples, one seed, each learning rate of the cell, the best shown) \
         read validation {}: {}.",
        100.0 * forecast.probe_fraction,
        forecast.metric.title(),
        listed.join(", ")
    );
    if pick.cell == best.cell {
        out.push_str(&format!(
            " Recommended: {}, the best predicted; no cheaper cell comes within {:.1} points (the validation split's sampling error).",
            label(pick),
            100.0 * forecast.tolerance
        ));
    } else {
        out.push_str(&format!(
            " Recommended: {}, within {:.1} points (the validation split's sampling error) of the best predicted, {} ({}), at {:.1}x less training time per job.",
            label(pick),
            100.0 * forecast.tolerance,
            label(best),
            percent(best.predicted),
            best.job_seconds / pick.job_seconds.max(1e-9)
        ));
    }
    // Only cells with a probe of their own: an MLM cell repeats its counterpart's reading.
    let probed = || forecast.cells.iter().filter(|c| c.evidence == Evidence::Probe);
    let floor = probed().map(|c| c.predicted).fold(f64::INFINITY, f64::min);
    let stuck = probed().filter(|c| c.predicted == floor).count();
    if stuck > 1 {
        out.push_str(&format!(
            " {stuck} cells' probes read exactly {} (they had not left their starting plateau in their short probe), so the forecast orders them by their validation loss alone: trust it less than its ranking suggests.",
            percent(floor)
        ));
    }
    if let Some(readings) = inputs.readings {
        out.push(' ');
        out.push_str(&features_sentence(readings));
    }
    if let Some(sentence) = gradient_sentence(forecast) {
        out.push(' ');
        out.push_str(&sentence);
    }
    if forecast.cells.iter().any(|c| c.evidence == Evidence::AsWithoutMlm) {
        out.push_str(
            " Intermediate-MLM cells are not probed (the advice trains no MLM stage): each is taken as its cell without MLM, so an MLM stage is never recommended.",
        );
    }
    if !forecast.mlm.is_empty() {
        out.push(' ');
        out.push_str(&mlm_sentence(&forecast.mlm));
    }
    out
}

/// Where the task pulls: the gradient-to-weight ratios of the probe that trains the most
/// pretrained layers (full fine-tuning when the grid has it), bottom half against top half.
fn gradient_sentence(forecast: &Forecast) -> Option<String> {
    let trained = |c: &CellForecast| c.gradient_ratios.iter().filter(|r| r.is_some()).count();
    let cell = forecast
        .cells
        .iter()
        .filter(|c| c.cell.init == Init::Pretrained && trained(c) >= 2)
        .max_by_key(|c| (trained(c), c.cell.strategy == "plain"))?;
    let ratios: Vec<f64> = cell.gradient_ratios.iter().flatten().copied().collect();
    let half = ratios.len() / 2;
    let mean = |r: &[f64]| r.iter().sum::<f64>() / r.len() as f64;
    let (bottom, top) = (mean(&ratios[..half]), mean(&ratios[ratios.len() - half..]));
    let listed: Vec<String> = ratios.iter().map(|r| format!("{r:.1e}")).collect();
    let reading = if bottom < 0.5 * top {
        "the task pulls mostly on the top layers: freezing the bottom ones should cost little"
    } else if bottom > 2.0 * top {
        "the task pulls mostly on the bottom layers: freezing them is likely to cost accuracy"
    } else {
        "the task pulls on every layer alike"
    };
    Some(format!(
        "Gradient-to-weight norm ratios in the probe of {} (trained layers, bottom to top, mean over its steps): {}; the bottom half's mean is {:.2}x the top half's: {reading} (the ratios do not move the ranking).",
        cell_with_depth(&cell.cell, cell.num_layers),
        listed.join(", "),
        bottom / top.max(f64::MIN_POSITIVE)
    ))
}

/// How far each MLM corpus lies from the pretraining data, read before any MLM step.
fn mlm_sentence(readings: &[MlmReading]) -> String {
    let each: Vec<String> = readings
        .iter()
        .map(|r| {
            let head = match r.head_warmup_steps {
                None => "the checkpoint's own MLM head".to_string(),
                Some(0) => "an untrained MLM head: not readable".to_string(),
                Some(n) => format!("a head fitted for {n} steps on the frozen encoder: an upper bound"),
            };
            format!(
                "{:.1} per token on the {} text ({:.1} characters a token, {:.2} nats a character; {head})",
                r.perplexity,
                r.corpus,
                r.chars_per_token,
                r.loss_per_character()
            )
        })
        .collect();
    let mut out = format!(
        "Before any MLM step, the pretrained model's masked-LM perplexity is {}.",
        each.join("; ")
    );
    let mut by_character: Vec<&MlmReading> = readings.iter().collect();
    by_character.sort_by(|a, b| a.loss_per_character().total_cmp(&b.loss_per_character()));
    if let [closest, next, ..] = by_character.as_slice() {
        out.push_str(&format!(
            " Per character, the {} text lies closest to the pretraining data ({:.2} nats against {:.2} for the {} text).",
            closest.corpus,
            closest.loss_per_character(),
            next.loss_per_character(),
            next.corpus
        ));
    }
    out
}

fn stored_readings(readings: &[Signals]) -> Vec<DepthReading> {
    readings
        .iter()
        .enumerate()
        .map(|(depth, s)| DepthReading {
            depth,
            logme: s.logme,
            h_score: s.h_score,
            knn_accuracy: s.knn_accuracy,
            probe_accuracy: s.probe_accuracy,
        })
        .collect()
}

/// What the frozen features say: where the probe and kNN peak, and what head only reads.
fn features_sentence(readings: &[Signals]) -> String {
    let peak = |value: fn(&Signals) -> f64| {
        (0..readings.len()).max_by(|&a, &b| value(&readings[a]).total_cmp(&value(&readings[b])))
    };
    let (Some(probe), Some(knn)) = (peak(|s| s.probe_accuracy), peak(|s| s.knn_accuracy)) else {
        return String::new();
    };
    let top = readings.len() - 1;
    format!(
        "Frozen features: a linear probe peaks at depth {probe} ({}), kNN at depth {knn} ({}); head only reads depth {top} (probe {}, kNN {}).",
        percent(readings[probe].probe_accuracy),
        percent(readings[knn].knn_accuracy),
        percent(readings[top].probe_accuracy),
        percent(readings[top].knn_accuracy)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use thaw_metrics::Metric;

    fn full_fine_tuning(gradient_ratios: Vec<Option<f64>>) -> Forecast {
        let cell = CellForecast {
            cell: CellKey {
                init: Init::Pretrained,
                intermediate: "none".into(),
                mlm_freeze: None,
                pooling: "mean".into(),
                freeze: 0,
                train_size: None,
                strategy: "plain".into(),
            },
            num_layers: 4,
            predicted: 0.8,
            predicted_loss: Some(0.5),
            evidence: Evidence::Probe,
            job_seconds: 10.0,
            probe_lr: 1e-4,
            probe_examples: 64,
            gradient_ratios,
        };
        Forecast {
            sweep: "s".into(),
            metric: Metric::Accuracy,
            cells: vec![cell],
            pick: 0,
            tolerance: 0.02,
            reason: String::new(),
            advisor_seconds: 1.0,
            grid_seconds: 10.0,
            probe_fraction: 0.1,
            probe_epochs: 1,
            frozen: Vec::new(),
            mlm: Vec::new(),
        }
    }

    #[test]
    fn the_gradient_sentence_compares_the_bottom_half_with_the_top_half() {
        let top_heavy = full_fine_tuning(vec![Some(1e-3), Some(1e-3), Some(4e-3), Some(4e-3)]);
        let said = gradient_sentence(&top_heavy).unwrap();
        assert!(said.contains("1.0e-3, 1.0e-3, 4.0e-3, 4.0e-3"), "{said}");
        assert!(said.contains("0.25x the top half's: the task pulls mostly on the top"), "{said}");
        let even = full_fine_tuning(vec![Some(2e-3), Some(1e-3), Some(1e-3), Some(2e-3)]);
        assert!(
            gradient_sentence(&even)
                .unwrap()
                .contains("1.00x the top half's: the task pulls on every layer alike")
        );
        let head_only = full_fine_tuning(vec![None, None, None, None]);
        assert_eq!(gradient_sentence(&head_only), None, "no trained layer, nothing to say");
    }

    #[test]
    fn the_mlm_sentence_reads_per_character_and_names_the_closest_corpus() {
        let reading = |corpus: &str, perplexity: f64, chars_per_token: f64| MlmReading {
            corpus: corpus.into(),
            perplexity,
            chars_per_token,
            heldout_docs: 10,
            head_warmup_steps: Some(20),
            step_seconds: Some(0.5),
            seconds: 12.0,
        };
        // Per token the SMILES text reads closer (20 < 400); per character it is farther:
        // ln 20 / 1.2 = 2.50 nats against ln 400 / 4 = 1.50.
        let said = mlm_sentence(&[reading("task", 20.0, 1.2), reading("plots", 400.0, 4.0)]);
        assert!(
            said.contains("20.0 per token on the task text (1.2 characters a token, 2.50 nats")
        );
        assert!(said.contains("a head fitted for 20 steps on the frozen encoder: an upper bound"));
        assert!(
            said.ends_with("the plots text lies closest to the pretraining data (1.50 nats against 2.50 for the task text)."),
            "{said}"
        );
    }
}
