//! Where a worker's files live. Beside a SQLite database, every worker reads the same folder
//! (one machine, or a shared file system). With a PostgreSQL store a worker shares nothing
//! with the machine that registered the sweep but the database URL: the sweep's data files
//! travel as snapshots stored at registration (keyed by content, so a file changed later on
//! the submitting machine cannot change a running sweep), stage checkpoints as blobs stored
//! when the stage finishes, and the model comes from the hub by its id; each lands once in
//! this machine's cache.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use thaw_store::{Location, Store};
use thaw_train::load::CHECKPOINT_EXTENSION;

use crate::jobspec::{Corpus, DataSnapshot, DataSpec, ModelSpec};
use crate::keys::model_dir_identity;

#[derive(Debug, Clone, PartialEq)]
pub enum FileHome {
    /// `results/NAME.db` keeps `results/NAME.stages/`, `results/NAME.weights/`.
    BesideDatabase(PathBuf),
    /// This machine's folder for a PostgreSQL store's files (stages, weights, snapshots).
    ThisMachine(PathBuf),
}

impl FileHome {
    pub fn for_store(store: &Store) -> Result<FileHome> {
        Ok(match store.location() {
            Location::Sqlite(db) => FileHome::BesideDatabase(std::path::absolute(db)?),
            Location::Postgres(_) => FileHome::ThisMachine(thaw_assets::cache_dir().join("store")),
        })
    }

    /// Whether files go through the database to reach other workers.
    pub fn travels(&self) -> bool {
        matches!(self, FileHome::ThisMachine(_))
    }

    /// Where a stage's checkpoint is written.
    pub fn checkpoint(&self, stage_key: &str) -> PathBuf {
        self.file("stages", stage_key)
    }

    /// Where a job's fine-tuned weights are kept (`[train] keep`).
    pub fn weights(&self, job_key: &str) -> PathBuf {
        self.file("weights", job_key)
    }

    fn file(&self, folder: &str, key: &str) -> PathBuf {
        let name = format!("{key}.{CHECKPOINT_EXTENSION}");
        match self {
            // `results/NAME.db` -> `results/NAME.<folder>/<key>.safetensors`.
            FileHome::BesideDatabase(db) => {
                let stem = db.file_stem().and_then(|s| s.to_str()).unwrap_or("thaw");
                db.with_file_name(format!("{stem}.{folder}")).join(name)
            }
            FileHome::ThisMachine(dir) => dir.join(folder).join(name),
        }
    }

    fn snapshots(&self) -> Option<&Path> {
        match self {
            FileHome::BesideDatabase(_) => None,
            FileHome::ThisMachine(dir) => Some(dir),
        }
    }
}

/// At registration on a store whose files travel: stores each data file and corpus once and
/// returns their hashes by path, for [`data_with_snapshot`] and [`corpus_with_snapshot`].
pub async fn store_files(store: &Store, paths: &[&Path]) -> Result<HashMap<PathBuf, String>> {
    let mut stored = HashMap::new();
    for path in paths {
        if !stored.contains_key(*path) {
            let sha = store
                .put_blob_file(path)
                .await
                .with_context(|| format!("storing {} in the database", path.display()))?;
            stored.insert(path.to_path_buf(), sha);
        }
    }
    Ok(stored)
}

/// The data spec with its files' snapshot hashes recorded.
pub fn data_with_snapshot(data: &DataSpec, stored: &HashMap<PathBuf, String>) -> DataSpec {
    let sha = |p: &Path| stored.get(p).cloned().expect("every data file was stored");
    DataSpec {
        snapshot: Some(DataSnapshot {
            train: sha(&data.train),
            validation: data.validation.as_deref().map(sha),
            test: data.test.as_deref().map(sha),
        }),
        ..data.clone()
    }
}

pub fn corpus_with_snapshot(corpus: &Corpus, stored: &HashMap<PathBuf, String>) -> Corpus {
    match corpus {
        Corpus::Task => Corpus::Task,
        Corpus::File { path, identity, .. } => Corpus::File {
            path: path.clone(),
            identity: identity.clone(),
            snapshot: stored.get(path).cloned(),
        },
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().and_then(|n| n.to_str()).unwrap_or("data").to_string()
}

/// On a worker: the spec's data files as local copies of their snapshots (a no-op for
/// specs without one, i.e. on SQLite).
pub async fn localise_data(store: &Store, home: &FileHome, data: &mut DataSpec) -> Result<()> {
    let (Some(snapshot), Some(dir)) = (data.snapshot.clone(), home.snapshots()) else {
        return Ok(());
    };
    let dir = dir.join("data");
    data.train = store.cached_blob(&snapshot.train, &dir, &file_name(&data.train)).await?;
    if let (Some(sha), Some(path)) = (&snapshot.validation, &data.validation) {
        data.validation = Some(store.cached_blob(sha, &dir, &file_name(path)).await?);
    }
    if let (Some(sha), Some(path)) = (&snapshot.test, &data.test) {
        data.test = Some(store.cached_blob(sha, &dir, &file_name(path)).await?);
    }
    Ok(())
}

pub async fn localise_corpus(store: &Store, home: &FileHome, corpus: &mut Corpus) -> Result<()> {
    if let (Corpus::File { path, snapshot: Some(sha), .. }, Some(dir)) =
        (&mut *corpus, home.snapshots())
    {
        *path = store.cached_blob(sha, &dir.join("data"), &file_name(path)).await?;
    }
    Ok(())
}

/// A stage's checkpoint as a local file: where its worker wrote it, when files are shared or
/// this machine's worker wrote it; else (files travelling) its copy from the database.
pub async fn stage_checkpoint_file(
    store: &Store,
    home: &FileHome,
    stage_key: &str,
) -> Result<Option<PathBuf>> {
    let Some(checkpoint) = store.stage_checkpoint(stage_key).await? else { return Ok(None) };
    let written = PathBuf::from(&checkpoint.path);
    match (checkpoint.sha256, home.snapshots()) {
        (Some(sha), Some(dir)) if !(written.starts_with(dir) && written.is_file()) => {
            let name = format!("{stage_key}.{CHECKPOINT_EXTENSION}");
            Ok(Some(store.cached_blob(&sha, &dir.join("stages-in"), &name).await?))
        }
        _ => Ok(Some(written)),
    }
}

/// The model's folder on this machine: the registered one when it is here, else the same
/// hub id and revision through this machine's caches (the asset route, or the hub),
/// checked to be the same files.
pub fn locate_model(model: &mut ModelSpec) -> Result<()> {
    if model.dir.join("config.json").is_file() {
        return Ok(());
    }
    let Some((id, revision)) =
        model.origin.rsplit_once('@').filter(|_| !model.origin.starts_with('/'))
    else {
        bail!(
            "the model folder {} is not on this machine; workers elsewhere get a model by its hub id \
             ([model] hub = \"org/name\"), or need the folder at the same path",
            model.dir.display()
        );
    };
    let resolved = thaw_assets::resolve_hub_model(id, Some(revision))?;
    ensure!(
        model_dir_identity(&resolved.dir).map_err(anyhow::Error::msg)? == model.identity,
        "{id}@{revision} on this machine ({}) is not the model the sweep was registered with; \
         pin [model] revision to a commit so every machine gets the same files",
        resolved.dir.display()
    );
    model.dir = resolved.dir;
    Ok(())
}
