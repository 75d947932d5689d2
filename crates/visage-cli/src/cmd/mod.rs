//! One file per `visage` subcommand: its clap `Args` and its `run`.

pub mod align;
pub mod data;
pub mod embed;
pub mod eval;
pub mod figures;
pub mod head;
pub mod identify;
pub mod parity;
pub mod train;
pub mod verify;
pub mod zoo;
