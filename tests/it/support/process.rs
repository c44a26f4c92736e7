//! `plaid-sync` worker processes for crash and multi-process tests.

use std::{
    collections::HashMap,
    process::{Child, Command, Stdio},
};

/// A `serve --role worker` process, SIGKILLed (if still running) when dropped.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `plaid-sync serve --role worker` with `vars` (plus `extra`) as its environment.
pub fn spawn_worker(vars: &HashMap<String, String>, extra: &[(&str, &str)]) -> KillOnDrop {
    spawn_serve(vars, "worker", extra)
}

/// Starts `plaid-sync serve --role ROLE` with `vars` (plus `extra`) as its environment.
pub fn spawn_serve(vars: &HashMap<String, String>, role: &str, extra: &[(&str, &str)]) -> KillOnDrop {
    let mut command = Command::new(env!("CARGO_BIN_EXE_plaid-sync"));
    command
        .args(["serve", "--role", role])
        .envs(vars)
        .env("RUST_LOG", "warn");
    for (name, value) in extra {
        command.env(name, value);
    }
    KillOnDrop(
        command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("serve process starts"),
    )
}
