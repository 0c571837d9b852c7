//! The intermediate masked-LM stage: continue pretraining the encoder on plain text
//! (the task's own training text, or a domain corpus), then save it for fine-tuning.
//!
//! Masking follows BERT: 15% of the tokens (not padding, not the template's `[CLS]`/`<s>`...)
//! are chosen; of those 80% become the mask token, 10% a random token, 10% stay. Loss and perplexity are measured on a
//! held-out slice of the text, with fixed masks, before and after training: the
//! "before" number says how far the text is from the model's pretraining data.

use std::path::Path;
use std::time::Instant;

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::backend::BackendKind;
use crate::batch::token_batch;
use crate::error::{Result, TrainError};
use crate::events::{Event, Observer, Phase};
use crate::freeze::count_params;
use crate::load::{ModelFiles, Start, load_encoder, own_mlm_head};
use crate::loss::{UnreadLosses, cross_entropy, read_floats};
use crate::model::MaskedLm;
use crate::models::ModelConfig;
use crate::optim::{adamw, lr_at};
use crate::tokenize::{SpecialTokens, TextTokenizer};
use crate::weights::{RandomInit, save_tensors};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MlmSettings {
    pub steps: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub weight_decay: f64,
    pub warmup_ratio: f64,
    pub max_grad_norm: f64,
    pub mask_prob: f64,
    /// Embeddings and layers `[0, freeze)` stay fixed during this stage.
    pub freeze: usize,
    pub max_length: usize,
    /// Documents held out for the before/after loss (at most this many).
    pub heldout_docs: usize,
    /// Steps fitting the fresh MLM head on the frozen encoder before the "before" loss.
    pub head_warmup_steps: usize,
    /// A fresh head on frozen features takes larger steps than the encoder does.
    pub head_warmup_lr: f64,
}

impl Default for MlmSettings {
    fn default() -> Self {
        MlmSettings {
            steps: 200,
            batch_size: 32,
            lr: 5e-5,
            weight_decay: 0.01,
            warmup_ratio: 0.06,
            max_grad_norm: 1.0,
            mask_prob: 0.15,
            freeze: 0,
            max_length: 64,
            heldout_docs: 256,
            head_warmup_steps: 100,
            head_warmup_lr: 1e-3,
        }
    }
}

#[derive(Debug, Clone)]
pub struct MlmJob {
    pub start: Start,
    pub seed: u64,
    pub settings: MlmSettings,
    pub backend: BackendKind,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MlmOutcome {
    pub loss_before: f64,
    pub perplexity_before: f64,
    pub loss_after: f64,
    pub perplexity_after: f64,
    pub train_docs: usize,
    pub heldout_docs: usize,
    pub trainable_params: usize,
    pub train_seconds: f64,
    /// Steps fitting a fresh MLM head before the "before" loss; None when the checkpoint's
    /// own trained head was used.
    pub head_warmup_steps: Option<usize>,
    /// Mean characters of text per masked held-out token: how finely the vocabulary cuts
    /// this text. The loss per character is loss / this, comparable across tokenizations
    /// where per-token perplexity is not (a vocabulary that shreds text into characters
    /// makes each piece easy to guess).
    pub heldout_chars_per_token: f64,
}

/// One masked batch: inputs with masks applied, flat positions of the chosen tokens, their original ids.
pub struct MaskedBatch {
    pub inputs: Vec<Vec<u32>>,
    pub positions: Vec<i64>,
    pub targets: Vec<i64>,
    pub longest: usize,
}

/// BERT's 15% / 80-10-10 masking. Padding and the template's tokens are never chosen; every
/// sequence with at least one ordinary token gets at least one chosen token.
pub fn mask_batch(
    docs: &[&[u32]],
    special: &SpecialTokens,
    vocab_size: usize,
    mask_prob: f64,
    rng: &mut impl Rng,
) -> MaskedBatch {
    let longest = docs.iter().map(|d| d.len()).max().unwrap_or(1);
    let mut batch = MaskedBatch {
        inputs: Vec::with_capacity(docs.len()),
        positions: Vec::new(),
        targets: Vec::new(),
        longest,
    };
    for (b, doc) in docs.iter().enumerate() {
        let mut input = doc.to_vec();
        let candidates: Vec<usize> =
            (0..doc.len()).filter(|&i| !special.is_special(doc[i])).collect();
        let mut chosen: Vec<usize> =
            candidates.iter().copied().filter(|_| rng.random_bool(mask_prob)).collect();
        if chosen.is_empty() && !candidates.is_empty() {
            chosen.push(candidates[rng.random_range(0..candidates.len())]);
        }
        for &i in &chosen {
            batch.positions.push((b * longest + i) as i64);
            batch.targets.push(doc[i] as i64);
            let roll: f64 = rng.random();
            if roll < 0.8 {
                input[i] = special.mask;
            } else if roll < 0.9 {
                input[i] = rng.random_range(0..vocab_size as u32);
            }
        }
        batch.inputs.push(input);
    }
    batch
}

fn masked_loss(model: &MaskedLm, batch: &MaskedBatch, pad: u32, device: &Device) -> Tensor<1> {
    let all: Vec<usize> = (0..batch.inputs.len()).collect();
    let (ids, mask) = token_batch(&batch.inputs, &all, pad, device);
    let positions: Tensor<1, Int> = Tensor::from_data(
        TensorData::new(batch.positions.clone(), [batch.positions.len()]),
        device,
    );
    let targets: Tensor<1, Int> =
        Tensor::from_data(TensorData::new(batch.targets.clone(), [batch.targets.len()]), device);
    cross_entropy(model.logits_at(ids, &mask, positions), targets)
}

/// One masked batch and thaw's loss on it: what a check outside thaw (`transformers`) feeds
/// to its own masked-LM model to compare losses.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FixedMaskCheck {
    /// Token ids after masking, one row per document (unpadded).
    pub input_ids: Vec<Vec<u32>>,
    /// Masked positions as (document, token index).
    pub positions: Vec<(usize, usize)>,
    /// The original token at each masked position.
    pub targets: Vec<i64>,
    /// thaw's mean cross-entropy over the masked positions.
    pub loss: f64,
}

