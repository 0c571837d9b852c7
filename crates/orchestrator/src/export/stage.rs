//! `thaw export --stage`: an intermediate-MLM stage as a `*ForMaskedLM` folder of its family,
//! with a masked-LM check (fixed masks and thaw's loss on them) for `scripts/check_export.py`.

use std::path::Path;

use anyhow::{Context, Result, anyhow, ensure};
use serde_json::{Map, json};
use thaw_store::{StageRow, Store, WorkKind, WorkStatus};
use thaw_train::hf_folder::{FolderContents, write_folder};
use thaw_train::load::load_masked_lm;
use thaw_train::mlm::fixed_mask_check;
use thaw_train::tokenize::TextTokenizer;
use thaw_train::{BackendKind, ModelConfig};

use super::{Exported, current_checkpoint};
use crate::files::{self, FileHome};
use crate::inputs::{model_files, stage_texts};
use crate::jobspec::StageSpec;

/// How many documents the masked-LM check of a stage export masks and scores.
const MLM_CHECK_DOCS: usize = 32;

/// Writes intermediate-MLM stage `key` of `sweep` as a `*ForMaskedLM` folder at `out`, with a
/// masked-LM check (fixed masks and thaw's loss on them) for `scripts/check_export.py`.
pub async fn export_stage(
    store: &Store,
    home: &FileHome,
    sweep: &str,
    key: &str,
    out: &Path,
) -> Result<Exported> {
    let stage: StageRow =
        store.stages(sweep).await?.into_iter().find(|s| s.key == key).ok_or_else(|| {
            anyhow!("sweep '{sweep}' has no stage {key}; `thaw plan FILE` lists them")
        })?;
    ensure!(stage.status == WorkStatus::Done, "stage {key} is {}, not done", stage.status);
    let checkpoint = current_checkpoint(store, home, key).await?;
    let mut spec: StageSpec = serde_json::from_str(
        &store.spec_json(WorkKind::Stage, key).await?.context("the stage's spec is missing")?,
    )
    .context("the stage's spec in the database")?;
    files::localise_data(store, home, &mut spec.data).await?;
    files::localise_corpus(store, home, &mut spec.corpus).await?;
    let out = out.to_path_buf();
    tokio::task::spawn_blocking(move || {
        files::locate_model(&mut spec.model)?;
        write_stage(&spec, &stage, &checkpoint, &out)
    })
    .await
    .map_err(|e| anyhow!("the export thread failed: {e}"))?
}

fn write_stage(
    spec: &StageSpec,
    stage: &StageRow,
    checkpoint: &Path,
    out: &Path,
) -> Result<Exported> {
    let (files, config) = model_files(&spec.model.dir)?;
    let device = BackendKind::Flex.device()?;
    let model = load_masked_lm(checkpoint, &config, &device)?;
    let tokenizer = TextTokenizer::from_file(&files.tokenizer, spec.settings.max_length)?;
    let texts = stage_texts(spec)?;
    let sample: Vec<&str> = texts.iter().take(MLM_CHECK_DOCS).map(String::as_str).collect();
    let check = fixed_mask_check(&model, &tokenizer, &sample, spec.settings.mask_prob, 0, &device)?;
    let class = config.architecture(true);
    let mut config_fields = Map::new();
    config_fields.insert("architectures".into(), json!([class]));
    config_fields.insert("tie_word_embeddings".into(), json!(true));
    if let ModelConfig::DebertaV2(_) = config {
        // The head's names are `cls.predictions.*`, as transformers 5's default (legacy) class has them.
        config_fields.insert("legacy".into(), json!(true));
    }
    let card = format!(
        "# Intermediate-MLM stage {key}\n\n\
         `{model}` after {steps} masked-LM steps on {corpus} ({init} init, embeddings and the bottom {freeze} layers frozen), \
         written by thaw as a `{class}` folder: `AutoModelForMaskedLM.from_pretrained(folder)` loads it, and thaw \
         reads it as a model with its own MLM head (`[model] path = \"folder\"`; no head warm-up).\n\n\
         Held-out masked-LM perplexity: {before} before, {after} after.\n\n\
         `mlm_check.json` holds {docs} documents masked with fixed masks and thaw's loss on them ({loss:.5}); \
         `scripts/check_export.py` has `transformers` compute the same loss.\n",
        key = stage.key,
        model = spec.model.origin,
        steps = spec.settings.steps,
        corpus = match &spec.corpus {
            crate::jobspec::Corpus::Task => format!("the training text of `{}`", spec.data.name),
            crate::jobspec::Corpus::File { path, .. } => format!("`{}`", path.display()),
        },
        init = spec.init,
        freeze = spec.settings.freeze,
        before = stage.perplexity_before.map_or("-".into(), |p| format!("{p:.2}")),
        after = stage.perplexity_after.map_or("-".into(), |p| format!("{p:.2}")),
        docs = sample.len(),
        loss = check.loss,
    );
    let contents = FolderContents {
        files: &files,
        config: config_fields,
        max_length: spec.settings.max_length,
        card,
        extra: vec![("mlm_check.json".into(), serde_json::to_string(&check)? + "\n")],
        extra_tensors: Vec::new(),
        pre_split_words: false,
    };
    write_folder(&model.named_tensors(&config), &contents, out)?;
    Ok(Exported {
        folder: out.to_path_buf(),
        summary: format!(
            "stage {}: {class} folder; masked-LM loss on the fixed-mask check {:.5}",
            stage.key, check.loss
        ),
    })
}
