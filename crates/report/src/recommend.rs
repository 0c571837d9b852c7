//! The recommendation, worked out from the cell statistics alone. Every sentence states the
//! numbers it rests on; where the intervals cannot tell cells apart it says so instead of
//! naming a winner.

use thaw_analysis::Baselines;
use thaw_metrics::Metric;
use thaw_store::{Init, JobResultRow, StageRow};

use thaw_analysis::Split;
use thaw_analysis::baseline::{describe, is_above, lower_bound};
use thaw_analysis::cells::{Cell, best_seed, format_lr};
use thaw_analysis::labels::Names;
use thaw_analysis::stats::{Estimate, difference, separates};

/// Below this pre-MLM perplexity the text reads like the pretraining data; above
/// [`FAR_PERPLEXITY`] it is far from it. Heuristics: the numbers depend on tokenizer and mask rate.
pub const CLOSE_PERPLEXITY: f64 = 10.0;
pub const FAR_PERPLEXITY: f64 = 50.0;
/// Below this many characters per token the vocabulary shreds the text: per-token
/// perplexity then reads low because each piece is easy to guess, not because the text is
/// close (Rotten Tomatoes snippets under MiniLM's WordPiece: 3.75; SMILES: 1.22).
pub const SHREDDED_CHARS_PER_TOKEN: f64 = 2.0;

/// How many cells a list names before summarising the rest.
const LIST_LIMIT: usize = 5;

/// At most this many cells tied at the top (and others below them) are named as the answer, a
/// tied group, rather than "cannot separate".
const TIED_GROUP_LIMIT: usize = 4;

/// The paragraphs (markdown) recommending a configuration among `cells`, which share a
/// training-set size. With `baselines` (every sweep planned by this version has them), a
/// cell not above the majority class is never named best, cheapest or competitive.
pub fn recommend(
    cells: &[&Cell],
    names: &Names,
    split: Split,
    baselines: Option<&Baselines>,
) -> Vec<String> {
    let ranked = ranked(cells);
    if ranked.is_empty() {
        return vec![
            "No cell has a finished job yet, so there is nothing to recommend.".to_string(),
        ];
    }
    let mut out = vec![best_paragraph(&ranked, names, split, baselines)];
    out.push(cheapest_paragraph(&ranked, names, baselines));
    out.extend(mlm_paragraphs(cells, names));
    out.extend(strategy_paragraphs(cells, names));
    out.push(scratch_paragraph(cells, names, baselines));
    out.extend(vocabulary_paragraph(cells, names));
    out
}

/// A cell's validation interval lies above the validation split's majority class (true when
/// the sweep recorded no baseline, as sweeps planned before baselines existed).
fn beats_majority(validation: &Estimate, baselines: Option<&Baselines>) -> bool {
    baselines.is_none_or(|b| is_above(validation, &b.validation))
}

/// The job `thaw export --best` takes: among the cells of the largest training-set size,
/// the recommendation's best cell (highest validation mean at its selected lr), and within
/// it the seed with the best validation accuracy (ties: lower validation loss, then the
/// smaller seed). Returns the job's row and the recommendation's verdict sentence.
pub fn recommended_job<'a>(
    rows: &'a [JobResultRow],
    baselines: Option<&Baselines>,
) -> Option<(&'a JobResultRow, String)> {
    let cells = thaw_analysis::cells::cells(rows, Split::Test);
    // "All examples" (no train_size) is the largest size.
    let size = |c: &Cell| c.key.train_size.unwrap_or(i64::MAX);
    let largest = cells.iter().map(size).max()?;
    let candidates: Vec<&Cell> = cells.iter().filter(|c| size(c) == largest).collect();
    let ranked = ranked(&candidates);
    let job = best_seed(ranked.first()?.cell, rows)?;
    let verdict = best_paragraph(&ranked, &Names::new(&cells), Split::Test, baselines);
    Some((job, verdict))
}

/// A cell with a result: `shown` is the displayed metric (test unless asked otherwise) and
/// `chosen_on` the validation accuracy at the selected lr, the only number any choice here
/// looks at, so the test split never picks a winner.
#[derive(Clone, Copy)]
struct Scored<'a> {
    cell: &'a Cell,
    shown: Estimate,
    chosen_on: Estimate,
}

fn scored(cell: &Cell) -> Option<Scored<'_>> {
    let selected = cell.selected_lr()?;
    Some(Scored { cell, shown: selected.metric?, chosen_on: selected.val_metric? })
}

