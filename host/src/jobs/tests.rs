//! The job runner against a fake pipeline that plans N tiles: progress, resume from the stored
//! tiles, dismissal between tiles, failures, the sweep, and interactive requests going first.

use std::time::Instant;

use super::*;
use crate::masks::{BBox, Mask};

/// A mask that names its tile.
fn tile_mask(index: usize) -> Mask {
    Mask {
        id: index as u32 + 1,
        label: index as u32 + 1,
        score: 0.5,
        stability: 1.0,
        area: 4,
        bbox: BBox {
            x: index as u32 * 10,
            y: 0,
            width: 2,
            height: 2,
        },
        runs: vec![0, 4],
    }
}

/// Plans `tiles` tiles of `tile_time` each; records which tiles it computed.
#[derive(Clone)]
struct FakePlanner {
    tiles: usize,
    tile_time: Duration,
    computed: Arc<Mutex<Vec<usize>>>,
    fail_at: Option<usize>,
}

struct FakeWork(FakePlanner);

impl Planner for FakePlanner {
    fn plan(
        &self,
        spec: JobSpec,
        _input: Option<PathBuf>,
        _deadline: Deadline,
    ) -> BoxFuture<'static, Result<Box<dyn JobWork>, AppError>> {
        let planner = self.clone();
        Box::pin(async move {
            if spec.fields.iter().any(|(k, _)| k == "bad") {
                return Err(AppError::bad_request("bad input"));
            }
            Ok(Box::new(FakeWork(planner)) as Box<dyn JobWork>)
        })
    }
}

impl JobWork for FakeWork {
    fn run(self: Box<Self>, progress: Arc<dyn TileProgress>) -> Result<JobOutput, AppError> {
        let p = &self.0;
        progress.planned(p.tiles);
        let mut all = Vec::new();
        for i in 0..p.tiles {
            if progress.cancelled() {
                return Err(AppError::bad_request("cancelled"));
            }
            let masks = match progress.finished(i) {
                Some(m) => m,
                None => {
                    if p.fail_at == Some(i) {
                        return Err(AppError::bad_request(format!("tile {i} is broken")));
                    }
                    std::thread::sleep(p.tile_time);
                    p.computed.lock().push(i);
                    let m = vec![tile_mask(i)];
                    progress.tile_done(i, &m);
                    m
                }
            };
            all.extend(masks);
        }
        let text: Vec<String> = all
            .iter()
            .map(|m| format!("{}@{}", m.id, m.bbox.x))
            .collect();
        Ok(JobOutput {
            output: FormattedOutput {
                content_type: "text/plain".into(),
                file_name: "tiles.txt".into(),
                bytes: text.join(",").into_bytes(),
            },
            mask_count: all.len(),
        })
    }
}

fn planner(tiles: usize, tile_ms: u64) -> FakePlanner {
    FakePlanner {
        tiles,
        tile_time: Duration::from_millis(tile_ms),
        computed: Arc::new(Mutex::new(Vec::new())),
        fail_at: None,
    }
}

fn spec() -> JobSpec {
    JobSpec {
        process: ProcessId::Automatic,
        fields: vec![],
        image: ImageRef::Stored("x".into()),
    }
}

