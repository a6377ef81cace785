//! `samgeo-api`: the server's command-line entry point.

use clap::Parser;
use samgeo_host::cli::Cli;

fn main() -> std::process::ExitCode {
    // ONNX Runtime's telemetry, on in Microsoft's builds, writes a device id and an event store
    // under $HOME/.cache and a session file in $TMPDIR (and would send the events): off, unless
    // the operator sets the variable. Set before any thread starts or the library loads.
    if std::env::var_os("ORT_DISABLE_TELEMETRY").is_none() {
        std::env::set_var("ORT_DISABLE_TELEMETRY", "1");
    }
    let cli = Cli::parse();
    // Logging starts in `server::run`, once the configuration (server.log_format) is read.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("samgeo-api: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(samgeo_host::server::run(cli));
    // Work still running on the blocking pool past the shutdown grace period (an inference)
    // must not keep the process alive: dropping the runtime would wait for it.
    runtime.shutdown_background();
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("samgeo-api: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