/// Cells with a result, best validation mean first (equal means: cheaper first).
fn ranked<'a>(cells: &[&'a Cell]) -> Vec<Scored<'a>> {
    let mut ranked: Vec<Scored> = cells.iter().filter_map(|c| scored(c)).collect();
    ranked.sort_by(|a, b| {
        b.chosen_on
            .mean
            .total_cmp(&a.chosen_on.mean)
            .then_with(|| seconds(a.cell).total_cmp(&seconds(b.cell)))
    });
    ranked
}

fn seconds(cell: &Cell) -> f64 {
    cell.train_seconds().map_or(f64::INFINITY, |e| e.mean)
}

/// "91.0 ± 0.7 %", "37.3 ± 4.1 % (one seed: bootstrap over the examples)" or "91.0 % (one
/// seed, no CI)".
pub fn percent(e: &Estimate) -> String {
    match (e.ci95, e.examples_ci95) {
        (Some(h), _) => format!("{:.1} ± {:.1} %", 100.0 * e.mean, 100.0 * h),
        (None, Some(h)) => format!(
            "{:.1} ± {:.1} % (one seed: bootstrap over the examples)",
            100.0 * e.mean,
            100.0 * h
        ),
        (None, None) => format!("{:.1} % (one seed, no CI)", 100.0 * e.mean),
    }
}

fn seeds(n: usize) -> String {
    format!("{n} seed{}", if n == 1 { "" } else { "s" })
}

/// True when the best cell (by validation) cannot be told apart from another one: the
/// recommendation then says "cannot separate", and the report's caveats say so too.
pub fn top_cells_overlap(cells: &[&Cell]) -> bool {
    let ranked = ranked(cells);
    ranked.len() > 1 && !contenders(&ranked).is_empty()
}

/// The verdict's best group: the best cell by validation and the cells it is not told
/// apart from (what the advice's pick is judged against).
pub fn best_group(cells: &[&Cell]) -> Vec<thaw_analysis::CellKey> {
    let ranked = ranked(cells);
    let Some(first) = ranked.first() else { return Vec::new() };
    let mut group = vec![first.cell.key.clone()];
    group.extend(contenders(&ranked).iter().map(|s| s.cell.key.clone()));
    group
}

/// Cells the best one (by validation) is not told apart from: by [`separates`] on their
/// validation accuracies per seed, the rule the racing search stops on.
fn contenders<'a>(ranked: &[Scored<'a>]) -> Vec<Scored<'a>> {
    let by_seed = |s: &Scored| s.cell.selected_lr().map(|l| l.validation_scores.clone());
    let best = by_seed(&ranked[0]).unwrap_or_default();
    ranked[1..]
        .iter()
        .filter(|s| !separates(&best, &by_seed(s).unwrap_or_default()))
        .copied()
        .collect()
}

