//! The store's claim, heartbeat, requeue and finish rules, each on a real SQLite file and
//! on a real PostgreSQL server (one throwaway cluster for this binary's PostgreSQL tests, a
//! fresh database per scenario).

use std::time::Duration;

use thaw_store::*;

fn sweep(name: &str) -> NewSweep {
    NewSweep {
        name: name.into(),
        spec_path: "x.toml".into(),
        spec_toml: String::new(),
        model: "m".into(),
        dataset: "d".into(),
        setup_json: "{}".into(),
    }
}

fn job(key: &str, stage: Option<&str>) -> NewJob {
    NewJob {
        key: key.into(),
        stage_key: stage.map(String::from),
        init: Init::Pretrained,
        intermediate: if stage.is_some() { "task".into() } else { "none".into() },
        mlm_freeze: stage.map(|_| 0),
        freeze: 0,
        num_layers: 6,
        seed: 1,
        lr: 5e-5,
        train_size: None,
        pooling: "mean".into(),
        prefix_group: format!("g-{key}"),
        spec_json: "{}".into(),
        rung: None,
        backend: "flex".into(),
        strategy: "plain".into(),
    }
}

fn result() -> ResultRow {
    ResultRow {
        best_epoch: 1,
        metric: "accuracy".into(),
        val_metric: 0.8,
        test_metric: 0.78,
        val_scores: r#"{"task":"classification","accuracy":0.8,"macro_f1":0.79}"#.into(),
        test_scores: r#"{"task":"classification","accuracy":0.78,"macro_f1":0.77}"#.into(),
        val_predictions: r#"{"classes":[0,1,1,1]}"#.into(),
        test_predictions: r#"{"classes":[1,1,1,0]}"#.into(),
        val_per_example: r#"{"metric":"accuracy","parts":{"classes":{"classes":2,"pairs":[[0,0],[1,1],[1,1],[0,1]]}}}"#.into(),
        test_per_example: r#"{"metric":"accuracy","parts":{"classes":{"classes":2,"pairs":[[1,1],[1,1],[1,1],[1,0]]}}}"#.into(),
        val_loss: 0.5,
        val_accuracy: Some(0.8),
        val_macro_f1: Some(0.79),
        test_loss: 0.5,
        test_accuracy: Some(0.78),
        test_macro_f1: Some(0.77),
        train_seconds: 1.0,
        eval_seconds: 0.1,
        prefix_seconds: 0.0,
        load_seconds: 0.1,
        examples_per_second: 10.0,
        trainable_params: 10,
        total_params: 20,
        prefix_cache: "none".into(),
        backend: "flex".into(),
        device: "a test CPU".into(),
        val_correct: "1101".into(),
        test_correct: "0111".into(),
    }
}

/// Each scenario runs twice: `sqlite::NAME` on a new file, and inside
/// `every_scenario_on_postgres` on a new database of one server.
macro_rules! scenarios {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    let store = thaw_store::Store::open(&dir.path().join("t.db")).await.unwrap();
                    super::$name(store).await;
                }
            )+
        }

        #[tokio::test]
        async fn every_scenario_on_postgres() {
            let server = testing::PgServer::start().expect("a PostgreSQL server for the tests");
            $(
                let url = server.create_database(stringify!($name)).await.unwrap();
                let store = Store::connect(&Location::parse(&url).unwrap(), Some("test")).await.unwrap();
                eprintln!("postgres: {}", stringify!($name));
                $name(store).await;
            )+
        }
    };
}

scenarios!(
    jobs_wait_for_their_stage_and_a_failed_stage_fails_them,
    registering_again_keeps_finished_work_and_counts_only_new_jobs,
    requeue_returns_dead_workers_jobs_and_gives_up_after_max_attempts,
    a_requeued_jobs_late_result_is_discarded,
    release_gives_work_back_without_counting_the_attempt,
    concurrent_claims_in_one_process_never_share_a_job,
    a_stage_whose_checkpoint_is_unreadable_runs_again,
    a_worker_claims_only_jobs_planned_for_its_backend,
    heartbeats_keep_work_and_silence_requeues_it_by_the_database_clock,
    search_decisions_keep_their_order_and_are_stored_once,
    blobs_round_trip_in_chunks_and_damage_is_caught,
);

