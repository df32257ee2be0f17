//! `verge`: build and serve WebAssembly edge apps.
//!
//! A thin shell over the library crates: argument parsing, progress and colours, and
//! errors printed with their whole chain of causes.

mod commands;
mod dev_control;
mod flags;
mod node_client;
mod ui;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc: per-request allocations (stores, resource tables, bodies) are small and
/// short-lived; glibc's malloc showed up as ~9% of a loaded server's profile. Built
/// without transparent huge pages, which doubled idle RSS for no measurable gain.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Build and run WebAssembly request handlers at the edge.
///
/// A Verge app is a `wasi:http/proxy` component. Create one with `verge init`, build
/// it with `verge build`, and run it locally with `verge serve`: every request gets a
/// fresh sandboxed instance with hard memory and CPU limits.
#[derive(Debug, Parser)]
#[command(name = "verge", version, propagate_version = true)]
#[command(
    after_help = "Quick start:\n  verge init hello\n  cd hello\n  verge serve\n  curl http://127.0.0.1:7878/"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Init(commands::init::Args),
    Build(commands::build::Args),
    Serve(Box<commands::serve::Args>),
    Kv(commands::kv::Args),
    Node(Box<commands::node::Args>),
    Fleet(commands::fleet::Args),
    Deploy(commands::remote::DeployArgs),
    Services(commands::remote::ServicesArgs),
    Versions(commands::remote::VersionsArgs),
    Activate(commands::remote::ActivateArgs),
    Rollback(commands::remote::RollbackArgs),
    Token(commands::remote::TokenArgs),
    Nodes(commands::remote::NodesArgs),
    Logs(commands::logs::Args),
    Login(commands::login::Args),
    Pack(commands::pack::Args),
    Purge(commands::purge::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    ui::init_tracing();
    let result = match cli.command {
        Command::Init(args) => commands::init::run(args),
        Command::Build(args) => commands::build::run(args),
        Command::Serve(args) => commands::serve::run(*args),
        Command::Kv(args) => commands::kv::run(args),
        Command::Node(args) => commands::node::run(*args),
        Command::Fleet(args) => commands::fleet::run(args),
        Command::Deploy(args) => commands::remote::deploy(args),
        Command::Services(args) => commands::remote::services(args),
        Command::Versions(args) => commands::remote::versions(args),
        Command::Activate(args) => commands::remote::activate(args),
        Command::Rollback(args) => commands::remote::rollback(args),
        Command::Token(args) => commands::remote::token(args),
        Command::Nodes(args) => commands::remote::nodes(args),
        Command::Logs(args) => commands::logs::run(args),
        Command::Login(args) => commands::login::run(args),
        Command::Pack(args) => commands::pack::run(args),
        Command::Purge(args) => commands::purge::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            ui::print_error(&err);
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every command's arguments are well formed (clap checks names, conflicts and
    /// flags only when a command is parsed; this checks them all at once).
    #[test]
    fn the_command_line_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}
