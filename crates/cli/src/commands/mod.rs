//! One module per subcommand.

pub mod build;
pub mod fleet;
pub mod init;
pub mod kv;
pub mod login;
pub mod logs;
pub mod node;
pub mod pack;
pub mod purge;
pub mod remote;
pub mod serve;
pub mod source;
pub mod watch;