async fn jobs_wait_for_their_stage_and_a_failed_stage_fails_them(store: Store) {
    let stage = NewStage {
        key: "s1".into(),
        name: "task".into(),
        init: Init::Pretrained,
        mlm_freeze: 0,
        spec_json: "{}".into(),
        backend: "flex".into(),
    };
    store
        .register_plan(&sweep("a"), &[stage], &[job("j1", Some("s1")), job("j2", None)])
        .await
        .unwrap();
    let first = store.claim_job("a", "w1", "flex", None).await.unwrap().unwrap();
    assert_eq!(first.key, "j2", "j1 waits for its stage");
    assert!(store.claim_job("a", "w1", "flex", None).await.unwrap().is_none());
    let s = store.claim_stage("a", "w2", "flex").await.unwrap().unwrap();
    assert_eq!(s.key, "s1");
    assert!(
        store.claim_stage("a", "w3", "flex").await.unwrap().is_none(),
        "a running stage is not handed out twice"
    );
    // A worker that no longer holds the stage cannot fail it, nor the jobs waiting on it.
    store.fail_stage("s1", "w-stale", "late report").await.unwrap();
    let status =
        |rows: &[JobResultRow], key: &str| rows.iter().find(|r| r.job_key == key).unwrap().status;
    assert_eq!(status(&store.job_results("a").await.unwrap(), "j1"), WorkStatus::Pending);
    store.fail_stage("s1", "w2", "corpus unreadable").await.unwrap();
    let rows = store.job_results("a").await.unwrap();
    let j1 = rows.iter().find(|r| r.job_key == "j1").unwrap();
    assert_eq!(j1.status, WorkStatus::Failed);
    assert_eq!(j1.error.as_deref(), Some("intermediate stage failed: corpus unreadable"));
    // A job added later to the failed stage fails at registration instead of waiting forever.
    let stage = NewStage {
        key: "s1".into(),
        name: "task".into(),
        init: Init::Pretrained,
        mlm_freeze: 0,
        spec_json: "{}".into(),
        backend: "flex".into(),
    };
    store
        .register_plan(
            &sweep("a"),
            &[stage],
            &[job("j1", Some("s1")), job("j2", None), job("j3", Some("s1"))],
        )
        .await
        .unwrap();
    let rows = store.job_results("a").await.unwrap();
    let j3 = rows.iter().find(|r| r.job_key == "j3").unwrap();
    assert_eq!(
        (j3.status, j3.error.as_deref()),
        (WorkStatus::Failed, Some("intermediate stage failed: corpus unreadable"))
    );
    // --retry-failed puts the stage and its jobs back.
    store.retry_failed("a").await.unwrap();
    let rows = store.job_results("a").await.unwrap();
    assert_eq!(
        (status(&rows, "j1"), status(&rows, "j3")),
        (WorkStatus::Pending, WorkStatus::Pending)
    );
    assert_eq!(store.claim_stage("a", "w4", "flex").await.unwrap().unwrap().key, "s1");
}

async fn registering_again_keeps_finished_work_and_counts_only_new_jobs(store: Store) {
    let s =
        store.register_plan(&sweep("a"), &[], &[job("j1", None), job("j2", None)]).await.unwrap();
    assert_eq!((s.total_jobs, s.new_jobs), (2, 2));
    let c = store.claim_job("a", "w", "flex", None).await.unwrap().unwrap();
    store.finish_job(&c.key, "w", &[], &result()).await.unwrap();
    let s = store
        .register_plan(&sweep("a"), &[], &[job("j1", None), job("j2", None), job("j3", None)])
        .await
        .unwrap();
    assert_eq!((s.total_jobs, s.new_jobs), (3, 1));
    let p = store.progress("a").await.unwrap();
    assert_eq!((p.jobs.done, p.jobs.pending), (1, 2));
    // Dropping a job from the plan keeps its row but not its place in the sweep.
    store.register_plan(&sweep("a"), &[], &[job("j2", None)]).await.unwrap();
    assert_eq!(store.job_results("a").await.unwrap().len(), 1);
}