/// Masks `texts` as BERT does, with masks drawn from `seed`, and computes thaw's loss on them.
pub fn fixed_mask_check(
    model: &MaskedLm,
    tokenizer: &TextTokenizer,
    texts: &[&str],
    mask_prob: f64,
    seed: u64,
    device: &Device,
) -> Result<FixedMaskCheck> {
    let docs = tokenizer.encode_all(texts)?;
    let refs: Vec<&[u32]> = docs.iter().map(Vec::as_slice).collect();
    let mut rng = StdRng::seed_from_u64(seed);
    let batch = mask_batch(&refs, &tokenizer.special, tokenizer.vocab_size, mask_prob, &mut rng);
    if batch.targets.is_empty() {
        return Err(TrainError::Invalid("the check text has no maskable tokens".into()));
    }
    let loss: f32 = masked_loss(model, &batch, tokenizer.special.pad, device).into_scalar();
    let positions =
        batch.positions.iter().map(|&p| (p as usize / batch.longest, p as usize % batch.longest));
    Ok(FixedMaskCheck {
        positions: positions.collect(),
        input_ids: batch.inputs,
        targets: batch.targets,
        loss: loss as f64,
    })
}

/// Held-out documents: a fixed slice chosen by position hash, so it never depends on the seed.
fn split_heldout(docs: Vec<Vec<u32>>, max_heldout: usize) -> (Vec<Vec<u32>>, Vec<Vec<u32>>) {
    let n_heldout =
        (docs.len() / 10).clamp(1, max_heldout.max(1)).min(docs.len().saturating_sub(1)).max(1);
    let stride = (docs.len() / n_heldout).max(1);
    let (mut train, mut heldout) = (Vec::new(), Vec::new());
    for (i, d) in docs.into_iter().enumerate() {
        if i % stride == 0 && heldout.len() < n_heldout {
            heldout.push(d);
        } else {
            train.push(d);
        }
    }
    (train, heldout)
}

/// Mean masked-LM loss over the held-out documents with masks drawn from a fixed seed, and
/// the mean characters of text per masked token.
fn heldout_loss(
    model: &MaskedLm,
    heldout: &[Vec<u32>],
    tokenizer: &TextTokenizer,
    s: &MlmSettings,
    device: &Device,
) -> Result<(f64, f64)> {
    let mut rng = StdRng::seed_from_u64(0x7a5e_0f11);
    // Losses stay on the device until every chunk is done: one read back.
    let (mut losses, mut targets, mut characters) = (Vec::new(), Vec::new(), 0usize);
    for chunk in heldout.chunks(s.batch_size * 2) {
        let docs: Vec<&[u32]> = chunk.iter().map(|d| d.as_slice()).collect();
        let batch =
            mask_batch(&docs, &tokenizer.special, tokenizer.vocab_size, s.mask_prob, &mut rng);
        if batch.targets.is_empty() {
            continue;
        }
        characters +=
            batch.targets.iter().map(|&t| tokenizer.token_characters(t as u32)).sum::<usize>();
        losses.push(masked_loss(model, &batch, tokenizer.special.pad, device));
        targets.push(batch.targets.len());
    }
    let count: usize = targets.iter().sum();
    if count == 0 {
        return Err(TrainError::Invalid("the held-out MLM text has no maskable tokens".into()));
    }
    let sum: f64 =
        read_floats(losses)?.iter().zip(&targets).map(|(&l, &n)| l as f64 * n as f64).sum();
    Ok((sum / count as f64, characters as f64 / count as f64))
}

