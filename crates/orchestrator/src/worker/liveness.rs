//! Whether a worker is alive: its identity in the store (host, pid, Slurm task), the heartbeat
//! rules, and putting back what a dead worker held.

use std::time::Duration;

use thaw_store::Store;

/// How often a running job refreshes its heartbeat, and when a silent one counts as abandoned.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
pub const STALE_AFTER: Duration = Duration::from_secs(60);
pub const MAX_ATTEMPTS: i64 = 3;

/// This process's identity in the store: host and pid, so a dead local worker is recognised,
/// and the Slurm array task it runs in, if any, so `thaw status` can say where a job runs.
pub fn worker_id(suffix: &str) -> String {
    format!("{}:{}{}{suffix}", hostname(), std::process::id(), slurm_task())
}

/// ` [slurm 1234_5]` inside a Slurm array task (` [slurm 1234]` in a plain job), else "".
fn slurm_task() -> String {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    match (var("SLURM_ARRAY_JOB_ID"), var("SLURM_ARRAY_TASK_ID"), var("SLURM_JOB_ID")) {
        (Some(array), Some(task), _) => format!(" [slurm {array}_{task}]"),
        (_, _, Some(job)) => format!(" [slurm {job}]"),
        _ => String::new(),
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

/// True when `worker` ran on this host in a process that no longer exists, or has exited
/// and waits to be reaped (a zombie holds its pid but runs nothing).
pub fn is_dead_locally(worker: &str) -> bool {
    let mut parts = worker.splitn(2, ':');
    let (Some(host), Some(rest)) = (parts.next(), parts.next()) else { return false };
    let pid: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    if host != hostname() || pid.is_empty() {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // "pid (name) state ...": the name may hold spaces and parentheses, the state follows the last ')'.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_some_and(|state| matches!(state, 'Z' | 'X')),
        Err(_) => true,
    }
}

pub fn requeue(store: &Store) -> impl Future<Output = thaw_store::Result<Vec<String>>> + '_ {
    store.requeue_abandoned(STALE_AFTER, MAX_ATTEMPTS, is_dead_locally)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_worker_is_dead_once_its_process_has_exited_even_unreaped() {
        assert!(!is_dead_locally(&worker_id("")), "this process is alive");
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let id = format!("{}:{} [slurm 7_1]", hostname(), child.id());
        // Exited but not yet waited for: a zombie, which still holds its /proc entry.
        std::thread::sleep(Duration::from_millis(300));
        assert!(is_dead_locally(&id), "an exited, unreaped worker is dead");
        child.wait().unwrap();
        assert!(is_dead_locally(&id), "a reaped worker is dead");
        assert!(!is_dead_locally("another-host:1"), "other hosts are judged by heartbeat only");
    }
}