async fn requeue_returns_dead_workers_jobs_and_gives_up_after_max_attempts(store: Store) {
    store.register_plan(&sweep("a"), &[], &[job("j1", None)]).await.unwrap();
    for attempt in 1..=3 {
        let c = store.claim_job("a", "dead:1", "flex", None).await.unwrap().unwrap();
        assert_eq!(c.key, "j1");
        let back =
            store.requeue_abandoned(Duration::from_secs(3600), 3, |w| w == "dead:1").await.unwrap();
        assert_eq!(back, vec!["j1".to_string()], "attempt {attempt}");
    }
    let row = store.job_results("a").await.unwrap().remove(0);
    assert_eq!(row.status, WorkStatus::Failed);
    assert!(row.error.unwrap().contains("abandoned 3 times"));
}

async fn a_requeued_jobs_late_result_is_discarded(store: Store) {
    store.register_plan(&sweep("a"), &[], &[job("j1", None)]).await.unwrap();
    store.claim_job("a", "slow", "flex", None).await.unwrap().unwrap();
    store.requeue_abandoned(Duration::from_secs(3600), 3, |w| w == "slow").await.unwrap();
    store.claim_job("a", "fresh", "flex", None).await.unwrap().unwrap();
    let late = store.finish_job("j1", "slow", &[], &result()).await;
    assert!(matches!(late, Err(StoreError::Conflict(_))), "{late:?}");
    assert!(!store.heartbeat(WorkKind::Job, "j1", "slow").await.unwrap());
    store.finish_job("j1", "fresh", &[], &result()).await.unwrap();
    // The finished row reads back with its per-example record, for resampled intervals.
    let row = store.job_results("a").await.unwrap().remove(0);
    assert_eq!(row.test_per_example, Some(result().test_per_example));
    assert_eq!(row.val_metric, Some(0.8));
}

async fn release_gives_work_back_without_counting_the_attempt(store: Store) {
    store.register_plan(&sweep("a"), &[], &[job("j1", None), job("j2", None)]).await.unwrap();
    let c = store.claim_job("a", "w", "flex", Some("g-j2")).await.unwrap().unwrap();
    assert_eq!(c.key, "j2", "the preferred prefix group goes first");
    store.release(WorkKind::Job, "j2", "w").await.unwrap();
    let rows = store.job_results("a").await.unwrap();
    assert!(rows.iter().all(|r| r.status == WorkStatus::Pending && r.attempts == 0));
}

async fn concurrent_claims_in_one_process_never_share_a_job(store: Store) {
    let jobs: Vec<NewJob> = (0..40).map(|i| job(&format!("j{i}"), None)).collect();
    store.register_plan(&sweep("a"), &[], &jobs).await.unwrap();
    let mut handles = Vec::new();
    for w in 0..8 {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(c) = store.claim_job("a", &format!("w{w}"), "flex", None).await.unwrap()
            {
                got.push(c.key);
            }
            got
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.unwrap());
    }
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 40);
}

async fn a_stage_whose_checkpoint_is_unreadable_runs_again(store: Store) {
    let stage = NewStage {
        key: "s1".into(),
        name: "task".into(),
        init: Init::Pretrained,
        mlm_freeze: 0,
        spec_json: "{}".into(),
        backend: "flex".into(),
    };
    store.register_plan(&sweep("a"), &[stage], &[job("j1", Some("s1"))]).await.unwrap();
    assert!(!store.redo_stage("s1").await.unwrap(), "only a done stage is redone");
    store.claim_stage("a", "w", "flex").await.unwrap().unwrap();
    let outcome = StageOutcomeRow {
        checkpoint_path: "/old/s1.bpk".into(),
        checkpoint_sha256: None,
        loss_before: 2.0,
        perplexity_before: 7.4,
        loss_after: 1.5,
        perplexity_after: 4.5,
        train_docs: 10,
        heldout_docs: 2,
        trainable_params: 5,
        train_seconds: 1.0,
        backend: "flex".into(),
        head_warmup_steps: None,
        heldout_chars_per_token: 4.0,
    };
    store.finish_stage("s1", "w", &outcome).await.unwrap();
    assert_eq!(
        store.stage_checkpoint("s1").await.unwrap(),
        Some(StageCheckpoint { path: "/old/s1.bpk".into(), sha256: None })
    );
    assert!(store.redo_stage("s1").await.unwrap());
    assert_eq!(store.stage_checkpoint("s1").await.unwrap(), None);
    let stage = store.stages("a").await.unwrap().remove(0);
    assert_eq!(
        (stage.status, stage.attempts, stage.checkpoint_path),
        (WorkStatus::Pending, 0, None)
    );
    assert_eq!(
        store.claim_stage("a", "w2", "flex").await.unwrap().unwrap().key,
        "s1",
        "claimed again before its jobs"
    );
}