/// Trains the MLM stage on `texts` and writes the model to `out` (safetensors under the
/// family's `*ForMaskedLM` names; written to a temporary name and renamed, so a half-written
/// file is never taken for a checkpoint).
pub fn train_mlm(
    files: &ModelFiles,
    config: &ModelConfig,
    texts: &[String],
    job: &MlmJob,
    out: &Path,
    observer: &mut Observer,
) -> Result<MlmOutcome> {
    crate::backend::on_compute_threads(|| train_mlm_here(files, config, texts, job, out, observer))
}

fn train_mlm_here(
    files: &ModelFiles,
    config: &ModelConfig,
    texts: &[String],
    job: &MlmJob,
    out: &Path,
    observer: &mut Observer,
) -> Result<MlmOutcome> {
    let s = &job.settings;
    let tokenizer = TextTokenizer::from_file(&files.tokenizer, s.max_length)?;
    observer.phase(Phase::Tokenize, format!("{} documents", texts.len()));
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let docs: Vec<Vec<u32>> =
        tokenizer.encode_all(&refs)?.into_iter().filter(|d| d.len() > 2).collect();
    if docs.len() < 2 {
        return Err(TrainError::Invalid(format!(
            "the MLM text has {} usable documents; it needs at least 2",
            docs.len()
        )));
    }
    let (train_docs, heldout) = split_heldout(docs, s.heldout_docs);

    let plain = job.backend.device()?;
    plain.seed(job.seed);
    let device = plain.clone().autodiff();
    observer.phase(Phase::Load, format!("{:?} weights, MLM freeze {}", job.start, s.freeze));
    let encoder = load_encoder(files, config, &job.start, &device)?;
    let layers = encoder.num_layers();
    let head_only = encoder.freeze_bottom(layers)?;
    // A checkpoint's own trained head (BERT-base, RoBERTa, ModernBERT have one) is used as
    // it is. Without one (MiniLM, an ELECTRA discriminator) a fresh head is fitted on the
    // frozen encoder first, so that the "before" loss measures the text against the
    // pretrained encoder, not against random weights, and so that the encoder is not trained
    // through a random head.
    let own_head = own_mlm_head(files, config, &job.start, &device)?;
    let head_warmup_steps = if own_head.is_some() { None } else { Some(s.head_warmup_steps) };
    let mut model = match own_head {
        Some(mut checkpoint) => MaskedLm::new(config, head_only, &mut checkpoint, &device)?,
        None => {
            let mut fresh = RandomInit { std: config.initializer_range(), device: device.clone() };
            MaskedLm::new(config, head_only, &mut fresh, &device)?
        }
    };
    let mut rng = StdRng::seed_from_u64(job.seed);
    let mut batches = DocBatches { docs: &train_docs, order: Vec::new(), batch_size: s.batch_size };
    let warmup_started = Instant::now();
    if let Some(steps) = head_warmup_steps.filter(|&n| n > 0) {
        model = train_steps(
            model,
            steps,
            s.head_warmup_lr,
            s,
            &mut batches,
            &tokenizer,
            &mut rng,
            (&device, job.backend.loss_read_interval()),
            observer,
            "head warm-up",
        )?;
    }
    let head_warmup_seconds = warmup_started.elapsed().as_secs_f64();

    observer
        .phase(Phase::Evaluate, format!("MLM loss before, {} held-out documents", heldout.len()));
    let (loss_before, heldout_chars_per_token) =
        heldout_loss(&model.valid(), &heldout, &tokenizer, s, &plain)?;

    model.encoder = model.encoder.unfreeze().freeze_bottom(s.freeze)?;
    let trainable_params = count_params(&model).trainable;
    let started = Instant::now();
    model = train_steps(
        model,
        s.steps,
        s.lr,
        s,
        &mut batches,
        &tokenizer,
        &mut rng,
        (&device, job.backend.loss_read_interval()),
        observer,
        "MLM",
    )?;
    let train_seconds = started.elapsed().as_secs_f64() + head_warmup_seconds;

    observer.phase(Phase::Evaluate, "MLM loss after");
    // The same fixed masks as before: the same characters per token.
    let (loss_after, _) = heldout_loss(&model.valid(), &heldout, &tokenizer, s, &plain)?;
    // The head is kept too: the checkpoint is a whole `*ForMaskedLM` (`thaw export --stage`).
    save_tensors(&model.named_tensors(config), out)?;
    Ok(MlmOutcome {
        loss_before,
        perplexity_before: loss_before.exp(),
        loss_after,
        perplexity_after: loss_after.exp(),
        train_docs: train_docs.len(),
        heldout_docs: heldout.len(),
        trainable_params,
        train_seconds,
        head_warmup_steps,
        heldout_chars_per_token,
    })
}

