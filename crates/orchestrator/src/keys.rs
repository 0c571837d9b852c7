//! Every identity and key rule in one place: content hashes of models, data and corpora,
//! the keys of stages and jobs, and the prefix groups that share frozen-prefix work.
//!
//! Keys are hashes of `serde_json` text. They stay stable only while that text does:
//! `serde_json::Value` objects sort their keys (the `preserve_order` feature is off
//! across the build) and structs serialise their fields in declaration order. Turning that
//! feature on, or reordering or renaming a field of a spec type, changes every key, and a
//! store would then rerun finished work. Bump `TRAINER_VERSION` when the training
//! computation itself changes, so old and new results are never mixed.

use std::io::Read;
use std::path::Path;

use serde_json::json;
use sha2::{Digest, Sha256};

use thaw_train::BackendKind;

use crate::jobspec::{Corpus, JobSpec, StageSpec};
use crate::spec::Init;

/// Counts changes to the training computation (v2: BERT's own dropout placement and
/// thaw's CPU GELU/dropout kernels; v3: thaw's LayerNorm and attention-softmax kernels,
/// which round differently from burn's, and a job from a stage checkpoint no longer drawing
/// a throwaway random model first). Part of every stage and job key.
const TRAINER_VERSION: u32 = 3;

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// A short stable hash of a JSON value (its serialisation, keys sorted: see the module note).
pub fn hash_json(value: &serde_json::Value) -> String {
    let text = serde_json::to_string(value).expect("json");
    hex(&Sha256::digest(text.as_bytes()))[..20].to_string()
}

/// The files of a model folder its identity covers, in the order they are hashed.
const MODEL_FILES: [&str; 3] = ["config.json", "tokenizer.json", "model.safetensors"];

/// Covered too when the folder has it (it names the special tokens a job pads and masks
/// with); a folder without it keeps the identity it had before this file counted.
const OPTIONAL_MODEL_FILE: &str = "tokenizer_config.json";

/// A model folder's identity from the sha256 of its config.json, tokenizer.json,
/// model.safetensors and tokenizer_config.json if any; an unreadable file is an error naming it.
pub fn model_dir_identity(dir: &Path) -> Result<String, String> {
    let mut identity = Sha256::new();
    let optional = Some(OPTIONAL_MODEL_FILE).filter(|f| dir.join(f).is_file());
    for name in MODEL_FILES.into_iter().chain(optional) {
        let path = dir.join(name);
        let hash =
            sha256_file(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        identity.update(hash.as_bytes());
    }
    Ok(hex(&identity.finalize())[..20].to_string())
}

/// A dataset's identity: its files' contents and every setting that changes the splits.
pub fn data_identity(settings: &serde_json::Value) -> String {
    hash_json(settings)
}

/// A stage's key: everything that changes its checkpoint, nothing else (no paths, no names).
pub fn stage_key(spec: &StageSpec) -> String {
    let corpus = match &spec.corpus {
        Corpus::Task => json!({"task": spec.data.identity}),
        Corpus::File { identity, .. } => json!({"file": identity}),
    };
    let mut identity = json!({
        "v": TRAINER_VERSION,
        "model": spec.model.identity,
        "corpus": corpus,
        "init": spec.init,
        "seed": spec.seed,
        "settings": spec.settings,
    });
    add_backend(&mut identity, spec.backend);
    format!("s-{}", hash_json(&identity))
}

/// Results differ between backends (kernels, reduction order), so the backend is part of
/// every key; flex, the default, adds nothing, so keys from before this rule stay valid.
fn add_backend(identity: &mut serde_json::Value, backend: BackendKind) {
    if backend != BackendKind::Flex {
        identity["backend"] = json!(backend.as_str());
    }
}

/// A job's key: everything that changes its result, the backend included, nothing else (no
/// paths, no sweep name, no order), so adding a seed or a depth to a finished sweep runs only
/// the new jobs. A rung
/// (a job cut short for successive halving) adds its epochs; full jobs keep the keys they had
/// before rungs existed.
pub fn job_key(spec: &JobSpec) -> String {
    let mut identity = json!({
            "v": TRAINER_VERSION,
            "model": spec.model.identity,
            "data": spec.data.identity,
            "train_size": spec.train_size,
            "init": spec.init,
            "stage": spec.stage_key,
            "freeze": spec.freeze,
            "seed": spec.seed,
            "settings": spec.settings,
    });
    if let Some(epochs) = spec.rung {
        identity["rung"] = json!(epochs);
    }
    if let Some(scratch) = &spec.scratch_model {
        identity["scratch_model"] = json!(scratch);
    }
    add_backend(&mut identity, spec.backend);
    format!("j-{}", hash_json(&identity))
}

/// The weights a job's frozen prefix is computed from; jobs with equal identities (and
/// data, train size, depth) share cached prefix activations.
pub fn start_identity(spec: &JobSpec) -> String {
    match (&spec.stage_key, spec.init) {
        (Some(stage), _) => format!("stage:{stage}"),
        // Scratch weights are drawn from the job's own seed: seeds must not share a prefix.
        (None, Init::Scratch) => format!("scratch:{}:seed={}", spec.model.identity, spec.seed),
        (None, Init::ScratchOwnVocab) => {
            format!("{}:seed={}", vocabulary_identity(spec), spec.seed)
        }
        (None, Init::Pretrained) => format!("pretrained:{}", spec.model.identity),
    }
}

/// What a job's text is tokenized with: the model's vocabulary, or (scratch-own-vocab) one
/// learnt from the data's training text (subsampled to the job's train size) with these
/// settings. Token caches key on it.
pub fn vocabulary_identity(spec: &JobSpec) -> String {
    match &spec.scratch_model {
        None => spec.model.identity.clone(),
        Some(scratch) => format!(
            "own-vocab:{}",
            hash_json(&json!([scratch, spec.data.identity, spec.train_size]))
        ),
    }
}

/// Jobs that can reuse one frozen-prefix computation; workers prefer to claim within a group.
pub fn prefix_group(spec: &JobSpec) -> String {
    hash_json(&json!([start_identity(spec), spec.data.identity, spec.train_size, spec.freeze]))
}
