//! What `thaw plan` prints: the model and data, the shared stages, the cells with their
//! learning rates and job counts, the search's bounds, the rule notes, and the jobs.

use std::collections::{BTreeMap, BTreeSet};

use super::Plan;
use crate::validate::SearchPlan;

impl Plan {
    /// What `thaw plan` prints: the model and data, the shared stages, the cells with their
    /// learning rates and job counts, the rule notes, and with `list_jobs` every job's key.
    pub fn describe(&self, list_jobs: bool) -> String {
        let mut out = format!(
            "sweep {}: model {} ({} layers), data {}, backend {}\n",
            self.sweep, self.model.origin, self.model.num_layers, self.data.name, self.backend
        );
        let stages = self.stages.len();
        out += &format!(
            "{} jobs, {stages} shared intermediate-MLM stage{}\n",
            self.jobs.len(),
            if stages == 1 { "" } else { "s" }
        );
        for stage in &self.stages {
            let users = self
                .jobs
                .iter()
                .filter(|j| j.spec.stage_key.as_deref() == Some(stage.key.as_str()))
                .count();
            out += &format!(
                "  stage {}  '{}' init={} mlm_freeze={} steps={}  -> serves {users} jobs\n",
                stage.key,
                stage.spec.name,
                stage.spec.init,
                stage.mlm_freeze,
                stage.spec.settings.steps
            );
        }
        let mut cells: BTreeMap<String, (Vec<f64>, usize)> = BTreeMap::new();
        for j in &self.jobs {
            let cell = format!(
                "{:<10} {:<12} mlm_freeze={:<4} freeze={:<2} train_size={:<6} pooling={} strategy={}{}",
                j.spec.init.as_str(),
                j.spec.intermediate,
                j.mlm_freeze.map_or("-".into(), |k| k.to_string()),
                j.spec.freeze,
                train_size_text(j.spec.train_size),
                j.pooling.as_str(),
                j.strategy,
                Some(&j.spec.settings.strategy)
                    .filter(|s| !s.is_plain())
                    .map(|s| format!(" ({})", s.describe()))
                    .unwrap_or_default()
            );
            let entry = cells.entry(cell).or_default();
            if !entry.0.contains(&j.lr) {
                entry.0.push(j.lr);
            }
            entry.1 += 1;
        }
        out += &format!("cells ({}):\n", cells.len());
        for (cell, (lrs, n)) in &cells {
            let lrs: Vec<String> = lrs.iter().map(|lr| format!("{lr:e}")).collect();
            out += &format!("  {cell}  lr=[{}]  {n} jobs\n", lrs.join(", "));
        }
        if let Some(m) = self.jobs.iter().find_map(|j| j.spec.scratch_model.as_ref()) {
            out += &format!(
                "scratch-own-vocab: {} layers, hidden {}, {} heads, a vocabulary of up to {} WordPiece tokens learnt from each job's training text ({})\n",
                m.layers,
                m.hidden,
                m.heads,
                m.vocab_size,
                if m.lowercase { "lower-cased" } else { "case kept" }
            );
        }
        if let Some(search) = &self.search {
            out += &self.describe_search(search);
        }
        for note in &self.notes {
            out += &format!("note: {note}\n");
        }
        if list_jobs {
            for j in &self.jobs {
                out += &format!(
                    "  {} {} {} k={} strategy={} lr={:e} seed={} n={}\n",
                    j.key,
                    j.spec.init,
                    j.spec.intermediate,
                    j.spec.freeze,
                    j.strategy,
                    j.lr,
                    j.spec.seed,
                    train_size_text(j.spec.train_size)
                );
            }
        }
        out
    }

    /// The search's rules and the fewest and most jobs it can run, against the full grid.
    fn describe_search(&self, search: &SearchPlan) -> String {
        let mut cells: BTreeMap<String, (BTreeSet<u64>, BTreeSet<u64>)> = BTreeMap::new();
        for j in &self.jobs {
            let entry = cells.entry(format!("{:?}", j.cell_key())).or_default();
            entry.0.insert(j.lr.to_bits());
            entry.1.insert(j.spec.seed);
        }
        let (mut fewest, mut most) = (0, 0);
        for (lrs, seeds) in cells.values() {
            let (lrs, seeds) = (lrs.len(), seeds.len());
            let min = search.race.map_or(seeds, |r| r.min.min(seeds));
            let (rungs, kept) = match search.halving {
                Some(h) if lrs > 1 => (lrs * h.seeds.min(seeds), h.kept(lrs)),
                _ => (0, lrs),
            };
            fewest += rungs + kept * min;
            most += rungs + kept * seeds;
        }
        let mut out = String::from("search:");
        if let Some(h) = search.halving {
            out += &format!(
                " learning rates by successive halving (each lr trains a rung of {} epoch{} on {} seed{}, the best 1/{} go on);",
                h.rung_epochs,
                if h.rung_epochs == 1 { "" } else { "s" },
                h.seeds,
                if h.seeds == 1 { "" } else { "s" },
                h.rate
            );
        }
        if let Some(r) = search.race {
            out += &format!(" seeds raced from {} to {} per cell", r.min, r.max);
            if let Some(b) = search.budget_seconds {
                out += &format!(" within {:.0} minutes of worker time", b / 60.0);
            }
            out += ";";
        }
        out += &format!(
            " between {fewest} and {most} jobs (rungs included), against {} for the full grid\n",
            self.jobs.len()
        );
        out
    }
}

fn train_size_text(size: Option<usize>) -> String {
    size.map_or("all".into(), |n| n.to_string())
}