/// Endless shuffled passes over the training documents.
struct DocBatches<'a> {
    docs: &'a [Vec<u32>],
    order: Vec<usize>,
    batch_size: usize,
}

impl DocBatches<'_> {
    fn next(&mut self, rng: &mut StdRng) -> Vec<&[u32]> {
        if self.order.len() < self.batch_size {
            let mut epoch: Vec<usize> = (0..self.docs.len()).collect();
            epoch.shuffle(rng);
            self.order.extend(epoch);
        }
        let take = self.batch_size.min(self.order.len());
        self.order.drain(..take).map(|i| self.docs[i].as_slice()).collect()
    }
}

/// `steps` AdamW steps on whatever in `model` is trainable, warmup then linear decay.
#[allow(clippy::too_many_arguments)]
fn train_steps(
    mut model: MaskedLm,
    steps: usize,
    lr: f64,
    s: &MlmSettings,
    batches: &mut DocBatches,
    tokenizer: &TextTokenizer,
    rng: &mut StdRng,
    (device, read_interval): (&Device, usize),
    observer: &mut Observer,
    what: &str,
) -> Result<MaskedLm> {
    observer.phase(Phase::Mlm, format!("{what}: {steps} steps"));
    let mut optimizer = adamw(s.weight_decay, s.max_grad_norm);
    let warmup = ((steps as f64) * s.warmup_ratio).round() as usize;
    let started = Instant::now();
    let mut unread = UnreadLosses::new(read_interval);
    for step in 0..steps {
        if observer.should_stop() {
            return Err(TrainError::Interrupted);
        }
        let docs = batches.next(rng);
        let batch = mask_batch(&docs, &tokenizer.special, tokenizer.vocab_size, s.mask_prob, rng);
        let loss = masked_loss(&model, &batch, tokenizer.special.pad, device);
        unread.push(&loss);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optimizer.step(lr_at(step, steps, warmup, lr), model, grads);
        let Some((first_step, read)) = unread.read_if_due(step + 1, step + 1 == steps)? else {
            continue;
        };
        if let Some(offset) = read.iter().position(|v| !v.is_finite()) {
            return Err(TrainError::Numerical(format!(
                "MLM loss became {} at {what} step {}; lower the MLM learning rate",
                read[offset],
                first_step + offset
            )));
        }
        observer.emit(Event::Step {
            phase: Phase::Mlm,
            epoch: 1,
            step: step + 1,
            steps,
            loss: read.last().copied().unwrap_or_default() as f64,
            examples_per_second: ((step + 1) * s.batch_size) as f64
                / started.elapsed().as_secs_f64().max(1e-9),
        });
    }
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masking_follows_bert_proportions_and_skips_special_tokens() {
        let special = SpecialTokens { pad: 0, mask: 103, template: vec![101, 102] };
        let doc: Vec<u32> =
            std::iter::once(101).chain(2000..2200).chain(std::iter::once(102)).collect();
        let docs: Vec<&[u32]> = (0..50).map(|_| doc.as_slice()).collect();
        let batch = mask_batch(&docs, &special, 30522, 0.15, &mut StdRng::seed_from_u64(3));
        let chosen = batch.targets.len() as f64;
        let total = 50.0 * 200.0;
        assert!((chosen / total - 0.15).abs() < 0.01, "chosen fraction {}", chosen / total);
        let (mut masked, mut kept) = (0.0, 0.0);
        for (&pos, &target) in batch.positions.iter().zip(&batch.targets) {
            let (b, i) = (pos as usize / batch.longest, pos as usize % batch.longest);
            assert!(i != 0 && i != 201, "special tokens are never chosen");
            let now = batch.inputs[b][i];
            if now == 103 {
                masked += 1.0;
            } else if now as i64 == target {
                kept += 1.0;
            }
        }
        assert!((masked / chosen - 0.8).abs() < 0.03, "mask share {}", masked / chosen);
        assert!((kept / chosen - 0.1).abs() < 0.03 + 0.001, "kept share {}", kept / chosen);
    }
}
