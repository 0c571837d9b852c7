//! The combination rules: grid cells that would measure something other than a fine-tuning
//! strategy are left out, never silently: `thaw plan` and the report say which rule left out
//! how many jobs, and how to run them anyway where a switch exists.

use std::collections::BTreeMap;

use thaw_train::{Strategy, Unfreezing};

use crate::spec::Init;
use crate::strategies::NamedStrategy;
use crate::validate::Halving;

/// One rule. The order is the order rules are checked in (the first that applies to a
/// left-out job counts it) and the order of their notes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rule {
    /// Scratch runs unfrozen only, unless `grid.scratch_freeze = true`: freezing random
    /// layers measures random features.
    ScratchUnfrozen,
    /// Scratch runs without intermediate MLM, unless `grid.scratch_intermediate = true`: MLM
    /// from random init is pretraining, not adaptation.
    ScratchNoMlm,
    /// Strategies other than plain act on pretrained layers.
    StrategyPretrained,
    /// Head only has nothing to decay, unfreeze or re-initialise.
    StrategyBelowHeadOnly,
    /// Re-initialised frozen layers are random features.
    ReinitTrainable,
    /// Scratch with its own vocabulary trains unfrozen and without MLM: its vocabulary and
    /// size are not the checkpoint's.
    OwnVocabAlone,
}

impl Rule {
    /// The rule that leaves out every job of an (init, intermediate) branch, if one does:
    /// checked before its MLM stage is planned.
    pub fn for_branch(init: Init, has_mlm: bool, scratch_intermediate: bool) -> Option<Rule> {
        match init {
            Init::ScratchOwnVocab if has_mlm => Some(Rule::OwnVocabAlone),
            Init::Scratch if has_mlm && !scratch_intermediate => Some(Rule::ScratchNoMlm),
            _ => None,
        }
    }

    /// The rule that leaves out a cell at depth `freeze` of `layers` with `strategy`, if one does.
    pub fn for_cell(
        init: Init,
        freeze: usize,
        layers: usize,
        strategy: &Strategy,
        scratch_freeze: bool,
    ) -> Option<Rule> {
        match init {
            Init::ScratchOwnVocab if freeze > 0 => return Some(Rule::OwnVocabAlone),
            Init::Scratch if freeze > 0 && !scratch_freeze => return Some(Rule::ScratchUnfrozen),
            _ => {}
        }
        if strategy.is_plain() {
            None
        } else if init.is_scratch() {
            Some(Rule::StrategyPretrained)
        } else if freeze == layers {
            Some(Rule::StrategyBelowHeadOnly)
        } else if strategy.reinit_top > layers - freeze {
            Some(Rule::ReinitTrainable)
        } else {
            None
        }
    }

    /// What `thaw plan` says when the rule left out `jobs` jobs.
    fn note(self, jobs: usize) -> String {
        match self {
            Rule::ScratchUnfrozen => format!(
                "rule scratch-unfrozen: {jobs} scratch jobs with freeze > 0 left out (frozen random layers measure random features); set grid.scratch_freeze = true to run them"
            ),
            Rule::ScratchNoMlm => format!(
                "rule scratch-no-mlm: {jobs} scratch jobs with intermediate MLM left out (MLM from random init is pretraining, not adaptation); set grid.scratch_intermediate = true to run them"
            ),
            Rule::StrategyPretrained => format!(
                "rule strategy-pretrained: {jobs} scratch jobs with a strategy other than plain left out (decay, unfreezing order and re-init act on pretrained layers)"
            ),
            Rule::StrategyBelowHeadOnly => format!(
                "rule strategy-below-head-only: {jobs} head-only jobs (freeze = all layers) with a strategy other than plain left out (only the head trains: nothing to decay, unfreeze or re-init)"
            ),
            Rule::ReinitTrainable => format!(
                "rule reinit-trainable: {jobs} jobs whose reinit_top reaches frozen layers left out (re-initialised frozen layers are random features)"
            ),
            Rule::OwnVocabAlone => format!(
                "rule own-vocab-alone: {jobs} scratch-own-vocab jobs with freeze > 0 or intermediate MLM left out (its vocabulary and size are not the checkpoint's: it trains unfrozen, from random weights, on the task alone)"
            ),
        }
    }
}

/// How many jobs each rule left out.
#[derive(Debug, Default)]
pub struct LeftOut(BTreeMap<Rule, usize>);

impl LeftOut {
    pub fn add(&mut self, rule: Rule, jobs: usize) {
        *self.0.entry(rule).or_default() += jobs;
    }

    /// One note per rule that left jobs out, in the rules' order.
    pub fn notes(&self) -> Vec<String> {
        self.0.iter().filter(|&(_, &n)| n > 0).map(|(rule, &n)| rule.note(n)).collect()
    }
}

/// A caveat, not a rule: an LP-FT probe at least as long as halving's rung ranks the
/// strategy's learning rates on the probe alone.
pub fn lp_ft_rung_caveats(strategies: &[NamedStrategy], halving: Option<Halving>) -> Vec<String> {
    let Some(h) = halving else { return Vec::new() };
    strategies
        .iter()
        .filter_map(|named| match named.strategy.unfreezing {
            Unfreezing::LpFt { head_epochs, .. } if head_epochs >= h.rung_epochs => Some(format!(
                "caveat lp-ft-rung: [strategy.{}] trains the head alone for {head_epochs} epoch(s) at head_lr, and halving's rung is {} epoch(s): its learning rates are ranked on the probe alone, before lr is used; set [search] rung_epochs above head_epochs",
                named.name, h.rung_epochs
            )),
            _ => None,
        })
        .collect()
}
