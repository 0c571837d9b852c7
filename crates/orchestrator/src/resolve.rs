//! From what the sweep file says to what exists: the model folder (hub id or path), the
//! data files (built-in or paths), the corpora; each with a content hash for job keys.

use std::path::{Path, PathBuf};

use thaw_train::ModelConfig;
use thaw_train::data::Task;
use toml::Spanned;

use crate::jobspec::{Corpus, DataSpec, ModelSpec};
use crate::keys::{data_identity, model_dir_identity, sha256_file};
use crate::spec::{Source, SpecError, SweepFile};

fn existing_file(
    source: &Source,
    written: &Spanned<String>,
    what: &str,
) -> Result<PathBuf, SpecError> {
    let path = source.resolve(written.get_ref());
    if !path.is_file() {
        return Err(source.at(written, format!(
            "{what} '{}' not found (resolved to {}; relative paths are relative to the sweep file's folder)",
            written.get_ref(),
            path.display()
        )));
    }
    Ok(path)
}

fn hash_or_error(source: &Source, path: &Path) -> Result<String, SpecError> {
    sha256_file(path)
        .map_err(|e| source.error(None, format!("cannot read {}: {e}", path.display())))
}

pub fn resolve_model(
    source: &Source,
    file: &SweepFile,
) -> Result<(ModelSpec, ModelConfig), SpecError> {
    let m = &file.model;
    let resolved = match (&m.hub, &m.path) {
        (Some(hub), None) => thaw_assets::resolve_hub_model(hub.get_ref(), m.revision.as_deref())
            .map_err(|e| {
            source.at(hub, format!("cannot get model '{}': {e:#}", hub.get_ref()))
        })?,
        (None, Some(path)) => {
            if m.revision.is_some() {
                return Err(source.at(
                    path,
                    "model.revision applies to hub models only; remove it or use model.hub",
                ));
            }
            thaw_assets::resolve_local_model(&source.resolve(path.get_ref()))
                .map_err(|e| source.at(path, format!("{e:#}")))?
        }
        (Some(hub), Some(_)) => {
            return Err(source.at(hub, "give model.hub or model.path, not both"));
        }
        (None, None) => {
            return Err(source.error(None, "[model] needs hub = \"org/name\" (a Hugging Face id) or path = \"folder with config.json\""));
        }
    };
    let config = ModelConfig::from_file(&resolved.dir.join("config.json"))
        .map_err(|e| source.error(None, e.to_string()))?;
    let identity =
        model_dir_identity(&resolved.dir).map_err(|message| source.error(None, message))?;
    let model = ModelSpec {
        dir: resolved.dir,
        origin: resolved.origin,
        identity,
        num_layers: config.num_layers(),
    };
    Ok((model, config))
}

