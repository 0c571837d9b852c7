//! `grid.strategy` and `grid.llrd_decay` resolved against the `[strategy.NAME]` sections: the
//! named fine-tuning strategies every (init, intermediate, depth) of the grid runs with.

use thaw_train::{Strategy, Unfreezing};
use toml::Spanned;

use crate::spec::{Source, SpecError, StrategySection, SweepFile, UnfreezeKind, listed_twice};

/// One value of the strategy axis: the name the report shows and what the trainer does.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedStrategy {
    pub name: String,
    pub strategy: Strategy,
}

/// The name of the built-in strategy: a fixed freeze depth, one learning rate for all.
pub const PLAIN: &str = "plain";

/// LP-FT's probe defaults: one epoch at a head-only learning rate.
const HEAD_EPOCHS: usize = 1;
const HEAD_LR: f64 = 1e-3;

pub fn strategies(
    source: &Source,
    file: &SweepFile,
    layers: usize,
) -> Result<Vec<NamedStrategy>, SpecError> {
    let epochs = *file.train.epochs.get_ref();
    // Every section is checked, listed or not: a typo must not wait for the day it is used.
    let mut defined = std::collections::BTreeMap::new();
    for (name, section) in &file.strategy {
        if name == PLAIN {
            return Err(source.at(
                section,
                "[strategy.plain] is built in (a fixed depth); give your strategy another name",
            ));
        }
        defined.insert(name.clone(), from_section(source, name, section, layers, epochs)?);
    }
    let mut named = Vec::new();
    let listed = match &file.grid.strategy {
        Some(list) if list.is_empty() => {
            return Err(
                source.error(None, "grid.strategy is empty; remove it to run \"plain\" only")
            );
        }
        Some(list) => list.clone(),
        None => vec![Spanned::new(0..0, PLAIN.to_string())],
    };
    // Spanned values compare by value alone, so the span found is the second listing.
    if let Some(twice) = listed_twice(&listed) {
        return Err(source.at(twice, format!("strategy '{}' is listed twice", twice.get_ref())));
    }
    for name in &listed {
        let n = name.get_ref();
        let strategy = match (n.as_str(), defined.get(n)) {
            (PLAIN, _) => Strategy::default(),
            (_, Some(strategy)) => strategy.clone(),
            (_, None) => {
                let mut valid = vec![PLAIN.to_string()];
                valid.extend(file.strategy.keys().cloned());
                return Err(source.at(name, format!(
                    "strategy '{n}' is not defined; valid: {} (define others as [strategy.{n}] with llrd_decay, unfreeze, reinit_top...)",
                    valid.join(", ")
                )));
            }
        };
        named.push(NamedStrategy { name: n.clone(), strategy });
    }
    cross_with_decays(source, file, named, layers)
}

/// `grid.llrd_decay` crosses every listed strategy; a strategy that sets its own decay
/// cannot also take the axis's.
fn cross_with_decays(
    source: &Source,
    file: &SweepFile,
    named: Vec<NamedStrategy>,
    layers: usize,
) -> Result<Vec<NamedStrategy>, SpecError> {
    let Some(axis) = &file.grid.llrd_decay else { return Ok(named) };
    let decays = axis.get_ref();
    if decays.is_empty() {
        return Err(source.at(axis, "llrd_decay is empty; remove it for no decay (1.0)"));
    }
    let epochs = *file.train.epochs.get_ref();
    for &decay in decays {
        let alone = Strategy { llrd_decay: decay, ..Strategy::default() };
        if let Some(problem) = alone.problem(layers, 0, epochs) {
            return Err(source.at(axis, format!("grid.{problem}")));
        }
    }
    if let Some(twice) = listed_twice(decays) {
        return Err(source.at(axis, format!("llrd_decay {twice} is listed twice")));
    }
    let mut out = Vec::new();
    for s in named {
        if s.strategy.llrd_decay != 1.0 {
            return Err(source.at(axis, format!(
                "[strategy.{}] sets llrd_decay itself and grid.llrd_decay crosses every strategy; give the decay in one place",
                s.name
            )));
        }
        for &decay in decays {
            let name = match (s.name.as_str(), decay == 1.0) {
                (_, true) => s.name.clone(),
                (PLAIN, false) => format!("llrd-{decay}"),
                (other, false) => format!("{other}+llrd-{decay}"),
            };
            out.push(NamedStrategy {
                name,
                strategy: Strategy { llrd_decay: decay, ..s.strategy.clone() },
            });
        }
    }
    Ok(out)
}

fn from_section(
    source: &Source,
    name: &str,
    section: &Spanned<StrategySection>,
    layers: usize,
    epochs: usize,
) -> Result<Strategy, SpecError> {
    let s = section.get_ref();
    let kind = s.unfreeze.as_ref().map_or(UnfreezeKind::Fixed, |k| *k.get_ref());
    let only_for = |key: &str, value_span: &dyn Fn() -> std::ops::Range<usize>, wanted: &str| {
        Err(source.error(
            Some(value_span()),
            format!("[strategy.{name}] {key} applies to unfreeze = \"{wanted}\" only"),
        ))
    };
    if kind != UnfreezeKind::Gradual
        && let Some(every) = &s.unfreeze_every
    {
        return only_for("unfreeze_every", &|| every.span(), "gradual");
    }
    if kind != UnfreezeKind::LpFt {
        if let Some(v) = &s.head_epochs {
            return only_for("head_epochs", &|| v.span(), "lp-ft");
        }
        if let Some(v) = &s.head_lr {
            return only_for("head_lr", &|| v.span(), "lp-ft");
        }
    }
    let unfreezing = match kind {
        UnfreezeKind::Fixed => Unfreezing::Fixed,
        UnfreezeKind::Gradual => {
            Unfreezing::Gradual { every_steps: s.unfreeze_every.as_ref().map(|e| *e.get_ref()) }
        }
        UnfreezeKind::LpFt => Unfreezing::LpFt {
            head_epochs: s.head_epochs.as_ref().map_or(HEAD_EPOCHS, |e| *e.get_ref()),
            head_lr: s.head_lr.as_ref().map_or(HEAD_LR, |e| *e.get_ref()),
        },
    };
    let strategy = Strategy {
        llrd_decay: s.llrd_decay.as_ref().map_or(1.0, |d| *d.get_ref()),
        unfreezing,
        reinit_top: s.reinit_top.as_ref().map_or(0, |n| *n.get_ref()),
    };
    if strategy.reinit_top > layers {
        let span = s.reinit_top.as_ref().map(|n| n.span());
        return Err(source.error(
            span,
            format!(
                "[strategy.{name}] reinit_top = {} is more than the model's {layers} layers",
                strategy.reinit_top
            ),
        ));
    }
    if strategy.is_plain() {
        return Err(source.at(section, format!(
            "[strategy.{name}] changes nothing (it is \"plain\"); set llrd_decay, unfreeze or reinit_top"
        )));
    }
    // Checked at depth 0, where every layer trains: what fails there fails everywhere.
    if let Some(problem) = strategy.problem(layers, 0, epochs) {
        return Err(source.at(section, format!("[strategy.{name}] {problem}")));
    }
    Ok(strategy)
}