fn best_paragraph(
    ranked: &[Scored],
    names: &Names,
    split: Split,
    baselines: Option<&Baselines>,
) -> String {
    let Scored { cell: best, shown, chosen_on } = ranked[0];
    let metric = baselines.map_or(Metric::Accuracy, |b| b.test.metric);
    let lr = best.selected_lr().map_or(String::new(), |l| format!(" at lr {}", format_lr(l.lr)));
    let described = format!(
        "*{}*{lr}: {} {} {} over {}",
        names.cell(best),
        split,
        metric.title(),
        percent(&shown),
        seeds(shown.n)
    );
    if let Some(b) = baselines.filter(|_| !beats_majority(&chosen_on, baselines)) {
        let lower = lower_bound(&chosen_on, b.validation.metric, b.validation.examples);
        let interval = if lower.is_finite() {
            format!("with a 95% interval reaching down to {:.1} %", 100.0 * lower)
        } else {
            "with no interval (one seed, and no per-example record of it to resample)".to_string()
        };
        return format!(
            "**No cell is shown to beat the {}.** Always predicting {} scores {:.1} % on validation \
             ({:.1} % on test); the best cell by validation, {described}, scores {:.1} % on validation {interval}. \
             No strategy can be recommended from these runs: more training examples, epochs or \
             other learning rates come first.",
            b.validation.name(),
            b.validation.predictor(),
            100.0 * b.validation.metric_value,
            100.0 * b.test.metric_value,
            100.0 * chosen_on.mean,
        );
    }
    let rivals = contenders(ranked);
    if ranked.len() == 1 {
        return format!(
            "**Only one cell has results: {described}.** Nothing to compare it with yet."
        );
    }
    let one_seed = if chosen_on.n == 1 {
        " With one seed this rests on the validation examples alone (paired over examples): seed-to-seed variation is not measured, and another seed could reorder the cells."
    } else {
        ""
    };
    if rivals.is_empty() {
        return format!(
            "**Best cell: {described}.** Chosen on validation {}, where it is told apart from every other cell tried (95%: the interval of the difference paired over shared seeds, or over one seed's validation examples, excludes zero; without a shared seed the two cells' intervals do not overlap).{}{one_seed}",
            metric.title(),
            partial_freezing_note(best)
        );
    }
    let listed: Vec<String> = rivals
        .iter()
        .take(LIST_LIMIT)
        .map(|s| format!("*{}*: {}", names.cell(s.cell), percent(&s.shown)))
        .collect();
    let more = rivals.len().saturating_sub(LIST_LIMIT);
    let more = if more > 0 { format!(" and {more} more") } else { String::new() };
    let single = if ranked[0].chosen_on.ci95.is_none()
        || rivals.iter().any(|s| s.chosen_on.ci95.is_none())
    {
        " Cells with a single seed are compared over that seed's validation examples only, where thaw has them."
    } else {
        ""
    };
    if rivals.len() < TIED_GROUP_LIMIT && ranked.len() > rivals.len() + 1 && single.is_empty() {
        return format!(
            "**Best: a tied group of {} cells.** The highest validation mean is {described}; it cannot be told apart from {}. \
             Every other cell is below the group (95%, paired over shared seeds). Within the group prefer the cheapest (below).",
            rivals.len() + 1,
            listed.join("; ")
        );
    }
    format!(
        "**Cannot separate the top cells.** The highest validation mean is {described}, but it cannot be told apart from {} other cell{}: {}{more}.{single} \
         The data do not single out a winner; more seeds would narrow the intervals. Until then treat these as equivalent and prefer the cheapest (below).",
        rivals.len(),
        if rivals.len() == 1 { "" } else { "s" },
        listed.join("; ")
    )
}

fn partial_freezing_note(cell: &Cell) -> String {
    if cell.key.freeze > 0 && cell.key.freeze < cell.num_layers {
        format!(
            " This is partial freezing: the bottom {} of {} encoder layers stay frozen.",
            cell.key.freeze, cell.num_layers
        )
    } else {
        String::new()
    }
}

/// "the majority class" for classification; "the baseline" for the trivial predictors of
/// other tasks (the training mean, all-O).
fn baseline_name(baselines: Option<&Baselines>) -> &'static str {
    if baselines.is_none_or(|b| b.test.is_majority_class()) {
        "the majority class"
    } else {
        "the baseline"
    }
}

/// The cheapest cell whose validation mean lies within the best cell's validation CI.
fn cheapest_paragraph(ranked: &[Scored], names: &Names, baselines: Option<&Baselines>) -> String {
    let best = ranked[0];
    if !beats_majority(&best.chosen_on, baselines) {
        return format!(
            "No cell beats {}, so none is named the cheapest good enough.",
            baseline_name(baselines)
        );
    }
    if best.chosen_on.ci95.is_none() {
        return "The best cell has a single seed, so no cheaper cell can be shown to be as good."
            .to_string();
    }
    // A cell not above the majority class is never good enough, however cheap.
    let within: Vec<&Scored> = ranked
        .iter()
        .filter(|s| s.chosen_on.mean >= best.chosen_on.low())
        .filter(|s| beats_majority(&s.chosen_on, baselines))
        .collect();
    let Some(cheapest) = within
        .iter()
        .filter(|s| s.cell.train_seconds().is_some())
        .min_by(|a, b| seconds(a.cell).total_cmp(&seconds(b.cell)))
    else {
        return "No training times were recorded, so the cheapest good cell cannot be named."
            .to_string();
    };
    let others = within.len() - 1;
    if within.len() == 1 {
        return format!(
            "No other cell's validation mean lies within the best cell's CI ({:.1} s mean training time), so no cheaper cell is shown to be as good.",
            seconds(best.cell)
        );
    }
    if std::ptr::eq(cheapest.cell, best.cell) {
        return format!(
            "The best cell is also the cheapest ({:.1} s mean training time) of the {} cells whose validation means lie within its CI.",
            seconds(best.cell),
            within.len()
        );
    }
    format!(
        "**Cheapest cell within the best cell's validation CI:** *{}*: {} at {:.1} s mean training time, against {:.1} s for the best ({:.1}× faster; {} other cell{} within the CI).",
        names.cell(cheapest.cell),
        percent(&cheapest.shown),
        seconds(cheapest.cell),
        seconds(best.cell),
        seconds(best.cell) / seconds(cheapest.cell),
        others,
        if others == 1 { "" } else { "s" }
    )
}

