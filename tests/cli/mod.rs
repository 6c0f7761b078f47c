//! The command line as a contract: exit codes, inputs told apart from
//! references, flags that do not apply, outputs checked before the work, help
//! that fits 80 columns.

mod contract;