struct Setup {
    jobs: Arc<Jobs>,
    store: Arc<sqlite::SqliteStore>,
    dir: PathBuf,
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn setup_with(
    planner: &FakePlanner,
    limiter: Arc<InferenceLimiter>,
    store: Arc<sqlite::SqliteStore>,
) -> Setup {
    let dir = std::env::temp_dir().join(format!("samgeo-jobs-test-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = JobsConfig {
        max_running: 1,
        max_accepted: 3,
        job_timeout_secs: 60,
        keep_results_hours: 1,
    };
    let jobs = Jobs::new(
        store.clone(),
        Arc::new(planner.clone()),
        limiter,
        config,
        dir.clone(),
    );
    Setup { jobs, store, dir }
}

fn setup(planner: &FakePlanner) -> Setup {
    setup_with(
        planner,
        Arc::new(InferenceLimiter::new(2, 8)),
        Arc::new(sqlite::SqliteStore::in_memory().unwrap()),
    )
}

/// Polls job `id` until `done` holds (30 s guard against hangs); returns every progress value
/// seen on the way.
async fn wait_for(
    jobs: &Jobs,
    id: &str,
    done: impl Fn(&JobRecord) -> bool,
) -> (JobRecord, Vec<u8>) {
    let start = Instant::now();
    let mut seen = Vec::new();
    loop {
        let job = jobs.get(id).await.unwrap();
        if seen.last() != Some(&job.progress()) {
            seen.push(job.progress());
        }
        if done(&job) {
            return (job, seen);
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "job stuck: {job:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_reports_progress_and_keeps_its_result() {
    let p = planner(5, 40);
    let s = setup(&p);
    let job = s.jobs.submit(spec(), None).await.unwrap();
    assert_eq!(job.status, JobStatus::Accepted);
    let (done, seen) = wait_for(&s.jobs, &job.id, |j| j.status.is_final()).await;
    assert_eq!(done.status, JobStatus::Successful, "{done:?}");
    assert!(
        seen.iter().filter(|&&v| v > 0 && v < 100).count() >= 2,
        "progress between 0 and 100 seen: {seen:?}"
    );
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
    let (record, bytes) = s.jobs.result(&job.id).await.unwrap().unwrap();
    assert_eq!(bytes, b"1@0,2@10,3@20,4@30,5@40");
    assert_eq!(record.result.unwrap().mask_count, 5);
    assert_eq!(*p.computed.lock(), [0, 1, 2, 3, 4]);
    assert!(
        s.store.tile(&job.id, 0).unwrap().is_none(),
        "tiles are dropped once done"
    );
}

/// A job a previous process left running with two of four tiles stored: a new runner
/// computes only the other two, and the result equals an uninterrupted run's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_resumes_from_the_finished_tiles() {
    let store = Arc::new(sqlite::SqliteStore::in_memory().unwrap());
    let left = JobRecord::accepted("left-running".into(), spec(), 1);
    store.insert(&left).unwrap();
    store.start(&left.id, 2).unwrap();
    store.planned(&left.id, 4, 2).unwrap();
    for i in [0, 1] {
        let bytes = tile_masks::encode(&[tile_mask(i)]);
        store.put_tile(&left.id, i as u32, &bytes, 3).unwrap();
    }
    let accepted = JobRecord::accepted("left-accepted".into(), spec(), 4);
    store.insert(&accepted).unwrap();
    let p = planner(4, 10);
    let s = setup_with(&p, Arc::new(InferenceLimiter::new(2, 8)), store);
    assert_eq!(s.jobs.recover().await.unwrap(), 2);
    let (resumed, _) = wait_for(&s.jobs, &left.id, |j| j.status.is_final()).await;
    assert_eq!(resumed.status, JobStatus::Successful);
    let (started, _) = wait_for(&s.jobs, &accepted.id, |j| j.status.is_final()).await;
    assert_eq!(started.status, JobStatus::Successful);
    // Tiles 2 and 3 of the resumed job, then all four of the accepted one.
    assert_eq!(*p.computed.lock(), [2, 3, 0, 1, 2, 3]);
    let resumed_bytes = s.jobs.result(&left.id).await.unwrap().unwrap().1;
    let fresh_bytes = s.jobs.result(&accepted.id).await.unwrap().unwrap().1;
    assert_eq!(resumed_bytes, fresh_bytes);
    assert_eq!(resumed.started, Some(2), "the first start is kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dismissal_stops_a_running_job_between_tiles() {
    let p = planner(50, 30);
    let s = setup(&p);
    let job = s.jobs.submit(spec(), None).await.unwrap();
    wait_for(&s.jobs, &job.id, |j| j.tiles_done >= 2).await;
    let dismissed = s.jobs.dismiss(&job.id).await.unwrap();
    assert_eq!(dismissed.status, JobStatus::Dismissed);
    let at_dismissal = p.computed.lock().len();
    // Wait until the runner has let go of the job (its cancel flag is removed at the end).
    let start = Instant::now();
    while s.jobs.cancels.lock().contains_key(&job.id) {
        assert!(start.elapsed() < Duration::from_secs(30));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let computed = p.computed.lock().len();
    assert!(
        computed <= at_dismissal + 1,
        "stopped within one tile: {computed} vs {at_dismissal}"
    );
    assert!(computed < 50);
    let after = s.jobs.get(&job.id).await.unwrap();
    assert_eq!(after.status, JobStatus::Dismissed);
    assert!(s.jobs.result(&job.id).await.unwrap().is_err(), "no result");
    assert!(!s.dir.join(&job.id).exists(), "its files are gone");
    assert!(s.store.tile(&job.id, 0).unwrap().is_none());
    assert_eq!(s.jobs.dismiss("unknown").await.unwrap_err().status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_reported_and_limits_hold() {
    let mut p = planner(3, 1);
    p.fail_at = Some(1);
    let s = setup(&p);
    let job = s.jobs.submit(spec(), None).await.unwrap();
    let (failed, _) = wait_for(&s.jobs, &job.id, |j| j.status.is_final()).await;
    assert_eq!(failed.status, JobStatus::Failed);
    assert_eq!(failed.message.as_deref(), Some("tile 1 is broken"));
    let mut bad = spec();
    bad.fields.push(("bad".into(), "1".into()));
    let job = s.jobs.submit(bad, None).await.unwrap();
    let (failed, _) = wait_for(&s.jobs, &job.id, |j| j.status.is_final()).await;
    assert_eq!(failed.message.as_deref(), Some("bad input"));
    // max_accepted = 3: long jobs fill it, the fourth is refused.
    let slow = planner(1000, 20);
    let s = setup(&slow);
    for _ in 0..3 {
        s.jobs.submit(spec(), None).await.unwrap();
    }
    let refused = s.jobs.submit(spec(), None).await.unwrap_err();
    assert_eq!(refused.status, 503);
    // max_running = 1: one runs, two wait.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let statuses: Vec<JobStatus> = s
        .jobs
        .list(0, 10)
        .await
        .unwrap()
        .iter()
        .map(|j| j.status)
        .collect();
    assert_eq!(
        statuses
            .iter()
            .filter(|&&s| s == JobStatus::Running)
            .count(),
        1,
        "{statuses:?}"
    );
    for job in s.jobs.list(0, 10).await.unwrap() {
        s.jobs.dismiss(&job.id).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_deletes_expired_jobs() {
    let p = planner(1, 1);
    let s = setup(&p);
    let job = s.jobs.submit(spec(), None).await.unwrap();
    let (done, _) = wait_for(&s.jobs, &job.id, |j| j.status.is_final()).await;
    assert!(s.dir.join(&job.id).join("result").exists());
    let finished = done.finished.unwrap();
    assert_eq!(s.jobs.sweep(finished + 3_600_000 - 1).await.unwrap(), 0);
    assert_eq!(s.jobs.sweep(finished + 3_600_001).await.unwrap(), 1);
    assert_eq!(s.jobs.get(&job.id).await.unwrap_err().status, 404);
    assert!(!s.dir.join(&job.id).exists());
}

/// One inference slot, a job of many tiles: an interactive request waits at most one tile,
/// not for the whole job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interactive_request_goes_before_the_next_tile() {
    let limiter = Arc::new(InferenceLimiter::new(1, 8));
    let p = planner(40, 25);
    let s = setup_with(
        &p,
        limiter.clone(),
        Arc::new(sqlite::SqliteStore::in_memory().unwrap()),
    );
    let job = s.jobs.submit(spec(), None).await.unwrap();
    wait_for(&s.jobs, &job.id, |j| j.tiles_done >= 2).await;
    for _ in 0..3 {
        let asked = Instant::now();
        let permit = limiter.acquire().await.unwrap();
        let waited = asked.elapsed();
        let tiles_then = p.computed.lock().len();
        // Hold the slot as a click would; the job must not compute meanwhile.
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(
            p.computed.lock().len(),
            tiles_then,
            "the job waited for the slot"
        );
        drop(permit);
        assert!(tiles_then < 40, "served before the job's end");
        eprintln!("interactive slot after {waited:?} (tile time 25 ms)");
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    let (done, _) = wait_for(&s.jobs, &job.id, |j| j.status.is_final()).await;
    assert_eq!(done.status, JobStatus::Successful);
}

// --- On a cluster: the Redis store, tiles fanned out to every replica's worker, takeover. ---

mod cluster {
    use super::*;
    use crate::cluster::test_redis::TestRedis;
    use crate::cluster::{job_lease, Redis};
    use crate::config::ClusterConfig;
    use crate::jobs::redis_store::RedisStore;
    use crate::jobs::tile_worker::{self, WorkerHandle};

    /// A replica's jobs on `server`, with its tile worker.
    fn replica(
        server: &TestRedis,
        node: &str,
        planner: &FakePlanner,
        dir: &Path,
    ) -> (Arc<Jobs>, WorkerHandle) {
        let cluster = ClusterConfig {
            redis_url: Some(server.url()),
            node_id: Some(node.into()),
            redis_timeout_ms: 1000,
            redis_retry_secs: 1,
            tile_fanout: true,
            tile_claim_idle_ms: 500,
            ..ClusterConfig::default()
        };
        let redis: Arc<Redis> = Arc::new(server.handle(node, 1000));
        let config = JobsConfig {
            max_running: 1,
            max_accepted: 10,
            job_timeout_secs: 60,
            keep_results_hours: 1,
        };
        let jobs = Jobs::open_shared(
            redis.clone(),
            &cluster,
            dir,
            Arc::new(planner.clone()),
            Arc::new(InferenceLimiter::new(2, 8)),
            config,
        )
        .unwrap();
        let worker = tile_worker::spawn(
            jobs.clone(),
            redis,
            &cluster,
            tokio::runtime::Handle::current(),
        )
        .unwrap();
        (jobs, worker)
    }

    fn temp() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("samgeo-cluster-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_replicas_compute_a_jobs_tiles_and_the_coordinator_merges_them() {
        let Some(server) = TestRedis::start("two_replicas_compute_a_jobs_tiles") else {
            return;
        };
        let dir = temp();
        let (pa, pb) = (planner(8, 30), planner(8, 30));
        let (a, worker_a) = replica(&server, "a", &pa, &dir);
        let (b, worker_b) = replica(&server, "b", &pb, &dir);
        let job = a.submit(spec(), None).await.unwrap();
        assert_eq!(b.get(&job.id).await.unwrap().status, job.status);
        let (done, _) = wait_for(&b, &job.id, |j| j.status.is_final()).await;
        assert_eq!(done.status, JobStatus::Successful, "{done:?}");
        let (_, bytes) = b.result(&job.id).await.unwrap().unwrap();
        assert_eq!(bytes, b"1@0,2@10,3@20,4@30,5@40,6@50,7@60,8@70");
        let (by_a, by_b) = (pa.computed.lock().clone(), pb.computed.lock().clone());
        let mut all: Vec<usize> = by_a.iter().chain(&by_b).copied().collect();
        all.sort();
        assert_eq!(
            all,
            (0..8).collect::<Vec<_>>(),
            "each tile once: {by_a:?} {by_b:?}"
        );
        assert!(!by_a.is_empty() && !by_b.is_empty(), "{by_a:?} {by_b:?}");
        worker_a.stop();
        worker_b.stop();
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A tile that fails on a worker fails the job with its message; the coordinator stops.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_tile_failing_on_a_worker_fails_the_job() {
        let Some(server) = TestRedis::start("a_tile_failing_on_a_worker_fails_the_job") else {
            return;
        };
        let dir = temp();
        let mut p = planner(6, 5);
        p.fail_at = Some(3);
        let (a, worker) = replica(&server, "a", &p, &dir);
        let job = a.submit(spec(), None).await.unwrap();
        let (done, _) = wait_for(&a, &job.id, |j| j.status.is_final()).await;
        assert_eq!(done.status, JobStatus::Failed, "{done:?}");
        assert_eq!(done.message.as_deref(), Some("tile 3 is broken"));
        // The coordinator lets go of it (its run ends) and the job stays failed.
        let start = Instant::now();
        while a.cancels.lock().contains_key(&job.id) {
            assert!(start.elapsed() < Duration::from_secs(30));
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let after = a.get(&job.id).await.unwrap();
        assert_eq!(after.message.as_deref(), Some("tile 3 is broken"));
        worker.stop();
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A tile whose every worker died (delivered four times) fails its job instead of being
    /// taken over again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_tile_that_stops_every_worker_fails_the_job() {
        use crate::cluster::tile_queue;
        let Some(server) = TestRedis::start("a_tile_that_stops_every_worker_fails_the_job") else {
            return;
        };
        let ghosts = server.handle("ghost", 1000);
        let store = RedisStore::new(Arc::new(server.handle("ghost", 1000)));
        let job = JobRecord::accepted("cursed".into(), spec(), 1);
        store.insert(&job).unwrap();
        store.start(&job.id, 2).unwrap();
        tile_queue::ensure_group(&ghosts).unwrap();
        tile_queue::enqueue(&ghosts, &job.id, &[0]).unwrap();
        // Three workers took it and died.
        let entry = tile_queue::read_new(&ghosts, "ghost-1", 100)
            .unwrap()
            .unwrap();
        for ghost in ["ghost-2", "ghost-3"] {
            assert_eq!(
                tile_queue::claim_idle(&ghosts, ghost, 0).unwrap(),
                Some(entry.clone())
            );
        }
        let dir = temp();
        let p = planner(1, 1);
        let (b, worker) = replica(&server, "b", &p, &dir);
        let (done, _) = wait_for(&b, &job.id, |j| j.status.is_final()).await;
        assert_eq!(done.status, JobStatus::Failed);
        assert!(
            done.message.as_deref().unwrap().contains("started 4 times"),
            "{done:?}"
        );
        assert!(p.computed.lock().is_empty(), "not computed again");
        worker.stop();
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_job_without_a_lease_is_taken_over_from_its_finished_tiles() {
        let Some(server) = TestRedis::start("a_job_without_a_lease_is_taken_over") else {
            return;
        };
        // Left running by a replica that died (its lease expired), two of four tiles done.
        let dead = RedisStore::new(Arc::new(server.handle("dead", 1000)));
        let left = JobRecord::accepted("left-running".into(), spec(), 1);
        dead.insert(&left).unwrap();
        dead.start(&left.id, 2).unwrap();
        dead.planned(&left.id, 4, 2).unwrap();
        for i in [0, 1] {
            let bytes = tile_masks::encode(&[tile_mask(i)]);
            dead.put_tile(&left.id, i as u32, &bytes, 3).unwrap();
        }
        // Another job, whose replica is alive (it holds the lease).
        let held = JobRecord::accepted("held".into(), spec(), 1);
        dead.insert(&held).unwrap();
        let alive = server.handle("alive", 1000);
        assert!(job_lease::acquire(&alive, "held", "alive", Duration::from_secs(60)).unwrap());
        let dir = temp();
        let p = planner(4, 10);
        let (b, worker) = replica(&server, "b", &p, &dir);
        assert_eq!(b.take_over_orphans().await.unwrap(), 1);
        let (done, _) = wait_for(&b, &left.id, |j| j.status.is_final()).await;
        assert_eq!(done.status, JobStatus::Successful, "{done:?}");
        assert_eq!(done.started, Some(2), "the first start is kept");
        let mut computed = p.computed.lock().clone();
        computed.sort();
        assert_eq!(computed, [2, 3], "only the missing tiles");
        let (_, bytes) = b.result(&left.id).await.unwrap().unwrap();
        assert_eq!(bytes, b"1@0,2@10,3@20,4@30");
        assert_eq!(b.get("held").await.unwrap().status, JobStatus::Accepted);
        assert_eq!(b.take_over_orphans().await.unwrap(), 0);
        worker.stop();
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redis_down_makes_the_job_endpoints_unavailable() {
        let Some(mut server) = TestRedis::start("redis_down_makes_the_job_endpoints_unavailable")
        else {
            return;
        };
        let dir = temp();
        let p = planner(1, 1);
        let (a, worker) = replica(&server, "a", &p, &dir);
        server.stop();
        let e = a.get("x").await.unwrap_err();
        assert_eq!(e.status, 503, "{}", e.detail);
        assert!(e.detail.contains("Redis"), "{}", e.detail);
        let e = a
            .submit(spec(), Some(b"raster".to_vec()))
            .await
            .unwrap_err();
        assert_eq!(e.status, 503, "{}", e.detail);
        let leftovers = std::fs::read_dir(dir.join("jobs")).unwrap().count();
        assert_eq!(leftovers, 0, "no job files left behind");
        worker.stop();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