/// The best cell by validation mean among those matching `filter`, with its displayed estimate.
fn best_where<'a>(
    cells: &[&'a Cell],
    filter: impl Fn(&Cell) -> bool,
) -> Option<(&'a Cell, Estimate)> {
    cells
        .iter()
        .filter(|c| filter(c))
        .filter_map(|c| scored(c))
        .max_by(|a, b| a.chosen_on.mean.total_cmp(&b.chosen_on.mean))
        .map(|s| (s.cell, s.shown))
}

/// "+1.2 pts (95% CI -0.3 to +2.7, Welch)".
/// The difference of two cells' displayed accuracy (a - b), at their selected lrs: paired
/// over seeds when both finished the same seeds, else Welch's interval.
pub(crate) fn difference_text(a: &Cell, b: &Cell) -> (String, i32) {
    let (Some(la), Some(lb)) = (a.selected_lr(), b.selected_lr()) else {
        return ("not computable yet".to_string(), 0);
    };
    let Some((d, pairing)) = difference(&la.scores, &lb.scores) else {
        return ("not computable yet".to_string(), 0);
    };
    let how = pairing.describe();
    let text = match (d.low(), d.high()) {
        (Some(lo), Some(hi)) => format!(
            "{:+.1} pts (95% CI {:+.1} to {:+.1}, {how})",
            100.0 * d.mean,
            100.0 * lo,
            100.0 * hi
        ),
        _ => format!("{:+.1} pts (too few seeds for an interval)", 100.0 * d.mean),
    };
    (text, d.sign())
}

fn mlm_paragraphs(cells: &[&Cell], names: &Names) -> Vec<String> {
    let mut pairs: Vec<(Init, String)> = cells
        .iter()
        .filter(|c| c.key.intermediate != "none")
        .map(|c| (c.key.init, c.key.intermediate.clone()))
        .collect();
    pairs.sort_by(|a, b| (a.0.is_scratch(), &a.1).cmp(&(b.0.is_scratch(), &b.1)));
    pairs.dedup();
    if pairs.is_empty() {
        return vec!["Intermediate MLM: not part of this sweep.".to_string()];
    }
    pairs
        .iter()
        .map(|(init, name)| {
            let with = best_where(cells, |c| c.key.init == *init && &c.key.intermediate == name);
            let without = best_where(cells, |c| c.key.init == *init && c.key.intermediate == "none");
            match (with, without) {
                (Some((wc, w)), Some((nc, n))) => {
                    let (diff, sign) = difference_text(wc, nc);
                    format!(
                        "Intermediate MLM on **{name}** text ({init} init): {}. Best {name}-MLM cell *{}*: {} vs best no-MLM cell *{}*: {}; difference {diff}.",
                        effect(sign),
                        names.cell(wc),
                        percent(&w),
                        names.cell(nc),
                        percent(&n)
                    )
                }
                _ => format!("Intermediate MLM on **{name}** text ({init} init): no finished cells on both sides yet to compare."),
            }
        })
        .collect()
}

/// "+1.2 pts" as a verdict: helped, hurt, or no clear effect.
fn effect(sign: i32) -> &'static str {
    match sign {
        1 => "it helped",
        -1 => "it hurt",
        _ => "no clear effect (the interval includes zero or is missing)",
    }
}

/// One sentence per strategy other than plain: its best cell against the best plain cell
/// (both chosen on validation), when the sweep runs both.
fn strategy_paragraphs(cells: &[&Cell], names: &Names) -> Vec<String> {
    let mut strategies: Vec<&str> =
        cells.iter().filter(|c| !c.key.is_plain()).map(|c| c.key.strategy.as_str()).collect();
    strategies.sort_unstable();
    strategies.dedup();
    let plain = best_where(cells, |c| c.key.is_plain() && !c.key.init.is_scratch());
    strategies
        .into_iter()
        .map(|name| {
            let with = best_where(cells, |c| c.key.strategy == name);
            match (with, plain) {
                (Some((wc, w)), Some((pc, p))) => {
                    let (diff, sign) = difference_text(wc, pc);
                    format!(
                        "Strategy **{name}**: {}. Its best cell *{}*: {} vs best plain cell *{}*: {}; difference {diff}.",
                        effect(sign),
                        names.cell(wc),
                        percent(&w),
                        names.cell(pc),
                        percent(&p)
                    )
                }
                _ => format!("Strategy **{name}**: no finished cells on both sides yet to compare with plain."),
            }
        })
        .collect()
}

