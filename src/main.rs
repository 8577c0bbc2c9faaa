//! Command line: `serve` (the default) runs the server; `migrate` only
//! brings the database schema up to date.

use std::sync::Arc;

use clap::{Parser, Subcommand};

use classroom::clock::SystemClock;
use classroom::config::Config;
use classroom::db::Db;
use classroom::startup::{shutdown, termination_signal, Application};

#[derive(Parser)]
#[command(version, about = "Realtime engine of a learning platform")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    config: Config,
}

/// glibc gives each thread that contends for malloc an arena of its own (up
/// to 8 per core); the short-lived buffers of each WebSocket handshake then
/// leave holes between long-lived objects in every one of them. Two arenas
/// shared by all threads: 6.3 -> 5.0 KiB per idle socket, same CPU per
/// delivery (docs/benchmarks.md). `MALLOC_ARENA_MAX` in the environment
/// still decides when set. Called before the server's threads start.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets a tunable of glibc's allocator.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
    // Blocks of 1 MiB and more (a password hash's 19 MiB above all) are
    // mapped apart and given back when freed. glibc's default threshold
    // rises to the size of the first such block freed, after which every
    // hash's memory stayed in the heap: 1,000 sign-ins left 0.6-1 GiB behind.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
        // SAFETY: as above.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP and WebSocket server (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Write many load-test users, a course, sessions and tokens straight to
    /// the database (see docs/benchmarks.md).
    SeedLoad(classroom::seed::SeedArgs),
}

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    limit_malloc_arenas();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(cli.config).await,
        Command::Migrate => Db::connect(&cli.config.database_url, cli.config.backend(), 2).map(|_| ()),
        Command::SeedLoad(args) => classroom::seed::run(&cli.config, &args).map(|summary| println!("{summary}")),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            log::error!("{err}");
            eprintln!("error: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> Result<(), String> {
    let app = Application::build(config, Arc::new(SystemClock)).await?;
    log::info!("listening on http://127.0.0.1:{} (bind {})", app.port(), app.state().config.bind_addr);
    let state = app.state();
    let handle = app.handle();
    actix_web::rt::spawn(async move {
        termination_signal().await;
        shutdown(&state, &handle).await;
    });
    app.run_until_stopped().await.map_err(|err| err.to_string())
}