async fn a_worker_claims_only_jobs_planned_for_its_backend(store: Store) {
    let on = |key: &str, backend: &str| NewJob { backend: backend.into(), ..job(key, None) };
    store.register_plan(&sweep("a"), &[], &[on("gpu", "wgpu"), on("cpu", "flex")]).await.unwrap();
    assert_eq!(store.claim_job("a", "w", "flex", None).await.unwrap().unwrap().key, "cpu");
    assert!(store.claim_job("a", "w", "flex", None).await.unwrap().is_none());
    assert_eq!(store.pending_by_backend("a").await.unwrap(), vec![("wgpu".to_string(), 1)]);
    assert_eq!(store.claim_job("a", "g", "wgpu", None).await.unwrap().unwrap().key, "gpu");
}

/// A Slurm array or a shell loop starts many workers on a new database at once: each opens
/// it and brings the schema up to date, and none may fail because another got there first.
#[test]
fn many_processes_opening_a_new_database_at_once_all_succeed() {
    for round in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(format!("new-{round}.db"));
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
        let openers: Vec<_> = (0..8)
            .map(|_| {
                let (path, barrier) = (path.clone(), barrier.clone());
                // A runtime per thread, as separate processes would have.
                std::thread::spawn(move || {
                    let runtime =
                        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                    barrier.wait();
                    runtime.block_on(Store::open(&path)).map(drop).map_err(|e| e.to_string())
                })
            })
            .collect();
        for opener in openers {
            opener.join().unwrap().expect("every opener succeeds");
        }
    }
}

async fn heartbeats_keep_work_and_silence_requeues_it_by_the_database_clock(store: Store) {
    store.register_plan(&sweep("a"), &[], &[job("j1", None)]).await.unwrap();
    store.claim_job("a", "w", "flex", None).await.unwrap().unwrap();
    let never_dead = |_: &str| false;
    assert!(
        store.requeue_abandoned(Duration::from_secs(60), 3, never_dead).await.unwrap().is_empty()
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(store.heartbeat(WorkKind::Job, "j1", "w").await.unwrap());
    let running = store.progress("a").await.unwrap().running.remove(0);
    let (age, held) = (running.heartbeat_age.unwrap(), running.running_for.unwrap());
    assert!((0.0..1.0).contains(&age) && held >= 1.0, "heartbeat {age}s ago, running {held}s");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let back = store.requeue_abandoned(Duration::from_secs(1), 3, never_dead).await.unwrap();
    assert_eq!(back, vec!["j1".to_string()], "a heartbeat over a second old is stale");
    let row = store.job_results("a").await.unwrap().remove(0);
    assert_eq!(row.status, WorkStatus::Pending);
    assert!(row.error.unwrap().contains("requeued: worker w"));
}

async fn search_decisions_keep_their_order_and_are_stored_once(store: Store) {
    store.register_plan(&sweep("a"), &[], &[job("j1", None)]).await.unwrap();
    let decision = |id: &str, action: SearchAction| NewDecision {
        decision: id.into(),
        action,
        cell: "{}".into(),
        lr: Some(1e-4),
        seed: None,
        reason: format!("because {id}"),
    };
    let first = [decision("z", SearchAction::Prune), decision("a", SearchAction::Promote)];
    assert_eq!(store.record_decisions("a", &first).await.unwrap(), vec![0, 1]);
    let again = [decision("a", SearchAction::Promote), decision("m", SearchAction::Stop)];
    assert_eq!(store.record_decisions("a", &again).await.unwrap(), vec![1], "a is stored once");
    let stored: Vec<(i64, String)> =
        store.decisions("a").await.unwrap().into_iter().map(|d| (d.round, d.reason)).collect();
    assert_eq!(
        stored,
        vec![(1, "because z".into()), (1, "because a".into()), (2, "because m".into())]
    );
}

async fn blobs_round_trip_in_chunks_and_damage_is_caught(store: Store) {
    let dir = tempfile::tempdir().unwrap();
    let original = dir.path().join("weights.bin");
    // Two chunks and a bit: chunk boundaries are crossed.
    let bytes: Vec<u8> = (0..2 * BLOB_CHUNK_BYTES + 1234).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&original, &bytes).unwrap();
    let sha = store.put_blob_file(&original).await.unwrap();
    assert_eq!(store.put_blob_file(&original).await.unwrap(), sha, "stored once, same hash");
    let copy = store.cached_blob(&sha, &dir.path().join("cache"), "weights.bin").await.unwrap();
    assert!(copy.ends_with(format!("{sha}/weights.bin")));
    assert_eq!(std::fs::read(&copy).unwrap(), bytes);
    let missing = store.read_blob_to_file(&"0".repeat(64), &dir.path().join("x")).await;
    assert!(missing.unwrap_err().to_string().contains("holds no file with sha256"));
    store.damage_blob_for_tests(&sha).await.unwrap();
    let damaged = dir.path().join("damaged.bin");
    let err = store.read_blob_to_file(&sha, &damaged).await.unwrap_err().to_string();
    assert!(err.contains("does not match its hash"), "{err}");
    assert!(!damaged.exists(), "nothing half-written is left");
}

