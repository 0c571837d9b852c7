//! The plan as rows of the store: what `thaw run` records before any worker starts.

use std::path::{Path, PathBuf};

use anyhow::Result;
use thaw_analysis::Setup;
use thaw_analysis::setup::Hardware;
use thaw_store::{NewJob, NewStage, NewSweep, PlanSummary, Store};
use thaw_train::backend::cpu_model;

use crate::files::{FileHome, corpus_with_snapshot, data_with_snapshot, store_files};
use crate::jobspec::Corpus;
use crate::keys;
use crate::plan::{JobPlan, Plan};
use crate::spec::Source;

/// Records the sweep, its stages and `jobs` (the plan's, or what the adaptive search holds so
/// far; known keys keep their state and results), with the plan's backend and this
/// machine's hardware in the setup the report shows. When files travel through the store
/// (PostgreSQL), the data files and corpora are stored in it first and the specs name them.
pub async fn register(
    store: &Store,
    source: &Source,
    plan: &Plan,
    jobs: &[JobPlan],
) -> Result<PlanSummary> {
    let snapshots = if FileHome::for_store(store)?.travels() {
        Some(store_files(store, &plan_files(plan)).await?)
    } else {
        None
    };
    let backend = plan.backend.as_str().to_string();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let hardware = Hardware { cpu: cpu_model(), cores, backend: backend.clone() };
    let setup = Setup { hardware: Some(hardware), backend: Some(backend), ..plan.setup.clone() };
    let sweep = NewSweep {
        name: plan.sweep.clone(),
        spec_path: source.path.display().to_string(),
        spec_toml: source.text.clone(),
        model: plan.model.origin.clone(),
        dataset: plan.data.name.clone(),
        setup_json: setup.to_json(),
    };
    let stages: Vec<NewStage> = plan
        .stages
        .iter()
        .filter(|s| jobs.iter().any(|j| j.spec.stage_key.as_deref() == Some(s.key.as_str())))
        .map(|s| NewStage {
            key: s.key.clone(),
            name: s.spec.name.clone(),
            init: s.spec.init,
            mlm_freeze: s.mlm_freeze as i64,
            spec_json: match &snapshots {
                None => serde_json::to_string(&s.spec),
                Some(stored) => {
                    let mut spec = s.spec.clone();
                    spec.data = data_with_snapshot(&spec.data, stored);
                    spec.corpus = corpus_with_snapshot(&spec.corpus, stored);
                    serde_json::to_string(&spec)
                }
            }
            .expect("json"),
            backend: s.spec.backend.as_str().into(),
        })
        .collect();
    let jobs: Vec<NewJob> = jobs
        .iter()
        .map(|j| NewJob {
            key: j.key.clone(),
            stage_key: j.spec.stage_key.clone(),
            init: j.spec.init,
            intermediate: j.spec.intermediate.clone(),
            mlm_freeze: j.mlm_freeze.map(|k| k as i64),
            freeze: j.spec.freeze as i64,
            num_layers: j.spec.num_layers() as i64,
            seed: j.spec.seed as i64,
            lr: j.lr,
            train_size: j.spec.train_size.map(|n| n as i64),
            pooling: j.pooling.as_str().into(),
            prefix_group: keys::prefix_group(&j.spec),
            spec_json: match &snapshots {
                None => serde_json::to_string(&j.spec),
                Some(stored) => {
                    let mut spec = j.spec.clone();
                    spec.data = data_with_snapshot(&spec.data, stored);
                    serde_json::to_string(&spec)
                }
            }
            .expect("json"),
            rung: j.spec.rung.map(|n| n as i64),
            backend: j.spec.backend.as_str().into(),
            strategy: j.strategy.clone(),
        })
        .collect();
    Ok(store.register_plan(&sweep, &stages, &jobs).await?)
}

/// Every file a worker of the plan reads besides the model: the data splits and corpora.
fn plan_files(plan: &Plan) -> Vec<&Path> {
    let data = &plan.data;
    let mut files: Vec<&Path> = [Some(&data.train), data.validation.as_ref(), data.test.as_ref()]
        .into_iter()
        .flatten()
        .map(PathBuf::as_path)
        .collect();
    for stage in &plan.stages {
        if let Corpus::File { path, .. } = &stage.spec.corpus {
            files.push(path);
        }
    }
    files
}
