//! One module per subcommand: an `Args` struct whose doc comment is the
//! help text, a `cmd_*` function, and for write commands a pure `decide`.

pub mod add_bank;
pub mod add_user;
pub mod create_db;
pub mod log;
pub mod verify;
pub mod view_bank;