/// A Slurm array starts its workers at once: on a new PostgreSQL database, every opener
/// brings the schema up or finds it there, none fails.
#[tokio::test]
async fn many_workers_opening_a_new_postgres_database_at_once_all_succeed() {
    let server = testing::PgServer::start().unwrap();
    let url = server.create_database("fresh").await.unwrap();
    let location = Location::parse(&url).unwrap();
    let openers: Vec<_> = (0..8)
        .map(|i| {
            let location = location.clone();
            tokio::spawn(async move {
                Store::connect(&location, Some(&format!("o{i}"))).await.map(drop)
            })
        })
        .collect();
    for opener in openers {
        opener.await.unwrap().expect("every opener succeeds");
    }
}

/// 16 workers, each with its own connection pool as a separate process would have, claim,
/// heartbeat and finish 200 short jobs on one PostgreSQL server: every job is done exactly
/// once, no call fails, and no worker holds more than its pool's bound of connections.
#[tokio::test]
async fn sixteen_postgres_workers_share_two_hundred_jobs_exactly_once() {
    let server = testing::PgServer::start().unwrap();
    let url = server.create_database("busy").await.unwrap();
    let location = Location::parse(&url).unwrap();
    let admin = Store::connect(&location, Some("observer")).await.unwrap();
    let jobs: Vec<NewJob> = (0..200).map(|i| job(&format!("j{i:03}"), None)).collect();
    admin.register_plan(&sweep("busy"), &[], &jobs).await.unwrap();
    let mut workers = Vec::new();
    for w in 0..16 {
        let location = location.clone();
        workers.push(tokio::spawn(async move {
            let name = format!("worker-{w:02}");
            let store = Store::connect(&location, Some(&name)).await?;
            let mut finished = Vec::new();
            while let Some(claimed) = store.claim_job("busy", &name, "flex", None).await? {
                tokio::time::sleep(Duration::from_millis(5)).await;
                assert!(store.heartbeat(WorkKind::Job, &claimed.key, &name).await?);
                store.finish_job(&claimed.key, &name, &[], &result()).await?;
                finished.push(claimed.key);
            }
            Ok::<_, StoreError>(finished)
        }));
    }
    // Sample the server's connections while the workers run.
    let mut most_per_worker = 0;
    let mut samples = 0;
    while workers.iter().any(|w| !w.is_finished()) {
        for (client, n) in admin.connections_by_client().await.unwrap() {
            if client.starts_with("worker-") {
                most_per_worker = most_per_worker.max(n);
            }
        }
        samples += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.unwrap().expect("no worker saw a database error"));
    }
    let total = all.len();
    all.sort();
    all.dedup();
    assert_eq!((total, all.len()), (200, 200), "every job finished once");
    let rows = admin.job_results("busy").await.unwrap();
    assert!(rows.iter().all(|r| r.status == WorkStatus::Done && r.attempts == 1));
    eprintln!(
        "16 workers, 200 jobs: at most {most_per_worker} connections per worker over {samples} samples (bound {POSTGRES_CONNECTIONS})"
    );
    assert!(most_per_worker >= 1 && most_per_worker <= POSTGRES_CONNECTIONS as i64);
}

