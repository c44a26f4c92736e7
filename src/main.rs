//! The `plaid-sync` binary: parse the command line and run it.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = plaid_sync::cli::Cli::parse_with_env_help();
    match plaid_sync::commands::run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
