//! `users create --email E`.

use std::process::ExitCode;

use anyhow::Context;
use workflows::{auth, db::users};

use crate::{app::prepare_database, config::Config, telemetry};

/// Creates a user and prints its id and a new API token (shown once).
pub async fn create(email: &str) -> anyhow::Result<ExitCode> {
    let email = email.trim();
    if email.is_empty() || !email.contains('@') {
        anyhow::bail!("--email must be an email address");
    }
    let config = Config::from_env()?;
    telemetry::init(config.log_format);
    let pool = prepare_database(&config, true).await?;
    let mut tx = pool.begin().await?;
    let user = users::insert_user(&mut tx, email)
        .await?
        .with_context(|| format!("a user with email {email} already exists"))?;
    let token = auth::issue_token(&mut tx, user.id).await?;
    tx.commit().await?;
    println!("user_id: {}", user.id);
    println!("api_token: {}", token.token.expose());
    println!("(the token is shown once; only its hash is stored)");
    Ok(ExitCode::SUCCESS)
}
