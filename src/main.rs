//! The `kvlab` binary: a thin CLI over the library.

mod cli;

use clap::Parser;

fn main() {
    // Before any other thread exists: the policy sets environment variables.
    kvlab::threads::init();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = cli::Cli::parse();
    let code = match cli::dispatch(args) {
        Ok(code) => code,
        Err(e) => {
            // One line; input errors (bad pipeline, parameter, file) exit 2.
            let code = e
                .downcast_ref::<kvlab::Error>()
                .map(|k| k.exit_code())
                .unwrap_or(1);
            eprintln!("error: {e}");
            code
        }
    };
    std::process::exit(code);
}