/// With both kinds of scratch in the sweep: did a vocabulary learnt from the task's own text
/// beat the checkpoint's?
fn vocabulary_paragraph(cells: &[&Cell], names: &Names) -> Option<String> {
    let own = best_where(cells, |c| c.key.init == Init::ScratchOwnVocab);
    let checkpoint = best_where(cells, |c| c.key.init == Init::Scratch);
    let ((oc, o), (cc, c)) = (own?, checkpoint?);
    let (diff, sign) = difference_text(oc, cc);
    Some(format!(
        "Scratch with its own vocabulary vs with the checkpoint's: {}. *{}*: {} vs *{}*: {}; difference {diff}.",
        effect(sign),
        names.cell(oc),
        percent(&o),
        names.cell(cc),
        percent(&c)
    ))
}

fn scratch_paragraph(cells: &[&Cell], names: &Names, baselines: Option<&Baselines>) -> String {
    let scratch = best_where(cells, |c| c.key.init.is_scratch());
    let pretrained = best_where(cells, |c| !c.key.init.is_scratch());
    let (Some((sc, s)), Some((pc, p))) = (scratch, pretrained) else {
        let has_scratch = cells.iter().any(|c| c.key.init.is_scratch());
        let has_pretrained = cells.iter().any(|c| !c.key.init.is_scratch());
        return if has_scratch && has_pretrained {
            "Scratch vs pretrained: no finished cells on both sides yet to compare.".to_string()
        } else {
            "Scratch vs pretrained: this sweep does not run both inits.".to_string()
        };
    };
    let learned = |c: &Cell| c.validation_metric().is_some_and(|v| beats_majority(&v, baselines));
    if let Some(b) = baselines.filter(|_| !learned(sc)) {
        return format!(
            "**Scratch is not above {}:** its best cell *{}* scores {} against {} on test, \
             so it learned nothing measurable and is not competitive. Best pretrained cell *{}*: {}.",
            baseline_name(baselines),
            names.cell(sc),
            percent(&s),
            describe(&b.test),
            names.cell(pc),
            percent(&p)
        );
    }
    let (diff, sign) = difference_text(sc, pc);
    let verdict = match sign {
        1 => "**Scratch beats pretrained.**",
        -1 => "Scratch is not competitive.",
        _ if s.ci95.is_some() && p.ci95.is_some() => {
            "Scratch is competitive: the interval of the difference includes zero."
        }
        _ => "Scratch vs pretrained cannot be judged: too few seeds for an interval.",
    };
    format!(
        "{verdict} Best scratch cell *{}*: {} vs best pretrained cell *{}*: {}; difference (scratch − pretrained) {diff}.",
        names.cell(sc),
        percent(&s),
        names.cell(pc),
        percent(&p)
    )
}

/// How far a stage's text is from the pretraining data, judged from the perplexity of the
/// model before intermediate training.
pub fn perplexity_reading(stage: &StageRow) -> String {
    if stage.init.is_scratch() {
        return "random init: perplexity before MLM measures nothing about the text".to_string();
    }
    if let (Some(p), Some(chars)) = (stage.perplexity_before, stage.heldout_chars_per_token)
        && chars < SHREDDED_CHARS_PER_TOKEN
    {
        return format!(
            "not readable per token: the vocabulary cuts this text into pieces of {chars:.1} characters on average, each easy to guess \
             from its neighbours, so a low perplexity does not mean close; per character the loss is {:.2} nats (Rotten Tomatoes \
             snippets under MiniLM, 3.8 characters a token, read 2.0 with a fitted head)",
            p.ln() / chars
        );
    }
    let reading = match stage.perplexity_before {
        None => return "not measured yet".to_string(),
        Some(p) if p < CLOSE_PERPLEXITY => {
            format!("close to the pretraining data (< {CLOSE_PERPLEXITY})")
        }
        Some(p) if p <= FAR_PERPLEXITY => format!(
            "moderately far from the pretraining data ({CLOSE_PERPLEXITY}–{FAR_PERPLEXITY})"
        ),
        Some(_) => format!("far from the pretraining data (> {FAR_PERPLEXITY})"),
    };
    match stage.head_warmup_steps {
        Some(0) => "not readable: the MLM head was untrained (head_warmup_steps = 0), so the perplexity before MLM measures a random head, not the text".to_string(),
        // A head fitted briefly on frozen features overstates perplexity: the thresholds assume
        // the model's own pretrained MLM head, so this reading is an upper bound.
        Some(n) => format!(
            "{reading}, read with care: the checkpoint has no MLM head, so a fresh one was fitted for {n} steps on the frozen encoder \
             and the perplexity is an upper bound; compare stages with each other"
        ),
        None => reading,
    }
}

