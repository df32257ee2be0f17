//! One module per subcommand.

pub mod build;
pub mod init;
pub mod serve;
pub mod watch;
