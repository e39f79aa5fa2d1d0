//! One file per verb the user types. Each takes its parsed arguments and the global options.

pub mod create;
pub mod delete;
pub mod exec;
pub mod kill;
pub mod run;
pub mod spec;
pub mod start;
pub mod state;