pub fn resolve_data(
    source: &Source,
    file: &SweepFile,
    max_positions: usize,
) -> Result<DataSpec, SpecError> {
    let d = &file.data;
    let (name, train, validation, test) = match &d.builtin {
        Some(builtin) => {
            if let Some(extra) = d.train.as_ref().or(d.validation.as_ref()).or(d.test.as_ref()) {
                return Err(source.at(
                    extra,
                    "data.builtin names the files already; remove train/validation/test or builtin",
                ));
            }
            let dir = thaw_assets::dataset_dir(builtin.get_ref())
                .map_err(|e| source.at(builtin, format!("{e:#}")))?;
            (
                builtin.get_ref().clone(),
                dir.join("train.jsonl"),
                Some(dir.join("validation.jsonl")),
                Some(dir.join("test.jsonl")),
            )
        }
        None => {
            let Some(train) = &d.train else {
                return Err(source.error(None, "[data] needs train = \"path\" (JSONL, CSV or TSV) or builtin = \"rotten_tomatoes\" | \"bbc_news\""));
            };
            let train_path = existing_file(source, train, "data.train")?;
            let validation = d
                .validation
                .as_ref()
                .map(|v| existing_file(source, v, "data.validation"))
                .transpose()?;
            let test =
                d.test.as_ref().map(|t| existing_file(source, t, "data.test")).transpose()?;
            (train.get_ref().clone(), train_path, validation, test)
        }
    };
    let max_length = *d.max_length.get_ref();
    if !(8..=max_positions).contains(&max_length) {
        return Err(source.at(&d.max_length, format!("max_length {max_length} must be between 8 and the model's {max_positions} positions")));
    }
    let holdout = *d.holdout_fraction.get_ref();
    if !(holdout > 0.0 && holdout < 0.5) {
        return Err(source
            .at(&d.holdout_fraction, format!("holdout_fraction {holdout} must be in (0, 0.5)")));
    }
    for cap in [&d.max_validation, &d.max_test].into_iter().flatten() {
        if *cap.get_ref() < 2 {
            return Err(source.at(cap, "must be at least 2"));
        }
    }
    let mut hashes = Vec::new();
    for path in std::iter::once(&train).chain(validation.iter()).chain(test.iter()) {
        hashes.push(hash_or_error(source, path)?);
    }
    let metric = match &d.metric {
        None => d.task.default_metric(),
        Some(m) if m.get_ref().task() == d.task => *m.get_ref(),
        Some(m) => {
            let names: Vec<&str> = d.task.metrics().iter().map(|m| m.name()).collect();
            return Err(source.at(
                m,
                format!(
                    "metric '{}' does not score a {} task; use one of: {}",
                    m.get_ref(),
                    d.task,
                    names.join(", ")
                ),
            ));
        }
    };
    let mut identity_fields = serde_json::json!({
        "files": hashes,
        "has_validation": validation.is_some(),
        "has_test": test.is_some(),
        "text_field": d.text_field,
        "label_field": d.label_field,
        "holdout_fraction": holdout,
        "max_validation": d.max_validation.as_ref().map(|v| *v.get_ref()),
        "max_test": d.max_test.as_ref().map(|v| *v.get_ref()),
        "subsample_seed": d.subsample_seed,
        "max_length": max_length,
    });
    // Only what differs from a classification of one text, so earlier sweeps keep their keys.
    if d.task != Task::Classification || d.text_pair_field.is_some() {
        identity_fields["task"] = serde_json::json!({
            "task": d.task,
            "text_pair_field": d.text_pair_field,
            "tokens_field": d.tokens_field,
            "tags_field": d.tags_field,
        });
        if d.task == Task::MultiLabel {
            identity_fields["task"]["labels_field"] = d.labels_field.clone().into();
        }
    }
    let identity = data_identity(&identity_fields);
    Ok(DataSpec {
        name,
        train,
        validation,
        test,
        task: d.task,
        metric,
        text_field: d.text_field.clone(),
        text_pair_field: d.text_pair_field.clone(),
        label_field: d.label_field.clone(),
        tokens_field: d.tokens_field.clone(),
        tags_field: d.tags_field.clone(),
        labels_field: d.labels_field.clone(),
        holdout_fraction: holdout,
        max_validation: d.max_validation.as_ref().map(|v| *v.get_ref()),
        max_test: d.max_test.as_ref().map(|v| *v.get_ref()),
        subsample_seed: d.subsample_seed,
        max_length,
        identity,
        snapshot: None,
    })
}

/// `builtin:DATASET/FILE` names a file of the asset route; anything else is a path.
pub fn resolve_corpus(source: &Source, written: &Spanned<String>) -> Result<Corpus, SpecError> {
    let path = match written.get_ref().strip_prefix("builtin:") {
        Some(rest) => {
            let (dataset, name) = rest.split_once('/').ok_or_else(|| {
                source.at(written, "a built-in corpus is written builtin:DATASET/FILE, e.g. builtin:rotten_tomatoes/plots.txt")
            })?;
            let dir = thaw_assets::dataset_dir(dataset)
                .map_err(|e| source.at(written, format!("{e:#}")))?;
            let path = dir.join(name);
            if !path.is_file() {
                return Err(source
                    .at(written, format!("the built-in dataset {dataset} has no file {name}")));
            }
            path
        }
        None => existing_file(source, written, "corpus")?,
    };
    let identity = hash_or_error(source, &path)?;
    Ok(Corpus::File { path, identity, snapshot: None })
}