/// One sentence per corpus of the pretrained stages, for the recommendation: the perplexity
/// before MLM is the corpus's (the same for every MLM freeze depth), then each stage's after.
pub fn perplexity_paragraph(stages: &[StageRow]) -> Option<String> {
    let mut corpora: Vec<(&str, Vec<&StageRow>)> = Vec::new();
    for s in stages.iter().filter(|s| !s.init.is_scratch() && s.perplexity_before.is_some()) {
        match corpora.iter_mut().find(|(name, _)| *name == s.name) {
            Some((_, of)) => of.push(s),
            None => corpora.push((&s.name, vec![s])),
        }
    }
    let read: Vec<String> = corpora
        .iter()
        .map(|(name, of)| {
            let first = of[0];
            let before = first.perplexity_before.unwrap_or(f64::NAN);
            let after: Vec<String> = of
                .iter()
                .filter_map(|s| {
                    let a = s.perplexity_after?;
                    let lower = 100.0 * (1.0 - a / before);
                    Some(if of.len() > 1 {
                        format!("{a:.1} with MLM freeze {} ({lower:.0}% lower)", s.mlm_freeze)
                    } else {
                        format!("{a:.1} after MLM ({lower:.0}% lower)")
                    })
                })
                .collect();
            let after = match after.len() {
                0 => String::new(),
                1 if of.len() == 1 => format!(", {}", after[0]),
                _ => format!("; after MLM {}", after.join(", ")),
            };
            format!(
                "{name} text: perplexity {before:.1} before MLM{after}, so {}",
                perplexity_reading(first)
            )
        })
        .collect();
    if read.is_empty() {
        return None;
    }
    Some(format!(
        "Distance of the text from the pretraining data (pretrained model's masked-LM perplexity before intermediate training; \
         heuristic thresholds: below {CLOSE_PERPLEXITY} close, {CLOSE_PERPLEXITY}–{FAR_PERPLEXITY} moderate, above {FAR_PERPLEXITY} far): {}.",
        read.join("; ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use thaw_store::WorkStatus;

    fn stage(perplexity: f64, head_warmup_steps: Option<i64>) -> StageRow {
        StageRow {
            key: "s".into(),
            name: "task".into(),
            init: Init::Pretrained,
            mlm_freeze: 0,
            status: WorkStatus::Done,
            attempts: 1,
            worker: None,
            error: None,
            checkpoint_path: None,
            loss_before: Some(perplexity.ln()),
            perplexity_before: Some(perplexity),
            loss_after: None,
            perplexity_after: None,
            train_docs: None,
            heldout_docs: None,
            trainable_params: None,
            train_seconds: None,
            head_warmup_steps,
            heldout_chars_per_token: None,
        }
    }

    #[test]
    fn text_shredded_into_characters_is_not_read_as_close() {
        let shredded = StageRow { heldout_chars_per_token: Some(1.1), ..stage(32.9, Some(60)) };
        let reading = perplexity_reading(&shredded);
        assert!(reading.starts_with("not readable per token: the vocabulary cuts this text into pieces of 1.1 characters"), "{reading}");
        assert!(reading.contains("per character the loss is 3.18 nats"), "{reading}");
        let prose = StageRow { heldout_chars_per_token: Some(4.2), ..stage(8.0, None) };
        assert_eq!(perplexity_reading(&prose), "close to the pretraining data (< 10)");
    }

    #[test]
    fn a_freshly_fitted_head_qualifies_the_perplexity_reading() {
        assert_eq!(perplexity_reading(&stage(8.0, None)), "close to the pretraining data (< 10)");
        let fresh = perplexity_reading(&stage(900.0, Some(60)));
        assert!(
            fresh.starts_with("far from the pretraining data (> 50), read with care"),
            "{fresh}"
        );
        assert!(fresh.contains("fitted for 60 steps") && fresh.contains("upper bound"), "{fresh}");
        let untrained = perplexity_reading(&stage(30000.0, Some(0)));
        assert!(untrained.starts_with("not readable: the MLM head was untrained"), "{untrained}");
    }
}