/// A server that is not there is one clear error naming it, after the connect timeout, and
/// a password in the URL is never part of it.
#[tokio::test]
async fn an_unreachable_server_is_one_clear_error_without_the_password() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("postgres://thaw:hunter2@127.0.0.1:{port}/sweeps");
    let err =
        Store::connect(&Location::parse(&url).unwrap(), None).await.err().unwrap().to_string();
    assert!(err.contains(&format!("PostgreSQL at 127.0.0.1:{port} database 'sweeps'")), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}

/// `thaw serve`'s store: reads what a writer registered, refuses every write, and on SQLite
/// leaves the file as it was.
async fn a_read_only_store_reads_and_refuses_writes(writer: Store) {
    writer.register_plan(&sweep("s"), &[], &[job("j1", None)]).await.unwrap();
    let reader = Store::open_read_only(writer.location(), Some("reader")).await.unwrap();
    assert_eq!(reader.sweeps().await.unwrap().len(), 1);
    assert_eq!(reader.job_results("s").await.unwrap().len(), 1);
    assert!(reader.job_claim("j1").await.unwrap().is_some());
    assert!(reader.clock().await.unwrap() > 1.7e9);
    assert_eq!(reader.done_pace("s").await.unwrap(), DonePace::default());
    assert_eq!(reader.work_span("s").await.unwrap(), (None, None));
    let claimed = reader.claim_job("s", "w", "flex", None).await;
    assert!(claimed.is_err(), "a read-only store claimed a job: {claimed:?}");
    let registered = reader.register_plan(&sweep("t"), &[], &[job("j2", None)]).await;
    assert!(registered.is_err(), "a read-only store registered a sweep");
    assert_eq!(writer.sweeps().await.unwrap().len(), 1);
    assert_eq!(writer.claim_job("s", "w", "flex", None).await.unwrap().unwrap().key, "j1");
    writer.finish_job("j1", "w", &[], &result()).await.unwrap();
    let pace = reader.done_pace("s").await.unwrap();
    assert!(pace.full.1 == 1 && pace.full.0 >= 0.0 && pace.rungs == (0.0, 0), "{pace:?}");
    let (started, finished) = reader.work_span("s").await.unwrap();
    assert!(started.is_some() && finished >= started, "{started:?} {finished:?}");
}

#[tokio::test]
async fn a_read_only_sqlite_store_reads_refuses_writes_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let writer = Store::open(&path).await.unwrap();
    a_read_only_store_reads_and_refuses_writes(writer.clone()).await;

    let missing = Location::Sqlite(dir.path().join("missing.db"));
    let err = Store::open_read_only(&missing, None).await.err().unwrap().to_string();
    assert!(err.contains("missing.db") && err.contains("no such file"), "{err}");
    assert!(!dir.path().join("missing.db").exists());

    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    let err = Store::open_read_only(&Location::Sqlite(empty.clone()), None).await.err().unwrap();
    assert!(err.to_string().contains("holds no thaw sweep"), "{err}");
    assert_eq!(std::fs::metadata(&empty).unwrap().len(), 0);
}

#[tokio::test]
async fn a_read_only_postgres_store_reads_and_refuses_writes() {
    let server = testing::PgServer::start().unwrap();
    let url = server.create_database("readonly").await.unwrap();
    let writer = Store::connect(&Location::parse(&url).unwrap(), Some("writer")).await.unwrap();
    a_read_only_store_reads_and_refuses_writes(writer).await;
}
