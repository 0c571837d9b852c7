//! Human-readable names for series and cells, shared by the charts and the markdown.

use std::collections::{BTreeMap, BTreeSet};

use thaw_store::Init;

use crate::cells::{Cell, CellKey, SeriesKey};

/// Knows which (init, intermediate) pairs were run at several MLM freeze depths, so labels
/// mention the depth only where it tells series apart.
pub struct Names {
    several_mlm_freezes: BTreeSet<(Init, String)>,
    several_train_sizes: bool,
    several_poolings: bool,
    several_strategies: bool,
    /// Encoder layers of scratch-own-vocab when they differ from the checkpoint's.
    own_vocab_layers: Option<i64>,
}

impl Names {
    pub fn new(cells: &[Cell]) -> Names {
        let mut depths: BTreeMap<(Init, String), BTreeSet<Option<i64>>> = BTreeMap::new();
        for c in cells {
            depths
                .entry((c.key.init, c.key.intermediate.clone()))
                .or_default()
                .insert(c.key.mlm_freeze);
        }
        let several_mlm_freezes =
            depths.into_iter().filter(|(_, d)| d.len() > 1).map(|(k, _)| k).collect();
        let sizes: BTreeSet<Option<i64>> = cells.iter().map(|c| c.key.train_size).collect();
        let poolings: BTreeSet<&str> = cells.iter().map(|c| c.key.pooling.as_str()).collect();
        let strategies: BTreeSet<&str> = cells.iter().map(|c| c.key.strategy.as_str()).collect();
        Names {
            several_mlm_freezes,
            several_train_sizes: sizes.len() > 1,
            several_poolings: poolings.len() > 1,
            several_strategies: strategies.len() > 1,
            own_vocab_layers: own_vocab_layers(cells),
        }
    }

    /// "pretrained, no MLM", "pretrained + task MLM", "scratch + wiki MLM (MLM freeze 6)".
    pub fn series(&self, key: &SeriesKey) -> String {
        let init = match self.own_vocab_layers.filter(|_| key.init == Init::ScratchOwnVocab) {
            Some(layers) => format!("{} ({layers} layers)", key.init),
            None => key.init.to_string(),
        };
        let mut label = init_with_mlm(&init, key);
        if key.has_mlm() && self.several_mlm_freezes.contains(&(key.init, key.intermediate.clone()))
        {
            label.push_str(&format!(" (MLM freeze {})", key.mlm_freeze.unwrap_or(0)));
        }
        if self.several_poolings {
            label.push_str(&format!(", {} pooling", key.pooling));
        }
        // "plain" is named only beside other strategies: sweeps without them read as before.
        if !key.is_plain() || self.several_strategies {
            label.push_str(&format!(", {}", key.strategy));
        }
        label
    }

    /// "pretrained + task MLM, 2/4 layers unfrozen" (plus the train size when the sweep varies it).
    pub fn cell(&self, cell: &Cell) -> String {
        let mut label = format!(
            "{}, {}",
            self.series(&cell.key.series()),
            unfrozen_text(cell.unfrozen_layers(), cell.num_layers)
        );
        if self.several_train_sizes {
            label.push_str(&format!(", train size {}", train_size_text(cell.key.train_size)));
        }
        label
    }
}

fn own_vocab_layers(cells: &[Cell]) -> Option<i64> {
    let deepest = cells.iter().map(|c| c.num_layers).max()?;
    cells
        .iter()
        .find(|c| c.key.init == Init::ScratchOwnVocab)
        .map(|c| c.num_layers)
        .filter(|&n| n != deepest)
}

/// "pretrained, no MLM" or "pretrained + task MLM": a series before the details only some
/// sweeps need.
pub fn init_and_mlm(key: &SeriesKey) -> String {
    init_with_mlm(key.init.as_str(), key)
}

/// `init` (the init as it should read) followed by the series' intermediate MLM.
fn init_with_mlm(init: &str, key: &SeriesKey) -> String {
    if key.has_mlm() {
        format!("{init} + {} MLM", key.intermediate)
    } else {
        format!("{init}, no MLM")
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

/// "pretrained, no MLM, 3/6 layers unfrozen" or "pretrained + task MLM (MLM freeze 3), 6/6
/// layers unfrozen (full fine-tuning)" (and the strategy when not plain): a cell by what it
/// trains, as the advice names it.
pub fn cell_with_depth(key: &CellKey, num_layers: i64) -> String {
    let mut out = init_and_mlm(&key.series());
    if let Some(k) = key.mlm_freeze.filter(|&k| k > 0) {
        out += &format!(" (MLM freeze {k})");
    }
    out += &format!(", {}", unfrozen_text(num_layers - key.freeze, num_layers));
    if !key.is_plain() {
        out += &format!(", {}", key.strategy);
    }
    out
}

/// "0/12 layers unfrozen (head only)", "5/12 layers unfrozen", "12/12 layers unfrozen (full fine-tuning)".
pub fn unfrozen_text(unfrozen: i64, num_layers: i64) -> String {
    let suffix = match unfrozen {
        0 => " (head only)",
        u if u == num_layers => " (full fine-tuning)",
        _ => "",
    };
    format!("{unfrozen}/{num_layers} layers unfrozen{suffix}")
}

pub fn train_size_text(size: Option<i64>) -> String {
    size.map_or("all".to_string(), |s| s.to_string())
}

/// Hub ids carry a 40-character revision; keep its first 7 characters so titles fit.
pub fn short_model(model: &str) -> String {
    match model.split_once('@') {
        Some((id, rev)) if rev.len() > 12 => format!("{id}@{}", &rev[..7]),
        _ => model.to_string(),
    }
}

/// "n = 3 seeds" or "n = 2–3 seeds" when cells differ.
pub fn seeds_text(ns: impl IntoIterator<Item = usize>) -> String {
    let ns: BTreeSet<usize> = ns.into_iter().filter(|&n| n > 0).collect();
    match (ns.first(), ns.last()) {
        (Some(lo), Some(hi)) if lo == hi => {
            format!("n = {lo} seed{}", if *lo == 1 { "" } else { "s" })
        }
        (Some(lo), Some(hi)) => format!("n = {lo}–{hi} seeds"),
        _ => "no finished seeds".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts() {
        assert_eq!(unfrozen_text(0, 12), "0/12 layers unfrozen (head only)");
        assert_eq!(unfrozen_text(12, 12), "12/12 layers unfrozen (full fine-tuning)");
        assert_eq!(
            short_model("bert-base-uncased@86b5e0934494bd15c9632b12f734a8a67f723594"),
            "bert-base-uncased@86b5e09"
        );
        assert_eq!(short_model("./my-bert"), "./my-bert");
        assert_eq!(seeds_text([3, 3, 0]), "n = 3 seeds");
        assert_eq!(seeds_text([2, 3]), "n = 2–3 seeds");
        assert_eq!(seeds_text([1]), "n = 1 seed");
    }
}
