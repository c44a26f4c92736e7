//! A fleet of `plaid-sync serve` processes on one database, for drills that
//! kill, stop and restart them. Each slot holds at most one process; a
//! process is "up" once its sync worker has registered in `apalis.workers`
//! (worker names carry the process id: `{queue}-{host}-{pid}-{ulid}`).

use std::{collections::HashMap, process::Command, time::Duration};

use sqlx::PgPool;

use crate::support::{
    process::{KillOnDrop, spawn_serve},
    wait_until,
};

/// How long a process may take to start and register its workers on a loaded machine.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// The queue whose worker marks a process as up.
const SYNC_QUEUE: &str = "plaid-sync.sync-item";

/// `serve` processes started alike.
pub struct Fleet {
    pool: PgPool,
    vars: HashMap<String, String>,
    role: String,
    extra: Vec<(String, String)>,
    slots: Vec<Option<KillOnDrop>>,
}

impl Fleet {
    /// Starts `count` `serve --role ROLE` processes with `vars` plus `extra`
    /// and waits until each is up.
    pub async fn start(
        pool: &PgPool,
        vars: &HashMap<String, String>,
        role: &str,
        extra: &[(&str, &str)],
        count: usize,
    ) -> Self {
        let mut fleet = Self {
            pool: pool.clone(),
            vars: vars.clone(),
            role: role.to_owned(),
            extra: extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            slots: (0..count).map(|_| None).collect(),
        };
        for slot in 0..count {
            fleet.restart_unwaited(slot);
        }
        for slot in 0..count {
            fleet.wait_up(slot).await;
        }
        fleet
    }

    /// Number of slots.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// SIGKILLs the slot's process (no cleanup, no hand-back) and reaps it.
    pub fn sigkill(&mut self, slot: usize) {
        if let Some(mut process) = self.slots[slot].take() {
            let _ = process.0.kill();
            let _ = process.0.wait();
        }
    }

    /// Starts a new process in the slot (replacing any) without waiting for it.
    pub fn restart_unwaited(&mut self, slot: usize) {
        self.sigkill(slot);
        let extra: Vec<(&str, &str)> = self.extra.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        self.slots[slot] = Some(spawn_serve(&self.vars, &self.role, &extra));
    }

    /// Starts a new process in the slot (replacing any) and waits until it is up.
    pub async fn restart(&mut self, slot: usize) {
        self.restart_unwaited(slot);
        self.wait_up(slot).await;
    }

    /// SIGTERMs every process at once and waits for each to exit cleanly.
    pub async fn stop_gracefully(&mut self) {
        let processes: Vec<KillOnDrop> = self.slots.iter_mut().filter_map(Option::take).collect();
        for process in &processes {
            let pid = process.0.id().to_string();
            let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
            assert!(sent.success(), "SIGTERM to {pid}");
        }
        for mut process in processes {
            let exit = tokio::task::spawn_blocking(move || {
                let exit = process.0.wait().unwrap();
                drop(process);
                exit
            })
            .await
            .unwrap();
            assert!(exit.success(), "serve exits cleanly on SIGTERM: {exit:?}");
        }
    }

    /// SIGKILLs every process.
    pub fn kill_all(&mut self) {
        for slot in 0..self.slots.len() {
            self.sigkill(slot);
        }
    }

    /// Waits until the slot's process has registered its sync worker.
    async fn wait_up(&self, slot: usize) {
        let pid = self.slots[slot].as_ref().expect("a process in the slot").0.id();
        let pattern = format!("{SYNC_QUEUE}-%-{pid}-%");
        wait_until(
            &format!("process {pid} (slot {slot}) to start its workers"),
            START_TIMEOUT,
            || async {
                let up: bool =
                    sqlx::query_scalar("select exists (select 1 from apalis.workers where id like $1)")
                        .bind(&pattern)
                        .fetch_one(&self.pool)
                        .await
                        .unwrap();
                up.then_some(())
            },
        )
        .await;
    }
}
